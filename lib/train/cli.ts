/**
 * The command line of `deno task train`: flags (node:util parseArgs, strict), `--help`, `--config
 * file.json` merged under the flags, and validation into a {@link TrainConfig}.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import {
  DEBUG_FLAG,
  decimal,
  type FlagSpec as CoreFlagSpec,
  HELP_FLAG,
  helpText as formatHelp,
  parseFlags,
  positiveInt,
} from "../core/cli.ts";
import { DENO_TASK, exitCodesHelp } from "../core/exit_codes.ts";
import { DEFAULT_CONFIG, FLAG_OF, parseField, resolveConfig, type TrainConfig } from "./config.ts";
import { readConfigFile } from "./config_file.ts";
import { applyRecipe, recipesHelp } from "./recipes.ts";
import { EMBEDDING_FORMATS, type EmbeddingFormat } from "../export/read.ts";

/**
 * The embedding formats `--formats` accepts (publishEmbeddings writes them; lib/export/read.ts's list).
 *
 * @example
 * ```ts
 * import { FORMATS } from "./cli.ts";
 * console.log(FORMATS.join(",")); // "vec,bin,arrow,parquet"
 * ```
 */
export const FORMATS: readonly EmbeddingFormat[] = EMBEDDING_FORMATS;

/**
 * The parsed command line: the resolved config, which fields were given explicitly (flags or the config
 * file), and the options of this one command that a checkpoint does not keep (--threads, --formats,
 * --export-output and --eval-dir are config fields: a resume goes on with the run's).
 *
 * @example
 * ```ts
 * import { parseTrainArgs } from "./cli.ts";
 * const a = await parseTrainArgs(["--dim", "50"]);
 * console.log(a.config.dim, a.explicit.has("dim")); // 50 true
 * ```
 */
export type TrainArgs = {
  config: TrainConfig;
  /** config fields set by a flag or the --config file */
  explicit: Set<keyof TrainConfig>;
  /** --resume: a checkpoint file or a run folder */
  resume?: string;
  help: boolean;
  progress: "auto" | "live" | "json" | "none";
  /** --overwrite: a new run may replace the run already in --out */
  overwrite: boolean;
  /** --data-complete: shards without manifest.json must carry a `_SUCCESS` marker (lib/io/shards.ts) */
  dataComplete?: boolean;
  /** --wait: seconds to wait for the run folder's lock */
  waitSeconds: number;
  /** --keep-versions: after publishing, the versions of <out>/embeddings beyond the newest N are removed */
  keepVersions?: number;
  /** the per-mode/loss defaults applied under the explicit settings (lib/train/recipes.ts) */
  recipe?: { name: string; applied: Partial<TrainConfig> };
};

type FlagSpec = {
  key?: keyof TrainConfig;
  type: "string" | "boolean";
  help: string;
  def?: string;
  /** the value of a flag given alone (lib/core/cli.ts FlagSpec.bare) */
  bare?: string;
  /** its one-letter form (`-h`) */
  short?: string;
};

