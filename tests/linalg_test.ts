// Tests of the CPU linear-algebra backends (lib/linalg): js and blas against a naive float64 triple loop
// on random shapes, transposes, leading dimensions wider than the rows (subarray views at an offset),
// beta ≠ 0 and beta = 0 over NaN, both syr2k layouts, repeated scatter rows, singular matrices.
// Under CI=true a missing OpenBLAS fails the run instead of skipping the blas half.

import assert from "node:assert/strict";
import type { LinAlgBackend } from "../lib/linalg/backend.ts";
import { createJsBackend } from "../lib/linalg/js.ts";
import { openBlasBackend } from "../lib/linalg/blas.ts";
import { createBackend } from "../lib/linalg/select.ts";
import { BackendUnavailableError, UsageError } from "../lib/core/errors.ts";
import { mulberry32 as rng } from "../lib/core/rng.ts";

const CI = Deno.env.get("CI") === "true";

function loadBlas(): LinAlgBackend | null {
  try {
    return openBlasBackend();
  } catch (e) {
    if (CI) throw e;
    console.error(`linalg_test: blas half SKIPPED (not CI): ${(e as Error).message}`);
    return null;
  }
}

const blas = loadBlas();
const backends: LinAlgBackend[] = [createJsBackend(), ...(blas ? [blas] : [])];
globalThis.addEventListener("unload", () => blas?.close());

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;
type Arr = Float32Array | Float64Array;

/**
 * A rows×cols matrix with leading dimension ld, stored at a random offset inside a larger buffer
 * (so the backends get a subarray view). Returns the whole buffer and the view.
 */
function randMatrix(C: Ctor, rand: () => number, rows: number, cols: number, ld: number) {
  const off = Math.floor(rand() * 5);
  const need = rows === 0 ? 0 : (rows - 1) * ld + cols;
  const buf = new C(off + need + 3);
  for (let i = 0; i < buf.length; i++) buf[i] = rand() * 2 - 1;
  return { buf, view: buf.subarray(off, off + need), off };
}

const EPS = { f32: 1.2e-7, f64: 2.3e-16 };

/** |got - want| ≤ tol for every element, with a message naming where. */
function assertClose(got: Arr, want: Float64Array, tol: Float64Array | number, what: string) {
  for (let i = 0; i < want.length; i++) {
    const t = typeof tol === "number" ? tol : tol[i];
    const g = got[i], w = want[i];
    if (!(Math.abs(g - w) <= t) && !(Number.isNaN(g) && Number.isNaN(w))) {
      throw new Error(`${what}: element ${i}: got ${g}, want ${w} (tolerance ${t})`);
    }
  }
}

function gemmCase(
  la: LinAlgBackend,
  prec: "f32" | "f64",
  rand: () => number,
  forced?: Partial<Record<string, number | boolean>>,
) {
  const T: Ctor = prec === "f32" ? Float32Array : Float64Array;
  const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const transA = (forced?.transA as boolean | undefined) ?? rand() < 0.5;
  const transB = (forced?.transB as boolean | undefined) ?? rand() < 0.5;
  const M = (forced?.M as number | undefined) ?? pick(1, 37);
  const N = (forced?.N as number | undefined) ?? pick(1, 37);
  const K = (forced?.K as number | undefined) ?? pick(1, 37);
  const [ar, ac] = transA ? [K, M] : [M, K];
  const [br, bc] = transB ? [N, K] : [K, N];
  const lda = Math.max(1, ac) + pick(0, 3),
    ldb = Math.max(1, bc) + pick(0, 3),
    ldc = Math.max(1, N) + pick(0, 3);
  const A = randMatrix(T, rand, ar, ac, lda), B = randMatrix(T, rand, br, bc, ldb);
  const Cm = randMatrix(T, rand, M, N, ldc);
  const r = rand();
  const beta = (forced?.beta as number | undefined) ?? (r < 0.3 ? 0 : r < 0.5 ? 1 : rand() * 2 - 1);
  const alpha = rand() < 0.2 ? 1 : rand() * 4 - 2;
  if (beta === 0) { for (let i = 0; i < M; i++) Cm.view.fill(NaN, i * ldc, i * ldc + N); }
  // reference on the whole C buffer: padding between rows and around the view must be untouched
  const want = Float64Array.from(Cm.buf), tol = new Float64Array(want.length);
  const a = (i: number, p: number) => transA ? A.view[p * lda + i] : A.view[i * lda + p];
  const b = (p: number, j: number) => transB ? B.view[j * ldb + p] : B.view[p * ldb + j];
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0, sa = 0;
      for (let p = 0; p < K; p++) {
        s += a(i, p) * b(p, j);
        sa += Math.abs(a(i, p) * b(p, j));
      }
      const k = Cm.off + i * ldc + j, c0 = beta === 0 ? 0 : Cm.buf[k];
      want[k] = alpha * s + beta * c0;
      tol[k] = 4 * (K + 2) * EPS[prec] * (Math.abs(alpha) * sa + Math.abs(beta * c0)) + 1e-30;
    }
  }
  const desc =
    `${la.name} ${prec}gemm tA=${transA} tB=${transB} M=${M} N=${N} K=${K} lda=${lda} ldb=${ldb} ldc=${ldc} ` +
    `alpha=${alpha} beta=${beta}`;
  if (prec === "f32") {
    la.sgemm(
      transA,
      transB,
      M,
      N,
      K,
      alpha,
      A.view as Float32Array,
      lda,
      B.view as Float32Array,
      ldb,
      beta,
      Cm.view as Float32Array,
      ldc,
    );
  } else {
    la.dgemm(
      transA,
      transB,
      M,
      N,
      K,
      alpha,
      A.view as Float64Array,
      lda,
      B.view as Float64Array,
      ldb,
      beta,
      Cm.view as Float64Array,
      ldc,
    );
  }
  assertClose(Cm.buf, want, tol, desc);
}

