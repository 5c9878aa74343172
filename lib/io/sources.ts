/**
 * Record-batch cursors over one shard file, Arrow IPC (stream or file format) or Parquet, each batch
 * decoded and fully checked ({@link decodeRecordBatch}) before it is returned.
 *
 * - Arrow IPC stream: read from disk as a stream, one message at a time (memory: one record batch); a
 *   file that stops at a message boundary without the end-of-stream marker is reported as truncated.
 *   Arrow IPC file format (`ARROW1` magic) is read whole (memory: the file).
 * - Parquet: the footer is read first, then row groups are decoded by a pool of Web Workers
 *   ({@link ParquetDecoders}, parquet-wasm reading only the byte ranges it needs), up to two row groups
 *   per worker ahead of the consumer (memory: those row groups, compressed and decoded).
 *
 * @module
 */

import * as arrow from "apache-arrow";
import { DataFormatError } from "../core/errors.ts";
import { describeOsError } from "../core/os_errors.ts";
import { type SniffedFile, sniffFile } from "./detect.ts";
import { type BatchContext, type DecodedBatch, decodeRecordBatch } from "./schema.ts";

/** One decoded batch of a shard, with the schema of its record batch. */
export type ShardBatch = { batch: number; rowBase: number; data: DecodedBatch; schema: arrow.Schema };

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
  /** bytes the manifest promises, checked when the file is opened (undefined or 0: unknown) */
  expectedBytes?: number;
};

/**
 * "parquet" or "arrow", from the first bytes (`PAR1`; `ARROW1` or an IPC stream's continuation
 * marker), whatever the file's name. Anything else is refused with a {@link DataFormatError} naming the
 * file and what it looks like.
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { shardKind } from "./sources.ts";
 * console.log(await shardKind("data/part-00000.parquet")); // "parquet"
 * ```
 */
export async function shardKind(path: string): Promise<"arrow" | "parquet"> {
  let s: SniffedFile;
  try {
    s = await sniffFile(path);
  } catch (e) {
    // permission or I/O errors are the operating system's (exit 8); a missing shard is bad data (5)
    const os = describeOsError(e, "cannot read shard", path, { reading: true });
    if (os && os.errno !== "ENOENT") throw os;
    throw new DataFormatError(path, `cannot open the shard: ${(e as Error).message}`);
  }
  if (s.kind === "arrow" || s.kind === "parquet") return s.kind;
  const what = s.kind === "binary" ? "binary data" : s.kind === "empty" ? "an empty file" : `${s.kind}`;
  throw new DataFormatError(
    path,
    `not an Arrow IPC or Parquet shard (no ARROW1/PAR1/IPC-stream magic bytes; it holds ${what})`,
  );
}

/** An operating-system error other than a missing file (permission, I/O error): exit 8 naming the shard. */
function unreadable(spec: ShardSpec, e: unknown): Error | undefined {
  const os = describeOsError(e, "cannot read shard", spec.path, { reading: true });
  return os && os.errno !== "ENOENT" ? os : undefined;
}

function corrupt(spec: ShardSpec, unit: string, batch: number, e: unknown): Error {
  if (e instanceof DataFormatError) return e;
  const os = unreadable(spec, e);
  if (os) return os;
  const msg = e instanceof Error ? e.message : String(e);
  return new DataFormatError(
    spec.path,
    `shard ${spec.shard}, ${unit} ${batch}: truncated or corrupt shard (${msg})`,
  );
}

/**
 * Opens a cursor on one shard positioned at `startBatch` (earlier batches are skipped without being
 * checked). `vocabSize` > 0 bounds the ids. Parquet row groups are decoded by `pool` (or by a private
 * one-worker pool closed with the cursor).
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { openShard } from "./sources.ts";
 * const c = await openShard({ path: "data/corpus/part-00000.arrow", shard: 0 }, 50000, 0);
 * for (let b = await c.next(); b; b = await c.next()) console.log(b.batch, b.data.rows);
 * c.close();
 * ```
 */
