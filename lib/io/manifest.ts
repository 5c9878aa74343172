/**
 * `manifest.json`, the description of a corpus folder: its shards (file, rows, bytes), the row count,
 * the vocabulary size and how it was made. Written last, after every shard has been renamed into place,
 * so a folder with a manifest is complete.
 *
 * @module
 */

import { relative } from "node:path";
import { writeFileAtomic } from "../core/atomic.ts";
import { DataFormatError } from "../core/errors.ts";
import { isShard, shardFolderFiles, sniffFile } from "./detect.ts";
import { CORPUS_SHARD_FILE } from "./draws.ts";
import { DENO_TASK } from "../core/exit_codes.ts";

/** One shard of a corpus. `file` is relative to the corpus folder. *
 * @example
 * ```ts
 * import type { ShardEntry } from "./manifest.ts";
 * const s: ShardEntry = { file: "part-00000.arrow", rows: 1000, bytes: 52000 };
 * ```
 */
export type ShardEntry = { file: string; rows: number; bytes: number };

/**
 * One subsampling draw of a corpus ({@link CorpusManifest}'s `draws`).
 *
 * @example
 * ```ts
 * import type { CorpusDraw } from "./manifest.ts";
 * const d: CorpusDraw = { rows: 2, keptTokens: 3, shards: [{ file: "part-00000.draw01.arrow", rows: 2, bytes: 600 }] };
 * ```
 */
export type CorpusDraw = { rows: number; keptTokens: number; shards: ShardEntry[] };

/**
 * The content of `manifest.json`.
 *
 * @example
 * ```ts
 * import type { CorpusManifest } from "./manifest.ts";
 * const m: CorpusManifest = {
 *   format: "factorout-corpus", version: 1, mode: "cbow", fileFormat: "arrow", rows: 2, vocabSize: 3,
 *   maxInputK: 2, maxTargetK: 1, tokens: 3, keptTokens: 3, vocabFile: "vocab.tsv",
 *   shards: [{ file: "part-00000.arrow", rows: 2, bytes: 600 }], source: {}, created: "2026-01-01T00:00:00Z",
 * };
 * ```
 */
export type CorpusManifest = {
  format: "factorout-corpus";
  version: 1;
  /** how the rows were made ("external" for files written by other tools) */
  mode: "cbow" | "skipgram" | "external";
  fileFormat: "arrow" | "parquet";
  /** total rows (examples) over all shards */
  rows: number;
  /** ids are in [0, vocabSize) */
  vocabSize: number;
  /** largest number of inputs / targets in one row */
  maxInputK: number;
  maxTargetK: number;
  /** tokens read (before vocabulary filtering and subsampling) and kept (after) */
  tokens: number;
  keptTokens: number;
  /** the vocabulary file, relative to the folder */
  vocabFile: string;
  shards: ShardEntry[];
  /**
   * Present when the corpus holds more than one subsampling draw (`--sample-draws`): every draw's rows,
   * kept tokens and shards; draws[0] is the corpus above (`rows`, `keptTokens`, `shards`). Training reads
   * draw e mod draws.length in epoch e (lib/io/read.ts).
   */
  draws?: CorpusDraw[];
  /**
   * what reading text input found: lines read, lines dropped for invalid UTF-8 (and the first bad byte,
   * `file:byte`), cuts of lines longer than the line bound (and how many fell inside a run without spaces)
   */
  text?: {
    lines: number;
    invalidUtf8Lines: number;
    firstInvalidUtf8: string;
    cutLines: number;
    cutInWord: number;
  };
  /** the options that made it (input, window, minCount, maxVocab, sample, seed, …) */
  source: Record<string, unknown>;
  /** ISO time of writing */
  created: string;
};

/**
 * Writes `manifest.json` in `dir` atomically (lib/core/atomic.ts: a unique temporary file, fsync, rename).
 *
 * @example
 * ```ts
 * import { writeManifest } from "./manifest.ts";
 * // await writeManifest("data/corpus", manifest);
 * ```
 */
