/**
 * The O(Dd²) passes over V split across the pool's threads (lib/output/factored/passes_kernel.ts) against
 * the serial passes of passes.ts on one OpenBLAS thread: the Gram within float64 rounding and the same bits
 * at every thread count and stood down; materialize and the fold the same bits as the serial pass; V off the
 * shared memory falls back to the serial pass; a pooled layer's health check and refresh run the kernel.
 *
 * Run: npx deno test -A tests/output_passes_split_test.ts
 */

import assert from "node:assert/strict";
import { createPooledBackend, type PooledBackend } from "../lib/linalg/pool.ts";
import { CHUNK_ROWS, ChunkScratch, foldInto, gramOf, materialize } from "../lib/output/factored/passes.ts";
import { GRAM_BLOCKS } from "../lib/output/factored/passes_kernel.ts";
import { FactoredOutputLayer } from "../lib/output/factored/layer.ts";
import { createLoss } from "../lib/losses/mod.ts";
import { blasAvailable, oneThread, randomBatch, randomH, rng, uniform } from "./layers_helpers.ts";

const ok = await blasAvailable();

// more chunks than blocks, and a last chunk of 37 rows
const D = 40 * CHUNK_ROWS + 37, d = 67;

function sharedV(pool: PooledBackend, seed: number): Float32Array {
  const V = pool.sharedF32(D * d);
  V.set(uniform(rng(seed), D * d, 1));
  return V;
}

function relMax(a: Float64Array, b: Float64Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(a[i]));
  }
  return num / den;
}

Deno.test({
  name:
    "the split Gram: within float64 rounding of the serial one, the same bits at 2 and 3 threads and stood down",
  ignore: !ok,
  fn() {
    const serial = oneThread(),
      two = createPooledBackend(oneThread(), 2),
      three = createPooledBackend(oneThread(), 3);
    try {
      const V = sharedV(two, 1), V3 = three.sharedF32(D * d);
      V3.set(V);
      const G1 = new Float64Array(d * d), s1 = new Float64Array(d);
      gramOf(serial, V, D, d, G1, s1, new ChunkScratch(d));
      const G2 = new Float64Array(d * d), s2 = new Float64Array(d), c2 = new Float64Array(d * d);
      const scratch2 = new ChunkScratch(d, two), kernels = two.kernelCalls;
      gramOf(two, V, D, d, G2, s2, scratch2);
      assert.equal(two.kernelCalls, kernels + 1, "the Gram ran as one kernel run");
      assert.ok(relMax(G1, G2) < 1e-13, `Gram ${relMax(G1, G2)}`);
      assert.ok(relMax(s1, s2) < 1e-13, `sums ${relMax(s1, s2)}`);
      for (let i = 0; i < d; i++) {
        for (let j = 0; j < d; j++) assert.equal(G2[i * d + j], G2[j * d + i]);
      }
      const G3 = new Float64Array(d * d), s3 = new Float64Array(d);
      gramOf(three, V3, D, d, G3, s3, new ChunkScratch(d, three));
      assert.deepEqual(G3, G2);
      assert.deepEqual(s3, s2);
      // stood down: the caller runs every part
      two.standDown(1);
      gramOf(two, V, D, d, c2, null, scratch2);
      assert.deepEqual(c2, G2);
      // fewer rows than blocks' worth of chunks
      const small = 3 * CHUNK_ROWS - 5, Gs1 = new Float64Array(d * d), Gs2 = new Float64Array(d * d);
      gramOf(serial, V, small, d, Gs1, null, new ChunkScratch(d));
      gramOf(two, V, small, d, Gs2, null, scratch2);
      assert.ok(relMax(Gs1, Gs2) < 1e-13);
      assert.ok(GRAM_BLOCKS > 3);
    } finally {
      serial.close();
      two.close();
      three.close();
    }
  },
});

