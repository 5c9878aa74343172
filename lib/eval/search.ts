/**
 * Cosine search kernels over unit rows (see {@link EmbeddingIndex}).
 *
 * Shapes and layouts (all row-major):
 * - `unit`: V×d, unit rows; only rows 0…N−1 are searched (N ≤ V, the frequency cut-off).
 * - `queries`: nq×d (need not be unit: the arg-max of a dot product with unit rows is the same).
 * - `exclude`: nq×E row ids that may not be returned for that query (−1 = no id), E ≥ 0.
 * - `skip` (optional, V entries): rows never returned, for any query (1 = skipped): the zero rows of an
 *   {@link EmbeddingIndex} (`index.zero`), which have no cosine.
 * - results: `best` (nq) the arg-max row (−1 if every row is excluded), `bestScore` (nq) its dot product.
 *
 * Three implementations: {@link bestRowsReference}, the plain loop; {@link bestRows}, which scores four
 * queries per pass over a row so that each row element is loaded once for four products (identical
 * results: same summation order, lowest id wins ties); and {@link bestRowsGemm}, one sgemm of a
 * {@link LinAlgBackend} (OpenBLAS) per block of queries, then an arg-max scan (float32 sums: it may pick
 * the other row of a near-tie, within float32 rounding).
 *
 * @module
 */

import type { LinAlgBackend } from "../linalg/backend.ts";
import type { EmbeddingIndex } from "./index.ts";

/**
 * Plain reference arg-max search: for each query, the row j < N maximising unit_j · query, skipping
 * its excluded ids.
 *
 * @example
 * ```ts
 * import { bestRowsReference } from "./search.ts";
 * const unit = Float32Array.of(1, 0, 0, 1);
 * const r = bestRowsReference(unit, 2, 2, Float32Array.of(0.2, 0.9), 1, new Int32Array(0), 0);
 * r.best[0]; // 1
 * ```
 */
export function bestRowsReference(
  unit: Float32Array,
  N: number,
  d: number,
  queries: Float32Array,
  nq: number,
  exclude: Int32Array,
  E: number,
  skipRows?: Uint8Array,
): { best: Int32Array; bestScore: Float32Array } {
  const best = new Int32Array(nq).fill(-1);
  const bestScore = new Float32Array(nq).fill(-Infinity);
  for (let q = 0; q < nq; q++) {
    let bs = -Infinity, bi = -1;
    for (let j = 0; j < N; j++) {
      if (skipRows?.[j]) continue;
      let skip = false;
      for (let e = 0; e < E; e++) if (exclude[q * E + e] === j) skip = true;
      if (skip) continue;
      let s = 0;
      for (let k = 0; k < d; k++) s += unit[j * d + k] * queries[q * d + k];
      if (s > bs) {
        bs = s;
        bi = j;
      }
    }
    best[q] = bi;
    bestScore[q] = bs;
  }
  return { best, bestScore };
}

/**
 * Fast arg-max search, same contract and results as {@link bestRowsReference}.
 *
 * @example
 * ```ts
 * import { bestRows } from "./search.ts";
 * const unit = Float32Array.of(1, 0, 0, 1);
 * const r = bestRows(unit, 2, 2, Float32Array.of(0.2, 0.9, 1, 0), 2, Int32Array.of(1, 0), 1);
 * [r.best[0], r.best[1]]; // [0, 1]: each query's best row is excluded
 * ```
 */
export function bestRows(
  unit: Float32Array,
  N: number,
  d: number,
  queries: Float32Array,
  nq: number,
  exclude: Int32Array,
  E: number,
  skipRows?: Uint8Array,
): { best: Int32Array; bestScore: Float32Array } {
  const best = new Int32Array(nq).fill(-1);
  const bs = new Float64Array(nq).fill(-Infinity);
  const q4 = nq - (nq % 4);
  for (let j = 0; j < N; j++) {
    if (skipRows?.[j]) continue;
    const r = j * d;
    for (let q = 0; q < q4; q += 4) {
      const a = q * d, b = a + d, c = b + d, e = c + d;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < d; k++) {
        const x = unit[r + k];
        s0 += x * queries[a + k];
        s1 += x * queries[b + k];
        s2 += x * queries[c + k];
        s3 += x * queries[e + k];
      }
      if (s0 > bs[q] && !excluded(exclude, E, q, j)) (bs[q] = s0, best[q] = j);
      if (s1 > bs[q + 1] && !excluded(exclude, E, q + 1, j)) (bs[q + 1] = s1, best[q + 1] = j);
      if (s2 > bs[q + 2] && !excluded(exclude, E, q + 2, j)) (bs[q + 2] = s2, best[q + 2] = j);
      if (s3 > bs[q + 3] && !excluded(exclude, E, q + 3, j)) (bs[q + 3] = s3, best[q + 3] = j);
    }
    for (let q = q4; q < nq; q++) {
      const a = q * d;
      let s = 0;
      for (let k = 0; k < d; k++) s += unit[r + k] * queries[a + k];
      if (s > bs[q] && !excluded(exclude, E, q, j)) (bs[q] = s, best[q] = j);
    }
  }
  return { best, bestScore: Float32Array.from(bs) };
}

