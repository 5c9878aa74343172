/**
 * Numerical upkeep of the factored state W = V U + 𝟙ωᵀ (docs/factored-step.md "Numerical upkeep"), as plain
 * functions on the arrays. Shapes: V is D×d float32 row-major; U, Uinvt (= U⁻ᵀ) are d×d float64 row-major; u
 * is a d-vector.
 *
 * - {@link reinvert}: U⁻ᵀ recomputed exactly (O(d³)).
 * - {@link topLeftSingular}: σ_max of a d×d matrix and its left singular vector, by power iteration on
 *   M Mᵀ (O(d²) per iteration). Applied to U it gives σ_max(U); applied to U⁻ᵀ it gives 1/σ_min(U) and
 *   the same left singular direction of U (U = L Σ Rᵀ ⇒ U⁻ᵀ = L Σ⁻¹ Rᵀ).
 * - {@link rebalance}: an exact power-of-two recentring of U and rank-1 rescales U ← (I + α uuᵀ) U,
 *   V ← V (I + β uuᵀ) (α = 1/σ − 1, β = −α/(1+α)) that bring singular values outside [0.5, 2] to 1 with
 *   W unchanged, all applied to V in one O(Dd·k) pass.
 * - {@link foldConditioning}: V ← V U, U ← I when U is badly conditioned (one sgemm pass).
 * The O(Dd²) passes over V (fold, Q = VᵀV) are in passes.ts; when the layer applies these is decided in
 * layer.ts (stabilize, refresh).
 *
 * @module
 */

import type { LinAlgBackend } from "../../linalg/backend.ts";

/**
 * U⁻ᵀ ← inv(U)ᵀ exactly (LU with partial pivoting, float64).
 *
 * @example
 * ```ts
 * import { reinvert } from "./upkeep.ts";
 * import { createJsBackend } from "../../linalg/js.ts";
 * const Uinvt = new Float64Array(4);
 * reinvert(createJsBackend(), Float64Array.of(2, 0, 0, 4), Uinvt, 2); // diag(0.5, 0.25)
 * ```
 *
 * @param la backend (dinvert)
 * @param U d×d
 * @param Uinvt d×d output
 * @param d dimension
 */
export function reinvert(la: LinAlgBackend, U: Float64Array, Uinvt: Float64Array, d: number): void {
  for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) Uinvt[c * d + r] = U[r * d + c];
  la.dinvert(Uinvt, d);
}

/**
 * reinvertFrom refines the maintained U⁻ᵀ by one Newton step when max|I − UᵀU⁻ᵀ| is at most this: the
 * step squares the residual (≈ d·1e-16 from here, the LU inverse's own level). Between stabilisations
 * the float32 increments leave from 1e-10 to a few 1e-7, so in the trainer's default run about half of
 * them take the LU inverse; two Newton steps there took as long as it (BENCHMARKS.md, "The
 * stabilisation's re-inversion and the upkeep on two threads").
 */
export const REFINE_MAX_RESIDUAL = 1e-8;

/**
 * U⁻ᵀ re-derived to rounding level from the maintained one: with E = I − UᵀY (Y = U⁻ᵀ as maintained),
 * when max|E| ≤ {@link REFINE_MAX_RESIDUAL} one Newton step Y ← Y + Y E (Uᵀ Y_new = I − E², so a
 * residual of 1e-9 becomes rounding; two d³ dgemm, ≈ 3× faster than the LU inverse at d = 256),
 * otherwise {@link reinvert}. `T` and `C` are d×d scratch.
 *
 * @example
 * ```ts
 * import { reinvertFrom } from "./upkeep.ts";
 * import { createJsBackend } from "../../linalg/js.ts";
 * const Uinvt = Float64Array.of(0.5000001, 0, 0, 0.25);
 * reinvertFrom(createJsBackend(), Float64Array.of(2, 0, 0, 4), Uinvt, 2, new Float64Array(4), new Float64Array(4));
 * ```
 *
 * @param la backend (dgemm, dinvert)
 * @param U d×d
 * @param Uinvt d×d, the maintained U⁻ᵀ; replaced
 * @param d dimension
 * @param T scratch d×d
 * @param C scratch d×d
 * @returns true when refined, false when re-inverted by LU
 */
