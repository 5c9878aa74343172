// The trainer's per-stage times (lib/train/stages.ts): the clock itself, the summary's stageSeconds and the
// JSON progress lines, with a reader that reports its own read/shuffle times and one that does not; and the
// summary's counts of the output layer's thread pool.
import assert from "node:assert/strict";
import { STAGE, StageClock, STAGES } from "../lib/train/stages.ts";
import { ProgressReporter } from "../lib/train/progress.ts";
import { type OpenReader, Trainer } from "../lib/train/trainer.ts";
import { memoryReader, ringCorpus, ringVocab, smallConfig } from "./train_fakes.ts";
import type { PooledBackend } from "../lib/linalg/pool.ts";
import { blasAvailable } from "./layers_helpers.ts";

/** Trainer.create with FACTOROUT_THREADS set while its backend is made (the backend reads it then). */
async function createWithThreads(
  threads: string,
  opts: Parameters<typeof Trainer.create>[0],
): Promise<Trainer> {
  const had = Deno.env.get("FACTOROUT_THREADS");
  Deno.env.set("FACTOROUT_THREADS", threads);
  try {
    return await Trainer.create(opts);
  } finally {
    if (had === undefined) Deno.env.delete("FACTOROUT_THREADS");
    else Deno.env.set("FACTOROUT_THREADS", had);
  }
}

Deno.test("StageClock: a mark charges the time since the last one; move shifts time between stages", () => {
  const clock = new StageClock();
  const until = performance.now() + 5;
  while (performance.now() < until) { /* 5 ms */ }
  clock.mark(STAGE.wait);
  clock.mark(STAGE.split);
  assert.ok(clock.ms[STAGE.wait] >= 5, `${clock.ms[STAGE.wait]}`);
  assert.ok(clock.ms[STAGE.split] < clock.ms[STAGE.wait]);
  clock.move(STAGE.wait, STAGE.bagForward, 2);
  assert.ok(clock.ms[STAGE.bagForward] === 2 && clock.ms[STAGE.wait] >= 3);
  assert.deepEqual(Object.keys(clock.seconds()), [...STAGES]);
});

Deno.test("train: stageSeconds in the summary and the JSON progress; the reader's own times are added", async () => {
  const V = 40, corpus = ringCorpus(V, 600);
  const inner = memoryReader(corpus);
  // a reader that says it spent 1 ms reading and 0.5 ms shuffling per batch (cumulative, as the worker's)
  const timed: OpenReader = async function* (paths, opts) {
    let n = 0;
    for await (const b of inner(paths, opts)) {
      n++;
      yield { ...b, times: { read: n, shuffle: n / 2 } };
    }
  };
  const lines: string[] = [];
  const trainer = await Trainer.create({
    config: smallConfig({ epochs: 2 }),
    vocab: ringVocab(V),
    openReader: timed,
    log: () => {},
  });
  try {
    const s = await trainer.train({
      paths: ["mem"],
      rows: corpus.length,
      progress: new ProgressReporter("json", 0, (l) => lines.push(l)),
    });
    const st = s.thisInvocation.stageSeconds!;
    assert.deepEqual(Object.keys(st), [...STAGES]);
    const batches = 2 * Math.ceil(corpus.length / smallConfig().batch);
    assert.ok(Math.abs(st.read - batches / 1000) < 2e-3, `read ${st.read} for ${batches} batches`);
    assert.ok(Math.abs(st.shuffle - batches / 2000) < 2e-3, `shuffle ${st.shuffle}`);
    assert.ok(st.layerStep > 0 && st.bagForward > 0 && st.bagBackward > 0, JSON.stringify(st));
    // the training thread's stages add up to no more than the call's time (read and shuffle overlap it)
    const own = STAGES.filter((k) => k !== "read" && k !== "shuffle").reduce((a, k) => a + st[k], 0);
    const secs = s.thisInvocation.seconds;
    assert.ok(own <= secs + 0.01 && own >= 0.5 * secs, `${own} of ${secs} s`);
    const progress = lines.map((l) => JSON.parse(l)).filter((e) => e.event === "progress");
    assert.ok(progress.length > 0);
    assert.deepEqual(Object.keys(progress.at(-1).stageSeconds), [...STAGES]);
  } finally {
    trainer.close();
  }
});

