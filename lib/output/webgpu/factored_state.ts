/**
 * The state of the WebGPU factored layer and everything but the step (factored.ts): the resident buffers
 * (V in chunks from base.ts; U, U⁻ᵀ, Q, [ω, w̄], the singular-step flag, the loss ring), loading and
 * exporting the state, the loss ring's read-back, the upkeep (docs/factored-step.md "Numerical upkeep":
 * stabilisation with the O(d³) parts in float64 on the host, Q re-derived from V's gram on the GPU) and the
 * queries (weights, score, topK, diagnostics, appendRows).
 *
 * @module
 */

import { SingularUpdateError, UsageError } from "../../core/errors.ts";
import type { Diagnostics, OutputLayerState } from "../../core/types.ts";
import type { LinAlgBackend } from "../../linalg/backend.ts";
import { reinvert, topLeftSingular } from "../factored/upkeep.ts";
import { checkFactoredState } from "../factored/state_check.ts";
import { GUARD_MARGIN } from "../guard.ts";
import { selectTopK } from "../topk.ts";
import { validateRows, validateVector } from "../validate.ts";
import { WebGpuLayerBase, type WebGpuLayerOptions } from "./base.ts";
import type { WebGpuContext } from "./device.ts";
import { REDUCE_PARTS_WGSL } from "./kernels/dense.ts";
import { gemmGrid, type GemmParams, gemmWgsl, packGemm } from "./kernels/gemm.ts";
import { RANK1_WGSL } from "./kernels/rank1.ts";

/** Per-step loss slots kept on the GPU before a forced read-back. */
export const RING = 4096;

/**
 * The longest stabilisation interval, in steps, of the GPU factored layer when `stabilizeEvery` is not given.
 * Each stabilisation reads the d×d state back, and one read-back (`mapAsync`) costs several steps' worth of
 * GPU time in Deno (docs/webgpu.md), during which the queue runs dry. So without `stabilizeEvery` the interval
 * adapts: it starts at 50 (the CPU layers' fixed interval) and is then set, at each stabilisation, so that
 * U's extreme singular values would drift by a factor of ≤ e^0.25 ≈ 1.28 over it at the rate seen over the
 * last interval (at most doubling at once, between 50 and this); it halves when the float32 inverse error
 * exceeded 1e-5. A given `stabilizeEvery` is used as it is (the tests pass 10).
 *
 * @example
 * ```ts
 * import { GPU_STABILIZE_EVERY } from "./factored_state.ts";
 * console.log(GPU_STABILIZE_EVERY); // 500
 * ```
 */
export const GPU_STABILIZE_EVERY = 500;
/** The shortest (and first) adaptive stabilisation interval: the CPU layers' default. */
const STABILIZE_MIN = 50;

/**
 * The factored layer's resident state, upkeep and queries; WebGpuFactoredLayer (factored.ts) adds the step.
 *
 * @example
 * ```ts ignore
 * class WebGpuFactoredLayer extends WebGpuFactoredState { ... }
 * ```
 */
export abstract class WebGpuFactoredState extends WebGpuLayerBase {
  protected la!: LinAlgBackend;
  /** `stabilizeEvery` as given (fixed interval), or undefined (adaptive). */
  protected readonly fixedEvery?: number;
  protected every: number;
  protected lastStab = 0;
  protected prevSigma: [number, number] | null = null;
  protected readonly recomputeQEvery: number;
  protected U!: GPUBuffer;
  protected Uinvt!: GPUBuffer;
  protected Q!: GPUBuffer;
  protected vecs!: GPUBuffer;
  protected Bwork!: GPUBuffer;
  protected flag!: GPUBuffer;
  protected ring!: GPUBuffer;
  protected pendingSlots: number[] = [];
  protected done: number[] = [];
  protected rescales = 0;
  protected lastInverseError = 0;
  protected lastCond = 1;

  /**
   * @param opts the layer options
   * @param ctx the device
   * @param ownsDevice whether close() destroys the device
   */
  protected constructor(opts: WebGpuLayerOptions, ctx: WebGpuContext, ownsDevice: boolean) {
    super(opts, ctx, ownsDevice);
    this.fixedEvery = opts.stabilizeEvery;
    this.every = opts.stabilizeEvery ?? STABILIZE_MIN;
    this.recomputeQEvery = opts.recomputeQEvery ?? 5000;
  }

