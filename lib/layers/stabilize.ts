/**
 * Numerical upkeep of the factored state W = V U + 𝟙ωᵀ (ALGORITHM.md §5), as plain functions on the
 * arrays. Shapes: V is D×d float32 row-major; U, Uinvt (= U⁻ᵀ) are d×d float64 row-major; u is a d-vector.
 *
 * - {@link reinvert}: U⁻ᵀ recomputed exactly (O(d³)).
 * - {@link topLeftSingular}: σ_max of a d×d matrix and its left singular vector, by power iteration on
 *   M Mᵀ (O(d²) per iteration). Applied to U it gives σ_max(U); applied to U⁻ᵀ it gives 1/σ_min(U) and
 *   the same left singular direction of U (U = L Σ Rᵀ ⇒ U⁻ᵀ = L Σ⁻¹ Rᵀ).
 * - {@link rescaleDirection}: U ← (I + α uuᵀ) U, V ← V (I + β uuᵀ), U⁻ᵀ ← U⁻ᵀ + β u (U⁻¹u)ᵀ with
 *   α = 1/σ − 1, β = −α/(1+α): the singular value σ along u becomes 1, W is unchanged (O(Dd)).
 * - {@link scalePow2}: U ← 2ᵏ U, U⁻ᵀ ← 2⁻ᵏ U⁻ᵀ, V ← 2⁻ᵏ V — exact in floating point (no rounding).
 * - {@link foldInto}: V ← V U + 𝟙ωᵀ, then U = U⁻ᵀ = I, ω = 0 (O(Dd²), float64 accumulation).
 * - {@link gramOf}: Q = VᵀV and w̄ = Vᵀ𝟙 in float64 by row chunks (O(Dd²)).
 *
 * @module
 */

import type { LinAlgBackend } from "../linalg/backend.ts";

/** Rows per chunk when V is streamed through float64 scratch. */
export const CHUNK_ROWS = 256;

/**
 * U⁻ᵀ ← inv(U)ᵀ exactly (LU with partial pivoting, float64).
 *
 * @example
 * ```ts
 * import { reinvert } from "./stabilize.ts";
 * import { createJsBackend } from "../linalg/js.ts";
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
 * Largest singular value of the d×d row-major M and its left singular vector (written to `u`, unit
 * length), by power iteration on M Mᵀ from a fixed deterministic start (no hidden state): at most
 * `maxIter` iterations, stopping when σ changes by less than `tol` relatively. `tmp` is d scratch.
 *
 * @example
 * ```ts
 * import { topLeftSingular } from "./stabilize.ts";
 * const u = new Float64Array(2), tmp = new Float64Array(2);
 * const s = topLeftSingular(Float64Array.of(3, 0, 0, 1), 2, u, tmp); // 3, u ≈ [±1, 0]
 * ```
 *
 * @param M the matrix
 * @param d dimension
 * @param u output: left singular vector
 * @param tmp scratch of length d
 * @param maxIter iteration cap (default 200)
 * @param tol relative tolerance on σ (default 1e-9)
 * @returns σ_max(M)
 */
export function topLeftSingular(
  M: Float64Array,
  d: number,
  u: Float64Array,
  tmp: Float64Array,
  maxIter = 200,
  tol = 1e-9,
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
    // tmp = Mᵀ u
    tmp.fill(0, 0, d);
    for (let r = 0; r < d; r++) {
      const ur = u[r], row = r * d;
      if (ur === 0) continue;
      for (let c = 0; c < d; c++) tmp[c] += M[row + c] * ur;
    }
    let s2 = 0;
    for (let c = 0; c < d; c++) s2 += tmp[c] * tmp[c];
    const next = Math.sqrt(s2);
    // u = M tmp, normalised
    n = 0;
    for (let r = 0; r < d; r++) {
      let acc = 0;
      const row = r * d;
      for (let c = 0; c < d; c++) acc += M[row + c] * tmp[c];
      u[r] = acc;
      n += acc * acc;
    }
    if (n === 0) return 0;
    inv = 1 / Math.sqrt(n);
    for (let k = 0; k < d; k++) u[k] *= inv;
    const done = Math.abs(next - sigma) <= tol * next;
    sigma = next;
    if (done) break;
  }
  // σ from the final vector: ‖Mᵀu‖
  let s2 = 0;
  for (let c = 0; c < d; c++) {
    let acc = 0;
    for (let r = 0; r < d; r++) acc += M[r * d + c] * u[r];
    s2 += acc * acc;
  }
  return Math.max(sigma, Math.sqrt(s2));
}

/**
 * Scratch for {@link rescaleDirection}: t (D float32, grows), u32 (d float32), w (d float64).
 *
 * @example
 * ```ts
 * import { RescaleScratch } from "./stabilize.ts";
 * const s = new RescaleScratch(8);
 * ```
 */
export class RescaleScratch {
  /** V·u, D float32. */
  t: Float32Array = new Float32Array(0);
  /** u rounded to float32. */
  u32: Float32Array;
  /** a d float64 vector. */
  w: Float64Array;
  /** @param d dimension */
  constructor(d: number) {
    this.u32 = new Float32Array(d);
    this.w = new Float64Array(d);
  }
}

