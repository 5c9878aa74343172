/**
 * float32 values as decimal text with the fewest digits that read back to the identical float32 (what the
 * `.vec` files are written with, lib/export/word2vec.ts): a fast path for the values embeddings hold, and the
 * `toPrecision` reference it is held to (tests/export_float32_test.ts, scripts/float32_exhaustive.ts).
 *
 * @module
 */

/**
 * The shortest decimal string that parses back to the float32 value `x` exactly (`-0` kept): the first of
 * `x.toPrecision(6)` … `x.toPrecision(9)` that reads back (`Math.fround(Number(s))`), trailing zeros trimmed.
 * Byte for byte the output of {@link formatFloat32Reference}, computed without `toPrecision` for the values
 * embeddings hold (1e-13 ≤ |x| < 1e6); other values, and an `x` that is no float32, take the reference.
 *
 * @example
 * ```ts
 * import { formatFloat32 } from "./float32_text.ts";
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
 * import { formatFloat32Reference } from "./float32_text.ts";
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
 * import { putFloat32 } from "./float32_text.ts";
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
