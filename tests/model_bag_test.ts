/**
 * The embedding bag's modes on one thread (lib/model/embedding_bag.ts): mean and sum are the forward and
 * the gradient of their combination; mean-full is the mean's forward with fastText's CBOW update (each row
 * moved by its weight times the whole gradient of the mean), so a row's step does not depend on how many
 * rows its example has.
 *
 * Run: npx deno test -A tests/model_bag_test.ts
 */

import assert from "node:assert/strict";
import { type BagMode, EmbeddingBag } from "../lib/model/embedding_bag.ts";
import type { SparseBatch } from "../lib/core/types.ts";

const dim = 3, rows = 6;
/** Two examples: rows {1, 2} with weights 1, 1, and rows {3, 4, 5, 1} with weights 1, 0.5, 0.5, 2. */
const X: SparseBatch = {
  offsets: Int32Array.of(0, 2, 6),
  indices: Int32Array.of(1, 2, 3, 4, 5, 1),
  values: Float32Array.of(1, 1, 1, 0.5, 0.5, 2),
};
const E0 = Float64Array.from({ length: rows * dim }, (_, i) => ((i * 7) % 11) / 10 - 0.4);
const G = Float64Array.of(1, -2, 0.5, 0.25, 1, -1);

function run(mode: BagMode, lr: number): { h: Float64Array; E: Float64Array } {
  const bag = new EmbeddingBag(Float64Array.from(E0), rows, dim, mode);
  const h = new Float64Array(2 * dim);
  bag.forward(X, h);
  bag.backward(X, G, lr);
  return { h, E: bag.E as Float64Array };
}

/** E0 moved by lr · w · s_i · G_i for each entry, s_i the example's backward scale. */
function expected(lr: number, scale: (i: number) => number): Float64Array {
  const E = Float64Array.from(E0);
  for (let i = 0; i < 2; i++) {
    for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) {
      for (let j = 0; j < dim; j++) E[X.indices[k] * dim + j] -= lr * X.values[k] * scale(i) * G[i * dim + j];
    }
  }
  return E;
}

const close = (a: Float64Array, b: Float64Array, what: string) =>
  a.forEach((v, i) => assert(Math.abs(v - b[i]) < 1e-12, `${what}[${i}]: ${v} vs ${b[i]}`));

Deno.test("embedding bag: mean-full has the mean's forward", () => {
  close(run("mean-full", 0.1).h, run("mean", 0.1).h, "h");
  // example 1's weights sum to 4: its mean is a quarter of its sum
  const sum = run("sum", 0.1).h, mean = run("mean", 0.1).h;
  for (let j = 0; j < dim; j++) assert(Math.abs(mean[dim + j] - sum[dim + j] / 4) < 1e-12);
});

Deno.test("embedding bag: mean moves a row by 1/Σw of its example's gradient, mean-full by all of it", () => {
  const lr = 0.1, wsum = [2, 4];
  close(run("mean", lr).E, expected(lr, (i) => 1 / wsum[i]), "mean's E");
  close(run("mean-full", lr).E, expected(lr, () => 1), "mean-full's E");
  close(run("mean-full", lr).E, run("sum", lr).E, "mean-full's E against sum's");
  // so the step of the rows of the 2-row example is 2× the mean's, of the 4-row one 4×
  const m = run("mean", lr).E, f = run("mean-full", lr).E;
  for (let j = 0; j < dim; j++) {
    const r = 2 * dim + j; // row 2: only in example 0
    assert(Math.abs((f[r] - E0[r]) - 2 * (m[r] - E0[r])) < 1e-12, `row 2, column ${j}`);
  }
});

Deno.test("embedding bag: one input of weight 1 (skip-gram) is its row, the bits of the general sum", async () => {
  const { bagForward } = await import("../lib/model/embedding_bag.ts");
  const d = 7, n = 50, E = new Float32Array(n * d);
  for (let i = 0; i < E.length; i++) E[i] = Math.sin(i * 12.9898) * 43758.5453 % 1;
  const m = 20, ids = Int32Array.from({ length: m }, (_, i) => (i * 13) % n);
  for (const [mode, v] of [["sum", 1], ["mean", 1], ["mean", 2], ["mean-full", 0.5]] as [BagMode, number][]) {
    // each example one entry (the copy) against the same entry beside a second of weight 0 (the loop):
    // 0 + w·e_j + 0·e'_j, the same value; mean's scale 1/Σw is 1/v in both
    const one: SparseBatch = {
      offsets: Int32Array.from({ length: m + 1 }, (_, i) => i),
      indices: ids,
      values: new Float32Array(m).fill(v),
    };
    const two: SparseBatch = {
      offsets: Int32Array.from({ length: m + 1 }, (_, i) => 2 * i),
      indices: Int32Array.from({ length: 2 * m }, (_, k) => k % 2 === 0 ? ids[k >> 1] : (k * 5) % n),
      values: Float32Array.from({ length: 2 * m }, (_, k) => k % 2 === 0 ? v : 0),
    };
    const a = new Float32Array(m * (d + 2)).fill(9), b = new Float32Array(m * (d + 2)).fill(9);
    bagForward(E, d, mode, one, a, d + 2, 0, m);
    bagForward(E, d, mode, two, b, d + 2, 0, m);
    assert.deepEqual(a, b, `${mode}, weight ${v}`);
    // the columns past d are left alone, and sum's rows are E's rows
    for (let i = 0; i < m; i++) assert.equal(a[i * (d + 2) + d], 9);
    if (mode === "sum") assert.deepEqual(a.subarray(0, d), E.subarray(ids[0] * d, ids[0] * d + d));
  }
});
