/**
 * The blas backend's LAPACK routines (dinvert, dsolve, dpotrf) on OpenBLAS's default thread count, called
 * on a thread with a 2 MiB stack: `deno test` runs a module on such a thread, as a Worker or an embedding
 * application may. OpenBLAS 0.3.21's threaded LU (getrf_parallel) recurses with a job array of about half a
 * MiB on the caller's stack per level; at n = 128 four levels overflowed the test thread (a SIGSEGV in
 * tests/layers_threads_test.ts, gdb: rsp 2.09 MiB below the thread's top). lib/linalg/blas.ts therefore
 * runs the LU on one OpenBLAS thread. A crash kills the test process; scripts/test_modules.ts then reports
 * this module as killed by SIGSEGV.
 *
 * Run: npx deno test -A tests/linalg_lapack_threads_test.ts
 */

import assert from "node:assert/strict";
import { openBlasBackend } from "../lib/linalg/blas.ts";
import { mulberry32 } from "../lib/core/rng.ts";
import type { LinAlgBackend } from "../lib/linalg/backend.ts";

const CI = Deno.env.get("CI") === "true";
let la: LinAlgBackend | null = null;
try {
  // threaded OpenBLAS is what this checks, whatever thread count the test runner gives the other modules
  Deno.env.set("FACTOROUT_THREADS", "2");
  la = openBlasBackend();
} catch (e) {
  if (CI) throw e;
  console.error(`linalg_lapack_threads_test: SKIPPED (not CI): ${(e as Error).message}`);
}
globalThis.addEventListener("unload", () => la?.close());

Deno.test({
  name:
    "dinvert, dsolve, dpotrf at n = 64 … 700 on the test thread, default threads: no crash, small residuals",
  ignore: la === null,
}, async () => {
  const rand = mulberry32(7);
  const out: { op: string; n: number; residual: number; threads: number }[] = [];
  const blas = la as LinAlgBackend & { threads: number };
  for (const n of [64, 200, 400, 700]) {
    // a well-conditioned non-symmetric A = I·n + noise, and its SPD companion AᵀA
    const A = new Float64Array(n * n);
    for (let i = 0; i < n * n; i++) A[i] = rand() - 0.5;
    for (let i = 0; i < n; i++) A[i * n + i] += n / 4;
    // after an await the test runs where it crashed before the fix (the sync start of a test did not)
    await new Promise((resolve) => setTimeout(resolve, 0));
    const inv = A.slice();
    blas.dinvert(inv, n);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += A[i * n + k] * inv[k * n + j];
        worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
      }
    }
    out.push({ op: "dinvert", n, residual: worst, threads: blas.threads });

    const B = new Float64Array(n * 3);
    for (let i = 0; i < B.length; i++) B[i] = rand() - 0.5;
    const X = B.slice(), Af = A.slice();
    blas.dsolve(Af, n, X, 3);
    worst = 0;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += A[i * n + k] * X[k * 3 + c];
        worst = Math.max(worst, Math.abs(s - B[i * 3 + c]));
      }
    }
    out.push({ op: "dsolve", n, residual: worst, threads: blas.threads });

    const S = new Float64Array(n * n);
    blas.dgemm(true, false, n, n, n, 1, A, n, A, n, 0, S, n);
    const L = S.slice();
    if (!blas.dpotrf(L, n)) throw new Error(`dpotrf refused an SPD ${n}x${n} matrix`);
    worst = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let k = 0; k <= j; k++) s += L[i * n + k] * L[j * n + k];
        worst = Math.max(worst, Math.abs(s - S[i * n + j]) / (1 + Math.abs(S[i * n + j])));
      }
    }
    out.push({ op: "dpotrf", n, residual: worst, threads: blas.threads });
  }

  assert.equal(out.length, 12);
  for (const r of out) {
    console.log(`${r.op} n=${r.n} threads=${r.threads}: residual ${r.residual.toExponential(2)}`);
    assert.ok(r.residual < 1e-9, `${r.op} n=${r.n}: residual ${r.residual}`);
  }
});
