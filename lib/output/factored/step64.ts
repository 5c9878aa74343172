/**
 * The factored step with float64 products (dgemm on the float64 state): steps 1–11 of docs/factored-step.md
 * "One step", the reference path (the default on js and for d < 64, and the fallback of the float32 step for
 * strong steps). Rows of H are the examples h_i, so H below is m×d.
 *
 *  1. Ĥ = H Uᵀ, QH = H Q, q_i = QH_i·h_i, s_i = w̄·h_i                               (dgemm, m d²)
 *  2. gather the ≤ mK target rows of V; o_ic = V_c·ĥ_i + ω·h_i                          (m K d)
 *  3. the loss per example → ẏ, g_q, g_s
 *  4. A_i = Σ_c ẏ_ic V_c (from the gathered rows)                                        (m K d)
 *  5. B = A U + ω (𝟙ᵀẏ)ᵀ (rows Wᵀẏ_i);  ∇H = B + 2 G QH + g_s w̄ᵀ                         (dgemm, m d²)
 *  guard: refuse (SingularUpdateError) before touching the state when I − 2η H G Hᵀ is not safely
 *         positive definite (guard.ts).
 *  6. U ← U − 2η Ĥᵀ (G H)                                                                (dgemm, m d²)
 *  7. U⁻ᵀ: Woodbury U⁻ᵀ ← U⁻ᵀ + 2η Zᵀ (I_m − 2η G HHᵀ)⁻¹ G H with Z = H U⁻¹ (m = 1: Sherman–Morrison)
 *     when m < directSolveMinBatch; otherwise the direct solve U⁻ᵀ = inv(U_new)ᵀ (O(d³)).
 *  8. V_c ← V_c − η Σ_i ẏ_ic (U_new⁻ᵀ h_i)ᵀ, scattered back in entry order (deterministic).
 *  9. ω ← ω − η Σ_i (2 g_i (h_i·ω) + g_s,i) h_i           (loss uses s only)
 * 10. Q ← Q − η (∇Hᵀ H + Hᵀ ∇H) + η² Hᵀ M H, M = ∇Oᵀ∇O (m×m) expanded                  (dsyr2k, m d²)
 * 11. w̄ ← w̄ − η Σ_i c_i h_i, c_i = 𝟙·ẏ_i + 2 g_i s_i + D g_s,i  (loss uses s only)
 *
 * @module
 */

import type { SparseBatch, StepResult } from "../../core/types.ts";
import { checkGradient, checkUpdateFactor } from "../guard.ts";
import { addCondBudget, completeM, exampleStats, factorMax, lossOf, updateSums } from "./scalars.ts";
import type { FactoredState } from "./state.ts";
import { reinvert } from "./upkeep.ts";

/**
 * Steps 1–5: fills the scratch (Ĥ, QH, q, s, o, ẏ, g, g_s, A, B, ∇H) and returns loss and ∇H.
 *
 * @example
 * ```ts ignore
 * const { loss, gradH } = forward64(st, H, Y, m);
 * ```
 *
 * @param st the state (scratch sized for m and Y by st.ensure)
 * @param H m×d
 * @param Y the targets
 * @param m examples
 * @returns loss and ∇H (a new array)
 * @throws {DivergenceError} the loss or ∇H is not finite (the state is unchanged)
 */
export function forward64(st: FactoredState, H: Float32Array, Y: SparseBatch, m: number): StepResult {
  // U and Q with any pending float32 increments, read without settling (evaluate must change nothing;
  // a step's update64 settles)
  const { U, Q } = st.settledView();
  const { d, la } = st;
  const usesSum = st.loss.usesSum;
  const H64 = st.H64, Hhat = st.Hhat, QH = st.QH, A = st.A, B = st.B, G64 = st.G64;
  const g = st.g, gs = st.gs, sumdy = st.sumdy, hw = st.hw;
  const omega = st.omega, wbar = st.wbar;
  for (let j = 0; j < m * d; j++) H64[j] = H[j];
  // 1. Ĥ = H Uᵀ, QH = H Q, q, s, h·ω
  la.dgemm(false, true, m, d, d, 1, H64, d, U, d, 0, Hhat, d);
  la.dgemm(false, false, m, d, d, 1, H64, d, Q, d, 0, QH, d);
  exampleStats(st, m, H64, QH, 0, d);
  // 2. gather target rows, o_ic = V_c·ĥ_i + ω·h_i
  const mg = st.merged;
  mg.merge(Y);
  const nnz = mg.nnz, rows = st.rows, o = st.o, dy = st.dy;
  la.gatherRows(st.V, d, mg.idx, nnz, rows);
  for (let k = 0; k < nnz; k++) {
    const i = mg.ex[k], r = k * d, hr = i * d;
    let acc = 0;
    for (let c = 0; c < d; c++) acc += rows[r + c] * Hhat[hr + c];
    o[k] = acc + hw[i];
  }
  // 3. the loss
  const L = lossOf(st, m);
  // 4. A_i = Σ ẏ_ic V_c
  A.fill(0, 0, m * d);
  for (let k = 0; k < nnz; k++) {
    const a = dy[k];
    if (a === 0) continue;
    const r = k * d, ar = mg.ex[k] * d;
    for (let c = 0; c < d; c++) A[ar + c] += a * rows[r + c];
  }
  // 5. B = A U + (𝟙ᵀẏ) ωᵀ; ∇H = B + 2 g QH + g_s w̄ᵀ
  la.dgemm(false, false, m, d, d, 1, A, d, U, d, 0, B, d);
  const gradH = new Float32Array(m * d);
  for (let i = 0; i < m; i++) {
    const r = i * d, sd = sumdy[i], gi2 = 2 * g[i], gsi = gs[i];
    for (let c = 0; c < d; c++) {
      if (usesSum) B[r + c] += sd * omega[c];
      const v = B[r + c] + gi2 * QH[r + c] + gsi * wbar[c];
      G64[r + c] = v;
      gradH[r + c] = v;
    }
  }
  // a finite loss with a gradient that is not (an overflow in B or QH): refused as a non-finite loss is
  checkGradient(gradH, m * d, d, st.steps + 1, st.loss.name);
  return { loss: L, gradH };
}