for (const prec of ["f32", "f64"] as const) {
  Deno.test(`${prec === "f32" ? "sgemm" : "dgemm"}: random shapes, transposes, ld > width, beta = 0/1/other`, () => {
    for (const la of backends) {
      const rand = rng(prec === "f32" ? 1 : 2);
      for (let t = 0; t < 120; t++) gemmCase(la, prec, rand);
      // every transpose pair on fixed non-square shapes, and the degenerate ones
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          gemmCase(la, prec, rand, { transA, transB, M: 7, N: 3, K: 5, beta: 0.5 });
          gemmCase(la, prec, rand, { transA, transB, M: 1, N: 64, K: 33 });
          gemmCase(la, prec, rand, { transA, transB, M: 65, N: 1, K: 2 });
          gemmCase(la, prec, rand, { transA, transB, M: 3, N: 4, K: 0, beta: 0.25 });
          gemmCase(la, prec, rand, { transA, transB, M: 0, N: 4, K: 3 });
        }
      }
    }
  });
}

function gemvCase(la: LinAlgBackend, prec: "f32" | "f64", rand: () => number) {
  const T: Ctor = prec === "f32" ? Float32Array : Float64Array;
  const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const trans = rand() < 0.5, M = pick(1, 50), N = pick(1, 50), lda = N + pick(0, 4);
  const A = randMatrix(T, rand, M, N, lda);
  const nx = trans ? M : N, ny = trans ? N : M;
  const x = randMatrix(T, rand, 1, nx, nx), y = randMatrix(T, rand, 1, ny, ny);
  const r = rand(), beta = r < 0.3 ? 0 : r < 0.5 ? 1 : rand() * 2 - 1, alpha = rand() * 4 - 2;
  if (beta === 0) y.view.fill(NaN);
  const want = Float64Array.from(y.buf), tol = new Float64Array(want.length);
  for (let i = 0; i < ny; i++) {
    let s = 0, sa = 0;
    for (let j = 0; j < nx; j++) {
      const aij = trans ? A.view[j * lda + i] : A.view[i * lda + j];
      s += aij * x.view[j];
      sa += Math.abs(aij * x.view[j]);
    }
    const k = y.off + i, y0 = beta === 0 ? 0 : y.buf[k];
    want[k] = alpha * s + beta * y0;
    tol[k] = 4 * (nx + 2) * EPS[prec] * (Math.abs(alpha) * sa + Math.abs(beta * y0)) + 1e-30;
  }
  if (prec === "f32") {
    la.sgemv(
      trans,
      M,
      N,
      alpha,
      A.view as Float32Array,
      lda,
      x.view as Float32Array,
      beta,
      y.view as Float32Array,
    );
  } else {
    la.dgemv(
      trans,
      M,
      N,
      alpha,
      A.view as Float64Array,
      lda,
      x.view as Float64Array,
      beta,
      y.view as Float64Array,
    );
  }
  assertClose(
    y.buf,
    want,
    tol,
    `${la.name} ${prec}gemv trans=${trans} M=${M} N=${N} lda=${lda} beta=${beta}`,
  );
}

Deno.test("sgemv/dgemv: both transposes, ld > width, beta = 0 over NaN", () => {
  for (const la of backends) {
    const rand = rng(3);
    for (let t = 0; t < 80; t++) gemvCase(la, t % 2 ? "f32" : "f64", rand);
  }
});

Deno.test("sger: A += alpha·x yᵀ for random shapes, ld > width, elements past each row untouched, js = blas", () => {
  for (const la of backends) {
    const rand = rng(17);
    for (let t = 0; t < 60; t++) {
      const M = 1 + Math.floor(rand() * 40),
        N = 1 + Math.floor(rand() * 40),
        lda = N + Math.floor(rand() * 4);
      const A = Float32Array.from({ length: (M - 1) * lda + N + 2 }, () => rand() - 0.5);
      const x = Float32Array.from({ length: M }, () => rand() - 0.5);
      const y = Float32Array.from({ length: N }, () => rand() - 0.5);
      const alpha = t % 7 === 0 ? 0 : rand() * 2 - 1;
      const want = Float64Array.from(A);
      for (let r = 0; r < M; r++) for (let c = 0; c < N; c++) want[r * lda + c] += alpha * x[r] * y[c];
      const got = A.slice();
      la.sger(M, N, alpha, x, y, got, lda);
      assertClose(got, want, 4e-7, `${la.name} sger ${M}×${N} lda ${lda}`);
      for (let r = 0; r < M; r++) {
        for (let c = r * lda + N; c < Math.min(A.length, (r + 1) * lda); c++) {
          assertEquals(got[c], A[c], `${la.name} sger leaves ${c} alone`);
        }
      }
    }
    assertThrows(
      () => la.sger(3, 4, 1, new Float32Array(3), new Float32Array(4), new Float32Array(11), 4),
      RangeError,
      "A",
    );
    assertThrows(
      () => la.sger(3, 4, 1, new Float32Array(2), new Float32Array(4), new Float32Array(12), 4),
      RangeError,
      "x",
    );
  }
});

