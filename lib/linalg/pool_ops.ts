/**
 * What the main thread and the workers of the gemm pool (pool.ts, pool_worker.ts) agree on: the layout of
 * the shared control block, the operation codes and their parameters, and how an operation is split into
 * parts (part 0 runs on the calling thread, part w on worker w). Both sides compute the same parts from
 * the same parameters, so nothing but the parameters crosses threads.
 *
 * @module
 */

import { TOUCH_ROWS, touchRows } from "./touch.ts";

/**
 * Control block (Int32Array on a SharedArrayBuffer): [sequence number, parts done, operation, next part,
 * parts]. CTL_NEXT holds (sequence tag << 8) | the next unclaimed part: every thread, the caller included,
 * claims parts by compare-and-swap until none is left, so a worker the system has not scheduled yet only
 * takes fewer parts, and one that wakes after its operation ended sees another tag and claims nothing.
 */
export const CTL_SEQ = 0, CTL_DONE = 1, CTL_OP = 2, CTL_NEXT = 3, CTL_PARTS = 4, CTL_LEN = 8;
/** Control word set to 1 when a part threw (or a worker could not load a kernel); the caller throws. */
export const CTL_ERR = 5;
/**
 * Control word: 1 while the caller holds the workers awake (pool.ts `hold`): a worker with no part to run
 * polls for the next operation instead of sleeping, so the operations of one step cost no futex wake-up.
 */
export const CTL_HOLD = 6;
/** Control word: how many workers are asleep in Atomics.wait now (a signal to one of them is a wake-up). */
export const CTL_ASLEEP = 7;
/**
 * The longest a held worker polls without an operation (ms) before it sleeps anyway: a caller that holds
 * and then waits on something else (I/O, a timer) does not keep a core busy for long.
 *
 * @example
 * ```ts
 * import { HOLD_MAX_IDLE_MS } from "./pool_ops.ts";
 * console.log(HOLD_MAX_IDLE_MS); // 20
 * ```
 */
export const HOLD_MAX_IDLE_MS = 20;
/** Parts per thread of a split call (more than one, so that a late thread's share is taken by others). */
export const PARTS_PER_THREAD = 2;

/** The sequence tag stored in CTL_NEXT's high bits. */
export function seqTag(seq: number): number {
  return seq & 0x7fffff;
}

/**
 * Claims and runs parts of the current operation (tagged `tag`) until none is left; counts each in
 * CTL_DONE. Returns how many it ran.
 *
 * @example
 * ```ts ignore
 * claimParts(sym, views, ctl, par, seqTag(seq));
 * ```
 *
 * @param sym native calls
 * @param v shared buffer views
 * @param ctl control block
 * @param p parameters
 * @param tag sequence tag of the operation
 * @returns parts run
 */
export function claimParts(
  sym: PartSymbols,
  v: SharedViews,
  ctl: Int32Array,
  p: Float64Array,
  tag: number,
): number {
  let ran = 0;
  for (;;) {
    const x = Atomics.load(ctl, CTL_NEXT);
    if (x >>> 8 !== tag) return ran;
    const parts = Atomics.load(ctl, CTL_PARTS), i = x & 0xff;
    if (i >= parts) return ran;
    if (Atomics.compareExchange(ctl, CTL_NEXT, x, x + 1) !== x) continue;
    const op = Atomics.load(ctl, CTL_OP), times = v.times;
    // (the slot is read before the part runs: once the parts are counted the caller may write the next
    // operation's parameters)
    const slot = times ? partTimeSlot(op, p) : 0, t0 = times ? performance.now() : 0;
    try {
      runPart(sym, v, op, p, i, parts);
    } catch (e) {
      // a part that throws must still be counted, or the caller waits forever; the caller throws
      v.error ??= e as Error;
      Atomics.store(ctl, CTL_ERR, 1);
    } finally {
      if (times) {
        times[slot] += performance.now() - t0;
        times[slot + 1]++;
      }
      Atomics.add(ctl, CTL_DONE, 1);
      Atomics.notify(ctl, CTL_DONE);
    }
    ran++;
  }
}
/** Operations. */
export const OP_SGEMM = 1,
  OP_DGEMM = 2,
  OP_STRSM = 3,
  OP_SAXPY = 4,
  OP_SYR2K = 5,
  OP_RECEIVE = 6,
  OP_EXIT = 7,
  OP_DOTROWS = 8,
  OP_AXPYIDX = 9,
  OP_KERNEL = 10;
/** Parameters (Float64Array on a SharedArrayBuffer). */
export const PAR_LEN = 64;
/**
 * Where a kernel's own arguments start in the parameter block of OP_KERNEL ([kernel id, items, args…]).
 *
 * @example
 * ```ts
 * import { KERNEL_ARGS, PAR_LEN } from "./pool_ops.ts";
 * console.log(PAR_LEN - KERNEL_ARGS); // 62 arguments at most
 * ```
 */
