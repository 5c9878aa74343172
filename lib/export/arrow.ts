/**
 * Arrow IPC embeddings: a table with columns `word: utf8` and `vector: fixed_size_list<float32>[d]`
 * (non-nullable items), one row per word, written as an Arrow IPC *file* (`.arrow`, random access; the
 * reader also accepts the IPC stream format). Schema metadata: `factorout.dim` = d.
 *
 * @module
 */

import * as arrow from "apache-arrow";
import { DataFormatError } from "../core/errors.ts";
import { type AtomicWriteOptions, writeFileAtomic } from "../core/atomic.ts";
import { checkEmbeddings, type Embeddings } from "./embeddings.ts";
import { arrowPieces } from "../io/shard_writer.ts";

/**
 * Builds the Arrow table `{ word: utf8, vector: fixed_size_list<float32>[d] }` without copying `vectors`.
 *
 * @example
 * ```ts
 * import { embeddingsToArrowTable } from "./arrow.ts";
 * const t = embeddingsToArrowTable({ words: ["a", "b"], vectors: Float32Array.of(1, 0, 0, 1), d: 2 });
 * console.log(t.numRows); // 2
 * ```
 */
export function embeddingsToArrowTable(e: Embeddings): arrow.Table {
  const { words, vectors, d } = e;
  checkEmbeddings(words, vectors, d, "embeddings");
  const item = new arrow.Field("item", new arrow.Float32(), false);
  const listType = new arrow.FixedSizeList(d, item);
  const child = arrow.makeData({
    type: new arrow.Float32(),
    length: vectors.length,
    nullCount: 0,
    data: vectors,
  });
  const vecData = arrow.makeData({ type: listType, length: words.length, nullCount: 0, child });
  const wordVec = arrow.vectorFromArray(words, new arrow.Utf8());
  const schema = new arrow.Schema(
    [new arrow.Field("word", new arrow.Utf8(), false), new arrow.Field("vector", listType, false)],
    new Map([["factorout.dim", String(d)]]),
  );
  const batch = new arrow.RecordBatch(
    schema,
    arrow.makeData({
      type: new arrow.Struct(schema.fields),
      length: words.length,
      nullCount: 0,
      children: [wordVec.data[0], vecData],
    }),
  );
  return new arrow.Table(schema, [batch]);
}

/** UTF-8 as it is: a word that starts with U+FEFF keeps it (not taken for a byte-order mark). */
const WORD_DECODER = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Reads embeddings back from an Arrow table with columns `word` (utf8 or large utf8) and `vector`
 * (fixed_size_list<float32>[d]); `file` names the source in errors (wrong columns, nulls, non-finite
 * values).
 *
 * @example
 * ```ts
 * import { arrowTableToEmbeddings, embeddingsToArrowTable } from "./arrow.ts";
 * const t = embeddingsToArrowTable({ words: ["a"], vectors: Float32Array.of(1, 2), d: 2 });
 * const e = arrowTableToEmbeddings(t, "memory");
 * ```
 */
