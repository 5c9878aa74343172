/**
 * `readExamples`: streams corpus shards (Arrow IPC or Parquet) into minibatches of CSR typed arrays,
 * shuffled deterministically, resumable exactly from a small saved position.
 *
 * Order. Epoch e reads the files in an order (shuffled by (seed, e) when `shuffleBuffer` > 1, else as
 * given) and cuts their rows, in file order, into blocks of B consecutive rows (B = `shuffleBuffer`, or
 * 65,536 without shuffling). Each block is permuted by (seed, e, block number) and the permuted blocks
 * are cut into batches of `batchSize`; a batch may take rows from two blocks, never from two epochs
 * (the last batch of an epoch may be smaller: see `size`).
 *
 * Subsampling draws. A corpus folder whose manifest lists `draws` (prepared with `--sample-draws n`)
 * holds n independently subsampled sets of windows: epoch e reads draw e mod n (each epoch its own
 * subsample, as word2vec and fastText draw one per epoch), the rest as above. The position saved in a
 * batch counts the files of its epoch's draw.
 *
 * Memory bound: one block (B rows: 2 offsets + K_in ids (+ K_in weights with `input_value`) + K_t ids +
 * K_t weights, 4 bytes each, per row), plus one decoded record batch (Arrow stream) or row group
 * (Parquet: plus up to 2 row groups per decoder worker decoded ahead), plus the batch being built. Independent of the corpus size; an
 * Arrow IPC *file*-format file (not what factorout writes) is held whole while it is read.
 *
 * Size: one concept, the resumable shuffled reader (block builder, epoch and block order, the saved
 * position); split, its resume logic would be spread over files that only make sense together.
 *
 * @module
 */

import { DataFormatError, UsageError } from "../core/errors.ts";
import type { SparseBatch } from "../core/types.ts";
import { CsrBuilder } from "../core/csr.ts";
import { classifyInputs } from "./detect.ts";
import { readManifest } from "./manifest.ts";
import { mixSeed, Sfc32, shufflePermutation } from "../core/rng.ts";
import type { DecodedBatch } from "./schema.ts";
import { openShard, ParquetDecoders, type ShardCursor, type ShardSpec } from "./sources.ts";
import { DENO_TASK } from "../core/exit_codes.ts";

/**
 * Where a reader stands, JSON-serialisable. Pass it back as `start` to resume exactly after the batch
 * that carried it. (`file`, `batch`, `row`) locate the first row of the shuffle block holding the next
 * example (`file` indexes this epoch's file order; `fileName` is for people); `example` counts the
 * examples of `epoch` already delivered. `seed`, `shuffleBuffer`, `batchSize` and `files` must match
 * on resume.
 *
 * @example
 * ```ts
 * import type { ReaderPosition } from "./read.ts";
 * const p: ReaderPosition = { epoch: 0, example: 512, file: 0, batch: 0, row: 0, fileName: "part-00000.arrow",
 *   seed: 1, shuffleBuffer: 0, batchSize: 256, files: 1 };
 * ```
 */
export type ReaderPosition = {
  epoch: number;
  example: number;
  file: number;
  batch: number;
  row: number;
  fileName: string;
  seed: number;
  shuffleBuffer: number;
  batchSize: number;
  files: number;
};

/**
 * One minibatch: `size` examples; inputs and targets in CSR form ({@link SparseBatch}); input weights are
 * 1 unless the files carry an `input_value` column. `position` resumes right after this batch.
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { readExamples } from "./read.ts";
 * for await (const b of readExamples("data/corpus", { batchSize: 2 })) {
 *   console.log(b.size, b.inputs.offsets, b.targets.indices, b.epoch, JSON.stringify(b.position));
 * }
 * ```
 */
export type ExampleBatch = {
  inputs: SparseBatch;
  targets: SparseBatch;
  position: ReaderPosition;
  epoch: number;
  size: number;
};

