/**
 * The network the trainer optimises: an embedding bag over the input ids, optional dense hidden layers,
 * a constant 1 appended to the last hidden vector, then an output layer over the vocabulary (the head).
 *
 * Shapes for a batch of m examples: bag output m×dim; hidden l output m×hidden[l]; H (the head's input)
 * m×d with d = last + 1, whose last column is the constant bias feature. One `step` costs
 * O(K_in·dim + Σ in·out) per example plus the head's (O(d² + K·d) for the factored layer), independent
 * of the vocabulary size. Plain SGD with one learning rate for every parameter.
 *
 * @module
 */

import type { LinAlgBackend } from "../linalg/backend.ts";
import type { PooledBackend } from "../linalg/pool.ts";
import type { SparseBatch } from "../core/types.ts";
import { allFinite } from "../core/finite.ts";
import { type Activation, DenseLayer } from "./dense.ts";
import { type Arr, type BagMode, EmbeddingBag } from "./embedding_bag.ts";
import type { ResidentModel } from "./gpu_model.ts";

/**
 * What the model needs from its output layer; an OutputLayer satisfies it (H is float32 in a float32
 * model; a float64 model, used by the gradient checks, passes float64 H).
 * `gradH` is m×d row-major, the gradient of the batch's summed loss w.r.t. H, from the weights before
 * the update.
 *
 * @example
 * ```ts
 * import type { ModelHead } from "./model.ts";
 * const head: ModelHead = {
 *   d: 2,
 *   evaluate: (H, Y) => Promise.resolve({ loss: 0, gradH: new Float32Array(H.length) }),
 *   step: (H, Y, eta) => Promise.resolve({ loss: 0, gradH: new Float32Array(H.length) }),
 * };
 * ```
 */
export interface ModelHead {
  /** Input width of the head (last hidden size + 1). */
  readonly d: number;
  /** Loss and ∇H without updating. */
  evaluate(H: Arr, Y: SparseBatch): Promise<{ loss: number; gradH: Arr }>;
  /** Loss and ∇H, then one SGD step with learning rate eta. */
  step(H: Arr, Y: SparseBatch, eta: number): Promise<{ loss: number; gradH: Arr }>;
}

/**
 * The architecture of a {@link Model}.
 *
 * @example
 * ```ts
 * import type { ModelSpec } from "./model.ts";
 * const spec: ModelSpec = { vocab: 1000, dim: 100, hidden: [], activation: "relu", bag: "mean" };
 * ```
 */
export type ModelSpec = {
  /** Rows of the input embedding table (the vocabulary size). */
  vocab: number;
  /** Input embedding width. */
  dim: number;
  /** Hidden layer sizes, input to output (may be empty). */
  hidden: number[];
  /** Activation of the hidden layers. */
  activation: Activation;
  /** Embedding bag combination. */
  bag: BagMode;
  /** The constant appended to the last hidden vector (default 1). */
  bias?: number;
};

/**
 * The trainable parameters besides the head: E (vocab×dim) and per hidden layer A (out×in) and b (out).
 *
 * @example
 * ```ts
 * import type { ModelParams } from "./model.ts";
 * const p: ModelParams = { E: new Float32Array(8), layers: [] };
 * ```
 */
export type ModelParams = { E: Arr; layers: { A: Arr; b: Arr }[] };

/**
 * The head's input width for a spec: the last hidden size (or dim) plus the bias feature.
 *
 * @example
 * ```ts
 * import { headWidth } from "./model.ts";
 * headWidth({ vocab: 10, dim: 100, hidden: [64], activation: "relu", bag: "mean" }); // 65
 * ```
 */
export function headWidth(spec: ModelSpec): number {
  return (spec.hidden.length ? spec.hidden[spec.hidden.length - 1] : spec.dim) + 1;
}

/**
 * Fresh parameters: E uniform in ±1/dim (fastText's input init), hidden layers Glorot-uniform with zero
 * biases, drawn from `next()` in [0, 1) in that order.
 *
 * @example
 * ```ts
 * import { initParams } from "./model.ts";
 * import { Rng } from "../core/rng.ts";
 * const rng = new Rng(1);
 * const p = initParams({ vocab: 10, dim: 4, hidden: [3], activation: "tanh", bag: "mean" }, () => rng.next());
 * ```
 */
export function initParams(
  spec: ModelSpec,
  next: () => number,
  Ctor: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array,
): ModelParams {
  const E = new Ctor(spec.vocab * spec.dim);
  for (let i = 0; i < E.length; i++) E[i] = (2 * next() - 1) / spec.dim;
  const layers: ModelParams["layers"] = [];
  let n = spec.dim;
  for (const p of spec.hidden) {
    const A = new Ctor(p * n), lim = Math.sqrt(6 / (n + p));
    for (let i = 0; i < A.length; i++) A[i] = (2 * next() - 1) * lim;
    layers.push({ A, b: new Ctor(p) });
    n = p;
  }
  return { E, layers };
}

