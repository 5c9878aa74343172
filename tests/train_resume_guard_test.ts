// What `deno task train --resume` refuses before it touches a run folder (lib/train/run.ts): a checkpoint
// of a moved run folder resumed into the folder its checkpoint saved, which now holds another run; an
// older checkpoint than the newest of the run folder it continues in (two timelines); fewer --epochs than
// the run has done; and the stale-temporary cleanup in a folder that is not a run. The jobs run in this
// process (runTrainJob) on 20,000 Brown tokens, js backend, d = 16.
import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT, exitCodeFor } from "../lib/core/exit_codes.ts";
import { listCheckpoints, readCheckpoint } from "../lib/train/checkpoint.ts";
import { parseTrainArgs } from "../lib/train/cli.ts";
import { runTrainJob } from "../lib/train/run.ts";

const ROOT = await Deno.makeTempDir({ prefix: "train_resume_guard_" });
const Q = [
  "--limit-tokens",
  "20000",
  "--dim",
  "16",
  "--eval-dir",
  "none",
  "--formats",
  "vec",
  "--backend",
  "js",
  "--progress",
  "none",
  "--checkpoint-minutes",
  "0",
];
const lines: string[] = [];

/** One train job in this process: its exit code and its log lines (the error's message last). */
async function train(argv: string[]): Promise<{ code: number; log: string[]; last: string }> {
  lines.length = 0;
  const io = { out: () => {}, err: (l: string) => void lines.push(l), tty: false };
  try {
    await runTrainJob(await parseTrainArgs(argv), io);
    return { code: 0, log: [...lines], last: "" };
  } catch (e) {
    return { code: exitCodeFor(e), log: [...lines], last: (e as Error).message };
  }
}

/** A train job of `epochs` into `out` with a checkpoint every `every` steps, all of them kept (up to 20). */
function trainKeeping(out: string, epochs: string, every: string) {
  return train([
    ...Q,
    "--epochs",
    epochs,
    "--checkpoint-every",
    every,
    "--keep-checkpoints",
    "20",
    "--out",
    out,
  ]);
}

/** Every file under `dir` with its bytes, for "nothing there changed". */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) m.set(p, await hash(p));
      else if (e.isSymlink) m.set(p, await Deno.readLink(p));
    }
  };
  await walk(dir);
  return m;
}

async function hash(p: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(p));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("train --resume <moved run>/checkpoints/<file> resumes into the moved folder; a loose copy whose saved folder holds another run is refused (exit 2)", async () => {
  const x = join(ROOT, "moved"), latest = join(x, "latest"), old = join(x, "old");
  const a = await train([...Q, "--epochs", "2", "--checkpoint-every", "20", "--out", latest]);
  assert.equal(a.code, 0, a.last);
  await Deno.rename(latest, old);
  const b = await train([...Q, "--epochs", "2", "--checkpoint-every", "20", "--seed", "7", "--out", latest]);
  assert.equal(b.code, 0, b.last);
  const runB = await snapshot(latest);
  const file = (await listCheckpoints(join(old, "checkpoints"))).pop()!;
  // a loose copy of A's checkpoint: its saved folder (latest) now holds run B
  const loose = join(x, "copy.fock");
  await Deno.copyFile(file, loose);
  const refused = await train(["--resume", loose, "--epochs", "3"]);
  assert.equal(refused.code, EXIT.usage, refused.last);
  assert.match(
    refused.last,
    /^--resume .*copy\.fock: the run folder saved in it, .*\/latest, now holds another run \(\d+ checkpoint\(s\), .*published embeddings; or this run went on past step \d+ and pruned it\).*give --out OTHER/,
  );
  assert.deepEqual(await snapshot(latest), runB, "run B untouched");
  // a file of the moved folder's checkpoints/ continues the moved run there
  const r = await train(["--resume", file, "--epochs", "3"]);
  assert.equal(r.code, 0, r.last);
  assert.deepEqual(await snapshot(latest), runB, "run B untouched");
  const olds = await listCheckpoints(join(old, "checkpoints"));
  assert.ok(olds.at(-1)! > file, `A went on in ${old}: ${olds.join(", ")}`);
  // the same as resuming the folder: a loose copy of the moved run's newest with --out old continues it
  const newest = olds.at(-1)!;
  await Deno.copyFile(newest, loose);
  const again = await train(["--resume", loose, "--out", old, "--epochs", "3"]);
  assert.equal(again.code, 0, again.last);
});

