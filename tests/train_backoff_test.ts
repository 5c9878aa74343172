// The trainer's robustness mechanics, in-process with output layers that fail on chosen steps
// (tests/train_fakes.ts): a refused step is retried at half the step size; a non-finite one rolls back to
// the last good state exactly; the multiplier's floor stops the run (DivergenceError naming the step and
// lr); checkpoints carry the multiplier; the epoch-end health check of the factored Q repairs or rolls
// back; the best epoch by validation loss is kept. And one run of
// pipelines/train.ts on a tiny generated corpus with a huge --lr that finishes with a backoff line.
import assert from "node:assert/strict";
import { DivergenceError } from "../lib/core/errors.ts";
import { readCheckpoint } from "../lib/train/checkpoint.ts";
import { publishedCheckpoint } from "../lib/train/best.ts";
import type { TrainConfig } from "../lib/train/config.ts";
import { BACKOFF_FLOOR, BEST_CHECKPOINT, Trainer, type Vocabulary } from "../lib/train/trainer.ts";
import {
  type Flaky,
  flakyHeads,
  memoryReader,
  ringCorpus,
  ringVocab,
  smallConfig,
  stoppingReader,
} from "./train_fakes.ts";

const V = 40;
const vocab: Vocabulary = ringVocab(V);
const corpus = ringCorpus(V, 600);
const rows = corpus.length;

function cfg(over: Partial<TrainConfig> = {}): TrainConfig {
  return smallConfig({ lrMin: 0.003, schedule: "constant", ...over });
}

function plan(p: Partial<Flaky> = {}): Flaky {
  return { calls: 0, etas: [], created: 0, ...p };
}

async function make(config: TrainConfig, p: Flaky, lines: string[] = []) {
  return await Trainer.create({
    config,
    vocab,
    openReader: memoryReader(corpus),
    createHead: flakyHeads(p),
    log: (l) => lines.push(l),
  });
}

/** A trainer resumed from `file`, its output layers failing as `p` says, its log lines into `lines`. */
async function resumeFrom(file: string, p: Flaky, lines: string[] = [], openReader = memoryReader(corpus)) {
  return await Trainer.fromCheckpoint(file, {
    openReader,
    createHead: flakyHeads(p),
    log: (l) => lines.push(l),
  });
}

function events(lines: string[], name: string) {
  return lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((e) => e.event === name);
}