export async function writeManifest(dir: string, m: CorpusManifest): Promise<void> {
  const path = `${dir}/manifest.json`;
  await writeFileAtomic(path, JSON.stringify(m, null, 2) + "\n");
}

/**
 * Reads and checks `dir/manifest.json`: the fields' types, that the shard rows add up to `rows`, that
 * every shard file exists, and that the folder holds no shard the manifest does not list
 * ({@link refuseUnlistedShards}; `unlisted: "ignore"` skips that check, for a caller that reads the
 * manifest but trains nothing on the folder). Throws a {@link DataFormatError} naming the file and the field
 * (exit 5).
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { readManifest } from "./manifest.ts";
 * const m = await readManifest("data/corpus");
 * console.log(m.rows, m.vocabSize, m.shards.length);
 * ```
 */
export async function readManifest(
  dir: string,
  opts: { unlisted?: "refuse" | "ignore" } = {},
): Promise<CorpusManifest> {
  const path = `${dir.replace(/\/$/, "")}/manifest.json`;
  let m: CorpusManifest;
  try {
    m = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new DataFormatError(path, `cannot read the corpus manifest: ${(e as Error).message}`);
  }
  const bad = (field: string, why: string) => new DataFormatError(path, `field "${field}" ${why}`);
  if (m?.format !== "factorout-corpus") {
    throw bad("format", `must be "factorout-corpus", got ${JSON.stringify(m?.format)}`);
  }
  if (m.version !== 1) throw bad("version", `must be 1, got ${JSON.stringify(m.version)}`);
  if (m.fileFormat !== "arrow" && m.fileFormat !== "parquet") {
    throw bad("fileFormat", `must be "arrow" or "parquet", got ${JSON.stringify(m.fileFormat)}`);
  }
  for (const f of ["rows", "vocabSize"] as const) {
    if (!Number.isInteger(m[f]) || m[f] < 0) {
      throw bad(f, `must be a non-negative integer, got ${JSON.stringify(m[f])}`);
    }
  }
  const total = await checkShards(m.shards, "shards", dir, bad);
  if (total !== m.rows) throw bad("rows", `is ${m.rows} but the shards hold ${total} rows`);
  if (m.draws !== undefined) {
    if (!Array.isArray(m.draws) || m.draws.length < 2) {
      throw bad("draws", "must be an array of at least 2 {rows, keptTokens, shards} (or absent)");
    }
    for (const [k, d] of m.draws.entries()) {
      const n = await checkShards(d?.shards, `draws[${k}].shards`, dir, bad);
      if (!Number.isInteger(d.rows) || d.rows !== n) {
        throw bad(`draws[${k}].rows`, `is ${JSON.stringify(d.rows)} but its shards hold ${n} rows`);
      }
    }
    const same = m.draws[0].shards.length === m.shards.length &&
      m.draws[0].shards.every((s, i) => s.file === m.shards[i].file);
    if (!same) throw bad("draws[0]", 'must list the same shards as "shards" (draw 0 is the corpus)');
  }
  m.vocabFile ??= "vocab.tsv";
  if (opts.unlisted !== "ignore") await refuseUnlistedShards(dir, m);
  return m;
}

/** A shard entry's file as a path inside the corpus folder (`./a.arrow`, `a//b.arrow`: `a.arrow`, `a/b.arrow`). */
const shardName = (file: string) => file.split("/").filter((p) => p !== "" && p !== ".").join("/");

/**
 * Refuses (a {@link DataFormatError} naming the first one, exit 5) a corpus folder holding a shard that its
 * manifest does not list, in any draw: a file named as the corpus job names its shards (`part-NNNNN.arrow`,
 * `part-NNNNN.drawKK.parquet`), or any other that is an Arrow IPC or Parquet shard by its content. Readers
 * of a folder with a manifest read only the shards it lists, so such a file (copied in by hand to be
 * trained on, or left by another tool that wrote the folder again with fewer shards; the corpus job replaces
 * its folder whole, and `prepareCorpus` removes the old shards first) would be left out without a word.
 * The folder's files are those {@link shardFolderFiles} lists, as for a folder of shards without a manifest
 * (subfolders too, but not one holding its own `manifest.json`: another corpus or a published version;
 * hidden files, `_*`, `*.crc`, `*.tmp`, a job's temporary folder, `vocab.tsv` and `train-settings.json` are
 * no shards); a file that cannot be read is told by its name only.
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { readManifest } from "./manifest.ts";
 * await readManifest("data/corpus"); // throws when data/corpus/part-00009.arrow is there but not listed
 * ```
 */
