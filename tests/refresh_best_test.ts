// `deno task refresh` from a finished --keep-best run whose best epoch is not its last (pipelines/refresh.ts,
// lib/train/best.ts continuation): the run published its best epoch (best.fock), and the refresh goes on from
// those vectors, not from the last epoch's; its steps are numbered on from the run's newest checkpoint, so the
// refreshed checkpoint is the run's newest (pruning keeps it, export publishes it, train --resume and the next
// refresh take it), also with --epochs 0 and after a stop. Child processes of pipelines/train.ts and refresh.ts
// on the first 8,000 tokens of Brown, js backend (bit-exact), at a constant lr high enough that the
// validation loss is lowest after epoch 1 of 3.
import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT } from "../lib/core/exit_codes.ts";
import { BEST_CHECKPOINT, continuation, publishedCheckpoint } from "../lib/train/best.ts";
import { type Checkpoint, checkpointStep, listCheckpoints, readCheckpoint } from "../lib/train/checkpoint.ts";
import type { TrainConfig } from "../lib/train/config.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { type Run as Result, spawnJob as spawn } from "./child.ts";
import { flakyHeads, memoryReader, ringCorpus, ringVocab, smallConfig } from "./train_fakes.ts";

const dec = new TextDecoder();
const ROOT = await Deno.makeTempDir({ prefix: "refresh_best_" });
globalThis.addEventListener("unload", () => Deno.removeSync(ROOT, { recursive: true }));
const DIM = 16;

const job = (name: string, args: string[]) => spawn(name, args).done;
const lastLine = (r: Result) => r.stderr.trim().split("\n").at(-1)!;
const summaryOf = (r: Result) => JSON.parse(r.stdout.trim().split("\n").at(-1)!);

// the base run: 3 epochs, the validation loss lowest after the first (26.8, 28.5, 29.7), one checkpoint kept
const BASE = join(ROOT, "base");
const BASE_ARGS = [
  ...["--backend", "js", "--limit-tokens", "8000", "--min-count", "2", "--epochs", "3", "--lr", "0.05"],
  ...["--schedule", "constant", "--dim", String(DIM), "--batch", "8", "--keep-best", "true"],
  ...["--keep-checkpoints", "1", "--eval-dir", "none", "--formats", "vec", "--progress", "none"],
];
const base = await job("train", [...BASE_ARGS, "--out", BASE]);
assert.equal(base.code, 0, base.stderr);
assert.equal(summaryOf(base).embeddings.epoch, 1, `the base run publishes epoch 1 of 3: ${base.stderr}`);
const BASE_LAST = (await listCheckpoints(join(BASE, "checkpoints"))).at(-1)!;
const LAST_STEP = checkpointStep(BASE_LAST)!;
const WORDS = ((await readCheckpoint(BASE_LAST)).meta.vocab as { words: string[] }).words;

/**
 * Text of `lines` lines of 10 words drawn from the run's plain words of id < `below` (the more frequent ones;
 * the others stay out of it, their input vectors untouched by the refresh) and two new words.
 */
function newText(below: number, lines: number, seed: number): string {
  const pool = WORDS.slice(0, below).filter((w) => /^[a-z]+$/.test(w));
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const ws: string[] = [];
    for (let j = 0; j < 10; j++) {
      const r = rnd();
      ws.push(r < 0.03 ? "zzdog" : r < 0.05 ? "zzcat" : pool[Math.floor(rnd() * pool.length)]);
    }
    out.push(ws.join(" "));
  }
  return out.join("\n") + "\n";
}
const HALF = Math.floor(WORDS.length / 2), QUARTER = Math.floor(WORDS.length / 4);
const NEW1 = join(ROOT, "new1.txt"), NEW2 = join(ROOT, "new2.txt");
await Deno.writeTextFile(NEW1, newText(HALF, 400, 1));
await Deno.writeTextFile(NEW2, newText(QUARTER, 400, 2));

