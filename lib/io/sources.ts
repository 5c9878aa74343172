/**
 * Record-batch cursors over one shard file, Arrow IPC (stream or file format) or Parquet, each batch
 * decoded and fully checked ({@link decodeRecordBatch}) before it is returned.
 *
 * - Arrow IPC stream: read from disk as a stream, one message at a time (memory: one record batch); a
 *   file that stops at a message boundary without the end-of-stream marker is reported as truncated.
 *   Arrow IPC file format (`ARROW1` magic) is read whole (memory: the file).
 * - Parquet: the footer is read first, then one row group at a time through a `Blob` whose `slice`
 *   reads the file (memory: one row group, compressed and decoded).
 *
 * @module
 */

import * as arrow from "apache-arrow";
import * as pq from "parquet-wasm";
import { DataFormatError } from "../errors.ts";
import { type BatchContext, decodeRecordBatch, type DecodedBatch } from "./schema.ts";

/** One decoded batch of a shard. */
export type ShardBatch = { batch: number; rowBase: number; data: DecodedBatch };

/** Reads a shard's batches in order, starting at a given batch. */
export interface ShardCursor {
  /** The next batch, or null at the end of the file (after checking the file is complete). */
  next(): Promise<ShardBatch | null>;
  /** Closes the file. */
  close(): void;
}

/** What the cursor needs to know about the shard. */
export type ShardSpec = {
  path: string;
  /** position in the corpus's file list (for messages) */
  shard: number;
  /** rows the manifest promises, checked at the end of the file (undefined: unknown) */
  expectedRows?: number;
};

/**
 * "parquet" or "arrow", from the extension (`.parquet`, `.pq`; `.arrow`, `.arrows`, `.ipc`, `.feather`)
 * or else from the first bytes.
 *
 * @example
 * ```ts
 * import { shardKind } from "./sources.ts";
 * console.log(await shardKind("data/part-00000.parquet")); // "parquet"
 * ```
 */
export async function shardKind(path: string): Promise<"arrow" | "parquet"> {
  if (/\.(parquet|pq)$/i.test(path)) return "parquet";
  if (/\.(arrow|arrows|ipc|feather)$/i.test(path)) return "arrow";
  const f = await Deno.open(path);
  try {
    const head = new Uint8Array(4);
    const n = await f.read(head);
    return n === 4 && new TextDecoder().decode(head) === "PAR1" ? "parquet" : "arrow";
  } finally {
    f.close();
  }
}

