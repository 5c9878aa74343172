/**
 * The exhaustive check behind formatFloat32's fast path (lib/export/word2vec.ts), run by hand rather than
 * in the suite (tests/export_float32_test.ts samples the same comparison): every float32 of both signs
 * whose magnitude is in [--from, --to), default the fast path's whole range 1e-13 ≤ |x| < 1e6, formatted
 * by formatFloat32 and by putFloat32 and compared with formatFloat32Reference. Outside that range
 * formatFloat32 returns formatFloat32Reference's own string. The reference runs once per magnitude: its
 * string for -x is "-" and its string for x (toPrecision writes a negative number's sign first, and
 * Number and Math.fround are odd). One core; the run's time is printed (BENCHMARKS.md has the last one).
 *
 * Run: deno run -A scripts/float32_exhaustive.ts [--from 1e-13] [--to 1e6]
 *
 * Exit status: 0 when nothing differs, 1 otherwise (the first differences are printed).
 *
 * @module
 */

import { formatFloat32, formatFloat32Reference, putFloat32 } from "../lib/export/word2vec.ts";

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(Deno.args[i + 1]);
  if (!(v > 0)) throw new Error(`--${name} takes a positive number, got ${Deno.args[i + 1]}`);
  return v;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The bits of the least float32 ≥ v (v > 0). */
function bitsAtLeast(v: number): number {
  F32[0] = v;
  let b = U32[0];
  if (F32[0] < v) b++;
  return b;
}

const from = flag("from", 1e-13), to = flag("to", 1e6);
const first = bitsAtLeast(from), end = Math.min(bitsAtLeast(to), 0x7f800000);
const out = new Uint8Array(32);
const shown: string[] = [];
let differ = 0;

/** Whether formatFloat32 and putFloat32 write `want` for x. */
function same(x: number, want: string): boolean {
  if (formatFloat32(x) !== want) return false;
  const n = putFloat32(out, 0, x);
  if (n !== want.length) return false;
  for (let i = 0; i < n; i++) if (out[i] !== want.charCodeAt(i)) return false;
  return true;
}

function report(x: number, want: string): void {
  differ++;
  if (shown.length < 20) shown.push(`${x}: reference ${want}, formatFloat32 ${formatFloat32(x)}`);
}

const t0 = performance.now();
console.error(`float32_exhaustive: ${end - first} magnitudes × 2 signs, bits 0x${first.toString(16)}…`);
for (let b = first; b < end; b++) {
  U32[0] = b;
  const x = F32[0];
  const want = formatFloat32Reference(x);
  if (!same(x, want)) report(x, want);
  if (!same(-x, "-" + want)) report(-x, "-" + want);
  if ((b - first) % (1 << 24) === 0 && b > first) {
    const s = (performance.now() - t0) / 1000, done = (b - first) / (end - first);
    console.error(
      `  ${(100 * done).toFixed(1)}% (|x| ≈ ${x.toExponential(2)}), ${s.toFixed(0)} s, ${differ} differ`,
    );
  }
}
const seconds = (performance.now() - t0) / 1000;
console.log(
  `float32_exhaustive: ${2 * (end - first)} float32 (${end - first} magnitudes in [${from}, ${to}), ` +
    `both signs) checked in ${seconds.toFixed(0)} s: ${differ} differ from formatFloat32Reference`,
);
for (const line of shown) console.log(`  ${line}`);
if (differ > 0) Deno.exit(1);
