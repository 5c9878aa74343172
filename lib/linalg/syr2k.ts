/**
 * The float32 symmetric rank-2k update C = α(Aᵀ B + Bᵀ A) + βC of the factored update (Q's increment
 * Hᵀ R + Rᵀ H, d×d from m×d operands) in the native calls both the blas backend (blas.ts `ssyr2k`) and the
 * pool's step kernel (lib/output/factored/step_kernel.ts UPD_TAIL) make, so that they give the same bits:
 *
 * - **Two row blocks.** The lower triangle is cut at row {@link syr2kSplitRow} (about N/√2, where the two
 *   halves hold as many elements): block 0 is the triangle of rows [0, N₁) (one `cblas_ssyr2k`), block 1
 *   the rows [N₁, N): the rectangle left of the diagonal (two `cblas_sgemm`) and the triangle on it (one
 *   `cblas_ssyr2k`). On one thread this costs what one `cblas_ssyr2k` of order N costs; on two, each
 *   block runs on its own thread.
 * - **The mirror.** The lower triangle is then copied onto the upper one with OpenBLAS's out-of-place
 *   transpose (`cblas_somatcopy`, `cblas_domatcopy`) in column blocks of {@link MIRROR_BLOCK}: the plain
 *   loop (check.ts `mirrorLower`, the reference) writes one strided element at a time and took longer than
 *   a sixth of the syr2k it follows at d = 256. It copies the same values to the same places.
 *
 * The blocks round differently from one `cblas_ssyr2k` of order N (within float32 rounding; the layer's
 * bars against the naive layer hold, tests/layers_f32_test.ts); every thread count makes the same calls.
 * BENCHMARKS.md ("The update's tail on two threads") has the measurements.
 *
 * @module
 */

/** A bound `cblas_somatcopy` or `cblas_domatcopy` (blas.ts SYMBOLS): B ← α·op(A). */
export type OmatcopyFn = (
  order: number,
  trans: number,
  rows: number,
  cols: number,
  alpha: number,
  A: AllowSharedBufferSource,
  lda: number,
  B: AllowSharedBufferSource,
  ldb: number,
) => void;

const ROW_MAJOR = 101, TRANS = 112;

/**
 * Width of the column blocks (a block's diagonal triangle is copied in JavaScript, the rest by one call).
 *
 * @example
 * ```ts
 * import { MIRROR_BLOCK } from "./syr2k.ts";
 * console.log(MIRROR_BLOCK); // 16
 * ```
 */
export const MIRROR_BLOCK = 16;

/**
 * Copies one triangle of the N×N matrix C (row stride ldc) onto the other: `from = "lower"` writes the
 * strict upper triangle from the lower one (C[j][i] = C[i][j] for i > j), `"upper"` the reverse. The
 * diagonal and everything outside the N×N block are left alone.
 *
 * @example
 * ```ts
 * import { openBlasBackend, SYMBOLS } from "./blas.ts";
 * import { mirrorTriangle } from "./syr2k.ts";
 * const la = openBlasBackend();
 * const lib = Deno.dlopen(la.path, { cblas_somatcopy: SYMBOLS.cblas_somatcopy });
 * const C = Float32Array.of(1, 0, 2, 3);
 * mirrorTriangle(lib.symbols.cblas_somatcopy, C, 2, 2, "lower");
 * console.log(C); // Float32Array(4) [ 1, 2, 2, 3 ]
 * lib.close();
 * la.close();
 * ```
 *
 * @param transpose `cblas_somatcopy` for a Float32Array, `cblas_domatcopy` for a Float64Array
 * @param C the matrix (row-major)
 * @param N its order
 * @param ldc stride of its rows (≥ N)
 * @param from the triangle that is read
 */
export function mirrorTriangle(
  transpose: OmatcopyFn,
  C: Float32Array | Float64Array,
  N: number,
  ldc: number,
  from: "lower" | "upper",
): void {
  const lower = from === "lower";
  for (let j0 = 0; j0 < N; j0 += MIRROR_BLOCK) {
    const j1 = Math.min(N, j0 + MIRROR_BLOCK);
    // the diagonal block's triangle
    for (let i = j0 + 1; i < j1; i++) {
      const ri = i * ldc;
      if (lower) { for (let j = j0; j < i; j++) C[j * ldc + i] = C[ri + j]; }
      else for (let j = j0; j < i; j++) C[ri + j] = C[j * ldc + i];
    }
    if (j1 === N) break;
    // the rectangle below the block (rows j1..N, columns j0..j1) and the one right of it (rows j0..j1,
    // columns j1..N) are each other's transpose: one is read, the other written
    const below = C.subarray(j1 * ldc + j0), right = C.subarray(j0 * ldc + j1);
    if (lower) transpose(ROW_MAJOR, TRANS, N - j1, j1 - j0, 1, below, ldc, right, ldc);
    else transpose(ROW_MAJOR, TRANS, j1 - j0, N - j1, 1, right, ldc, below, ldc);
  }
}

