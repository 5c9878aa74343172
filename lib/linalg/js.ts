/**
 * The `js` linear-algebra backend: plain TypeScript loops on typed arrays. It is the reference the
 * `blas` backend is tested against and is always available.
 *
 * Layout: every matrix is row-major with a leading dimension (see backend.ts). Single-precision
 * routines accumulate in float64 (JavaScript numbers) and round once per stored element of a partial
 * sum, so they are at least as accurate as OpenBLAS's float32 kernels.
 *
 * Loop orders: gemm NN/TN use i-k-j (a scaled row of B added to a row of C, k unrolled by 4), NT/TT are
 * dot products; syr2k computes the lower triangle and mirrors it.
 *
 * @module
 */

import { SingularMatrixError } from "../core/errors.ts";
import type { F32, F64, LinAlgBackend } from "./backend.ts";
import {
  checkDims,
  checkGemm,
  checkGemv,
  checkGer,
  checkIndexedRows,
  checkRows,
  checkSquare,
  checkSyr2k,
  checkTrsm,
  checkVector,
  mirrorLower,
  pivotTolerance,
} from "./check.ts";

type Arr = Float32Array | Float64Array;

/** C rows i < M, columns j < N: C = beta · C (beta = 0 writes zeros, dropping NaNs). */
function scaleC(M: number, N: number, beta: number, C: Arr, ldc: number): void {
  if (beta === 1) return;
  for (let i = 0; i < M; i++) {
    const r = i * ldc;
    if (beta === 0) C.fill(0, r, r + N);
    else for (let j = 0; j < N; j++) C[r + j] *= beta;
  }
}

/**
 * gemm kernel, shapes as in LinAlgBackend.sgemm: C (M×N) = alpha·op(A)·op(B) + beta·C.
 * A: M×K (lda) or K×M when transA; B: K×N (ldb) or N×K when transB; C: M×N (ldc).
 */
function gemm(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: Arr,
  lda: number,
  B: Arr,
  ldb: number,
  beta: number,
  C: Arr,
  ldc: number,
): void {
  scaleC(M, N, beta, C, ldc);
  if (alpha === 0 || K === 0) return;
  // stride of op(A)[i, p] along p, and along i
  const aP = transA ? lda : 1, aI = transA ? 1 : lda;
  if (!transB) {
    // i-k-j: C[i, :] += alpha·op(A)[i, p] · B[p, :], four p at a time.
    for (let i = 0; i < M; i++) {
      const ci = i * ldc, ai = i * aI;
      let p = 0;
      for (; p + 3 < K; p += 4) {
        const a0 = alpha * A[ai + p * aP], a1 = alpha * A[ai + (p + 1) * aP];
        const a2 = alpha * A[ai + (p + 2) * aP], a3 = alpha * A[ai + (p + 3) * aP];
        const b0 = p * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
        for (let j = 0; j < N; j++) {
          C[ci + j] += a0 * B[b0 + j] + a1 * B[b1 + j] + a2 * B[b2 + j] + a3 * B[b3 + j];
        }
      }
      for (; p < K; p++) {
        const a = alpha * A[ai + p * aP], b = p * ldb;
        for (let j = 0; j < N; j++) C[ci + j] += a * B[b + j];
      }
    }
  } else {
    // B is N×K: C[i, j] += alpha · Σ_p op(A)[i, p] · B[j, p] (dot products).
    for (let i = 0; i < M; i++) {
      const ci = i * ldc, ai = i * aI;
      for (let j = 0; j < N; j++) {
        const bj = j * ldb;
        let s = 0;
        for (let p = 0; p < K; p++) s += A[ai + p * aP] * B[bj + p];
        C[ci + j] += alpha * s;
      }
    }
  }
}

/** gemv kernel: y = alpha·op(A)·x + beta·y, A M×N (lda); y has M entries (N when trans). */
function gemv(
  trans: boolean,
  M: number,
  N: number,
  alpha: number,
  A: Arr,
  lda: number,
  x: Arr,
  beta: number,
  y: Arr,
): void {
  const ny = trans ? N : M;
  if (beta === 0) y.fill(0, 0, ny);
  else if (beta !== 1) { for (let i = 0; i < ny; i++) y[i] *= beta; }
  if (alpha === 0) return;
  if (!trans) {
    for (let i = 0; i < M; i++) {
      const r = i * lda;
      let s = 0;
      for (let j = 0; j < N; j++) s += A[r + j] * x[j];
      y[i] += alpha * s;
    }
  } else {
    for (let i = 0; i < M; i++) {
      const r = i * lda, a = alpha * x[i];
      if (a === 0) continue;
      for (let j = 0; j < N; j++) y[j] += a * A[r + j];
    }
  }
}

