/**
 * The factored step with float32 products (the default on blas for d ≥ 64): the same steps 1–11 as
 * step64.ts, with the d×d×m products as float32 sgemm on the float32 mirrors [U; Q; U⁻ᵀ] of the float64
 * state (FactoredState.St32). The increments are float32, added by saxpy to the mirrors and to a float32
 * accumulator, which is added to the float64 state (re-rounding the mirrors) every SETTLE_EVERY steps or
 * before an update of the float64 state (FactoredState.settle; readers sum it into copies,
 * FactoredState.settledView, and change nothing): ≈ 7 d×d×m products per step plus 4 m×m×d
 * ones. A step whose update factor leaves [½, 2], or one taken while U is badly conditioned, is done in
 * float64 instead (the layer's step redoes it with step64.ts). The scalar work is shared (scalars.ts).
 *
 * @module
 */

import { SingularUpdateError } from "../../core/errors.ts";
import type { SparseBatch, StepResult } from "../../core/types.ts";
import { checkGradient, checkUpdateFactor } from "../guard.ts";
import { addCondBudget, completeM, exampleStats, factorMax, lossOfExample, updateSums } from "./scalars.ts";
import { CHOLESKY_MIN_G, type FactoredState, SETTLE_EVERY } from "./state.ts";
import { reinvert } from "./upkeep.ts";
import { splits } from "../../linalg/pool_split.ts";
import {
  choleskyRows,
  forwardOnPool,
  GRAD_ROWS,
  gradRows,
  markTail,
  runStepKernel,
  shareTargets,
  UPD_ROWS,
  UPD_TAIL,
  UPD_TASKS,
} from "./step_kernel.ts";

/**
 * Steps 1–5 with float32 products (sgemm on the mirrors; H is used as given). Row i of P (m×4d) gets
 * [· | ĥ_i | Qh_i | U⁻ᵀh_i] from one sgemm (the last block only when `withZ`, for the update); A, B
 * and X' = B + G·QH (rows 0 … m-1 of EX) are float32, q, s, o, ẏ float64.
 *
 * @example
 * ```ts ignore
 * const r = forward32(st, H, Y, m, true);
 * ```
 *
 * @param st the state (scratch sized by st.ensure)
 * @param H m×d
 * @param Y the targets
 * @param m examples
 * @param withZ also compute Z = H U⁻¹ (for update32)
 * @param lateGrad on the pool, leave ∇H's copy out of shared memory to {@link update32}, which makes it while
 *   the workers scale rows (layer.ts step; the array is returned now and filled there)
 * @returns loss and ∇H (a new array, also kept in st.gradH)
 */
