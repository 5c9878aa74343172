/**
 * Learning-rate schedules: constant, or linear decay from `lr` to a floor `lrMin` over a run.
 *
 * @module
 */

/**
 * The learning rate after `done` of `total` examples: `lr` for "constant"; for "linear",
 * lr − (lr − lrMin)·done/total, never below lrMin.
 *
 * @example
 * ```ts
 * import { learningRate } from "./schedule.ts";
 * learningRate({ schedule: "linear", lr: 0.1, lrMin: 0 }, 50, 100); // 0.05
 * ```
 */
export function learningRate(
  s: { schedule: "constant" | "linear"; lr: number; lrMin: number },
  done: number,
  total: number,
): number {
  if (s.schedule === "constant" || total <= 0) return s.lr;
  const f = Math.min(1, Math.max(0, done / total));
  return Math.max(s.lrMin, s.lr - (s.lr - s.lrMin) * f);
}