/** The native calls of a syr2k block (blas.ts SYMBOLS, bound by the caller). */
export type Syr2kSymbols = {
  cblas_sgemm(...a: (number | AllowSharedBufferSource)[]): void;
  cblas_ssyr2k(...a: (number | AllowSharedBufferSource)[]): void;
};

const NO_TRANS = 111, LOWER = 122;

/**
 * The row where the lower triangle of an order-N syr2k is cut into its two blocks: N/√2 rounded to a
 * multiple of 16 (the two blocks then hold about as many elements), 0 below N = 32 (one block).
 *
 * @example
 * ```ts
 * import { syr2kSplitRow } from "./syr2k.ts";
 * console.log(syr2kSplitRow(256), syr2kSplitRow(300), syr2kSplitRow(20)); // 176 208 0
 * ```
 *
 * @param N the order
 * @returns N₁, in [0, N)
 */
export function syr2kSplitRow(N: number): number {
  return N < 32 ? 0 : Math.min(N - 1, Math.round(N / Math.SQRT2 / 16) * 16);
}

/**
 * One row block of the lower triangle of C = α(Aᵀ B + Bᵀ A) + βC (A, B K×N row-major, C N×N): block 0
 * the rows [0, N₁), block 1 the rows [N₁, N) ({@link syr2kSplitRow}). Only the block's part of the lower
 * triangle is read (β ≠ 0) and written. The two blocks write disjoint memory and may run at once.
 *
 * @example
 * ```ts
 * import { openBlasBackend, SYMBOLS } from "./blas.ts";
 * import { syr2kBlock, type Syr2kSymbols } from "./syr2k.ts";
 * const la = openBlasBackend();
 * const lib = Deno.dlopen(la.path, { cblas_sgemm: SYMBOLS.cblas_sgemm, cblas_ssyr2k: SYMBOLS.cblas_ssyr2k });
 * const sym = lib.symbols as unknown as Syr2kSymbols;
 * const A = Float32Array.of(1, 2), B = Float32Array.of(3, 4), C = new Float32Array(4); // K = 1, N = 2
 * syr2kBlock(sym, 0, 2, 1, 1, A, 2, B, 2, 0, C, 2);
 * syr2kBlock(sym, 1, 2, 1, 1, A, 2, B, 2, 0, C, 2);
 * console.log(C); // Float32Array(4) [ 6, 0, 10, 16 ]
 * lib.close();
 * la.close();
 * ```
 *
 * @param sym `cblas_sgemm` and `cblas_ssyr2k`
 * @param block 0 or 1
 * @param N order of C
 * @param K rows of A and B
 * @param alpha α
 * @param A K×N (stride lda)
 * @param lda stride of A's rows
 * @param B K×N (stride ldb)
 * @param ldb stride of B's rows
 * @param beta β
 * @param C N×N (stride ldc)
 * @param ldc stride of C's rows
 */
export function syr2kBlock(
  sym: Syr2kSymbols,
  block: 0 | 1,
  N: number,
  K: number,
  alpha: number,
  A: Float32Array,
  lda: number,
  B: Float32Array,
  ldb: number,
  beta: number,
  C: Float32Array,
  ldc: number,
): void {
  const n1 = syr2kSplitRow(N), n2 = N - n1;
  if (block === 0) {
    if (n1 > 0) sym.cblas_ssyr2k(ROW_MAJOR, LOWER, TRANS, n1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (n1 > 0) {
    // rows [n1, N), columns [0, n1): α(A[:, n1:]ᵀ B[:, :n1] + B[:, n1:]ᵀ A[:, :n1]) + βC
    const rect = C.subarray(n1 * ldc);
    sym.cblas_sgemm(
      ROW_MAJOR,
      TRANS,
      NO_TRANS,
      n2,
      n1,
      K,
      alpha,
      A.subarray(n1),
      lda,
      B,
      ldb,
      beta,
      rect,
      ldc,
    );
    sym.cblas_sgemm(ROW_MAJOR, TRANS, NO_TRANS, n2, n1, K, alpha, B.subarray(n1), ldb, A, lda, 1, rect, ldc);
  }
  sym.cblas_ssyr2k(
    ROW_MAJOR,
    LOWER,
    TRANS,
    n2,
    K,
    alpha,
    A.subarray(n1),
    lda,
    B.subarray(n1),
    ldb,
    beta,
    C.subarray(n1 * ldc + n1),
    ldc,
  );
}
