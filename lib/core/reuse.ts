/**
 * Copies of large arrays into arrays already in use. A process's first write to new memory faults in each
 * page, and where a virtual machine hands freed memory back to its host (free page reporting, as on the
 * Firecracker VMs this project is measured on) each such fault costs the host's work too: copying a state
 * into new arrays then takes many times as long as copying it into arrays written before (BENCHMARKS.md,
 * "State copies into arrays already written"). A snapshot taken again and again (the trainer's checkpoints)
 * therefore refills the arrays of the last one nothing needs any more.
 *
 * @module
 */

/** Arrays by name that a copy may be written into (see {@link copyInto}). */
export type SpareArrays = Readonly<Record<string, Float32Array | Float64Array | undefined>>;

/**
 * `src` copied into `into` when that is an array of the same type and length, else into a new array.
 * The caller gives up `into`: it is the copy's storage from then on.
 *
 * @example
 * ```ts
 * import { copyInto } from "./reuse.ts";
 * const old = new Float32Array(3);
 * const c = copyInto(Float32Array.of(1, 2, 3), old);
 * console.log(c === old, c); // true Float32Array(3) [ 1, 2, 3 ]
 * console.log(copyInto(Float32Array.of(1, 2), old) === old); // false (another length: a new array)
 * ```
 *
 * @param src the array to copy
 * @param into an array to reuse, or undefined
 * @param shared the copy on shared memory (a new array on a SharedArrayBuffer where `into` is not on one)
 * @returns the copy: `into`, or a new array
 */
export function copyInto<T extends Float32Array | Float64Array>(
  src: T,
  into: Float32Array | Float64Array | undefined,
  shared = false,
): T {
  if (
    into !== undefined && into.buffer !== src.buffer && into.constructor === src.constructor &&
    into.length === src.length && (!shared || into.buffer instanceof SharedArrayBuffer)
  ) {
    into.set(src);
    return into as T;
  }
  if (!shared) return src.slice() as T;
  const Ctor = src.constructor as new (b: SharedArrayBuffer) => T;
  const copy = new Ctor(new SharedArrayBuffer(src.byteLength));
  copy.set(src);
  return copy;
}
