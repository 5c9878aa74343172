/**
 * The exact factored output layer on WebGPU (ALGORITHM.md §2–5): W = V U + 𝟙ωᵀ with V (D×d, split into
 * chunks of rows, one storage binding each), U, U⁻ᵀ, Q (d×d) and [ω, w̄] resident on the GPU across steps.
 * Per step only H and the packed batch go up; the loss is summed on the GPU into a ring of per-step slots
 * and read back only when asked ({@link WebGpuFactoredLayer.enqueueStep} + {@link WebGpuFactoredLayer.readLosses}),
 * while `step()` keeps the OutputLayer contract by reading the loss and ∇H back (one map per call).
 *
 * Precision: all GPU state is float32. U⁻ᵀ is updated by Woodbury in blocks of `woodburyBlock` examples
 * (default 32, at most 128 and what workgroup memory holds), each block's small system inverted in one
 * workgroup without pivoting (its pivots double as the singular-step guard).
 * Every `stabilizeEvery` steps the d×d state is read back and, in float64 on the host, U⁻ᵀ is recomputed
 * exactly and U's extreme singular directions are rescaled into [0.5, 2] (V gets the matching O(Dd)
 * rank-one update on the GPU); every `recomputeQEvery` steps Q and w̄ are re-derived from V, U, ω.
 *
 * @module
 */

import { SingularUpdateError, UsageError } from "../../core/errors.ts";
import { GUARD_MARGIN } from "../guard.ts";
import { reinvert, topLeftSingular } from "../factored/upkeep.ts";
import { selectTopK } from "../topk.ts";
import type { LinAlgBackend } from "../../linalg/backend.ts";
import { createBackend } from "../../linalg/select.ts";
import { validateBatch, validateDims, validateEta, validateMatrix, validateVector } from "../validate.ts";
import { validateRows } from "../validate.ts";
import { createLoss, type SphericalFamilyLoss } from "../../losses/mod.ts";
import type {
  CreateOutputLayerOptions,
  Diagnostics,
  OutputLayer,
  OutputLayerState,
  SparseBatch,
  StepResult,
} from "../../core/types.ts";
import { PackedBatch } from "./batch.ts";
import type { WebGpuContext } from "./device.ts";
import { BUILD_M_WGSL, EPILOGUE_WGSL } from "./kernels/backward.ts";
import { packStep, STEP_BYTES } from "./kernels/common.ts";
import { COPY_WGSL } from "./kernels/copy.ts";
import { REDUCE_PARTS_WGSL } from "./kernels/dense.ts";
import { GATHER_A_WGSL, GATHER_O_WGSL } from "./kernels/gather.ts";
import { gemmGrid, type GemmParams, gemmWgsl, packGemm } from "./kernels/gemm.ts";
import { dispatchGemm } from "./dispatch_gemm.ts";
import { inverseBlock, woodburyRoundWgsl } from "./kernels/inverse.ts";
import { LOSS_REDUCE_WGSL, lossWgsl } from "./kernels/loss.ts";
import { RANK1_WGSL } from "./kernels/rank1.ts";
import { SCATTER_V_WGSL, VEC_UPDATE_WGSL } from "./kernels/scatter.ts";
import { STATS_WGSL } from "./kernels/stats.ts";
import { Runner } from "./runner.ts";

/** Per-step loss slots kept on the GPU before a forced read-back. */
const RING = 4096;

/**
 * The longest stabilisation interval, in steps, of the GPU factored layer when `stabilizeEvery` is not given.
 * Each stabilisation reads the d×d state back, and one read-back (`mapAsync`) costs ~11–14 ms in Deno, i.e.
 * several steps' worth of GPU time during which the queue runs dry. So without `stabilizeEvery` the interval
 * adapts: it starts at 50 (the CPU layers' fixed interval) and is then set, at each stabilisation, so that
 * U's extreme singular values would drift by a factor of ≤ e^0.25 ≈ 1.28 over it at the rate seen over the
 * last interval (at most doubling at once, between 50 and this); it halves when the float32 inverse error
 * exceeded 1e-5. A given `stabilizeEvery` is used as it is (the tests pass 10).
 *
 * @example
 * ```ts
 * import { GPU_STABILIZE_EVERY } from "./factored.ts";
 * console.log(GPU_STABILIZE_EVERY); // 500
 * ```
 */
export const GPU_STABILIZE_EVERY = 500;
/** The shortest (and first) adaptive stabilisation interval: the CPU layers' default. */
const STABILIZE_MIN = 50;

/**
 * Options of the WebGPU layers beyond {@link CreateOutputLayerOptions}.
 *
 * @example
 * ```ts
 * import type { WebGpuLayerOptions } from "./factored.ts";
 * const o: WebGpuLayerOptions = { kind: "factored", D: 100, d: 8, chunkRows: 32 };
 * ```
 */
export type WebGpuLayerOptions = CreateOutputLayerOptions & {
  /** Rows of V (or W) per storage binding; default: as many as the adapter's binding limit allows. */
  chunkRows?: number;
  /** An existing device to use (default: a new one from requestWebGpuDevice). */
  context?: WebGpuContext;
  /**
   * Factored layer: examples per Woodbury block (default 32, the fastest measured on an H200; at most 128 and
   * what workgroup memory holds).
   */
  woodburyBlock?: number;
};

/**
 * Rows per chunk for a D×d matrix on this device: as many as one storage binding (and one buffer) holds,
 * or fewer when `forced` asks; `nb` chunks in all.
 *
 * @example
 * ```ts
 * import { requestWebGpuDevice } from "./device.ts";
 * import { planChunks } from "./factored.ts";
 * const ctx = await requestWebGpuDevice({ log: () => {} });
 * console.log(planChunks(ctx, 793_471, 300)); // on llvmpipe (128 MiB bindings): { rows: 111848, nb: 8 }
 * ctx.device.destroy();
 * ```
 */