export function reinvertFrom(
  la: LinAlgBackend,
  U: Float64Array,
  Uinvt: Float64Array,
  d: number,
  T: Float64Array,
  C: Float64Array,
): boolean {
  la.dgemm(true, false, d, d, d, -1, U, d, Uinvt, d, 0, T, d); // T = −UᵀY
  let worst = 0;
  for (let k = 0; k < d; k++) T[k * d + k] += 1; // T = E = I − UᵀY
  for (let j = 0; j < d * d; j++) {
    const a = Math.abs(T[j]);
    if (!(a <= worst)) worst = a; // NaN propagates to worst
  }
  if (!(worst <= REFINE_MAX_RESIDUAL)) {
    reinvert(la, U, Uinvt, d);
    return false;
  }
  la.dgemm(false, false, d, d, d, 1, Uinvt, d, T, d, 0, C, d);
  for (let j = 0; j < d * d; j++) Uinvt[j] += C[j];
  return true;
}

/**
 * Largest singular value of the d×d row-major M and its left singular vector (written to `u`, unit
 * length), by power iteration on M Mᵀ (two dgemv per iteration) from a fixed deterministic start (no
 * hidden state): at most `maxIter` iterations, stopping when σ changes by less than `tol` relatively.
 * `tmp` is d scratch. The estimate is a lower bound that converges from below.
 *
 * @example
 * ```ts
 * import { topLeftSingular } from "./upkeep.ts";
 * import { createJsBackend } from "../../linalg/js.ts";
 * const u = new Float64Array(2), tmp = new Float64Array(2);
 * const s = topLeftSingular(createJsBackend(), Float64Array.of(3, 0, 0, 1), 2, u, tmp); // 3, u ≈ [±1, 0]
 * ```
 *
 * @param la backend (dgemv)
 * @param M the matrix
 * @param d dimension
 * @param u output: left singular vector
 * @param tmp scratch of length d
 * @param maxIter iteration cap (default 100)
 * @param tol relative tolerance on σ (default 1e-7)
 * @returns σ_max(M)
 */
export function topLeftSingular(
  la: LinAlgBackend,
  M: Float64Array,
  d: number,
  u: Float64Array,
  tmp: Float64Array,
  maxIter = 100,
  tol = 1e-7,
): number {
  return powerSigma((trans, x, y) => la.dgemv(trans, d, d, 1, M, d, x, 0, y), d, u, tmp, maxIter, tol);
}

/** y = Mᵀ x (trans) or M x of the d×d matrix of a power iteration: the dgemv of {@link powerSigma}. */
export type MatVec = (trans: boolean, x: Float64Array, y: Float64Array) => void;

/**
 * {@link topLeftSingular}'s iteration with the products given: the step kernel runs it on a pool thread
 * with its own dgemv (step_kernel.ts UPKEEP_SIGMA), the same calls.
 *
 * @example
 * ```ts
 * import { powerSigma } from "./upkeep.ts";
 * const M = Float64Array.of(3, 0, 0, 1), u = new Float64Array(2), tmp = new Float64Array(2);
 * const mv = (t: boolean, x: Float64Array, y: Float64Array) => {
 *   for (let i = 0; i < 2; i++) y[i] = t ? M[i] * x[0] + M[2 + i] * x[1] : M[2 * i] * x[0] + M[2 * i + 1] * x[1];
 * };
 * console.log(powerSigma(mv, 2, u, tmp, 100, 1e-7)); // ≈ 3 (a lower bound: 2.99999999966)
 * ```
 *
 * @param mv the products
 * @param d dimension
 * @param u output: left singular vector
 * @param tmp scratch of length d
 * @param maxIter iteration cap
 * @param tol relative tolerance on σ
 * @returns σ_max(M)
 */