/**
 * Embedding bag → hidden layers → [h, 1] → head, trained by plain SGD.
 *
 * @example
 * ```ts
 * import { initParams, Model, type ModelHead } from "./model.ts";
 * const spec = { vocab: 5, dim: 2, hidden: [], activation: "relu" as const, bag: "mean" as const };
 * const head: ModelHead = {
 *   d: 3,
 *   evaluate: (H) => Promise.resolve({ loss: 0, gradH: new Float32Array(H.length) }),
 *   step: (H) => Promise.resolve({ loss: 0, gradH: new Float32Array(H.length) }),
 * };
 * const model = new Model(spec, initParams(spec, Math.random), head);
 * const X = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(3), values: Float32Array.of(1) };
 * await model.step(X, X, 0.1);
 * ```
 */
export class Model {
  /** The input layer. */
  readonly bag: EmbeddingBag;
  /** Hidden layers, input to output. */
  readonly layers: DenseLayer[];
  /** The head's input width. */
  readonly d: number;
  /**
   * Milliseconds spent by {@link Model.step} in the forward pass (bag and hidden layers), the head's step
   * and the backward pass, summed over all steps (the trainer's stage times).
   */
  readonly stepTimes: Float64Array = new Float64Array(3);
  /** The whole model on the GPU, when attached (gpu_model.ts `attachStepPath`): step() goes there. */
  resident?: ResidentModel;
  #acts: Arr[] = [];
  #grads: Arr[] = [];
  #H: Arr = new Float32Array(0);
  #capacity = 0;
  #holdPool: PooledBackend | null = null; // the pool held through each step (usePool)

  /**
   * A model over the given parameters and head.
   *
   * @param spec the architecture
   * @param params its parameters (kept, not copied)
   * @param head the output layer
   * @param la optional backend for the hidden layers' products (float32 models; not owned)
   */
  constructor(readonly spec: ModelSpec, params: ModelParams, public head: ModelHead, la?: LinAlgBackend) {
    this.d = headWidth(spec);
    if (head.d !== this.d) {
      throw new RangeError(`Model: the output layer's d is ${head.d}, expected ${this.d}`);
    }
    if (params.layers.length !== spec.hidden.length) {
      throw new RangeError(
        `Model: ${params.layers.length} hidden layer parameter sets for hidden=${spec.hidden}`,
      );
    }
    this.bag = new EmbeddingBag(params.E, spec.vocab, spec.dim, spec.bag);
    let n = spec.dim;
    this.layers = spec.hidden.map((p, l) => {
      const layer = new DenseLayer(n, p, spec.activation, params.layers[l].A, params.layers[l].b, la);
      n = p;
      return layer;
    });
  }

  /**
   * Puts the embedding bag's outputs on the pool's shared memory, and with `splitBag` runs the bag on the
   * pool's threads (null: on this thread, in ordinary arrays; embedding_bag.ts `usePool`).
   *
   * @param pool the output layer's pooled backend, or null
   * @param holdSteps hold the pool through each step (pool.ts `hold`): for a head whose step splits its
   *   calls on the pool (the factored layer), not for one whose large calls use OpenBLAS's own threads
   * @param splitBag split the bag's forward and backward on the pool (default true)
   */
  usePool(pool: PooledBackend | null, holdSteps = false, splitBag = true): void {
    this.bag.usePool(pool, splitBag);
    this.#holdPool = holdSteps ? pool : null;
    this.#capacity = 0; // the batch buffers are reallocated where the bag's forward can write them
  }

  /**
   * Adds the embedding bag's rows with this backend (embedding_bag.ts `useBackend`: `cblas_saxpy` per input
   * on blas), null: with the plain loops.
   *
   * @param la the backend (not owned), or null
   */
  useBackend(la: LinAlgBackend | null): void {
    this.bag.useBackend(la);
  }

  /** The current parameters (live views). */
  params(): ModelParams {
    return { E: this.bag.E, layers: this.layers.map((l) => ({ A: l.A, b: l.b })) };
  }

