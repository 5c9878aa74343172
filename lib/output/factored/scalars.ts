/**
 * The scalar work of a factored step that does not depend on the precision of the d×d×m products, written
 * once for the float64 step (step64.ts) and the float32 step (step32.ts): per-example q, s, ω·h; the loss
 * per example (ẏ, g_q, g_s); the spread of the update factor that feeds the stabilisation budget; the
 * sum-loss and ẏ_i·ẏ_j terms of M = ∇Oᵀ∇O; the ω and w̄ updates (docs/factored-step.md "One step", steps 1,
 * 3, 9–11).
 *
 * @module
 */

import { DivergenceError } from "../../core/errors.ts";
import type { FactoredState } from "./state.ts";

/**
 * What the per-example scalar work reads and writes: the state's fields of that name. The step kernel
 * (step_kernel.ts) builds one from views of shared memory, so that a worker runs the same functions on
 * a range of examples.
 *
 * @example
 * ```ts ignore
 * const L = lossOfExample(st as ExampleScalars, 0);
 * ```
 */
export type ExampleScalars =
  & Pick<
    FactoredState,
    | "d"
    | "D"
    | "loss"
    | "q"
    | "s"
    | "hw"
    | "g"
    | "gs"
    | "sumdy"
    | "omega"
    | "wbar"
    | "o"
    | "dy"
    | "kO"
    | "kY"
    | "kDy"
    | "scal"
    | "steps"
  >
  & { merged: { off: Int32Array; w: Float64Array } };

/**
 * Step 1's scalars: q_i = (Qh_i)·h_i (clamped at 0; NaN kept), and when the loss uses s, s_i = w̄·h_i and
 * (ω·h)_i, for examples i0 … m − 1. Row i of Qh is at `QH[off + i·ld …]`.
 *
 * @example
 * ```ts ignore
 * exampleStats(st, m, H, QH, 0, d); // st.q, st.s, st.hw filled
 * ```
 *
 * @param st the state (q, s, hw written; w̄, ω read)
 * @param m examples
 * @param H m×d rows h_i
 * @param QH rows (Qh)_i
 * @param off offset of row 0 in QH
 * @param ld stride of QH's rows
 * @param i0 first example (default 0)
 */
export function exampleStats(
  st: ExampleScalars,
  m: number,
  H: Float32Array | Float64Array,
  QH: Float32Array | Float64Array,
  off: number,
  ld: number,
  i0 = 0,
): void {
  const d = st.d, usesSum = st.loss.usesSum, q = st.q, s = st.s, hw = st.hw;
  const omega = st.omega, wbar = st.wbar;
  for (let i = i0; i < m; i++) {
    let qi = 0, si = 0, wi = 0;
    const r = i * d, p = off + i * ld;
    for (let c = 0; c < d; c++) qi += QH[p + c] * H[r + c];
    if (usesSum) {
      for (let c = 0; c < d; c++) {
        si += wbar[c] * H[r + c];
        wi += omega[c] * H[r + c];
      }
    }
    // clamped at 0 from below; a NaN stays NaN (a corrupt Q or an overflow) for lossOfExample to refuse
    q[i] = qi > 0 ? qi : qi <= 0 ? 0 : qi;
    s[i] = si;
    hw[i] = wi;
  }
}

/**
 * Step 3 for all examples (their entries' o must be set): fills ẏ, 𝟙·ẏ, g_q, g_s; returns L.
 *
 * @example
 * ```ts ignore
 * const L = lossOf(st, m);
 * ```
 *
 * @param st the state
 * @param m examples
 * @returns the batch loss
 */
export function lossOf(st: FactoredState, m: number): number {
  let L = 0;
  for (let i = 0; i < m; i++) L += lossOfExample(st, i);
  return L;
}

/**
 * Step 3 for example i (its entries' o must be set): fills its ẏ, 𝟙·ẏ, g_q, g_s; returns L_i.
 *
 * @example
 * ```ts ignore
 * L += lossOfExample(st, i);
 * ```
 *
 * @param st the state
 * @param i example
 * @returns L_i
 * @throws {DivergenceError} a loss, g_q or 𝟙·ẏ that is not finite (the state is unchanged)
 */
