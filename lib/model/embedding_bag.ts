/**
 * The sparse input layer: an embedding bag over the input ids of each example, mean or sum, weighted by
 * the input values. Only the rows an example touches are read and updated (O(K·dim) per example,
 * independent of the number of rows).
 *
 * Layout: E is rows×dim row-major; a batch output is m×dim row-major.
 *
 * @module
 */

import type { SparseBatch } from "../core/types.ts";
import { findIndexOutside, rowOfEntry } from "../core/csr.ts";

/**
 * Float arrays the model layers accept (float32 for training, float64 for gradient checks).
 *
 * @example
 * ```ts
 * import type { Arr } from "./embedding_bag.ts";
 * const a: Arr = new Float64Array(3);
 * ```
 */
export type Arr = Float32Array | Float64Array;

/**
 * How the bag combines the rows of an example: `mean` divides the weighted sum by the sum of the weights,
 * `sum` does not.
 *
 * @example
 * ```ts
 * import type { BagMode } from "./embedding_bag.ts";
 * const m: BagMode = "mean";
 * ```
 */
export type BagMode = "mean" | "sum";

/**
 * An embedding bag with plain-SGD sparse row updates.
 *
 * @example
 * ```ts
 * import { EmbeddingBag } from "./embedding_bag.ts";
 * const bag = new EmbeddingBag(new Float32Array(10 * 4).fill(0.5), 10, 4, "mean");
 * const X = { offsets: Int32Array.of(0, 2), indices: Int32Array.of(1, 7), values: Float32Array.of(1, 1) };
 * const h = new Float32Array(4);
 * bag.forward(X, h);
 * bag.backward(X, new Float32Array(4).fill(1), 0.1); // rows 1 and 7 move by -0.05 each
 * ```
 */
export class EmbeddingBag {
  /** rows×dim row-major. Replaced (grown) by {@link EmbeddingBag.appendRows}. */
  E: Arr;
  /** Number of rows. */
  rows: number;

  /**
   * A bag over the given table.
   *
   * @param E initial rows×dim table (kept, not copied)
   * @param rows number of rows
   * @param dim row width
   * @param mode mean or sum
   */
  constructor(E: Arr, rows: number, readonly dim: number, readonly mode: BagMode) {
    if (E.length !== rows * dim) {
      throw new RangeError(`EmbeddingBag: E has ${E.length} elements, expected rows×dim = ${rows}×${dim}`);
    }
    this.E = E;
    this.rows = rows;
  }

  /** The scale applied to example i's weighted sum. */
  #scale(X: SparseBatch, i: number): number {
    if (this.mode === "sum") return 1;
    let w = 0;
    for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) w += X.values[k];
    return w === 0 ? 0 : 1 / w;
  }

  /** Checks every id is in [0, rows); throws a RangeError naming the example and position. */
  check(X: SparseBatch): void {
    const m = X.offsets.length - 1, n = X.offsets[m];
    if (X.indices.length < n || X.values.length < n) {
      throw new RangeError(
        `inputs: offsets end at ${n} but indices/values have ${X.indices.length}/${X.values.length}`,
      );
    }
    const k = findIndexOutside(X, this.rows);
    if (k >= 0) {
      const i = rowOfEntry(X.offsets, k);
      throw new RangeError(
        `inputs: example ${i}, entry ${k - X.offsets[i]}: id ${X.indices[k]} outside [0, ${this.rows})`,
      );
    }
  }

  /** out (m×ld, first dim columns) ← the bag of each example. */
  forward(X: SparseBatch, out: Arr, ld = this.dim): void {
    const m = X.offsets.length - 1, d = this.dim, E = this.E;
    for (let i = 0; i < m; i++) {
      const o = i * ld;
      out.fill(0, o, o + d);
      const sc = this.#scale(X, i);
      for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) {
        const w = X.values[k] * sc, r = X.indices[k] * d;
        for (let j = 0; j < d; j++) out[o + j] += w * E[r + j];
      }
    }
  }

  /** E[id] -= lr · w · scale · grad_i for each input entry, in order (repeated ids accumulate). */
  backward(X: SparseBatch, grad: Arr, lr: number, ld = this.dim): void {
    const m = X.offsets.length - 1, d = this.dim, E = this.E;
    for (let i = 0; i < m; i++) {
      const g = i * ld, sc = this.#scale(X, i);
      for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) {
        const a = lr * X.values[k] * sc, r = X.indices[k] * d;
        for (let j = 0; j < d; j++) E[r + j] -= a * grad[g + j];
      }
    }
  }

  /** Appends n rows (n×dim, row-major) to the table. */
  appendRows(rows: Arr): void {
    if (rows.length % this.dim !== 0) {
      throw new RangeError(
        `EmbeddingBag.appendRows: ${rows.length} values is not a multiple of dim ${this.dim}`,
      );
    }
    const grown = new (this.E.constructor as Float32ArrayConstructor)(this.E.length + rows.length);
    grown.set(this.E);
    grown.set(rows, this.E.length);
    this.E = grown;
    this.rows += rows.length / this.dim;
  }
}
