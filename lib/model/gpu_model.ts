/**
 * The whole model on the GPU (issue 14): the embedding bag's table E resident in GPU buffers (chunked like
 * the factored layer's V, on the layer's device), H formed by a gather kernel straight into the layer's H
 * buffers, E's rows updated from the layer's ∇H buffer by a grouped, deterministic scatter
 * (lib/output/webgpu/kernels/embed.ts). A step uploads only the packed input and target indices; nothing
 * comes back but the losses, every `lossEvery` steps (one map), and the state when the host needs it
 * ({@link ResidentModel.syncHost}: checkpoints, validation, export).
 *
 * Supported: no hidden layers, the factored output layer on WebGPU; {@link refuseUnsupportedOnGpu} refuses the
 * rest with a UsageError naming the flag (no silent CPU fallback), before the train job does any work.
 *
 * @module
 */

import { DivergenceError, SingularUpdateError, UsageError } from "../core/errors.ts";
import type { SparseBatch } from "../core/types.ts";
import { planChunks } from "../output/webgpu/base.ts";
import { PackedBatch } from "../output/webgpu/batch.ts";
import type { WebGpuFactoredLayer } from "../output/webgpu/factored.ts";
import { EMBED_GATHER_WGSL, EMBED_SCATTER_WGSL, packEmbed } from "../output/webgpu/kernels/embed.ts";
import type { Runner } from "../output/webgpu/runner.ts";
import type { Model, ModelHead } from "./model.ts";

/** Default steps between loss read-backs. */
export const LOSS_EVERY = 50;

/**
 * The resident step path of a {@link Model}: E on the GPU beside the factored layer.
 *
 * @example
 * ```ts ignore
 * const path = await ResidentModel.create(model, layer, { lossEvery: 50 });
 * await path.step(X, Y, lr, lrIn); // enqueued, nothing read back
 * const pairs = await path.flush(); // [loss, m] per step since the last read
 * ```
 */
export class ResidentModel {
  readonly #model: Model;
  readonly #layer: WebGpuFactoredLayer;
  readonly #r: Runner;
  readonly #lossEvery: number;
  #E: GPUBuffer[] = [];
  #rows = 1;
  #nb = 1;
  #bi!: GPUBuffer;
  #w!: GPUBuffer;
  /** mean-full's scatter weights (the gather's are the mean's), null for mean and sum. */
  #wOut: GPUBuffer | null = null;
  #cap = { bi: 0, w: 0, wOut: 0 };
  #packed = new PackedBatch();
  #weights = new Float32Array(16);
  #sizes: number[] = [];
  #settled: [number, number][] = [];
  /** Host copy of E is older than the GPU's. */
  #stale = false;

  private constructor(model: Model, layer: WebGpuFactoredLayer, lossEvery: number) {
    this.#model = model;
    this.#layer = layer;
    this.#r = layer.runner;
    this.#lossEvery = lossEvery;
  }

  /**
   * Uploads the model's E next to `layer` (the model's head).
   * @param model the model (no hidden layers)
   * @param layer its head, the factored layer on WebGPU
   * @param opts lossEvery: steps between loss read-backs (≥ 1; default {@link LOSS_EVERY})
   */
  static create(model: Model, layer: WebGpuFactoredLayer, opts: { lossEvery?: number } = {}): ResidentModel {
    const every = opts.lossEvery ?? LOSS_EVERY;
    if (!Number.isSafeInteger(every) || every < 1) {
      throw new UsageError(`lossEvery must be ≥ 1, got ${every}`);
    }
    const rm = new ResidentModel(model, layer, every);
    rm.upload();
    return rm;
  }

  /** Steps whose losses are still on the GPU. */
  get pending(): number {
    return this.#sizes.length;
  }

