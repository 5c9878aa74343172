/**
 * The state of the factored output layer W = V U + 𝟙ωᵀ (docs/factored-step.md "The state"), its options and
 * tuning constants, and the scratch both step paths share. The layer (layer.ts) owns one
 * {@link FactoredState}; the float64 step (step64.ts), the float32 step (step32.ts), the upkeep (upkeep.ts) and the
 * queries (queries.ts) are functions on it.
 *
 * Precision:
 * - V: D×d **float32** (the only O(D) array; row-major, one contiguous row per output; capacity headroom
 *   for appendRows).
 * - U, U⁻ᵀ, Q = WᵀW: d×d **float64**; ω, w̄: d **float64** (zero and untouched unless the loss uses s).
 *   They are O(d²): float64 costs nothing measurable and keeps the iterated Woodbury and Q updates from
 *   accumulating float32 rounding.
 * - With float32 products (step32.ts), float32 mirrors [U; Q; U⁻ᵀ] feed sgemm and a float32 accumulator
 *   collects the increments, added to the float64 state by {@link FactoredState.settle}.
 *
 * @module
 */

import { validateCount } from "../validate.ts";
import type { LinAlgBackend } from "../../linalg/backend.ts";
import type { SphericalFamilyLoss } from "../../losses/loss.ts";
import { GUARD_MARGIN, GuardScratch } from "../guard.ts";
import { MergedTargets, RowSlots, SharedRowMarks } from "../../core/csr.ts";
import { ChunkScratch } from "./passes.ts";
import { FoldScratch, RebalanceScratch } from "./upkeep.ts";
import { isPooled, type PooledBackend } from "../../linalg/pool.ts";
import { SAXPY_MIN_WIDTH } from "../../linalg/blas.ts";
import { ARG_COUNT, createKernel, STEP_KERNEL_URL, type StepKernelInit } from "./step_kernel.ts";

/**
 * Tuning of a {@link FactoredOutputLayer}.
 *
 * @example
 * ```ts
 * import type { FactoredOptions } from "./state.ts";
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
   * Cholesky (the measurement: docs/factored-step.md, "Tuning constants").
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
export const MAX_RESCALES = 8;
/**
 * Default trigger of a rebalance or fold: cond(U) > 64. A pass over V is the dominant stabilisation cost
 * at large D; a higher trigger makes fewer passes and the drift stays far below the tests' bound
 * (measurements: docs/factored-step.md, "Tuning constants").
 */
export const DEFAULT_MAX_COND = 64;
/**
 * Rank-1 rebalancing is used up to this d (8 rescales fix a useful share of the directions); above it a
 * stabilisation that finds cond(U) > maxCond folds U into V instead (one O(Dd²) sgemm pass, cond → 1),
 * which makes fewer passes over V there (docs/factored-step.md, "Tuning constants").
 */
export const REBALANCE_MAX_D = 64;
/**
 * Default precision of the per-step products: float32 on blas from this d up, where it is faster than
 * float64 with the drift well inside the tests' bound (docs/factored-step.md, "Tuning constants").
 */
export const F32_PRODUCTS_MIN_D = 64;
/**
 * The float32 Woodbury step uses a Cholesky factorisation (dpotrf + two strsm, faster than an LU inverse)
 * when every g_q exceeds this; otherwise an LU inverse of N = I − 2η G S.
 */
export const CHOLESKY_MIN_G = 1e-30;
/**
 * Relative tolerance of the power iterations at a stabilisation for d > REBALANCE_MAX_D, where σ_max,
 * σ_min only feed coarse decisions (cond(U) against maxCond, the scale against [2⁻⁸, 2⁸], the
 * float32-products switch): 1e-4 takes fewer iterations than 1e-7 with estimates close enough for them.
 * The rank-1 rebalance (d ≤ REBALANCE_MAX_D) and diagnostics() keep 1e-7.
 */
export const SIGMA_TOL_LARGE_D = 1e-4;
/**
 * With the default `recomputeQEvery`, a refresh (two O(Dd²) float64 passes over V) waits until this many
 * examples per output row have passed since the last one, so that its amortised cost stays a few % of
 * the step at any D and m (docs/factored-step.md, "Tuning constants").
 */