Deno.test({
  name: "the split materialize and fold: the serial pass's bits; V off the shared memory runs serially",
  ignore: !ok,
  fn() {
    const serial = oneThread(), two = createPooledBackend(oneThread(), 2);
    try {
      const V = sharedV(two, 2), r = rng(3);
      const U = new Float64Array(d * d), omega = new Float64Array(d);
      for (let i = 0; i < U.length; i++) U[i] = 0.4 * r() - 0.2 + (i % (d + 1) === 0 ? 1 : 0);
      for (let i = 0; i < d; i++) omega[i] = 0.2 * r() - 0.1;
      const W1 = new Float32Array(D * d), W2 = two.sharedF32(D * d);
      materialize(serial, V, D, d, U, omega, W1, new ChunkScratch(d));
      const scratch = new ChunkScratch(d, two), kernels = two.kernelCalls;
      materialize(two, V, D, d, U, omega, W2, scratch);
      assert.equal(two.kernelCalls, kernels + 1);
      assert.deepEqual(W2, W1);
      // the fold: V itself is the output
      const Vs = V.slice(), U1 = U.slice(), Ui1 = U.slice(), o1 = omega.slice();
      foldInto(serial, Vs, D, d, U1, Ui1, o1, new ChunkScratch(d));
      foldInto(two, V, D, d, U.slice(), U.slice(), omega.slice(), scratch);
      assert.deepEqual(V, Vs);
      // a plain array: the serial pass, no kernel run
      const plain = V.slice(), Wp = new Float32Array(D * d), Gp = new Float64Array(d * d);
      const before = two.kernelCalls;
      materialize(two, plain, D, d, U, null, Wp, scratch);
      gramOf(two, plain, D, d, Gp, null, scratch);
      assert.equal(two.kernelCalls, before);
      const Wq = new Float32Array(D * d);
      materialize(serial, plain, D, d, U, null, Wq, new ChunkScratch(d));
      assert.deepEqual(Wp, Wq);
    } finally {
      serial.close();
      two.close();
    }
  },
});

Deno.test({
  name: "a pooled layer's health check and refresh run the passes on the pool, and agree with one thread",
  ignore: !ok,
  async fn() {
    const Dl = 3000, dl = 64, W0 = uniform(rng(4), Dl * dl, 0.05);
    const serial = oneThread(), pooled = createPooledBackend(oneThread(), 2);
    const one = FactoredOutputLayer.fromInit(Dl, dl, W0, createLoss("squared"), serial, {});
    const two = FactoredOutputLayer.fromInit(Dl, dl, W0, createLoss("squared"), pooled, {});
    try {
      for (const layer of [one, two]) {
        const rr = rng(5);
        for (let t = 0; t < 5; t++) {
          await layer.step(randomH(rr, 16, dl, 1), randomBatch(rr, 16, Dl, 3), 0.05);
        }
      }
      const before = pooled.kernelCalls;
      const a = await one.diagnostics({ full: true }), b = await two.diagnostics({ full: true });
      assert.ok(pooled.kernelCalls > before, "the health check's Gram ran on the pool");
      assert.ok(b.qDrift! < 1e-5, `the pooled layer's Q drift ${b.qDrift}`);
      assert.ok(Math.abs(a.qDrift! - b.qDrift!) < 1e-6, `Q drift ${a.qDrift} against ${b.qDrift}`);
      const k = pooled.kernelCalls;
      one.refresh();
      two.refresh();
      assert.ok(pooled.kernelCalls >= k + 2, "the fold and the Gram of the refresh ran on the pool");
      const w1 = await one.weights(), w2 = await two.weights();
      let worst = 0;
      for (let i = 0; i < w1.length; i++) worst = Math.max(worst, Math.abs(w1[i] - w2[i]));
      assert.ok(worst < 1e-5, `W after the refresh differs by ${worst}`);
    } finally {
      one.close();
      two.close();
      serial.close();
      pooled.close();
    }
  },
});
