/**
 * Steady-state time per step of a layer, robust to a busy neighbour: an untimed warm-up (JIT
 * compilation, first stabilisation), then a timed window in which every step's duration is recorded;
 * the result is the median over blocks of `block` consecutive steps of the block's mean step time
 * (with at least 3 complete blocks; otherwise the plain mean). A block of 100 steps of the factored
 * layer contains exactly one periodic stabilisation (every 50 or 100 steps), so its amortised cost is
 * in every block; a burst of interference from another tenant of the machine lands in one or two
 * blocks and moves the median little. The plain mean is returned too.
 *
 * @module
 */

/** What {@link timeSteps} measured. */
export type StepTiming = {
  /** Median over blocks of the mean step time (ms), or the mean when there are < 3 complete blocks. */
  robustMs: number;
  /** Plain mean over the timed window (ms). */
  meanMs: number;
  /** Steps timed. */
  steps: number;
  /** Complete blocks in the window. */
  blocks: number;
  /** Steps taken before the window (warm-up). */
  warmupSteps: number;
};

/** Options of {@link timeSteps}. */
export type StepTimingOptions = {
  /** Untimed warm-up: at least this long (ms)… */
  warmupMs: number;
  /** …and at least this many steps (default 1). */
  warmupSteps?: number;
  /** Timed window: at least this long (ms)… */
  windowMs: number;
  /** …and at least this many steps (default 2). */
  minSteps?: number;
  /** Steps per block (default 1). */
  block?: number;
};

/**
 * Runs `step(i)` (i = 0, 1, … over warm-up and window) and times it as described in the module doc.
 *
 * @example
 * ```ts
 * import { timeSteps } from "./timing.ts";
 * const t = await timeSteps(async () => {}, { warmupMs: 1, windowMs: 5, block: 10 });
 * console.log(t.robustMs, t.meanMs);
 * ```
 *
 * @param step one step; its index is passed (to cycle through batches)
 * @param opts warm-up, window and block size
 * @returns the timing
 */
export async function timeSteps(
  step: (i: number) => Promise<unknown>,
  opts: StepTimingOptions,
): Promise<StepTiming> {
  const block = Math.max(1, Math.floor(opts.block ?? 1));
  let i = 0;
  const warmEnd = performance.now() + opts.warmupMs;
  while (i < (opts.warmupSteps ?? 1) || performance.now() < warmEnd) await step(i++);
  const warmupSteps = i;
  const durations: number[] = [];
  const start = performance.now();
  let now = start;
  while (durations.length < (opts.minSteps ?? 2) || now - start < opts.windowMs) {
    const t = now;
    await step(i++);
    now = performance.now();
    durations.push(now - t);
  }
  const steps = durations.length, meanMs = (now - start) / steps;
  const blocks = Math.floor(steps / block);
  if (blocks < 3) return { robustMs: meanMs, meanMs, steps, blocks, warmupSteps };
  const means: number[] = [];
  for (let b = 0; b < blocks; b++) {
    let s = 0;
    for (let k = b * block; k < (b + 1) * block; k++) s += durations[k];
    means.push(s / block);
  }
  means.sort((a, b) => a - b);
  const h = blocks >> 1;
  const robustMs = blocks % 2 ? means[h] : 0.5 * (means[h - 1] + means[h]);
  return { robustMs, meanMs, steps, blocks, warmupSteps };
}
