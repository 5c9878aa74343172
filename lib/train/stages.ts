/**
 * Where a training step's time goes: a clock that charges the time between marks to named stages, without
 * allocating (one performance.now() per mark).
 *
 * The stages: `read` (reading and decoding shards) and `shuffle` (shuffling rows into batches) run on the
 * reader's worker thread, overlapped with training; `wait` is the time the training thread waited for a
 * batch (all of the reader's time when it runs on the training thread); `split` the held-out split;
 * `bagForward` the embedding bag (and hidden layers) forward, `layerStep` the output layer's step,
 * `bagBackward` the backward pass and sparse row updates below the head; `bookkeeping` the schedule,
 * losses, progress, logging and epoch ends (validation, health check); `checkpoint` writing checkpoints
 * and keeping the state to roll back to.
 *
 * @module
 */

/**
 * The stage names, in the order of {@link StageClock.ms}.
 *
 * @example
 * ```ts
 * import { STAGES } from "./stages.ts";
 * console.log(STAGES.length); // 9
 * ```
 */
export const STAGES = [
  "read",
  "shuffle",
  "wait",
  "split",
  "bagForward",
  "layerStep",
  "bagBackward",
  "bookkeeping",
  "checkpoint",
] as const;

/**
 * A stage name.
 *
 * @example
 * ```ts
 * import type { StageName } from "./stages.ts";
 * const s: StageName = "layerStep";
 * ```
 */
export type StageName = (typeof STAGES)[number];

/**
 * The index of each stage in {@link StageClock.ms}.
 *
 * @example
 * ```ts
 * import { STAGE } from "./stages.ts";
 * console.log(STAGE.layerStep); // 5
 * ```
 */
export const STAGE = Object.freeze(
  Object.fromEntries(STAGES.map((s, i) => [s, i])) as { [K in StageName]: number },
);

/**
 * Milliseconds per stage, charged by marks: {@link StageClock.mark} adds the time since the previous mark
 * to a stage.
 *
 * @example
 * ```ts
 * import { STAGE, StageClock } from "./stages.ts";
 * const clock = new StageClock();
 * clock.mark(STAGE.wait);
 * console.log(clock.seconds().wait >= 0); // true
 * ```
 */
export class StageClock {
  /** Milliseconds per stage, indexed as {@link STAGES}. */
  readonly ms: Float64Array = new Float64Array(STAGES.length);
  #t = performance.now();

  /** Charges the time since the last mark (or the clock's start) to stage `i`. */
  mark(i: number): void {
    const t = performance.now();
    this.ms[i] += t - this.#t;
    this.#t = t;
  }

  /** Moves `ms` milliseconds of stage `from` to stage `to` (a part measured inside another). */
  move(from: number, to: number, ms: number): void {
    this.ms[from] -= ms;
    this.ms[to] += ms;
  }

  /** Seconds per stage (rounded to the millisecond). */
  seconds(): Record<StageName, number> {
    return Object.fromEntries(STAGES.map((s, i) => [s, Math.round(this.ms[i]) / 1000])) as Record<
      StageName,
      number
    >;
  }
}
