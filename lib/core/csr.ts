/**
 * The one home for sparse minibatches in CSR form ({@link SparseBatch}: example i owns entries
 * `offsets[i] … offsets[i+1]-1` of `indices` and `values`): validate one, merge the repeated targets of
 * each example, build one row by row, and take a run of rows as views. Everything here is O(m + nnz)
 * (merging: O(K²) per example) and allocates only when a buffer must grow.
 *
 * Row iteration stays a plain `for (let k = offsets[i]; k < offsets[i + 1]; k++)` loop at the call
 * sites: a callback per row or entry would cost in the hot loops.
 *
 * @module
 */

import type { SparseBatch } from "./types.ts";

/**
 * Checks the structure of a CSR batch and that every index lies in [0, D) and every value is finite;
 * returns m, the number of rows. Messages name the batch (`name`, e.g. `Y`) and the position at fault.
 *
 * - TypeError: not an object, or arrays of the wrong types.
 * - RangeError: no row, `values.length ≠ indices.length`, offsets not starting at 0 / decreasing / not
 *   ending at `indices.length`, an index outside [0, D), a NaN/Inf value.
 *
 * @example
 * ```ts
 * import { validateCsr } from "./csr.ts";
 * const m = validateCsr("Y", { offsets: Int32Array.of(0, 1, 2), indices: Int32Array.of(3, 3), values: Float32Array.of(1, 1) }, 10);
 * console.log(m); // 2
 * ```
 *
 * @param name the batch's name in messages
 * @param B the batch
 * @param D indices must lie in [0, D)
 * @returns m
 */
export function validateCsr(name: string, B: SparseBatch, D: number): number {
  if (B === null || typeof B !== "object") {
    throw new TypeError(`${name} must be a SparseBatch, got ${describeValue(B)}`);
  }
  const { offsets, indices, values } = B;
  if (!(offsets instanceof Int32Array)) {
    throw new TypeError(`${name}.offsets must be an Int32Array, got ${describeValue(offsets)}`);
  }
  if (!(indices instanceof Int32Array)) {
    throw new TypeError(`${name}.indices must be an Int32Array, got ${describeValue(indices)}`);
  }
  if (!(values instanceof Float32Array)) {
    throw new TypeError(`${name}.values must be a Float32Array, got ${describeValue(values)}`);
  }
  const m = offsets.length - 1;
  if (m < 1) {
    throw new RangeError(
      `${name}.offsets must have m+1 ≥ 2 entries (at least one example), got ${offsets.length}`,
    );
  }
  if (values.length !== indices.length) {
    throw new RangeError(
      `${name}.values.length = ${values.length} differs from ${name}.indices.length = ${indices.length}`,
    );
  }
  if (offsets[0] !== 0) throw new RangeError(`${name}.offsets[0] = ${offsets[0]} must be 0`);
  for (let i = 0; i < m; i++) {
    if (offsets[i + 1] < offsets[i]) {
      throw new RangeError(
        `${name}.offsets[${i + 1}] = ${offsets[i + 1]} < ${name}.offsets[${i}] = ${offsets[i]}: ` +
          `offsets must be non-decreasing`,
      );
    }
  }
  if (offsets[m] !== indices.length) {
    throw new RangeError(
      `${name}.offsets[${m}] = ${offsets[m]} must equal ${name}.indices.length = ${indices.length}`,
    );
  }
  for (let i = 0; i < m; i++) {
    for (let k = offsets[i]; k < offsets[i + 1]; k++) {
      const c = indices[k];
      if (c < 0 || c >= D) {
        throw new RangeError(`${name}.indices[${k}] = ${c} is outside [0, D=${D}) (example ${i})`);
      }
      const v = values[k];
      if (!Number.isFinite(v)) {
        throw new RangeError(`${name}.values[${k}] = ${v} is not finite (example ${i})`);
      }
    }
  }
  return m;
}

