/**
 * The trainer's public surface (see docs/trainer-api.md): the model, the trainer, checkpoints, the
 * configuration and the CLI job.
 *
 * @example
 * ```ts
 * import { findLatestCheckpoint, Trainer } from "./mod.ts";
 * const file = await findLatestCheckpoint("runs/latest");
 * if (file) (await Trainer.fromCheckpoint(file)).close();
 * ```
 *
 * @module
 */

export type {
  BackendName,
  CreateOutputLayerOptions,
  LossName,
  OutputLayer,
  SparseBatch,
} from "../core/types.ts";
export type { LinAlgBackend } from "../linalg/backend.ts";
export type { CorpusManifest } from "../io/manifest.ts";
export { type Activation, DenseLayer } from "../model/dense.ts";
export { type Arr, type BagMode, EmbeddingBag } from "../model/embedding_bag.ts";
export {
  headWidth,
  initParams,
  Model,
  type ModelHead,
  type ModelParams,
  type ModelSpec,
} from "../model/model.ts";
export {
  type Checkpoint,
  checkpointName,
  checkpointStep,
  findLatestCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  readCheckpoint,
  readNewestGoodCheckpoint,
  vocabularyHash,
  writeCheckpoint,
} from "./checkpoint.ts";
export {
  configDifferences,
  DEFAULT_CONFIG,
  IDENTITY_FIELDS,
  resolveConfig,
  type TrainConfig,
} from "./config.ts";
export { FORMATS, helpText, parseTrainArgs, type TrainArgs } from "./cli.ts";
export { ProgressReporter, type ProgressSample } from "./progress.ts";
export { Rng, type RngState } from "../core/rng.ts";
export { type JobSummary, runTrainJob } from "./run.ts";
export type { JobIO } from "./job_io.ts";
export { resolveData } from "./run_data.ts";
export { learningRate } from "./schedule.ts";
export { STAGE, StageClock, type StageName, STAGES } from "./stages.ts";
export {
  BACKOFF_FLOOR,
  BEST_CHECKPOINT,
  type CreateHead,
  HEALTH_CHECK_MAX_DD,
  type InvocationSummary,
  MAX_Q_DRIFT,
  type OpenReader,
  type PoolCounts,
  type ReaderBatch,
  Trainer,
  type TrainerDeps,
  type TrainOptions,
  type TrainSummary,
  type Vocabulary,
} from "./trainer.ts";
