/**
 * The validation split: an example is held out when a hash of its input and target ids falls below the
 * validation fraction. The decision depends only on the example's content, so it is the same in every
 * epoch, under any shuffling, after a resume, and identical windows always land on the same side.
 *
 * @module
 */

import type { SparseBatch } from "../core/types.ts";
import { CsrBuilder, sliceRows } from "../core/csr.ts";
import { rowHash } from "../core/row_hash.ts";

/**
 * FNV-1a over the input and target ids of example i, mixed; in [0, 1) (lib/core/row_hash.ts).
 *
 * @example
 * ```ts
 * import { exampleHash } from "./split.ts";
 * const X = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(7), values: Float32Array.of(1) };
 * const held = exampleHash(X, X, 0) < 0.01;
 * ```
 */
export function exampleHash(X: SparseBatch, Y: SparseBatch, i: number): number {
  return rowHash(X.indices, X.offsets[i], X.offsets[i + 1], Y.indices, Y.offsets[i], Y.offsets[i + 1]);
}

/**
 * Splits batches into their training and held-out parts, and keeps the first `maxHeldOut` held-out
 * examples seen as the validation set.
 *
 * @example
 * ```ts
 * import { ValidationSplit } from "./split.ts";
 * const split = new ValidationSplit(0.5, 1000);
 * const X = { offsets: Int32Array.of(0, 1, 2), indices: Int32Array.of(1, 2), values: Float32Array.of(1, 1) };
 * const { inputs, targets } = split.apply(X, X, true);
 * console.log(inputs.offsets.length - 1 + split.size); // 2
 * ```
 */
export class ValidationSplit {
  #trainX = new CsrBuilder();
  #trainY = new CsrBuilder();
  #valX = new CsrBuilder();
  #valY = new CsrBuilder();

  /**
   * @param fraction share of examples held out, in [0, 1)
   * @param maxHeldOut most held-out examples kept for evaluation
   */
  constructor(readonly fraction: number, readonly maxHeldOut = 20000) {}

  /** Held-out examples kept. */
  get size(): number {
    return this.#valX.m;
  }

  /**
   * The training part of a batch (views valid until the next call; the batch itself when nothing is held
   * out). With `collect`, held-out examples are added to the validation set until it is full.
   */
  apply(X: SparseBatch, Y: SparseBatch, collect: boolean): { inputs: SparseBatch; targets: SparseBatch } {
    if (this.fraction <= 0) return { inputs: X, targets: Y };
    const m = X.offsets.length - 1;
    let held = 0;
    for (let i = 0; i < m; i++) if (exampleHash(X, Y, i) < this.fraction) held++;
    if (held === 0) return { inputs: X, targets: Y };
    this.#trainX.reset();
    this.#trainY.reset();
    for (let i = 0; i < m; i++) {
      if (exampleHash(X, Y, i) < this.fraction) {
        if (collect && this.#valX.m < this.maxHeldOut) {
          this.#valX.pushRow(X, i);
          this.#valY.pushRow(Y, i);
        }
      } else {
        this.#trainX.pushRow(X, i);
        this.#trainY.pushRow(Y, i);
      }
    }
    return { inputs: this.#trainX.view(), targets: this.#trainY.view() };
  }

  /** The validation set in batches of at most `batch` examples (views). */
  *batches(batch: number): Generator<{ inputs: SparseBatch; targets: SparseBatch }> {
    const X = this.#valX.view(), Y = this.#valY.view(), m = this.#valX.m;
    for (let s = 0; s < m; s += batch) {
      const e = Math.min(m, s + batch);
      yield { inputs: sliceRows(X, s, e), targets: sliceRows(Y, s, e) };
    }
  }

  /** The validation set as plain arrays (for checkpoints). */
  exportState(): Record<string, Float64Array> {
    const out: Record<string, Float64Array> = {};
    for (const [name, b] of [["X", this.#valX], ["Y", this.#valY]] as const) {
      out[`val.${name}.offsets`] = Float64Array.from(b.offsets.subarray(0, b.m + 1));
      out[`val.${name}.indices`] = Float64Array.from(b.indices.subarray(0, b.nnz));
      out[`val.${name}.values`] = Float64Array.from(b.values.subarray(0, b.nnz));
    }
    return out;
  }

  /** Restores {@link ValidationSplit.exportState}'s arrays (missing ones: an empty set). */
  importState(arrays: Record<string, Float32Array | Float64Array>): void {
    for (const [name, b] of [["X", this.#valX], ["Y", this.#valY]] as const) {
      const off = arrays[`val.${name}.offsets`],
        idx = arrays[`val.${name}.indices`],
        val = arrays[`val.${name}.values`];
      b.reset();
      if (!off || off.length < 1) continue;
      b.assign({
        offsets: Int32Array.from(off),
        indices: Int32Array.from(idx),
        values: Float32Array.from(val),
      });
    }
  }
}
