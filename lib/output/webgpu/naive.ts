/**
 * The naive (textbook) output layer on WebGPU, for comparison with the factored one: W (D×d, split into
 * chunks of rows, one storage binding each) stays on the GPU; a step forms the dense O = H Wᵀ (m×D, per
 * chunk), takes q, s and the target outputs from it, the loss (same WGSL as the factored layer), the
 * dense ∇O = ẏ + 2 g_q O + g_s, then ∇H = ∇O W (split-K partials reduced in a fixed order) and the
 * update W ← W − η ∇Oᵀ H. O(mDd) per step, three times, like the CPU naive layer.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { describeValue } from "../../core/csr.ts";
import { selectTopK } from "../topk.ts";
import { validateEta, validateMatrix, validateRows, validateVector } from "../validate.ts";
import type {
  Diagnostics,
  OutputLayer,
  OutputLayerState,
  SparseBatch,
  StepResult,
} from "../../core/types.ts";
import { layerContext, WebGpuLayerBase, type WebGpuLayerOptions } from "./base.ts";
import type { WebGpuContext } from "./device.ts";
import {
  DENSE_FINISH_WGSL,
  DENSE_GRAD_WGSL,
  DENSE_STATS_WGSL,
  GATHER_DENSE_WGSL,
  REDUCE_PARTS_WGSL,
  SCATTER_DENSE_WGSL,
} from "./kernels/dense.ts";
import type { GemmParams } from "./kernels/gemm.ts";
import { dispatchGemm } from "./dispatch_gemm.ts";
import { lossWgsl } from "./kernels/loss.ts";

/** Default largest batch the naive layer sizes its dense output chunks for. */
const DEFAULT_MAX_BATCH = 1024;

/**
 * The naive layer on one WebGPU device.
 *
 * @example
 * ```ts
 * import { requestWebGpuDevice } from "./device.ts";
 * import { WebGpuNaiveLayer } from "./naive.ts";
 * const context = await requestWebGpuDevice({ log: () => {} });
 * const D = 50, d = 4;
 * const layer = await WebGpuNaiveLayer.create({ kind: "naive", D, d, init: new Float32Array(D * d).fill(0.01), context });
 * const Y = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(3), values: Float32Array.of(1) };
 * const { loss } = await layer.step(new Float32Array(d).fill(0.5), Y, 0.1);
 * layer.close();
 * ```
 */
export class WebGpuNaiveLayer extends WebGpuLayerBase implements OutputLayer {
  readonly #maxBatch: number;
  #O: GPUBuffer[] = [];
  #ring!: GPUBuffer;
  #dummyFlag!: GPUBuffer;

  private constructor(opts: WebGpuLayerOptions & { maxBatch?: number }, ctx: WebGpuContext, owns: boolean) {
    super(opts, ctx, owns);
    this.#maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
  }

  /**
   * Builds the layer from `init` or a "naive" `state`.
   * @param opts layer options; `maxBatch` (default 1024) sizes the dense output chunks
   */
  static async create(opts: WebGpuLayerOptions & { maxBatch?: number }): Promise<WebGpuNaiveLayer> {
    const { ctx, owns } = await layerContext(opts);
    const layer = new WebGpuNaiveLayer(opts, ctx, owns);
    let W: Float32Array;
    if (opts.state) {
      const s = opts.state;
      if (s.kind !== "naive" || s.D !== opts.D || s.d !== opts.d) {
        layer.close();
        throw new UsageError(
          `state must be a naive layer of D=${opts.D}, d=${opts.d}; got ${s.kind} D=${s.D} d=${s.d}`,
        );
      }
      const a = s.arrays.W;
      if (!(a instanceof Float32Array)) {
        layer.close();
        throw new TypeError(`state.arrays.W must be a Float32Array, got ${describeValue(a)}`);
      }
      W = a;
      layer.stepCount = s.scalars.steps ?? 0;
    } else {
      if (!opts.init) {
        layer.close();
        throw new UsageError("createOutputLayer: give `init` (W₀, D×d) or `state`");
      }
      W = opts.init;
    }
    try {
      validateMatrix(opts.state ? "state.arrays.W" : "init", W, opts.D, opts.d);
    } catch (e) {
      layer.close();
      throw e;
    }
    layer.#upload(W);
    layer.log(
      `webgpu naive layer: D=${opts.D} d=${opts.d} loss=${layer.loss.name}, W in ${layer.nb} chunk(s) of ` +
        `${layer.rows} rows, device "${ctx.description}"`,
    );
    return layer;
  }

