/**
 * The exact factored output layer on WebGPU (docs/factored-step.md "The method"): W = V U + 𝟙ωᵀ with V (D×d,
 * split into chunks of rows, one storage binding each), U, U⁻ᵀ, Q (d×d) and [ω, w̄] resident on the GPU
 * across steps (factored_state.ts: the state, its upkeep and the queries; base.ts: what the naive layer
 * shares). This file is the step. Per step only H and the packed batch go up (or only the batch, when a
 * resident input side writes H on the GPU: {@link WebGpuFactoredLayer.enqueueResident}); the loss is summed
 * on the GPU into a ring of per-step slots and read back only when asked
 * ({@link WebGpuFactoredLayer.enqueueStep} + `readLosses`), while `step()` keeps the OutputLayer contract by
 * reading the loss and ∇H back.
 *
 * Precision: all GPU state is float32. U⁻ᵀ is updated by Woodbury in blocks of `woodburyBlock` examples,
 * each block's small system inverted in one workgroup without pivoting (its pivots double as the
 * singular-step guard).
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import type { Diagnostics, OutputLayer, SparseBatch, StepResult } from "../../core/types.ts";
import { createBackend } from "../../linalg/select.ts";
import { validateEta, validateMatrix } from "../validate.ts";
import { layerContext, type WebGpuLayerOptions } from "./base.ts";
import type { WebGpuContext } from "./device.ts";
import { dispatchGemm } from "./dispatch_gemm.ts";
import { RING, WebGpuFactoredState } from "./factored_state.ts";
import { BUILD_M_WGSL, EPILOGUE_WGSL } from "./kernels/backward.ts";
import { GATHER_A_WGSL, GATHER_O_WGSL } from "./kernels/gather.ts";
import type { GemmParams } from "./kernels/gemm.ts";
import { inverseBlock, woodburyRoundWgsl } from "./kernels/inverse.ts";
import { lossWgsl } from "./kernels/loss.ts";
import { multiWgsl, packProducts, type Product } from "./kernels/multi.ts";
import { SCATTER_V_WGSL } from "./kernels/scatter.ts";
import type { Runner } from "./runner.ts";

export { planChunks, type WebGpuLayerOptions } from "./base.ts";
export { GPU_STABILIZE_EVERY } from "./factored_state.ts";

/**
 * The default Woodbury block: 32 examples, or what workgroup memory holds. The round's one-workgroup
 * Gauss–Jordan grows as mb³, so on an H200 four rounds of 32 beat two of 64 per example although they
 * take six more dispatches (BENCHMARKS.md, block `gpu`).
 */
const DEFAULT_BLOCK = 32;

/**
 * An input side resident on the same device (lib/model/gpu_model.ts): instead of H from the host, the
 * step records `writeH` (H, m×d, into `H` and into rows [0, m) and [2m, 3m) of `HFH`) before its forward
 * pass, and `useGradH` (∇H, m×d in `G`, guarded by the singular-step `flag`) after its update.
 *
 * @example
 * ```ts ignore
 * await layer.enqueueResident({ m, writeH: (r, H, HFH, m) => {...}, useGradH: (r, G, flag) => {...} }, Y, eta);
 * ```
 */
export type ResidentInput = {
  /** Examples in the batch. */
  m: number;
  /** Records the dispatches that form H on the GPU. */
  writeH(r: Runner, H: GPUBuffer, HFH: GPUBuffer, m: number): void;
  /** Records the dispatches that use ∇H (skipped by the kernels while `flag` is set). */
  useGradH(r: Runner, G: GPUBuffer, flag: GPUBuffer): void;
};

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
export class WebGpuFactoredLayer extends WebGpuFactoredState implements OutputLayer {
  readonly #mb: number;
  #slot = 0;
  /** Which of the two d×d buffers is U⁻ᵀ (they swap every step); part of the bind groups' keys. */
  #flip = 0;

  private constructor(opts: WebGpuLayerOptions, ctx: WebGpuContext, ownsDevice: boolean) {
    super(opts, ctx, ownsDevice);
    if (
      opts.woodburyBlock !== undefined &&
      (!Number.isSafeInteger(opts.woodburyBlock) || opts.woodburyBlock < 1)
    ) {
      throw new RangeError(`woodburyBlock must be a positive integer, got ${opts.woodburyBlock}`);
    }
    this.#mb = inverseBlock(ctx.limits.maxComputeWorkgroupStorageSize, opts.woodburyBlock ?? DEFAULT_BLOCK);
  }

