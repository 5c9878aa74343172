/**
 * Subsampling draws (`--sample-draws n`): the corpus job's pass 2 subsamples each sentence n times, each
 * draw with its own RNG stream, windows and shards, so that training can give every epoch its own
 * subsample (epoch e reads draw e mod n, lib/io/read.ts), as word2vec's and fastText's readers draw the
 * subsampling anew each epoch. Draw 0 is byte for byte the corpus of a single draw, and draw k is the same
 * whatever n. The trainer holds out the windows whose content hash falls below its `--validation`
 * fraction (lib/core/row_hash.ts), collecting them from draw 0; the other draws leave out the window of
 * every position whose draw-0 window is held out, which they would otherwise train on as a slightly
 * different window of the same words.
 *
 * @module
 */

import { ExampleColumns } from "./columns.ts";
import type { ShardEntry } from "./manifest.ts";
import { mixSeed, Sfc32 } from "../core/rng.ts";
import { rowHash } from "../core/row_hash.ts";
import { openArrowShard, openParquetShard, type ShardWriter } from "./shard_writer.ts";
import { subsampleInPlace, WindowEmitter, type WindowOptions } from "./windows.ts";

/**
 * The most subsampling draws a corpus holds (each is a full set of windows on disk).
 *
 * @example
 * ```ts
 * import { MAX_SAMPLE_DRAWS } from "./draws.ts";
 * console.log(MAX_SAMPLE_DRAWS); // 100
 * ```
 */
export const MAX_SAMPLE_DRAWS = 100;

/**
 * The trainer's default `--validation` fraction: the windows a corpus of several draws keeps apart when
 * no `holdOut` is given.
 *
 * @example
 * ```ts
 * import { DEFAULT_HOLD_OUT } from "./draws.ts";
 * console.log(DEFAULT_HOLD_OUT); // 0.01
 * ```
 */
export const DEFAULT_HOLD_OUT = 0.01;

/**
 * The shard file of draw `draw` (0: `part-00000.arrow`; k ≥ 1: `part-00000.draw01.arrow`): every draw's
 * shards lie side by side in the corpus folder, and {@link CORPUS_SHARD_FILE} matches them all.
 *
 * @example
 * ```ts
 * import { shardFileName } from "./draws.ts";
 * console.log(shardFileName(3, 2, "arrow")); // part-00003.draw02.arrow
 * ```
 */
export function shardFileName(index: number, draw: number, format: "arrow" | "parquet"): string {
  const d = draw > 0 ? `.draw${String(draw).padStart(2, "0")}` : "";
  return `part-${String(index).padStart(5, "0")}${d}.${format}`;
}

/**
 * The names of the shard files the corpus job writes (and of their temporaries), of every draw.
 *
 * @example
 * ```ts
 * import { CORPUS_SHARD_FILE } from "./draws.ts";
 * console.log(CORPUS_SHARD_FILE.test("part-00000.draw03.arrow")); // true
 * ```
 */
export const CORPUS_SHARD_FILE = /^part-\d+(\.draw\d+)?\.(arrow|parquet)(\.tmp)?$/;

/** One draw: its RNG and windows, the record batch being filled, its shards and counts. */
export type Draw = {
  readonly index: number;
  readonly rng: Sfc32;
  readonly emitter: WindowEmitter;
  readonly cols: ExampleColumns;
  readonly shards: ShardEntry[];
  writer: ShardWriter | null;
  shardRowsNow: number;
  rows: number;
  keptTokens: number;
  maxInputK: number;
  maxTargetK: number;
};

/** Options of {@link DrawSet}. */
export type DrawSetOptions = {
  /** draws, ≥ 1 */
  n: number;
  seed: number;
  windows: WindowOptions;
  /** keep probabilities per id; null: no subsampling */
  keep: Float32Array | null;
  /** with n > 1: the trainer's validation fraction whose positions draws 1… leave out (0: none) */
  holdOut: number;
  outDir: string;
  format: "arrow" | "parquet";
  /** the shards' key-value metadata */
  meta: Map<string, string>;
  batchRows: number;
  shardRows: number;
  /** the longest sentence passed to {@link DrawSet.sentence} (prepare.ts' MAX_SENTENCE) */
  maxSentence: number;
  onShard?: (shard: ShardEntry) => void | Promise<void>;
};

/**
 * The draws of pass 2: {@link DrawSet.sentence} windows a sentence into every draw, {@link DrawSet.flushDue}
 * writes the record batches that are full, {@link DrawSet.close} the rest.
 *
 * @example
 * ```ts
 * import { DrawSet } from "./draws.ts";
 * const dir = await Deno.makeTempDir();
 * const set = new DrawSet({ n: 2, seed: 1, windows: { mode: "cbow", window: 1 }, keep: Float32Array.of(0.5, 1),
 *   holdOut: 0, outDir: dir, format: "arrow", meta: new Map(), batchRows: 100, shardRows: 1000, maxSentence: 10 });
 * set.sentence(Int32Array.of(0, 1, 0, 1), 4);
 * await set.close();
 * console.log(set.draws.map((d) => d.shards.length)); // [1, 1]
 * ```
 */
export class DrawSet {
  readonly draws: Draw[];
  /** draw-0 windows held out (positions left out of the other draws) */
  heldOutRows = 0;
  /** windows of draws 1… left out for being at such a position */
  leftOutRows = 0;
  readonly #o: DrawSetOptions;
  readonly #copy: Int32Array;
  readonly #pos: Int32Array;
  readonly #held: Uint8Array;
  readonly #skip: Uint8Array;

