/**
 * The per-example work of the float32 forward (step32.ts `forward32`) as a kernel of the pooled backend
 * (lib/linalg/pool.ts `registerKernel`, pool_ops.ts `PoolKernel`), so that it runs on every thread:
 *
 * - `FWD_ROWS`: for a range of examples i: q_i, s_i, (ω·h)_i (scalars.ts `exampleStats`), the dot
 *   products o_ic = V_c·ĥ_i + ω·h_i of its target rows (`cblas_sdot`), its loss and ẏ
 *   (scalars.ts `lossOfExample`), and A_i = Σ ẏ_ic V_c (`cblas_saxpy`, A_i zeroed first);
 * - `GRAD_ROWS`: for a range of examples, the rows of ∇H = B + 2 G QH (+ g_s w̄ᵀ + 𝟙ᵀẏ ωᵀ terms) and of
 *   X' = B + G QH, and the copy of h_i under X' (the Gram product's second block).
 * - `UPD_ROWS` (the update's Cholesky Woodbury path): every part takes blocks of examples and writes their
 *   rows of C H, C Zn and C Ĥ (C = diag(√g)) and of R = −η ∇H, while the caller (which starts the run with
 *   pool.ts `defer`) does the m×m work and factors the Woodbury system, then takes the blocks left. Nothing
 *   of the layer's state is written, so a step refused meanwhile is redone in float64.
 * - `UPD_TASKS`: the two triangular solves of the Woodbury system (cblas_strsm) split by columns, beside
 *   R += (η²/2) M H (cblas_sgemm) on the last part, which takes fewer columns (`solveColumns`): a column's
 *   solve is the same bits whichever columns go with it (tests/layers_threads_test.ts); and on every
 *   part a range of columns of ω and w̄ (scalars.ts `updateSums`, each column summed in example order).
 * - `UPKEEP_SIGMA` (the stabilisation's estimates, layer.ts `stabilize`): part 0 σ_max(U), part 1 σ_max(U⁻ᵀ) =
 *   1/σ_min(U), each by upkeep.ts `powerSigma` with this thread's `cblas_dgemv`, side by side.
 * - `UPD_TAIL`: the rest of the update, in parts side by side:
 *   - Q's increment Hᵀ R + Rᵀ H in the two row blocks of the blas backend's ssyr2k (lib/linalg/syr2k.ts),
 *     block w on part w; part 1 then waits for part 0's block (a mark in shared memory: only a part waits
 *     for a lower one, which was claimed first, so a thread that runs both never waits for itself),
 *     mirrors it, and adds it to Q's float32 state (cblas_saxpy);
 *   - the V update (a cblas_saxpy per target entry) split by the examples' ranges of `FWD_ROWS`: part w
 *     adds the rows only its range names (the rows its thread read in the forward, still in its cache),
 *     part 1 the rows that several ranges name, walking every entry in order (csr.ts `SharedRowMarks`),
 *     so every row gets its additions in the one-thread order;
 *   - part 0 the U⁻ᵀ and U increments.
 *
 * Each example's numbers come from the same functions and native calls, in the same order, as in the
 * one-thread loops of step32.ts, which stay beside it as the reference: the results are the same bits
 * (tests/layers_threads_test.ts). The batch loss is summed from the per-example losses on the calling
 * thread in example order. A loss that is not finite is marked per example (`bad`) and raised by the
 * caller for the first such example, with the one-thread message.
 *
 * Every array is on the pool's shared memory, at offset 0; the arguments are their buffer ids
 * (`ARG_*` below). The layering: this module sits in lib/output/factored/ and imports the losses; the
 * pool imports nothing of it, it only loads the module by URL in each worker.
 *
 * Size: one module the pool loads by URL in each worker: the six modes share the argument layout
 * (`ARG_*`), the per-thread scalars, and the caller's side that writes that layout (`runStepKernel`).
 *
 * @module
 */

import type { LossName, LossOptions } from "../../core/types.ts";
import { createLoss } from "../../losses/mod.ts";
import {
  CBLAS,
  KERNEL_ARGS,
  partOf,
  type PartSymbols,
  type PoolKernel,
  type SharedViews,
} from "../../linalg/pool_ops.ts";
import { mirrorTriangle, syr2kBlock } from "../../linalg/syr2k.ts";
import { touchRows } from "../../linalg/touch.ts";
import { type ExampleScalars, exampleStats, lossOfExample, updateSums } from "./scalars.ts";
import { powerSigma } from "./upkeep.ts";
import type { FactoredState } from "./state.ts";

