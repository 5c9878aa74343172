/**
 * Input validation shared by the output layers (the CSR checks live in lib/core/csr.ts), the same on every
 * backend. The rule (docs/architecture.md, "Errors"): a value of the wrong type is a TypeError, one out of
 * its range (a length, an index, a count, a non-finite number) a RangeError; options that do not fit
 * together (an unknown kind or backend, a state of another layer, no init) a UsageError. Every error names the argument and the position at
 * fault, e.g. `Y.indices[17] = 5000 is outside [0, D=5000) (example 3)`. All checks are O(md + nnz) and
 * allocate nothing.
 *
 * @module
 */

import type { OutputLayerState, SparseBatch } from "../core/types.ts";
import { describeValue as describe, validateCsr } from "../core/csr.ts";
import { UsageError } from "../core/errors.ts";
import { allFinite } from "../core/finite.ts";

/**
 * Checks a minibatch (H m×d row-major, Y a CSR batch of m rows) against a layer of D outputs and input
 * dimension d, and returns m.
 *
 * - TypeError: H is not a Float32Array; Y's arrays have the wrong types.
 * - RangeError: H.length ≠ m·d, offsets not starting at 0 / decreasing / not ending at indices.length,
 *   values.length ≠ indices.length, an index outside [0, D), a NaN/Inf in H or in Y.values, m = 0, and
 *   with `loss` one whose targets are weights of a log-likelihood (`weightsNonNegative`), a negative
 *   Y.values entry.
 *
 * Duplicate indices, within an example or across examples, are legal (they are summed).
 *
 * @example
 * ```ts
 * import { validateBatch } from "./validate.ts";
 * const m = validateBatch(new Float32Array(4), {
 *   offsets: Int32Array.of(0, 1, 2), indices: Int32Array.of(3, 3), values: Float32Array.of(1, 1),
 * }, 10, 2); // 2
 * ```
 *
 * @param H inputs, m×d row-major
 * @param Y targets, CSR with m rows
 * @param D number of outputs
 * @param d input dimension
 * @param loss the layer's loss: its `weightsNonNegative` says whether Y.values must be ≥ 0
 * @returns m, the number of examples
 */
export function validateBatch(
  H: Float32Array,
  Y: SparseBatch,
  D: number,
  d: number,
  loss?: { readonly name: string; readonly weightsNonNegative: boolean },
): number {
  if (!(H instanceof Float32Array)) {
    throw new TypeError(`H must be a Float32Array (m×d row-major), got ${describe(H)}`);
  }
  const m = validateCsr("Y", Y, D);
  if (loss?.weightsNonNegative) refuseNegativeWeights(Y, loss.name);
  if (H.length !== m * d) {
    throw new RangeError(
      `H.length = ${H.length} but Y has m = ${m} examples and d = ${d}: H must be m×d = ${m * d} (row-major)`,
    );
  }
  if (allFinite(H)) return m;
  for (let j = 0; j < H.length; j++) {
    const v = H[j];
    if (!Number.isFinite(v)) {
      throw new RangeError(`H[${j}] = ${v} is not finite (example ${Math.floor(j / d)}, column ${j % d})`);
    }
  }
  return m;
}

/** RangeError naming the first negative entry of Y.values, its example and the loss `name`. */
function refuseNegativeWeights(Y: SparseBatch, name: string): void {
  const v = Y.values;
  let k = 0;
  while (k < v.length && v[k] >= 0) k++;
  if (k === v.length) return;
  let i = 0;
  while (Y.offsets[i + 1] <= k) i++;
  throw new RangeError(
    `Y.values[${k}] = ${v[k]} is negative (example ${i}): the ${name} loss takes target weights ≥ 0 ` +
      `(a negative weight makes it unbounded below); only the squared loss fits values of either sign`,
  );
}

/**
 * Checks the shape of an exported state before anything reads it (the same on every backend): an object
 * whose D and d are numbers, loss a string, lossOptions an object (or absent), arrays and scalars objects,
 * and scalars.steps (when given) an integer ≥ 0. TypeError or RangeError naming the field. The arrays
 * themselves are the layer's to check (their types, lengths and values).
 *
 * @example
 * ```ts
 * import { validateStateShape } from "./validate.ts";
 * validateStateShape({ kind: "naive", D: 2, d: 1, loss: "squared", arrays: { W: new Float32Array(2) }, scalars: { steps: 0 } });
 * ```
 *
 * @param state the state (from exportState())
 */
export function validateStateShape(state: OutputLayerState): void {
  if (state === null || typeof state !== "object") {
    throw new TypeError(`state must be an object (from exportState()), got ${describe(state)}`);
  }
  for (const k of ["D", "d"] as const) {
    if (typeof state[k] !== "number") {
      throw new TypeError(`state.${k} must be a number, got ${shown(state[k])}`);
    }
  }
  if (typeof state.loss !== "string") {
    throw new TypeError(`state.loss must be a loss name (a string), got ${describe(state.loss)}`);
  }
  const lo = state.lossOptions;
  if (lo !== undefined && (lo === null || typeof lo !== "object")) {
    throw new TypeError(`state.lossOptions must be an object, got ${describe(lo)}`);
  }
  for (const k of ["arrays", "scalars"] as const) {
    const v = state[k];
    if (v === null || typeof v !== "object") {
      throw new TypeError(
        `state.${k} must be an object (of ${
          k === "arrays" ? "typed arrays" : "numbers"
        }, from exportState()), ` +
          `got ${describe(v)}`,
      );
    }
  }
  const steps = state.scalars.steps;
  if (steps === undefined) return;
  if (typeof steps !== "number") {
    throw new TypeError(`state.scalars.steps must be a number, got ${shown(steps)}`);
  }
  if (!Number.isSafeInteger(steps) || steps < 0) {
    throw new RangeError(`state.scalars.steps must be an integer ≥ 0, got ${steps}`);
  }
}