/**
 * The first entry k of rows [0, m) whose index lies outside [0, D), or -1. For callers with their own
 * message (the input bag names the example and the entry within it).
 *
 * @example
 * ```ts
 * import { findIndexOutside } from "./csr.ts";
 * const X = { offsets: Int32Array.of(0, 2), indices: Int32Array.of(1, 9), values: Float32Array.of(1, 1) };
 * console.log(findIndexOutside(X, 5)); // 1
 * ```
 */
export function findIndexOutside(B: SparseBatch, D: number): number {
  const { offsets, indices } = B;
  const end = offsets[offsets.length - 1];
  for (let k = offsets[0]; k < end; k++) {
    const c = indices[k];
    if (!(c >= 0 && c < D)) return k;
  }
  return -1;
}

/**
 * The row that owns entry k (binary search over the offsets; for error messages, not hot loops).
 *
 * @example
 * ```ts
 * import { rowOfEntry } from "./csr.ts";
 * console.log(rowOfEntry(Int32Array.of(0, 2, 2, 5), 3)); // 2
 * ```
 */
export function rowOfEntry(offsets: Int32Array, k: number): number {
  let lo = 0, hi = offsets.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= k) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Reusable scratch holding a batch's targets with the repeats of each example merged (weights summed, in
 * the order they occur, in float64): a loss sees each target once per example. Merging is O(K²) per
 * example (K = targets of the example; K ≪ d by design), deterministic and allocation-free once grown.
 *
 * Layout: entry k < nnz belongs to example `ex[k]`; example i owns entries `off[i] … off[i+1]-1`, in the
 * order of first occurrence (or, with `sorted`, by increasing target index).
 *
 * @example
 * ```ts
 * import { MergedTargets } from "./csr.ts";
 * const t = new MergedTargets();
 * t.merge({ offsets: Int32Array.of(0, 3), indices: Int32Array.of(4, 2, 4), values: Float32Array.of(1, 1, 0.5) });
 * console.log(t.nnz, Array.from(t.idx.subarray(0, 2)), Array.from(t.w.subarray(0, 2))); // 2 [4, 2] [1.5, 1]
 * ```
 */
export class MergedTargets {
  /** Number of examples of the last merged batch. */
  m = 0;
  /** Number of merged (unique per example) entries. */
  nnz = 0;
  /** Largest merged K of one example. */
  maxK = 0;
  /** Example offsets, m+1. */
  off: Int32Array = new Int32Array(1);
  /** Target index of each entry. */
  idx: Int32Array = new Int32Array(0);
  /** Summed weight of each entry (float64). */
  w: Float64Array = new Float64Array(0);
  /** Example of each entry. */
  ex: Int32Array = new Int32Array(0);

  /**
   * Merges the batch Y (already validated) into this scratch.
   *
   * @param Y the CSR batch
   * @param sorted order each example's entries by target index (else by first occurrence)
   */
  merge(Y: SparseBatch, sorted = false): void {
    const m = Y.offsets.length - 1;
    const n = Y.indices.length;
    if (this.off.length < m + 1) this.off = new Int32Array(m + 1);
    if (this.idx.length < n) {
      const cap = Math.max(n, 2 * this.idx.length);
      this.idx = new Int32Array(cap);
      this.w = new Float64Array(cap);
      this.ex = new Int32Array(cap);
    }
    const off = this.off;
    let nnz = 0, maxK = 0;
    for (let i = 0; i < m; i++) {
      const start = nnz;
      off[i] = start;
      nnz = sorted ? mergeSortedRun(Y, i, this, start) : mergeRun(Y, i, this, start);
      if (nnz - start > maxK) maxK = nnz - start;
    }
    off[m] = nnz;
    this.m = m;
    this.nnz = nnz;
    this.maxK = maxK;
  }
}

/** Appends the entries of example i at `start`, repeats merged in first-occurrence order. */
function mergeRun(Y: SparseBatch, i: number, t: MergedTargets, start: number): number {
  const { offsets, indices, values } = Y, { idx, w, ex } = t;
  let nnz = start;
  for (let k = offsets[i]; k < offsets[i + 1]; k++) {
    const c = indices[k];
    let j = start;
    while (j < nnz && idx[j] !== c) j++;
    if (j < nnz) {
      w[j] += values[k];
      continue;
    }
    idx[nnz] = c;
    w[nnz] = values[k];
    ex[nnz++] = i;
  }
  return nnz;
}