/** Examples per block of UPD_ROWS' rows (claimed one block at a time). */
const ROW_BLOCK = 8;

/** Kernel modes (argument ARG_MODE). */
export const FWD_ROWS = 0, GRAD_ROWS = 1, UPD_ROWS = 2, UPD_TASKS = 3, UPD_TAIL = 4, UPKEEP_SIGMA = 5;

/** Argument slots (offsets from KERNEL_ARGS): numbers, then buffer ids. */
export const ARG_MODE = 0,
  ARG_M = 1,
  ARG_H = 2,
  ARG_P = 3,
  ARG_V = 4,
  ARG_A = 5,
  ARG_B = 6,
  ARG_X = 7,
  ARG_G = 8,
  ARG_OFF = 9,
  ARG_IDX = 10,
  ARG_EX = 11,
  ARG_W = 12,
  ARG_O = 13,
  ARG_DY = 14,
  ARG_Q = 15,
  ARG_S = 16,
  ARG_HW = 17,
  ARG_GQ = 18,
  ARG_GS = 19,
  ARG_SUMDY = 20,
  ARG_OMEGA = 21,
  ARG_WBAR = 22,
  ARG_LOSSES = 23,
  ARG_BAD = 24,
  ARG_OUTPUTS = 25,
  ARG_SG = 26,
  ARG_GH = 27,
  ARG_R = 28,
  ARG_MI = 29,
  ARG_MH = 30,
  ARG_ETA = 31,
  ARG_T = 32,
  ARG_STACC = 33,
  ARG_COEF = 34,
  ARG_NNZ = 35,
  /** UPD_TAIL's increments: 4 × (alpha, T row, StAcc row) for U⁻ᵀ and U, 2 × the same for Q */
  ARG_INCR = 36,
  /** FWD_ROWS: 1 to go on with each part's rows of B = A U (cblas_sgemm on its rows) and GRAD_ROWS */
  ARG_FUSED = 54,
  /** UPD_TAIL: the entries' shared-row marks (FactoredState.sharedS), the number of example ranges, the
   * step's marks (FactoredState.stepMarks, the tail's in slot 0) and this tail's count */
  ARG_SHARED = 55,
  ARG_RANGES = 56,
  ARG_SYNC = 57,
  ARG_TAIL = 58,
  /** UPKEEP_SIGMA: [U | U⁻ᵀ | σ_max of each | iteration cap, tolerance] (float64; FactoredState.sigmaS) */
  ARG_SIGMA = 59,
  ARG_COUNT = 60;

/**
 * What each thread's kernel is made from: the loss (by name and options, rebuilt in each worker), D (the
 * number of outputs at registration; each call passes the current one), d.
 *
 * @example
 * ```ts
 * import type { StepKernelInit } from "./step_kernel.ts";
 * const init: StepKernelInit = { loss: "spherical", options: {}, D: 1000, d: 64 };
 * ```
 */
export type StepKernelInit = { loss: LossName; options: LossOptions; D: number; d: number };

/**
 * The URL the pool's workers import this module from.
 *
 * @example
 * ```ts
 * import { STEP_KERNEL_URL } from "./step_kernel.ts";
 * console.log(STEP_KERNEL_URL.endsWith("step_kernel.ts")); // true
 * ```
 */
export const STEP_KERNEL_URL = new URL("./step_kernel.ts", import.meta.url).href;

/**
 * The step kernel for one thread (the pool calls it as `createKernel` in each worker; the layer calls it
 * for the calling thread).
 *
 * @example
 * ```ts
 * import { createKernel } from "./step_kernel.ts";
 * const k = createKernel({ loss: "squared", options: {}, D: 10, d: 4 });
 * console.log(typeof k); // "function"
 * ```
 *
 * @param init the loss, D and d
 * @returns the kernel
 */
