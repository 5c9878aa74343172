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

/**
 * The shortest decimal string that parses back to the float32 value `x` exactly (`-0` kept): the first of
 * `x.toPrecision(6)` … `x.toPrecision(9)` that reads back (`Math.fround(Number(s))`), trailing zeros trimmed.
 * Byte for byte the output of {@link formatFloat32Reference}, computed without `toPrecision` for the values
 * embeddings hold (1e-13 ≤ |x| < 1e6); other values, and an `x` that is no float32, take the reference.
 *
 * @example
 * ```ts
 * import { formatFloat32 } from "./word2vec.ts";
 * formatFloat32(Math.fround(0.1)); // "0.1"
 * ```
 */
export function formatFloat32(x: number): string {
  if (x === 0 || !shortestDigits(x)) return formatFloat32Reference(x);
  let n = digitsN;
  const e = digitsE;
  while (n % 10 === 0) n = (n / 10) | 0;
  const ds = String(n);
  if (e < 0 && e >= -6) return FIXED_PREFIX[digitsNeg * 6 - e - 1] + ds; // 0.00ddd
  let s: string;
  if (e < -6) { // toPrecision's exponential form (e ≥ p does not occur: |x| < 10^6)
    s = (ds.length === 1 ? ds : ds[0] + "." + ds.slice(1)) + "e-" + -e;
  } else if (ds.length <= e + 1) s = ds + ZEROS[e + 1 - ds.length];
  else s = ds.slice(0, e + 1) + "." + ds.slice(e + 1);
  return digitsNeg ? "-" + s : s;
}

/**
 * The plain implementation that {@link formatFloat32} matches byte for byte (a test holds them together),
 * and its path for what the fast one leaves (NaN, ±Infinity, ±0, subnormals, |x| < 1e-13 or ≥ 1e6, powers
 * of two).
 *
 * @example
 * ```ts
 * import { formatFloat32Reference } from "./word2vec.ts";
 * formatFloat32Reference(Math.fround(1e-7)); // "1e-7"
 * ```
 */
export function formatFloat32Reference(x: number): string {
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  for (let p = 6; p <= 9; p++) {
    const s = x.toPrecision(p);
    if (p === 9 || Math.fround(Number(s)) === x) return trimZeros(s);
  }
  return x.toPrecision(9);
}

function trimZeros(s: string): string {
  const e = s.indexOf("e");
  let mant = e < 0 ? s : s.slice(0, e);
  const exp = e < 0 ? "" : s.slice(e);
  if (mant.includes(".")) mant = mant.replace(/0+$/, "").replace(/\.$/, "");
  return mant + exp;
}

/**
 * Writes {@link formatFloat32}`(x)` as ASCII into `out` at `pos` and returns the position after it: the
 * `.vec` writer's path, which makes no string per value. It needs room for 17 bytes at `pos` (it may write
 * past the value's end, where the next value goes).
 *
 * @example
 * ```ts
 * import { putFloat32 } from "./word2vec.ts";
 * const out = new Uint8Array(32);
 * const end = putFloat32(out, 0, Math.fround(-0.1));
 * new TextDecoder().decode(out.subarray(0, end)); // "-0.1"
 * ```
 */
export function putFloat32(out: Uint8Array, pos: number, x: number): number {
  if (x === 0 || !shortestDigits(x)) {
    const s = formatFloat32Reference(x);
    for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
    return pos;
  }
  out[pos] = 0x2d; // "-", kept for a negative x (a sign that branches would mispredict half the time)
  pos += digitsNeg;
  let n = digitsN, len = digitsP;
  const e = digitsE;
  if (e < 0 && e >= -6) { // 0.00ddd, with no branch on e or on the number of digits
    out[pos] = 0x30;
    out[pos + 1] = 0x2e;
    for (let i = 2; i < 8; i++) out[pos + i] = 0x30;
    pos += 1 - e;
    // all 9 digits of n·10^(9 - p), three at a time (its trailing zeros land where the next value writes)
    const m = (n * POW10[9 - len]) | 0;
    const hi = (m / 1000000) | 0, rest = m - hi * 1000000;
    const mid = (rest / 1000) | 0, lo = 3 * (rest - mid * 1000);
    for (let i = 0, h = 3 * hi, d = 3 * mid; i < 3; i++) {
      out[pos + i] = DIGITS3[h + i];
      out[pos + 3 + i] = DIGITS3[d + i];
      out[pos + 6 + i] = DIGITS3[lo + i];
    }
    while (n % 10 === 0) (n = (n / 10) | 0, len--);
    return pos + len;
  }
  while (n % 10 === 0) (n = (n / 10) | 0, len--);
  if (e < -6) { // d.ddde-x
    pos = putDigits(out, pos, n, len, len > 1 ? 1 : -1);
    out[pos++] = 0x65;
    out[pos++] = 0x2d;
    return putDigits(out, pos, -e, e <= -10 ? 2 : 1, -1);
  }
  if (len <= e + 1) { // ddd00
    pos = putDigits(out, pos, n, len, -1);
    for (let i = len; i <= e; i++) out[pos++] = 0x30;
    return pos;
  }
  return putDigits(out, pos, n, len, e + 1); // dd.ddd
}

