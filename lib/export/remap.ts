/**
 * Re-indexing of minibatches from one vocabulary to another: every input and target id i becomes
 * `map[i]`; entries whose id maps to −1 are dropped, and so is an example left without inputs or
 * without targets. The refresh job uses it to train a grown vocabulary on shards prepared with the new
 * data's own vocabulary.
 *
 * Layout: CSR {@link SparseBatch}es in and out (offsets m+1, indices, values); the result has m' ≤ m
 * examples, in order.
 *
 * @module
 */

import type { SparseBatch } from "../core/types.ts";
import { DataFormatError } from "../core/errors.ts";
import { CsrBuilder } from "../core/csr.ts";

/**
 * Remaps the examples of a minibatch (inputs and targets, same m) through `map`; returns fresh arrays.
 *
 * @example
 * ```ts
 * import { remapExamples } from "./remap.ts";
 * const X = { offsets: Int32Array.of(0, 2, 3), indices: Int32Array.of(0, 1, 2), values: Float32Array.of(1, 1, 1) };
 * const Y = { offsets: Int32Array.of(0, 1, 2), indices: Int32Array.of(2, 1), values: Float32Array.of(1, 1) };
 * const r = remapExamples(X, Y, Int32Array.of(5, -1, 7)); // example 0 keeps input 5 → target 7; example 1 (input 7 → target -1) is dropped
 * ```
 */
export function remapExamples(
  X: SparseBatch,
  Y: SparseBatch,
  map: Int32Array,
  source = "batch",
): { inputs: SparseBatch; targets: SparseBatch; dropped: number } {
  const m = X.offsets.length - 1;
  if (Y.offsets.length - 1 !== m) {
    throw new DataFormatError(source, `inputs have ${m} examples, targets ${Y.offsets.length - 1}`);
  }
  const xb = new CsrBuilder(), yb = new CsrBuilder();
  xb.reserve(m, X.indices.length);
  yb.reserve(m, Y.indices.length);
  let dropped = 0;
  const look = (id: number) => {
    if (id < 0 || id >= map.length) {
      throw new DataFormatError(source, `id ${id} is outside the vocabulary of ${map.length} words`);
    }
    return map[id];
  };
  for (let e = 0; e < m; e++) {
    for (let k = X.offsets[e]; k < X.offsets[e + 1]; k++) {
      const id = look(X.indices[k]);
      if (id >= 0) xb.push(id, X.values[k]);
    }
    for (let k = Y.offsets[e]; k < Y.offsets[e + 1]; k++) {
      const id = look(Y.indices[k]);
      if (id >= 0) yb.push(id, Y.values[k]);
    }
    if (xb.openEntries === 0 || yb.openEntries === 0) {
      xb.dropRow();
      yb.dropRow();
      dropped++;
      continue;
    }
    xb.endRow();
    yb.endRow();
  }
  return {
    inputs: xb.take(),
    targets: yb.take(),
    dropped,
  };
}
