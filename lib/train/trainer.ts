/**
 * The trainer: a {@link Model} over a vocabulary, its output layer, the seeded RNG, the run state (schedule
 * and reader position) and the validation set; the training loop with divergence detection, progress and
 * checkpoints; loading from and saving to checkpoints; growing the vocabulary. See docs/trainer-api.md.
 *
 * @module
 */

import {
  DataFormatError,
  DivergenceError,
  SingularMatrixError,
  SingularUpdateError,
  UsageError,
} from "../core/errors.ts";
import type {
  BackendName,
  CreateOutputLayerOptions,
  OutputLayer,
  OutputLayerState,
  SparseBatch,
} from "../core/types.ts";
import type { LinAlgBackend } from "../linalg/backend.ts";
import { createBackend } from "../linalg/select.ts";
import { headWidth, initParams, Model, type ModelParams, type ModelSpec } from "../model/model.ts";
import { attachStepPath } from "../model/gpu_model.ts";
import {
  type Checkpoint,
  checkpointName,
  pruneCheckpoints,
  readCheckpoint,
  vocabularyHash,
  writeCheckpoint,
} from "./checkpoint.ts";
import { join } from "node:path";
import { configDifferences, resolveConfig, type TrainConfig } from "./config.ts";
import { ProgressReporter } from "./progress.ts";
import { Rng } from "../core/rng.ts";
import { learningRate } from "./schedule.ts";
import { ValidationSplit } from "./split.ts";

/**
 * A vocabulary in id order.
 *
 * @example
 * ```ts
 * import type { Vocabulary } from "./trainer.ts";
 * const v: Vocabulary = { words: ["the", "of"], counts: [100, 50] };
 * ```
 */
export type Vocabulary = { words: string[]; counts: number[] };

/**
 * One minibatch from a reader (lib/io's `readExamples`): `position` resumes the stream right after it.
 *
 * @example
 * ```ts
 * import type { ReaderBatch } from "./trainer.ts";
 * const X = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(0), values: Float32Array.of(1) };
 * const b: ReaderBatch = { inputs: X, targets: X, position: null, epoch: 0, size: 1 };
 * ```
 */
export type ReaderBatch = {
  inputs: SparseBatch;
  targets: SparseBatch;
  position: unknown;
  epoch: number;
  size: number;
};

/**
 * Opens a stream of minibatches over shards (`position`: continue from a saved position).
 *
 * @example
 * ```ts
 * import type { OpenReader } from "./trainer.ts";
 * const open: OpenReader = async function* (paths, opts) {};
 * ```
 */
export type OpenReader = (
  paths: string[],
  opts: { batchSize: number; seed: number; epochs: number; position?: unknown },
) => AsyncIterable<ReaderBatch>;

/**
 * Creates the output layer (lib/layers' `createOutputLayer`).
 *
 * @example
 * ```ts
 * import type { CreateHead } from "./trainer.ts";
 * const f: CreateHead | undefined = undefined;
 * ```
 */
export type CreateHead = (opts: CreateOutputLayerOptions) => Promise<OutputLayer>;

/**
 * How a {@link Trainer} reaches the output layers and the reader, and where it logs.
 *
 * @example
 * ```ts
 * import type { TrainerDeps } from "./trainer.ts";
 * const deps: Partial<TrainerDeps> = { log: console.error };
 * ```
 */
export type TrainerDeps = {
  createHead: CreateHead;
  openReader: OpenReader;
  /** Informational lines (the backend, checkpoints); default console.error. */
  log: (line: string) => void;
};

/**
 * Options of {@link Trainer.train}.
 *
 * @example
 * ```ts
 * import type { TrainOptions } from "./trainer.ts";
 * const o: TrainOptions = { paths: ["corpus/part-00000.arrow"], rows: 1000, epochs: 1 };
 * ```
 */
export type TrainOptions = {
  /** Shards, in order. */
  paths: string[];
  /** Examples per epoch (the manifest's row count), for % done and the schedule. */
  rows: number;
  /** Epochs of this run; default config.epochs. */
  epochs?: number;
  /** Continue the run stored in the trainer (from a checkpoint) instead of starting a new one. */
  resume?: boolean;
  /** Where checkpoints go; none are written without it. */
  checkpointDir?: string;
  /** Steps between checkpoints (0: only at epoch ends and the end); default config.checkpointEvery. */
  checkpointEvery?: number;
  /** Checkpoints kept; default config.keepCheckpoints. */
  keepCheckpoints?: number;
  /** Minutes between checkpoints (0: off); default config.checkpointMinutes. */
  checkpointMinutes?: number;
  /**
   * Stop request (lib/core/stop.ts): checked after each step; when aborted, a checkpoint of that step is
   * written and train returns with `stopped: true`.
   */
  stop?: AbortSignal;
  /** Called after each checkpoint is written, with its path. */
  onCheckpoint?: (path: string) => Promise<void>;
  /** Progress output; default none. */
  progress?: ProgressReporter;
  /** End on the epoch with the lowest validation loss; default config.keepBest. */
  keepBest?: boolean;
};

/**
 * Each backoff halves the step-size multiplier (applied on top of the schedule, to the output and the input
 * side alike); a failure that would take it below this floor stops the run with DivergenceError. Ten
 * halvings are allowed: the smallest step tried is the schedule's lr / 1024.
 *
 * @example
 * ```ts
 * import { BACKOFF_FLOOR } from "./trainer.ts";
 * console.log(BACKOFF_FLOOR * 1024); // 1
 * ```
 */