Deno.test({
  name:
    "train: the summary counts the output layer's pool; a run stood down gives the same embeddings, bit for bit",
  ignore: !(await blasAvailable()),
}, async () => {
  // batches of 256 × 4 inputs × dim 256: the bag's rows split on the pool (pool_split.ts scatter)
  const V = 200, corpus = ringCorpus(V, 6000);
  const run = async (threads: string, standDown: number) => {
    const trainer = await createWithThreads(threads, {
      config: smallConfig({ epochs: 1, dim: 256, batch: 256, backend: "blas", output: "factored" }),
      vocab: ringVocab(V),
      openReader: memoryReader(corpus),
      log: () => {},
      // the bag split too: this small run's layer takes mostly float64 steps, which split few calls
      splitBag: true,
    });
    try {
      const la = (trainer.output as { la?: unknown }).la;
      if (standDown) (la as PooledBackend).standDown(standDown);
      const summary = await trainer.train({ paths: ["mem"], rows: corpus.length });
      return { pool: summary.thisInvocation.pool, vectors: await trainer.embeddings({ output: true }) };
    } finally {
      trainer.close();
    }
  };
  const one = await run("1", 0);
  assert.equal(one.pool, undefined, "one thread: no pool");
  const two = await run("2", 20);
  assert.ok(two.pool, "two threads: the pool's counts");
  assert.ok(
    two.pool.splitCalls >= 40,
    `the factored step's and the bag's kernels run on the pool (${two.pool.splitCalls})`,
  );
  assert.equal(two.pool.callerOnlyCalls, 20, "the calls stood down before training");
  assert.equal(two.pool.standDowns, 0);
  // the same parts whether the workers or the training thread run them: every call stood down, or none
  const all = await run("2", 1_000_000), none = await run("2", 0);
  assert.equal(all.pool!.callerOnlyCalls, all.pool!.splitCalls);
  assert.equal(none.pool!.callerOnlyCalls, 0);
  assert.deepEqual(all.vectors.input, none.vectors.input, "input vectors");
  assert.deepEqual(all.vectors.output, none.vectors.output, "output vectors");
  assert.deepEqual(two.vectors.input, none.vectors.input);
});

Deno.test({
  name: "train: the embedding bag splits on the pool only with splitBag (FACTOROUT_BAG_SPLIT); the same bits",
  ignore: !(await blasAvailable()),
}, async () => {
  // 4 inputs per example × 256 × dim 256: a batch whose rows the pool splits (pool_split.ts scatter)
  const V = 200, corpus = ringCorpus(V, 1500);
  const run = async (splitBag?: boolean) => {
    const trainer = await createWithThreads("2", {
      config: smallConfig({ epochs: 1, dim: 256, batch: 256, backend: "blas", output: "factored" }),
      vocab: ringVocab(V),
      openReader: memoryReader(corpus),
      log: () => {},
      ...(splitBag === undefined ? {} : { splitBag }),
    });
    try {
      const pool = (trainer.output as { la?: unknown }).la as PooledBackend;
      await trainer.train({ paths: ["mem"], rows: corpus.length });
      return {
        onPool: pool.sharedId(trainer.model.bag.E) >= 0,
        vectors: await trainer.embeddings({ output: true }),
      };
    } finally {
      trainer.close();
    }
  };
  const split = await run(true), plain = await run(false);
  assert.equal(split.onPool, true, "split: E on the pool's memory");
  assert.equal(plain.onPool, false, "not split: E stays in its own array");
  assert.deepEqual(split.vectors.input, plain.vectors.input, "input vectors");
  assert.deepEqual(split.vectors.output, plain.vectors.output, "output vectors");
  if (Deno.env.get("FACTOROUT_BAG_SPLIT") === undefined) {
    assert.equal((await run()).onPool, false, "the default (FACTOROUT_BAG_SPLIT unset): not split");
  }
});
