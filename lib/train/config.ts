/**
 * The trainer's configuration: the fields, their defaults, and validation with messages that name the
 * flag (`--dim`) and what is accepted.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { commaList, decimal } from "../core/cli.ts";
import type { LossName } from "../core/types.ts";
import { EMBEDDING_FORMATS, type EmbeddingFormat, parseFormats } from "../export/read.ts";

/**
 * Everything a training run is configured by. See {@link DEFAULT_CONFIG} and `--help`.
 *
 * @example
 * ```ts
 * import { resolveConfig, type TrainConfig } from "./config.ts";
 * const c: TrainConfig = resolveConfig({ dim: 50 });
 * ```
 */
export type TrainConfig = {
  /** "brown", a text file or folder, or a folder of prepared shards (with vocab.tsv and manifest.json). */
  data: string;
  /** cbow: input = the context, target = the centre word; skipgram: the reverse. */
  mode: "cbow" | "skipgram";
  /** Input embedding width. */
  dim: number;
  /** Hidden layer sizes (may be empty). */
  hidden: number[];
  /** Hidden layers' activation. */
  activation: "relu" | "tanh";
  /**
   * Embedding bag combination: mean, sum, or mean-full (the mean forward, each row moved by the whole
   * gradient of the mean: fastText's CBOW update, not the gradient of the loss).
   */
  bag: "mean" | "sum" | "mean-full";
  /** Loss of the spherical family. */
  loss: LossName;
  /** Spherical softmax's floor ε (added to every o_j²). */
  lossEpsilon: number;
  /** Z-loss sharpness a. */
  zlossA: number;
  /** Z-loss offset b (the z-score a target is pushed toward). */
  zlossB: number;
  /**
   * Frequency weighting of the targets: each target word's value × (D·p(c))^−α, p(c) its corpus frequency
   * (lib/train/target_weights.ts; 0 = off).
   */
  targetPower: number;
  /** Every target value × this constant (with `targetPower`); for squared error, the outputs' scale. */
  targetScale: number;
  /** Output layer: the exact factored one or the textbook O(Dd) one. */
  output: "factored" | "naive";
  /** Backend of the output layer ("auto": blas when OpenBLAS loads, else js). */
  backend: "js" | "blas" | "webgpu" | "auto";
  /** Passes over the training data. */
  epochs: number;
  /** Examples per minibatch. */
  batch: number;
  /** Initial learning rate. */
  lr: number;
  /** Final learning rate of the linear schedule. */
  lrMin: number;
  /** The input embeddings' and hidden layers' learning rate, as a multiple of the output layer's. */
  lrInputScale: number;
  /** The constant feature appended to the last hidden vector (the output layer's bias input). */
  biasFeature: number;
  /** constant: lr throughout; linear: lr → lrMin over the run. */
  schedule: "constant" | "linear";
  /** Corpus preparation: words seen fewer times are dropped. */
  minCount: number;
  /** Corpus preparation: context window radius. */
  window: number;
  /** Corpus preparation: frequent-word subsampling threshold t (0 = off). */
  sample: number;
  /**
   * Corpus preparation: independent subsampling draws written; epoch e reads draw e mod n (each epoch its
   * own subsample, as word2vec and fastText). 0 = one per epoch, at most {@link AUTO_SAMPLE_DRAWS_MAX}
   * ({@link subsampleDraws}); a new run of the train job makes it concrete, so its checkpoints hold n.
   */
  sampleDraws: number;
  /** Fraction of the examples held out for the validation loss (0 = none). */
  validation: number;
  /** Corpus preparation: stop after this many tokens (0 = all). */
  limitTokens: number;
  /** Seed of every random choice. */
  seed: number;
  /** Steps between checkpoints (0 = only at the end). */
  checkpointEvery: number;
  /** Minutes between checkpoints (0 = off): bounds the work lost to `kill -9`. */
  checkpointMinutes: number;
  /** Checkpoints kept. */
  keepCheckpoints: number;
  /**
   * Keep the best epoch: when a later epoch's validation loss is higher, the trainer ends on (and the job
   * publishes) the epoch with the lowest one, saved as checkpoints/best.fock (needs --validation > 0).
   */
  keepBest: boolean;
  /** Output folder. */
  out: string;
  /**
   * OpenBLAS threads (0: OpenBLAS's own count). The weights do not depend on it beyond float32 rounding,
   * but their last bits do: a checkpoint keeps it, so that `--resume` goes on with the run's count.
   */
  threads: number;
  /** The embedding files the job publishes (lib/export/publish.ts). */
  formats: EmbeddingFormat[];
  /** The job also publishes the output rows of W (`--export-output`), beside the input embeddings. */
  exportOutput: boolean;
  /**
   * The evaluation sets' folder as given (`none`: no evaluation); unset: `$FACTOROUT_EVAL_DIR`, else
   * ../shared/eval when it is there (lib/eval/report.ts resolveEvalDir).
   */
  evalDir?: string;
};

