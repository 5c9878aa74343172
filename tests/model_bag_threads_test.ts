/**
 * The embedding bag split on the pool's threads (usePool: E on its memory, the rows added by the pool's
 * axpyRows, split by the row each entry adds to; issue 18) against the bag on one thread with the same
 * backend rows; both must give the same bits, with repeated ids within and across examples, weights, mean,
 * sum and mean-full, over many steps. And the bag's rows on a backend against its plain loops.
 *
 * Run: npx deno test -A tests/model_bag_threads_test.ts
 */

import assert from "node:assert/strict";
import { type BagMode, EmbeddingBag } from "../lib/model/embedding_bag.ts";
import { openBlasBackend } from "../lib/linalg/blas.ts";
import { createPooledBackend } from "../lib/linalg/pool.ts";
import type { SparseBatch } from "../lib/core/types.ts";
import { blasAvailable, relMaxDiff, rng } from "./layers_helpers.ts";
import { createBackend } from "../lib/linalg/select.ts";

const ok = await blasAvailable();

/** `n` bags over copies of one random rows×dim table (uniform in ±0.5, from `seed`). */
function sameBags(n: number, seed: number, rows: number, dim: number, mode: BagMode): EmbeddingBag[] {
  const r0 = rng(seed), E0 = Float32Array.from({ length: rows * dim }, () => r0() - 0.5);
  return Array.from({ length: n }, () => new EmbeddingBag(Float32Array.from(E0), rows, dim, mode));
}

/**
 * One step of the bags `a` and `b` on the inputs X (m examples): the forwards, into an array and into b's
 * own (returned), must agree bit for bit; then the same random gradient back through both at rate lr.
 */
function stepBoth(
  a: EmbeddingBag,
  b: EmbeddingBag,
  X: SparseBatch,
  r: () => number,
  ld: number,
  lr: number,
  what: string,
): Float32Array {
  const m = X.offsets.length - 1;
  const outA = new Float32Array(m * ld), outB = b.alloc(m * ld) as Float32Array;
  a.forward(X, outA, ld);
  b.forward(X, outB, ld);
  assert.deepEqual(outB, outA, `${what}: forward`);
  const g = Float32Array.from({ length: m * ld }, () => r() - 0.5);
  a.backward(X, g, lr, ld);
  b.backward(X, g, lr, ld);
  return outB;
}

function batch(r: () => number, m: number, rows: number, maxK: number): SparseBatch {
  const offsets = new Int32Array(m + 1), ids: number[] = [], vals: number[] = [];
  for (let i = 0; i < m; i++) {
    const K = 1 + Math.floor(r() * maxK);
    for (let k = 0; k < K; k++) {
      // a few hot rows, so that ids repeat within and across examples
      ids.push(r() < 0.3 ? Math.floor(r() * 5) : Math.floor(r() * rows));
      vals.push(0.25 + r());
    }
    offsets[i + 1] = ids.length;
  }
  return { offsets, indices: Int32Array.from(ids), values: Float32Array.from(vals) };
}

Deno.test({ name: "embedding bag: pooled (2 threads) = one thread, bit for bit", ignore: !ok }, () => {
  // most batches above the split table's scatter size (pool_split.ts: entries × dim ≥ 200,000)
  const rows = 3000, dim = 256, ld = dim + 1;
  const blas = openBlasBackend();
  for (const mode of ["mean", "sum", "mean-full"] as const) {
    for (const maxK of [4, 12]) {
      const [plain, pooled] = sameBags(2, 11, rows, dim, mode);
      plain.useBackend(blas);
      const pool = createPooledBackend(openBlasBackend(), 2);
      try {
        pooled.usePool(pool);
        const r = rng(5 + maxK);
        for (let t = 0; t < 40; t++) {
          const m = 320 + Math.floor(r() * 64);
          stepBoth(plain, pooled, batch(r, m, rows, maxK), r, ld, 0.1, `${mode} K≤${maxK} step ${t}`);
        }
        assert.deepEqual(pooled.E, plain.E, `${mode} K≤${maxK}: E after 40 steps`);
        assert(
          pool.rowSplitCalls >= 60,
          `the bag should run on the pool (${pool.rowSplitCalls} split row calls)`,
        );
        // a batch below the split size runs on this thread
        const small = batch(r, 8, rows, 1), calls = pool.rowSplitCalls;
        pooled.forward(small, pooled.alloc(8 * ld), ld);
        assert.equal(pool.rowSplitCalls, calls, "a small batch should not be split");
        // grown on the pool's memory: still split, still equal
        const extra = Float32Array.from({ length: 4 * dim }, () => r() - 0.5);
        plain.appendRows(extra);
        pooled.appendRows(extra);
        const X = batch(r, 64, rows + 4, maxK), a = new Float32Array(64 * ld), b = pooled.alloc(64 * ld);
        plain.forward(X, a, ld);
        pooled.forward(X, b, ld);
        assert.deepEqual(b, a, `${mode} K≤${maxK}: forward after appendRows`);
      } finally {
        pool.close();
      }
    }
  }
  blas.close();
});