function syr2kCase(la: LinAlgBackend, prec: "f32" | "f64", trans: boolean, rand: () => number) {
  const T: Ctor = prec === "f32" ? Float32Array : Float64Array;
  const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const N = pick(1, 30), K = pick(1, 30);
  const [r, c] = trans ? [K, N] : [N, K];
  const lda = c + pick(0, 3), ldb = c + pick(0, 3), ldc = N + pick(0, 3);
  const A = randMatrix(T, rand, r, c, lda),
    B = randMatrix(T, rand, r, c, ldb),
    Cm = randMatrix(T, rand, N, N, ldc);
  // symmetric input C (the lower triangle is what both backends read)
  for (let i = 0; i < N; i++) for (let j = 0; j < i; j++) Cm.view[j * ldc + i] = Cm.view[i * ldc + j];
  const u = rand(), beta = u < 0.3 ? 0 : rand() * 2 - 1, alpha = rand() * 2 - 1;
  if (beta === 0) { for (let i = 0; i < N; i++) Cm.view.fill(NaN, i * ldc, i * ldc + N); }
  const opA = (i: number, p: number) => trans ? A.view[p * lda + i] : A.view[i * lda + p];
  const opB = (i: number, p: number) => trans ? B.view[p * ldb + i] : B.view[i * ldb + p];
  const want = Float64Array.from(Cm.buf), tol = new Float64Array(want.length);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0, sa = 0;
      for (let p = 0; p < K; p++) {
        const t = opA(i, p) * opB(j, p) + opB(i, p) * opA(j, p);
        s += t;
        sa += Math.abs(opA(i, p) * opB(j, p)) + Math.abs(opB(i, p) * opA(j, p));
      }
      const k = Cm.off + i * ldc + j, c0 = beta === 0 ? 0 : Cm.buf[k];
      want[k] = alpha * s + beta * c0;
      tol[k] = 4 * (2 * K + 2) * EPS[prec] * (Math.abs(alpha) * sa + Math.abs(beta * c0)) + 1e-30;
    }
  }
  if (prec === "f32") {
    la.ssyr2k(
      trans,
      N,
      K,
      alpha,
      A.view as Float32Array,
      lda,
      B.view as Float32Array,
      ldb,
      beta,
      Cm.view as Float32Array,
      ldc,
    );
  } else {
    la.dsyr2k(
      trans,
      N,
      K,
      alpha,
      A.view as Float64Array,
      lda,
      B.view as Float64Array,
      ldb,
      beta,
      Cm.view as Float64Array,
      ldc,
    );
  }
  const desc = `${la.name} ${prec}syr2k trans=${trans} N=${N} K=${K} beta=${beta}`;
  assertClose(Cm.buf, want, tol, desc);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < i; j++) {
      assertEquals(Cm.view[i * ldc + j], Cm.view[j * ldc + i], `${desc}: C not symmetric at ${i},${j}`);
    }
  }
}

/** One random dsyrk case on `la` against a direct float64 sum (C = alpha·op(A)op(A)ᵀ + beta·C). */
function syrkCase(la: LinAlgBackend, trans: boolean, rand: () => number): void {
  const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const N = pick(1, 30), K = pick(0, 30);
  const [r, c] = trans ? [K, N] : [N, K];
  const lda = Math.max(1, c + pick(0, 3)), ldc = N + pick(0, 3);
  const A = randMatrix(Float64Array, rand, r, c, lda), Cm = randMatrix(Float64Array, rand, N, N, ldc);
  for (let i = 0; i < N; i++) for (let j = 0; j < i; j++) Cm.view[j * ldc + i] = Cm.view[i * ldc + j];
  const beta = rand() < 0.3 ? 0 : rand() * 2 - 1, alpha = rand() * 2 - 1;
  if (beta === 0) { for (let i = 0; i < N; i++) Cm.view.fill(NaN, i * ldc, i * ldc + N); }
  const opA = (i: number, p: number) => trans ? A.view[p * lda + i] : A.view[i * lda + p];
  const want = Float64Array.from(Cm.buf), tol = new Float64Array(want.length);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0, sa = 0;
      for (let p = 0; p < K; p++) {
        s += opA(i, p) * opA(j, p);
        sa += Math.abs(opA(i, p) * opA(j, p));
      }
      const k = Cm.off + i * ldc + j, c0 = beta === 0 ? 0 : Cm.buf[k];
      want[k] = alpha * s + beta * c0;
      tol[k] = 4 * (K + 2) * EPS.f64 * (Math.abs(alpha) * sa + Math.abs(beta * c0)) + 1e-30;
    }
  }
  la.dsyrk(trans, N, K, alpha, A.view as Float64Array, lda, beta, Cm.view as Float64Array, ldc);
  const desc = `${la.name} dsyrk trans=${trans} N=${N} K=${K} beta=${beta}`;
  assertClose(Cm.buf, want, tol, desc);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < i; j++) {
      assertEquals(Cm.view[i * ldc + j], Cm.view[j * ldc + i], `${desc}: C not symmetric at ${i},${j}`);
    }
  }
}

Deno.test("dsyrk: both layouts, K = 0, both triangles written and equal, the upper triangle of C not read", () => {
  for (const la of backends) {
    const rand = rng(14);
    for (const trans of [false, true]) for (let t = 0; t < 30; t++) syrkCase(la, trans, rand);
    // only the lower triangle of C is read: garbage above it changes nothing
    const A = Float64Array.of(1, 2, 3, 4), C = Float64Array.of(1, 99, 2, 3);
    la.dsyrk(true, 2, 2, 1, A, 2, 1, C, 2);
    assertEquals(Array.from(C), [11, 16, 16, 23], la.name);
  }
});

Deno.test("ssyr2k/dsyr2k: both layouts, both triangles written and equal", () => {
  for (const la of backends) {
    const rand = rng(4);
    for (const prec of ["f32", "f64"] as const) {
      for (const trans of [false, true]) for (let t = 0; t < 20; t++) syr2kCase(la, prec, trans, rand);
    }
  }
});