export const REFRESH_MIN_EXAMPLES_PER_OUTPUT = 8;
/**
 * On the float32-products path, the float32 increments of U, U⁻ᵀ and Q are added to the float32 mirrors
 * and to a float32 accumulator by saxpy each step, and the accumulator is added to the float64 state
 * (which re-rounds the mirrors) every this many steps, or sooner before an update of the float64 state
 * (the upkeep, a float64 step, appendRows); readers and exportState add it to copies instead. The
 * mirrors thus carry the rounding of at most this many float32 additions; the float64 state none. (A JS
 * loop over the d×d state every step cost a sixth of the step.)
 */
export const SETTLE_EVERY = 16;
/**
 * Default stabilisation period with float32 products (d ≥ 64 on blas), where a stabilisation (float64
 * Newton re-inversion, two d³ dgemm, and the power iterations) costs about two steps at m = 128, and the
 * inverse error before it hardly grows from 50 to 200 steps (docs/factored-step.md, "Tuning constants").
 */
export const STABILIZE_EVERY_F32 = 100;
/** After a rebalance, U is folded into V when cond(U) still exceeds FOLD_FACTOR·maxCond. */
export const FOLD_FACTOR = 4;
/** U's scale √(σ_max σ_min) is recentred when it leaves [1/SCALE_LIMIT, SCALE_LIMIT]. */
export const SCALE_LIMIT = 256;

/**
 * Everything a factored layer holds: the state proper (V, U, U⁻ᵀ, Q, ω, w̄ and the counters), the
 * resolved options, and scratch that grows with m and nnz. Fields are public to the factored/ modules;
 * users see {@link FactoredOutputLayer} only.
 *
 * @example
 * ```ts
 * import { FactoredState } from "./state.ts";
 * import { createJsBackend } from "../../linalg/js.ts";
 * import { createLoss } from "../../losses/mod.ts";
 * const st = new FactoredState(10, 4, createLoss("squared"), createJsBackend(), {});
 * console.log(st.products, st.U[0]); // "float64" 1
 * ```
 */
export class FactoredState {
  // the resolved options, documented on FactoredOutputLayer (which exposes them)
  readonly d: number;
  readonly loss: SphericalFamilyLoss;
  readonly la: LinAlgBackend;
  readonly stabilizeEvery: number; // 0 = off
  readonly recomputeQEvery: number; // 0 = off
  readonly directSolveMinBatch: number;
  readonly guardMargin: number;
  readonly maxCond: number;
  readonly products: "float32" | "float64";

  D: number;
  Vbuf: Float32Array;
  V: Float32Array;
  U: Float64Array;
  Uinvt: Float64Array;
  Q: Float64Array;
  omega: Float64Array; // zeros unless loss.usesSum
  wbar: Float64Array; // zeros unless loss.usesSum
  steps = 0;
  examples = 0; // since the last refresh
  steps32 = 0; // steps taken with float32 products (not exported: a statistic of this process)
  refreshAuto: boolean;
  rescales = 0;
  folds = 0;
  stabilizations = 0;
  rebalances = 0;
  condBudget = 0;
  sigmaMax = 1;
  sigmaMin = 1;