  /** Examples per Woodbury block (the one-workgroup inverse's size). */
  get woodburyBlock(): number {
    return this.#mb;
  }

  /** The device this layer runs on (a resident input side shares it). */
  get context(): WebGpuContext {
    return this.ctx;
  }

  /** The dispatch helper of this layer (a resident input side records through it). */
  get runner(): Runner {
    return this.r;
  }

  /**
   * Builds the layer from `init` (W₀) or `state`, on `opts.context` or a new device.
   * @param opts the layer options (kind must be "factored")
   */
  static async create(opts: WebGpuLayerOptions): Promise<WebGpuFactoredLayer> {
    const { ctx, owns } = await layerContext(opts);
    const layer = new WebGpuFactoredLayer(opts, ctx, owns);
    try {
      // the O(d³) float64 host work of the stabilisation (LAPACK inverse, power iterations)
      layer.la = await createBackend("auto", { log: layer.log });
      if (opts.state) await layer.loadState(opts.state);
      else {
        if (!opts.init) throw new UsageError("createOutputLayer: give `init` (W₀, D×d) or `state`");
        validateMatrix("init", opts.init, opts.D, opts.d);
        await layer.loadInit(opts.init);
      }
    } catch (e) {
      layer.close();
      throw e;
    }
    layer.log(
      `webgpu factored layer: D=${opts.D} d=${opts.d} loss=${layer.loss.name}, V in ${layer.nb} chunk(s) of ` +
        `${layer.rows} rows, Woodbury blocks of ${layer.#mb}, device "${ctx.description}"`,
    );
    return layer;
  }