Deno.test("gatherRows/scatterAddRows: repeated rows accumulate, other rows untouched, bad rows rejected", () => {
  for (const la of backends) {
    const rand = rng(5);
    for (const d of [1, 7, 256]) {
      const D = 50, n = 40;
      const table = Float32Array.from({ length: D * d }, () => rand() - 0.5);
      const rows = Int32Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 3 : Math.floor(rand() * D)));
      const out = new Float32Array(n * d).fill(NaN);
      la.gatherRows(table, d, rows, n, out);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < d; j++) {
          assertEquals(out[i * d + j], table[rows[i] * d + j], `${la.name} gather ${i},${j}`);
        }
      }
      const src = Float32Array.from({ length: n * d }, () => rand() - 0.5);
      const alpha = -0.75;
      const want = Float32Array.from(table); // sequential float32 accumulation, in order
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < d; j++) {
          want[rows[i] * d + j] = want[rows[i] * d + j] + Math.fround(alpha * src[i * d + j]);
        }
      }
      const got = Float32Array.from(table);
      la.scatterAddRows(got, d, rows, n - 1, src, alpha); // n-1: the last listed row must not be applied
      la.scatterAddRows(got, d, rows.subarray(n - 1), 1, src.subarray((n - 1) * d), alpha);
      assertClose(got, Float64Array.from(want), 1e-6, `${la.name} scatterAddRows d=${d}`);
      // row 3 appears ≥ 10 times: its change is the sum of those contributions
      let s = 0;
      for (let i = 0; i < n; i++) if (rows[i] === 3) s += alpha * src[i * d];
      assert(Math.abs(got[3 * d] - table[3 * d] - s) < 1e-5, `${la.name} repeated row 3 accumulates`);
      assertThrows(() => la.gatherRows(table, d, Int32Array.of(0, D), 2, out), RangeError, "rows[1]");
      assertThrows(() => la.scatterAddRows(got, d, Int32Array.of(-1), 1, src, 1), RangeError, "rows[0]");
      assertThrows(() => la.gatherRows(table, d, rows, n + 1, new Float32Array((n + 1) * d)), RangeError);
    }
  }
});

Deno.test("dotRows/axpyRows: strided rows with offsets, repeated rows in order, js = blas = naive loop, bad rows rejected", () => {
  for (const la of backends) {
    const rand = rng(11);
    for (const d of [1, 7, 31, 32, 256]) {
      const Ra = 30, lda = 4 * d + 3, Rb = 20, ldb = d + 5, n = 60, off = 2;
      const A = Float32Array.from({ length: Ra * lda }, () => rand() - 0.5);
      const B = Float32Array.from({ length: Rb * ldb }, () => rand() - 0.5);
      // row k of A (B) starts at off + aRows[k]·lda within A (B): the offset is a subarray
      const aRows = Int32Array.from(
        { length: n },
        (_, k) => (k % 5 === 0 ? 4 : Math.floor(rand() * (Ra - 1))),
      );
      const bRows = Int32Array.from({ length: n }, () => Math.floor(rand() * (Rb - 1)));
      const out = new Float64Array(n + 1).fill(NaN);
      la.dotRows(A.subarray(off), lda, aRows, B.subarray(off), ldb, bRows, n, d, out);
      for (let k = 0; k < n; k++) {
        let want = 0, mag = 0;
        for (let c = 0; c < d; c++) {
          const p = A[off + aRows[k] * lda + c] * B[off + bRows[k] * ldb + c];
          want += p;
          mag += Math.abs(p);
        }
        // float32 accumulation (blas) is within d·2⁻²⁴·Σ|a_c b_c| of the exact sum
        const tol = d * 6e-8 * mag + 1e-30;
        assert(Math.abs(out[k] - want) <= tol, `${la.name} dotRows d=${d} k=${k}: ${out[k]} vs ${want}`);
      }
      assert(Number.isNaN(out[n]), `${la.name} dotRows writes only n outputs`);

      // axpyRows: Y rows of A (repeated row 4) += alpha[k] · B rows, sequential float32 accumulation
      const alpha = Float64Array.from({ length: n }, (_, k) => (k % 7 === 3 ? 0 : rand() - 0.5));
      const want = Float32Array.from(A);
      for (let k = 0; k < n; k++) {
        if (alpha[k] === 0) continue;
        const a = Math.fround(alpha[k]);
        for (let c = 0; c < d; c++) {
          const y = off + aRows[k] * lda + c;
          want[y] = want[y] + Math.fround(a * B[off + bRows[k] * ldb + c]);
        }
      }
      const got = Float32Array.from(A);
      la.axpyRows(alpha, B.subarray(off), ldb, bRows, got.subarray(off), lda, aRows, n, d);
      assertClose(got, Float64Array.from(want), 1e-6, `${la.name} axpyRows d=${d}`);
      // elements outside the d used columns of each row are untouched
      for (let r = 0; r < Ra; r++) {
        for (let c = off + r * lda + d; c < Math.min(A.length, off + (r + 1) * lda); c++) {
          assertEquals(got[c], A[c], `${la.name} axpyRows leaves ${c} alone`);
        }
      }
      // the same call with float32 coefficients
      const got32 = Float32Array.from(A);
      la.axpyRows(
        Float32Array.from(alpha),
        B.subarray(off),
        ldb,
        bRows,
        got32.subarray(off),
        lda,
        aRows,
        n,
        d,
      );
      assertClose(got32, Float64Array.from(want), 1e-6, `${la.name} axpyRows f32 alpha d=${d}`);

      assertThrows(
        () => la.dotRows(A, lda, Int32Array.of(0, Ra), B, ldb, Int32Array.of(0, 0), 2, d, out),
        RangeError,
        "A row 30 (entry 1)",
      );
      assertThrows(
        () => la.axpyRows(alpha, B, ldb, Int32Array.of(-1), got, lda, Int32Array.of(0), 1, d),
        RangeError,
        "X row -1",
      );
      assertThrows(
        () => la.dotRows(A, d - 1, aRows, B, ldb, bRows, 1, d, out),
        RangeError,
        "leading dimension",
      );
      assertThrows(
        () => la.axpyRows(new Float64Array(1), B, ldb, bRows, got, lda, aRows, 2, d),
        RangeError,
        "alpha",
      );
      assertThrows(
        () => la.dotRows(A, lda, aRows, B, ldb, bRows, n, d, new Float64Array(n - 1)),
        RangeError,
        "out",
      );

      // `first`: entries first … first + n' − 1 only, the same values as the whole call gives them
      const part = new Float64Array(n + 1).fill(NaN);
      la.dotRows(A.subarray(off), lda, aRows, B.subarray(off), ldb, bRows, 17, d, part, 11);
      for (let k = 0; k <= n; k++) {
        if (k >= 11 && k < 28) assertEquals(part[k], out[k], `${la.name} dotRows first=11, entry ${k}`);
        else assert(Number.isNaN(part[k]), `${la.name} dotRows first=11 leaves entry ${k} alone`);
      }
      const gotA = Float32Array.from(A), gotB = Float32Array.from(A);
      // in chunks (as the factored step calls it, one example at a time) = in one call
      for (let k0 = 0; k0 < n; k0 += 7) {
        la.axpyRows(
          alpha,
          B.subarray(off),
          ldb,
          bRows,
          gotA.subarray(off),
          lda,
          aRows,
          Math.min(7, n - k0),
          d,
          k0,
        );
      }
      la.axpyRows(alpha, B.subarray(off), ldb, bRows, gotB.subarray(off), lda, aRows, n, d);
      assert(gotA.every((v, i) => v === gotB[i]), `${la.name} axpyRows in chunks = in one call`);
      assertThrows(
        () => la.dotRows(A, lda, aRows, B, ldb, bRows, 10, d, out, n - 5),
        RangeError,
        "exceed",
      );
      assertThrows(
        () => la.axpyRows(alpha, B, ldb, Int32Array.of(0, 0, -1), got, lda, Int32Array.of(0, 0, 0), 1, d, 2),
        RangeError,
        "X row -1 (entry 2)",
      );
    }
  }
});

