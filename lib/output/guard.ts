/**
 * The singularity guard of the factored step (docs/factored-step.md "Numerical upkeep"). A step multiplies U
 * by the symmetric d×d factor F = I − 2η H G Hᵀ (H = [h_1 … h_m], G = diag(g_q)). The guard refuses the step,
 * before any state changes, unless every eigenvalue of F exceeds `margin` (default {@link GUARD_MARGIN}).
 *
 * - m = 1 (Sherman–Morrison): F's only non-unit eigenvalue is f = 1 − 2η g_q ‖h‖²; exact test f > margin.
 * - m > 1: with P the examples whose g_q > 0, F ⪰ I − 2η H_P G_P H_Pᵀ, whose eigenvalues other than 1
 *   are those of T = I − 2η G_P^½ S_P G_P^½ (S = HᵀH, the m×m Gram matrix). The guard Cholesky-factors
 *   T − margin·I (O(|P|³)): exact when every g_q ≥ 0 (squared, spherical, Taylor with non-negative
 *   weights), sufficient (conservative) when some g_q < 0 (the Z-loss), whose directions only expand U.
 *
 * Negative g_q expands U (f > 1); that never makes U singular and is kept in range by stabilisation.
 *
 * Both layers (naive and factored, every CPU backend) also refuse a step or an evaluation whose loss or ∇H
 * is not finite, before any state changes, with a DivergenceError ({@link checkGradient} for ∇H; the loss
 * per example where each layer computes it).
 *
 * @module
 */

import { DivergenceError, SingularUpdateError } from "../core/errors.ts";
import { allFinite } from "../core/finite.ts";

/**
 * Smallest eigenvalue the update factor F may have: a step with λ_min(F) ≤ 1e-3 would shrink U by
 * more than 1000× along some direction (and make U⁻ᵀ, hence V, grow as much) in one step.
 *
 * @example
 * ```ts
 * import { GUARD_MARGIN } from "./guard.ts";
 * console.log(GUARD_MARGIN); // 0.001
 * ```
 */
export const GUARD_MARGIN = 1e-3;

/** A batch whose Gershgorin bound shows λ_min(F) ≥ this passes without a Cholesky factorisation. */
const QUICK_ACCEPT = 0.5;

/**
 * Scratch of the guard (grows with m).
 *
 * @example
 * ```ts
 * import { GuardScratch } from "./guard.ts";
 * const s = new GuardScratch();
 * ```
 */
export class GuardScratch {
  /** |P|×|P| matrix. */
  T: Float64Array = new Float64Array(0);
  /** √g of the positive examples. */
  r: Float64Array = new Float64Array(0);
  /** their example numbers. */
  p: Int32Array = new Int32Array(0);
  /** two vectors for the power iteration. */
  x: Float64Array = new Float64Array(0);
  /** second vector. */
  y: Float64Array = new Float64Array(0);
  /**
   * Grows the buffers to hold m examples.
   *
   * @param m examples
   */
  ensure(m: number): void {
    if (this.r.length >= m) return;
    this.T = new Float64Array(m * m);
    this.r = new Float64Array(m);
    this.p = new Int32Array(m);
    this.x = new Float64Array(m);
    this.y = new Float64Array(m);
  }
}

/**
 * Throws {@link SingularUpdateError} when the step (learning rate eta, g_q per example `g`, Gram matrix S
 * of H, m×m row-major) would make U singular, flip a sign, or shrink it by more than 1/margin along a
 * direction. The message names the step, the worst factor and the largest safe learning rate.
 * Allocates nothing when the step passes.
 *
 * @example
 * ```ts
 * import { checkUpdateFactor, GuardScratch } from "./guard.ts";
 * // h = (1, 0), g_q = 1: factor 1 − 2·0.6·1 = −0.2 → throws
 * try { checkUpdateFactor(1, 0.6, Float64Array.of(1), Float64Array.of(1), 1, new GuardScratch()); } catch (e) { console.log(e); }
 * ```
 *
 * @param m examples
 * @param eta learning rate
 * @param g g_q per example (m)
 * @param S HᵀH, m×m row-major (S_ij = h_i·h_j)
 * @param step the number of the step being taken (1-based), for the message
 * @param s scratch
 * @param margin smallest admissible eigenvalue of the factor
 * @returns an estimate of λ_min(F) when the step passes: exact for m = 1; for m > 1, when Gershgorin's
 *   or the Frobenius bound on λ_max(G½·HᵀH·G½) already shows λ_min(F) ≥ ½, that lower bound (no
 *   factorisation: the common case, O(m²)); otherwise margin plus the smallest eigenvalue of T − margin·I
 *   by 12 inverse iterations on its Cholesky factor (an estimate from above, accurate when the smallest
 *   eigenvalue is well separated — the near-singular case); 1 when no g_q > 0.
 */