export const KERNEL_ARGS = 2;

/**
 * A kernel the pool runs over parts of a problem (OP_KERNEL): part w of `parts`, its arguments at
 * p[KERNEL_ARGS …] (buffer ids of {@link SharedViews} and numbers). The same function runs on the
 * calling thread and on each worker, so a kernel that splits its work by rows and keeps each element's
 * operations and their order gives the same bits as one thread. Kernels live above the backends (a layer,
 * the input side): the pool only loads them (the module's `createKernel(init)`) and calls them.
 *
 * @example
 * ```ts
 * import type { PoolKernel } from "./pool_ops.ts";
 * const k: PoolKernel = (_sym, v, p, w, parts) => {
 *   const out = v.f64[p[2]]!;
 *   for (let i = w; i < p[1]; i += parts) out[i] = i; // items w, w + parts, …
 * };
 * ```
 */
export type PoolKernel = (
  sym: PartSymbols,
  v: SharedViews,
  p: Float64Array,
  w: number,
  parts: number,
) => void;

/**
 * A kernel module as the pool's workers load it: `url` exports `createKernel(init)` returning a
 * {@link PoolKernel}; `init` is structured-cloned to each worker.
 */
export type KernelSpec = { id: number; url: string; init: unknown };
/** Column splits are rounded to this many elements (whole SIMD registers for the kernels). */
export const SPLIT_ALIGN = 16;

/**
 * [start, end) of part w of n elements split into `parts` nearly equal pieces aligned to `align`.
 *
 * @example
 * ```ts
 * import { partOf } from "./pool_ops.ts";
 * console.log(partOf(1, 2, 300, 16)); // [160, 300]
 * ```
 *
 * @param w part
 * @param parts number of parts
 * @param n elements
 * @param align alignment of the boundaries
 * @returns [start, end)
 */
export function partOf(w: number, parts: number, n: number, align: number): [number, number] {
  const step = Math.ceil(n / parts / align) * align;
  return [Math.min(n, w * step), Math.min(n, (w + 1) * step)];
}

/**
 * [start, end) of column block w of an N×N symmetric update of which each block computes the rows above
 * its end (the upper triangle and its diagonal block): boundaries at N·√(w/parts), so the parts cost
 * about the same.
 *
 * @example
 * ```ts
 * import { triangularPartOf } from "./pool_ops.ts";
 * console.log(triangularPartOf(0, 2, 300, 16)); // [0, 208]
 * ```
 *
 * @param w part
 * @param parts number of parts
 * @param n order
 * @param align alignment of the boundaries
 * @returns [start, end)
 */
export function triangularPartOf(w: number, parts: number, n: number, align: number): [number, number] {
  const at = (k: number) =>
    k >= parts ? n : Math.min(n, Math.round((n * Math.sqrt(k / parts)) / align) * align);
  return [at(w), at(w + 1)];
}

/** One gemm part: the sub-problem of C = alpha·op(A)·op(B) + beta·C for part w, as element offsets. */
export type GemmPart = { M: number; N: number; aOff: number; bOff: number; cOff: number };

/**
 * Part w of a row-major gemm: split along N (columns of C) when `splitN`, else along M (rows of C).
 *
 * @example
 * ```ts
 * import { gemmPart } from "./pool_ops.ts";
 * console.log(gemmPart(1, 2, true, false, true, 128, 900, 300, 300, 300, 1200)); // columns 464…900
 * ```
 *
 * @param w part
 * @param parts parts
 * @param splitN split the columns (else the rows)
 * @param tA A transposed
 * @param tB B transposed
 * @param M rows of C
 * @param N columns of C
 * @param _K inner dimension
 * @param lda leading dimension of A
 * @param ldb leading dimension of B
 * @param ldc leading dimension of C
 * @returns the part (M or N 0 when empty)
 */
export function gemmPart(
  w: number,
  parts: number,
  splitN: boolean,
  tA: boolean,
  tB: boolean,
  M: number,
  N: number,
  _K: number,
  lda: number,
  ldb: number,
  ldc: number,
): GemmPart {
  if (splitN) {
    const [j0, j1] = partOf(w, parts, N, SPLIT_ALIGN);
    return { M, N: j1 - j0, aOff: 0, bOff: tB ? j0 * ldb : j0, cOff: j0 };
  }
  const [i0, i1] = partOf(w, parts, M, SPLIT_ALIGN);
  return { M: i1 - i0, N, aOff: tA ? i0 : i0 * lda, bOff: 0, cOff: i0 * ldc };
}

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112, LOWER = 122, LEFT = 141, NON_UNIT = 131;
/**
 * The CBLAS enumeration values a kernel passes to {@link PartSymbols} (the blas backend's own).
 *
 * @example
 * ```ts
 * import { CBLAS } from "./pool_ops.ts";
 * console.log(CBLAS.ROW_MAJOR); // 101
 * ```
 */
