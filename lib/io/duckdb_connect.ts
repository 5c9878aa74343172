/**
 * One embedded DuckDB database for a corpus job (npm `@duckdb/node-api`): in memory, with a memory
 * limit and a spill folder for what does not fit (DuckDB's `memory_limit` and `temp_directory`), and
 * DuckDB's errors turned into factorout's typed one-line errors.
 *
 * @module
 */

import { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { basename, dirname, resolve } from "node:path";
import { IoError, UsageError } from "../core/errors.ts";
import { removeStaleDirTemps, tempNameFor } from "../core/atomic.ts";
import { pidAlive } from "../core/lock.ts";
import { describeOsError } from "../core/os_errors.ts";
import { removeAtExit } from "../core/stop.ts";

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
    if (!MEMORY.test(opts.memoryLimit) || parseFloat(opts.memoryLimit) === 0) {
      throw new UsageError(
        `--memory-limit must be a size above 0 like 2GB or 500MB, got ${JSON.stringify(opts.memoryLimit)}`,
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
  const kind = duckdbSpaceError(e);
  // DuckDB's advice after the first line ("SET threads=X", "SET memory_limit") names no factorout flag
  const msg = (e instanceof Error ? e.message.split("\n")[0] : String(e)).replace(
    /\s*Possible solutions:.*$/s,
    "",
  );
  const spill = opts.spillDir ?? ".tmp (DuckDB's default)";
  if (kind === "memory") {
    return new IoError(
      `DuckDB ran out of memory while ${step}; spill folder`,
      spill,
      "ENOMEM",
      `${msg} (--memory-limit ${opts.memoryLimit ?? "DuckDB's default"})`,
      "raise --memory-limit, or give --spill-dir on a disk with room",
      { cause: e },
    );
  }
  if (kind === "disk") {
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

/**
 * Whether DuckDB error `e` says it ran out of memory ("Out of Memory Error: …", or an appender's
 * "Failed to append: could not allocate block …") or out of spill space: `"memory"`, `"disk"`, or
 * undefined for another error. What {@link duckdbError} turns into exit 8, and what a step that wraps
 * DuckDB's errors as bad data must let through.
 *
 * @example
 * ```ts
 * import { duckdbSpaceError } from "./duckdb_connect.ts";
 * console.log(duckdbSpaceError(new Error("Failed to append: could not allocate block of size 256.0 KiB"))); // "memory"
 * ```
 */
export function duckdbSpaceError(e: unknown): "memory" | "disk" | undefined {
  const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  if (/Out of Memory Error|could not allocate block|failed to allocate/i.test(msg)) return "memory";
  if (/No space left on device|disk space/i.test(msg)) return "disk";
  return undefined;
}

/** A job's own spill folder inside the given one ({@link ownSpillFolder}). */
export type SpillFolder = { path: string; remove: () => Promise<void> };

/**
 * This job's own spill folder inside `parent` (`--spill-dir`, made if missing, as `mkdir` without `-p`: a
 * missing parent folder of it is an {@link IoError}, exit 8, naming it): DuckDB names its spill
 * files the same in every process (`duckdb_temp_storage_…-0.tmp`), so two jobs given one folder (a shared
 * `/scratch/spill`) would overwrite each other's blocks. The folder is
 * `<parent>/factorout-spill-<host>.<pid>-<rand>.tmp` (lib/core/atomic.ts `tempNameFor`); `remove()` removes it
 * (and `parent` when this job made it and it is empty), as does a stop signal. Those a killed job on this
 * host left (its pid dead) are removed first, `log` naming them; other hosts' (a shared network disk) and
 * live jobs' are kept. A `parent` that is not a folder, or cannot be written, is an {@link IoError}
 * naming it (exit 8), never taken for DuckDB running out of memory.
 *
 * @example
 * ```ts
 * import { ownSpillFolder } from "./duckdb_connect.ts";
 * const spill = await ownSpillFolder("/tmp/spill");
 * console.log(spill.path); // /tmp/spill/factorout-spill-myhost.12345-0a1b2c3d.tmp
 * await spill.remove();
 * ```
 */
export async function ownSpillFolder(parent: string, log?: (line: string) => void): Promise<SpillFolder> {
  const what = "cannot use spill folder";
  const st = await Deno.stat(parent).catch(() => null);
  if (st && !st.isDirectory) {
    throw new IoError(what, parent, "ENOTDIR", "it is a file, not a folder", "give --spill-dir a folder");
  }
  // made as mkdir would, without -p: a missing parent folder (a disk not mounted, a typo) is named, not
  // made, so that nothing outside the spill folder is left behind and no spill lands on an unmeant disk
  let made = false;
  if (!st) {
    const up = dirname(resolve(parent));
    const upSt = await Deno.stat(up).catch(() => null);
    if (!upSt?.isDirectory) {
      throw new IoError(
        what,
        parent,
        upSt ? "ENOTDIR" : "ENOENT",
        `its parent folder ${up} ${upSt ? "is a file, not a folder" : "does not exist"}`,
        "create it first, or give --spill-dir a folder whose parent exists",
      );
    }
    try {
      await Deno.mkdir(parent);
      made = true;
    } catch (e) {
      // made meanwhile by another job sharing it: used, and left to that job
      if (!(e instanceof Deno.errors.AlreadyExists)) throw describeOsError(e, what, parent) ?? e;
    }
  }
  let host = "host";
  try {
    host = Deno.hostname().replace(/[^A-Za-z0-9.-]/g, "_") || host;
  } catch { /* no --allow-sys: one name for every host */ }
  const base = `factorout-spill-${host}`;
  const stale = await removeStaleDirTemps(parent, pidAlive, { bases: [base] });
  if (stale.length) log?.(`removed ${stale.join(", ")} in ${parent}, left by DuckDB jobs killed there`);
  const path = tempNameFor(`${parent.replace(/(.)\/+$/, "$1")}/${base}`);
  try {
    await Deno.mkdir(path);
  } catch (e) {
    throw describeOsError(e, what, parent) ?? e;
  }
  const forget = removeAtExit(path);
  return {
    path,
    remove: async () => {
      await Deno.remove(path, { recursive: true }).catch(() => {});
      forget();
      if (made) await Deno.remove(parent).catch(() => {}); // only when empty: another job may use it
    },
  };
}