/** As {@link mergeRun}, the run kept sorted by index (insertion). */
function mergeSortedRun(Y: SparseBatch, i: number, t: MergedTargets, start: number): number {
  const { offsets, indices, values } = Y, { idx, w, ex } = t;
  let nnz = start;
  for (let k = offsets[i]; k < offsets[i + 1]; k++) {
    const c = indices[k];
    let j = nnz - 1;
    while (j >= start && idx[j] > c) j--;
    if (j >= start && idx[j] === c) {
      w[j] += values[k];
      continue;
    }
    for (let t = nnz; t > j + 1; t--) {
      idx[t] = idx[t - 1];
      w[t] = w[t - 1];
    }
    idx[j + 1] = c;
    w[j + 1] = values[k];
    ex[nnz++] = i;
  }
  return nnz;
}

/**
 * A growable CSR batch built into reusable buffers: row by row from another CSR batch ({@link pushRow},
 * {@link appendRow}), a run of rows at once ({@link appendRows}), or entry by entry ({@link push}, then
 * {@link endRow} or {@link dropRow}). Source values may be `null`, meaning every value is 1 (unweighted
 * shard columns). No call allocates unless a buffer must grow.
 *
 * @example
 * ```ts
 * import { CsrBuilder } from "./csr.ts";
 * const src = { offsets: Int32Array.of(0, 1, 3), indices: Int32Array.of(4, 5, 6), values: Float32Array.of(1, 1, 1) };
 * const b = new CsrBuilder();
 * b.pushRow(src, 1);
 * b.push(9, 0.5);
 * b.endRow();
 * console.log(b.m, Array.from(b.view().indices)); // 2 [5, 6, 9]
 * ```
 */
export class CsrBuilder {
  /** Row offsets (valid prefix: m + 1). */
  offsets: Int32Array = new Int32Array(64);
  /** Entry indices (valid prefix: nnz). */
  indices: Int32Array = new Int32Array(256);
  /** Entry values (valid prefix: nnz). */
  values: Float32Array = new Float32Array(256);
  /** Rows. */
  m = 0;
  /** Entries (the open row's included). */
  nnz = 0;

  /** Empties the batch (keeps the buffers). */
  reset(): void {
    this.m = 0;
    this.nnz = 0;
  }

  /** Makes room for `rows` more rows and `entries` more entries. */
  reserve(rows: number, entries: number): void {
    if (this.m + rows + 1 > this.offsets.length) this.offsets = grow(this.offsets, this.m + rows + 1);
    if (this.nnz + entries > this.indices.length) {
      this.indices = grow(this.indices, this.nnz + entries);
      this.values = grow(this.values, this.nnz + entries);
    }
  }

  /** Appends row i of `src`. */
  pushRow(src: SparseBatch, i: number): void {
    this.appendRow(src.offsets, src.indices, src.values, i);
  }

  /** Appends row i of the CSR arrays (`values` null: every value 1). */
  appendRow(offsets: Int32Array, indices: Int32Array, values: Float32Array | null, i: number): void {
    const a = offsets[i], b = offsets[i + 1];
    this.reserve(1, b - a);
    const idx = this.indices, val = this.values;
    let n = this.nnz;
    // short rows: a plain loop, no subarray views per row
    if (values) { for (let k = a; k < b; k++) (idx[n] = indices[k], val[n++] = values[k]); }
    else for (let k = a; k < b; k++) (idx[n] = indices[k], val[n++] = 1);
    this.nnz = n;
    this.offsets[++this.m] = n;
  }

