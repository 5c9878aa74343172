/**
 * Training windows over a sentence of word ids, and word2vec's frequent-word subsampling.
 *
 * - cbow: one row per centre position i with at least one context word: input = the ids at positions
 *   i−w … i+w except i (inside the sentence, K_in ≤ 2w, in position order), target = {centre: 1}.
 * - skipgram: one row per centre with at least one context word: input = {centre}, target = the context
 *   ids in position order with weight (window − |i − j| + 1) / window ("distance", the expected weight of
 *   word2vec's shrinking window, so nearest neighbours weigh 1 and the farthest 1/window) or 1
 *   ("uniform"). A word that occurs twice in the window appears twice (the engine sums repeats).
 * - `dynamicWindow`: word2vec's random shrinking, w = window − b with b uniform in [0, window), one draw
 *   per centre from the seeded RNG; off by default (the distance weights already give the same
 *   expectation deterministically). Sentences never straddle: windows stop at sentence boundaries.
 *
 * @module
 */

import type { ExampleColumns } from "./columns.ts";
import type { Sfc32 } from "../core/rng.ts";

/** Options of {@link WindowEmitter}. */
export type WindowOptions = {
  mode: "cbow" | "skipgram";
  /** context radius w ≥ 1 */
  window: number;
  /** word2vec's random window shrinking (default false) */
  dynamicWindow?: boolean;
  /** skipgram target weights: "distance" (default) or "uniform" */
  weights?: "distance" | "uniform";
};

/**
 * Emits the rows of one sentence into an {@link ExampleColumns}; no allocation per row.
 *
 * @example
 * ```ts
 * import { WindowEmitter } from "./windows.ts";
 * import { ExampleColumns } from "./columns.ts";
 * import { Sfc32 } from "../core/rng.ts";
 * const cols = new ExampleColumns();
 * const em = new WindowEmitter({ mode: "cbow", window: 1 }, new Sfc32(1));
 * em.emit(Int32Array.of(5, 6, 7), 3, cols); // rows: [6]→5, [5,7]→6, [6]→7
 * console.log(cols.rows); // 3
 * ```
 */
export class WindowEmitter {
  readonly #opts: Required<WindowOptions>;
  readonly #rng: Sfc32;
  readonly #weightByDist: Float32Array;

  /** @param opts the window options; @param rng consumed only with `dynamicWindow` */
  constructor(opts: WindowOptions, rng: Sfc32) {
    this.#opts = { dynamicWindow: false, weights: "distance", ...opts };
    this.#rng = rng;
    const w = opts.window;
    this.#weightByDist = new Float32Array(w + 1);
    for (let d = 1; d <= w; d++) {
      this.#weightByDist[d] = this.#opts.weights === "uniform" ? 1 : (w - d + 1) / w;
    }
  }

  /**
   * Emits the rows of `ids[0..n)`; returns how many rows were added. With `skip`, no row is emitted for a
   * centre i with skip[i] ≠ 0 (its word still serves as the others' context; the random window is drawn
   * all the same).
   */
  emit(ids: Int32Array, n: number, out: ExampleColumns, skip?: Uint8Array): number {
    const { window, dynamicWindow, mode } = this.#opts;
    const wt = this.#weightByDist;
    let rows = 0;
    for (let i = 0; i < n; i++) {
      const w = dynamicWindow ? window - this.#rng.nextInt(window) : window;
      const lo = i - w < 0 ? 0 : i - w;
      const hi = i + w >= n ? n - 1 : i + w;
      if (hi - lo < 1 || (skip && skip[i])) continue; // no context, or left out
      const k = hi - lo;
      if (mode === "cbow") {
        out.reserve(k, 1);
        for (let j = lo; j <= hi; j++) if (j !== i) out.pushInput(ids[j]);
        out.pushTarget(ids[i], 1);
      } else {
        out.reserve(1, k);
        out.pushInput(ids[i]);
        for (let j = lo; j <= hi; j++) if (j !== i) out.pushTarget(ids[j], wt[j < i ? i - j : j - i]);
      }
      out.endRow();
      rows++;
    }
    return rows;
  }
}

/** One example of {@link windowsReference}. */
export type ReferenceExample = { input: number[]; target: number[]; value: number[] };

/**
 * The plain reference of {@link WindowEmitter}: the same windows built with arrays, straight from the
 * definition; the tests check the fast emitter against it.
 *
 * @example
 * ```ts
 * import { windowsReference } from "./windows.ts";
 * const ex = windowsReference([1, 2, 3], { mode: "skipgram", window: 2 });
 * console.log(ex[0]); // { input: [1], target: [2, 3], value: [1, 0.5] }
 * ```
 */
export function windowsReference(ids: number[], opts: WindowOptions, rng?: Sfc32): ReferenceExample[] {
  const out: ReferenceExample[] = [];
  for (let i = 0; i < ids.length; i++) {
    const w = opts.dynamicWindow ? opts.window - rng!.nextInt(opts.window) : opts.window;
    const ctx: number[] = [], vals: number[] = [];
    for (let j = i - w; j <= i + w; j++) {
      if (j === i || j < 0 || j >= ids.length) continue;
      ctx.push(ids[j]);
      const d = Math.abs(i - j);
      vals.push(opts.weights === "uniform" ? 1 : Math.fround((opts.window - d + 1) / opts.window));
    }
    if (ctx.length === 0) continue;
    if (opts.mode === "cbow") out.push({ input: ctx, target: [ids[i]], value: [1] });
    else out.push({ input: [ids[i]], target: ctx, value: vals });
  }
  return out;
}

/**
 * word2vec's keep probabilities for subsampling with threshold t: p(w) = (√(f/t) + 1)·t/f with
 * f = count(w)/total, capped at 1; t ≤ 0 keeps everything.
 *
 * @example
 * ```ts
 * import { keepProbabilities } from "./windows.ts";
 * const p = keepProbabilities([1000, 10], 1010, 1e-3); // the frequent word is kept less often
 * ```
 */
export function keepProbabilities(counts: ArrayLike<number>, total: number, t: number): Float32Array {
  const p = new Float32Array(counts.length).fill(1);
  if (!(t > 0) || total <= 0) return p;
  for (let i = 0; i < counts.length; i++) {
    const f = counts[i] / total;
    if (f <= 0) continue;
    const q = (Math.sqrt(f / t) + 1) * t / f;
    p[i] = q < 1 ? q : 1;
  }
  return p;
}

/**
 * Subsamples `ids[0..n)` in place with keep probabilities `keep`, drawing from `rng` only for words
 * whose probability is below 1; returns the new length. With `pos`, pos[j] is set to the position in the
 * input of the j-th word kept.
 *
 * @example
 * ```ts
 * import { subsampleInPlace } from "./windows.ts";
 * import { Sfc32 } from "../core/rng.ts";
 * const ids = Int32Array.of(0, 1, 0, 1);
 * const n = subsampleInPlace(ids, 4, Float32Array.of(0, 1), new Sfc32(1)); // word 0 always dropped
 * console.log(Array.from(ids.subarray(0, n))); // [1, 1]
 * ```
 */
export function subsampleInPlace(
  ids: Int32Array,
  n: number,
  keep: Float32Array,
  rng: Sfc32,
  pos?: Int32Array,
): number {
  let m = 0;
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    const p = keep[id];
    if (p >= 1 || rng.nextFloat() < p) {
      if (pos) pos[m] = i;
      ids[m++] = id;
    }
  }
  return m;
}
