/**
 * lib/linalg/syr2k.ts:
 * - mirrorTriangle with OpenBLAS's omatcopy writes exactly what the plain loop writes (check.ts
 *   mirrorLower, and its upper-to-lower twin here), for float32 and float64, orders around and below the
 *   block width, row strides larger than the order; nothing on the diagonal, in the triangle it reads, or
 *   outside the N×N block.
 * - syr2kBlock: the two row blocks write exactly the lower triangle (block 0 rows [0, N₁), block 1 the
 *   rest), nothing else, in either order with the same bits, and match α(AᵀB + BᵀA) + βC computed in
 *   float64 within float32 rounding, β ≠ 0 and strided operands included; the blas backend's ssyr2k is
 *   the two blocks and the mirror.
 */

import assert from "node:assert/strict";
import { mirrorLower } from "../lib/linalg/check.ts";
import {
  MIRROR_BLOCK,
  mirrorTriangle,
  syr2kBlock,
  syr2kSplitRow,
  type Syr2kSymbols,
} from "../lib/linalg/syr2k.ts";
import { openBlasBackend, SYMBOLS } from "../lib/linalg/blas.ts";
import { Rng } from "../lib/core/rng.ts";

const CI = Deno.env.get("CI") === "true";

/** OpenBLAS, or null (skipped, said on stderr) where it is missing outside CI; under CI=true it fails. */
function blasOrSkip() {
  try {
    return openBlasBackend();
  } catch (e) {
    if (CI) throw e;
    console.error(`linalg_mirror_test: SKIPPED (not CI): ${(e as Error).message}`);
    return null;
  }
}

/** Normal-ish values (a sum of uniforms), all distinct. */
function values(rng: Rng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => rng.next() + rng.next() - 1);
}

/** The reference for "upper": C[i][j] = C[j][i] for i > j, one element at a time. */
function mirrorUpperPlain(C: Float32Array | Float64Array, N: number, ldc: number): void {
  for (let i = 1; i < N; i++) for (let j = 0; j < i; j++) C[i * ldc + j] = C[j * ldc + i];
}

const ORDERS = [1, 2, MIRROR_BLOCK - 1, MIRROR_BLOCK, MIRROR_BLOCK + 1, 2 * MIRROR_BLOCK, 100, 257];

Deno.test("mirrorTriangle: the same bits as the plain loop, both directions, f32 and f64, strided", () => {
  const la = blasOrSkip();
  if (!la) return;
  const lib = Deno.dlopen(la.path, {
    cblas_somatcopy: SYMBOLS.cblas_somatcopy,
    cblas_domatcopy: SYMBOLS.cblas_domatcopy,
  });
  try {
    const rng = new Rng(7);
    for (const N of ORDERS) {
      for (const pad of [0, 3]) {
        const ldc = N + pad, rows = N + 2; // two rows past the block: must stay as they are
        for (const f64 of [false, true]) {
          for (const from of ["lower", "upper"] as const) {
            const C = f64 ? new Float64Array(rows * ldc) : new Float32Array(rows * ldc);
            // distinct values everywhere (negative zero and a NaN included: copied as they are)
            C.set(values(rng, C.length));
            C[N > 1 ? ldc : 0] = -0;
            if (N > 2) C[2 * ldc + 1] = NaN;
            const want = C.slice();
            if (from === "lower") mirrorLower(want, N, ldc);
            else mirrorUpperPlain(want, N, ldc);
            const transpose = f64 ? lib.symbols.cblas_domatcopy : lib.symbols.cblas_somatcopy;
            mirrorTriangle(transpose, C, N, ldc, from);
            for (let k = 0; k < C.length; k++) {
              assert(
                Object.is(C[k], want[k]),
                `N ${N}, ldc ${ldc}, ${f64 ? "f64" : "f32"}, from ${from}: element ${k} (row ${
                  Math.floor(k / ldc)
                }, col ${k % ldc}) is ${C[k]}, want ${want[k]}`,
              );
            }
          }
        }
      }
    }
  } finally {
    lib.close();
    la.close();
  }
});