function randWellConditioned(n: number, rand: () => number): Float64Array {
  const A = Float64Array.from({ length: n * n }, () => rand() * 2 - 1);
  for (let i = 0; i < n; i++) A[i * n + i] += n * (rand() < 0.5 ? -1 : 1); // diagonally dominant, both signs
  // shuffle rows so pivoting has work to do
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    for (let c = 0; c < n; c++) [A[i * n + c], A[j * n + c]] = [A[j * n + c], A[i * n + c]];
  }
  return A;
}

Deno.test("dinvert/dsolve: residuals, js and blas agree, pivoting needed", () => {
  const rand = rng(6);
  for (const n of [1, 2, 3, 5, 17, 64]) {
    const A = randWellConditioned(n, rand);
    const invs: Float64Array[] = [];
    for (const la of backends) {
      const X = Float64Array.from(A);
      la.dinvert(X, n);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < n; p++) s += A[i * n + p] * X[p * n + j];
          assert(
            Math.abs(s - (i === j ? 1 : 0)) < 1e-12 * n,
            `${la.name} dinvert n=${n}: (A·A⁻¹)[${i},${j}] = ${s}`,
          );
        }
      }
      invs.push(X);
      for (const k of [1, 3, n + 2]) {
        const B = Float64Array.from({ length: n * k }, () => rand() - 0.5);
        const X2 = Float64Array.from(B), LU = Float64Array.from(A);
        la.dsolve(LU, n, X2, k);
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < k; c++) {
            let s = 0;
            for (let p = 0; p < n; p++) s += A[i * n + p] * X2[p * k + c];
            assert(
              Math.abs(s - B[i * k + c]) < 1e-12 * n,
              `${la.name} dsolve n=${n} k=${k}: residual at ${i},${c}`,
            );
          }
        }
      }
    }
    if (invs.length === 2) assertClose(invs[1], invs[0], 1e-12, `js vs blas dinvert n=${n}`);
  }
  // a matrix that needs a row swap at step 0 (zero leading pivot)
  for (const la of backends) {
    const A = Float64Array.of(0, 1, 1, 0);
    la.dinvert(A, 2);
    assertEquals(Array.from(A, (v) => v + 0), [0, 1, 1, 0]); // + 0 maps -0 to 0
  }
});

Deno.test("dinvert/dsolve: singular and NaN matrices are rejected with RangeError", () => {
  const rand = rng(7);
  const n = 6;
  const cases: [string, Float64Array][] = [];
  cases.push(["zero matrix", new Float64Array(n * n)]);
  const dup = randWellConditioned(n, rand);
  for (let c = 0; c < n; c++) dup[4 * n + c] = dup[1 * n + c];
  cases.push(["repeated row", dup]);
  const sum = Float64Array.from({ length: n * n }, () => Math.floor(rand() * 9) - 4);
  for (let c = 0; c < n; c++) sum[5 * n + c] = sum[0 * n + c] + 2 * sum[2 * n + c];
  cases.push(["row = row0 + 2·row2 (integers)", sum]);
  // rank 3 as a float product: pivots of order ε, caught by the n·ε·max|A| tolerance
  const X = Float64Array.from({ length: n * 3 }, () => rand() - 0.5),
    Y = Float64Array.from({ length: 3 * n }, () => rand() - 0.5);
  const low = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) for (let p = 0; p < 3; p++) low[i * n + j] += X[i * 3 + p] * Y[p * n + j];
  }
  cases.push(["rank 3 product", low]);
  const nan = randWellConditioned(n, rand);
  nan[7] = NaN;
  cases.push(["NaN entry", nan]);
  for (const la of backends) {
    for (const [what, A] of cases) {
      assertThrows(
        () => la.dinvert(Float64Array.from(A), n),
        RangeError,
        undefined,
        `${la.name} dinvert: ${what}`,
      );
      assertThrows(
        () => la.dsolve(Float64Array.from(A), n, new Float64Array(n * 2), 2),
        RangeError,
        undefined,
        `${la.name} dsolve: ${what}`,
      );
    }
  }
});