/**
 * The defaults: what `deno task train` with no flags runs (the Brown corpus, tuned to beat fastText
 * skipgram -loss ns's word-similarity on it within 5 minutes on 2 cores; see docs/trainer-api.md).
 *
 * @example
 * ```ts
 * import { DEFAULT_CONFIG } from "./config.ts";
 * console.log(DEFAULT_CONFIG.dim);
 * ```
 */
export const DEFAULT_CONFIG: Readonly<TrainConfig> = Object.freeze({
  data: "brown",
  mode: "skipgram",
  dim: 200,
  hidden: [],
  activation: "relu",
  bag: "mean",
  loss: "spherical",
  lossEpsilon: 1e-3,
  zlossA: 0.1,
  zlossB: 10,
  targetPower: 0,
  targetScale: 1,
  output: "factored",
  backend: "auto",
  epochs: 5,
  batch: 64,
  lr: 0.004,
  lrMin: 0.00001,
  lrInputScale: 5,
  biasFeature: 1,
  schedule: "linear",
  minCount: 5,
  window: 5,
  sample: 1e-4,
  sampleDraws: 0,
  validation: 0.01,
  limitTokens: 0,
  seed: 1,
  checkpointEvery: 0,
  checkpointMinutes: 10,
  keepCheckpoints: 3,
  keepBest: true,
  out: "runs/latest",
  threads: 0,
  formats: [...EMBEDDING_FORMATS],
  exportOutput: false,
  // present, so that a config file or checkpoint may name it; undefined is not written to JSON
  evalDir: undefined,
}) as TrainConfig;

/**
 * Flag name of each field, for messages.
 *
 * @example
 * ```ts
 * import { FLAG_OF } from "./config.ts";
 * console.log(FLAG_OF.minCount); // "--min-count"
 * ```
 */
export const FLAG_OF: Readonly<Record<keyof TrainConfig, string>> = Object.freeze({
  data: "--data",
  mode: "--mode",
  dim: "--dim",
  hidden: "--hidden",
  activation: "--activation",
  bag: "--bag",
  loss: "--loss",
  lossEpsilon: "--loss-epsilon",
  zlossA: "--zloss-a",
  zlossB: "--zloss-b",
  targetPower: "--target-power",
  targetScale: "--target-scale",
  output: "--output",
  backend: "--backend",
  epochs: "--epochs",
  batch: "--batch",
  lr: "--lr",
  lrMin: "--lr-min",
  lrInputScale: "--lr-input-scale",
  biasFeature: "--bias-feature",
  schedule: "--schedule",
  minCount: "--min-count",
  window: "--window",
  sample: "--sample",
  sampleDraws: "--sample-draws",
  validation: "--validation",
  limitTokens: "--limit-tokens",
  seed: "--seed",
  checkpointEvery: "--checkpoint-every",
  checkpointMinutes: "--checkpoint-minutes",
  keepCheckpoints: "--keep-checkpoints",
  keepBest: "--keep-best",
  out: "--out",
  threads: "--threads",
  formats: "--formats",
  exportOutput: "--export-output",
  evalDir: "--eval-dir",
});

