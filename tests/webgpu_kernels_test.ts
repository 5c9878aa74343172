/**
 * The WebGPU building blocks against plain references: every gemm variant (transposes, 32/64 tiles,
 * offsets, alpha/beta, split-K partials reduced in order), the Gauss–Jordan block inverse and its guard,
 * and the host-side batch packing (merge of repeats, row CSR, chunk ranges).
 */

import assert from "node:assert/strict";
import { BackendUnavailableError } from "../lib/core/errors.ts";
import { PackedBatch } from "../lib/output/webgpu/batch.ts";
import { requestWebGpuDevice, type WebGpuContext } from "../lib/output/webgpu/device.ts";
import { createJsBackend } from "../lib/linalg/js.ts";
import { packStep } from "../lib/output/webgpu/kernels/common.ts";
import { REDUCE_PARTS_WGSL } from "../lib/output/webgpu/kernels/dense.ts";
import { gemmGrid, type GemmParams, gemmWgsl, packGemm } from "../lib/output/webgpu/kernels/gemm.ts";
import { inverseWgsl, woodburyRoundWgsl } from "../lib/output/webgpu/kernels/inverse.ts";
import { Runner } from "../lib/output/webgpu/runner.ts";
import { rng } from "./webgpu_reference.ts";

let context: WebGpuContext | undefined;
try {
  context = await requestWebGpuDevice({ log: () => {} });
} catch (e) {
  if (!(e instanceof BackendUnavailableError) || Deno.env.get("CI") === "true") throw e;
  console.error(`webgpu kernel tests skipped (not under CI): ${e.message}`);
}
const opts = { ignore: !context, sanitizeResources: false, sanitizeOps: false };

/** The plain reference: alpha·op(A)op(B) + beta·C0 in float64. */
function refGemm(
  tA: boolean,
  tB: boolean,
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  B: Float32Array,
  alpha: number,
  beta: number,
  C0: Float32Array,
) {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let t = 0;
      for (let k = 0; k < K; k++) {
        t += (tA ? A[k * M + i] : A[i * K + k]) * (tB ? B[j * K + k] : B[k * N + j]);
      }
      C[i * N + j] = alpha * t + beta * C0[i * N + j];
    }
  }
  return C;
}

Deno.test(
  "webgpu gemm: every transpose/tile variant, edges, offsets, alpha/beta against the reference",
  opts,
  async () => {
    const r = new Runner(context!.device);
    const flag = r.storage("flag", 16);
    r.write(flag, new Uint32Array(4));
    const rand = rng(3);
    let n = 0;
    try {
      for (const tile of [32, 64] as const) {
        for (const tA of [false, true]) {
          for (const tB of [false, true]) {
            for (const [M, N, K] of [[37, 70, 45], [130, 3, 65], [1, 1, 17], [64, 64, 16]]) {
              const off = 5;
              const A = new Float32Array(M * K).map(() => rand() - 0.5),
                B = new Float32Array(K * N).map(() => rand() - 0.5);
              const C0 = new Float32Array(M * N).map(() => rand());
              const a = r.storage("a", (A.length + off) * 4),
                b = r.storage("b", B.length * 4),
                c = r.storage("c", C0.length * 4);
              r.write(a, A, off * 4);
              r.write(b, B);
              r.write(c, C0);
              const p: GemmParams = {
                M,
                N,
                K,
                lda: tA ? M : K,
                ldb: tB ? K : N,
                ldc: N,
                offA: off,
                alpha: 0.5,
                beta: 2,
              };
              const pipe = r.pipeline(`g${tA}${tB}${tile}`, () => gemmWgsl(tA, tB, tile));
              const key = `${n++}`;
              r.dispatch(
                pipe,
                r.group(key, pipe, [a, b, c, r.uniform(key, packGemm(p)), flag]),
                ...gemmGrid(p, tile),
              );
              const C = new Float32Array(await r.read(c, 0, C0.length * 4));
              const want = refGemm(tA, tB, M, N, K, A, B, 0.5, 2, C0);
              for (let i = 0; i < want.length; i++) {
                assert.ok(
                  Math.abs(C[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])),
                  `tile ${tile} tA ${tA} tB ${tB} ${M}×${N}×${K} [${i}]`,
                );
              }
              for (const x of [a, b, c]) r.release(x);
            }
          }
        }
      }
    } finally {
      r.destroy();
    }
  },
);