function sameArray(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}[${i}]: ${a[i]} ≠ ${b[i]}`);
  }
}

Deno.test("backoff: a refused step is retried on the same batch at half the step size; no batch is skipped", async () => {
  const clean = plan(), flaky = plan({ refuse: (c) => c === 5 });
  const a = await make(cfg(), clean);
  const ref = await a.train({ paths: ["mem"], rows });
  const lines: string[] = [];
  const b = await make(cfg(), flaky, lines);
  const s = await b.train({ paths: ["mem"], rows });
  assert.equal(s.steps, ref.steps, "every batch is trained");
  assert.equal(s.backoffs, 1);
  assert.equal(s.lrScale, 0.5);
  assert.equal(flaky.etas[5], flaky.etas[4] / 2, "the refused batch is retried at half the step");
  assert.equal(flaky.etas[flaky.etas.length - 1], 0.003 / 2, "and the rest of the run stays at half");
  assert.equal(flaky.created, 1, "a refusal changes nothing: no rollback");
  const [ev, ...more] = events(lines, "backoff");
  assert.equal(more.length, 0, "logged once");
  assert.equal(ev.step, 5);
  assert.equal(ev.lr, 0.0015);
  assert.match(ev.reason, /injected refusal/);
  assert.equal(ev.rolledBackTo, undefined);
  a.close();
  b.close();
});

Deno.test("backoff: a non-finite step rolls back to the last epoch end exactly, wherever checkpoints were written, and goes on at half the step", async () => {
  // A: the 8th step's loss (epoch 1 of 38-step epochs) comes back NaN after the layer stepped; checkpoints
  // every 5 steps. The state to go back to is the last epoch end, here the run's start: never a checkpoint
  // written between (it may already carry the trouble, and the run would depend on when it was written)
  const lines: string[] = [];
  const p = plan({ nan: (c) => c === 8 });
  const a = await make(cfg({ checkpointEvery: 5, keepBest: false }), p, lines);
  const s = await a.train({ paths: ["mem"], rows });
  const [ev] = events(lines, "backoff");
  assert.equal(ev.step, 8);
  assert.equal(ev.rolledBackTo, 0);
  assert.equal(s.backoffs, 1);
  assert.equal(p.created, 2, "the output layer is rebuilt from the good state");
  // A': the same failure with a checkpoint folder, a file after every step and none every 5 steps: the
  // same rollback and the same weights
  const dir = await Deno.makeTempDir();
  const lines2: string[] = [];
  const a2 = await make(cfg({ checkpointEvery: 0, keepBest: false }), plan({ nan: (c) => c === 8 }), lines2);
  await a2.train({ paths: ["mem"], rows, checkpointDir: dir, checkpointMinutes: 1e-9, keepCheckpoints: 2 });
  assert.equal(events(lines2, "backoff")[0].rolledBackTo, 0);
  // the checkpoints of the abandoned steps 1–8 are removed (a --resume must not take one up)
  assert.ok(
    lines2.some((l) => /^backoff: removed \d+ checkpoint\(s\) of the abandoned steps/.test(l)),
    lines2.join("\n"),
  );
  // C: the same run without failures from the start at half the lr
  const c = await make(cfg({ checkpointEvery: 5, keepBest: false, lr: 0.0015, lrMin: 0.0015 }), plan());
  const sc = await c.train({ paths: ["mem"], rows });
  assert.equal(s.steps, sc.steps, "the rolled-back steps are not counted twice");
  const ea = await a.embeddings({ output: true }), ec = await c.embeddings({ output: true });
  const ea2 = await a2.embeddings({ output: true });
  sameArray(ea.input, ec.input, "E");
  sameArray(ea.output!, ec.output!, "W");
  sameArray(ea2.input, ea.input, "E with other checkpoints");
  sameArray(ea2.output!, ea.output!, "W with other checkpoints");
  assert.equal(a.step, c.step);
  for (const t of [a, a2, c]) t.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("backoff: a run stopped in its first epoch and resumed rolls back to the run's start, as the uninterrupted one does", async () => {
  // the uninterrupted run: step 20 (epoch 1) is not finite, and the run goes back to its start
  const dirA = await Deno.makeTempDir(), dirB = await Deno.makeTempDir();
  const opts = { paths: ["mem"], rows, keepCheckpoints: 2 };
  const linesA: string[] = [];
  const a = await make(cfg({ checkpointEvery: 5, keepBest: false }), plan({ nan: (c) => c === 20 }), linesA);
  const sa = await a.train({ ...opts, checkpointDir: dirA });
  assert.equal(events(linesA, "backoff")[0].rolledBackTo, 0);
  // B: stopped after step 12 (checkpoints at 5 and 10, only two kept, and the stop's at 12); the run's
  // start went into ckpt-0 with the first checkpoint and stays there; resumed, step 20 fails the same way
  const ac = new AbortController();
  const b = await Trainer.create({
    config: cfg({ checkpointEvery: 5, keepBest: false }),
    vocab,
    openReader: stoppingReader(memoryReader(corpus), 12, ac),
    createHead: flakyHeads(plan()),
    log: () => {},
  });
  const sb = await b.train({ ...opts, checkpointDir: dirB, stop: ac.signal });
  assert.equal(sb.stopped, true);
  assert.equal(b.step, 12);
  b.close();
  const names = (await Array.fromAsync(Deno.readDir(dirB))).map((e) => e.name).sort();
  assert.deepEqual(names, ["ckpt-000000000000.fock", "ckpt-000000000010.fock", "ckpt-000000000012.fock"]);
  // resumed into another folder (as train --resume FILE --out OTHER): the start's file is found beside the
  // checkpoint it starts from and linked into its own folder
  const dirC = await Deno.makeTempDir();
  const linesC: string[] = [];
  // its 8th step is step 20
  const c = await resumeFrom(`${dirB}/ckpt-000000000012.fock`, plan({ nan: (k) => k === 8 }), linesC);
  const sc = await c.train({ ...opts, checkpointDir: dirC, resume: true });
  const [ev] = events(linesC, "backoff");
  // the run's figures are the uninterrupted run's; the call, gone back below its own start, took every step
  // of the run again: its own count is the run's, not the net progress from step 12
  assert.deepEqual([sc.steps, sc.examples], [sa.steps, sa.examples]);
  assert.deepEqual([sc.thisInvocation.steps, sc.thisInvocation.examples], [sa.steps, sa.examples]);
  assert.equal(ev.step, 20);
  assert.equal(ev.rolledBackTo, 0);
  assert.ok(!linesC.some((l) => l.startsWith("resume: ")), linesC.join("\n"));
  const ea = await a.embeddings({ output: true }), ec = await c.embeddings({ output: true });
  sameArray(ec.input, ea.input, "E");
  sameArray(ec.output!, ea.output!, "W");
  assert.equal(c.step, a.step);
  c.close();
  // chained: resumed from the start's own file into another folder (the file is the rollback state itself,
  // linked in there), stopped after 9 steps, resumed there: step 20 still goes back to the start
  const dirD = await Deno.makeTempDir();
  const ad = new AbortController();
  const d = await resumeFrom(
    `${dirB}/ckpt-000000000000.fock`,
    plan(),
    [],
    stoppingReader(memoryReader(corpus), 9, ad),
  );
  assert.equal(
    (await d.train({ ...opts, checkpointDir: dirD, resume: true, stop: ad.signal })).stopped,
    true,
  );
  d.close();
  await Deno.stat(`${dirD}/ckpt-000000000000.fock`);
  const linesE: string[] = [];
  // its 11th step is step 20
  const e = await resumeFrom(`${dirD}/ckpt-000000000009.fock`, plan({ nan: (k) => k === 11 }), linesE);
  await e.train({ ...opts, checkpointDir: dirD, resume: true });
  assert.equal(events(linesE, "backoff")[0].rolledBackTo, 0);
  assert.ok(!linesE.some((l) => l.startsWith("resume: ")), linesE.join("\n"));
  const ee = await e.embeddings({ output: true });
  sameArray(ee.input, ea.input, "E (chained)");
  sameArray(ee.output!, ea.output!, "W (chained)");
  a.close();
  e.close();
  for (const x of [dirA, dirB, dirC, dirD]) await Deno.remove(x, { recursive: true });
});

Deno.test("backoff: a rollback after a --resume that changed --epochs keeps the new epochs", async () => {
  const dir = await Deno.makeTempDir();
  const ac = new AbortController();
  const b = await Trainer.create({
    config: cfg({ checkpointEvery: 5, keepBest: false, epochs: 2 }),
    vocab,
    openReader: stoppingReader(memoryReader(corpus), 7, ac),
    createHead: flakyHeads(plan()),
    log: () => {},
  });
  await b.train({ paths: ["mem"], rows, checkpointDir: dir, stop: ac.signal });
  b.close();
  const lines: string[] = [];
  const c = await resumeFrom(`${dir}/ckpt-000000000007.fock`, plan({ nan: (k) => k === 3 }), lines);
  c.adopt(cfg({ checkpointEvery: 5, keepBest: false, epochs: 3 }));
  await c.train({ paths: ["mem"], rows, checkpointDir: dir, resume: true });
  assert.equal(events(lines, "backoff")[0].rolledBackTo, 0);
  assert.deepEqual(c.runProgress, { examples: rows * 3, total: rows * 3, epoch: 3 });
  assert.equal(events(lines, "epoch").length, 3);
  c.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("resume: options changed on a finished run without a step are saved (its checkpoint rewritten)", async () => {
  const dir = await Deno.makeTempDir();
  const t = await make(cfg({ epochs: 1 }), plan());
  await t.train({ paths: ["mem"], rows, checkpointDir: dir });
  const file = t.lastCheckpoint!;
  t.close();
  // the same options: nothing to save, the file stays as it is
  const before = await Deno.stat(file);
  const same = await Trainer.fromCheckpoint(file, { openReader: memoryReader(corpus), log: () => {} });
  const none = await same.train({ paths: ["mem"], rows, checkpointDir: dir, resume: true });
  assert.equal(none.thisInvocation.steps, 0);
  same.close();
  assert.equal(
    (await Deno.stat(file)).mtime?.getTime(),
    before.mtime?.getTime(),
    "rewritten without a change",
  );
  const r = await Trainer.fromCheckpoint(file, { openReader: memoryReader(corpus), log: () => {} });
  r.adopt(cfg({ epochs: 1, keepBest: false }));
  const s = await r.train({ paths: ["mem"], rows, checkpointDir: dir, resume: true });
  assert.equal(s.thisInvocation.steps, 0);
  const saved = await readCheckpoint(r.lastCheckpoint!);
  assert.equal((saved.meta.config as { keepBest: boolean }).keepBest, false);
  r.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("backoff: at the floor the run stops with DivergenceError naming the step and lr; checkpoints carry the multiplier", async () => {
  const dir = await Deno.makeTempDir();
  // refusals at calls 3 and 4 (one batch, twice), then every call from 40 on
  const p = plan({ refuse: (c) => c === 3 || c === 4 || c >= 40 });
  const t = await make(cfg({ checkpointEvery: 10 }), p);
  let err: unknown;
  try {
    await t.train({ paths: ["mem"], rows, checkpointDir: dir });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof DivergenceError, `expected DivergenceError, got ${err}`);
  const halvings = Math.log2(1 / BACKOFF_FLOOR);
  // 2 backoffs early, then the multiplier halves from 1/4 down to the floor (8 more), and the next fails
  assert.equal(p.calls, 39 + (halvings - 2) + 1);
  assert.equal(err.step, 38);
  assert.match(err.message, /training diverged at step 38 \(epoch 1, lr 0\.00000293\) after 10 backoffs/);
  assert.match(err.message, /×1\/1024/);
  assert.match(err.message, /Lower --lr/);
  const last = await readCheckpoint(`${dir}/ckpt-000000000030.fock`);
  const run = last.meta.run as { lrScale: number; backoffs: number };
  assert.equal(run.lrScale, 0.25);
  assert.equal(run.backoffs, 2);
  // resume continues at the reduced step
  const r = await resumeFrom(`${dir}/ckpt-000000000030.fock`, plan());
  const s = await r.train({ paths: ["mem"], rows, resume: true });
  assert.equal(s.lrScale, 0.25);
  assert.equal(s.lr, 0.003 / 4);
  t.close();
  r.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("epoch-end health: a small drift of the factored Q is repaired, a large one rolls back and backs off", async () => {
  const drifts = [0.05, 5];
  let checks = 0;
  const lines: string[] = [];
  const p = plan({ drift: () => drifts[checks++] });
  const t = await make(cfg(), p, lines);
  const s = await t.train({ paths: ["mem"], rows });
  const ep = events(lines, "epoch");
  const [repair, ...moreRepairs] = events(lines, "repair");
  assert.equal(moreRepairs.length, 0);
  assert.equal(repair.qDrift, 0.05);
  assert.equal(repair.step, ep[0].step);
  assert.equal(p.refreshes, 1, "Q re-derived once");
  const [back] = events(lines, "backoff");
  assert.match(back.reason, /Q = WᵀW is off by 5 \(relative\)/);
  assert.equal(back.rolledBackTo, ep[0].step, "back to the end of epoch 1, then epoch 2 again");
  assert.equal(s.backoffs, 1);
  assert.equal(ep.length, 3, "each epoch reported once");
  assert.equal(checks, 4, "epoch 2's end is checked again after the rollback");
  t.close();
});

Deno.test("epoch-end health: a small vocabulary at a high rate keeps U conditioned; no epoch is rolled back", async () => {
  // the ring corpus at d = 32: once the first strong steps are backed off, steps that each shrink U along
  // the same directions by nearly ½ follow. Their update factors stay inside [½, 2]; before the upkeep
  // counted such steps, cond(U) reached 10⁹ in epoch 3, whose end found Q off by 10⁹ and rolled it back
  // twice (to a quarter of the rate)
  const lines: string[] = [];
  const t = await Trainer.create({
    config: cfg({ dim: 32 }),
    vocab,
    openReader: memoryReader(corpus),
    log: (l) => lines.push(l),
  });
  const s = await t.train({ paths: ["mem"], rows });
  t.close();
  const rolled = events(lines, "backoff").filter((e) => e.rolledBackTo !== undefined);
  assert.deepEqual(rolled.map((e) => e.reason), [], "no rollback");
  assert.equal(events(lines, "repair").length, 0, "no repair either");
  assert.equal(s.epochsDone, 3);
});

Deno.test("epoch-end health: a stop request in an epoch runs no health check (no repair or rollback at the signal's step)", async () => {
  // a drift that would roll back wherever it is checked: a stop must neither repair nor roll back (its
  // moment is the signal's, and the resumed run checks at the epoch's end, as an uninterrupted one does)
  let checks = 0;
  const lines: string[] = [];
  const p = plan({ drift: () => (checks++, 5) });
  const ac = new AbortController();
  const t = await Trainer.create({
    config: cfg(),
    vocab,
    openReader: stoppingReader(memoryReader(corpus), 5, ac),
    createHead: flakyHeads(p),
    log: (l) => lines.push(l),
  });
  const s = await t.train({ paths: ["mem"], rows, stop: ac.signal });
  assert.equal(s.stopped, true);
  assert.ok(t.step > 0 && t.step <= 5, `step ${t.step}`);
  assert.equal(events(lines, "epoch").length, 0, "stopped in epoch 1");
  assert.equal(checks, 0, "no health check at the stop");
  assert.deepEqual(events(lines, "backoff"), []);
  assert.deepEqual(events(lines, "repair"), []);
  t.close();
});

Deno.test("best epoch: a later epoch with a higher validation loss does not replace the best one's vectors", async () => {
  // validation losses made worse from the third epoch on (per example +1 after two epochs logged)
  const bias = (lines: string[]) => () => events(lines, "epoch").length >= 2 ? 1 : 0;
  const dir = await Deno.makeTempDir();
  const lines: string[] = [];
  const p = plan();
  p.evalBias = bias(lines);
  const t = await make(cfg({ epochs: 4 }), p, lines);
  const s = await t.train({ paths: ["mem"], rows, checkpointDir: dir });
  const ep = events(lines, "epoch");
  assert.deepEqual(ep.map((e) => e.bestEpoch), [1, 2, 2, 2]);
  assert.equal(s.bestEpoch, 2);
  assert.equal(s.keptEpoch, 2);
  // the kept epoch's own training loss beside trainLoss, the last epoch's (the two differ)
  assert.equal(s.bestTrainLoss, ep[1].trainLoss);
  assert.equal(s.trainLoss, ep[3].trainLoss);
  assert.notEqual(s.bestTrainLoss, s.trainLoss);
  assert.equal(events(lines, "best")[0].epoch, 2);
  const best = await readCheckpoint(`${dir}/${BEST_CHECKPOINT}`);
  assert.equal(best.meta.step, ep[1].step);
  // best.fock is a second name of epoch 2's checkpoint (one file, not a second serialisation)
  const bestStat = await Deno.stat(`${dir}/${BEST_CHECKPOINT}`);
  const epoch2 = await Deno.stat(`${dir}/ckpt-${String(ep[1].step).padStart(12, "0")}.fock`);
  assert.equal(bestStat.ino, epoch2.ino, "best.fock linked to epoch 2's checkpoint");
  sameArray((await t.embeddings()).input, best.arrays["model.E"], "kept E = epoch 2's");
  const final = await readCheckpoint(s.checkpoint!);
  assert.equal(final.meta.step, ep[3].step, "the final state is still checkpointed");
  assert.equal(t.step, ep[1].step);
  // the kept state is of a finished training (a refresh saves it as the run's newest checkpoint, and a later
  // refresh must see a finished run), with epoch 2's parameters
  assert.deepEqual(t.runProgress, { examples: rows * 4, total: rows * 4, epoch: 4 });
  const kept = await t.toCheckpoint();
  const keptRun = kept.meta.run as { epoch: number; epochs: number; best: { epoch: number } };
  assert.equal(keptRun.epoch, keptRun.epochs);
  assert.equal(keptRun.best.epoch, 2);
  assert.equal(
    (keptRun as { good?: number }).good,
    undefined,
    "its rollback state is its own, not the last epoch end",
  );
  sameArray(kept.arrays["model.E"], best.arrays["model.E"], "kept checkpoint E = epoch 2's");
  // a resume after epoch 3 finds epoch 2's state in best.fock
  const lr: string[] = [], pr = plan();
  pr.evalBias = () => 1;
  const r = await resumeFrom(`${dir}/ckpt-${String(ep[2].step).padStart(12, "0")}.fock`, pr, lr);
  const sr = await r.train({ paths: ["mem"], rows, resume: true, checkpointDir: dir });
  assert.equal(sr.keptEpoch, 2);
  sameArray((await r.embeddings()).input, best.arrays["model.E"], "resumed: epoch 2's E from best.fock");
  r.close();
  // the same without a checkpoint folder (kept in memory), and with keepBest off
  const l2: string[] = [], p2 = plan();
  p2.evalBias = bias(l2);
  const m = await make(cfg({ epochs: 4 }), p2, l2);
  assert.equal((await m.train({ paths: ["mem"], rows })).keptEpoch, 2);
  sameArray((await m.embeddings()).input, best.arrays["model.E"], "in memory");
  const l3: string[] = [], p3 = plan();
  p3.evalBias = bias(l3);
  const off = await make(cfg({ epochs: 4, keepBest: false }), p3, l3);
  const s3 = await off.train({ paths: ["mem"], rows });
  assert.equal(s3.bestEpoch, 2);
  assert.equal(s3.keptEpoch, 4);
  sameArray((await off.embeddings()).input, final.arrays["model.E"], "keepBest off: the last epoch");
  for (const x of [t, m, off]) x.close();
  await Deno.remove(dir, { recursive: true });
});

/**
 * A 4-epoch run whose best epoch is the 2nd, every checkpoint kept in `dir`/a: its kept E, the step of each
 * epoch's end, and the checkpoint file name of epoch i's end (0-based).
 */
async function bestOfFour(
  dir: string,
): Promise<{ kept: Float32Array; step: number[]; name: (i: number) => string }> {
  const lines: string[] = [], p = plan();
  p.evalBias = () => events(lines, "epoch").length >= 2 ? 1 : 0; // epoch 2 the best of 4
  const t = await make(cfg({ epochs: 4 }), p, lines);
  const s = await t.train({ paths: ["mem"], rows, checkpointDir: `${dir}/a`, keepCheckpoints: 100 });
  assert.equal(s.keptEpoch, 2);
  const kept = (await t.embeddings()).input;
  t.close();
  const step = events(lines, "epoch").map((e) => e.step as number);
  return { kept, step, name: (i) => `ckpt-${String(step[i]).padStart(12, "0")}.fock` };
}

/** A run resumed from `file` whose epochs are all worse than the best, as in the uninterrupted run; its log. */
async function resumeWorse(file: string): Promise<{ r: Trainer; lr: string[] }> {
  const lr: string[] = [], pr = plan();
  pr.evalBias = () => 1;
  return { r: await resumeFrom(file, pr, lr), lr };
}

// A job killed after the best epoch's checkpoint was written and before best.fock was linked to it (the
// link is the next task of the writes behind the steps) left best.fock of an earlier epoch, or none; a run
// resumed into another folder had none there. The resumed run then said "not in best.fock" at its end and
// kept its last epoch, not the uninterrupted run's best
Deno.test("best epoch: a job killed between the best epoch's checkpoint and best.fock's link, or resumed into another folder, ends on the same kept epoch", async () => {
  const dir = await Deno.makeTempDir();
  const { kept, name, step } = await bestOfFour(dir);
  // what the kill leaves: the checkpoints up to epoch 2's end, best.fock still epoch 1's (or none yet)
  for (const before of [name(0), undefined]) {
    const b = `${dir}/b-${before ? "epoch1" : "none"}`;
    await Deno.mkdir(b);
    for (let i = 0; i < 2; i++) await Deno.copyFile(`${dir}/a/${name(i)}`, `${b}/${name(i)}`);
    if (before) await Deno.copyFile(`${dir}/a/${before}`, `${b}/${BEST_CHECKPOINT}`);
    const { r, lr } = await resumeWorse(`${b}/${name(1)}`); // its epochs 3 and 4
    const sr = await r.train({ paths: ["mem"], rows, resume: true, checkpointDir: b });
    assert.equal(sr.keptEpoch, 2, lr.join("\n"));
    sameArray((await r.embeddings()).input, kept, `${b}: the kept E = the uninterrupted run's`);
    assert.equal((await readCheckpoint(`${b}/${BEST_CHECKPOINT}`)).meta.step, step[1]);
    assert.match(lr.join("\n"), /keep-best: \S+best\.fock did not hold epoch 2's state \(step \d+\)/);
    r.close();
  }
  // resumed from epoch 3's end into another folder: best.fock beside that checkpoint (epoch 2's) comes along
  {
    const { r, lr } = await resumeWorse(`${dir}/a/${name(2)}`);
    const sr = await r.train({ paths: ["mem"], rows, resume: true, checkpointDir: `${dir}/c` });
    assert.equal(sr.keptEpoch, 2, lr.join("\n"));
    sameArray((await r.embeddings()).input, kept, "resumed into another folder: the kept E");
    assert.match(lr.join("\n"), /did not hold epoch 2's state .*\(the run resumed into another folder\)/);
    r.close();
  }
  // a resume from it with best.fock in place (its second name) leaves best.fock as it is, without a line
  const before = await Deno.stat(`${dir}/a/${BEST_CHECKPOINT}`);
  const { r, lr } = await resumeWorse(`${dir}/a/${name(1)}`);
  assert.equal(
    (await r.train({ paths: ["mem"], rows, resume: true, checkpointDir: `${dir}/a` })).keptEpoch,
    2,
  );
  assert.equal((await Deno.stat(`${dir}/a/${BEST_CHECKPOINT}`)).ino, before.ino);
  assert.doesNotMatch(lr.join("\n"), /did not hold/);
  r.close();
  await Deno.remove(dir, { recursive: true });
});

