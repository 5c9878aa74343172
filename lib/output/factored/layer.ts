/**
 * The exact factored output layer (Vincent, de Brébisson & Bouthillier 2015; ALGORITHM.md §2–5).
 * W (D×d) is never stored: W = V U + 𝟙ωᵀ, and a minibatch step costs O(m d² + m K d) instead of O(m D d).
 *
 * State and precision:
 * - V: D×d **float32** (the only O(D) array; row-major, one contiguous row per output; capacity headroom
 *   for appendRows).
 * - U, U⁻ᵀ, Q = WᵀW: d×d **float64**; ω, w̄: d **float64** (zero and untouched unless the loss uses s).
 *   They are O(d²): float64 costs nothing measurable and keeps the iterated Woodbury and Q updates from
 *   accumulating float32 rounding. The m×m Gram matrix HᵀH, the guard and the Woodbury solve are float64.
 * - The per-step d×d×m products (`products` option) run either as float64 dgemm ("float64", the
 *   default on js and for d < 64; steps 1–11 below) or ("float32", the default on blas for d ≥ 64:
 *   ≈ 1.9× faster at d = 256, m = 128) as float32 sgemm on float32 mirrors [U; Q; U⁻ᵀ] of the state:
 *   the increments are float32, added by saxpy to the mirrors and to a float32 accumulator, which is
 *   added to the float64 state (re-rounding the mirrors) every 16 steps or whenever the float64 state
 *   is read (see SETTLE_EVERY, #settle); see #forward32/#update32 for the fused products
 *   (≈ 7 d×d×m products per step plus 4 m×m×d ones). A step whose update factor leaves [½, 2], or one
 *   taken while U is badly conditioned, is done in float64 instead.
 *
 * Step (all from the parameters before it; rows of H are the examples h_i, so H below is m×d):
 *  1. Ĥ = H Uᵀ, QH = H Q, q_i = QH_i·h_i, s_i = w̄·h_i                               (dgemm, m d²)
 *  2. gather the ≤ mK target rows of V; o_ic = V_c·ĥ_i + ω·h_i                          (m K d)
 *  3. the loss per example → ẏ, g_q, g_s
 *  4. A_i = Σ_c ẏ_ic V_c (from the gathered rows)                                        (m K d)
 *  5. B = A U + ω (𝟙ᵀẏ)ᵀ (rows Wᵀẏ_i);  ∇H = B + 2 G QH + g_s w̄ᵀ                         (dgemm, m d²)
 *  guard: refuse (SingularUpdateError) before touching the state when I − 2η H G Hᵀ is not safely
 *         positive definite (guard.ts).
 *  6. U ← U − 2η Ĥᵀ (G H)                                                                (dgemm, m d²)
 *  7. U⁻ᵀ: Woodbury U⁻ᵀ ← U⁻ᵀ + 2η Zᵀ (I_m − 2η G HHᵀ)⁻¹ G H with Z = H U⁻¹ (m = 1: Sherman–Morrison)
 *     when 2m ≤ d (float32 products: m ≤ d); otherwise the direct solve U⁻ᵀ = inv(U_new)ᵀ (O(d³)).
 *  8. V_c ← V_c − η Σ_i ẏ_ic (U_new⁻ᵀ h_i)ᵀ, scattered back in entry order (deterministic).
 *  9. ω ← ω − η Σ_i (2 g_i (h_i·ω) + g_s,i) h_i           (loss uses s only)
 * 10. Q ← Q − η (∇Hᵀ H + Hᵀ ∇H) + η² Hᵀ M H, M = ∇Oᵀ∇O expanded (ALGORITHM.md §4)      (dsyr2k, m d²)
 * 11. w̄ ← w̄ − η Σ_i c_i h_i, c_i = 𝟙·ẏ_i + 2 g_i s_i + D g_s,i  (loss uses s only)
 *
 * Upkeep: every `stabilizeEvery` steps (default 50; 100 with float32 products), or sooner when strong steps since the last one may
 * have multiplied cond(U) by more than `maxCond` (see #update), U⁻ᵀ is re-derived exactly (one Newton
 * step from the maintained U⁻ᵀ when that is within 1e-8, else an LU inverse: stabilize.ts reinvertFrom)
 * and σ_max(U), σ_min(U) are estimated by power iteration. When cond(U) > `maxCond` (default 64) or U's scale has left
 * [2⁻⁸, 2⁸]: for d ≤ 64 a rebalance (exact power-of-two recentring, then rank-1 rescales bringing up to 8
 * singular values outside [0.5, 2] to 1, applied to V in one O(Dd·k) pass), falling back to a fold if
 * cond(U) is still > 4·maxCond; for d > 64 a fold V ← V U, U ← I (one O(Dd²) sgemm pass). Every
 * `recomputeQEvery` steps (default 5000; with the default, a refresh also waits until 8·D examples have
 * passed since the last one, see {@link REFRESH_MIN_EXAMPLES_PER_OUTPUT}) U and ω are folded into V
 * (V ← VU + 𝟙ωᵀ, U = I) and Q = VᵀV, w̄ = Vᵀ𝟙 are re-derived exactly in float64 (O(Dd²)).
 *
 * Amortised upkeep, measured on 2 busy cores (d = 300, m = 128, float32 products, step ≈ 3.3 ms then):
 * a stabilisation costs ≈ 5–10 ms (≈ 2.5 ms at d = 256 on a quiet machine, ≈ 25 µs per step over the
 * default 100 steps with float32 products; independent of D); a refresh
 * 0.14 / 0.38 / 1.5 / 5.8 s at D = 10k / 50k / 200k / 793k, i.e. with the default deferral ≈ 0.03 /
 * 0.08 / 0.1 / 0.12 ms per step (every 5,000 steps it would be 1.2 ms per step at D = 793k).
 *
 * @module
 */

import { DivergenceError, SingularUpdateError } from "../../core/errors.ts";
import type { LinAlgBackend } from "../../linalg/backend.ts";
import type { SphericalFamilyLoss } from "../../losses/loss.ts";
import type {
  Diagnostics,
  OutputLayer,
  OutputLayerState,
  SparseBatch,
  StepResult,
} from "../../core/types.ts";
import { checkUpdateFactor, GUARD_MARGIN, GuardScratch } from "../guard.ts";
import { MergedTargets } from "../../core/csr.ts";
import {
  ChunkScratch,
  foldConditioning,
  foldInto,
  FoldScratch,
  gramOf,
  materialize,
  rebalance,
  RebalanceScratch,
  reinvert,
  reinvertFrom,
  topLeftSingular,
} from "./upkeep.ts";
import { selectTopK } from "../topk.ts";
import { validateBatch, validateEta, validateMatrix, validateVector } from "../validate.ts";
import { validateCount, validateRows } from "../validate.ts";

/**
 * Tuning of a {@link FactoredOutputLayer}.
 *
 * @example
 * ```ts
 * import type { FactoredOptions } from "./layer.ts";
 * const o: FactoredOptions = { stabilizeEvery: 50, recomputeQEvery: 5000 };
 * ```
 */
export type FactoredOptions = {
  /**
   * Stabilise every this many steps; 0 turns it off. Default 50, and 100 with float32 products (see
   * {@link STABILIZE_EVERY_F32}).
   */
  stabilizeEvery?: number;
  /**
   * Fold U into V and re-derive Q, w̄ exactly every this many steps; 0 turns it off. Default 5000, and
   * then a refresh also waits until {@link REFRESH_MIN_EXAMPLES_PER_OUTPUT}·D examples have passed since
   * the last one (its O(Dd²) cost stays a few % of the steps' at any D and m); a given value is exact.
   */
  recomputeQEvery?: number;
  /**
   * Batches with m ≥ this use the direct re-inversion of U instead of Woodbury. Default ⌊d/2⌋ + 1 with
   * float64 products; d + 1 with float32 products, whose Woodbury step factorises the m×m system by
   * Cholesky (measured at D = 169,377, d = 101, m = 100: 0.473 ms with Woodbury against 0.553 ms
   * direct; d = 128, m = 128: equal).
   */
  directSolveMinBatch?: number;
  /** Smallest admissible eigenvalue of the update factor (default {@link GUARD_MARGIN}). */
  guardMargin?: number;
  /**
   * Rebalance U and V when cond(U) exceeds this at a stabilisation (default 64; the rebalance then brings
   * the singular values back into [0.5, 2], or a fold makes U ≈ I). 4 rebalances whenever a singular value
   * leaves [0.5, 2].
   */
  maxCond?: number;
  /**
   * Precision of the per-step d×d×m products: "float32" (sgemm on float32 copies, accumulated into the
   * float64 state; about twice the speed on OpenBLAS at d ≥ 64) or "float64" (dgemm). Default: float32
   * on blas when d ≥ 64, otherwise float64 (on js both cost the same).
   */
  products?: "float32" | "float64";
};

