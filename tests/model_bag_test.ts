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
