/**
 * The contract of a loss of the spherical family (docs/losses.md): it sees an example only through
 * the outputs at its targets o_c, their weights y_c, q = ‖o‖², s = Σ_j o_j and D, and returns the loss,
 * ẏ_c = ∂L/∂o_c, g_q = ∂L/∂q and g_s = ∂L/∂s. Losses know nothing of backends or layers.
 *
 * Targets passed to a loss are unique within the example (the layer merges repeated indices by summing
 * their weights first).
 *
 * @module
 */

import type { LossName, LossOptions } from "../core/types.ts";

/**
 * The scalar gradients a loss returns besides ẏ.
 *
 * @example
 * ```ts
 * import type { LossScalars } from "./loss.ts";
 * const g: LossScalars = { gq: 0, gs: 0 };
 * ```
 */
export type LossScalars = { gq: number; gs: number };

/**
 * A loss of the spherical family. All arithmetic inside is float64.
 *
 * @example
 * ```ts
 * import { createLoss } from "./mod.ts";
 * const loss = createLoss("spherical");
 * const dy = new Float64Array(1), g = { gq: 0, gs: 0 };
 * const L = loss.fromStats(Float64Array.of(0.5), Float64Array.of(1), 1, 2.0, 0, 1000, dy, g);
 * ```
 */
export interface SphericalFamilyLoss {
  /** The loss's name. */
  readonly name: LossName;
  /** Its hyperparameters, defaults filled in. */
  readonly options: Required<LossOptions>;
  /** True when the loss depends on s = Σ_j o_j (the factored layer then keeps ω and w̄). */
  readonly usesSum: boolean;
  /**
   * True when the target values are weights of a log-likelihood (spherical, taylor, zloss): a negative
   * weight makes the loss unbounded below, and the layers refuse it (RangeError). False for squared,
   * which fits target values of either sign.
   */
  readonly weightsNonNegative: boolean;
  /**
   * One example from its statistics. o[k], y[k] for k < K: output and weight of target k (unique
   * indices). Writes ∂L/∂o at target k into dy[k], g_q and g_s into `out`; returns L.
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
  ): number;
  /**
   * The textbook computation over the whole dense output o (length D) with the targets (idx[k], y[k]),
   * k < K, unique: returns L and writes the dense ∇o into dOut (length D). Used by the naive layer and
   * by tests as the independent reference.
   */
  dense(
    o: Float32Array | Float64Array,
    idx: Int32Array,
    y: Float64Array,
    K: number,
    dOut: Float64Array,
  ): number;
  /**
   * The model's probability of output j (for squared error: the score o_j itself) from o_j, q, s and D.
   */
  probability(oj: number, q: number, s: number, D: number): number;
}