export function planChunks(ctx: WebGpuContext, D: number, d: number, forced?: number): {
  rows: number;
  nb: number;
} {
  const bytes = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  let rows = Math.max(1, Math.floor(bytes / (4 * d)));
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
 * The factored layer on one WebGPU device. Create through `createOutputLayer({ backend: "webgpu" })` or
 * {@link WebGpuFactoredLayer.create}.
 *
 * @example
 * ```ts
 * import { requestWebGpuDevice } from "./device.ts";
 * import { WebGpuFactoredLayer } from "./factored.ts";
 * const context = await requestWebGpuDevice({ log: () => {} });
 * const D = 50, d = 4;
 * const layer = await WebGpuFactoredLayer.create({ kind: "factored", D, d, init: new Float32Array(D * d).fill(0.01), context });
 * const Y = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(3), values: Float32Array.of(1) };
 * const { loss } = await layer.step(new Float32Array(d).fill(0.5), Y, 0.1);
 * layer.close();
 * ```
 */
export class WebGpuFactoredLayer implements OutputLayer {
  /** Always "webgpu". */
  readonly backend = "webgpu" as const;
  #D: number;
  /** Input dimension. */
  readonly d: number;
  readonly #ctx: WebGpuContext;
  readonly #ownsDevice: boolean;
  readonly #r: Runner;
  #la!: LinAlgBackend;
  readonly #loss: SphericalFamilyLoss;
  readonly #log: (line: string) => void;
  /** `stabilizeEvery` as given (fixed interval), or undefined (adaptive). */
  readonly #fixedEvery?: number;
  #every: number;
  #lastStab = 0;
  #prevSigma: [number, number] | null = null;
  readonly #recomputeQEvery: number;
  readonly #forcedChunk?: number;
  readonly #mb: number;
  #rows = 1;
  #nb = 1;
  #V: GPUBuffer[] = [];
  #U!: GPUBuffer;
  #Uinvt!: GPUBuffer;
  #Q!: GPUBuffer;
  #vecs!: GPUBuffer;
  #Bwork!: GPUBuffer;
  #flag!: GPUBuffer;
  #ring!: GPUBuffer;
  #stepU!: GPUBuffer;
  #cap = { m: 0, n: 0 };
  // per-batch buffers
  #b: Record<string, GPUBuffer> = {};
  #packed = new PackedBatch();
  #steps = 0;
  #slot = 0;
  #pendingSlots: number[] = [];
  #done: number[] = [];
  #closed = false;
  #rescales = 0;
  #lastInverseError = 0;
  #lastCond = 1;

  private constructor(opts: WebGpuLayerOptions, ctx: WebGpuContext, ownsDevice: boolean) {
    this.#D = opts.D;
    this.d = opts.d;
    this.#ctx = ctx;
    this.#ownsDevice = ownsDevice;
    this.#r = new Runner(ctx.device);
    this.#loss = createLoss(opts.loss ?? "squared", opts.lossOptions);
    this.#log = opts.log ?? ((l: string) => console.error(l));
    this.#fixedEvery = opts.stabilizeEvery;
    this.#every = opts.stabilizeEvery ?? STABILIZE_MIN;
    this.#recomputeQEvery = opts.recomputeQEvery ?? 5000;
    this.#forcedChunk = opts.chunkRows;
    if (
      opts.woodburyBlock !== undefined &&
      (!Number.isSafeInteger(opts.woodburyBlock) || opts.woodburyBlock < 1)
    ) {
      throw new RangeError(`woodburyBlock must be a positive integer, got ${opts.woodburyBlock}`);
    }
    this.#mb = inverseBlock(ctx.limits.maxComputeWorkgroupStorageSize, opts.woodburyBlock ?? 32);
  }

  /** Number of outputs (rows of W). */
  get D(): number {
    return this.#D;
  }

  /** Examples per Woodbury block (the one-workgroup inverse's size). */
  get woodburyBlock(): number {
    return this.#mb;
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.#steps;
  }

  /**
   * Builds the layer from `init` (W₀) or `state`, on `opts.context` or a new device.
   * @param opts the layer options (kind must be "factored")
   */
  static async create(opts: WebGpuLayerOptions): Promise<WebGpuFactoredLayer> {
    validateDims(opts.D, opts.d);
    let ctx = opts.context;
    const owns = !ctx;
    if (!ctx) {
      const { requestWebGpuDevice } = await import("./device.ts");
      ctx = await requestWebGpuDevice({ log: opts.log });
    }
    const layer = new WebGpuFactoredLayer(opts, ctx, owns);
    try {
      // the O(d³) float64 host work of the stabilisation (LAPACK inverse, power iterations)
      layer.#la = await createBackend("auto", { log: layer.#log });
      if (opts.state) await layer.#loadState(opts.state);
      else {
        if (!opts.init) throw new UsageError("createOutputLayer: give `init` (W₀, D×d) or `state`");
        validateMatrix("init", opts.init, opts.D, opts.d);
        await layer.#loadInit(opts.init);
      }
    } catch (e) {
      layer.close();
      throw e;
    }
    layer.#log(
      `webgpu factored layer: D=${opts.D} d=${opts.d} loss=${layer.#loss.name}, V in ${layer.#nb} chunk(s) of ` +
        `${layer.#rows} rows, Woodbury blocks of ${layer.#mb}, device "${ctx.description}"`,
    );
    return layer;
  }

  #allocState(): void {
    const r = this.#r, d = this.d;
    const plan = planChunks(this.#ctx, this.#D, d, this.#forcedChunk);
    this.#rows = plan.rows;
    this.#nb = plan.nb;
    for (const v of this.#V) r.release(v);
    this.#V = [];
    for (let b = 0; b < this.#nb; b++) {
      const rows = Math.min(this.#rows, this.#D - b * this.#rows);
      this.#V.push(r.storage(`V${b}`, rows * d * 4));
    }
    for (const buf of [this.#U, this.#Uinvt, this.#Q, this.#vecs, this.#Bwork, this.#flag, this.#ring]) {
      if (buf) r.release(buf);
    }
    this.#U = r.storage("U", d * d * 4);
    this.#Uinvt = r.storage("Uinvt", d * d * 4);
    this.#Q = r.storage("Q", d * d * 4);
    this.#vecs = r.storage("vecs", 2 * d * 4);
    this.#Bwork = r.storage("Bwork", d * d * 4);
    this.#flag = r.storage("flag", 16);
    this.#ring = r.storage("ring", RING * 4);
    this.#stepU ??= this.#ctx.device.createBuffer({
      label: "step",
      size: STEP_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    r.resetGroups();
  }

  #writeV(V: Float32Array): void {
    const d = this.d;
    for (let b = 0; b < this.#nb; b++) {
      const r0 = b * this.#rows, r1 = Math.min(this.#D, r0 + this.#rows);
      this.#r.write(this.#V[b], V.subarray(r0 * d, r1 * d));
    }
  }

  async #loadInit(W0: Float32Array): Promise<void> {
    const d = this.d;
    this.#allocState();
    this.#writeV(W0);
    const I = new Float32Array(d * d);
    for (let i = 0; i < d; i++) I[i * d + i] = 1;
    this.#r.write(this.#U, I);
    this.#r.write(this.#Uinvt, I);
    this.#r.write(this.#vecs, new Float32Array(2 * d));
    this.#r.write(this.#flag, new Uint32Array(4));
    this.#steps = 0;
    await this.#recomputeQ();
  }

  async #loadState(s: OutputLayerState): Promise<void> {
    const d = this.d;
    if (s.kind !== "factored") {
      throw new UsageError(`state.kind is "${s.kind}"; the webgpu factored layer needs "factored"`);
    }
    if (s.D !== this.#D || s.d !== d) {
      throw new UsageError(`state is D=${s.D}, d=${s.d} but the options say D=${this.#D}, d=${d}`);
    }
    const need = (name: string, len: number) => {
      const a = s.arrays[name];
      if (!a || a.length !== len) {
        throw new RangeError(`state.arrays.${name}.length = ${a ? a.length : "none"}, expected ${len}`);
      }
      return a instanceof Float32Array ? a : Float32Array.from(a);
    };
    this.#allocState();
    this.#writeV(need("V", this.#D * d));
    this.#r.write(this.#U, need("U", d * d));
    this.#r.write(this.#Uinvt, need("Uinvt", d * d));
    this.#r.write(this.#Q, need("Q", d * d));
    const vecs = new Float32Array(2 * d);
    vecs.set(need("omega", d), 0);
    vecs.set(need("wbar", d), d);
    this.#r.write(this.#vecs, vecs);
    this.#r.write(this.#flag, new Uint32Array(4));
    this.#steps = s.scalars.steps ?? 0;
    this.#lastStab = this.#steps;
    await this.#r.finish();
  }

  #ensureBatch(m: number, n: number): void {
    const cap = this.#cap;
    if (m <= cap.m && n <= cap.n) return;
    const M = Math.max(m, cap.m), N = Math.max(n, cap.n, 16);
    const d = this.d, mb = this.#mb, r = this.#r;
    for (const buf of Object.values(this.#b)) r.release(buf);
    const f = 4;
    const sizes: Record<string, number> = {
      H: M * d,
      Hhat: M * d,
      QH: M * d,
      A: M * d,
      T: M * d,
      G: M * d,
      X: M * d,
      P: M * d,
      HF: 2 * M * d,
      FH: 2 * M * d,
      stats: 4 * M,
      exOut: 4 * M,
      o: N,
      dy: N,
      entY: N,
      bi: (M + 1) + 4 * N + 1 + 4 * this.#nb + 16,
      TH: M * M,
      QHH: M * M,
      M: M * M,
      Lr: mb * d,
      Rr: mb * d,
      Cb: mb * mb,
      Ci: mb * mb,
      Z: mb * d,
    };
    this.#b = {};
    for (const [k, v] of Object.entries(sizes)) this.#b[k] = r.storage(k, v * f);
    this.#cap = { m: M, n: N };
    r.resetGroups();
  }

  // --- dispatch helpers ---

  #gemm(
    key: string,
    tA: boolean,
    tB: boolean,
    A: GPUBuffer,
    B: GPUBuffer,
    C: GPUBuffer,
    p: GemmParams,
  ): void {
    dispatchGemm(this.#r, key, tA, tB, A, B, C, p, this.#flag);
  }

  #copy(
    key: string,
    src: GPUBuffer,
    offS: number,
    dst: GPUBuffer,
    offD: number,
    n: number,
    guard: number,
  ): void {
    const r = this.#r;
    const pipe = r.pipeline("copy", () => COPY_WGSL);
    const groups = Math.ceil(n / 256);
    const width = Math.min(groups, 65535);
    const u = r.uniform(`c:${key}`, new Uint32Array([n, offS, offD, guard, width, 0, 0, 0]).buffer);
    r.dispatch(pipe, r.group(`c:${key}`, pipe, [src, dst, u, this.#flag]), width, Math.ceil(groups / width));
  }

  #chunkU(b: number, first: number): GPUBuffer {
    const r0 = b * this.#rows, r1 = Math.min(this.#D, r0 + this.#rows);
    return this.#r.uniform(`chunk${b}:${first}`, new Uint32Array([b, r0, r1, first]).buffer);
  }

  #stepUniform(m: number, eta: number, slot: number): void {
    const p = this.#packed, o = p.off, lo = this.#loss.options;
    this.#r.write(
      this.#stepU,
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
        stepNo: this.#steps,
        eta,
        D: this.#D,
        eps: lo.epsilon,
        za: lo.a,
        zb: lo.b,
      })),
    );
  }

  /** Uploads the batch and records the forward and backward passes (loss into ring[slot], ∇H into G). */
  #forward(H: Float32Array, Y: SparseBatch, eta: number, slot: number): number {
    const m = validateBatch(H, Y, this.#D, this.d);
    const d = this.d, r = this.#r;
    this.#packed.pack(Y, this.#rows, this.#nb);
    const p = this.#packed;
    this.#ensureBatch(m, p.n);
    const b = this.#b;
    r.write(b.H, H);
    r.write(b.HF, H); // the H halves of [H; F] and [F; H] for the Q update (no copy kernels)
    r.write(b.FH, H, m * d * 4);
    r.write(b.bi, p.bi.subarray(0, p.biLength));
    if (p.n > 0) r.write(b.entY, p.entY.subarray(0, p.n));
    this.#stepUniform(m, eta, slot);
    const st = this.#stepU;
    // 1. Ĥ = H Uᵀ, QH = H Q, per-example q, s, hω
    this.#gemm("Hhat", false, true, b.H, this.#U, b.Hhat, { M: m, N: d, K: d, lda: d, ldb: d, ldc: d });
    this.#gemm("QH", false, false, b.H, this.#Q, b.QH, { M: m, N: d, K: d, lda: d, ldb: d, ldc: d });
    const stats = r.pipeline("stats", () => STATS_WGSL);
    r.dispatch(stats, r.group("stats", stats, [b.H, b.QH, this.#vecs, b.stats, st]), m);
    // 2. o at the targets, chunk by chunk
    const go = r.pipeline("gatherO", () => GATHER_O_WGSL);
    for (let c = 0; c < this.#nb; c++) {
      const cnt = p.chunkEntries[c];
      if (cnt === 0) continue;
      const g = r.group(`go${c}`, go, [this.#V[c], b.Hhat, b.bi, b.stats, b.o, this.#chunkU(c, 0), st]);
      r.dispatch(go, g, Math.min(cnt, 65535), Math.ceil(cnt / 65535));
    }
    // 3. the loss: ẏ, g_q, g_s, 𝟙·ẏ, L_i; ring[slot] = Σ L_i
    const lp = r.pipeline(`loss:${this.#loss.name}`, () => lossWgsl(this.#loss.name));
    r.dispatch(lp, r.group("loss", lp, [b.bi, b.entY, b.o, b.stats, b.dy, b.exOut, st]), Math.ceil(m / 64));
    const lr = r.pipeline("lossReduce", () => LOSS_REDUCE_WGSL);
    r.dispatch(lr, r.group("lossReduce", lr, [b.exOut, this.#ring, st]), 1);
    // 4. A = Vᵀ Ẏ (rows A_i = Σ ẏ_e V[c_e])
    const ga = r.pipeline("gatherA", () => GATHER_A_WGSL);
    const chunks: number[] = [];
    for (let c = 0; c < this.#nb; c++) if (p.chunkEntries[c] > 0) chunks.push(c);
    if (chunks.length === 0) chunks.push(0);
    chunks.forEach((c, k) => {
      const first = k === 0 ? 1 : 0;
      const g = r.group(`ga${c}:${first}`, ga, [this.#V[c], b.bi, b.dy, b.A, this.#chunkU(c, first), st]);
      r.dispatch(ga, g, m);
    });
    // 5. ∇H = Uᵀ A + ω 𝟙ᵀẎ + 2 Q H G + w̄ g_sᵀ (rows), T = Wᵀ ẏ_i, X = 2η g H
    this.#gemm("T", false, false, b.A, this.#U, b.T, { M: m, N: d, K: d, lda: d, ldb: d, ldc: d });
    const ep = r.pipeline("epilogue", () => EPILOGUE_WGSL);
    const eg = r.group("epilogue", ep, [b.T, b.QH, b.H, b.exOut, this.#vecs, b.G, b.X, st, b.HF]);
    r.dispatch(ep, eg, Math.ceil(d / 16), Math.ceil(m / 16));
    return m;
  }

  /** Records the update (steps 6–11 of ALGORITHM.md §4), every state write guarded by the flag. */
  #update(m: number, eta: number): void {
    const d = this.d, r = this.#r, b = this.#b, st = this.#stepU, mb = this.#mb;
    // M = ∇Oᵀ∇O (m×m)
    this.#gemm("TH", false, true, b.T, b.H, b.TH, { M: m, N: m, K: d, lda: d, ldb: d, ldc: m });
    this.#gemm("QHH", false, true, b.QH, b.H, b.QHH, { M: m, N: m, K: d, lda: d, ldb: d, ldc: m });
    const bm = r.pipeline("buildM", () => BUILD_M_WGSL);
    r.dispatch(
      bm,
      r.group("buildM", bm, [b.bi, b.dy, b.exOut, b.stats, b.TH, b.QHH, b.M, st]),
      Math.ceil(m / 16),
      Math.ceil(m / 16),
    );
    // U⁻ᵀ by blocked Woodbury into Bwork
    this.#copy("B0", this.#Uinvt, 0, this.#Bwork, 0, d * d, 0);
    const wr = r.pipeline(`woodburyRound${mb}`, () => woodburyRoundWgsl(mb));
    for (let k = 0, r0 = 0; r0 < m; k++, r0 += mb) {
      const nk = Math.min(mb, m - r0);
      this.#gemm(`L${k}`, false, true, b.X, this.#Bwork, b.Lr, {
        M: nk,
        N: d,
        K: d,
        lda: d,
        ldb: d,
        ldc: d,
        offA: r0 * d,
      });
      this.#gemm(`R${k}`, false, false, b.Hhat, this.#Bwork, b.Rr, {
        M: nk,
        N: d,
        K: d,
        lda: d,
        ldb: d,
        ldc: d,
        offA: r0 * d,
      });
      // C = I − R X_kᵀ, C⁻¹ and Z = C⁻¹ R in one workgroup (one dispatch instead of three)
      const iu = r.uniform(`wr${k}`, new Uint32Array([nk, d, r0 * d, 0]).buffer);
      r.dispatch(wr, r.group(`wr${k}`, wr, [b.Rr, b.X, b.Z, this.#flag, iu, st]), 1);
      this.#gemm(`BW${k}`, true, false, b.Lr, b.Z, this.#Bwork, {
        M: d,
        N: d,
        K: nk,
        lda: d,
        ldb: d,
        ldc: d,
        beta: 1,
      });
    }
    // U ← U − Ĥᵀ X (= U − 2η Ĥ G Hᵀ in column form)
    this.#gemm("U", true, false, b.Hhat, b.X, this.#U, {
      M: d,
      N: d,
      K: m,
      lda: d,
      ldb: d,
      ldc: d,
      alpha: -1,
      beta: 1,
      guard: 1,
    });
    // P = H U_new⁻¹ (rows U_new⁻ᵀ h_i), V[c] −= η Σ ẏ_e P_i
    this.#gemm("P", false, true, b.H, this.#Bwork, b.P, { M: m, N: d, K: d, lda: d, ldb: d, ldc: d });
    const sv = r.pipeline("scatterV", () => SCATTER_V_WGSL);
    const p = this.#packed;
    for (let c = 0; c < this.#nb; c++) {
      const cnt = p.chunkRows[c];
      if (cnt === 0) continue;
      const g = r.group(`sv${c}`, sv, [this.#V[c], b.bi, b.dy, b.P, this.#flag, this.#chunkU(c, 0), st]);
      r.dispatch(sv, g, Math.min(cnt, 65535), Math.ceil(cnt / 65535));
    }
    // ω, w̄
    const vu = r.pipeline("vecUpdate", () => VEC_UPDATE_WGSL);
    r.dispatch(
      vu,
      r.group("vecUpdate", vu, [b.H, b.exOut, b.stats, this.#vecs, this.#flag, st]),
      Math.ceil(d / 64),
    );
    // Q += [H;F]ᵀ[F;H] with F = −η ∇H + (η²/2) M H
    // (H is already in HF[0, m·d) and FH[m·d, 2m·d): written with the batch in #forward)
    // (∇H is already in HF[m·d, 2m·d): written by the epilogue)
    this.#gemm("F", false, false, b.M, b.H, b.HF, {
      M: m,
      N: d,
      K: m,
      lda: m,
      ldb: d,
      ldc: d,
      offC: m * d,
      alpha: eta * eta / 2,
      beta: -eta,
    });
    this.#copy("FH0", b.HF, m * d, b.FH, 0, m * d, 0);
    this.#gemm("Q", true, false, b.HF, b.FH, this.#Q, {
      M: d,
      N: d,
      K: 2 * m,
      lda: d,
      ldb: d,
      ldc: d,
      beta: 1,
      guard: 1,
    });
    // commit U⁻ᵀ
    this.#copy("Bcommit", this.#Bwork, 0, this.#Uinvt, 0, d * d, 1);
  }

  #nextSlot(): number {
    const s = this.#slot;
    this.#slot = (this.#slot + 1) % RING;
    return s;
  }

  /**
   * Records and submits one SGD step without waiting for it and without reading anything back. Its loss
   * stays on the GPU until {@link WebGpuFactoredLayer.readLosses}; a refused (singular) step is reported
   * there (or by the next `step()`), and it and every step after it are skipped on the GPU.
   * @param H m×d inputs
   * @param Y the sparse targets
   * @param eta learning rate
   */
  async enqueueStep(H: Float32Array, Y: SparseBatch, eta: number): Promise<void> {
    this.#alive();
    validateEta(eta);
    if (this.#pendingSlots.length >= RING - 1) await this.#drain();
    const slot = this.#nextSlot();
    const m = this.#forward(H, Y, eta, slot);
    this.#update(m, eta);
    this.#r.submit();
    this.#pendingSlots.push(slot);
    this.#steps++;
    await this.#maintain();
  }

  /**
   * Times each kernel of `steps` factored steps on (H, Y) with GPU timestamps, one pass per dispatch: per
   * kernel, GPU µs per step and dispatches per step. The timed steps run with η = 0, so every kernel does
   * its full work while the state does not move (they are not counted as steps). Null when the device has
   * no "timestamp-query" feature.
   * @param H m×d inputs
   * @param Y the sparse targets
   * @param steps how many steps to time
   */
  async profileSteps(
    H: Float32Array,
    Y: SparseBatch,
    steps: number,
  ): Promise<{ kernel: string; usPerStep: number; dispatchesPerStep: number }[] | null> {
    await this.readLosses();
    if (!this.#ctx.device.features.has("timestamp-query")) return null;
    // the d×d state is saved and restored: on some drivers (llvmpipe) passes with timestamp writes
    // lose their ordering, and even η = 0 steps would then leave stale values behind
    const saved = await this.#r.readMany(
      [this.#U, this.#Uinvt, this.#Q, this.#vecs].map((b) => [b, 0, b.size]),
    );
    this.#r.profileStart();
    for (let s = 0; s < steps; s++) {
      const m = this.#forward(H, Y, 0, this.#nextSlot());
      this.#update(m, 0);
      this.#r.submit();
    }
    const totals = await this.#r.profileStop();
    [this.#U, this.#Uinvt, this.#Q, this.#vecs].forEach((b, k) => this.#r.write(b, new Uint8Array(saved[k])));
    this.#r.write(this.#flag, new Uint32Array(4));
    await this.#r.finish();
    return [...totals].map(([kernel, [ns, n]]) => ({
      kernel,
      usPerStep: ns / 1000 / steps,
      dispatchesPerStep: n / steps,
    })).sort((a, b) => b.usPerStep - a.usPerStep);
  }

  /** The losses of the steps enqueued since the last read, in order (one map). */
  async readLosses(): Promise<Float64Array> {
    this.#alive();
    await this.#drain();
    const out = Float64Array.from(this.#done);
    this.#done = [];
    return out;
  }

  async #drain(): Promise<void> {
    const slots = this.#pendingSlots;
    const [ring, flag] = await this.#r.readMany([[this.#ring, 0, RING * 4], [this.#flag, 0, 8]]);
    const rv = new Float32Array(ring);
    for (const s of slots) this.#done.push(rv[s]);
    this.#pendingSlots = [];
    this.#checkFlag(new Uint32Array(flag));
  }

  #checkFlag(flag: Uint32Array): void {
    if (flag[0] === 0) return;
    const at = flag[1];
    const skipped = this.#steps - at;
    this.#steps = at;
    this.#r.write(this.#flag, new Uint32Array(4));
    throw new SingularUpdateError(
      `webgpu factored layer, step ${at}: the update factor I − 2η·H·G·Hᵀ would be singular or flip a direction ` +
        `(a Woodbury pivot ≤ ${GUARD_MARGIN}); the step was refused` +
        (skipped > 1 ? ` and the ${skipped - 1} step(s) enqueued after it were skipped` : "") +
        `; lower the learning rate or the batch size`,
    );
  }

  /** One SGD step; returns the loss and ∇H from the weights before it (reads both back). */
  async step(H: Float32Array, Y: SparseBatch, eta: number): Promise<StepResult> {
    this.#alive();
    validateEta(eta);
    const slot = this.#nextSlot();
    const m = this.#forward(H, Y, eta, slot);
    this.#update(m, eta);
    this.#steps++;
    const res = await this.#readResult(m, slot);
    await this.#maintain();
    return res;
  }

  /** Loss and ∇H for a batch, without updating. */
  async evaluate(H: Float32Array, Y: SparseBatch): Promise<StepResult> {
    this.#alive();
    const slot = this.#nextSlot();
    const m = this.#forward(H, Y, 0, slot);
    return await this.#readResult(m, slot);
  }

  async #readResult(m: number, slot: number): Promise<StepResult> {
    const d = this.d;
    if (this.#pendingSlots.length > 0) await this.#drain();
    const [ring, g, flag] = await this.#r.readMany([
      [this.#ring, slot * 4, 4],
      [this.#b.G, 0, m * d * 4],
      [this.#flag, 0, 8],
    ]);
    this.#checkFlag(new Uint32Array(flag));
    return { loss: new Float32Array(ring)[0], gradH: new Float32Array(g) };
  }

  async #maintain(): Promise<void> {
    const s = this.#steps;
    if (this.#every > 0 && s - this.#lastStab >= this.#every) {
      await this.#stabilize();
      this.#lastStab = this.#steps;
    }
    if (this.#recomputeQEvery > 0 && s % this.#recomputeQEvery === 0) {
      await this.#drainIfPending();
      await this.#recomputeQ();
    }
  }

  async #drainIfPending(): Promise<void> {
    if (this.#pendingSlots.length > 0) await this.#drain();
  }

  async #readSmall(): Promise<{ U: Float64Array; Uinvt: Float64Array; Q: Float64Array; vecs: Float64Array }> {
    const d = this.d;
    await this.#drainIfPending();
    const [U, Ui, Q, v, flag] = await this.#r.readMany([
      [this.#U, 0, d * d * 4],
      [this.#Uinvt, 0, d * d * 4],
      [this.#Q, 0, d * d * 4],
      [this.#vecs, 0, 2 * d * 4],
      [this.#flag, 0, 8],
    ]);
    this.#checkFlag(new Uint32Array(flag));
    return {
      U: Float64Array.from(new Float32Array(U)),
      Uinvt: Float64Array.from(new Float32Array(Ui)),
      Q: Float64Array.from(new Float32Array(Q)),
      vecs: Float64Array.from(new Float32Array(v)),
    };
  }

  /** max |U (U⁻ᵀ)ᵀ − I| of the float32 state. */
  #inverseError(U: Float64Array, Uinvt: Float64Array): number {
    const d = this.d;
    const P = new Float64Array(d * d);
    this.#la.dgemm(false, true, d, d, d, 1, U, d, Uinvt, d, 0, P, d);
    let e = 0;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) e = Math.max(e, Math.abs(P[i * d + j] - (i === j ? 1 : 0)));
    }
    return e;
  }

  /** σ_max(U), σ_min(U) and their left singular vectors (power iteration on U and on U⁻ᵀ). */
  #extremes(U: Float64Array, Uinvt: Float64Array) {
    const d = this.d, uMax = new Float64Array(d), uMin = new Float64Array(d), tmp = new Float64Array(d);
    const sigmaMax = topLeftSingular(this.#la, U, d, uMax, tmp);
    const sigmaMin = 1 / topLeftSingular(this.#la, Uinvt, d, uMin, tmp);
    return { sigmaMax, sigmaMin, uMax, uMin };
  }

  /**
   * ALGORITHM.md §5: exact U⁻ᵀ (float64 on the host) and rescale of U's extreme singular directions into
   * [0.5, 2] (V ← V(I + βuuᵀ) on the GPU).
   */
  async #stabilize(): Promise<void> {
    const d = this.d, la = this.#la;
    const { U, Uinvt: UinvtF32 } = await this.#readSmall();
    this.#lastInverseError = this.#inverseError(U, UinvtF32);
    const Uinvt = new Float64Array(d * d);
    reinvert(la, U, Uinvt, d);
    const t1 = new Float64Array(d), t2 = new Float64Array(d);
    let first: [number, number] | null = null, post: [number, number] = [1, 1];
    for (let it = 0; it < 2 * d; it++) {
      const s = this.#extremes(U, Uinvt);
      this.#lastCond = s.sigmaMax / s.sigmaMin;
      first ??= [s.sigmaMax, s.sigmaMin];
      post = [s.sigmaMax, s.sigmaMin];
      let sigma: number, u: Float64Array;
      if (s.sigmaMax > 2) [sigma, u] = [s.sigmaMax, s.uMax];
      else if (s.sigmaMin < 0.5) [sigma, u] = [s.sigmaMin, s.uMin];
      else break;
      const alpha = 1 / sigma - 1, beta = -alpha / (1 + alpha);
      // U ← (I + α u uᵀ) U;  U⁻ᵀ ← U⁻ᵀ + β u (U⁻¹ u)ᵀ;  V ← V (I + β u uᵀ) on the GPU
      la.dgemv(true, d, d, 1, U, d, u, 0, t1); // Uᵀu
      la.dgemv(true, d, d, 1, Uinvt, d, u, 0, t2); // (U⁻ᵀ)ᵀu = U⁻¹u
      for (let i = 0; i < d; i++) {
        for (let j = 0; j < d; j++) {
          U[i * d + j] += alpha * u[i] * t1[j];
          Uinvt[i * d + j] += beta * u[i] * t2[j];
        }
      }
      this.#rank1V(Float32Array.from(u), beta);
      this.#rescales++;
    }
    this.#adaptInterval(first!, post);
    this.#r.write(this.#U, Float32Array.from(U));
    this.#r.write(this.#Uinvt, Float32Array.from(Uinvt));
    this.#r.submit();
  }

  /** The adaptive stabilisation interval (see {@link GPU_STABILIZE_EVERY}); a given `stabilizeEvery` stays. */
  #adaptInterval(before: [number, number], after: [number, number]): void {
    const prev = this.#prevSigma;
    this.#prevSigma = after;
    if (this.#fixedEvery !== undefined || prev === null) return;
    const moved = Math.max(Math.abs(Math.log(before[0] / prev[0])), Math.abs(Math.log(before[1] / prev[1])));
    if (this.#lastInverseError > 1e-5) {
      this.#every = Math.max(STABILIZE_MIN, this.#every >> 1);
    } else {
      // aim at a drift of ≤ 0.25 (a factor 1.28) of σ_max or σ_min per interval; at most double at once
      const aim = Math.round(this.#every * 0.25 / Math.max(moved, 1e-3));
      this.#every = Math.max(STABILIZE_MIN, Math.min(GPU_STABILIZE_EVERY, 2 * this.#every, aim));
    }
  }

  /** Steps between stabilisations now (adaptive unless `stabilizeEvery` was given). */
  get stabilizeInterval(): number {
    return this.#every;
  }

  #rank1V(u: Float32Array, beta: number): void {
    const r = this.#r;
    const ub = r.storage("u", u.length * 4);
    r.write(ub, u);
    const pipe = r.pipeline("rank1", () => RANK1_WGSL);
    for (let c = 0; c < this.#nb; c++) {
      const rows = Math.min(this.#rows, this.#D - c * this.#rows);
      const pb = new ArrayBuffer(16);
      new Uint32Array(pb).set([rows, this.d]);
      new Float32Array(pb)[2] = beta;
      const params = this.#ctx.device.createBuffer({
        size: 16,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.#ctx.device.queue.writeBuffer(params, 0, pb);
      const g = this.#ctx.device.createBindGroup({
        layout: pipe.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: this.#V[c] } },
          { binding: 1, resource: { buffer: ub } },
          {
            binding: 2,
            resource: { buffer: params },
          },
        ],
      });
      r.dispatch(pipe, g, Math.min(rows, 65535), Math.ceil(rows / 65535));
      r.submit();
      params.destroy();
    }
    r.release(ub);
  }

  /** VᵀV (d×d) and Vᵀ𝟙 (d) on the GPU (split-K partials, reduced in order), read back as float64. */
  async #gramV(): Promise<{ G: Float64Array; c: Float64Array }> {
    const d = this.d, r = this.#r;
    const kLen = Math.max(4096, Math.ceil(this.#D / 64));
    let slots = 0;
    for (let b = 0; b < this.#nb; b++) {
      slots += Math.ceil(Math.min(this.#rows, this.#D - b * this.#rows) / kLen);
    }
    const partsG = r.storage("gramParts", slots * d * d * 4);
    const partsC = r.storage("sumParts", slots * d * 4);
    const ones = r.storage("ones", Math.min(this.#rows, kLen * 65535) * 4);
    r.write(ones, new Float32Array(this.#rows).fill(1));
    const outG = r.storage("gram", d * d * 4);
    const outC = r.storage("sums", d * 4);
    let at = 0;
    for (let b = 0; b < this.#nb; b++) {
      const rows = Math.min(this.#rows, this.#D - b * this.#rows);
      const z = Math.ceil(rows / kLen);
      const tA = r.pipeline("gemmTN", () => gemmWgsl(true, false));
      const pg: GemmParams = {
        M: d,
        N: d,
        K: rows,
        lda: d,
        ldb: d,
        ldc: d,
        kLen,
        strideZ: d * d,
        offC: at * d * d,
      };
      const u1 = r.uniform(`gram${b}`, packGemm(pg));
      r.dispatch(
        tA,
        r.group(`gram${b}`, tA, [this.#V[b], this.#V[b], partsG, u1, this.#flag]),
        ...gemmGrid(pg),
      );
      const pc: GemmParams = { M: d, N: 1, K: rows, lda: d, ldb: 1, ldc: 1, kLen, strideZ: d, offC: at * d };
      const u2 = r.uniform(`sum${b}`, packGemm(pc));
      r.dispatch(tA, r.group(`sum${b}`, tA, [this.#V[b], ones, partsC, u2, this.#flag]), ...gemmGrid(pc));
      at += z;
    }
    const red = r.pipeline("reduceParts", () => REDUCE_PARTS_WGSL);
    const u3 = r.uniform("redG", new Uint32Array([0, 0, 0, 0, slots, d * d, 0, 0]).buffer);
    r.dispatch(red, r.group("redG", red, [partsG, outG, u3]), Math.ceil((d * d) / 256));
    const u4 = r.uniform("redC", new Uint32Array([0, 0, 0, 0, slots, d, 0, 0]).buffer);
    r.dispatch(red, r.group("redC", red, [partsC, outC, u4]), Math.ceil(d / 256));
    const [G, c] = await r.readMany([[outG, 0, d * d * 4], [outC, 0, d * 4]]);
    for (const buf of [partsG, partsC, ones, outG, outC]) r.release(buf);
    return { G: Float64Array.from(new Float32Array(G)), c: Float64Array.from(new Float32Array(c)) };
  }

  /** WᵀW and Wᵀ𝟙 from V, U, ω (float64 on the host after the GPU gram). */
  async #exactQ(U: Float64Array, omega: Float64Array): Promise<{ Q: Float64Array; wbar: Float64Array }> {
    const d = this.d, D = this.#D;
    const { G, c } = await this.#gramV();
    const GU = new Float64Array(d * d), Q = new Float64Array(d * d), Utc = new Float64Array(d);
    this.#la.dgemm(false, false, d, d, d, 1, G, d, U, d, 0, GU, d);
    this.#la.dgemm(true, false, d, d, d, 1, U, d, GU, d, 0, Q, d);
    this.#la.dgemv(true, d, d, 1, U, d, c, 0, Utc);
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        Q[i * d + j] += Utc[i] * omega[j] + omega[i] * Utc[j] + D * omega[i] * omega[j];
      }
    }
    const wbar = new Float64Array(d);
    for (let i = 0; i < d; i++) wbar[i] = Utc[i] + D * omega[i];
    return { Q, wbar };
  }

  async #recomputeQ(): Promise<void> {
    const d = this.d;
    const { U, vecs } = await this.#readSmall();
    const omega = vecs.subarray(0, d);
    const { Q, wbar } = await this.#exactQ(U, omega);
    this.#r.write(this.#Q, Float32Array.from(Q));
    const v = new Float32Array(2 * d);
    v.set(Float32Array.from(omega), 0);
    v.set(Float32Array.from(wbar), d);
    this.#r.write(this.#vecs, v);
    await this.#r.finish();
  }

  /** W = V U + 𝟙ωᵀ, D×d (V read back; the O(Dd²) product runs on the host in float64). */
  async weights(): Promise<Float32Array> {
    this.#alive();
    const d = this.d, D = this.#D;
    const { U, vecs } = await this.#readSmall();
    const V = await this.#readV();
    const W = new Float32Array(D * d);
    const row = new Float64Array(d);
    for (let r = 0; r < D; r++) {
      row.fill(0);
      for (let k = 0; k < d; k++) {
        const v = V[r * d + k];
        if (v === 0) continue;
        for (let j = 0; j < d; j++) row[j] += v * U[k * d + j];
      }
      for (let j = 0; j < d; j++) W[r * d + j] = row[j] + vecs[j];
    }
    return W;
  }

  async #readV(): Promise<Float32Array> {
    const d = this.d;
    const V = new Float32Array(this.#D * d);
    for (let b = 0; b < this.#nb; b++) {
      const rows = Math.min(this.#rows, this.#D - b * this.#rows);
      V.set(new Float32Array(await this.#r.read(this.#V[b], 0, rows * d * 4)), b * this.#rows * d);
    }
    return V;
  }

  /** Probabilities (scores for squared error) of `rows` for one input h. */
  async score(h: Float32Array, rows: Int32Array): Promise<Float64Array> {
    this.#alive();
    validateVector("h", h, this.d);
    const d = this.d;
    validateRows(rows, this.#D);
    const { U, Q, vecs } = await this.#readSmall();
    const ranges: [GPUBuffer, number, number][] = Array.from(rows, (c) => {
      const b = Math.floor(c / this.#rows);
      return [this.#V[b], (c - b * this.#rows) * d * 4, d * 4];
    });
    const got = rows.length ? await this.#r.readMany(ranges) : [];
    const { uh, q, s, hw } = this.#hStats(h, U, Q, vecs);
    const out = new Float64Array(rows.length);
    got.forEach((buf, k) => {
      const v = new Float32Array(buf);
      let o = hw;
      for (let j = 0; j < d; j++) o += v[j] * uh[j];
      out[k] = this.#loss.probability(o, q, s, this.#D);
    });
    return out;
  }

  #hStats(h: Float32Array, U: Float64Array, Q: Float64Array, vecs: Float64Array) {
    const d = this.d;
    const uh = new Float64Array(d);
    let q = 0, s = 0, hw = 0;
    for (let i = 0; i < d; i++) {
      let t = 0, tq = 0;
      for (let j = 0; j < d; j++) {
        t += U[i * d + j] * h[j];
        tq += Q[i * d + j] * h[j];
      }
      uh[i] = t;
      q += h[i] * tq;
      hw += h[i] * vecs[i];
      s += h[i] * vecs[d + i];
    }
    return { uh, q, s, hw };
  }

  /** The exact top-k rows over all D for one input h (o = V(Uh) + ω·h on the GPU, ranking on the host). */
  async topK(h: Float32Array, k: number): Promise<{ indices: Int32Array; scores: Float64Array }> {
    this.#alive();
    validateVector("h", h, this.d);
    const d = this.d, D = this.#D, r = this.#r;
    const { U, Q, vecs } = await this.#readSmall();
    const { uh, q, s, hw } = this.#hStats(h, U, Q, vecs);
    const x = r.storage("x", d * 4);
    r.write(x, Float32Array.from(uh));
    const out = r.storage("scores", this.#rows * 4);
    const pipe = r.pipeline("gemmNN", () => gemmWgsl(false, false));
    const scores = new Float64Array(D);
    for (let b = 0; b < this.#nb; b++) {
      const rows = Math.min(this.#rows, D - b * this.#rows);
      const p: GemmParams = { M: rows, N: 1, K: d, lda: d, ldb: 1, ldc: 1 };
      const u = r.uniform(`topk${b}`, packGemm(p));
      r.dispatch(pipe, r.group(`topk${b}`, pipe, [this.#V[b], x, out, u, this.#flag]), ...gemmGrid(p));
      const o = new Float32Array(await r.read(out, 0, rows * 4));
      for (let j = 0; j < rows; j++) scores[b * this.#rows + j] = this.#loss.probability(o[j] + hw, q, s, D);
    }
    r.release(x);
    r.release(out);
    return selectTopK(scores, D, k);
  }

  /** Health report: condU, inverseError (of the float32 state), and with `full` the Q drift (O(Dd²)). */
  async diagnostics(opts: { full?: boolean } = {}): Promise<Diagnostics> {
    this.#alive();
    const d = this.d;
    const { U, Uinvt, Q, vecs } = await this.#readSmall();
    const exact = new Float64Array(d * d);
    reinvert(this.#la, U, exact, d);
    const s = this.#extremes(U, exact);
    const out: Diagnostics = {
      condU: s.sigmaMax / s.sigmaMin,
      inverseError: this.#inverseError(U, Uinvt),
      steps: this.#steps,
      sigmaMax: s.sigmaMax,
      sigmaMin: s.sigmaMin,
      rescales: this.#rescales,
      lastStabilizeInverseError: this.#lastInverseError,
      lastStabilizeCondU: this.#lastCond,
      chunks: this.#nb,
    };
    if (opts.full) {
      const { Q: exactQ, wbar } = await this.#exactQ(U, vecs.subarray(0, d));
      let num = 0, den = 0, wd = 0;
      for (let i = 0; i < d * d; i++) {
        num = Math.max(num, Math.abs(Q[i] - exactQ[i]));
        den = Math.max(den, Math.abs(Q[i]));
      }
      for (let i = 0; i < d; i++) wd = Math.max(wd, Math.abs(vecs[d + i] - wbar[i]));
      out.qDrift = num / (den || 1);
      out.wbarDrift = wd;
    }
    return out;
  }

  /** A copy of the complete state (V float32; U, U⁻ᵀ, Q, ω, w̄ widened to float64). */
  async exportState(): Promise<OutputLayerState> {
    this.#alive();
    const d = this.d;
    const { U, Uinvt, Q, vecs } = await this.#readSmall();
    const V = await this.#readV();
    return {
      kind: "factored",
      D: this.#D,
      d,
      loss: this.#loss.name,
      lossOptions: { ...this.#loss.options },
      arrays: { V, U, Uinvt, Q, omega: vecs.slice(0, d), wbar: vecs.slice(d) },
      scalars: { steps: this.#steps },
    };
  }

  /** Adds rows of W (n×d): V rows (w − ω)U⁻¹, Q += Σ wwᵀ, w̄ += Σ w; V is re-uploaded. */
  async appendRows(rows: Float32Array): Promise<void> {
    this.#alive();
    const d = this.d;
    if (!(rows instanceof Float32Array) || rows.length % d !== 0 || rows.length === 0) {
      throw new RangeError(
        `rows must be a Float32Array of n×d values (d = ${d}), got length ${rows?.length}`,
      );
    }
    const n = rows.length / d;
    validateMatrix("rows", rows, n, d);
    const s = await this.exportState();
    const U = s.arrays.U as Float64Array, Q = s.arrays.Q as Float64Array;
    const omega = s.arrays.omega as Float64Array, wbar = s.arrays.wbar as Float64Array;
    const Uinv = Float64Array.from(U);
    this.#la.dinvert(Uinv, d);
    const V = new Float32Array((this.#D + n) * d);
    V.set(s.arrays.V as Float32Array);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < d; j++) {
        let t = 0;
        for (let k = 0; k < d; k++) t += (rows[r * d + k] - omega[k]) * Uinv[k * d + j];
        V[(this.#D + r) * d + j] = t;
      }
      for (let i = 0; i < d; i++) {
        wbar[i] += rows[r * d + i];
        for (let j = 0; j < d; j++) Q[i * d + j] += rows[r * d + i] * rows[r * d + j];
      }
    }
    this.#D += n;
    await this.#loadState({ ...s, D: this.#D, arrays: { ...s.arrays, V, Q, wbar } });
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
    this.#la?.close();
    if (this.#ownsDevice) this.#ctx.device.destroy();
  }
}