/**
 * Brings the singular value σ of U along its left singular vector u to 1 without changing W = VU:
 * U ← (I + α ûûᵀ/n) U, U⁻ᵀ ← U⁻ᵀ + (β/n) û (U⁻¹û)ᵀ, V ← V (I + (β/n) ûûᵀ), with û = u rounded to float32
 * (so V, U and U⁻ᵀ see the same direction), n = ‖û‖², α = 1/σ − 1, β = −α/(1+α). O(Dd + d²).
 *
 * @example
 * ```ts
 * import { rescaleDirection, RescaleScratch } from "./stabilize.ts";
 * import { createJsBackend } from "../linalg/js.ts";
 * const V = Float32Array.of(1, 0, 0, 1), U = Float64Array.of(4, 0, 0, 1), Uinvt = Float64Array.of(0.25, 0, 0, 1);
 * rescaleDirection(createJsBackend(), V, 2, 2, U, Uinvt, Float64Array.of(1, 0), 4, new RescaleScratch(2));
 * // U = I, V = diag(4, 1)
 * ```
 *
 * @param la backend (sgemv)
 * @param V D×d float32, updated in place
 * @param D rows of V
 * @param d dimension
 * @param U d×d, updated
 * @param Uinvt d×d, updated
 * @param u unit left singular vector of U
 * @param sigma its singular value
 * @param s scratch
 */
export function rescaleDirection(
  la: LinAlgBackend,
  V: Float32Array,
  D: number,
  d: number,
  U: Float64Array,
  Uinvt: Float64Array,
  u: Float64Array,
  sigma: number,
  s: RescaleScratch,
): void {
  const { u32, w } = s;
  let n = 0;
  for (let k = 0; k < d; k++) {
    u32[k] = u[k];
    n += u32[k] * u32[k];
  }
  const alpha = 1 / sigma - 1;
  const beta = -alpha / (1 + alpha);
  const a = alpha / n, b = beta / n;
  // U ← U + a û (ûᵀU)
  w.fill(0, 0, d);
  for (let r = 0; r < d; r++) {
    const ur = u32[r], row = r * d;
    for (let c = 0; c < d; c++) w[c] += ur * U[row + c];
  }
  for (let r = 0; r < d; r++) {
    const f = a * u32[r], row = r * d;
    for (let c = 0; c < d; c++) U[row + c] += f * w[c];
  }
  // U⁻ᵀ ← U⁻ᵀ + b û (U⁻¹û)ᵀ, (U⁻¹û)_c = Σ_r U⁻ᵀ[r][c] û_r
  w.fill(0, 0, d);
  for (let r = 0; r < d; r++) {
    const ur = u32[r], row = r * d;
    for (let c = 0; c < d; c++) w[c] += ur * Uinvt[row + c];
  }
  for (let r = 0; r < d; r++) {
    const f = b * u32[r], row = r * d;
    for (let c = 0; c < d; c++) Uinvt[row + c] += f * w[c];
  }
  // V ← V + b (V û) ûᵀ
  if (s.t.length < D) s.t = new Float32Array(Math.max(D, Math.ceil(s.t.length * 1.5)));
  const t = s.t;
  la.sgemv(false, D, d, 1, V, d, u32, 0, t);
  for (let j = 0; j < D; j++) {
    const f = b * t[j], row = j * d;
    if (f === 0) continue;
    for (let c = 0; c < d; c++) V[row + c] += f * u32[c];
  }
}

/**
 * U ← 2ᵏ U, U⁻ᵀ ← 2⁻ᵏ U⁻ᵀ, V ← 2⁻ᵏ V: exact (powers of two), W unchanged. O(Dd).
 *
 * @example
 * ```ts
 * import { scalePow2 } from "./stabilize.ts";
 * const V = Float32Array.of(4), U = Float64Array.of(0.25), Uinvt = Float64Array.of(4);
 * scalePow2(V, 1, 1, U, Uinvt, 2); // U = 1, V = 1
 * ```
 *
 * @param V D×d
 * @param D rows
 * @param d dimension
 * @param U d×d
 * @param Uinvt d×d
 * @param k the exponent
 */
export function scalePow2(V: Float32Array, D: number, d: number, U: Float64Array, Uinvt: Float64Array, k: number) {
  const up = 2 ** k, down = 2 ** -k;
  for (let j = 0; j < d * d; j++) {
    U[j] *= up;
    Uinvt[j] *= down;
  }
  const vd = Math.fround(down);
  for (let j = 0, n = D * d; j < n; j++) V[j] *= vd;
}

/**
 * Float64 scratch for the chunked O(Dd²) passes ({@link foldInto}, {@link gramOf}, W materialisation).
 *
 * @example
 * ```ts
 * import { ChunkScratch } from "./stabilize.ts";
 * const s = new ChunkScratch(64);
 * ```
 */