export const CBLAS = { ROW_MAJOR, NO_TRANS, TRANS, LOWER, LEFT, NON_UNIT } as const;

/** The native calls a part makes (a subset of blas.ts SYMBOLS, bound by each thread). */
export type PartSymbols = {
  cblas_sgemm(...a: (number | AllowSharedBufferSource)[]): void;
  cblas_dgemm(...a: (number | AllowSharedBufferSource)[]): void;
  cblas_strsm(...a: (number | AllowSharedBufferSource)[]): void;
  cblas_saxpy(...a: (number | AllowSharedBufferSource)[]): void;
  cblas_sdot(...a: (number | AllowSharedBufferSource)[]): number;
  cblas_ssyr2k(...a: (number | AllowSharedBufferSource)[]): void;
  cblas_somatcopy(...a: (number | AllowSharedBufferSource)[]): void;
  cblas_dgemv(...a: (number | AllowSharedBufferSource)[]): void;
  cblas_dsyrk(...a: (number | AllowSharedBufferSource)[]): void;
};

/**
 * Views of the registered shared buffers, by id; the kernels loaded on this thread, by id; the first
 * error a part threw on this thread.
 */
export type SharedViews = {
  f32: Float32Array[];
  f64: (Float64Array | null)[];
  i32: Int32Array[];
  kernels: (PoolKernel | null)[];
  error?: Error;
  /** This thread's part times ({@link PART_TIME_SLOTS} slots on shared memory), when the pool times parts. */
  times?: Float64Array;
};

/**
 * Slots of one thread's part times: for each operation code (0–15) and kernel mode (a kernel's first
 * argument, 0–15; 0 for other operations) the milliseconds spent in its parts and the parts run.
 *
 * @example
 * ```ts
 * import { PART_TIME_SLOTS } from "./pool_ops.ts";
 * console.log(PART_TIME_SLOTS); // 512
 * ```
 */
export const PART_TIME_SLOTS = 16 * 16 * 2;

/**
 * Where a part of operation `op` (parameters `p`) adds its time in a thread's {@link PART_TIME_SLOTS}: the
 * milliseconds at the slot, the count at the slot + 1.
 *
 * @example
 * ```ts
 * import { OP_KERNEL, OP_SGEMM, partTimeSlot } from "./pool_ops.ts";
 * console.log(partTimeSlot(OP_SGEMM, new Float64Array(8))); // 32
 * console.log(partTimeSlot(OP_KERNEL, Float64Array.of(0, 64, 4))); // 328
 * ```
 *
 * @param op operation code
 * @param p parameters (a kernel's mode is its first argument, p[KERNEL_ARGS])
 * @returns the slot
 */
export function partTimeSlot(op: number, p: Float64Array): number {
  const mode = op === OP_KERNEL ? Math.min(15, Math.max(0, p[KERNEL_ARGS] | 0)) : 0;
  return ((op & 15) * 16 + mode) * 2;
}

/**
 * Runs part w of the operation described by `op` and `par` on the shared buffers (the same code on the
 * calling thread and on the workers).
 *
 * @example
 * ```ts ignore
 * runPart(sym, views, OP_SGEMM, par, 0, 2);
 * ```
 *
 * @param sym native calls
 * @param v shared buffer views
 * @param op operation code
 * @param p parameters
 * @param w part
 * @param parts parts
 */