Deno.test("train --resume <older checkpoint> into the run folder holding later ones is refused (exit 2), naming the newest", async () => {
  const out = join(ROOT, "timeline");
  const a = await trainKeeping(out, "2", "20");
  assert.equal(a.code, 0, a.last);
  const ckpts = await listCheckpoints(join(out, "checkpoints"));
  assert.ok(ckpts.length > 2, ckpts.join(", "));
  const before = await snapshot(out);
  for (const args of [[], ["--out", out]]) {
    const r = await train(["--resume", ckpts[1], ...args, "--epochs", "3"]);
    assert.equal(r.code, EXIT.usage, r.last);
    assert.match(
      r.last,
      new RegExp(
        `^--resume .*${ckpts[1].split("/").pop()} is at step \\d+, but .* holds a later checkpoint, ` +
          `.*${
            ckpts.at(-1)!.split("/").pop()!.replace(".", "\\.")
          }: .*--out OTHER.*remove the checkpoints after step`,
      ),
    );
  }
  assert.deepEqual(await snapshot(out), before, "nothing written");
  // into another folder it goes on; the newest file itself, or the folder, continues in place
  const other = await train(["--resume", ckpts[1], "--out", join(ROOT, "timeline-b"), "--epochs", "3"]);
  assert.equal(other.code, 0, other.last);
  const newest = await train(["--resume", ckpts.at(-1)!, "--epochs", "3"]);
  assert.equal(newest.code, 0, newest.last);
});

Deno.test("train --resume with --epochs below the epochs done (or the epoch in progress) is refused (exit 2)", async () => {
  const out = join(ROOT, "epochs");
  const a = await train([...Q, "--epochs", "3", "--out", out]);
  assert.equal(a.code, 0, a.last);
  const before = await snapshot(out);
  const r = await train(["--resume", out, "--epochs", "2"]);
  assert.equal(r.code, EXIT.usage, r.last);
  assert.match(
    r.last,
    /^--epochs 2: the run of --resume .* has completed 3 epoch\(s\); give --epochs 3 or more/,
  );
  assert.deepEqual(await snapshot(out), before, "nothing written");
  // a checkpoint in the middle of epoch 2, copied elsewhere (its run's newest is later)
  const mid = join(ROOT, "epochs-mid");
  const m = await trainKeeping(mid, "3", "100");
  assert.equal(m.code, 0, m.last);
  const ckpts = await listCheckpoints(join(mid, "checkpoints"));
  let inSecond: string | undefined, firstEnd: string | undefined;
  for (const c of ckpts) {
    const run = (await readCheckpoint(c)).meta.run as { epoch: number; epochCount: number };
    if (run.epoch === 1 && run.epochCount > 0) inSecond = c;
    if (run.epoch === 1 && run.epochCount === 0) firstEnd = c;
  }
  assert.ok(firstEnd, `the checkpoint of epoch 1's end among ${ckpts.join(", ")}`);
  assert.ok(inSecond, `a checkpoint in epoch 2 among ${ckpts.join(", ")}`);
  const one = await train(["--resume", inSecond!, "--out", join(ROOT, "epochs-mid-b"), "--epochs", "1"]);
  assert.equal(one.code, EXIT.usage, one.last);
  assert.match(
    one.last,
    /^--epochs 1: .* has completed 1 epoch\(s\) and is in epoch 2; give --epochs 2 or more/,
  );
  const two = await train(["--resume", inSecond!, "--out", join(ROOT, "epochs-mid-b"), "--epochs", "2"]);
  assert.equal(two.code, 0, two.last);
  // at epoch 1's end no later epoch has begun: --epochs 1 finishes there
  const end = await train(["--resume", firstEnd!, "--out", join(ROOT, "epochs-mid-c"), "--epochs", "1"]);
  assert.equal(end.code, 0, end.last);
});

Deno.test("train --resume/--out of a folder that is not a run leaves its other *.<pid>-<rand>.tmp entries", async () => {
  const n = join(ROOT, "not-a-run");
  const odd = join(n, "data.1234-abcdef01.tmp");
  await Deno.mkdir(odd, { recursive: true });
  await Deno.writeTextFile(join(odd, "precious"), "keep\n");
  const r = await train(["--resume", n]);
  assert.equal(r.code, EXIT.noCheckpoint, r.last);
  assert.equal(await Deno.readTextFile(join(odd, "precious")), "keep\n");
  assert.ok(!r.log.some((l) => /cleanup: removed/.test(l)), r.log.join("\n"));
  // a run's own leftover (a dead pid's corpus temporary) is still removed, the other kept
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  const dead = join(n, `corpus.${gone.pid}-abcdef01.tmp`);
  await Deno.mkdir(dead);
  const t = await train([...Q, "--epochs", "1", "--out", n]);
  assert.equal(t.code, 0, t.last);
  assert.ok(t.log.some((l) => /cleanup: removed 1 .*corpus\.\d+-abcdef01\.tmp/.test(l)), t.log.join("\n"));
  assert.equal(await Deno.readTextFile(join(odd, "precious")), "keep\n");
});