Deno.test("ssyr2k (blas backend): the two blocks, mirrored as the plain loop mirrors", () => {
  const la = blasOrSkip();
  if (!la) return;
  const lib = Deno.dlopen(la.path, { cblas_sgemm: SYMBOLS.cblas_sgemm, cblas_ssyr2k: SYMBOLS.cblas_ssyr2k });
  const sym = lib.symbols as unknown as Syr2kSymbols;
  try {
    const rng = new Rng(11);
    for (const [N, K] of [[37, 5], [256, 64]]) {
      const A = Float32Array.from(values(rng, K * N)), B = Float32Array.from(values(rng, K * N));
      const C = new Float32Array(N * N), blocks = new Float32Array(N * N);
      la.ssyr2k(true, N, K, 1, A, N, B, N, 0, C, N);
      syr2kBlock(sym, 0, N, K, 1, A, N, B, N, 0, blocks, N);
      syr2kBlock(sym, 1, N, K, 1, A, N, B, N, 0, blocks, N);
      mirrorLower(blocks, N, N);
      assert.deepEqual(C, blocks, `N ${N}`);
    }
  } finally {
    lib.close();
    la.close();
  }
});

Deno.test("syr2kBlock: the lower triangle by blocks, nothing else written, α(AᵀB + BᵀA) + βC in float32", () => {
  const la = blasOrSkip();
  if (!la) return;
  const lib = Deno.dlopen(la.path, {
    cblas_sgemm: SYMBOLS.cblas_sgemm,
    cblas_ssyr2k: SYMBOLS.cblas_ssyr2k,
  });
  const sym = lib.symbols as unknown as Syr2kSymbols;
  try {
    const rng = new Rng(13);
    for (const N of [1, 20, 31, 32, 33, 64, 100, 257]) {
      const n1 = syr2kSplitRow(N);
      assert(n1 >= 0 && n1 < N && n1 % 16 === 0, `N ${N}: split row ${n1}`);
      if (N >= 32) assert(Math.abs(n1 * n1 - (N * N - n1 * n1)) <= 32 * N, `N ${N}: blocks of unequal size`);
      for (const K of [1, 7, 64]) {
        for (const [alpha, beta] of [[1, 0], [-0.5, 0.75]]) {
          const lda = N + 2, ldb = N + 5, ldc = N + 3;
          const A = Float32Array.from(values(rng, K * lda)), B = Float32Array.from(values(rng, K * ldb));
          const C0 = Float32Array.from(values(rng, N * ldc));
          const run = (order: (0 | 1)[]) => {
            const C = C0.slice();
            for (const b of order) syr2kBlock(sym, b, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return C;
          };
          const C = run([0, 1]);
          assert.deepEqual(run([1, 0]), C, `N ${N}, K ${K}: the blocks' order changed the bits`);
          const where = `N ${N}, K ${K}, α ${alpha}, β ${beta}`;
          for (let i = 0; i < N; i++) {
            for (let j = 0; j < ldc; j++) {
              const at = i * ldc + j;
              if (j > i || j >= N) {
                assert(Object.is(C[at], C0[at]), `${where}: (${i}, ${j}) outside the lower triangle written`);
                continue;
              }
              let sum = 0, mag = 0;
              for (let k = 0; k < K; k++) {
                const t = A[k * lda + i] * B[k * ldb + j] + B[k * ldb + i] * A[k * lda + j];
                sum += t;
                mag += Math.abs(A[k * lda + i] * B[k * ldb + j]) + Math.abs(B[k * ldb + i] * A[k * lda + j]);
              }
              const want = alpha * sum + beta * C0[at];
              const tol = 4e-7 * (Math.abs(alpha) * mag + Math.abs(beta * C0[at])) * (K + 2);
              assert(
                Math.abs(C[at] - want) <= tol,
                `${where}: (${i}, ${j}) is ${C[at]}, want ${want} ± ${tol}`,
              );
            }
          }
        }
      }
    }
  } finally {
    lib.close();
    la.close();
  }
});