export function runPart(
  sym: PartSymbols,
  v: SharedViews,
  op: number,
  p: Float64Array,
  w: number,
  parts: number,
): void {
  if (op === OP_KERNEL) {
    const k = v.kernels[p[0]];
    if (!k) throw new Error(`pool: kernel ${p[0]} is not loaded on this thread`);
    k(sym, v, p, w, parts);
  } else if (op === OP_SGEMM || op === OP_DGEMM) {
    const tA = p[0] === 1,
      tB = p[1] === 1,
      M = p[2],
      N = p[3],
      K = p[4],
      lda = p[8],
      ldb = p[11],
      ldc = p[15];
    const q = gemmPart(w, parts, p[16] === 1, tA, tB, M, N, K, lda, ldb, ldc);
    if (q.M <= 0 || q.N <= 0) return;
    // the same call in either precision: the float64 views exist for buffers of a whole number of doubles
    const gemm = op === OP_SGEMM ? sym.cblas_sgemm : sym.cblas_dgemm;
    const view = (id: number) => (op === OP_SGEMM ? v.f32[id] : v.f64[id]!);
    gemm(
      ROW_MAJOR,
      tA ? TRANS : NO_TRANS,
      tB ? TRANS : NO_TRANS,
      q.M,
      q.N,
      K,
      p[5],
      view(p[6]).subarray(p[7] + q.aOff),
      lda,
      view(p[9]).subarray(p[10] + q.bOff),
      ldb,
      p[12],
      view(p[13]).subarray(p[14] + q.cOff),
      ldc,
    );
  } else if (op === OP_STRSM) {
    const [k0, k1] = partOf(w, parts, p[2], SPLIT_ALIGN);
    if (k1 <= k0) return;
    sym.cblas_strsm(
      ROW_MAJOR,
      LEFT,
      LOWER,
      p[0] === 1 ? TRANS : NO_TRANS,
      NON_UNIT,
      p[1],
      k1 - k0,
      p[3],
      v.f32[p[4]].subarray(p[5]),
      p[6],
      v.f32[p[7]].subarray(p[8] + k0),
      p[9],
    );
  } else if (op === OP_SAXPY) {
    const n = p[0], [c0, c1] = partOf(w, parts, p[1], 64);
    if (c1 <= c0) return;
    for (let r = 0; r < n; r++) {
      const b = 2 + 5 * r;
      sym.cblas_saxpy(
        c1 - c0,
        p[b],
        v.f32[p[b + 1]].subarray(p[b + 2] + c0),
        1,
        v.f32[p[b + 3]].subarray(p[b + 4] + c0),
        1,
      );
    }
  } else if (op === OP_DOTROWS) {
    // out[k] = A row aRows[k] · B row bRows[k] for a contiguous range of the n entries (each by the same
    // cblas_sdot as the unsplit call: the same bits)
    const n = p[0], d = p[1], lda = p[4], ldb = p[7], ix = v.i32[p[8]], i0 = p[9];
    const A = v.f32[p[2]], aOff = p[3], B = v.f32[p[5]], bOff = p[6], out = v.f64[p[10]]!, o0 = p[11];
    const [k0, k1] = partOf(w, parts, n, 1);
    const Aa = A.subarray(aOff);
    for (let c0 = k0; c0 < k1; c0 += TOUCH_ROWS) {
      // as blas.ts dotRows: the chunk's A rows touched first (touch.ts)
      const c1 = Math.min(k1, c0 + TOUCH_ROWS);
      touchRows(Aa, lda, ix, i0 + c0, c1 - c0, d);
      for (let k = c0; k < c1; k++) {
        const a = aOff + ix[i0 + k] * lda, b = bOff + ix[i0 + n + k] * ldb;
        out[o0 + k] = sym.cblas_sdot(d, A.subarray(a, a + d), 1, B.subarray(b, b + d), 1);
      }
    }
  } else if (op === OP_AXPYIDX) {
    // Y row yRows[k] += alpha[k] · X row xRows[k] for the entries whose Y row part w owns (row mod parts):
    // every update of one row runs on one thread in entry order, as in the unsplit call (the same bits)
    const n = p[0], d = p[1], ldx = p[4], ldy = p[7], ix = v.i32[p[8]], i0 = p[9];
    const X = v.f32[p[2]], xOff = p[3], Y = v.f32[p[5]], yOff = p[6], al = v.f64[p[10]]!, a0 = p[11];
    for (let k = 0; k < n; k++) {
      const yr = ix[i0 + n + k];
      if (yr % parts !== w) continue;
      const a = al[a0 + k];
      if (a === 0) continue;
      const x = xOff + ix[i0 + k] * ldx, y = yOff + yr * ldy;
      sym.cblas_saxpy(d, a, X.subarray(x, x + d), 1, Y.subarray(y, y + d), 1);
    }
  } else if (op === OP_SYR2K) {
    // columns [j0, j1) of C, rows [0, j1): alpha·(A[:, :j1]ᵀ B[:, J] + B[:, :j1]ᵀ A[:, J]) + beta·C
    const N = p[0], K = p[1], lda = p[5], ldb = p[8], ldc = p[12];
    const [j0, j1] = triangularPartOf(w, parts, N, SPLIT_ALIGN);
    if (j1 <= j0) return;
    const A = v.f32[p[3]].subarray(p[4]),
      B = v.f32[p[6]].subarray(p[7]),
      C = v.f32[p[10]].subarray(p[11] + j0);
    sym.cblas_sgemm(
      ROW_MAJOR,
      TRANS,
      NO_TRANS,
      j1,
      j1 - j0,
      K,
      p[2],
      A,
      lda,
      B.subarray(j0),
      ldb,
      p[9],
      C,
      ldc,
    );
    sym.cblas_sgemm(ROW_MAJOR, TRANS, NO_TRANS, j1, j1 - j0, K, p[2], B, ldb, A.subarray(j0), lda, 1, C, ldc);
  }
}
