/**
 * The corpus format's Arrow schema, and the checked decoding of one record batch into plain typed
 * arrays (no per-row objects): column buffers are read directly (valueOffsets + child values), every
 * offset is bounded by the child's length, every id checked against [0, vocabulary size), every weight
 * checked finite, before anything from the batch is handed on.
 *
 * Accepted per column: `list` or `large_list` of int32/int64 ids (`input`, `target_index`) or of
 * float32/float64 weights (`target_value`, optional `input_value`); no nulls. Anything else is refused
 * naming the column and the type found. Other columns are ignored.
 *
 * @module
 */

import * as arrow from "apache-arrow";
import { DataFormatError } from "../core/errors.ts";
import { rowOfEntry } from "../core/csr.ts";
import { DENO_TASK } from "../core/exit_codes.ts";

/** The column names of the corpus format. */
export const COLUMNS = {
  input: "input",
  inputValue: "input_value",
  targetIndex: "target_index",
  targetValue: "target_value",
} as const;

/**
 * The schema factorout writes: `input: list<int32>`, `target_index: list<int32>`,
 * `target_value: list<float32>`, none nullable.
 *
 * @example
 * ```ts
 * import { corpusSchema } from "./schema.ts";
 * console.log(corpusSchema().fields.map((f) => f.name)); // ["input", "target_index", "target_value"]
 * ```
 */
export function corpusSchema(metadata?: Map<string, string>): arrow.Schema {
  const list = (t: arrow.DataType) => new arrow.List(new arrow.Field("item", t, false));
  return new arrow.Schema([
    new arrow.Field(COLUMNS.input, list(new arrow.Int32()), false),
    new arrow.Field(COLUMNS.targetIndex, list(new arrow.Int32()), false),
    new arrow.Field(COLUMNS.targetValue, list(new arrow.Float32()), false),
  ], metadata);
}

/**
 * One record batch decoded and checked. Row r's inputs are `inIdx[inOff[r] .. inOff[r+1])` (weights
 * `inVal` at the same positions, or 1 when `inVal` is null); its targets `tIdx/tVal[tOff[r] .. tOff[r+1])`.
 * Offsets need not start at 0. The arrays may be views of the file's buffers: copy what you keep.
 */
export type DecodedBatch = {
  rows: number;
  inOff: Int32Array;
  inIdx: Int32Array;
  inVal: Float32Array | null;
  tOff: Int32Array;
  tIdx: Int32Array;
  tVal: Float32Array;
};

/** Where a record batch comes from, for error messages. */
export type BatchContext = {
  file: string;
  /** shard number within the corpus (the position of the file in the list) */
  shard: number;
  /** record batch (Arrow) or row group (Parquet) number within the file */
  batch: number;
  /** rows of the file before this batch */
  rowBase: number;
  /** "record batch" or "row group" */
  unit: string;
};

function where(ctx: BatchContext, row?: number): string {
  const r = row === undefined ? "" : `, row ${row} (row ${ctx.rowBase + row} of the file)`;
  return `shard ${ctx.shard}, ${ctx.unit} ${ctx.batch}${r}`;
}

type ColumnKind = "ids" | "weights";

/** A string column (plain or dictionary-encoded). */
function isText(t: arrow.DataType): boolean {
  if (arrow.DataType.isDictionary(t)) return isText((t as arrow.Dictionary).dictionary);
  return arrow.DataType.isUtf8(t) || arrow.DataType.isLargeUtf8(t);
}

/**
 * Checks that a schema has the corpus columns with accepted types; throws a {@link DataFormatError}
 * naming the column and the type found otherwise. Returns the column positions.
 *
 * @example
 * ```ts
 * import { checkSchema, corpusSchema } from "./schema.ts";
 * const cols = checkSchema(corpusSchema(), "part-00000.arrow", 0);
 * ```
 */