Deno.test("dpotrf/strsm: L·Lᵀ = A, triangular solves in both orientations, js and blas agree", () => {
  const rand = rng(9);
  for (const n of [1, 2, 5, 17, 64, 130]) {
    // A = I + BᵀB/n: symmetric positive definite, condition number a few units
    const B0 = Float64Array.from({ length: n * n }, () => rand() * 2 - 1);
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let v = i === j ? 1 : 0;
        for (let p = 0; p < n; p++) v += (B0[p * n + i] * B0[p * n + j]) / n;
        A[i * n + j] = v;
      }
    }
    const Ls: Float64Array[] = [];
    for (const la of backends) {
      const L = Float64Array.from(A);
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) L[i * n + j] = 777; // not read
      assert(la.dpotrf(L, n), `${la.name} dpotrf n=${n}: positive definite`);
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          assert(L[i * n + j] === 777, `${la.name} dpotrf wrote above the diagonal`);
        }
        for (let j = 0; j <= i; j++) {
          let v = 0;
          for (let p = 0; p <= j; p++) v += L[i * n + p] * L[j * n + p];
          assert(Math.abs(v - A[i * n + j]) < 1e-13 * n, `${la.name} dpotrf n=${n}: (LLᵀ)[${i},${j}] = ${v}`);
        }
      }
      Ls.push(L);
      // strsm: X = alpha·op(L)⁻¹ B with B at an offset, ldb > K, against float64 substitution
      const L32 = Float32Array.from(L);
      for (const trans of [false, true]) {
        const K = 1 + Math.floor(rand() * 9), ldb = K + 3, alpha = 0.75;
        const { buf, view, off } = randMatrix(Float32Array, rand, n, K, ldb) as {
          buf: Float32Array;
          view: Float32Array;
          off: number;
        };
        const before = Float32Array.from(buf);
        la.strsm(trans, n, K, alpha, L32, n, view, ldb);
        // check op(L)·X = alpha·B in float64 from the float32 L
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < K; c++) {
            let v = 0, mag = 0;
            for (let p = 0; p < n; p++) {
              const l = trans ? (p >= i ? L32[p * n + i] : 0) : (p <= i ? L32[i * n + p] : 0);
              v += l * view[p * ldb + c];
              mag += Math.abs(l * view[p * ldb + c]);
            }
            const want = alpha * before[off + i * ldb + c];
            assert(
              Math.abs(v - want) <= 1e-5 * (mag + Math.abs(want)) + 1e-30,
              `${la.name} strsm trans=${trans} n=${n}: residual at ${i},${c}: ${v} vs ${want}`,
            );
          }
          // columns between K and ldb untouched
          for (let c = K; c < ldb && off + i * ldb + c < buf.length; c++) {
            assert(
              Object.is(buf[off + i * ldb + c], before[off + i * ldb + c]),
              `${la.name} strsm wrote past K`,
            );
          }
        }
      }
    }
    if (Ls.length === 2) {
      const lower = (L: Float64Array) => L.map((v, k) => (k % n <= Math.floor(k / n) ? v : 0));
      assertClose(lower(Ls[1]), lower(Ls[0]), 1e-12, `js vs blas dpotrf n=${n}`);
    }
  }
  // not positive definite, and NaN: false
  for (const la of backends) {
    assert.equal(la.dpotrf(Float64Array.of(1, 2, 2, 1), 2), false, `${la.name}: indefinite`);
    assert.equal(la.dpotrf(Float64Array.of(0, 0, 0, 1), 2), false, `${la.name}: singular`);
    assert.equal(la.dpotrf(Float64Array.of(1, 0, NaN, 1), 2), false, `${la.name}: NaN`);
    assert.equal(la.dpotrf(Float64Array.of(4, 99, 2, 5), 2), true, `${la.name}: upper triangle ignored`);
  }
});

Deno.test("argument checks: short arrays and bad leading dimensions raise RangeError before native code", () => {
  for (const la of backends) {
    const a = new Float32Array(6), b = new Float32Array(6), c = new Float32Array(4);
    assertThrows(
      () => la.sgemm(false, false, 2, 2, 3, 1, a, 3, b.subarray(1), 2, 0, c, 2),
      RangeError,
      "B has 5 elements",
    );
    assertThrows(
      () => la.sgemm(false, false, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2),
      RangeError,
      "leading dimension of A",
    );
    assertThrows(
      () => la.sgemm(false, false, 3, 2, 2, 1, a, 2, b, 2, 0, c, 2),
      RangeError,
      "C has 4 elements",
    );
    assertThrows(() => la.sgemv(false, 2, 3, 1, a, 3, new Float32Array(2), 0, c), RangeError, "x has 2");
    assertThrows(
      () =>
        la.dsyr2k(true, 3, 2, 1, new Float64Array(5), 3, new Float64Array(6), 3, 0, new Float64Array(9), 3),
      RangeError,
      "A has 5",
    );
    assertThrows(
      () => la.dsyrk(true, 3, 2, 1, new Float64Array(5), 3, 0, new Float64Array(9), 3),
      RangeError,
      "A has 5",
    );
    assertThrows(() => la.dinvert(new Float64Array(3), 2), RangeError, "A has 3");
    assertThrows(() => la.dsolve(new Float64Array(4), 2, new Float64Array(3), 2), RangeError, "B has 3");
    assertThrows(() => la.sgemm(false, false, -1, 2, 2, 1, a, 2, b, 2, 0, c, 2), RangeError, "M must be");
    assertThrows(() => la.dpotrf(new Float64Array(3), 2), RangeError, "A has 3");
    assertThrows(
      () => la.strsm(false, 2, 3, 1, new Float32Array(3), 2, new Float32Array(6), 3),
      RangeError,
      "L has 3",
    );
    assertThrows(
      () => la.strsm(true, 2, 3, 1, new Float32Array(4), 2, new Float32Array(6), 2),
      RangeError,
      "leading dimension of B",
    );
  }
});

