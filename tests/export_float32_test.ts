/**
 * The `.vec` float formatting: formatFloat32's fast path and putFloat32 (the writer's bytes) held against
 * formatFloat32Reference, the toPrecision loop they replaced, on every float32 edge class and on seeded
 * random bit patterns; and writeWord2VecText's file against the reference's rows. The exhaustive check of
 * the fast path's whole range runs outside the suite: `deno run -A scripts/float32_exhaustive.ts`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  formatFloat32,
  formatFloat32Reference,
  putFloat32,
  writeWord2VecText,
} from "../lib/export/word2vec.ts";

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

function fromBits(bits: number): number {
  U32[0] = bits >>> 0;
  return F32[0];
}

function bitsOf(x: number): number {
  F32[0] = x;
  return U32[0];
}

/** A seeded xorshift32: the random tests see the same values on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

/**
 * Where formatFloat32 or putFloat32 differ from formatFloat32Reference on `xs`: the count and the first
 * few, each with its bits.
 */
function mismatches(xs: Iterable<number>): { checked: number; count: number; first: string[] } {
  const out = new Uint8Array(32);
  const dec = new TextDecoder();
  let checked = 0, count = 0;
  const first: string[] = [];
  for (const x of xs) {
    checked++;
    const want = formatFloat32Reference(x);
    const got = formatFloat32(x);
    const end = putFloat32(out, 0, x);
    let same = got === want && end === want.length;
    for (let i = 0; same && i < end; i++) same = out[i] === want.charCodeAt(i);
    if (same) continue;
    count++;
    if (first.length < 10) {
      const bits = Math.fround(x) === x ? ` (bits 0x${bitsOf(x).toString(16)})` : "";
      first.push(
        `${x}${bits}: reference ${want}, formatFloat32 ${got}, putFloat32 ${
          dec.decode(out.subarray(0, end))
        }`,
      );
    }
  }
  return { checked, count, first };
}

function assertNoMismatch(xs: Iterable<number>, least: number): void {
  const m = mismatches(xs);
  assert.equal(m.count, 0, `${m.count} of ${m.checked} differ from the reference:\n${m.first.join("\n")}`);
  assert.ok(m.checked >= least, `only ${m.checked} values checked`);
}

/** Every float32 edge class, both signs, and each one's float32 neighbours (±1…3 ulps, by the bits). */
function edgeValues(): number[] {
  const bits: number[] = [
    0, // +0
    1,
    2,
    3,
    0x400000,
    0x7ffffe,
    0x7fffff, // subnormals: the least, the middle, the greatest
    0x800000, // the least normal
    0x7f7fffff, // the greatest finite
    0x7f800000, // Infinity
    0x7fc00000,
    0x7f800001,
    0x7fffffff, // NaNs
  ];
  for (let b = 1; b < 255; b++) bits.push(b << 23); // every power of two
  for (let k = -45; k <= 38; k++) bits.push(bitsOf(Number(`1e${k}`))); // every power of ten
  // the fast path's decimal thresholds' neighbourhoods are among the powers of ten; dyadic values with few
  // digits land on toPrecision's rounding ties (1234.5625 at 7 digits, 123456.5 at 6)
  const near: number[] = [];
  for (const b of bits) {
    for (let d = -3; d <= 3; d++) if (b + d >= 0 && b + d <= 0x7fffffff) near.push(b + d);
  }
  const xs = near.map(fromBits);
  xs.push(1234.5625, 123456.5, 999999.5, 0.5, 1.5, 2.5, 99999.5, 0.000244140625, 1e6, 999999.9375);
  for (let t = 1; t <= 24; t++) for (let j = 1; j < 200; j += 7) xs.push(Math.fround((j * 104729) / 2 ** t));
  // numbers that are no float32 take the reference path whole
  xs.push(0.1, 1 / 3, Math.PI, 1e-300, 1e300, Number.MAX_VALUE, Number.MIN_VALUE, -1e-40, 0.1 + 2 ** -40);
  return [...xs, ...xs.map((x) => -x)];
}

Deno.test("formatFloat32 keeps the reference's answers for ±0, ±Infinity and NaN", () => {
  assert.equal(formatFloat32(0), "0");
  assert.equal(formatFloat32(-0), "-0");
  assert.equal(formatFloat32(Infinity), "Infinity");
  assert.equal(formatFloat32(-Infinity), "-Infinity");
  assert.equal(formatFloat32(NaN), "NaN");
  assert.equal(formatFloat32(Math.fround(0.1)), "0.1");
  assert.equal(formatFloat32(Math.fround(-0.05)), "-0.05");
  assert.equal(formatFloat32(Math.fround(1e-7)), "1e-7");
  assert.equal(formatFloat32(1e6), "1e+6");
  assert.equal(formatFloat32(Math.fround(123.456)), "123.456");
});

Deno.test("formatFloat32 and putFloat32 match the reference on every float32 edge class", () => {
  assertNoMismatch(edgeValues(), 4000);
});

Deno.test("formatFloat32 and putFloat32 match the reference on 500,000 seeded random float32", () => {
  const next = rng(20261206);
  const lo = bitsOf(1e-13), hi = bitsOf(1e6);
  const xs = new Float32Array(500_000);
  for (let i = 0; i < 200_000; i++) xs[i] = fromBits(next()); // any bits: every exponent, NaNs included
  for (let i = 200_000; i < 400_000; i++) { // the fast path's range, both signs
    xs[i] = fromBits((lo + (next() % (hi - lo))) | (next() & 0x80000000));
  }
  for (let i = 400_000; i < xs.length; i++) { // what embeddings hold: N(0, 0.05)
    const r = Math.sqrt(-2 * Math.log((next() + 1) / 2 ** 32));
    xs[i] = 0.05 * r * Math.cos((2 * Math.PI * next()) / 2 ** 32);
  }
  assertNoMismatch(xs, xs.length);
});

Deno.test("writeWord2VecText writes the reference's bytes, across chunks and for a row longer than one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const edges = edgeValues().filter((x) => Number.isFinite(x) && Math.fround(x) === x);
    const next = rng(7);
    const make = (V: number, d: number) => {
      const vectors = new Float32Array(V * d);
      for (let i = 0; i < vectors.length; i++) {
        vectors[i] = i % 5 === 0
          ? edges[next() % edges.length]
          : fromBits(next() % 0x7f800000) * (next() & 1 ? 1 : -1);
      }
      return {
        words: Array.from({ length: V }, (_, i) => ["the", "café", "日本", "x_y"][i % 4] + i),
        vectors,
        d,
      };
    };
    // 300 rows of 400 values fill several 1 MiB chunks; a row of 70,000 values needs a chunk of its own
    for (const e of [make(300, 400), make(3, 70_000), make(0, 3)]) {
      const path = join(dir, "e.vec");
      await writeWord2VecText(path, e);
      let want = `${e.words.length} ${e.d}\n`;
      for (let i = 0; i < e.words.length; i++) {
        const row = Array.from(e.vectors.subarray(i * e.d, (i + 1) * e.d), formatFloat32Reference);
        want += `${e.words[i]} ${row.join(" ")}\n`;
      }
      const got = await Deno.readFile(path), expected = new TextEncoder().encode(want);
      let at = 0;
      while (at < got.length && at < expected.length && got[at] === expected[at]) at++;
      assert.ok(
        at === got.length && at === expected.length,
        `${e.words.length}×${e.d}: the file differs from the reference's rows at byte ${at}: ` +
          `${JSON.stringify(new TextDecoder().decode(got.subarray(at - 20, at + 20)))} against ` +
          JSON.stringify(want.slice(at - 20, at + 20)),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
