/**
 * The shared base of the WebGPU output layers (naive.ts, factored.ts): the device and its {@link Runner},
 * the D×d matrix split into chunks of rows (one storage binding each: V of the factored layer, W of the
 * naive one), the per-batch buffers that grow with the batch, the batch upload (packed targets and the
 * per-step uniform), chunk read-back, and the dispatch / read-back counters the diagnostics report.
 * The kernels and the step itself stay with each layer.
 *
 * @module
 */

import { DivergenceError } from "../../core/errors.ts";
import { allFinite } from "../../core/finite.ts";
import type { CreateOutputLayerOptions, SparseBatch, StepResult } from "../../core/types.ts";
import { createLoss, type SphericalFamilyLoss } from "../../losses/mod.ts";
import { validateBatch, validateDims, validateMatrix, validateOpen } from "../validate.ts";
import { PackedBatch } from "./batch.ts";
import type { WebGpuContext } from "./device.ts";
import { packStep, STEP_BYTES } from "./kernels/common.ts";
import { Runner } from "./runner.ts";

const NO_H = new Float32Array(0);

/**
 * Options of the WebGPU layers beyond {@link CreateOutputLayerOptions}.
 *
 * @example
 * ```ts
 * import type { WebGpuLayerOptions } from "./base.ts";
 * const o: WebGpuLayerOptions = { kind: "factored", D: 100, d: 8, chunkRows: 32 };
 * ```
 */
export type WebGpuLayerOptions = CreateOutputLayerOptions & {
  /** Rows of V (or W) per storage binding; default: as many as the adapter's binding limit allows. */
  chunkRows?: number;
  /** An existing device to use (default: a new one from requestWebGpuDevice). */
  context?: WebGpuContext;
  /**
   * Factored layer: examples per Woodbury block (default: the whole batch when the small inverse fits in
   * workgroup memory; at most 128 and what workgroup memory holds).
   */
  woodburyBlock?: number;
};

/**
 * Rows per chunk for a D×d matrix on this device: as many as one storage binding (and one buffer) holds
 * at `width` floats per row, or fewer when `forced` asks; `nb` chunks in all.
 *
 * @example
 * ```ts
 * import { requestWebGpuDevice } from "./device.ts";
 * import { planChunks } from "./base.ts";
 * const ctx = await requestWebGpuDevice({ log: () => {} });
 * console.log(planChunks(ctx, 793_471, 300)); // on llvmpipe (128 MiB bindings): { rows: 111848, nb: 8 }
 * ctx.device.destroy();
 * ```
 */
export function planChunks(ctx: WebGpuContext, D: number, width: number, forced?: number): {
  rows: number;
  nb: number;
} {
  const bytes = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  let rows = Math.max(1, Math.floor(bytes / (4 * width)));
  if (forced !== undefined) {
    if (!Number.isSafeInteger(forced) || forced < 1) {
      throw new RangeError(`chunkRows must be a positive integer, got ${forced}`);
    }
    rows = Math.min(rows, forced);
  }
  rows = Math.min(rows, Math.max(D, 1));
  return { rows, nb: Math.max(1, Math.ceil(D / rows)) };
}

/**
 * The device for a layer: `opts.context`, or a new one (owned by the layer). Checks D and d first.
 *
 * @example
 * ```ts
 * import { layerContext } from "./base.ts";
 * const { ctx, owns } = await layerContext({ kind: "naive", D: 10, d: 4 });
 * if (owns) ctx.device.destroy();
 * ```
 */
export async function layerContext(opts: WebGpuLayerOptions): Promise<{ ctx: WebGpuContext; owns: boolean }> {
  validateDims(opts.D, opts.d);
  if (opts.context) return { ctx: opts.context, owns: false };
  const { requestWebGpuDevice } = await import("./device.ts");
  return { ctx: await requestWebGpuDevice({ log: opts.log }), owns: true };
}

/**
 * What both WebGPU layers share. Subclasses own their kernels, their state buffers besides the chunks,
 * and their step.
 *
 * @example
 * ```ts ignore
 * class MyLayer extends WebGpuLayerBase { ... }
 * ```
 */