Deno.test("webgpu gemm: split-K partials reduced in order equal the unsplit product", opts, async () => {
  const r = new Runner(context!.device);
  const rand = rng(4);
  try {
    const M = 20, N = 30, K = 1000, kLen = 96, Z = Math.ceil(K / kLen);
    const A = new Float32Array(M * K).map(() => rand() - 0.5),
      B = new Float32Array(K * N).map(() => rand() - 0.5);
    const a = r.storage("a", A.length * 4), b = r.storage("b", B.length * 4);
    const parts = r.storage("parts", Z * M * N * 4),
      out = r.storage("out", M * N * 4),
      flag = r.storage("flag", 16);
    r.write(a, A);
    r.write(b, B);
    r.write(flag, new Uint32Array(4));
    const p: GemmParams = { M, N, K, lda: K, ldb: N, ldc: N, kLen, strideZ: M * N };
    const pipe = r.pipeline("gNN", () => gemmWgsl(false, false, 32));
    r.dispatch(
      pipe,
      r.group("g", pipe, [a, b, parts, r.uniform("g", packGemm(p)), flag]),
      ...gemmGrid(p, 32),
    );
    const red = r.pipeline("red", () => REDUCE_PARTS_WGSL);
    const ru = r.uniform("red", new Uint32Array([0, 0, 0, 0, Z, M * N, 0, 0]).buffer);
    r.dispatch(red, r.group("red", red, [parts, out, ru]), Math.ceil((M * N) / 256));
    const C = new Float32Array(await r.read(out, 0, M * N * 4));
    const want = refGemm(false, false, M, N, K, A, B, 1, 0, new Float32Array(M * N));
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(C[i] - want[i]) <= 1e-4, `[${i}] ${C[i]} vs ${want[i]}`);
    }
  } finally {
    r.destroy();
  }
});

Deno.test(
  "webgpu inverse: I + C inverted in one workgroup; a non-positive pivot sets the flag with the step",
  opts,
  async () => {
    const r = new Runner(context!.device);
    const rand = rng(6);
    try {
      const n = 40;
      const C = new Float32Array(n * n).map(() => (rand() - 0.5) * 0.1);
      const cb = r.storage("c", n * n * 4), out = r.storage("out", n * n * 4), flag = r.storage("flag", 16);
      const st = r.uniform(
        "st",
        packStep({
          m: 0,
          n: 0,
          nU: 0,
          d: 0,
          offExOff: 0,
          offEntEx: 0,
          offEntRow: 0,
          offSorted: 0,
          offRowOff: 0,
          offChunk: 0,
          slot: 0,
          stepNo: 17,
          eta: 0,
          D: 1,
          eps: 0,
          za: 0,
          zb: 0,
        }),
      );
      r.write(cb, C);
      r.write(flag, new Uint32Array(4));
      const pipe = r.pipeline("inv", () => inverseWgsl(64));
      r.dispatch(
        pipe,
        r.group("inv", pipe, [cb, out, flag, r.uniform("p", new Uint32Array([n, 0, 0, 0]).buffer), st]),
        1,
      );
      const [inv, fl] = await r.readMany([[out, 0, n * n * 4], [flag, 0, 8]]);
      const S = Float64Array.from(C, (v, t) => v + (Math.floor(t / n) === t % n ? 1 : 0));
      const la = createJsBackend();
      const want = Float64Array.from(S);
      la.dinvert(want, n);
      const got = Float64Array.from(new Float32Array(inv));
      for (let i = 0; i < n * n; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5, `[${i}]`);
      const P = new Float64Array(n * n);
      la.dgemm(false, false, n, n, n, 1, S, n, got, n, 0, P, n);
      for (let i = 0; i < n; i++) assert.ok(Math.abs(P[i * n + i] - 1) <= 1e-5);
      assert.deepEqual(Array.from(new Uint32Array(fl)), [0, 0]);
      // I + C with C = −1.5 e₀e₀ᵀ has pivot −0.5: refused, flagged with the step number
      const bad = new Float32Array(n * n);
      bad[0] = -1.5;
      r.write(cb, bad);
      r.dispatch(
        pipe,
        r.group("inv", pipe, [cb, out, flag, r.uniform("p", new Uint32Array([n, 0, 0, 0]).buffer), st]),
        1,
      );
      assert.deepEqual(Array.from(new Uint32Array(await r.read(flag, 0, 8))), [1, 17]);
    } finally {
      r.destroy();
    }
  },
);