  // scratch (grows with m and nnz)
  mCap = 0;
  nCap = 0;
  H64 = new Float64Array(0);
  Hhat = new Float64Array(0);
  QH = new Float64Array(0);
  A = new Float64Array(0);
  B = new Float64Array(0);
  G64 = new Float64Array(0); // ∇H in float64
  Z = new Float64Array(0);
  X = new Float64Array(0);
  GH = new Float64Array(0);
  MH = new Float64Array(0);
  S = new Float64Array(0);
  N: Float64Array = new Float64Array(0);
  M = new Float64Array(0);
  QHH = new Float64Array(0);
  BH = new Float64Array(0);
  q: Float64Array = new Float64Array(0);
  s: Float64Array = new Float64Array(0);
  g: Float64Array = new Float64Array(0);
  gs: Float64Array = new Float64Array(0);
  sumdy: Float64Array = new Float64Array(0);
  sumTerms = new Float64Array(0); // c_i = 𝟙·ẏ_i + 2 g_i s_i (scalars.ts completeM)
  hw: Float64Array = new Float64Array(0);
  sg: Float64Array = new Float64Array(0); // √g_i (float32 Cholesky path)
  zs = new Float64Array(0); // scale of the rows of Zn as stored in P32 (float32 path)
  rows = new Float32Array(0); // gathered V rows, nnz×d
  delta = new Float32Array(0); // V update rows, nnz×d
  coef: Float64Array = new Float64Array(0); // per-entry V update coefficients −η ẏ zs (float32 path)
  o: Float64Array = new Float64Array(0);
  dy: Float64Array = new Float64Array(0);
  perm = new Int32Array(0);
  head = new Int32Array(0); // per row slot (scalars.ts addYdotY)
  rowSlot = new Int32Array(0); // each entry's row slot
  rowSlots = new RowSlots();
  kO = new Float64Array(0);
  kY = new Float64Array(0);
  kDy = new Float64Array(0);
  scal = { gq: 0, gs: 0 };
  merged = new MergedTargets();
  guard = new GuardScratch();
  chunk: ChunkScratch;
  rebal: RebalanceScratch;
  foldScratch: FoldScratch;
  u: Float64Array;
  // float32-products path: mirrors [U; Q; U⁻ᵀ] (3d×d, rounded from the float64 state, rewritten by the
  // same loops that update the state) and float32 scratch
  St32: Float32Array;
  mirrorsOk = false;
  P32: Float32Array = new Float32Array(0); // m×4d: rows [Zn_i | ĥ_i | (Qh)_i | Z_i]
  A32: Float32Array = new Float32Array(0); // m×d
  B32: Float32Array = new Float32Array(0); // m×d
  EX32: Float32Array = new Float32Array(0); // 2m×d: rows X'_i = B_i + g_i (Qh)_i, then h_i
  ES32: Float32Array = new Float32Array(0); // 2m×m: E' = X' Hᵀ, then S = H Hᵀ
  GH32: Float32Array = new Float32Array(0); // m×d
  R32: Float32Array = new Float32Array(0); // m×d
  Mi32: Float32Array = new Float32Array(0); // m×m (N⁻¹, then M)
  T32: Float32Array; // 2d×d (3d×d with the step kernel: the Q increment in the third block)
  // float32 increments of [U; Q; U⁻ᵀ] (layout of St32) not yet added to the float64 state, and how many
  // steps they hold: see settle
  Acc32: Float32Array;
  /** St32 and Acc32 as the two halves of one buffer (one saxpy call updates both). */
  StAcc32: Float32Array;
  pending = 0;
  settledBuf = new Float64Array(0); // settledView's copies of [U; Q; U⁻ᵀ] while increments are pending
  // the d×d blocks of St32 and Acc32 (views made once)
  views: {
    stU: Float32Array;
    stQ: Float32Array;
    stUinvt: Float32Array;
    accU: Float32Array;
    accQ: Float32Array;
    accUinvt: Float32Array;
  };
  // the float32 increments' targets as rows of d² in StAcc32 = [St32 (U, Q, U⁻ᵀ); Acc32 (U, Q, U⁻ᵀ)]:
  // T rows [ΔU⁻ᵀ, ΔU] go to U⁻ᵀ, U of both halves, T row ΔQ to Q of both
  axpyAlpha = new Float64Array(4);
  axpyX = Int32Array.of(0, 1, 0, 1);
  axpyY = Int32Array.of(2, 0, 5, 3);
  axpyQX = Int32Array.of(0, 0);
  axpyQ = Int32Array.of(1, 4);
  H32: Float32Array | null = null; // the batch copied to shared memory (when the backend splits calls)
  // with a pooled backend: the step kernel (step_kernel.ts) and what it reads beyond the scratch above
  // (the merged targets copied to shared memory, the per-example losses and divergence marks, ∇H)
  pool: PooledBackend | null = null;
  kernel = -1;
  kernelIds = new Float64Array(ARG_COUNT); // the kernel's buffer ids, for the arrays in kernelKey
  kernelKey: (ArrayBufferView | ArrayBufferLike | null)[] = [null, null, null, null, null];
  offS: Int32Array = new Int32Array(0);
  idxS: Int32Array = new Int32Array(0);
  exS: Int32Array = new Int32Array(0);
  wS: Float64Array = new Float64Array(0);
  // UPD_TAIL: 1 where an entry's row is also named by another range of examples (csr.ts SharedRowMarks),
  // the ranges' entry offsets, the marks' table; the tail's count and its part 0's mark (step_kernel.ts)
  sharedS: Int32Array = new Int32Array(0);
  tailBounds: Int32Array = new Int32Array(0);
  sharedRows = new SharedRowMarks();
  tails = 0;
  // the step kernel's marks on shared memory: [0] the update's tail (UPD_TAIL's part 1 waits for part 0's
  // block), [1] the next block of UPD_ROWS' rows
  stepMarks: Int32Array = new Int32Array(0);
  /** forward32 left ∇H's copy out of shared memory (G32 → gradH) to update32 (its `lateGrad`) */
  gradLate = false;
  sigmaS: Float64Array = new Float64Array(0); // UPKEEP_SIGMA's [U | U⁻ᵀ | σ, σ | cap, tol] on the pool