export function createKernel(init: StepKernelInit): PoolKernel {
  const loss = createLoss(init.loss, init.options);
  const d = init.d, ld = 4 * d, none = new Float64Array(0);
  // this thread's view of the state's per-example scalars (rebound to the shared buffers on each call;
  // kO, kY, kDy are its own scratch, grown to the largest example)
  const ks: ExampleScalars = {
    d,
    D: init.D,
    loss,
    q: none,
    s: none,
    hw: none,
    g: none,
    gs: none,
    sumdy: none,
    omega: none,
    wbar: none,
    o: none,
    dy: none,
    kO: new Float64Array(64),
    kY: new Float64Array(64),
    kDy: new Float64Array(64),
    scal: { gq: 0, gs: 0 },
    steps: 0,
    merged: { off: new Int32Array(0), w: none },
  };
  const sigmaU = new Float64Array(d), sigmaTmp = new Float64Array(d);
  return (sym: PartSymbols, v: SharedViews, p: Float64Array, w: number, parts: number) => {
    const a = KERNEL_ARGS, m = p[a + ARG_M], f64 = (k: number) => v.f64[p[a + k]]!;
    const mode = p[a + ARG_MODE];
    if (mode === UPKEEP_SIGMA) {
      if (w < 2) sigmaPart(sym, f64(ARG_SIGMA), d, w, sigmaU, sigmaTmp);
      return;
    }
    const H = v.f32[p[a + ARG_H]], P = v.f32[p[a + ARG_P]];
    if (mode === UPD_TAIL) return updateTail(sym, v, p, m, d, w, parts);
    if (mode === UPD_ROWS) {
      // the rows in blocks claimed from the step's marks (slot 1, zeroed by the caller): the caller, which
      // factors the Woodbury system meanwhile, takes the blocks left when it joins (step32.ts)
      const G = v.f32[p[a + ARG_G]], GH = v.f32[p[a + ARG_GH]], R = v.f32[p[a + ARG_R]];
      const sg = f64(ARG_SG), ne = -p[a + ARG_ETA], marks = v.i32[p[a + ARG_SYNC]];
      for (let i0 = Atomics.add(marks, 1, ROW_BLOCK); i0 < m; i0 = Atomics.add(marks, 1, ROW_BLOCK)) {
        const i1 = Math.min(m, i0 + ROW_BLOCK);
        choleskyRows(sg, H, P, GH, d, ld, i0, i1);
        for (let j = i0 * d; j < i1 * d; j++) R[j] = ne * G[j];
      }
      return;
    }
    ks.D = p[a + ARG_OUTPUTS];
    ks.q = f64(ARG_Q);
    ks.s = f64(ARG_S);
    ks.hw = f64(ARG_HW);
    ks.g = f64(ARG_GQ);
    ks.gs = f64(ARG_GS);
    ks.sumdy = f64(ARG_SUMDY);
    ks.omega = f64(ARG_OMEGA);
    ks.wbar = f64(ARG_WBAR);
    if (mode === UPD_TASKS) {
      // ω and w̄ by columns (each column in example order), after the part's task
      updateTasks(sym, v, p, m, d, w, parts);
      const [k0, k1] = partOf(w, parts, d, 1);
      if (k1 > k0) updateSums(ks, m, p[a + ARG_ETA], H, k0, k1);
      return;
    }
    const [i0, i1] = partOf(w, parts, m, 1);
    if (i1 <= i0) return;
    if (mode === FWD_ROWS) {
      ks.o = f64(ARG_O);
      ks.dy = f64(ARG_DY);
      ks.merged.off = v.i32[p[a + ARG_OFF]];
      ks.merged.w = f64(ARG_W);
      forwardRows(
        sym,
        ks,
        H,
        P,
        v.f32[p[a + ARG_V]],
        v.f32[p[a + ARG_A]],
        v.i32[p[a + ARG_IDX]],
        v.i32[p[a + ARG_EX]],
        f64(ARG_LOSSES),
        v.i32[p[a + ARG_BAD]],
        ld,
        i0,
        i1,
      );
      if (p[a + ARG_FUSED] === 1) {
        // B's rows of these examples (A's rows times the U mirror), then their ∇H and X' rows: the forward
        // after the first product in one run (the caller splits B = A U this way only where the split
        // table splits that product, so each row's terms are those of a split product)
        const A = v.f32[p[a + ARG_A]], B = v.f32[p[a + ARG_B]], U = v.f32[p[a + ARG_STACC]];
        const { ROW_MAJOR, NO_TRANS } = CBLAS;
        sym.cblas_sgemm(
          ROW_MAJOR,
          NO_TRANS,
          NO_TRANS,
          i1 - i0,
          d,
          d,
          1,
          A.subarray(i0 * d),
          d,
          U,
          d,
          0,
          B.subarray(i0 * d),
          d,
        );
        gradTail(ks, H, P, B, v.f32[p[a + ARG_X]], v.f32[p[a + ARG_G]], m, ld, i0, i1);
      }
    } else if (mode === GRAD_ROWS) {
      gradTail(ks, H, P, v.f32[p[a + ARG_B]], v.f32[p[a + ARG_X]], v.f32[p[a + ARG_G]], m, ld, i0, i1);
    }
  };
}

