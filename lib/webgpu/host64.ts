/**
 * Float64 host routines for the O(d³) parts of the WebGPU factored layer's stabilisation (ALGORITHM.md
 * §5), run every P steps after a read-back of the d×d state: an exact inverse by Gauss–Jordan with partial
 * pivoting, and the extreme left singular pairs of U by power iteration. Row-major d×d arrays.
 *
 * @module
 */

/**
 * The inverse of the n×n row-major matrix A (float64, partial pivoting). Throws a RangeError naming the
 * column when A is numerically singular.
 *
 * @example
 * ```ts
 * import { invert } from "./host64.ts";
 * const inv = invert(Float64Array.of(2, 0, 0, 4), 2); // [0.5, 0, 0, 0.25]
 * ```
 */
export function invert(A: Float64Array, n: number): Float64Array {
  const a = Float64Array.from(A.subarray(0, n * n));
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let k = 0; k < n; k++) {
    let p = k, best = Math.abs(a[k * n + k]);
    for (let i = k + 1; i < n; i++) {
      const v = Math.abs(a[i * n + k]);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    if (!(best > 0) || !Number.isFinite(best)) {
      throw new RangeError(
        `invert: matrix is singular at column ${k} (U lost rank; lower the learning rate)`,
      );
    }
    if (p !== k) {
      for (let j = 0; j < n; j++) {
        let t = a[k * n + j];
        a[k * n + j] = a[p * n + j];
        a[p * n + j] = t;
        t = inv[k * n + j];
        inv[k * n + j] = inv[p * n + j];
        inv[p * n + j] = t;
      }
    }
    const piv = 1 / a[k * n + k];
    for (let j = 0; j < n; j++) {
      a[k * n + j] *= piv;
      inv[k * n + j] *= piv;
    }
    for (let i = 0; i < n; i++) {
      if (i === k) continue;
      const f = a[i * n + k];
      if (f === 0) continue;
      for (let j = 0; j < n; j++) {
        a[i * n + j] -= f * a[k * n + j];
        inv[i * n + j] -= f * inv[k * n + j];
      }
    }
  }
  return inv;
}

/**
 * C = A·B for n×n row-major float64 matrices.
 *
 * @example
 * ```ts
 * import { matmul } from "./host64.ts";
 * const C = matmul(Float64Array.of(1, 2, 3, 4), Float64Array.of(1, 0, 0, 1), 2);
 * ```
 */
export function matmul(A: Float64Array, B: Float64Array, n: number): Float64Array {
  const C = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const a = A[i * n + k];
      if (a === 0) continue;
      for (let j = 0; j < n; j++) C[i * n + j] += a * B[k * n + j];
    }
  }
  return C;
}

/**
 * The transpose of an n×n row-major matrix.
 *
 * @example
 * ```ts
 * import { transpose } from "./host64.ts";
 * console.log(transpose(Float64Array.of(1, 2, 3, 4), 2)); // [1, 3, 2, 4]
 * ```
 */
export function transpose(A: Float64Array, n: number): Float64Array {
  const T = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) T[j * n + i] = A[i * n + j];
  return T;
}

/**
 * The largest eigenvalue of the symmetric PSD n×n matrix S and its unit eigenvector, by power iteration
 * (deterministic start vector, `iters` iterations).
 *
 * @example
 * ```ts
 * import { topEigen } from "./host64.ts";
 * const { value, vector } = topEigen(Float64Array.of(4, 0, 0, 1), 2, 50); // value ≈ 4
 * ```
 */
export function topEigen(S: Float64Array, n: number, iters = 60): { value: number; vector: Float64Array } {
  let v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = 1 + ((i * 7919) % 13) / 13;
  let value = 0;
  const w = new Float64Array(n);
  for (let it = 0; it < iters; it++) {
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    if (!(norm > 0)) break;
    for (let i = 0; i < n; i++) v[i] /= norm;
    w.fill(0);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += S[i * n + j] * v[j];
      w[i] = s;
    }
    value = 0;
    for (let i = 0; i < n; i++) value += v[i] * w[i];
    v = Float64Array.from(w);
  }
  let norm = 0;
  for (let i = 0; i < n; i++) norm += v[i] * v[i];
  norm = Math.sqrt(norm);
  for (let i = 0; i < n; i++) v[i] /= norm || 1;
  return { value, vector: v };
}

/**
 * Estimates σ_max(U) and σ_min(U) with their left singular vectors: power iteration on U Uᵀ and on
 * (U Uᵀ)⁻¹ = U⁻ᵀ U⁻¹ (given U⁻¹).
 *
 * @example
 * ```ts
 * import { extremeSingular } from "./host64.ts";
 * const s = extremeSingular(Float64Array.of(2, 0, 0, 0.5), Float64Array.of(0.5, 0, 0, 2), 2);
 * console.log(s.sigmaMax, s.sigmaMin); // ≈ 2, 0.5
 * ```
 */
export function extremeSingular(
  U: Float64Array,
  Uinv: Float64Array,
  n: number,
): { sigmaMax: number; uMax: Float64Array; sigmaMin: number; uMin: Float64Array } {
  const UUt = matmul(U, transpose(U, n), n);
  const big = topEigen(UUt, n);
  const inv = matmul(transpose(Uinv, n), Uinv, n);
  const small = topEigen(inv, n);
  return {
    sigmaMax: Math.sqrt(Math.max(big.value, 0)),
    uMax: big.vector,
    sigmaMin: 1 / Math.sqrt(Math.max(small.value, 1e-300)),
    uMin: small.vector,
  };
}
