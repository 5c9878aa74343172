/**
 * The `lines(line_id, tagged, text)` table the corpus SQL starts from (sql/corpus/10_tokens.sql),
 * filled from text inputs or from the text column of Parquet tables.
 *
 * - Text files, folders, `.gz` and "brown" are read by lib/io/text.ts exactly as the built-in engine
 *   reads them (a NUL byte refuses the file, lines with invalid UTF-8 are dropped and counted, lines over
 *   64 KiB are cut), so both engines see the same lines and give the same errors; each line is appended
 *   to DuckDB, which holds (and spills) them, never the JavaScript heap.
 * - Parquet tables (`--text-column`, e.g. a warehouse export): read by DuckDB itself; each non-null cell
 *   is one line. A missing column or one that is not text is refused, naming the file and the columns.
 *   Each file found (folders listed by lib/io/detect.ts, as the built-in engine lists them) is read once,
 *   by its literal name: DuckDB would read a name as a glob (`y[1].parquet` is y1.parquet, `x*.parquet`
 *   any x…), so its glob characters are escaped ({@link duckdbLiteralPath}); and only the file's own
 *   columns count (Hive partitioning off: a `text=…/` folder on the path is not a column).
 *
 * @module
 */

import type { DuckDBConnection } from "@duckdb/node-api";
import { DataFormatError } from "../core/errors.ts";
import { classifyInputs, isShard } from "./detect.ts";
import { newTextStats, readLineChunks, resolveTextInputs, type TextStats } from "./text.ts";
import { sqlLiteral } from "./duckdb_sql.ts";
import { duckdbSpaceError } from "./duckdb_connect.ts";

/** What loading found: lines appended, and for text input the reading statistics. */
export type LoadedLines = { lines: number; stats?: TextStats; label: string; bytes: number };

const CREATE = "CREATE OR REPLACE TABLE lines (line_id BIGINT, tagged BOOLEAN, text VARCHAR)";

/**
 * Appends the lines of text inputs (as {@link resolveTextInputs} takes them) to a new `lines` table.
 *
 * @example
 * ```ts
 * import { openDuckdb } from "./duckdb_connect.ts";
 * import { loadTextLines } from "./duckdb_lines.ts";
 * const db = await openDuckdb();
 * const got = await loadTextLines(db.connection, ["brown"], 65536);
 * console.log(got.lines);
 * ```
 */
export async function loadTextLines(
  con: DuckDBConnection,
  input: string | string[],
  maxLineBytes: number,
): Promise<LoadedLines> {
  const inputs = await resolveTextInputs(input);
  if (inputs.length === 0) throw new DataFormatError(String(input), "empty corpus: no input files found");
  await con.run(CREATE);
  const app = await con.createAppender("lines");
  const stats = newTextStats();
  let id = 0n, n = 0;
  try {
    for (const f of inputs) {
      const tagged = f.kind === "brown";
      for await (const chunk of readLineChunks(f, stats, maxLineBytes)) {
        for (const line of chunk.lines) {
          id++;
          if (line.length === 0) continue;
          app.appendBigInt(id);
          app.appendBoolean(tagged);
          app.appendVarchar(line);
          app.endRow();
          n++;
        }
      }
    }
  } finally {
    app.closeSync();
  }
  return {
    lines: n,
    stats,
    label: inputs.length === 1 ? inputs[0].path : String(input),
    bytes: inputs.reduce((s, x) => s + x.bytes, 0),
  };
}

/**
 * Fills a new `lines` table from column `column` of the Parquet files in `input` (files or folders,
 * told by content). Throws a {@link DataFormatError} naming the file for a file that is not Parquet, a
 * missing column (listing those found) and a column that is not text.
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a Parquet table of sentences (sentences.parquet, column text)
 * import { openDuckdb } from "./duckdb_connect.ts";
 * import { loadParquetLines } from "./duckdb_lines.ts";
 * const db = await openDuckdb();
 * await loadParquetLines(db.connection, ["sentences.parquet"], "text");
 * ```
 */
