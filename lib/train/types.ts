/**
 * The trainer's types: what it reads (vocabulary, reader batches), what it is given (its dependencies and
 * the options of a run), what it returns (the summary) and the run state a checkpoint carries.
 *
 * @module
 */

import type { CreateOutputLayerOptions, OutputLayer, SparseBatch } from "../core/types.ts";
import type { Checkpoint } from "./checkpoint.ts";
import type { ProgressReporter } from "./progress.ts";
import type { StageName } from "./stages.ts";

/**
 * A vocabulary in id order.
 *
 * @example
 * ```ts
 * import type { Vocabulary } from "./types.ts";
 * const v: Vocabulary = { words: ["the", "of"], counts: [100, 50] };
 * ```
 */
export type Vocabulary = { words: string[]; counts: number[] };

/**
 * One minibatch from a reader (lib/io's `readExamples`): `position` resumes the stream right after it.
 *
 * @example
 * ```ts
 * import type { ReaderBatch } from "./types.ts";
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
  /** Milliseconds the reader has spent reading and decoding, and shuffling, since it was opened. */
  times?: { read: number; shuffle: number };
};

/**
 * Opens a stream of minibatches over shards (`position`: continue from a saved position).
 *
 * @example
 * ```ts
 * import type { OpenReader } from "./types.ts";
 * const open: OpenReader = async function* (paths, opts) {};
 * ```
 */
export type OpenReader = (
  paths: string[],
  opts: { batchSize: number; seed: number; epochs: number; position?: unknown },
) => AsyncIterable<ReaderBatch>;

/**
 * Creates the output layer (lib/layers' `createOutputLayer`). The layer copies `init` (W₀): the trainer
 * writes a state copy into that array afterwards.
 *
 * @example
 * ```ts
 * import type { CreateHead } from "./types.ts";
 * const f: CreateHead | undefined = undefined;
 * ```
 */
export type CreateHead = (opts: CreateOutputLayerOptions) => Promise<OutputLayer>;

/**
 * How a {@link Trainer} reaches the output layers and the reader, and where it logs.
 *
 * @example
 * ```ts
 * import type { TrainerDeps } from "./types.ts";
 * const deps: Partial<TrainerDeps> = { log: console.error };
 * ```
 */
export type TrainerDeps = {
  createHead: CreateHead;
  openReader: OpenReader;
  /** Split the embedding bag's forward and backward on the output layer's pool (default: FACTOROUT_BAG_SPLIT). */
  splitBag: boolean;
  /**
   * Write the checkpoints of the epoch ends before the last and the periodic ones behind the steps, on a
   * worker (default: FACTOROUT_WRITE_BEHIND; unset: behind).
   */
  writeBehind?: boolean;
  /** Informational lines (the backend, checkpoints); default console.error. */
  log: (line: string) => void;
};

/**
 * Options of {@link Trainer.train}.
 *
 * @example
 * ```ts
 * import type { TrainOptions } from "./types.ts";
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
  /**
   * The identity of the data (lib/train/corpus_identity.ts), kept in the run's checkpoints; a resume over
   * data of another identity is refused.
   */
  corpus?: string;
};

/**
 * What the output layer's thread pool did (lib/linalg/pool.ts): split calls, those whose parts the training
 * thread ran alone, and the times the workers stood down because their cores were busy.
 *
 * @example
 * ```ts
 * import type { PoolCounts } from "./types.ts";
 * const p: PoolCounts = { splitCalls: 7000, callerOnlyCalls: 0, standDowns: 0 };
 * ```
 */
export type PoolCounts = { splitCalls: number; callerOnlyCalls: number; standDowns: number };

/**
 * What one call of {@link Trainer.train} (one invocation of a job: a run's start or a `--resume`) did by
 * itself: a resumed run's earlier invocations are not in it.
 *
 * @example
 * ```ts
 * import type { InvocationSummary } from "./types.ts";
 * const i: InvocationSummary = { steps: 0, examples: 0, seconds: 0.01, examplesPerSecond: 0 };
 * ```
 */
export type InvocationSummary = {
  /** Steps taken by this call (rolled-back steps not counted). */
  steps: number;
  /** Examples read by this call (held-out included). */
  examples: number;
  /** Seconds this call trained. */
  seconds: number;
  examplesPerSecond: number;
  /** Seconds per stage of this call (lib/train/stages.ts). */
  stageSeconds?: Record<StageName, number>;
  /**
   * The output layer's thread pool in this call (lib/linalg/pool.ts), when it has one: split calls, those
   * whose parts the training thread ran alone, and the times its workers stood down (their cores busy).
   */
  pool?: PoolCounts;
};