Deno.test("createBackend: logs which backend runs; auto falls back only outside CI; bad path names the fix", async () => {
  const lines: string[] = [];
  const js = await createBackend("js", { log: (l) => lines.push(l) });
  assertEquals(js.name, "js");
  assert(/linear algebra backend = js/.test(lines[0]), lines[0]);
  js.close();

  const bad = "/nonexistent/libopenblas.so.0";
  const e = assertThrows(() => openBlasBackend(bad), BackendUnavailableError);
  assert(
    (e as Error).message.includes(bad) &&
      (e as Error).message.includes("apt-get install libopenblas0-pthread"),
    (e as Error).message,
  );
  await assertRejectsAsync(
    () => createBackend("blas", { openblasPath: bad, log: () => {} }),
    BackendUnavailableError,
  );

  const prevCI = Deno.env.get("CI");
  try {
    Deno.env.set("CI", "false");
    lines.length = 0;
    const fb = await createBackend("auto", { openblasPath: bad, log: (l) => lines.push(l) });
    assertEquals(fb.name, "js");
    assert(lines.length === 1 && /backend = js \(fallback: .*nonexistent/.test(lines[0]), lines.join("\n"));
    Deno.env.set("CI", "true");
    await assertRejectsAsync(
      () => createBackend("auto", { openblasPath: bad, log: () => {} }),
      BackendUnavailableError,
    );
  } finally {
    if (prevCI === undefined) Deno.env.delete("CI");
    else Deno.env.set("CI", prevCI);
  }
  await assertRejectsAsync(() => createBackend("cuda" as "js"), Error);
  // a FACTOROUT_SPLIT or FACTOROUT_POOL_HOLD other than 0 or 1, or a FACTOROUT_THREADS that is not a
  // positive integer, is a usage error, also under auto outside CI (no fallback to js)
  for (const name of ["FACTOROUT_SPLIT", "FACTOROUT_POOL_HOLD", "FACTOROUT_THREADS"]) {
    const prev = Deno.env.get(name), prevCI = Deno.env.get("CI");
    Deno.env.set(name, "yes");
    Deno.env.set("CI", "false");
    try {
      const e = await assertRejectsAsync(() => createBackend("auto", { log: () => {} }), UsageError);
      assert((e as Error).message.includes(name), (e as Error).message);
    } finally {
      if (prev === undefined) Deno.env.delete(name);
      else Deno.env.set(name, prev);
      if (prevCI === undefined) Deno.env.delete("CI");
      else Deno.env.set("CI", prevCI);
    }
  }

  if (blas) {
    lines.length = 0;
    const b = await createBackend("auto", { log: (l) => lines.push(l) });
    assertEquals(b.name, "blas");
    assert(
      /linear algebra backend = blas \(OpenBLAS [0-9.]+, \/.*libopenblas\.so\.0, \d+ threads(, [^)]*)?\)/
        .test(
          lines[0],
        ),
      lines[0],
    );
    b.close();
    assertThrows(
      () =>
        b.sgemm(
          false,
          false,
          1,
          1,
          1,
          1,
          new Float32Array(1),
          1,
          new Float32Array(1),
          1,
          0,
          new Float32Array(1),
          1,
        ),
      Error,
      "closed",
    );
  } else {
    assert(!CI, "CI=true requires OpenBLAS");
  }
});

function assertEquals(got: unknown, want: unknown, msg?: string) {
  assert.deepEqual(got, want, msg);
}

/** Runs fn, asserting that it throws an instance of cls whose message includes `includes`; returns the error. */
function assertThrows(
  fn: () => unknown,
  cls: new (...a: never[]) => Error,
  includes?: string,
  msg?: string,
): Error {
  try {
    fn();
  } catch (e) {
    const where = msg ? `${msg}: ` : "";
    assert(
      e instanceof cls,
      `${where}expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`,
    );
    if (includes !== undefined) {
      assert(e.message.includes(includes), `${where}message "${e.message}" lacks "${includes}"`);
    }
    return e;
  }
  throw new Error(`${msg ? `${msg}: ` : ""}expected ${cls.name} to be thrown`);
}