export const BACKOFF_FLOOR = 1 / 1024;

/**
 * The name of the best epoch's checkpoint in the checkpoint folder (never pruned by --keep-checkpoints).
 *
 * @example
 * ```ts
 * import { BEST_CHECKPOINT } from "./trainer.ts";
 * console.log(BEST_CHECKPOINT); // "best.fock"
 * ```
 */
export const BEST_CHECKPOINT = "best.fock";

/**
 * The relative drift max|Q − WᵀW| / max|Q| of the factored layer's maintained Q checked at each epoch's end:
 * up to `repair` it is accepted; up to `rollback` Q is re-derived exactly (OutputLayer.refresh, a `repair`
 * event); beyond, the epoch was trained on a loss off by more than itself: a failure like a non-finite loss
 * (backoff and rollback). Healthy runs stay below 2e-4 (1e-8 on Brown); vocabularies of 50–500 words
 * reached 0.02 to 7e5 (docs/trainer-api.md).
 *
 * @example
 * ```ts
 * import { MAX_Q_DRIFT } from "./trainer.ts";
 * console.log(MAX_Q_DRIFT.repair, MAX_Q_DRIFT.rollback); // 0.01 1
 * ```
 */
export const MAX_Q_DRIFT = Object.freeze({ repair: 1e-2, rollback: 1 });

/**
 * The epoch-end health check ({@link MAX_Q_DRIFT}) runs when the output layer's D·d is at most this
 * (its O(Dd²) cost and D×d float32 temporary, 256 MB here, stay small next to an epoch).
 *
 * @example
 * ```ts
 * import { HEALTH_CHECK_MAX_DD } from "./trainer.ts";
 * console.log(HEALTH_CHECK_MAX_DD); // 67108864
 * ```
 */
export const HEALTH_CHECK_MAX_DD = 1 << 26;

/**
 * What {@link Trainer.train} returns.
 *
 * @example
 * ```ts
 * import type { TrainSummary } from "./trainer.ts";
 * const s: TrainSummary = {
 *   steps: 1, examples: 32, seconds: 0.1, examplesPerSecond: 320, trainLoss: 5, lr: 0.05, backoffs: 0, lrScale: 1,
 * };
 * ```
 */
export type TrainSummary = {
  /** Steps taken by this call. */
  steps: number;
  /** Examples read by this call. */
  examples: number;
  seconds: number;
  examplesPerSecond: number;
  /** Mean training loss per example over the last epoch. */
  trainLoss: number;
  /** Mean loss per held-out example at the end (when there is a validation set). */
  validationLoss?: number;
  /** The learning rate of the last step. */
  lr: number;
  /** The last checkpoint written, if any (the final state, also when the best epoch was kept). */
  checkpoint?: string;
  /** True when {@link TrainOptions.stop} ended the run early (after writing a checkpoint). */
  stopped?: boolean;
  /** Step-size halvings in the run so far (backoffs after a refused or non-finite step). */
  backoffs: number;
  /** The step-size multiplier they left, applied on top of the schedule (1: no backoff). */
  lrScale: number;
  /** The epoch of the run (1-based) with the lowest validation loss, and that loss. */
  bestEpoch?: number;
  bestValidationLoss?: number;
  /** The epoch whose parameters the trainer holds at the end: the best one under keepBest, else the last. */
  keptEpoch?: number;
};

/** The state of the current run (what resume continues). */
type RunState = {
  paths: string[];
  rows: number;
  epochs: number;
  /** examples read so far in this run (held-out included) */
  examples: number;
  epoch: number;
  position: unknown;
  epochLoss: number;
  epochCount: number;
  /** step-size multiplier left by backoffs (1: none); halved at each, carried by checkpoints */
  lrScale: number;
  backoffs: number;
  /** the epoch (1-based) with the lowest validation loss so far, and the step at its end */
  best?: { epoch: number; step: number; validationLoss: number };
};

/** A step that could not be taken: refused by the guard (state unchanged) or not finite (state suspect). */
type StepFailure = { rollback: boolean; what: string };

/**
 * A state to go back to: an in-memory snapshot or a checkpoint file holding the parameters, with the run
 * state of that moment (a new run on the state of a loaded file has its own).
 */
type GoodState = { ckpt: Checkpoint; file?: undefined; run: RunState } | { file: string; run: RunState };

/**
 * The output layer's init: W₀ uniform in ±1/d (W₀ = 0 is a saddle of the spherical losses).
 */
function initOutputRows(n: number, d: number, rng: Rng): Float32Array {
  const W = new Float32Array(n * d);
  rng.fillUniform(W, 1 / d);
  return W;
}

function specOf(config: TrainConfig, vocab: number): ModelSpec {
  return {
    vocab,
    dim: config.dim,
    hidden: [...config.hidden],
    activation: config.activation,
    bag: config.bag,
    bias: config.biasFeature,
  };
}

/**
 * A model, its output layer and everything needed to continue training it exactly.
 *
 * @example
 * ```ts
 * import { Trainer } from "./trainer.ts";
 * const trainer = await Trainer.fromCheckpoint("runs/latest/checkpoints/ckpt-000000001000.fock").catch(() => null);
 * trainer?.close();
 * ```
 */
