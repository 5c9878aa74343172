/**
 * Shard writers: Arrow IPC stream files (record batch by record batch, streamed to disk) and Parquet
 * files (zstd, one row group per record batch). Each shard is written to `<name>.tmp`, flushed to disk
 * and renamed to `<name>` only when complete, so a reader never sees a half-written shard.
 *
 * Memory: Arrow holds one record batch; Parquet holds one shard's record batches until it is encoded
 * (bounded by `shardRows`).
 *
 * @module
 */

import * as arrow from "apache-arrow";
import * as pq from "parquet-wasm";
import type { ExampleColumns } from "./columns.ts";
import { corpusSchema } from "./schema.ts";
import { withPath, writeAll } from "../core/os_errors.ts";

/** What a finished shard reports. */
export type ShardInfo = { file: string; rows: number; bytes: number; batches: number };

/** A shard being written. */
export interface ShardWriter {
  /** Appends the rows of `cols` as one record batch (or row group); `cols` may be reused afterwards. */
  writeBatch(cols: ExampleColumns): Promise<void>;
  /** Finishes the file: end marker or footer, fsync, rename `.tmp` → final name. */
  close(): Promise<ShardInfo>;
  /** Gives up: closes and removes the temporary file. */
  abort(): Promise<void>;
}

/**
 * Builds an Arrow record batch of the corpus schema over the first `cols.rows` rows of `cols`, without
 * copying (views of the column buffers) unless `copy` is set.
 *
 * @example
 * ```ts
 * import { ExampleColumns } from "./columns.ts";
 * import { columnsToRecordBatch } from "./shard_writer.ts";
 * const c = new ExampleColumns(); c.pushInput(1); c.pushTarget(2, 1); c.endRow();
 * console.log(columnsToRecordBatch(c).numRows); // 1
 * ```
 */
export function columnsToRecordBatch(
  cols: ExampleColumns,
  copy = false,
  schema = corpusSchema(),
): arrow.RecordBatch {
  const n = cols.rows;
  const nIn = cols.inOff[n], nT = cols.tOff[n];
  const cp = <T extends Int32Array | Float32Array>(a: T): T => (copy ? a.slice() as T : a);
  const inOff = cp(cols.inOff.subarray(0, n + 1));
  const tOff = cp(cols.tOff.subarray(0, n + 1));
  const list = (type: arrow.DataType, offsets: Int32Array, values: Int32Array | Float32Array, len: number) =>
    arrow.makeData({
      type: new arrow.List(new arrow.Field("item", type, false)),
      length: n,
      nullCount: 0,
      valueOffsets: offsets,
      child: arrow.makeData({ type, length: len, nullCount: 0, data: values } as never),
    } as never);
  const children = [
    list(new arrow.Int32(), inOff, cp(cols.inIdx.subarray(0, nIn)), nIn),
    list(new arrow.Int32(), tOff, cp(cols.tIdx.subarray(0, nT)), nT),
    list(new arrow.Float32(), tOff, cp(cols.tVal.subarray(0, nT)), nT),
  ];
  const data = arrow.makeData({ type: new arrow.Struct(schema.fields), length: n, nullCount: 0, children });
  return new arrow.RecordBatch(schema, data);
}

const EOS = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0);

/** Length of the first IPC message (continuation marker, metadata length, metadata) in `bytes`. */
function firstMessageLength(bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) === 0xffffffff) return 8 + dv.getInt32(4, true);
  return 4 + dv.getInt32(0, true); // pre-0.15 framing
}

/**
 * The pieces an Arrow IPC writer produced (its metadata and padding, and views of the column buffers), in
 * order, to be written as they are: `toUint8Array` (and `tableToIPC`) joins them into one new array first,
 * a copy of every column in new memory (a page fault per 4 KiB on the project's VMs: BENCHMARKS.md, "The
 * job outside the training loop"), only to write it out. The one home of that (the shards here, the
 * embeddings' `.arrow` file in lib/export/arrow.ts).
 *
 * @example
 * ```ts
 * import * as arrow from "apache-arrow";
 * import { arrowPieces } from "./shard_writer.ts";
 * const table = arrow.tableFromArrays({ x: Float32Array.of(1, 2) });
 * const pieces = await arrowPieces(arrow.RecordBatchStreamWriter.writeAll(table));
 * console.log(pieces.reduce((n, p) => n + p.length, 0) === arrow.tableToIPC(table).length); // true
 * ```
 */
export async function arrowPieces(writer: arrow.RecordBatchWriter): Promise<Uint8Array[]> {
  const pieces: Uint8Array[] = [];
  for await (const piece of writer) pieces.push(piece);
  return pieces;
}

/** The first `n` bytes of the concatenation of `pieces` (a copy; n small). */
function headOf(pieces: Uint8Array[], n: number): Uint8Array {
  const head = new Uint8Array(n);
  let at = 0;
  for (const p of pieces) {
    if (at === n) break;
    const take = Math.min(p.length, n - at);
    head.set(p.subarray(0, take), at);
    at += take;
  }
  return head.subarray(0, at);
}