export abstract class WebGpuLayerBase {
  /** Always "webgpu". */
  readonly backend = "webgpu" as const;
  /** Input dimension. */
  readonly d: number;
  protected size: number;
  protected readonly ctx: WebGpuContext;
  protected readonly ownsDevice: boolean;
  protected readonly r: Runner;
  protected readonly loss: SphericalFamilyLoss;
  protected readonly log: (line: string) => void;
  protected readonly forcedChunk?: number;
  /** Rows per chunk and number of chunks of the D×d matrix. */
  protected rows = 1;
  protected nb = 1;
  /** The D×d matrix (V or W), one buffer per chunk of `rows` rows. */
  protected chunks: GPUBuffer[] = [];
  /** Per-batch buffers, sized for `cap`. */
  protected b: Record<string, GPUBuffer> = {};
  protected cap = { m: 0, n: 0 };
  protected packed = new PackedBatch();
  protected stepU: GPUBuffer;
  protected stepCount = 0;
  #closed = false;
  #last = { dispatches: 0, readbacks: 0 };
  #mark = { dispatches: 0, readbacks: 0 };

  /**
   * @param opts the layer options
   * @param ctx the device
   * @param ownsDevice whether close() destroys the device
   */
  protected constructor(opts: WebGpuLayerOptions, ctx: WebGpuContext, ownsDevice: boolean) {
    this.size = opts.D;
    this.d = opts.d;
    this.ctx = ctx;
    this.ownsDevice = ownsDevice;
    this.r = new Runner(ctx.device);
    this.loss = createLoss(opts.loss ?? "squared", opts.lossOptions);
    this.log = opts.log ?? ((l: string) => console.error(l));
    this.forcedChunk = opts.chunkRows;
    this.stepU = ctx.device.createBuffer({
      label: "step",
      size: STEP_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  /** Number of outputs (rows of W). */
  get D(): number {
    return this.size;
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.stepCount;
  }

  /**
   * The loss and ∇H read back, as the OutputLayer contract wants them: DivergenceError when either is not
   * finite. The CPU layers refuse before W changes; on the GPU a step's update was already submitted with
   * them (`updated`), and the message says so: rebuild the layer from its last good state.
   */
  protected finiteResult(loss: number, gradH: Float32Array, updated: boolean): StepResult {
    if (Number.isFinite(loss) && allFinite(gradH)) return { loss, gradH };
    const step = this.stepCount + (updated ? 0 : 1);
    throw new DivergenceError(
      step,
      `step ${step}: the ${this.loss.name} loss (${loss}) or ∇H of this batch is not finite; ` +
        (updated
          ? `the webgpu layer's state was updated with it: rebuild the layer from its last good state. `
          : "the layer's state is unchanged. ") +
        "Lower the learning rate.",
    );
  }

  /** Rows of chunk `c`. */
  protected chunkRowCount(c: number): number {
    return Math.min(this.rows, this.size - c * this.rows);
  }

  /** (Re)allocates the chunks for the current D (`width` floats per row sizes the chunks). */
  protected allocChunks(width = this.d): void {
    const plan = planChunks(this.ctx, this.size, width, this.forcedChunk);
    this.rows = plan.rows;
    this.nb = plan.nb;
    for (const v of this.chunks) this.r.release(v);
    this.chunks = [];
    for (let c = 0; c < this.nb; c++) {
      this.chunks.push(this.r.storage(`chunk${c}`, this.chunkRowCount(c) * this.d * 4));
    }
    this.r.resetGroups();
  }

  /** Writes the D×d matrix into the chunks. */
  protected writeChunks(M: Float32Array): void {
    const d = this.d;
    for (let c = 0; c < this.nb; c++) {
      const r0 = c * this.rows;
      this.r.write(this.chunks[c], M.subarray(r0 * d, (r0 + this.chunkRowCount(c)) * d));
    }
  }

  /** Reads the D×d matrix back (one map per chunk). */
  protected async readChunks(): Promise<Float32Array> {
    const d = this.d, M = new Float32Array(this.size * d);
    for (let c = 0; c < this.nb; c++) {
      const bytes = this.chunkRowCount(c) * d * 4;
      M.set(new Float32Array(await this.r.read(this.chunks[c], 0, bytes)), c * this.rows * d);
    }
    return M;
  }

  /**
   * Per-batch buffers for at least m examples and n merged targets: `sizes(M, N)` gives each buffer's
   * float count; they are reallocated only when the batch outgrows them.
   */
  protected ensureBatch(
    m: number,
    n: number,
    sizes: (M: number, N: number) => Record<string, number>,
  ): boolean {
    if (m <= this.cap.m && n <= this.cap.n) return false;
    const M = Math.max(m, this.cap.m), N = Math.max(n, this.cap.n, 16);
    const extra = sizes(M, N);
    for (const buf of Object.values(this.b)) this.r.release(buf);
    this.b = {};
    const common: Record<string, number> = {
      o: N,
      dy: N,
      entY: N,
      bi: (M + 1) + 4 * N + 1 + 4 * this.nb + 16,
      stats: 4 * M,
      exOut: 4 * M,
    };
    for (const [k, v] of Object.entries({ ...common, ...extra })) this.b[k] = this.r.storage(k, v * 4);
    this.cap = { m: M, n: N };
    this.r.resetGroups();
    return true;
  }

  /**
   * Validates and packs the batch (targets grouped by row, ranged per chunk), makes room, uploads the
   * packed targets and writes the step uniform; returns m. H goes up through `writeH` (when given).
   */
  protected uploadBatch(
    H: Float32Array | null,
    m: number,
    Y: SparseBatch,
    eta: number,
    slot: number,
    sizes: (M: number, N: number) => Record<string, number>,
    writeH?: (H: Float32Array, m: number) => void,
  ): number {
    // without H (formed on the GPU) the targets alone are checked: an empty H with width 0 passes
    m = H
      ? validateBatch(H, Y, this.size, this.d, this.loss)
      : validateBatch(NO_H, Y, this.size, 0, this.loss);
    const p = this.packed;
    p.pack(Y, this.rows, this.nb);
    this.ensureBatch(m, p.n, sizes);
    if (H && writeH) writeH(H, m);
    this.r.write(this.b.bi, p.bi.subarray(0, p.biLength));
    if (p.n > 0) this.r.write(this.b.entY, p.entY.subarray(0, p.n));
    const o = p.off, lo = this.loss.options;
    this.r.write(
      this.stepU,
      new Uint8Array(packStep({
        m,
        n: p.n,
        nU: p.nU,
        d: this.d,
        offExOff: o.exOff,
        offEntEx: o.entEx,
        offEntRow: o.entRow,
        offSorted: o.sorted,
        offRowOff: o.rowOff,
        offChunk: o.chunk,
        slot,
        stepNo: this.stepCount,
        eta,
        D: this.size,
        eps: lo.epsilon,
        za: lo.a,
        zb: lo.b,
      })),
    );
    return m;
  }

  /** Starts counting the dispatches and read-backs of one step. */
  protected countStart(): void {
    this.#mark = { dispatches: this.r.dispatches, readbacks: this.r.readbacks };
  }

  /** Ends counting: the step's dispatches and read-backs become the diagnostics' per-step figures. */
  protected countEnd(): void {
    this.#last = {
      dispatches: this.r.dispatches - this.#mark.dispatches,
      readbacks: this.r.readbacks - this.#mark.readbacks,
    };
  }

  /**
   * Dispatches and read-backs (maps) of the last step, and the totals since creation.
   *
   * @example
   * ```ts ignore
   * const { dispatchesPerStep, readbacksPerStep } = layer.counters();
   * ```
   */
  counters(): { dispatchesPerStep: number; readbacksPerStep: number; dispatches: number; readbacks: number } {
    return {
      dispatchesPerStep: this.#last.dispatches,
      readbacksPerStep: this.#last.readbacks,
      dispatches: this.r.dispatches,
      readbacks: this.r.readbacks,
    };
  }

  /** Checks rows to append: n×d float32 values, finite. Returns n. */
  protected checkAppend(rows: Float32Array): number {
    const d = this.d;
    if (!(rows instanceof Float32Array) || rows.length % d !== 0 || rows.length === 0) {
      throw new RangeError(
        `rows must be a Float32Array of n×d values (d = ${d}), got length ${rows?.length}`,
      );
    }
    validateMatrix("rows", rows, rows.length / d, d);
    return rows.length / d;
  }

  /** Throws UsageError once the layer is closed. */
  protected alive(): void {
    validateOpen(this.#closed);
  }

  /** Frees what a subclass holds besides the runner's buffers (called once by close()). */
  protected onClose(): void {}

  /** Frees the GPU buffers (and the device, when the layer created it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.r.destroy();
    this.stepU.destroy();
    this.onClose();
    if (this.ownsDevice) this.ctx.device.destroy();
  }
}
