/**
 * Benchmark section "layers" (issue 2's table): time per example of the naive and the factored output
 * layer, measured in the same run, per backend, with the measured speedup beside the theoretical
 * D/(4d), examples/s, the fraction of OpenBLAS sgemm peak, peak memory, and the factored step's
 * flatness in D.
 *
 * Each (config, kind) runs in its own child process (`deno run -A bench/layers.ts --child JSON`), so
 * that its peak resident memory (VmHWM from /proc/self/status, read at the child's end) is its own.
 * A child creates the layer with createOutputLayer (lib/output/create.ts), warms up (at least one step
 * and 0.45 s), then steps until 1.5 s have passed (at least 2), cycling through max(4, ⌈4d/m⌉)
 * pre-built batches; its time per step is the median over blocks of 100 steps (factored) or of single
 * steps (naive), see timing.ts.
 *
 * Set-up, identical for both kinds: W₀ uniform with standard deviation 0.01, H uniform with standard
 * deviation 1/√d, K = 5 uniform random targets of value 1 per example, squared loss, η = 1e-3 (far
 * from the guard), default stabilisation settings (their amortised cost is part of the time).
 *
 * Flop counts (multiply-add = 2 flops), the paper's: naive 3·D·d multiply-adds per example (forward,
 * backward, update), factored ≈ 12·d², so theory = 3Dd/12d² = D/(4d).
 *
 * @module
 */