  #ensure(m: number): void {
    if (m <= this.#capacity) return;
    const cap = Math.max(m, 2 * this.#capacity);
    const widths = [this.spec.dim, ...this.spec.hidden];
    // acts[l] is the input of hidden layer l (acts[0] the bag); the last one lives in H.
    // the bag's alloc: on the pool's shared memory when the bag runs there (its forward writes in place)
    this.#acts = widths.slice(0, -1).map((w) => this.bag.alloc(cap * w));
    this.#grads = widths.slice(0, -1).map((w) => this.bag.alloc(cap * w));
    this.#H = this.bag.alloc(cap * this.d);
    this.#capacity = cap;
  }

  /**
   * Writes H (m×d) for the inputs; returns it (a view valid until the next call) or null when it holds a
   * non-finite value.
   */
  forward(X: SparseBatch): Arr | null {
    const m = X.offsets.length - 1, d = this.d, L = this.layers.length;
    this.#ensure(m);
    const H = this.#H.subarray(0, m * d);
    if (L === 0) this.bag.forward(X, H, d);
    else {
      this.bag.forward(X, this.#acts[0]);
      for (let l = 0; l < L; l++) {
        const last = l === L - 1;
        this.layers[l].forward(
          this.#acts[l],
          m,
          last ? H : this.#acts[l + 1],
          undefined,
          last ? d : undefined,
        );
      }
    }
    const c = this.spec.bias ?? 1;
    for (let i = 0; i < m; i++) H[i * d + d - 1] = c;
    if (!allFinite(H)) return null;
    return H;
  }

  /** Backpropagates ∇H (m×d, the bias column ignored) and applies SGD with learning rate lr. */
  backward(X: SparseBatch, gradH: Arr, lr: number): void {
    const m = X.offsets.length - 1, d = this.d, L = this.layers.length;
    if (L === 0) {
      this.bag.backward(X, gradH, lr, d);
      return;
    }
    let g: Arr = gradH, ldg = d;
    for (let l = L - 1; l >= 0; l--) {
      const last = l === L - 1;
      const Y = last ? this.#H : this.#acts[l + 1];
      this.layers[l].backward(
        this.#acts[l],
        Y,
        g,
        m,
        lr,
        this.#grads[l],
        undefined,
        last ? d : undefined,
        ldg,
      );
      g = this.#grads[l];
      ldg = this.layers[l].inSize;
    }
    this.bag.backward(X, g, lr);
  }

  /**
   * One SGD step on the batch, learning rate `lr` for the head and `lrIn` (default lr) for the hidden
   * layers and the embeddings; returns the summed loss, or NaN (and updates nothing below the head) when
   * the forward pass or the head's loss is not finite (a non-finite gradient: the head's DivergenceError).
   */
  async step(X: SparseBatch, Y: SparseBatch, lr: number, lrIn = lr): Promise<number> {
    if (this.resident) return await this.resident.step(X, Y, lr, lrIn);
    // the pool's workers poll from the bag's forward to its backward (pool.ts hold): their wake-up
    // overlaps the forward, and the head's split calls find them awake
    const pool = this.#holdPool;
    pool?.hold();
    try {
      return await this.#step(X, Y, lr, lrIn);
    } finally {
      pool?.release();
    }
  }

  async #step(X: SparseBatch, Y: SparseBatch, lr: number, lrIn: number): Promise<number> {
    const times = this.stepTimes, t0 = performance.now();
    const H = this.forward(X);
    const t1 = performance.now();
    times[0] += t1 - t0;
    if (!H) return NaN;
    const { loss, gradH } = await this.head.step(H, Y, lr);
    const t2 = performance.now();
    times[1] += t2 - t1;
    // a non-finite ∇H is the head's DivergenceError (the OutputLayer contract): not checked a second time here
    if (!Number.isFinite(loss)) return NaN;
    this.backward(X, gradH, lrIn);
    times[2] += performance.now() - t2;
    return loss;
  }

  /**
   * The [loss, m] of the steps whose losses are known now: on the host path the step just taken
   * (`loss`, `m`); on the GPU path those read back since the last call (none between read-backs).
   */
  settled(loss: number, m: number): [number, number][] {
    return this.resident ? this.resident.settled() : [[loss, m]];
  }

  /** GPU path: reads the pending losses and the parameters back (returns the losses as settled()). */
  async flush(): Promise<[number, number][]> {
    return this.resident ? await this.resident.flush() : [];
  }

  /** GPU path: the parameters back on the host (E), leaving the pending losses on the GPU. */
  async syncHost(): Promise<void> {
    await this.resident?.syncHost();
  }

  /** The summed loss of a batch without updating (NaN when not finite). */
  async evaluate(X: SparseBatch, Y: SparseBatch): Promise<number> {
    await this.resident?.syncHost();
    const H = this.forward(X);
    if (!H) return NaN;
    return (await this.head.evaluate(H, Y)).loss;
  }
}