const FLAGS: Record<string, FlagSpec> = {
  data: {
    key: "data",
    type: "string",
    help:
      "'brown', a text file or folder (.txt/.gz), or Arrow/Parquet shards: a folder (manifest.json optional) or one file",
  },
  mode: { key: "mode", type: "string", help: "cbow | skipgram" },
  dim: { key: "dim", type: "string", help: "input embedding dimension" },
  hidden: {
    key: "hidden",
    type: "string",
    help: "hidden layer sizes, e.g. 512,256 ('' or none: no hidden layer)",
  },
  activation: { key: "activation", type: "string", help: "hidden activation: relu | tanh" },
  bag: {
    key: "bag",
    type: "string",
    help: "input embedding bag: mean | sum | mean-full (the mean, each row moved by the whole " +
      "gradient of the mean: fastText's CBOW update, not the loss's gradient)",
  },
  loss: { key: "loss", type: "string", help: "squared | spherical | taylor | zloss" },
  "loss-epsilon": { key: "lossEpsilon", type: "string", help: "spherical softmax's floor ε on every o_j²" },
  "zloss-a": { key: "zlossA", type: "string", help: "Z-loss sharpness a" },
  "zloss-b": { key: "zlossB", type: "string", help: "Z-loss offset b (target z-score)" },
  "target-power": {
    key: "targetPower",
    type: "string",
    help: "each target's value × (D·p(c))^−α, p(c) its corpus frequency; 0 = off, ≤ 1",
  },
  "target-scale": {
    key: "targetScale",
    type: "string",
    help: "every target's value × this constant (squared error: the outputs' scale)",
  },
  output: {
    key: "output",
    type: "string",
    help: "output layer: factored (exact, O(d²) per example) | naive (O(Dd))",
  },
  backend: {
    key: "backend",
    type: "string",
    help: "output layer backend: js | blas | webgpu | auto (blas when OpenBLAS loads, else js)",
  },
  epochs: { key: "epochs", type: "string", help: "passes over the data" },
  batch: { key: "batch", type: "string", help: "examples per minibatch" },
  lr: { key: "lr", type: "string", help: "initial learning rate" },
  "lr-min": { key: "lrMin", type: "string", help: "final learning rate of the linear schedule" },
  "lr-input-scale": {
    key: "lrInputScale",
    type: "string",
    help: "learning rate of the input embeddings and hidden layers, × --lr",
  },
  "bias-feature": {
    key: "biasFeature",
    type: "string",
    help: "constant appended to the last hidden vector (the output bias input)",
  },
  schedule: { key: "schedule", type: "string", help: "learning-rate schedule: constant | linear" },
  "min-count": { key: "minCount", type: "string", help: "drop words seen fewer times (text input)" },
  window: { key: "window", type: "string", help: "context window radius (text input)" },
  sample: {
    key: "sample",
    type: "string",
    help: "frequent-word subsampling threshold t, 0 = off (text input)",
  },
  "sample-draws": {
    key: "sampleDraws",
    type: "string",
    help:
      "subsampling draws prepared, epoch e reads draw e mod n; 0 = one per epoch (at most 20) (text input)",
  },
  validation: {
    key: "validation",
    type: "string",
    help: "fraction of examples held out for the validation loss",
  },
  "limit-tokens": {
    key: "limitTokens",
    type: "string",
    help: "read at most this many tokens, 0 = all (quick runs) (text input)",
  },
  seed: { key: "seed", type: "string", help: "seed of every random choice" },
  "checkpoint-every": {
    key: "checkpointEvery",
    type: "string",
    help: "steps between checkpoints, 0 = epoch ends only",
  },
  "checkpoint-minutes": {
    key: "checkpointMinutes",
    type: "string",
    help: "minutes between checkpoints, 0 = off (bounds the work lost to kill -9)",
  },
  "keep-checkpoints": {
    key: "keepCheckpoints",
    type: "string",
    help: "newest checkpoints kept (and the last epoch end's, which a rollback returns to)",
  },
  "keep-best": {
    key: "keepBest",
    type: "string",
    help: "true: end on the epoch with the lowest validation loss (checkpoints/best.fock) and publish it",
  },
  out: {
    key: "out",
    type: "string",
    help: "run folder: corpus/, checkpoints/, embeddings/ (versions + latest), summary.json",
  },
  resume: {
    type: "string",
    help: "continue from a checkpoint file or a run folder (its newest good checkpoint)",
    def: "(none)",
  },
  overwrite: {
    type: "boolean",
    help:
      "start a new run in an --out that holds one (its checkpoints go once the new run's first is written)",
    def: "false",
  },
  "data-complete": {
    type: "boolean",
    help: "--data shards without manifest.json must be a finished job's folder (Spark's _SUCCESS)",
    def: "false",
  },
  wait: {
    type: "string",
    help: "seconds to wait for another job's lock on --out before giving up (exit 3)",
    def: "0",
  },
  "keep-versions": {
    type: "string",
    help:
      "after publishing, remove the versions of <out>/embeddings beyond the newest N (latest always kept; " +
      "default: keep all; not kept in checkpoints: give it to each job)",
  },
  config: {
    type: "string",
    help: "JSON file of settings (camelCase keys as in docs/trainer-api.md); flags override it",
    def: "(none)",
  },
  threads: {
    key: "threads",
    type: "string",
    help: "OpenBLAS threads, 0 = OpenBLAS's default (--resume: the run's unless given)",
  },
  formats: {
    key: "formats",
    type: "string",
    help: "embedding files to publish: any of vec,bin,arrow,parquet (--resume: the run's unless given)",
  },
  "export-output": {
    key: "exportOutput",
    type: "string",
    bare: "true",
    help:
      "also publish the output rows of W: true (also given alone) | false (--resume: the run's unless given)",
  },
  "eval-dir": {
    key: "evalDir",
    type: "string",
    help: "word-similarity/analogy sets folder; 'none' skips evaluation (--resume: the run's unless given)",
    def: "$FACTOROUT_EVAL_DIR, else ../shared/eval",
  },
  progress: {
    type: "string",
    help: "auto (a live line on a terminal, JSON lines otherwise) | live | json | none",
    def: "auto",
  },
  debug: { type: "boolean", help: DEBUG_FLAG.help, def: "false" },
  help: { type: "boolean", short: HELP_FLAG.short, help: HELP_FLAG.help, def: "false" },
};

/**
 * The `--help` text: every flag with its default.
 *
 * @example
 * ```ts
 * import { helpText } from "./cli.ts";
 * console.log(helpText().includes("--dim")); // true
 * ```
 */
