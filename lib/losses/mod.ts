/**
 * The spherical loss family (docs/losses.md): squared error, spherical softmax, Taylor softmax and the
 * Z-loss, each computing an example's loss and gradients from (o_c, y_c, q, s, D) in O(K), with a dense
 * textbook reference over all D outputs. See docs/losses.md.
 *
 * @example
 * ```ts
 * import { createLoss } from "./mod.ts";
 * const loss = createLoss("taylor");
 * const dy = new Float64Array(1), g = { gq: 0, gs: 0 };
 * const L = loss.fromStats(Float64Array.of(0.5), Float64Array.of(1), 1, 2.0, 1.0, 1000, dy, g);
 * ```
 *
 * @module
 */

import type { LossName, LossOptions } from "../core/types.ts";
import type { SphericalFamilyLoss } from "./loss.ts";
import { SquaredLoss } from "./squared.ts";
import { SphericalLoss } from "./spherical.ts";
import { TaylorLoss } from "./taylor.ts";
import { ZLoss } from "./zloss.ts";

export type { LossScalars, SphericalFamilyLoss } from "./loss.ts";
export type { LossName, LossOptions } from "../core/types.ts";
export { LOSS_DEFAULTS, resolveLossOptions } from "./options.ts";
export { SquaredLoss } from "./squared.ts";
export { SphericalLoss } from "./spherical.ts";
export { TaylorLoss } from "./taylor.ts";
export { ZLoss, ZLOSS_RELATIVE_VARIANCE_FLOOR } from "./zloss.ts";

/**
 * The names {@link createLoss} accepts.
 *
 * @example
 * ```ts
 * import { LOSS_NAMES } from "./mod.ts";
 * for (const name of LOSS_NAMES) console.log(name);
 * ```
 */
export const LOSS_NAMES: readonly LossName[] = Object.freeze(
  ["squared", "spherical", "taylor", "zloss"] as const,
);

/**
 * A loss by name, with its options validated and defaults filled in. Throws a RangeError naming the
 * argument for an unknown name or a bad option (`epsilon` ≤ 0, `a` ≤ 0, a non-finite value).
 *
 * @example
 * ```ts
 * import { createLoss } from "./mod.ts";
 * const loss = createLoss("zloss", { a: 0.1, b: 10 });
 * console.log(loss.usesSum); // true
 * ```
 */
export function createLoss(name: LossName = "squared", options: LossOptions = {}): SphericalFamilyLoss {
  switch (name) {
    case "squared":
      return new SquaredLoss(options);
    case "spherical":
      return new SphericalLoss(options);
    case "taylor":
      return new TaylorLoss(options);
    case "zloss":
      return new ZLoss(options);
    default:
      throw new RangeError(`loss must be one of ${LOSS_NAMES.join(", ")}; got "${String(name)}"`);
  }
}