export function checkUpdateFactor(
  m: number,
  eta: number,
  g: Float64Array,
  S: Float64Array,
  step: number,
  s: GuardScratch,
  margin = GUARD_MARGIN,
): number {
  if (m === 1) {
    const f = 1 - 2 * eta * g[0] * S[0];
    if (!(f > margin)) {
      const etaMax = (1 - margin) / (2 * g[0] * S[0]);
      throw new SingularUpdateError(
        `step ${step}: the update factor 1 − 2·eta·g_q·‖h‖² = 1 − 2·${eta}·${fmt(g[0])}·${fmt(S[0])} = ${
          fmt(f)
        } ` +
          `is ≤ ${margin}: U would become singular or flip sign. Lower the learning rate below ${
            fmt(etaMax)
          } ` +
          `(or scale down h). The layer's state is unchanged.`,
      );
    }
    return f;
  }
  s.ensure(m);
  const { T, r, p } = s;
  let n = 0;
  for (let i = 0; i < m; i++) {
    if (g[i] > 0) {
      p[n] = i;
      r[n] = Math.sqrt(g[i]);
      n++;
    }
  }
  if (n === 0) return 1;
  // Quick accept, O(|P|²): λ_max(A), A = G_P^½ S_P G_P^½, is at most max_a Σ_b |A_ab| (Gershgorin) and at
  // most ‖A‖_F, so when 1 − 2η·the smaller is ≥ ½ the step passes with λ_min(F) ≥ that value, with no
  // factorisation. The returned bound also feeds the stabilisation's (factored/scalars.ts addCondBudget): with
  // many examples whose h share a direction, Gershgorin's row sums are far above λ_max and the Frobenius
  // norm, which counts that direction once, is the tighter of the two
  let bound = 0, squares = 0;
  for (let a = 0; a < n; a++) {
    const row = p[a] * m;
    let sum = 0, sq = 0;
    for (let b = 0; b < n; b++) {
      const v = r[b] * Math.abs(S[row + p[b]]);
      sum += v;
      sq += v * v;
    }
    if (r[a] * sum > bound) bound = r[a] * sum;
    squares += r[a] * r[a] * sq;
  }
  const quick = 1 - 2 * eta * Math.min(bound, Math.sqrt(squares));
  if (quick >= QUICK_ACCEPT && quick > margin) return quick;
  for (let a = 0; a < n; a++) {
    for (let b = 0; b <= a; b++) {
      const v = 2 * eta * r[a] * r[b] * S[p[a] * m + p[b]];
      T[a * n + b] = T[b * n + a] = (a === b ? 1 - margin : 0) - v;
    }
  }
  if (choleskyOk(T, n)) return margin + smallestFromCholesky(T, n, s.x, s.y);
  // refused: report λ_max(G^½ S G^½) over P and the learning rate that keeps the factor above margin
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) T[a * n + b] = r[a] * r[b] * S[p[a] * m + p[b]];
  }
  const lam = largestEigenvalue(T, n, s.x, s.y);
  const f = 1 - 2 * eta * lam;
  const etaMax = (1 - margin) / (2 * lam);
  throw new SingularUpdateError(
    `step ${step}: the update factor I − 2·eta·H·G·Hᵀ of this batch of ${m} examples has an eigenvalue ` +
      `≈ ${fmt(f)} ≤ ${margin} (2·eta·λ_max(G½·HᵀH·G½) = ${fmt(2 * eta * lam)} with eta = ${eta}): ` +
      `U would become singular or flip sign. Lower the learning rate below ${
        fmt(etaMax)
      } (or scale down H). ` +
      `The layer's state is unchanged.`,
  );
}