/** A value of the wrong type as a message shows it: its type and, for a primitive, its value. */
function shown(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "string") return `string ${JSON.stringify(v)}`;
  if (typeof v === "object" || typeof v === "function") return describe(v);
  return `${typeof v} ${String(v)}`;
}

/**
 * Checks a learning rate: a finite number > 0, else RangeError naming `eta`.
 *
 * @example
 * ```ts
 * import { validateEta } from "./validate.ts";
 * validateEta(0.1);
 * ```
 *
 * @param eta the learning rate
 */
export function validateEta(eta: number): void {
  if (typeof eta !== "number") {
    throw new TypeError(`eta (learning rate) must be a number, got ${shown(eta)}`);
  }
  if (!Number.isFinite(eta) || eta <= 0) {
    throw new RangeError(`eta (learning rate) must be a finite number > 0, got ${String(eta)}`);
  }
}

/**
 * Checks a D×d row-major float32 matrix (W₀, or rows to append): type, length, finiteness. `name` is
 * the argument's name used in messages.
 *
 * @example
 * ```ts
 * import { validateMatrix } from "./validate.ts";
 * validateMatrix("init", new Float32Array(6), 3, 2);
 * ```
 *
 * @param name the argument's name
 * @param A the matrix
 * @param rows expected rows (or -1 to accept any multiple of cols)
 * @param cols expected columns
 * @returns the number of rows
 */
export function validateMatrix(name: string, A: Float32Array, rows: number, cols: number): number {
  if (!(A instanceof Float32Array)) throw new TypeError(`${name} must be a Float32Array, got ${describe(A)}`);
  if (rows >= 0 && A.length !== rows * cols) {
    throw new RangeError(
      `${name}.length = ${A.length} but must be ${rows}×${cols} = ${rows * cols} (row-major)`,
    );
  }
  if (rows < 0 && A.length % cols !== 0) {
    throw new RangeError(`${name}.length = ${A.length} is not a multiple of d = ${cols} (n×d row-major)`);
  }
  for (let j = 0; j < A.length; j++) {
    if (!Number.isFinite(A[j])) {
      throw new RangeError(
        `${name}[${j}] = ${A[j]} is not finite (row ${Math.floor(j / cols)}, column ${j % cols})`,
      );
    }
  }
  return A.length / cols;
}

/**
 * Checks a single input vector h (length d), finite.
 *
 * @example
 * ```ts
 * import { validateVector } from "./validate.ts";
 * validateVector("h", new Float32Array(3), 3);
 * ```
 *
 * @param name the argument's name
 * @param h the vector
 * @param d its required length
 */
export function validateVector(name: string, h: Float32Array, d: number): void {
  validateMatrix(name, h, 1, d);
}

/**
 * Checks a count option (`stabilizeEvery`, `recomputeQEvery`): an integer ≥ 0, else RangeError naming it.
 *
 * @example
 * ```ts
 * import { validateCount } from "./validate.ts";
 * validateCount("stabilizeEvery", 100);
 * ```
 *
 * @param name the option's name
 * @param v its value
 */
export function validateCount(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${name} must be an integer ≥ 0, got ${String(v)}`);
  }
  return v;
}

/**
 * Checks that every entry of `rows` is an integer in [0, D); RangeError naming the position.
 *
 * @example
 * ```ts
 * import { validateRows } from "./validate.ts";
 * validateRows(Int32Array.of(0, 4), 5);
 * ```
 *
 * @param rows row numbers
 * @param D number of rows
 */
export function validateRows(rows: Int32Array, D: number): void {
  if (!(rows instanceof Int32Array)) throw new TypeError(`rows must be an Int32Array`);
  for (let k = 0; k < rows.length; k++) {
    if (rows[k] < 0 || rows[k] >= D) throw new RangeError(`rows[${k}] = ${rows[k]} is outside [0, D=${D})`);
  }
}

/**
 * Checks the layer's dimensions: positive safe integers.
 *
 * @example
 * ```ts
 * import { validateDims } from "./validate.ts";
 * validateDims(1000, 64);
 * ```
 *
 * @param D outputs
 * @param d input dimension
 */
export function validateDims(D: number, d: number): void {
  if (!Number.isSafeInteger(D) || D < 1) {
    throw new RangeError(`D must be a positive integer, got ${String(D)}`);
  }
  if (!Number.isSafeInteger(d) || d < 1) {
    throw new RangeError(`d must be a positive integer, got ${String(d)}`);
  }
}

/**
 * The error of every backend (js, blas, webgpu) for a call on a closed output layer.
 *
 * @example
 * ```ts
 * import { closedLayerError } from "./validate.ts";
 * console.log(closedLayerError().message);
 * ```
 *
 * @returns a UsageError naming the fix
 */
export function closedLayerError(): UsageError {
  return new UsageError("this output layer was closed; create a new one (createOutputLayer) to go on");
}

/**
 * Refuses a call on a closed output layer with {@link closedLayerError}.
 *
 * @example
 * ```ts
 * import { validateOpen } from "./validate.ts";
 * validateOpen(false); // open: nothing happens
 * ```
 *
 * @param closed whether close() was called
 * @throws {UsageError} the layer was closed
 */
export function validateOpen(closed: boolean): void {
  if (closed) throw closedLayerError();
}