/**
 * The rows of C H (into GH), C Zn and C Ĥ (in place in P's first two blocks) for examples [i0, i1),
 * C = diag(√g): the per-example scaling of the Cholesky Woodbury path (step32.ts `update32`).
 *
 * @example
 * ```ts ignore
 * choleskyRows(st.sg, H, st.P32, st.GH32, d, 4 * d, 0, m);
 * ```
 *
 * @param sg √g_i
 * @param H m×d
 * @param P the forward's products (Z = H U⁻¹ in the fourth block)
 * @param GH C H
 * @param d columns
 * @param ld stride of P's rows
 * @param i0 first example
 * @param i1 end
 */
export function choleskyRows(
  sg: Float64Array,
  H: Float32Array,
  P: Float32Array,
  GH: Float32Array,
  d: number,
  ld: number,
  i0: number,
  i1: number,
): void {
  for (let i = i0; i < i1; i++) {
    const ci = sg[i], r = i * d, p = i * ld;
    for (let c = 0; c < d; c++) {
      GH[r + c] = ci * H[r + c];
      P[p + c] = ci * P[p + 3 * d + c];
      P[p + d + c] *= ci;
    }
  }
}

/**
 * UPKEEP_SIGMA part w (0: U, 1: U⁻ᵀ): σ_max of that d×d block of the shared buffer by power iteration, into
 * slot 2d² + w; the products are the blas backend's dgemv (cblas_dgemv, y zeroed first as it does).
 */
function sigmaPart(
  sym: PartSymbols,
  S: Float64Array,
  d: number,
  w: number,
  u: Float64Array,
  tmp: Float64Array,
): void {
  const dd = d * d, M = S.subarray(w * dd, (w + 1) * dd), { ROW_MAJOR, NO_TRANS, TRANS } = CBLAS;
  const mv = (trans: boolean, x: Float64Array, y: Float64Array) => {
    y.fill(0);
    sym.cblas_dgemv(ROW_MAJOR, trans ? TRANS : NO_TRANS, d, d, 1, M, d, x, 1, 0, y, 1);
  };
  S[2 * dd + w] = powerSigma(mv, d, u, tmp, S[2 * dd + 2], S[2 * dd + 3]);
}

/**
 * σ_max(U) and σ_max(U⁻ᵀ) side by side on the pool (UPKEEP_SIGMA; the caller's side): U and U⁻ᵀ copied to
 * the state's shared scratch first. The same numbers as two calls of upkeep.ts `topLeftSingular`.
 *
 * @example
 * ```ts ignore
 * const [sU, sUinvt] = sigmaPairOnPool(st, 1e-4);
 * ```
 *
 * @param st the state (st.pool and st.kernel set)
 * @param tol relative tolerance on σ
 * @param maxIter iteration cap
 * @returns σ_max(U) and σ_max(U⁻ᵀ)
 */
export function sigmaPairOnPool(st: FactoredState, tol: number, maxIter = 100): [number, number] {
  const pool = st.pool!, a = pool.kernelArgs, d = st.d, dd = d * d;
  if (st.sigmaS.length < 2 * dd + 4) st.sigmaS = pool.sharedF64(2 * dd + 4);
  const S = st.sigmaS;
  S.set(st.U);
  S.set(st.Uinvt, dd);
  S[2 * dd + 2] = maxIter;
  S[2 * dd + 3] = tol;
  a[ARG_MODE] = UPKEEP_SIGMA;
  a[ARG_SIGMA] = pool.sharedId(S);
  pool.runKernel(st.kernel, 2);
  return [S[2 * dd], S[2 * dd + 1]];
}

/** A mode whose parts are different tasks: part w of `parts`, m examples, d columns. */
type TaskPart = (
  sym: PartSymbols,
  v: SharedViews,
  p: Float64Array,
  m: number,
  d: number,
  w: number,
  parts: number,
) => void;

/**
 * The time of R += (η²/2) M H against that of the two solves: the same flops, but the solves run at about
 * half a product's speed (BENCHMARKS.md, "The Woodbury solves beside M H").
 */
const MH_PER_SOLVES = 0.5;

/**
 * Columns [0, c) of the two solves go to parts 0 … parts−2, columns [c, d) to the last part, which runs
 * M H first: c for d columns on `parts` parts, so that the last part's M H and columns take a fair share
 * (a multiple of 16; 0 on a one-part run, whose part runs everything).
 *
 * @example
 * ```ts
 * import { solveColumns } from "./step_kernel.ts";
 * console.log(solveColumns(257, 2)); // 192: the last part solves 65 columns beside M H
 * ```
 *
 * @param d columns
 * @param parts parts of the run
 * @returns c
 */
