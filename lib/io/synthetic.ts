/**
 * A synthetic corpus for scale: a Zipf-distributed stream of word ids (P(rank r) ∝ 1/(r+1)^s) over any
 * vocabulary size, cut into sentences of random length, deterministic for a seed. Word r is spelled
 * `w<r>` when written as text. Sampling is a binary search in the cumulative distribution (O(log V) per
 * token, V doubles of memory); no other state, so a second pass regenerates exactly the same stream.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { Sfc32 } from "../core/rng.ts";
import { describeOsError, withPath, writeAllSync } from "../core/os_errors.ts";
import { removeAtExit } from "../core/stop.ts";

/** Options of the synthetic generator. *
 * @example
 * ```ts
 * import type { SyntheticOptions } from "./synthetic.ts";
 * const o: SyntheticOptions = { vocabSize: 1_000_000, tokens: 100_000_000, seed: 1, exponent: 1 };
 * ```
 */
export type SyntheticOptions = {
  /** distinct words V (≥ 2) */
  vocabSize: number;
  /** total tokens to generate */
  tokens: number;
  /** the seed: same seed, same stream */
  seed: number;
  /** Zipf exponent s (default 1) */
  exponent?: number;
  /** sentence lengths, uniform in [min, max] (default [5, 30]) */
  sentenceLength?: [number, number];
};

/**
 * Generates the stream sentence by sentence: `onSentence(ids, n)` gets a reused buffer (valid during the
 * call); return `false` from it to stop early.
 *
 * @example
 * ```ts
 * import { ZipfCorpus } from "./synthetic.ts";
 * const z = new ZipfCorpus({ vocabSize: 1000, tokens: 100, seed: 1 });
 * let total = 0;
 * z.forEachSentence((ids, n) => { total += n; });
 * console.log(total); // 100
 * ```
 */
export class ZipfCorpus {
  readonly options: Required<SyntheticOptions>;
  readonly #cdf: Float64Array;

  /** @param opts vocabulary size, length, seed, exponent, sentence lengths */
  constructor(opts: SyntheticOptions) {
    const o: Required<SyntheticOptions> = { exponent: 1, sentenceLength: [5, 30], ...opts };
    if (!(Number.isInteger(o.vocabSize) && o.vocabSize >= 2)) {
      throw new UsageError(`--synthetic-vocab must be an integer >= 2, got ${o.vocabSize}`);
    }
    if (!(Number.isInteger(o.tokens) && o.tokens >= 0)) {
      throw new UsageError(`--synthetic-tokens must be a non-negative integer, got ${o.tokens}`);
    }
    if (!(o.exponent > 0)) throw new UsageError(`--zipf must be > 0, got ${o.exponent}`);
    const [lo, hi] = o.sentenceLength;
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 1 && hi >= lo)) {
      throw new UsageError(`sentence lengths must be integers 1 <= min <= max, got [${lo}, ${hi}]`);
    }
    this.options = o;
    const cdf = new Float64Array(o.vocabSize);
    let s = 0;
    for (let r = 0; r < o.vocabSize; r++) {
      s += 1 / Math.pow(r + 1, o.exponent);
      cdf[r] = s;
    }
    for (let r = 0; r < o.vocabSize; r++) cdf[r] /= s;
    cdf[o.vocabSize - 1] = 1;
    this.#cdf = cdf;
  }

  /** The buffer that {@link sentences} fills: the current sentence is `buffer[0..n)`. */
  readonly buffer: Int32Array = new Int32Array(0);

  /**
   * Yields the length n of each sentence in turn; the ids are in `this.buffer[0..n)` until the next
   * step. A fresh call restarts the same stream from the beginning.
   */
  *sentences(): Generator<number, void, unknown> {
    const { tokens, seed, sentenceLength: [lo, hi] } = this.options;
    const rng = new Sfc32(seed);
    const cdf = this.#cdf;
    const last = cdf.length - 1;
    if (this.buffer.length < hi) (this as { buffer: Int32Array }).buffer = new Int32Array(hi);
    const buf = this.buffer;
    let done = 0;
    while (done < tokens) {
      let n = lo + rng.nextInt(hi - lo + 1);
      if (n > tokens - done) n = tokens - done;
      for (let i = 0; i < n; i++) {
        const u = rng.nextFloat();
        let a = 0, b = last;
        while (a < b) {
          const m = (a + b) >>> 1;
          if (cdf[m] > u) b = m;
          else a = m + 1;
        }
        buf[i] = a;
      }
      done += n;
      yield n;
    }
  }

  /** Runs through the whole stream (or until `onSentence` returns false). */
  forEachSentence(onSentence: (ids: Int32Array, n: number) => boolean | void): void {
    for (const n of this.sentences()) if (onSentence(this.buffer, n) === false) return;
  }
}

/**
 * Writes the synthetic stream as a plain-text file (one sentence per line, words `w<rank>`), through
 * `path.tmp` and a rename. Returns the bytes written.
 *
 * @example
 * ```ts
 * import { writeSyntheticText } from "./synthetic.ts";
 * await writeSyntheticText("/tmp/zipf.txt", { vocabSize: 1000, tokens: 10000, seed: 1 });
 * ```
 */
export async function writeSyntheticText(path: string, opts: SyntheticOptions): Promise<number> {
  const z = new ZipfCorpus(opts);
  const tmp = `${path}.tmp`;
  // a stop signal (the corpus job's --synthetic-text) removes the unfinished file: it is handled at the
  // first await after the synchronous generation, the fsync, and left the .tmp behind
  const forget = removeAtExit(tmp);
  const file = await withPath(
    "cannot write",
    path,
    () => Deno.open(tmp, { write: true, create: true, truncate: true }),
  ).catch((e) => {
    forget();
    throw e;
  });
  const enc = new TextEncoder();
  let parts: string[] = [];
  let pending = 0, bytes = 0;
  const flush = () => {
    const c = enc.encode(parts.join(""));
    writeAllSync(file, c);
    bytes += c.length;
    parts = [];
    pending = 0;
  };
  try {
    z.forEachSentence((ids, n) => {
      let line = "";
      for (let i = 0; i < n; i++) line += (i ? " w" : "w") + ids[i];
      line += "\n";
      parts.push(line);
      pending += line.length;
      if (pending > 1 << 20) flush();
    });
    flush();
    await file.sync();
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    forget();
    throw describeOsError(e, "cannot write", path) ?? e;
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
  forget();
  return bytes;
}