Deno.test("train: a model whose arrays cannot be allocated is exit 2 naming --dim/--hidden and the memory; --dim 100000 is refused", async () => {
  const out = join(ROOT, "huge");
  lines.length = 0;
  const io = { out: () => {}, err: (l: string) => void lines.push(l), tty: false };
  const createHead = () => Promise.reject(new RangeError("Array buffer allocation failed"));
  const noDim = Q.filter((_, i) => Q[i] !== "--dim" && Q[i - 1] !== "--dim");
  const args = await parseTrainArgs([...noDim, "--dim", "8192", "--hidden", "4096", "--out", out]);
  const e = await runTrainJob(args, io, { createHead }).then(() => undefined, (e) => e);
  assert.equal(exitCodeFor(e), EXIT.usage, String(e?.stack));
  assert.match(
    e.message,
    /^--dim 8192 --hidden 4096: the model over \d+ words needs about \d+\.\d GiB, which could not be allocated \(Array buffer allocation failed\); lower --dim or --hidden$/,
  );
  const wide = await train([...noDim, "--dim", "100000", "--out", out]);
  assert.equal(wide.code, EXIT.usage, wide.last);
  assert.match(wide.last, /^--dim must be an integer ≥ 1 and ≤ 8192, got '100000'/);
});

Deno.test("train --resume of a finished run publishes nothing again while latest holds its vectors; other formats or a damaged latest publish", async () => {
  const out = join(ROOT, "finished");
  const versions = async () =>
    (await Array.fromAsync(Deno.readDir(join(out, "embeddings", "versions")))).length;
  const latestOf = () => Deno.readLink(join(out, "embeddings", "latest"));
  const a = await train([...Q, "--epochs", "1", "--out", out]);
  assert.equal(a.code, 0, a.last);
  const first = await latestOf();
  const before = await snapshot(join(out, "embeddings"));
  const again = await train(["--resume", out]);
  assert.equal(again.code, 0, again.last);
  assert.ok(
    again.log.some((l) => /holds this run's vectors already .* nothing published again/.test(l)),
    again.log.join("\n"),
  );
  assert.deepEqual(await snapshot(join(out, "embeddings")), before, "no version added, latest unchanged");
  const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
  assert.equal(summary.embeddings.dir, join(out, "embeddings", first));
  assert.equal(summary.training.thisInvocation.steps, 0);
  // other formats: a version that holds them
  const arrow = await train(["--resume", out, "--formats", "vec,arrow"]);
  assert.equal(arrow.code, 0, arrow.last);
  assert.equal(await versions(), 2);
  const second = await latestOf();
  assert.notEqual(second, first);
  assert.ok((await Deno.stat(join(out, "embeddings", second, "input.arrow"))).isFile);
  // the formats are carried: the next plain resume has nothing to publish
  assert.equal((await train(["--resume", out])).code, 0);
  assert.equal(await versions(), 2);
  // on another backend: the change is logged (it was not: the trainer had taken the --backend already), and
  // the checkpoint's vectors are the same, so nothing is published either
  const blas = await train(["--resume", out, "--backend", "blas"]);
  assert.equal(blas.code, 0, blas.last);
  assert.ok(
    blas.log.some((l) => /^resume: backend: js → blas: the result matches/.test(l)),
    blas.log.join("\n"),
  );
  assert.equal(await versions(), 2);
  // a latest whose file was cut short is not taken as holding the vectors
  await Deno.truncate(join(out, "embeddings", second, "input.vec"), 10);
  const repaired = await train(["--resume", out]);
  assert.equal(repaired.code, 0, repaired.last);
  assert.equal(await versions(), 3);
  assert.notEqual(await latestOf(), second);
});

Deno.test("train --resume --keep-versions 1 that publishes removes the older version at once (it waited 60 s on its own publication lock)", async () => {
  const out = join(ROOT, "keep-versions");
  assert.equal((await train([...Q, "--epochs", "1", "--out", out])).code, 0);
  const t0 = performance.now();
  const r = await train(["--resume", out, "--epochs", "2", "--keep-versions", "1"]);
  assert.equal(r.code, 0, r.last);
  assert.ok(r.log.some((l) => /removed 1 old version\(s\)/.test(l)), r.log.join("\n"));
  assert.ok(!r.log.some((l) => /not removed/.test(l)), r.log.join("\n"));
  assert.equal((await Array.fromAsync(Deno.readDir(join(out, "embeddings", "versions")))).length, 1);
  assert.ok(performance.now() - t0 < 30_000, "no wait on its own lock");
});