export function solveColumns(d: number, parts: number): number {
  if (parts <= 1) return 0;
  // a fair share is (1 + r)/parts of the solves' time; M H takes r of it on the last part
  const lastShare = Math.max(0, (1 + MH_PER_SOLVES) / parts - MH_PER_SOLVES);
  return Math.min(d, Math.round((d * (1 - lastShare)) / 16) * 16);
}

/**
 * UPD_TASKS: the two strsm of the Woodbury system on columns of P's first block, and R += (η²/2) M H on the
 * last part (see {@link solveColumns}); the same calls as the blas backend's, on columns.
 */
const updateTasks: TaskPart = (sym, v, p, m, d, w, parts) => {
  const a = KERNEL_ARGS, { ROW_MAJOR, NO_TRANS, TRANS, LOWER, LEFT, NON_UNIT } = CBLAS;
  const P = v.f32[p[a + ARG_P]], ld = 4 * d, L = v.f32[p[a + ARG_MI]];
  const c = solveColumns(d, parts), last = parts - 1;
  if (w === last) {
    const eta = p[a + ARG_ETA], H = v.f32[p[a + ARG_H]];
    const Mh = v.f32[p[a + ARG_MH]], R = v.f32[p[a + ARG_R]];
    sym.cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, d, m, 0.5 * eta * eta, Mh, m, H, d, 1, R, d);
  }
  const [k0, k1] = w === last ? [c, d] : partOf(w, last, c, 16);
  if (k1 <= k0) return;
  const B = P.subarray(k0);
  sym.cblas_strsm(ROW_MAJOR, LEFT, LOWER, NO_TRANS, NON_UNIT, m, k1 - k0, 1, L, m, B, ld);
  sym.cblas_strsm(ROW_MAJOR, LEFT, LOWER, TRANS, NON_UNIT, m, k1 - k0, 1, L, m, B, ld);
};

/** How long part 1 of UPD_TAIL waits for part 0's block before it gives up (it only ever waits µs). */
const TAIL_WAIT_MS = 30_000;

/**
 * UPD_TAIL, the update's last calls (each the same native calls as the one-thread path of step32.ts
 * `update32`; see the module for the split). They write disjoint memory, except part 1's mirror and Q
 * increments, which wait for part 0's block.
 */
const updateTail: TaskPart = (sym, v, p, m, d, w) => {
  const a = KERNEL_ARGS, dd = d * d, T = v.f32[p[a + ARG_T]], SA = v.f32[p[a + ARG_STACC]];
  const incr = (r: number) => {
    const b = a + ARG_INCR + 3 * r, al = p[b], x = p[b + 1] * dd, y = p[b + 2] * dd;
    if (al !== 0) sym.cblas_saxpy(dd, al, T.subarray(x, x + dd), 1, SA.subarray(y, y + dd), 1);
  };
  const H = v.f32[p[a + ARG_H]], R = v.f32[p[a + ARG_R]], TQ = T.subarray(2 * dd, 3 * dd);
  const sync = v.i32[p[a + ARG_SYNC]], tail = p[a + ARG_TAIL], ranges = p[a + ARG_RANGES];
  if (w === 0) {
    try {
      syr2kBlock(sym, 0, d, m, 1, H, d, R, d, 0, TQ, d);
    } finally {
      Atomics.store(sync, 0, tail); // also when it threw: part 1 must not wait for ever (the run fails)
    }
  } else if (w === 1) syr2kBlock(sym, 1, d, m, 1, H, d, R, d, 0, TQ, d);
  if (w < ranges) {
    const [i0, i1] = partOf(w, ranges, m, 1), off = v.i32[p[a + ARG_OFF]];
    addTargetRows(sym, v, p, d, off[i0], off[i1], 0);
  }
  if (w === 0) {
    for (let r = 0; r < 4; r++) incr(r);
  } else if (w === 1) {
    addTargetRows(sym, v, p, d, 0, p[a + ARG_NNZ], 1);
    if (Atomics.load(sync, 0) !== tail) {
      const t0 = performance.now();
      for (let spins = 1; Atomics.load(sync, 0) !== tail; spins++) {
        if ((spins & 1023) === 0 && performance.now() - t0 > TAIL_WAIT_MS) {
          throw new Error(`step kernel: part 0 of the update's tail did not finish in ${TAIL_WAIT_MS} ms`);
        }
      }
    }
    mirrorTriangle(sym.cblas_somatcopy, TQ, d, d, "lower");
    for (let r = 4; r < 6; r++) incr(r);
  }
};