  protected allocState(): void {
    const r = this.r, d = this.d;
    this.allocChunks();
    for (const buf of [this.U, this.Uinvt, this.Q, this.vecs, this.Bwork, this.flag, this.ring]) {
      if (buf) r.release(buf);
    }
    this.U = r.storage("U", d * d * 4);
    this.Uinvt = r.storage("Uinvt", d * d * 4);
    this.Q = r.storage("Q", d * d * 4);
    this.vecs = r.storage("vecs", 2 * d * 4);
    this.Bwork = r.storage("Bwork", d * d * 4);
    this.flag = r.storage("flag", 16);
    this.ring = r.storage("ring", RING * 4);
    for (const buf of Object.values(this.b)) r.release(buf);
    this.cap = { m: 0, n: 0 };
    this.b = {};
    r.resetGroups();
  }

  protected async loadInit(W0: Float32Array): Promise<void> {
    const d = this.d;
    this.allocState();
    this.writeChunks(W0);
    const I = new Float32Array(d * d);
    for (let i = 0; i < d; i++) I[i * d + i] = 1;
    this.r.write(this.U, I);
    this.r.write(this.Uinvt, I);
    this.r.write(this.vecs, new Float32Array(2 * d));
    this.r.write(this.flag, new Uint32Array(4));
    this.stepCount = 0;
    await this.recomputeQ();
  }

  protected async loadState(s: OutputLayerState): Promise<void> {
    const d = this.d;
    if (s.kind !== "factored") {
      throw new UsageError(`state.kind is "${s.kind}"; the webgpu factored layer needs "factored"`);
    }
    if (s.D !== this.size || s.d !== d) {
      throw new UsageError(`state is D=${s.D}, d=${s.d} but the options say D=${this.size}, d=${d}`);
    }
    const need = (name: string, len: number) => {
      const a = s.arrays[name];
      if (!a || a.length !== len) {
        throw new UsageError(`state.arrays.${name} must have ${len} elements, got ${a ? a.length : "none"}`);
      }
      return a instanceof Float32Array ? a : Float32Array.from(a);
    };
    const [V, U, Uinvt, Q] = [
      need("V", this.size * d),
      need("U", d * d),
      need("Uinvt", d * d),
      need("Q", d * d),
    ];
    const a = { V, U, Uinvt, Q, omega: need("omega", d), wbar: need("wbar", d) };
    checkFactoredState(this.la, d, a, s.scalars); // a corrupt state is refused as on the CPU
    this.allocState();
    this.writeChunks(a.V);
    this.r.write(this.U, a.U);
    this.r.write(this.Uinvt, a.Uinvt);
    this.r.write(this.Q, a.Q);
    const vecs = new Float32Array(2 * d);
    vecs.set(a.omega, 0);
    vecs.set(a.wbar, d);
    this.r.write(this.vecs, vecs);
    this.r.write(this.flag, new Uint32Array(4));
    this.stepCount = s.scalars.steps ?? 0;
    this.lastStab = this.stepCount;
    await this.r.finish();
  }

  /** The losses of the steps enqueued since the last read, in order (one map). */
  async readLosses(): Promise<Float64Array> {
    this.alive();
    await this.drain();
    const out = Float64Array.from(this.done);
    this.done = [];
    return out;
  }

  protected async drain(): Promise<void> {
    const slots = this.pendingSlots;
    const [ring, flag] = await this.r.readMany([[this.ring, 0, RING * 4], [this.flag, 0, 8]]);
    const rv = new Float32Array(ring);
    for (const s of slots) this.done.push(rv[s]);
    this.pendingSlots = [];
    await this.checkFlag(new Uint32Array(flag));
  }

  /**
   * Reports a refused step: the step and those enqueued after it were skipped on the GPU (their state
   * writes are guarded), except U⁻ᵀ, which the Woodbury rounds update in a work buffer that then becomes the
   * current one (no guarded copy): it is re-derived here from U (unchanged), exactly, in float64.
   */
  protected async checkFlag(flag: Uint32Array): Promise<void> {
    if (flag[0] === 0) return;
    const at = flag[1], d = this.d;
    const skipped = this.stepCount - at;
    this.stepCount = at;
    this.r.write(this.flag, new Uint32Array(4));
    const [u] = await this.r.readMany([[this.U, 0, d * d * 4]]);
    const Uinvt = new Float64Array(d * d);
    reinvert(this.la, Float64Array.from(new Float32Array(u)), Uinvt, d);
    this.r.write(this.Uinvt, Float32Array.from(Uinvt));
    throw new SingularUpdateError(
      `webgpu factored layer, step ${at}: the update factor I − 2η·H·G·Hᵀ would be singular or flip a direction ` +
        `(a Woodbury pivot ≤ ${GUARD_MARGIN}); the step was refused` +
        (skipped > 1 ? ` and the ${skipped - 1} step(s) enqueued after it were skipped` : "") +
        `; lower the learning rate or the batch size`,
    );
  }