export function checkSchema(
  schema: arrow.Schema,
  file: string,
  shard: number,
): { input: number; inputValue: number; targetIndex: number; targetValue: number } {
  const pos = (name: string, kind: ColumnKind, required: boolean): number => {
    const i = schema.fields.findIndex((f) => f.name === name);
    if (i < 0) {
      if (!required) return -1;
      const found = schema.fields.map((f) => `${f.name}: ${f.type}`).join(", ") || "no columns";
      const text = schema.fields.find((f) => isText(f.type));
      throw new DataFormatError(
        file,
        `shard ${shard}: wrong schema: column "${name}" is missing (found ${found}); ` +
          "the corpus format needs input, target_index, target_value (see docs/corpus-format.md)" +
          (text
            ? `; this looks like a table of text, not training windows: to train on column "${text.name}", ` +
              `prepare it with ${DENO_TASK} corpus --engine duckdb --text-column ${text.name} (a Parquet table), ` +
              "or write it to a text file (one sentence a line) and give that file"
            : ""),
      );
    }
    const t = schema.fields[i].type;
    if (!(arrow.DataType.isList(t) || arrow.DataType.isLargeList(t))) {
      throw new DataFormatError(
        file,
        `shard ${shard}: wrong schema: column "${name}" has type ${t}; expected list or large_list of ${
          kind === "ids" ? "int32/int64" : "float32/float64"
        }`,
      );
    }
    const c = (t as arrow.List).children[0].type;
    const ok = kind === "ids"
      ? arrow.DataType.isInt(c) && c.isSigned && (c.bitWidth === 32 || c.bitWidth === 64)
      : arrow.DataType.isFloat(c) &&
        (c.precision === arrow.Precision.SINGLE || c.precision === arrow.Precision.DOUBLE);
    if (!ok) {
      throw new DataFormatError(
        file,
        `shard ${shard}: wrong schema: column "${name}" has type ${t} (items ${c}); expected list or large_list of ${
          kind === "ids" ? "int32 or int64" : "float32 or float64"
        }`,
      );
    }
    return i;
  };
  return {
    input: pos(COLUMNS.input, "ids", true),
    inputValue: pos(COLUMNS.inputValue, "weights", false),
    targetIndex: pos(COLUMNS.targetIndex, "ids", true),
    targetValue: pos(COLUMNS.targetValue, "weights", true),
  };
}

function offsetsOf(d: arrow.Data, name: string, ctx: BatchContext): Int32Array {
  const n = d.length;
  const vo = d.valueOffsets as unknown as Int32Array | BigInt64Array | undefined;
  if (!vo || vo.length < d.offset + n + 1) {
    throw new DataFormatError(
      ctx.file,
      `${where(ctx)}: column "${name}" has ${
        vo?.length ?? 0
      } offsets for ${n} rows: truncated or corrupt shard`,
    );
  }
  if (vo instanceof Int32Array) return vo.subarray(d.offset, d.offset + n + 1);
  // large_list: 64-bit offsets, read as little-endian 32-bit pairs (no BigInt per element)
  const pairs = new Int32Array(vo.buffer, vo.byteOffset + d.offset * 8, (n + 1) * 2);
  const out = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) {
    const lo = pairs[2 * i], hi = pairs[2 * i + 1];
    if (hi !== 0 || lo < 0) {
      throw new DataFormatError(
        ctx.file,
        `${where(ctx, i < n ? i : n - 1)}: column "${name}" offset ${vo[d.offset + i]} exceeds 2^31-1`,
      );
    }
    out[i] = lo;
  }
  return out;
}

function checkOffsets(off: Int32Array, childLen: number, name: string, ctx: BatchContext): void {
  const n = off.length - 1;
  if (off[0] < 0) {
    throw new DataFormatError(
      ctx.file,
      `${where(ctx, 0)}: column "${name}" has negative offset ${off[0]}: corrupt shard`,
    );
  }
  for (let r = 0; r < n; r++) {
    if (off[r + 1] < off[r]) {
      throw new DataFormatError(
        ctx.file,
        `${where(ctx, r)}: column "${name}" offsets decrease (${off[r]} > ${off[r + 1]}): corrupt shard`,
      );
    }
  }
  if (off[n] > childLen) {
    throw new DataFormatError(
      ctx.file,
      `${where(ctx, n - 1)}: column "${name}" offsets reach ${
        off[n]
      } but only ${childLen} values are present: truncated or corrupt shard`,
    );
  }
}

