/**
 * Host-side preparation of a sparse minibatch for the GPU kernels: repeated targets of an example are
 * merged (weights summed) and sorted by row (lib/core/csr.ts); then the entries are grouped by target row across the batch
 * (a CSR over the unique rows) so that one workgroup owns each row in the scatter-add of V: deterministic
 * when an index repeats, with no float atomics. Rows are ranged per V chunk. O(nnz log nnz) per batch,
 * into buffers that grow only when a batch needs more room.
 *
 * Output: `bi` (u32, the sections listed in kernels/common.ts) and `entY` (f32 merged weights).
 *
 * @module
 */

import type { SparseBatch } from "../../core/types.ts";
import { MergedTargets } from "../../core/csr.ts";

/**
 * The packed integer and weight arrays of one batch, ready for upload.
 *
 * @example
 * ```ts
 * import { PackedBatch } from "./batch.ts";
 * const p = new PackedBatch();
 * p.pack({ offsets: Int32Array.of(0, 2, 3), indices: Int32Array.of(5, 5, 1), values: Float32Array.of(1, 1, 2) }, 4, 2);
 * console.log(p.n, p.nU); // 2 2: example 0 has row 5 once (weight 2); rows {1, 5}
 * ```
 */
export class PackedBatch {
  /** Examples. */
  m = 0;
  /** Merged entries. */
  n = 0;
  /** Unique target rows over the batch. */
  nU = 0;
  /** Number of V chunks the ranges were built for. */
  nb = 0;
  /** Packed integers (valid prefix: `biLength`). */
  bi = new Uint32Array(64);
  /** Valid length of `bi`. */
  biLength = 0;
  /** Merged weights (valid prefix: n). */
  entY = new Float32Array(16);
  /** Section offsets into `bi`. */
  off = { exOff: 0, entEx: 0, entRow: 0, sorted: 0, rowOff: 0, chunk: 0 };
  /** Per chunk: merged entries whose row lies in it. */
  chunkEntries: number[] = [];
  /** Per chunk: unique rows in it. */
  chunkRows: number[] = [];
  #merged = new MergedTargets();
  #keys = new Float64Array(16);

  /**
   * Packs a validated batch for a V split into chunks of `rowsPerChunk` rows (`nb` chunks).
   * @param Y the targets (indices already checked to lie in [0, D))
   * @param rowsPerChunk rows of V per chunk
   * @param nb number of chunks
   */
  pack(Y: SparseBatch, rowsPerChunk: number, nb: number): void {
    const mg = this.#merged;
    mg.merge(Y, true);
    const m = mg.m, n = mg.nnz, row = mg.idx, ex = mg.ex, w = mg.w;
    if (this.#keys.length < n) this.#keys = new Float64Array(Math.max(n, this.#keys.length * 2));
    // entries sorted by (row, entry)
    const keys = this.#keys.subarray(0, n);
    for (let e = 0; e < n; e++) keys[e] = row[e] * n + e;
    keys.sort();
    const total = (m + 1) + 3 * n + (n + 1) + 4 * nb;
    if (this.bi.length < total) this.bi = new Uint32Array(Math.max(total, this.bi.length * 2));
    if (this.entY.length < n) this.entY = new Float32Array(Math.max(n, this.entY.length * 2));
    const bi = this.bi;
    const o = this.off;
    o.exOff = 0;
    o.entEx = m + 1;
    o.entRow = o.entEx + n;
    o.sorted = o.entRow + n;
    o.rowOff = o.sorted + n;
    bi.set(mg.off.subarray(0, m + 1), o.exOff);
    for (let e = 0; e < n; e++) {
      bi[o.entEx + e] = ex[e];
      bi[o.entRow + e] = row[e];
      this.entY[e] = w[e];
    }
    let nU = 0;
    let prev = -1;
    for (let u = 0; u < n; u++) {
      const e = keys[u] % n;
      bi[o.sorted + u] = e;
      if (row[e] !== prev) {
        bi[o.rowOff + nU] = u;
        nU++;
        prev = row[e];
      }
    }
    bi[o.rowOff + nU] = n;
    o.chunk = o.rowOff + nU + 1;
    this.chunkEntries = new Array(nb);
    this.chunkRows = new Array(nb);
    let u = 0, r = 0;
    for (let b = 0; b < nb; b++) {
      const end = (b + 1) * rowsPerChunk;
      const eLo = u, rLo = r;
      while (u < n && row[bi[o.sorted + u]] < end) u++;
      while (r < nU && row[bi[o.sorted + bi[o.rowOff + r]]] < end) r++;
      bi.set([eLo, u, rLo, r], o.chunk + 4 * b);
      this.chunkEntries[b] = u - eLo;
      this.chunkRows[b] = r - rLo;
    }
    this.biLength = o.chunk + 4 * nb;
    this.m = m;
    this.n = n;
    this.nU = nU;
    this.nb = nb;
  }
}