/**
 * The V update of entries [k0, k1) whose shared-row mark is `marked`: V_c += coef_k · (row ex_k of P's
 * first block), a cblas_saxpy per entry in entry order, zero coefficients skipped (as axpyRows).
 */
function addTargetRows(
  sym: PartSymbols,
  v: SharedViews,
  p: Float64Array,
  d: number,
  k0: number,
  k1: number,
  marked: number,
): void {
  const a = KERNEL_ARGS, V = v.f32[p[a + ARG_V]], P = v.f32[p[a + ARG_P]], coef = v.f64[p[a + ARG_COEF]]!;
  const idx = v.i32[p[a + ARG_IDX]], ex = v.i32[p[a + ARG_EX]], shared = v.i32[p[a + ARG_SHARED]];
  const ld = 4 * d;
  for (let k = k0; k < k1; k++) {
    const c = coef[k];
    if (c === 0 || shared[k] !== marked) continue;
    const x = ex[k] * ld, y = idx[k] * d;
    sym.cblas_saxpy(d, c, P.subarray(x, x + d), 1, V.subarray(y, y + d), 1);
  }
}

/** GRAD_ROWS for examples [i0, i1): ∇H and X' rows, and h_i under X' (update32 skips its copy). */
function gradTail(
  ks: ExampleScalars,
  H: Float32Array,
  P: Float32Array,
  B: Float32Array,
  X: Float32Array,
  G: Float32Array,
  m: number,
  ld: number,
  i0: number,
  i1: number,
): void {
  const d = ks.d;
  gradRows(ks, P, B, X, G, ld, i0, i1);
  X.set(H.subarray(i0 * d, i1 * d), (m + i0) * d);
}

/** FWD_ROWS for examples [i0, i1). */
function forwardRows(
  sym: PartSymbols,
  ks: ExampleScalars,
  H: Float32Array,
  P: Float32Array,
  V: Float32Array,
  A: Float32Array,
  idx: Int32Array,
  ex: Int32Array,
  losses: Float64Array,
  bad: Int32Array,
  ld: number,
  i0: number,
  i1: number,
): void {
  const d = ks.d, off = ks.merged.off, o = ks.o, dy = ks.dy, hw = ks.hw;
  let most = 0;
  for (let i = i0; i < i1; i++) most = Math.max(most, off[i + 1] - off[i]);
  if (ks.kO.length < most) {
    ks.kO = new Float64Array(2 * most);
    ks.kY = new Float64Array(2 * most);
    ks.kDy = new Float64Array(2 * most);
  }
  exampleStats(ks, i1, H, P, 2 * d, ld, i0);
  for (let i = i0; i < i1; i++) {
    const k0 = off[i], k1 = off[i + 1], hwi = hw[i];
    // the same cblas_sdot per entry as the blas backend's dotRows (its rows touched first, as there),
    // then + ω·h
    touchRows(V, d, idx, k0, k1 - k0, d);
    for (let k = k0; k < k1; k++) {
      const vr = idx[k] * d, pr = ex[k] * ld + d;
      o[k] = sym.cblas_sdot(d, V.subarray(vr, vr + d), 1, P.subarray(pr, pr + d), 1);
    }
    for (let k = k0; k < k1; k++) o[k] += hwi;
    bad[i] = 0;
    try {
      losses[i] = lossOfExample(ks, i);
    } catch {
      // the caller raises it (for the first such example, with the message of the one-thread path)
      bad[i] = 1;
      losses[i] = NaN;
      continue;
    }
    // A_i = Σ ẏ V rows: the same cblas_saxpy per entry (zero coefficients skipped) as axpyRows
    A.fill(0, i * d, (i + 1) * d);
    for (let k = k0; k < k1; k++) {
      const c = dy[k];
      if (c === 0) continue;
      const vr = idx[k] * d, ar = ex[k] * d;
      sym.cblas_saxpy(d, c, V.subarray(vr, vr + d), 1, A.subarray(ar, ar + d), 1);
    }
  }
}

/**
 * ∇H and X' rows for examples [i0, i1): the loop of step32.ts `forward32` after B = A U, row by row.
 *
 * @example
 * ```ts ignore
 * gradRows(st, P, B, X, gradH, 4 * d, 0, m);
 * ```
 *
 * @param ks the scalars (g, g_s, 𝟙·ẏ, ω, w̄)
 * @param P the forward's products (QH in its third block)
 * @param B A U
 * @param X X' (its first m rows)
 * @param G ∇H
 * @param ld stride of P's rows
 * @param i0 first example
 * @param i1 end
 */
