/**
 * The corpus job on DuckDB (`deno task corpus --engine duckdb`): the same inputs, options and output
 * folder as the built-in engine (lib/io/prepare.ts), computed by the SQL steps in `sql/corpus/` inside an
 * embedded DuckDB that holds the lines, tokens and counts out of core (`memoryLimit`, `spillDir`).
 *
 * What is identical to the built-in engine: the lines read and the errors for bad text (the same reader),
 * the vocabulary (ids by count, ties by the word in code-unit order; exact counts), and with subsampling
 * and dynamic windows off the rows, in the same order, in shards cut at the same lines. What is only
 * equal in distribution: subsampling and dynamic windows draw from a seeded hash of each token's place
 * instead of the built-in engine's sequential generator (SQL has no shared sequential stream). Either way
 * the same input and options write the same shard files, whatever DuckDB's threads.
 * Shards are Parquet (zstd, row groups of `batchRows` rows, a shard ending at the first line end past
 * `shardRows` rows) with the documented schema and `factorout.*` metadata; `vocab.tsv` and
 * `manifest.json` (written last) as always.
 *
 * @module
 */

import { DataFormatError, UsageError } from "../core/errors.ts";
import type { DuckDBConnection } from "@duckdb/node-api";
import {
  duckdbError,
  type DuckdbOptions,
  openDuckdb,
  ownSpillFolder,
  type SpillFolder,
} from "./duckdb_connect.ts";
import { type LoadedLines, loadParquetLines, loadTextLines } from "./duckdb_lines.ts";
import { loadStep, sqlLiteral, type SqlParam } from "./duckdb_sql.ts";
import { type CorpusManifest, type ShardEntry, writeManifest } from "./manifest.ts";
import { checkOptions, checkText, MAX_SENTENCE, type PrepareOptions, textSummary } from "./prepare.ts";
import { CORPUS_SHARD_FILE } from "./draws.ts";
import { MAX_LINE_BYTES } from "./text.ts";
import type { EngineStepProgress } from "./progress.ts";

/** Options of {@link prepareCorpusDuckdb}: the built-in engine's, DuckDB's limits, and a text column. */
export type DuckdbPrepareOptions = PrepareOptions & DuckdbOptions & {
  /** read this column of Parquet tables as the text (one line per non-null cell) */
  textColumn?: string;
  /** takes the running step's progress every `progressIntervalMs` while a step runs */
  onStepProgress?: (p: EngineStepProgress) => void;
  /** how often (ms) a running step's progress is read from DuckDB [1000] */
  progressIntervalMs?: number;
};

/**
 * Runs `work` (one step of the job on `con`) while reading DuckDB's progress of the running query every
 * `everyMs` and passing it to `on`; DuckDB reports a query's progress only while it scans tables, so the
 * percentage is NaN in between.
 */
