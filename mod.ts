/**
 * factorout: exact training of networks whose targets are very large and sparse, with the factored
 * output layer of Vincent, de Brébisson & Bouthillier (NeurIPS 2015): loss, ∇h and the SGD update of the
 * D×d output matrix in O(d² + Kd) per example, never forming the D-dimensional output.
 *
 * @example
 * ```ts
 * import { createOutputLayer } from "./mod.ts";
 * const D = 1000, d = 16;
 * const init = new Float32Array(D * d).map(() => (Math.random() - 0.5) * 0.1);
 * const layer = await createOutputLayer({ kind: "factored", D, d, init, loss: "spherical", backend: "js" });
 * const H = new Float32Array(d).fill(0.1);
 * const Y = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(42), values: Float32Array.of(1) };
 * const { loss, gradH } = await layer.step(H, Y, 0.05);
 * layer.close();
 * ```
 *
 * @module
 */

// --- shared types and errors ---
export type {
  BackendName,
  CreateOutputLayerOptions,
  Diagnostics,
  LossName,
  LossOptions,
  OutputLayer,
  OutputLayerState,
  SparseBatch,
  StepResult,
} from "./lib/core/types.ts";
export {
  BackendUnavailableError,
  DataFormatError,
  DivergenceError,
  IoError,
  SingularUpdateError,
  UsageError,
} from "./lib/core/errors.ts";
export { describeOsError, withPath } from "./lib/core/os_errors.ts";

// --- linear-algebra backends (lib/linalg) ---
export { createBackend } from "./lib/linalg/select.ts";
export type { CreateBackendOptions } from "./lib/linalg/select.ts";
export type { LinAlgBackend } from "./lib/linalg/backend.ts";

// --- losses (lib/losses) ---
export { createLoss, LOSS_DEFAULTS, LOSS_NAMES } from "./lib/losses/mod.ts";
export type { LossScalars, SphericalFamilyLoss } from "./lib/losses/mod.ts";

// --- output layers (lib/layers) ---
export { createOutputLayer } from "./lib/output/create.ts";
export { NaiveOutputLayer } from "./lib/output/naive.ts";
export { FactoredOutputLayer } from "./lib/output/factored/layer.ts";
export type { FactoredOptions } from "./lib/output/factored/layer.ts";

// --- corpus I/O (lib/io) ---
export { prepareCorpus } from "./lib/io/prepare.ts";
export type { PrepareOptions } from "./lib/io/prepare.ts";
export { readExamples } from "./lib/io/read.ts";
export type { ExampleBatch, ReaderPosition, ReadOptions } from "./lib/io/read.ts";
export { readManifest } from "./lib/io/manifest.ts";
export type { CorpusManifest, ShardEntry } from "./lib/io/manifest.ts";
export { readVocab, writeVocab } from "./lib/io/vocab.ts";
export { writeSyntheticText, ZipfCorpus } from "./lib/io/synthetic.ts";
export type { SyntheticOptions } from "./lib/io/synthetic.ts";
export { formatProgress, progressReporter } from "./lib/io/progress.ts";
export type { PrepareProgress } from "./lib/io/progress.ts";

// --- model, trainer, checkpoints (lib/model, lib/train) ---
export {
  DEFAULT_CONFIG,
  findLatestCheckpoint,
  Model,
  readCheckpoint,
  readNewestGoodCheckpoint,
  resolveConfig,
  Rng as TrainRng,
  runTrainJob,
  Trainer,
  writeCheckpoint,
} from "./lib/train/mod.ts";
export type {
  Checkpoint,
  InvocationSummary,
  ModelHead,
  ModelSpec,
  PoolCounts,
  TrainConfig,
  TrainerDeps,
  TrainOptions,
  TrainSummary,
} from "./lib/train/mod.ts";

// --- export and evaluation (lib/export, lib/eval) ---
export {
  latestVersionDir,
  pointLatest,
  publishEmbeddings,
  readEmbeddingsManifest,
  removeStaleTemps,
  versionFiles,
} from "./lib/export/publish.ts";
export type { ManifestFileEntry, PublishOptions, PublishResult } from "./lib/export/publish.ts";
export type { Embeddings } from "./lib/export/embeddings.ts";
export { EMBEDDING_FORMATS, formatOfPath, readEmbeddings } from "./lib/export/read.ts";
export type { EmbeddingFormat } from "./lib/export/read.ts";
export {
  readWord2VecBinary,
  readWord2VecText,
  writeWord2VecBinary,
  writeWord2VecText,
} from "./lib/export/word2vec.ts";
export { readArrowEmbeddings, writeArrowEmbeddings } from "./lib/export/arrow.ts";
export { readParquetEmbeddings, writeParquetEmbeddings } from "./lib/export/parquet.ts";
export { acquireLock, LockedError, lockRunFolder } from "./lib/core/lock.ts";
export { atExit, removeAtExit, StopController, StoppedError } from "./lib/core/stop.ts";
export { EXIT as EXIT_CODES } from "./lib/core/exit_codes.ts";
export { averageRanks, spearman } from "./lib/eval/spearman.ts";
export { EmbeddingIndex } from "./lib/eval/index.ts";
export { evaluateSimilarity, readSimilarityFile } from "./lib/eval/similarity.ts";
export type { SimilarityPair, SimilarityResult } from "./lib/eval/similarity.ts";
export { evaluateAnalogies, readAnalogyFile } from "./lib/eval/analogy.ts";
export type { AnalogyResult, AnalogySection } from "./lib/eval/analogy.ts";
export { nearestNeighbours } from "./lib/eval/neighbours.ts";
export { evalMetrics, evaluateEmbeddings, formatEvalReport, readMetrics } from "./lib/eval/report.ts";
export type { EvalMetrics, EvalReport } from "./lib/eval/report.ts";

// --- WebGPU (lib/webgpu) ---
export { requestWebGpuDevice } from "./lib/output/webgpu/device.ts";
export type { WebGpuContext, WebGpuDeviceOptions } from "./lib/output/webgpu/device.ts";
export { createWebGpuOutputLayer } from "./lib/output/webgpu/create.ts";
export { WebGpuFactoredLayer } from "./lib/output/webgpu/factored.ts";
export type { WebGpuLayerOptions } from "./lib/output/webgpu/factored.ts";
export { WebGpuNaiveLayer } from "./lib/output/webgpu/naive.ts";