export function gradRows(
  ks: Pick<ExampleScalars, "d" | "loss" | "g" | "gs" | "sumdy" | "omega" | "wbar">,
  P: Float32Array,
  B: Float32Array,
  X: Float32Array,
  G: Float32Array,
  ld: number,
  i0: number,
  i1: number,
): void {
  const d = ks.d, usesSum = ks.loss.usesSum, g = ks.g, gs = ks.gs, sumdy = ks.sumdy;
  const omega = ks.omega, wbar = ks.wbar;
  for (let i = i0; i < i1; i++) {
    const r = i * d, p = i * ld + 2 * d, sd = sumdy[i], gi = g[i], gsi = gs[i];
    if (usesSum) {
      for (let c = 0; c < d; c++) {
        const b = B[r + c] + sd * omega[c], qh = P[p + c];
        G[r + c] = b + 2 * gi * qh + gsi * wbar[c];
        X[r + c] = b + gi * qh;
      }
    } else {
      for (let c = 0; c < d; c++) {
        const b = B[r + c], qh = P[p + c];
        G[r + c] = b + 2 * gi * qh;
        X[r + c] = b + gi * qh;
      }
    }
  }
}

/**
 * Copies the merged targets (st.merged) to the kernel's shared arrays, for {@link forwardOnPool}.
 *
 * @example
 * ```ts ignore
 * st.merged.merge(Y);
 * shareTargets(st, m);
 * ```
 *
 * @param st the state (st.pool and st.kernel set)
 * @param m examples
 */
export function shareTargets(st: FactoredState, m: number): void {
  const mg = st.merged, nnz = mg.nnz;
  st.offS.set(mg.off.subarray(0, m + 1));
  st.idxS.set(mg.idx.subarray(0, nnz));
  st.exS.set(mg.ex.subarray(0, nnz));
  st.wS.set(mg.w.subarray(0, nnz));
}

/**
 * Steps 1–4 per example on the pool (the caller's side) (step_kernel.ts FWD_ROWS), after
 * {@link shareTargets}; returns the batch loss summed in example order, or throws the one-thread path's
 * DivergenceError for the first example whose loss is not finite.
 *
 * @example
 * ```ts ignore
 * const L = forwardOnPool(st, H32, m);
 * ```
 *
 * @param st the state (st.pool and st.kernel set)
 * @param H the batch on shared memory
 * @param m examples
 * @param fused go on with B = A U and the GRAD_ROWS work in the same run (the kernel's ARG_FUSED)
 * @returns the batch loss
 */
export function forwardOnPool(st: FactoredState, H: Float32Array, m: number, fused = false): number {
  runStepKernel(st, H, m, FWD_ROWS, 0, fused);
  const losses = st.lossS, bad = st.badS;
  let L = 0;
  for (let i = 0; i < m; i++) {
    if (bad[i] !== 0) {
      lossOfExample(st, i); // throws, as the one-thread loop does for this example
      throw new Error(`step kernel: example ${i} was marked not finite but its loss is finite`);
    }
    L += losses[i];
  }
  return L;
}

/**
 * UPD_TAIL's V update, prepared by the caller before the run (step32.ts: while the product before it runs
 * on the workers): the entries' bounds of the forward's ranges of examples (FWD_ROWS with the pool held: one
 * part per thread, partOf's ranges as the kernel's parts take them), and which rows more than one range
 * names (csr.ts `SharedRowMarks`, into st.sharedS).
 *
 * @example
 * ```ts ignore
 * markTail(st, m);
 * runStepKernel(st, H32, m, UPD_TAIL, eta);
 * ```
 *
 * @param st the state (st.pool and st.kernel set)
 * @param m examples
 */
export function markTail(st: FactoredState, m: number): void {
  const mg = st.merged, ranges = st.pool!.parts;
  if (st.tailBounds.length < ranges + 1) st.tailBounds = new Int32Array(ranges + 1);
  const bounds = st.tailBounds;
  for (let w = 0; w < ranges; w++) bounds[w] = mg.off[partOf(w, ranges, m, 1)[0]];
  bounds[ranges] = mg.off[m];
  st.sharedRows.mark(mg.idx, bounds, ranges, st.sharedS);
}