export function powerSigma(
  mv: MatVec,
  d: number,
  u: Float64Array,
  tmp: Float64Array,
  maxIter: number,
  tol: number,
): number {
  let n = 0;
  for (let k = 0; k < d; k++) {
    u[k] = 0.5 + Math.sin(1 + 1.7 * k) * 0.37 + (k % 3) * 0.11;
    n += u[k] * u[k];
  }
  let inv = 1 / Math.sqrt(n);
  for (let k = 0; k < d; k++) u[k] *= inv;
  let sigma = 0;
  for (let it = 0; it < maxIter; it++) {
    mv(true, u, tmp); // tmp = Mᵀ u
    let s2 = 0;
    for (let c = 0; c < d; c++) s2 += tmp[c] * tmp[c];
    const next = Math.sqrt(s2); // ‖Mᵀu‖ for the unit u
    mv(false, tmp, u); // u = M Mᵀ u
    n = 0;
    for (let k = 0; k < d; k++) n += u[k] * u[k];
    if (!(n > 0)) return 0;
    inv = 1 / Math.sqrt(n);
    for (let k = 0; k < d; k++) u[k] *= inv;
    const done = Math.abs(next - sigma) <= tol * next;
    sigma = next;
    if (done) break;
  }
  return sigma;
}

/**
 * Scratch of {@link rebalance} for a d-dimensional layer and at most `maxRank` rank-1 rescales.
 *
 * @example
 * ```ts
 * import { RebalanceScratch } from "./upkeep.ts";
 * const s = new RebalanceScratch(64, 8);
 * ```
 */
export class RebalanceScratch {
  /** Most rank-1 rescales per call. */
  readonly maxRank: number;
  /** Working copies of U and U⁻ᵀ (d×d). */
  Uw: Float64Array;
  /** U⁻ᵀ working copy. */
  Uwt: Float64Array;
  /** P (d×d) and a d×d temporary. */
  P: Float64Array;
  /** d×d temporary. */
  T: Float64Array;
  /** Directions, d×maxRank (column i = u_i). */
  Uk: Float64Array;
  /** Coefficients, maxRank×d: Π_i (I + β_i u_i u_iᵀ) = I + Uk Bk. */
  Bk: Float64Array;
  /** float32 copies of Uk and Bk (what V is multiplied by). */
  Uk32: Float32Array;
  /** float32 Bk. */
  Bk32: Float32Array;
  /** V·Uk, D×maxRank float32 (grows with D). */
  t: Float32Array = new Float32Array(0);
  /** d-vectors. */
  u: Float64Array;
  /** d-vector. */
  w: Float64Array;
  /** d-vector. */
  tmp: Float64Array;
  /**
   * Allocates the d×d working copies and the rank-`maxRank` factors.
   *
   * @param d dimension
   * @param maxRank most rank-1 rescales per call
   */
  constructor(d: number, maxRank: number) {
    this.maxRank = maxRank;
    this.Uw = new Float64Array(d * d);
    this.Uwt = new Float64Array(d * d);
    this.P = new Float64Array(d * d);
    this.T = new Float64Array(d * d);
    this.Uk = new Float64Array(d * maxRank);
    this.Bk = new Float64Array(maxRank * d);
    this.Uk32 = new Float32Array(d * maxRank);
    this.Bk32 = new Float32Array(maxRank * d);
    this.u = new Float64Array(d);
    this.w = new Float64Array(d);
    this.tmp = new Float64Array(d);
  }
}

/**
 * Rebalances W = V U between V and U without changing W (docs/factored-step.md "Numerical upkeep", batched):
 * U is recentred by the exact power of two c = 2^e nearest to 1/√(σ_max σ_min), then each singular value of
 * cU still outside [0.5, 2] is brought to 1 along its left singular vector u (α = 1/σ − 1, β = −α/(1+α)), at
 * most `maxRank` of them. The corrections are planned on d×d copies, then applied to V in ONE pass:
 *
 *   V ← V P,  P = c⁻¹ Π_i (I + β_i u_i u_iᵀ) = c⁻¹ (I + Uk Bk)   (two gemm: D×d×k and D×k×d)
 *   U ← P⁻¹ U (P from the float32 Uk, Bk that V saw, so VU is preserved to V's rounding), U⁻ᵀ re-inverted.
 *
 * O(Dd·k + d³). `Uinvt` must be exact on entry. Returns the number of rank-1 rescales and e.
 *
 * @example
 * ```ts
 * import { rebalance, RebalanceScratch } from "./upkeep.ts";
 * import { createJsBackend } from "../../linalg/js.ts";
 * const V = Float32Array.of(1, 0, 0, 1), U = Float64Array.of(8, 0, 0, 1), Uinvt = Float64Array.of(0.125, 0, 0, 1);
 * rebalance(createJsBackend(), V, 2, 2, U, Uinvt, 8, 1, new RebalanceScratch(2, 4)); // cond(U) 8 → ≤ 4, VU kept
 * ```
 *
 * @param la backend
 * @param V D×d float32, updated
 * @param D rows
 * @param d dimension
 * @param U d×d, updated
 * @param Uinvt d×d, exact inverse-transpose of U; recomputed
 * @param smax σ_max(U)
 * @param smin σ_min(U)
 * @param s scratch
 * @param maxRank most rank-1 rescales this time (default s.maxRank; 0: the power-of-two recentring only)
 * @returns the number of rank-1 rescales and the power-of-two exponent e
 */
