// The refresh's inputs (pipelines/refresh.ts, lib/train/refresh_inputs.ts): the run's corpus settings for new
// text, a prepared --data made otherwise, data with nothing to train, a --from that is not a run folder, and
// train --resume of a refreshed run. Child processes of the jobs, on one small run trained on a prepared corpus.
import assert from "node:assert/strict";
import { join } from "node:path";
import { listCheckpoints } from "../lib/train/checkpoint.ts";
import { latestVersionDir } from "../lib/export/publish.ts";
import { pipeline, type Run, runCommand } from "./child.ts";

const QUIET = ["--eval-dir", "none", "--progress", "none"];
/** A job run in `cwd` (the fixture's paths are relative: a run's --data names CK of its own folder). */
const job = (name: string, args: string[], cwd: string): Promise<Run> =>
  runCommand(Deno.execPath(), ["run", "-A", pipeline(name), ...args], {
    cwd,
    env: { OPENBLAS_NUM_THREADS: "1" },
  });
const last = (r: Run) => r.stderr.trim().split("\n").at(-1) ?? "";

/** Text of capitalised words W0…W39 with a final "." per line (deterministic). */
function capsText(lines: number, seed = 1): string {
  let x = seed;
  const out: string[] = [];
  for (let l = 0; l < lines; l++) {
    const ws: string[] = [];
    for (let k = 0; k < 8; k++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      ws.push(`W${Math.floor(Math.sqrt((x / 2147483648) * 1600))}`);
    }
    out.push(ws.join(" ") + " .");
  }
  return out.join("\n") + "\n";
}

/**
 * A folder with caps.txt, the corpus CK prepared from it keeping case and punctuation (window 2, no
 * subsampling), and the run R trained on CK (--data CK): the fixture every test copies.
 */
async function fixture(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "refresh_inputs_" });
  await Deno.writeTextFile(join(dir, "caps.txt"), capsText(300));
  const corpus = await job("corpus", [
    "--input",
    "caps.txt",
    "--out",
    "CK",
    "--lowercase",
    "false",
    "--punctuation",
    "keep",
    "--window",
    "2",
    "--sample",
    "0",
    "--min-count",
    "1",
  ], dir);
  assert.equal(corpus.code, 0, corpus.stderr);
  const train = await job("train", [
    "--data",
    "CK",
    "--out",
    "R",
    "--dim",
    "8",
    "--epochs",
    "1",
    "--batch",
    "16",
    "--backend",
    "js",
    ...QUIET,
  ], dir);
  assert.equal(train.code, 0, train.stderr);
  return dir;
}

let baseDir: string | undefined;
const base = fixture().then((d) => (baseDir = d));