export function lossOfExample(st: ExampleScalars, i: number): number {
  const loss = st.loss, D = st.D, usesSum = loss.usesSum, mg = st.merged;
  const o = st.o, dy = st.dy, q = st.q, s = st.s, g = st.g, gs = st.gs;
  const sumdy = st.sumdy;
  const kO = st.kO, kY = st.kY, kDy = st.kDy, scal = st.scal;
  const k0 = mg.off[i], K = mg.off[i + 1] - k0;
  for (let k = 0; k < K; k++) {
    kO[k] = o[k0 + k];
    kY[k] = mg.w[k0 + k];
  }
  const Li = loss.fromStats(kO, kY, K, q[i], s[i], D, kDy, scal);
  let sd = 0;
  for (let k = 0; k < K; k++) {
    dy[k0 + k] = kDy[k];
    sd += kDy[k];
  }
  sumdy[i] = sd;
  g[i] = scal.gq;
  gs[i] = usesSum ? scal.gs : 0;
  if (!Number.isFinite(Li) || !Number.isFinite(scal.gq) || !Number.isFinite(sd)) {
    throw new DivergenceError(
      st.steps + 1,
      `step ${st.steps + 1}: the ${loss.name} loss of example ${i} is not finite ` +
        `(L = ${Li}, g_q = ${scal.gq}, q = ${
          q[i]
        }); the layer's state is unchanged. Lower the learning rate.`,
    );
  }
  return Li;
}

/**
 * An upper bound of the largest eigenvalue of the update factor F = I − 2η H G Hᵀ: λ_max ≤ 1 + 2η Σ|g⁻|‖h‖²
 * (exact for m = 1, where it is max(1, λ_min)).
 *
 * @example
 * ```ts ignore
 * const lamMax = factorMax(m, eta, st.g, st.S, lamMin);
 * ```
 *
 * @param m examples
 * @param eta learning rate
 * @param g g_q per example
 * @param S m×m Gram matrix H Hᵀ
 * @param lamMin λ_min(F) from the guard
 * @returns the bound
 */
export function factorMax(m: number, eta: number, g: Float64Array, S: Float64Array, lamMin: number): number {
  let tn = 0;
  for (let i = 0; i < m; i++) {
    const v = 2 * eta * g[i] * S[i * m + i];
    if (v < 0) tn -= v;
  }
  return m === 1 ? Math.max(1, lamMin) : 1 + tn;
}

/**
 * A bound on how far cond(U) has grown since the last stabilisation: U ← U F multiplies cond(U) by at
 * most λ_max(F)/λ_min(F), so the sum of log(λ_max(F)/λ_min(F)) over the steps bounds log(cond(U) / cond(U)
 * at the last stabilisation). U is stabilised once the bound passes maxCond (or, from a cond(U) already
 * above maxCond/2, once it has doubled; layer.ts `step`). Every step counts, however close to 1 its
 * factor: a run of steps that each shrink U along the same direction by a factor near ½ (a small
 * vocabulary, a high rate) multiplies cond(U) by 2 each, which a bound that left out such steps let grow
 * to 10¹² within the 100 steps between scheduled stabilisations.
 *
 * @example
 * ```ts ignore
 * addCondBudget(st, lamMin, lamMax);
 * ```
 *
 * @param st the state (condBudget updated)
 * @param lamMin λ_min(F)
 * @param lamMax λ_max(F) bound
 */
export function addCondBudget(st: FactoredState, lamMin: number, lamMax: number): void {
  st.condBudget += Math.max(0, Math.log(lamMax / Math.min(1, lamMin)));
}

/**
 * M_ij += the terms of ∇o_i·∇o_j that involve g_s (loss uses s only) and ẏ_i·ẏ_j (docs/factored-step.md "One
 * step", step 10); M holds the ẏ·o and Q terms on entry.
 *
 * @example
 * ```ts ignore
 * completeM(st, m, st.M);
 * ```
 *
 * @param st the state
 * @param m examples
 * @param M m×m, updated
 */