const CHOICES: Partial<Record<keyof TrainConfig, readonly string[]>> = {
  mode: ["cbow", "skipgram"],
  activation: ["relu", "tanh"],
  bag: ["mean", "sum", "mean-full"],
  loss: ["squared", "spherical", "taylor", "zloss"],
  output: ["factored", "naive"],
  backend: ["js", "blas", "webgpu", "auto"],
  schedule: ["constant", "linear"],
};

/**
 * The widest --dim and --hidden layer: the factored output layer keeps about ten d×d float64 arrays
 * (5.4 GB at 8192), beside the V×d rows; wider ones cannot be allocated on a usual machine.
 */
export const MAX_WIDTH = 8192;

type NumRule = { int?: boolean; min: number; minExclusive?: boolean; max?: number };
const NUMBERS: Partial<Record<keyof TrainConfig, NumRule>> = {
  dim: { int: true, min: 1, max: MAX_WIDTH },
  epochs: { int: true, min: 1 },
  batch: { int: true, min: 1, max: 1 << 20 },
  lr: { min: 0, minExclusive: true },
  lrMin: { min: 0 },
  lrInputScale: { min: 0 },
  lossEpsilon: { min: 0, minExclusive: true },
  zlossA: { min: 0, minExclusive: true },
  zlossB: { min: -1000, max: 1000 },
  targetPower: { min: 0, max: 1 },
  targetScale: { min: 0, minExclusive: true, max: 1000 },
  biasFeature: { min: 0 },
  minCount: { int: true, min: 1 },
  window: { int: true, min: 1, max: 1000 },
  sample: { min: 0, max: 1 },
  sampleDraws: { int: true, min: 0, max: 100 },
  validation: { min: 0, max: 0.5 },
  limitTokens: { int: true, min: 0 },
  seed: { int: true, min: 0, max: 2 ** 32 - 1 },
  checkpointEvery: { int: true, min: 0 },
  checkpointMinutes: { min: 0 },
  keepCheckpoints: { int: true, min: 1 },
  threads: { int: true, min: 0, max: 256 },
};

const BOOLEANS: ReadonlySet<keyof TrainConfig> = new Set(["keepBest", "exportOutput"]);

function describe(rule: NumRule): string {
  const kind = rule.int ? "an integer" : "a number";
  const lo = `${rule.minExclusive ? ">" : "≥"} ${rule.min}`;
  return rule.max === undefined ? `${kind} ${lo}` : `${kind} ${lo} and ≤ ${rule.max}`;
}

/**
 * The kind of value field `key` holds: a number, true or false, a list (which its flag, and a config file,
 * may give as a comma-separated string: {@link splitList}), or a string.
 *
 * @example
 * ```ts
 * import { fieldKind } from "./config.ts";
 * console.log(fieldKind("formats")); // "list"
 * ```
 */
export function fieldKind(key: keyof TrainConfig): "number" | "boolean" | "list" | "string" {
  if (NUMBERS[key]) return "number";
  if (BOOLEANS.has(key)) return "boolean";
  return key === "hidden" || key === "formats" ? "list" : "string";
}

/**
 * A list field's comma-separated string as its flag takes it: `512,256` → [512, 256] ('' or none: no
 * hidden layer), `vec,bin` → ["vec", "bin"] (empty items dropped). An item of `hidden` that is no number
 * stays a string, for {@link fieldProblem} to refuse.
 *
 * @example
 * ```ts
 * import { splitList } from "./config.ts";
 * console.log(splitList("hidden", "512,256")); // [512, 256]
 * ```
 */
export function splitList(key: "hidden" | "formats", raw: string): unknown[] {
  if (key !== "hidden") return commaList(raw);
  const t = raw.trim();
  if (t === "" || t === "none") return [];
  return t.split(",").map((x) => (/^\d+$/.test(x.trim()) ? Number(x.trim()) : x));
}