export function rebalance(
  la: LinAlgBackend,
  V: Float32Array,
  D: number,
  d: number,
  U: Float64Array,
  Uinvt: Float64Array,
  smax: number,
  smin: number,
  s: RebalanceScratch,
  maxRank: number = s.maxRank,
): { rank: number; shift: number } {
  const { Uw, Uwt, Uk, Bk, Uk32, Bk32, P, T, u, w, tmp } = s;
  const L = s.maxRank;
  let e = Math.round(-Math.log2(smax * smin) / 2);
  if (!Number.isFinite(e)) e = 0;
  const c = 2 ** e, ci = 2 ** -e;
  for (let j = 0; j < d * d; j++) {
    Uw[j] = U[j] * c;
    Uwt[j] = Uinvt[j] * ci;
  }
  let k = 0;
  while (k < Math.min(L, maxRank)) {
    // loose estimates suffice here: a rescale by σ̃ ≈ σ(1 ± 1e-4) still lands within [0.5, 2]
    const sa = topLeftSingular(la, Uw, d, u, tmp, 40, 1e-4);
    const sb = 1 / topLeftSingular(la, Uwt, d, w, tmp, 40, 1e-4);
    if (sa <= 2 && sb >= 0.5) break;
    let sigma = sa;
    if (Math.abs(Math.log(sb)) > Math.abs(Math.log(sa))) {
      sigma = sb;
      u.set(w);
    }
    const alpha = 1 / sigma - 1, beta = -alpha / (1 + alpha);
    // (U⁻¹u)_c = Σ_r Uwt[r][c] u_r, from the old Uw; and uᵀUw
    la.dgemv(true, d, d, 1, Uwt, d, u, 0, w);
    la.dgemv(true, d, d, 1, Uw, d, u, 0, tmp);
    for (let r = 0; r < d; r++) {
      const fa = alpha * u[r], fb = beta * u[r], row = r * d;
      for (let cc = 0; cc < d; cc++) {
        Uw[row + cc] += fa * tmp[cc];
        Uwt[row + cc] += fb * w[cc];
      }
    }
    // (I + Uk Bk)(I + β u uᵀ) = I + Uk (Bk + β (Bk u) uᵀ) + β u uᵀ
    for (let i = 0; i < k; i++) {
      let bu = 0;
      for (let cc = 0; cc < d; cc++) bu += Bk[i * d + cc] * u[cc];
      const f = beta * bu;
      for (let cc = 0; cc < d; cc++) Bk[i * d + cc] += f * u[cc];
    }
    for (let cc = 0; cc < d; cc++) {
      Bk[k * d + cc] = beta * u[cc];
      Uk[cc * L + k] = u[cc];
    }
    k++;
  }
  if (k === 0 && e === 0) return { rank: 0, shift: 0 };
  // V ← c⁻¹ (V + (V Uk) Bk), with the float32 Uk, Bk
  const vs = Math.fround(ci);
  if (k > 0) {
    for (let j = 0; j < d * L; j++) Uk32[j] = Uk[j];
    for (let j = 0; j < L * d; j++) Bk32[j] = Bk[j];
    if (s.t.length < D * L) s.t = new Float32Array(Math.max(D * L, Math.ceil(s.t.length * 1.5)));
    la.sgemm(false, false, D, k, d, 1, V, d, Uk32, L, 0, s.t, L);
    la.sgemm(false, false, D, d, k, vs, s.t, L, Bk32, d, vs, V, d);
  } else {
    for (let j = 0, n = D * d; j < n; j++) V[j] *= vs;
  }
  // P = c⁻¹ (I + Uk32 Bk32) in float64; U ← P⁻¹ U; U⁻ᵀ ← inv(U)ᵀ
  P.fill(0);
  for (let r = 0; r < d; r++) {
    P[r * d + r] = 1;
    for (let i = 0; i < k; i++) {
      const a = Uk32[r * L + i];
      if (a === 0) continue;
      for (let cc = 0; cc < d; cc++) P[r * d + cc] += a * Bk32[i * d + cc];
    }
  }
  for (let j = 0; j < d * d; j++) P[j] *= ci;
  la.dinvert(P, d);
  la.dgemm(false, false, d, d, d, 1, P, d, U, d, 0, T, d);
  U.set(T);
  reinvert(la, U, Uinvt, d);
  return { rank: k, shift: e };
}

