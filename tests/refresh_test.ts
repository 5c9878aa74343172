import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireLock, LockedError } from "../lib/core/lock.ts";
import { latestVersionDir } from "../lib/export/publish.ts";
import { readWord2VecText } from "../lib/export/word2vec.ts";
import { remapExamples } from "../lib/export/remap.ts";
import { findLatestCheckpoint, listCheckpoints } from "../lib/train/checkpoint.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { prepareCorpus } from "../lib/io/prepare.ts";
import { prepareCorpusDuckdb } from "../lib/io/duckdb_prepare.ts";
import { EXIT } from "../lib/core/exit_codes.ts";
import { makeRun, WORDS } from "./refresh_fixture.ts";
import { pipeline, runRedirected, runScript, spawnJob } from "./child.ts";

const quiet = () => {};

const refresh = (args: string[]) => runScript(pipeline("refresh"), args);

/** `deno task export` with `args`, as a child. */
const exportJob = (args: string[]) => runScript(pipeline("export"), args);

const NEW_TEXT = "the dog sat on the mat\nthe dog ran to a cat\na dog sat\nthe zebra sat on the mat\n";

Deno.test("remapExamples maps ids, drops unknown entries and examples left empty", () => {
  const X = {
    offsets: Int32Array.of(0, 2, 3, 5),
    indices: Int32Array.of(0, 1, 2, 0, 3),
    values: Float32Array.of(1, 0.5, 1, 1, 2),
  };
  const Y = {
    offsets: Int32Array.of(0, 1, 2, 4),
    indices: Int32Array.of(2, 1, 1, 3),
    values: Float32Array.of(1, 1, 0.3, 0.7),
  };
  const r = remapExamples(X, Y, Int32Array.of(10, -1, 12, 13));
  // example 0: inputs {10}, target {12}; example 1: target 1 → -1 → dropped; example 2: inputs {10, 13}, targets {13}
  assert.equal(r.dropped, 1);
  assert.deepEqual(Array.from(r.inputs.offsets), [0, 1, 3]);
  assert.deepEqual(Array.from(r.inputs.indices), [10, 10, 13]);
  assert.deepEqual(Array.from(r.inputs.values), [1, 1, 2]);
  assert.deepEqual(Array.from(r.targets.offsets), [0, 1, 2]);
  assert.deepEqual(Array.from(r.targets.indices), [12, 13]);
  assert.deepEqual(Array.from(r.targets.values), [1, Math.fround(0.7)]);
  assert.throws(() => remapExamples(X, Y, Int32Array.of(1, 2)), /id 2 is outside the vocabulary of 2 words/);
});

