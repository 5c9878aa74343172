/**
 * word2vec formats. Text (`.vec`, as written by word2vec -binary 0 and fastText): a header line `V d`,
 * then V lines `word x_1 … x_d` separated by single spaces. Binary (`.bin`, word2vec -binary 1): the same
 * header line, then for each word its UTF-8 bytes, one space, d little-endian float32 and a newline.
 * Floats in `.vec` files are written with the fewest digits that read back to the identical float32.
 *
 * @module
 */

import { DataFormatError } from "../core/errors.ts";
import { type AtomicWriteOptions, writeFileAtomic } from "../core/atomic.ts";
import { checkEmbeddings, checkWord2VecWords, type Embeddings } from "./embeddings.ts";
import { putFloat32 } from "./float32_text.ts";

// the float32 text of the .vec files has a module of its own; its functions are part of this one's API
export { formatFloat32, formatFloat32Reference, putFloat32 } from "./float32_text.ts";

/**
 * Writes embeddings as word2vec text (`V d` header) to `path`, atomically (temporary file + rename);
 * `opts.digest` is given every byte written (lib/core/atomic.ts).
 *
 * @example
 * ```ts
 * import { writeWord2VecText } from "./word2vec.ts";
 * await writeWord2VecText("/tmp/e.vec", { words: ["a", "b"], vectors: Float32Array.of(1, 0, 0, 1), d: 2 });
 * ```
 */
export async function writeWord2VecText(
  path: string,
  e: Embeddings,
  opts: Pick<AtomicWriteOptions, "digest"> = {},
): Promise<void> {
  const { words, vectors, d } = e;
  checkEmbeddings(words, vectors, d, path);
  checkWord2VecWords(words, path);
  const enc = new TextEncoder();
  await writeFileAtomic(path, async (write) => {
    await write(`${words.length} ${d}\n`);
    let chunk = new Uint8Array(1 << 20);
    let pos = 0;
    for (let i = 0; i < words.length; i++) {
      // a word's UTF-8 takes ≤ 3 bytes per UTF-16 unit, a value ≤ 16 with its space, putFloat32 room for 17
      const need = 3 * words[i].length + 16 * d + 18;
      if (pos + need > chunk.length) {
        await write(chunk.subarray(0, pos));
        pos = 0;
        if (need > chunk.length) chunk = new Uint8Array(need);
      }
      pos += enc.encodeInto(words[i], chunk.subarray(pos)).written;
      const base = i * d;
      for (let j = 0; j < d; j++) {
        chunk[pos++] = 0x20;
        pos = putFloat32(chunk, pos, vectors[base + j]);
      }
      chunk[pos++] = 0x0a;
    }
    await write(chunk.subarray(0, pos));
  }, opts);
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Writes embeddings in word2vec's binary format to `path`, atomically; `opts.digest` is given every
 * byte written.
 *
 * @example
 * ```ts
 * import { writeWord2VecBinary } from "./word2vec.ts";
 * await writeWord2VecBinary("/tmp/e.bin", { words: ["a", "b"], vectors: Float32Array.of(1, 0, 0, 1), d: 2 });
 * ```
 */
export async function writeWord2VecBinary(
  path: string,
  e: Embeddings,
  opts: Pick<AtomicWriteOptions, "digest"> = {},
): Promise<void> {
  const { words, vectors, d } = e;
  checkEmbeddings(words, vectors, d, path);
  checkWord2VecWords(words, path);
  const enc = new TextEncoder();
  await writeFileAtomic(path, async (write) => {
    await write(`${words.length} ${d}\n`);
    const chunk = new Uint8Array(1 << 20);
    const view = new DataView(chunk.buffer);
    let pos = 0;
    for (let i = 0; i < words.length; i++) {
      const w = enc.encode(words[i]);
      const need = w.length + 1 + 4 * d + 1;
      if (pos + need > chunk.length) {
        await write(chunk.slice(0, pos));
        pos = 0;
      }
      if (need > chunk.length) { // a single huge row: write it on its own
        const row = new Uint8Array(need);
        row.set(w, 0);
        row[w.length] = 0x20;
        const rv = new DataView(row.buffer);
        for (let j = 0; j < d; j++) rv.setFloat32(w.length + 1 + 4 * j, vectors[i * d + j], true);
        row[need - 1] = 0x0a;
        await write(row);
        continue;
      }
      chunk.set(w, pos);
      pos += w.length;
      chunk[pos++] = 0x20;
      for (let j = 0; j < d; j++, pos += 4) view.setFloat32(pos, vectors[i * d + j], true);
      chunk[pos++] = 0x0a;
    }
    await write(chunk.slice(0, pos));
  }, opts);
}

/**
 * Whether a line read as text holds binary data: bytes that are not UTF-8 (decoded as U+FFFD) or control
 * characters other than tab and carriage return. A word2vec binary file under a .vec name reads so.
 */
function binaryLine(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0xfffd || (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d)) return true;
  }
  return false;
}

