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
import { selectTopK } from "../topk.ts";
import { validateBatch, validateDims, validateEta, validateMatrix, validateVector } from "../validate.ts";
import { validateRows } from "../validate.ts";
import { createLoss, type SphericalFamilyLoss } from "../../losses/mod.ts";
import type {
  Diagnostics,
  OutputLayer,
  OutputLayerState,
  SparseBatch,
  StepResult,
} from "../../core/types.ts";
import { PackedBatch } from "./batch.ts";
import type { WebGpuContext } from "./device.ts";
import type { WebGpuLayerOptions } from "./factored.ts";
import { packStep, STEP_BYTES } from "./kernels/common.ts";
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
import { LOSS_REDUCE_WGSL, lossWgsl } from "./kernels/loss.ts";
import { Runner } from "./runner.ts";

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
export class WebGpuNaiveLayer implements OutputLayer {
  /** Always "webgpu". */
  readonly backend = "webgpu" as const;
  #D: number;
  /** Input dimension. */
  readonly d: number;
  readonly #ctx: WebGpuContext;
  readonly #ownsDevice: boolean;
  readonly #r: Runner;
  readonly #loss: SphericalFamilyLoss;
  readonly #maxBatch: number;
  readonly #forcedChunk?: number;
  #rows = 1;
  #nb = 1;
  #W: GPUBuffer[] = [];
  #O: GPUBuffer[] = [];
  #b: Record<string, GPUBuffer> = {};
  #cap = { m: 0, n: 0 };
  #ring!: GPUBuffer;
  #dummyFlag!: GPUBuffer;
  #stepU!: GPUBuffer;
  #packed = new PackedBatch();
  #steps = 0;
  #closed = false;

  private constructor(opts: WebGpuLayerOptions & { maxBatch?: number }, ctx: WebGpuContext, owns: boolean) {
    this.#D = opts.D;
    this.d = opts.d;
    this.#ctx = ctx;
    this.#ownsDevice = owns;
    this.#r = new Runner(ctx.device);
    this.#loss = createLoss(opts.loss ?? "squared", opts.lossOptions);
    this.#maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
    this.#forcedChunk = opts.chunkRows;
  }

  /** Number of outputs. */
  get D(): number {
    return this.#D;
  }

