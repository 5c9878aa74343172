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
import { UsageError } from "../lib/core/errors.ts";
import { type FlagSpec, HELP_FLAG, helpText, parseFlags } from "../lib/core/cli.ts";
import { exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { createPooledBackend } from "../lib/linalg/pool.ts";
import { POOL_SPLIT, type SplitOp, splits } from "../lib/linalg/pool_split.ts";

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

/** One pooled call measured both ways (bench/linalg.ts --pool). */
export type PoolSplitRow = {
  op: SplitOp;
  what: string;
  size: number;
  oneUs: number;
  splitUs: number;
  splitNow: boolean;
};

/**
 * The split decisions' micro-benchmark (`deno run -A bench/linalg.ts --pool`): each call the factored
 * step makes on the pooled backend, at the step's shapes for each (m, d), timed on one thread (its
 * lib/linalg/pool_split.ts row set to Infinity) and split (set to 0), alternately in short rounds with
 * the workers held awake (pool.ts `hold`, as during a step); the best round of each. The row "split now"
 * says what the table POOL_SPLIT decides at that size.
 *
 * @example
 * ```ts ignore
 * const rows = measurePoolSplits([[64, 257]], 50);
 * ```
 *
 * @param shapes (m, d) pairs
 * @param roundMs milliseconds per round and path
 * @param rounds rounds per path
 * @returns one row per call and shape
 */
export function measurePoolSplits(shapes: [number, number][], roundMs = 40, rounds = 5): PoolSplitRow[] {
  const base = openBlasBackend();
  if (base.threads < 2) {
    base.close();
    throw new UsageError("bench/linalg.ts --pool needs at least 2 OpenBLAS threads (FACTOROUT_THREADS ≥ 2)");
  }
  // the split itself is measured: the workers must not stand down in a busy minute (stand_down.ts)
  const la = createPooledBackend(base, base.threads, { standDown: false });
  const rng = new Rng(0x5eed);
  const filled = (n: number, scale = 0.1) => {
    const x = la.sharedF32(n);
    rng.fillUniform(x, scale);
    return x;
  };
  const out: PoolSplitRow[] = [];
  try {
    for (const [m, d] of shapes) {
      const dd = d * d, K = 8, D = 50_000, nnz = m * K;
      const H = filled(m * d),
        St = filled(3 * dd),
        P = filled(m * 4 * d),
        A = filled(m * d),
        B = filled(m * d);
      const ES = filled(2 * m * m), T = filled(2 * dd), R = filled(m * d), Mi = filled(m * m);
      const StAcc = filled(6 * dd), V = filled(D * d, 0.01), out2 = new Float64Array(nnz);
      // a well-conditioned lower triangle for strsm (unit diagonal plus small entries)
      const L = la.sharedF32(m * m);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < i; j++) L[i * m + j] = 0.01 * Math.sin(i + j);
        L[i * m + i] = 1;
      }
      const alpha4 = Float64Array.of(1e-6, -1e-6, 1e-6, -1e-6), x4 = Int32Array.of(0, 1, 0, 1);
      const y4 = Int32Array.of(0, 1, 2, 3);
      const sets = Array.from({ length: 8 }, () => {
        const idx = Int32Array.from({ length: nnz }, () => rng.int(D));
        const ex = Int32Array.from({ length: nnz }, (_, k) => Math.floor(k / K));
        return { idx, ex, coef: new Float64Array(nnz).fill(1e-6) };
      });
      let s = 0;
      const calls: { op: SplitOp; what: string; size: number; f: () => void }[] = [
        {
          op: "gemm",
          what: `forward H·[U;Q;U⁻ᵀ]ᵀ ${m}×${3 * d}×${d} NT`,
          size: 2 * m * 3 * d * d,
          f: () => la.sgemm(false, true, m, 3 * d, d, 1, H, d, St, d, 0, P.subarray(d), 4 * d),
        },
        {
          op: "gemm",
          what: `B = A·U ${m}×${d}×${d} NN`,
          size: 2 * m * dd,
          f: () => la.sgemm(false, false, m, d, d, 1, A, d, St, d, 0, B, d),
        },
        {
          op: "gemm",
          what: `Gram [X';H]·Hᵀ ${2 * m}×${m}×${d} NT`,
          size: 2 * 2 * m * m * d,
          f: () => la.sgemm(false, true, 2 * m, m, d, 1, P, d, H, d, 0, ES, m),
        },
        {
          op: "gemm",
          what: `U, U⁻ᵀ update [Zn, Ĥ]ᵀ·GH ${2 * d}×${d}×${m} TN`,
          size: 2 * 2 * dd * m,
          f: () => la.sgemm(true, false, 2 * d, d, m, 1, P, 4 * d, H, d, 0, T, d),
        },
        {
          op: "gemm",
          what: `R += M·H ${m}×${d}×${m} NN`,
          size: 2 * m * d * m,
          f: () => la.sgemm(false, false, m, d, m, 1e-3, Mi, m, H, d, 1, R, d),
        },
        {
          op: "strsm",
          what: `Woodbury solve, order ${m}, ${d} columns (×2)`,
          size: m * m * d,
          f: () => {
            la.strsm(false, m, d, 1, L, m, P, 4 * d);
            la.strsm(true, m, d, 1, L, m, P, 4 * d);
          },
        },
        {
          op: "syr2k",
          what: `Q update Hᵀ·R + Rᵀ·H, order ${d}, K = ${m}`,
          size: 2 * dd * m,
          f: () => la.ssyr2k(true, d, m, 1, H, d, R, d, 0, T, d),
        },
        {
          op: "saxpy",
          what: `state update, 4 rows of ${dd}`,
          size: 4 * dd,
          f: () => la.axpyRows(alpha4, T, dd, x4, StAcc, dd, y4, 4, dd),
        },
        {
          op: "scatter",
          what: `V update, ${nnz} random rows of ${d} (axpyRows)`,
          size: nnz * d,
          f: () => {
            const q = sets[s++ & 7];
            la.axpyRows(q.coef, P, 4 * d, q.ex, V, d, q.idx, nnz, d);
          },
        },
        {
          op: "dots",
          what: `target dots, ${nnz} random rows of ${d} (dotRows)`,
          size: nnz * d,
          f: () => {
            const q = sets[s++ & 7];
            la.dotRows(V, d, q.idx, P, 4 * d, q.ex, nnz, d, out2);
          },
        },
      ];
      for (const c of calls) {
        const keep = POOL_SPLIT[c.op];
        const time = (min: number) => {
          POOL_SPLIT[c.op] = min;
          let n = 0;
          const t0 = performance.now();
          let t = t0;
          while (n < 3 || t - t0 < roundMs) {
            c.f();
            n++;
            t = performance.now();
          }
          return ((t - t0) * 1000) / n;
        };
        let one = Infinity, split = Infinity;
        la.hold();
        try {
          time(0), time(Infinity); // warm-up of both paths
          for (let r = 0; r < rounds; r++) {
            one = Math.min(one, time(Infinity));
            split = Math.min(split, time(0));
          }
        } finally {
          la.release();
          POOL_SPLIT[c.op] = keep;
        }
        out.push({
          op: c.op,
          what: c.what,
          size: c.size,
          oneUs: one,
          splitUs: split,
          splitNow: splits(c.op, c.size),
        });
      }
    }
  } finally {
    la.close();
  }
  return out;
}

