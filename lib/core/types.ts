/**
 * The shapes shared by every layer of factorout: sparse minibatches, step results, the output-layer
 * contract and the options that create one. Layouts are row-major throughout.
 *
 * @module
 */

import type { SpareArrays } from "./reuse.ts";

/**
 * A minibatch of K-sparse vectors in CSR form: example i owns entries offsets[i] … offsets[i+1]-1 of
 * `indices` and `values`. m = offsets.length - 1. An index may repeat within an example and across
 * examples; repeated entries are summed.
 *
 * @example
 * ```ts
 * import type { SparseBatch } from "./types.ts";
 * // two examples: {3: 1.0} and {0: 0.5, 7: 0.5}
 * const Y: SparseBatch = {
 *   offsets: Int32Array.of(0, 1, 3),
 *   indices: Int32Array.of(3, 0, 7),
 *   values: Float32Array.of(1, 0.5, 0.5),
 * };
 * ```
 */
export type SparseBatch = { offsets: Int32Array; indices: Int32Array; values: Float32Array };

/**
 * What a step or an evaluation returns: the loss summed over the batch and ∇H, the gradient with respect
 * to the layer's input, m×d row-major (row i is ∇h_i = Wᵀ∇o_i).
 *
 * @example
 * ```ts
 * import type { StepResult } from "./types.ts";
 * const r: StepResult = { loss: 0.5, gradH: new Float32Array(4) };
 * ```
 */
export type StepResult = { loss: number; gradH: Float32Array };

/**
 * The losses of the spherical family (docs/losses.md).
 *
 * @example
 * ```ts
 * import type { LossName } from "./types.ts";
 * const l: LossName = "spherical";
 * ```
 */
export type LossName = "squared" | "spherical" | "taylor" | "zloss";

/**
 * Hyperparameters of the losses. `epsilon`: spherical softmax's ε; `a`, `b`: the Z-loss's sharpness and
 * offset. Unused fields are ignored by the other losses.
 *
 * @example
 * ```ts
 * import type { LossOptions } from "./types.ts";
 * const opts: LossOptions = { epsilon: 1e-6 };
 * ```
 */
export type LossOptions = { epsilon?: number; a?: number; b?: number };

/**
 * The linear-algebra backends. "auto" (createOutputLayer's default) picks blas, else js, and logs which one
 * runs; webgpu only when asked for.
 *
 * @example
 * ```ts
 * import type { BackendName } from "./types.ts";
 * const b: BackendName = "blas";
 * ```
 */
export type BackendName = "js" | "blas" | "webgpu";

/**
 * Everything needed to rebuild an output layer exactly (a checkpoint's share of it). For the factored
 * layer: V (D×d), U, Uinvt, Q (d×d), omega, wbar (d) and the step counter; for the naive layer: W.
 *
 * @example
 * ```ts
 * import type { OutputLayerState } from "./types.ts";
 * const s: OutputLayerState = { kind: "naive", D: 2, d: 1, loss: "squared", arrays: { W: new Float32Array(2) }, scalars: {} };
 * ```
 */
export type OutputLayerState = {
  kind: "factored" | "naive";
  D: number;
  d: number;
  loss: LossName;
  lossOptions?: LossOptions;
  arrays: Record<string, Float32Array | Float64Array>;
  scalars: Record<string, number>;
};

/**
 * Health of the factored state (docs/factored-step.md "Numerical upkeep"). `qDrift` costs O(Dd²) and is only
 * computed when asked.
 *
 * @example
 * ```ts
 * import type { Diagnostics } from "./types.ts";
 * const d: Diagnostics = { condU: 1, inverseError: 0, steps: 0 };
 * ```
 */
export type Diagnostics = {
  /** σ_max(U)/σ_min(U) (estimated). */
  condU: number;
  /** max |U U⁻¹ − I|. */
  inverseError: number;
  /** max|Q − WᵀW| / max|Q|, when requested. */
  qDrift?: number;
  /** steps taken so far. */
  steps: number;
  /** anything else a layer wants to report (sigmaMax, sigmaMin, rescales, …). */
  [key: string]: number | undefined;
};