import type { CreateOutputLayerOptions, LossName, OutputLayer, SparseBatch } from "../lib/core/types.ts";
import { type BlasBackend, openBlasBackend } from "../lib/linalg/blas.ts";
import { createJsBackend } from "../lib/linalg/js.ts";
import type { BenchBackend, BenchOptions } from "./report.ts";
import { fmt, table } from "./report.ts";
import { measureSgemm, sgemmPeak } from "./linalg.ts";
import { timeSteps } from "./timing.ts";
import { median } from "./pair.ts";
import { Rng, uniformSource } from "../lib/core/rng.ts";
import { partTimeTable, type Profile, profiled, profileTable } from "./layers_profile.ts";
import { UsageError } from "../lib/core/errors.ts";
import {
  type FlagSpec,
  HELP_FLAG,
  helpText,
  parseFlags,
  positiveInt,
  positiveNumber,
} from "../lib/core/cli.ts";
import { exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { LOSS_NAMES } from "../lib/losses/mod.ts";
import { isPooled } from "../lib/linalg/pool.ts";

/** One measurement a child is asked for. */
export type ChildConfig = {
  kind: "naive" | "factored";
  backend: BenchBackend;
  D: number;
  d: number;
  m: number;
  /** seconds of timed steps (after the warm-up) */
  seconds: number;
  /** targets per example (default K = 5) */
  k?: number;
  /** the loss (default squared) */
  loss?: LossName;
};

/** What a child reports (one JSON line on stdout, prefixed "RESULT "). */
export type ChildResult = ChildConfig & {
  setupS: number;
  steps: number;
  /** Robust time per step (ms): median over blocks (timing.ts). */
  stepMs: number;
  /** Plain mean time per step over the window (ms). */
  meanStepMs: number;
  /** Complete blocks the median was taken over (< 3: stepMs is the mean). */
  blocks: number;
  usPerExample: number;
  vmHwmMB: number;
  lossFirst: number;
  lossLast: number;
};

const K = 5, ETA = 1e-3;
/** Untimed warm-up per child, as a fraction of its timed window (see child()). */
const WARMUP_FRACTION = 0.3;
/** Block of the factored layer's robust timing: 100 steps hold exactly one periodic stabilisation. */
const FACTORED_BLOCK = 100;
const ROOT = new URL("..", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;

/** Fills x with uniform values of mean 0 and standard deviation `std` (the one seeded rng). */
export function fillUniform(x: Float32Array, std: number, seed: number): void {
  new Rng(seed).fillUniform(x, std * Math.sqrt(3));
}

export function makeBatch(D: number, m: number, seed: number, k = K): SparseBatch {
  const next = uniformSource(seed);
  const offsets = Int32Array.from({ length: m + 1 }, (_, i) => i * k);
  const indices = Int32Array.from({ length: m * k }, () => Math.floor(next() * D));
  return { offsets, indices, values: new Float32Array(m * k).fill(1) };
}

function vmHwmMB(): number {
  try {
    const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(Deno.readTextFileSync("/proc/self/status"))?.[1];
    return kb ? Number(kb) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The child: builds one layer, times it, prints a RESULT line. */
async function child(cfg: ChildConfig): Promise<ChildResult> {
  const url = new URL("../lib/output/create.ts", import.meta.url).href;
  const { createOutputLayer } = (await import(url)) as {
    createOutputLayer(o: CreateOutputLayerOptions): Promise<OutputLayer>;
  };
  const { kind, backend, D, d, m } = cfg;
  let init: Float32Array | undefined = new Float32Array(D * d);
  fillUniform(init, 0.01, 12345);
  const t0 = performance.now();
  const layer = await createOutputLayer({
    kind,
    D,
    d,
    init,
    loss: cfg.loss ?? "squared",
    backend,
    log: (l) => console.error(l),
  });
  const setupS = (performance.now() - t0) / 1000;
  init = undefined;
  // Distinct batches cycled through the time box: at least 4, and enough that ~4·d distinct examples are
  // seen (real data does not repeat a handful of examples; cycling 4 single examples at m = 1 contracts U
  // along the same 4 directions every few steps and makes the run a measurement of folds, not of steps).
  const nBatches = Math.max(4, Math.ceil((4 * d) / m));
  const batches = Array.from({ length: nBatches }, (_, i) => i).map((i) => {
    const H = new Float32Array(m * d);
    fillUniform(H, 1 / Math.sqrt(d), 777 + i);
    return { H, Y: makeBatch(D, m, 99 + i, cfg.k) };
  });
  // Warm-up, not timed: at least one step and WARMUP_FRACTION of the timed window, so that the JIT's
  // compilation of the step and of the first stabilisation (≈ 70 ms in all for the factored layer at
  // D = 200,000, d = 256, m = 128, i.e. 5% of a 1.5 s window) is not counted as steady-state cost. Then
  // the median over blocks of FACTORED_BLOCK steps (factored; each holds one periodic stabilisation) or
  // of single steps (naive), see timing.ts.
  let lossFirst = NaN, lossLast = NaN;
  const t = await timeSteps(async (i) => {
    const b = batches[i % batches.length];
    lossLast = (await layer.step(b.H, b.Y, ETA)).loss;
    if (i === 0) lossFirst = lossLast;
  }, {
    warmupMs: WARMUP_FRACTION * cfg.seconds * 1000,
    windowMs: cfg.seconds * 1000,
    block: kind === "factored" ? FACTORED_BLOCK : 1,
  });
  const stepMs = t.robustMs, steps = t.steps;
  layer.close();
  if (!Number.isFinite(lossLast)) throw new Error(`loss is ${lossLast} after ${steps} steps`);
  return {
    ...cfg,
    setupS,
    steps,
    stepMs,
    meanStepMs: t.meanMs,
    blocks: t.blocks,
    usPerExample: (stepMs * 1000) / m,
    vmHwmMB: vmHwmMB(),
    lossFirst,
    lossLast,
  };
}

/** Runs a child process for one config; returns its result or the reason it failed. */
async function spawn(cfg: ChildConfig, timeoutS: number): Promise<ChildResult | string> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SELF, "--child", JSON.stringify(cfg)],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const proc = cmd.spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      proc.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutS * 1000);
  const out = await proc.output();
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(out.stdout), stderr = new TextDecoder().decode(out.stderr);
  if (timedOut) return `timed out after ${timeoutS} s`;
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (!out.success || !line) {
    const why = stderr.trim().split("\n").filter((l) => /error|Error/.test(l)).slice(0, 2).join(" / ") ||
      stderr.trim().split("\n").slice(-1)[0] || `exit code ${out.code}${out.signal ? `, ${out.signal}` : ""}`;
    return why.replace(/\|/g, "\\|").slice(0, 200);
  }
  return JSON.parse(line.slice("RESULT ".length)) as ChildResult;
}

type Config = { D: number; d: number; m: number };

function configs(quick: boolean, only?: string[]): Config[] {
  if (only) {
    return only.map((c) => {
      const [D, d, m] = c.split("x").map(Number);
      return { D, d, m };
    });
  }
  const out: Config[] = [];
  const Ds = quick ? [10_000, 50_000] : [10_000, 50_000, 200_000, 793_471];
  const ds = quick ? [128] : [128, 256, 512];
  for (const d of ds) for (const m of [1, 128]) for (const D of Ds) out.push({ D, d, m });
  if (!quick) { for (const m of [1, 128]) out.push({ D: 793_471, d: 300, m }); }
  return out;
}

/**
 * Runs the section for `opts.backend`: every config through a naive and a factored child process.
 *
 * @example
 * ```ts
 * import { run } from "./layers.ts";
 * console.log(await run({ backend: "blas", quick: true, log: console.error }));
 * ```
 *
 * @param opts the harness options
 * @returns the markdown block
 */
export async function run(opts: BenchOptions): Promise<string> {
  const seconds = opts.quick ? 0.5 : 1.5;
  // OpenBLAS peak (the yardstick for every backend) and a rate to predict which configs are too slow
  const blas = openBlasBackend();
  const peak = sgemmPeak(blas, opts.quick);
  // GFLOP/s the backend's naive step may reach (best of 3: load only lowers it)
  const la = opts.backend === "js" ? createJsBackend() : blas;
  let rate = 0;
  for (let t = 0; t < 3; t++) {
    rate = Math.max(
      rate,
      measureSgemm(la, false, true, 128, opts.backend === "js" ? 1024 : 8192, 256, 80).gflops,
    );
  }
  blas.close();
  opts.log(
    `layers: sgemm peak ${fmt(peak)} GFLOP/s; ${opts.backend} naive-step rate estimate ${fmt(rate)} GFLOP/s`,
  );
  const MAX_NAIVE_S = 10, MAX_SETUP_S = 20;
  const rows: string[][] = [];
  const results = new Map<string, { naive?: ChildResult; factored?: ChildResult }>();
  const skipped: string[] = [];
  for (const c of configs(opts.quick, opts.configs)) {
    const naiveFlops = 6 * c.m * c.D * c.d, setupFlops = 2 * c.D * c.d * c.d;
    const predictedNaive = naiveFlops / (rate * 1e9), predictedSetup = setupFlops / (rate * 1e9);
    const key = `${c.D}/${c.d}/${c.m}`;
    const res: { naive?: ChildResult; factored?: ChildResult; naiveErr?: string; factoredErr?: string } = {};
    if (predictedNaive > MAX_NAIVE_S || predictedSetup > MAX_SETUP_S) {
      const why = predictedNaive > MAX_NAIVE_S
        ? `naive step predicted ${fmt(predictedNaive, 2)} s > ${MAX_NAIVE_S} s`
        : `factored set-up (Q = W₀ᵀW₀) predicted ${fmt(predictedSetup, 2)} s > ${MAX_SETUP_S} s`;
      skipped.push(`D=${c.D} d=${c.d} m=${c.m}: ${why}`);
      rows.push([
        fmt(c.D),
        String(c.d),
        String(c.m),
        `skipped: ${why}`,
        "",
        "",
        `${fmt(c.D / (4 * c.d))}×`,
        "",
        "",
        "",
        "",
        "",
        "",
        "",
      ]);
      continue;
    }
    for (const kind of ["naive", "factored"] as const) {
      const timeout = 60 + 3 * (kind === "naive" ? predictedNaive : 0) * (2 + seconds) + 6 * predictedSetup;
      opts.log(`layers: ${opts.backend} ${kind} D=${c.D} d=${c.d} m=${c.m} …`);
      const r = await spawn(
        { kind, backend: opts.backend, D: c.D, d: c.d, m: c.m, seconds },
        Math.ceil(timeout),
      );
      if (typeof r === "string") {
        res[`${kind}Err`] = r;
        opts.log(`layers:   failed: ${r}`);
      } else {
        res[kind] = r;
        opts.log(
          `layers:   ${fmt(r.usPerExample)} µs/example (median of ${r.blocks} blocks; mean ${
            fmt((r.meanStepMs * 1000) / r.m)
          }), ${r.steps} steps, set-up ${fmt(r.setupS)} s, peak ${fmt(r.vmHwmMB)} MB`,
        );
      }
    }
    results.set(key, res);
    const n = res.naive, f = res.factored;
    const theory = c.D / (4 * c.d);
    const naivePct = n ? (6 * c.m * c.D * c.d) / (n.stepMs * 1e6) / peak * 100 : NaN;
    const factPct = f ? (24 * c.m * c.d * c.d) / (f.stepMs * 1e6) / peak * 100 : NaN;
    rows.push([
      fmt(c.D),
      String(c.d),
      String(c.m),
      n ? fmt(n.usPerExample) : `error: ${res.naiveErr}`,
      f ? fmt(f.usPerExample) : `error: ${res.factoredErr}`,
      n && f ? `**${fmt(n.usPerExample / f.usPerExample)}×**` : "",
      `${fmt(theory)}×`,
      n ? fmt(1e6 / n.usPerExample) : "",
      f ? fmt(1e6 / f.usPerExample) : "",
      n ? `${fmt(naivePct, 2)}%` : "",
      f ? `${fmt(factPct, 2)}%` : "",
      `${n ? fmt(n.vmHwmMB) : "–"} / ${f ? fmt(f.vmHwmMB) : "–"}`,
      f ? fmt(f.setupS) : "",
      n && f ? fmt(Math.abs(f.lossFirst - n.lossFirst) / Math.abs(n.lossFirst), 2) : "",
    ]);
  }

  // flatness of the factored time per example in D, per (d, m)
  const flat: string[][] = [];
  const groups = new Map<string, number[]>();
  for (const [key, r] of results) {
    if (!r.factored) continue;
    const [, d, m] = key.split("/");
    if (d === "300") continue;
    const g = `${d}/${m}`;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(r.factored.usPerExample);
  }
  for (const [g, ts] of groups) {
    if (ts.length < 2) continue;
    const [d, m] = g.split("/");
    const sorted = [...ts].sort((a, b) => a - b), med = sorted[Math.floor(sorted.length / 2)];
    const max = sorted[sorted.length - 1], min = sorted[0];
    const dev = Math.max(max / med - 1, 1 - min / med);
    flat.push([
      d,
      m,
      String(ts.length),
      fmt(min),
      fmt(max),
      fmt(max / min),
      `±${fmt(dev * 100, 2)}%`,
      dev <= 0.2 ? "yes" : "**no**",
    ]);
  }

  // the issue's targets (blas backend)
  const target = (D: number, d: number, m: number, want: number) => {
    const r = results.get(`${D}/${d}/${m}`);
    if (!r?.naive || !r.factored) return `D=${fmt(D)}, d=${d}, m=${m}: ≥ ${want}× — not measured`;
    const s = r.naive.usPerExample / r.factored.usPerExample;
    return `D=${fmt(D)}, d=${d}, m=${m}: ≥ ${want}× — measured ${fmt(s)}× (theory ${fmt(D / (4 * d))}×): ${
      s >= want ? "**met**" : "**not met**"
    }`;
  };

  const online = (D: number, d: number) => {
    const r = results.get(`${D}/${d}/1`);
    if (!r?.naive || !r.factored) return `D=${fmt(D)}, d=${d}, m=1 not measured.`;
    return `D=${fmt(D)}, d=${d}, m=1: ${fmt(r.naive.usPerExample / r.factored.usPerExample)}× (theory ${
      fmt(D / (4 * d))
    }×; both layers run BLAS-2 there: the naive one streams W three times per example at memory speed, the factored one does a few d×d gemv/ger).`;
  };

  const head = [
    "D",
    "d",
    "m",
    "naive µs/ex",
    "factored µs/ex",
    "speedup",
    "theory D/(4d)",
    "naive ex/s",
    "factored ex/s",
    "naive % sgemm peak",
    "factored % sgemm peak",
    "peak MB naive / factored",
    "factored set-up s",
    "first-step loss rel. diff",
  ];
  const parts = [
    `### Output layer step, backend \`${opts.backend}\`${
      opts.quick ? " (quick: smallest configs only)" : ""
    }`,
    `Time per example of one SGD step (squared loss, K = ${K}, η = ${ETA}), naive and factored measured in the same run, ` +
    `each in its own process (peak MB = that process's VmHWM, W₀ included). Time per step: after an untimed ` +
    `warm-up (0.3× the window), the median over blocks of ${FACTORED_BLOCK} consecutive steps (factored: each block ` +
    `holds one periodic stabilisation) or of single steps (naive) in the timed window (bench/timing.ts; the ` +
    `plain mean is in the JSON log), so that a burst of load from another tenant of the machine moves it little. ` +
    `% of sgemm peak: useful flops ` +
    `(naive 6·m·D·d, factored 24·m·d² per batch, i.e. the paper's 3Dd and 12d² multiply-adds) per second over the ` +
    `OpenBLAS sgemm peak of ${
      fmt(peak)
    } GFLOP/s. Set-up = createOutputLayer (for the factored layer Q = W₀ᵀW₀, O(Dd²)). ` +
    `First-step loss rel. diff: |L_factored − L_naive|/|L_naive| on the warm-up step (same W₀, same batch): a check ` +
    `that both measured the same problem.`,
    table(head, rows),
    `#### Factored step flatness in D (target: within ±20%)\n\n` +
    (flat.length
      ? table([
        "d",
        "m",
        "D values",
        "min µs/ex",
        "max µs/ex",
        "max/min",
        "max deviation from median",
        "within ±20%",
      ], flat)
      : "_fewer than two D values measured per (d, m)_"),
  ];
  if (opts.backend === "blas" && !opts.quick) {
    parts.push(
      `#### Targets (issue 2)\n\n- ${target(200_000, 256, 128, 150)}\n- ${
        target(793_471, 300, 128, 500)
      }\n\nBoth targets are read with m = 128, which the issue's sentence names for the first one. ` +
        `Online steps, reported: ${online(793_471, 300)}`,
    );
  }
  if (skipped.length) {
    parts.push(`Skipped (too slow for this backend):\n\n${skipped.map((s) => `- ${s}`).join("\n")}`);
  }
  return parts.join("\n\n");
}

/**
 * The per-kernel profile of the factored step on blas (`--profile DxdXm`, ≈ 1 s of steps after a warm-up
 * of 0.3 s): the same set-up as a child, the backend wrapped by layers_profile.ts. Prints a markdown table.
 *
 * @param spec "DxdXm", e.g. "200000x256x128"
 * @param seconds timed window
 * @returns the table with a title line
 */
async function profile(spec: string, seconds: number, k = K, loss: LossName = "squared"): Promise<string> {
  const [D, d, m] = spec.split("x").map(Number);
  if (![D, d, m].every((v) => Number.isSafeInteger(v) && v > 0)) {
    throw new UsageError(`--profile wants DxdXm (e.g. 200000x256x128), got '${spec}'`);
  }
  const { FactoredOutputLayer } = await import("../lib/output/factored/layer.ts");
  const { createLoss } = await import("../lib/losses/mod.ts");
  const prof: Profile = new Map();
  const { createBackend } = await import("../lib/linalg/select.ts");
  const la = (await createBackend("blas", { log: () => {}, partTimes: true })) as BlasBackend;
  const pool = isPooled(la) ? la : null;
  const init = new Float32Array(D * d);
  fillUniform(init, 0.01, 12345);
  const backend = profiled(la, prof, d, m);
  const layer = FactoredOutputLayer.fromInit(D, d, init, createLoss(loss), backend);
  const nBatches = Math.max(4, Math.ceil((4 * d) / m));
  const batches = Array.from({ length: nBatches }, (_, i) => {
    const H = new Float32Array(m * d);
    fillUniform(H, 1 / Math.sqrt(d), 777 + i);
    return { H, Y: makeBatch(D, m, 99 + i, k) };
  });
  let i = 0;
  for (
    const t0 = performance.now();
    performance.now() - t0 < WARMUP_FRACTION * seconds * 1000 || i < 2;
    i++
  ) {
    await layer.step(batches[i % nBatches].H, batches[i % nBatches].Y, ETA);
  }
  prof.clear();
  pool?.resetPartTimes();
  // blocks of PROFILE_BLOCK steps, timed and untimed in turn: the untimed ones give the step's own time
  // the median block of each kind: an upkeep rarer than the blocks (a fold, a refresh) lands in one kind only
  let steps = 0;
  const timedBlocks: number[] = [], untimedBlocks: number[] = [];
  const wake0 = pool?.wakeups ?? 0, split0 = pool?.splitCalls ?? 0;
  const down0 = pool?.standDowns ?? 0, alone0 = pool?.callerOnlyCalls ?? 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000 || timedBlocks.length < 2 || untimedBlocks.length < 2) {
    const b0 = performance.now();
    for (let j = 0; j < PROFILE_BLOCK; j++, i++) {
      await layer.step(batches[i % nBatches].H, batches[i % nBatches].Y, ETA);
    }
    const ms = performance.now() - b0;
    (backend.timing ? timedBlocks : untimedBlocks).push(ms / PROFILE_BLOCK);
    steps += PROFILE_BLOCK;
    backend.timing = !backend.timing;
  }
  const parts = pool?.partTimes() ?? null;
  layer.close();
  const split = pool
    ? `, products and sparse rows split across ${pool.parts} threads (${
      fmt((pool.splitCalls - split0) / steps, 3)
    } split calls and ${fmt((pool.wakeups - wake0) / steps, 3)} worker wake-ups per step; ${
      pool.standDowns - down0
    } stand-downs, ${
      fmt((100 * (pool.callerOnlyCalls - alone0)) / Math.max(1, pool.splitCalls - split0), 3)
    }% of split calls on the calling thread alone${
      Deno.env.get("FACTOROUT_POOL_HOLD") === "0" ? ", FACTOROUT_POOL_HOLD=0" : ""
    })`
    : "";
  const timedSteps = timedBlocks.length * PROFILE_BLOCK, untimedSteps = untimedBlocks.length * PROFILE_BLOCK;
  const untimed = median(untimedBlocks), timed = median(timedBlocks);
  return `Factored step profile, ${loss} loss, K = ${k}, D = ${D}, d = ${d}, m = ${m}, blas ${la.threads} thread(s)${split}, ` +
    `${timedSteps} steps timed and ${untimedSteps} untimed, in alternate blocks of ${PROFILE_BLOCK} (untimed ` +
    `${fmt((untimed * 1000) / m)} µs/example, timed ${
      fmt((timed * 1000) / m)
    }: medians of the blocks; products ` +
    `${layer.products}):\n\n` +
    profileTable(prof, timedSteps, timed * timedSteps, untimed) +
    (parts ? "\n\n" + partTimeTable(parts, steps) : "");
}

