/**
 * The checks an exported factored state passes before a layer is built from it (the CPU layer's
 * `FactoredOutputLayer.fromState`, the WebGPU layer's `loadState`): every array finite, U⁻ᵀ the inverse
 * transpose of U, Q symmetric, the float32 path's unsettled arrays adding up to the settled ones, and the
 * counters integers ≥ 0. A state that fails one is corrupt (a damaged checkpoint, a hand-edited state):
 * built from it, a layer would return wrong losses or NaN, or never stabilise. Each failure is a
 * RangeError naming the field, as the naive layer's check of W (validateMatrix). The cost is one pass
 * over V (`allFinite`, ≈ 40 ms for 51M floats at D = 200,000, d = 256, on the 2-core test VM) and one d×d×d dgemm: at load
 * time only, never per step.
 *
 * @module
 */

import type { LinAlgBackend } from "../../linalg/backend.ts";
import { allFinite } from "../../core/finite.ts";
import { SETTLE_EVERY } from "./state.ts";

/**
 * Largest max|UᵀU⁻ᵀ − I| a state may have. The CPU layer keeps it near rounding (its stabilisation
 * re-derives U⁻ᵀ; between two, the float32 increments leave 1e-10 to a few 1e-7: upkeep.ts
 * REFINE_MAX_RESIDUAL); the WebGPU layer's float32 state stays below about 1e-4 between its
 * stabilisations. A U⁻ᵀ that is not U's inverse gives wrong V updates at every step.
 *
 * @example
 * ```ts
 * import { STATE_MAX_INVERSE_RESIDUAL } from "./state_check.ts";
 * console.log(STATE_MAX_INVERSE_RESIDUAL); // 0.001
 * ```
 */
export const STATE_MAX_INVERSE_RESIDUAL = 1e-3;

/**
 * Largest |Q_ij − Q_ji| a state may have, relative to max_k Q_kk (which bounds every |Q_ij| of the
 * positive semi-definite Q = WᵀW). The CPU layer keeps Q exactly symmetric; a float32 state differs by
 * rounding at most.
 *
 * @example
 * ```ts
 * import { STATE_MAX_Q_ASYMMETRY } from "./state_check.ts";
 * console.log(STATE_MAX_Q_ASYMMETRY); // 0.0001
 * ```
 */
export const STATE_MAX_Q_ASYMMETRY = 1e-4;

/** The arrays of a factored state, typed and of the right lengths (the caller checked them). */
export type FactoredStateArrays = {
  V: Float32Array;
  U: Float32Array | Float64Array;
  Uinvt: Float32Array | Float64Array;
  Q: Float32Array | Float64Array;
  omega: Float32Array | Float64Array;
  wbar: Float32Array | Float64Array;
  /** the float32 path's state between settlements (all four or none) */
  unsettled?: {
    U: Float64Array;
    Q: Float64Array;
    Uinvt: Float64Array;
    pending32: Float32Array;
  };
  mirrors32?: Float32Array;
};

const COUNTERS = ["steps", "examplesSinceRefresh", "rescales", "folds", "stabilizations", "rebalances"];
const FLAGS = ["refreshAuto", "products32", "mirrorsValid"];

/**
 * Refuses a corrupt factored state with a RangeError naming the field: a NaN or infinity in any array, a
 * U⁻ᵀ farther from U's inverse transpose than {@link STATE_MAX_INVERSE_RESIDUAL}, an asymmetric Q
 * ({@link STATE_MAX_Q_ASYMMETRY}), unsettled arrays that do not add up to the settled ones, a counter that
 * is not an integer ≥ 0, a NaN or negative condBudget, σ estimates that are not finite and > 0.
 *
 * @example
 * ```ts
 * import { checkFactoredState } from "./state_check.ts";
 * import { createJsBackend } from "../../linalg/js.ts";
 * const I = Float64Array.of(1, 0, 0, 1), z = new Float64Array(2);
 * checkFactoredState(createJsBackend(), 2, { V: new Float32Array(6), U: I, Uinvt: I, Q: new Float64Array(4), omega: z, wbar: z }, { steps: 3 });
 * ```
 *
 * @param la backend (one dgemm)
 * @param d input dimension
 * @param a the arrays
 * @param scalars the state's scalars
 * @throws {RangeError} the state is corrupt
 */
