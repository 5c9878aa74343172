/**
 * Benchmark section "linalg": OpenBLAS sgemm throughput (GFLOP/s, 2·M·N·K flops per call) on the
 * shapes the output layers use, and its peak, against which the layers section reports its "fraction
 * of sgemm peak". Shapes, row-major, M×N×K (C is M×N):
 *
 * - factored layer: Ĥᵀ = H·Uᵀ is m×d×d (NT); the Q update's H·Hᵀ-type products are d×d×m.
 * - naive layer: O = H·Wᵀ is m×D×d (NT), ∇H = ∇O·W is m×d×D (NN), W −= η·∇Oᵀ·H is D×d×m (TN).
 * - a square 1024³ (2048³ is no faster on 2 cores) for the peak.
 *
 * The js backend is measured on the small shapes when `--backend js` is given.
 *
 * @module
 */

import type { LinAlgBackend } from "../lib/linalg/backend.ts";
import { createJsBackend } from "../lib/linalg/js.ts";
import { openBlasBackend } from "../lib/linalg/blas.ts";
import type { BenchOptions } from "./report.ts";
import { fmt, table } from "./report.ts";
import { Rng } from "../lib/core/rng.ts";

/** One sgemm measurement. */
export type GemmResult = {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  gflops: number;
  ms: number;
};

/**
 * Times `la.sgemm` on random M×N×K operands: one warm-up call, then calls until `minMs` has passed
 * (at least 3).
 *
 * @example
 * ```ts
 * import { measureSgemm } from "./linalg.ts";
 * import { createJsBackend } from "../lib/linalg/js.ts";
 * const r = measureSgemm(createJsBackend(), false, false, 64, 64, 64, 50);
 * console.log(r.gflops);
 * ```
 *
 * @param la the backend
 * @param transA whether A is stored K×M
 * @param transB whether B is stored N×K
 * @param M rows of C
 * @param N columns of C
 * @param K inner dimension
 * @param minMs how long to keep calling
 * @returns GFLOP/s and ms per call
 */
export function measureSgemm(
  la: LinAlgBackend,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  minMs: number,
): GemmResult {
  const A = new Float32Array(M * K), B = new Float32Array(K * N), C = new Float32Array(M * N);
  const rng = new Rng(0x9e3779b9);
  const fill = (x: Float32Array) => rng.fillUniform(x, 0.5);
  fill(A);
  fill(B);
  const lda = transA ? M : K, ldb = transB ? K : N;
  la.sgemm(transA, transB, M, N, K, 1, A, lda, B, ldb, 0, C, N);
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  while (calls < 3 || t - t0 < minMs) {
    la.sgemm(transA, transB, M, N, K, 1, A, lda, B, ldb, 0.5, C, N);
    calls++;
    t = performance.now();
  }
  const ms = (t - t0) / calls;
  return { transA, transB, M, N, K, ms, gflops: (2 * M * N * K) / (ms * 1e6) };
}

let bestPeak = 0;

/**
 * OpenBLAS single-precision peak on this machine: the best of a few large square and tall products.
 *
 * @example
 * ```ts
 * import { sgemmPeak } from "./linalg.ts";
 * import { openBlasBackend } from "../lib/linalg/blas.ts";
 * const la = openBlasBackend();
 * console.log(sgemmPeak(la, true));
 * la.close();
 * ```
 *
 * @param la an OpenBLAS backend
 * @param quick a shorter measurement
 * @returns GFLOP/s: the best of this and any earlier call in this process
 */
export function sgemmPeak(la: LinAlgBackend, quick: boolean): number {
  // the best seen in this process so far, so that sections run together share one (the highest) peak
  let best = bestPeak;
  const ms = quick ? 60 : 250, trials = quick ? 4 : 3;
  const shapes = quick ? [[1024, 1024, 1024]] : [[1024, 1024, 1024], [2048, 2048, 2048], [4096, 1024, 256]];
  // best of several short trials: other load on the machine only ever lowers a measurement
  for (const [M, N, K] of shapes) {
    for (let t = 0; t < trials; t++) {
      best = Math.max(best, measureSgemm(la, false, false, M, N, K, ms).gflops);
    }
  }
  bestPeak = best;
  return best;
}