/**
 * Steps 6–11 from the scratch {@link forward64} filled; the guard first.
 *
 * @example
 * ```ts ignore
 * update64(st, m, 0.01);
 * ```
 *
 * @param st the state
 * @param m examples
 * @param eta learning rate
 * @throws {SingularUpdateError} the update factor is not safely positive definite (state unchanged)
 */
export function update64(st: FactoredState, m: number, eta: number): void {
  const { d, la } = st;
  const H64 = st.H64, Hhat = st.Hhat, QH = st.QH, B = st.B, G64 = st.G64;
  const S = st.S, g = st.g;
  const U = st.U, Uinvt = st.Uinvt;
  // S = H Hᵀ (Gram of the examples) and the guard, before any state changes (pending float32 increments
  // included: a refused step leaves the state as it was)
  la.dgemm(false, true, m, m, d, 1, H64, d, H64, d, 0, S, m);
  const lamMin = checkUpdateFactor(m, eta, g, S, st.steps + 1, st.guard, st.guardMargin);
  const lamMax = factorMax(m, eta, g, S, lamMin);
  st.settle();
  st.mirrorsOk = false;
  addCondBudget(st, lamMin, lamMax);
  // M = ∇Oᵀ∇O (m×m), from the pre-step quantities
  const M = st.M, BH = st.BH, QHH = st.QHH;
  la.dgemm(false, true, m, m, d, 1, B, d, H64, d, 0, BH, m); // BH_ij = (Wᵀẏ_i)·h_j = ẏ_i·o_j
  la.dgemm(false, true, m, m, d, 1, QH, d, H64, d, 0, QHH, m); // QHH_ij = h_iᵀ Q h_j
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      M[i * m + j] = 2 * g[j] * BH[i * m + j] + 2 * g[i] * BH[j * m + i] + 4 * g[i] * g[j] * QHH[i * m + j];
    }
  }
  completeM(st, m, M);

  // GH = rows g_i h_i
  const GH = st.GH;
  for (let i = 0; i < m; i++) {
    const gi = g[i], r = i * d;
    for (let c = 0; c < d; c++) GH[r + c] = gi * H64[r + c];
  }
  const direct = m >= st.directSolveMinBatch;
  if (!direct) {
    // 7 (Woodbury / Sherman–Morrison), with the old U⁻ᵀ: Z = H U⁻¹ (rows U⁻ᵀ h_i)
    const Z = st.Z, X = st.X, N = st.N;
    la.dgemm(false, true, m, d, d, 1, H64, d, Uinvt, d, 0, Z, d);
    X.set(GH.subarray(0, m * d));
    if (m === 1) {
      const f = 1 / (1 - 2 * eta * g[0] * S[0]);
      for (let c = 0; c < d; c++) X[c] *= f;
    } else {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < m; j++) N[i * m + j] = (i === j ? 1 : 0) - 2 * eta * g[i] * S[i * m + j];
      }
      la.dsolve(N, m, X, d);
    }
    la.dgemm(true, false, d, d, m, 2 * eta, Z, d, X, d, 1, Uinvt, d);
  }
  // 6. U ← U − 2η Ĥᵀ (G H)
  la.dgemm(true, false, d, d, m, -2 * eta, Hhat, d, GH, d, 1, U, d);
  if (direct) reinvert(la, U, Uinvt, d);

  // 8. V rows: V_c −= η ẏ_ic (U_new⁻ᵀ h_i)ᵀ
  const Zn = st.Z, delta = st.delta, dy = st.dy, mg = st.merged;
  la.dgemm(false, true, m, d, d, 1, H64, d, Uinvt, d, 0, Zn, d);
  for (let k = 0; k < mg.nnz; k++) {
    const f = -eta * dy[k], r = k * d, zr = mg.ex[k] * d;
    for (let c = 0; c < d; c++) delta[r + c] = f * Zn[zr + c];
  }
  la.scatterAddRows(st.V, d, mg.idx, mg.nnz, delta, 1);

  // 10. Q ← Q − η(∇Hᵀ H + Hᵀ ∇H) + η² Hᵀ M H  (the last as η²/2 (Hᵀ(MH) + (MH)ᵀH))
  const MH = st.MH;
  la.dgemm(false, false, m, d, m, 1, M, m, H64, d, 0, MH, d);
  la.dsyr2k(true, d, m, -eta, G64, d, H64, d, 1, st.Q, d);
  la.dsyr2k(true, d, m, 0.5 * eta * eta, H64, d, MH, d, 1, st.Q, d);

  // 9, 11. ω and w̄
  updateSums(st, m, eta, H64);
}
