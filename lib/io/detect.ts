/**
 * What an input file is, told by its content, never by its name: Arrow IPC (file format, `ARROW1`
 * magic; or stream format, starting with the 0xFFFFFFFF continuation marker), Parquet (`PAR1`), gzip
 * (1f 8b), text, or binary (a NUL byte: refused, naming the byte offset). Folders are classified as a
 * whole: all shards (a corpus whatever wrote it, with or without manifest.json), or all text; a folder
 * mixing the two is refused by name.
 *
 * @module
 */

import { parseTempName } from "../core/atomic.ts";
import { DataFormatError } from "../core/errors.ts";
import { pidAlive } from "../core/lock.ts";
import { DENO_TASK } from "../core/exit_codes.ts";

/** The kinds of input file. */
export type FileKind = "arrow" | "parquet" | "gzip" | "text" | "binary" | "empty";

/**
 * One sniffed file: its kind, size, and for "binary" the offset of the first NUL byte, and whether the head
 * looks like UTF-16 text (a byte-order mark, or a NUL in every other byte).
 */
export type SniffedFile = {
  path: string;
  kind: FileKind;
  bytes: number;
  nulAt?: number;
  utf16?: boolean;
  /** text whose lines end in a carriage return alone (classic Mac OS): carriage returns and no line feed */
  crLines?: boolean;
};

/** Bytes read from the head of a file to tell its kind. */
const HEAD = 1 << 16;

/**
 * The kind of `bytes`, the head of a file (shards by magic bytes; a NUL byte makes it binary).
 *
 * @example
 * ```ts
 * import { kindOfHead } from "./detect.ts";
 * kindOfHead(new TextEncoder().encode("PAR1....")); // { kind: "parquet" }
 * ```
 */
export function kindOfHead(
  bytes: Uint8Array,
): { kind: FileKind; nulAt?: number; utf16?: boolean; crLines?: boolean } {
  if (bytes.length === 0) return { kind: "empty" };
  const ascii = (s: string) => s.split("").every((c, i) => bytes[i] === c.charCodeAt(0));
  if (bytes.length >= 6 && ascii("ARROW1")) return { kind: "arrow" };
  if (bytes.length >= 4 && ascii("PAR1")) return { kind: "parquet" };
  // Arrow IPC stream: continuation marker, then a positive metadata length
  if (
    bytes.length >= 8 && bytes[0] === 0xff && bytes[1] === 0xff && bytes[2] === 0xff &&
    bytes[3] === 0xff && (bytes[7] & 0x80) === 0
  ) return { kind: "arrow" };
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return { kind: "gzip" };
  const nul = bytes.indexOf(0);
  if (nul >= 0) return { kind: "binary", nulAt: nul, ...(looksUtf16(bytes) ? { utf16: true } : {}) };
  // lines that end in CR alone read as one line: their windows would run across every sentence
  if (bytes.indexOf(0x0a) < 0 && bytes.indexOf(0x0d) >= 0 && !otherControls(bytes)) {
    return { kind: "text", crLines: true };
  }
  return { kind: "text" };
}

/** Whether `b` holds control bytes that text does not (other than tab, form feed and carriage return). */
function otherControls(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    if (b[i] < 0x20 && b[i] !== 0x09 && b[i] !== 0x0c && b[i] !== 0x0d) return true;
  }
  return false;
}

/**
 * Whether a head holding NUL bytes looks like UTF-16 text (what Windows tools call "Unicode"): a byte-order
 * mark (FF FE, FE FF), or, over its first 64 bytes, a NUL in every other byte and none between.
 */
function looksUtf16(b: Uint8Array): boolean {
  if (b.length >= 2 && ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff))) return true;
  const n = Math.min(b.length, 64) & ~1;
  if (n < 8) return false;
  for (const zero of [0, 1]) {
    let ok = true;
    for (let i = 0; ok && i < n; i++) ok = (b[i] === 0) === (i % 2 === zero);
    if (ok) return true;
  }
  return false;
}