Deno.test({
  name: "embedding bag: moved to a new pool (a rebuilt output layer) keeps E and its bits",
  ignore: !ok,
}, () => {
  const rows = 500, dim = 256, ld = dim;
  const [plain, pooled] = sameBags(2, 21, rows, dim, "mean");
  const blas = openBlasBackend();
  plain.useBackend(blas);
  pooled.useBackend(blas); // its rows once back on this thread
  const first = createPooledBackend(openBlasBackend(), 2), second = createPooledBackend(openBlasBackend(), 2);
  try {
    const r = rng(22);
    const step = () => {
      // 256 examples × ~4.5 inputs × 256: above the split size
      stepBoth(plain, pooled, batch(r, 256, rows, 8), r, ld, 0.05, "moved bag");
    };
    pooled.usePool(first);
    for (let t = 0; t < 5; t++) step();
    pooled.usePool(second);
    first.close(); // the old layer's pool is closed when the head is rebuilt
    for (let t = 0; t < 5; t++) step();
    assert(second.sharedId(pooled.E) >= 0, "E should live on the new pool's memory");
    assert(second.rowSplitCalls >= 10, `the new pool should run the bag (${second.rowSplitCalls})`);
    assert.deepEqual(pooled.E, plain.E);
    pooled.usePool(null); // back on this thread
    step();
    assert.deepEqual(pooled.E, plain.E);
  } finally {
    first.close();
    second.close();
    blas.close();
  }
});

Deno.test({
  name:
    "embedding bag: usePool(pool, false) puts the outputs on the pool's memory and runs the bag on this thread",
  ignore: !ok,
}, () => {
  const rows = 500, dim = 256, ld = dim;
  const [plain, bag] = sameBags(2, 31, rows, dim, "mean-full");
  const pool = createPooledBackend(openBlasBackend(), 2);
  try {
    bag.usePool(pool, false);
    const r = rng(32);
    for (let t = 0; t < 5; t++) {
      const out = stepBoth(plain, bag, batch(r, 64, rows, 12), r, ld, 0.05, `step ${t}`);
      assert(pool.sharedId(out) >= 0, "the output should be on the pool's memory");
    }
    assert.equal(pool.rowSplitCalls, 0, "no rows split on the pool");
    assert(pool.sharedId(bag.E) < 0, "E stays in its own array");
    assert.deepEqual(bag.E, plain.E);
    // grown (the trainer's growVocabulary): still in its own array, not on the pool's memory
    const extra = Float32Array.from({ length: 2 * dim }, () => r() - 0.5);
    plain.appendRows(extra);
    bag.appendRows(extra);
    assert(pool.sharedId(bag.E) < 0, "E grown in its own array");
    assert.deepEqual(bag.E, plain.E);
    bag.usePool(pool); // and split from here on: the rows on the pool's axpyRows (cblas_saxpy), as on blas
    const blas = openBlasBackend(),
      unsplit = new EmbeddingBag(Float32Array.from(plain.E), rows + 2, dim, "mean-full");
    unsplit.useBackend(blas);
    const X = batch(r, 256, rows, 12), a = new Float32Array(256 * ld), b = bag.alloc(256 * ld);
    unsplit.forward(X, a, ld);
    bag.forward(X, b, ld);
    blas.close();
    assert.deepEqual(b, a);
    assert(pool.rowSplitCalls > 0 && pool.sharedId(bag.E) >= 0, "split after usePool(pool)");
  } finally {
    pool.close();
  }
});