/**
 * Arg-max search through a backend's sgemm: S = Q·Uᵀ (nq×N, in blocks of `block` queries), then a scan
 * of each row of S. Same contract as {@link bestRowsReference}. `scores`, when it holds at least
 * min(block, nq)·N floats, is S's storage (overwritten): a caller that searches block after block passes
 * the same array each time, written before, instead of a new S per call (fresh memory costs a page fault
 * per 4 KiB on the VMs this project is measured on: lib/core/reuse.ts).
 *
 * @example
 * ```ts
 * import { createJsBackend } from "../linalg/js.ts";
 * import { bestRowsGemm } from "./search.ts";
 * const la = createJsBackend();
 * const r = bestRowsGemm(la, Float32Array.of(1, 0, 0, 1), 2, 2, Float32Array.of(0.2, 0.9), 1, new Int32Array(0), 0);
 * r.best[0]; // 1
 * ```
 */
export function bestRowsGemm(
  la: LinAlgBackend,
  unit: Float32Array,
  N: number,
  d: number,
  queries: Float32Array,
  nq: number,
  exclude: Int32Array,
  E: number,
  block = 256,
  skipRows?: Uint8Array,
  scores?: Float32Array,
): { best: Int32Array; bestScore: Float32Array } {
  const best = new Int32Array(nq).fill(-1);
  const bestScore = new Float32Array(nq).fill(-Infinity);
  if (N === 0 || nq === 0) return { best, bestScore };
  const size = Math.min(block, nq) * N;
  const S = scores !== undefined && scores.length >= size ? scores : new Float32Array(size);
  for (let q0 = 0; q0 < nq; q0 += block) {
    const nb = Math.min(block, nq - q0);
    // S (nb×N) = Q[q0:q0+nb] (nb×d) · unit[0:N]ᵀ (d×N)
    la.sgemm(false, true, nb, N, d, 1, queries.subarray(q0 * d, (q0 + nb) * d), d, unit, d, 0, S, N);
    for (let b = 0; b < nb; b++) {
      const q = q0 + b, row = b * N;
      let bs = -Infinity, bi = -1;
      for (let j = 0; j < N; j++) {
        const s = S[row + j];
        if (s > bs && !excluded(exclude, E, q, j) && !skipRows?.[j]) (bs = s, bi = j);
      }
      best[q] = bi;
      bestScore[q] = bs;
    }
  }
  return { best, bestScore };
}

function excluded(exclude: Int32Array, E: number, q: number, j: number): boolean {
  for (let e = 0; e < E; e++) if (exclude[q * E + e] === j) return true;
  return false;
}

/**
 * The k rows most cosine-similar to the query vector `v` (length d), best first, skipping `exclude`
 * ids and the zero rows (`index.zero`: no cosine). Ties keep the lower id first.
 *
 * @example
 * ```ts
 * import { EmbeddingIndex } from "./index.ts";
 * import { topKByVector } from "./search.ts";
 * const ix = new EmbeddingIndex(["a", "b", "c"], Float32Array.of(1, 0, 0.6, 0.8, 0, 1), 2);
 * topKByVector(ix, Float32Array.of(1, 0), 2, []); // [{ id: 0, cosine: 1 }, { id: 1, cosine: 0.6 }]
 * ```
 */
export function topKByVector(
  index: EmbeddingIndex,
  v: Float32Array,
  k: number,
  exclude: number[],
  N: number = index.size,
): { id: number; cosine: number }[] {
  if (k <= 0) return [];
  const d = index.d, u = index.unit;
  let norm = 0;
  for (let t = 0; t < d; t++) norm += v[t] * v[t];
  const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  const ids: number[] = [];
  const scores: number[] = [];
  for (let j = 0; j < Math.min(N, index.size); j++) {
    if (index.zero[j] || exclude.includes(j)) continue;
    let s = 0;
    for (let t = 0; t < d; t++) s += u[j * d + t] * v[t];
    s *= inv;
    if (ids.length === k && s <= scores[k - 1]) continue;
    let p = ids.length === k ? k - 1 : ids.length;
    while (p > 0 && scores[p - 1] < s) p--;
    ids.splice(p, 0, j);
    scores.splice(p, 0, s);
    if (ids.length > k) {
      ids.pop();
      scores.pop();
    }
  }
  return ids.map((id, i) => ({ id, cosine: scores[i] }));
}