/**
 * Reads the head of one file and tells its kind ({@link kindOfHead}).
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { sniffFile } from "./detect.ts";
 * console.log((await sniffFile("data/corpus/part-00000.arrow")).kind); // "arrow"
 * ```
 */
export async function sniffFile(path: string): Promise<SniffedFile> {
  const f = await Deno.open(path);
  try {
    const size = (await f.stat()).size;
    const head = new Uint8Array(Math.min(HEAD, size));
    let o = 0;
    while (o < head.length) {
      const n = await f.read(head.subarray(o));
      if (n === null || n === 0) break;
      o += n;
    }
    return { path, bytes: size, ...kindOfHead(head.subarray(0, o)) };
  } finally {
    f.close();
  }
}

/** Is the kind a corpus shard (Arrow IPC or Parquet)? */
export function isShard(kind: FileKind): boolean {
  return kind === "arrow" || kind === "parquet";
}

/**
 * Files of a shard folder that are not shards and not data: what factorout and other writers put
 * beside shards (manifest, vocabulary, settings stamp, Spark's `_SUCCESS` and `.crc` files, unfinished
 * `*.tmp` shards).
 */
function isShardFolderExtra(name: string): boolean {
  return name === "manifest.json" || name === "vocab.tsv" || name === "train-settings.json" ||
    name.startsWith("_") || name.endsWith(".crc") || name.endsWith(".tmp");
}

/**
 * The error for a file that is not text (a NUL byte); `utf16`: it looks like UTF-16 text, which is said, with
 * the conversion.
 */
export function notTextError(path: string, offset: number, what = "", utf16 = false): DataFormatError {
  return new DataFormatError(
    path,
    utf16
      ? `UTF-16 text (byte ${offset}${what} is 0x00), not UTF-8: convert it first, e.g. ` +
        `iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8.txt`
      : `not a text file: byte ${offset}${what} is 0x00 (NUL); give UTF-8 text to prepare, ` +
        "or a folder of Arrow/Parquet shards to train --data",
  );
}

/**
 * The error for an input that is neither a regular file nor a folder: a pipe (`<(cat …)`, `/dev/stdin`), a
 * named FIFO or a device. The jobs read their text more than once (the vocabulary, then the windows; the
 * head to tell its kind first), which a pipe cannot give, and opening a FIFO without a writer waits for
 * ever: refused before anything is opened.
 */
function notRegularError(path: string): DataFormatError {
  return new DataFormatError(
    path,
    "not a regular file (a pipe, FIFO or device): the text is read more than once (the vocabulary, then the " +
      "windows), which a pipe cannot give; save it to a file first (… > corpus.txt) and give that file",
  );
}

/**
 * The error for a job's temporary folder (lib/core/atomic.ts `tempNameFor`) inside an input folder: the
 * corpus job prepares into `<out>/corpus.<pid>-<random>.tmp` when `--out` also holds other files, and a
 * kill -9 while it swaps the new corpus in leaves it, with the shards beside it a mix of two corpora or
 * incomplete and no manifest.json. Reading the folder as it is would train on that mix.
 */
function unfinishedWorkError(path: string, pid: number): DataFormatError {
  const dir = path.slice(0, path.lastIndexOf("/"));
  return new DataFormatError(
    path,
    pidAlive(pid)
      ? `a job (pid ${pid}) is writing ${dir} now (this is its unfinished work); wait for it to finish`
      : `unfinished work of a job (pid ${pid}) killed while writing ${dir}: the shards there may be a mix of ` +
        `two corpora or incomplete; rerun the corpus job into it (${DENO_TASK} corpus --out ${dir} …: it ` +
        "replaces the corpus and removes this), or remove it and check the folder",
  );
}