/**
 * Steps per block of the profile's timed window, whose blocks are timed and untimed in turn: five to the
 * float32 stabilisation interval of 100 steps, an odd count, so that the periodic stabilisations fall in
 * both kinds of block. The step times are the medians of each kind's blocks; the kernel rows are sums over
 * the timed blocks, so that an upkeep rarer than that (a fold, a refresh) shows in its row when it falls in
 * one of them.
 */
const PROFILE_BLOCK = 20;

/** The flags of `deno run -A bench/layers.ts --profile …` (`--child` is bench/main.ts's own protocol). */
const PROFILE_FLAGS: Record<string, FlagSpec> = {
  profile: { type: "string", help: "the factored step's profile at DxdXm (e.g. 200000x256x128)" },
  seconds: { type: "string", default: "1", help: "the timed window" },
  k: { type: "string", default: String(K), help: "targets per example" },
  loss: { type: "string", default: "squared", help: `the loss: ${LOSS_NAMES.join(", ")}` },
  help: HELP_FLAG,
};

if (import.meta.main && !Deno.args.includes("--child")) {
  await runCommand("bench/layers", async () => {
    const f = parseFlags(Deno.args, PROFILE_FLAGS);
    if (f.help || f.profile === undefined) {
      const text = helpText(
        "npx deno run -A bench/layers.ts --profile DxdXm [--seconds S] [--k K] [--loss L]",
        PROFILE_FLAGS,
        exitCodesHelp(),
        "The factored step's profile; the layers section of the benchmarks is `npx deno task bench --only layers`.",
      );
      if (f.help) return console.log(text);
      throw new UsageError(
        "--profile DxdXm is needed (alone, this file profiles the factored step; see --help)",
      );
    }
    const loss = f.loss as LossName;
    if (!LOSS_NAMES.includes(loss)) {
      throw new UsageError(`--loss must be one of ${LOSS_NAMES.join(", ")}, got ${JSON.stringify(f.loss)}`);
    }
    const k = positiveInt("--k", f.k), seconds = positiveNumber("--seconds", f.seconds);
    console.log(await profile(f.profile as string, seconds, k, loss));
  });
  Deno.exit(0);
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--child");
  const res = await child(JSON.parse(Deno.args[i + 1]) as ChildConfig);
  console.log(`RESULT ${JSON.stringify(res)}`);
  Deno.exit(0);
}