  /** Appends rows [r0, r1) of the CSR arrays (`values` null: every value 1) in one copy. */
  appendRows(
    offsets: Int32Array,
    indices: Int32Array,
    values: Float32Array | null,
    r0: number,
    r1: number,
  ): void {
    const a = offsets[r0], b = offsets[r1];
    this.reserve(r1 - r0, b - a);
    const shift = this.nnz - a, o = this.offsets;
    for (let r = r0 + 1; r <= r1; r++) o[++this.m] = offsets[r] + shift;
    this.indices.set(indices.subarray(a, b), this.nnz);
    if (values) this.values.set(values.subarray(a, b), this.nnz);
    else this.values.fill(1, this.nnz, this.nnz + b - a);
    this.nnz += b - a;
  }

  /** Adds an entry to the open row (closed by {@link endRow}). */
  push(index: number, value: number): void {
    if (this.nnz + 1 > this.indices.length) this.reserve(0, 1);
    this.indices[this.nnz] = index;
    this.values[this.nnz++] = value;
  }

  /** Entries of the open row so far. */
  get openEntries(): number {
    return this.nnz - this.offsets[this.m];
  }

  /** Closes the open row. */
  endRow(): void {
    if (this.m + 2 > this.offsets.length) this.reserve(1, 0);
    this.offsets[++this.m] = this.nnz;
  }

  /** Drops the open row's entries. */
  dropRow(): void {
    this.nnz = this.offsets[this.m];
  }

  /** Replaces the content by a whole batch (its arrays are kept, not copied). */
  assign(B: SparseBatch): void {
    this.offsets = B.offsets;
    this.indices = B.indices;
    this.values = B.values;
    this.m = B.offsets.length - 1;
    this.nnz = this.offsets[this.m];
  }

  /** The batch built so far (views, valid until the next push). */
  view(): SparseBatch {
    return {
      offsets: this.offsets.subarray(0, this.m + 1),
      indices: this.indices.subarray(0, this.nnz),
      values: this.values.subarray(0, this.nnz),
    };
  }

  /** The batch built so far as fresh arrays (the builder stays reusable). */
  take(): SparseBatch {
    return {
      offsets: this.offsets.slice(0, this.m + 1),
      indices: this.indices.slice(0, this.nnz),
      values: this.values.slice(0, this.nnz),
    };
  }
}

function grow<T extends Int32Array | Float32Array>(a: T, need: number): T {
  const b = new (a.constructor as { new (n: number): T })(Math.max(need, 2 * a.length));
  b.set(a);
  return b;
}

/**
 * Dense slots for the distinct row ids of one call: entry k gets the slot of its row, numbered in order of
 * first appearance. A small open-addressing table over the ids of the call (at least twice the entries,
 * reused), not an array over all rows: O(entries), in cache, where an array over a large vocabulary misses
 * the cache on every entry.
 *
 * @example
 * ```ts
 * import { RowSlots } from "./csr.ts";
 * const slots = new RowSlots(), slot = new Int32Array(5);
 * const n = slots.assign(Int32Array.of(7, 2, 7, 9, 7), 0, 5, slot);
 * console.log(n, Array.from(slot)); // 3 [ 0, 1, 0, 2, 0 ]
 * ```
 */
export class RowSlots {
  #keys = new Int32Array(0);
  #ids = new Int32Array(0);

  /**
   * Sets slot[k] for entries k in [first, end) to the slot of row idx[k] (0, 1, … in order of first
   * appearance).
   *
   * @param idx the row id of each entry (ids ≥ 0)
   * @param first first entry
   * @param end entry after the last
   * @param slot output, one per entry (entries first … end − 1 are written)
   * @returns the number of distinct rows (slots)
   */
  assign(idx: Int32Array, first: number, end: number, slot: Int32Array): number {
    let bits = 4;
    while (1 << bits < 2 * (end - first)) bits++;
    const size = 1 << bits, mask = size - 1, shift = 32 - bits;
    if (this.#keys.length < size) {
      this.#keys = new Int32Array(size);
      this.#ids = new Int32Array(size);
    }
    const keys = this.#keys, ids = this.#ids;
    keys.fill(-1, 0, size);
    let n = 0;
    for (let k = first; k < end; k++) {
      const row = idx[k];
      let h = Math.imul(row, 0x9e3779b1) >>> shift;
      while (keys[h] !== -1 && keys[h] !== row) h = (h + 1) & mask;
      if (keys[h] === -1) {
        keys[h] = row;
        ids[h] = n++;
      }
      slot[k] = ids[h];
    }
    return n;
  }
}