/** What a text line of binary data gets appended to its error: the files are read by their extension. */
const BINARY_HINT = ": binary data, not word2vec text (files are read by their extension: .vec text, .bin " +
  "word2vec binary, .arrow, .parquet; is it one of the others under a .vec name?)";

function parseHeader(line: string, file: string): { V: number; d: number } {
  const m = /^[ \t]*(\d+)[ \t]+(\d+)[ \t]*$/.exec(line);
  if (!m && binaryLine(line)) {
    throw new DataFormatError(file, `line 1: expected a header "V d" (two integers)${BINARY_HINT}`);
  }
  if (!m) {
    // a first row of vectors: GloVe's text files (and fastText's print-word-vectors) have no header
    const parts = line.trimEnd().split(" ");
    const row = parts.length >= 3 && parts.slice(1).every((x) => DECIMAL.test(x));
    throw new DataFormatError(
      file,
      `line 1: expected a header "V d" (two integers), got ${JSON.stringify(line.slice(0, 80))}` +
        (row
          ? `: a word and ${parts.length - 1} values, as in a file without word2vec's header (GloVe's); ` +
            `put a line "<rows> ${parts.length - 1}" first`
          : ""),
    );
  }
  const V = Number(m[1]), d = Number(m[2]);
  if (!Number.isSafeInteger(V)) throw new DataFormatError(file, `line 1: V = ${m[1]} rows is too large`);
  if (!Number.isSafeInteger(d)) throw new DataFormatError(file, `line 1: dimension d = ${m[2]} is too large`);
  if (d <= 0) throw new DataFormatError(file, `line 1: dimension d must be positive, got ${d}`);
  return { V, d };
}

/** fastText's model files begin with its magic number, the int32 793712314 (0x2F4F16BA), little-endian. */
function isFastTextModel(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0xba && bytes[1] === 0x16 && bytes[2] === 0x4f &&
    bytes[3] === 0x2f;
}

/** A decimal number as word2vec, fastText and gensim write them (`-0.5`, `1e-05`, `3.`): no hex, no `0b1`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A value of a `.vec` row as the float32 it is stored as; a {@link DataFormatError} naming the file, the
 * line, the word and the value for anything else: not a decimal number (`x`, `NaN`, `0x10`), or one
 * beyond float32's range (`1e40`, which would be Infinity).
 */
function parseValue(s: string, file: string, where: string, j: number): number {
  if (!DECIMAL.test(s)) {
    throw new DataFormatError(file, `${where}: value ${j} is ${JSON.stringify(s)}, not a decimal number`);
  }
  const x = Math.fround(Number(s));
  if (!Number.isFinite(x)) {
    throw new DataFormatError(
      file,
      `${where}: value ${j} is ${s}, beyond float32's range (±3.4e38): it would be stored as ${x}`,
    );
  }
  return x;
}