/** Writes the `len` decimal digits of `n`, with a "." after the first `point` of them (none if < 0). */
function putDigits(out: Uint8Array, pos: number, n: number, len: number, point: number): number {
  const stop = pos + len + (point >= 0 ? 1 : 0);
  let end = stop;
  for (let i = len; i > 0; i--) {
    if (i === point) out[--end] = 0x2e;
    const q = (n / 10) | 0;
    out[--end] = 0x30 + n - q * 10;
    n = q;
  }
  return stop;
}

// The fast path: 10^FAST_MIN_E ≤ |x| < 10^(FAST_MAX_E + 1), |x| no power of two. There every step is exact or
// decided with a proven margin in doubles, and a value within that margin of a decision takes the reference:
// - the decimal exponent e of |x| is read off thresholds that are float32 (exact comparisons);
// - y = |x|·10^s (s = p - 1 - e ≤ 21) multiplies by an exact power of ten and rounds once: y < 10^9 < 2^30
//   is off by ≤ 2^-24, so its nearest integer n is toPrecision(p)'s digits unless y is within NEAR of a tie;
// - Number(s) then fround gives back x for the decimals strictly inside x's rounding interval, |x| ± h where
//   h is half the float32 spacing (a power of two has a narrower side: left to the reference). In units of
//   the p-th digit, |n - y| < h - NEAR reads back and |n - y| > h + NEAR does not, with room for the
//   double rounding of Number(s) (a half-ulp, 2^-53 relative, is below NEAR/2^30).
const FAST_MIN_E = -13;
const FAST_MAX_E = 5;
/** Margin around a decision point (a rounding tie, the read-back interval's edge), in units of the last digit. */
const NEAR = 2 ** -20;
/** y + ROUND - ROUND is y rounded to an integer (for 0 ≤ y < 2^51): no float-int conversion. */
const ROUND = 2 ** 52;
/** 10^k, k = 0..22: the powers of ten that doubles hold exactly. */
const POW10 = Float64Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
/** 2^(b - 151): half the spacing of float32 of biased exponent b. */
const HALF_ULP32 = Float64Array.from({ length: 256 }, (_, b) => 2 ** (b - 151));
/** The least c with 10^c ≥ 2^(150 - b): for biased exponent b, h ≥ 1/2 from p = e + 1 + c digits on. */
const TOP_DIGITS = Int8Array.from({ length: 256 }, (_, b) => {
  const k = 150 - b, digits = String(2n ** BigInt(Math.abs(k))).length;
  return k > 0 ? digits : 1 - digits;
});
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
/** The least float32 ≥ 10^k, k = FAST_MIN_E..FAST_MAX_E + 1: |x| ≥ 10^k exactly when |x| ≥ this. */
const POW10_FLOOR = Float64Array.from(
  { length: FAST_MAX_E - FAST_MIN_E + 2 },
  (_, i) => leastFloat32AtLeast(i + FAST_MIN_E),
);
const FAST_LOW_BITS = bitsOf(POW10_FLOOR[0]);
const FAST_END_BITS = bitsOf(POW10_FLOOR[POW10_FLOOR.length - 1]);
/** The decimal exponent of the least float32 of each bits >>> 19 (exponent and 4 bits): one step from x's. */
const E_OF_TOP = Int8Array.from({ length: 4096 }, (_, t) => {
  U32[0] = t << 19;
  return FAST_MIN_E - 1 + POW10_FLOOR.filter((f) => f <= F32[0]).length;
});
const ZEROS = Array.from({ length: 8 }, (_, i) => "0".repeat(i));
/** "0.", "0.0" … "0.00000", then the same with "-": the prefixes of the fixed form with e < 0, by sign and e. */
const FIXED_PREFIX = Array.from({ length: 12 }, (_, i) => (i < 6 ? "" : "-") + "0." + "0".repeat(i % 6));
/** The ASCII digits of 000 … 999, three bytes each. */
const DIGITS3 = new TextEncoder().encode(
  Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0")).join(""),
);
/** The digits at the two precisions shortestDigits tries, picked by index (a select, not a branch). */
const LEVEL_N = new Float64Array(2);