Deno.test("the lock: O_EXCL create, a live holder refuses, a dead one is taken over", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "x.lock");
    const a = await acquireLock(path, "a", quiet);
    const info = JSON.parse(await Deno.readTextFile(path));
    assert.equal(info.pid, Deno.pid);
    assert.equal(info.host, Deno.hostname());
    assert.ok(Date.parse(info.time) > 0);
    await assert.rejects(
      acquireLock(path, "b", quiet),
      (e: unknown) => e instanceof LockedError && /held by pid/.test(e.message),
    );
    await a.release();
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
    // a dead pid: a process that has exited
    const child = new Deno.Command("true").spawn();
    await child.status;
    await Deno.writeTextFile(
      path,
      JSON.stringify({ pid: child.pid, host: Deno.hostname(), time: "2026-01-01T00:00:00Z", command: "old" }),
    );
    const lines: string[] = [];
    const b = await acquireLock(path, "b", (l) => lines.push(l));
    assert.equal(b.tookOver?.pid, child.pid);
    assert.match(lines.join("\n"), new RegExp(`taking over .* from pid ${child.pid}`));
    assert.equal(JSON.parse(await Deno.readTextFile(path)).pid, Deno.pid);
    await b.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("refresh: a held lock exits 3 and leaves everything as it was", async () => {
  const { run } = await makeRun();
  try {
    const lock = join(run, "run.lock");
    const held = JSON.stringify({
      pid: Deno.pid,
      host: Deno.hostname(),
      time: new Date().toISOString(),
      command: "test",
    });
    await Deno.writeTextFile(lock, held);
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT);
    const r = await refresh([
      "--from",
      run,
      "--data",
      join(run, "new.txt"),
      "--epochs",
      "0",
      "--eval-dir",
      "none",
    ]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.match(r.stderr, /^refresh: locked: .*run\.lock is held by pid \d+/);
    assert.equal(await Deno.readTextFile(lock), held);
    assert.equal((await listCheckpoints(join(run, "checkpoints"))).length, 1);
    assert.equal(await latestVersionDir(join(run, "embeddings")), join(run, "embeddings", "versions", "v0"));
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh --epochs 0: new words appended, old input rows bit-exact, old output rows kept, new version published", async () => {
  const { run, E, W, dOut } = await makeRun();
  try {
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT);
    // a stale lock from a crashed refresh and a leftover staging folder are cleaned up
    const child = new Deno.Command("true").spawn();
    await child.status;
    await Deno.writeTextFile(
      join(run, "run.lock"),
      JSON.stringify({ pid: child.pid, host: Deno.hostname(), time: "t", command: "crashed" }),
    );
    await Deno.mkdir(join(run, "refresh-staging", "old-1"), { recursive: true });
    const before = (await listCheckpoints(join(run, "checkpoints")))[0];
    const beforeBytes = await Deno.readFile(before);
    const r = await refresh([
      "--from",
      run,
      "--data",
      join(run, "new.txt"),
      "--epochs",
      "0",
      "--min-count",
      "2",
      "--eval-dir",
      "none",
      "--output-rows",
      "--formats",
      "vec,parquet",
      "--backend",
      "js",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /taking over/);
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.equal(summary.event, "refresh");
    assert.equal(summary.newWords, 1); // "dog" (3×); "ran", "to", "zebra" (1×) stay out
    await assert.rejects(Deno.stat(join(run, "run.lock")), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(join(run, "refresh-staging")), Deno.errors.NotFound);
    // the checkpoint
    const ck = await findLatestCheckpoint(join(run, "checkpoints"));
    assert.equal((await listCheckpoints(join(run, "checkpoints"))).length, 2);
    assert.notEqual(ck, before);
    assert.deepEqual(await Deno.readFile(before), beforeBytes, "the previous checkpoint is unchanged");
    const t = await Trainer.fromCheckpoint(ck!, { backend: "js", log: quiet });
    try {
      assert.deepEqual(t.vocab.words, [...WORDS, "dog"]);
      // its --output-rows is train's --export-output: a later train --resume publishes the rows too
      assert.equal(t.config.exportOutput, true);
      const e = await t.embeddings({ output: true });
      assert.deepEqual(new Uint32Array(e.input.buffer, 0, E.length), new Uint32Array(E.buffer, 0, E.length));
      assert.ok(e.input.subarray(E.length).some((x) => x !== 0), "the new input row is initialised");
      let maxDiff = 0, maxAbs = 0;
      for (let i = 0; i < W.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(e.output![i] - W[i]));
        maxAbs = Math.max(maxAbs, Math.abs(W[i]));
      }
      assert.ok(maxDiff <= 1e-5 * maxAbs, `old output rows moved by ${maxDiff} (max |W| ${maxAbs})`);
      assert.equal(e.output!.length, (WORDS.length + 1) * dOut);
    } finally {
      t.close();
    }
    // the published version: a new one, latest moved, v0 untouched
    const latest = await latestVersionDir(join(run, "embeddings"));
    assert.equal(latest, summary.embeddings.dir);
    const vec = await readWord2VecText(join(latest!, "input.vec"));
    assert.deepEqual(vec.words, [...WORDS, "dog"]);
    const out = await readWord2VecText(join(latest!, "output.vec"));
    assert.equal(out.d, dOut);
    const v0 = await readWord2VecText(join(run, "embeddings", "versions", "v0", "input.vec"));
    assert.deepEqual(v0.words, WORDS);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh trains on the new data and publishes (--keep-versions: the run's older versions removed)", async () => {
  const { run } = await makeRun({ exportOutput: true });
  try {
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT.repeat(5));
    const before = [...Deno.readDirSync(join(run, "embeddings", "versions"))].map((e) => e.name);
    assert.ok(before.length >= 1, "the run published a version");
    const r = await refresh([
      "--from",
      run,
      "--data",
      join(run, "new.txt"),
      "--epochs",
      "1",
      "--eval-dir",
      "none",
      "--formats",
      "vec",
      "--backend",
      "js",
      "--progress",
      "none",
      "--keep-versions",
      "1",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.deepEqual(s.embeddings.removedVersions, before.sort());
    assert.deepEqual([...Deno.readDirSync(join(run, "embeddings", "versions"))].map((e) => e.name), [
      s.embeddings.version,
    ]);
    assert.match(r.stderr, /refresh: removed \d+ old version\(s\) of .* \(--keep-versions 1\)/);
    assert.ok(s.training.steps > 0);
    assert.equal(s.newWords, 4); // dog, ran, to, zebra reach the run's min-count 1
    const t = await Trainer.fromCheckpoint(s.checkpoint, { backend: "js", log: quiet });
    try {
      assert.ok(t.step > 0);
      assert.equal(t.vocab.words.length, WORDS.length + 4);
      // the refresh's own job options, which a later train --resume goes on with
      assert.deepEqual(t.config.formats, ["vec"]);
      assert.equal(t.config.evalDir, "none");
      assert.equal(t.config.exportOutput, false, "no --output-rows: the refresh published no output rows");
    } finally {
      t.close();
    }
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

for (
  const [name, redirect, errno] of [
    ["/dev/full", "> /dev/full", "ENOSPC"],
    ["a closed pipe", "| head -c 10 > /dev/null", "EPIPE"],
  ] as const
) {
  Deno.test(`refresh: stdout to ${name}: one stderr line, the refresh trains and publishes, exit 0 (it failed)`, async () => {
    const { run } = await makeRun();
    try {
      await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT.repeat(5));
      const flags = ["--from", run, "--data", join(run, "new.txt"), "--epochs", "1", "--eval-dir", "none"];
      flags.push("--formats", "vec", "--backend", "js", "--progress", "json");
      const r = await runRedirected("refresh", flags, redirect);
      const stderr = r.stderr;
      assert.equal(r.code, 0, stderr);
      const lines = stderr.split("\n").filter((l) => l.startsWith("stdout:"));
      assert.equal(lines.length, 1, stderr);
      assert.match(
        lines[0],
        new RegExp(`^stdout: cannot write \\(${errno}: .*embeddings/latest has the result$`),
      );
      // the refresh was published: latest is a new version holding the new words
      const latest = await latestVersionDir(join(run, "embeddings"));
      assert.notEqual(latest, join(run, "embeddings", "versions", "v0"));
      const vec = await readWord2VecText(join(latest!, "input.vec"));
      assert.ok(vec.words.includes("zebra"), stderr);
    } finally {
      await Deno.remove(run, { recursive: true });
    }
  });
}

Deno.test("refresh evaluates the sets train does, analogies included: its version's metrics have train's keys", async () => {
  const { run } = await makeRun();
  try {
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT.repeat(5));
    // an evaluation folder of the run's words: both similarity sets and an analogy section
    const evalDir = join(run, "eval");
    await Deno.mkdir(evalDir);
    await Deno.writeTextFile(join(evalDir, "wordsim353.tsv"), "cat\tdog\t7\nmat\tsat\t2\nthe\ta\t5\n");
    await Deno.writeTextFile(
      join(evalDir, "simlex999.txt"),
      "word1\tword2\tPOS\tSimLex999\ncat\tdog\tN\t6\n" +
        "mat\tzebra\tN\t1\nthe\ta\tN\t4\n",
    );
    await Deno.writeTextFile(
      join(evalDir, "questions-words.txt"),
      ": animals\ncat dog mat sat\nthe a cat dog\n",
    );
    const r = await refresh([
      ...["--from", run, "--data", join(run, "new.txt"), "--epochs", "1", "--eval-dir", evalDir],
      ...["--formats", "vec", "--backend", "js", "--progress", "none"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.deepEqual(Object.keys(s.metrics.coverage).sort(), ["analogy", "simlex999", "wordsim353"]);
    assert.ok(s.metrics.analogy >= 0 && s.metrics.analogy <= 1, `analogy ${s.metrics.analogy}`);
    const manifest = JSON.parse(await Deno.readTextFile(join(s.embeddings.dir, "manifest.json")));
    assert.deepEqual(manifest.metrics, s.metrics);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh: the export command it prints when publishing fails carries its --formats, --output-rows and --out", async () => {
  const { run } = await makeRun();
  try {
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT);
    await Deno.writeTextFile(join(run, "a-file"), "");
    const out = join(run, "a-file", "emb");
    const r = await refresh([
      ...["--from", run, "--data", join(run, "new.txt"), "--epochs", "0", "--eval-dir", "none"],
      ...["--formats", "vec", "--output-rows", "--out", out, "--backend", "js", "--progress", "none"],
    ]);
    assert.notEqual(r.code, 0, r.stderr);
    const line = r.stderr.trimEnd().split("\n").at(-1)!;
    const saved = await findLatestCheckpoint(join(run, "checkpoints"));
    assert.ok(
      line.endsWith(
        `is saved: npx deno task export --checkpoint ${saved} --formats vec --output-rows --out ${out}`,
      ),
      line,
    );
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh: CLI errors and their exit codes", async () => {
  const { run } = await makeRun();
  const empty = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT);
    const help = await refresh(["--help"]);
    assert.equal(help.code, 0);
    for (const flag of ["--from", "--data", "--epochs", "--lr", "--min-count", "--out", "--formats"]) {
      assert.ok(help.stdout.includes(flag), flag);
    }
    assert.match(help.stdout, /--epochs <value>.*\(default: 1\)/);
    const cases: [string[], number, RegExp][] = [
      [["--bogus"], 2, /Unknown option '--bogus'/],
      [["--data", "x"], 2, /--from RUN_DIR is required/],
      [["--from", run, "--data", join(run, "new.txt"), "--epochs=-1"], 2, /--epochs must be an integer >= 0/],
      [["--from", run, "--data", join(run, "new.txt"), "--lr", "abc"], 2, /--lr must be a positive number/],
      [["--from", run, "--data", join(run, "new.txt"), "--formats", "csv"], 2, /unknown format "csv"/],
      [["--from", empty, "--data", join(run, "new.txt")], 4, /no checkpoint \(ckpt-\*\.fock\)/],
      [["--from", join(empty, "nope"), "--data", join(run, "new.txt")], 4, /no such run folder/],
      // an output inside the --data folder would make the data a mix of text and published files
      [
        ["--from", run, "--data", empty, "--out", join(empty, "emb")],
        2,
        /^refresh: --out .*emb is inside --data/,
      ],
      [["--from", run, "--data", run], 2, /^refresh: --from .* is inside --data .*: .*put --from outside/],
      [
        ["--from", run, "--data", join(run, "missing.txt"), "--eval-dir", "none"],
        5,
        /missing\.txt: no such file or folder/,
      ],
      [
        [
          "--from",
          run,
          "--data",
          join(run, "new.txt"),
          "--eval-dir",
          "none",
          "--lr",
          "1e6",
          "--backend",
          "js",
        ],
        6,
        /diverged/,
      ],
    ];
    for (const [args, code, re] of cases) {
      const r = await refresh(args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.match(lines[lines.length - 1], re);
    }
    assert.deepEqual([...Deno.readDirSync(empty)], [], "nothing written into --data");
    // a failed refresh left the run as it was
    assert.equal((await listCheckpoints(join(run, "checkpoints"))).length, 1);
    assert.equal(await latestVersionDir(join(run, "embeddings")), join(run, "embeddings", "versions", "v0"));
    await assert.rejects(Deno.stat(join(run, "run.lock")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(run, { recursive: true });
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("refresh --out <from> (the run folder or its checkpoints/) is refused with exit 2 and the run left as it was; export too", async () => {
  const { run } = await makeRun();
  try {
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT);
    const before = [...Deno.readDirSync(run)].map((e) => e.name).sort();
    const common = ["--data", join(run, "new.txt"), "--epochs", "1", "--eval-dir", "none", "--backend", "js"];
    for (const out of [run, `${run}/`, join(run, "checkpoints")]) {
      const r = await refresh(["--from", run, ...common, "--out", out]);
      assert.equal(r.code, 2, `${out}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(
        r.stderr,
        /^refresh: --out .* is (the run folder|inside the checkpoints\/ folder of) --from /,
      );
      assert.ok(r.stderr.includes(`published into ${join(run, "embeddings")}`), r.stderr);
    }
    const ex = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../pipelines/export.ts", import.meta.url).pathname,
        "--checkpoint",
        run,
        "--out",
        run,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(ex.code, 2, new TextDecoder().decode(ex.stderr));
    assert.match(new TextDecoder().decode(ex.stderr), /^export: --out .* is the run folder --checkpoint /m);
    // another run's folder, or its corpus/: refused too (it published versions/ and latest beside that run's
    // checkpoints, without its lock), by refresh and by export of a checkpoint or of a vector file
    const other = join(run, "other-run");
    await Deno.mkdir(join(other, "checkpoints"), { recursive: true });
    await Deno.writeTextFile(join(other, "summary.json"), "{}");
    await Deno.writeTextFile(join(run, "v.vec"), "1 2\nthe 1 2\n");
    for (const out of [other, join(other, "corpus")]) {
      for (
        const [job, r] of [
          ["refresh", await refresh(["--from", run, ...common, "--out", out])],
          ["export", await exportJob(["--checkpoint", run, "--out", out])],
          ["export", await exportJob(["--vectors", join(run, "v.vec"), "--out", out])],
        ] as const
      ) {
        assert.equal(r.code, 2, `${job} --out ${out}: ${r.stderr}`);
        assert.match(
          r.stderr.trim(),
          new RegExp(
            `^${job}: --out .* is (the run folder|inside the corpus/ folder of the run) .*other-run: `,
          ),
        );
        assert.ok(
          r.stderr.includes(`publish that run's embeddings into ${join(other, "embeddings")}`),
          r.stderr,
        );
      }
    }
    assert.deepEqual([...Deno.readDirSync(other)].map((e) => e.name).sort(), ["checkpoints", "summary.json"]);
    await Deno.remove(other, { recursive: true });
    await Deno.remove(join(run, "v.vec"));
    // nothing of the run was touched: no versions/ or latest at its root, one checkpoint, latest still v0
    assert.deepEqual([...Deno.readDirSync(run)].map((e) => e.name).sort(), before);
    assert.deepEqual((await listCheckpoints(join(run, "checkpoints"))).length, 1);
    assert.equal(await latestVersionDir(join(run, "embeddings")), join(run, "embeddings", "versions", "v0"));
    // the default (and --out <from>/embeddings, the same) publishes where the run's versions are
    const ok = await refresh([
      "--from",
      run,
      ...common,
      "--out",
      join(run, "embeddings"),
      "--formats",
      "vec",
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.notEqual(
      await latestVersionDir(join(run, "embeddings")),
      join(run, "embeddings", "versions", "v0"),
    );
    assert.deepEqual([...Deno.readDirSync(run)].map((e) => e.name).sort(), before);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh --out OTHER cleans OTHER's versions left by killed publishers (a dead pid's), not a pid-less one", async () => {
  const { run } = await makeRun();
  const other = await Deno.makeTempDir({ prefix: "refresh_out_" });
  try {
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT);
    await Deno.mkdir(join(other, "versions", "v1.999999999-deadbeef.tmp"), { recursive: true });
    await Deno.mkdir(join(other, "versions", "v0.tmp")); // no pid: nothing tells whose (no lock on OTHER)
    const r = await refresh([
      ...["--from", run, "--data", join(run, "new.txt"), "--epochs", "0", "--eval-dir", "none"],
      ...["--formats", "vec", "--backend", "js", "--progress", "none", "--out", other],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /removed temporary files left by killed jobs: .*v1\.999999999-deadbeef\.tmp/);
    const left = [...Deno.readDirSync(join(other, "versions"))].map((e) => e.name).sort();
    assert.equal(left.length, 2, left.join(", "));
    assert.ok(left.includes("v0.tmp") && !left.includes("v1.999999999-deadbeef.tmp"), left.join(", "));
  } finally {
    await Deno.remove(run, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});

/** `lines` lines of 8 words drawn (seeded) from the run's words and `extra` new ones. */
function wordsText(lines: number, seed: number, extra: string[]): string {
  const pool = [...WORDS, ...extra];
  let s = seed >>> 0;
  const pick = () => pool[(s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % pool.length];
  return Array.from({ length: lines }, () => Array.from({ length: 8 }, pick).join(" ")).join("\n") + "\n";
}

/** A refresh of `run` on `data` long enough to be stopped in its training (js backend, vec only). */
const longArgs = (run: string, data: string, ...more: string[]) => [
  ...["--from", run, "--data", data, "--epochs", "30", "--min-count", "1", "--eval-dir", "none"],
  ...["--formats", "vec", "--backend", "js", "--progress", "none", ...more],
];

/** Runs the refresh `args` and stops it by SIGTERM after its first epoch: exit 9, its staging kept. */
async function stoppedRefresh(args: string[]): Promise<void> {
  const p = spawnJob("refresh", args);
  await p.seen(/"event":"epoch"/);
  p.kill("SIGTERM");
  const r = await p.done;
  assert.equal(r.code, EXIT.stopped, r.stderr);
  assert.match(r.stderr, /refresh: stopped by SIGTERM at step \d+: .* is unchanged; continue with: /);
}

/** The published input vectors of a run, and the figures of the refresh's log and JSON line. */
async function outcome(run: string, r: { code: number; stdout: string; stderr: string }) {
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  const latest = (await latestVersionDir(join(run, "embeddings")))!;
  const manifest = JSON.parse(await Deno.readTextFile(join(latest, "manifest.json")));
  await assert.rejects(Deno.stat(join(run, "refresh-staging")), Deno.errors.NotFound);
  return {
    vec: await Deno.readTextFile(join(latest, "input.vec")),
    lines: r.stderr.split("\n").filter((l) => /^refresh: (step \d+|\d+ new words)/.test(l)),
    newWords: [s.newWords, manifest.refresh.newWords, manifest.refresh.previousVocabularySize],
    checkpoint: s.checkpoint.slice(s.checkpoint.lastIndexOf("/")),
  };
}

Deno.test("refresh stopped, then the same command: continued to the uninterrupted result and figures (text, and shards without manifest.json); over data changed at the same path it starts over", async () => {
  const { run: a } = await makeRun();
  const copy = async (name: string) => {
    const to = `${a}-${name}`;
    assert.equal((await new Deno.Command("cp", { args: ["-r", a, to] }).output()).code, 0);
    return to;
  };
  const [b, c, d, e] = [await copy("b"), await copy("c"), await copy("d"), await copy("e")];
  try {
    const one = wordsText(300, 1, ["dog", "zebra"]), two = wordsText(300, 2, ["yak", "owl", "emu"]);
    const text = join(a, "new.txt");
    // uninterrupted on the second text, and on shards of it without manifest.json
    await Deno.writeTextFile(text, two);
    const full = await outcome(a, await refresh(longArgs(a, text)));
    assert.deepEqual(full.newWords, [3, 3, WORDS.length]);
    const spark = join(a, "spark");
    await prepareCorpus({ input: text, outDir: spark, mode: "skipgram", window: 2, minCount: 1, seed: 3 });
    await Deno.remove(join(spark, "manifest.json"));
    const fullShards = await outcome(b, await refresh(longArgs(b, spark)));
    // stopped and continued: the same vectors, checkpoint and figures (new words, the step it started from)
    await stoppedRefresh(longArgs(c, text));
    const again = await refresh(longArgs(c, text));
    assert.match(again.stderr, /^refresh: continuing the refresh stopped at /m);
    assert.deepEqual(await outcome(c, again), full);
    await stoppedRefresh(longArgs(d, spark));
    const shards = await refresh(longArgs(d, spark));
    assert.match(shards.stderr, /^refresh: continuing the refresh stopped at /m);
    assert.deepEqual(await outcome(d, shards), fullShards);
    // stopped on the first text, which is then replaced at the same path by the second: started over
    await Deno.writeTextFile(text, one);
    await stoppedRefresh(longArgs(e, text));
    await Deno.writeTextFile(text, two);
    const changed = await refresh(longArgs(e, text));
    assert.doesNotMatch(changed.stderr, /continuing the refresh/);
    assert.match(
      changed.stderr,
      /^refresh: --data \S+new\.txt changed since the refresh in \S+ was stopped \(\S+new\.txt changed (size|content)/m,
    );
    const restarted = await outcome(e, changed);
    assert.deepEqual(restarted, full);
    assert.doesNotMatch(restarted.vec, /^(dog|zebra) /m);
  } finally {
    for (const r of [a, b, c, d, e]) await Deno.remove(r, { recursive: true });
  }
});

Deno.test("refresh over a prepared corpus prepared again at the same path after a stop: started over on the new corpus", async () => {
  const { run: a } = await makeRun();
  const b = `${a}-b`;
  assert.equal((await new Deno.Command("cp", { args: ["-r", a, b] }).output()).code, 0);
  try {
    const corpus = join(a, "prepared");
    const prepare = async (text: string) => {
      await Deno.writeTextFile(join(a, "t.txt"), text);
      await Deno.remove(corpus, { recursive: true }).catch(() => {});
      await prepareCorpus({
        input: join(a, "t.txt"),
        outDir: corpus,
        mode: "skipgram",
        window: 2,
        minCount: 1,
        seed: 3,
      });
    };
    await prepare(wordsText(300, 4, ["yak", "owl"]));
    const full = await outcome(a, await refresh(longArgs(a, corpus)));
    await prepare(wordsText(300, 3, ["dog", "zebra", "emu"]));
    await stoppedRefresh(longArgs(b, corpus));
    await prepare(wordsText(300, 4, ["yak", "owl"]));
    const r = await refresh(longArgs(b, corpus));
    assert.match(
      r.stderr,
      /^refresh: --data \S+prepared changed since the refresh in \S+ was stopped \(it was prepared again\); removing it and starting over on the new data$/m,
    );
    assert.deepEqual(await outcome(b, r), full);
  } finally {
    for (const r of [a, b]) await Deno.remove(r, { recursive: true });
  }
});

Deno.test("refresh whose checkpoint was saved but not published: the same command publishes it instead of training again; once published it has nothing to do; with other data it trains", async () => {
  const { run } = await makeRun();
  try {
    const text = join(run, "new.txt");
    await Deno.writeTextFile(text, wordsText(100, 5, ["dog", "zebra"]));
    await Deno.writeTextFile(join(run, "a-file"), "");
    const out = join(run, "a-file", "emb");
    const args = [...longArgs(run, text, "--out", out)].map((x) => x === "30" ? "2" : x);
    const failed = await refresh(args);
    assert.ok([EXIT.exportFailed, EXIT.io].includes(failed.code as 7 | 8), failed.stderr);
    const saved = (await findLatestCheckpoint(join(run, "checkpoints")))!;
    // the publication root can be made now: the rerun publishes the saved checkpoint, no training
    await Deno.remove(join(run, "a-file"));
    const r = await refresh(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^refresh: the run's newest checkpoint ${saved} is this refresh of --data \\S+ \\(the same content\\), not published in ${out}; publishing it instead of training again$`,
        "m",
      ),
    );
    assert.doesNotMatch(r.stderr, /"event":"epoch"|refresh: checkpoint /);
    const s = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.equal(s.checkpoint, saved);
    assert.equal(s.newWords, 2); // dog, zebra: the refresh's figures, not the saved checkpoint's
    const manifest = JSON.parse(
      await Deno.readTextFile(join((await latestVersionDir(out))!, "manifest.json")),
    );
    assert.deepEqual([manifest.refresh.newWords, manifest.refresh.previousVocabularySize], [2, WORDS.length]);
    assert.equal((await listCheckpoints(join(run, "checkpoints"))).at(-1), saved);
    const t = await Trainer.fromCheckpoint(saved, { backend: "js", log: quiet });
    try {
      const vec = await readWord2VecText(join((await latestVersionDir(out))!, "input.vec"));
      assert.deepEqual(vec.words, t.vocab.words);
      const e = (await t.embeddings()).input;
      assert.deepEqual(Array.from(vec.vectors.subarray(0, 6)), Array.from(e.subarray(0, 6)));
    } finally {
      t.close();
    }
    // published now: the same command again (a scheduler's retry) would apply the data twice: nothing to do
    const versions = async () => (await Array.fromAsync(Deno.readDir(join(out, "versions")))).length;
    const published = await versions();
    const next = await refresh(args);
    assert.equal(next.code, 0, next.stderr);
    assert.match(
      next.stderr,
      /refresh: the run's newest checkpoint .* is this refresh of --data .* holds it: nothing to do/,
    );
    assert.doesNotMatch(next.stderr, /refresh: checkpoint /);
    assert.equal((await listCheckpoints(join(run, "checkpoints"))).at(-1), saved);
    assert.equal(await versions(), published);
    const unchanged = JSON.parse(next.stdout.trim().split("\n").at(-1)!);
    assert.deepEqual([unchanged.unchanged, unchanged.checkpoint], [true, saved]);
    // another --epochs is another request: it trains
    const again = await refresh(args.map((x, i) => args[i - 1] === "--epochs" ? "3" : x));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /refresh: checkpoint /);
    assert.notEqual((await listCheckpoints(join(run, "checkpoints"))).at(-1), saved);
    // unpublished again (another root), but other data: it trains
    await Deno.writeTextFile(text, wordsText(100, 6, ["dog", "zebra"]));
    const other = await refresh([...args.slice(0, -2), "--out", join(run, "other")]);
    assert.equal(other.code, 0, other.stderr);
    assert.doesNotMatch(other.stderr, /instead of training again/);
    assert.match(other.stderr, /refresh: checkpoint /);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh stopped while it prepares its data leaves no refresh-staging folder", async () => {
  const { run } = await makeRun();
  try {
    const text = join(run, "big.txt");
    await Deno.writeTextFile(text, wordsText(200_000, 7, ["dog"]));
    const p = spawnJob("refresh", longArgs(run, text));
    await p.seen(/refresh: preparing /);
    p.kill("SIGTERM");
    const r = await p.done;
    assert.equal(r.code, EXIT.stopped, r.stderr);
    assert.match(r.stderr, /refresh: stopped by SIGTERM; nothing partial was left/);
    await assert.rejects(Deno.stat(join(run, "refresh-staging")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh from prepared shards; two refreshes at once: one runs, the other exits 3 or runs after it", async () => {
  const { run } = await makeRun();
  try {
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT.repeat(3));
    const shards = join(run, "shards");
    await prepareCorpus({
      input: join(run, "new.txt"),
      outDir: shards,
      mode: "skipgram", // the run's mode (resolveConfig's default)
      window: 2,
      minCount: 4,
      seed: 3,
    });
    const args = [
      "--from",
      run,
      "--data",
      shards,
      "--epochs",
      "1",
      "--eval-dir",
      "none",
      "--formats",
      "vec",
      "--backend",
      "js",
      "--progress",
      "none",
    ];
    const [a, b] = await Promise.all([refresh(args), refresh(args)]);
    const codes = [a.code, b.code].sort();
    assert.ok(
      codes[0] === 0 && (codes[1] === 0 || codes[1] === 3),
      `exit codes ${codes}: ${a.stderr} ${b.stderr}`,
    );
    for (const r of [a, b]) {
      if (r.code === 3) assert.match(r.stderr, /refresh: locked: /);
      else {
        const s = JSON.parse(r.stdout.trim().split("\n").pop()!);
        assert.ok(s.training.steps > 0);
      }
    }
    const t = await Trainer.fromCheckpoint((await findLatestCheckpoint(join(run, "checkpoints")))!, {
      backend: "js",
      log: quiet,
    });
    try {
      // "dog" (9×) is new; ran, to, zebra (3×) were dropped by the shards' own min-count 4
      assert.deepEqual(t.vocab.words, [...WORDS, "dog"]);
    } finally {
      t.close();
    }
    await assert.rejects(Deno.stat(join(run, "run.lock")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh takes new counts from the DuckDB engine: --engine duckdb, and Spark-shaped shards with vocab.tsv", async () => {
  const { run } = await makeRun();
  try {
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT);
    const base = ["--from", run, ..."--eval-dir none --formats vec --backend js --progress none".split(" ")];
    const duck = "--engine duckdb --memory-limit 200MB --epochs 0 --min-count 2".split(" ");
    const r = await refresh([...base, "--data", join(run, "new.txt"), ...duck]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.trim().split("\n").pop()!).newWords, 1); // "dog", as the built-in engine
    // a finished cluster job's folder: shards and vocab.tsv, no manifest.json
    const spark = join(run, "spark");
    await prepareCorpusDuckdb({
      input: join(run, "new.txt"),
      outDir: spark,
      mode: "skipgram",
      window: 2,
      minCount: 1,
      seed: 3,
      threads: 2,
    });
    await Deno.remove(join(spark, "manifest.json"));
    await Deno.writeTextFile(join(spark, "_SUCCESS"), "");
    const s = await refresh([...base, "--data", spark, "--epochs", "1", "--min-count", "1"]);
    assert.equal(s.code, 0, s.stderr);
    const summary = JSON.parse(s.stdout.trim().split("\n").pop()!);
    assert.equal(summary.newWords, 3); // ran, to, zebra: once each in the engine's vocab.tsv
    assert.match(s.stderr, /has no manifest\.json/);
    const bad = await refresh([...base, "--data", join(run, "new.txt"), "--memory-limit", "1GB"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--memory-limit needs --engine duckdb/);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("after a kill -9 of train --overwrite, refresh and export put the moved-aside checkpoints back under the lock", async () => {
  // they said "no checkpoint" (exit 4) while the run's checkpoints sat in checkpoints.<pid>-<rand>.old.tmp,
  // which only a train job put back
  const { run } = await makeRun();
  try {
    await Deno.writeTextFile(join(run, "new.txt"), NEW_TEXT);
    const ckDir = join(run, "checkpoints");
    const old = await listCheckpoints(ckDir);
    const bytes = await Promise.all(old.map((p) => Deno.readFile(p)));
    const dead = new Deno.Command("true").spawn();
    await dead.status; // a pid that no longer runs: the killed --overwrite run's
    const aside = join(run, `checkpoints.${dead.pid}-0badf00d.old.tmp`);
    const back = new RegExp(`wrote no checkpoint: the 1 old checkpoint\\(s\\) are back in ${ckDir}`);
    for (
      const job of [
        () => exportJob(["--checkpoint", run, "--formats", "vec", "--backend", "js"]),
        () =>
          refresh([
            ...["--from", run, "--data", join(run, "new.txt"), "--epochs", "0", "--eval-dir", "none"],
            ...["--formats", "vec", "--backend", "js", "--progress", "none"],
          ]),
      ]
    ) {
      await Deno.rename(ckDir, aside);
      const r = await job();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, back);
      await assert.rejects(Deno.stat(aside), Deno.errors.NotFound);
      const now = await listCheckpoints(ckDir);
      assert.ok(old.every((p) => now.includes(p)), `${now}`);
      assert.deepEqual(await Promise.all(old.map((p) => Deno.readFile(p))), bytes, "the old ones, unchanged");
    }
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});
