/**
 * Defaults and validation of the losses' hyperparameters ({@link LossOptions}). Every loss carries all
 * three fields filled in (`Required<LossOptions>`); each validates the ones it uses and throws a
 * RangeError naming the option.
 *
 * @module
 */

import type { LossOptions } from "../core/types.ts";

/**
 * The default hyperparameters (see docs/losses.md for why):
 * - `epsilon = 1e-3`: spherical softmax's floor, added to every o_j²;
 * - `a = 0.1`, `b = 10`: the Z-loss's sharpness and offset (de Brébisson & Vincent 2016).
 *
 * @example
 * ```ts
 * import { LOSS_DEFAULTS } from "./options.ts";
 * console.log(LOSS_DEFAULTS.epsilon); // 0.001
 * ```
 */
export const LOSS_DEFAULTS: Readonly<Required<LossOptions>> = Object.freeze({ epsilon: 1e-3, a: 0.1, b: 10 });

/**
 * Fills in defaults and checks every given field: `epsilon` and `a` must be finite and > 0, `b` finite.
 * Throws a RangeError naming the option otherwise.
 *
 * @example
 * ```ts
 * import { resolveLossOptions } from "./options.ts";
 * const o = resolveLossOptions({ epsilon: 1e-4 }); // { epsilon: 1e-4, a: 0.1, b: 10 }
 * ```
 */
export function resolveLossOptions(options: LossOptions = {}): Required<LossOptions> {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`lossOptions must be an object like { epsilon, a, b }, got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== "epsilon" && key !== "a" && key !== "b") {
      throw new RangeError(`lossOptions.${key} is not a loss option; known options: epsilon, a, b`);
    }
  }
  const epsilon = options.epsilon ?? LOSS_DEFAULTS.epsilon;
  const a = options.a ?? LOSS_DEFAULTS.a;
  const b = options.b ?? LOSS_DEFAULTS.b;
  if (typeof epsilon !== "number" || !Number.isFinite(epsilon) || epsilon <= 0) {
    throw new RangeError(`lossOptions.epsilon must be a finite number > 0 (default 1e-3), got ${epsilon}`);
  }
  if (typeof a !== "number" || !Number.isFinite(a) || a <= 0) {
    throw new RangeError(
      `lossOptions.a (Z-loss sharpness) must be a finite number > 0 (default 0.1), got ${a}`,
    );
  }
  if (typeof b !== "number" || !Number.isFinite(b)) {
    throw new RangeError(`lossOptions.b (Z-loss offset) must be a finite number (default 10), got ${b}`);
  }
  return { epsilon, a, b };
}
