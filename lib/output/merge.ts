/**
 * Per-example merging of repeated target indices into reusable scratch buffers (a loss sees each target
 * once per example, with the weights of its repeats summed).
 *
 * Layout: entry k < nnz belongs to example ex[k]; example i owns entries off[i] … off[i+1]-1, in the
 * order of first occurrence in the batch. Buffers grow only when a batch needs more room.
 *
 * @module
 */

import type { SparseBatch } from "../core/types.ts";

/**
 * Reusable scratch holding a minibatch's targets with repeats merged. Merging is O(K²) per example
 * (K = targets of the example; K ≪ d by design), deterministic and allocation-free once grown.
 *
 * @example
 * ```ts
 * import { MergedTargets } from "./merge.ts";
 * const t = new MergedTargets();
 * t.merge({ offsets: Int32Array.of(0, 3), indices: Int32Array.of(4, 2, 4), values: Float32Array.of(1, 1, 0.5) });
 * // t.nnz === 2, t.idx = [4, 2], t.w = [1.5, 1]
 * ```
 */
export class MergedTargets {
  /** Number of examples of the last merged batch. */
  m = 0;
  /** Number of merged (unique per example) entries. */
  nnz = 0;
  /** Largest merged K of one example. */
  maxK = 0;
  /** Example offsets, m+1. */
  off: Int32Array = new Int32Array(1);
  /** Target index of each entry. */
  idx: Int32Array = new Int32Array(0);
  /** Summed weight of each entry (float64). */
  w: Float64Array = new Float64Array(0);
  /** Example of each entry. */
  ex: Int32Array = new Int32Array(0);

  /**
   * Merges the batch Y (already validated) into this scratch.
   *
   * @param Y the CSR batch
   */
  merge(Y: SparseBatch): void {
    const { offsets, indices, values } = Y;
    const m = offsets.length - 1;
    const n = indices.length;
    if (this.off.length < m + 1) this.off = new Int32Array(m + 1);
    if (this.idx.length < n) {
      const cap = Math.max(n, 2 * this.idx.length);
      this.idx = new Int32Array(cap);
      this.w = new Float64Array(cap);
      this.ex = new Int32Array(cap);
    }
    const { off, idx, w, ex } = this;
    let nnz = 0, maxK = 0;
    for (let i = 0; i < m; i++) {
      const start = nnz;
      off[i] = start;
      for (let k = offsets[i]; k < offsets[i + 1]; k++) {
        const c = indices[k];
        let j = start;
        while (j < nnz && idx[j] !== c) j++;
        if (j === nnz) {
          idx[nnz] = c;
          w[nnz] = values[k];
          ex[nnz] = i;
          nnz++;
        } else {
          w[j] += values[k];
        }
      }
      if (nnz - start > maxK) maxK = nnz - start;
    }
    off[m] = nnz;
    this.m = m;
    this.nnz = nnz;
    this.maxK = maxK;
  }
}
