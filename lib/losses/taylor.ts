/**
 * Second-order Taylor softmax (docs/losses.md): f(x) = 1 + x + x²/2 = ((1 + x)² + 1)/2 ≥ 1/2,
 * p_j = f(o_j) / Σ_k f(o_k) = f(o_j)/(D + s + q/2),
 * L = −Σ_c y_c log f(o_c) + Y log(D + s + q/2) with Y = Σ_c y_c.
 * ẏ_c = −y_c (1 + o_c)/f(o_c), g_q = Y/(2N), g_s = Y/N with N = D + s + q/2.
 *
 * @module
 */

import type { LossOptions } from "../core/types.ts";
import type { LossScalars, SphericalFamilyLoss } from "./loss.ts";
import { resolveLossOptions } from "./options.ts";

/** f(x) = 1 + x + x²/2, written as ((1+x)² + 1)/2 so it is visibly ≥ 1/2. */
function taylorF(x: number): number {
  const u = 1 + x;
  return 0.5 * (u * u + 1);
}

/**
 * Taylor softmax. It has no hyperparameters and uses s, so the factored layer keeps ω and w̄.
 *
 * @example
 * ```ts
 * import { TaylorLoss } from "./taylor.ts";
 * const loss = new TaylorLoss();
 * const dy = new Float64Array(1), g = { gq: 0, gs: 0 };
 * const L = loss.fromStats(Float64Array.of(0.5), Float64Array.of(1), 1, 2.0, 1.0, 1000, dy, g);
 * ```
 */
export class TaylorLoss implements SphericalFamilyLoss {
  /** Always "taylor". */
  readonly name = "taylor" as const;
  /** Hyperparameters (none used; all filled for uniformity). */
  readonly options: Required<LossOptions>;
  /** Taylor softmax depends on s = Σ_j o_j. */
  readonly usesSum = true;
  readonly weightsNonNegative = true;

  /**
   * Creates the loss; it has no hyperparameter of its own, but `options` is still validated.
   * @param options loss options (see {@link LossOptions})
   */
  constructor(options: LossOptions = {}) {
    this.options = resolveLossOptions(options);
  }

  /**
   * From (o_c, y_c, q, s, D); allocates nothing. N = D + s + q/2 = Σ_j f(o_j) ≥ D/2 exactly; statistics
   * from a drifted float32 state are clamped to that bound so the log stays finite.
   */
  fromStats(
    o: Float64Array,
    y: Float64Array,
    K: number,
    q: number,
    s: number,
    D: number,
    dy: Float64Array,
    out: LossScalars,
  ): number {
    const N = Math.max(D + s + 0.5 * q, 0.5 * D);
    let L = 0, Y = 0;
    for (let k = 0; k < K; k++) {
      const yk = y[k], ok = o[k];
      const f = taylorF(ok);
      Y += yk;
      if (yk !== 0) L -= yk * Math.log(f);
      dy[k] = (-yk * (1 + ok)) / f;
    }
    L += Y * Math.log(N);
    out.gq = Y / (2 * N);
    out.gs = Y / N;
    return L;
  }

  /** p_j = f(o_j)/Σ_k f(o_k) over all D, L = −Σ_c y_c log p_c, and ∂L/∂o_j directly. */
  dense(
    o: Float32Array | Float64Array,
    idx: Int32Array,
    y: Float64Array,
    K: number,
    dOut: Float64Array,
  ): number {
    const D = o.length;
    let N = 0;
    for (let j = 0; j < D; j++) N += taylorF(o[j]);
    let L = 0, Y = 0;
    for (let k = 0; k < K; k++) {
      const p = taylorF(o[idx[k]]) / N;
      if (y[k] !== 0) L -= y[k] * Math.log(p);
      Y += y[k];
    }
    // ∂/∂o_j [−Σ_c y_c log f(o_c) + Y log N] = −y_j f'(o_j)/f(o_j) + Y f'(o_j)/N, f'(x) = 1 + x
    for (let j = 0; j < D; j++) dOut[j] = (Y * (1 + o[j])) / N;
    for (let k = 0; k < K; k++) {
      const c = idx[k];
      dOut[c] -= (y[k] * (1 + o[c])) / taylorF(o[c]);
    }
    return L;
  }

  /** p_j = f(o_j)/(D + s + q/2). */
  probability(oj: number, q: number, s: number, D: number): number {
    return taylorF(oj) / Math.max(D + s + 0.5 * q, 0.5 * D);
  }
}
