/**
 * Rank correlation. Spearman's ρ is Pearson's correlation of the ranks, where tied values share the
 * average of the ranks they span (so ρ stays exact with ties, unlike the 1 − 6Σd²/(n(n²−1)) shortcut).
 *
 * @module
 */

/**
 * Ranks 1…n of `x`, ties given the average rank they span (fractional ranking).
 *
 * @example
 * ```ts
 * import { averageRanks } from "./spearman.ts";
 * averageRanks([10, 20, 20, 30]); // Float64Array [1, 2.5, 2.5, 4]
 * ```
 */
export function averageRanks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i + 1;
    while (j < n && x[order[j]] === x[order[i]]) j++;
    const r = (i + 1 + j) / 2; // mean of ranks i+1 … j
    for (let k = i; k < j; k++) ranks[order[k]] = r;
    i = j;
  }
  return ranks;
}

/**
 * Pearson's correlation of two equally long samples; NaN when either is constant or n < 2.
 *
 * @example
 * ```ts
 * import { pearson } from "./spearman.ts";
 * pearson([1, 2, 3], [2, 4, 6]); // 1
 * ```
 */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (y.length !== n) throw new RangeError(`pearson: samples have different lengths ${n} and ${y.length}`);
  if (n < 2) return NaN;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  return sxy / Math.sqrt(sxx * syy);
}

/**
 * Spearman's ρ with average ranks for ties; NaN when either sample is constant or n < 2.
 *
 * @example
 * ```ts
 * import { spearman } from "./spearman.ts";
 * spearman([1, 2, 3, 4], [10, 30, 20, 40]); // 0.8
 * ```
 */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (y.length !== x.length) {
    throw new RangeError(`spearman: samples have different lengths ${x.length} and ${y.length}`);
  }
  return pearson(averageRanks(x), averageRanks(y));
}