/**
 * Which entries of a list of row ids, cut into consecutive ranges, name a row that another range names too.
 * The threaded V update (lib/output/factored/step_kernel.ts UPD_TAIL) uses it: each thread adds the rows
 * only its own examples name (read by that thread in the forward, still in its cache), and one thread adds
 * the rows several ranges name, in entry order, so every row gets its additions in the one-thread order.
 * The rows' slots come from {@link RowSlots}: O(entries), in cache.
 *
 * @example
 * ```ts
 * import { SharedRowMarks } from "./csr.ts";
 * const marks = new SharedRowMarks(), flags = new Int32Array(5);
 * // entries 0-2 are range 0, entries 3-4 range 1; row 7 is in both ranges
 * const n = marks.mark(Int32Array.of(7, 2, 7, 9, 7), Int32Array.of(0, 3, 5), 2, flags);
 * console.log(n, Array.from(flags)); // 3 [ 1, 0, 1, 0, 1 ]
 * ```
 */
export class SharedRowMarks {
  #slots = new RowSlots();
  #range = new Int32Array(0);
  #slot = new Int32Array(0);

  /**
   * Sets flags[k] to 1 where row idx[k] is named by entries of two or more ranges, else 0.
   *
   * @param idx the row id of each entry (ids ≥ 0)
   * @param bounds ranges + 1 entry offsets, ascending: range w is entries [bounds[w], bounds[w + 1])
   * @param ranges number of ranges (≥ 1)
   * @param flags output, one per entry (entries bounds[0] … bounds[ranges] − 1 are written)
   * @returns the number of entries marked
   */
  mark(idx: Int32Array, bounds: Int32Array, ranges: number, flags: Int32Array): number {
    const first = bounds[0], end = bounds[ranges];
    if (this.#slot.length < end) this.#slot = new Int32Array(Math.max(end, 2 * this.#slot.length));
    const slot = this.#slot;
    const n = this.#slots.assign(idx, first, end, slot);
    if (this.#range.length < n) this.#range = new Int32Array(Math.max(n, 2 * this.#range.length));
    const range = this.#range;
    range.fill(-2, 0, n);
    for (let w = 0; w < ranges; w++) {
      for (let k = bounds[w]; k < bounds[w + 1]; k++) {
        const r = range[slot[k]];
        if (r === -2) range[slot[k]] = w;
        else if (r !== w) range[slot[k]] = -1;
      }
    }
    let marked = 0;
    for (let k = first; k < end; k++) {
      const shared = range[slot[k]] === -1 ? 1 : 0;
      flags[k] = shared;
      marked += shared;
    }
    return marked;
  }
}

/**
 * Rows [s, e) of B: indices and values are views, the offsets a rebased copy.
 *
 * @example
 * ```ts
 * import { sliceRows } from "./csr.ts";
 * const B = { offsets: Int32Array.of(0, 1, 3), indices: Int32Array.of(4, 5, 6), values: Float32Array.of(1, 1, 1) };
 * console.log(Array.from(sliceRows(B, 1, 2).offsets)); // [0, 2]
 * ```
 */
export function sliceRows(B: SparseBatch, s: number, e: number): SparseBatch {
  const a = B.offsets[s], b = B.offsets[e];
  const offsets = new Int32Array(e - s + 1);
  for (let i = s; i <= e; i++) offsets[i - s] = B.offsets[i] - a;
  return { offsets, indices: B.indices.subarray(a, b), values: B.values.subarray(a, b) };
}

/**
 * A short name for a value's type in messages (`null`, `number`, `Float64Array`, …).
 *
 * @example
 * ```ts
 * import { describeValue } from "./csr.ts";
 * console.log(describeValue([1])); // "Array"
 * ```
 */
export function describeValue(x: unknown): string {
  if (x === null) return "null";
  if (typeof x !== "object") return typeof x;
  return (x as object).constructor?.name ?? "object";
}
