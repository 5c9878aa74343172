/**
 * Squared error ‖o − y‖² over all D outputs (docs/losses.md):
 * L = q − 2 Σ_c y_c o_c + Σ_c y_c², ẏ_c = −2 y_c, g_q = 1, g_s = 0. Its "probability" is the score o_j.
 *
 * @module
 */

import type { LossOptions } from "../core/types.ts";
import type { LossScalars, SphericalFamilyLoss } from "./loss.ts";
import { resolveLossOptions } from "./options.ts";

/**
 * Squared error. `dense()` is the textbook Σ_j (o_j − y_j)² with ∇o = 2(o − y).
 *
 * @example
 * ```ts
 * import { SquaredLoss } from "./squared.ts";
 * const loss = new SquaredLoss();
 * const dy = new Float64Array(1), g = { gq: 0, gs: 0 };
 * const L = loss.fromStats(Float64Array.of(0.5), Float64Array.of(1), 1, 0.5, 0.5, 3, dy, g); // 0.25
 * ```
 */
export class SquaredLoss implements SphericalFamilyLoss {
  /** Always "squared". */
  readonly name = "squared" as const;
  /** Hyperparameters (none used; all filled for uniformity). */
  readonly options: Required<LossOptions>;
  /** Squared error does not depend on s. */
  readonly usesSum = false;
  readonly weightsNonNegative = false;

  /**
   * Creates the loss; it has no hyperparameter of its own, but `options` is still validated.
   * @param options loss options (see {@link LossOptions})
   */
  constructor(options: LossOptions = {}) {
    this.options = resolveLossOptions(options);
  }

  /** L = q − 2Σ y_c o_c + Σ y_c²; ẏ_c = −2y_c, g_q = 1, g_s = 0. Allocates nothing. */
  fromStats(
    o: Float64Array,
    y: Float64Array,
    K: number,
    q: number,
    _s: number,
    _D: number,
    dy: Float64Array,
    out: LossScalars,
  ): number {
    let L = q;
    for (let k = 0; k < K; k++) {
      const yk = y[k];
      L += yk * (yk - 2 * o[k]);
      dy[k] = -2 * yk;
    }
    out.gq = 1;
    out.gs = 0;
    return L;
  }

  /** Σ_j (o_j − y_j)², dOut = 2(o − y), over all D. */
  dense(
    o: Float32Array | Float64Array,
    idx: Int32Array,
    y: Float64Array,
    K: number,
    dOut: Float64Array,
  ): number {
    const D = o.length;
    for (let j = 0; j < D; j++) dOut[j] = o[j];
    for (let k = 0; k < K; k++) dOut[idx[k]] -= y[k];
    let L = 0;
    for (let j = 0; j < D; j++) {
      const r = dOut[j];
      L += r * r;
      dOut[j] = 2 * r;
    }
    return L;
  }

  /** The score o_j itself (squared error defines no distribution). */
  probability(oj: number, _q: number, _s: number, _D: number): number {
    return oj;
  }
}