function bitsOf(x: number): number {
  F32[0] = x;
  return U32[0];
}

/** The least float32 ≥ 10^k, compared exactly (BigInt, at load). */
function leastFloat32AtLeast(k: number): number {
  const atLeast = (bits: number) => {
    const m = BigInt((bits & 0x7fffff) | 0x800000), q = ((bits >>> 23) & 0xff) - 150;
    const lhs = m * 2n ** BigInt(Math.max(q, 0)) * 10n ** BigInt(Math.max(-k, 0));
    return lhs >= 10n ** BigInt(Math.max(k, 0)) * 2n ** BigInt(Math.max(-q, 0));
  };
  let bits = bitsOf(Number(`1e${k}`));
  while (!atLeast(bits)) bits++;
  while (atLeast(bits - 1)) bits--;
  U32[0] = bits;
  return F32[0];
}

// shortestDigits' answer: the digits of the toPrecision(p) formatFloat32Reference picks, as an integer of
// digitsP digits (p, or for a shorter p the same digits with trailing zeros), their exponent, x's sign bit
let digitsN = 0, digitsE = 0, digitsP = 0, digitsNeg = 0;

/**
 * Rounds a·scale to an integer into LEVEL_N[i]; returns 1 if that reads back to a (|n - y| < h), 0 if
 * not, -1 where it is within NEAR of a tie or of the interval's edge.
 */
function level(i: number, a: number, scale: number, h: number): number {
  const y = a * scale;
  const n = y + ROUND - ROUND;
  const d = Math.abs(y - n);
  LEVEL_N[i] = n;
  return d > 0.5 - NEAR || Math.abs(d - h) <= NEAR ? -1 : +(d < h);
}

/**
 * Sets digitsN, digitsE, digitsP, digitsNeg to the digits formatFloat32Reference's toPrecision loop picks
 * for `x`; false where they are not decided here (see the fast path's conditions above).
 *
 * Two precisions are enough. Let p be the first one (≥ 6) at which h ≥ 1/2, or 9 (which is not checked):
 * every toPrecision(p) that is no tie reads back. At q ≤ p - 2 digits h < 1/20, so a q-digit n that reads
 * back lies within 1/20 of y and the (q + 1)-digit rounding is 10n: the same decimal, which reads back
 * too. So the reference's decimal is toPrecision(p - 1)'s if that reads back, else toPrecision(p)'s; the
 * precision itself shows only in the exponential form for e ≥ p ≥ 6, which |x| < 10^6 never reaches.
 * Both are computed before the answer is looked at, which keeps that answer off the branch predictor.
 */
function shortestDigits(x: number): boolean {
  F32[0] = x;
  const raw = U32[0], bits = raw & 0x7fffffff;
  if (F32[0] !== x || bits < FAST_LOW_BITS || bits >= FAST_END_BITS || (bits & 0x7fffff) === 0) return false;
  const a = Math.abs(x);
  let e = E_OF_TOP[bits >>> 19];
  if (a >= POW10_FLOOR[e + 1 - FAST_MIN_E]) e++;
  let p = e + 1 + TOP_DIGITS[bits >>> 23];
  if (p > 9) p = 9;
  else if (p < 6) p = 6;
  if (level(0, a, POW10[p - 1 - e], 1) < 0) return false;
  let shorter = 0;
  if (p > 6) {
    const scale = POW10[p - 2 - e];
    shorter = level(1, a, scale, HALF_ULP32[bits >>> 23] * scale);
    if (shorter < 0) return false;
    p -= shorter;
  }
  const n = LEVEL_N[shorter];
  if (n === POW10[p]) { // rounded up to the next power of ten, as toPrecision does
    digitsN = POW10[p - 1] | 0;
    digitsE = e + 1;
  } else {
    digitsN = n | 0;
    digitsE = e;
  }
  digitsP = p;
  digitsNeg = raw >>> 31;
  return true;
}

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