export function checkFactoredState(
  la: LinAlgBackend,
  d: number,
  a: FactoredStateArrays,
  scalars: Record<string, number>,
): void {
  for (const k of COUNTERS) {
    const v = scalars[k];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) {
      throw corrupt(`state.scalars.${k} = ${show(v)} must be an integer ≥ 0`);
    }
  }
  for (const k of FLAGS) {
    const v = scalars[k];
    if (v !== undefined && v !== 0 && v !== 1) {
      throw corrupt(`state.scalars.${k} = ${show(v)} must be 0 or 1`);
    }
  }
  const pending = scalars.pendingSteps;
  if (pending !== undefined && !(Number.isInteger(pending) && pending >= 0 && pending < SETTLE_EVERY)) {
    throw corrupt(`state.scalars.pendingSteps = ${show(pending)} must be an integer in [0, ${SETTLE_EVERY})`);
  }
  const cb = scalars.condBudget;
  if (cb !== undefined && !(typeof cb === "number" && Number.isFinite(cb) && cb >= 0)) {
    throw corrupt(`state.scalars.condBudget = ${show(cb)} must be a finite number ≥ 0`);
  }
  for (const k of ["sigmaMax", "sigmaMin"]) {
    const v = scalars[k];
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v > 0)) {
      throw corrupt(`state.scalars.${k} = ${show(v)} must be a finite number > 0`);
    }
  }
  finite("V", a.V, d);
  finite("U", a.U, d);
  finite("Uinvt", a.Uinvt, d);
  finite("Q", a.Q, d);
  finite("omega", a.omega, d);
  finite("wbar", a.wbar, d);
  const un = a.unsettled;
  if (un) {
    finite("unsettledU", un.U, d);
    finite("unsettledQ", un.Q, d);
    finite("unsettledUinvt", un.Uinvt, d);
    finite("pending32", un.pending32, d);
    const dd = d * d;
    const sums: [string, Float64Array, Float32Array | Float64Array, number][] = [
      ["U", un.U, a.U, 0],
      ["Q", un.Q, a.Q, dd],
      ["Uinvt", un.Uinvt, a.Uinvt, 2 * dd],
    ];
    for (const [name, u, s, off] of sums) {
      for (let j = 0; j < dd; j++) {
        const p = un.pending32[off + j], v = u[j] + p;
        // exportState writes the settled array as exactly this sum (FactoredState.settledView)
        if (Math.abs(v - s[j]) > 1e-12 * (Math.abs(u[j]) + Math.abs(p))) {
          throw corrupt(
            `state.arrays.unsettled${name}[${j}] + pending32[${
              off + j
            }] = ${v} but state.arrays.${name}[${j}] = ` +
              `${s[j]}: the float32 path's pending increments do not add up to the settled state`,
          );
        }
      }
    }
  }
  if (a.mirrors32) finite("mirrors32", a.mirrors32, d);
  // Q symmetric up to rounding
  const Q = a.Q;
  let scale = 0;
  for (let k = 0; k < d; k++) scale = Math.max(scale, Math.abs(Q[k * d + k]));
  const tol = STATE_MAX_Q_ASYMMETRY * scale;
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const x = Q[i * d + j], y = Q[j * d + i];
      if (Math.abs(x - y) > tol) {
        throw corrupt(
          `state.arrays.Q is not symmetric: Q[${i},${j}] = ${x} but Q[${j},${i}] = ${y} ` +
            `(more than ${STATE_MAX_Q_ASYMMETRY}·max Q_kk = ${tol.toPrecision(3)} apart)`,
        );
      }
    }
  }
  // U⁻ᵀ the inverse transpose of U: E = UᵀU⁻ᵀ − I
  const U = a.U instanceof Float64Array ? a.U : Float64Array.from(a.U);
  const Ui = a.Uinvt instanceof Float64Array ? a.Uinvt : Float64Array.from(a.Uinvt);
  const E = new Float64Array(d * d);
  la.dgemm(true, false, d, d, d, 1, U, d, Ui, d, 0, E, d);
  let worst = 0;
  for (let r = 0; r < d; r++) {
    for (let c = 0; c < d; c++) {
      const e = Math.abs(E[r * d + c] - (r === c ? 1 : 0));
      if (!(e <= worst)) worst = e; // NaN propagates
    }
  }
  if (!(worst <= STATE_MAX_INVERSE_RESIDUAL)) {
    throw corrupt(
      `state.arrays.Uinvt is not the inverse transpose of state.arrays.U: max|UᵀU⁻ᵀ − I| = ${
        worst.toPrecision(3)
      } > ${STATE_MAX_INVERSE_RESIDUAL}`,
    );
  }
}

function finite(name: string, x: Float32Array | Float64Array, d: number): void {
  if (allFinite(x)) return;
  for (let j = 0; j < x.length; j++) {
    if (!Number.isFinite(x[j])) {
      throw corrupt(
        `state.arrays.${name}[${j}] = ${x[j]} is not finite (row ${Math.floor(j / d)}, column ${j % d})`,
      );
    }
  }
}

function corrupt(what: string): RangeError {
  return new RangeError(`${what}: the state is corrupt; load another checkpoint or export it again`);
}

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}