/** C's lower triangle (and diagonal) times beta, as BLAS reads it for a symmetric update (beta 0: zeros, even over NaN). */
function scaleLower(C: Arr, N: number, ldc: number, beta: number): void {
  for (let i = 0; i < N; i++) {
    const r = i * ldc;
    if (beta === 0) C.fill(0, r, r + i + 1);
    else if (beta !== 1) { for (let j = 0; j <= i; j++) C[r + j] *= beta; }
  }
}

/**
 * syrk kernel: C (N×N) = alpha·op(A)·op(A)ᵀ + beta·C, op(A) N×K (K×N stored when trans). Only the lower
 * triangle of the input C is read; both triangles are written.
 */
function syrk(
  trans: boolean,
  N: number,
  K: number,
  alpha: number,
  A: Arr,
  lda: number,
  beta: number,
  C: Arr,
  ldc: number,
): void {
  scaleLower(C, N, ldc, beta);
  if (alpha !== 0 && K !== 0) {
    if (!trans) {
      for (let i = 0; i < N; i++) {
        const ai = i * lda, ci = i * ldc;
        for (let j = 0; j <= i; j++) {
          const aj = j * lda;
          let s = 0;
          for (let p = 0; p < K; p++) s += A[ai + p] * A[aj + p];
          C[ci + j] += alpha * s;
        }
      }
    } else {
      for (let p = 0; p < K; p++) {
        const ap = p * lda;
        for (let i = 0; i < N; i++) {
          const ai = alpha * A[ap + i], ci = i * ldc;
          for (let j = 0; j <= i; j++) C[ci + j] += ai * A[ap + j];
        }
      }
    }
  }
  mirrorLower(C, N, ldc);
}

/**
 * syr2k kernel: C (N×N) = alpha·(op(A)·op(B)ᵀ + op(B)·op(A)ᵀ) + beta·C, op(A), op(B) N×K (K×N stored
 * when trans). Only the lower triangle of the input C is read (as BLAS with uplo = Lower); both
 * triangles are written.
 */
function syr2k(
  trans: boolean,
  N: number,
  K: number,
  alpha: number,
  A: Arr,
  lda: number,
  B: Arr,
  ldb: number,
  beta: number,
  C: Arr,
  ldc: number,
): void {
  scaleLower(C, N, ldc, beta);
  if (alpha !== 0 && K !== 0) {
    if (!trans) {
      // rows of A, B are the N vectors: C[i, j] += alpha·(a_i·b_j + b_i·a_j), j ≤ i.
      for (let i = 0; i < N; i++) {
        const ai = i * lda, bi = i * ldb, ci = i * ldc;
        for (let j = 0; j <= i; j++) {
          const aj = j * lda, bj = j * ldb;
          let s = 0;
          for (let p = 0; p < K; p++) s += A[ai + p] * B[bj + p] + B[bi + p] * A[aj + p];
          C[ci + j] += alpha * s;
        }
      }
    } else {
      // A, B are K×N: a sum of K rank-2 updates, row by row.
      for (let p = 0; p < K; p++) {
        const ap = p * lda, bp = p * ldb;
        for (let i = 0; i < N; i++) {
          const ai = alpha * A[ap + i], bi = alpha * B[bp + i], ci = i * ldc;
          for (let j = 0; j <= i; j++) C[ci + j] += ai * B[bp + j] + bi * A[ap + j];
        }
      }
    }
  }
  mirrorLower(C, N, ldc);
}

/**
 * In-place LU factorisation with partial pivoting of the row-major n×n matrix A: P·A = L·U, L unit
 * lower (below the diagonal), U upper (on and above it). piv[k] is the row swapped with row k.
 * Throws RangeError when a pivot is at most n·ε·max|A| (or not finite).
 */
