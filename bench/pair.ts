/**
 * Two settings of the factored step measured in one process, in alternating blocks of steps: a paired
 * comparison that holds on a machine whose speed drifts.
 *
 * On the shared 2-core machines the memory-bound part of the step slows by up to 2× for tens of seconds when
 * other tenants are busy (large sgemm and scalar code keep their speed). Two runs one after the other then
 * compare two states of the host, not two settings. Here both layers live in one process. Each is built
 * from the same W₀ and stepped through the same batches, and they take turns every `steps` steps (ABBA…).
 * A block of one and the next block of the other see nearly the same host. The result is the median of
 * each side's blocks (µs per example), the per-block ratio B/A (its median, and in how many pairs B was
 * faster) and every block's figure.
 *
 * A side is a set of environment variables, applied while its backend is created (`createBackend("blas")`,
 * which reads FACTOROUT_THREADS, FACTOROUT_SPLIT, FACTOROUT_POOL_HOLD). OpenBLAS's thread count is one
 * per process, so before each block the side's FACTOROUT_THREADS (if given) is set again
 * (`openblas_set_num_threads`). That makes "one thread against two" a paired measurement too. An
 * A/A run (the same settings on both sides) shows how far the per-block median ratio strays from 1 with
 * no difference.
 *
 * Usage: `deno run -A bench/pair.ts --shape 14206x257x64 --k 7 --loss spherical --a FACTOROUT_THREADS=1
 * --b FACTOROUT_THREADS=2 [--blocks 40] [--steps 40]` (`--help` lists the flags; a bad flag or value is one
 * line `bench/pair: …`, exit 2; lib/core/cli.ts)
 *
 * @module
 */

import type { LossName } from "../lib/core/types.ts";
import { UsageError } from "../lib/core/errors.ts";
import { type FlagSpec, HELP_FLAG, helpText, parseFlags, positiveInt } from "../lib/core/cli.ts";
import { exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { createBackend } from "../lib/linalg/select.ts";
import type { BlasBackend } from "../lib/linalg/blas.ts";
import { FactoredOutputLayer } from "../lib/output/factored/layer.ts";
import { createLoss, LOSS_NAMES } from "../lib/losses/mod.ts";
import { fillUniform, makeBatch } from "./layers.ts";
import { fmt } from "./report.ts";

/** Untimed blocks per side before the timed ones. */
const WARMUP_BLOCKS = 4;

/** What {@link pairRun} measures. */
export type PairOptions = {
  /** D, d, m */
  D: number;
  d: number;
  m: number;
  /** targets per example */
  k: number;
  loss: LossName;
  /** the two sides' environment variables, e.g. { FACTOROUT_THREADS: "1" } */
  a: Record<string, string>;
  b: Record<string, string>;
  /** blocks per side */
  blocks: number;
  /** steps per block */
  steps: number;
  /** learning rate (default 1e-3, far from the guard, as bench/layers.ts) */
  eta?: number;
  /** where the backends' lines go (default: nowhere) */
  log?: (line: string) => void;
};

/** What {@link pairRun} returns: µs per example of every block, in the order run. */
export type PairResult = {
  a: number[];
  b: number[];
  /** median of each side's blocks */
  medianA: number;
  medianB: number;
  /** median over pairs (block i of each side) of b/a */
  medianRatio: number;
  /** pairs in which b was faster */
  bFaster: number;
};

/**
 * The median of x (the upper one of an even count).
 *
 * @example
 * ```ts
 * import { median } from "./pair.ts";
 * console.log(median([3, 1, 2])); // 2
 * ```
 *
 * @param x values
 * @returns the median
 */
export function median(x: readonly number[]): number {
  const s = [...x].sort((p, q) => p - q);
  return s[s.length >> 1];
}

/**
 * Parses "NAME=value,NAME=value" into an environment map; names must look like environment variables.
 *
 * @example
 * ```ts
 * import { parseEnv } from "./pair.ts";
 * console.log(parseEnv("FACTOROUT_THREADS=2,FACTOROUT_SPLIT=1")); // { FACTOROUT_THREADS: "2", FACTOROUT_SPLIT: "1" }
 * ```
 *
 * @param s the list (empty: no variables)
 * @returns the map
 */
export function parseEnv(s: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of s.split(",").filter((x) => x !== "")) {
    const eq = kv.indexOf("=");
    const name = kv.slice(0, eq);
    if (eq < 1 || !/^[A-Z_][A-Z0-9_]*$/.test(name)) {
      throw new UsageError(`--a/--b want NAME=value[,NAME=value], got '${kv}'`);
    }
    env[name] = kv.slice(eq + 1);
  }
  return env;
}

