/**
 * Exact top-k selection over n scores with a size-k min-heap: O(n log k), ties broken by the smaller
 * index (so both layers rank identically when their scores agree).
 *
 * @module
 */

/**
 * The k largest of scores[0 … n-1], best first. NaN scores are never selected.
 *
 * @example
 * ```ts
 * import { selectTopK } from "./topk.ts";
 * const r = selectTopK(Float64Array.of(0.1, 0.7, 0.2), 3, 2); // indices [1, 2]
 * ```
 *
 * @param scores the scores
 * @param n how many of them to consider
 * @param k how many to return (clamped to n)
 * @returns indices and scores, best first
 */
export function selectTopK(
  scores: Float64Array,
  n: number,
  k: number,
): { indices: Int32Array; scores: Float64Array } {
  if (!Number.isSafeInteger(k) || k < 1) {
    throw new RangeError(`k must be a positive integer, got ${String(k)}`);
  }
  k = Math.min(k, n);
  const hi = new Int32Array(k); // heap of indices; root = worst kept
  let size = 0;
  // a is "worse" than b: lower score, or equal score and larger index
  const worse = (a: number, b: number) => scores[a] < scores[b] || (scores[a] === scores[b] && a > b);
  const siftDown = (p: number) => {
    for (;;) {
      const l = 2 * p + 1, r = l + 1;
      let w = p;
      if (l < size && worse(hi[l], hi[w])) w = l;
      if (r < size && worse(hi[r], hi[w])) w = r;
      if (w === p) return;
      const t = hi[p];
      hi[p] = hi[w];
      hi[w] = t;
      p = w;
    }
  };
  for (let j = 0; j < n; j++) {
    if (Number.isNaN(scores[j])) continue;
    if (size < k) {
      let c = size++;
      hi[c] = j;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!worse(hi[c], hi[p])) break;
        const t = hi[p];
        hi[p] = hi[c];
        hi[c] = t;
        c = p;
      }
    } else if (worse(hi[0], j)) {
      hi[0] = j;
      siftDown(0);
    }
  }
  const indices = new Int32Array(size);
  const out = new Float64Array(size);
  for (let t = size - 1; t >= 0; t--) {
    indices[t] = hi[0];
    out[t] = scores[hi[0]];
    hi[0] = hi[--size];
    siftDown(0);
  }
  return { indices, scores: out };
}