/** Most rank-1 rescales per rebalance (one pass over V whatever the number). */
const MAX_RESCALES = 8;
/**
 * Default trigger of a rebalance or fold: cond(U) > 64. Measured (D = 5,000, d = 64, m = 32, η = 0.02,
 * 3,000 steps, blas): max|W_f − W_n|/max|W_n| = 6.8e-7 with trigger 4 (55 passes over V), 7.4e-7 with 16
 * (14 passes), 2.0e-6 with 64 (10 passes); a pass over V is the dominant stabilisation cost at large D
 * (≈ 0.1–0.4 s at D = 200,000, d = 256), and the drift stays far below the 1e-4 bound.
 */
const DEFAULT_MAX_COND = 64;
/**
 * Rank-1 rebalancing is used up to this d (8 rescales fix a useful share of the directions); above it a
 * stabilisation that finds cond(U) > maxCond folds U into V instead (one O(Dd²) sgemm pass, cond → 1).
 * Measured at D = 200,000, d = 256, m = 128 with 10 recycled batches (a worst case for the spread of
 * U's singular values): 4 rebalances + 1 fold in 400 steps against a single fold.
 */
const REBALANCE_MAX_D = 64;
/**
 * Default precision of the per-step products: float32 on blas from this d up. Measured on blas (2 busy
 * cores, median step): D = 200,000, d = 256, m = 128: 2.9 ms with float32 products against 5.6 ms with
 * float64; D = 5,000, d = 64, m = 32: 0.12 against 0.17 ms, with drift after 10,000 steps 1.8e-6
 * (float32) against 7.6e-7 (float64) (tests/layers_exact_test.ts, bound 1e-4). Measured again after
 * the accumulator (SETTLE_EVERY) and with the Woodbury default below, on a quiet machine, D = 169,377,
 * spherical loss (the synthetic peers corpus): d = 64, m = 64: 0.229 ms (float32) against 0.318 ms
 * (float64); d = 101, m = 100: 0.473 against 0.683 ms. Hence from 64 (was 128).
 */
const F32_PRODUCTS_MIN_D = 64;
/**
 * The float32 Woodbury step uses a Cholesky factorisation (dpotrf + two strsm, ≈ 3× faster than an LU
 * inverse at m = 128) when every g_q exceeds this; otherwise an LU inverse of N = I − 2η G S.
 */
const CHOLESKY_MIN_G = 1e-30;
/**
 * Relative tolerance of the power iterations at a stabilisation for d > REBALANCE_MAX_D, where σ_max,
 * σ_min only feed coarse decisions (cond(U) against maxCond, the scale against [2⁻⁸, 2⁸], the
 * float32-products switch): 1e-4 (at d = 256: ≈ 2× fewer iterations than 1e-7, estimates within 0.1%).
 * The rank-1 rebalance (d ≤ REBALANCE_MAX_D) and diagnostics() keep 1e-7.
 */
const SIGMA_TOL_LARGE_D = 1e-4;
/**
 * With the default `recomputeQEvery`, a refresh (two O(Dd²) float64 passes over V: measured 1.5 s at
 * D = 200,000 and 5.8 s at D = 793,471, d = 300, on 2 busy cores) waits until this many examples per
 * output row have passed since the last one. Every 5,000 steps of m = 128 it would cost ≈ 1.2 ms per
 * step at D = 793,471 (a third of the step); after 8·D examples ≈ 0.12 ms (≈ 4%), at m = 1 ≈ 1 µs.
 */
export const REFRESH_MIN_EXAMPLES_PER_OUTPUT = 8;
/**
 * On the float32-products path, the float32 increments of U, U⁻ᵀ and Q are added to the float32 mirrors
 * and to a float32 accumulator by saxpy each step, and the accumulator is added to the float64 state
 * (which re-rounds the mirrors) every this many steps, or sooner when the float64 state is read. The
 * mirrors thus carry the rounding of at most this many float32 additions; the float64 state none. A JS
 * loop over the d×d state each step cost ≈ 0.3 ms at d = 256 (a sixth of the step).
 */
const SETTLE_EVERY = 16;
/**
 * Default stabilisation period with float32 products (d ≥ 64 on blas), where a stabilisation (float64
 * Newton re-inversion, two d³ dgemm, and the power iterations) costs ≈ 3.6 ms at d = 256 against a 1.6 ms
 * step at m = 128. Measured (D = 50,000, d = 256, m = 128, spherical, η = 0.05, 400 steps, blas):
 * max|U U⁻¹ − I| just before a stabilisation 4.3e-8 every 50 steps, 4.7e-8 every 100, 4.9e-8 every 200;
 * the step at D = 200,000 got 7% faster going from 50 to 100.
 */
