/**
 * A small seeded, splittable PRNG with serialisable state: xoshiro128** (Blackman & Vigna) on four
 * uint32 words, seeded and split through splitmix32. No global state: every consumer owns its generator.
 *
 * @module
 */

/** splitmix32 step: a well-mixed uint32 from a uint32 counter. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * The serialisable state of an {@link Rng}: four uint32 words.
 *
 * @example
 * ```ts
 * import type { RngState } from "./rng.ts";
 * const s: RngState = [1, 2, 3, 4];
 * ```
 */
export type RngState = [number, number, number, number];

/**
 * xoshiro128**: `nextU32()`, `next()` in [0, 1) with 53 random bits, `uniform(a, b)`, `split()` for an
 * independent child stream, `state()` / `Rng.fromState()` to checkpoint it exactly.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const rng = new Rng(42);
 * const child = rng.split();
 * const x = rng.next(), copy = Rng.fromState(rng.state());
 * console.log(copy.next() === rng.next()); // true
 * ```
 */
export class Rng {
  #s = new Uint32Array(4);

  /**
   * A generator seeded by `seed`.
   *
   * @param seed any integer (its low 32 bits and a hash of the rest are used)
   */
  constructor(seed = 0) {
    let x = (seed >>> 0) ^ Math.floor(seed / 4294967296);
    for (let i = 0; i < 4; i++) {
      x = mix32(x + i);
      this.#s[i] = x;
    }
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1;
  }

  /** Rebuilds a generator from {@link Rng.state}'s output. */
  static fromState(state: readonly number[]): Rng {
    if (
      !Array.isArray(state) || state.length !== 4 ||
      state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    ) {
      throw new RangeError(`RNG state must be four uint32 words, got ${JSON.stringify(state)}`);
    }
    const r = new Rng(0);
    r.#s.set(state);
    return r;
  }

  /** The four state words (a copy). */
  state(): RngState {
    return [this.#s[0], this.#s[1], this.#s[2], this.#s[3]];
  }

  /** The next uint32. */
  nextU32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** A double in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5, lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A double in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An independent child generator; advances this one by four draws. */
  split(): Rng {
    const r = new Rng(0);
    for (let i = 0; i < 4; i++) r.#s[i] = mix32(this.nextU32() ^ Math.imul(i + 1, 0x27d4eb2d));
    if ((r.#s[0] | r.#s[1] | r.#s[2] | r.#s[3]) === 0) r.#s[0] = 1;
    return r;
  }

  /** Fills `out` with uniform values in [-scale, scale). */
  fillUniform(out: Float32Array | Float64Array, scale: number): void {
    for (let i = 0; i < out.length; i++) out[i] = (2 * this.next() - 1) * scale;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