Deno.test({
  name:
    "embedding bag with a backend's row axpys: js = the plain loops bit for bit, blas = them up to float32 rounding and = its split on the pool bit for bit",
  ignore: !ok,
}, async () => {
  const rows = 400, dim = 96, ld = dim + 3;
  const js = await createBackend("js", { log: () => {} }), blas = openBlasBackend();
  const pool = createPooledBackend(openBlasBackend(), 2);
  try {
    for (const mode of ["mean", "sum", "mean-full"] as const) {
      const [plain, withJs, withBlas, split] = sameBags(4, 41, rows, dim, mode);
      withJs.useBackend(js);
      withBlas.useBackend(blas);
      split.usePool(pool);
      const r = rng(42);
      for (let t = 0; t < 30; t++) {
        // one input of weight 1 per example now and then (the copied rows), else windows with repeats; most
        // windowed batches above the split size (entries × dim ≥ 200,000)
        const m = 320 + Math.floor(r() * 64), X = t % 5 === 0 ? batch(r, m, rows, 1) : batch(r, m, rows, 12);
        if (t % 5 === 0) X.values.fill(1);
        const outs = [plain, withJs, withBlas, split].map((bag) => {
          const out = bag === split ? split.alloc(m * ld) : new Float32Array(m * ld);
          bag.forward(X, out, ld);
          return out;
        });
        assert.deepEqual(outs[1], outs[0], `${mode} step ${t}: js forward`);
        assert.deepEqual(outs[3], outs[2], `${mode} step ${t}: split forward`);
        assert.ok(
          relMaxDiff(outs[2], outs[0]) < 1e-6,
          `${mode} step ${t}: blas forward ${relMaxDiff(outs[2], outs[0])}`,
        );
        const g = Float32Array.from({ length: m * ld }, () => r() - 0.5);
        for (const bag of [plain, withJs, withBlas, split]) bag.backward(X, g, 0.05, ld);
      }
      assert.deepEqual(withJs.E, plain.E, `${mode}: js E`);
      assert.deepEqual(split.E, withBlas.E, `${mode}: split E`);
      assert.ok(relMaxDiff(withBlas.E, plain.E) < 1e-6, `${mode}: blas E ${relMaxDiff(withBlas.E, plain.E)}`);
      assert.notDeepEqual(withBlas.E, plain.E, `${mode}: the blas rows should round as float32 saxpy`);
    }
    assert(pool.rowSplitCalls > 0, "the split bag should run on the pool");
  } finally {
    pool.close();
    blas.close();
    js.close();
  }
});

Deno.test({
  name:
    "embedding bag with blas rows narrower than SAXPY_MIN_WIDTH: on the pool = unsplit, bit for bit (never split)",
  ignore: !ok,
}, () => {
  // dim 16: blas's axpyRows adds such rows with the js loops, and the pool does not split them
  const rows = 300,
    dim = 16,
    ld = dim + 1,
    blas = openBlasBackend(),
    pool = createPooledBackend(openBlasBackend(), 2);
  try {
    const [unsplit, split] = sameBags(2, 51, rows, dim, "mean");
    unsplit.useBackend(blas);
    split.usePool(pool);
    const r = rng(52);
    for (let t = 0; t < 5; t++) {
      const m = 300, X = batch(r, m, rows, 24);
      const a = new Float32Array(m * ld), b = split.alloc(m * ld);
      unsplit.forward(X, a, ld);
      split.forward(X, b, ld);
      assert.deepEqual(b, a, `step ${t}: forward`);
      const g = Float32Array.from({ length: m * ld }, () => r() - 0.5);
      unsplit.backward(X, g, 0.05, ld);
      split.backward(X, g, 0.05, ld);
    }
    assert.equal(pool.rowSplitCalls, 0, "rows narrower than SAXPY_MIN_WIDTH are not split");
    assert.deepEqual(split.E, unsplit.E, "E");
  } finally {
    pool.close();
    blas.close();
  }
});