function noNulls(d: arrow.Data, name: string, ctx: BatchContext): void {
  if (d.nullCount > 0) {
    let row = 0;
    for (; row < d.length; row++) if (!d.getValid(row)) break;
    throw new DataFormatError(
      ctx.file,
      `${where(ctx, row)}: column "${name}" has ${d.nullCount} null(s); nulls are not allowed`,
    );
  }
  const c = d.children[0];
  if (c && c.nullCount > 0) {
    throw new DataFormatError(
      ctx.file,
      `${where(ctx)}: column "${name}" has null items; nulls are not allowed`,
    );
  }
}

function idsOf(
  child: arrow.Data,
  off: Int32Array,
  name: string,
  vocabSize: number,
  ctx: BatchContext,
): Int32Array {
  const n = off.length - 1;
  const from = off[0], to = off[n];
  const raw = child.values as unknown as Int32Array | BigInt64Array;
  const need = child.offset + to;
  if (raw.length < need) {
    throw new DataFormatError(
      ctx.file,
      `${
        where(ctx)
      }: column "${name}" values buffer holds ${raw.length} items, offsets need ${need}: truncated or corrupt shard`,
    );
  }
  let ids: Int32Array;
  let bad = -1;
  const V = vocabSize > 0 ? vocabSize : 2147483647;
  if (raw instanceof Int32Array) {
    ids = raw.subarray(child.offset);
    for (let i = from; i < to; i++) {
      const v = ids[i];
      if (v < 0 || v >= V) {
        bad = i;
        break;
      }
    }
  } else {
    const pairs = new Int32Array(raw.buffer, raw.byteOffset + child.offset * 8, to * 2);
    ids = new Int32Array(to);
    for (let i = from; i < to; i++) {
      const lo = pairs[2 * i], hi = pairs[2 * i + 1];
      if (hi !== 0 || lo < 0 || lo >= V) {
        bad = i;
        break;
      }
      ids[i] = lo;
    }
  }
  if (bad >= 0) {
    const row = rowOfEntry(off, bad);
    const value = raw instanceof Int32Array
      ? String(raw[child.offset + bad])
      : String(raw[child.offset + bad]);
    throw new DataFormatError(
      ctx.file,
      `${where(ctx, row)}: ${name}[${bad - off[row]}] = ${value} outside [0, ${
        vocabSize > 0 ? vocabSize : "2^31"
      })` +
        (vocabSize > 0 ? " (the vocabulary size)" : ""),
    );
  }
  return ids;
}

/**
 * A list column of float weights as float32, checked: finite, and ≥ 0 when `nonNegative` (target weights:
 * those of a log-likelihood for every loss but squared, and never negative in a corpus the corpus job makes).
 */
function weightsOf(
  child: arrow.Data,
  off: Int32Array,
  name: string,
  ctx: BatchContext,
  nonNegative = false,
): Float32Array {
  const n = off.length - 1;
  const from = off[0], to = off[n];
  const raw = child.values as unknown as Float32Array | Float64Array;
  const need = child.offset + to;
  if (raw.length < need) {
    throw new DataFormatError(
      ctx.file,
      `${
        where(ctx)
      }: column "${name}" values buffer holds ${raw.length} items, offsets need ${need}: truncated or corrupt shard`,
    );
  }
  let vals: Float32Array;
  if (raw instanceof Float32Array) vals = raw.subarray(child.offset);
  else {
    vals = new Float32Array(to);
    vals.set(raw.subarray(child.offset + from, child.offset + to), from);
  }
  for (let i = from; i < to; i++) {
    const v = vals[i];
    if (v - v !== 0 || (nonNegative && v < 0)) {
      const row = rowOfEntry(off, i);
      throw new DataFormatError(
        ctx.file,
        `${where(ctx, row)}: ${name}[${i - off[row]}] = ${raw[child.offset + i]}; ` +
          (v - v !== 0 ? "weights must be finite" : "target weights must be ≥ 0"),
      );
    }
  }
  return vals;
}

