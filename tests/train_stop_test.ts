// Trainer.train's stop request and time-based checkpoints (lib/train/trainer.ts, used by lib/core/stop.ts):
// a stop after any step writes a checkpoint of that step and returns `stopped`; resuming it gives the
// weights of an uninterrupted run; --checkpoint-minutes writes checkpoints by elapsed time.
import assert from "node:assert/strict";
import { listCheckpoints, readCheckpoint } from "../lib/train/checkpoint.ts";
import { resolveConfig, type TrainConfig } from "../lib/train/config.ts";
import { type OpenReader, Trainer, type Vocabulary } from "../lib/train/trainer.ts";
import { memoryReader, ringCorpus, ringVocab } from "./train_fakes.ts";

const V = 30;
const vocab: Vocabulary = ringVocab(V);
const corpus = ringCorpus(V, 400);
const quiet = () => {};
const config: TrainConfig = resolveConfig({
  dim: 8,
  batch: 16,
  epochs: 2,
  validation: 0.1,
  backend: "js",
  seed: 3,
  checkpointMinutes: 0,
});

Deno.test("train: a stop request after step k writes ckpt-k, returns stopped; resuming equals the uninterrupted run", async () => {
  const full = await Trainer.create({ config, vocab, openReader: memoryReader(corpus), log: quiet });
  await full.train({ paths: ["mem"], rows: corpus.length });
  const want = (await full.embeddings()).input;
  full.close();
  for (const k of [1, 13, 26]) {
    const dir = await Deno.makeTempDir();
    const ac = new AbortController();
    // the reader raises the stop request while batch k is being used, as a signal handler would
    const inner = memoryReader(corpus);
    const reader: OpenReader = (paths, o) =>
      (async function* () {
        let n = 0;
        for await (const b of inner(paths, o)) {
          if (++n === k) ac.abort();
          yield b;
        }
      })();
    const t = await Trainer.create({ config, vocab, openReader: reader, log: quiet });
    const s = await t.train({ paths: ["mem"], rows: corpus.length, checkpointDir: dir, stop: ac.signal });
    assert.equal(s.stopped, true);
    assert.ok(t.step <= k, `step ${t.step}`);
    assert.match(s.checkpoint!, new RegExp(`ckpt-0*${t.step}\\.fock$`));
    t.close();
    const r = await Trainer.fromCheckpoint(s.checkpoint!, { openReader: memoryReader(corpus), log: quiet });
    const done = await r.train({ paths: ["mem"], rows: corpus.length, resume: true });
    assert.equal(done.stopped, undefined);
    assert.deepEqual((await r.embeddings()).input, want, `stopped after batch ${k}`);
    r.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: --checkpoint-minutes writes a checkpoint once the time has passed", async () => {
  const dir = await Deno.makeTempDir();
  const t = await Trainer.create({ config, vocab, openReader: memoryReader(corpus), log: quiet });
  // 1e-9 minutes: due after every step
  await t.train({
    paths: ["mem"],
    rows: corpus.length,
    checkpointDir: dir,
    checkpointMinutes: 1e-9,
    keepCheckpoints: 10000,
  });
  // one per step, and the run's start (the state a rollback in epoch 1 returns to) with the first of them
  assert.equal((await listCheckpoints(dir)).length, t.step + 1);
  t.close();
  const dir2 = await Deno.makeTempDir();
  const u = await Trainer.create({ config, vocab, openReader: memoryReader(corpus), log: quiet });
  await u.train({
    paths: ["mem"],
    rows: corpus.length,
    checkpointDir: dir2,
    checkpointMinutes: 60,
    keepCheckpoints: 10000,
  });
  assert.equal((await listCheckpoints(dir2)).length, 2, "only the epoch ends within an hour");
  u.close();
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(dir2, { recursive: true });
});

Deno.test("train: a periodic checkpoint at the run's last step is rewritten at its end with the finished run state", async () => {
  // the epoch's end changes the run state (epoch, best, examples) but not the parameters: the checkpoint
  // written by --checkpoint-every at that very step must not stay the newest with the old run state
  const first = await Trainer.create({
    config: { ...config, epochs: 1 },
    vocab,
    openReader: memoryReader(corpus),
    log: quiet,
  });
  await first.train({ paths: ["mem"], rows: corpus.length });
  const steps = first.step;
  first.close();
  const dir = await Deno.makeTempDir();
  const t = await Trainer.create({
    config: { ...config, epochs: 1, checkpointEvery: steps },
    vocab,
    openReader: memoryReader(corpus),
    log: quiet,
  });
  await t.train({ paths: ["mem"], rows: corpus.length, checkpointDir: dir });
  assert.equal(t.step, steps);
  const all = await listCheckpoints(dir);
  const last = await readCheckpoint(all[all.length - 1]);
  assert.equal(last.meta.step, steps);
  const run = last.meta.run as { epoch: number; epochs: number };
  assert.equal(run.epoch, run.epochs, "the newest checkpoint says the training is finished");
  t.close();
  await Deno.remove(dir, { recursive: true });
});