  protected async maintain(): Promise<void> {
    const s = this.stepCount;
    if (this.every > 0 && s - this.lastStab >= this.every) {
      await this.stabilize();
      this.lastStab = this.stepCount;
    }
    if (this.recomputeQEvery > 0 && s % this.recomputeQEvery === 0) {
      await this.drainIfPending();
      await this.recomputeQ();
    }
  }

  protected async drainIfPending(): Promise<void> {
    if (this.pendingSlots.length > 0) await this.drain();
  }

  protected async readSmall(): Promise<
    { U: Float64Array; Uinvt: Float64Array; Q: Float64Array; vecs: Float64Array }
  > {
    const d = this.d;
    await this.drainIfPending();
    const [U, Ui, Q, v, flag] = await this.r.readMany([
      [this.U, 0, d * d * 4],
      [this.Uinvt, 0, d * d * 4],
      [this.Q, 0, d * d * 4],
      [this.vecs, 0, 2 * d * 4],
      [this.flag, 0, 8],
    ]);
    await this.checkFlag(new Uint32Array(flag));
    return {
      U: Float64Array.from(new Float32Array(U)),
      Uinvt: Float64Array.from(new Float32Array(Ui)),
      Q: Float64Array.from(new Float32Array(Q)),
      vecs: Float64Array.from(new Float32Array(v)),
    };
  }