  /** Writes the host's E (model.bag.E) into the GPU chunks (after a restore or a vocabulary change). */
  upload(): void {
    const bag = this.#model.bag, dim = bag.dim, r = this.#r;
    const plan = planChunks(this.#layer.context, bag.rows, dim);
    for (const b of this.#E) r.release(b);
    this.#rows = plan.rows;
    this.#nb = plan.nb;
    this.#E = [];
    for (let c = 0; c < this.#nb; c++) {
      const n = Math.min(this.#rows, bag.rows - c * this.#rows);
      const buf = r.storage(`E${c}`, n * dim * 4);
      r.write(buf, bag.E.subarray(c * this.#rows * dim, (c * this.#rows + n) * dim) as Float32Array);
      this.#E.push(buf);
    }
    this.#stale = false;
  }

  /** Reads E back into model.bag.E when the GPU's is newer (one map per chunk). */
  async syncHost(): Promise<void> {
    if (!this.#stale) return;
    const bag = this.#model.bag, dim = bag.dim;
    for (let c = 0; c < this.#nb; c++) {
      const n = Math.min(this.#rows, bag.rows - c * this.#rows);
      const got = new Float32Array(await this.#r.read(this.#E[c], 0, n * dim * 4));
      bag.E.set(got, c * this.#rows * dim);
    }
    this.#stale = false;
  }

  /**
   * Enqueues one step (gather → factored step → scatter) without reading anything back; every
   * `lossEvery` steps reads the losses. Returns the sum of the losses that came back now (0 when none);
   * {@link ResidentModel.settled} gives them per step. A non-finite loss, or a step the layer refused
   * (it and the steps enqueued after it were skipped on the GPU), throws DivergenceError: the caller
   * rolls back.
   */
  async step(X: SparseBatch, Y: SparseBatch, lr: number, lrIn: number): Promise<number> {
    const bag = this.#model.bag, m = X.offsets.length - 1;
    bag.check(X);
    this.#pack(X);
    const r = this.#r, p = this.#packed, d = this.#model.d;
    const bias = this.#model.spec.bias ?? 1;
    const u = r.uniform("embed", packEmbed({ m, dim: bag.dim, d, off: p.off, bias, lr: lrIn }));
    const gather = r.pipeline("embedGather", () => EMBED_GATHER_WGSL);
    const scatter = r.pipeline("embedScatter", () => EMBED_SCATTER_WGSL);
    // the layer reads its refusal flag at its own read-backs too (a stabilisation, a full ring): a refused
    // step found there is an earlier one (or this), and the steps enqueued after it were skipped on the GPU,
    // so it is #read's DivergenceError (roll back), not a refusal of this step alone (retry it)
    await this.#layer.enqueueResident(
      {
        m,
        writeH: (r, H, HFH) => {
          for (let c = 0; c < this.#nb; c++) {
            const g = r.group(`eg${c}`, gather, [
              this.#E[c],
              this.#bi,
              this.#w,
              H,
              HFH,
              this.#chunkU(c, c === 0),
              u,
            ]);
            r.dispatch(gather, g, m);
          }
        },
        useGradH: (r, G, flag) => {
          for (let c = 0; c < this.#nb; c++) {
            const cnt = p.chunkRows[c];
            if (cnt === 0) continue;
            const g = r.group(`es${c}`, scatter, [
              this.#E[c],
              this.#bi,
              this.#wOut ?? this.#w,
              G,
              flag,
              this.#chunkU(c, false),
              u,
            ]);
            r.dispatch(scatter, g, Math.min(cnt, 65535), Math.ceil(cnt / 65535));
          }
        },
      },
      Y,
      lr,
    ).catch((e) => this.#refused(e));
    this.#stale = true;
    this.#sizes.push(m);
    if (this.#sizes.length < this.#lossEvery) return 0;
    let sum = 0;
    for (const [l] of await this.#read()) sum += l;
    return sum;
  }

  /** The [loss, m] of each step whose loss came back since the last call (and forgets them). */
  settled(): [number, number][] {
    const out = this.#settled;
    this.#settled = [];
    return out;
  }

  /** Reads the pending losses and E back; returns every settled [loss, m] not yet taken. */
  async flush(): Promise<[number, number][]> {
    if (this.#sizes.length) await this.#read();
    await this.syncHost();
    return this.settled();
  }

  async #read(): Promise<[number, number][]> {
    const sizes = this.#sizes;
    this.#sizes = [];
    const losses = await this.#layer.readLosses().catch((e) => this.#refused(e));
    const got: [number, number][] = [];
    losses.forEach((l, k) => {
      if (!Number.isFinite(l)) {
        throw new DivergenceError(
          this.#layer.steps,
          `the loss of a step on the GPU is ${l} (not finite), read ${losses.length - k} step(s) later`,
        );
      }
      got.push([l, sizes[k]]);
    });
    this.#settled.push(...got);
    return got;
  }

  /**
   * Throws `e`, a SingularUpdateError (a refused step: it and the steps enqueued after it, the input
   * side's too, were skipped on the GPU) as a DivergenceError, which the trainer rolls back from; the
   * losses still pending are dropped with those steps.
   */
  #refused(e: unknown): never {
    if (e instanceof SingularUpdateError) {
      this.#sizes = [];
      throw new DivergenceError(this.#layer.steps, `${e.message} (the input side's steps after it too)`);
    }
    throw e;
  }

  #chunkU(c: number, first: boolean): GPUBuffer {
    const rows = this.#model.bag.rows, r0 = c * this.#rows, r1 = Math.min(rows, r0 + this.#rows);
    return this.#r.uniform(`echunk${c}:${first ? 1 : 0}`, new Uint32Array([c, r0, r1, first ? 1 : 0]).buffer);
  }

  /**
   * Packs X with the bag's weights (mean, mean-full: divided by the example's weight sum) and uploads it;
   * for mean-full also the scatter's weights (the inputs' own: fastText's update, as the host bag's).
   */
  #pack(X: SparseBatch): void {
    const m = X.offsets.length - 1, nnz = X.offsets[m];
    if (this.#weights.length < nnz) this.#weights = new Float32Array(Math.max(nnz, 2 * this.#weights.length));
    const w = this.#weights, mean = this.#model.bag.mode !== "sum";
    for (let i = 0; i < m; i++) {
      let s = 0;
      if (mean) { for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) s += X.values[k]; }
      const sc = mean ? (s === 0 ? 0 : 1 / s) : 1;
      for (let k = X.offsets[i]; k < X.offsets[i + 1]; k++) w[k] = X.values[k] * sc;
    }
    const p = this.#packed;
    p.pack(
      { offsets: X.offsets, indices: X.indices.subarray(0, nnz), values: w.subarray(0, nnz) },
      this.#rows,
      this.#nb,
    );
    const r = this.#r;
    if (p.biLength > this.#cap.bi) {
      if (this.#bi) r.release(this.#bi);
      this.#cap.bi = Math.max(p.biLength, 2 * this.#cap.bi);
      this.#bi = r.storage("ebi", this.#cap.bi * 4);
    }
    if (Math.max(p.n, 1) > this.#cap.w) {
      if (this.#w) r.release(this.#w);
      this.#cap.w = Math.max(p.n, 2 * this.#cap.w, 16);
      this.#w = r.storage("ew", this.#cap.w * 4);
    }
    r.write(this.#bi, p.bi.subarray(0, p.biLength));
    if (p.n > 0) r.write(this.#w, p.entY.subarray(0, p.n));
    if (this.#model.bag.mode !== "mean-full") return;
    // the same ids packed the same way (the order does not depend on the weights): only entY differs
    p.pack(
      { offsets: X.offsets, indices: X.indices.subarray(0, nnz), values: X.values.subarray(0, nnz) },
      this.#rows,
      this.#nb,
    );
    if (!this.#wOut || Math.max(p.n, 1) > this.#cap.wOut) {
      if (this.#wOut) r.release(this.#wOut);
      this.#cap.wOut = Math.max(p.n, 2 * this.#cap.wOut, 16);
      this.#wOut = r.storage("ewout", this.#cap.wOut * 4);
      r.resetGroups(); // the scatter's groups bind the new buffer
    }
    if (p.n > 0) r.write(this.#wOut, p.entY.subarray(0, p.n));
  }

  /** Frees E's buffers (the layer frees the rest with its runner). */
  close(): void {
    for (const b of this.#E) this.#r.release(b);
    this.#E = [];
  }
}

/**
 * Refuses (UsageError, exit 2) a model `--backend webgpu` cannot run, from its settings alone: the whole
 * model runs on the GPU ({@link ResidentModel}), which supports no hidden layers yet and the factored output
 * layer only. The one home of these refusals: the train job calls it before any work (lib/train/run.ts,
 * before its corpus is prepared), {@link attachStepPath} when it attaches the step path.
 *
 * @example
 * ```ts
 * import { refuseUnsupportedOnGpu } from "./gpu_model.ts";
 * refuseUnsupportedOnGpu({ backend: "webgpu", hidden: [], output: "factored" }); // supported: no error
 * refuseUnsupportedOnGpu({ backend: "blas", hidden: [256], output: "naive" }); // not on the GPU: no error
 * ```
 */
export function refuseUnsupportedOnGpu(
  c: { backend: string; hidden: readonly number[]; output: string },
): void {
  if (c.backend !== "webgpu") return;
  if (c.hidden.length > 0) {
    throw new UsageError(
      `--backend webgpu runs the whole model on the GPU, which does not support hidden layers yet ` +
        `(--hidden ${c.hidden.join(",")}); drop --hidden or use --backend blas`,
    );
  }
  if (c.output !== "factored") {
    throw new UsageError(
      `--backend webgpu runs the whole model on the GPU with the factored output layer only (--output ` +
        `${c.output}); use --output factored (or --backend blas for the naive layer)`,
    );
  }
}

/**
 * Picks the model's step path for a backend: with "webgpu", the whole model on the GPU (a
 * {@link ResidentModel} on `model.resident`, logged), refusing what it does not support yet with a UsageError
 * naming the flag; otherwise the host model (nothing to attach).
 *
 * @example
 * ```ts ignore
 * await attachStepPath(model, { backend: "webgpu", log: console.error });
 * ```
 */
export function attachStepPath(
  model: Model,
  opts: { backend: string; log: (line: string) => void; lossEvery?: number },
): void {
  model.resident?.close();
  model.resident = undefined;
  if (opts.backend !== "webgpu") return; // the host model (the output layer's backend is logged already)
  const head = model.head as ModelHead & { enqueueResident?: unknown };
  refuseUnsupportedOnGpu({
    backend: opts.backend,
    hidden: model.spec.hidden,
    output: typeof head.enqueueResident === "function" ? "factored" : "naive",
  });
  model.resident = ResidentModel.create(model, head as unknown as WebGpuFactoredLayer, opts);
  opts.log(
    `step path: the whole model on the GPU (webgpu: E resident, H gathered and E updated on the GPU, ` +
      `losses read every ${opts.lossEvery ?? LOSS_EVERY} steps)`,
  );
}