  constructor(o: DrawSetOptions) {
    this.#o = o;
    this.#copy = new Int32Array(o.maxSentence);
    this.#pos = new Int32Array(o.maxSentence);
    this.#held = new Uint8Array(o.maxSentence);
    this.#skip = new Uint8Array(o.maxSentence);
    this.draws = Array.from({ length: o.n }, (_, k) => {
      // draw 0's seed is the single-draw corpus's, so adding draws never changes it
      const rng = new Sfc32(k === 0 ? mixSeed(o.seed, 0x5eed) : mixSeed(o.seed, 0x5eed, k));
      return {
        index: k,
        rng,
        emitter: new WindowEmitter(o.windows, rng),
        cols: new ExampleColumns(Math.min(o.batchRows, 1 << 16) + o.maxSentence, 1 << 16),
        shards: [],
        writer: null,
        shardRowsNow: 0,
        rows: 0,
        keptTokens: 0,
        maxInputK: 0,
        maxTargetK: 0,
      };
    });
  }

  /** The holdOut fraction in use (0 with a single draw). */
  get holdOut(): number {
    return this.draws.length > 1 ? this.#o.holdOut : 0;
  }

  /** Rows written or buffered, over all draws. */
  rowsNow(): number {
    return this.draws.reduce((s, d) => s + d.rows + d.cols.rows, 0);
  }

  /** Shards closed, over all draws. */
  shardsNow(): number {
    return this.draws.reduce((s, d) => s + d.shards.length, 0);
  }

  /** Subsamples and windows `ids[0..n)` (n ≤ maxSentence) into every draw; `ids` is changed only with one draw. */
  sentence(ids: Int32Array, n: number): void {
    if (n === 0) return;
    const { keep } = this.#o, holdOut = this.holdOut, many = this.draws.length > 1;
    const pos = this.#pos, held = this.#held, skip = this.#skip;
    for (const d of this.draws) {
      let w = ids, m = n;
      if (keep) {
        if (many) {
          this.#copy.set(ids.subarray(0, n));
          w = this.#copy;
        }
        m = subsampleInPlace(w, n, keep, d.rng, holdOut > 0 ? pos : undefined);
      } else if (holdOut > 0) { for (let j = 0; j < n; j++) pos[j] = j; }
      d.keptTokens += m;
      const r0 = d.cols.rows;
      if (holdOut > 0 && d.index > 0) {
        for (let j = 0; j < m; j++) skip[j] = held[pos[j]];
        d.emitter.emit(w, m, d.cols, skip);
        if (m >= 2) this.leftOutRows += m - (d.cols.rows - r0); // one word alone has no window anyway
        continue;
      }
      d.emitter.emit(w, m, d.cols);
      if (holdOut > 0) this.#markHeld(d.cols, r0, m, n);
    }
  }

  /** Marks the positions (in the sentence of n words) whose draw-0 window, rows r0…, the trainer holds out. */
  #markHeld(cols: ExampleColumns, r0: number, m: number, n: number): void {
    const held = this.#held, pos = this.#pos, f = this.#o.holdOut;
    held.fill(0, 0, n);
    if (cols.rows - r0 !== m) return; // a sentence of one kept word has no window
    for (let j = 0; j < m; j++) {
      const r = r0 + j;
      if (
        rowHash(cols.inIdx, cols.inOff[r], cols.inOff[r + 1], cols.tIdx, cols.tOff[r], cols.tOff[r + 1]) < f
      ) {
        held[pos[j]] = 1;
        this.heldOutRows++;
      }
    }
  }

  /**
   * Writes each draw's record batch once it is full: at the first sentence boundary past batchRows rows, or
   * past its shard's end.
   */
  async flushDue(): Promise<void> {
    const { batchRows, shardRows } = this.#o;
    for (const d of this.draws) {
      if (d.cols.rows >= Math.min(batchRows, shardRows - d.shardRowsNow)) await this.#flush(d);
    }
  }

  /** Writes every draw's record batch. */
  async flushAll(): Promise<void> {
    for (const d of this.draws) await this.#flush(d);
  }

  /** Writes what is left and closes every draw's last shard. */
  async close(): Promise<void> {
    await this.flushAll();
    for (const d of this.draws) await this.#closeShard(d);
  }

  /** Removes the shards being written (after an error). */
  async abort(): Promise<void> {
    for (const d of this.draws) await d.writer?.abort();
  }

  async #flush(d: Draw): Promise<void> {
    const cols = d.cols, o = this.#o;
    if (cols.rows === 0) return;
    for (let r = 0; r < cols.rows; r++) {
      const ki = cols.inOff[r + 1] - cols.inOff[r], kt = cols.tOff[r + 1] - cols.tOff[r];
      if (ki > d.maxInputK) d.maxInputK = ki;
      if (kt > d.maxTargetK) d.maxTargetK = kt;
    }
    if (!d.writer) {
      const path = `${o.outDir}/${shardFileName(d.shards.length, d.index, o.format)}`;
      d.writer = o.format === "arrow"
        ? await openArrowShard(path, o.meta)
        : await openParquetShard(path, { metadata: o.meta });
    }
    await d.writer.writeBatch(cols);
    d.shardRowsNow += cols.rows;
    d.rows += cols.rows;
    cols.clear();
    if (d.shardRowsNow >= o.shardRows) await this.#closeShard(d);
  }

  async #closeShard(d: Draw): Promise<void> {
    if (!d.writer) return;
    const info = await d.writer.close();
    d.writer = null;
    const entry = { file: info.file.slice(this.#o.outDir.length + 1), rows: info.rows, bytes: info.bytes };
    d.shards.push(entry);
    d.shardRowsNow = 0;
    await this.#o.onShard?.(entry);
  }
}
