/**
 * The textbook output layer, kept plain on purpose: it is the reference the factored layer is tested
 * against. Dense W (D×d float32, row-major); per step
 *
 *   O = H Wᵀ (m×D, gemm) → per example the loss's dense() over all D outputs gives ∇o (m×D)
 *   → ∇H = ∇O W (m×d, gemm) → W ← W − η ∇Oᵀ H (D×d, gemm).
 *
 * Cost O(mDd) per step three times, O(mD) memory for O and ∇O.
 *
 * @module
 */

import type { LinAlgBackend } from "../linalg/backend.ts";
import type { SphericalFamilyLoss } from "../losses/loss.ts";
import type { Diagnostics, OutputLayer, OutputLayerState, SparseBatch, StepResult } from "../core/types.ts";
import { MergedTargets } from "../core/csr.ts";
import { DivergenceError } from "../core/errors.ts";
import { copyInto, type SpareArrays } from "../core/reuse.ts";
import { checkGradient } from "./guard.ts";
import { selectTopK } from "./topk.ts";
import {
  closedLayerError,
  validateBatch,
  validateEta,
  validateMatrix,
  validateOpen,
  validateRows,
  validateVector,
} from "./validate.ts";

/**
 * Dense-W output layer (the reference). Build it with `createOutputLayer({ kind: "naive", … })`.
 *
 * @example
 * ```ts
 * import { createOutputLayer } from "../../mod.ts";
 * const layer = await createOutputLayer({ kind: "naive", D: 50, d: 4, init: new Float32Array(200).fill(0.1), backend: "js" });
 * const r = await layer.step(new Float32Array(4).fill(1), { offsets: Int32Array.of(0, 1), indices: Int32Array.of(3), values: Float32Array.of(1) }, 0.01);
 * layer.close();
 * ```
 */
export class NaiveOutputLayer implements OutputLayer {
  /** Input dimension. */
  readonly d: number;
  /** The loss. */
  readonly loss: SphericalFamilyLoss;
  /** The linear-algebra backend. */
  readonly la: LinAlgBackend;
  #D: number;
  #buf: Float32Array; // capacity rows × d
  #W: Float32Array; // view of the first D rows
  #steps = 0;
  #closed = false;
  #merged = new MergedTargets();
  #O = new Float32Array(0);
  #dO = new Float32Array(0);
  #row = new Float64Array(0);
  #drow = new Float64Array(0);
  #kIdx = new Int32Array(0);
  #kY = new Float64Array(0);

  /**
   * A dense layer owning a copy of W₀ and the backend.
   *
   * @param D outputs
   * @param d input dimension
   * @param W W₀, D×d row-major (copied)
   * @param loss the loss
   * @param la the backend (owned: closed by close())
   * @param steps step counter to resume from
   */
  constructor(
    D: number,
    d: number,
    W: Float32Array,
    loss: SphericalFamilyLoss,
    la: LinAlgBackend,
    steps = 0,
  ) {
    this.#D = D;
    this.d = d;
    this.loss = loss;
    this.la = la;
    this.#buf = new Float32Array(D * d);
    this.#buf.set(W.subarray(0, D * d));
    this.#W = this.#buf.subarray(0, D * d);
    this.#steps = steps;
  }

  /** Number of outputs (grows with appendRows). */
  get D(): number {
    return this.#D;
  }

  /** "js" or "blas". */
  get backend(): "js" | "blas" {
    return this.la.name;
  }