/** In-place Cholesky of the n×n symmetric T; true when it is positive definite. */
function choleskyOk(T: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    let dj = T[j * n + j];
    for (let k = 0; k < j; k++) dj -= T[j * n + k] * T[j * n + k];
    if (!(dj > 0)) return false;
    const ljj = Math.sqrt(dj);
    T[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let v = T[i * n + j];
      for (let k = 0; k < j; k++) v -= T[i * n + k] * T[j * n + k];
      T[i * n + j] = v / ljj;
    }
  }
  return true;
}

/**
 * Smallest eigenvalue of L Lᵀ (L lower-triangular n×n, in T's lower triangle) by inverse iteration:
 * x ← (L Lᵀ)⁻¹ x, 12 iterations from a fixed start; returns 1/‖(LLᵀ)⁻¹x‖ for the final unit x.
 */
function smallestFromCholesky(T: Float64Array, n: number, x: Float64Array, y: Float64Array): number {
  for (let i = 0; i < n; i++) x[i] = 1 + 0.3 * Math.sin(2 * i + 1);
  let nrm = 0;
  for (let i = 0; i < n; i++) nrm += x[i] * x[i];
  nrm = Math.sqrt(nrm);
  for (let i = 0; i < n; i++) x[i] /= nrm;
  let mu = 1;
  for (let it = 0; it < 12; it++) {
    // L y = x
    for (let i = 0; i < n; i++) {
      let v = x[i];
      for (let k = 0; k < i; k++) v -= T[i * n + k] * y[k];
      y[i] = v / T[i * n + i];
    }
    // Lᵀ x = y
    for (let i = n - 1; i >= 0; i--) {
      let v = y[i];
      for (let k = i + 1; k < n; k++) v -= T[k * n + i] * x[k];
      x[i] = v / T[i * n + i];
    }
    nrm = 0;
    for (let i = 0; i < n; i++) nrm += x[i] * x[i];
    nrm = Math.sqrt(nrm);
    mu = 1 / nrm;
    for (let i = 0; i < n; i++) x[i] /= nrm;
  }
  return mu;
}

/** λ_max of the symmetric PSD n×n A by power iteration (error path only). */
function largestEigenvalue(A: Float64Array, n: number, x: Float64Array, y: Float64Array): number {
  for (let i = 0; i < n; i++) x[i] = 1 + 0.1 * Math.sin(i + 1);
  let lam = 0;
  for (let it = 0; it < 500; it++) {
    let nrm = 0;
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let j = 0; j < n; j++) acc += A[i * n + j] * x[j];
      y[i] = acc;
      nrm += acc * acc;
    }
    nrm = Math.sqrt(nrm);
    if (nrm === 0) return 0;
    let xn = 0;
    for (let i = 0; i < n; i++) xn += x[i] * x[i];
    const next = nrm / Math.sqrt(xn);
    for (let i = 0; i < n; i++) x[i] = y[i] / nrm;
    if (Math.abs(next - lam) <= 1e-12 * next) return next;
    lam = next;
  }
  return lam;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toPrecision(4) : String(x);
}

/**
 * Throws DivergenceError when ∇H (its first `n` = m·d entries) holds a NaN or an infinity, naming the entry:
 * a finite loss with an infinite gradient is refused as a non-finite loss is, before the step changes
 * anything. One `allFinite` pass (O(md), no allocation) when the gradient is finite.
 *
 * @example
 * ```ts
 * import { checkGradient } from "./guard.ts";
 * checkGradient(Float32Array.of(0.5, -1), 2, 2, 1, "squared"); // finite: nothing happens
 * ```
 *
 * @param G ∇H, m×d row-major (at least n entries)
 * @param n m·d
 * @param d columns
 * @param step the number of the step being taken (1-based), for the message
 * @param loss the loss's name, for the message
 * @throws {DivergenceError} an entry is not finite (the layer's state is unchanged)
 */
export function checkGradient(G: Float32Array, n: number, d: number, step: number, loss: string): void {
  if (allFinite(G.length === n ? G : G.subarray(0, n))) return;
  for (let j = 0; j < n; j++) {
    if (!Number.isFinite(G[j])) {
      throw new DivergenceError(
        step,
        `step ${step}: ∇H[${j}] = ${G[j]} is not finite (example ${Math.floor(j / d)}, column ${j % d}; ` +
          `the ${loss} loss is finite); the layer's state is unchanged. Lower the learning rate.`,
      );
    }
  }
}
