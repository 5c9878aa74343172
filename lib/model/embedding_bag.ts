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
import type { LinAlgBackend } from "../linalg/backend.ts";
import { POOL_MIN_ROWS, type PooledBackend } from "../linalg/pool.ts";
import { touchRows } from "../linalg/touch.ts";
import { BAG_BACKWARD, BAG_FORWARD, BAG_KERNEL_URL, createKernel, runBagKernel } from "./bag_kernel.ts";

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
 * `sum` does not. `mean-full` is the mean forward with fastText's CBOW update: each row moves by its weight
 * times the whole gradient of the mean, not the 1/Σw share that is its gradient (so a row's step does not
 * depend on how many rows the example has). It is not the gradient of the loss.
 *
 * @example
 * ```ts
 * import type { BagMode } from "./embedding_bag.ts";
 * const m: BagMode = "mean";
 * ```
 */
export type BagMode = "mean" | "sum" | "mean-full";

/**
 * Smallest batch (input entries × dim) whose forward and backward a pooled bag splits: a skip-gram batch
 * (one input per example: 64 × 256 at the Brown defaults) ran slower split than on one thread
 * (BENCHMARKS.md, "Two threads and the whole trainer"); a CBOW batch (a window of inputs) is split.
 *
 * @example
 * ```ts
 * import { BAG_POOL_MIN_WORK } from "./embedding_bag.ts";
 * console.log(64 * 10 * 256 >= BAG_POOL_MIN_WORK); // true: CBOW, 10 inputs per example
 * ```
 */
export const BAG_POOL_MIN_WORK = 4 * POOL_MIN_ROWS;