/** Options of {@link readExamples}. *
 * @example
 * ```ts
 * import type { ReadOptions } from "./read.ts";
 * const o: ReadOptions = { batchSize: 512, shuffleBuffer: 1 << 16, seed: 1, epochs: 3 };
 * ```
 */
export type ReadOptions = {
  /** examples per batch (≥ 1) */
  batchSize: number;
  /** rows per shuffle block; 0 or 1: no shuffling, files in the given order [0] */
  shuffleBuffer?: number;
  /** the shuffle seed [0] */
  seed?: number;
  /** passes over the data [1]; Infinity for endless */
  epochs?: number;
  /** resume from a position saved from an earlier batch */
  start?: ReaderPosition;
  /** ids must be < vocabSize [the manifest's vocabSize beside the files, else only ≥ 0 is checked] */
  vocabSize?: number;
  /** worker threads decoding Parquet row groups ahead of use [2] */
  decoders?: number;
  /**
   * Adds the milliseconds spent reading and decoding (`read`) and shuffling rows into batches (`shuffle`)
   * to these counters, for the trainer's stage times.
   */
  clock?: { read: number; shuffle: number };
};

const DEFAULT_BLOCK = 65_536;

/**
 * The shards to read: `parts[i]` are the subsampling draws of the i-th path given (one list when it has
 * no draws); epoch e reads draw e mod n of each ({@link epochFiles}).
 */
type Corpus = { parts: ShardSpec[][][]; vocabSize: number };

/** The files epoch `e` reads, in the given order, numbered for messages. */
function epochFiles(corpus: Corpus, e: number): ShardSpec[] {
  const files: ShardSpec[] = [];
  for (const draws of corpus.parts) {
    for (const f of draws[e % draws.length]) files.push({ ...f, shard: files.length });
  }
  return files;
}

/** How many files epoch `e` reads. */
function epochFileCount(corpus: Corpus, e: number): number {
  let n = 0;
  for (const draws of corpus.parts) n += draws[e % draws.length].length;
  return n;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await Deno.stat(p)).isDirectory;
  } catch {
    throw new UsageError(`readExamples: "${p}" does not exist`);
  }
}

async function countLines(path: string): Promise<number> {
  const bytes = await Deno.readFile(path);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10) n++;
  if (bytes.length > 0 && bytes[bytes.length - 1] !== 10) n++;
  return n;
}