function luFactor(op: string, A: F64, n: number, piv: Int32Array): void {
  const tol = pivotTolerance(A, n);
  if (tol !== tol) throw new SingularMatrixError(`${op}: A contains NaN`);
  for (let k = 0; k < n; k++) {
    let p = k, best = Math.abs(A[k * n + k]);
    for (let i = k + 1; i < n; i++) {
      const v = Math.abs(A[i * n + k]);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    if (!(best > tol) || !Number.isFinite(best)) {
      throw new SingularMatrixError(
        `${op}: the ${n}x${n} matrix is singular to working precision (pivot ${k} = ${best}, tolerance ${tol})`,
      );
    }
    piv[k] = p;
    if (p !== k) {
      const rk = k * n, rp = p * n;
      for (let j = 0; j < n; j++) {
        const t = A[rk + j];
        A[rk + j] = A[rp + j];
        A[rp + j] = t;
      }
    }
    const rk = k * n, inv = 1 / A[rk + k];
    for (let i = k + 1; i < n; i++) {
      const ri = i * n, l = A[ri + k] * inv;
      A[ri + k] = l;
      if (l === 0) continue;
      for (let j = k + 1; j < n; j++) A[ri + j] -= l * A[rk + j];
    }
  }
}

/** Solves A X = B in place of B (n×k row-major) from luFactor's LU and pivots. */
function luSolve(LU: F64, n: number, piv: Int32Array, B: F64, k: number): void {
  for (let i = 0; i < n; i++) {
    const p = piv[i];
    if (p !== i) {
      const ri = i * k, rp = p * k;
      for (let j = 0; j < k; j++) {
        const t = B[ri + j];
        B[ri + j] = B[rp + j];
        B[rp + j] = t;
      }
    }
  }
  // forward: L Y = P B (unit diagonal)
  for (let i = 1; i < n; i++) {
    const ri = i * k, li = i * n;
    for (let j = 0; j < i; j++) {
      const l = LU[li + j];
      if (l === 0) continue;
      const rj = j * k;
      for (let c = 0; c < k; c++) B[ri + c] -= l * B[rj + c];
    }
  }
  // backward: U X = Y
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * k, ui = i * n;
    for (let j = i + 1; j < n; j++) {
      const u = LU[ui + j];
      if (u === 0) continue;
      const rj = j * k;
      for (let c = 0; c < k; c++) B[ri + c] -= u * B[rj + c];
    }
    const inv = 1 / LU[ui + i];
    for (let c = 0; c < k; c++) B[ri + c] *= inv;
  }
}

/** Cholesky A = L Lᵀ in place (lower triangle, row-major n×n); false when not positive definite. */
function cholesky(A: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let djj = A[rj + j];
    for (let k = 0; k < j; k++) djj -= A[rj + k] * A[rj + k];
    if (!(djj > 0)) return false;
    const ljj = Math.sqrt(djj);
    A[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let v = A[ri + j];
      for (let k = 0; k < j; k++) v -= A[ri + k] * A[rj + k];
      A[ri + j] = v / ljj;
    }
  }
  return true;
}

/**
 * B (N×K, ldb) ← alpha · op(L)⁻¹ B for the lower-triangular L (ldl), op(L) = Lᵀ when trans; row by row
 * with a float64 accumulator row `acc` (length K).
 */
function trsm(
  trans: boolean,
  N: number,
  K: number,
  alpha: number,
  L: Arr,
  ldl: number,
  B: Arr,
  ldb: number,
): void {
  const acc = new Float64Array(K);
  for (let t = 0; t < N; t++) {
    const i = trans ? N - 1 - t : t; // Lᵀ is upper-triangular: back substitution
    const bi = i * ldb;
    for (let c = 0; c < K; c++) acc[c] = alpha * B[bi + c];
    if (!trans) {
      for (let j = 0; j < i; j++) {
        const l = L[i * ldl + j];
        if (l === 0) continue;
        const bj = j * ldb;
        for (let c = 0; c < K; c++) acc[c] -= l * B[bj + c];
      }
    } else {
      for (let j = i + 1; j < N; j++) {
        const l = L[j * ldl + i];
        if (l === 0) continue;
        const bj = j * ldb;
        for (let c = 0; c < K; c++) acc[c] -= l * B[bj + c];
      }
    }
    const inv = 1 / L[i * ldl + i];
    for (let c = 0; c < K; c++) B[bi + c] = acc[c] * inv;
  }
}

/**
 * Creates the plain-TypeScript backend. It holds no native resources; `close()` is a no-op.
 *
 * @example
 * ```ts
 * import { createJsBackend } from "./js.ts";
 * const la = createJsBackend();
 * const A = Float64Array.of(4, 7, 2, 6);
 * la.dinvert(A, 2); // A = [0.6, -0.7, -0.2, 0.4]
 * ```
 *
 * @returns a {@link LinAlgBackend} named "js"
 */