  lossS: Float64Array = new Float64Array(0);
  badS: Int32Array = new Int32Array(0);
  G32: Float32Array = new Float32Array(0);
  Mh32: Float32Array = new Float32Array(0); // M in float32 for M·H (beside Mi32, which holds the Cholesky factor)
  gradH = new Float32Array(0); // the last forward's ∇H (the array returned to the caller)
  tmp: Float64Array;
  dd: Float64Array;
  scratch2: Float64Array | null = null;

  /**
   * A state with V = 0, U = U⁻ᵀ = I, Q = 0, ω = w̄ = 0 and the options resolved.
   *
   * @param D outputs
   * @param d input dimension
   * @param loss the loss
   * @param la backend
   * @param opts tuning
   */
  constructor(D: number, d: number, loss: SphericalFamilyLoss, la: LinAlgBackend, opts: FactoredOptions) {
    this.D = D;
    this.d = d;
    this.loss = loss;
    this.la = la;
    const products = opts.products ?? (la.name === "blas" && d >= F32_PRODUCTS_MIN_D ? "float32" : "float64");
    if (products !== "float32" && products !== "float64") {
      throw new RangeError(`products must be "float32" or "float64", got ${JSON.stringify(products)}`);
    }
    this.products = products;
    if (isPooled(la) && products === "float32" && d >= SAXPY_MIN_WIDTH) {
      // the per-example work of the float32 forward on every thread (the kernel's cblas_sdot and
      // cblas_saxpy per row are the blas backend's dotRows and axpyRows from SAXPY_MIN_WIDTH on)
      this.pool = la;
      const init: StepKernelInit = { loss: loss.name, options: loss.options, D, d };
      this.kernel = la.registerKernel(STEP_KERNEL_URL, init, createKernel(init));
      this.stepMarks = la.sharedI32(2);
    }
    this.stabilizeEvery = validateCount(
      "stabilizeEvery",
      opts.stabilizeEvery ?? (products === "float32" ? STABILIZE_EVERY_F32 : 50),
    );
    this.recomputeQEvery = validateCount("recomputeQEvery", opts.recomputeQEvery ?? 5000);
    this.refreshAuto = opts.recomputeQEvery === undefined;
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
    // on the backend's shared memory when it splits calls: the gathers and scatters of target rows are
    // split across its threads too (lib/linalg/pool.ts dotRows, axpyRows)
    this.Vbuf = this.f32(D * d);
    this.V = this.Vbuf.subarray(0, D * d);
    this.U = identity(d);
    this.Uinvt = identity(d);
    this.Q = new Float64Array(d * d);
    this.omega = this.f64(d);
    this.wbar = this.f64(d);
    this.chunk = new ChunkScratch(d, la);
    this.rebal = new RebalanceScratch(d, MAX_RESCALES);
    this.foldScratch = new FoldScratch(d);
    this.u = new Float64Array(d);
    const f32 = products === "float32";
    this.StAcc32 = this.f32(f32 ? 6 * d * d : 0);
    this.St32 = this.StAcc32.subarray(0, f32 ? 3 * d * d : 0);
    this.T32 = this.f32(f32 ? (this.pool ? 3 : 2) * d * d : 0);
    this.Acc32 = this.StAcc32.subarray(f32 ? 3 * d * d : 0);
    const dd = f32 ? d * d : 0, St = this.St32, Acc = this.Acc32;
    this.views = {
      stU: St.subarray(0, dd),
      stQ: St.subarray(dd, 2 * dd),
      stUinvt: St.subarray(2 * dd, 3 * dd),
      accU: Acc.subarray(0, dd),
      accQ: Acc.subarray(dd, 2 * dd),
      accUinvt: Acc.subarray(2 * dd, 3 * dd),
    };
    this.tmp = new Float64Array(d);
    this.dd = new Float64Array(d * d);
  }

