/**
 * One embedded DuckDB database for a corpus job (npm `@duckdb/node-api`): in memory, with a memory
 * limit and a spill folder for what does not fit (DuckDB's `memory_limit` and `temp_directory`), and
 * DuckDB's errors turned into factorout's typed one-line errors.
 *
 * @module
 */

import { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { basename, resolve } from "node:path";
import { IoError, UsageError } from "../core/errors.ts";

/** Options of {@link openDuckdb}. */
export type DuckdbOptions = {
  /** DuckDB's memory limit, e.g. "2GB" [DuckDB's default: 80% of RAM] */
  memoryLimit?: string;
  /** where DuckDB spills what does not fit in memory [DuckDB's default: `.tmp` in the working folder] */
  spillDir?: string;
  /** worker threads [DuckDB's default: the cores] */
  threads?: number;
};

/** An open database: its connection and a `close()` that frees it. */
export type Duckdb = { connection: DuckDBConnection; close: () => void };

const MEMORY = /^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$/i;

/**
 * Opens an in-memory DuckDB with the given limits. A malformed `memoryLimit` is a {@link UsageError}
 * (`--memory-limit`); preserving insertion order is turned off (the job orders what it writes itself),
 * which lets DuckDB stream and spill more.
 *
 * @example
 * ```ts
 * import { openDuckdb } from "./duckdb_connect.ts";
 * const db = await openDuckdb({ memoryLimit: "1GB", spillDir: "/tmp/spill" });
 * await db.connection.run("SELECT 42");
 * db.close();
 * ```
 */
export async function openDuckdb(opts: DuckdbOptions = {}): Promise<Duckdb> {
  const config: Record<string, string> = { preserve_insertion_order: "false" };
  if (opts.memoryLimit !== undefined) {
    if (!MEMORY.test(opts.memoryLimit)) {
      throw new UsageError(
        `--memory-limit must be a size like 2GB or 500MB, got ${JSON.stringify(opts.memoryLimit)}`,
      );
    }
    config.memory_limit = opts.memoryLimit.replace(/\s+/g, "");
  }
  if (opts.spillDir !== undefined) config.temp_directory = opts.spillDir;
  if (opts.threads !== undefined) config.threads = String(opts.threads);
  const instance = await DuckDBInstance.create(":memory:", config);
  const connection = await instance.connect();
  // progress tracking on (the corpus job's progress line reads it), DuckDB's own printing of it off
  await connection.run("SET enable_progress_bar = true; SET enable_progress_bar_print = false");
  return {
    connection,
    close: () => {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

/**
 * Turns a DuckDB error met while running `step` into an actionable one: out of memory (raise
 * `--memory-limit` or give `--spill-dir` on a disk with room) and a full disk are {@link IoError}s (exit
 * 8): naming the spill folder when the file DuckDB could not write is a spill file (in the spill folder,
 * or its message names no file), else naming that file (a shard or the vocabulary being written, where
 * `--spill-dir` cannot help); anything else is returned as is.
 *
 * @example
 * ```ts
 * import { duckdbError } from "./duckdb_connect.ts";
 * const e = duckdbError(new Error("Out of Memory Error: failed to allocate"), "counting", {});
 * console.log((e as Error).message);
 * ```
 */
export function duckdbError(e: unknown, step: string, opts: DuckdbOptions): unknown {
  const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
  const spill = opts.spillDir ?? ".tmp (DuckDB's default)";
  if (/Out of Memory Error/i.test(msg)) {
    return new IoError(
      `DuckDB ran out of memory while ${step}; spill folder`,
      spill,
      "ENOMEM",
      `${msg} (--memory-limit ${opts.memoryLimit ?? "DuckDB's default"})`,
      "raise --memory-limit, or give --spill-dir on a disk with room",
      { cause: e },
    );
  }
  if (/No space left on device|disk space/i.test(msg)) {
    // the file DuckDB names: a spill file only when it is in the spill folder (or has DuckDB's temporary
    // name); otherwise what the step writes (a shard, the vocabulary), where --spill-dir cannot help
    const file = /\bfile "([^"]+)"/.exec(msg)?.[1];
    const spillAbs = resolve(opts.spillDir ?? ".tmp");
    if (
      file !== undefined && !/duckdb_temp/.test(basename(file)) &&
      resolve(file) !== spillAbs && !resolve(file).startsWith(spillAbs + "/")
    ) {
      return new IoError(
        `DuckDB could not write while ${step}:`,
        file,
        "ENOSPC",
        "no space left on device",
        "free space on its disk or choose another output folder",
        { cause: e },
      );
    }
    return new IoError(
      `DuckDB could not spill while ${step}; spill folder`,
      spill,
      "ENOSPC",
      msg,
      "free space there or give --spill-dir on another disk",
      { cause: e },
    );
  }
  return e;
}