/**
 * Scratch of {@link foldConditioning}: a float32 chunk of rows and U rounded to float32.
 *
 * @example
 * ```ts
 * import { FoldScratch } from "./upkeep.ts";
 * const s = new FoldScratch(64);
 * ```
 */
export class FoldScratch {
  /** FOLD_CHUNK_ROWS×d rows of V. */
  a: Float32Array;
  /** U in float32 (d×d). */
  U32: Float32Array;
  /** d×d float64. */
  P: Float64Array;
  /** d×d float64. */
  T: Float64Array;
  /**
   * Allocates a chunk of rows and the d×d buffers.
   *
   * @param d dimension
   */
  constructor(d: number) {
    this.a = new Float32Array(FOLD_CHUNK_ROWS * d);
    this.U32 = new Float32Array(d * d);
    this.P = new Float64Array(d * d);
    this.T = new Float64Array(d * d);
  }
}

/** Rows per sgemm in {@link foldConditioning}. */
export const FOLD_CHUNK_ROWS = 1024;

/**
 * Moves all of U's conditioning into V at sgemm speed: V ← V Ũ with Ũ = U rounded to float32 (chunks of
 * rows, one sgemm each), then U ← Ũ⁻¹ U (float64; ≈ I up to U's rounding) and U⁻ᵀ re-inverted, so
 * V U is unchanged up to V's float32 rounding and cond(U) ≈ 1. ω is left alone. O(Dd²) flops.
 *
 * @example
 * ```ts
 * import { foldConditioning, FoldScratch } from "./upkeep.ts";
 * import { createJsBackend } from "../../linalg/js.ts";
 * const V = Float32Array.of(1, 2), U = Float64Array.of(3, 0, 0, 0.5), Uinvt = Float64Array.of(1 / 3, 0, 0, 2);
 * foldConditioning(createJsBackend(), V, 1, 2, U, Uinvt, new FoldScratch(2)); // V = [3, 1], U = I
 * ```
 *
 * @param la backend (sgemm, dinvert, dgemm)
 * @param V D×d float32, updated
 * @param D rows
 * @param d dimension
 * @param U d×d, updated (≈ I)
 * @param Uinvt d×d, recomputed
 * @param s scratch
 */
export function foldConditioning(
  la: LinAlgBackend,
  V: Float32Array,
  D: number,
  d: number,
  U: Float64Array,
  Uinvt: Float64Array,
  s: FoldScratch,
): void {
  const { a, U32, P, T } = s;
  for (let j = 0; j < d * d; j++) U32[j] = U[j];
  for (let r0 = 0; r0 < D; r0 += FOLD_CHUNK_ROWS) {
    const n = Math.min(FOLD_CHUNK_ROWS, D - r0);
    a.set(V.subarray(r0 * d, (r0 + n) * d));
    la.sgemm(false, false, n, d, d, 1, a, d, U32, d, 0, V.subarray(r0 * d, (r0 + n) * d), d);
  }
  for (let j = 0; j < d * d; j++) P[j] = U32[j];
  la.dinvert(P, d);
  la.dgemm(false, false, d, d, d, 1, P, d, U, d, 0, T, d);
  U.set(T);
  reinvert(la, U, Uinvt, d);
}