export function completeM(st: FactoredState, m: number, M: Float64Array): void {
  if (st.loss.usesSum) {
    // with c_i = 𝟙·ẏ_i + 2 g_i s_i the terms are g_s,j c_i + g_s,i c_j + D g_s,i g_s,j: symmetric, so each
    // pair's value is computed once and added to both entries
    const D = st.D, g = st.g, gs = st.gs, s = st.s, sumdy = st.sumdy, c = st.sumTerms;
    for (let i = 0; i < m; i++) c[i] = sumdy[i] + 2 * g[i] * s[i];
    for (let i = 0; i < m; i++) {
      const ci = c[i], gsi = gs[i], dgs = D * gsi, row = i * m;
      for (let j = 0; j < i; j++) {
        const v = gs[j] * ci + gsi * c[j] + dgs * gs[j];
        M[row + j] += v;
        M[j * m + i] += v;
      }
      M[row + i] += 2 * gsi * ci + dgs * gsi;
    }
  }
  addYdotY(st, m, M);
}

/**
 * M_ij += ẏ_i·ẏ_j: pairs of entries with equal indices, found through a chain per distinct index (`head`
 * by the indices' slots, csr.ts RowSlots; `perm` links each entry to the previous one with its index),
 * O(nnz + pairs) with no sort.
 */
function addYdotY(st: FactoredState, m: number, M: Float64Array): void {
  const mg = st.merged, nnz = mg.nnz, idx = mg.idx, ex = mg.ex, dy = st.dy;
  if (m === 1) {
    let v = 0;
    for (let k = 0; k < nnz; k++) v += dy[k] * dy[k];
    M[0] += v;
    return;
  }
  // chains per row slot (csr.ts RowSlots), not per row id: a table over the call's entries stays in cache
  const slot = st.rowSlot, rows = st.rowSlots.assign(idx, 0, nnz, slot);
  const head = st.head, next = st.perm;
  head.fill(-1, 0, rows);
  for (let k = 0; k < nnz; k++) {
    const c = slot[k], ik = ex[k], yk = dy[k], rk = ik * m;
    next[k] = head[c];
    head[c] = k;
    M[rk + ik] += yk * yk;
    for (let j = next[k]; j >= 0; j = next[j]) {
      const ij = ex[j], v = yk * dy[j];
      M[rk + ij] += v;
      M[ij * m + ik] += v;
    }
  }
}

/**
 * Steps 9 and 11 (loss uses s only): ω ← ω − η Σ (2 g_i (h_i·ω) + g_s,i) h_i ; w̄ ← w̄ − η Σ c_i h_i with
 * c_i = 𝟙·ẏ_i + 2 g_i s_i + D g_s,i.
 *
 * @example
 * ```ts ignore
 * updateSums(st, m, eta, H);
 * ```
 *
 * @param st the state (ω, w̄ updated)
 * @param m examples
 * @param eta learning rate
 * @param H m×d rows h_i
 * @param k0 first column updated (default 0; the step kernel splits the columns, each in example order)
 * @param k1 end column (default d)
 */
export function updateSums(
  st: Pick<ExampleScalars, "loss" | "d" | "D" | "g" | "gs" | "s" | "sumdy" | "hw" | "omega" | "wbar">,
  m: number,
  eta: number,
  H: Float32Array | Float64Array,
  k0 = 0,
  k1 = st.d,
): void {
  if (!st.loss.usesSum) return;
  const d = st.d, D = st.D, g = st.g, gs = st.gs, s = st.s, sumdy = st.sumdy, hw = st.hw;
  const omega = st.omega, wbar = st.wbar;
  for (let i = 0; i < m; i++) {
    const a = -eta * (2 * g[i] * hw[i] + gs[i]);
    const c = -eta * (sumdy[i] + 2 * g[i] * s[i] + D * gs[i]);
    const r = i * d;
    for (let k = k0; k < k1; k++) {
      omega[k] += a * H[r + k];
      wbar[k] += c * H[r + k];
    }
  }
}