function corrupt(spec: ShardSpec, unit: string, batch: number, e: unknown): DataFormatError {
  if (e instanceof DataFormatError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new DataFormatError(spec.path, `shard ${spec.shard}, ${unit} ${batch}: truncated or corrupt shard (${msg})`);
}

/**
 * Opens a cursor on one shard positioned at `startBatch` (earlier batches are skipped without being
 * checked). `vocabSize` > 0 bounds the ids.
 *
 * @example
 * ```ts
 * import { openShard } from "./sources.ts";
 * const c = await openShard({ path: "data/corpus/part-00000.arrow", shard: 0 }, 50000, 0);
 * for (let b = await c.next(); b; b = await c.next()) console.log(b.batch, b.data.rows);
 * c.close();
 * ```
 */
export async function openShard(spec: ShardSpec, vocabSize: number, startBatch: number): Promise<ShardCursor> {
  return (await shardKind(spec.path)) === "parquet"
    ? await openParquet(spec, vocabSize, startBatch)
    : await openArrow(spec, vocabSize, startBatch);
}

function checkRows(spec: ShardSpec, rows: number, unit: string): void {
  if (spec.expectedRows !== undefined && rows !== spec.expectedRows) {
    throw new DataFormatError(
      spec.path,
      `shard ${spec.shard}: holds ${rows} rows but the manifest says ${spec.expectedRows}: truncated or replaced shard (${unit}s read to the end)`,
    );
  }
}

async function openArrow(spec: ShardSpec, vocabSize: number, startBatch: number): Promise<ShardCursor> {
  const unit = "record batch";
  let file: Deno.FsFile;
  try {
    file = await Deno.open(spec.path);
  } catch (e) {
    throw new DataFormatError(spec.path, `shard ${spec.shard}: cannot open: ${(e as Error).message}`);
  }
  const head = new Uint8Array(6);
  const nHead = await file.read(head) ?? 0;
  await file.seek(0, Deno.SeekMode.Start);
  const isFileFormat = nHead === 6 && new TextDecoder().decode(head) === "ARROW1";

  let batches: AsyncIterator<arrow.RecordBatch> | Iterator<arrow.RecordBatch>;
  const tail = new Uint8Array(8);
  let tailLen = 0, totalBytes = 0;
  if (isFileFormat) {
    const bytes = await Deno.readFile(spec.path);
    file.close();
    totalBytes = bytes.length;
    const end = new TextDecoder().decode(bytes.subarray(bytes.length - 6));
    if (end !== "ARROW1") {
      throw new DataFormatError(spec.path, `shard ${spec.shard}: truncated Arrow IPC file (no closing ARROW1 magic; ${bytes.length} bytes)`);
    }
    try {
      batches = arrow.RecordBatchReader.from(bytes)[Symbol.iterator]();
    } catch (e) {
      throw corrupt(spec, unit, 0, e);
    }
  } else {
    const stream = file.readable.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          totalBytes += chunk.length;
          if (chunk.length >= 8) {
            tail.set(chunk.subarray(chunk.length - 8));
            tailLen = 8;
          } else {
            const keep = Math.min(tailLen, 8 - chunk.length);
            tail.copyWithin(0, tailLen - keep, tailLen);
            tail.set(chunk, keep);
            tailLen = keep + chunk.length;
          }
          ctl.enqueue(chunk);
        },
      }),
    );
    try {
      const reader = await arrow.RecordBatchReader.from(stream);
      batches = reader[Symbol.asyncIterator]();
    } catch (e) {
      throw corrupt(spec, unit, 0, e);
    }
  }
  let batch = -1, rowBase = 0, done = false;
  const endCheck = () => {
    if (!isFileFormat) {
      const eos = tailLen === 8 && tail[0] === 0xff && tail[1] === 0xff && tail[2] === 0xff && tail[3] === 0xff &&
        tail[4] === 0 && tail[5] === 0 && tail[6] === 0 && tail[7] === 0;
      const legacy = tailLen >= 4 && tail[tailLen - 4] === 0 && tail[tailLen - 3] === 0 && tail[tailLen - 2] === 0 && tail[tailLen - 1] === 0;
      if (!eos && !legacy) {
        throw new DataFormatError(
          spec.path,
          `shard ${spec.shard}: truncated Arrow IPC stream after ${unit} ${batch} (${totalBytes} bytes, no end-of-stream marker)`,
        );
      }
    }
    checkRows(spec, rowBase, unit);
  };
  return {
    async next() {
      if (done) return null;
      for (;;) {
        let r: IteratorResult<arrow.RecordBatch>;
        try {
          r = await batches.next();
        } catch (e) {
          done = true;
          throw corrupt(spec, unit, batch + 1, e);
        }
        if (r.done) {
          done = true;
          endCheck();
          return null;
        }
        batch++;
        const rb = r.value;
        if (batch < startBatch) {
          rowBase += rb.numRows;
          continue;
        }
        const ctx: BatchContext = { file: spec.path, shard: spec.shard, batch, rowBase, unit };
        let data: DecodedBatch;
        try {
          data = decodeRecordBatch(rb, vocabSize, ctx);
        } catch (e) {
          done = true;
          throw corrupt(spec, unit, batch, e);
        }
        const out = { batch, rowBase, data };
        rowBase += rb.numRows;
        return out;
      }
    },
    close() {
      done = true;
      // cancel the stream (closes the file); errors on an already-closed file are irrelevant here
      (batches as AsyncIterator<arrow.RecordBatch>).return?.()?.catch?.(() => {});
      try {
        file.close();
      } catch { /* already closed by the stream */ }
    },
  };
}

/** A Blob whose `slice()` reads the file (synchronously) at the requested range: lets parquet-wasm read
 * the footer and then one row group at a time instead of the whole file. */
function fileBlob(file: Deno.FsFile, size: number): Blob {
  return {
    size,
    type: "",
    slice(start = 0, end = size): Blob {
      const s = Math.max(0, start < 0 ? size + start : start), e = Math.min(size, end < 0 ? size + end : end);
      const buf = new Uint8Array(Math.max(0, e - s));
      file.seekSync(s, Deno.SeekMode.Start);
      let o = 0;
      while (o < buf.length) {
        const n = file.readSync(buf.subarray(o));
        if (n === null || n === 0) break;
        o += n;
      }
      return new Blob([buf.subarray(0, o)]);
    },
  } as unknown as Blob;
}