export function arrowTableToEmbeddings(table: arrow.Table, file: string): Embeddings {
  const wordField = table.schema.fields.find((f) => f.name === "word");
  const vecField = table.schema.fields.find((f) => f.name === "vector");
  if (!wordField || !vecField) {
    throw new DataFormatError(
      file,
      `expected columns "word" and "vector", found ${
        table.schema.fields.map((f) => f.name).join(", ") || "none"
      }`,
    );
  }
  if (!arrow.DataType.isUtf8(wordField.type) && !arrow.DataType.isLargeUtf8(wordField.type)) {
    throw new DataFormatError(file, `column "word" must be utf8, got ${wordField.type}`);
  }
  const vt = vecField.type;
  if (
    !arrow.DataType.isFixedSizeList(vt) || !arrow.DataType.isFloat(vt.children[0].type) ||
    (vt.children[0].type as arrow.Float).precision !== arrow.Precision.SINGLE
  ) {
    throw new DataFormatError(file, `column "vector" must be fixed_size_list<float32>[d], got ${vt}`);
  }
  const d = (vt as arrow.FixedSizeList).listSize;
  if (!(d > 0)) {
    throw new DataFormatError(
      file,
      `column "vector" has ${d} values per row (${vt}): a vector needs at least one`,
    );
  }
  const V = table.numRows;
  const words = new Array<string>(V);
  const vectors = new Float32Array(V * d);
  const wordCol = table.getChild("word")!;
  const vecCol = table.getChild("vector")!;
  let row = 0;
  for (const data of wordCol.data) {
    const v = arrow.makeVector(data);
    // the bytes of each word decoded here: apache-arrow's own decoder strips a leading U+FEFF as a
    // byte-order mark, so "\ufeffthe" read back as "the"
    const offsets = data.valueOffsets as Int32Array | BigInt64Array, bytes = data.values as Uint8Array;
    for (let i = 0; i < data.length; i++) {
      if (!v.isValid(i)) throw new DataFormatError(file, `row ${row + i}: word is null`);
      const start = Number(offsets[i]), end = Number(offsets[i + 1]); // sliced with the data;
      words[row + i] = WORD_DECODER.decode(bytes.subarray(start, end));
    }
    row += data.length;
  }
  row = 0;
  for (const data of vecCol.data) {
    if (data.nullCount > 0) {
      throw new DataFormatError(file, `rows ${row}…${row + data.length - 1}: null vector`);
    }
    const child = data.children[0];
    if (child.nullCount > 0) {
      throw new DataFormatError(file, `rows ${row}…${row + data.length - 1}: null value`);
    }
    const values = child.values as Float32Array;
    // apache-arrow slices value buffers eagerly: `values` already starts at this slice's first float
    if (values.length < data.length * d) {
      throw new DataFormatError(
        file,
        `rows ${row}…: vector data holds ${values.length} floats, expected ${data.length * d}`,
      );
    }
    vectors.set(values.subarray(0, data.length * d), row * d);
    row += data.length;
  }
  for (let i = 0; i < vectors.length; i++) {
    if (!Number.isFinite(vectors[i])) {
      const r = Math.floor(i / d);
      throw new DataFormatError(file, `row ${r} ("${words[r]}"): value ${(i % d) + 1} is ${vectors[i]}`);
    }
  }
  return { words, vectors, d };
}

/**
 * Writes embeddings as an Arrow IPC file to `path`, atomically; `opts.digest` is given every byte written.
 *
 * @example
 * ```ts
 * import { writeArrowEmbeddings } from "./arrow.ts";
 * await writeArrowEmbeddings("/tmp/e.arrow", { words: ["a"], vectors: Float32Array.of(1, 2), d: 2 });
 * ```
 */
export async function writeArrowEmbeddings(
  path: string,
  e: Embeddings,
  opts: Pick<AtomicWriteOptions, "digest"> = {},
): Promise<void> {
  // the writer's pieces (the vectors' a view of e.vectors) written as they are, not joined into a new array
  const pieces = await arrowPieces(arrow.RecordBatchFileWriter.writeAll(embeddingsToArrowTable(e)));
  await writeFileAtomic(path, async (write) => {
    for (const piece of pieces) await write(piece);
  }, opts);
}

/**
 * Reads embeddings from an Arrow IPC file or stream.
 *
 * @example
 * ```ts
 * import { readArrowEmbeddings, writeArrowEmbeddings } from "./arrow.ts";
 * await writeArrowEmbeddings("/tmp/r.arrow", { words: ["a"], vectors: Float32Array.of(1, 2), d: 2 });
 * const { words, vectors, d } = await readArrowEmbeddings("/tmp/r.arrow");
 * ```
 */
export async function readArrowEmbeddings(path: string): Promise<Embeddings> {
  const bytes = await Deno.readFile(path);
  let table: arrow.Table;
  try {
    table = arrow.tableFromIPC(bytes);
  } catch (e) {
    // apache-arrow's own reason where it gives one ("Expected to read … bytes"); a TypeError from inside
    // its reader ("Cannot read properties of null") says nothing to the user: a cut or corrupt file
    const why = e instanceof TypeError
      ? `truncated or corrupt (${bytes.length} bytes)`
      : (e as Error).message;
    throw new DataFormatError(path, `not an Arrow IPC file or stream: ${why}`);
  }
  return arrowTableToEmbeddings(table, path);
}
