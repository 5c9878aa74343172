/**
 * A small seeded random number generator (sfc32, seeded through splitmix32) for everything random in the
 * corpus pipeline: subsampling, dynamic windows, shuffles, the synthetic generator. Same seed, same
 * stream, on every platform; no global state.
 *
 * @module
 */

/**
 * Mixes any number of 32-bit keys into one 32-bit seed (splitmix32 finaliser). Used to derive an
 * independent stream per (seed, epoch, block) so that a shuffle can be recomputed from its position.
 *
 * @example
 * ```ts
 * import { mixSeed } from "./rng.ts";
 * const s = mixSeed(42, 3, 7); // the stream of epoch 3, block 7
 * ```
 */
export function mixSeed(...keys: number[]): number {
  let h = 0x9e3779b9 | 0;
  for (const k of keys) {
    // fold in both 32-bit halves of k so that keys up to 2^53 stay distinct
    const lo = k >>> 0;
    const hi = Math.floor(k / 4294967296) >>> 0;
    h = splitmix32(h ^ lo);
    h = splitmix32(h ^ hi);
  }
  return h >>> 0;
}

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * sfc32: 128 bits of state, period ≥ 2^32, passes PractRand to many TB. `nextFloat()` is in [0, 1) with
 * 32 random bits; `nextInt(n)` is unbiased (rejection) for n ≤ 2^32.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const r = new Rng(7);
 * const u = r.nextFloat(); // same value for seed 7, always
 * const k = r.nextInt(10); // 0..9
 * ```
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** @param seed any number; equal seeds give equal streams */
  constructor(seed: number) {
    const s = mixSeed(seed);
    this.#a = splitmix32(s);
    this.#b = splitmix32(this.#a ^ 0x6a09e667);
    this.#c = splitmix32(this.#b ^ 0xbb67ae85);
    this.#d = 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const a = this.#a, b = this.#b, c = this.#c, d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    this.#d = (d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    const c2 = (c << 21) | (c >>> 11);
    this.#c = (c2 + t) | 0;
    return t >>> 0;
  }

  /** A uniform float in [0, 1). */
  nextFloat(): number {
    return this.nextU32() / 4294967296;
  }

  /** A uniform integer in [0, n), unbiased; n in 1..2^32. */
  nextInt(n: number): number {
    if (n <= 1) return 0;
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }
}

/**
 * Fills `perm` with a uniformly random permutation of 0..perm.length-1 (Fisher–Yates) from `rng`.
 *
 * @example
 * ```ts
 * import { Rng, shufflePermutation } from "./rng.ts";
 * const p = shufflePermutation(new Int32Array(5), new Rng(1)); // e.g. [3, 0, 4, 1, 2]
 * ```
 */
export function shufflePermutation(perm: Int32Array, rng: Rng, n: number = perm.length): Int32Array {
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}