/** A copy of the base run. */
async function copyRun(name: string): Promise<string> {
  const run = join(ROOT, name);
  const r = await new Deno.Command("cp", { args: ["-r", BASE, run] }).output();
  assert.equal(r.code, 0, dec.decode(r.stderr));
  return run;
}

const refreshArgs = (run: string, data: string, ...more: string[]) => [
  ...["--from", run, "--data", data, "--backend", "js", "--eval-dir", "none", "--formats", "vec"],
  ...["--progress", "none", ...more],
];

/** Input vectors (E) of a checkpoint file. */
async function inputOf(file: string): Promise<Float32Array> {
  return (await readCheckpoint(file)).arrays["model.E"] as Float32Array;
}

/** The ids (< `n`) whose rows of E are the same bits in `a` and `b`. */
function sameRows(a: Float32Array, b: Float32Array, n: number): Set<number> {
  const same = new Set<number>();
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length),
    ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < n; i++) {
    let k = 0;
    while (k < DIM && ua[i * DIM + k] === ub[i * DIM + k]) k++;
    if (k === DIM) same.add(i);
  }
  return same;
}

/** Fails naming the first byte where two byte strings differ. */
function sameBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (i < a.length || i < b.length) {
    assert.fail(`${what}: differ at byte ${i} (${a.length} and ${b.length} bytes)`);
  }
}

/** Fails naming the first element where two arrays' bits differ (deepEqual's diff of large arrays takes long). */
function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  const rows = sameRows(a, b, a.length / DIM);
  if (rows.size < a.length / DIM) assert.fail(`${what}: ${a.length / DIM - rows.size} rows differ`);
}

/** The ids of words that the text `file` does not hold. */
async function absentFrom(file: string): Promise<number[]> {
  const seen = new Set((await Deno.readTextFile(file)).split(/\s+/));
  return WORDS.map((w, i) => seen.has(w) ? -1 : i).filter((i) => i >= 0);
}

/** The line that names the checkpoint a refresh starts from, and why. */
const STARTS_FROM_BEST = (run: string) =>
  new RegExp(
    `^refresh: starting from ${run}/checkpoints/best\\.fock \\(epoch 1, the one the run published: its lowest ` +
      `validation loss, --keep-best; the newest checkpoint ${BASE_LAST.replace(BASE, run)} is epoch 3; the ` +
      `refresh's steps are numbered on from step ${LAST_STEP}\\)$`,
    "m",
  );