export function createJsBackend(): LinAlgBackend {
  return {
    name: "js",
    sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      checkGemm("sgemm", transA, transB, M, N, K, A, lda, B, ldb, C, ldc);
      gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    },
    dgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      checkGemm("dgemm", transA, transB, M, N, K, A, lda, B, ldb, C, ldc);
      gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    },
    sgemv(trans, M, N, alpha, A, lda, x, beta, y) {
      checkGemv("sgemv", trans, M, N, A, lda, x, y);
      gemv(trans, M, N, alpha, A, lda, x, beta, y);
    },
    dgemv(trans, M, N, alpha, A, lda, x, beta, y) {
      checkGemv("dgemv", trans, M, N, A, lda, x, y);
      gemv(trans, M, N, alpha, A, lda, x, beta, y);
    },
    sger(M, N, alpha, x, y, A, lda) {
      checkGer("sger", M, N, x, y, A, lda);
      for (let r = 0; r < M; r++) {
        const a = alpha * x[r], o = r * lda;
        if (a === 0) continue;
        for (let c = 0; c < N; c++) A[o + c] += a * y[c];
      }
    },
    dsyr2k(trans, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      checkSyr2k("dsyr2k", trans, N, K, A, lda, B, ldb, C, ldc);
      syr2k(trans, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    },
    dsyrk(trans, N, K, alpha, A, lda, beta, C, ldc) {
      checkSyr2k("dsyrk", trans, N, K, A, lda, A, lda, C, ldc);
      syrk(trans, N, K, alpha, A, lda, beta, C, ldc);
    },
    ssyr2k(trans, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      checkSyr2k("ssyr2k", trans, N, K, A, lda, B, ldb, C, ldc);
      syr2k(trans, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    },
    gatherRows(src: F32, d: number, rows: Int32Array, n: number, out: F32) {
      checkRows("gatherRows", src, d, rows, n, out, "out");
      for (let i = 0; i < n; i++) out.set(src.subarray(rows[i] * d, rows[i] * d + d), i * d);
    },
    scatterAddRows(dst: F32, d: number, rows: Int32Array, n: number, src: F32, alpha: number) {
      checkRows("scatterAddRows", dst, d, rows, n, src, "src");
      for (let i = 0; i < n; i++) {
        const r = rows[i] * d, s = i * d;
        for (let j = 0; j < d; j++) dst[r + j] += alpha * src[s + j];
      }
    },
    dotRows(
      A: F32,
      lda: number,
      aRows: Int32Array,
      B: F32,
      ldb: number,
      bRows: Int32Array,
      n: number,
      d: number,
      out: F64,
      first = 0,
    ) {
      checkIndexedRows("dotRows", "A", A, lda, aRows, n, d, first);
      checkIndexedRows("dotRows", "B", B, ldb, bRows, n, d, first);
      checkVector("dotRows", "out", out, first + n);
      const end = first + n;
      for (let k = first; k < end; k++) {
        const a = aRows[k] * lda, b = bRows[k] * ldb;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0, c = 0;
        for (; c + 3 < d; c += 4) {
          s0 += A[a + c] * B[b + c];
          s1 += A[a + c + 1] * B[b + c + 1];
          s2 += A[a + c + 2] * B[b + c + 2];
          s3 += A[a + c + 3] * B[b + c + 3];
        }
        for (; c < d; c++) s0 += A[a + c] * B[b + c];
        out[k] = (s0 + s1) + (s2 + s3);
      }
    },
    axpyRows(
      alpha: F32 | F64,
      X: F32,
      ldx: number,
      xRows: Int32Array,
      Y: F32,
      ldy: number,
      yRows: Int32Array,
      n: number,
      d: number,
      first = 0,
    ) {
      checkVector("axpyRows", "alpha", alpha, first + n);
      checkIndexedRows("axpyRows", "X", X, ldx, xRows, n, d, first);
      checkIndexedRows("axpyRows", "Y", Y, ldy, yRows, n, d, first);
      const end = first + n;
      for (let k = first; k < end; k++) {
        const a = alpha[k];
        if (a === 0) continue;
        const x = xRows[k] * ldx, y = yRows[k] * ldy;
        for (let c = 0; c < d; c++) Y[y + c] += a * X[x + c];
      }
    },
    dinvert(A: F64, n: number) {
      checkSquare("dinvert", A, n);
      const piv = new Int32Array(n);
      luFactor("dinvert", A, n, piv);
      const X = new Float64Array(n * n);
      for (let i = 0; i < n; i++) X[i * n + i] = 1;
      luSolve(A, n, piv, X, n);
      A.set(X);
    },
    dsolve(A: F64, n: number, B: F64, k: number) {
      checkSquare("dsolve", A, n);
      checkDims("dsolve", { k });
      checkVector("dsolve", "B", B, n * k);
      const piv = new Int32Array(n);
      luFactor("dsolve", A, n, piv);
      luSolve(A, n, piv, B, k);
    },
    dpotrf(A: F64, n: number) {
      checkSquare("dpotrf", A, n);
      return cholesky(A, n);
    },
    strsm(trans, N, K, alpha, L, ldl, B, ldb) {
      checkTrsm("strsm", N, K, L, ldl, B, ldb);
      trsm(trans, N, K, alpha, L, ldl, B, ldb);
    },
    close() {},
  };
}