  /** The factored step's per-batch buffers (floats), besides the shared ones. */
  #sizes = (M: number): Record<string, number> => {
    const d = this.d, mb = this.#mb;
    return {
      H: M * d,
      Hhat: M * d,
      QH: M * d,
      A: M * d,
      T: M * d,
      G: M * d,
      X: M * d,
      P: M * d,
      HFH: 3 * M * d,
      M: M * M,
      Lr: mb * d,
      Rr: mb * d,
      Z: mb * d,
    };
  };

  protected gemm(
    key: string,
    tA: boolean,
    tB: boolean,
    A: GPUBuffer,
    B: GPUBuffer,
    C: GPUBuffer,
    p: GemmParams,
  ): void {
    dispatchGemm(this.r, key, tA, tB, A, B, C, p, this.flag);
  }

  /** Two or three small products in one dispatch (kernels/multi.ts): C = α op(A) op(B) + β C for each. */
  #multi(key: string, ...ps: [GPUBuffer, GPUBuffer, GPUBuffer, Product][]): void {
    const r = this.r, n = ps.length;
    const pipe = r.pipeline(`multi${n}`, () => multiWgsl(n));
    const u = r.uniform(`p:${key}`, packProducts(ps.map((x) => x[3])));
    const g = r.group(`p:${key}`, pipe, [...ps.flatMap((x) => [x[0], x[1], x[2]]), this.flag, u]);
    const N = Math.max(...ps.map((x) => x[3].N)), M = Math.max(...ps.map((x) => x[3].M));
    r.dispatch(pipe, g, Math.ceil(N / 64), M, n);
  }

  protected chunkU(b: number, first: number): GPUBuffer {
    const r0 = b * this.rows, r1 = Math.min(this.size, r0 + this.rows);
    return this.r.uniform(`chunk${b}:${first}`, new Uint32Array([b, r0, r1, first]).buffer);
  }

  /** Uploads the batch and records the forward and backward passes (loss into ring[slot], ∇H into G). */
  /**
   * Uploads the batch and records the forward and backward passes (loss into ring[slot], ∇H into G). H comes
   * from the host, or (`input`) from dispatches a resident input side records into the layer's H buffers.
   */
  protected forward(
    H: Float32Array | null,
    Y: SparseBatch,
    eta: number,
    slot: number,
    input?: ResidentInput,
  ): number {
    const d = this.d, r = this.r;
    const m = this.uploadBatch(H, input?.m ?? 0, Y, eta, slot, this.#sizes, (H, m) => {
      r.write(this.b.H, H);
      // the H blocks of [H; F; H]: [H; F] and [F; H] for the Q update are its rows [0, 2m) and [m, 3m)
      r.write(this.b.HFH, H);
      r.write(this.b.HFH, H, 2 * m * d * 4);
    });
    const p = this.packed, b = this.b;
    if (input) input.writeH(r, b.H, b.HFH, m);
    const st = this.stepU;
    // 1. Ĥ = H Uᵀ, QH = H Q (one dispatch)
    const sq = { M: m, N: d, K: d, lda: d, ldb: d, ldc: d };
    this.#multi("HhatQH", [b.H, this.U, b.Hhat, { ...sq, tB: true }], [b.H, this.Q, b.QH, sq]);
    // 2. o at the targets, chunk by chunk
    const go = r.pipeline("gatherO", () => GATHER_O_WGSL);
    for (let c = 0; c < this.nb; c++) {
      const cnt = p.chunkEntries[c];
      if (cnt === 0) continue;
      const g = r.group(`go${c}`, go, [
        this.chunks[c],
        b.Hhat,
        b.bi,
        b.H,
        b.o,
        this.chunkU(c, 0),
        st,
        this.vecs,
      ]);
      r.dispatch(go, g, Math.min(cnt, 65535), Math.ceil(cnt / 65535));
    }
    // 3. the loss: ẏ, g_q, g_s, 𝟙·ẏ, L_i; ring[slot] = Σ L_i
    // (with q_i, s_i, hω_i formed first, for this and the later kernels)
    const lp = r.pipeline(`lossStats:${this.loss.name}`, () => lossWgsl(this.loss.name, true));
    const lg = r.group("loss", lp, [
      b.bi,
      b.entY,
      b.o,
      b.stats,
      b.dy,
      b.exOut,
      st,
      this.ring,
      b.H,
      b.QH,
      this.vecs,
    ]);
    r.dispatch(lp, lg, 1);
    // 4. A = Vᵀ Ẏ (rows A_i = Σ ẏ_e V[c_e])
    const ga = r.pipeline("gatherA", () => GATHER_A_WGSL);
    const chunks: number[] = [];
    for (let c = 0; c < this.nb; c++) if (p.chunkEntries[c] > 0) chunks.push(c);
    if (chunks.length === 0) chunks.push(0);
    chunks.forEach((c, k) => {
      const first = k === 0 ? 1 : 0;
      const g = r.group(`ga${c}:${first}`, ga, [this.chunks[c], b.bi, b.dy, b.A, this.chunkU(c, first), st]);
      r.dispatch(ga, g, m);
    });
    // 5. ∇H = Uᵀ A + ω 𝟙ᵀẎ + 2 Q H G + w̄ g_sᵀ (rows), T = Wᵀ ẏ_i, X = 2η g H
    this.gemm("T", false, false, b.A, this.U, b.T, { M: m, N: d, K: d, lda: d, ldb: d, ldc: d });
    const ep = r.pipeline("epilogue", () => EPILOGUE_WGSL);
    const eg = r.group("epilogue", ep, [b.T, b.QH, b.H, b.exOut, this.vecs, b.G, b.X, st, b.HFH]);
    r.dispatch(ep, eg, Math.ceil(d / 16), Math.ceil(m / 16));
    return m;
  }

  /**
   * Records the update (steps 6–11 of docs/factored-step.md "One step"), every state write guarded by the
   * flag.
   */
  protected update(m: number, eta: number): void {
    const d = this.d, r = this.r, b = this.b, st = this.stepU, mb = this.#mb;
    // M = ∇Oᵀ∇O (m×m)
    const bm = r.pipeline("buildM", () => BUILD_M_WGSL);
    r.dispatch(
      bm,
      r.group("buildM", bm, [b.bi, b.dy, b.exOut, b.stats, b.T, b.QH, b.H, b.M, st]),
      Math.ceil(m / 16),
      Math.ceil(m / 16),
    );
    // U⁻ᵀ by blocked Woodbury into Bwork
    r.copy(this.Uinvt, 0, this.Bwork, 0, d * d * 4); // a transfer, not a kernel: not guarded
    const wr = r.pipeline(`woodburyRound${mb}`, () => woodburyRoundWgsl(mb));
    for (let k = 0, r0 = 0; r0 < m; k++, r0 += mb) {
      const nk = Math.min(mb, m - r0);
      // L = X_k Bᵀ and R = Ĥ_k B in one dispatch
      const lr = { M: nk, N: d, K: d, lda: d, ldb: d, ldc: d, offA: r0 * d };
      this.#multi(`LR${k}:${this.#flip}`, [b.X, this.Bwork, b.Lr, { ...lr, tB: true }], [
        b.Hhat,
        this.Bwork,
        b.Rr,
        lr,
      ]);
      // C = I − R X_kᵀ, C⁻¹ and Z = C⁻¹ R in one workgroup (one dispatch instead of three)
      const iu = r.uniform(`wr${k}`, new Uint32Array([nk, d, r0 * d, 0]).buffer);
      r.dispatch(wr, r.group(`wr${k}`, wr, [b.Rr, b.X, b.Z, this.flag, iu, st]), 1);
      this.gemm(`BW${k}:${this.#flip}`, true, false, b.Lr, b.Z, this.Bwork, {
        M: d,
        N: d,
        K: nk,
        lda: d,
        ldb: d,
        ldc: d,
        beta: 1,
      });
    }
    // in one dispatch: U ← U − Ĥᵀ X (= U − 2η Ĥ G Hᵀ in column form; guarded), P = H U_new⁻¹ (rows
    // U_new⁻ᵀ h_i) and F = (η²/2) M H − η ∇H into rows [m, 2m) of [H; F; H] (which hold ∇H: the epilogue's)
    const dd = { M: d, N: d, K: m, lda: d, ldb: d, ldc: d };
    this.#multi(
      `UPF:${this.#flip}`,
      [b.Hhat, b.X, this.U, { ...dd, tA: true, alpha: -1, beta: 1, guard: true }],
      [b.H, this.Bwork, b.P, { M: m, N: d, K: d, lda: d, ldb: d, ldc: d, tB: true }],
      [b.M, b.H, b.HFH, {
        M: m,
        N: d,
        K: m,
        lda: m,
        ldb: d,
        ldc: d,
        offC: m * d,
        alpha: eta * eta / 2,
        beta: -eta,
      }],
    );
    // V[c] −= η Σ ẏ_e P_i
    // (and ω, w̄ in the second z-slice of the first dispatch: always made, even for a chunk without rows)
    const sv = r.pipeline("scatterV", () => SCATTER_V_WGSL);
    const p = this.packed, vg = Math.ceil(d / 64);
    for (let c = 0; c < this.nb; c++) {
      const cnt = p.chunkRows[c], vec = c === 0;
      if (cnt === 0 && !vec) continue;
      const g = r.group(`sv${c}`, sv, [
        this.chunks[c],
        b.bi,
        b.dy,
        b.P,
        this.flag,
        this.chunkU(c, 0),
        st,
        b.H,
        b.exOut,
        b.stats,
        this.vecs,
      ]);
      const x = Math.max(Math.min(cnt, 65535), vec ? Math.min(vg, 65535) : 1);
      const y = Math.max(Math.ceil(cnt / 65535), vec ? Math.ceil(vg / 65535) : 1);
      r.dispatch(sv, g, x, y, vec ? 2 : 1);
    }
    // Q += [H;F]ᵀ[F;H]: rows [0, 2m) and [m, 3m) of [H; F; H]
    this.gemm("Q", true, false, b.HFH, b.HFH, this.Q, {
      M: d,
      N: d,
      K: 2 * m,
      lda: d,
      ldb: d,
      ldc: d,
      offB: m * d,
      beta: 1,
      guard: 1,
    });
    // the work buffer becomes U⁻ᵀ (a refused step's is re-derived from U by checkFlag: no guarded copy)
    [this.Uinvt, this.Bwork] = [this.Bwork, this.Uinvt];
    this.#flip ^= 1;
  }

  protected nextSlot(): number {
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
    this.alive();
    validateEta(eta);
    if (this.pendingSlots.length >= RING - 1) await this.drain();
    this.countStart();
    const slot = this.nextSlot();
    const m = this.forward(H, Y, eta, slot);
    this.update(m, eta);
    this.r.submit();
    this.pendingSlots.push(slot);
    this.stepCount++;
    await this.maintain();
    this.countEnd();
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
    if (!this.ctx.device.features.has("timestamp-query")) return null;
    // the d×d state is saved and restored: on some drivers (llvmpipe) passes with timestamp writes
    // lose their ordering, and even η = 0 steps would then leave stale values behind
    const saved = await this.r.readMany(
      [this.U, this.Uinvt, this.Q, this.vecs].map((b) => [b, 0, b.size]),
    );
    this.r.profileStart();
    for (let s = 0; s < steps; s++) {
      const m = this.forward(H, Y, 0, this.nextSlot());
      this.update(m, 0);
      this.r.submit();
    }
    const totals = await this.r.profileStop();
    [this.U, this.Uinvt, this.Q, this.vecs].forEach((b, k) => this.r.write(b, new Uint8Array(saved[k])));
    this.r.write(this.flag, new Uint32Array(4));
    await this.r.finish();
    return [...totals].map(([kernel, [ns, n]]) => ({
      kernel,
      usPerStep: ns / 1000 / steps,
      dispatchesPerStep: n / steps,
    })).sort((a, b) => b.usPerStep - a.usPerStep);
  }

  /** One SGD step; returns the loss and ∇H from the weights before it (reads both back). */
  async step(H: Float32Array, Y: SparseBatch, eta: number): Promise<StepResult> {
    this.alive();
    validateEta(eta);
    this.countStart();
    const slot = this.nextSlot();
    const m = this.forward(H, Y, eta, slot);
    this.update(m, eta);
    this.stepCount++;
    const res = await this.readResult(m, slot, true);
    await this.maintain();
    this.countEnd();
    return res;
  }

  /** Loss and ∇H for a batch, without updating. */
  async evaluate(H: Float32Array, Y: SparseBatch): Promise<StepResult> {
    this.alive();
    const slot = this.nextSlot();
    const m = this.forward(H, Y, 0, slot);
    return await this.readResult(m, slot);
  }

  protected async readResult(m: number, slot: number, updated = false): Promise<StepResult> {
    const d = this.d;
    if (this.pendingSlots.length > 0) await this.drain();
    const [ring, g, flag] = await this.r.readMany([
      [this.ring, slot * 4, 4],
      [this.b.G, 0, m * d * 4],
      [this.flag, 0, 8],
    ]);
    await this.checkFlag(new Uint32Array(flag));
    return this.finiteResult(new Float32Array(ring)[0], new Float32Array(g), updated);
  }

  /**
   * One step whose H is formed on the GPU by a resident input side and whose ∇H stays there (`input`):
   * recorded and submitted without waiting and without any read-back; the loss goes to the ring like
   * {@link WebGpuFactoredLayer.enqueueStep}'s. Only the packed targets and the step uniform go up.
   * @param input the resident input side's dispatches for this batch
   * @param Y the sparse targets (m rows)
   * @param eta learning rate
   */
  async enqueueResident(input: ResidentInput, Y: SparseBatch, eta: number): Promise<void> {
    this.alive();
    validateEta(eta);
    if (Y.offsets.length - 1 !== input.m) {
      throw new UsageError(`targets have ${Y.offsets.length - 1} rows but the inputs ${input.m}`);
    }
    if (this.pendingSlots.length >= RING - 1) await this.drain();
    this.countStart();
    const slot = this.nextSlot();
    const m = this.forward(null, Y, eta, slot, input);
    this.update(m, eta);
    input.useGradH(this.r, this.b.G, this.flag);
    this.r.submit();
    this.pendingSlots.push(slot);
    this.stepCount++;
    await this.maintain();
    this.countEnd();
  }

  /** Health report (factored_state.ts) with the last step's dispatch and read-back counts. */
  override async diagnostics(opts: { full?: boolean } = {}): Promise<Diagnostics> {
    const { dispatchesPerStep, readbacksPerStep } = this.counters();
    return { ...(await super.diagnostics(opts)), dispatchesPerStep, readbacksPerStep };
  }
}
