/**
 * The hash that decides the validation split (lib/train/split.ts): FNV-1a over an example's input ids,
 * then its target ids, mixed, in [0, 1). It depends only on the example's content, so the corpus job can
 * tell which windows the trainer will hold out (lib/io/prepare.ts: with several subsampling draws, the
 * positions of draw 0's held-out windows are left out of the other draws).
 *
 * @module
 */

/**
 * The split hash of the example whose input ids are `inIdx[a..b)` and target ids `tIdx[c..e)`.
 *
 * @example
 * ```ts
 * import { rowHash } from "./row_hash.ts";
 * const h = rowHash(Int32Array.of(7), 0, 1, Int32Array.of(3, 4), 0, 2);
 * console.log(h >= 0 && h < 1); // true
 * ```
 */
export function rowHash(
  inIdx: ArrayLike<number>,
  a: number,
  b: number,
  tIdx: ArrayLike<number>,
  c: number,
  e: number,
): number {
  let h = 0x811c9dc5;
  for (let k = a; k < b; k++) h = Math.imul(h ^ inIdx[k], 0x01000193);
  h = Math.imul(h ^ 0x5bd1e995, 0x01000193);
  for (let k = c; k < e; k++) h = Math.imul(h ^ tIdx[k], 0x01000193);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) / 4294967296;
}
