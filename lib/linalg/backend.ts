/**
 * The linear-algebra contract between the output layers and their CPU backends. Backends know nothing
 * of losses or layers: only dense row-major matrices, vectors and row-indexed sparse access.
 *
 * Layout: every matrix is row-major with a leading dimension (`lda` = distance in elements between
 * consecutive rows). Views into larger arrays are passed as `subarray`s.
 *
 * @module
 */

/** Element arrays accepted by the double-precision routines. */
export type F64 = Float64Array;
/** Element arrays accepted by the single-precision routines. */
export type F32 = Float32Array;

/**
 * A CPU linear-algebra backend. Implementations: `js` (plain TypeScript, the reference, always
 * available) and `blas` (OpenBLAS through Deno.dlopen). Both must give the same results to rounding.
 *
 * @example
 * ```ts
 * import { createBackend } from "./select.ts";
 * const la = await createBackend("js");
 * const A = Float32Array.of(1, 2, 3, 4), B = Float32Array.of(1, 0, 0, 1), C = new Float32Array(4);
 * la.sgemm(false, false, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2); // C = A
 * ```
 */
export interface LinAlgBackend {
  /** "js" or "blas". */
  readonly name: "js" | "blas";
  /**
   * C (M×N) = alpha · op(A) · op(B) + beta · C, where op(A) is M×K (A is K×M when transA) and op(B) is
   * K×N (B is N×K when transB). beta = 0 overwrites C (NaNs in C are not propagated).
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: F32,
    lda: number,
    B: F32,
    ldb: number,
    beta: number,
    C: F32,
    ldc: number,
  ): void;
  /** Double-precision {@link LinAlgBackend.sgemm}. */
  dgemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: F64,
    lda: number,
    B: F64,
    ldb: number,
    beta: number,
    C: F64,
    ldc: number,
  ): void;
  /** y (len M, or N when trans) = alpha · op(A) · x + beta · y, A is M×N. */
  sgemv(
    trans: boolean,
    M: number,
    N: number,
    alpha: number,
    A: F32,
    lda: number,
    x: F32,
    beta: number,
    y: F32,
  ): void;
  /**
   * Rank-1 update A (M×N, lda) += alpha · x yᵀ (x of length M, y of length N), in float32.
   *
   * @example
   * ```ts
   * import { createJsBackend } from "./js.ts";
   * const A = new Float32Array(4);
   * createJsBackend().sger(2, 2, 2, Float32Array.of(1, 2), Float32Array.of(3, 4), A, 2); // A = [6, 8, 12, 16]
   * ```
   */
  sger(M: number, N: number, alpha: number, x: F32, y: F32, A: F32, lda: number): void;
  /** Double-precision {@link LinAlgBackend.sgemv}. */
  dgemv(
    trans: boolean,
    M: number,
    N: number,
    alpha: number,
    A: F64,
    lda: number,
    x: F64,
    beta: number,
    y: F64,
  ): void;
  /**
   * Symmetric rank-2k update, both triangles written: C (N×N) = alpha·(op(A)·op(B)ᵀ + op(B)·op(A)ᵀ) + beta·C,
   * where op(A), op(B) are N×K (A, B are K×N when trans). With beta ≠ 0 only C's lower triangle (and
   * its diagonal) is read: an input C that is not symmetric is taken as its lower triangle mirrored.
   */
  dsyr2k(
    trans: boolean,
    N: number,
    K: number,
    alpha: number,
    A: F64,
    lda: number,
    B: F64,
    ldb: number,
    beta: number,
    C: F64,
    ldc: number,
  ): void;
  /**
   * Symmetric rank-k update in float64, both triangles written: C (N×N) = alpha·op(A)·op(A)ᵀ + beta·C, where
   * op(A) is N×K (A is K×N when trans). With beta ≠ 0 only C's lower triangle (and its diagonal) is read.
   * Half the multiply-adds of the dgemm that gives the same C (a Gram matrix).
   *
   * @example
   * ```ts
   * import { createJsBackend } from "./js.ts";
   * const C = new Float64Array(4);
   * createJsBackend().dsyrk(true, 2, 2, 1, Float64Array.of(1, 2, 3, 4), 2, 0, C, 2); // C = [10, 14, 14, 20]
   * ```
   */
  dsyrk(
    trans: boolean,
    N: number,
    K: number,
    alpha: number,
    A: F64,
    lda: number,
    beta: number,
    C: F64,
    ldc: number,
  ): void;
  /** Single-precision {@link LinAlgBackend.dsyr2k}. */
  ssyr2k(
    trans: boolean,
    N: number,
    K: number,
    alpha: number,
    A: F32,
    lda: number,
    B: F32,
    ldb: number,
    beta: number,
    C: F32,
    ldc: number,
  ): void;
  /** out[i, :] = src[rows[i], :] for i < n (rows of width d). */
  gatherRows(src: F32, d: number, rows: Int32Array, n: number, out: F32): void;
  /** dst[rows[i], :] += alpha · src[i, :] for i < n, in order (repeated rows accumulate, deterministically). */
  scatterAddRows(dst: F32, d: number, rows: Int32Array, n: number, src: F32, alpha: number): void;
  /**
   * Row-indexed dot products: out[k] = Σ_{c<d} A[aRows[k]·lda + c] · B[bRows[k]·ldb + c] for the n
   * entries k = first … first + n − 1 (first defaults to 0; rows may repeat; an offset into a row is a
   * subarray of A or B). The js backend accumulates in float64,
   * blas in float32 (`cblas_sdot`): the results agree to about d·2⁻²⁴·Σ|A_c B_c|.
   *
   * @example
   * ```ts
   * import { createJsBackend } from "./js.ts";
   * const la = createJsBackend();
   * const A = Float32Array.of(1, 2, 3, 4), B = Float32Array.of(1, 1, 0, 2), out = new Float64Array(2);
   * la.dotRows(A, 2, Int32Array.of(1, 0), B, 2, Int32Array.of(0, 1), 2, 2, out); // out = [7, 4]
   * ```
   */
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
    first?: number,
  ): void;
  /**
   * Row-indexed axpy: Y[yRows[k]·ldy + c] += alpha[k] · X[xRows[k]·ldx + c] for c < d, in order
   * k = first … first + n − 1 (first defaults to 0; repeated Y rows accumulate deterministically). Entries with alpha[k] = 0 are skipped.
   *
   * @example
   * ```ts
   * import { createJsBackend } from "./js.ts";
   * const la = createJsBackend();
   * const X = Float32Array.of(1, 2), Y = new Float32Array(4);
   * la.axpyRows(Float64Array.of(2, 1), X, 2, Int32Array.of(0, 0), Y, 2, Int32Array.of(1, 1), 2, 2); // Y = [0, 0, 3, 6]
   * ```
   */
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
    first?: number,
  ): void;
  /** In-place inverse of the n×n matrix A (LU with partial pivoting). Throws RangeError if singular. */
  dinvert(A: F64, n: number): void;
  /** Solves A X = B in place of B (A n×n, B n×k, both row-major); A is overwritten by its LU. Throws if singular. */
  dsolve(A: F64, n: number, B: F64, k: number): void;
  /**
   * In-place Cholesky factorisation A = L·Lᵀ of the symmetric positive definite n×n A (row-major, leading
   * dimension n). Only the lower triangle is read; L is written to the lower triangle, the strict upper
   * triangle is left as it was. Returns false (A's lower triangle then unspecified) when A is not
   * positive definite or holds a NaN.
   */
  dpotrf(A: F64, n: number): boolean;
  /**
   * Triangular solve with K right-hand sides, in place: B (N×K, ldb) ← alpha · op(L)⁻¹ · B, where L is
   * N×N lower-triangular with a non-unit diagonal (ldl; its strict upper triangle is not read) and
   * op(L) = Lᵀ when trans.
   */
  strsm(
    trans: boolean,
    N: number,
    K: number,
    alpha: number,
    L: F32,
    ldl: number,
    B: F32,
    ldb: number,
  ): void;
  /**
   * Optional: a zeroed float32 array on memory the backend's threads share (pool.ts). Calls whose operands
   * all live in such memory may be split across threads; a caller without it allocates plainly.
   */
  sharedF32?(n: number): Float32Array;
  /** Frees native resources. */
  close(): void;
}
