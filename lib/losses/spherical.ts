/**
 * Spherical softmax (docs/losses.md): p_j = (o_j² + ε) / Σ_k (o_k² + ε) = (o_j² + ε)/(q + Dε),
 * L = −Σ_c y_c log(o_c² + ε) + Y log(q + Dε) with Y = Σ_c y_c.
 * ẏ_c = −2 y_c o_c/(o_c² + ε), g_q = Y/(q + Dε), g_s = 0.
 *
 * @module
 */

import type { LossOptions } from "../core/types.ts";
import type { LossScalars, SphericalFamilyLoss } from "./loss.ts";
import { resolveLossOptions } from "./options.ts";

/**
 * Spherical softmax with floor ε (`options.epsilon`, default 1e-3; see docs/losses.md).
 *
 * @example
 * ```ts
 * import { SphericalLoss } from "./spherical.ts";
 * const loss = new SphericalLoss({ epsilon: 1e-3 });
 * const dy = new Float64Array(1), g = { gq: 0, gs: 0 };
 * const L = loss.fromStats(Float64Array.of(0.5), Float64Array.of(1), 1, 2.0, 0, 1000, dy, g);
 * ```
 */
export class SphericalLoss implements SphericalFamilyLoss {
  /** Always "spherical". */
  readonly name = "spherical" as const;
  /** Hyperparameters; `epsilon` is used. */
  readonly options: Required<LossOptions>;
  /** Spherical softmax does not depend on s. */
  readonly usesSum = false;
  readonly weightsNonNegative = true;
  readonly #eps: number;

  /**
   * Creates the loss.
   * @param options `epsilon` > 0 (RangeError otherwise); defaults in LOSS_DEFAULTS
   */
  constructor(options: LossOptions = {}) {
    this.options = resolveLossOptions(options);
    this.#eps = this.options.epsilon;
  }

  /** From (o_c, y_c, q, D); allocates nothing. */
  fromStats(
    o: Float64Array,
    y: Float64Array,
    K: number,
    q: number,
    _s: number,
    D: number,
    dy: Float64Array,
    out: LossScalars,
  ): number {
    const eps = this.#eps;
    // q ≥ Σ_c o_c² ≥ 0 in exact arithmetic; a float32 state can leave it slightly negative.
    const N = Math.max(q, 0) + D * eps;
    let L = 0, Y = 0;
    for (let k = 0; k < K; k++) {
      const yk = y[k], ok = o[k];
      const f = ok * ok + eps;
      Y += yk;
      if (yk !== 0) L -= yk * Math.log(f);
      dy[k] = (-2 * yk * ok) / f;
    }
    L += Y * Math.log(N);
    out.gq = Y / N;
    out.gs = 0;
    return L;
  }

  /** p_j = (o_j²+ε)/Σ_k(o_k²+ε) over all D, L = −Σ_c y_c log p_c, and ∂L/∂o_j directly. */
  dense(
    o: Float32Array | Float64Array,
    idx: Int32Array,
    y: Float64Array,
    K: number,
    dOut: Float64Array,
  ): number {
    const eps = this.#eps, D = o.length;
    let N = 0;
    for (let j = 0; j < D; j++) N += o[j] * o[j] + eps;
    let L = 0, Y = 0;
    for (let k = 0; k < K; k++) {
      const c = idx[k];
      const p = (o[c] * o[c] + eps) / N;
      if (y[k] !== 0) L -= y[k] * Math.log(p);
      Y += y[k];
    }
    // ∂/∂o_j [−Σ_c y_c log(o_c²+ε) + Y log N] = −y_j·2o_j/(o_j²+ε) + Y·2o_j/N
    for (let j = 0; j < D; j++) dOut[j] = (2 * Y * o[j]) / N;
    for (let k = 0; k < K; k++) {
      const c = idx[k];
      dOut[c] -= (2 * y[k] * o[c]) / (o[c] * o[c] + eps);
    }
    return L;
  }

  /** p_j = (o_j² + ε)/(q + Dε). */
  probability(oj: number, q: number, _s: number, D: number): number {
    const eps = this.#eps;
    return (oj * oj + eps) / (Math.max(q, 0) + D * eps);
  }
}