/**
 * What field `key` accepts, when `v` is not one of its values; undefined when it is. The one check of every
 * field's type and range: {@link resolveConfig} words it for a flag, lib/train/config_file.ts for a key of a
 * `--config` file.
 *
 * @example
 * ```ts
 * import { fieldProblem } from "./config.ts";
 * console.log(fieldProblem("dim", "50")); // "an integer ≥ 1 and ≤ 8192"
 * ```
 */
export function fieldProblem(key: keyof TrainConfig, v: unknown): string | undefined {
  const choices = CHOICES[key];
  if (choices) {
    return typeof v === "string" && choices.includes(v) ? undefined : `one of ${choices.join("|")}`;
  }
  const rule = NUMBERS[key];
  if (rule) {
    const ok = typeof v === "number" && Number.isFinite(v) && (!rule.int || Number.isInteger(v)) &&
      (rule.minExclusive ? v > rule.min : v >= rule.min) && (rule.max === undefined || v <= rule.max);
    return ok ? undefined : describe(rule);
  }
  if (BOOLEANS.has(key)) return typeof v === "boolean" ? undefined : "true or false";
  if (key === "hidden") {
    const ok = Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 1 && x <= MAX_WIDTH);
    return ok ? undefined : `a list of positive integers ≤ ${MAX_WIDTH} like 512,256`;
  }
  if (key === "formats") {
    const ok = Array.isArray(v) && v.length > 0 &&
      v.every((f) => (EMBEDDING_FORMATS as readonly unknown[]).includes(f));
    return ok ? undefined : `a list like vec,bin of one or more of ${EMBEDDING_FORMATS.join(",")}`;
  }
  if (key === "evalDir" && v === undefined) return undefined; // not given: the default folder
  return typeof v === "string" && v !== "" ? undefined : "a non-empty string";
}

/**
 * Parses a flag's string value for field `key` (numbers, the `--hidden 512,256` list, choices); throws a
 * UsageError naming the flag.
 *
 * @example
 * ```ts
 * import { parseField } from "./config.ts";
 * parseField("hidden", "512,256"); // [512, 256]
 * ```
 */
export function parseField(key: keyof TrainConfig, raw: string): unknown {
  const flag = FLAG_OF[key];
  if (key === "hidden") {
    const sizes = splitList(key, raw);
    if (sizes.some((x) => typeof x !== "number")) {
      throw new UsageError(
        `${flag} must be a comma-separated list of positive integers like 512,256, got '${raw}'`,
      );
    }
    return sizes;
  }
  if (key === "formats") return parseFormats(raw, flag);
  if (BOOLEANS.has(key)) {
    const t = raw.trim().toLowerCase();
    if (t === "true" || t === "1" || t === "yes") return true;
    if (t === "false" || t === "0" || t === "no") return false;
    throw new UsageError(`${flag} must be true or false (also 1 or yes, 0 or no), got '${raw}'`);
  }
  if (NUMBERS[key]) {
    const v = decimal(raw);
    if (!Number.isFinite(v)) throw new UsageError(`${flag} must be ${describe(NUMBERS[key]!)}, got '${raw}'`);
    return v;
  }
  return raw;
}

/**
 * Fills in the defaults and validates every field; throws a UsageError naming the flag, the value given
 * and what is accepted. Unknown keys (e.g. from a --config file) are refused.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * const c = resolveConfig({ mode: "skipgram", hidden: [256] });
 * ```
 */
