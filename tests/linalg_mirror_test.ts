/**
 * lib/linalg/mirror.ts: mirrorTriangle with OpenBLAS's omatcopy writes exactly what the plain loop writes
 * (check.ts mirrorLower, and its upper-to-lower twin here), for float32 and float64, orders around and
 * below the block width, row strides larger than the order; it writes nothing on the diagonal, in the
 * triangle it reads, or outside the N×N block. The syr2k calls that use it keep the plain loop's bits.
 */

import assert from "node:assert/strict";
import { mirrorLower } from "../lib/linalg/check.ts";
import { MIRROR_BLOCK, mirrorTriangle } from "../lib/linalg/mirror.ts";
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

Deno.test("mirrorTriangle: the blas backend's ssyr2k gives the plain loop's mirror of its lower triangle", () => {
  const la = blasOrSkip();
  if (!la) return;
  try {
    const rng = new Rng(11);
    for (const [N, K] of [[37, 5], [256, 64]]) {
      const A = Float32Array.from(values(rng, K * N)), B = Float32Array.from(values(rng, K * N));
      const C = new Float32Array(N * N), lowerOnly = new Float32Array(N * N);
      la.ssyr2k(true, N, K, 1, A, N, B, N, 0, C, N);
      // the lower triangle as OpenBLAS wrote it, mirrored by the plain loop
      for (let i = 0; i < N; i++) for (let j = 0; j <= i; j++) lowerOnly[i * N + j] = C[i * N + j];
      mirrorLower(lowerOnly, N, N);
      assert.deepEqual(C, lowerOnly, `N ${N}`);
    }
  } finally {
    la.close();
  }
});