/** Runs `f` with `env` set, restoring the previous values after it. */
async function withEnv<T>(env: Record<string, string>, f: () => Promise<T>): Promise<T> {
  const saved = Object.keys(env).map((k) => [k, Deno.env.get(k)] as const);
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  try {
    return await f();
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

/**
 * Builds a factored layer on each side's backend and times them in alternating blocks (see the module).
 *
 * @example
 * ```ts ignore
 * const r = await pairRun({ D: 14206, d: 257, m: 64, k: 7, loss: "spherical", a: { FACTOROUT_THREADS: "1" },
 *   b: { FACTOROUT_THREADS: "2" }, blocks: 20, steps: 40 });
 * console.log(r.medianRatio);
 * ```
 *
 * @param o the shape, the two sides, the blocks
 * @returns every block's µs per example and the paired summary
 */
export async function pairRun(o: PairOptions): Promise<PairResult> {
  const { D, d, m } = o, eta = o.eta ?? 1e-3, log = o.log ?? (() => {});
  type Side = { layer: FactoredOutputLayer; threads: number; path: string; at: number };
  const built: Side[] = [];
  // the side with more threads first: OpenBLAS is loaded once, with the settings of the first backend
  // (OPENBLAS_THREAD_TIMEOUT for a split step, select.ts), which a one-thread side does not need
  const threadsOf = (env: Record<string, string>) => Number(env.FACTOROUT_THREADS ?? 0);
  const order = threadsOf(o.b) > threadsOf(o.a) ? [1, 0] : [0, 1];
  for (const i of order) {
    const env = i === 0 ? o.a : o.b, name = i === 0 ? "A" : "B";
    const la = await withEnv(env, () => createBackend("blas", { log: (l) => log(`${name}: ${l}`) }));
    const init = new Float32Array(D * d);
    fillUniform(init, 0.01, 12345);
    const layer = FactoredOutputLayer.fromInit(D, d, init, createLoss(o.loss), la);
    built[i] = { layer, threads: threadsOf(env), path: (la as BlasBackend).path, at: 0 };
  }
  // one OpenBLAS per process: its thread count is set again before each side's block
  const lib = Deno.dlopen(built[0].path, {
    openblas_set_num_threads: { parameters: ["i32"], result: "void" },
  });
  const nBatches = Math.max(4, Math.ceil((4 * d) / m));
  const batches = Array.from({ length: nBatches }, (_, i) => {
    const H = new Float32Array(m * d);
    fillUniform(H, 1 / Math.sqrt(d), 777 + i);
    return { H, Y: makeBatch(D, m, 99 + i, o.k) };
  });
  const block = async (side: number, steps: number): Promise<number> => {
    const s = built[side];
    if (s.threads > 0) lib.symbols.openblas_set_num_threads(s.threads);
    const t0 = performance.now();
    for (let j = 0; j < steps; j++, s.at++) {
      const b = batches[s.at % nBatches];
      await s.layer.step(b.H, b.Y, eta);
    }
    return ((performance.now() - t0) * 1000) / (steps * m);
  };
  try {
    // warm-up, untimed: the JIT, the first stabilisations and refresh, the caches (a few blocks each, in
    // turn, as the timed ones)
    for (let i = 0; i < WARMUP_BLOCKS; i++) for (let side = 0; side < 2; side++) await block(side, o.steps);
    const a: number[] = [], b: number[] = [];
    for (let i = 0; i < o.blocks; i++) {
      const order = i % 2 === 0 ? [0, 1] : [1, 0];
      for (const side of order) (side === 0 ? a : b).push(await block(side, o.steps));
    }
    const ratios = a.map((x, i) => b[i] / x);
    return {
      a,
      b,
      medianA: median(a),
      medianB: median(b),
      medianRatio: median(ratios),
      bFaster: ratios.filter((r) => r < 1).length,
    };
  } finally {
    for (const s of built) s.layer.close();
    lib.close();
  }
}

/** The flags of `deno run -A bench/pair.ts`. */
const FLAGS: Record<string, FlagSpec> = {
  shape: { type: "string", help: "the layer, DxdxM (e.g. 14206x257x64)" },
  k: { type: "string", default: "7", help: "targets per example" },
  loss: { type: "string", default: "spherical", help: `the loss: ${LOSS_NAMES.join(", ")}` },
  a: { type: "string", default: "", help: "side A's environment, NAME=value[,NAME=value]" },
  b: { type: "string", default: "", help: "side B's environment, NAME=value[,NAME=value]" },
  blocks: { type: "string", default: "40", help: "timed blocks per side" },
  steps: { type: "string", default: "40", help: "steps per block" },
  help: HELP_FLAG,
};

/** The command line: `--help` prints the flags, else the pair is run and its summary printed. */
async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, FLAGS);
  if (f.help) {
    console.log(helpText(
      "npx deno run -A bench/pair.ts --shape DxdxM [--a NAME=value,…] [--b NAME=value,…] [flags]",
      FLAGS,
      exitCodesHelp(),
      "Two settings of the factored step timed in one process, in alternating blocks (bench/pair.ts).",
    ));
    return;
  }
  const shape = /^(\d+)x(\d+)x(\d+)$/.exec(typeof f.shape === "string" ? f.shape.trim() : "");
  const [D, d, m] = shape ? shape.slice(1).map(Number) : [];
  if (!shape || ![D, d, m].every((v) => Number.isSafeInteger(v) && v > 0)) {
    throw new UsageError(
      `--shape wants DxdxM of positive integers (e.g. 14206x257x64), got ${JSON.stringify(f.shape ?? "")}`,
    );
  }
  const k = positiveInt("--k", f.k), blocks = positiveInt("--blocks", f.blocks);
  const steps = positiveInt("--steps", f.steps);
  const loss = f.loss as LossName;
  if (!LOSS_NAMES.includes(loss)) {
    throw new UsageError(`--loss must be one of ${LOSS_NAMES.join(", ")}, got ${JSON.stringify(f.loss)}`);
  }
  const a = parseEnv(f.a as string), b = parseEnv(f.b as string);
  const r = await pairRun({ D, d, m, k, loss, a, b, blocks, steps, log: (l) => console.log(l) });
  console.log(
    `${D}x${d}x${m}, ${loss}, K = ${k}, ${blocks} blocks of ${steps} steps per side, ` +
      `${new Date().toISOString()}: A [${f.a}] ${fmt(r.medianA, 3)} µs/example, ` +
      `B [${f.b}] ${fmt(r.medianB, 3)}; B/A per pair: median ${fmt(r.medianRatio, 3)}, ` +
      `B faster in ${r.bFaster}/${blocks}`,
  );
  console.log(`A: ${r.a.map((x) => fmt(x, 3)).join(" ")}`);
  console.log(`B: ${r.b.map((x) => fmt(x, 3)).join(" ")}`);
}

if (import.meta.main) await runCommand("bench/pair", () => main(Deno.args));