/**
 * The regular files under `dir` (recursive, hidden entries skipped). Symbolic links are followed, to a file
 * or a folder (a folder of links to the data files was read as empty, its links skipped without a word, and the
 * corpus made of the other files only); a link to nothing, or a folder or file reached twice (a link back up,
 * two links to one folder, a link beside the file it names), is refused ({@link linkError}). A job's temporary folder inside
 * (`<name>.<pid>-<random>.tmp`) is refused ({@link unfinishedWorkError}), or with `jobTemps: "skip"`
 * left out: a corpus job at work there, whose shards are no part of the folder yet. With `nested: "skip"`,
 * a subfolder holding its own `manifest.json` (another corpus, a published version of embeddings) is left
 * out: what it holds is read through that manifest, not as files of `dir`.
 */
async function walk(
  dir: string,
  out: string[],
  jobTemps: "refuse" | "skip" = "refuse",
  nested: "read" | "skip" = "read",
  seen: Map<string, string> = new Map(),
): Promise<void> {
  // every folder and file read so far, by its real path: one reached twice would be read twice
  if (seen.size === 0) seen.set(await Deno.realPath(dir), dir);
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".")) continue;
    const p = `${dir.replace(/\/$/, "")}/${e.name}`;
    let { isDirectory, isFile } = e;
    if (e.isSymlink) {
      const st = await Deno.stat(p).catch(async (err) => {
        if (err instanceof Deno.errors.NotFound) {
          throw linkError(p, await Deno.readLink(p), "which does not exist");
        }
        throw err;
      });
      ({ isDirectory, isFile } = st);
      if (!isDirectory && !isFile) throw notRegularError(p);
    }
    const temp = isDirectory ? parseTempName(e.name) : undefined;
    if (temp && jobTemps === "skip") continue;
    if (temp) throw unfinishedWorkError(p, temp.pid);
    if (isDirectory) {
      if (nested === "skip" && (await Deno.stat(`${p}/manifest.json`).then((s) => s.isFile, () => false))) {
        continue;
      }
      const real = await Deno.realPath(p);
      const before = seen.get(real);
      if (before !== undefined) {
        throw linkError(p, real, `a folder already read as ${before} (a loop, or two links to one folder)`);
      }
      seen.set(real, p);
      await walk(p, out, jobTemps, nested, seen);
    } else if (isFile) {
      const real = await Deno.realPath(p);
      const before = seen.get(real);
      if (before !== undefined) {
        throw new DataFormatError(
          p,
          `the same file as ${before} (${real}, reached through a symbolic link): its data would be read ` +
            `twice; remove one of the two names`,
        );
      }
      seen.set(real, p);
      names.push(p);
    }
  }
  out.push(...names);
}

/**
 * The error for a symbolic link in an input folder that cannot be followed once: to nothing, a loop, or a
 * folder or file reached by another name as well.
 */
function linkError(path: string, target: string, what: string): DataFormatError {
  return new DataFormatError(
    path,
    `a symbolic link to ${target}, ${what}: fix or remove the link (links in a folder are followed)`,
  );
}

/**
 * The files of a shard folder that may hold data, as {@link classifyInputs} reads a folder: every regular
 * file under `dir` (recursive, sorted) but the hidden ones, those of a job's temporary folder, those of a
 * subfolder holding its own `manifest.json` (another corpus, or a published version of embeddings, each read
 * through its own manifest), and the non-data files skipped beside shards (`manifest.json`, `vocab.tsv`,
 * `train-settings.json`, `_*`, `*.crc`, unfinished `*.tmp`). What a corpus folder holds beyond its manifest's shards is told from these
 * (lib/io/manifest.ts `readManifest`).
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { shardFolderFiles } from "./detect.ts";
 * console.log(await shardFolderFiles("data/corpus")); // ["data/corpus/part-00000.arrow", …]
 * ```
 */
export async function shardFolderFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  await walk(dir, files, "skip", "skip");
  return files.filter((p) => !isShardFolderExtra(p.slice(p.lastIndexOf("/") + 1))).sort();
}