  /** A float32 array the backend can split calls on (its shared memory when it has some). */
  f32(n: number): Float32Array {
    return this.la.sharedF32 ? this.la.sharedF32(n) : new Float32Array(n);
  }

  /** A float64 array the step kernel can read (on the pool's shared memory when the kernel runs). */
  f64(n: number): Float64Array {
    return this.pool ? this.pool.sharedF64(n) : new Float64Array(n);
  }

  /**
   * The batch as the float32 products read it: H itself, or its copy in shared memory when the backend
   * splits calls across threads and H is not on that memory already (the numbers are the same).
   *
   * @param H m×d
   * @param m examples
   * @returns H or its shared copy
   */
  batch32(H: Float32Array, m: number): Float32Array {
    const S = this.H32;
    // (the model's batch is on the pool's memory when its bag runs there: read in place)
    if (!S || (isPooled(this.la) && this.la.sharedId(H) >= 0)) return H;
    const v = S.subarray(0, m * this.d);
    v.set(H.subarray(0, m * this.d));
    return v;
  }

  /**
   * float32 products for this step: when asked for, and only while U is known to be well conditioned
   * (their rounding scales with cond(U)): the last stabilisation found cond(U) ≤ maxCond and the steps
   * since have multiplied it by at most 2 or brought it to at most maxCond ({@link condBound}).
   */
  use32(): boolean {
    return this.products === "float32" && this.sigmaMax <= this.maxCond * this.sigmaMin &&
      this.condBudget <= this.condBound();
  }

  /**
   * How far the steps' bound on cond(U)'s growth (`condBudget`, scalars.ts addCondBudget) may go before
   * U is stabilised: log(maxCond / cond(U) at the last stabilisation), at least log 2, so that a cond(U)
   * near maxCond is not stabilised at every step.
   */
  condBound(): number {
    return Math.max(Math.LN2, Math.log(this.maxCond * this.sigmaMin / this.sigmaMax));
  }

