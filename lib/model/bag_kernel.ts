/**
 * The embedding bag's forward and backward as a kernel of the pooled backend (lib/linalg/pool.ts
 * `registerKernel`, pool_ops.ts `PoolKernel`): the forward split by examples (part w computes a range of
 * output rows), the backward by the rows of E it adds to (part w updates the rows with id mod parts = w,
 * walking every entry in order). Both call the plain bag's own functions (embedding_bag.ts `bagForward`,
 * `bagBackward`; for a bag with a backend, `bagForwardRows`, `bagBackwardRows` and one `cblas_saxpy` per
 * entry, as the blas backend's `axpyRows`), so every element gets the same operations in the same order as
 * on one thread: the same bits (tests/model_bag_threads_test.ts).
 *
 * @module
 */

import type { SparseBatch } from "../core/types.ts";
import type { PartSymbols, PoolKernel, SharedViews } from "../linalg/pool_ops.ts";
import { KERNEL_ARGS, partOf } from "../linalg/pool_ops.ts";
import type { PooledBackend } from "../linalg/pool.ts";
import { SAXPY_MIN_WIDTH } from "../linalg/blas.ts";
import {
  type Arr,
  bagBackward,
  bagBackwardRows,
  bagForward,
  bagForwardRows,
  type BagMode,
  type BagScratch,
} from "./embedding_bag.ts";

/** The bag modes by their code in the kernel's arguments. */
const BAG_MODES: readonly BagMode[] = ["mean", "sum", "mean-full"];

/** Kernel modes. */
export const BAG_FORWARD = 0, BAG_BACKWARD = 1;

/**
 * The URL the pool's workers import this module from.
 *
 * @example
 * ```ts
 * import { BAG_KERNEL_URL } from "./bag_kernel.ts";
 * console.log(BAG_KERNEL_URL.endsWith("bag_kernel.ts")); // true
 * ```
 */
export const BAG_KERNEL_URL = new URL("./bag_kernel.ts", import.meta.url).href;

// argument slots from KERNEL_ARGS
const MODE = 0, M = 1, E_ID = 2, DIM = 3, SUM = 4, OFF = 5, IDX = 6, VAL = 7, OUT = 8, LD = 9, LR = 10;
const ROWS = 11;

/**
 * The bag kernel for one thread (the pool calls it as `createKernel` in each worker).
 *
 * @example
 * ```ts
 * import { createKernel } from "./bag_kernel.ts";
 * console.log(typeof createKernel(null)); // "function"
 * ```
 *
 * @param _init unused
 * @returns the kernel
 */
export function createKernel(_init: unknown): PoolKernel {
  // this thread's view of the batch (rebound on each call; no allocation per call)
  const X: SparseBatch = {
    offsets: new Int32Array(0),
    indices: new Int32Array(0),
    values: new Float32Array(0),
  };
  // this thread's row coefficients and examples (bagForwardRows, bagBackwardRows), grown as needed
  let alpha = new Float64Array(0), ex = new Int32Array(0);
  return (sym, v: SharedViews, p: Float64Array, w: number, parts: number) => {
    const a = KERNEL_ARGS, m = p[a + M], d = p[a + DIM], ld = p[a + LD];
    const mode: BagMode = BAG_MODES[p[a + SUM]];
    X.offsets = v.i32[p[a + OFF]];
    X.indices = v.i32[p[a + IDX]];
    X.values = v.f32[p[a + VAL]];
    const E = v.f32[p[a + E_ID]], out = v.f32[p[a + OUT]], rows = p[a + ROWS] === 1;
    if (rows && alpha.length < X.offsets[m]) {
      alpha = new Float64Array(X.offsets[m]);
      ex = new Int32Array(X.offsets[m]);
    }
    if (p[a + MODE] === BAG_FORWARD) {
      const [i0, i1] = partOf(w, parts, m, 1);
      if (!rows) return bagForward(E, d, mode, X, out, ld, i0, i1);
      bagForwardRows(E, d, mode, X, out, ld, i0, i1, alpha, ex);
      addRows(sym, alpha, E, d, X.indices, out, ld, ex, X.offsets[i0], X.offsets[i1], d);
    } else if (!rows) bagBackward(E, d, mode, X, m, out, ld, p[a + LR], w, parts);
    else {
      bagBackwardRows(mode, X, m, p[a + LR], alpha, ex, w, parts);
      addRows(sym, alpha, out, ld, ex, E, d, X.indices, 0, X.offsets[m], d);
    }
  };
}

/**
 * Y[yRows[k]] += alpha[k] · X[xRows[k]] (rows of d) for k in [k0, k1), a `cblas_saxpy` each, zero
 * coefficients skipped: the blas backend's `axpyRows`, on this thread's symbols; rows narrower than
 * `SAXPY_MIN_WIDTH` with its JavaScript loops, as blas.ts does (else the split bag's bits would differ from
 * the unsplit one's there).
 */
function addRows(
  sym: PartSymbols,
  alpha: Float64Array,
  X: Float32Array,
  ldx: number,
  xRows: Int32Array,
  Y: Float32Array,
  ldy: number,
  yRows: Int32Array,
  k0: number,
  k1: number,
  d: number,
): void {
  const narrow = d < SAXPY_MIN_WIDTH;
  for (let k = k0; k < k1; k++) {
    const c = alpha[k];
    if (c === 0) continue;
    const x = xRows[k] * ldx, y = yRows[k] * ldy;
    if (narrow) { for (let j = 0; j < d; j++) Y[y + j] += c * X[x + j]; }
    else sym.cblas_saxpy(d, c, X.subarray(x, x + d), 1, Y.subarray(y, y + d), 1);
  }
}

/**
 * Runs the bag kernel: forward into `out` or backward from it (all on the pool's shared memory).
 *
 * @example
 * ```ts ignore
 * runBagKernel(pool, id, BAG_FORWARD, E, dim, "mean", scratch, out, ld, 0, m, true);
 * ```
 *
 * @param pool the pooled backend
 * @param id the kernel's id
 * @param what BAG_FORWARD or BAG_BACKWARD
 * @param E the table
 * @param dim row width
 * @param mode mean or sum
 * @param X the batch on shared memory
 * @param out forward: the output rows; backward: the gradient rows
 * @param ld stride of out's rows
 * @param lr learning rate (backward)
 * @param m examples
 * @param rows the bag adds its rows with a backend (embedding_bag.ts `useBackend`): `cblas_saxpy` per entry
 */
export function runBagKernel(
  pool: PooledBackend,
  id: number,
  what: number,
  E: Arr,
  dim: number,
  mode: BagMode,
  X: BagScratch,
  out: Arr,
  ld: number,
  lr: number,
  m: number,
  rows: boolean,
): void {
  const p = pool.kernelArgs;
  p[MODE] = what;
  p[M] = m;
  p[E_ID] = pool.sharedId(E);
  p[DIM] = dim;
  p[SUM] = BAG_MODES.indexOf(mode);
  p[OFF] = pool.sharedId(X.offsets);
  p[IDX] = pool.sharedId(X.indices);
  p[VAL] = pool.sharedId(X.values);
  p[OUT] = pool.sharedId(out);
  p[LD] = ld;
  p[LR] = lr;
  p[ROWS] = rows ? 1 : 0;
  if (p[E_ID] < 0 || p[OFF] < 0 || p[IDX] < 0 || p[VAL] < 0 || p[OUT] < 0) {
    throw new Error("bag kernel: an argument is not on the pool's shared memory");
  }
  pool.runKernel(id, m);
}