/** Bytes [from, to) of the concatenation of `pieces`, as views of them. */
function rangeOf(pieces: Uint8Array[], from: number, to: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of pieces) {
    const start = Math.max(from, at), end = Math.min(to, at + p.length);
    if (start < end) out.push(p.subarray(start - at, end - at));
    at += p.length;
  }
  return out;
}

/**
 * Opens an Arrow IPC *stream* shard at `path` (written as `path + ".tmp"` until closed). Each
 * `writeBatch` serialises one record batch and appends it to the file.
 *
 * @example
 * ```ts
 * import { openArrowShard } from "./shard_writer.ts";
 * import { ExampleColumns } from "./columns.ts";
 * const w = await openArrowShard("/tmp/part-00000.arrow");
 * const c = new ExampleColumns(); c.pushInput(1); c.pushTarget(2, 1); c.endRow();
 * await w.writeBatch(c);
 * console.log(await w.close()); // { file: "/tmp/part-00000.arrow", rows: 1, ... }
 * ```
 */
export async function openArrowShard(path: string, metadata?: Map<string, string>): Promise<ShardWriter> {
  const tmp = `${path}.tmp`;
  const file = await withPath(
    "cannot write shard",
    path,
    () => Deno.open(tmp, { write: true, create: true, truncate: true }),
  );
  const schema = corpusSchema(metadata);
  let rows = 0, bytes = 0, batches = 0, open = true;
  const put = async (b: Uint8Array) => {
    await withPath("cannot write shard", path, () => writeAll(file, b));
    bytes += b.length;
  };
  return {
    async writeBatch(cols) {
      if (cols.rows === 0) return;
      const pieces = await arrowPieces(
        arrow.RecordBatchStreamWriter.writeAll([columnsToRecordBatch(cols, false, schema)]),
      );
      const total = pieces.reduce((n, p) => n + p.length, 0);
      // the stream = schema message + record batch message + end-of-stream marker
      const from = batches === 0 ? 0 : firstMessageLength(headOf(pieces, 8));
      for (const piece of rangeOf(pieces, from, total - EOS.length)) await put(piece);
      rows += cols.rows;
      batches++;
    },
    async close() {
      if (batches === 0) {
        // an empty but valid stream: the schema alone
        const full = arrow.RecordBatchStreamWriter.writeAll(new arrow.Table(schema)).toUint8Array(true);
        await put(full.subarray(0, full.length - EOS.length));
      }
      await put(EOS);
      await withPath("cannot write shard", path, () => file.sync());
      file.close();
      open = false;
      await Deno.rename(tmp, path);
      return { file: path, rows, bytes, batches };
    },
    async abort() {
      if (open) file.close();
      open = false;
      await Deno.remove(tmp).catch(() => {});
    },
  };
}

/**
 * Opens a Parquet shard at `path` (zstd, one row group per `writeBatch`), encoded with
 * parquet-wasm when closed and written as `path + ".tmp"`, then renamed.
 *
 * @example
 * ```ts
 * import { openParquetShard } from "./shard_writer.ts";
 * import { ExampleColumns } from "./columns.ts";
 * const w = await openParquetShard("/tmp/part-00000.parquet");
 * const c = new ExampleColumns(); c.pushInput(1); c.pushTarget(2, 1); c.endRow();
 * await w.writeBatch(c);
 * await w.close();
 * ```
 */
export function openParquetShard(
  path: string,
  opts: { metadata?: Map<string, string> } = {},
): Promise<ShardWriter> {
  const schema = corpusSchema(opts.metadata);
  const held: arrow.RecordBatch[] = [];
  let rows = 0, maxRows = 0;
  return Promise.resolve({
    writeBatch(cols) {
      if (cols.rows > 0) {
        held.push(columnsToRecordBatch(cols, true, schema));
        rows += cols.rows;
        if (cols.rows > maxRows) maxRows = cols.rows;
      }
      return Promise.resolve();
    },
    async close() {
      const ipc = arrow.RecordBatchStreamWriter.writeAll(held.length ? held : new arrow.Table(schema))
        .toUint8Array(true);
      held.length = 0;
      const props = new pq.WriterPropertiesBuilder()
        .setCompression(pq.Compression.ZSTD)
        // ids of a large vocabulary: dictionary pages cost 3x the write time and double the size here
        .setDictionaryEnabled(false)
        .setMaxRowGroupSize(Math.max(1, maxRows))
        .build();
      const table = pq.Table.fromIPCStream(ipc);
      const bytes = pq.writeParquet(table, props);
      const tmp = `${path}.tmp`;
      await withPath("cannot write shard", path, async () => {
        const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
        try {
          await writeAll(file, bytes);
          await file.sync();
        } finally {
          file.close();
        }
      });
      await Deno.rename(tmp, path);
      return { file: path, rows, bytes: bytes.length, batches: Math.ceil(rows / Math.max(1, maxRows)) };
    },
    async abort() {
      held.length = 0;
      await Deno.remove(`${path}.tmp`).catch(() => {});
    },
  });
}