/** Yields the lines of a UTF-8 text file, streaming (without their "\n" / "\r\n"). */
async function* readLines(path: string): AsyncGenerator<string> {
  const file = await Deno.open(path, { read: true });
  const reader = file.readable.pipeThrough(new TextDecoderStream()).getReader();
  let done = false;
  try {
    let rest = "";
    while (true) {
      const r = await reader.read();
      if (r.done) break;
      rest += r.value;
      let start = 0;
      for (let nl = rest.indexOf("\n", start); nl >= 0; nl = rest.indexOf("\n", start)) {
        const end = nl > start && rest.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        yield rest.slice(start, end);
        start = nl + 1;
      }
      rest = rest.slice(start);
    }
    done = true;
    if (rest.length > 0) yield rest.endsWith("\r") ? rest.slice(0, -1) : rest;
  } finally {
    if (!done) await reader.cancel().catch(() => {});
  }
}

/**
 * Reads a word2vec text file (`.vec`). A row is split as word2vec, fastText and gensim write and read it:
 * on single ASCII spaces after its trailing whitespace is dropped (fastText ends rows with a space), so a
 * word may hold any other character, a no-break space or a tab included (gensim writes and reads such
 * words). Throws {@link DataFormatError} naming the file and line for a bad or impossible header, a short
 * or long row, a value that is not a decimal number or does not fit a float32, or a row count different
 * from the header's V.
 *
 * @example
 * ```ts
 * import { readWord2VecText, writeWord2VecText } from "./word2vec.ts";
 * await writeWord2VecText("/tmp/r.vec", { words: ["a"], vectors: Float32Array.of(0.5, 2), d: 2 });
 * const { words, vectors, d } = await readWord2VecText("/tmp/r.vec");
 * ```
 */
export async function readWord2VecText(path: string): Promise<Embeddings> {
  let header: { V: number; d: number } | undefined;
  let words: string[] = [];
  let vectors = new Float32Array(0);
  let row = 0;
  let lineNo = 0;
  for await (const line of readLines(path)) {
    lineNo++;
    if (!header) {
      header = parseHeader(line, path);
      // room for the rows the file can hold (each at least a word and d " x"), not for what the header
      // claims: a header of 99999999999 rows is refused as truncated below, not by an allocation failure
      const size = (await Deno.stat(path)).size;
      const rows = Math.min(header.V, Math.floor(Math.max(0, size - line.length) / (2 * header.d + 1)));
      words = new Array<string>(rows);
      vectors = new Float32Array(rows * header.d);
      continue;
    }
    const d = header.d;
    const text = line.trimEnd();
    if (text.length === 0) continue; // tolerate blank lines (e.g. a trailing one)
    if (row >= header.V) {
      throw new DataFormatError(path, `line ${lineNo}: more rows than the header's V = ${header.V}`);
    }
    const parts = text.split(" ");
    if (parts.length !== d + 1) {
      throw new DataFormatError(
        path,
        binaryLine(text)
          ? `line ${lineNo}: expected a word and ${d} values${BINARY_HINT}`
          : `line ${lineNo}: expected a word and ${d} values, got ${parts.length - 1} values` +
            (parts.length < d + 1 ? " (short row)" : "") +
            (/ {2}|\t/.test(text) ? " (values are separated by single spaces)" : ""),
      );
    }
    if (parts[0] === "") {
      throw new DataFormatError(path, `line ${lineNo}: the row starts with a space (no word)`);
    }
    if ((row + 1) * d > vectors.length) { // a file that grew while read, or one of no size (a pipe)
      const grown = new Float32Array(Math.max(2 * vectors.length, (row + 1) * d));
      grown.set(vectors);
      vectors = grown;
    }
    words[row] = parts[0];
    const base = row * d;
    const where = `line ${lineNo} (${JSON.stringify(parts[0])})`;
    for (let j = 0; j < d; j++) vectors[base + j] = parseValue(parts[j + 1], path, where, j + 1);
    row++;
  }
  if (!header) throw new DataFormatError(path, `line 1: empty file, expected a header "V d"`);
  if (row !== header.V) {
    throw new DataFormatError(path, `header says ${header.V} rows but the file has ${row} (truncated?)`);
  }
  words.length = row;
  return {
    words,
    vectors: vectors.length === row * header.d ? vectors : vectors.slice(0, row * header.d),
    d: header.d,
  };
}