const STABILIZE_EVERY_F32 = 100;
/** After a rebalance, U is folded into V when cond(U) still exceeds FOLD_FACTOR·maxCond. */
const FOLD_FACTOR = 4;
/** U's scale √(σ_max σ_min) is recentred when it leaves [1/SCALE_LIMIT, SCALE_LIMIT]. */
const SCALE_LIMIT = 256;

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

  #D: number;
  #Vbuf: Float32Array;
  #V: Float32Array;
  #U: Float64Array;
  #Uinvt: Float64Array;
  #Q: Float64Array;
  #omega: Float64Array; // zeros unless loss.usesSum
  #wbar: Float64Array; // zeros unless loss.usesSum
  #steps = 0;
  #examples = 0; // since the last refresh
  #steps32 = 0; // steps taken with float32 products (not exported: a statistic of this process)
  #refreshAuto: boolean;
  #closed = false;
  #rescales = 0;
  #folds = 0;
  #stabilizations = 0;
  #rebalances = 0;
  #condBudget = 0;
  #sigmaMax = 1;
  #sigmaMin = 1;

  // scratch (grows with m and nnz)
  #mCap = 0;
  #nCap = 0;
  #H64 = new Float64Array(0);
  #Hhat = new Float64Array(0);
  #QH = new Float64Array(0);
  #A = new Float64Array(0);
  #B = new Float64Array(0);
  #G64 = new Float64Array(0); // ∇H in float64
  #Z = new Float64Array(0);
  #X = new Float64Array(0);
  #GH = new Float64Array(0);
  #MH = new Float64Array(0);
  #S = new Float64Array(0);
  #N = new Float64Array(0);
  #M = new Float64Array(0);
  #QHH = new Float64Array(0);
  #BH = new Float64Array(0);
  #q = new Float64Array(0);
  #s = new Float64Array(0);
  #g = new Float64Array(0);
  #gs = new Float64Array(0);
  #sumdy = new Float64Array(0);
  #hw = new Float64Array(0);
  #sg = new Float64Array(0); // √g_i (float32 Cholesky path)
  #zs = new Float64Array(0); // scale of the rows of Zn as stored in #P32 (float32 path)
  #rows = new Float32Array(0); // gathered V rows, nnz×d
  #delta = new Float32Array(0); // V update rows, nnz×d
  #coef = new Float64Array(0); // per-entry V update coefficients −η ẏ zs (float32 path)
  #o = new Float64Array(0);
  #dy = new Float64Array(0);
  #perm = new Int32Array(0);
  #head = new Int32Array(0);
  #kO = new Float64Array(0);
  #kY = new Float64Array(0);
  #kDy = new Float64Array(0);
  #scal = { gq: 0, gs: 0 };
  #merged = new MergedTargets();
  #guard = new GuardScratch();
  #chunk: ChunkScratch;
  #rebal: RebalanceScratch;
  #foldScratch: FoldScratch;
  #u = new Float64Array(0);
  // float32-products path: mirrors [U; Q; U⁻ᵀ] (3d×d, rounded from the float64 state, rewritten by the
  // same loops that update the state) and float32 scratch
  #St32: Float32Array;
  #mirrorsOk = false;
  #P32 = new Float32Array(0); // m×4d: rows [Zn_i | ĥ_i | (Qh)_i | Z_i]
  #A32 = new Float32Array(0); // m×d
  #B32 = new Float32Array(0); // m×d
  #EX32 = new Float32Array(0); // 2m×d: rows X'_i = B_i + g_i (Qh)_i, then h_i
  #ES32 = new Float32Array(0); // 2m×m: E' = X' Hᵀ, then S = H Hᵀ
  #GH32 = new Float32Array(0); // m×d
  #R32 = new Float32Array(0); // m×d
  #Mi32 = new Float32Array(0); // m×m (N⁻¹, then M)
  #T32: Float32Array; // 2d×d
  // float32 increments of [U; Q; U⁻ᵀ] (layout of #St32) not yet added to the float64 state, and how many
  // steps they hold: see #settle
  #Acc32: Float32Array;
  #pending = 0;
  // the d×d blocks of #St32 and #Acc32 (views made once)
  #views: {
    stU: Float32Array;
    stQ: Float32Array;
    stUinvt: Float32Array;
    accU: Float32Array;
    accQ: Float32Array;
    accUinvt: Float32Array;
  };
  #axpyAlpha = new Float64Array(2);
  #axpyX = Int32Array.of(0, 1);
  #axpyY = Int32Array.of(2, 0);
  #axpyQ = Int32Array.of(1);
  #gradH = new Float32Array(0); // the last forward's ∇H (the array returned to the caller)
  #tmp = new Float64Array(0);
  #dd = new Float64Array(0);
  #scratch2: Float64Array | null = null;

  private constructor(
    D: number,
    d: number,
    loss: SphericalFamilyLoss,
    la: LinAlgBackend,
    opts: FactoredOptions,
  ) {
    this.#D = D;
    this.d = d;
    this.loss = loss;
    this.la = la;
    const products = opts.products ?? (la.name === "blas" && d >= F32_PRODUCTS_MIN_D ? "float32" : "float64");
    if (products !== "float32" && products !== "float64") {
      throw new RangeError(`products must be "float32" or "float64", got ${JSON.stringify(products)}`);
    }
    this.products = products;
    this.stabilizeEvery = validateCount(
      "stabilizeEvery",
      opts.stabilizeEvery ?? (products === "float32" ? STABILIZE_EVERY_F32 : 50),
    );
    this.recomputeQEvery = validateCount("recomputeQEvery", opts.recomputeQEvery ?? 5000);
    this.#refreshAuto = opts.recomputeQEvery === undefined;
    this.directSolveMinBatch = validateCount(
      "directSolveMinBatch",
      opts.directSolveMinBatch ?? (products === "float32" ? d + 1 : Math.floor(d / 2) + 1),
    );
    this.guardMargin = opts.guardMargin ?? GUARD_MARGIN;
    this.maxCond = opts.maxCond ?? DEFAULT_MAX_COND;
    if (!(this.maxCond >= 1)) throw new RangeError(`maxCond must be ≥ 1, got ${this.maxCond}`);
    if (!(this.guardMargin >= 0 && this.guardMargin < 1)) {
      throw new RangeError(`guardMargin must be in [0, 1), got ${this.guardMargin}`);
    }
    this.#Vbuf = new Float32Array(D * d);
    this.#V = this.#Vbuf.subarray(0, D * d);
    this.#U = identity(d);
    this.#Uinvt = identity(d);
    this.#Q = new Float64Array(d * d);
    this.#omega = new Float64Array(d);
    this.#wbar = new Float64Array(d);
    this.#chunk = new ChunkScratch(d);
    this.#rebal = new RebalanceScratch(d, MAX_RESCALES);
    this.#foldScratch = new FoldScratch(d);
    this.#u = new Float64Array(d);
    const f32 = products === "float32";
    this.#St32 = new Float32Array(f32 ? 3 * d * d : 0);
    this.#T32 = new Float32Array(f32 ? 2 * d * d : 0);
    this.#Acc32 = new Float32Array(f32 ? 3 * d * d : 0);
    const dd = f32 ? d * d : 0, St = this.#St32, Acc = this.#Acc32;
    this.#views = {
      stU: St.subarray(0, dd),
      stQ: St.subarray(dd, 2 * dd),
      stUinvt: St.subarray(2 * dd, 3 * dd),
      accU: Acc.subarray(0, dd),
      accQ: Acc.subarray(dd, 2 * dd),
      accUinvt: Acc.subarray(2 * dd, 3 * dd),
    };
    this.#tmp = new Float64Array(d);
    this.#dd = new Float64Array(d * d);
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
    layer.#V.set(init);
    gramOf(la, layer.#V, D, d, layer.#Q, loss.usesSum ? layer.#wbar : null, layer.#chunk);
    return layer;
  }

  /**
   * A layer rebuilt from {@link FactoredOutputLayer.exportState}: continues bit-identically on the same
   * backend. Options not given are taken from the state.
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
    const { D, d, arrays, scalars } = state;
    const get = <T extends Float32Array | Float64Array>(
      name: string,
      len: number,
      type: { new (n: number): T },
    ): T => {
      const a = arrays[name];
      if (!(a instanceof type)) throw new TypeError(`state.arrays.${name} must be a ${type.name}`);
      if (a.length !== len) {
        throw new RangeError(`state.arrays.${name}.length = ${a.length}, expected ${len}`);
      }
      return a as T;
    };
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
    layer.#V.set(get("V", D * d, Float32Array));
    layer.#U.set(get("U", d * d, Float64Array));
    layer.#Uinvt.set(get("Uinvt", d * d, Float64Array));
    layer.#Q.set(get("Q", d * d, Float64Array));
    layer.#omega.set(get("omega", d, Float64Array));
    layer.#wbar.set(get("wbar", d, Float64Array));
    layer.#steps = scalars.steps ?? 0;
    layer.#examples = scalars.examplesSinceRefresh ?? 0;
    layer.#refreshAuto = opts.recomputeQEvery === undefined && scalars.refreshAuto === 1;
    layer.#rescales = scalars.rescales ?? 0;
    layer.#folds = scalars.folds ?? 0;
    layer.#stabilizations = scalars.stabilizations ?? 0;
    layer.#rebalances = scalars.rebalances ?? 0;
    layer.#condBudget = scalars.condBudget ?? 0;
    layer.#sigmaMax = scalars.sigmaMax ?? 1;
    layer.#sigmaMin = scalars.sigmaMin ?? 1;
    return layer;
  }

  /** Number of outputs (grows with appendRows). */
  get D(): number {
    return this.#D;
  }

  /** "js" or "blas". */
  get backend(): "js" | "blas" {
    return this.la.name;
  }

  /** Steps taken. */
  get steps(): number {
    return this.#steps;
  }

  /** Steps this object took with float32 products (the rest ran in float64); not part of the state. */
  get steps32(): number {
    return this.#steps32;
  }

  /** Loss and ∇H without updating (steps 1–5). */
  evaluate(H: Float32Array, Y: SparseBatch): Promise<StepResult> {
    try {
      const m = validateBatch(H, Y, this.#D, this.d);
      this.#ensure(m, Y.indices.length);
      return Promise.resolve(this.#use32() ? this.#forward32(H, Y, m, false) : this.#forward(H, Y, m));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** One exact SGD step on W (steps 1–11); refused with SingularUpdateError before any state change. */
  step(H: Float32Array, Y: SparseBatch, eta: number): Promise<StepResult> {
    try {
      validateEta(eta);
      const m = validateBatch(H, Y, this.#D, this.d);
      this.#ensure(m, Y.indices.length);
      let r: StepResult;
      if (this.#use32()) {
        r = this.#forward32(H, Y, m, true);
        if (this.#update32(H, m, eta)) this.#steps32++;
        else {
          // a strong step (update factor outside [½, 2]) or one the float32 guard doubts: redone in
          // float64 from the start, where the guard decides exactly
          r = this.#forward(H, Y, m);
          this.#update(m, eta);
        }
      } else {
        r = this.#forward(H, Y, m);
        this.#update(m, eta);
      }
      this.#steps++;
      this.#examples += m;
      if (
        this.recomputeQEvery > 0 && this.#steps % this.recomputeQEvery === 0 &&
        (!this.#refreshAuto || this.#examples >= REFRESH_MIN_EXAMPLES_PER_OUTPUT * this.#D)
      ) this.refresh();
      else if (
        this.stabilizeEvery > 0 &&
        (this.#steps % this.stabilizeEvery === 0 ||
          this.#condBudget > Math.max(Math.LN2, Math.log(this.maxCond * this.#sigmaMin / this.#sigmaMax)))
      ) this.stabilize();
      return Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * float32 products for this step: when asked for, and only while U is known to be well conditioned
   * (their rounding scales with cond(U)): no strong step since the last stabilisation, which found
   * cond(U) ≤ maxCond.
   */
  #use32(): boolean {
    return this.products === "float32" && this.#condBudget === 0 &&
      this.#sigmaMax <= this.maxCond * this.#sigmaMin;
  }

  #ensure(m: number, n: number): void {
    const d = this.d;
    if (m > this.#mCap) {
      this.#mCap = m;
      const md = m * d, mm = m * m;
      if (this.products === "float32") {
        this.#P32 = new Float32Array(4 * md);
        this.#A32 = new Float32Array(md);
        this.#B32 = new Float32Array(md);
        this.#EX32 = new Float32Array(2 * md);
        this.#ES32 = new Float32Array(2 * mm);
        this.#GH32 = new Float32Array(md);
        this.#R32 = new Float32Array(md);
        this.#Mi32 = new Float32Array(mm);
      }
      this.#H64 = new Float64Array(md);
      this.#Hhat = new Float64Array(md);
      this.#QH = new Float64Array(md);
      this.#A = new Float64Array(md);
      this.#B = new Float64Array(md);
      this.#G64 = new Float64Array(md);
      this.#Z = new Float64Array(md);
      this.#X = new Float64Array(md);
      this.#GH = new Float64Array(md);
      this.#MH = new Float64Array(md);
      this.#S = new Float64Array(mm);
      this.#N = new Float64Array(mm);
      this.#M = new Float64Array(mm);
      this.#QHH = new Float64Array(mm);
      this.#BH = new Float64Array(mm);
      this.#q = new Float64Array(m);
      this.#s = new Float64Array(m);
      this.#g = new Float64Array(m);
      this.#gs = new Float64Array(m);
      this.#sumdy = new Float64Array(m);
      this.#hw = new Float64Array(m);
      this.#zs = new Float64Array(m);
      this.#sg = new Float64Array(m);
    }
    if (n > this.#nCap) {
      this.#nCap = n;
      this.#rows = new Float32Array(n * d);
      this.#delta = new Float32Array(n * d);
      this.#o = new Float64Array(n);
      this.#coef = new Float64Array(n);
      this.#dy = new Float64Array(n);
      this.#perm = new Int32Array(n);
      this.#kO = new Float64Array(n);
      this.#kY = new Float64Array(n);
      this.#kDy = new Float64Array(n);
    }
  }

  /** Steps 1–5: fills the scratch (Ĥ, QH, q, s, o, ẏ, g, g_s, A, B, ∇H) and returns loss and ∇H. */
  #forward(H: Float32Array, Y: SparseBatch, m: number): StepResult {
    this.#settle();
    const { d, la, loss } = this;
    const usesSum = loss.usesSum;
    const H64 = this.#H64, Hhat = this.#Hhat, QH = this.#QH, A = this.#A, B = this.#B, G64 = this.#G64;
    const q = this.#q, s = this.#s, g = this.#g, gs = this.#gs, sumdy = this.#sumdy, hw = this.#hw;
    const omega = this.#omega, wbar = this.#wbar;
    for (let j = 0; j < m * d; j++) H64[j] = H[j];
    // 1. Ĥ = H Uᵀ, QH = H Q, q, s, h·ω
    la.dgemm(false, true, m, d, d, 1, H64, d, this.#U, d, 0, Hhat, d);
    la.dgemm(false, false, m, d, d, 1, H64, d, this.#Q, d, 0, QH, d);
    for (let i = 0; i < m; i++) {
      let qi = 0, si = 0, wi = 0;
      const r = i * d;
      for (let c = 0; c < d; c++) {
        qi += QH[r + c] * H64[r + c];
        if (usesSum) {
          si += wbar[c] * H64[r + c];
          wi += omega[c] * H64[r + c];
        }
      }
      q[i] = qi > 0 ? qi : 0;
      s[i] = si;
      hw[i] = wi;
    }
    // 2. gather target rows, o_ic = V_c·ĥ_i + ω·h_i
    const mg = this.#merged;
    mg.merge(Y);
    const nnz = mg.nnz, rows = this.#rows, o = this.#o, dy = this.#dy;
    la.gatherRows(this.#V, d, mg.idx, nnz, rows);
    for (let k = 0; k < nnz; k++) {
      const i = mg.ex[k], r = k * d, hr = i * d;
      let acc = 0;
      for (let c = 0; c < d; c++) acc += rows[r + c] * Hhat[hr + c];
      o[k] = acc + hw[i];
    }
    // 3. the loss
    const L = this.#lossOf(m);
    // 4. A_i = Σ ẏ_ic V_c
    A.fill(0, 0, m * d);
    for (let k = 0; k < nnz; k++) {
      const a = dy[k];
      if (a === 0) continue;
      const r = k * d, ar = mg.ex[k] * d;
      for (let c = 0; c < d; c++) A[ar + c] += a * rows[r + c];
    }
    // 5. B = A U + (𝟙ᵀẏ) ωᵀ; ∇H = B + 2 g QH + g_s w̄ᵀ
    la.dgemm(false, false, m, d, d, 1, A, d, this.#U, d, 0, B, d);
    const gradH = new Float32Array(m * d);
    for (let i = 0; i < m; i++) {
      const r = i * d, sd = sumdy[i], gi2 = 2 * g[i], gsi = gs[i];
      for (let c = 0; c < d; c++) {
        if (usesSum) B[r + c] += sd * omega[c];
        const v = B[r + c] + gi2 * QH[r + c] + gsi * wbar[c];
        G64[r + c] = v;
        gradH[r + c] = v;
      }
    }
    return { loss: L, gradH };
  }

  /** Steps 6–11 from the scratch #forward filled; guard first. */
  #update(m: number, eta: number): void {
    this.#settle();
    const { d, la, loss } = this;
    const D = this.#D, usesSum = loss.usesSum;
    const H64 = this.#H64, Hhat = this.#Hhat, QH = this.#QH, B = this.#B, G64 = this.#G64;
    const S = this.#S, g = this.#g, gs = this.#gs, s = this.#s, sumdy = this.#sumdy, hw = this.#hw;
    const U = this.#U, Uinvt = this.#Uinvt;
    // S = H Hᵀ (Gram of the examples) and the guard, before any state changes
    la.dgemm(false, true, m, m, d, 1, H64, d, H64, d, 0, S, m);
    const lamMin = checkUpdateFactor(m, eta, g, S, this.#steps + 1, this.#guard, this.guardMargin);
    // Strong steps bring the next stabilisation forward: the part of log(λ_max(F)/λ_min(F)) beyond a
    // factor 2 per step (λ_min from the guard: exact for m = 1; λ_max ≤ 1 + 2η Σ|g⁻|‖h‖²) is summed,
    // and U is stabilised once the sum exceeds log(maxCond / cond(U) at the last stabilisation) (at least
    // log 2). Ordinary steps (factors within [½, 2]) add 0.
    let tn = 0;
    for (let i = 0; i < m; i++) {
      const v = 2 * eta * g[i] * S[i * m + i];
      if (v < 0) tn -= v;
    }
    const lamMax = m === 1 ? Math.max(1, lamMin) : 1 + tn;
    this.#mirrorsOk = false;
    this.#condBudget += Math.max(0, Math.log(lamMax / Math.min(1, lamMin)) - Math.LN2);
    // M = ∇Oᵀ∇O (m×m), from the pre-step quantities
    const M = this.#M, BH = this.#BH, QHH = this.#QHH;
    la.dgemm(false, true, m, m, d, 1, B, d, H64, d, 0, BH, m); // BH_ij = (Wᵀẏ_i)·h_j = ẏ_i·o_j
    la.dgemm(false, true, m, m, d, 1, QH, d, H64, d, 0, QHH, m); // QHH_ij = h_iᵀ Q h_j
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        let v = 2 * g[j] * BH[i * m + j] + 2 * g[i] * BH[j * m + i] + 4 * g[i] * g[j] * QHH[i * m + j];
        if (usesSum) {
          v += gs[j] * sumdy[i] + gs[i] * sumdy[j] + 2 * g[i] * gs[j] * s[i] + 2 * g[j] * gs[i] * s[j] +
            D * gs[i] * gs[j];
        }
        M[i * m + j] = v;
      }
    }
    this.#addYdotY(m, M);

    // GH = rows g_i h_i
    const GH = this.#GH;
    for (let i = 0; i < m; i++) {
      const gi = g[i], r = i * d;
      for (let c = 0; c < d; c++) GH[r + c] = gi * H64[r + c];
    }
    const direct = m >= this.directSolveMinBatch;
    if (!direct) {
      // 7 (Woodbury / Sherman–Morrison), with the old U⁻ᵀ: Z = H U⁻¹ (rows U⁻ᵀ h_i)
      const Z = this.#Z, X = this.#X, N = this.#N;
      la.dgemm(false, true, m, d, d, 1, H64, d, Uinvt, d, 0, Z, d);
      X.set(GH.subarray(0, m * d));
      if (m === 1) {
        const f = 1 / (1 - 2 * eta * g[0] * S[0]);
        for (let c = 0; c < d; c++) X[c] *= f;
      } else {
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < m; j++) N[i * m + j] = (i === j ? 1 : 0) - 2 * eta * g[i] * S[i * m + j];
        }
        la.dsolve(N, m, X, d);
      }
      la.dgemm(true, false, d, d, m, 2 * eta, Z, d, X, d, 1, Uinvt, d);
    }
    // 6. U ← U − 2η Ĥᵀ (G H)
    la.dgemm(true, false, d, d, m, -2 * eta, Hhat, d, GH, d, 1, U, d);
    if (direct) reinvert(la, U, Uinvt, d);

    // 8. V rows: V_c −= η ẏ_ic (U_new⁻ᵀ h_i)ᵀ
    const Zn = this.#Z, delta = this.#delta, dy = this.#dy, mg = this.#merged;
    la.dgemm(false, true, m, d, d, 1, H64, d, Uinvt, d, 0, Zn, d);
    for (let k = 0; k < mg.nnz; k++) {
      const f = -eta * dy[k], r = k * d, zr = mg.ex[k] * d;
      for (let c = 0; c < d; c++) delta[r + c] = f * Zn[zr + c];
    }
    la.scatterAddRows(this.#V, d, mg.idx, mg.nnz, delta, 1);

    // 10. Q ← Q − η(∇Hᵀ H + Hᵀ ∇H) + η² Hᵀ M H  (the last as η²/2 (Hᵀ(MH) + (MH)ᵀH))
    const MH = this.#MH;
    la.dgemm(false, false, m, d, m, 1, M, m, H64, d, 0, MH, d);
    la.dsyr2k(true, d, m, -eta, G64, d, H64, d, 1, this.#Q, d);
    la.dsyr2k(true, d, m, 0.5 * eta * eta, H64, d, MH, d, 1, this.#Q, d);

    if (usesSum) {
      // 9. ω ← ω − η Σ (2 g_i (h_i·ω) + g_s,i) h_i ; 11. w̄ ← w̄ − η Σ c_i h_i
      const omega = this.#omega, wbar = this.#wbar;
      for (let i = 0; i < m; i++) {
        const a = -eta * (2 * g[i] * hw[i] + gs[i]);
        const c = -eta * (sumdy[i] + 2 * g[i] * s[i] + D * gs[i]);
        const r = i * d;
        for (let k = 0; k < d; k++) {
          omega[k] += a * H64[r + k];
          wbar[k] += c * H64[r + k];
        }
      }
    }
  }

  /** Step 3 for both paths: the loss per example from o (and q, s) → ẏ, 𝟙·ẏ, g_q, g_s; returns L. */
  #lossOf(m: number): number {
    let L = 0;
    for (let i = 0; i < m; i++) L += this.#lossOfExample(i);
    return L;
  }

  /** Step 3 for example i (its entries' o must be set): fills its ẏ, 𝟙·ẏ, g_q, g_s; returns L_i. */
  #lossOfExample(i: number): number {
    const loss = this.loss, D = this.#D, usesSum = loss.usesSum, mg = this.#merged;
    const o = this.#o, dy = this.#dy, q = this.#q, s = this.#s, g = this.#g, gs = this.#gs;
    const sumdy = this.#sumdy;
    const kO = this.#kO, kY = this.#kY, kDy = this.#kDy, scal = this.#scal;
    const k0 = mg.off[i], K = mg.off[i + 1] - k0;
    for (let k = 0; k < K; k++) {
      kO[k] = o[k0 + k];
      kY[k] = mg.w[k0 + k];
    }
    const Li = loss.fromStats(kO, kY, K, q[i], s[i], D, kDy, scal);
    let sd = 0;
    for (let k = 0; k < K; k++) {
      dy[k0 + k] = kDy[k];
      sd += kDy[k];
    }
    sumdy[i] = sd;
    g[i] = scal.gq;
    gs[i] = usesSum ? scal.gs : 0;
    if (!Number.isFinite(Li) || !Number.isFinite(scal.gq) || !Number.isFinite(sd)) {
      throw new DivergenceError(
        this.#steps + 1,
        `step ${this.#steps + 1}: the ${loss.name} loss of example ${i} is not finite ` +
          `(L = ${Li}, g_q = ${scal.gq}, q = ${
            q[i]
          }); the layer's state is unchanged. Lower the learning rate.`,
      );
    }
    return Li;
  }

  /**
   * Adds the pending float32 increments (#Acc32) to the float64 state [U; Q; U⁻ᵀ], rewrites the mirrors
   * rounded from the result and clears the accumulator. Every reader of the float64 state calls it first.
   */
  #settle(): void {
    if (this.#pending === 0) return;
    this.#pending = 0;
    const dd = this.d * this.d;
    settleBlock(this.#U, this.#St32, this.#Acc32, 0, dd);
    settleBlock(this.#Q, this.#St32, this.#Acc32, dd, dd);
    settleBlock(this.#Uinvt, this.#St32, this.#Acc32, 2 * dd, dd);
  }

  /** The float32 mirrors [U; Q; U⁻ᵀ] rounded from the float64 state. */
  #refreshMirrors(): void {
    this.#settle();
    const n = this.d * this.d, St = this.#St32, U = this.#U, Q = this.#Q, Ui = this.#Uinvt;
    for (let j = 0; j < n; j++) {
      St[j] = U[j];
      St[n + j] = Q[j];
      St[2 * n + j] = Ui[j];
    }
    this.#mirrorsOk = true;
  }

  /**
   * Steps 1–5 with float32 products (sgemm on the mirrors; H is used as given). Row i of P (m×4d) gets
   * [· | ĥ_i | Qh_i | U⁻ᵀh_i] from one sgemm (the last block only when `withZ`, for the update); A, B
   * and X' = B + G·QH (rows 0 … m-1 of EX) are float32, q, s, o, ẏ float64.
   */
  #forward32(H: Float32Array, Y: SparseBatch, m: number, withZ: boolean): StepResult {
    const { d, la } = this;
    const usesSum = this.loss.usesSum, ld = 4 * d;
    const P = this.#P32, A = this.#A32, B = this.#B32, X = this.#EX32, St = this.#St32;
    const q = this.#q, s = this.#s, g = this.#g, gs = this.#gs, sumdy = this.#sumdy, hw = this.#hw;
    const omega = this.#omega, wbar = this.#wbar;
    if (!this.#mirrorsOk) this.#refreshMirrors();
    // 1. [ĥ_i | Qh_i | U⁻ᵀh_i] = H [U; Q; U⁻ᵀ]ᵀ (Q is symmetric): one sgemm, m×(2d or 3d)×d
    la.sgemm(false, true, m, withZ ? 3 * d : 2 * d, d, 1, H, d, St, d, 0, P.subarray(d), ld);
    for (let i = 0; i < m; i++) {
      let qi = 0, si = 0, wi = 0;
      const r = i * d, p = i * ld + 2 * d;
      for (let c = 0; c < d; c++) qi += P[p + c] * H[r + c];
      if (usesSum) {
        for (let c = 0; c < d; c++) {
          si += wbar[c] * H[r + c];
          wi += omega[c] * H[r + c];
        }
      }
      q[i] = qi > 0 ? qi : 0;
      s[i] = si;
      hw[i] = wi;
    }
    // 2. gather target rows, o_ic = V_c·ĥ_i + ω·h_i
    const mg = this.#merged;
    mg.merge(Y);
    // The rows are read in place (V is not written before step 8; a gather costs a copy per entry), one
    // example at a time: its K dot products (2), its loss (3) and A_i = Σ ẏ_ic V_c (4) while its rows are
    // still in cache (one pass over the target rows instead of two: measured 358 → 246 µs for 640 random
    // rows of a 200,000×256 V). dotRows/axpyRows are cblas_sdot/saxpy per row under blas.
    const V = this.#V, idx = mg.idx, o = this.#o, dy = this.#dy, ex = mg.ex, off = mg.off;
    const Ph = P.subarray(d);
    A.fill(0, 0, m * d);
    let L = 0;
    for (let i = 0; i < m; i++) {
      const k0 = off[i], n = off[i + 1] - k0, hwi = hw[i];
      la.dotRows(V, d, idx, Ph, ld, ex, n, d, o, k0);
      for (let k = k0; k < k0 + n; k++) o[k] += hwi;
      L += this.#lossOfExample(i);
      la.axpyRows(dy, V, d, idx, A, d, ex, n, d, k0);
    }
    // 5. B = A U (+ (𝟙ᵀẏ) ωᵀ); ∇H = B + 2 G QH + g_s w̄ᵀ; X' = B + G QH
    la.sgemm(false, false, m, d, d, 1, A, d, St, d, 0, B, d);
    const gradH = new Float32Array(m * d);
    for (let i = 0; i < m; i++) {
      const r = i * d, p = i * ld + 2 * d, sd = sumdy[i], gi = g[i], gsi = gs[i];
      if (usesSum) {
        for (let c = 0; c < d; c++) {
          const b = B[r + c] + sd * omega[c], qh = P[p + c];
          gradH[r + c] = b + 2 * gi * qh + gsi * wbar[c];
          X[r + c] = b + gi * qh;
        }
      } else {
        for (let c = 0; c < d; c++) {
          const b = B[r + c], qh = P[p + c];
          gradH[r + c] = b + 2 * gi * qh;
          X[r + c] = b + gi * qh;
        }
      }
    }
    this.#gradH = gradH;
    return { loss: L, gradH };
  }

  /**
   * Steps 6–11 with float32 products after {@link #forward32}(…, true). Returns false, with the state
   * untouched, when the step is strong (update factor outside [½, 2]) or the guard on the float32 Gram
   * matrix refuses it: the caller then redoes the step in float64, whose guard decides exactly.
   *
   * Products (m×d H, Z = H U⁻¹, N = I − 2η G S):
   * - [E'; S] = [X'; H] Hᵀ (one sgemm 2m×m×d); M = 2(E'G + G E'ᵀ) + the sum terms + ẏ_i·ẏ_j.
   * - Woodbury: Zn = N⁻ᵀ Z (rows U_new⁻ᵀ h_i, sgemm m×d×m), then [ΔU⁻ᵀ; ΔU] = [Zn | Ĥ]ᵀ (G H) (one sgemm
   *   2d×d×m): U⁻ᵀ += 2η Znᵀ G H, U −= 2η Ĥᵀ G H. Direct (m ≥ directSolveMinBatch): U first, then U⁻ᵀ
   *   re-inverted and Zn = H U_new⁻¹.
   * - Q += Hᵀ R + Rᵀ H with R = −η ∇H + (η²/2) M H (sgemm m×d×m, one ssyr2k d×d×m).
   * The increments are float32; they are added to the float64 state by the loops that also rewrite the
   * mirrors. m = 1: the rank-1 updates are float64 loops (no gemm).
   */
  #update32(H: Float32Array, m: number, eta: number): boolean {
    const { d, la } = this;
    const D = this.#D, usesSum = this.loss.usesSum, ld = 4 * d, dd = d * d, a2 = 2 * eta;
    const P = this.#P32, X = this.#EX32, ES = this.#ES32, St = this.#St32, T = this.#T32, GH = this.#GH32;
    const Mi = this.#Mi32, S = this.#S, M = this.#M, N = this.#N, E = this.#BH;
    const g = this.#g, gs = this.#gs, s = this.#s, sumdy = this.#sumdy, hw = this.#hw;
    const U = this.#U, Uinvt = this.#Uinvt, zs = this.#zs, Acc = this.#Acc32;
    // S = H Hᵀ and E' = X' Hᵀ (E'_ij = ẏ_i·o_j + g_i h_iᵀQh_j)
    if (m === 1) {
      let ss = 0, e = 0;
      for (let c = 0; c < d; c++) {
        ss += H[c] * H[c];
        e += X[c] * H[c];
      }
      S[0] = ss;
      E[0] = e;
    } else {
      const mm = m * m;
      X.set(H.subarray(0, m * d), m * d);
      la.sgemm(false, true, 2 * m, m, d, 1, X, d, H, d, 0, ES, m);
      for (let j = 0; j < mm; j++) E[j] = ES[j];
      for (let i = 0; i < m; i++) {
        S[i * m + i] = ES[mm + i * m + i];
        for (let j = 0; j < i; j++) {
          S[i * m + j] = S[j * m + i] = 0.5 * (ES[mm + i * m + j] + ES[mm + j * m + i]);
        }
      }
    }
    let lamMin: number;
    try {
      lamMin = checkUpdateFactor(m, eta, g, S, this.#steps + 1, this.#guard, this.guardMargin);
    } catch (e) {
      if (e instanceof SingularUpdateError) return false;
      throw e;
    }
    let tn = 0;
    for (let i = 0; i < m; i++) {
      const v = a2 * g[i] * S[i * m + i];
      if (v < 0) tn -= v;
    }
    const lamMax = m === 1 ? Math.max(1, lamMin) : 1 + tn;
    if (lamMin < 0.5 || lamMax > 2) return false;
    this.#condBudget += Math.max(0, Math.log(lamMax / Math.min(1, lamMin)) - Math.LN2);

    // M = ∇Oᵀ∇O (m×m, float64)
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        let v = 2 * (E[i * m + j] * g[j] + g[i] * E[j * m + i]);
        if (usesSum) {
          v += gs[j] * sumdy[i] + gs[i] * sumdy[j] + 2 * g[i] * gs[j] * s[i] + 2 * g[j] * gs[i] * s[j] +
            D * gs[i] * gs[j];
        }
        M[i * m + j] = v;
      }
    }
    this.#addYdotY(m, M);

    // 6, 7: U, U⁻ᵀ and Zn (rows U_new⁻ᵀ h_i, in P's first block)
    if (m === 1) {
      // Sherman–Morrison: U⁻ᵀ += 2η g zn hᵀ with zn = U_new⁻ᵀ h = Z/(1 − 2η g‖h‖²), U −= 2η g ĥ hᵀ: rank-1
      // updates (sger) of the mirrors and the accumulator (5× faster than a JS loop at d = 300)
      zs[0] = 1;
      const f = 1 / (1 - a2 * g[0] * S[0]), a = a2 * g[0];
      for (let r = 0; r < d; r++) P[r] = f * P[3 * d + r];
      const zn = P.subarray(0, d), hhat = P.subarray(d, 2 * d), v = this.#views;
      la.sger(d, d, a, zn, H, v.stUinvt, d);
      la.sger(d, d, a, zn, H, v.accUinvt, d);
      la.sger(d, d, -a, hhat, H, v.stU, d);
      la.sger(d, d, -a, hhat, H, v.accU, d);
    } else {
      if (m >= this.directSolveMinBatch) {
        for (let i = 0; i < m; i++) {
          const gi = g[i], r = i * d;
          zs[i] = 1;
          for (let c = 0; c < d; c++) GH[r + c] = gi * H[r + c];
        }
      }
      if (m < this.directSolveMinBatch) {
        let gMin = Infinity;
        for (let i = 0; i < m; i++) gMin = Math.min(gMin, g[i]);
        if (gMin > CHOLESKY_MIN_G) {
          // every g_i > 0: with C = diag(√g), N⁻ᵀ = (I − 2η S G)⁻¹ = C⁻¹ T⁻¹ C for the symmetric positive
          // definite T = I − 2η C S C (λ_min ≥ ½ here), so C·Zn = L⁻ᵀ L⁻¹ (C Z) with T = L Lᵀ (dpotrf and
          // two strsm). Rows of Ĥ are scaled by √g too and GH holds C H: [C Zn | C Ĥ]ᵀ (C H) =
          // [Znᵀ G H; Ĥᵀ G H]. zs_i = 1/√g_i undoes the scaling of Zn for the V update.
          const sg = this.#sg;
          for (let i = 0; i < m; i++) {
            sg[i] = Math.sqrt(g[i]);
            zs[i] = 1 / sg[i];
          }
          for (let i = 0; i < m; i++) {
            const ci = sg[i], r = i * d, p = i * ld, row = i * m, f = a2 * ci;
            for (let j = 0; j < i; j++) N[row + j] = -f * sg[j] * S[row + j];
            N[row + i] = 1 - f * ci * S[row + i];
            for (let c = 0; c < d; c++) {
              GH[r + c] = ci * H[r + c];
              P[p + c] = ci * P[p + 3 * d + c];
              P[p + d + c] *= ci;
            }
          }
          if (!la.dpotrf(N, m)) return false; // not reached: the guard showed T ⪰ ½ I
          for (let j = 0; j < m * m; j++) Mi[j] = N[j];
          la.strsm(false, m, d, 1, Mi, m, P, ld);
          la.strsm(true, m, d, 1, Mi, m, P, ld);
        } else {
          for (let i = 0; i < m; i++) {
            const gi = g[i], r = i * d;
            zs[i] = 1;
            for (let j = 0; j < m; j++) N[i * m + j] = (i === j ? 1 : 0) - a2 * gi * S[i * m + j];
            for (let c = 0; c < d; c++) GH[r + c] = gi * H[r + c];
          }
          la.dinvert(N, m);
          for (let j = 0; j < m * m; j++) Mi[j] = N[j];
          la.sgemm(true, false, m, d, m, 1, Mi, m, P.subarray(3 * d), ld, 0, P, ld);
        }
        la.sgemm(true, false, 2 * d, d, m, 1, P, ld, GH, d, 0, T, d);
        // U⁻ᵀ += 2η T[0], U −= 2η T[1]: into the mirrors and the accumulator (see SETTLE_EVERY)
        const alpha = this.#axpyAlpha;
        alpha[0] = a2;
        alpha[1] = -a2;
        la.axpyRows(alpha, T, dd, this.#axpyX, St, dd, this.#axpyY, 2, dd);
        la.axpyRows(alpha, T, dd, this.#axpyX, Acc, dd, this.#axpyY, 2, dd);
      } else {
        // the direct re-inversion needs U in float64
        this.#settle();
        la.sgemm(true, false, d, d, m, 1, P.subarray(d), ld, GH, d, 0, T, d);
        for (let j = 0; j < dd; j++) {
          U[j] -= a2 * T[j];
          St[j] = U[j];
        }
        reinvert(la, U, Uinvt, d);
        for (let j = 0; j < dd; j++) St[2 * dd + j] = Uinvt[j];
        la.sgemm(false, true, m, d, d, 1, H, d, St.subarray(2 * dd), d, 0, P, ld);
      }
    }

    // 8. V rows: V_c −= η ẏ_ic (U_new⁻ᵀ h_i)ᵀ, added in entry order straight from P by axpyRows (one pass
    // over the rows read in step 2, still in cache; a delta buffer plus scatterAddRows costs a second pass)
    const V = this.#V, dy = this.#dy, mg = this.#merged, ex = mg.ex, idx = mg.idx;
    const coef = this.#coef;
    for (let k = 0; k < mg.nnz; k++) coef[k] = -eta * dy[k] * zs[ex[k]];
    la.axpyRows(coef, P, ld, ex, V, d, idx, mg.nnz, d);

    // 10. Q += Hᵀ R + Rᵀ H, R = −η ∇H + (η²/2) M H
    const gradH = this.#gradH, h2 = 0.5 * eta * eta;
    if (m === 1) {
      // Q += h rᵀ + r hᵀ (four sger: mirror and accumulator)
      const rv = this.#R32, mh = h2 * M[0], v = this.#views;
      for (let c = 0; c < d; c++) rv[c] = -eta * gradH[c] + mh * H[c];
      la.sger(d, d, 1, H, rv, v.stQ, d);
      la.sger(d, d, 1, rv, H, v.stQ, d);
      la.sger(d, d, 1, H, rv, v.accQ, d);
      la.sger(d, d, 1, rv, H, v.accQ, d);
    } else {
      const R = this.#R32;
      for (let j = 0; j < m * d; j++) R[j] = -eta * gradH[j];
      for (let j = 0; j < m * m; j++) Mi[j] = M[j];
      la.sgemm(false, false, m, d, m, h2, Mi, m, H, d, 1, R, d);
      la.ssyr2k(true, d, m, 1, H, d, R, d, 0, T, d);
      const alpha = this.#axpyAlpha;
      alpha[0] = 1;
      la.axpyRows(alpha, T, dd, this.#axpyX, St, dd, this.#axpyQ, 1, dd);
      la.axpyRows(alpha, T, dd, this.#axpyX, Acc, dd, this.#axpyQ, 1, dd);
    }

    if (usesSum) {
      // 9. ω ← ω − η Σ (2 g_i (h_i·ω) + g_s,i) h_i ; 11. w̄ ← w̄ − η Σ c_i h_i
      const omega = this.#omega, wbar = this.#wbar;
      for (let i = 0; i < m; i++) {
        const a = -eta * (2 * g[i] * hw[i] + gs[i]);
        const c = -eta * (sumdy[i] + 2 * g[i] * s[i] + D * gs[i]);
        const r = i * d;
        for (let k = 0; k < d; k++) {
          omega[k] += a * H[r + k];
          wbar[k] += c * H[r + k];
        }
      }
    }
    if (++this.#pending >= SETTLE_EVERY) this.#settle();
    return true;
  }

  /**
   * M_ij += ẏ_i·ẏ_j: pairs of entries with equal indices, found through a chain per index (`#head`, D
   * entries, all -1 between calls; `#perm` links each entry to the previous one with its index), O(nnz +
   * pairs) with no sort.
   */
  #addYdotY(m: number, M: Float64Array): void {
    const mg = this.#merged, nnz = mg.nnz, idx = mg.idx, ex = mg.ex, dy = this.#dy;
    if (m === 1) {
      let v = 0;
      for (let k = 0; k < nnz; k++) v += dy[k] * dy[k];
      M[0] += v;
      return;
    }
    if (this.#head.length < this.#D) this.#head = new Int32Array(this.#D).fill(-1);
    const head = this.#head, next = this.#perm;
    for (let k = 0; k < nnz; k++) {
      const c = idx[k], ik = ex[k], yk = dy[k], rk = ik * m;
      next[k] = head[c];
      head[c] = k;
      M[rk + ik] += yk * yk;
      for (let j = next[k]; j >= 0; j = next[j]) {
        const ij = ex[j], v = yk * dy[j];
        M[rk + ij] += v;
        M[ij * m + ik] += v;
      }
    }
    for (let k = 0; k < nnz; k++) head[idx[k]] = -1;
  }

  /**
   * Stabilisation (done automatically every `stabilizeEvery` steps, or sooner after strong steps): exact
   * re-inversion of U⁻ᵀ and power-iteration estimates of σ_max(U), σ_min(U); then, when cond(U) >
   * `maxCond` or U's scale √(σ_max σ_min) has left [2⁻⁸, 2⁸], a {@link rebalance} (d ≤ 64: power-of-two
   * recentring and up to 8 rank-1 rescales into [0.5, 2], one O(Dd·k) pass over V; d > 64: the
   * recentring only) or a fold of U into V (d > 64 with cond(U) > maxCond, or a rebalance that left
   * cond(U) > 4·maxCond). W, Q, ω, w̄ are unchanged (up to float32 rounding of V).
   */
  stabilize(): void {
    this.#settle();
    const { d, la } = this;
    const D = this.#D, V = this.#V, U = this.#U, Uinvt = this.#Uinvt, u = this.#u, tmp = this.#tmp;
    this.#stabilizations++;
    this.#condBudget = 0;
    this.#mirrorsOk = false;
    if (!this.#scratch2) this.#scratch2 = new Float64Array(d * d);
    const SIGMA_TOL = d > REBALANCE_MAX_D ? SIGMA_TOL_LARGE_D : 1e-7;
    reinvertFrom(la, U, Uinvt, d, this.#dd, this.#scratch2);
    let smax = topLeftSingular(la, U, d, u, tmp, 100, SIGMA_TOL);
    let smin = 1 / topLeftSingular(la, Uinvt, d, u, tmp, 100, SIGMA_TOL);
    const scale = Math.sqrt(smax * smin);
    const needCond = smax / smin > this.maxCond;
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
          this.#rebal,
          d > REBALANCE_MAX_D ? 0 : MAX_RESCALES,
        );
        this.#rescales += r.rank;
        this.#rebalances++;
        smax = topLeftSingular(la, U, d, u, tmp, 100, SIGMA_TOL);
        smin = 1 / topLeftSingular(la, Uinvt, d, u, tmp, 100, SIGMA_TOL);
        fold = smax / smin > FOLD_FACTOR * this.maxCond;
      }
      if (fold) {
        // the spread is too broad for a few rank-1 rescales: fold U into V (one sgemm pass)
        foldConditioning(la, V, D, d, U, Uinvt, this.#foldScratch);
        this.#folds++;
        smax = topLeftSingular(la, U, d, u, tmp, 100, SIGMA_TOL);
        smin = 1 / topLeftSingular(la, Uinvt, d, u, tmp, 100, SIGMA_TOL);
      }
    }
    this.#sigmaMax = smax;
    this.#sigmaMin = smin;
  }

  /**
   * Folds U and ω into V (V ← VU + 𝟙ωᵀ, U = U⁻ᵀ = I, ω = 0) and re-derives Q = VᵀV and w̄ = Vᵀ𝟙 exactly
   * in float64 (O(Dd²); done automatically every `recomputeQEvery` steps).
   */
  refresh(): void {
    this.#settle();
    this.#mirrorsOk = false;
    this.#examples = 0;
    this.#fold();
    this.#condBudget = 0;
    gramOf(this.la, this.#V, this.#D, this.d, this.#Q, this.loss.usesSum ? this.#wbar : null, this.#chunk);
    this.#sigmaMax = this.#sigmaMin = 1;
  }

  #fold(): void {
    foldInto(this.la, this.#V, this.#D, this.d, this.#U, this.#Uinvt, this.#omega, this.#chunk);
    this.#folds++;
  }

  /** W = V U + 𝟙ωᵀ materialised (float64 accumulation, O(Dd²)). */
  weights(): Promise<Float32Array> {
    this.#settle();
    const W = new Float32Array(this.#D * this.d);
    materialize(this.la, this.#V, this.#D, this.d, this.#U, this.#omega, W, this.#chunk);
    return Promise.resolve(W);
  }

  /** ĥ = U h, q = hᵀQh, s = w̄·h, ω·h for one input (float64). */
  #stats(h: Float32Array): { hhat: Float64Array; q: number; s: number; hw: number } {
    this.#settle();
    const d = this.d, U = this.#U, Q = this.#Q;
    const hhat = new Float64Array(d);
    let q = 0, s = 0, hw = 0;
    for (let r = 0; r < d; r++) {
      let a = 0, b = 0;
      for (let c = 0; c < d; c++) {
        a += U[r * d + c] * h[c];
        b += Q[r * d + c] * h[c];
      }
      hhat[r] = a;
      q += b * h[r];
      s += this.#wbar[r] * h[r];
      hw += this.#omega[r] * h[r];
    }
    return { hhat, q: q > 0 ? q : 0, s, hw };
  }

  /** Probabilities (scores for squared error) of `rows` for input h, in O(d² + |rows| d). */
  score(h: Float32Array, rows: Int32Array): Promise<Float64Array> {
    try {
      validateVector("h", h, this.d);
      validateRows(rows, this.#D);
      const { hhat, q, s, hw } = this.#stats(h);
      const d = this.d, V = this.#V, out = new Float64Array(rows.length);
      for (let k = 0; k < rows.length; k++) {
        let o = hw;
        const r = rows[k] * d;
        for (let c = 0; c < d; c++) o += V[r + c] * hhat[c];
        out[k] = this.loss.probability(o, q, s, this.#D);
      }
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Exact top-k over all D rows by the loss's probability, O(Dd + d²). */
  topK(h: Float32Array, k: number): Promise<{ indices: Int32Array; scores: Float64Array }> {
    try {
      validateVector("h", h, this.d);
      const { hhat, q, s, hw } = this.#stats(h);
      const D = this.#D, d = this.d, V = this.#V, p = new Float64Array(D);
      for (let j = 0; j < D; j++) {
        let o = hw;
        const r = j * d;
        for (let c = 0; c < d; c++) o += V[r + c] * hhat[c];
        p[j] = this.loss.probability(o, q, s, D);
      }
      return Promise.resolve(selectTopK(p, D, k));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * cond(U) (power iteration, with an exact inverse), max|U U⁻¹ − I| for the maintained U⁻ᵀ, counters,
   * and with `{ full: true }` the O(Dd²) qDrift = max|Q − WᵀW| / max|Q| (and wbarDrift when ω, w̄ are kept).
   */
  diagnostics(opts: { full?: boolean } = {}): Promise<Diagnostics> {
    this.#settle();
    const { d, la } = this;
    const U = this.#U, Uinvt = this.#Uinvt, T = this.#dd, u = this.#u, tmp = this.#tmp;
    la.dgemm(false, true, d, d, d, 1, U, d, Uinvt, d, 0, T, d);
    let inverseError = 0;
    for (let r = 0; r < d; r++) {
      for (let c = 0; c < d; c++) {
        inverseError = Math.max(inverseError, Math.abs(T[r * d + c] - (r === c ? 1 : 0)));
      }
    }
    const sigmaMax = topLeftSingular(la, U, d, u, tmp);
    reinvert(la, U, T, d);
    const sigmaMin = 1 / topLeftSingular(la, T, d, u, tmp);
    const out: Diagnostics = {
      condU: sigmaMax / sigmaMin,
      inverseError,
      steps: this.#steps,
      sigmaMax,
      sigmaMin,
      rescales: this.#rescales,
      folds: this.#folds,
      stabilizations: this.#stabilizations,
      rebalances: this.#rebalances,
    };
    if (opts.full) {
      const W = new Float32Array(this.#D * d);
      materialize(la, this.#V, this.#D, d, U, this.#omega, W, this.#chunk);
      const usesSum = this.loss.usesSum;
      const sum = usesSum ? new Float64Array(d) : null;
      gramOf(la, W, this.#D, d, T, sum, this.#chunk);
      let num = 0, den = 0;
      for (let j = 0; j < d * d; j++) {
        num = Math.max(num, Math.abs(this.#Q[j] - T[j]));
        den = Math.max(den, Math.abs(this.#Q[j]));
      }
      out.qDrift = den > 0 ? num / den : num;
      if (sum) {
        let a = 0, b = 0;
        for (let c = 0; c < d; c++) {
          a = Math.max(a, Math.abs(this.#wbar[c] - sum[c]));
          b = Math.max(b, Math.abs(sum[c]));
        }
        out.wbarDrift = b > 0 ? a / b : a;
      }
    }
    return Promise.resolve(out);
  }

  /** V, U, Uinvt, Q, omega, wbar and every counter: enough to continue bit-identically. */
  exportState(): Promise<OutputLayerState> {
    this.#settle();
    return Promise.resolve({
      kind: "factored",
      D: this.#D,
      d: this.d,
      loss: this.loss.name,
      lossOptions: { ...this.loss.options },
      arrays: {
        V: this.#V.slice(),
        U: this.#U.slice(),
        Uinvt: this.#Uinvt.slice(),
        Q: this.#Q.slice(),
        omega: this.#omega.slice(),
        wbar: this.#wbar.slice(),
      },
      scalars: {
        steps: this.#steps,
        rescales: this.#rescales,
        folds: this.#folds,
        stabilizations: this.#stabilizations,
        rebalances: this.#rebalances,
        condBudget: this.#condBudget,
        sigmaMax: this.#sigmaMax,
        sigmaMin: this.#sigmaMin,
        stabilizeEvery: this.stabilizeEvery,
        recomputeQEvery: this.recomputeQEvery,
        refreshAuto: this.#refreshAuto ? 1 : 0,
        examplesSinceRefresh: this.#examples,
        directSolveMinBatch: this.directSolveMinBatch,
        guardMargin: this.guardMargin,
        maxCond: this.maxCond,
        products32: this.products === "float32" ? 1 : 0,
      },
    });
  }

  /**
   * Appends n rows to W exactly: V_new = U⁻ᵀ(w − ω) with an exact inverse of U (O(d³) once per call),
   * Q += Σ w wᵀ, w̄ += Σ w; O(d²) per row. V grows with headroom (×1.5).
   */
  appendRows(rows: Float32Array): Promise<void> {
    try {
      const d = this.d, D = this.#D;
      const n = validateMatrix("rows", rows, -1, d);
      if (n === 0) return Promise.resolve();
      this.#settle();
      if (this.#Vbuf.length < (D + n) * d) {
        const grown = new Float32Array(Math.max((D + n) * d, Math.ceil(D * 1.5) * d));
        grown.set(this.#V);
        this.#Vbuf = grown;
      }
      const Ui = this.#dd, omega = this.#omega, Q = this.#Q, wbar = this.#wbar, usesSum = this.loss.usesSum;
      this.#mirrorsOk = false;
      reinvert(this.la, this.#U, Ui, d); // exact U⁻ᵀ
      const w = this.#tmp;
      for (let t = 0; t < n; t++) {
        for (let c = 0; c < d; c++) w[c] = rows[t * d + c] - omega[c];
        const out = (D + t) * d;
        for (let r = 0; r < d; r++) {
          let acc = 0;
          for (let c = 0; c < d; c++) acc += Ui[r * d + c] * w[c];
          this.#Vbuf[out + r] = acc;
        }
        for (let r = 0; r < d; r++) {
          const wr = rows[t * d + r];
          for (let c = 0; c < d; c++) Q[r * d + c] += wr * rows[t * d + c];
          if (usesSum) wbar[r] += wr;
        }
      }
      this.#D = D + n;
      this.#V = this.#Vbuf.subarray(0, this.#D * d);
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

/** S[j] += Acc[off + j], St[off + j] = S[j] rounded, Acc[off + j] = 0 for j < n. */
function settleBlock(S: Float64Array, St: Float32Array, Acc: Float32Array, off: number, n: number): void {
  for (let j = 0; j < n; j++) {
    const v = S[j] + Acc[off + j];
    S[j] = v;
    St[off + j] = v;
    Acc[off + j] = 0;
  }
}

function identity(d: number): Float64Array {
  const I = new Float64Array(d * d);
  for (let k = 0; k < d; k++) I[k * d + k] = 1;
  return I;
}