Deno.test("webgpu batch packing: repeats merged per example, rows sorted, CSR over unique rows, chunk ranges", () => {
  const p = new PackedBatch();
  // example 0: rows 9, 2, 9 (9 repeated); example 1: row 2; example 2: rows 5, 0
  p.pack(
    {
      offsets: Int32Array.of(0, 3, 4, 6),
      indices: Int32Array.of(9, 2, 9, 2, 5, 0),
      values: Float32Array.of(1, 2, 0.5, 3, 4, 5),
    },
    4,
    3,
  );
  assert.equal(p.m, 3);
  assert.equal(p.n, 5);
  assert.equal(p.nU, 4);
  const o = p.off, bi = p.bi;
  assert.deepEqual(Array.from(bi.subarray(o.exOff, o.exOff + 4)), [0, 2, 3, 5]);
  assert.deepEqual(Array.from(bi.subarray(o.entRow, o.entRow + 5)), [2, 9, 2, 0, 5]);
  assert.deepEqual(Array.from(bi.subarray(o.entEx, o.entEx + 5)), [0, 0, 1, 2, 2]);
  assert.deepEqual(Array.from(p.entY.subarray(0, 5)), [2, 1.5, 3, 5, 4]);
  // sorted by (row, entry): row 0 → e3; row 2 → e0, e2; row 5 → e4; row 9 → e1
  assert.deepEqual(Array.from(bi.subarray(o.sorted, o.sorted + 5)), [3, 0, 2, 4, 1]);
  assert.deepEqual(Array.from(bi.subarray(o.rowOff, o.rowOff + 5)), [0, 1, 3, 4, 5]);
  // chunks of 4 rows: [0,4) has rows 0, 2 (3 entries); [4,8) row 5; [8,12) row 9
  assert.deepEqual(Array.from(bi.subarray(o.chunk, o.chunk + 12)), [0, 3, 0, 2, 3, 4, 2, 3, 4, 5, 3, 4]);
  assert.deepEqual(p.chunkEntries, [3, 1, 1]);
  assert.deepEqual(p.chunkRows, [2, 1, 1]);
});

Deno.test("webgpu: the device reported no validation or memory errors during these tests", opts, () => {
  assert.deepEqual(context!.errors, []);
});

Deno.test(
  "webgpu woodburyRound: Z = (I − R X_kᵀ)⁻¹ R in one workgroup (a partial block, an X offset) and its guard",
  opts,
  async () => {
    const r = new Runner(context!.device);
    const rand = rng(8);
    try {
      const MB = 16, n = 11, d = 37, m = 29, r0 = 13;
      const R = new Float32Array(n * d).map(() => (rand() - 0.5) * 0.2);
      const X = new Float32Array(m * d).map(() => (rand() - 0.5) * 0.2);
      const rb = r.storage("r", R.length * 4), xb = r.storage("x", X.length * 4);
      const zb = r.storage("z", n * d * 4), flag = r.storage("flag", 16);
      const st = r.uniform(
        "st",
        packStep({
          m: 0,
          n: 0,
          nU: 0,
          d: 0,
          offExOff: 0,
          offEntEx: 0,
          offEntRow: 0,
          offSorted: 0,
          offRowOff: 0,
          offChunk: 0,
          slot: 0,
          stepNo: 23,
          eta: 0,
          D: 1,
          eps: 0,
          za: 0,
          zb: 0,
        }),
      );
      r.write(rb, R);
      r.write(xb, X);
      r.write(flag, new Uint32Array(4));
      const pipe = r.pipeline("wr", () => woodburyRoundWgsl(MB));
      const params = r.uniform("p", new Uint32Array([n, d, r0 * d, 0]).buffer);
      r.dispatch(pipe, r.group("wr", pipe, [rb, xb, zb, flag, params, st]), 1);
      const [z, fl] = await r.readMany([[zb, 0, n * d * 4], [flag, 0, 8]]);
      // reference in float64: S = I − R X_kᵀ, Z = S⁻¹ R
      const la = createJsBackend();
      const S = new Float64Array(n * n);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let k = 0; k < d; k++) acc += R[i * d + k] * X[(r0 + j) * d + k];
          S[i * n + j] = (i === j ? 1 : 0) - acc;
        }
      }
      la.dinvert(S, n);
      const want = new Float64Array(n * d);
      la.dgemm(false, false, n, d, n, 1, S, n, Float64Array.from(R), d, 0, want, d);
      const got = new Float32Array(z);
      for (let i = 0; i < n * d; i++) {
        assert.ok(Math.abs(got[i] - want[i]) <= 1e-5, `Z[${i}] ${got[i]} vs ${want[i]}`);
      }
      assert.deepEqual(Array.from(new Uint32Array(fl)), [0, 0]);
      // R X_kᵀ with a 1.5 on the diagonal: pivot −0.5, refused and flagged with the step number
      const R2 = new Float32Array(n * d), X2 = new Float32Array(m * d);
      R2[0] = 1.5;
      X2[r0 * d] = 1;
      r.write(rb, R2);
      r.write(xb, X2);
      r.dispatch(pipe, r.group("wr", pipe, [rb, xb, zb, flag, params, st]), 1);
      assert.deepEqual(Array.from(new Uint32Array(await r.read(flag, 0, 8))), [1, 23]);
    } finally {
      r.destroy();
    }
  },
);