async function openParquet(spec: ShardSpec, vocabSize: number, startBatch: number): Promise<ShardCursor> {
  const unit = "row group";
  let file: Deno.FsFile;
  try {
    file = await Deno.open(spec.path);
  } catch (e) {
    throw new DataFormatError(spec.path, `shard ${spec.shard}: cannot open: ${(e as Error).message}`);
  }
  const size = (await file.stat()).size;
  const blob = fileBlob(file, size);
  let pf: pq.ParquetFile;
  const groupRows: number[] = [];
  try {
    if (size < 12) throw new Error(`${size} bytes is too short for a Parquet file`);
    const tailBytes = new Uint8Array(await blob.slice(size - 4, size).arrayBuffer());
    if (new TextDecoder().decode(tailBytes) !== "PAR1") throw new Error("no closing PAR1 magic (truncated file?)");
    pf = await pq.ParquetFile.fromFile(blob);
    const md = pf.metadata();
    for (let g = 0; g < md.numRowGroups(); g++) groupRows.push(md.rowGroup(g).numRows());
  } catch (e) {
    file.close();
    throw corrupt(spec, unit, 0, e);
  }
  let g = 0, rowBase = 0, done = false;
  for (; g < startBatch && g < groupRows.length; g++) rowBase += groupRows[g];
  return {
    async next() {
      if (done) return null;
      if (g >= groupRows.length) {
        done = true;
        checkRows(spec, groupRows.reduce((s, x) => s + x, 0), unit);
        return null;
      }
      const ctx: BatchContext = { file: spec.path, shard: spec.shard, batch: g, rowBase, unit };
      let data: DecodedBatch;
      try {
        const t = await pf.read({ rowGroups: [g], batchSize: Math.max(1, groupRows[g]) });
        const at = arrow.tableFromIPC(t.intoIPCStream());
        if (at.numRows !== groupRows[g]) throw new Error(`row group decoded to ${at.numRows} rows, its metadata says ${groupRows[g]}`);
        const parts = at.batches.map((rb, i) => decodeRecordBatch(rb, vocabSize, { ...ctx, rowBase: rowBase + rowsBefore(at.batches, i) }));
        data = parts.length === 1 ? parts[0] : concatDecoded(parts);
      } catch (e) {
        done = true;
        throw corrupt(spec, unit, g, e);
      }
      const out = { batch: g, rowBase, data };
      rowBase += groupRows[g];
      g++;
      return out;
    },
    close() {
      done = true;
      try {
        pf.free();
      } catch { /* freed */ }
      try {
        file.close();
      } catch { /* closed */ }
    },
  };
}

function rowsBefore(batches: arrow.RecordBatch[], i: number): number {
  let s = 0;
  for (let k = 0; k < i; k++) s += batches[k].numRows;
  return s;
}

/** Concatenates decoded batches (when a row group decodes to several record batches). */
function concatDecoded(parts: DecodedBatch[]): DecodedBatch {
  let rows = 0, nIn = 0, nT = 0;
  for (const p of parts) {
    rows += p.rows;
    nIn += p.inOff[p.rows] - p.inOff[0];
    nT += p.tOff[p.rows] - p.tOff[0];
  }
  const hasInVal = parts.some((p) => p.inVal);
  const out: DecodedBatch = {
    rows,
    inOff: new Int32Array(rows + 1),
    inIdx: new Int32Array(nIn),
    inVal: hasInVal ? new Float32Array(nIn) : null,
    tOff: new Int32Array(rows + 1),
    tIdx: new Int32Array(nT),
    tVal: new Float32Array(nT),
  };
  let r0 = 0, i0 = 0, t0 = 0;
  for (const p of parts) {
    const a = p.inOff[0], b = p.inOff[p.rows], c = p.tOff[0], d = p.tOff[p.rows];
    for (let r = 1; r <= p.rows; r++) {
      out.inOff[r0 + r] = i0 + p.inOff[r] - a;
      out.tOff[r0 + r] = t0 + p.tOff[r] - c;
    }
    out.inIdx.set(p.inIdx.subarray(a, b), i0);
    if (out.inVal) {
      if (p.inVal) out.inVal.set(p.inVal.subarray(a, b), i0);
      else out.inVal.fill(1, i0, i0 + b - a);
    }
    out.tIdx.set(p.tIdx.subarray(c, d), t0);
    out.tVal.set(p.tVal.subarray(c, d), t0);
    r0 += p.rows;
    i0 += b - a;
    t0 += d - c;
  }
  return out;
}
