/**
 * The exact factored output layer (Vincent, de Brébisson & Bouthillier 2015; the method:
 * docs/factored-step.md "The method"). W (D×d) is never stored: W = V U + 𝟙ωᵀ, and a minibatch step costs
 * O(m d² + m K d) instead of O(m D d).
 *
 * This file is the layer: construction (from W₀ or an exported state), the step's control (float32 or
 * float64 products, the stabilisation and refresh schedule), the state export, and the glue to the parts:
 * - state.ts: the state, the options, their precision and the tuning constants;
 * - step64.ts: the step with float64 products (the reference path);
 * - step32.ts: the step with float32 products (the fast path on blas), sharing scalars.ts with step64.ts;
 * - upkeep.ts and passes.ts: re-inversion, power iterations, rebalance and fold; the O(Dd²) passes;
 * - queries.ts: weights, score, topK, diagnostics, appendRows.
 *
 * Upkeep: every `stabilizeEvery` steps (default 50; 100 with float32 products), or sooner when the steps
 * since the last one may have multiplied cond(U) past `maxCond` (the sum of their update factors'
 * log λ_max/λ_min bounds it: scalars.ts addCondBudget), U⁻ᵀ is re-derived exactly
 * (one Newton step from the maintained U⁻ᵀ when that is within 1e-8, else an LU inverse: upkeep.ts
 * reinvertFrom) and σ_max(U), σ_min(U) are estimated by power iteration. When cond(U) > `maxCond`
 * (default 64) or U's scale has left [2⁻⁸, 2⁸]: for d ≤ 64 a rebalance (exact power-of-two recentring,
 * then rank-1 rescales bringing up to 8 singular values outside [0.5, 2] to 1, applied to V in one
 * O(Dd·k) pass), falling back to a fold if cond(U) is still > 4·maxCond; for d > 64 a fold V ← V U,
 * U ← I (one O(Dd²) sgemm pass). Every `recomputeQEvery` steps (default 5000; with the default, a refresh
 * also waits until 8·D examples have passed since the last one, see REFRESH_MIN_EXAMPLES_PER_OUTPUT) U
 * and ω are folded into V (V ← VU + 𝟙ωᵀ, U = I) and Q = VᵀV, w̄ = Vᵀ𝟙 are re-derived exactly in float64
 * (O(Dd²)). Their measured costs are in docs/factored-step.md.
 *
 * @module
 */

import type { LinAlgBackend } from "../../linalg/backend.ts";
import { describeValue } from "../../core/csr.ts";
import { copyInto, type SpareArrays } from "../../core/reuse.ts";
import type { SphericalFamilyLoss } from "../../losses/loss.ts";
import type {
  Diagnostics,
  OutputLayer,
  OutputLayerState,
  SparseBatch,
  StepResult,
} from "../../core/types.ts";
import {
  closedLayerError,
  validateBatch,
  validateEta,
  validateMatrix,
  validateOpen,
  validateStateShape,
} from "../validate.ts";
import { foldInto, gramOf } from "./passes.ts";
import * as queries from "./queries.ts";
import {
  type FactoredOptions,
  FactoredState,
  FOLD_FACTOR,
  MAX_RESCALES,
  REBALANCE_MAX_D,
  REFRESH_MIN_EXAMPLES_PER_OUTPUT,
  SCALE_LIMIT,
  SIGMA_TOL_LARGE_D,
} from "./state.ts";
import { checkFactoredState, type FactoredStateArrays } from "./state_check.ts";
import { forward32, update32 } from "./step32.ts";
import { sigmaPairOnPool } from "./step_kernel.ts";
import { forward64, update64 } from "./step64.ts";
import { foldConditioning, rebalance, reinvertFrom, topLeftSingular } from "./upkeep.ts";

export type { FactoredOptions } from "./state.ts";
export { REFRESH_MIN_EXAMPLES_PER_OUTPUT } from "./state.ts";