  /** Loss and ∇H without updating W; DivergenceError when either is not finite. */
  evaluate(H: Float32Array, Y: SparseBatch): Promise<StepResult> {
    try {
      validateOpen(this.#closed);
      const m = validateBatch(H, Y, this.#D, this.d, this.loss);
      return Promise.resolve(this.#run(H, Y, m, 0));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * One SGD step: W ← W − η ∇Oᵀ H; returns loss and ∇H from W before the step. A loss or ∇H that is not
   * finite is refused with DivergenceError before W changes, as the factored layer does.
   */
  step(H: Float32Array, Y: SparseBatch, eta: number): Promise<StepResult> {
    try {
      validateOpen(this.#closed);
      validateEta(eta);
      const m = validateBatch(H, Y, this.#D, this.d, this.loss);
      const r = this.#run(H, Y, m, eta);
      this.#steps++;
      return Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #run(H: Float32Array, Y: SparseBatch, m: number, eta: number): StepResult {
    const { d, la, loss } = this;
    const D = this.#D, W = this.#W;
    if (this.#O.length < m * D) {
      this.#O = new Float32Array(m * D);
      this.#dO = new Float32Array(m * D);
    }
    if (this.#row.length !== D) {
      this.#row = new Float64Array(D);
      this.#drow = new Float64Array(D);
    }
    const mg = this.#merged;
    mg.merge(Y);
    if (this.#kIdx.length < mg.maxK) {
      this.#kIdx = new Int32Array(mg.maxK);
      this.#kY = new Float64Array(mg.maxK);
    }
    const O = this.#O, dO = this.#dO, row = this.#row, drow = this.#drow, kIdx = this.#kIdx, kY = this.#kY;
    // O = H Wᵀ
    la.sgemm(false, true, m, D, d, 1, H, d, W, d, 0, O, D);
    let L = 0;
    for (let i = 0; i < m; i++) {
      const base = i * D;
      for (let j = 0; j < D; j++) row[j] = O[base + j];
      const K = mg.off[i + 1] - mg.off[i];
      for (let k = 0; k < K; k++) {
        kIdx[k] = mg.idx[mg.off[i] + k];
        kY[k] = mg.w[mg.off[i] + k];
      }
      const Li = loss.dense(row, kIdx, kY, K, drow);
      if (!Number.isFinite(Li)) {
        // the factored layer's contract (scalars.ts lossOfExample): refused before W changes
        const step = this.#steps + 1;
        throw new DivergenceError(
          step,
          `step ${step}: the ${loss.name} loss of example ${i} is not finite (L = ${Li}); ` +
            `the layer's state is unchanged. Lower the learning rate.`,
        );
      }
      L += Li;
      for (let j = 0; j < D; j++) dO[base + j] = drow[j];
    }
    // ∇H = ∇O W
    const gradH = new Float32Array(m * d);
    la.sgemm(false, false, m, d, D, 1, dO, D, W, d, 0, gradH, d);
    // a finite loss with a gradient that is not (a non-finite ∇O makes ∇H so too): refused before W changes
    checkGradient(gradH, m * d, d, this.#steps + 1, loss.name);
    // W ← W − η ∇Oᵀ H
    if (eta > 0) la.sgemm(true, false, D, d, m, -eta, dO, D, H, d, 1, W, d);
    return { loss: L, gradH };
  }

  /** W itself (a copy), D×d. */
  weights(): Promise<Float32Array> {
    if (this.#closed) return Promise.reject(closedLayerError());
    return Promise.resolve(this.#W.slice());
  }

  /** o = W h over all D, in float64. */
  #outputs(h: Float32Array): { o: Float64Array; q: number; s: number } {
    const D = this.#D, d = this.d, W = this.#W;
    const o = new Float64Array(D);
    let q = 0, s = 0;
    for (let j = 0; j < D; j++) {
      let acc = 0;
      const row = j * d;
      for (let c = 0; c < d; c++) acc += W[row + c] * h[c];
      o[j] = acc;
      q += acc * acc;
      s += acc;
    }
    return { o, q, s };
  }

  /** Probabilities (scores, for squared error) of `rows` for input h. O(Dd): q and s need all outputs. */
  score(h: Float32Array, rows: Int32Array): Promise<Float64Array> {
    try {
      validateOpen(this.#closed);
      validateVector("h", h, this.d);
      validateRows(rows, this.#D);
      const { o, q, s } = this.#outputs(h);
      const out = new Float64Array(rows.length);
      for (let k = 0; k < rows.length; k++) out[k] = this.loss.probability(o[rows[k]], q, s, this.#D);
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Exact top-k rows by the loss's probability, O(Dd). */
  topK(h: Float32Array, k: number): Promise<{ indices: Int32Array; scores: Float64Array }> {
    try {
      validateOpen(this.#closed);
      validateVector("h", h, this.d);
      const { o, q, s } = this.#outputs(h);
      for (let j = 0; j < o.length; j++) o[j] = this.loss.probability(o[j], q, s, this.#D);
      return Promise.resolve(selectTopK(o, o.length, k));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Trivial for the dense layer: condU = 1, inverseError = 0. */
  diagnostics(_opts?: { full?: boolean }): Promise<Diagnostics> {
    if (this.#closed) return Promise.reject(closedLayerError());
    return Promise.resolve({ condU: 1, inverseError: 0, steps: this.#steps });
  }

  /** { W, steps }. */
  exportState(opts: { into?: SpareArrays } = {}): Promise<OutputLayerState> {
    if (this.#closed) return Promise.reject(closedLayerError());
    return Promise.resolve({
      kind: "naive",
      D: this.#D,
      d: this.d,
      loss: this.loss.name,
      lossOptions: { ...this.loss.options },
      arrays: { W: copyInto(this.#W, opts.into?.W) },
      scalars: { steps: this.#steps },
    });
  }

  /** Appends n rows (n×d) to W. */
  appendRows(rows: Float32Array): Promise<void> {
    try {
      validateOpen(this.#closed);
      const n = validateMatrix("rows", rows, -1, this.d);
      const d = this.d, D = this.#D;
      if (this.#buf.length < (D + n) * d) {
        const grown = new Float32Array(Math.max((D + n) * d, Math.ceil(D * 1.5) * d));
        grown.set(this.#W);
        this.#buf = grown;
      }
      this.#buf.set(rows, D * d);
      this.#D = D + n;
      this.#W = this.#buf.subarray(0, this.#D * d);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Frees the backend (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.la.close();
  }
}