export class ChunkScratch {
  /** CHUNK_ROWS×d input rows. */
  a: Float64Array;
  /** CHUNK_ROWS×d output rows. */
  b: Float64Array;
  /** @param d dimension */
  constructor(d: number) {
    this.a = new Float64Array(CHUNK_ROWS * d);
    this.b = new Float64Array(CHUNK_ROWS * d);
  }
}

/**
 * out rows = V rows · U + ωᵀ (W materialised), computed in float64 by chunks and rounded once to float32.
 * `out` may be V itself (the fold). O(Dd²).
 *
 * @example
 * ```ts
 * import { materialize, ChunkScratch } from "./stabilize.ts";
 * import { createJsBackend } from "../linalg/js.ts";
 * const W = new Float32Array(2);
 * materialize(createJsBackend(), Float32Array.of(1, 2), 1, 2, Float64Array.of(2, 0, 0, 2), Float64Array.of(0, 1), W, new ChunkScratch(2));
 * // W = [2, 5]
 * ```
 *
 * @param la backend (dgemm)
 * @param V D×d
 * @param D rows
 * @param d dimension
 * @param U d×d
 * @param omega d (or null for 0)
 * @param out D×d output
 * @param s scratch
 */
export function materialize(
  la: LinAlgBackend,
  V: Float32Array,
  D: number,
  d: number,
  U: Float64Array,
  omega: Float64Array | null,
  out: Float32Array,
  s: ChunkScratch,
): void {
  for (let r0 = 0; r0 < D; r0 += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, D - r0);
    for (let j = 0; j < n * d; j++) s.a[j] = V[r0 * d + j];
    la.dgemm(false, false, n, d, d, 1, s.a, d, U, d, 0, s.b, d);
    for (let i = 0; i < n; i++) {
      const row = (r0 + i) * d;
      for (let c = 0; c < d; c++) out[row + c] = s.b[i * d + c] + (omega ? omega[c] : 0);
    }
  }
}

/**
 * Folds U and ω into V: V ← V U + 𝟙ωᵀ (float64 accumulation, one rounding), U ← I, U⁻ᵀ ← I, ω ← 0.
 * W is unchanged up to that one float32 rounding. O(Dd²).
 *
 * @example
 * ```ts
 * import { foldInto, ChunkScratch } from "./stabilize.ts";
 * import { createJsBackend } from "../linalg/js.ts";
 * const V = Float32Array.of(1, 2), U = Float64Array.of(2, 0, 0, 2), Uinvt = Float64Array.of(0.5, 0, 0, 0.5);
 * foldInto(createJsBackend(), V, 1, 2, U, Uinvt, null, new ChunkScratch(2)); // V = [2, 4], U = I
 * ```
 *
 * @param la backend
 * @param V D×d, updated
 * @param D rows
 * @param d dimension
 * @param U d×d, set to I
 * @param Uinvt d×d, set to I
 * @param omega d, set to 0 (or null)
 * @param s scratch
 */
export function foldInto(
  la: LinAlgBackend,
  V: Float32Array,
  D: number,
  d: number,
  U: Float64Array,
  Uinvt: Float64Array,
  omega: Float64Array | null,
  s: ChunkScratch,
): void {
  materialize(la, V, D, d, U, omega, V, s);
  U.fill(0);
  Uinvt.fill(0);
  for (let k = 0; k < d; k++) U[k * d + k] = Uinvt[k * d + k] = 1;
  omega?.fill(0);
}

/**
 * G = AᵀA (d×d) and, when `sum` is given, sum = Aᵀ𝟙, for the D×d float32 A, accumulated in float64 by
 * chunks (dgemm). O(Dd²).
 *
 * @example
 * ```ts
 * import { gramOf, ChunkScratch } from "./stabilize.ts";
 * import { createJsBackend } from "../linalg/js.ts";
 * const G = new Float64Array(4), sum = new Float64Array(2);
 * gramOf(createJsBackend(), Float32Array.of(1, 2, 3, 4), 2, 2, G, sum, new ChunkScratch(2)); // G = [10, 14, 14, 20]
 * ```
 *
 * @param la backend
 * @param A D×d
 * @param D rows
 * @param d dimension
 * @param G d×d output
 * @param sum d output or null
 * @param s scratch
 */
export function gramOf(
  la: LinAlgBackend,
  A: Float32Array,
  D: number,
  d: number,
  G: Float64Array,
  sum: Float64Array | null,
  s: ChunkScratch,
): void {
  G.fill(0, 0, d * d);
  sum?.fill(0, 0, d);
  for (let r0 = 0; r0 < D; r0 += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, D - r0);
    for (let j = 0; j < n * d; j++) s.a[j] = A[r0 * d + j];
    la.dgemm(true, false, d, d, n, 1, s.a, d, s.a, d, 1, G, d);
    if (sum) for (let j = 0; j < n * d; j++) sum[j % d] += s.a[j];
  }
  // exact symmetry
  for (let r = 0; r < d; r++) {
    for (let c = r + 1; c < d; c++) {
      const v = 0.5 * (G[r * d + c] + G[c * d + r]);
      G[r * d + c] = G[c * d + r] = v;
    }
  }
}