/**
 * The factored layer. Build it with `createOutputLayer({ kind: "factored", … })`, or directly with
 * {@link FactoredOutputLayer.fromInit} / {@link FactoredOutputLayer.fromState} given a backend.
 *
 * @example
 * ```ts
 * import { createOutputLayer } from "../../../mod.ts";
 * const D = 100, d = 8;
 * const layer = await createOutputLayer({ kind: "factored", D, d, init: new Float32Array(D * d).fill(0.01), backend: "js" });
 * const H = new Float32Array(d).fill(0.5);
 * const Y = { offsets: Int32Array.of(0, 2), indices: Int32Array.of(5, 5), values: Float32Array.of(1, 1) };
 * const { loss, gradH } = await layer.step(H, Y, 0.05);
 * console.log((await layer.diagnostics()).condU);
 * layer.close();
 * ```
 */
export class FactoredOutputLayer implements OutputLayer {
  /** Input dimension. */
  readonly d: number;
  /** The loss. */
  readonly loss: SphericalFamilyLoss;
  /** The backend (owned: closed by close()). */
  readonly la: LinAlgBackend;
  /** Stabilisation period (0 = off). */
  readonly stabilizeEvery: number;
  /** Fold-and-recompute period (0 = off). */
  readonly recomputeQEvery: number;
  /** Smallest m that uses the direct re-inversion. */
  readonly directSolveMinBatch: number;
  /** Guard margin. */
  readonly guardMargin: number;
  /** cond(U) above which a stabilisation rebalances U and V. */
  readonly maxCond: number;
  /** Precision of the per-step d×d×m products (the state is float64 either way). */
  readonly products: "float32" | "float64";

  #st: FactoredState;
  #closed = false;

  private constructor(
    D: number,
    d: number,
    loss: SphericalFamilyLoss,
    la: LinAlgBackend,
    opts: FactoredOptions,
  ) {
    const st = new FactoredState(D, d, loss, la, opts);
    this.#st = st;
    this.d = d;
    this.loss = loss;
    this.la = la;
    this.products = st.products;
    this.stabilizeEvery = st.stabilizeEvery;
    this.recomputeQEvery = st.recomputeQEvery;
    this.directSolveMinBatch = st.directSolveMinBatch;
    this.guardMargin = st.guardMargin;
    this.maxCond = st.maxCond;
  }

  /**
   * A layer starting from W₀ (D×d row-major, copied): V = W₀, U = U⁻ᵀ = I, ω = 0, Q = W₀ᵀW₀ and
   * w̄ = W₀ᵀ𝟙 computed exactly in float64 (O(Dd²), once).
   *
   * @param D outputs
   * @param d input dimension
   * @param init W₀
   * @param loss the loss
   * @param la backend (the layer owns it)
   * @param opts tuning
   * @returns the layer
   */
  static fromInit(
    D: number,
    d: number,
    init: Float32Array,
    loss: SphericalFamilyLoss,
    la: LinAlgBackend,
    opts: FactoredOptions = {},
  ): FactoredOutputLayer {
    validateMatrix("init", init, D, d);
    const layer = new FactoredOutputLayer(D, d, loss, la, opts);
    const st = layer.#st;
    st.V.set(init);
    gramOf(la, st.V, D, d, st.Q, loss.usesSum ? st.wbar : null, st.chunk);
    return layer;
  }