/**
 * The inputs classified: `shards` (every file an Arrow IPC or Parquet shard; `ignored` lists the
 * non-data files skipped beside them, `unfinished` the `*.tmp` ones) or `text` (text and gzip files).
 */
export type ClassifiedInputs =
  | { kind: "shards"; files: SniffedFile[]; ignored: string[]; unfinished: string[] }
  | { kind: "text"; files: SniffedFile[] };

/**
 * Classifies files and folders (recursive, sorted, hidden files skipped) by content. Throws a
 * {@link DataFormatError} for a binary file (naming the first NUL byte), for inputs mixing shards
 * and text (naming one of each), and for an input that is not a regular file or a folder (a pipe, a FIFO,
 * a device: before opening it). Beside shards, `manifest.json`, `vocab.tsv`, `train-settings.json`,
 * `_*`, `*.crc` and `*.tmp` files are skipped.
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { classifyInputs } from "./detect.ts";
 * const c = await classifyInputs(["data/corpus"]);
 * console.log(c.kind, c.files.length);
 * ```
 */
export async function classifyInputs(items: string[]): Promise<ClassifiedInputs> {
  const paths: { path: string; inFolder: boolean }[] = [];
  for (const item of items) {
    const st = await Deno.stat(item);
    if (!st.isDirectory && !st.isFile) throw notRegularError(item);
    if (st.isDirectory) {
      const files: string[] = [];
      await walk(item, files);
      files.sort();
      for (const f of files) paths.push({ path: f, inFolder: true });
    } else paths.push({ path: item, inFolder: false });
  }
  const sniffed: (SniffedFile & { inFolder: boolean })[] = [];
  for (const p of paths) sniffed.push({ ...(await sniffFile(p.path)), inFolder: p.inFolder });
  const shards = sniffed.filter((s) => isShard(s.kind));
  if (shards.length > 0) {
    const ignored: string[] = [], unfinished: string[] = [], files: SniffedFile[] = [];
    for (const s of sniffed) {
      const name = s.path.slice(s.path.lastIndexOf("/") + 1);
      if (isShard(s.kind) && !name.endsWith(".tmp")) files.push(strip(s));
      else if (s.inFolder && name.endsWith(".tmp")) unfinished.push(s.path);
      else if (s.inFolder && (isShardFolderExtra(name) || s.kind === "empty")) ignored.push(s.path);
      else {
        throw new DataFormatError(
          s.path,
          `is ${describe(s)} but ${shards[0].path} is ${
            shards[0].kind === "arrow" ? "an Arrow IPC" : "a Parquet"
          } shard: ` +
            "inputs must be all shards or all text; move the other files out",
        );
      }
    }
    if (files.length === 0) {
      throw new DataFormatError(
        items.join(", "),
        `only unfinished shards (*.tmp): rerun ${DENO_TASK} corpus`,
      );
    }
    return { kind: "shards", files, ignored, unfinished };
  }
  const bin = sniffed.find((s) => s.kind === "binary");
  if (bin) throw notTextError(bin.path, bin.nulAt!, "", bin.utf16);
  const cr = sniffed.find((s) => s.crLines);
  if (cr) {
    throw new DataFormatError(
      cr.path,
      "its lines end in a carriage return alone (classic Mac OS), which is read as one line: convert them " +
        `to line feeds first, e.g. tr '\\r' '\\n' < FILE > FILE.txt`,
    );
  }
  return { kind: "text", files: sniffed.map(strip) };
}

function strip(s: SniffedFile & { inFolder?: boolean }): SniffedFile {
  const { inFolder: _, ...rest } = s;
  return rest;
}

function describe(s: SniffedFile): string {
  if (s.kind === "binary") return `binary (a NUL byte at ${s.nulAt})`;
  if (s.kind === "gzip") return "a gzip file";
  if (s.kind === "empty") return "empty";
  return "text";
}