export function forward32(
  st: FactoredState,
  H: Float32Array,
  Y: SparseBatch,
  m: number,
  withZ: boolean,
  lateGrad = false,
): StepResult {
  const { d, la } = st;
  const ld = 4 * d;
  const P = st.P32, A = st.A32, B = st.B32, X = st.EX32, St = st.St32;
  if (!st.mirrorsOk) st.refreshMirrors();
  const mg = st.merged;
  const onPool = st.kernel >= 0 && st.pool!.sharedId(H) >= 0;
  // 1. [ĥ_i | Qh_i | U⁻ᵀh_i] = H [U; Q; U⁻ᵀ]ᵀ (Q is symmetric): one sgemm, m×(2d or 3d)×d
  // (the targets merged first: a pool's worker woken by the step's hold is polling by the first product)
  mg.merge(Y);
  if (onPool) shareTargets(st, m);
  la.sgemm(false, true, m, withZ ? 3 * d : 2 * d, d, 1, H, d, St, d, 0, P.subarray(d), ld);
  // where the pool would split B = A U anyway: split by examples inside the forward's kernel run instead
  // (each part its examples' rows of A, B and ∇H: one synchronisation for steps 2–5)
  const fused = onPool && splits("gemm", 2 * m * d * d);
  let L = 0;
  if (onPool) {
    // with a pooled backend the per-example work of steps 1–4 runs on every thread (step_kernel.ts
    // FWD_ROWS: the same functions and native calls per example as the loops below, the same bits)
    L = forwardOnPool(st, H, m, fused);
  } else {
    exampleStats(st, m, H, P, 2 * d, ld);
    // 2. gather target rows, o_ic = V_c·ĥ_i + ω·h_i
    // The rows are read in place (V is not written before step 8; a gather costs a copy per entry), one
    // example at a time: its K dot products (2), its loss (3) and A_i = Σ ẏ_ic V_c (4) while its rows
    // are still in cache (one pass over the target rows instead of two: measured 358 → 246 µs for 640
    // random rows of a 200,000×256 V). dotRows/axpyRows are cblas_sdot/saxpy per row under blas.
    const V = st.V, idx = mg.idx, o = st.o, ex = mg.ex, off = mg.off, hw = st.hw;
    const Ph = P.subarray(d);
    A.fill(0, 0, m * d);
    for (let i = 0; i < m; i++) {
      const k0 = off[i], n = off[i + 1] - k0, hwi = hw[i];
      la.dotRows(V, d, idx, Ph, ld, ex, n, d, o, k0);
      for (let k = k0; k < k0 + n; k++) o[k] += hwi;
      L += lossOfExample(st, i);
      la.axpyRows(st.dy, V, d, idx, A, d, ex, n, d, k0);
    }
  }
  // 5. B = A U (+ (𝟙ᵀẏ) ωᵀ); ∇H = B + 2 G QH + g_s w̄ᵀ; X' = B + G QH
  if (!fused) la.sgemm(false, false, m, d, d, 1, A, d, St, d, 0, B, d);
  const gradH = new Float32Array(m * d);
  st.gradLate = false;
  if (onPool) {
    if (!fused) runStepKernel(st, H, m, GRAD_ROWS);
    if (lateGrad) st.gradLate = true;
    else gradH.set(st.G32.subarray(0, m * d));
  } else gradRows(st, P, B, X, gradH, ld, 0, m);
  // a finite loss with a gradient that is not: refused as a non-finite loss is (on the pool ∇H is in G32,
  // copied to gradH now or by update32)
  checkGradient(onPool ? st.G32 : gradH, m * d, d, st.steps + 1, st.loss.name);
  st.gradH = gradH;
  return { loss: L, gradH };
}

/**
 * Steps 6–11 with float32 products after {@link forward32}(…, true). Returns false, with the state
 * untouched, when the step is strong (update factor outside [½, 2]) or the guard on the float32 Gram
 * matrix refuses it: the caller then redoes the step in float64, whose guard decides exactly.
 *
 * Products (m×d H, Z = H U⁻¹, N = I − 2η G S):
 * - [E'; S] = [X'; H] Hᵀ (one sgemm 2m×m×d); M = 2(E'G + G E'ᵀ) + the sum terms + ẏ_i·ẏ_j.
 * - Woodbury: Zn = N⁻ᵀ Z (rows U_new⁻ᵀ h_i, sgemm m×d×m), then [ΔU⁻ᵀ; ΔU] = [Zn | Ĥ]ᵀ (G H) (one sgemm
 *   2d×d×m): U⁻ᵀ += 2η Znᵀ G H, U −= 2η Ĥᵀ G H. Direct (m ≥ directSolveMinBatch): U first, then U⁻ᵀ
 *   re-inverted and Zn = H U_new⁻¹.
 * - Q += Hᵀ R + Rᵀ H with R = −η ∇H + (η²/2) M H (sgemm m×d×m, one ssyr2k d×d×m).
 * The increments are float32; they are added to the float64 state by the loops that also rewrite the
 * mirrors. m = 1: the rank-1 updates are float64 loops (no gemm).
 *
 * @example
 * ```ts ignore
 * if (!update32(st, H, m, eta)) update64(st, m, eta); // after forward64
 * ```
 *
 * @param st the state
 * @param H m×d (the same as forward32's)
 * @param m examples
 * @param eta learning rate
 * @returns whether the step was taken
 */
