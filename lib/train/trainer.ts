/**
 * The trainer: a {@link Model} over a vocabulary, its output layer, the seeded RNG, the run state (schedule
 * and reader position) and the validation set; the training loop with divergence detection, progress and
 * checkpoints; loading from and saving to checkpoints; growing the vocabulary. See docs/trainer-api.md.
 *
 * @module
 */

import { DataFormatError, DivergenceError, SingularUpdateError, UsageError } from "../errors.ts";
import type {
  BackendName,
  CreateOutputLayerOptions,
  OutputLayer,
  OutputLayerState,
  SparseBatch,
} from "../types.ts";
import type { LinAlgBackend } from "../linalg/backend.ts";
import { createBackend } from "../linalg/select.ts";
import { headWidth, initParams, Model, type ModelParams, type ModelSpec } from "../model/model.ts";
import {
  type Checkpoint,
  checkpointName,
  pruneCheckpoints,
  readCheckpoint,
  vocabularyHash,
  writeCheckpoint,
} from "./checkpoint.ts";
import { configDifferences, resolveConfig, type TrainConfig } from "./config.ts";
import { ProgressReporter } from "./progress.ts";
import { Rng } from "./rng.ts";
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
  /** Progress output; default none. */
  progress?: ProgressReporter;
};

/**
 * What {@link Trainer.train} returns.
 *
 * @example
 * ```ts
 * import type { TrainSummary } from "./trainer.ts";
 * const s: TrainSummary = { steps: 1, examples: 32, seconds: 0.1, examplesPerSecond: 320, trainLoss: 5, lr: 0.05 };
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
  /** The last checkpoint written, if any. */
  checkpoint?: string;
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
};

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

  private constructor(
    readonly config: TrainConfig,
    readonly vocab: Vocabulary,
    readonly model: Model,
    readonly output: OutputLayer,
    readonly rng: Rng,
    readonly deps: TrainerDeps,
    la?: LinAlgBackend,
  ) {
    this.#split = new ValidationSplit(config.validation);
    this.#la = la;
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
    const os = meta.output as Omit<OutputLayerState, "arrays"> & { arrays: string[] };
    if (!os || os.D !== V || os.d !== d) bad(`output layer is ${os?.D}×${os?.d}, expected ${V}×${d}`);
    const state: OutputLayerState = {
      kind: os.kind,
      D: os.D,
      d: os.d,
      loss: os.loss,
      lossOptions: os.lossOptions,
      scalars: os.scalars,
      arrays: Object.fromEntries(os.arrays.map((k) => {
        const a = ckpt.arrays[`output.${k}`];
        if (!a) bad(`array output.${k} missing`);
        return [k, a];
      })),
    };
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
    trainer.#run = meta.run ?? null;
    trainer.#split.importState(ckpt.arrays);
    if (typeof source === "string") trainer.#lastCheckpoint = source;
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
    for (const k of ["lr", "lrMin", "lrInputScale", "schedule", "epochs"] as const) {
      if (this.config[k] !== config[k]) soft.push(`${k}: ${this.config[k]} → ${config[k]}`);
    }
    return soft;
  }

  /** Adopts the run-shaping fields (lr, lrMin, schedule, epochs, checkpointing, out) of `config`. */
  adopt(config: TrainConfig): void {
    this.checkCompatible(config);
    const c = this.config as Record<string, unknown>;
    for (
      const k of [
        "lr",
        "lrMin",
        "lrInputScale",
        "schedule",
        "epochs",
        "checkpointEvery",
        "keepCheckpoints",
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
   * Trains over shards; see {@link TrainOptions}. Throws DivergenceError on a non-finite loss or
   * gradient, or a singular factored update, naming the step and what to change; checkpoints already
   * written are left as they are.
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
      };
    }
    const run = this.#run;
    const every = opts.checkpointEvery ?? c.checkpointEvery, keep = opts.keepCheckpoints ?? c.keepCheckpoints;
    const progress = opts.progress ?? new ProgressReporter("none", 1, () => {});
    const total = run.rows * run.epochs;
    const t0 = performance.now(), startExamples = run.examples, startStep = this.step;
    let lr = learningRate(c, run.examples, total), ema = NaN, lastEpochLoss = NaN;
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
    // a checkpoint of a step that is already saved (an epoch end right after a periodic checkpoint, or a
    // resume that has not stepped yet) is not rewritten
    let savedStep = this.#lastCheckpoint ? this.step : -1;
    const save = async () => {
      if (!opts.checkpointDir || savedStep === this.step) return;
      await this.saveCheckpoint(opts.checkpointDir, { keep });
      savedStep = this.step;
    };
    const endEpoch = async () => {
      lastEpochLoss = run.epochCount ? run.epochLoss / run.epochCount : NaN;
      const val = await this.validationLoss();
      this.deps.log(JSON.stringify({
        event: "epoch",
        epoch: run.epoch + 1,
        step: this.step,
        trainLoss: lastEpochLoss,
        ...(val === undefined ? {} : { validationLoss: val }),
      }));
      run.epochLoss = 0;
      run.epochCount = 0;
    };
    const reader = this.deps.openReader(run.paths, {
      batchSize: c.batch,
      seed: c.seed,
      epochs: run.epochs,
      ...(run.position == null ? {} : { position: run.position }),
    });
    for await (const b of reader) {
      if (b.epoch !== run.epoch) {
        if (run.epochCount > 0) await endEpoch();
        run.epoch = b.epoch;
        await save();
      }
      const { inputs, targets } = this.#split.apply(b.inputs, b.targets, b.epoch === 0);
      const m = inputs.offsets.length - 1;
      lr = learningRate(c, run.examples, total);
      if (m > 0) {
        let loss: number;
        try {
          loss = await this.model.step(inputs, targets, lr, lr * c.lrInputScale);
        } catch (e) {
          if (e instanceof SingularUpdateError) throw this.#divergence(lr, e.message.replace(/\.\s*$/, ""));
          throw e;
        }
        if (!Number.isFinite(loss)) {
          throw this.#divergence(lr, `the loss or a gradient is ${loss} (not finite)`);
        }
        this.step++;
        run.epochLoss += loss;
        run.epochCount += m;
        ema = Number.isNaN(ema) ? loss / m : 0.995 * ema + 0.005 * (loss / m);
      }
      run.examples += b.size;
      run.position = b.position;
      if (every > 0 && m > 0 && this.step % every === 0) await save();
      progress.update(sample());
    }
    if (run.epochCount > 0) await endEpoch();
    run.epoch = run.epochs;
    run.examples = Math.max(run.examples, total);
    progress.update(sample(), true);
    progress.finish();
    await save();
    const seconds = (performance.now() - t0) / 1000;
    const validationLoss = await this.validationLoss();
    return {
      steps: this.step - startStep,
      examples: run.examples - startExamples,
      seconds,
      examplesPerSecond: seconds > 0 ? (run.examples - startExamples) / seconds : 0,
      trainLoss: lastEpochLoss,
      ...(validationLoss === undefined ? {} : { validationLoss }),
      lr,
      ...(this.#lastCheckpoint ? { checkpoint: this.#lastCheckpoint } : {}),
    };
  }

  #divergence(lr: number, what: string): DivergenceError {
    const run = this.#run!, step = this.step + 1;
    const last = this.#lastCheckpoint
      ? `The last good checkpoint ${this.#lastCheckpoint} is intact: continue it with --resume ${this.#lastCheckpoint} --lr ${
        fmt(this.config.lr / 4)
      }.`
      : "No checkpoint had been written yet.";
    return new DivergenceError(
      step,
      `training diverged at step ${step} (epoch ${run.epoch + 1}, lr ${fmt(lr)}): ${what}. ` +
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
    const rng = this.rng.split();
    const E = new Float32Array(n * dim);
    rng.fillUniform(E, 1 / dim);
    await this.output.appendRows(initOutputRows(n, d, rng));
    this.model.bag.appendRows(E);
    this.model.spec.vocab = V + n;
    this.vocab.words.push(...newWords);
    this.vocab.counts.push(...counts);
    return Array.from({ length: n }, (_, i) => V + i);
  }

  /** The complete state as a {@link Checkpoint}. */
  async toCheckpoint(): Promise<Checkpoint> {
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
    this.#lastCheckpoint = path;
    return path;
  }

  /**
   * The word vectors: `input` the rows of E (V×d, d = dim); with `output: true` also the rows of W
   * (V×dOut, dOut = d of the output layer, the last column the bias feature's weight).
   */
  async embeddings(opts: { output?: boolean } = {}): Promise<
    { words: string[]; input: Float32Array; d: number; output?: Float32Array; dOut: number }
  > {
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

async function resolveDeps(opts: Partial<TrainerDeps>): Promise<TrainerDeps> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const createHead = opts.createHead ?? (await import("./defaults.ts")).createHead;
  const openReader = opts.openReader ?? (await import("./defaults.ts")).openReader;
  return { log, createHead, openReader };
}