/** Input entries whose rows of E `bagForward` touches ahead at a time (64 rows of 256 floats: 64 KB). */
const BAG_TOUCH = 64;

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
   * @param mode mean, sum or mean-full
   */
  constructor(E: Arr, rows: number, readonly dim: number, readonly mode: BagMode) {
    if (E.length !== rows * dim) {
      throw new RangeError(`EmbeddingBag: E has ${E.length} elements, expected rows×dim = ${rows}×${dim}`);
    }
    this.E = E;
    this.rows = rows;
  }

  #pool: PooledBackend | null = null; // alloc() puts the outputs on its shared memory
  #kernel = -1; // the bag kernel, when forward and backward split on the pool
  #scratch: BagScratch | null = null;
  #la: LinAlgBackend | null = null; // adds the rows (axpyRows), else the plain loops
  #alpha = new Float64Array(0); // per input entry: the row's coefficient (bagForwardRows, bagBackwardRows)
  #ex = new Int32Array(0); // per input entry: its example

  /**
   * Adds the rows of forward and backward with the backend's indexed axpy from now on (`axpyRows`: one
   * `cblas_saxpy` per input entry on blas), null: with the plain loops ({@link bagForward},
   * {@link bagBackward}). On blas a row is added in float32 (its coefficient rounded to float32) where the
   * loops multiply in float64 and round the sum: the same sums up to float32 rounding, at a fraction of the
   * loops' time (BENCHMARKS.md, "The embedding bag's rows on OpenBLAS"); on the js backend the very loops.
   * The trainer calls it with its output layer's backend. A float64 table (gradient checks) keeps the loops.
   *
   * @param la the backend (not owned), or null
   */
  useBackend(la: LinAlgBackend | null): void {
    this.#la = la;
  }

  /** The row coefficients' scratch for n entries. */
  #rowScratch(n: number): void {
    if (this.#alpha.length >= n) return;
    this.#alpha = new Float64Array(Math.max(n, 2 * this.#alpha.length));
    this.#ex = new Int32Array(this.#alpha.length);
  }

  /**
   * Puts the bag's outputs ({@link EmbeddingBag.alloc}) on the pool's shared memory from now on (null: in
   * ordinary arrays), where the output layer reads them in place. With `split`, forward and backward run
   * on the pool's threads too, with E copied to its shared memory: forward split by examples, backward by
   * the rows of E it adds to (row mod parts, each part walking the entries in order), so the results are
   * the same bits as on one thread (bag_kernel.ts). The trainer calls it with its output layer's pool,
   * again when that changes; it splits only with FACTOROUT_BAG_SPLIT=1 (lib/train/defaults.ts `bagSplit`).
   *
   * @param pool the pooled backend, or null
   * @param split run forward and backward split on the pool's threads (default true)
   */
  usePool(pool: PooledBackend | null, split = true): void {
    if (pool === this.#pool && (this.#kernel >= 0) === split) return;
    this.#pool = null;
    this.#kernel = -1;
    this.#scratch = null;
    if (!pool || !(this.E instanceof Float32Array)) return;
    this.#pool = pool;
    if (!split) return;
    const E = pool.sharedF32(this.E.length);
    E.set(this.E);
    this.E = E;
    this.#kernel = pool.registerKernel(BAG_KERNEL_URL, null, createKernel(null));
  }

  /**
   * A zeroed array for the bag's outputs or gradients: on the pool's shared memory when it runs there
   * (forward writes into it in place), else of E's type.
   *
   * @param n length
   * @returns the array
   */
  alloc(n: number): Arr {
    if (this.#pool) return this.#pool.sharedF32(n);
    return new (this.E.constructor as Float32ArrayConstructor)(n);
  }

  /** The pool and the batch copied to its shared memory when this batch is worth splitting, else null. */
  #onPool(X: SparseBatch): BagScratch | null {
    const pool = this.#pool;
    const m = X.offsets.length - 1, n = X.offsets[m];
    if (!pool || this.#kernel < 0 || m < 2 || n * this.dim < BAG_POOL_MIN_WORK) return null;
    let sc = this.#scratch;
    if (!sc || sc.offsets.length < m + 1 || sc.indices.length < n) {
      const mc = Math.max(m + 1, 2 * (sc?.offsets.length ?? 0)),
        nc = Math.max(n, 2 * (sc?.indices.length ?? 0));
      sc = this.#scratch = {
        offsets: pool.sharedI32(mc),
        indices: pool.sharedI32(nc),
        values: pool.sharedF32(nc),
        grad: pool.sharedF32(0),
      };
    }
    sc.offsets.set(X.offsets.subarray(0, m + 1));
    sc.indices.set(X.indices.subarray(0, n));
    sc.values.set(X.values.subarray(0, n));
    return sc;
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
    const m = X.offsets.length - 1, pool = this.#pool;
    const sc = pool && pool.sharedId(out) >= 0 ? this.#onPool(X) : null;
    const la = this.#la, E = this.E;
    if (sc) {
      runBagKernel(pool!, this.#kernel, BAG_FORWARD, E, this.dim, this.mode, sc, out, ld, 0, m, la !== null);
    } else if (la && E instanceof Float32Array && out instanceof Float32Array) {
      const n = X.offsets[m];
      this.#rowScratch(n);
      bagForwardRows(E, this.dim, this.mode, X, out, ld, 0, m, this.#alpha, this.#ex);
      la.axpyRows(this.#alpha, E, this.dim, X.indices, out, ld, this.#ex, n, this.dim);
    } else bagForward(E, this.dim, this.mode, X, out, ld, 0, m);
  }

  /** E[id] -= lr · w · scale · grad_i for each input entry, in order (repeated ids accumulate). */
  backward(X: SparseBatch, grad: Arr, lr: number, ld = this.dim): void {
    const m = X.offsets.length - 1, pool = this.#pool;
    const sc = pool ? this.#onPool(X) : null;
    const la = this.#la, E = this.E;
    if (!sc && la && E instanceof Float32Array && grad instanceof Float32Array) {
      const n = X.offsets[m];
      this.#rowScratch(n);
      bagBackwardRows(this.mode, X, m, lr, this.#alpha, this.#ex, 0, 1);
      return la.axpyRows(this.#alpha, grad, ld, this.#ex, E, this.dim, X.indices, n, this.dim);
    }
    if (!sc) return bagBackward(E, this.dim, this.mode, X, m, grad, ld, lr, 0, 1);
    let g = grad;
    if (pool!.sharedId(grad) < 0) {
      // the output layer's ∇H is its own array: copied (one block) to the shared scratch
      if (sc.grad.length < m * ld) sc.grad = pool!.sharedF32(Math.max(m * ld, 2 * sc.grad.length));
      sc.grad.set(grad.subarray(0, m * ld));
      g = sc.grad;
    }
    runBagKernel(pool!, this.#kernel, BAG_BACKWARD, E, this.dim, this.mode, sc, g, ld, lr, m, la !== null);
  }

  /** Appends n rows (n×dim, row-major) to the table (on the pool's memory only when the bag splits there). */
  appendRows(rows: Arr): void {
    if (rows.length % this.dim !== 0) {
      throw new RangeError(
        `EmbeddingBag.appendRows: ${rows.length} values is not a multiple of dim ${this.dim}`,
      );
    }
    const n = this.E.length + rows.length;
    const grown = this.#kernel >= 0 ? this.alloc(n) : new (this.E.constructor as Float32ArrayConstructor)(n);
    grown.set(this.E);
    grown.set(rows, this.E.length);
    this.E = grown;
    this.rows += rows.length / this.dim;
  }
}

/**
 * The batch as a pooled bag reads it (shared memory), and the shared copy of a gradient.
 *
 * @example
 * ```ts ignore
 * const sc: BagScratch = { offsets, indices, values, grad };
 * ```
 */
export type BagScratch = {
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
  grad: Float32Array;
};

/** The scale applied to example i's weighted sum (forward). */
function bagScale(mode: BagMode, X: SparseBatch, i: number): number {
  if (mode === "sum") return 1;
  let w = 0;
  for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) w += X.values[k];
  return w === 0 ? 0 : 1 / w;
}

/**
 * The bag forward for examples [i0, i1): out row i (first d columns) ← scale_i · Σ w_k E[id_k]. The one
 * code of the plain bag and of its kernel (bag_kernel.ts).
 *
 * @example
 * ```ts
 * import { bagForward } from "./embedding_bag.ts";
 * const E = Float32Array.of(1, 2, 3, 4), out = new Float32Array(2);
 * const X = { offsets: Int32Array.of(0, 2), indices: Int32Array.of(0, 1), values: Float32Array.of(1, 1) };
 * bagForward(E, 2, "mean", X, out, 2, 0, 1); // out = [2, 3]
 * ```
 *
 * @param E rows×d table
 * @param d row width
 * @param mode mean, sum or mean-full
 * @param X the inputs
 * @param out m×ld
 * @param ld stride of out's rows
 * @param i0 first example
 * @param i1 end
 */
export function bagForward(
  E: Arr,
  d: number,
  mode: BagMode,
  X: SparseBatch,
  out: Arr,
  ld: number,
  i0: number,
  i1: number,
): void {
  // the rows are read from cold memory (the output layer's step ran since the last batch): one float per
  // cache line of the next BAG_TOUCH entries' rows first, so that their misses overlap (linalg/touch.ts)
  let touched = X.offsets[i0];
  const end = X.offsets[i1];
  for (let i = i0; i < i1; i++) {
    if (X.offsets[i + 1] > touched) {
      const to = Math.min(end, Math.max(X.offsets[i + 1], touched + BAG_TOUCH));
      touchRows(E, d, X.indices, touched, to - touched, d);
      touched = to;
    }
    const o = i * ld, k0 = X.offsets[i], sc = bagScale(mode, X, i);
    if (X.offsets[i + 1] - k0 === 1 && X.values[k0] * sc === 1) {
      // one input of weight 1 (every skip-gram example): its row as it is, which the loop below would write
      // element by element (0 + 1·e = e; only a −0 would come out +0 there), at the cost of a copy
      const r = X.indices[k0] * d;
      out.set(E.subarray(r, r + d), o);
      continue;
    }
    out.fill(0, o, o + d);
    for (let k = k0; k < X.offsets[i + 1]; k++) {
      const w = X.values[k] * sc, r = X.indices[k] * d;
      for (let j = 0; j < d; j++) out[o + j] += w * E[r + j];
    }
  }
}

/**
 * The bag backward over all examples, for the rows of E that part w of `parts` owns (id mod parts = w;
 * all rows when parts = 1): E[id] −= lr · w · scale · grad_i for each entry, in order (scale 1 for
 * `mean-full`: fastText's rule, not the mean's gradient). Every update of
 * a row runs in the one-thread order, so any split gives the same bits. The one code of the plain bag
 * and of its kernel (bag_kernel.ts).
 *
 * @example
 * ```ts
 * import { bagBackward } from "./embedding_bag.ts";
 * const E = new Float32Array(4);
 * const X = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(1), values: Float32Array.of(1) };
 * bagBackward(E, 2, "sum", X, 1, Float32Array.of(1, 2), 2, 0.5, 0, 1); // E = [0, 0, -0.5, -1]
 * ```
 *
 * @param E rows×d table, updated
 * @param d row width
 * @param mode mean or sum
 * @param X the inputs
 * @param m examples
 * @param grad m×ld
 * @param ld stride of grad's rows
 * @param lr learning rate
 * @param w part
 * @param parts parts
 */
export function bagBackward(
  E: Arr,
  d: number,
  mode: BagMode,
  X: SparseBatch,
  m: number,
  grad: Arr,
  ld: number,
  lr: number,
  w: number,
  parts: number,
): void {
  for (let i = 0; i < m; i++) {
    // mean-full: the sum's backward (fastText's rule), under the mean's forward
    const g = i * ld, sc = mode === "mean-full" ? 1 : bagScale(mode, X, i);
    for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) {
      const id = X.indices[k];
      if (parts > 1 && id % parts !== w) continue;
      const a = lr * X.values[k] * sc, r = id * d;
      for (let j = 0; j < d; j++) E[r + j] -= a * grad[g + j];
    }
  }
}

/**
 * The bag forward of examples [i0, i1) as row additions, for a backend's indexed axpy (the bag with a
 * backend, {@link EmbeddingBag.useBackend}) or the bag kernel's `cblas_saxpy`: an example with one input of
 * weight 1 (every skip-gram example) gets its row copied, as {@link bagForward} does, and its entry a zero
 * coefficient (nothing to add); every other example's output row is zeroed, and its entries get alpha[k] =
 * w_k · scale_i. Then out[ex[k]] += alpha[k] · E[id_k] over the entries in order is the forward. The rows
 * are touched first, as in bagForward. `alpha` and `ex` hold at least X.offsets[i1] entries.
 *
 * @example
 * ```ts
 * import { bagForwardRows } from "./embedding_bag.ts";
 * const E = Float32Array.of(1, 2, 3, 4), out = new Float32Array(2), alpha = new Float64Array(2), ex = new Int32Array(2);
 * const X = { offsets: Int32Array.of(0, 2), indices: Int32Array.of(0, 1), values: Float32Array.of(1, 1) };
 * bagForwardRows(E, 2, "mean", X, out, 2, 0, 1, alpha, ex); // alpha = [0.5, 0.5], ex = [0, 0], out = [0, 0]
 * ```
 *
 * @param E rows×d table
 * @param d row width
 * @param mode mean, sum or mean-full
 * @param X the inputs
 * @param out m×ld: the copied rows, the zeroed ones
 * @param ld stride of out's rows
 * @param i0 first example
 * @param i1 end
 * @param alpha per entry: the coefficient
 * @param ex per entry: its example
 */
export function bagForwardRows(
  E: Float32Array,
  d: number,
  mode: BagMode,
  X: SparseBatch,
  out: Float32Array,
  ld: number,
  i0: number,
  i1: number,
  alpha: Float64Array,
  ex: Int32Array,
): void {
  const k0 = X.offsets[i0], k1 = X.offsets[i1];
  touchRows(E, d, X.indices, k0, k1 - k0, d);
  for (let i = i0; i < i1; i++) {
    const o = i * ld, a = X.offsets[i], b = X.offsets[i + 1], sc = bagScale(mode, X, i);
    if (b - a === 1 && X.values[a] * sc === 1) {
      const r = X.indices[a] * d;
      out.set(E.subarray(r, r + d), o);
      alpha[a] = 0;
      ex[a] = i;
      continue;
    }
    out.fill(0, o, o + d);
    for (let k = a; k < b; k++) {
      alpha[k] = X.values[k] * sc;
      ex[k] = i;
    }
  }
}

/**
 * The bag backward as row additions (see {@link bagForwardRows}): alpha[k] = −lr · w_k · scale_i (scale 1
 * for `mean-full`) for the entries whose row part w of `parts` owns (id mod parts = w), 0 for the others,
 * and ex[k] = i. Then E[id_k] += alpha[k] · grad[ex[k]] over the entries in order is {@link bagBackward}.
 *
 * @example
 * ```ts
 * import { bagBackwardRows } from "./embedding_bag.ts";
 * const alpha = new Float64Array(1), ex = new Int32Array(1);
 * const X = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(1), values: Float32Array.of(1) };
 * bagBackwardRows("sum", X, 1, 0.5, alpha, ex, 0, 1); // alpha = [-0.5], ex = [0]
 * ```
 *
 * @param mode mean, sum or mean-full
 * @param X the inputs
 * @param m examples
 * @param lr learning rate
 * @param alpha per entry: the coefficient
 * @param ex per entry: its example
 * @param w part
 * @param parts parts
 */
export function bagBackwardRows(
  mode: BagMode,
  X: SparseBatch,
  m: number,
  lr: number,
  alpha: Float64Array,
  ex: Int32Array,
  w: number,
  parts: number,
): void {
  for (let i = 0; i < m; i++) {
    const sc = mode === "mean-full" ? 1 : bagScale(mode, X, i);
    for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) {
      // −(lr·w·scale), the coefficient bagBackward subtracts with: E − a·g and E + (−a)·g are the same sums
      alpha[k] = parts > 1 && X.indices[k] % parts !== w ? 0 : -(lr * X.values[k] * sc);
      ex[k] = i;
    }
  }
}