export function update32(st: FactoredState, H: Float32Array, m: number, eta: number): boolean {
  const { d, la } = st;
  const ld = 4 * d, dd = d * d, a2 = 2 * eta;
  const P = st.P32, X = st.EX32, ES = st.ES32, St = st.St32, T = st.T32, GH = st.GH32;
  const Mi = st.Mi32, S = st.S, M = st.M, N = st.N, E = st.BH;
  const g = st.g;
  const U = st.U, Uinvt = st.Uinvt, zs = st.zs;
  // the forward ran on the pool (forward32's test): its ∇H rows are in st.G32 for R
  const onPool = m > 1 && st.kernel >= 0 && st.pool!.sharedId(H) >= 0;
  let sumsDone = false; // R, M H, ω and w̄ already done by the step kernel
  // S = H Hᵀ and E' = X' Hᵀ (E'_ij = ẏ_i·o_j + g_i h_iᵀQh_j)
  if (m === 1) {
    let ss = 0, e = 0;
    for (let c = 0; c < d; c++) {
      ss += H[c] * H[c];
      e += X[c] * H[c];
    }
    S[0] = ss;
    E[0] = e;
  } else {
    if (!onPool) X.set(H.subarray(0, m * d), m * d); // else GRAD_ROWS copied it
    la.sgemm(false, true, 2 * m, m, d, 1, X, d, H, d, 0, ES, m);
  }
  // the Cholesky Woodbury path (every g_i > 0; the direct re-inversion from m ≥ directSolveMinBatch)
  let chol = m > 1 && m < st.directSolveMinBatch;
  for (let i = 0; chol && i < m; i++) chol = g[i] > CHOLESKY_MIN_G;
  if (chol) {
    const sg = st.sg;
    for (let i = 0; i < m; i++) {
      sg[i] = Math.sqrt(g[i]);
      zs[i] = 1 / sg[i];
    }
  }
  // on the pool, the rows of the Cholesky path's scaling (step_kernel.ts UPD_ROWS, which reads g, H, P and
  // ∇H and writes scratch only) run on the workers while this thread does the m×m work, the Woodbury
  // factor included; it takes the blocks left at the join (pool.ts defer)
  const rowsEarly = onPool && chol, pool = st.pool!;
  if (rowsEarly) {
    st.stepMarks[1] = 0;
    pool.defer(() => runStepKernel(st, H, m, UPD_ROWS, eta));
  }
  let lam: number[] | null;
  try {
    // ∇H out of shared memory into the array forward32 returned (lateGrad), beside the rows too
    if (st.gradLate) {
      st.gradH.set(st.G32.subarray(0, m * d));
      st.gradLate = false;
    }
    lam = guardAndM(st, m, eta);
    // the Woodbury system factored here (float64 dpotrf) beside the rows: see the Cholesky branch below;
    // then the coefficients and row marks of UPD_TAIL's V update, which read only the forward's results
    if (lam && rowsEarly) {
      if (!factorWoodbury(st, m, eta)) lam = null; // not reached: the guard showed T ⪰ ½ I
      else {
        st.Mh32.set(st.M.subarray(0, m * m)); // M for UPD_TASKS' M H
        const coef = st.coef, dy = st.dy, ex = st.merged.ex;
        for (let k = 0; k < st.merged.nnz; k++) coef[k] = -eta * dy[k] * zs[ex[k]];
        markTail(st, m);
      }
    }
  } finally {
    if (rowsEarly) pool.join();
  }
  if (!lam) return false;
  const [lamMin, lamMax] = lam;

  // 6, 7: U, U⁻ᵀ and Zn (rows U_new⁻ᵀ h_i, in P's first block)
  if (m === 1) {
    // Sherman–Morrison: U⁻ᵀ += 2η g zn hᵀ with zn = U_new⁻ᵀ h = Z/(1 − 2η g‖h‖²), U −= 2η g ĥ hᵀ: rank-1
    // updates (sger) of the mirrors and the accumulator (5× faster than a JS loop at d = 300)
    zs[0] = 1;
    const f = 1 / (1 - a2 * g[0] * S[0]), a = a2 * g[0];
    for (let r = 0; r < d; r++) P[r] = f * P[3 * d + r];
    const zn = P.subarray(0, d), hhat = P.subarray(d, 2 * d), v = st.views;
    la.sger(d, d, a, zn, H, v.stUinvt, d);
    la.sger(d, d, a, zn, H, v.accUinvt, d);
    la.sger(d, d, -a, hhat, H, v.stU, d);
    la.sger(d, d, -a, hhat, H, v.accU, d);
  } else {
    if (m >= st.directSolveMinBatch) {
      for (let i = 0; i < m; i++) {
        const gi = g[i], r = i * d;
        zs[i] = 1;
        for (let c = 0; c < d; c++) GH[r + c] = gi * H[r + c];
      }
    }
    if (m < st.directSolveMinBatch) {
      if (chol) {
        // every g_i > 0: with C = diag(√g) (sg, above), N⁻ᵀ = (I − 2η S G)⁻¹ = C⁻¹ T⁻¹ C for the symmetric
        // positive definite T = I − 2η C S C (λ_min ≥ ½ here), so C·Zn = L⁻ᵀ L⁻¹ (C Z) with T = L Lᵀ
        // (dpotrf and two strsm). Rows of Ĥ are scaled by √g too and GH holds C H: [C Zn | C Ĥ]ᵀ (C H) =
        // [Znᵀ G H; Ĥᵀ G H]. zs_i = 1/√g_i undoes the scaling of Zn for the V update.
        if (onPool) {
          // factored and scaled above (rowsEarly); the two triangular solves beside M H, and ω, w̄ on
          // every thread (step_kernel.ts UPD_TASKS): the same calls as below, the same bits. ω and w̄ are
          // state: only once dpotrf has succeeded.
          runStepKernel(st, H, m, UPD_TASKS, eta);
          sumsDone = true;
        } else {
          choleskyRows(st.sg, H, P, GH, d, ld, 0, m);
          if (!factorWoodbury(st, m, eta)) return false; // not reached: the guard showed T ⪰ ½ I
          la.strsm(false, m, d, 1, Mi, m, P, ld);
          la.strsm(true, m, d, 1, Mi, m, P, ld);
        }
      } else {
        for (let i = 0; i < m; i++) {
          const gi = g[i], r = i * d;
          zs[i] = 1;
          for (let j = 0; j < m; j++) N[i * m + j] = (i === j ? 1 : 0) - a2 * gi * S[i * m + j];
          for (let c = 0; c < d; c++) GH[r + c] = gi * H[r + c];
        }
        la.dinvert(N, m);
        for (let j = 0; j < m * m; j++) Mi[j] = N[j];
        la.sgemm(true, false, m, d, m, 1, Mi, m, P.subarray(3 * d), ld, 0, P, ld);
      }
      if (sumsDone) {
        // the rest on the pool as two tasks side by side (step_kernel.ts UPD_TAIL): the state increments
        // below (U⁻ᵀ, U, and Q from R) on one thread, the V update of step 8 on another; the same calls
        // (its coefficients and row marks were made beside UPD_ROWS, above)
        la.sgemm(true, false, 2 * d, d, m, 1, P, ld, GH, d, 0, T, d);
        runStepKernel(st, H, m, UPD_TAIL, eta);
        if (++st.pending >= SETTLE_EVERY) st.settle();
        addCondBudget(st, lamMin, lamMax);
        return true;
      }
      // U⁻ᵀ += 2η T[0], U −= 2η T[1]: into the mirrors and the accumulator (see SETTLE_EVERY)
      // (one call: the mirrors and the accumulator are the two halves of one buffer, st.StAcc32)
      const alpha = st.axpyAlpha;
      alpha[0] = alpha[2] = a2;
      alpha[1] = alpha[3] = -a2;
      la.sgemm(true, false, 2 * d, d, m, 1, P, ld, GH, d, 0, T, d);
      la.axpyRows(alpha, T, dd, st.axpyX, st.StAcc32, dd, st.axpyY, 4, dd);
    } else {
      // the direct re-inversion needs U in float64
      st.settle();
      la.sgemm(true, false, d, d, m, 1, P.subarray(d), ld, GH, d, 0, T, d);
      for (let j = 0; j < dd; j++) {
        U[j] -= a2 * T[j];
        St[j] = U[j];
      }
      reinvert(la, U, Uinvt, d);
      for (let j = 0; j < dd; j++) St[2 * dd + j] = Uinvt[j];
      la.sgemm(false, true, m, d, d, 1, H, d, St.subarray(2 * dd), d, 0, P, ld);
    }
  }

  // 8. V rows: V_c −= η ẏ_ic (U_new⁻ᵀ h_i)ᵀ, added in entry order straight from P by axpyRows (one pass
  // over the rows read in step 2, still in cache; a delta buffer plus scatterAddRows costs a second pass)
  const V = st.V, dy = st.dy, mg = st.merged, ex = mg.ex, idx = mg.idx;
  const coef = st.coef;
  for (let k = 0; k < mg.nnz; k++) coef[k] = -eta * dy[k] * zs[ex[k]];
  la.axpyRows(coef, P, ld, ex, V, d, idx, mg.nnz, d);

  // 10. Q += Hᵀ R + Rᵀ H, R = −η ∇H + (η²/2) M H
  const gradH = st.gradH, h2 = 0.5 * eta * eta;
  if (m === 1) {
    // Q += h rᵀ + r hᵀ (four sger: mirror and accumulator)
    const rv = st.R32, mh = h2 * M[0], v = st.views;
    for (let c = 0; c < d; c++) rv[c] = -eta * gradH[c] + mh * H[c];
    la.sger(d, d, 1, H, rv, v.stQ, d);
    la.sger(d, d, 1, rv, H, v.stQ, d);
    la.sger(d, d, 1, H, rv, v.accQ, d);
    la.sger(d, d, 1, rv, H, v.accQ, d);
  } else {
    const R = st.R32;
    if (!sumsDone) {
      for (let j = 0; j < m * d; j++) R[j] = -eta * gradH[j];
      for (let j = 0; j < m * m; j++) Mi[j] = M[j];
      la.sgemm(false, false, m, d, m, h2, Mi, m, H, d, 1, R, d);
    }
    la.ssyr2k(true, d, m, 1, H, d, R, d, 0, T, d);
    const alpha = st.axpyAlpha;
    alpha[0] = alpha[1] = 1;
    la.axpyRows(alpha, T, dd, st.axpyQX, st.StAcc32, dd, st.axpyQ, 2, dd);
  }

  // 9, 11. ω and w̄
  if (!sumsDone) updateSums(st, m, eta, H);
  if (++st.pending >= SETTLE_EVERY) st.settle();
  addCondBudget(st, lamMin, lamMax);
  return true;
}