export async function loadParquetLines(
  con: DuckDBConnection,
  input: string[],
  column: string,
): Promise<LoadedLines> {
  const c = await classifyInputs(input);
  const files = c.files.filter((f) => isShard(f.kind));
  const notParquet = c.files.find((f) => f.kind !== "parquet");
  if (notParquet || files.length === 0) {
    const f = notParquet ?? c.files[0];
    throw new DataFormatError(
      f?.path ?? input.join(", "),
      `--text-column ${column} reads Parquet tables, but this is ${f ? f.kind : "no file"}: ` +
        "give Parquet files (or drop --text-column for text)",
    );
  }
  await con.run(CREATE);
  let offset = 0n, n = 0;
  for (const f of files) {
    const src = `read_parquet(${
      sqlLiteral(duckdbLiteralPath(f.path))
    }, file_row_number = true, hive_partitioning = false)`;
    let cols: { name: string; type: string }[];
    try {
      const r = await con.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`);
      cols = r.getRowObjectsJson().map((x) => ({ name: String(x.column_name), type: String(x.column_type) }));
    } catch (e) {
      if (e instanceof DataFormatError || duckdbSpaceError(e)) throw e;
      throw new DataFormatError(f.path, `cannot read the Parquet table: ${firstLine(e)}`);
    }
    const col = cols.find((x) => x.name === column);
    const found = cols.filter((x) => x.name !== "file_row_number").map((x) => `${x.name} ${x.type}`);
    if (!col) {
      throw new DataFormatError(
        f.path,
        `has no column "${column}" (columns: ${found.join(", ")}); give --text-column the column of text`,
      );
    }
    if (col.type !== "VARCHAR") {
      throw new DataFormatError(
        f.path,
        `column "${column}" is ${col.type}, not text (a string column); give --text-column the column of text`,
      );
    }
    const q = `"${column.replaceAll('"', '""')}"`;
    try {
      const r = await con.runAndReadAll(
        `INSERT INTO lines SELECT ${offset} + file_row_number, FALSE, ${q} FROM ${src} WHERE ${q} IS NOT NULL`,
      );
      n += Number(r.rowsChanged);
      const m = await con.runAndReadAll(`SELECT count(*) AS n FROM ${src}`);
      offset += BigInt(m.getRowObjectsJson()[0].n as string);
    } catch (e) {
      // out of memory or spill space is the job's limits, not the file's fault (exit 8, duckdbError)
      if (duckdbSpaceError(e)) throw e;
      throw new DataFormatError(f.path, `cannot read column "${column}": ${firstLine(e)}`);
    }
  }
  const bytes = files.reduce((s, x) => s + x.bytes, 0);
  return { lines: n, label: files.length === 1 ? files[0].path : input.join(", "), bytes };
}

/**
 * `path` as a pattern DuckDB's file functions (`read_parquet`) read as exactly that file: its glob
 * characters `*`, `?` and `[` each put in a bracket (`[*]`, `[?]`, `[[]`), which DuckDB's glob matches
 * literally. DuckDB splits a pattern at a backslash too, so a path holding both a backslash and a glob
 * character cannot be named at all: a {@link DataFormatError} asks to rename it. Quote the result with
 * `sqlLiteral`.
 *
 * @example
 * ```ts
 * import { duckdbLiteralPath } from "./duckdb_lines.ts";
 * console.log(duckdbLiteralPath("/data/run[1]/x*.parquet")); // "/data/run[[]1]/x[*].parquet"
 * ```
 */
export function duckdbLiteralPath(path: string): string {
  if (!/[*?[]/.test(path)) return path;
  if (path.includes("\\")) {
    throw new DataFormatError(
      path,
      "DuckDB cannot read this path as it is: it holds a backslash and one of * ? [, which DuckDB " +
        "reads as a pattern; rename the file or folder (or link to it under another name)",
    );
  }
  return path.replace(/[*?[]/g, (c) => `[${c}]`);
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}