export function resolveConfig(
  partial: Partial<Record<string, unknown>> = {},
  source = "configuration",
): TrainConfig {
  const out: Record<string, unknown> = {
    ...DEFAULT_CONFIG,
    hidden: [...DEFAULT_CONFIG.hidden],
    formats: [...DEFAULT_CONFIG.formats],
  };
  for (const [key, value] of Object.entries(partial)) {
    if (!Object.hasOwn(DEFAULT_CONFIG, key)) { // own keys: not "constructor", "toString", …
      throw new UsageError(
        `${source}: unknown setting '${key}'; known: ${Object.keys(DEFAULT_CONFIG).join(", ")}`,
      );
    }
    if (value !== undefined) out[key] = value;
  }
  for (const key of Object.keys(DEFAULT_CONFIG) as (keyof TrainConfig)[]) {
    const v = out[key];
    // names the unknown format; a format given twice is kept once
    if (key === "formats" && Array.isArray(v)) out.formats = parseFormats(v);
    const want = fieldProblem(key, v);
    if (want !== undefined) throw new UsageError(`${FLAG_OF[key]} must be ${want}, got '${String(v)}'`);
  }
  const c = out as TrainConfig;
  // the linear schedule's floor; the constant schedule never reads it
  if (c.schedule !== "constant" && c.lrMin > c.lr) {
    throw new UsageError(`--lr-min (${c.lrMin}) must not exceed --lr (${c.lr})`);
  }
  return c;
}

/**
 * The fields that define the model and its data: a checkpoint is only resumed under the same values.
 * The others may change on --resume (--lr, --lr-min, --schedule and --epochs change the rest of the run,
 * and are logged; --out, --checkpoint-every, --checkpoint-minutes, --keep-checkpoints, --formats,
 * --export-output and --eval-dir do not change the weights; --backend and --threads change their last bits
 * (another float32 summation order), and are logged). A resume
 * keeps the checkpoint's value of each field its command line does not give.
 *
 * @example
 * ```ts
 * import { IDENTITY_FIELDS } from "./config.ts";
 * console.log(IDENTITY_FIELDS.includes("dim")); // true
 * ```
 */
export const IDENTITY_FIELDS: readonly (keyof TrainConfig)[] = Object.freeze([
  "data",
  "mode",
  "dim",
  "hidden",
  "activation",
  "bag",
  "loss",
  "lossEpsilon",
  "zlossA",
  "zlossB",
  "targetPower",
  "targetScale",
  "output",
  "biasFeature",
  "batch",
  "minCount",
  "window",
  "sample",
  "validation",
  "limitTokens",
  "seed",
]);

/**
 * The identity fields on which two configs differ, as "--flag: a ≠ b" strings (empty when compatible).
 *
 * @example
 * ```ts
 * import { configDifferences, resolveConfig } from "./config.ts";
 * configDifferences(resolveConfig({ dim: 50 }), resolveConfig({ dim: 100 })); // ["--dim: 50 ≠ 100"]
 * ```
 */
export function configDifferences(a: TrainConfig, b: TrainConfig): string[] {
  const diffs: string[] = [];
  for (const k of IDENTITY_FIELDS) {
    const x = JSON.stringify(a[k]), y = JSON.stringify(b[k]);
    if (x !== y) diffs.push(`${FLAG_OF[k]}: ${x} ≠ ${y}`);
  }
  return diffs;
}

/**
 * Refuses (UsageError) to resume a run of config `a` under config `b` when their model or data fields
 * differ ({@link configDifferences}); returns the differences in the other fields (lr, epochs, …) for
 * logging, and says when a new lr resets the backoff multiplier `lrScale`.
 *
 * @example
 * ```ts
 * import { resolveConfig, resumeDifferences } from "./config.ts";
 * console.log(resumeDifferences(resolveConfig({}), resolveConfig({ epochs: 9 }), 1)); // ["epochs: 5 → 9"]
 * ```
 */
export function resumeDifferences(
  a: TrainConfig,
  b: TrainConfig,
  lrScale: number,
  source = "the checkpoint",
): string[] {
  const diffs = configDifferences(a, b);
  if (diffs.length) {
    throw new UsageError(
      `cannot resume ${source}: it was trained with another configuration (${diffs.join("; ")}). ` +
        `Drop those flags to continue it, or start a new run with another --out.`,
    );
  }
  const soft: string[] = [];
  for (const k of ["lr", "lrMin", "lrInputScale", "schedule", "epochs", "sampleDraws", "keepBest"] as const) {
    if (a[k] !== b[k]) soft.push(`${k}: ${a[k]} → ${b[k]}`);
  }
  if (a.lr !== b.lr && lrScale !== 1) {
    soft.push(`the backoff multiplier ${lrScale} is reset to 1 for the new lr`);
  }
  // float32 sums split over another number of threads round differently (the js backend has one thread)
  if (a.threads !== b.threads && b.backend !== "js") {
    const n = (t: number) => (t > 0 ? `${t}` : "0 (OpenBLAS's own count)");
    soft.push(
      `threads: ${n(a.threads)} → ${n(b.threads)}: the result matches an uninterrupted run only up to ` +
        `float32 rounding (resume without --threads to keep the run's count)`,
    );
  }
  const moved = backendChange(a.backend, b.backend);
  if (moved) soft.push(moved);
  return soft;
}