  /**
   * Builds the layer from `init` or a "naive" `state`.
   * @param opts layer options; `maxBatch` (default 1024) sizes the dense output chunks
   */
  static async create(opts: WebGpuLayerOptions & { maxBatch?: number }): Promise<WebGpuNaiveLayer> {
    validateDims(opts.D, opts.d);
    let ctx = opts.context;
    const owns = !ctx;
    if (!ctx) {
      const { requestWebGpuDevice } = await import("./device.ts");
      ctx = await requestWebGpuDevice({ log: opts.log });
    }
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
      W = a instanceof Float32Array ? a : Float32Array.from(a);
      layer.#steps = s.scalars.steps ?? 0;
    } else {
      if (!opts.init) {
        layer.close();
        throw new UsageError("createOutputLayer: give `init` (W₀, D×d) or `state`");
      }
      W = opts.init;
    }
    validateMatrix("init", W, opts.D, opts.d);
    layer.#upload(W);
    (opts.log ?? ((l: string) => console.error(l)))(
      `webgpu naive layer: D=${opts.D} d=${opts.d} loss=${layer.#loss.name}, W in ${layer.#nb} chunk(s) of ` +
        `${layer.#rows} rows, device "${ctx.description}"`,
    );
    return layer;
  }

  #upload(W: Float32Array): void {
    const r = this.#r, d = this.d, D = this.#D;
    const lim = Math.min(this.#ctx.limits.maxStorageBufferBindingSize, this.#ctx.limits.maxBufferSize);
    let rows = Math.floor(lim / (4 * Math.max(d, this.#maxBatch)));
    if (this.#forcedChunk) rows = Math.min(rows, this.#forcedChunk);
    rows = Math.max(1, Math.min(rows, D));
    this.#rows = rows;
    this.#nb = Math.ceil(D / rows);
    for (const b of [...this.#W, ...this.#O]) r.release(b);
    this.#W = [];
    this.#O = [];
    for (let b = 0; b < this.#nb; b++) {
      const n = Math.min(rows, D - b * rows);
      const buf = r.storage(`W${b}`, n * d * 4);
      r.write(buf, W.subarray(b * rows * d, (b * rows + n) * d));
      this.#W.push(buf);
    }
    this.#ring ??= r.storage("ring", 16);
    this.#dummyFlag ??= r.storage("flag", 16);
    this.#stepU ??= this.#ctx.device.createBuffer({
      size: STEP_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.#cap = { m: 0, n: 0 };
    r.resetGroups();
  }

  #slots(kLen: number): number {
    let s = 0;
    for (let b = 0; b < this.#nb; b++) s += Math.ceil(Math.min(this.#rows, this.#D - b * this.#rows) / kLen);
    return s;
  }

  #kLen = 8192;

  #ensure(m: number, n: number): void {
    if (m > this.#maxBatch) {
      throw new UsageError(`webgpu naive layer: batch of ${m} examples exceeds maxBatch ${this.#maxBatch}`);
    }
    if (m <= this.#cap.m && n <= this.#cap.n) return;
    const M = Math.max(m, this.#cap.m), N = Math.max(n, this.#cap.n, 16), d = this.d, r = this.#r;
    for (const b of [...Object.values(this.#b), ...this.#O]) r.release(b);
    const lim = Math.min(this.#ctx.limits.maxStorageBufferBindingSize, this.#ctx.limits.maxBufferSize);
    let kLen = 8192;
    while (this.#slots(kLen) * M * d * 4 > lim) kLen *= 2;
    this.#kLen = kLen;
    this.#O = [];
    for (let b = 0; b < this.#nb; b++) {
      this.#O.push(r.storage(`O${b}`, M * Math.min(this.#rows, this.#D - b * this.#rows) * 4));
    }
    const sizes: Record<string, number> = {
      H: M * d,
      G: M * d,
      parts: this.#slots(kLen) * M * d,
      spart: 2 * this.#nb * M,
      stats: 4 * M,
      exOut: 4 * M,
      o: N,
      dy: N,
      entY: N,
      bi: (M + 1) + 4 * N + 1 + 4 * this.#nb + 16,
    };
    this.#b = {};
    for (const [k, v] of Object.entries(sizes)) this.#b[k] = r.storage(k, v * 4);
    this.#cap = { m: M, n: N };
    r.resetGroups();
  }

  #chunkU(b: number): GPUBuffer {
    const rows = Math.min(this.#rows, this.#D - b * this.#rows);
    return this.#r.uniform(
      `dchunk${b}`,
      new Uint32Array([b, b * this.#rows, rows, this.#nb, 0, 0, 0, 0]).buffer,
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
    dispatchGemm(this.#r, key, tA, tB, A, B, C, p, this.#dummyFlag);
  }

  #run(H: Float32Array, Y: SparseBatch, eta: number): number {
    const m = validateBatch(H, Y, this.#D, this.d);
    const d = this.d, r = this.#r;
    this.#packed.pack(Y, this.#rows, this.#nb);
    const p = this.#packed;
    this.#ensure(m, p.n);
    const b = this.#b;
    r.write(b.H, H);
    r.write(b.bi, p.bi.subarray(0, p.biLength));
    if (p.n > 0) r.write(b.entY, p.entY.subarray(0, p.n));
    const o = p.off, lo = this.#loss.options;
    r.write(
      this.#stepU,
      new Uint8Array(packStep({
        m,
        n: p.n,
        nU: p.nU,
        d,
        offExOff: o.exOff,
        offEntEx: o.entEx,
        offEntRow: o.entRow,
        offSorted: o.sorted,
        offRowOff: o.rowOff,
        offChunk: o.chunk,
        slot: 0,
        stepNo: this.#steps,
        eta,
        D: this.#D,
        eps: lo.epsilon,
        za: lo.a,
        zb: lo.b,
      })),
    );
    const st = this.#stepU;
    const ds = r.pipeline("denseStats", () => DENSE_STATS_WGSL);
    const gd = r.pipeline("gatherDense", () => GATHER_DENSE_WGSL);
    for (let c = 0; c < this.#nb; c++) {
      const rows = Math.min(this.#rows, this.#D - c * this.#rows);
      const cu = this.#chunkU(c);
      this.#gemm(`O${c}`, false, true, b.H, this.#W[c], this.#O[c], {
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
    const lp = r.pipeline(`loss:${this.#loss.name}`, () => lossWgsl(this.#loss.name));
    r.dispatch(lp, r.group("loss", lp, [b.bi, b.entY, b.o, b.stats, b.dy, b.exOut, st]), Math.ceil(m / 64));
    const lr = r.pipeline("lossReduce", () => LOSS_REDUCE_WGSL);
    r.dispatch(lr, r.group("lossReduce", lr, [b.exOut, this.#ring, st]), 1);
    // ∇O per chunk, ∇H partials
    const dg = r.pipeline("denseGrad", () => DENSE_GRAD_WGSL);
    const sd = r.pipeline("scatterDense", () => SCATTER_DENSE_WGSL);
    let at = 0;
    for (let c = 0; c < this.#nb; c++) {
      const rows = Math.min(this.#rows, this.#D - c * this.#rows);
      const cu = this.#chunkU(c);
      r.dispatch(dg, r.group(`dg${c}`, dg, [this.#O[c], b.exOut, cu, st]), Math.ceil(rows / 256), m);
      if (p.chunkEntries[c] > 0) {
        r.dispatch(sd, r.group(`sd${c}`, sd, [this.#O[c], b.bi, b.dy, cu, st]), Math.ceil(p.n / 64));
      }
      this.#gemm(`GW${c}`, false, false, this.#O[c], this.#W[c], b.parts, {
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
      for (let c = 0; c < this.#nb; c++) {
        const rows = Math.min(this.#rows, this.#D - c * this.#rows);
        this.#gemm(`WU${c}`, true, false, this.#O[c], b.H, this.#W[c], {
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

  async #result(m: number): Promise<StepResult> {
    const [ring, g] = await this.#r.readMany([[this.#ring, 0, 4], [this.#b.G, 0, m * this.d * 4]]);
    return { loss: new Float32Array(ring)[0], gradH: new Float32Array(g) };
  }

  /** One SGD step (reads the loss and ∇H back). */
  async step(H: Float32Array, Y: SparseBatch, eta: number): Promise<StepResult> {
    this.#alive();
    validateEta(eta);
    const m = this.#run(H, Y, eta);
    this.#steps++;
    return await this.#result(m);
  }

  /** Records and submits one step without reading anything back (for throughput measurements). */
  enqueueStep(H: Float32Array, Y: SparseBatch, eta: number): Promise<void> {
    this.#alive();
    validateEta(eta);
    this.#run(H, Y, eta);
    this.#r.submit();
    this.#steps++;
    return Promise.resolve();
  }

  /** Waits until all submitted work is done. */
  async finish(): Promise<void> {
    await this.#r.finish();
  }

  /** Loss and ∇H without updating. */
  async evaluate(H: Float32Array, Y: SparseBatch): Promise<StepResult> {
    this.#alive();
    const m = this.#run(H, Y, 0);
    return await this.#result(m);
  }

  /** W, D×d. */
  async weights(): Promise<Float32Array> {
    this.#alive();
    const d = this.d, W = new Float32Array(this.#D * d);
    for (let b = 0; b < this.#nb; b++) {
      const n = Math.min(this.#rows, this.#D - b * this.#rows);
      W.set(new Float32Array(await this.#r.read(this.#W[b], 0, n * d * 4)), b * this.#rows * d);
    }
    return W;
  }

  async #outputs(h: Float32Array): Promise<{ o: Float64Array; q: number; s: number }> {
    validateVector("h", h, this.d);
    const W = await this.weights(), d = this.d, D = this.#D;
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
    this.#alive();
    validateRows(rows, this.#D);
    const { o, q, s } = await this.#outputs(h);
    return Float64Array.from(rows, (c) => this.#loss.probability(o[c], q, s, this.#D));
  }

  /** The exact top-k rows (O(Dd) on the host). */
  async topK(h: Float32Array, k: number): Promise<{ indices: Int32Array; scores: Float64Array }> {
    this.#alive();
    const { o, q, s } = await this.#outputs(h);
    const p = o.map((v) => this.#loss.probability(v, q, s, this.#D));
    return selectTopK(p, this.#D, k);
  }

  /** The naive layer has no factored state: condU 1, inverseError 0. */
  diagnostics(): Promise<Diagnostics> {
    return Promise.resolve({ condU: 1, inverseError: 0, steps: this.#steps, chunks: this.#nb });
  }

  /** { kind: "naive", arrays: { W }, scalars: { steps } }. */
  async exportState(): Promise<OutputLayerState> {
    return {
      kind: "naive",
      D: this.#D,
      d: this.d,
      loss: this.#loss.name,
      lossOptions: { ...this.#loss.options },
      arrays: { W: await this.weights() },
      scalars: { steps: this.#steps },
    };
  }

  /** Appends rows of W (re-uploads W). */
  async appendRows(rows: Float32Array): Promise<void> {
    this.#alive();
    const d = this.d;
    if (!(rows instanceof Float32Array) || rows.length % d !== 0 || rows.length === 0) {
      throw new RangeError(
        `rows must be a Float32Array of n×d values (d = ${d}), got length ${rows?.length}`,
      );
    }
    validateMatrix("rows", rows, rows.length / d, d);
    const W0 = await this.weights();
    const W = new Float32Array(W0.length + rows.length);
    W.set(W0);
    W.set(rows, W0.length);
    this.#D += rows.length / d;
    this.#upload(W);
  }

  #alive(): void {
    if (this.#closed) throw new UsageError("this webgpu output layer was closed");
  }

  /** Frees the GPU buffers (and the device, when the layer created it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#r.destroy();
    this.#stepU?.destroy();
    if (this.#ownsDevice) this.#ctx.device.destroy();
  }
}
