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
import type { PooledBackend } from "../linalg/pool.ts";
import { touchRows } from "../linalg/touch.ts";

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
  #split = false; // E (and ∇H's copy) on the pool's memory too: the pool's axpyRows may split the rows
  #grad: Float32Array | null = null; // the shared copy of ∇H, when split
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
   * ordinary arrays), where the output layer reads them in place. With `split`, E and ∇H's copy go there
   * too and the rows are added with the pool's own `axpyRows`, which splits a large batch's rows across
   * its threads by the row each entry adds to (each row's additions in entry order: the same bits as
   * unsplit; from the split table's `scatter` size, pool_split.ts). The trainer calls it with its output
   * layer's pool, again when that changes; it splits only with FACTOROUT_BAG_SPLIT=1 (lib/train/defaults.ts
   * `bagSplit`).
   *
   * @param pool the pooled backend, or null
   * @param split add the rows with the pool's axpyRows, on its memory (default true)
   */
  usePool(pool: PooledBackend | null, split = true): void {
    if (pool === this.#pool && this.#split === split) return;
    this.#pool = null;
    this.#split = false;
    this.#grad = null;
    if (!pool || !(this.E instanceof Float32Array)) return;
    this.#pool = pool;
    if (!split) return;
    const E = pool.sharedF32(this.E.length);
    E.set(this.E);
    this.E = E;
    this.#split = true;
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

  /** The backend that adds the rows: the pool's own when the bag splits there, else useBackend's. */
  #rows(): LinAlgBackend | null {
    return this.#split ? this.#pool : this.#la;
  }

  /** out (m×ld, first dim columns) ← the bag of each example. */
  forward(X: SparseBatch, out: Arr, ld = this.dim): void {
    const m = X.offsets.length - 1, la = this.#rows(), E = this.E;
    if (la && E instanceof Float32Array && out instanceof Float32Array) {
      const n = X.offsets[m];
      this.#rowScratch(n);
      bagForwardRows(E, this.dim, this.mode, X, out, ld, 0, m, this.#alpha, this.#ex);
      la.axpyRows(this.#alpha, E, this.dim, X.indices, out, ld, this.#ex, n, this.dim);
    } else bagForward(E, this.dim, this.mode, X, out, ld, 0, m);
  }

  /** E[id] -= lr · w · scale · grad_i for each input entry, in order (repeated ids accumulate). */
  backward(X: SparseBatch, grad: Arr, lr: number, ld = this.dim): void {
    const m = X.offsets.length - 1, la = this.#rows(), E = this.E;
    if (!la || !(E instanceof Float32Array) || !(grad instanceof Float32Array)) {
      return bagBackward(E, this.dim, this.mode, X, m, grad, ld, lr);
    }
    let g = grad;
    const pool = this.#pool;
    if (this.#split && pool!.sharedId(grad) < 0) {
      // the output layer's ∇H is its own array: copied (one block) to the pool's memory, where its axpyRows
      // can split the rows
      if ((this.#grad?.length ?? 0) < m * ld) {
        this.#grad = pool!.sharedF32(Math.max(m * ld, 2 * (this.#grad?.length ?? 0)));
      }
      this.#grad!.set(grad.subarray(0, m * ld));
      g = this.#grad!;
    }
    const n = X.offsets[m];
    this.#rowScratch(n);
    bagBackwardRows(this.mode, X, m, lr, this.#alpha, this.#ex);
    la.axpyRows(this.#alpha, g, ld, this.#ex, E, this.dim, X.indices, n, this.dim);
  }

  /** Appends n rows (n×dim, row-major) to the table (on the pool's memory only when the bag splits there). */
  appendRows(rows: Arr): void {
    if (rows.length % this.dim !== 0) {
      throw new RangeError(
        `EmbeddingBag.appendRows: ${rows.length} values is not a multiple of dim ${this.dim}`,
      );
    }
    const n = this.E.length + rows.length;
    const grown = this.#split ? this.alloc(n) : new (this.E.constructor as Float32ArrayConstructor)(n);
    grown.set(this.E);
    grown.set(rows, this.E.length);
    this.E = grown;
    this.rows += rows.length / this.dim;
  }
}

/** The scale applied to example i's weighted sum (forward). */
function bagScale(mode: BagMode, X: SparseBatch, i: number): number {
  if (mode === "sum") return 1;
  let w = 0;
  for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) w += X.values[k];
  return w === 0 ? 0 : 1 / w;
}

/**
 * The bag forward for examples [i0, i1): out row i (first d columns) ← scale_i · Σ w_k E[id_k]. The plain
 * loops: the bag without a backend, and the reference of its rows ({@link bagForwardRows}).
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
 * The bag backward over all examples: E[id] −= lr · w · scale · grad_i for each entry, in order (scale 1 for
 * `mean-full`: fastText's rule, not the mean's gradient). The plain loops: the bag without a backend, and
 * the reference of its rows ({@link bagBackwardRows}).
 *
 * @example
 * ```ts
 * import { bagBackward } from "./embedding_bag.ts";
 * const E = new Float32Array(4);
 * const X = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(1), values: Float32Array.of(1) };
 * bagBackward(E, 2, "sum", X, 1, Float32Array.of(1, 2), 2, 0.5); // E = [0, 0, -0.5, -1]
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
): void {
  for (let i = 0; i < m; i++) {
    // mean-full: the sum's backward (fastText's rule), under the mean's forward
    const g = i * ld, sc = mode === "mean-full" ? 1 : bagScale(mode, X, i);
    for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) {
      const a = lr * X.values[k] * sc, r = X.indices[k] * d;
      for (let j = 0; j < d; j++) E[r + j] -= a * grad[g + j];
    }
  }
}

/**
 * The bag forward of examples [i0, i1) as row additions, for a backend's indexed axpy (the bag with a
 * backend, {@link EmbeddingBag.useBackend}, or the pool's when the bag splits there): an example with one input of
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
 * for `mean-full`) and ex[k] = i for every entry. Then E[id_k] += alpha[k] · grad[ex[k]] over the entries in
 * order is {@link bagBackward}.
 *
 * @example
 * ```ts
 * import { bagBackwardRows } from "./embedding_bag.ts";
 * const alpha = new Float64Array(1), ex = new Int32Array(1);
 * const X = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(1), values: Float32Array.of(1) };
 * bagBackwardRows("sum", X, 1, 0.5, alpha, ex); // alpha = [-0.5], ex = [0]
 * ```
 *
 * @param mode mean, sum or mean-full
 * @param X the inputs
 * @param m examples
 * @param lr learning rate
 * @param alpha per entry: the coefficient
 * @param ex per entry: its example
 */
export function bagBackwardRows(
  mode: BagMode,
  X: SparseBatch,
  m: number,
  lr: number,
  alpha: Float64Array,
  ex: Int32Array,
): void {
  for (let i = 0; i < m; i++) {
    const sc = mode === "mean-full" ? 1 : bagScale(mode, X, i);
    for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) {
      // −(lr·w·scale), the coefficient bagBackward subtracts with: E − a·g and E + (−a)·g are the same sums
      alpha[k] = -(lr * X.values[k] * sc);
      ex[k] = i;
    }
  }
}