async function refuseUnlistedShards(dir: string, m: CorpusManifest): Promise<void> {
  const listed = new Set(
    [m.vocabFile, ...[m.shards, ...(m.draws ?? []).map((d) => d.shards)].flat().map((s) => s.file)].map(
      shardName,
    ),
  );
  const unlisted: string[] = [];
  let firstByName = false;
  for (const path of await shardFolderFiles(dir)) {
    const name = relative(dir, path);
    if (listed.has(name)) continue;
    const byName = CORPUS_SHARD_FILE.test(name.slice(name.lastIndexOf("/") + 1));
    if (byName || await sniffFile(path).then((f) => isShard(f.kind), () => false)) {
      if (!unlisted.length) firstByName = byName;
      unlisted.push(path);
    }
  }
  if (!unlisted.length) return;
  // a file named otherwise is told by its content: it may be no shard at all (an exported vectors.parquet)
  const what = firstByName ? "a shard" : "an Arrow/Parquet file (read as a shard by its content)";
  const manifest = `${dir.replace(/\/+$/, "")}/manifest.json`;
  const more = unlisted.length > 1
    ? ` (and ${unlisted.length - 1} more: ${unlisted.slice(1, 4).map((p) => relative(dir, p)).join(", ")}${
      unlisted.length > 4 ? ", …" : ""
    })`
    : "";
  const [they, them] = unlisted.length > 1 ? ["they", "them"] : ["it", "it"];
  throw new DataFormatError(
    unlisted[0],
    `${what} that ${manifest} does not list${more}, so ${they} would not be trained on (left by an ` +
      `earlier corpus in this folder, or copied in by hand): move ${them} out of the folder to train on the listed shards, ` +
      `or prepare the corpus again into a new folder (${DENO_TASK} corpus --out NEW …) to train on all of its data`,
  );
}

/**
 * Checks a shard list (each {file, rows}, its file a plain name inside `dir`, listed once, and present);
 * returns its rows. A name listed twice would be trained on twice an epoch, one outside `dir` (absolute,
 * or through `..`) would bring in another folder's rows: both refused.
 */
async function checkShards(
  shards: ShardEntry[] | undefined,
  field: string,
  dir: string,
  bad: (field: string, why: string) => DataFormatError,
): Promise<number> {
  if (!Array.isArray(shards)) throw bad(field, "must be an array of {file, rows, bytes}");
  let total = 0;
  const seen = new Map<string, number>();
  for (const [i, s] of shards.entries()) {
    if (typeof s?.file !== "string" || !Number.isInteger(s.rows) || s.rows < 0) {
      throw bad(
        `${field}[${i}]`,
        `must be {file: string, rows: integer, bytes: integer}, got ${JSON.stringify(s)}`,
      );
    }
    const name = shardName(s.file);
    if (s.file.startsWith("/") || name === "" || name.split("/").includes("..")) {
      throw bad(`${field}[${i}]`, `names ${s.file}, a file outside the corpus folder ${dir}`);
    }
    const first = seen.get(name);
    if (first !== undefined) {
      throw bad(`${field}[${i}]`, `names ${s.file}, listed twice (also ${field}[${first}])`);
    }
    seen.set(name, i);
    total += s.rows;
    try {
      await Deno.stat(`${dir}/${s.file}`);
    } catch {
      throw bad(
        `${field}[${i}]`,
        `names ${s.file}, which does not exist in ${dir}: the corpus is incomplete; restore the file, or ` +
          `prepare the corpus again (${DENO_TASK} corpus --out …)`,
      );
    }
  }
  return total;
}
