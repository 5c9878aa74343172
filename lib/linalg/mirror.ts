/**
 * Mirroring one triangle of a square matrix onto the other with OpenBLAS's out-of-place transpose
 * (`cblas_somatcopy` / `cblas_domatcopy`), for the syr2k calls of the factored update (Q's increment
 * Hᵀ R + Rᵀ H is computed as one triangle and used whole).
 *
 * The plain loop (check.ts `mirrorLower`, the reference) writes down a column of the other triangle for
 * each row it reads, one strided store at a time; at the step's d = 256 it took longer than a sixth of the
 * syr2k it follows. Here the triangle is cut into column blocks of {@link MIRROR_BLOCK}: each block's
 * rectangle off the diagonal is transposed by one native call, and only the small triangles on the
 * diagonal stay in JavaScript. It copies the same values to the same places: the result is the same bits
 * (tests/linalg_mirror_test.ts). BENCHMARKS.md ("The update's tail") has the measurement.
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
 * import { MIRROR_BLOCK } from "./mirror.ts";
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
 * import { mirrorTriangle } from "./mirror.ts";
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