  /**
   * A layer rebuilt from {@link FactoredOutputLayer.exportState}: continues bit-identically on the same
   * backend. Options not given are taken from the state. A corrupt state (a NaN or infinity in an array, a
   * U⁻ᵀ that is not U's inverse transpose, an asymmetric Q, a counter that is not an integer ≥ 0) is
   * refused with a RangeError naming the field (state_check.ts).
   *
   * @param state the exported state
   * @param loss the loss (must match state.loss)
   * @param la backend (the layer owns it)
   * @param opts tuning overrides
   * @returns the layer
   */
  static fromState(
    state: OutputLayerState,
    loss: SphericalFamilyLoss,
    la: LinAlgBackend,
    opts: FactoredOptions = {},
  ): FactoredOutputLayer {
    validateStateShape(state);
    const { D, d, arrays, scalars } = state;
    const get = <T extends Float32Array | Float64Array>(
      name: string,
      len: number,
      type: { new (n: number): T },
    ): T => {
      const a = arrays[name];
      if (!(a instanceof type)) {
        throw new TypeError(`state.arrays.${name} must be a ${type.name}, got ${describeValue(a)}`);
      }
      if (a.length !== len) {
        throw new RangeError(`state.arrays.${name}.length = ${a.length}, expected ${len}`);
      }
      return a as T;
    };
    const dd = d * d;
    const a: FactoredStateArrays = {
      V: get("V", D * d, Float32Array),
      U: get("U", dd, Float64Array),
      Uinvt: get("Uinvt", dd, Float64Array),
      Q: get("Q", dd, Float64Array),
      omega: get("omega", d, Float64Array),
      wbar: get("wbar", d, Float64Array),
    };
    // the float32 path's state as it was (see exportState): present whenever increments were pending
    const pending = scalars.pendingSteps ?? 0;
    if (pending > 0) {
      a.unsettled = {
        U: get("unsettledU", dd, Float64Array),
        Q: get("unsettledQ", dd, Float64Array),
        Uinvt: get("unsettledUinvt", dd, Float64Array),
        pending32: get("pending32", 3 * dd, Float32Array),
      };
      if (scalars.mirrorsValid === 1) a.mirrors32 = get("mirrors32", 3 * dd, Float32Array);
    }
    // a corrupt state is refused before anything is built (finite arrays, U⁻ᵀ = U's inverse, Q symmetric,
    // counters): built from it, the layer would give NaN or wrong results, or never stabilise
    checkFactoredState(la, d, a, scalars);
    const merged: FactoredOptions = {
      stabilizeEvery: opts.stabilizeEvery ?? scalars.stabilizeEvery,
      recomputeQEvery: opts.recomputeQEvery ?? scalars.recomputeQEvery,
      directSolveMinBatch: opts.directSolveMinBatch ?? scalars.directSolveMinBatch,
      guardMargin: opts.guardMargin ?? scalars.guardMargin,
      maxCond: opts.maxCond ?? scalars.maxCond,
      products: opts.products ??
        (scalars.products32 === undefined ? undefined : scalars.products32 ? "float32" : "float64"),
    };
    const layer = new FactoredOutputLayer(D, d, loss, la, merged);
    const st = layer.#st;
    st.V.set(a.V);
    st.U.set(a.U);
    st.Uinvt.set(a.Uinvt);
    st.Q.set(a.Q);
    st.omega.set(a.omega);
    st.wbar.set(a.wbar);
    st.steps = scalars.steps ?? 0;
    st.examples = scalars.examplesSinceRefresh ?? 0;
    st.refreshAuto = opts.recomputeQEvery === undefined && scalars.refreshAuto === 1;
    st.rescales = scalars.rescales ?? 0;
    st.folds = scalars.folds ?? 0;
    st.stabilizations = scalars.stabilizations ?? 0;
    st.rebalances = scalars.rebalances ?? 0;
    st.condBudget = scalars.condBudget ?? 0;
    st.sigmaMax = scalars.sigmaMax ?? 1;
    st.sigmaMin = scalars.sigmaMin ?? 1;
    // a float64 layer continues from the settled sums
    if (st.products === "float32" && a.unsettled) {
      st.U.set(a.unsettled.U);
      st.Q.set(a.unsettled.Q);
      st.Uinvt.set(a.unsettled.Uinvt);
      st.Acc32.set(a.unsettled.pending32);
      st.pending = pending;
      if (a.mirrors32) {
        st.St32.set(a.mirrors32);
        st.mirrorsOk = true;
      }
    }
    return layer;
  }

  /** Number of outputs (grows with appendRows). */
  get D(): number {
    return this.#st.D;
  }

  /** "js" or "blas". */
  get backend(): "js" | "blas" {
    return this.la.name;
  }