/**
 * The rows of {@link measurePoolSplits} as a markdown table.
 *
 * @example
 * ```ts
 * import { poolSplitTable } from "./linalg.ts";
 * console.log(poolSplitTable([{ op: "gemm", what: "x", size: 1, oneUs: 2, splitUs: 1, splitNow: true }]));
 * ```
 *
 * @param rows measured rows
 * @returns the table
 */
export function poolSplitTable(rows: PoolSplitRow[]): string {
  return table(
    ["call", "table row", "size", "1 thread µs", "split µs", "split / 1 thread", "split now"],
    rows.map((r) => [
      r.what,
      r.op,
      fmt(r.size, 3),
      fmt(r.oneUs, 3),
      fmt(r.splitUs, 3),
      fmt(r.splitUs / r.oneUs, 2),
      r.splitNow ? "yes" : "no",
    ]),
  );
}

/** The flags of `deno run -A bench/linalg.ts --pool` (the section itself runs under bench/main.ts). */
const POOL_FLAGS: Record<string, FlagSpec> = {
  pool: {
    type: "boolean",
    default: false,
    help: "time the pool's split decisions (lib/linalg/pool_split.ts)",
  },
  quick: { type: "boolean", default: false, help: "one shape (64x257), fewer rounds" },
  shapes: {
    type: "string",
    help:
      "the (m, d) pairs, comma-separated mxd (default: 32x257,64x257,128x256,128x300,256x256; --quick 64x257)",
  },
  help: HELP_FLAG,
};

if (import.meta.main) {
  await runCommand("bench/linalg", () => {
    const f = parseFlags(Deno.args, POOL_FLAGS);
    if (f.help) {
      console.log(helpText(
        "npx deno run -A bench/linalg.ts --pool [--quick] [--shapes 64x257,...]",
        POOL_FLAGS,
        exitCodesHelp(),
        "The pool's split decisions; the linalg section of the benchmarks is `npx deno task bench --only linalg`.",
      ));
      return Promise.resolve();
    }
    if (!f.pool) {
      throw new UsageError(
        "alone, bench/linalg.ts runs --pool (the pool's split decisions); the section is " +
          "`npx deno task bench --only linalg` (see --help)",
      );
    }
    const quick = f.quick === true;
    const given = typeof f.shapes === "string" ? f.shapes : undefined;
    const shapes = (given ?? (quick ? "64x257" : "32x257,64x257,128x256,128x300,256x256"))
      .split(",")
      .map((s) => s.trim().split("x").map(Number) as [number, number]);
    if (!shapes.every((s) => s.length === 2 && s.every((v) => Number.isSafeInteger(v) && v > 0))) {
      throw new UsageError(`--shapes wants mxd pairs (e.g. 64x257,128x256), got '${given}'`);
    }
    const rows = measurePoolSplits(shapes, quick ? 15 : 40, quick ? 2 : 5);
    const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
    console.log(
      `Pool split decisions: \`deno run -A bench/linalg.ts --pool${quick ? " --quick" : ""}\`, ${
        new Date().toISOString().slice(0, 16)
      }Z, ${navigator.hardwareConcurrency} cpus (${cpu}), load ${
        Deno.loadavg().map((x) => x.toFixed(2)).join(" ")
      }\n`,
    );
    console.log(poolSplitTable(rows));
    return Promise.resolve();
  });
}