export async function openShard(
  spec: ShardSpec,
  vocabSize: number,
  startBatch: number,
  pool?: ParquetDecoders,
): Promise<ShardCursor> {
  // a shard replaced after the manifest was read (a corpus job writing into the folder a run reads, at
  // each epoch's open): its size gives it away even when its row count does not (skipgram: a row a token)
  if (spec.expectedBytes) {
    const size = (await Deno.stat(spec.path).catch(() => null))?.size;
    if (size !== undefined && size !== spec.expectedBytes) {
      throw new DataFormatError(
        spec.path,
        `shard ${spec.shard}: holds ${size} bytes but the manifest says ${spec.expectedBytes}: replaced or ` +
          `truncated shard (was the corpus prepared again while this job read it?)`,
      );
    }
  }
  return (await shardKind(spec.path)) === "parquet"
    ? await openParquet(spec, vocabSize, startBatch, pool)
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
    throw unreadable(spec, e) ??
      new DataFormatError(spec.path, `shard ${spec.shard}: cannot open: ${(e as Error).message}`);
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
      throw new DataFormatError(
        spec.path,
        `shard ${spec.shard}: truncated Arrow IPC file (no closing ARROW1 magic; ${bytes.length} bytes)`,
      );
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
      const eos = tailLen === 8 && tail[0] === 0xff && tail[1] === 0xff && tail[2] === 0xff &&
        tail[3] === 0xff &&
        tail[4] === 0 && tail[5] === 0 && tail[6] === 0 && tail[7] === 0;
      const legacy = tailLen >= 4 && tail[tailLen - 4] === 0 && tail[tailLen - 3] === 0 &&
        tail[tailLen - 2] === 0 && tail[tailLen - 1] === 0;
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
        const out = { batch, rowBase, data, schema: rb.schema };
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

type DecoderSlot = {
  w: Worker;
  pending: Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>;
  dead: boolean;
};

/**
 * A small pool of Web Workers decoding Parquet row groups off the main thread (parquet-wasm in each), so
 * that decoding overlaps with the consumer's work and with each other; row groups are requested ahead
 * (up to two per worker). One pool serves the shards of a reader one after another; `close()` ends the
 * workers. A worker that traps on corrupt data is discarded and the error reported for its row group.
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { ParquetDecoders, openShard } from "./sources.ts";
 * const pool = new ParquetDecoders(2);
 * const c = await openShard({ path: "data/corpus/part-00000.parquet", shard: 0 }, 0, 0, pool);
 * console.log((await c.next())?.data.rows);
 * c.close();
 * pool.close();
 * ```
 */
export class ParquetDecoders {
  readonly #size: number;
  #workers: DecoderSlot[] = [];
  #next = 0;
  #id = 0;

  /** @param size workers (default 2) */
  constructor(size = 2) {
    this.#size = Math.max(1, size);
  }

  /** Number of workers. */
  get size(): number {
    return this.#size;
  }

  #worker(i: number): DecoderSlot {
    let slot = this.#workers[i];
    if (!slot || slot.dead) {
      const w = new Worker(new URL("./parquet_worker.ts", import.meta.url), { type: "module" });
      const s: DecoderSlot = { w, pending: new Map(), dead: false };
      w.onmessage = (ev: MessageEvent) => {
        const m = ev.data as { id: number; error?: string; fatal?: boolean; code?: string };
        if (m.fatal) {
          // the worker ended itself after a trap: fail what it held, start a fresh one next time
          s.dead = true;
          w.terminate();
          for (const p of s.pending.values()) p.reject(new Error(m.error));
          s.pending.clear();
          return;
        }
        const p = s.pending.get(m.id);
        if (!p) return;
        s.pending.delete(m.id);
        if (m.error !== undefined) {
          p.reject(Object.assign(new Error(m.error), m.code ? { code: m.code } : {}));
        } else p.resolve(m);
      };
      w.onerror = (ev: ErrorEvent) => {
        ev.preventDefault();
        s.dead = true;
        w.terminate();
        for (const p of s.pending.values()) p.reject(new Error(`decoder crashed: ${ev.message}`));
        s.pending.clear();
      };
      this.#workers[i] = s;
      slot = s;
    }
    return slot;
  }

  /** Sends a request to worker i (round robin when i is undefined); resolves with its answer. */
  call(msg: Record<string, unknown>, i?: number): Promise<Record<string, unknown>> {
    const k = i ?? (this.#next++ % this.#size);
    const s = this.#worker(k);
    const id = ++this.#id;
    return new Promise((resolve, reject) => {
      s.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      s.w.postMessage({ ...msg, id });
    });
  }

  /** Ends the workers (pending requests are rejected). */
  close(): void {
    for (const s of this.#workers) {
      if (!s) continue;
      s.w.terminate();
      for (const p of s.pending.values()) p.reject(new Error("decoder pool closed"));
      s.pending.clear();
      s.dead = true;
    }
    this.#workers = [];
  }
}

async function openParquet(
  spec: ShardSpec,
  vocabSize: number,
  startBatch: number,
  pool?: ParquetDecoders,
): Promise<ShardCursor> {
  const unit = "row group";
  const own = pool ? null : new ParquetDecoders(1);
  const decoders = pool ?? own!;
  try {
    await Deno.stat(spec.path);
  } catch (e) {
    own?.close();
    throw unreadable(spec, e) ??
      new DataFormatError(spec.path, `shard ${spec.shard}: cannot open: ${(e as Error).message}`);
  }
  let groupRows: number[];
  let meta: Map<string, string>;
  try {
    const opened = await decoders.call({ type: "open", path: spec.path }, 0);
    groupRows = opened.groupRows as number[];
    meta = new Map(opened.meta as [string, string][]);
  } catch (e) {
    own?.close();
    throw corrupt(spec, unit, 0, e);
  }
  let g = startBatch, rowBase = 0, done = false;
  for (let i = 0; i < startBatch && i < groupRows.length; i++) rowBase += groupRows[i];
  // row groups requested ahead: group → promise of its IPC bytes
  const ahead = new Map<number, Promise<Record<string, unknown>>>();
  const depth = 2 * decoders.size;
  let requested = g;
  const request = () => {
    while (requested < groupRows.length && requested < g + depth) {
      const p = decoders.call({
        type: "read",
        path: spec.path,
        group: requested,
        rows: groupRows[requested],
      });
      p.catch(() => {}); // observed when awaited; avoid an unhandled rejection if never awaited
      ahead.set(requested, p);
      requested++;
    }
  };
  const finish = () => {
    done = true;
    ahead.clear();
    own?.close();
  };
  return {
    async next() {
      if (done) return null;
      if (g >= groupRows.length) {
        finish();
        checkRows(spec, groupRows.reduce((s, x) => s + x, 0), unit);
        return null;
      }
      request();
      const ctx: BatchContext = { file: spec.path, shard: spec.shard, batch: g, rowBase, unit };
      let data: DecodedBatch;
      let schema: arrow.Schema;
      try {
        const { ipc } = await ahead.get(g)! as { ipc: Uint8Array };
        ahead.delete(g);
        const at = arrow.tableFromIPC(ipc);
        schema = at.schema.metadata.size || !meta.size ? at.schema : new arrow.Schema(at.schema.fields, meta);
        if (at.numRows !== groupRows[g]) {
          throw new Error(`row group decoded to ${at.numRows} rows, its metadata says ${groupRows[g]}`);
        }
        const parts = at.batches.map((rb, i) =>
          decodeRecordBatch(rb, vocabSize, { ...ctx, rowBase: rowBase + rowsBefore(at.batches, i) })
        );
        data = parts.length === 1 ? parts[0] : concatDecoded(parts);
      } catch (e) {
        finish();
        throw corrupt(spec, unit, g, e);
      }
      const out = { batch: g, rowBase, data, schema };
      rowBase += groupRows[g];
      g++;
      request();
      return out;
    },
    close() {
      finish();
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