async function assertRejectsAsync(
  fn: () => Promise<unknown>,
  cls: new (...a: never[]) => Error,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof cls, `expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    return e;
  }
  throw new Error(`expected a rejection with ${cls.name}`);
}

Deno.test({
  name: "createBackend: at 2 threads the step is split by default, FACTOROUT_SPLIT=0 leaves it to OpenBLAS",
  ignore: !blas,
  fn: async () => {
    // the thread count is OpenBLAS's, fixed when the library loads: each case runs in its own process
    const probe = `
      import { createBackend } from "${new URL("../lib/linalg/select.ts", import.meta.url).href}";
      import { isPooled } from "${new URL("../lib/linalg/pool.ts", import.meta.url).href}";
      const lines = [];
      const la = await createBackend("blas", { log: (l) => lines.push(l) });
      console.log(JSON.stringify({ pooled: isPooled(la), line: lines[0] }));
      la.close();`;
    const cases: [Record<string, string>, boolean, RegExp][] = [
      [{ FACTOROUT_THREADS: "2" }, true, /2 threads, the factored step split across them \(the default/],
      [
        { FACTOROUT_THREADS: "2", FACTOROUT_SPLIT: "0" },
        false,
        /OpenBLAS's own threading \(FACTOROUT_SPLIT=0\)/,
      ],
      [{ FACTOROUT_THREADS: "3" }, false, /OpenBLAS's own threading \(the default above 2 threads\)/],
      [{ FACTOROUT_THREADS: "3", FACTOROUT_SPLIT: "1" }, true, /split across them \(FACTOROUT_SPLIT=1\)/],
      [{ FACTOROUT_THREADS: "1" }, false, /1 threads\)$/],
    ];
    for (const [env, pooled, line] of cases) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", probe],
        env: { FACTOROUT_SPLIT: "", ...env },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim();
      assert(out.success, new TextDecoder().decode(out.stderr));
      const got = JSON.parse(text);
      assertEquals(got.pooled, pooled, `${JSON.stringify(env)}: ${got.line}`);
      assert(line.test(got.line), `${JSON.stringify(env)}: ${got.line}`);
    }
  },
});

Deno.test({
  name:
    "createBackend: on the split path OpenBLAS's own threads sleep after a call (OPENBLAS_THREAD_TIMEOUT), unless set",
  ignore: !blas,
  fn: async () => {
    // OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when it loads: each case in its own process. The probe runs one
    // call on OpenBLAS's own threads (not on the pool's shared memory), then sleeps 300 ms and counts the
    // CPU clock ticks the process used meanwhile: an OpenBLAS thread left polling (2^28 cycles, ≈ 0.1 s)
    // uses about ten; one that sleeps, none.
    const probe = `
      import { createBackend } from "${new URL("../lib/linalg/select.ts", import.meta.url).href}";
      import { openBlasBackend } from "${new URL("../lib/linalg/blas.ts", import.meta.url).href}";
      // PROBE_BEFORE: OpenBLAS opened earlier in the process, by createBackend or directly, closed or kept
      const before = Deno.env.get("PROBE_BEFORE") ?? "";
      const earlier = before.startsWith("create") ? await createBackend("blas", { log: () => {} })
        : before.startsWith("direct") ? openBlasBackend() : undefined;
      if (before.endsWith("closed")) earlier.close();
      const lines = [];
      const la = await createBackend("blas", { log: (l) => lines.push(l) });
      // what the loaded OpenBLAS itself read (the library is open, so this shares its load)
      const own = Deno.dlopen(la.path, { openblas_thread_timeout: { parameters: [], result: "i32" } });
      const loaded = own.symbols.openblas_thread_timeout();
      own.close();
      const n = 512, A = new Float32Array(n * n).fill(0.5), C = new Float32Array(n * n);
      la.sgemm(false, false, n, n, n, 1, A, n, A, n, 0, C, n);
      const ticks = () => Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ").slice(11, 13)
        .reduce((s, x) => s + Number(x), 0);
      const t0 = ticks();
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      console.log(JSON.stringify({ ticks: ticks() - t0, env: Deno.env.get("OPENBLAS_THREAD_TIMEOUT") ?? null, line: lines[0], loaded }));
      la.close();
      if (before.endsWith("kept")) earlier.close();`;
    // unset: the probe starts without the variable (Deno.Command cannot unset one it would inherit)
    const run = async (env: Record<string, string>, unset = false) => {
      const inherited = Deno.env.get("OPENBLAS_THREAD_TIMEOUT");
      if (unset) Deno.env.delete("OPENBLAS_THREAD_TIMEOUT");
      try {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["eval", probe],
          env: {
            FACTOROUT_SPLIT: "",
            PROBE_BEFORE: "",
            ...(unset ? {} : { OPENBLAS_THREAD_TIMEOUT: "" }),
            ...env,
          },
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert(out.success, new TextDecoder().decode(out.stderr));
        return JSON.parse(new TextDecoder().decode(out.stdout).trim()) as {
          ticks: number;
          env: string | null;
          line: string;
          loaded: number;
        };
      } finally {
        if (unset && inherited !== undefined) Deno.env.set("OPENBLAS_THREAD_TIMEOUT", inherited);
      }
    };
    const split = await run({ FACTOROUT_THREADS: "2" }, true);
    assert(/sleep right after a call \(OPENBLAS_THREAD_TIMEOUT=4\)\)$/.test(split.line), split.line);
    assertEquals(split.loaded, 4, "the loaded OpenBLAS read the timeout");
    assert(split.ticks <= 3, `OpenBLAS's threads used ${split.ticks} ticks after the call`);
    assertEquals(split.env, null, "set only around the load, so that child processes do not inherit it");
    // a user's empty value is left as it was (and taken as unset: the split's timeout applies)
    const empty = await run({ FACTOROUT_THREADS: "2" });
    assertEquals(empty.env, "", "the user's empty OPENBLAS_THREAD_TIMEOUT should be restored, not deleted");
    assertEquals(empty.loaded, 4);
    // OpenBLAS loaded earlier in the process: closed, the next open loads it afresh and the timeout applies;
    // kept open, the open shares that load and the log must not claim a timeout it did not read
    for (const before of ["create-closed", "direct-closed", "direct-kept"]) {
      const got = await run({ FACTOROUT_THREADS: "2", PROBE_BEFORE: before });
      const applied = before !== "direct-kept";
      assertEquals(got.loaded, applied ? 4 : 0, `${before}: the timeout OpenBLAS read`);
      assertEquals(/OPENBLAS_THREAD_TIMEOUT=4/.test(got.line), applied, `${before}: ${got.line}`);
    }
    // the guess follows OpenBLAS's own count (atoi; capped at the cores; GOTO_ and OMP_NUM_THREADS after
    // OPENBLAS_NUM_THREADS): wherever the split runs, its timeout applies
    const counts = {
      FACTOROUT_THREADS: "",
      OPENBLAS_NUM_THREADS: "",
      GOTO_NUM_THREADS: "",
      OMP_NUM_THREADS: "",
    };
    for (
      const env of [
        { OPENBLAS_NUM_THREADS: String(navigator.hardwareConcurrency + 2) },
        { OPENBLAS_NUM_THREADS: "2.5" },
        { OPENBLAS_NUM_THREADS: "0", OMP_NUM_THREADS: "2" },
        { GOTO_NUM_THREADS: "2" },
      ]
    ) {
      const got = await run({ ...counts, ...env });
      if (/split across them/.test(got.line)) {
        assertEquals(got.loaded, 4, `${JSON.stringify(env)}: ${got.line}`);
      }
    }
    // the user's value wins (and OpenBLAS's default, 28, leaves its thread polling: the measure can fail)
    // (up to three probes: on a machine whose cores other jobs hold, one 300 ms window can miss the
    // polling thread; a thread that sleeps shows no ticks in any)
    const userTicks: number[] = [];
    for (let i = 0; i < 3 && !(Math.max(0, ...userTicks) >= 2); i++) {
      const user = await run({ FACTOROUT_THREADS: "2", OPENBLAS_THREAD_TIMEOUT: "28" });
      assertEquals(user.env, "28");
      assert(!/OPENBLAS_THREAD_TIMEOUT/.test(user.line), user.line);
      userTicks.push(user.ticks);
    }
    assert(Math.max(...userTicks) >= 2, `a polling OpenBLAS thread used only ${userTicks.join(", ")} ticks`);
    // OpenBLAS's own threading (FACTOROUT_SPLIT=0) and one thread keep OpenBLAS's default
    const others: Record<string, string>[] = [{ FACTOROUT_THREADS: "2", FACTOROUT_SPLIT: "0" }, {
      FACTOROUT_THREADS: "1",
    }];
    for (const env of others) {
      const got = await run(env);
      assert(!/OPENBLAS_THREAD_TIMEOUT/.test(got.line), got.line);
    }
  },
});
