/**
 * A growable, reusable columnar buffer of examples in the corpus format's layout: `input` ids,
 * `target_index` ids and `target_value` weights, each a list per row (CSR: offsets + values). Used by the
 * window emitter and the shard writers; it grows by doubling and is reused shard after shard, so memory
 * is bounded by the largest record batch.
 *
 * @module
 */

/**
 * Columns of `rows` examples. Row r's inputs are `inIdx[inOff[r] .. inOff[r+1])`, its targets
 * `tIdx/tVal[tOff[r] .. tOff[r+1])`. Only the first `rows + 1` offsets and `inOff[rows]` / `tOff[rows]`
 * values are meaningful; the arrays are larger (capacity).
 *
 * @example
 * ```ts
 * import { ExampleColumns } from "./columns.ts";
 * const c = new ExampleColumns();
 * c.pushInput(3); c.pushTarget(7, 1); c.endRow();
 * console.log(c.rows, c.tIdx[0]); // 1 7
 * ```
 */
export class ExampleColumns {
  /** number of complete rows */
  rows = 0;
  /** input offsets, length ≥ rows + 1 */
  inOff: Int32Array;
  /** input ids */
  inIdx: Int32Array;
  /** target offsets, length ≥ rows + 1 */
  tOff: Int32Array;
  /** target ids */
  tIdx: Int32Array;
  /** target weights */
  tVal: Float32Array;
  #nIn = 0;
  #nT = 0;

  /** @param rowCapacity initial rows; @param kCapacity initial entries per column */
  constructor(rowCapacity = 1024, kCapacity = 8192) {
    this.inOff = new Int32Array(rowCapacity + 1);
    this.tOff = new Int32Array(rowCapacity + 1);
    this.inIdx = new Int32Array(kCapacity);
    this.tIdx = new Int32Array(kCapacity);
    this.tVal = new Float32Array(kCapacity);
  }

  /** Entries of the input column so far (including the open row). */
  get inputEntries(): number {
    return this.#nIn;
  }

  /** Entries of the target columns so far (including the open row). */
  get targetEntries(): number {
    return this.#nT;
  }

  /** Makes room for one more row with up to `kIn` inputs and `kT` targets (amortised O(1)). */
  reserve(kIn: number, kT: number): void {
    if (this.rows + 2 > this.inOff.length) {
      this.inOff = grow32(this.inOff, (this.rows + 2) * 2);
      this.tOff = grow32(this.tOff, (this.rows + 2) * 2);
    }
    if (this.#nIn + kIn > this.inIdx.length) this.inIdx = grow32(this.inIdx, (this.#nIn + kIn) * 2);
    if (this.#nT + kT > this.tIdx.length) {
      const cap = (this.#nT + kT) * 2;
      this.tIdx = grow32(this.tIdx, cap);
      const v = new Float32Array(cap);
      v.set(this.tVal.subarray(0, this.#nT));
      this.tVal = v;
    }
  }

  /** Appends an input id to the open row (call {@link reserve} first when the size is unknown). */
  pushInput(id: number): void {
    if (this.#nIn >= this.inIdx.length) this.reserve(1, 0);
    this.inIdx[this.#nIn++] = id;
  }

  /** Appends a target id and weight to the open row. */
  pushTarget(id: number, weight: number): void {
    if (this.#nT >= this.tIdx.length) this.reserve(0, 1);
    this.tIdx[this.#nT] = id;
    this.tVal[this.#nT++] = weight;
  }

  /** Closes the open row. */
  endRow(): void {
    if (this.rows + 2 > this.inOff.length) this.reserve(0, 0);
    this.rows++;
    this.inOff[this.rows] = this.#nIn;
    this.tOff[this.rows] = this.#nT;
  }

  /** Drops the open row's entries (nothing was committed). */
  cancelRow(): void {
    this.#nIn = this.inOff[this.rows];
    this.#nT = this.tOff[this.rows];
  }

  /** Empties the buffer, keeping its capacity. */
  clear(): void {
    this.rows = 0;
    this.#nIn = 0;
    this.#nT = 0;
    this.inOff[0] = 0;
    this.tOff[0] = 0;
  }
}

function grow32(a: Int32Array, cap: number): Int32Array {
  const b = new Int32Array(cap);
  b.set(a);
  return b;
}