Deno.test("refresh of a keep-best run whose best epoch is not its last goes on from best.fock; its checkpoint is the newest, survives pruning, is published, and the next refresh goes on from it", async () => {
  const run = await copyRun("twice");
  const ck = join(run, "checkpoints");
  const last = BASE_LAST.replace(BASE, run), best = join(ck, BEST_CHECKPOINT);
  const lastBytes = await Deno.readFile(last), bestBytes = await Deno.readFile(best);
  const r1 = await job("refresh", refreshArgs(run, NEW1, "--epochs", "1"));
  assert.equal(r1.code, 0, r1.stderr);
  const s1 = summaryOf(r1);
  assert.ok(s1.training.steps > 0, r1.stderr);
  // the start: the words the new text lacks keep best.fock's input vectors, not the last epoch's
  const E1 = await inputOf(s1.checkpoint), bestE = await inputOf(best), lastE = await inputOf(last);
  const absent = await absentFrom(NEW1);
  assert.ok(absent.length > WORDS.length / 4, `${absent.length} words out of the new text`);
  const keptBest = sameRows(E1, bestE, WORDS.length), keptLast = sameRows(E1, lastE, WORDS.length);
  for (const i of absent) assert.ok(keptBest.has(i), `${WORDS[i]}: best.fock's input vector`);
  assert.ok(absent.some((i) => !keptLast.has(i)), "the last epoch's vectors are not the start");
  assert.equal(s1.previousCheckpoint, best);
  assert.match(r1.stderr, STARTS_FROM_BEST(run));
  // numbered past the newest: the run's newest, kept by --keep-checkpoints 1 (at least 2 after a refresh)
  assert.ok(checkpointStep(s1.checkpoint)! > LAST_STEP, s1.checkpoint);
  assert.deepEqual(await listCheckpoints(ck), [last, s1.checkpoint]);
  sameBytes(await Deno.readFile(last), lastBytes, "the last epoch's checkpoint unchanged");
  sameBytes(await Deno.readFile(best), bestBytes, "best.fock unchanged");
  // what export --checkpoint <run> publishes now: the refreshed checkpoint, not best.fock
  const logs: string[] = [];
  const pub = await publishedCheckpoint(
    s1.checkpoint,
    await readCheckpoint(s1.checkpoint),
    (l) => logs.push(l),
  );
  assert.equal(pub.file, s1.checkpoint, logs.join("\n"));
  // a refresh of the refresh: from the refreshed checkpoint (the words the first text changed and the
  // second lacks keep their refreshed vectors), its own checkpoint the newest; the last epoch's pruned
  const r2 = await job("refresh", refreshArgs(run, NEW2, "--epochs", "1"));
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(
    r2.stderr,
    new RegExp(
      `^refresh: starting from ${s1.checkpoint} \\(the newest checkpoint, the one the run publishes\\)$`,
      "m",
    ),
  );
  const s2 = summaryOf(r2), E2 = await inputOf(s2.checkpoint);
  const moved = (await absentFrom(NEW2)).filter((i) => i < WORDS.length && !keptBest.has(i));
  assert.ok(moved.length > 0, "the first refresh moved words the second text lacks");
  const kept1 = sameRows(E2, E1, WORDS.length);
  for (const i of moved) assert.ok(kept1.has(i), `${WORDS[i]}: the first refresh's vector`);
  assert.ok(checkpointStep(s2.checkpoint)! > checkpointStep(s1.checkpoint)!);
  assert.deepEqual(await listCheckpoints(ck), [s1.checkpoint, s2.checkpoint]);
  sameBytes(await Deno.readFile(best), bestBytes, "best.fock is never pruned");
});

Deno.test("refresh --epochs 0 from best.fock: the grown model's old vectors are best.fock's bit for bit, numbered past the newest, nothing of the run rewritten; export publishes it", async () => {
  const run = await copyRun("epochs0");
  const ck = join(run, "checkpoints");
  const last = BASE_LAST.replace(BASE, run), best = join(ck, BEST_CHECKPOINT);
  const lastBytes = await Deno.readFile(last), bestBytes = await Deno.readFile(best);
  const r = await job("refresh", refreshArgs(run, NEW1, "--epochs", "0"));
  assert.equal(r.code, 0, r.stderr);
  const s = summaryOf(r);
  const refreshed = await readCheckpoint(s.checkpoint);
  assert.deepEqual((refreshed.meta.vocab as { words: string[] }).words, [...WORDS, "zzdog", "zzcat"]);
  const E = refreshed.arrays["model.E"] as Float32Array, bestE = await inputOf(best);
  assert.equal(sameRows(E, bestE, WORDS.length).size, WORDS.length, "every old row is best.fock's");
  assert.equal(s.checkpoint, join(ck, `ckpt-${String(LAST_STEP + 1).padStart(12, "0")}.fock`));
  assert.deepEqual(await listCheckpoints(ck), [last, s.checkpoint]);
  sameBytes(await Deno.readFile(last), lastBytes, "the last epoch's checkpoint unchanged");
  sameBytes(await Deno.readFile(best), bestBytes, "best.fock unchanged");
  // a finished run whose result it is: no best epoch or rollback state of the run it came from
  const runState = refreshed.meta.run as { epoch: number; epochs: number; best?: unknown; good?: unknown };
  assert.equal(runState.epoch, runState.epochs);
  assert.deepEqual([runState.best, runState.good], [undefined, undefined]);
  // export --checkpoint <run> publishes the grown model (it published best.fock: the model before the refresh)
  const e = await job("export", ["--checkpoint", run, "--backend", "js", "--formats", "vec"]);
  assert.equal(e.code, 0, e.stderr);
  assert.doesNotMatch(e.stderr, /best\.fock/);
  const vec = await Deno.readTextFile(join(run, "embeddings", "latest", "input.vec"));
  assert.equal(vec.slice(0, vec.indexOf("\n")), `${WORDS.length + 2} ${DIM}`);
  assert.match(r.stderr, STARTS_FROM_BEST(run));
  assert.match(r.stderr, new RegExp(`step counter advanced to ${LAST_STEP + 1}, past the run's newest`));
});