/** Expands paths (files, or corpus folders) into shard specs and finds the vocabulary size. */
async function resolveCorpus(paths: string | string[], vocabSize?: number): Promise<Corpus> {
  const list = Array.isArray(paths) ? paths : [paths];
  if (list.length === 0) throw new UsageError("readExamples: no paths given");
  const parts: ShardSpec[][][] = [];
  let V = vocabSize ?? 0;
  /** A corpus folder's manifest: each draw's shard names, and every shard's rows (null: no manifest). */
  type Listing = { draws: string[][]; rows: Map<string, number>; bytes: Map<string, number> };
  const manifests = new Map<string, Listing | null>();
  // a folder given is read as its manifest lists it, which must list every shard there; a file given is
  // read whatever the manifest beside it lists (only its rows and bytes are taken from it)
  const manifestOf = async (dir: string, unlisted: "refuse" | "ignore") => {
    const key = `${unlisted} ${dir}`;
    if (manifests.has(key)) return manifests.get(key)!;
    let listing: Listing | null = null;
    try {
      await Deno.stat(`${dir}/manifest.json`);
      const m = await readManifest(dir, { unlisted });
      const vocabPath = `${dir}/${m.vocabFile}`;
      let lines = -1;
      try {
        lines = await countLines(vocabPath);
      } catch { /* no vocabulary file beside the shards: nothing to compare */ }
      if (lines >= 0 && lines !== m.vocabSize) {
        throw new DataFormatError(
          vocabPath,
          `vocabulary has ${lines} words but ${dir}/manifest.json says vocabSize = ${m.vocabSize}; ` +
            `the vocabulary does not match the shards (re-run ${DENO_TASK} corpus)`,
        );
      }
      if (vocabSize === undefined) V = V > 0 ? Math.min(V, m.vocabSize) : m.vocabSize;
      const draws = (m.draws ?? [{ shards: m.shards }]).map((d) => d.shards);
      listing = {
        draws: draws.map((list) => list.map((s) => s.file)),
        rows: new Map(draws.flat().map((s) => [s.file, s.rows])),
        bytes: new Map(draws.flat().map((s) => [s.file, s.bytes])),
      };
    } catch (e) {
      if (e instanceof DataFormatError) throw e;
    }
    manifests.set(key, listing);
    return listing;
  };
  let count = 0;
  for (const p0 of list) {
    const p = p0.replace(/\/$/, "");
    if (await isDir(p)) {
      const listing = await manifestOf(p, "refuse");
      let draws: string[][];
      if (listing) draws = listing.draws;
      else {
        // no manifest: the shards are told by their content (see detect.ts), whatever their names
        const c = await classifyInputs([p]);
        if (c.kind !== "shards" && c.files.length > 0) {
          throw new DataFormatError(
            p,
            `no Arrow/Parquet shards in it (it holds text: prepare it with ${DENO_TASK} corpus first)`,
          );
        }
        draws = [c.files.map((f) => f.path.slice(p.length + 1))]; // empty: refused below
      }
      parts.push(
        draws.map((names) =>
          names.map((n) => ({
            path: `${p}/${n}`,
            shard: 0,
            expectedRows: listing?.rows.get(n),
            expectedBytes: listing?.bytes.get(n),
          }))
        ),
      );
      count += draws[0].length;
    } else {
      const slash = p.lastIndexOf("/");
      const dir = slash >= 0 ? p.slice(0, slash) || "/" : ".";
      const listing = await manifestOf(dir, "ignore");
      const name = p.slice(slash + 1);
      parts.push([[{
        path: p,
        shard: 0,
        expectedRows: listing?.rows.get(name),
        expectedBytes: listing?.bytes.get(name),
      }]]);
      count++;
    }
  }
  if (count === 0) {
    throw new DataFormatError(list.join(", "), "empty corpus: no .arrow or .parquet shards found");
  }
  return { parts, vocabSize: V };
}

/** The rows of one shuffle block, CSR (inputs and targets), reused block after block. */
class Block {
  readonly inputs = new CsrBuilder();
  readonly targets = new CsrBuilder();

  get rows(): number {
    return this.inputs.m;
  }

  clear(): void {
    this.inputs.reset();
    this.targets.reset();
  }

  /** Appends rows [r0, r1) of a decoded batch. */
  append(d: DecodedBatch, r0: number, r1: number): void {
    this.inputs.appendRows(d.inOff, d.inIdx, d.inVal, r0, r1);
    this.targets.appendRows(d.tOff, d.tIdx, d.tVal, r0, r1);
  }
}

/** A location in an epoch's row stream: file (in the epoch's order), batch within the file, row within it. */
type Loc = { file: number; batch: number; row: number };

/** Reads the rows of one epoch's file order sequentially from a location. */
class RowStream {
  #cursor: ShardCursor | null = null;
  #cur: { batch: number; data: DecodedBatch } | null = null;
  #row = 0;
  #file = 0;
  #fileRows = 0;
  constructor(
    readonly specs: ShardSpec[],
    readonly order: Int32Array,
    readonly vocabSize: number,
    readonly pool: ParquetDecoders,
  ) {}

  /** Positions the stream at `loc` (earlier batches of that file are skipped unchecked). */
  async seek(loc: Loc): Promise<void> {
    this.close();
    this.#file = loc.file;
    if (loc.file >= this.order.length) return;
    this.#cursor = await openShard(this.specs[this.order[loc.file]], this.vocabSize, loc.batch, this.pool);
    const b = await this.#cursor.next();
    if (b === null) return this.#nextFile();
    if (loc.row > b.data.rows) {
      throw new UsageError(
        `start position: row ${loc.row} is past the end of batch ${loc.batch} (${b.data.rows} rows) of ${
          this.specs[this.order[loc.file]].path
        }`,
      );
    }
    this.#cur = b;
    this.#row = loc.row;
  }