type Shape = { what: string; transA: boolean; transB: boolean; M: number; N: number; K: number };

function shapes(quick: boolean): Shape[] {
  const out: Shape[] = [];
  const ds = quick ? [128, 256] : [128, 256, 300, 512];
  for (const d of ds) {
    for (const m of [1, 128]) {
      out.push({
        what: `factored Ĥᵀ = H·Uᵀ (d=${d}, m=${m})`,
        transA: false,
        transB: true,
        M: m,
        N: d,
        K: d,
      });
      if (m > 1) {
        out.push({ what: `factored Hᵀ·X (d=${d}, m=${m})`, transA: true, transB: false, M: d, N: d, K: m });
      }
    }
  }
  for (const [D, d] of quick ? [[10_000, 128]] : [[200_000, 256], [793_471, 300]]) {
    for (const m of quick ? [128] : [1, 128]) {
      out.push({
        what: `naive O = H·Wᵀ (D=${D}, d=${d}, m=${m})`,
        transA: false,
        transB: true,
        M: m,
        N: D,
        K: d,
      });
      out.push({
        what: `naive ∇H = ∇O·W (D=${D}, d=${d}, m=${m})`,
        transA: false,
        transB: false,
        M: m,
        N: d,
        K: D,
      });
      out.push({
        what: `naive W −= η∇Oᵀ·H (D=${D}, d=${d}, m=${m})`,
        transA: true,
        transB: false,
        M: D,
        N: d,
        K: m,
      });
    }
  }
  return out;
}

/**
 * Runs the section: a table of sgemm GFLOP/s per shape and backend, and the OpenBLAS peak.
 *
 * @example
 * ```ts
 * import { run } from "./linalg.ts";
 * console.log(await run({ backend: "blas", quick: true, log: console.error }));
 * ```
 *
 * @param opts the harness options
 * @returns the markdown block
 */
export function run(opts: BenchOptions): Promise<string> {
  const ms = opts.quick ? 80 : 300;
  const blas = openBlasBackend();
  try {
    opts.log(`linalg: OpenBLAS ${blas.version}, ${blas.threads} threads: measuring peak`);
    const peak = sgemmPeak(blas, opts.quick);
    const js = opts.backend === "js" ? createJsBackend() : null;
    const rows: string[][] = [];
    for (const s of shapes(opts.quick)) {
      const r = measureSgemm(blas, s.transA, s.transB, s.M, s.N, s.K, ms);
      const cells = [
        s.what,
        `${s.M}×${s.N}×${s.K}${s.transA ? " Aᵀ" : ""}${s.transB ? " Bᵀ" : ""}`,
        fmt(r.ms, 3),
        fmt(r.gflops, 3),
        `${fmt((100 * r.gflops) / peak, 2)}%`,
      ];
      if (js) {
        // the js backend only gets shapes it can do in well under a second
        const flops = 2 * s.M * s.N * s.K;
        cells.push(
          flops <= 2e9
            ? fmt(measureSgemm(js, s.transA, s.transB, s.M, s.N, s.K, ms).gflops, 3)
            : "skipped (> 2 GFLOP/call)",
        );
      }
      rows.push(cells);
      opts.log(`linalg: ${s.what}: ${fmt(r.gflops)} GFLOP/s`);
    }
    const head = ["product", "M×N×K", "OpenBLAS ms/call", "OpenBLAS GFLOP/s", "of peak"];
    if (js) head.push("js GFLOP/s");
    return Promise.resolve(
      `### OpenBLAS sgemm throughput\n\n**OpenBLAS sgemm peak: ${
        fmt(peak)
      } GFLOP/s** (best of several trials of ` +
        `large square/tall NN products, ${blas.threads} threads). Flops counted as 2·M·N·K. Load from other ` +
        `processes lowers every number; a share above 100% means the peak trials ran under more load than that row.\n\n` +
        table(head, rows),
    );
  } finally {
    blas.close();
  }
}
