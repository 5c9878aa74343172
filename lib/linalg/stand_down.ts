/**
 * When the pool's workers stand down (pool.ts): the watch over how a held split call's parts were shared.
 *
 * A held worker polls for the next operation and claims its part within a microsecond, so over many held
 * calls the calling thread runs about its fair share of the parts (1/threads). When another process holds
 * the workers' cores (a second job, any CPU-bound program), a worker is descheduled most of the time: the
 * caller runs its parts as well, and the polling worker, when it runs, takes the core the caller needs, so
 * that two threads run slower than one (BENCHMARKS.md, "When the cores are busy: the workers stand down").
 * The watch sees it as the caller running past halfway from its fair share to every part, and the pool then
 * runs the next split calls' parts on the calling thread alone, the workers asleep. The parts are the same,
 * so the results are the same bits.
 *
 * @module
 */

/**
 * The watch's settings: held split calls per look (`window`; `probe` for the first look after a stand-down,
 * so that busy cores cost short looks), and the least and most calls a stand-down lasts (the span doubles
 * while the workers keep falling behind, and is back at the least after a look that finds them keeping up).
 *
 * @example
 * ```ts
 * import { STAND_DOWN } from "./stand_down.ts";
 * console.log(STAND_DOWN); // { window: 256, probe: 64, minCalls: 512, maxCalls: 32768 }
 * ```
 */
export const STAND_DOWN = { window: 256, probe: 64, minCalls: 512, maxCalls: 32_768 } as const;

/**
 * Counts the parts of held split calls that the calling thread ran, and says when the workers stand down.
 *
 * @example
 * ```ts
 * import { StandDownWatch, STAND_DOWN } from "./stand_down.ts";
 * const watch = new StandDownWatch(2);
 * let down = 0;
 * for (let i = 0; i < STAND_DOWN.window; i++) down = watch.seen(2, 2); // the caller ran both parts
 * console.log(down); // 512: stand down for the next 512 split calls
 * for (let i = 0; i < STAND_DOWN.probe; i++) down = watch.seen(1, 2); // then the worker keeps up
 * console.log(down); // 0
 * ```
 */
export class StandDownWatch {
  readonly #fairShare: number;
  #span: number = STAND_DOWN.minCalls;
  #calls = 0;
  #parts = 0;
  #mine = 0;

  /** @param threads the threads that share a split call's parts (the caller and the workers), ≥ 2 */
  constructor(threads: number) {
    if (!Number.isInteger(threads) || threads < 2) {
      throw new RangeError(`threads must be an integer ≥ 2, got ${threads}`);
    }
    this.#fairShare = 1 / threads;
  }

  /**
   * Counts one held split call; at the end of a look, returns the calls to stand down for (0: none).
   *
   * @param mine parts the calling thread ran
   * @param parts parts of the call
   * @returns 0, or the split calls the workers stand down for
   */
  seen(mine: number, parts: number): number {
    this.#mine += mine;
    this.#parts += parts;
    const look = this.#span > STAND_DOWN.minCalls ? STAND_DOWN.probe : STAND_DOWN.window;
    if (++this.#calls < look) return 0;
    const behind = this.#mine > this.#parts * (this.#fairShare + (1 - this.#fairShare) / 2);
    this.#calls = this.#parts = this.#mine = 0;
    if (!behind) {
      this.#span = STAND_DOWN.minCalls;
      return 0;
    }
    const span = this.#span;
    this.#span = Math.min(2 * span, STAND_DOWN.maxCalls);
    return span;
  }
}