  /** Steps taken. */
  get steps(): number {
    return this.#st.steps;
  }

  /** Steps this object took with float32 products (the rest ran in float64); not part of the state. */
  get steps32(): number {
    return this.#st.steps32;
  }

  /** Loss and ∇H without updating (steps 1–5). */
  evaluate(H: Float32Array, Y: SparseBatch): Promise<StepResult> {
    try {
      validateOpen(this.#closed);
      const st = this.#st;
      const m = validateBatch(H, Y, st.D, this.d, this.loss);
      st.ensure(m, Y.indices.length);
      return Promise.resolve(
        st.use32() ? forward32(st, st.batch32(H, m), Y, m, false) : forward64(st, H, Y, m),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** One exact SGD step on W (steps 1–11); refused with SingularUpdateError before any state change. */
  step(H: Float32Array, Y: SparseBatch, eta: number): Promise<StepResult> {
    try {
      validateOpen(this.#closed);
      validateEta(eta);
      const st = this.#st;
      const m = validateBatch(H, Y, st.D, this.d, this.loss);
      st.ensure(m, Y.indices.length);
      let r: StepResult;
      if (st.use32()) {
        const H32 = st.batch32(H, m);
        // the pool's workers poll between the step's split calls instead of sleeping (pool.ts hold);
        // not over the upkeep below, whose large calls use OpenBLAS's own threads
        st.pool?.hold();
        let taken: boolean;
        try {
          r = forward32(st, H32, Y, m, true, true);
          taken = update32(st, H32, m, eta);
        } finally {
          st.pool?.release();
        }
        if (taken) st.steps32++;
        else {
          // a strong step (update factor outside [½, 2]) or one the float32 guard doubts: redone in
          // float64 from the start, where the guard decides exactly
          r = forward64(st, H, Y, m);
          update64(st, m, eta);
        }
      } else {
        r = forward64(st, H, Y, m);
        update64(st, m, eta);
      }
      st.steps++;
      st.examples += m;
      // the upkeep's large calls run on OpenBLAS's own threads: a caller's hold (the model holds the pool
      // over the whole batch) is paused so that the pool's workers sleep instead of sharing their cores
      // (stabilize's two σ estimates are one kernel run that wakes them: step_kernel.ts UPKEEP_SIGMA)
      const upkeep = (f: () => void) => st.pool ? st.pool.unheld(f) : f();
      if (
        this.recomputeQEvery > 0 && st.steps % this.recomputeQEvery === 0 &&
        (!st.refreshAuto || st.examples >= REFRESH_MIN_EXAMPLES_PER_OUTPUT * st.D)
      ) upkeep(() => this.refresh());
      else if (
        this.stabilizeEvery > 0 &&
        (st.steps % this.stabilizeEvery === 0 ||
          st.condBudget > st.condBound())
      ) upkeep(() => this.stabilize());
      return Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Stabilisation (done automatically every `stabilizeEvery` steps, or sooner once the steps may have
   * multiplied cond(U) past `maxCond`: FactoredState.condBound): exact
   * re-inversion of U⁻ᵀ and power-iteration estimates of σ_max(U), σ_min(U); then, when cond(U) >
   * `maxCond` or U's scale √(σ_max σ_min) has left [2⁻⁸, 2⁸], a {@link rebalance} (d ≤ 64: power-of-two
   * recentring and up to 8 rank-1 rescales into [0.5, 2], one O(Dd·k) pass over V; d > 64: the
   * recentring only) or a fold of U into V (d > 64 with cond(U) > maxCond, or a rebalance that left
   * cond(U) > 4·maxCond). W, Q, ω, w̄ are unchanged (up to float32 rounding of V).
   */
  stabilize(): void {
    validateOpen(this.#closed);
    const st = this.#st;
    st.settle();
    const { d, la } = st;
    const D = st.D, V = st.V, U = st.U, Uinvt = st.Uinvt, u = st.u, tmp = st.tmp;
    st.stabilizations++;
    st.condBudget = 0;
    st.mirrorsOk = false;
    if (!st.scratch2) st.scratch2 = new Float64Array(d * d);
    const SIGMA_TOL = d > REBALANCE_MAX_D ? SIGMA_TOL_LARGE_D : 1e-7;
    reinvertFrom(la, U, Uinvt, d, st.dd, st.scratch2);
    // the two estimates side by side where the step kernel runs (step_kernel.ts UPKEEP_SIGMA: the same
    // calls, the same numbers)
    let [smax, sInv] = st.kernel >= 0 ? sigmaPairOnPool(st, SIGMA_TOL) : [
      topLeftSingular(la, U, d, u, tmp, 100, SIGMA_TOL),
      topLeftSingular(la, Uinvt, d, u, tmp, 100, SIGMA_TOL),
    ];
    let smin = 1 / sInv;
    const scale = Math.sqrt(smax * smin);
    const needCond = smax / smin > st.maxCond;
    const needScale = !(scale <= SCALE_LIMIT && scale >= 1 / SCALE_LIMIT);
    if (needCond || needScale) {
      let fold = needCond && d > REBALANCE_MAX_D;
      if (!fold) {
        // d > 64 gets here only to recentre the scale (no rank-1 rescales)
        const r = rebalance(
          la,
          V,
          D,
          d,
          U,
          Uinvt,
          smax,
          smin,
          st.rebal,
          d > REBALANCE_MAX_D ? 0 : MAX_RESCALES,
        );
        st.rescales += r.rank;
        st.rebalances++;
        smax = topLeftSingular(la, U, d, u, tmp, 100, SIGMA_TOL);
        smin = 1 / topLeftSingular(la, Uinvt, d, u, tmp, 100, SIGMA_TOL);
        fold = smax / smin > FOLD_FACTOR * st.maxCond;
      }
      if (fold) {
        // the spread is too broad for a few rank-1 rescales: fold U into V (one sgemm pass)
        foldConditioning(la, V, D, d, U, Uinvt, st.foldScratch);
        st.folds++;
        smax = topLeftSingular(la, U, d, u, tmp, 100, SIGMA_TOL);
        smin = 1 / topLeftSingular(la, Uinvt, d, u, tmp, 100, SIGMA_TOL);
      }
    }
    st.sigmaMax = smax;
    st.sigmaMin = smin;
  }

  /**
   * Folds U and ω into V (V ← VU + 𝟙ωᵀ, U = U⁻ᵀ = I, ω = 0) and re-derives Q = VᵀV and w̄ = Vᵀ𝟙 exactly
   * in float64 (O(Dd²); done automatically every `recomputeQEvery` steps).
   */
  refresh(): void {
    validateOpen(this.#closed);
    const st = this.#st;
    st.settle();
    st.mirrorsOk = false;
    st.examples = 0;
    foldInto(st.la, st.V, st.D, st.d, st.U, st.Uinvt, st.omega, st.chunk);
    st.folds++;
    st.condBudget = 0;
    gramOf(st.la, st.V, st.D, st.d, st.Q, st.loss.usesSum ? st.wbar : null, st.chunk);
    st.sigmaMax = st.sigmaMin = 1;
  }

  /** W = V U + 𝟙ωᵀ materialised (float64 accumulation, O(Dd²)). */
  weights(): Promise<Float32Array> {
    if (this.#closed) return Promise.reject(closedLayerError());
    return queries.weights(this.#st);
  }

  /** Probabilities (scores for squared error) of `rows` for input h, in O(d² + |rows| d). */
  score(h: Float32Array, rows: Int32Array): Promise<Float64Array> {
    if (this.#closed) return Promise.reject(closedLayerError());
    return queries.score(this.#st, h, rows);
  }

  /** Exact top-k over all D rows by the loss's probability, O(Dd + d²). */
  topK(h: Float32Array, k: number): Promise<{ indices: Int32Array; scores: Float64Array }> {
    if (this.#closed) return Promise.reject(closedLayerError());
    return queries.topK(this.#st, h, k);
  }

  /**
   * cond(U) (power iteration, with an exact inverse), max|U U⁻¹ − I| for the maintained U⁻ᵀ, counters,
   * and with `{ full: true }` the O(Dd²) qDrift = max|Q − WᵀW| / max|Q| (and wbarDrift when ω, w̄ are kept).
   */
  diagnostics(opts: { full?: boolean } = {}): Promise<Diagnostics> {
    if (this.#closed) return Promise.reject(closedLayerError());
    return queries.diagnostics(this.#st, opts);
  }

  /**
   * Appends n rows to W exactly: V_new = U⁻ᵀ(w − ω) with an exact inverse of U (O(d³) once per call),
   * Q += Σ w wᵀ, w̄ += Σ w; O(d²) per row. V grows with headroom (×1.5).
   */
  appendRows(rows: Float32Array): Promise<void> {
    if (this.#closed) return Promise.reject(closedLayerError());
    return queries.appendRows(this.#st, rows);
  }

  /**
   * V, U, Uinvt, Q, omega, wbar and every counter: enough to continue bit-identically. With float32
   * products, U, Uinvt and Q include the increments still pending in the float32 accumulator (as a
   * settlement would leave them), and the state as it is travels beside them (`unsettledU`,
   * `unsettledQ`, `unsettledUinvt`, `pending32`, `mirrors32`, scalars `pendingSteps`, `mirrorsValid`):
   * exporting changes nothing, so a layer that exports (a checkpoint) and one that does not take the same
   * later steps bit for bit, and {@link FactoredOutputLayer.fromState} continues where this one is.
   */
  exportState(opts: { into?: SpareArrays } = {}): Promise<OutputLayerState> {
    if (this.#closed) return Promise.reject(closedLayerError());
    const st = this.#st, into = opts.into ?? {};
    const settled = st.settledView();
    const unsettled: Record<string, Float32Array | Float64Array> = st.pending === 0 ? {} : {
      unsettledU: copyInto(st.U, into.unsettledU),
      unsettledQ: copyInto(st.Q, into.unsettledQ),
      unsettledUinvt: copyInto(st.Uinvt, into.unsettledUinvt),
      pending32: copyInto(st.Acc32, into.pending32),
    };
    // with nothing pending the mirrors are U, Q, U⁻ᵀ rounded, as a rebuilt layer makes them
    if (st.pending > 0 && st.mirrorsOk) unsettled.mirrors32 = copyInto(st.St32, into.mirrors32);
    return Promise.resolve({
      kind: "factored",
      D: st.D,
      d: this.d,
      loss: this.loss.name,
      lossOptions: { ...this.loss.options },
      arrays: {
        V: copyInto(st.V, into.V),
        U: copyInto(settled.U, into.U),
        Uinvt: copyInto(settled.Uinvt, into.Uinvt),
        Q: copyInto(settled.Q, into.Q),
        omega: copyInto(st.omega, into.omega),
        wbar: copyInto(st.wbar, into.wbar),
        ...unsettled,
      },
      scalars: {
        steps: st.steps,
        rescales: st.rescales,
        folds: st.folds,
        stabilizations: st.stabilizations,
        rebalances: st.rebalances,
        condBudget: st.condBudget,
        sigmaMax: st.sigmaMax,
        sigmaMin: st.sigmaMin,
        stabilizeEvery: this.stabilizeEvery,
        recomputeQEvery: this.recomputeQEvery,
        refreshAuto: st.refreshAuto ? 1 : 0,
        examplesSinceRefresh: st.examples,
        directSolveMinBatch: this.directSolveMinBatch,
        guardMargin: this.guardMargin,
        maxCond: this.maxCond,
        products32: this.products === "float32" ? 1 : 0,
        pendingSteps: st.pending,
        mirrorsValid: st.pending > 0 && st.mirrorsOk ? 1 : 0,
      },
    });
  }

  /** Frees the backend (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.la.close();
  }
}