Deno.test("train --resume after a refresh from best.fock goes on from the refreshed checkpoint", async () => {
  const run = await copyRun("resume");
  // no word of the new text reaches --min-count: the vocabulary is the run's, which train --resume needs
  const r = await job("refresh", refreshArgs(run, NEW1, "--epochs", "0", "--min-count", "100000"));
  assert.equal(r.code, 0, r.stderr);
  const refreshed = summaryOf(r).checkpoint as string;
  const bestE = await inputOf(join(run, "checkpoints", BEST_CHECKPOINT));
  sameBits(await inputOf(refreshed), bestE, "the refreshed model is best.fock's");
  const t = await job("train", ["--resume", run, "--epochs", "4", "--progress", "none"]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stderr, new RegExp(`^resume: ${refreshed} at step ${LAST_STEP + 1}$`, "m"));
  const s = summaryOf(t);
  assert.ok(s.training.steps > 0, t.stderr);
  const all = await listCheckpoints(join(run, "checkpoints"));
  assert.ok(checkpointStep(all.at(-1)!)! > LAST_STEP + 1, all.join(", "));
  // the run's best epoch before the refresh is not this model's: the resumed run keeps its own epoch 4 (it
  // went back to best.fock, the model before the refresh, whose validation loss was lower)
  assert.equal(s.embeddings.epoch, 4, t.stderr);
  assert.match(r.stderr, STARTS_FROM_BEST(run));
});

Deno.test("a refresh from best.fock stopped in its training continues from its staging folder to the uninterrupted result; after the run moved on it starts over", async () => {
  const a = await copyRun("stop-a"), b = await copyRun("stop-b"), c = await copyRun("stop-c");
  const args = (run: string) => refreshArgs(run, NEW1, "--epochs", "20");
  const full = await job("refresh", args(a));
  assert.equal(full.code, 0, full.stderr);
  // from best.fock: the words the new text lacks keep its vectors
  const bestE = await inputOf(join(a, "checkpoints", BEST_CHECKPOINT)),
    fullE = await inputOf(summaryOf(full).checkpoint);
  const keptBest = sameRows(fullE, bestE, WORDS.length);
  for (const i of await absentFrom(NEW1)) assert.ok(keptBest.has(i), `${WORDS[i]}: best.fock's input vector`);
  assert.match(full.stderr, STARTS_FROM_BEST(a));
  /** Runs the refresh on `run` and stops it by SIGTERM after its first epoch. */
  const stopped = async (run: string) => {
    const p = spawn("refresh", args(run));
    await p.seen(/"event":"epoch"/);
    p.kill("SIGTERM");
    const r = await p.done;
    assert.equal(r.code, EXIT.stopped, r.stderr);
    assert.match(lastLine(r), /^refresh: stopped by SIGTERM at step \d+: .* is unchanged; continue with: /);
    assert.deepEqual(await listCheckpoints(join(run, "checkpoints")), [BASE_LAST.replace(BASE, run)]);
    const staging = await Array.fromAsync(Deno.readDir(join(run, "refresh-staging")));
    assert.equal(staging.length, 1);
    // its own checkpoints are numbered past the run's newest too
    const own = await listCheckpoints(join(run, "refresh-staging", staging[0].name, "checkpoints"));
    assert.ok(checkpointStep(own.at(-1)!)! > LAST_STEP, own.join(", "));
    return staging[0].name;
  };
  await stopped(b);
  const again = await job("refresh", args(b));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /^refresh: continuing the refresh stopped at /m);
  const name = (p: string) => p.slice(p.lastIndexOf("/") + 1);
  const [sa, sb] = [summaryOf(full), summaryOf(again)];
  assert.equal(name(sb.checkpoint), name(sa.checkpoint));
  sameBits(await inputOf(sb.checkpoint), await inputOf(sa.checkpoint), "the continued refresh's E");
  sameBytes(
    await Deno.readFile(join(b, "embeddings", "latest", "input.vec")),
    await Deno.readFile(join(a, "embeddings", "latest", "input.vec")),
    "the published vectors",
  );
  // stopped, then the run trained on (a newer checkpoint): the refresh's numbering is stale, it starts over
  const gone = await stopped(c);
  const more = await job("train", ["--resume", c, "--epochs", "4", "--progress", "none"]);
  assert.equal(more.code, 0, more.stderr);
  const newest = (await listCheckpoints(join(c, "checkpoints"))).at(-1)!;
  const r = await job("refresh", args(c));
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /continuing the refresh stopped/);
  assert.match(r.stderr, new RegExp(`refresh: removing \\S+${gone} left by an earlier run`));
  assert.ok(checkpointStep(summaryOf(r).checkpoint)! > checkpointStep(newest)!);
  assert.equal((await listCheckpoints(join(c, "checkpoints"))).at(-1), summaryOf(r).checkpoint);
});

