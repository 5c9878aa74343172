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
} from "./lib/types.ts";
export {
  BackendUnavailableError,
  DataFormatError,
  DivergenceError,
  SingularUpdateError,
  UsageError,
} from "./lib/errors.ts";

// --- linear-algebra backends (lib/linalg) ---
export { createBackend } from "./lib/linalg/select.ts";
export type { CreateBackendOptions } from "./lib/linalg/select.ts";
export type { LinAlgBackend } from "./lib/linalg/backend.ts";

// --- losses (lib/losses) ---
export { createLoss, LOSS_DEFAULTS, LOSS_NAMES } from "./lib/losses/mod.ts";
export type { LossScalars, SphericalFamilyLoss } from "./lib/losses/mod.ts";

// --- output layers (lib/layers) ---

// --- corpus I/O (lib/io) ---

// --- model, trainer, checkpoints (lib/model, lib/train) ---

// --- export and evaluation (lib/export, lib/eval) ---

// --- WebGPU (lib/webgpu) ---
