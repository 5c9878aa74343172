/**
 * Touching the rows a sparse row call is about to read, so that their cache misses overlap.
 *
 * The factored step reads a few random rows of a large V per example (its K target rows; a 200,000×256 V
 * is 205 MB, far beyond the caches), and the embedding bag a few random rows of E (lib/model/embedding_bag.ts
 * `bagForward`: the output layer's step has pushed them out of the caches since the last batch). One
 * `cblas_sdot` per row waits for its row's first miss before the next call starts, so the rows arrive one
 * latency at a time. Reading one float per cache line of all of an example's rows first, in one loop of
 * independent loads, lets the core have them in flight together; the calls that follow then find their rows
 * in cache. It only reads: the results are the same bits with or without it. BENCHMARKS.md ("Touching the
 * target rows and OpenBLAS's idle threads"; for the bag, "The m×m work beside the rows, …") has the
 * measurements.
 *
 * @module
 */

/** float32 values per 64-byte cache line. */
const LINE = 16;

/**
 * Rows touched at a time by a long sparse row call (a few KB: they stay in L1/L2 until their calls run).
 *
 * @example
 * ```ts
 * import { TOUCH_ROWS } from "./touch.ts";
 * console.log(TOUCH_ROWS); // 8
 * ```
 */
export const TOUCH_ROWS = 8;

/**
 * Reads one float per cache line of rows `rows[first .. first + n)` of A (rows of width d at stride lda)
 * and returns their sum (returned so that the loads are not dropped as dead code; callers may ignore it).
 *
 * @example
 * ```ts
 * import { touchRows } from "./touch.ts";
 * const A = new Float32Array(4 * 32).fill(1);
 * console.log(touchRows(A, 32, Int32Array.of(3, 1), 0, 2, 32)); // 4 (two lines per row, two rows)
 * ```
 *
 * @param A the matrix (row-major)
 * @param lda stride of A's rows
 * @param rows row indices
 * @param first first entry of rows
 * @param n entries
 * @param d row width
 * @returns the sum of the floats read
 */
export function touchRows(
  A: Float32Array | Float64Array,
  lda: number,
  rows: Int32Array,
  first: number,
  n: number,
  d: number,
): number {
  let s = 0;
  const line = (LINE * 4) / A.BYTES_PER_ELEMENT;
  for (let k = first; k < first + n; k++) {
    const r = rows[k] * lda;
    for (let c = 0; c < d; c += line) s += A[r + c];
  }
  return s;
}