  async #nextFile(): Promise<void> {
    this.close();
    this.#file++;
    this.#cur = null;
    this.#row = 0;
    if (this.#file < this.order.length) {
      this.#cursor = await openShard(this.specs[this.order[this.#file]], this.vocabSize, 0, this.pool);
      const b = await this.#cursor.next();
      if (b === null) return this.#nextFile();
      this.#cur = b;
    }
  }

  /** Where the next row is. */
  location(): Loc {
    return { file: this.#file, batch: this.#cur ? this.#cur.batch : 0, row: this.#row };
  }

  /** File name at the current location (for positions). */
  fileName(): string {
    const i = this.#file < this.order.length ? this.order[this.#file] : -1;
    return i >= 0 ? this.specs[i].path.slice(this.specs[i].path.lastIndexOf("/") + 1) : "";
  }

  /** Appends up to `max` rows to `block`; returns how many (0 at the end of the epoch). */
  async fill(block: Block, max: number): Promise<number> {
    let taken = 0;
    while (taken < max && this.#cur) {
      const d = this.#cur.data;
      const n = Math.min(max - taken, d.rows - this.#row);
      if (n > 0) {
        block.append(d, this.#row, this.#row + n);
        this.#row += n;
        taken += n;
        this.#fileRows += n;
      }
      if (this.#row >= d.rows) {
        const b = await this.#cursor!.next();
        if (b === null) await this.#nextFile();
        else {
          this.#cur = b;
          this.#row = 0;
        }
      }
    }
    return taken;
  }

  close(): void {
    this.#cursor?.close();
    this.#cursor = null;
    this.#cur = null;
  }
}

/** Builds one output batch, gathering rows of a block in permutation order. */
class BatchBuilder {
  readonly inputs = new CsrBuilder();
  readonly targets = new CsrBuilder();

  constructor(readonly batchSize: number) {
    this.inputs.reserve(batchSize, 0);
    this.targets.reserve(batchSize, 0);
  }

  get rows(): number {
    return this.inputs.m;
  }

  reset(): void {
    this.inputs.reset();
    this.targets.reset();
  }

  /** Appends block rows perm[from..to) (or from..to when perm is null). */
  gather(blk: Block, perm: Int32Array | null, from: number, to: number): void {
    const bi = blk.inputs, bt = blk.targets;
    if (!perm) {
      this.inputs.appendRows(bi.offsets, bi.indices, bi.values, from, to);
      this.targets.appendRows(bt.offsets, bt.indices, bt.values, from, to);
      return;
    }
    for (let i = from; i < to; i++) {
      const r = perm[i];
      this.inputs.appendRow(bi.offsets, bi.indices, bi.values, r);
      this.targets.appendRow(bt.offsets, bt.indices, bt.values, r);
    }
  }

  /** The batch as fresh arrays (the builder is reused). */
  take(): { inputs: SparseBatch; targets: SparseBatch } {
    return { inputs: this.inputs.take(), targets: this.targets.take() };
  }
}

/**
 * Streams minibatches from corpus shards: `paths` are shard files (Arrow IPC `.arrow`, Parquet
 * `.parquet`, told by content) or corpus folders (their `manifest.json` lists the shards; without one,
 * every Arrow/Parquet file in the folder and below, found by content and sorted by path; a folder
 * mixing shards and text is refused). Deterministic for a given seed; each batch's `position` resumes exactly after
 * it. Memory is bounded by one shuffle block plus one record batch / row group (see the module doc),
 * whatever the corpus size.
 *
 * Throws {@link DataFormatError} naming the file, shard and batch/row for a truncated or corrupt shard
 * (a batch is checked whole before any of its rows is used), a wrong schema, an id outside
 * [0, vocabSize), a NaN/Inf weight, an empty corpus, or a vocab.tsv that does not match the manifest;
 * {@link UsageError} for bad options or a `start` from another configuration.
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { readExamples } from "./read.ts";
 * let saved;
 * for await (const b of readExamples("data/corpus", { batchSize: 512, shuffleBuffer: 1 << 20, seed: 1 })) {
 *   // b.inputs, b.targets: CSR typed arrays with b.size rows
 *   saved = b.position; // JSON.stringify(saved) into the checkpoint
 * }
 * // later: readExamples("data/corpus", { batchSize: 512, shuffleBuffer: 1 << 20, seed: 1, start: saved })
 * ```
 */
export async function* readExamples(
  paths: string | string[],
  opts: ReadOptions,
): AsyncGenerator<ExampleBatch, void, unknown> {
  const batchSize = opts.batchSize;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new UsageError(`batchSize must be an integer >= 1, got ${batchSize}`);
  }
  const shuffleBuffer = opts.shuffleBuffer ?? 0;
  if (!(Number.isInteger(shuffleBuffer) && shuffleBuffer >= 0)) {
    throw new UsageError(`shuffleBuffer must be an integer >= 0, got ${shuffleBuffer}`);
  }
  const seed = opts.seed ?? 0;
  if (!Number.isFinite(seed)) throw new UsageError(`seed must be a finite number, got ${seed}`);
  const epochs = opts.epochs ?? 1;
  if (!(epochs >= 0)) throw new UsageError(`epochs must be >= 0, got ${epochs}`);
  if (opts.vocabSize !== undefined && !(Number.isInteger(opts.vocabSize) && opts.vocabSize >= 1)) {
    throw new UsageError(`vocabSize must be an integer >= 1, got ${opts.vocabSize}`);
  }
  const corpus = await resolveCorpus(paths, opts.vocabSize);
  const shuffle = shuffleBuffer > 1;
  const B = shuffle ? shuffleBuffer : DEFAULT_BLOCK;

  let epoch = 0, example = 0;
  let loc: Loc = { file: 0, batch: 0, row: 0 };
  const s = opts.start;
  if (s) {
    const mismatch = (k: string, a: unknown, b: unknown) =>
      new UsageError(
        `start position: ${k} was ${JSON.stringify(a)} when it was saved, now ${
          JSON.stringify(b)
        }; resume with the same reader options`,
      );
    if (s.seed !== seed) throw mismatch("seed", s.seed, seed);
    if (s.shuffleBuffer !== shuffleBuffer) throw mismatch("shuffleBuffer", s.shuffleBuffer, shuffleBuffer);
    if (s.batchSize !== batchSize) throw mismatch("batchSize", s.batchSize, batchSize);
    for (const k of ["epoch", "example", "file", "batch", "row"] as const) {
      if (!(Number.isInteger(s[k]) && s[k] >= 0)) {
        throw new UsageError(`start position: ${k} must be an integer >= 0, got ${JSON.stringify(s[k])}`);
      }
    }
    const n = epochFileCount(corpus, s.epoch);
    if (s.files !== n) throw mismatch("the number of files", s.files, n);
    epoch = s.epoch;
    example = s.example;
    loc = { file: s.file, batch: s.batch, row: s.row };
  }

  const block = new Block();
  const perm = shuffle ? new Int32Array(B) : null;
  const out = new BatchBuilder(batchSize);
  let anyRows = false;
  // Parquet row groups are decoded by worker threads, ahead of use; started only if a Parquet shard is read
  const pool = new ParquetDecoders(opts.decoders ?? 2);
  const clock = opts.clock;

  try {
    for (; epoch < epochs; epoch++) {
      const files = epochFiles(corpus, epoch), nFiles = files.length;
      const order = new Int32Array(nFiles);
      for (let i = 0; i < nFiles; i++) order[i] = i;
      if (shuffle) shufflePermutation(order, new Sfc32(mixSeed(seed, epoch, 0xf11e5)));
      const stream = new RowStream(files, order, corpus.vocabSize, pool);
      try {
        let t = performance.now();
        await stream.seek(loc);
        let blockIndex = Math.floor(example / B);
        let blockStart = stream.location();
        let blockFile = stream.fileName();
        block.clear();
        await stream.fill(block, B);
        if (clock) t = lap(clock, "read", t);
        if (shuffle && block.rows > 0) {
          shufflePermutation(perm!, new Sfc32(mixSeed(seed, epoch, blockIndex)), block.rows);
        }
        let inBlock = example - blockIndex * B; // rows of this block already delivered
        if (inBlock > block.rows) {
          throw new UsageError(`start position: example ${example} is past the end of epoch ${epoch}`);
        }
        out.reset();
        for (;;) {
          if (inBlock >= block.rows) {
            // next block
            if (block.rows < B) break; // the stream ended inside this block: end of epoch
            blockIndex++;
            blockStart = stream.location();
            blockFile = stream.fileName();
            if (clock) t = lap(clock, "shuffle", t);
            block.clear();
            await stream.fill(block, B);
            if (clock) t = lap(clock, "read", t);
            if (block.rows === 0) break;
            if (shuffle) shufflePermutation(perm!, new Sfc32(mixSeed(seed, epoch, blockIndex)), block.rows);
            inBlock = 0;
          }
          const take = Math.min(batchSize - out.rows, block.rows - inBlock);
          out.gather(block, perm, inBlock, inBlock + take);
          inBlock += take;
          example += take;
          anyRows = true;
          if (out.rows === batchSize) {
            const { inputs, targets } = out.take();
            const size = out.rows;
            out.reset();
            // is this the last batch of the epoch? then the position points at the next epoch
            let position: ReaderPosition;
            if (inBlock >= block.rows && block.rows < B) {
              position = nextEpochPosition(epoch, corpus, seed, shuffleBuffer, batchSize);
            } else if (inBlock >= block.rows) {
              // block exhausted: the next example is the first of the next block, which starts here
              const l = stream.location();
              position = {
                epoch,
                example,
                file: l.file,
                batch: l.batch,
                row: l.row,
                fileName: stream.fileName(),
                seed,
                shuffleBuffer,
                batchSize,
                files: nFiles,
              };
              if (l.file >= nFiles) {
                position = nextEpochPosition(epoch, corpus, seed, shuffleBuffer, batchSize);
              }
            } else {
              position = {
                epoch,
                example,
                file: blockStart.file,
                batch: blockStart.batch,
                row: blockStart.row,
                fileName: blockFile,
                seed,
                shuffleBuffer,
                batchSize,
                files: nFiles,
              };
            }
            if (clock) lap(clock, "shuffle", t);
            yield { inputs, targets, position, epoch, size };
            t = performance.now();
          }
        }
        if (out.rows > 0) {
          const { inputs, targets } = out.take();
          const size = out.rows;
          out.reset();
          yield {
            inputs,
            targets,
            position: nextEpochPosition(epoch, corpus, seed, shuffleBuffer, batchSize),
            epoch,
            size,
          };
        }
      } finally {
        stream.close();
      }
      if (!anyRows && example === 0) {
        throw new DataFormatError(
          epochFiles(corpus, epoch).map((f) => f.path).join(", "),
          "empty corpus: the shards hold no rows",
        );
      }
      example = 0;
      loc = { file: 0, batch: 0, row: 0 };
    }
  } finally {
    pool.close();
  }
}

/** Adds the time since `t` to `clock[stage]`; returns now. */
function lap(clock: { read: number; shuffle: number }, stage: "read" | "shuffle", t: number): number {
  const now = performance.now();
  clock[stage] += now - t;
  return now;
}

function nextEpochPosition(
  epoch: number,
  corpus: Corpus,
  seed: number,
  shuffleBuffer: number,
  batchSize: number,
): ReaderPosition {
  return {
    epoch: epoch + 1,
    example: 0,
    file: 0,
    batch: 0,
    row: 0,
    fileName: "",
    seed,
    shuffleBuffer,
    batchSize,
    files: epochFileCount(corpus, epoch + 1),
  };
}