export class Trainer {
  /** Optimisation steps so far (over all runs). */
  step = 0;
  #run: RunState | null = null;
  #lastCheckpoint: string | undefined;
  #split: ValidationSplit;
  #la: LinAlgBackend | undefined;
  #output: OutputLayer;
  /** A checkpoint file holding exactly the current state (none once it changes). */
  #cleanFile: string | undefined;

  private constructor(
    readonly config: TrainConfig,
    readonly vocab: Vocabulary,
    readonly model: Model,
    output: OutputLayer,
    readonly rng: Rng,
    readonly deps: TrainerDeps,
    la?: LinAlgBackend,
  ) {
    this.#split = new ValidationSplit(config.validation);
    this.#la = la;
    this.#output = output;
    try {
      this.#attachStepPath();
    } catch (e) {
      output.close();
      throw e;
    }
  }

  /** The model's step path for the backend (lib/model/gpu_model.ts: the whole model on the GPU for webgpu). */
  #attachStepPath(): void {
    const backend = this.config.backend === "webgpu" ? "webgpu" : this.#output.backend;
    attachStepPath(this.model, { backend, log: this.deps.log });
  }

  /** The output layer (rebuilt when a backoff rolls the state back). */
  get output(): OutputLayer {
    return this.#output;
  }

  /** Which backend runs the output layer. */
  get backend(): BackendName {
    return this.output.backend;
  }

  /**
   * A fresh trainer: parameters drawn from `config.seed` (E, hidden layers, then W₀).
   */
  static async create(
    opts: { config: TrainConfig; vocab: Vocabulary } & Partial<TrainerDeps>,
  ): Promise<Trainer> {
    const deps = await resolveDeps(opts);
    const config = resolveConfig(opts.config);
    const V = opts.vocab.words.length;
    if (V < 1 || opts.vocab.counts.length !== V) {
      throw new UsageError(
        `vocabulary: ${V} words and ${opts.vocab.counts.length} counts; need at least one word and one count per word`,
      );
    }
    const rng = new Rng(config.seed);
    const spec = specOf(config, V);
    const initRng = rng.split();
    const params = initParams(spec, () => initRng.next());
    const d = headWidth(spec);
    const output = await deps.createHead({
      kind: config.output,
      D: V,
      d,
      init: initOutputRows(V, d, initRng),
      loss: config.loss,
      lossOptions: lossOptionsOf(config),
      backend: config.backend,
      log: deps.log,
    });
    deps.log(
      `output layer: ${config.output}, backend ${output.backend}, D = ${V}, d = ${d}, loss ${config.loss}`,
    );
    const vocab = { words: [...opts.vocab.words], counts: [...opts.vocab.counts] };
    const la = await hiddenBackend(config, deps.log);
    return new Trainer(config, vocab, new Model(spec, params, output, la), output, rng, deps, la);
  }

  /**
   * A trainer restored from a checkpoint file (or an already read {@link Checkpoint}). `backend`
   * overrides the checkpoint's backend (the weights are the same on every backend).
   */
  static async fromCheckpoint(
    source: string | Checkpoint,
    opts: Partial<TrainerDeps> & { backend?: TrainConfig["backend"] } = {},
  ): Promise<Trainer> {
    const deps = await resolveDeps(opts);
    const file = typeof source === "string" ? source : "<checkpoint>";
    const ckpt = typeof source === "string" ? await readCheckpoint(source) : source;
    // deno-lint-ignore no-explicit-any
    const meta = ckpt.meta as Record<string, any>;
    const bad = (what: string): never => {
      throw new DataFormatError(file, `not a trainer checkpoint: ${what}`);
    };
    if (meta.kind !== "factorout-trainer") bad(`kind is ${JSON.stringify(meta.kind)}`);
    let config: TrainConfig;
    try {
      config = resolveConfig(
        { ...meta.config, ...(opts.backend ? { backend: opts.backend } : {}) },
        `${file} config`,
      );
    } catch (e) {
      throw new DataFormatError(file, (e as Error).message);
    }
    const words = meta.vocab?.words, counts = meta.vocab?.counts;
    if (!Array.isArray(words) || !Array.isArray(counts) || words.length !== counts.length) {
      bad("vocabulary missing");
    }
    const hash = await vocabularyHash(words);
    if (hash !== meta.vocabHash) bad(`vocabulary hash ${hash} ≠ stored ${meta.vocabHash}`);
    const V = words.length, spec = specOf(config, V), d = headWidth(spec);
    const arr = (name: string, length: number): Float32Array => {
      const a = ckpt.arrays[name];
      if (!(a instanceof Float32Array) || a.length !== length) {
        bad(`array ${name} has ${a?.length} elements, expected ${length} float32`);
      }
      return a as Float32Array;
    };
    const params: ModelParams = { E: arr("model.E", V * config.dim), layers: [] };
    let n = config.dim;
    config.hidden.forEach((p, l) => {
      params.layers.push({ A: arr(`model.A.${l}`, p * n), b: arr(`model.b.${l}`, p) });
      n = p;
    });
    const state = outputStateOf(meta, ckpt.arrays, bad);
    if (state.D !== V || state.d !== d) bad(`output layer is ${state.D}×${state.d}, expected ${V}×${d}`);
    const output = await deps.createHead({
      kind: config.output,
      D: V,
      d,
      state,
      loss: config.loss,
      lossOptions: lossOptionsOf(config),
      backend: config.backend,
      log: deps.log,
    });
    deps.log(
      `output layer: ${config.output}, backend ${output.backend}, D = ${V}, d = ${d}, loss ${config.loss} (from ${file})`,
    );
    const la = await hiddenBackend(config, deps.log);
    const trainer = new Trainer(
      config,
      { words: [...words], counts: [...counts] },
      new Model(spec, params, output, la),
      output,
      Rng.fromState(meta.rng),
      deps,
      la,
    );
    trainer.step = meta.step;
    trainer.#run = meta.run ? { lrScale: 1, backoffs: 0, ...meta.run } : null;
    trainer.#split.importState(ckpt.arrays);
    if (typeof source === "string") trainer.#lastCheckpoint = trainer.#cleanFile = source;
    return trainer;
  }

  /**
   * Refuses (UsageError) to continue under a config whose model or data fields differ from this
   * trainer's; returns the differences in the other fields (lr, epochs, …) for logging.
   */
  checkCompatible(config: TrainConfig, source = "the checkpoint"): string[] {
    const diffs = configDifferences(this.config, config);
    if (diffs.length) {
      throw new UsageError(
        `cannot resume ${source}: it was trained with another configuration (${diffs.join("; ")}). ` +
          `Drop those flags to continue it, or start a new run with another --out.`,
      );
    }
    const soft: string[] = [];
    for (const k of ["lr", "lrMin", "lrInputScale", "schedule", "epochs", "keepBest"] as const) {
      if (this.config[k] !== config[k]) soft.push(`${k}: ${this.config[k]} → ${config[k]}`);
    }
    if (this.config.lr !== config.lr && this.#run && this.#run.lrScale !== 1) {
      soft.push(`the backoff multiplier ${this.#run.lrScale} is reset to 1 for the new lr`);
    }
    return soft;
  }

  /**
   * Adopts the run-shaping fields (lr, lrMin, schedule, epochs, checkpointing, keepBest, out) of `config`;
   * a new lr resets the backoff multiplier to 1 (the new lr is taken as asked).
   */
  adopt(config: TrainConfig): void {
    this.checkCompatible(config);
    if (this.#run && this.config.lr !== config.lr) this.#run.lrScale = 1;
    const c = this.config as Record<string, unknown>;
    for (
      const k of [
        "lr",
        "lrMin",
        "lrInputScale",
        "schedule",
        "epochs",
        "checkpointEvery",
        "checkpointMinutes",
        "keepCheckpoints",
        "keepBest",
        "out",
      ] as const
    ) {
      c[k] = config[k];
    }
    if (this.#run) this.#run.epochs = config.epochs;
  }

  /** The examples done and planned in the current run (null before any). */
  get runProgress(): { examples: number; total: number; epoch: number } | null {
    const r = this.#run;
    return r ? { examples: r.examples, total: r.rows * r.epochs, epoch: r.epoch } : null;
  }

  /** The last checkpoint written or loaded. */
  get lastCheckpoint(): string | undefined {
    return this.#lastCheckpoint;
  }

  /** Mean loss per held-out example (undefined when there is no validation set). */
  async validationLoss(): Promise<number | undefined> {
    if (this.#split.size === 0) return undefined;
    let sum = 0;
    for (const b of this.#split.batches(this.config.batch)) {
      sum += await this.model.evaluate(b.inputs, b.targets);
    }
    return sum / this.#split.size;
  }

  /**
   * Trains over shards; see {@link TrainOptions}. A step the factored layer's guard refuses, or one whose
   * loss or gradient is not finite, is not fatal: the step size is halved ({@link BACKOFF_FLOOR}), the
   * state is rolled back to the last good one when the failed step may have changed it, and training goes
   * on (a `backoff` log event). Throws DivergenceError, naming the step, once the multiplier would fall
   * below the floor; checkpoints already written are left as they are. With keepBest, a run whose last
   * epoch has a higher validation loss than an earlier one ends with the trainer holding that earlier
   * epoch's state (as if loaded from its checkpoint); the final state stays in the last checkpoint.
   */
  async train(opts: TrainOptions): Promise<TrainSummary> {
    const c = this.config;
    const epochs = opts.epochs ?? c.epochs;
    if (!(opts.rows > 0)) {
      throw new UsageError(`train: rows must be > 0 (the examples per epoch), got ${opts.rows}`);
    }
    if (opts.resume && this.#run && sameList(this.#run.paths, opts.paths)) {
      this.#run.epochs = epochs;
      this.#run.rows = opts.rows;
    } else {
      if (opts.resume && this.#run) {
        throw new UsageError(
          `cannot resume: the checkpoint's run read ${this.#run.paths.join(", ")}, not ${
            opts.paths.join(", ")
          }`,
        );
      }
      this.#run = {
        paths: [...opts.paths],
        rows: opts.rows,
        epochs,
        examples: 0,
        epoch: 0,
        position: null,
        epochLoss: 0,
        epochCount: 0,
        lrScale: 1,
        backoffs: 0,
      };
    }
    let run = this.#run;
    const every = opts.checkpointEvery ?? c.checkpointEvery, keep = opts.keepCheckpoints ?? c.keepCheckpoints;
    const keepBest = opts.keepBest ?? c.keepBest, dir = opts.checkpointDir;
    const progress = opts.progress ?? new ProgressReporter("none", 1, () => {});
    const total = run.rows * run.epochs;
    const t0 = performance.now(), startExamples = run.examples, startStep = this.step;
    let lr = learningRate(c, run.examples, total) * run.lrScale, ema = NaN, lastEpochLoss = NaN;
    const sample = () => ({
      step: this.step,
      epoch: run.epoch,
      examples: run.examples,
      total,
      lr,
      loss: ema,
      seconds: (performance.now() - t0) / 1000,
      startExamples,
    });
    // The last good state, for a rollback: the checkpoint file that holds the current state when there
    // is one, else an in-memory copy (a checkpoint's size) until this run writes a checkpoint.
    let good = await this.#goodState(), goodStep = this.step;
    // The best epoch's state: best.fock with a checkpoint folder, else the in-memory good state of its step.
    let bestState: GoodState | undefined;
    // a checkpoint of a step that is already saved (an epoch end right after a periodic checkpoint, or a
    // resume that has not stepped yet) is not rewritten
    const minutes = opts.checkpointMinutes ?? c.checkpointMinutes;
    let savedAt = performance.now(), stopped = false;
    const save = async () => {
      await flush();
      if (dir && !this.#cleanFile) {
        const path = await this.saveCheckpoint(dir, { keep });
        savedAt = performance.now();
        await opts.onCheckpoint?.(path);
      }
      if (this.#cleanFile || goodStep !== this.step) good = await this.#goodState();
      goodStep = this.step;
    };
    const saveBest = async () => {
      if (!keepBest) return;
      if (!dir) {
        bestState = good; // save() has just made it the state of this step
        return;
      }
      await Deno.mkdir(dir, { recursive: true });
      await writeCheckpoint(join(dir, BEST_CHECKPOINT), await this.toCheckpoint());
      bestState = { file: join(dir, BEST_CHECKPOINT), run: structuredClone(run) };
    };
    /** Counts the steps whose losses are known (every step on the host path; each read-back on the GPU path). */
    const account = (pairs: [number, number][]) => {
      for (const [l, n] of pairs) {
        run.epochLoss += l;
        run.epochCount += n;
        ema = Number.isNaN(ema) ? l / n : 0.995 * ema + 0.005 * (l / n);
      }
    };
    const flush = async () => account(await this.model.flush());
    const note = (event: Record<string, unknown>, text: string) => {
      this.deps.log(JSON.stringify(event));
      progress.note(event, text);
    };
    /** Logs the epoch's losses; true when its validation loss is the lowest of the run so far. */
    const endEpoch = async (): Promise<boolean> => {
      lastEpochLoss = run.epochCount ? run.epochLoss / run.epochCount : NaN;
      const val = await this.validationLoss();
      const better = val !== undefined && Number.isFinite(val) &&
        (!run.best || val <= run.best.validationLoss);
      if (better) run.best = { epoch: run.epoch + 1, step: this.step, validationLoss: val };
      note(
        {
          event: "epoch",
          epoch: run.epoch + 1,
          step: this.step,
          trainLoss: lastEpochLoss,
          ...(val === undefined ? {} : { validationLoss: val, bestEpoch: run.best?.epoch }),
        },
        `epoch ${run.epoch + 1}/${run.epochs}: train loss ${fmt4(lastEpochLoss)}` +
          (val === undefined ? "" : `, validation loss ${fmt4(val)}` +
            (better
              ? " (best so far)"
              : ` (epoch ${run.best!.epoch}'s ${fmt4(run.best!.validationLoss)} is lower)`)),
      );
      run.epochLoss = 0;
      run.epochCount = 0;
      return better;
    };
    /** A failed step: halve the multiplier (or stop at the floor), roll back when needed; true if rolled back. */
    const backoff = async (f: StepFailure): Promise<boolean> => {
      const failed = this.step + 1, epoch = run.epoch + 1, scale = run.lrScale / 2;
      if (scale < BACKOFF_FLOOR) throw this.#divergence(lr, f.what);
      const carried = { lrScale: scale, backoffs: run.backoffs + 1, best: run.best };
      if (f.rollback) {
        try {
          await this.#restore(good);
        } catch (e) {
          throw this.#divergence(
            lr,
            `${f.what}; the last good state cannot be restored: ${(e as Error).message}`,
          );
        }
        run = this.#run!;
      }
      Object.assign(run, carried);
      if (!run.best) delete run.best;
      lr = learningRate(c, run.examples, total) * run.lrScale;
      note(
        {
          event: "backoff",
          step: failed,
          epoch,
          lr,
          lrScale: run.lrScale,
          reason: f.what,
          ...(f.rollback ? { rolledBackTo: this.step } : {}),
        },
        `backoff at step ${failed}: ${
          f.rollback ? "state off" : "update refused"
        }; step size ×${run.lrScale} ` +
          `(lr ${fmt(lr)})` + (f.rollback ? `, rolled back to step ${this.step}` : ", batch retried"),
      );
      return f.rollback;
    };
    let improved = false, rolledBack = true;
    while (rolledBack) {
      rolledBack = false;
      const reader = this.deps.openReader(run.paths, {
        batchSize: c.batch,
        seed: c.seed,
        epochs: run.epochs,
        ...(run.position == null ? {} : { position: run.position }),
      });
      for await (const b of reader) {
        if (b.epoch !== run.epoch) {
          await flush();
          // an epoch's end is where the state is declared good: check the output layer's health first
          const sick = run.epochCount > 0 ? await this.#health(note) : undefined;
          if (sick && (rolledBack = await backoff(sick))) break;
          improved = run.epochCount > 0 && await endEpoch();
          run.epoch = b.epoch;
          await save();
          if (improved) await saveBest();
        }
        const { inputs, targets } = this.#split.apply(b.inputs, b.targets, b.epoch === 0);
        const m = inputs.offsets.length - 1;
        lr = learningRate(c, run.examples, total) * run.lrScale;
        if (m > 0) {
          let loss: number | StepFailure;
          for (;;) {
            loss = await this.#attempt(inputs, targets, lr, lr * c.lrInputScale);
            if (typeof loss === "number" || (rolledBack = await backoff(loss))) break;
          }
          if (rolledBack) break; // reopen the reader at the restored position
          this.step++;
          this.#cleanFile = undefined;
          account(this.model.settled(loss as number, m));
        }
        run.examples += b.size;
        run.position = b.position;
        if (every > 0 && m > 0 && this.step % every === 0) await save();
        else if (minutes > 0 && performance.now() - savedAt >= minutes * 60000) await save();
        progress.update(sample());
        if (opts.stop?.aborted) {
          stopped = true;
          break;
        }
      }
      if (!rolledBack) await flush();
      const sick = !rolledBack && run.epochCount > 0 ? await this.#health(note) : undefined;
      if (sick) rolledBack = await backoff(sick);
    }
    if (stopped) {
      await save();
      progress.finish();
      const seconds = (performance.now() - t0) / 1000;
      return {
        steps: this.step - startStep,
        examples: run.examples - startExamples,
        seconds,
        examplesPerSecond: seconds > 0 ? (run.examples - startExamples) / seconds : 0,
        trainLoss: run.epochCount ? run.epochLoss / run.epochCount : lastEpochLoss,
        lr,
        ...(this.#lastCheckpoint ? { checkpoint: this.#lastCheckpoint } : {}),
        backoffs: run.backoffs,
        lrScale: run.lrScale,
        stopped: true,
      };
    }
    improved = run.epochCount > 0 && await endEpoch();
    run.epoch = run.epochs;
    run.examples = Math.max(run.examples, total);
    progress.update(sample(), true);
    progress.finish();
    await save();
    if (improved) await saveBest();
    const seconds = (performance.now() - t0) / 1000;
    const best = run.best;
    const summary: TrainSummary = {
      steps: this.step - startStep,
      examples: run.examples - startExamples,
      seconds,
      examplesPerSecond: seconds > 0 ? (run.examples - startExamples) / seconds : 0,
      trainLoss: lastEpochLoss,
      lr,
      ...(this.#lastCheckpoint ? { checkpoint: this.#lastCheckpoint } : {}),
      backoffs: run.backoffs,
      lrScale: run.lrScale,
      ...(best ? { bestEpoch: best.epoch, bestValidationLoss: best.validationLoss } : {}),
      keptEpoch: run.epochs,
    };
    if (keepBest && best && best.step !== this.step) {
      if (await this.#restoreBest(best, bestState, dir && join(dir, BEST_CHECKPOINT))) {
        summary.keptEpoch = best.epoch;
        note(
          { event: "best", epoch: best.epoch, step: best.step, validationLoss: best.validationLoss },
          `keeping epoch ${best.epoch}'s parameters: its validation loss ${fmt4(best.validationLoss)} ` +
            `is the lowest (the final state is in ${this.#lastCheckpoint ?? "no checkpoint"})`,
        );
      }
    }
    const validationLoss = await this.validationLoss();
    return { ...summary, ...(validationLoss === undefined ? {} : { validationLoss }) };
  }

  /** One step; a refusal or a non-finite loss comes back as a {@link StepFailure} instead of a throw. */
  async #attempt(X: SparseBatch, Y: SparseBatch, lr: number, lrIn: number): Promise<number | StepFailure> {
    let loss: number;
    try {
      loss = await this.model.step(X, Y, lr, lrIn);
    } catch (e) {
      // the guard refuses before the output layer (and, since the head steps first, the model) changes:
      // nothing to roll back. The layer's non-finite loss leaves it unchanged too, but the state itself
      // gives that loss at any step size: roll back. So for U found singular by the upkeep after a step.
      const what = (e as Error).message.replace(/\.\s*$/, "");
      if (e instanceof SingularUpdateError) return { rollback: false, what };
      if (e instanceof DivergenceError || e instanceof SingularMatrixError) return { rollback: true, what };
      throw e;
    }
    // NaN from the model: H was not finite (an earlier step broke E) or ∇H was not (the head has stepped)
    if (!Number.isFinite(loss)) {
      return { rollback: true, what: `the loss or a gradient is ${loss} (not finite)` };
    }
    return loss;
  }

  /**
   * The epoch-end check of the factored layer's maintained Q = WᵀW ({@link MAX_Q_DRIFT}): a small drift is
   * repaired (an exact refresh, logged through `note`), a large one (or a U that cannot be inverted) is a
   * failure to roll back: the losses and gradients of the epoch were not those of the weights. O(Dd²) and a
   * D×d temporary, so only for layers with D·d ≤ {@link HEALTH_CHECK_MAX_DD}.
   */
  async #health(
    note: (event: Record<string, unknown>, text: string) => void,
  ): Promise<StepFailure | undefined> {
    const out = this.#output;
    if (out.D * out.d > HEALTH_CHECK_MAX_DD) return undefined;
    let drift: number | undefined;
    try {
      drift = (await out.diagnostics({ full: true })).qDrift;
    } catch (e) {
      if (e instanceof SingularMatrixError) return { rollback: true, what: e.message };
      throw e;
    }
    if (drift === undefined || drift <= MAX_Q_DRIFT.repair) return undefined;
    const off = `at the epoch's end the factored layer's Q = WᵀW is off by ${fmt(drift)} (relative)`;
    if (drift <= MAX_Q_DRIFT.rollback && out.refresh) {
      out.refresh();
      note(
        { event: "repair", step: this.step, epoch: this.#run!.epoch + 1, qDrift: drift },
        `${off}: re-derived exactly`,
      );
      return undefined;
    }
    return { rollback: true, what: `${off}: the epoch's losses were not those of its weights` };
  }

  /**
   * The current state to go back to: the checkpoint file that holds it when there is one (nothing in
   * memory but the run state), else a copy of it (a checkpoint's size) that later steps do not change.
   */
  async #goodState(): Promise<GoodState> {
    const run = structuredClone(this.#run!);
    if (this.#cleanFile) return { file: this.#cleanFile, run };
    const ckpt = await this.toCheckpoint();
    for (const k of Object.keys(ckpt.arrays)) {
      if (k.startsWith("model.")) ckpt.arrays[k] = ckpt.arrays[k].slice();
    }
    return { ckpt, run };
  }

  /**
   * Sets the parameters, output layer, step, run and validation set to a saved state (of this trainer's
   * model and vocabulary). The RNG is left as it is: training does not draw from it.
   */
  async #restore(from: GoodState): Promise<void> {
    const ckpt = from.file === undefined ? from.ckpt : await readCheckpoint(from.file);
    const a = ckpt.arrays;
    const bad = (what: string): never => {
      throw new DataFormatError(from.file ?? "<snapshot>", what);
    };
    if (a["model.E"]?.length !== this.model.bag.E.length) bad("model.E does not match the model");
    this.model.bag.E.set(a["model.E"]);
    this.model.layers.forEach((l, i) => {
      l.A.set(a[`model.A.${i}`]);
      l.b.set(a[`model.b.${i}`]);
    });
    // deno-lint-ignore no-explicit-any
    const meta = ckpt.meta as Record<string, any>;
    // copied: the layer may keep the arrays, and an in-memory snapshot must stay as it is
    const state = outputStateOf(meta, a, bad, from.file === undefined);
    const head = await this.deps.createHead({
      kind: this.config.output,
      D: state.D,
      d: state.d,
      state,
      loss: this.config.loss,
      backend: this.#output.backend,
      log: () => {},
    });
    this.#output.close();
    this.#output = head;
    this.model.head = head;
    this.#attachStepPath();
    this.step = meta.step;
    this.#run = structuredClone(from.run);
    this.#split.importState(a);
    this.#cleanFile = from.file;
  }

  /**
   * Restores the best epoch's state (this run's in-memory or file copy, else the file `file`); false, with
   * a log line, when it is gone or is not that step's.
   */
  async #restoreBest(
    best: NonNullable<RunState["best"]>,
    saved: GoodState | undefined,
    file: string | undefined,
  ): Promise<boolean> {
    let from = saved;
    if (!from && file) {
      const ckpt = await readCheckpoint(file).catch(() => undefined);
      // deno-lint-ignore no-explicit-any
      const run = (ckpt?.meta as Record<string, any> | undefined)?.run;
      if (ckpt?.meta.step === best.step && run) from = { file, run: { lrScale: 1, backoffs: 0, ...run } };
    }
    const step = from?.file === undefined ? from?.ckpt.meta.step : best.step;
    if (!from || step !== best.step) {
      this.deps.log(
        `keep-best: epoch ${best.epoch}'s state (step ${best.step}) is not in ${file ?? "memory"}; ` +
          `keeping the last epoch's parameters`,
      );
      return false;
    }
    await this.#restore(from);
    return true;
  }

  #divergence(lr: number, what: string): DivergenceError {
    const run = this.#run!, step = this.step + 1;
    const last = this.#lastCheckpoint
      ? `The last good checkpoint ${this.#lastCheckpoint} is intact: continue it with --resume ${this.#lastCheckpoint} --lr ${
        fmt(this.config.lr / 4)
      }.`
      : "No checkpoint had been written yet.";
    const backed = run.backoffs > 0
      ? ` after ${run.backoffs} backoffs had halved the step size to ×1/${
        1 / run.lrScale
      } of the schedule's ` +
        `(the floor is ×1/${1 / BACKOFF_FLOOR})`
      : "";
    return new DivergenceError(
      step,
      `training diverged at step ${step} (epoch ${run.epoch + 1}, lr ${fmt(lr)})${backed}: ${what}. ` +
        `Lower --lr (now ${fmt(this.config.lr)}; try ${fmt(this.config.lr / 4)})` +
        (this.config.loss === "squared" ? "" : " or try --loss squared") + `. ${last}`,
    );
  }

  /**
   * Appends new words: new input rows uniform in ±1/dim, new output rows entering W exactly (desired rows
   * uniform in ±1/d, through OutputLayer.appendRows), both from the trainer's RNG. Returns their ids.
   */
  async growVocabulary(newWords: string[], counts: number[]): Promise<number[]> {
    if (newWords.length !== counts.length) {
      throw new UsageError(`growVocabulary: ${newWords.length} words but ${counts.length} counts`);
    }
    const known = new Set(this.vocab.words), seen = new Set<string>();
    const dup = newWords.filter((w) => known.has(w) || seen.has(w) || !seen.add(w));
    if (dup.length) {
      throw new UsageError(
        `growVocabulary: already in the vocabulary (or repeated): ${dup.slice(0, 10).join(", ")}`,
      );
    }
    const n = newWords.length;
    if (n === 0) return [];
    const V = this.vocab.words.length, dim = this.config.dim, d = this.model.d;
    await this.model.syncHost();
    const rng = this.rng.split();
    const E = new Float32Array(n * dim);
    rng.fillUniform(E, 1 / dim);
    this.#cleanFile = undefined;
    await this.output.appendRows(initOutputRows(n, d, rng));
    this.model.bag.appendRows(E);
    this.model.resident?.upload();
    this.model.spec.vocab = V + n;
    this.vocab.words.push(...newWords);
    this.vocab.counts.push(...counts);
    return Array.from({ length: n }, (_, i) => V + i);
  }

  /** The complete state as a {@link Checkpoint}. */
  async toCheckpoint(): Promise<Checkpoint> {
    await this.model.syncHost();
    const state = await this.output.exportState();
    const arrays: Checkpoint["arrays"] = { "model.E": this.model.bag.E };
    this.model.layers.forEach((l, i) => {
      arrays[`model.A.${i}`] = l.A;
      arrays[`model.b.${i}`] = l.b;
    });
    for (const [k, a] of Object.entries(state.arrays)) arrays[`output.${k}`] = a;
    Object.assign(arrays, this.#split.exportState());
    const meta = {
      kind: "factorout-trainer",
      config: this.config,
      vocab: this.vocab,
      vocabHash: await vocabularyHash(this.vocab.words),
      step: this.step,
      rng: this.rng.state(),
      run: this.#run,
      output: {
        kind: state.kind,
        D: state.D,
        d: state.d,
        loss: state.loss,
        lossOptions: state.lossOptions,
        scalars: state.scalars,
        arrays: Object.keys(state.arrays),
      },
      createdAt: new Date().toISOString(),
    };
    return { meta, arrays };
  }

  /** Writes `ckpt-<step>.fock` into `dir` atomically and keeps the newest `keep`; returns its path. */
  async saveCheckpoint(dir: string, opts: { keep?: number } = {}): Promise<string> {
    await Deno.mkdir(dir, { recursive: true });
    const path = `${dir}/${checkpointName(this.step)}`;
    await writeCheckpoint(path, await this.toCheckpoint());
    await pruneCheckpoints(dir, opts.keep ?? this.config.keepCheckpoints);
    this.#lastCheckpoint = this.#cleanFile = path;
    return path;
  }

  /**
   * The word vectors: `input` the rows of E (V×d, d = dim); with `output: true` also the rows of W
   * (V×dOut, dOut = d of the output layer, the last column the bias feature's weight).
   */
  async embeddings(opts: { output?: boolean } = {}): Promise<
    { words: string[]; input: Float32Array; d: number; output?: Float32Array; dOut: number }
  > {
    await this.model.syncHost();
    const input = Float32Array.from(this.model.bag.E);
    const output = opts.output ? await this.output.weights() : undefined;
    return {
      words: [...this.vocab.words],
      input,
      d: this.config.dim,
      dOut: this.model.d,
      ...(output ? { output } : {}),
    };
  }

  /** Frees the output layer's (and the hidden layers' backend's) resources. */
  close(): void {
    this.output.close();
    this.#la?.close();
    this.#la = undefined;
  }
}

/** The hidden layers' sgemm backend (the output layer's CPU backend; none without hidden layers). */
async function hiddenBackend(
  config: TrainConfig,
  log: (line: string) => void,
): Promise<LinAlgBackend | undefined> {
  if (config.hidden.length === 0) return undefined;
  const name = config.backend === "webgpu" ? "auto" : config.backend;
  const la = await createBackend(name, { log });
  log(`hidden layers [${config.hidden}]: ${config.activation}, sgemm on ${la.name}`);
  return la;
}

/** The loss options a config sets (lib/losses' LossOptions). */
function lossOptionsOf(c: TrainConfig): { epsilon: number; a: number; b: number } {
  return { epsilon: c.lossEpsilon, a: c.zlossA, b: c.zlossB };
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function fmt(x: number): string {
  return Number(x.toPrecision(3)).toString();
}

function fmt4(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : String(x);
}

/**
 * The output layer's state stored in a checkpoint (meta.output names its arrays `output.<name>`);
 * `bad(what)` throws for a missing part; `copy` copies the arrays (a snapshot that must stay unchanged).
 */
function outputStateOf(
  // deno-lint-ignore no-explicit-any
  meta: Record<string, any>,
  arrays: Checkpoint["arrays"],
  bad: (what: string) => never,
  copy = false,
): OutputLayerState {
  const os = meta.output as Omit<OutputLayerState, "arrays"> & { arrays: string[] };
  if (!os || !Array.isArray(os.arrays)) bad("output layer state missing");
  return {
    kind: os.kind,
    D: os.D,
    d: os.d,
    loss: os.loss,
    lossOptions: os.lossOptions,
    scalars: os.scalars,
    arrays: Object.fromEntries(os.arrays.map((k) => {
      const a = arrays[`output.${k}`];
      if (!a) bad(`array output.${k} missing`);
      return [k, copy ? a.slice() : a];
    })),
  };
}

async function resolveDeps(opts: Partial<TrainerDeps>): Promise<TrainerDeps> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const createHead = opts.createHead ?? (await import("./defaults.ts")).createHead;
  const openReader = opts.openReader ?? (await import("./defaults.ts")).openReader;
  return { log, createHead, openReader };
}