  /**
   * Grows the scratch for batches of m examples with n target entries.
   *
   * @param m examples
   * @param n target entries
   */
  ensure(m: number, n: number): void {
    const d = this.d;
    if (m > this.mCap) {
      this.mCap = m;
      const md = m * d, mm = m * m;
      if (this.products === "float32") {
        this.P32 = this.f32(4 * md);
        this.A32 = this.f32(md);
        this.B32 = this.f32(md);
        this.EX32 = this.f32(2 * md);
        this.ES32 = this.f32(2 * mm);
        this.GH32 = this.f32(md);
        this.R32 = this.f32(md);
        this.Mi32 = this.f32(mm);
        if (this.la.sharedF32) this.H32 = this.f32(md);
      }
      this.H64 = new Float64Array(md);
      this.Hhat = new Float64Array(md);
      this.QH = new Float64Array(md);
      this.A = new Float64Array(md);
      this.B = new Float64Array(md);
      this.G64 = new Float64Array(md);
      this.Z = new Float64Array(md);
      this.X = new Float64Array(md);
      this.GH = new Float64Array(md);
      this.MH = new Float64Array(md);
      this.S = new Float64Array(mm);
      this.N = new Float64Array(mm);
      this.M = new Float64Array(mm);
      this.QHH = new Float64Array(mm);
      this.BH = new Float64Array(mm);
      this.q = this.f64(m);
      this.s = this.f64(m);
      this.g = this.f64(m);
      this.gs = this.f64(m);
      this.sumdy = this.f64(m);
      this.hw = this.f64(m);
      if (this.pool) {
        this.offS = this.pool.sharedI32(m + 1);
        this.lossS = this.pool.sharedF64(m);
        this.badS = this.pool.sharedI32(m);
        this.G32 = this.pool.sharedF32(md);
        this.Mh32 = this.pool.sharedF32(mm);
      }
      this.zs = new Float64Array(m);
      this.sumTerms = new Float64Array(m);
      this.sg = this.f64(m);
    }
    if (n > this.nCap) {
      this.nCap = n;
      this.rows = new Float32Array(n * d);
      this.delta = new Float32Array(n * d);
      this.o = this.f64(n);
      this.coef = this.f64(n);
      this.dy = this.f64(n);
      if (this.pool) {
        this.idxS = this.pool.sharedI32(n);
        this.exS = this.pool.sharedI32(n);
        this.wS = this.pool.sharedF64(n);
        this.sharedS = this.pool.sharedI32(n);
      }
      this.perm = new Int32Array(n);
      this.head = new Int32Array(n);
      this.rowSlot = new Int32Array(n);
      this.kO = new Float64Array(n);
      this.kY = new Float64Array(n);
      this.kDy = new Float64Array(n);
    }
  }

  /**
   * Adds the pending float32 increments (Acc32) to the float64 state [U; Q; U⁻ᵀ], rewrites the mirrors
   * rounded from the result and clears the accumulator. Every update of the float64 state calls it first;
   * a reader that changes nothing uses {@link settledView} instead.
   */
  settle(): void {
    if (this.pending === 0) return;
    this.pending = 0;
    const dd = this.d * this.d;
    settleBlock(this.U, this.St32, this.Acc32, 0, dd);
    settleBlock(this.Q, this.St32, this.Acc32, dd, dd);
    settleBlock(this.Uinvt, this.St32, this.Acc32, 2 * dd, dd);
  }

  /**
   * [U, Q, U⁻ᵀ] as {@link settle} would leave them (the same sums, bit for bit), without changing the
   * state: a reader (weights, queries, diagnostics, exportState) at any moment leaves the rounding of later
   * steps where it was, so a run with an extra checkpoint gives the same bits. The state's own arrays while
   * nothing is pending, else scratch copies valid until the next call.
   */
  settledView(): { U: Float64Array; Q: Float64Array; Uinvt: Float64Array } {
    if (this.pending === 0) return { U: this.U, Q: this.Q, Uinvt: this.Uinvt };
    const dd = this.d * this.d;
    if (this.settledBuf.length !== 3 * dd) this.settledBuf = new Float64Array(3 * dd);
    const B = this.settledBuf, Acc = this.Acc32, U = this.U, Q = this.Q, Ui = this.Uinvt;
    for (let j = 0; j < dd; j++) {
      B[j] = U[j] + Acc[j];
      B[dd + j] = Q[j] + Acc[dd + j];
      B[2 * dd + j] = Ui[j] + Acc[2 * dd + j];
    }
    return { U: B.subarray(0, dd), Q: B.subarray(dd, 2 * dd), Uinvt: B.subarray(2 * dd) };
  }

  /** The float32 mirrors [U; Q; U⁻ᵀ] rounded from the float64 state. */
  refreshMirrors(): void {
    this.settle();
    const n = this.d * this.d, St = this.St32, U = this.U, Q = this.Q, Ui = this.Uinvt;
    for (let j = 0; j < n; j++) {
      St[j] = U[j];
      St[n + j] = Q[j];
      St[2 * n + j] = Ui[j];
    }
    this.mirrorsOk = true;
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