// best.fock of another epoch (or none) while the best epoch's own checkpoint is still there: a run killed
// before best.fock's link and resumed by a job without the repair, a folder copied without best.fock, a
// resume into another folder from a run whose best.fock has moved on to a later epoch. The resumed run
// found "not in best.fock" at its end and kept its last epoch
Deno.test("best epoch: a resume from a later checkpoint than the best epoch's takes that epoch's checkpoint when best.fock does not hold it", async () => {
  const dir = await Deno.makeTempDir();
  const { kept, name, step } = await bestOfFour(dir);
  // the checkpoints up to epoch 3's end; best.fock epoch 1's, or none
  for (const before of [name(0), undefined]) {
    const b = `${dir}/b-${before ? "epoch1" : "none"}`;
    await Deno.mkdir(b);
    for (let i = 0; i < 3; i++) await Deno.copyFile(`${dir}/a/${name(i)}`, `${b}/${name(i)}`);
    if (before) await Deno.copyFile(`${dir}/a/${before}`, `${b}/${BEST_CHECKPOINT}`);
    // into another folder first: b keeps its best.fock of another epoch for the resume in place after it
    for (const into of [`${b}-elsewhere`, b]) {
      const { r, lr } = await resumeWorse(`${b}/${name(2)}`); // epoch 4
      const sr = await r.train({ paths: ["mem"], rows, resume: true, checkpointDir: into });
      assert.equal(sr.keptEpoch, 2, `${into}: ${lr.join("\n")}`);
      sameArray((await r.embeddings()).input, kept, `${into}: the kept E = the uninterrupted run's`);
      assert.equal((await readCheckpoint(`${into}/${BEST_CHECKPOINT}`)).meta.step, step[1]);
      r.close();
    }
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("best epoch: a run folder publishes what the run published (publishedCheckpoint, export --checkpoint <run>)", async () => {
  const dir = await Deno.makeTempDir();
  const lines: string[] = [], p = plan();
  p.evalBias = () => events(lines, "epoch").length >= 2 ? 1 : 0; // epoch 2 the best of 4
  const t = await make(cfg({ epochs: 4 }), p, lines);
  const s = await t.train({ paths: ["mem"], rows, checkpointDir: dir });
  assert.equal(s.keptEpoch, 2);
  const ep = events(lines, "epoch"),
    name = (i: number) => `${dir}/ckpt-${String(ep[i].step).padStart(12, "0")}.fock`;
  const newest = s.checkpoint!, logs: string[] = [];
  const log = (l: string) => logs.push(l);
  // finished, ending on epoch 2: best.fock, the vectors the trainer ends on (and the job publishes)
  const r = await publishedCheckpoint(newest, await readCheckpoint(newest), log);
  assert.equal(r.file, `${dir}/${BEST_CHECKPOINT}`);
  assert.equal(r.epoch, 2);
  sameArray(r.ckpt.arrays["model.E"], (await t.embeddings()).input, "best.fock's E = the kept E");
  t.close();
  // stopped in epoch 4 (its newest is epoch 3's end): it goes on from there, nothing else to publish
  const third = await publishedCheckpoint(name(2), await readCheckpoint(name(2)), log);
  assert.deepEqual([third.file, third.epoch], [name(2), undefined]);
  // --keep-best false: the last epoch
  const off = await readCheckpoint(newest);
  (off.meta.config as TrainConfig).keepBest = false;
  assert.equal((await publishedCheckpoint(newest, off, log)).file, newest);
  assert.deepEqual(logs, []);
  // best.fock of another step (gone, or replaced): the last epoch, with the trainer's line
  await Deno.remove(`${dir}/${BEST_CHECKPOINT}`); // a hard link of epoch 2's file: removed, not overwritten
  await Deno.copyFile(name(2), `${dir}/${BEST_CHECKPOINT}`);
  assert.equal((await publishedCheckpoint(newest, await readCheckpoint(newest), log)).file, newest);
  assert.match(
    logs.join("\n"),
    /keep-best: epoch 2's state \(step \d+\) is not in .*best\.fock; keeping the last epoch's/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train CLI: a tiny corpus with a huge --lr finishes, with a backoff line", async () => {
  const dir = await Deno.makeTempDir();
  // 60 words, sentences walking a ring: some structure, a vocabulary far below the default's tuning
  let x = 7;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296;
  const lines: string[] = [];
  for (let s = 0; s < 300; s++) {
    let w = Math.floor(rnd() * 60);
    const words: string[] = [];
    for (let k = 0; k < 12; k++) {
      words.push(`w${w}`);
      w = (w + 1 + Math.floor(rnd() * 3)) % 60;
    }
    lines.push(words.join(" "));
  }
  await Deno.writeTextFile(`${dir}/tiny.txt`, lines.join("\n") + "\n");
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../pipelines/train.ts", import.meta.url).pathname,
      ...["--data", `${dir}/tiny.txt`, "--out", `${dir}/run`, "--dim", "16", "--epochs", "2", "--lr", "0.1"],
      ...["--backend", "js", "--formats", "vec", "--eval-dir", "none", "--progress", "json"],
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout), stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const log = stderr.split("\n").filter((l) => l.startsWith('{"event":"backoff"')).map((l) => JSON.parse(l));
  assert.ok(log.length >= 1, `a backoff event in the log: ${stderr}`);
  assert.ok(log[0].lr < 0.1 && log[0].reason.length > 0, JSON.stringify(log[0]));
  assert.ok(stdout.includes('"event":"backoff"'), "and on the progress output");
  const summary = JSON.parse(stdout.trim().split("\n").pop()!);
  assert.equal(summary.event, "summary");
  assert.equal(summary.training.backoffs, log.length);
  assert.ok(summary.training.lrScale < 1);
  await Deno.remove(dir, { recursive: true });
});