export function helpText(): string {
  const flags: Record<string, CoreFlagSpec> = {};
  for (const [name, f] of Object.entries(FLAGS)) {
    flags[name] = {
      type: f.type,
      help: f.help,
      default: f.def ?? (f.key ? shownDefault(DEFAULT_CONFIG[f.key]) : undefined),
      ...(f.bare === undefined ? {} : { bare: f.bare }),
      ...(f.short === undefined ? {} : { short: f.short }),
    };
  }
  const about = [
    "Train word embeddings with the exact factored output layer, then publish and evaluate them. With no",
    "flags: prepare the Brown corpus, train, export to runs/latest/embeddings.",
  ].join("\n");
  const notes = [
    "A step the factored layer refuses, or one whose loss is not finite, halves the step size (output and",
    "input side, on top of the schedule), going back to the last good state when the step may have changed",
    "it (a 'backoff' line); the run stops with exit 6 only once the step size would fall below 1/1024 of",
    "the schedule's. Each epoch's validation loss is reported; with --keep-best true (the default) the epoch",
    "with the lowest one is evaluated and published (checkpoints/best.fock) when a later epoch is worse.",
    "",
    "On SIGTERM, SIGINT or SIGHUP the step in progress is finished, a checkpoint written and the command",
    "to resume printed; then the exit code is 9.",
    "",
    recipesHelp(),
    "",
    exitCodesHelp("locked", "noCheckpoint", "badData", "diverged", "exportFailed", "stopped"),
  ].join("\n");
  return formatHelp(`${DENO_TASK} train [flags]`, flags, notes, about);
}

/** A config default as it is written on the command line (a list comma-separated). */
function shownDefault(v: unknown): string {
  return Array.isArray(v) ? v.join(",") : String(v);
}

/**
 * Parses the command line (and the --config file); throws UsageError for an unknown flag, a bad value
 * or an unreadable config file.
 *
 * @example
 * ```ts
 * import { parseTrainArgs } from "./cli.ts";
 * const a = await parseTrainArgs(["--mode", "skipgram", "--hidden", "256"]);
 * ```
 */
export async function parseTrainArgs(argv: string[]): Promise<TrainArgs> {
  const values = parseFlags(argv, FLAGS, { defaults: false }) as Record<string, string | boolean | undefined>;
  const partial: Record<string, unknown> = {};
  const explicit = new Set<keyof TrainConfig>();
  if (typeof values.config === "string") {
    for (const [k, v] of Object.entries(await readConfigFile(values.config))) {
      partial[k] = v;
      explicit.add(k as keyof TrainConfig);
    }
  }
  for (const [name, f] of Object.entries(FLAGS)) {
    const v = values[name];
    if (!f.key || v === undefined) continue;
    partial[f.key] = parseField(f.key, v as string);
    explicit.add(f.key);
  }
  const { config, ...recipe } = applyRecipe(
    resolveConfig(partial, typeof values.config === "string" ? `--config ${values.config}` : "configuration"),
    explicit,
  );
  const progress = (values.progress ?? "auto") as string;
  if (!["auto", "live", "json", "none"].includes(progress)) {
    throw new UsageError(`--progress must be one of auto|live|json|none, got '${progress}'`);
  }
  if (values.resume === "") throw new UsageError("--resume needs a checkpoint file or a run folder");
  const waitSeconds = typeof values.wait === "string" ? decimal(values.wait) : 0;
  if (!(Number.isFinite(waitSeconds) && waitSeconds >= 0)) {
    throw new UsageError(`--wait must be a number of seconds ≥ 0, got '${values.wait}'`);
  }
  const keepVersions = values["keep-versions"] === undefined
    ? undefined
    : positiveInt("--keep-versions", values["keep-versions"] as string);
  if (values.overwrite === true && typeof values.resume === "string") {
    throw new UsageError("--overwrite starts a new run; it cannot be combined with --resume");
  }
  return {
    config,
    explicit,
    ...(typeof values.resume === "string" ? { resume: values.resume } : {}),
    help: values.help === true,
    progress: progress as TrainArgs["progress"],
    overwrite: values.overwrite === true,
    ...(values["data-complete"] === true ? { dataComplete: true } : {}),
    waitSeconds,
    ...(keepVersions === undefined ? {} : { keepVersions }),
    recipe,
  };
}

/**
 * Flag name of a config field (for messages).
 *
 * @example
 * ```ts
 * import { flagOf } from "./cli.ts";
 * flagOf("lrMin"); // "--lr-min"
 * ```
 */
export function flagOf(key: keyof TrainConfig): string {
  return FLAG_OF[key];
}

/**
 * Whether a publishing job (refresh, export) publishes the output rows of W: its `--export-output [true|false]`
 * (train's name and values), or `--output-rows`, the older name, still accepted. Both given: a UsageError.
 *
 * @example
 * ```ts
 * import { exportOutputFlag } from "./cli.ts";
 * console.log(exportOutputFlag("false", undefined), exportOutputFlag(undefined, true)); // false true
 * ```
 */
export function exportOutputFlag(exportOutput: unknown, outputRows: unknown): boolean {
  if (exportOutput !== undefined && outputRows === true) {
    throw new UsageError("--output-rows is --export-output under its older name: give one of them");
  }
  return exportOutput !== undefined
    ? parseField("exportOutput", String(exportOutput)) === true
    : outputRows === true;
}