  #upload(W: Float32Array): void {
    const r = this.r;
    // a chunk also sizes the m×rows dense outputs: rows of max(d, maxBatch) floats
    this.allocChunks(Math.max(this.d, this.#maxBatch));
    this.writeChunks(W);
    for (const b of this.#O) r.release(b);
    this.#O = [];
    this.#ring ??= r.storage("ring", 16);
    this.#dummyFlag ??= r.storage("flag", 16);
    this.cap = { m: 0, n: 0 };
  }

  #slots(kLen: number): number {
    let s = 0;
    for (let c = 0; c < this.nb; c++) s += Math.ceil(this.chunkRowCount(c) / kLen);
    return s;
  }

  #kLen = 8192;

  /** The naive layer's per-batch buffers (besides the shared ones), for M examples. */
  #sizes = (M: number): Record<string, number> => {
    if (M > this.#maxBatch) {
      throw new UsageError(`webgpu naive layer: batch of ${M} examples exceeds maxBatch ${this.#maxBatch}`);
    }
    const lim = Math.min(this.ctx.limits.maxStorageBufferBindingSize, this.ctx.limits.maxBufferSize);
    let kLen = 8192;
    while (this.#slots(kLen) * M * this.d * 4 > lim) kLen *= 2;
    this.#kLen = kLen;
    for (const b of this.#O) this.r.release(b);
    this.#O = [];
    for (let c = 0; c < this.nb; c++) this.#O.push(this.r.storage(`O${c}`, M * this.chunkRowCount(c) * 4));
    return { H: M * this.d, G: M * this.d, parts: this.#slots(kLen) * M * this.d, spart: 2 * this.nb * M };
  };

  #chunkU(c: number): GPUBuffer {
    return this.r.uniform(
      `dchunk${c}`,
      new Uint32Array([c, c * this.rows, this.chunkRowCount(c), this.nb, 0, 0, 0, 0]).buffer,
    );
  }

  #gemm(
    key: string,
    tA: boolean,
    tB: boolean,
    A: GPUBuffer,
    B: GPUBuffer,
    C: GPUBuffer,
    p: GemmParams,
  ): void {
    dispatchGemm(this.r, key, tA, tB, A, B, C, p, this.#dummyFlag);
  }

  #run(H: Float32Array, Y: SparseBatch, eta: number): number {
    const d = this.d, r = this.r, W = this.chunks;
    const m = this.uploadBatch(H, 0, Y, eta, 0, this.#sizes, (H) => r.write(this.b.H, H));
    const p = this.packed, b = this.b, st = this.stepU;
    const ds = r.pipeline("denseStats", () => DENSE_STATS_WGSL);
    const gd = r.pipeline("gatherDense", () => GATHER_DENSE_WGSL);
    for (let c = 0; c < this.nb; c++) {
      const rows = this.chunkRowCount(c);
      const cu = this.#chunkU(c);
      this.#gemm(`O${c}`, false, true, b.H, W[c], this.#O[c], {
        M: m,
        N: rows,
        K: d,
        lda: d,
        ldb: d,
        ldc: rows,
      });
      r.dispatch(ds, r.group(`ds${c}`, ds, [this.#O[c], b.spart, cu, st]), m);
      if (p.chunkEntries[c] > 0) {
        r.dispatch(gd, r.group(`gd${c}`, gd, [this.#O[c], b.bi, b.o, cu, st]), Math.ceil(p.n / 64));
      }
    }
    const df = r.pipeline("denseFinish", () => DENSE_FINISH_WGSL);
    r.dispatch(df, r.group("df", df, [b.spart, b.stats, this.#chunkU(0), st]), Math.ceil(m / 64));
    const lp = r.pipeline(`loss:${this.loss.name}`, () => lossWgsl(this.loss.name));
    r.dispatch(lp, r.group("loss", lp, [b.bi, b.entY, b.o, b.stats, b.dy, b.exOut, st, this.#ring]), 1);
    // ∇O per chunk, ∇H partials
    const dg = r.pipeline("denseGrad", () => DENSE_GRAD_WGSL);
    const sd = r.pipeline("scatterDense", () => SCATTER_DENSE_WGSL);
    let at = 0;
    for (let c = 0; c < this.nb; c++) {
      const rows = this.chunkRowCount(c);
      const cu = this.#chunkU(c);
      r.dispatch(dg, r.group(`dg${c}`, dg, [this.#O[c], b.exOut, cu, st]), Math.ceil(rows / 256), m);
      if (p.chunkEntries[c] > 0) {
        r.dispatch(sd, r.group(`sd${c}`, sd, [this.#O[c], b.bi, b.dy, cu, st]), Math.ceil(p.n / 64));
      }
      this.#gemm(`GW${c}`, false, false, this.#O[c], W[c], b.parts, {
        M: m,
        N: d,
        K: rows,
        lda: rows,
        ldb: d,
        ldc: d,
        kLen: this.#kLen,
        strideZ: m * d,
        offC: at * m * d,
      });
      at += Math.ceil(rows / this.#kLen);
    }
    const red = r.pipeline("reduceParts", () => REDUCE_PARTS_WGSL);
    const ru = r.uniform("red", new Uint32Array([0, 0, 0, 0, at, m * d, 0, 0]).buffer);
    r.dispatch(red, r.group("red", red, [b.parts, b.G, ru]), Math.ceil((m * d) / 256));
    if (eta > 0) {
      for (let c = 0; c < this.nb; c++) {
        const rows = this.chunkRowCount(c);
        this.#gemm(`WU${c}`, true, false, this.#O[c], b.H, W[c], {
          M: rows,
          N: d,
          K: m,
          lda: rows,
          ldb: d,
          ldc: d,
          alpha: -eta,
          beta: 1,
        });
      }
    }
    return m;
  }

  /** The loss and ∇H read back (WebGpuLayerBase.finiteResult: DivergenceError when not finite). */
  async #result(m: number, updated: boolean): Promise<StepResult> {
    const [ring, g] = await this.r.readMany([[this.#ring, 0, 4], [this.b.G, 0, m * this.d * 4]]);
    return this.finiteResult(new Float32Array(ring)[0], new Float32Array(g), updated);
  }

  /** One SGD step (reads the loss and ∇H back). */
  async step(H: Float32Array, Y: SparseBatch, eta: number): Promise<StepResult> {
    this.alive();
    validateEta(eta);
    this.countStart();
    const m = this.#run(H, Y, eta);
    this.stepCount++;
    try {
      return await this.#result(m, true);
    } finally {
      this.countEnd();
    }
  }

  /** Records and submits one step without reading anything back (for throughput measurements). */
  enqueueStep(H: Float32Array, Y: SparseBatch, eta: number): Promise<void> {
    this.alive();
    validateEta(eta);
    this.countStart();
    this.#run(H, Y, eta);
    this.r.submit();
    this.stepCount++;
    this.countEnd();
    return Promise.resolve();
  }

  /** Waits until all submitted work is done. */
  async finish(): Promise<void> {
    await this.r.finish();
  }

  /** Loss and ∇H without updating. */
  async evaluate(H: Float32Array, Y: SparseBatch): Promise<StepResult> {
    this.alive();
    const m = this.#run(H, Y, 0);
    return await this.#result(m, false);
  }

  /** W, D×d. */
  async weights(): Promise<Float32Array> {
    this.alive();
    return await this.readChunks();
  }

  async #outputs(h: Float32Array): Promise<{ o: Float64Array; q: number; s: number }> {
    validateVector("h", h, this.d);
    const W = await this.weights(), d = this.d, D = this.size;
    const o = new Float64Array(D);
    let q = 0, s = 0;
    for (let j = 0; j < D; j++) {
      let t = 0;
      for (let k = 0; k < d; k++) t += W[j * d + k] * h[k];
      o[j] = t;
      q += t * t;
      s += t;
    }
    return { o, q, s };
  }

  /** Probabilities (scores for squared error) of `rows` for one input h (O(Dd) on the host). */
  async score(h: Float32Array, rows: Int32Array): Promise<Float64Array> {
    this.alive();
    const { o, q, s } = await this.#outputs(h);
    validateRows(rows, this.size);
    return Float64Array.from(rows, (c) => this.loss.probability(o[c], q, s, this.size));
  }

  /** The exact top-k rows (O(Dd) on the host). */
  async topK(h: Float32Array, k: number): Promise<{ indices: Int32Array; scores: Float64Array }> {
    this.alive();
    const { o, q, s } = await this.#outputs(h);
    const p = o.map((v) => this.loss.probability(v, q, s, this.size));
    return selectTopK(p, this.size, k);
  }

  /** The naive layer has no factored state: condU 1, inverseError 0; and the last step's counters. */
  diagnostics(): Promise<Diagnostics> {
    try {
      this.alive();
    } catch (e) {
      return Promise.reject(e);
    }
    const { dispatchesPerStep, readbacksPerStep } = this.counters();
    return Promise.resolve({
      condU: 1,
      inverseError: 0,
      steps: this.stepCount,
      chunks: this.nb,
      dispatchesPerStep,
      readbacksPerStep,
    });
  }

  /** { kind: "naive", arrays: { W }, scalars: { steps } }. */
  async exportState(): Promise<OutputLayerState> {
    return {
      kind: "naive",
      D: this.size,
      d: this.d,
      loss: this.loss.name,
      lossOptions: { ...this.loss.options },
      arrays: { W: await this.weights() },
      scalars: { steps: this.stepCount },
    };
  }

  /** Appends rows of W (re-uploads W). */
  async appendRows(rows: Float32Array): Promise<void> {
    this.alive();
    const n = this.checkAppend(rows);
    const W0 = await this.weights();
    const W = new Float32Array(W0.length + rows.length);
    W.set(W0);
    W.set(rows, W0.length);
    this.size += n;
    this.#upload(W);
  }
}
