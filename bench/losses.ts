/**
 * Benchmark section "losses": the factored output layer's step with each loss of the spherical family
 * (squared, spherical, taylor, zloss) at D = 200,000, d = 256, m = 128 (K = 5 weighted targets per
 * example), its cost relative to squared error's (target ≤ 1.3×: the losses that use s add the ω and w̄
 * bookkeeping), and the speedup over the naive layer with the same loss (target ≥ 150×; D/(4d) ≈ 195×).
 *
 * Both layers get the same W₀ (uniform in ±1/d) and the same minibatches. Times are wall-clock per step,
 * after warm-up steps; the factored layer runs enough steps to include its periodic stabilisation.
 * `--quick` runs D = 20,000, d = 64, m = 32 with a few steps (a smoke run: the targets apply to the full
 * size only).
 *
 * @module
 */

import { createOutputLayer } from "../lib/output/create.ts";
import { type FlagSpec, HELP_FLAG, helpText, parseFlags } from "../lib/core/cli.ts";
import { UsageError } from "../lib/core/errors.ts";
import { exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { LOSS_NAMES } from "../lib/losses/mod.ts";
import type { LossName, SparseBatch } from "../lib/core/types.ts";
import type { BenchOptions } from "./report.ts";
import { fmt, table } from "./report.ts";
import { timeSteps } from "./timing.ts";
import { uniformSource as rng } from "../lib/core/rng.ts";

export type { BenchBackend, BenchOptions } from "./report.ts";
export type { LossName } from "../lib/core/types.ts";

/** One configuration of the section. */
export type LossBenchConfig = {
  D: number;
  d: number;
  m: number;
  K: number;
  /** timed window of the factored layer (s), after an untimed warm-up of 0.3× that */
  factoredSeconds: number;
  /** timed naive steps (after one warm-up step) */
  naiveSteps: number;
};

/** The full-size configuration (the targets) and the smoke one. */
export const LOSS_BENCH_CONFIGS: Readonly<Record<"full" | "quick", LossBenchConfig>> = Object.freeze({
  full: { D: 200_000, d: 256, m: 128, K: 5, factoredSeconds: 1.5, naiveSteps: 4 },
  quick: { D: 20_000, d: 64, m: 32, K: 5, factoredSeconds: 0.3, naiveSteps: 2 },
});

/** Step learning rate: small, so that no loss's step comes near the singular-update guard. */
const ETA = 1e-3;

/** W₀ (D×d, uniform in ±1/d) and `count` minibatches (H m×d with ‖h‖ ≈ 1; K weighted targets each). */
function makeData(
  c: LossBenchConfig,
  count: number,
): { init: Float32Array; batches: { H: Float32Array; Y: SparseBatch }[] } {
  const r = rng(20151207);
  const init = new Float32Array(c.D * c.d);
  for (let i = 0; i < init.length; i++) init[i] = (2 * r() - 1) / c.d;
  const batches = [];
  const scale = Math.sqrt(3 / c.d); // uniform in ±√(3/d): E‖h‖² = 1
  for (let b = 0; b < count; b++) {
    const H = new Float32Array(c.m * c.d);
    for (let i = 0; i < H.length; i++) H[i] = (2 * r() - 1) * scale;
    const n = c.m * c.K;
    const offsets = new Int32Array(c.m + 1), indices = new Int32Array(n), values = new Float32Array(n);
    for (let i = 0; i < c.m; i++) offsets[i + 1] = (i + 1) * c.K;
    for (let k = 0; k < n; k++) {
      // Zipf-like: small indices are frequent, as for words.
      indices[k] = Math.min(c.D - 1, Math.floor(Math.exp(r() * Math.log(c.D))) - 1);
      values[k] = 0.2 + 0.3 * r();
    }
    batches.push({ H, Y: { offsets, indices, values } });
  }
  return { init, batches };
}

/** One loss's measurements (ms per step). */
export type LossBenchResult = { loss: LossName; factoredMs: number; naiveMs: number };

/**
 * Times one layer kind with one loss: builds it from W₀ and times it with {@link timeSteps} (factored:
 * warm-up 0.3× the window, then the median over blocks of 100 steps, each holding one periodic
 * stabilisation; naive: one warm-up step, then the median of `naiveSteps` single steps), and frees it
 * (one D×d layer alive at a time).
 *
 * @example
 * ```ts
 * import { LOSS_BENCH_CONFIGS, timeLayer } from "./losses.ts";
 * const ms = await timeLayer("factored", "taylor", "blas", LOSS_BENCH_CONFIGS.quick);
 * ```
 *
 * @param kind "factored" or "naive"
 * @param loss the loss
 * @param backend the backend the layer runs on
 * @param c the configuration
 * @returns milliseconds per step
 */
export async function timeLayer(
  kind: "factored" | "naive",
  loss: LossName,
  backend: BenchOptions["backend"],
  c: LossBenchConfig,
): Promise<number> {
  const { init, batches } = makeData(c, 8);
  const layer = await createOutputLayer({ kind, D: c.D, d: c.d, init, loss, backend, log: () => {} });
  try {
    const step = (i: number) => layer.step(batches[i % batches.length].H, batches[i % batches.length].Y, ETA);
    const t = kind === "factored"
      ? await timeSteps(step, {
        warmupMs: 300 * c.factoredSeconds,
        windowMs: 1000 * c.factoredSeconds,
        block: 100,
      })
      : await timeSteps(step, { warmupMs: 0, windowMs: 0, minSteps: c.naiveSteps });
    return t.robustMs;
  } finally {
    layer.close();
  }
}

/**
 * Measures every loss: the factored step in `rounds` rounds over all losses (the median round counts, so
 * a busy neighbour during one round does not favour or penalise the losses measured then), then the
 * naive step once.
 *
 * @example
 * ```ts
 * import { LOSS_BENCH_CONFIGS, measureLosses } from "./losses.ts";
 * const rs = await measureLosses("blas", LOSS_BENCH_CONFIGS.quick, console.error);
 * ```
 *
 * @param backend the backend both layers run on
 * @param c the configuration
 * @param log progress lines
 * @param rounds rounds of factored timings (default 3)
 * @returns per loss, ms per step of both layers
 */
export async function measureLosses(
  backend: BenchOptions["backend"],
  c: LossBenchConfig,
  log: (line: string) => void,
  rounds = 3,
): Promise<LossBenchResult[]> {
  const factored = new Map<LossName, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const loss of LOSS_NAMES) {
      const ms = await timeLayer("factored", loss, backend, c);
      factored.set(loss, [...(factored.get(loss) ?? []), ms]);
      log(
        `losses: round ${round + 1}/${rounds}: ${loss}: factored ${
          fmt(ms)
        } ms/step (D=${c.D}, d=${c.d}, m=${c.m}, ${backend})`,
      );
    }
  }
  const out: LossBenchResult[] = [];
  for (const loss of LOSS_NAMES) {
    const naiveMs = await timeLayer("naive", loss, backend, c);
    const all = factored.get(loss)!.sort((a, b) => a - b);
    const h = all.length >> 1;
    const factoredMs = all.length % 2 ? all[h] : 0.5 * (all[h - 1] + all[h]);
    log(`losses: ${loss}: naive ${fmt(naiveMs)} ms/step, speedup ${fmt(naiveMs / factoredMs)}×`);
    out.push({ loss, factoredMs, naiveMs });
  }
  return out;
}