/** A copy of the fixture for one test (removed after it). */
async function withCopy(fn: (dir: string) => Promise<void>): Promise<void> {
  const from = await base;
  const dir = await Deno.makeTempDir({ prefix: "refresh_inputs_case_" });
  try {
    const cp = await runCommand("cp", ["-a", `${from}/.`, dir]);
    assert.equal(cp.code, 0, cp.stderr);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const refresh = (dir: string, args: string[]) => job("refresh", [...args, ...QUIET], dir);

Deno.test("refresh of a run trained on a prepared corpus prepares new text as that corpus was (case and punctuation kept)", async () => {
  await withCopy(async (dir) => {
    const sameText = ["--from", join(dir, "R"), "--data", join(dir, "caps.txt"), "--min-count", "1"];
    const r = await refresh(dir, sameText);
    assert.equal(r.code, 0, r.stderr);
    // the same text: no word is new (lowercased copies w0…, W0 without its "." were)
    assert.match(r.stderr, /refresh: 0 new words/);
    assert.match(r.stderr, /as the run's corpus was \(from .*CK\/manifest\.json\)/);
    // the next refresh takes the settings its checkpoint recorded, also with CK gone (another --epochs: the
    // same refresh again would have nothing to do)
    await Deno.remove(join(dir, "CK"), { recursive: true });
    const again = await refresh(dir, [...sameText, "--epochs", "2"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /refresh: 0 new words/);
    assert.match(again.stderr, /as the run's corpus was \(from the run's last refresh\)/);
  });
});

Deno.test("refresh of new text refuses (exit 5) when the prepared corpus the run trained on is gone: its settings are unknown", async () => {
  await withCopy(async (dir) => {
    await Deno.remove(join(dir, "CK"), { recursive: true });
    const before = await listCheckpoints(join(dir, "R", "checkpoints"));
    const r = await refresh(dir, ["--from", join(dir, "R"), "--data", join(dir, "caps.txt")]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(
      last(r),
      /^refresh: --from .*R: the corpus its run trained on \(--data .*CK\) is not there any more, .*npx deno task corpus --input .*caps\.txt --out DIR --mode \w+ --lowercase true\|false --punctuation strip\|keep --sentences line\|punct --window N --sample T\), then refresh with --data DIR$/,
    );
    assert.deepEqual(await listCheckpoints(join(dir, "R", "checkpoints")), before);
  });
});

Deno.test("refresh --data of a corpus prepared with another --window and tokenisation: one line names the differences", async () => {
  await withCopy(async (dir) => {
    const c = await job("corpus", [
      "--input",
      join(dir, "caps.txt"),
      "--out",
      join(dir, "W1"),
      "--window",
      "1",
      "--sample",
      "0",
      "--min-count",
      "1",
    ], dir);
    assert.equal(c.code, 0, c.stderr);
    const r = await refresh(dir, ["--from", join(dir, "R"), "--data", join(dir, "W1"), "--epochs", "0"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /refresh: --data .*W1 was prepared with --lowercase true \(the run's false\), --punctuation strip \(the run's keep\), --window 1 \(the run's 2\): its words and windows train/,
    );
  });
});

Deno.test("refresh with nothing to train (every word unknown and below --min-count) exits 5 and writes nothing; the examples reported are those trained", async () => {
  await withCopy(async (dir) => {
    const R = join(dir, "R");
    // every word seen once, none of the run's
    const rare = Array.from(
      { length: 60 },
      (_, l) => Array.from({ length: 6 }, (_, k) => `r${l}x${k}`).join(" "),
    );
    await Deno.writeTextFile(join(dir, "rare.txt"), rare.join("\n") + "\n");
    const before = await listCheckpoints(join(R, "checkpoints"));
    const version = await latestVersionDir(join(R, "embeddings"));
    const r = await refresh(dir, ["--from", R, "--data", join(dir, "rare.txt"), "--min-count", "2"]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(
      last(r),
      /^refresh: --data .*rare\.txt: no example of it uses a word the run knows or one reaching --min-count 2/,
    );
    assert.deepEqual(await listCheckpoints(join(R, "checkpoints")), before);
    assert.equal(await latestVersionDir(join(R, "embeddings")), version);
    // half the lines the run's words, half rare ones: the rare lines' examples are dropped and not counted
    const mixed = capsText(40, 7).trim().split("\n").flatMap((l, i) => [l, rare[i]]);
    await Deno.writeTextFile(join(dir, "mixed.txt"), mixed.join("\n") + "\n");
    const m = await job("refresh", [
      "--from",
      R,
      "--data",
      join(dir, "mixed.txt"),
      "--min-count",
      "2",
      "--eval-dir",
      "none",
      "--progress",
      "json",
    ], dir);
    assert.equal(m.code, 0, m.stderr);
    const done = JSON.parse(m.stdout.trim().split("\n").at(-1)!);
    const t = done.training;
    assert.ok(t.droppedExamples > 0, JSON.stringify(t));
    assert.ok(t.examples > 0, JSON.stringify(t));
    const rows = JSON.parse(
      await Deno.readTextFile(join(String(done.embeddings.dir), "manifest.json")),
    ).corpus.rows;
    assert.equal(t.examples + t.droppedExamples, rows);
    assert.equal(t.thisInvocation.examples, t.examples);
  });
});

Deno.test("refresh --from a part of a run, a publication or a checkpoint file: exit 2 naming the run folder, no lock taken there", async () => {
  await withCopy(async (dir) => {
    const R = join(dir, "R");
    await Deno.writeTextFile(join(dir, "new.txt"), capsText(20, 3));
    const ckpt = (await listCheckpoints(join(R, "checkpoints"))).at(-1)!;
    const version = (await latestVersionDir(join(R, "embeddings")))!;
    const listing = (p: string) => [...Deno.readDirSync(p)].map((e) => e.name).sort();
    const versionFiles = listing(version);
    const cases: [string, RegExp][] = [
      [
        join(R, "checkpoints"),
        /is the checkpoints\/ folder of a run, not a run folder: give the run folder .*R$/,
      ],
      [join(R, "corpus"), /is the corpus\/ folder of a run, not a run folder: give the run folder .*R$/],
      [
        join(R, "embeddings"),
        /is the embeddings\/ folder of a run, not a run folder: give the run folder .*R$/,
      ],
      [
        join(R, "embeddings", "latest"),
        /inside the published version .*give the run folder whose embeddings/,
      ],
      [version, /inside the published version .*give the run folder whose embeddings/],
      [ckpt, /is a checkpoint file, not a run folder: give the run folder .*R$/],
    ];
    await Deno.mkdir(join(R, "corpus"), { recursive: true });
    for (const [from, re] of cases) {
      const r = await refresh(dir, ["--from", from, "--data", join(dir, "new.txt")]);
      assert.equal(r.code, 2, `${from}: ${r.stderr}`);
      assert.match(last(r), re);
    }
    assert.deepEqual(listing(version), versionFiles, "no run.lock in the published version");
    assert.ok(!listing(join(R, "checkpoints")).includes("run.lock"));
  });
});

Deno.test("train --resume of a refreshed run: exit 4 saying it was refreshed and to refresh again, also after a later refresh that neither trains nor grows", async () => {
  await withCopy(async (dir) => {
    const R = join(dir, "R");
    // a refresh that trains (one that takes no step and grows no word leaves a resumable run: refresh_best_test)
    const r = await refresh(dir, ["--from", R, "--data", join(dir, "caps.txt"), "--epochs", "1"]);
    assert.equal(r.code, 0, r.stderr);
    // then one with --epochs 0 over words the run knows now: its checkpoint, the run's newest, carries the
    // run's mark on (a review found it dropped: train --resume then prepared brown into the run, exit 4)
    const again = await refresh(dir, ["--from", R, "--data", join(dir, "caps.txt"), "--epochs", "0"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /refresh: 0 new words/);
    for (const extra of [[], ["--data", join(dir, "caps.txt")]]) {
      const t = await job("train", ["--resume", R, "--epochs", "2", ...extra, ...QUIET], dir);
      assert.equal(t.code, 4, t.stderr);
      assert.match(
        last(t),
        /^train: --resume .*: the run was refreshed \(refresh --data .*caps\.txt\), and train cannot resume a refreshed run .*run npx deno task refresh --from .*R --data NEW_DATA again/,
      );
    }
    await assert.rejects(Deno.stat(join(R, "corpus")), Deno.errors.NotFound, "nothing prepared into the run");
  });
});

globalThis.addEventListener("unload", () => {
  if (baseDir) Deno.removeSync(baseDir, { recursive: true });
});