/**
 * What {@link Trainer.train} returns: the run it trained, over all its invocations (its start and every
 * resume, from the run state its checkpoints carry), and in `thisInvocation` what this call did.
 *
 * @example
 * ```ts
 * import type { TrainSummary } from "./types.ts";
 * const s: TrainSummary = {
 *   steps: 1, examples: 32, epochsDone: 1, seconds: 0.1, examplesPerSecond: 320, trainLoss: 5, lr: 0.05,
 *   backoffs: 0, lrScale: 1, thisInvocation: { steps: 1, examples: 32, seconds: 0.1, examplesPerSecond: 320 },
 * };
 * ```
 */
export type TrainSummary = {
  /**
   * Steps of the run (rolled-back steps not counted). A run resumed from a checkpoint older than
   * {@link RunState.startStep} counts from step 0 (a train job's runs start there).
   */
  steps: number;
  /** Examples the run has read (held-out included; a finished run: every epoch's). */
  examples: number;
  /** Epochs of the run completed (a finished run: all of them). */
  epochsDone: number;
  /**
   * Seconds the run trained, over its invocations (up to each one's last checkpoint, for one that was
   * killed); NaN (null in JSON) when a checkpoint of the run predates {@link RunState.seconds}.
   */
  seconds: number;
  /** examples / seconds (NaN when seconds is). */
  examplesPerSecond: number;
  /**
   * Mean training loss per example over the last epoch completed (a stopped run: over the epoch in
   * progress when it has taken steps), else the run's last known one; NaN (null in JSON) when none is.
   */
  trainLoss: number;
  /** Mean loss per held-out example at the end (when there is a validation set). */
  validationLoss?: number;
  /** The learning rate of the run's last step (a resume that takes none: from its checkpoint). */
  lr: number;
  /** The last checkpoint written, if any (the final state, also when the best epoch was kept). */
  checkpoint?: string;
  /** True when {@link TrainOptions.stop} ended the run early (after writing a checkpoint). */
  stopped?: boolean;
  /** Step-size halvings in the run so far (backoffs after a refused or non-finite step). */
  backoffs: number;
  /** The step-size multiplier they left, applied on top of the schedule (1: no backoff). */
  lrScale: number;
  /**
   * The epoch of the run (1-based) with the lowest validation loss, that loss, and that epoch's mean training
   * loss (under keepBest the published epoch's, where `trainLoss` is the last epoch's).
   */
  bestEpoch?: number;
  bestValidationLoss?: number;
  bestTrainLoss?: number;
  /**
   * The epoch whose parameters the trainer holds at the end: the best one under keepBest, else the last;
   * absent when the reader ended before the run's last epoch (the parameters are of an unfinished epoch) and
   * no best epoch was restored.
   */
  keptEpoch?: number;
  /** What this call did by itself (a resume: without the run's earlier invocations). */
  thisInvocation: InvocationSummary;
};

/**
 * The state of the current run (what resume continues).
 *
 * @example
 * ```ts
 * import type { RunState } from "./types.ts";
 * const r: RunState = {
 *   paths: ["a.arrow"], rows: 10, epochs: 1, examples: 0, epoch: 0, position: null, epochLoss: 0, epochCount: 0,
 *   lrScale: 1, backoffs: 0,
 * };
 * ```
 */
export type RunState = {
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
  /** trainLoss: that epoch's mean training loss (absent in checkpoints written before it was kept) */
  best?: { epoch: number; step: number; validationLoss: number; trainLoss?: number };
  /** the identity of the data the run trains on (TrainOptions.corpus); absent in older checkpoints */
  corpus?: string;
  /**
   * the step a rollback returns to: the last epoch end (its health checked) or the run's start, whose
   * checkpoint `ckpt-<good>.fock` is kept from pruning; absent in older checkpoints
   */
  good?: number;
  /** the trainer's step when the run started (the run's steps are counted from it); absent in older checkpoints */
  startStep?: number;
  /**
   * seconds the run has trained, over its invocations, up to this state's checkpoint; null when an
   * earlier checkpoint of the run predates it (unknown); absent in older checkpoints
   */
  seconds?: number | null;
  /** the mean training loss per example of the last epoch completed; absent before one, and in older checkpoints */
  trainLoss?: number;
  /** the learning rate of the run's last step (the summary's `lr`); absent before one, and in older checkpoints */
  lr?: number;
};

/**
 * A step that could not be taken: refused by the guard (state unchanged) or not finite (state suspect).
 *
 * @example
 * ```ts
 * import type { StepFailure } from "./types.ts";
 * const f: StepFailure = { rollback: true, what: "the loss is NaN" };
 * ```
 */
export type StepFailure = { rollback: boolean; what: string };

/**
 * A state to go back to: an in-memory snapshot or a checkpoint file holding the parameters, with the run
 * state of that moment (a new run on the state of a loaded file has its own).
 *
 * @example
 * ```ts
 * import type { GoodState, RunState } from "./types.ts";
 * const at = (run: RunState): GoodState => ({ file: "ckpt-000000000010.fock", run });
 * ```
 */
export type GoodState = { ckpt: Checkpoint; file?: undefined; run: RunState } | {
  file: string;
  run: RunState;
};