/**
 * Runs the section: per loss, the factored step's time, its ratio to squared error's, the naive step's
 * time and the speedup, with the targets checked.
 *
 * @example
 * ```ts
 * import { run } from "./losses.ts";
 * console.log(await run({ backend: "blas", quick: true, log: console.error }));
 * ```
 *
 * @param opts the harness options
 * @returns the markdown block
 */
export async function run(opts: BenchOptions): Promise<string> {
  const c = opts.quick ? LOSS_BENCH_CONFIGS.quick : LOSS_BENCH_CONFIGS.full;
  const results = await measureLosses(opts.backend, c, opts.log);
  const squared = results.find((r) => r.loss === "squared")!;
  const rows = results.map((r) => {
    const ratio = r.factoredMs / squared.factoredMs, speedup = r.naiveMs / r.factoredMs;
    return [
      r.loss,
      fmt(r.factoredMs),
      `${fmt(ratio)}× ${ratio <= 1.3 ? "✓" : "✗"}`,
      fmt(r.naiveMs),
      `${fmt(speedup)}× ${speedup >= 150 ? "✓" : "✗"}`,
    ];
  });
  const note = opts.quick
    ? "**Smoke run (`--quick`)**: the targets (≤ 1.3× squared error's step, ≥ 150× speedup) apply to the full " +
      "size D = 200,000, d = 256, m = 128 only; at this size D/(4d) bounds the speedup.\n\n"
    : "";
  return `### Losses: the factored step per loss (${opts.backend})\n\n${note}` +
    `D = ${c.D.toLocaleString("en-US")}, d = ${c.d}, m = ${c.m}, K = ${c.K} weighted targets per example, ` +
    `η = ${ETA}; factored: after an untimed warm-up, the median over blocks of 100 steps (each with one periodic ` +
    `stabilisation) in a ${c.factoredSeconds} s window, median of 3 rounds; naive: median of ${c.naiveSteps} ` +
    `steps after one warm-up step (bench/timing.ts). D/(4d) = ${fmt(c.D / (4 * c.d))}.\n\n` +
    table(
      ["loss", "factored ms/step", "vs squared (≤ 1.3×)", "naive ms/step", "speedup (≥ 150×)"],
      rows,
    );
}

/** The flags of `deno run -A bench/losses.ts` alone (bench/main.ts runs it as the section `losses`). */
const FLAGS: Record<string, FlagSpec> = {
  quick: { type: "boolean", default: false, help: "the smallest configuration only, a smoke run" },
  backend: { type: "string", default: "blas", help: "the backend measured: js, blas or webgpu" },
  help: HELP_FLAG,
};

if (import.meta.main) {
  // Standalone: `deno run -A bench/losses.ts [--quick] [--backend js|blas|webgpu]` prints the block.
  await runCommand("bench/losses", async () => {
    const f = parseFlags(Deno.args, FLAGS);
    if (f.help) {
      console.log(helpText("npx deno run -A bench/losses.ts [flags]", FLAGS, exitCodesHelp()));
      return;
    }
    const backend = f.backend as BenchOptions["backend"];
    if (!["js", "blas", "webgpu"].includes(backend)) {
      throw new UsageError(`--backend must be js, blas or webgpu, got "${f.backend}"`);
    }
    console.log(await run({ backend, quick: f.quick === true, log: (l) => console.error(l) }));
  });
}