/**
 * The resume log line for a run going on on another backend than its checkpoint's, or undefined when it
 * is the same: another backend sums in another order (blas's sgemm, js's loops, the GPU's reductions).
 *
 * @example
 * ```ts
 * import { backendChange } from "./config.ts";
 * console.log(backendChange("blas", "js")); // "backend: blas → js: the result matches …"
 * console.log(backendChange("auto", "blas")); // undefined
 * ```
 */
export function backendChange(from: string, to: string): string | undefined {
  // "auto" is blas wherever OpenBLAS loads (lib/linalg/select.ts; a fallback to js is logged at the start)
  const sums = (b: string) => (b === "auto" ? "blas" : b);
  if (sums(from) === sums(to)) return undefined;
  return `backend: ${from} → ${to}: the result matches an uninterrupted run only up to ` +
    `float32 rounding (resume without --backend to keep the run's)`;
}

/** The run-shaping config fields a resumed trainer adopts. */
const RUN_FIELDS = [
  ...[
    "lr",
    "lrMin",
    "lrInputScale",
    "schedule",
    "epochs",
    "sampleDraws",
    "checkpointEvery",
    "checkpointMinutes",
  ],
  ...["keepCheckpoints", "keepBest", "out", "threads", "formats", "exportOutput", "evalDir"],
] as const;

/**
 * Copies the run-shaping fields (lr, lrMin, schedule, epochs, checkpointing, keepBest, out, and the job's
 * threads, formats, exportOutput and evalDir, which later checkpoints keep for the next resume) of `from`
 * into `to`.
 *
 * @example
 * ```ts
 * import { adoptRunFields, resolveConfig } from "./config.ts";
 * const c = resolveConfig({});
 * adoptRunFields(c, resolveConfig({ lr: 0.01 }));
 * console.log(c.lr); // 0.01
 * ```
 */
export function adoptRunFields(to: TrainConfig, from: TrainConfig): void {
  const c = to as Record<string, unknown>;
  for (const k of RUN_FIELDS) c[k] = Array.isArray(from[k]) ? [...(from[k] as unknown[])] : from[k];
}

/**
 * The most subsampling draws `--sample-draws 0` (one per epoch) prepares: each draw is a whole set of
 * windows on disk (Brown: 35 MB), and a longer run cycles through them.
 *
 * @example
 * ```ts
 * import { AUTO_SAMPLE_DRAWS_MAX } from "./config.ts";
 * console.log(AUTO_SAMPLE_DRAWS_MAX); // 20
 * ```
 */
export const AUTO_SAMPLE_DRAWS_MAX = 20;

/**
 * The subsampling draws a text corpus is prepared with: 1 without subsampling (`--sample 0`: every draw
 * would be the same), `--sample-draws` when given, else one per epoch up to {@link AUTO_SAMPLE_DRAWS_MAX}.
 *
 * @example
 * ```ts
 * import { resolveConfig, subsampleDraws } from "./config.ts";
 * subsampleDraws(resolveConfig({ epochs: 15 })); // 15
 * ```
 */
export function subsampleDraws(c: Pick<TrainConfig, "sample" | "sampleDraws" | "epochs">): number {
  if (!(c.sample > 0)) return 1;
  return c.sampleDraws > 0 ? c.sampleDraws : Math.min(c.epochs, AUTO_SAMPLE_DRAWS_MAX);
}