/**
 * Writes the step kernel's arguments (the state's shared arrays by id) and runs `mode` over m examples
 * (the caller's side).
 *
 * @example
 * ```ts ignore
 * runStepKernel(st, H32, m, GRAD_ROWS);
 * ```
 *
 * @param st the state (st.pool and st.kernel set)
 * @param H the batch on shared memory
 * @param m examples
 * @param mode FWD_ROWS, GRAD_ROWS, UPD_ROWS, UPD_TASKS or UPD_TAIL
 * @param eta learning rate (UPD_ROWS, UPD_TASKS, UPD_TAIL)
 * @param fused FWD_ROWS: go on with B = A U and GRAD_ROWS (ARG_FUSED)
 */
export function runStepKernel(
  st: FactoredState,
  H: Float32Array,
  m: number,
  mode: number,
  eta = 0,
  fused = false,
): void {
  const pool = st.pool!, a = pool.kernelArgs, ids = st.kernelIds, key = st.kernelKey;
  if (
    key[0] !== H.buffer || key[1] !== st.P32 || key[2] !== st.V || key[3] !== st.o || key[4] !== st.coef
  ) {
    // the buffer ids change only when the scratch grows (ensure: H32 and P32 with m, o with nnz) or V
    // does (appendRows)
    const arrays: [number, ArrayBufferView][] = [
      [ARG_H, H],
      [ARG_P, st.P32],
      [ARG_V, st.V],
      [ARG_A, st.A32],
      [ARG_B, st.B32],
      [ARG_X, st.EX32],
      [ARG_G, st.G32],
      [ARG_OFF, st.offS],
      [ARG_IDX, st.idxS],
      [ARG_EX, st.exS],
      [ARG_W, st.wS],
      [ARG_O, st.o],
      [ARG_DY, st.dy],
      [ARG_Q, st.q],
      [ARG_S, st.s],
      [ARG_HW, st.hw],
      [ARG_GQ, st.g],
      [ARG_GS, st.gs],
      [ARG_SUMDY, st.sumdy],
      [ARG_OMEGA, st.omega],
      [ARG_WBAR, st.wbar],
      [ARG_LOSSES, st.lossS],
      [ARG_BAD, st.badS],
      [ARG_SG, st.sg],
      [ARG_GH, st.GH32],
      [ARG_R, st.R32],
      [ARG_MI, st.Mi32],
      [ARG_MH, st.Mh32],
      [ARG_T, st.T32],
      [ARG_STACC, st.StAcc32],
      [ARG_COEF, st.coef],
      [ARG_SHARED, st.sharedS],
      [ARG_SYNC, st.stepMarks],
    ];
    if (ARG_COUNT > a.length) throw new Error("step kernel: too many arguments for the pool");
    for (const [k, x] of arrays) {
      ids[k] = pool.sharedId(x);
      if (ids[k] < 0) throw new Error(`step kernel: argument ${k} is not on the pool's shared memory`);
    }
    key[0] = H.buffer; // H is a new view of st.H32 each step
    key[1] = st.P32;
    key[2] = st.V;
    key[3] = st.o;
    key[4] = st.coef;
  }
  a.set(ids.subarray(0, ARG_INCR));
  a[ARG_SHARED] = ids[ARG_SHARED];
  a[ARG_SYNC] = ids[ARG_SYNC];
  a[ARG_MODE] = mode;
  a[ARG_M] = m;
  a[ARG_OUTPUTS] = st.D;
  a[ARG_ETA] = eta;
  a[ARG_FUSED] = fused ? 1 : 0;
  if (mode === UPD_TAIL) {
    // the increments' (alpha, T row, StAcc row): U⁻ᵀ += 2η T[0], U −= 2η T[1] into the mirrors and the
    // accumulator, then Q += T[2] into both (the rows step32.ts update32 passes to axpyRows)
    const ranges = pool.parts;
    a[ARG_NNZ] = st.merged.nnz;
    a[ARG_RANGES] = ranges;
    st.tails = (st.tails + 1) | 0 || 1; // never 0, the mark's first value
    a[ARG_TAIL] = st.tails;
    const incr = (r: number, alpha: number, x: number, y: number) => {
      a[ARG_INCR + 3 * r] = alpha;
      a[ARG_INCR + 3 * r + 1] = x;
      a[ARG_INCR + 3 * r + 2] = y;
    };
    for (let r = 0; r < 4; r++) incr(r, r % 2 === 0 ? 2 * eta : -2 * eta, st.axpyX[r], st.axpyY[r]);
    for (let r = 0; r < 2; r++) incr(4 + r, 1, 2, st.axpyQ[r]);
  }
  pool.runKernel(st.kernel, m);
}