/**
 * The m×m work between the Gram product and the update: S = H Hᵀ symmetrised from the product (m > 1), the
 * guard on the update factor, its range, and M = ∇Oᵀ∇O (float64). Returns [λ_min, λ_max], or null when the
 * step is refused (the caller redoes it in float64, whose guard decides exactly).
 */
function guardAndM(st: FactoredState, m: number, eta: number): number[] | null {
  const S = st.S, M = st.M, g = st.g, ES = st.ES32;
  if (m > 1) {
    const mm = m * m;
    for (let i = 0; i < m; i++) {
      S[i * m + i] = ES[mm + i * m + i];
      for (let j = 0; j < i; j++) {
        S[i * m + j] = S[j * m + i] = 0.5 * (ES[mm + i * m + j] + ES[mm + j * m + i]);
      }
    }
  }
  let lamMin: number;
  try {
    lamMin = checkUpdateFactor(m, eta, g, S, st.steps + 1, st.guard, st.guardMargin);
  } catch (e) {
    if (e instanceof SingularUpdateError) return null;
    throw e;
  }
  const lamMax = factorMax(m, eta, g, S, lamMin);
  if (lamMin < 0.5 || lamMax > 2) return null;
  // (the conditioning budget is added where the step is taken: a refused factorisation returns false and
  // the float64 step adds its own)

  // M = ∇Oᵀ∇O (m×m, float64), with E' read where the Gram product left it (ES's first block; E[0] for m = 1)
  // (symmetric to the bit: the (j, i) entry is the sum of the same two products; each pair computed once)
  const Ef: Float32Array | Float64Array = m === 1 ? st.BH : ES;
  for (let i = 0; i < m; i++) {
    const gi = g[i], row = i * m;
    for (let j = 0; j <= i; j++) M[row + j] = M[j * m + i] = 2 * (Ef[row + j] * g[j] + gi * Ef[j * m + i]);
  }
  completeM(st, m, M);
  return [lamMin, lamMax];
}

/**
 * The Cholesky path's Woodbury system T = I − 2η C S C (C = diag(√g), st.sg; its lower triangle in N, float64)
 * factored in place, T = L Lᵀ (dpotrf), and L copied to the float32 Mi32 of the solves. False when dpotrf
 * refuses (not reached after the guard, which showed T ⪰ ½ I).
 */
function factorWoodbury(st: FactoredState, m: number, eta: number): boolean {
  const N = st.N, S = st.S, sg = st.sg, Mi = st.Mi32, a2 = 2 * eta;
  for (let i = 0; i < m; i++) {
    const ci = sg[i], row = i * m, f = a2 * ci;
    for (let j = 0; j < i; j++) N[row + j] = -f * sg[j] * S[row + j];
    N[row + i] = 1 - f * ci * S[row + i];
  }
  if (!st.la.dpotrf(N, m)) return false;
  for (let j = 0; j < m * m; j++) Mi[j] = N[j];
  return true;
}