/**
 * An output layer over D outputs from a d-dimensional input, trained by plain SGD on W (D×d).
 * H is m×d row-major; targets are a {@link SparseBatch} with m rows.
 *
 * @example
 * ```ts
 * import { createOutputLayer } from "../../mod.ts";
 * const D = 100, d = 8;
 * const layer = await createOutputLayer({ kind: "factored", D, d, init: new Float32Array(D * d).fill(0.01) });
 * const H = new Float32Array(d).fill(1);
 * const Y = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(5), values: Float32Array.of(1) };
 * const { loss } = await layer.step(H, Y, 0.01);
 * layer.close();
 * ```
 */
export interface OutputLayer {
  /** Number of outputs (rows of W). */
  readonly D: number;
  /** Input dimension (columns of W). */
  readonly d: number;
  /** Loss and ∇H for a batch, without updating; DivergenceError when either is not finite. */
  evaluate(H: Float32Array, Y: SparseBatch): Promise<StepResult>;
  /**
   * One plain-SGD step on W with learning rate eta; returns the loss and ∇H from the weights before it,
   * both finite (a non-finite one is a DivergenceError: the CPU layers' state is then unchanged).
   */
  step(H: Float32Array, Y: SparseBatch, eta: number): Promise<StepResult>;
  /** W materialised, D×d row-major (O(Dd²) for the factored layer). */
  weights(): Promise<Float32Array>;
  /** Probabilities (or scores, for squared error) of the given rows for one input h (length d). */
  score(h: Float32Array, rows: Int32Array): Promise<Float64Array>;
  /** The exact top-k rows over all D for one input h, best first (O(Dd); for evaluation). */
  topK(h: Float32Array, k: number): Promise<{ indices: Int32Array; scores: Float64Array }>;
  /** Health report; `{ full: true }` adds the O(Dd²) Q drift. */
  diagnostics(opts?: { full?: boolean }): Promise<Diagnostics>;
  /** Re-derives the maintained state exactly from the weights (the factored layer's Q, w̄; O(Dd²)), if it keeps any. */
  refresh?(): void;
  /**
   * A copy of the complete state, enough to rebuild the layer exactly. `opts.into`: arrays of an earlier
   * export that the caller no longer needs; the CPU layers copy into those of the same name, type and
   * length instead of into new memory (lib/core/reuse.ts), the caller giving them up.
   */
  exportState(opts?: { into?: SpareArrays }): Promise<OutputLayerState>;
  /** Adds rows to W (a grown vocabulary): `rows` is n×d row-major, the desired new rows of W. */
  appendRows(rows: Float32Array): Promise<void>;
  /** Which backend runs this layer ("js", "blas", "webgpu"). */
  readonly backend: BackendName;
  /** Frees native or GPU resources. */
  close(): void;
}

/**
 * Options of {@link OutputLayer} creation.
 *
 * @example
 * ```ts
 * import type { CreateOutputLayerOptions } from "./types.ts";
 * const o: CreateOutputLayerOptions = { kind: "naive", D: 10, d: 2, init: new Float32Array(20) };
 * ```
 */
export type CreateOutputLayerOptions = {
  kind: "factored" | "naive";
  D: number;
  d: number;
  /** W₀, D×d row-major. Ignored when `state` is given. */
  init?: Float32Array;
  /** Rebuild from an exported state instead of `init`. */
  state?: OutputLayerState;
  loss?: LossName;
  lossOptions?: LossOptions;
  backend?: BackendName | "auto";
  /**
   * Factored layer: the longest interval, in steps, between two stabilisations; 0 turns them off. The CPU
   * layer stabilises every this many steps (default 50, 100 with float32 products) and sooner once the
   * steps since the last one may have raised cond(U) past `maxCond` (the sum of their factors' log
   * λ_max/λ_min); the webgpu layer, when it is not given, adapts the interval between 50 and
   * GPU_STABILIZE_EVERY (lib/output/webgpu/factored.ts). With 0, nothing brings cond(U) back down but a
   * refresh (`recomputeQEvery`): the CPU layer's float32 products stop once that bound passes `maxCond`, and
   * its steps run in float64 from then on (about 1.7× slower at d = 256), whatever cond(U) really is.
   */
  stabilizeEvery?: number;
  /** Factored layer: re-derive Q (and w̄) exactly every this many steps (default 5000); 0 turns it off. */
  recomputeQEvery?: number;
  /** Where "which backend runs" is logged; default console.error. */
  log?: (line: string) => void;
};