/**
 * Reads a word2vec binary file (`.bin`; word2vec -binary 1 ends each row with "\n", gensim does not).
 * Throws {@link DataFormatError} naming the file and row for a bad header, a header whose V rows of d
 * float32 cannot fit in the file (checked before anything is allocated), a truncated row, a non-finite
 * value, or bytes left after the V rows (a text file named `.bin`).
 *
 * @example
 * ```ts
 * import { readWord2VecBinary, writeWord2VecBinary } from "./word2vec.ts";
 * await writeWord2VecBinary("/tmp/r.bin", { words: ["a"], vectors: Float32Array.of(0.5, 2), d: 2 });
 * const { words, vectors } = await readWord2VecBinary("/tmp/r.bin");
 * ```
 */
export async function readWord2VecBinary(path: string): Promise<Embeddings> {
  const bytes = await Deno.readFile(path);
  // ignoreBOM: a word that starts with U+FEFF keeps it (a decoder per word would strip it as a BOM)
  const dec = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  if (isFastTextModel(bytes)) {
    // `fasttext skipgram -output m` writes m.bin (its model) beside m.vec (the vectors); the header error
    // quoted the model's binary bytes
    throw new DataFormatError(
      path,
      `a fastText model (fastText's own .bin format), not a word2vec binary file: give the .vec file ` +
        `fastText wrote beside it (-output NAME writes NAME.bin and NAME.vec)`,
    );
  }
  const nl = bytes.indexOf(0x0a);
  if (nl < 0) throw new DataFormatError(path, `line 1: no header line "V d" found`);
  const { V, d } = parseHeader(dec.decode(bytes.subarray(0, nl)), path);
  // each row: a word of at least one byte, a space and d float32
  const least = nl + 1 + V * (4 * d + 2);
  if (least > bytes.length) {
    throw new DataFormatError(
      path,
      `header says ${V} rows of ${d} float32, which need at least ${least} bytes; the file has ${bytes.length} ` +
        `(truncated, or not a word2vec binary file)`,
    );
  }
  const words = new Array<string>(V);
  const vectors = new Float32Array(V * d);
  const out8 = new Uint8Array(vectors.buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = nl + 1;
  for (let i = 0; i < V; i++) {
    while (pos < bytes.length && (bytes[pos] === 0x0a || bytes[pos] === 0x0d)) pos++;
    const sp = bytes.indexOf(0x20, pos);
    if (pos >= bytes.length || sp < 0) {
      throw new DataFormatError(path, `row ${i + 1} of ${V}: file ends before the word (truncated)`);
    }
    const word = dec.decode(bytes.subarray(pos, sp));
    if (word.length === 0 || word.includes("\n")) {
      throw new DataFormatError(path, `row ${i + 1} of ${V} (byte ${pos}): bad word ${JSON.stringify(word)}`);
    }
    pos = sp + 1;
    if (pos + 4 * d > bytes.length) {
      throw new DataFormatError(
        path,
        `row ${i + 1} of ${V} ("${word}"): needs ${4 * d} bytes of float32, only ${
          bytes.length - pos
        } left (short row)`,
      );
    }
    if (LITTLE_ENDIAN) out8.set(bytes.subarray(pos, pos + 4 * d), i * d * 4);
    else for (let j = 0; j < d; j++) vectors[i * d + j] = view.getFloat32(pos + 4 * j, true);
    for (let j = 0; j < d; j++) {
      if (!Number.isFinite(vectors[i * d + j])) {
        throw new DataFormatError(
          path,
          `row ${i + 1} of ${V} ("${word}"): value ${j + 1} is ${vectors[i * d + j]}`,
        );
      }
    }
    words[i] = word;
    pos += 4 * d;
  }
  let rest = pos;
  while (rest < bytes.length && /^[\n\r\t ]$/.test(String.fromCharCode(bytes[rest]))) rest++;
  if (rest < bytes.length) {
    throw new DataFormatError(
      path,
      `${bytes.length - pos} bytes left after the header's ${V} rows (byte ${pos}): not a word2vec binary ` +
        `file of that header (a text .vec named .bin?)`,
    );
  }
  return { words, vectors, d };
}