Deno.test("continuation: best.fock's parameters with the finished run's bookkeeping, numbered after the newest; a rollback in the next training returns to that start", async () => {
  const dir = await Deno.makeTempDir({ dir: ROOT });
  const V = 40, corpus = ringCorpus(V, 600), rows = corpus.length, lines: string[] = [];
  const events = (name: string) =>
    lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((e) => e.event === name);
  const cfg = (over: Partial<TrainConfig> = {}) =>
    smallConfig({ lrMin: 0.003, schedule: "constant", ...over });
  const p = { calls: 0, etas: [], created: 0, evalBias: () => events("epoch").length >= 2 ? 1 : 0 };
  const t = await Trainer.create({
    config: cfg({ epochs: 4 }),
    vocab: ringVocab(V),
    openReader: memoryReader(corpus),
    createHead: flakyHeads(p),
    log: (l) => lines.push(l),
  });
  const s = await t.train({ paths: ["mem"], rows, checkpointDir: dir });
  t.close();
  assert.equal(s.keptEpoch, 2);
  const newest = await readCheckpoint(s.checkpoint!), best = await readCheckpoint(join(dir, BEST_CHECKPOINT));
  const after = checkpointStep(s.checkpoint!)! + 5; // a newer (corrupt, say) name in the folder
  const start: Checkpoint = continuation(best, newest, after);
  assert.equal(start.meta.step, after);
  assert.equal(start.arrays, best.arrays);
  const run = start.meta.run as Record<string, unknown>;
  assert.deepEqual([run.epoch, run.best, run.good], [4, undefined, undefined]);
  // the next training (a refresh's) on other data, a NaN at its 5th step: back to the start, numbered `after`
  lines.length = 0;
  const r = await Trainer.fromCheckpoint(start, {
    openReader: memoryReader(ringCorpus(V, 300, 9)),
    createHead: flakyHeads({ calls: 0, etas: [], created: 0, nan: (k) => k === 5 }),
    log: (l) => lines.push(l),
  });
  assert.equal(r.step, after);
  const sr = await r.train({ paths: ["mem2"], rows: 300, epochs: 1, checkpointDir: join(dir, "next") });
  const [back] = events("backoff");
  assert.equal(back.rolledBackTo, after);
  assert.ok(r.step > after && sr.steps > 0);
  for (const f of await listCheckpoints(join(dir, "next"))) assert.ok(checkpointStep(f)! >= after, f);
  r.close();
});