/**
 * Decodes and fully checks one Arrow record batch of the corpus format. Throws a
 * {@link DataFormatError} naming the file, shard, batch and row for: a wrong schema, nulls, offsets
 * out of bounds (a truncated or corrupt buffer), target_index/target_value lists of different lengths,
 * an id outside [0, vocabSize) (vocabSize 0: only ≥ 0 is checked), a NaN/Inf weight, a negative
 * target weight.
 *
 * @example
 * ```ts
 * import { decodeRecordBatch } from "./schema.ts";
 * // for (const rb of reader) { const b = decodeRecordBatch(rb, 50000, ctx); ... }
 * ```
 */
export function decodeRecordBatch(rb: arrow.RecordBatch, vocabSize: number, ctx: BatchContext): DecodedBatch {
  const cols = checkSchema(rb.schema, ctx.file, ctx.shard);
  const rows = rb.numRows;
  const dIn = rb.data.children[cols.input];
  const dTi = rb.data.children[cols.targetIndex];
  const dTv = rb.data.children[cols.targetValue];
  const dIv = cols.inputValue >= 0 ? rb.data.children[cols.inputValue] : null;
  for (
    const [d, name] of [[dIn, "input"], [dTi, "target_index"], [dTv, "target_value"], [
      dIv,
      "input_value",
    ]] as const
  ) {
    if (!d) continue;
    if (d.length !== rows) {
      throw new DataFormatError(
        ctx.file,
        `${where(ctx)}: column "${name}" has ${d.length} rows, the batch ${rows}: corrupt shard`,
      );
    }
    noNulls(d, name, ctx);
  }
  const inOff = offsetsOf(dIn, "input", ctx);
  checkOffsets(inOff, dIn.children[0].length, "input", ctx);
  const tOff = offsetsOf(dTi, "target_index", ctx);
  checkOffsets(tOff, dTi.children[0].length, "target_index", ctx);
  const vOff = offsetsOf(dTv, "target_value", ctx);
  checkOffsets(vOff, dTv.children[0].length, "target_value", ctx);
  for (let r = 0; r < rows; r++) {
    if (tOff[r + 1] - tOff[r] !== vOff[r + 1] - vOff[r]) {
      throw new DataFormatError(
        ctx.file,
        `${where(ctx, r)}: target_index has ${tOff[r + 1] - tOff[r]} entries but target_value ${
          vOff[r + 1] - vOff[r]
        }`,
      );
    }
  }
  const inIdx = idsOf(dIn.children[0], inOff, "input", vocabSizeOr(vocabSize), ctx);
  const tIdx = idsOf(dTi.children[0], tOff, "target_index", vocabSizeOr(vocabSize), ctx);
  let tVal = weightsOf(dTv.children[0], vOff, "target_value", ctx, true);
  if (vOff[0] !== tOff[0]) tVal = realign(tVal, vOff, tOff);
  let inVal: Float32Array | null = null;
  if (dIv) {
    const ivOff = offsetsOf(dIv, "input_value", ctx);
    checkOffsets(ivOff, dIv.children[0].length, "input_value", ctx);
    for (let r = 0; r < rows; r++) {
      if (inOff[r + 1] - inOff[r] !== ivOff[r + 1] - ivOff[r]) {
        throw new DataFormatError(
          ctx.file,
          `${where(ctx, r)}: input has ${inOff[r + 1] - inOff[r]} entries but input_value ${
            ivOff[r + 1] - ivOff[r]
          }`,
        );
      }
    }
    inVal = weightsOf(dIv.children[0], ivOff, "input_value", ctx);
    if (ivOff[0] !== inOff[0]) inVal = realign(inVal, ivOff, inOff);
  }
  return { rows, inOff, inIdx, inVal, tOff, tIdx, tVal };
}

function vocabSizeOr(v: number): number {
  return v > 0 ? v : 0;
}

/** Copies `vals` (positions by `from`) so that it lines up with the offsets `to` (same row lengths). */
function realign(vals: Float32Array, from: Int32Array, to: Int32Array): Float32Array {
  const n = to.length - 1;
  const out = new Float32Array(to[n]);
  out.set(vals.subarray(from[0], from[n]), to[0]);
  return out;
}
