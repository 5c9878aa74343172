/**
 * Frequency weighting of the target words (`--target-power α`, `--target-scale k`): every target c's value
 * or weight is multiplied by k·(D·p(c))^−α, p(c) = count(c)/Σ counts its corpus frequency (vocab.tsv's
 * counts), so at k = 1 a word at the uniform frequency 1/D keeps its value, a more frequent one is scaled
 * down and a rarer one up.
 *
 * For squared error the target values are what each output is regressed to, so this changes the matrix
 * the model factorises from the raw conditional co-occurrence p(c | w) to p(c | w)/p(c)^α, the frequent
 * contexts no longer dominating it, and k sets the scale of the outputs it fits, hence how fast a run from
 * a small init leaves it (docs/losses.md, "Squared error"). For the other losses a weight scales its
 * target's term of the loss (k acts as a step-size multiplier). α = 0, k = 1 (the defaults) leave the
 * targets as they are and cost nothing.
 *
 * @module
 */

import type { SparseBatch } from "../core/types.ts";

/**
 * The per-word factors k·(D·p(c))^−α for a vocabulary's counts, or null for α = 0 and k = 1 (no scaling).
 * A count below 1 counts as 1 (a word the vocabulary keeps was seen at least once).
 *
 * @example
 * ```ts
 * import { targetScales } from "./target_weights.ts";
 * const s = targetScales([300, 100, 100, 100], 0.5)!; // D·p = 2, 2/3, 2/3, 2/3
 * console.log(s[0].toFixed(3)); // "0.707"
 * console.log(targetScales([300, 100, 100, 100], 0.5, 4)![0].toFixed(3)); // "2.828"
 * ```
 */
export function targetScales(counts: ArrayLike<number>, power: number, scale = 1): Float32Array | null {
  if (power === 0 && scale === 1) return null;
  const D = counts.length;
  let total = 0;
  for (let i = 0; i < D; i++) total += Math.max(1, counts[i]);
  const out = new Float32Array(D);
  for (let i = 0; i < D; i++) out[i] = scale * Math.pow((Math.max(1, counts[i]) * D) / total, -power);
  return out;
}

/**
 * Scales the values of target batches by per-word factors into a buffer of its own (the reader's batch
 * is left as it is: it may be reused or shared). Allocation only when a batch is larger than any before.
 *
 * @example
 * ```ts
 * import { TargetScaler } from "./target_weights.ts";
 * const scaler = new TargetScaler(Float32Array.of(1, 0.5));
 * const Y = { offsets: Int32Array.of(0, 2), indices: Int32Array.of(0, 1), values: Float32Array.of(1, 1) };
 * console.log(scaler.apply(Y).values); // Float32Array [1, 0.5]
 * ```
 */
export class TargetScaler {
  #values = new Float32Array(0);

  /** @param scales the factor of each word id ({@link targetScales}) */
  constructor(readonly scales: Float32Array) {}

  /**
   * A view of `Y` with every value multiplied by its index's factor (valid until the next call). Throws a
   * RangeError for an index outside the table.
   */
  apply(Y: SparseBatch): SparseBatch {
    const nnz = Y.offsets[Y.offsets.length - 1];
    if (this.#values.length < nnz) this.#values = new Float32Array(Math.max(nnz, 2 * this.#values.length));
    const s = this.scales, idx = Y.indices, v = Y.values, out = this.#values, D = s.length;
    for (let k = 0; k < nnz; k++) {
      const c = idx[k];
      if (!(c >= 0 && c < D)) {
        throw new RangeError(
          `target id ${c} is outside the vocabulary of ${D} words (--target-power/--target-scale)`,
        );
      }
      out[k] = v[k] * s[c];
    }
    return { offsets: Y.offsets, indices: Y.indices, values: out.subarray(0, nnz) };
  }
}