  /** max |U (U⁻ᵀ)ᵀ − I| of the float32 state. */
  protected inverseError(U: Float64Array, Uinvt: Float64Array): number {
    const d = this.d;
    const P = new Float64Array(d * d);
    this.la.dgemm(false, true, d, d, d, 1, U, d, Uinvt, d, 0, P, d);
    let e = 0;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) e = Math.max(e, Math.abs(P[i * d + j] - (i === j ? 1 : 0)));
    }
    return e;
  }

  /** σ_max(U), σ_min(U) and their left singular vectors (power iteration on U and on U⁻ᵀ). */
  protected extremes(U: Float64Array, Uinvt: Float64Array) {
    const d = this.d, uMax = new Float64Array(d), uMin = new Float64Array(d), tmp = new Float64Array(d);
    const sigmaMax = topLeftSingular(this.la, U, d, uMax, tmp);
    const sigmaMin = 1 / topLeftSingular(this.la, Uinvt, d, uMin, tmp);
    return { sigmaMax, sigmaMin, uMax, uMin };
  }

  /**
   * docs/factored-step.md "Numerical upkeep": exact U⁻ᵀ (float64 on the host) and rescale of U's extreme
   * singular directions into [0.5, 2] (V ← V(I + βuuᵀ) on the GPU).
   */
  protected async stabilize(): Promise<void> {
    const d = this.d, la = this.la;
    const { U, Uinvt: UinvtF32 } = await this.readSmall();
    this.lastInverseError = this.inverseError(U, UinvtF32);
    const Uinvt = new Float64Array(d * d);
    reinvert(la, U, Uinvt, d);
    const t1 = new Float64Array(d), t2 = new Float64Array(d);
    let first: [number, number] | null = null, post: [number, number] = [1, 1];
    for (let it = 0; it < 2 * d; it++) {
      const s = this.extremes(U, Uinvt);
      this.lastCond = s.sigmaMax / s.sigmaMin;
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
      this.rank1V(Float32Array.from(u), beta);
      this.rescales++;
    }
    this.adaptInterval(first!, post);
    this.r.write(this.U, Float32Array.from(U));
    this.r.write(this.Uinvt, Float32Array.from(Uinvt));
    this.r.submit();
  }

  /** The adaptive stabilisation interval (see {@link GPU_STABILIZE_EVERY}); a given `stabilizeEvery` stays. */
  protected adaptInterval(before: [number, number], after: [number, number]): void {
    const prev = this.prevSigma;
    this.prevSigma = after;
    if (this.fixedEvery !== undefined || prev === null) return;
    const moved = Math.max(Math.abs(Math.log(before[0] / prev[0])), Math.abs(Math.log(before[1] / prev[1])));
    if (this.lastInverseError > 1e-5) {
      this.every = Math.max(STABILIZE_MIN, this.every >> 1);
    } else {
      // aim at a drift of ≤ 0.25 (a factor 1.28) of σ_max or σ_min per interval; at most double at once
      const aim = Math.round(this.every * 0.25 / Math.max(moved, 1e-3));
      this.every = Math.max(STABILIZE_MIN, Math.min(GPU_STABILIZE_EVERY, 2 * this.every, aim));
    }
  }

  /** Steps between stabilisations now (adaptive unless `stabilizeEvery` was given). */
  get stabilizeInterval(): number {
    return this.every;
  }

  protected rank1V(u: Float32Array, beta: number): void {
    const r = this.r;
    const ub = r.storage("u", u.length * 4);
    r.write(ub, u);
    const pipe = r.pipeline("rank1", () => RANK1_WGSL);
    for (let c = 0; c < this.nb; c++) {
      const rows = Math.min(this.rows, this.size - c * this.rows);
      const pb = new ArrayBuffer(16);
      new Uint32Array(pb).set([rows, this.d]);
      new Float32Array(pb)[2] = beta;
      const params = this.ctx.device.createBuffer({
        size: 16,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.ctx.device.queue.writeBuffer(params, 0, pb);
      const g = this.ctx.device.createBindGroup({
        layout: pipe.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: this.chunks[c] } },
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
  protected async gramV(): Promise<{ G: Float64Array; c: Float64Array }> {
    const d = this.d, r = this.r;
    const kLen = Math.max(4096, Math.ceil(this.size / 64));
    let slots = 0;
    for (let b = 0; b < this.nb; b++) {
      slots += Math.ceil(Math.min(this.rows, this.size - b * this.rows) / kLen);
    }
    const partsG = r.storage("gramParts", slots * d * d * 4);
    const partsC = r.storage("sumParts", slots * d * 4);
    const ones = r.storage("ones", Math.min(this.rows, kLen * 65535) * 4);
    r.write(ones, new Float32Array(this.rows).fill(1));
    const outG = r.storage("gram", d * d * 4);
    const outC = r.storage("sums", d * 4);
    let at = 0;
    for (let b = 0; b < this.nb; b++) {
      const rows = Math.min(this.rows, this.size - b * this.rows);
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
        r.group(`gram${b}`, tA, [this.chunks[b], this.chunks[b], partsG, u1, this.flag]),
        ...gemmGrid(pg),
      );
      const pc: GemmParams = { M: d, N: 1, K: rows, lda: d, ldb: 1, ldc: 1, kLen, strideZ: d, offC: at * d };
      const u2 = r.uniform(`sum${b}`, packGemm(pc));
      r.dispatch(tA, r.group(`sum${b}`, tA, [this.chunks[b], ones, partsC, u2, this.flag]), ...gemmGrid(pc));
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
  protected async exactQ(
    U: Float64Array,
    omega: Float64Array,
  ): Promise<{ Q: Float64Array; wbar: Float64Array }> {
    const d = this.d, D = this.size;
    const { G, c } = await this.gramV();
    const GU = new Float64Array(d * d), Q = new Float64Array(d * d), Utc = new Float64Array(d);
    this.la.dgemm(false, false, d, d, d, 1, G, d, U, d, 0, GU, d);
    this.la.dgemm(true, false, d, d, d, 1, U, d, GU, d, 0, Q, d);
    this.la.dgemv(true, d, d, 1, U, d, c, 0, Utc);
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        Q[i * d + j] += Utc[i] * omega[j] + omega[i] * Utc[j] + D * omega[i] * omega[j];
      }
    }
    const wbar = new Float64Array(d);
    for (let i = 0; i < d; i++) wbar[i] = Utc[i] + D * omega[i];
    return { Q, wbar };
  }

  protected async recomputeQ(): Promise<void> {
    const d = this.d;
    const { U, vecs } = await this.readSmall();
    const omega = vecs.subarray(0, d);
    const { Q, wbar } = await this.exactQ(U, omega);
    this.r.write(this.Q, Float32Array.from(Q));
    const v = new Float32Array(2 * d);
    v.set(Float32Array.from(omega), 0);
    v.set(Float32Array.from(wbar), d);
    this.r.write(this.vecs, v);
    await this.r.finish();
  }

  /** W = V U + 𝟙ωᵀ, D×d (V read back; the O(Dd²) product runs on the host in float64). */
  async weights(): Promise<Float32Array> {
    this.alive();
    const d = this.d, D = this.size;
    const { U, vecs } = await this.readSmall();
    const V = await this.readChunks();
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

  /** Probabilities (scores for squared error) of `rows` for one input h. */
  async score(h: Float32Array, rows: Int32Array): Promise<Float64Array> {
    this.alive();
    validateVector("h", h, this.d);
    const d = this.d;
    const { U, Q, vecs } = await this.readSmall();
    validateRows(rows, this.size);
    const ranges: [GPUBuffer, number, number][] = Array.from(rows, (c) => {
      const b = Math.floor(c / this.rows);
      return [this.chunks[b], (c - b * this.rows) * d * 4, d * 4];
    });
    const got = rows.length ? await this.r.readMany(ranges) : [];
    const { uh, q, s, hw } = this.hStats(h, U, Q, vecs);
    const out = new Float64Array(rows.length);
    got.forEach((buf, k) => {
      const v = new Float32Array(buf);
      let o = hw;
      for (let j = 0; j < d; j++) o += v[j] * uh[j];
      out[k] = this.loss.probability(o, q, s, this.size);
    });
    return out;
  }

  protected hStats(h: Float32Array, U: Float64Array, Q: Float64Array, vecs: Float64Array) {
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
    this.alive();
    validateVector("h", h, this.d);
    const d = this.d, D = this.size, r = this.r;
    const { U, Q, vecs } = await this.readSmall();
    const { uh, q, s, hw } = this.hStats(h, U, Q, vecs);
    const x = r.storage("x", d * 4);
    r.write(x, Float32Array.from(uh));
    const out = r.storage("scores", this.rows * 4);
    const pipe = r.pipeline("gemmNN", () => gemmWgsl(false, false));
    const scores = new Float64Array(D);
    for (let b = 0; b < this.nb; b++) {
      const rows = Math.min(this.rows, D - b * this.rows);
      const p: GemmParams = { M: rows, N: 1, K: d, lda: d, ldb: 1, ldc: 1 };
      const u = r.uniform(`topk${b}`, packGemm(p));
      r.dispatch(pipe, r.group(`topk${b}`, pipe, [this.chunks[b], x, out, u, this.flag]), ...gemmGrid(p));
      const o = new Float32Array(await r.read(out, 0, rows * 4));
      for (let j = 0; j < rows; j++) scores[b * this.rows + j] = this.loss.probability(o[j] + hw, q, s, D);
    }
    r.release(x);
    r.release(out);
    return selectTopK(scores, D, k);
  }

  /** Health report: condU, inverseError (of the float32 state), and with `full` the Q drift (O(Dd²)). */
  async diagnostics(opts: { full?: boolean } = {}): Promise<Diagnostics> {
    this.alive();
    const d = this.d;
    const { U, Uinvt, Q, vecs } = await this.readSmall();
    const exact = new Float64Array(d * d);
    reinvert(this.la, U, exact, d);
    const s = this.extremes(U, exact);
    const out: Diagnostics = {
      condU: s.sigmaMax / s.sigmaMin,
      inverseError: this.inverseError(U, Uinvt),
      steps: this.stepCount,
      sigmaMax: s.sigmaMax,
      sigmaMin: s.sigmaMin,
      rescales: this.rescales,
      lastStabilizeInverseError: this.lastInverseError,
      lastStabilizeCondU: this.lastCond,
      chunks: this.nb,
    };
    if (opts.full) {
      const { Q: exactQ, wbar } = await this.exactQ(U, vecs.subarray(0, d));
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
    this.alive();
    const d = this.d;
    const { U, Uinvt, Q, vecs } = await this.readSmall();
    const V = await this.readChunks();
    return {
      kind: "factored",
      D: this.size,
      d,
      loss: this.loss.name,
      lossOptions: { ...this.loss.options },
      arrays: { V, U, Uinvt, Q, omega: vecs.slice(0, d), wbar: vecs.slice(d) },
      scalars: { steps: this.stepCount },
    };
  }

  /** Adds rows of W (n×d): V rows (w − ω)U⁻¹, Q += Σ wwᵀ, w̄ += Σ w; V is re-uploaded. */
  async appendRows(rows: Float32Array): Promise<void> {
    this.alive();
    const d = this.d, n = this.checkAppend(rows);
    const s = await this.exportState();
    const U = s.arrays.U as Float64Array, Q = s.arrays.Q as Float64Array;
    const omega = s.arrays.omega as Float64Array, wbar = s.arrays.wbar as Float64Array;
    const Uinv = Float64Array.from(U);
    this.la.dinvert(Uinv, d);
    const V = new Float32Array((this.size + n) * d);
    V.set(s.arrays.V as Float32Array);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < d; j++) {
        let t = 0;
        for (let k = 0; k < d; k++) t += (rows[r * d + k] - omega[k]) * Uinv[k * d + j];
        V[(this.size + r) * d + j] = t;
      }
      for (let i = 0; i < d; i++) {
        wbar[i] += rows[r * d + i];
        for (let j = 0; j < d; j++) Q[i * d + j] += rows[r * d + i] * rows[r * d + j];
      }
    }
    this.size += n;
    await this.loadState({ ...s, D: this.size, arrays: { ...s.arrays, V, Q, wbar } });
  }

  protected override onClose(): void {
    this.la?.close();
  }
}