async function withStepProgress<T>(
  con: DuckDBConnection,
  step: string,
  jobStart: number,
  everyMs: number,
  on: ((p: EngineStepProgress) => void) | undefined,
  work: () => Promise<T>,
): Promise<T> {
  if (!on) return await work();
  const t0 = performance.now();
  const tick = () => {
    const q = con.progress;
    const known = q.percentage >= 0 && Number(q.total_rows_to_process) > 0;
    on({
      engine: "duckdb",
      step,
      percent: known ? Math.min(100, q.percentage) : NaN,
      rows: known ? Number(q.rows_processed) : 0,
      totalRows: known ? Number(q.total_rows_to_process) : 0,
      stepS: (performance.now() - t0) / 1000,
      elapsedS: (performance.now() - jobStart) / 1000,
    });
  };
  const timer = setInterval(tick, everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/**
 * The parameters of the SQL steps for `o` (what sql/corpus/*.sql and sql/spark/*.sql take).
 *
 * @example
 * ```ts
 * import { corpusSqlParams } from "./duckdb_prepare.ts";
 * const p = corpusSqlParams({ outDir: "x", mode: "cbow", window: 2, minCount: 1, seed: 1 });
 * console.log(p.skipgram); // false
 * ```
 */
export function corpusSqlParams(o: PrepareOptions): Record<string, SqlParam> {
  return {
    lowercase: o.lowercase ?? true,
    split_punct: (o.sentences ?? "line") === "punct",
    keep_punct: (o.punctuation ?? "strip") === "keep",
    limit_tokens: o.limitTokens ?? 0,
    min_count: o.minCount,
    max_vocab: o.maxVocab ?? 0,
    sample: o.sample ?? 0,
    seed: o.seed,
    window: o.window,
    dynamic_window: o.dynamicWindow ?? false,
    uniform: (o.weights ?? "distance") === "uniform",
    skipgram: o.mode === "skipgram",
    max_sentence: MAX_SENTENCE,
  };
}

async function scalar(con: DuckDBConnection, sql: string): Promise<number> {
  const r = await con.runAndReadAll(sql);
  const v = r.getRows()[0]?.[0];
  return v === null || v === undefined ? 0 : Number(v);
}

/** Writes vocab.tsv (word<TAB>count per id) chunk by chunk, through a temporary file and a rename. */
async function writeVocabFromDb(con: DuckDBConnection, path: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  try {
    const res = await con.stream("SELECT word, cnt FROM vocab ORDER BY id");
    for (;;) {
      const chunk = await res.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const words = chunk.getColumnVector(0), counts = chunk.getColumnVector(1);
      const parts: string[] = [];
      for (let i = 0; i < chunk.rowCount; i++) parts.push(`${words.getItem(i)}\t${counts.getItem(i)}\n`);
      const bytes = enc.encode(parts.join(""));
      for (let o = 0; o < bytes.length;) o += await file.write(bytes.subarray(o));
    }
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
}

/**
 * Where the shards end: a shard ends at the first line end where it holds `shardRows` rows, as the
 * built-in engine closes its shards (lib/io/draws.ts: `flushDue` runs after every line). Returns each
 * shard's rows and last line id (`null` for the last shard, which runs to the end); reads the rows per
 * line from the `line_rows` view (sql/corpus/40_windows.sql), one pass in line order.
 */
async function shardPlan(
  con: DuckDBConnection,
  shardRows: number,
): Promise<{ rows: number; lastLine: bigint | null }[]> {
  const plan: { rows: number; lastLine: bigint | null }[] = [];
  let rows = 0;
  const res = await con.stream("SELECT line_id, n FROM line_rows ORDER BY line_id");
  for (;;) {
    const chunk = await res.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    const ids = chunk.getColumnVector(0), ns = chunk.getColumnVector(1);
    for (let i = 0; i < chunk.rowCount; i++) {
      rows += Number(ns.getItem(i));
      if (rows >= shardRows) {
        plan.push({ rows, lastLine: ids.getItem(i) as bigint });
        rows = 0;
      }
    }
  }
  if (rows > 0) plan.push({ rows, lastLine: null });
  else if (plan.length > 0) plan[plan.length - 1].lastLine = null;
  return plan;
}

/**
 * Writes the windows as Parquet shards `part-NNNNN.parquet` into `outDir` in text order, cut at the line
 * ends {@link shardPlan} finds, and returns their entries. Each shard is one sorted COPY to one file, which
 * DuckDB writes in the query's order (row groups of `batchRows` rows, in order), so the same input gives
 * the same files; one COPY rotating through files (ROW_GROUPS_PER_FILE) would write its row groups in the
 * order the threads finish them.
 */
async function writeShards(
  con: DuckDBConnection,
  outDir: string,
  o: { batchRows: number; shardRows: number; vocabSize: number; mode: string },
): Promise<ShardEntry[]> {
  const parts = `${outDir}/.parts`;
  // a killed job's leftover goes first
  await Deno.remove(parts, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await Deno.mkdir(parts);
  const plan = await shardPlan(con, o.shardRows);
  const shards: ShardEntry[] = [];
  let after: bigint | null = null;
  for (const [i, p] of plan.entries()) {
    const file = `part-${String(i).padStart(5, "0")}.parquet`;
    const lines = [
      ...(after !== null ? [`line_id > ${after}`] : []),
      ...(p.lastLine !== null ? [`line_id <= ${p.lastLine}`] : []),
    ];
    await con.run(
      `COPY (SELECT input, target_index, target_value FROM windows
         ${lines.length ? `WHERE ${lines.join(" AND ")}` : ""} ORDER BY line_id, sent, piece, pos)
       TO ${sqlLiteral(`${parts}/${file}`)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${o.batchRows},
       KV_METADATA {'factorout.vocab_size': ${sqlLiteral(String(o.vocabSize))},
         'factorout.mode': ${sqlLiteral(o.mode)}})`,
    );
    const rows = await scalar(
      con,
      `SELECT num_rows FROM parquet_file_metadata(${sqlLiteral(`${parts}/${file}`)})`,
    );
    if (rows !== p.rows) {
      throw new Error(`internal: shard ${file} holds ${rows} rows, line_rows planned ${p.rows}`);
    }
    await Deno.rename(`${parts}/${file}`, `${outDir}/${file}`);
    shards.push({ file, rows, bytes: (await Deno.stat(`${outDir}/${file}`)).size });
    after = p.lastLine;
  }
  await Deno.remove(parts, { recursive: true });
  return shards;
}

/**
 * Runs the corpus job on DuckDB and writes the corpus folder (`outDir`: Parquet shards, `vocab.tsv`,
 * `manifest.json` last); returns the manifest. Errors as {@link prepareCorpus}: {@link UsageError} for
 * bad options (and `format: "arrow"`: this engine writes Parquet), {@link DataFormatError} for bad or
 * empty input; running out of memory or spill space is an IoError naming the spill folder.
 *
 * @example
 * ```ts
 * import { prepareCorpusDuckdb } from "./duckdb_prepare.ts";
 * const m = await prepareCorpusDuckdb({ input: "brown", outDir: "/tmp/brown-duck", mode: "skipgram",
 *   window: 5, minCount: 5, seed: 1, format: "parquet", memoryLimit: "1GB" });
 * console.log(m.rows, m.vocabSize);
 * ```
 */
export async function prepareCorpusDuckdb(opts: DuckdbPrepareOptions): Promise<CorpusManifest> {
  checkOptions(opts);
  if ((opts.sampleDraws ?? 1) > 1) {
    throw new UsageError("--sample-draws above 1 needs --engine builtin (the DuckDB engine writes one draw)");
  }
  if (opts.synthetic) {
    throw new UsageError(
      "--engine duckdb reads files: write the synthetic stream with --synthetic-text first",
    );
  }
  if ((opts.format ?? "parquet") !== "parquet") {
    throw new UsageError("--engine duckdb writes Parquet shards: give --format parquet (or drop --format)");
  }
  const shardRows = opts.shardRows ?? 1_000_000;
  const batchRows = Math.min(opts.batchRows ?? 65_536, shardRows);
  const maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES;
  const outDir = opts.outDir.replace(/\/$/, "");
  const params = corpusSqlParams(opts);
  // DuckDB spills into a folder of this job's own inside spillDir (spill files of two jobs never meet)
  const spill: SpillFolder | undefined = opts.spillDir !== undefined
    ? await ownSpillFolder(opts.spillDir, opts.onNotice)
    : undefined;
  let db;
  try {
    db = await openDuckdb({ ...opts, ...(spill ? { spillDir: spill.path } : {}) });
  } catch (e) {
    await spill?.remove();
    throw e;
  }
  const con = db.connection;
  let stage = "reading the input";
  const t0 = performance.now();
  // one line per finished step on the notice channel, and the running step's progress as DuckDB reports it
  const said = (what: string) =>
    opts.onNotice?.(`duckdb: ${what} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const every = opts.progressIntervalMs ?? 1000;
  const watch = <T>(what: string, work: () => Promise<T>) => {
    stage = what;
    return withStepProgress(con, what, t0, every, opts.onStepProgress, work);
  };
  const run = async (step: Parameters<typeof loadStep>[0], what: string) => {
    const sql = await loadStep(step, params);
    await watch(what, () => con.run(sql));
    said(`${what}: done`);
  };
  try {
    const inputs = Array.isArray(opts.input) ? opts.input : [opts.input!];
    let loaded: LoadedLines;
    if (opts.textColumn !== undefined) {
      loaded = await watch("reading the input", () => loadParquetLines(con, inputs, opts.textColumn!));
    } else {
      loaded = await watch("reading the input", () => loadTextLines(con, inputs, maxLine));
      checkText(loaded.label, loaded.stats!, maxLine, opts.onNotice);
    }
    said(`read ${loaded.lines} lines`);
    await run("10_tokens", "tokenising");
    if (opts.limitTokens) await run("15_limit", "cutting at --limit-tokens");
    const tokens = await scalar(con, "SELECT count(*) FROM tokens");
    if (tokens === 0) throw new DataFormatError(loaded.label, "empty corpus: no tokens found in the input");
    await run("20_vocab", "counting words");
    const V = await scalar(con, "SELECT count(*) FROM vocab");
    if (V === 0) {
      throw new DataFormatError(
        loaded.label,
        `empty corpus: no word occurs at least --min-count ${opts.minCount} times in ${tokens} tokens; lower --min-count`,
      );
    }
    await Deno.mkdir(outDir, { recursive: true });
    for await (const e of Deno.readDir(outDir)) {
      if (e.name === "manifest.json" || CORPUS_SHARD_FILE.test(e.name)) {
        await Deno.remove(`${outDir}/${e.name}`);
      }
    }
    stage = "writing vocab.tsv";
    await writeVocabFromDb(con, `${outDir}/vocab.tsv`);
    await run("30_ids", "mapping words to ids");
    await con.run("DROP TABLE tokens");
    await con.run("DROP TABLE lines");
    await run("40_windows", "defining windows");
    const keptTokens = await scalar(con, "SELECT count(*) FROM kept");
    // the windows are a view: computed, sorted and written in one pass, never stored as a table
    const shards = await watch(
      "making and writing the windows",
      () => writeShards(con, outDir, { batchRows, shardRows, vocabSize: V, mode: opts.mode }),
    );
    const rows = shards.reduce((s, x) => s + x.rows, 0);
    if (rows === 0) {
      throw new DataFormatError(
        loaded.label,
        `empty corpus: ${tokens} tokens gave no window with context (sentences of one word?)`,
      );
    }
    stage = "reading the shards' list lengths";
    const files = shards.map((x) => sqlLiteral(`${outDir}/${x.file}`)).join(", ");
    const r = await con.runAndReadAll(
      `SELECT max(len(input)), max(len(target_index)) FROM read_parquet([${files}])`,
    );
    const [maxInputK, maxTargetK] = r.getRows()[0].map(Number);
    const manifest: CorpusManifest = {
      format: "factorout-corpus",
      version: 1,
      mode: opts.mode,
      fileFormat: "parquet",
      rows,
      vocabSize: V,
      maxInputK,
      maxTargetK,
      tokens,
      keptTokens,
      vocabFile: "vocab.tsv",
      shards,
      ...(loaded.stats ? { text: textSummary(loaded.stats) } : {}),
      source: {
        engine: "duckdb",
        input: opts.input,
        ...(opts.textColumn !== undefined ? { textColumn: opts.textColumn } : {}),
        window: opts.window,
        minCount: opts.minCount,
        maxVocab: opts.maxVocab ?? 0,
        sample: opts.sample ?? 0,
        seed: opts.seed,
        lowercase: opts.lowercase ?? true,
        punctuation: opts.punctuation ?? "strip",
        sentences: opts.sentences ?? "line",
        dynamicWindow: opts.dynamicWindow ?? false,
        weights: opts.mode === "skipgram" ? opts.weights ?? "distance" : "none",
        limitTokens: opts.limitTokens ?? 0,
        shardRows,
        batchRows,
        memoryLimit: opts.memoryLimit ?? "",
      },
      created: new Date().toISOString(),
    };
    await writeManifest(outDir, manifest);
    said(`wrote ${shards.length} shard(s), ${rows} rows`);
    return manifest;
  } catch (e) {
    throw duckdbError(e, stage, opts);
  } finally {
    db.close();
    await spill?.remove();
  }
}
