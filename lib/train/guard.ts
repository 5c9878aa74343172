/**
 * What makes a failed step survivable: one step attempted with its refusals and non-finite losses turned
 * into a {@link StepFailure}, the epoch-end health check of the factored layer's Q, the backoff floor, and
 * the one-line DivergenceError once backoffs run out.
 *
 * @module
 */

import { DivergenceError, SingularMatrixError, SingularUpdateError } from "../core/errors.ts";
import { shellWord } from "../core/cli.ts";
import type { OutputLayer, SparseBatch } from "../core/types.ts";
import type { Model } from "../model/model.ts";
import type { TrainConfig } from "./config.ts";
import type { RunState, StepFailure } from "./types.ts";

/**
 * Each backoff halves the step-size multiplier (applied on top of the schedule, to the output and the input
 * side alike); a failure that would take it below this floor stops the run with DivergenceError. Ten
 * halvings are allowed: the smallest step tried is the schedule's lr / 1024.
 *
 * @example
 * ```ts
 * import { BACKOFF_FLOOR } from "./guard.ts";
 * console.log(BACKOFF_FLOOR * 1024); // 1
 * ```
 */
export const BACKOFF_FLOOR = 1 / 1024;

/**
 * The relative drift max|Q − WᵀW| / max|Q| of the factored layer's maintained Q checked at each epoch's end:
 * up to `repair` it is accepted; up to `rollback` Q is re-derived exactly (OutputLayer.refresh, a `repair`
 * event); beyond, the epoch was trained on a loss off by more than itself: a failure like a non-finite loss
 * (backoff and rollback). Healthy runs stay below 2e-4 (1e-8 on Brown); vocabularies of 50–500 words
 * reached 0.02 to 7e5 (docs/trainer-api.md).
 *
 * @example
 * ```ts
 * import { MAX_Q_DRIFT } from "./guard.ts";
 * console.log(MAX_Q_DRIFT.repair, MAX_Q_DRIFT.rollback); // 0.01 1
 * ```
 */
export const MAX_Q_DRIFT = Object.freeze({ repair: 1e-2, rollback: 1 });

/**
 * The epoch-end health check ({@link MAX_Q_DRIFT}) runs when the output layer's D·d is at most this
 * (its one O(Dd²) float64 pass over V stays small next to an epoch).
 *
 * @example
 * ```ts
 * import { HEALTH_CHECK_MAX_DD } from "./guard.ts";
 * console.log(HEALTH_CHECK_MAX_DD); // 67108864
 * ```
 */
export const HEALTH_CHECK_MAX_DD = 1 << 26;

/**
 * One step; a refusal or a non-finite loss comes back as a {@link StepFailure} instead of a throw.
 *
 * @example
 * ```ts
 * import { attemptStep } from "./guard.ts";
 * import type { Model } from "../model/model.ts";
 * const step = (model: Model, X: Parameters<Model["step"]>[0]) => attemptStep(model, X, X, 0.05, 0.05);
 * ```
 */
export async function attemptStep(
  model: Model,
  X: SparseBatch,
  Y: SparseBatch,
  lr: number,
  lrIn: number,
): Promise<number | StepFailure> {
  let loss: number;
  try {
    loss = await model.step(X, Y, lr, lrIn);
  } catch (e) {
    // the guard refuses before the output layer (and, since the head steps first, the model) changes:
    // nothing to roll back. The layer's non-finite loss leaves it unchanged too, but the state itself
    // gives that loss at any step size: roll back. So for U found singular by the upkeep after a step.
    const what = (e as Error).message.replace(/\.\s*$/, "");
    if (e instanceof SingularUpdateError) return { rollback: false, what };
    if (e instanceof DivergenceError || e instanceof SingularMatrixError) return { rollback: true, what };
    throw e;
  }
  // NaN from the model: H was not finite (an earlier step broke E) or the loss was not (a head outside the
  // OutputLayer contract; the built-in ones throw DivergenceError, above)
  if (!Number.isFinite(loss)) {
    return { rollback: true, what: `the loss or a gradient is ${loss} (not finite)` };
  }
  return loss;
}

/**
 * The losses of the steps not read back yet (the GPU path reads them in groups: lib/model/gpu_model.ts
 * `flush`; the host path has none pending). A step refused on the device, or one whose loss was not finite,
 * surfaces here rather than at its own step: it and the steps enqueued after it were skipped, so it comes
 * back as a {@link StepFailure} to roll back, as at a step ({@link attemptStep}), instead of a throw.
 *
 * @example
 * ```ts
 * import { settleSteps } from "./guard.ts";
 * import type { Model } from "../model/model.ts";
 * const settle = (model: Model) => settleSteps(model); // [loss, m] per step, or a StepFailure
 * ```
 */
export async function settleSteps(model: Model): Promise<[number, number][] | StepFailure> {
  try {
    return await model.flush();
  } catch (e) {
    if (e instanceof DivergenceError) return { rollback: true, what: e.message.replace(/\.\s*$/, "") };
    throw e;
  }
}

/**
 * The epoch-end check of the factored layer's maintained Q = WᵀW ({@link MAX_Q_DRIFT}): a small drift is
 * repaired (an exact refresh, logged through `note` as a `repair` event of `step` and 1-based `epoch`), a
 * large one (or a U that cannot be inverted) is a failure to roll back: the losses and gradients of the
 * epoch were not those of the weights. O(Dd²) and a D×d temporary, so only for layers with
 * D·d ≤ {@link HEALTH_CHECK_MAX_DD}.
 *
 * @example
 * ```ts
 * import { checkHealth } from "./guard.ts";
 * import type { OutputLayer } from "../core/types.ts";
 * const check = (out: OutputLayer) => checkHealth(out, { step: 10, epoch: 1 }, () => {});
 * ```
 */
export async function checkHealth(
  out: OutputLayer,
  at: { step: number; epoch: number },
  note: (event: Record<string, unknown>, text: string) => void,
): Promise<StepFailure | undefined> {
  if (out.D * out.d > HEALTH_CHECK_MAX_DD) return undefined;
  let drift: number | undefined;
  try {
    drift = (await out.diagnostics({ full: true })).qDrift;
  } catch (e) {
    if (e instanceof SingularMatrixError) return { rollback: true, what: e.message };
    throw e;
  }
  if (drift === undefined || drift <= MAX_Q_DRIFT.repair) return undefined;
  const off = `at the epoch's end the factored layer's Q = WᵀW is off by ${fmt(drift)} (relative)`;
  if (drift <= MAX_Q_DRIFT.rollback && out.refresh) {
    out.refresh();
    note(
      { event: "repair", step: at.step, epoch: at.epoch, qDrift: drift },
      `${off}: re-derived exactly`,
    );
    return undefined;
  }
  return { rollback: true, what: `${off}: the epoch's losses were not those of its weights` };
}

/**
 * The DivergenceError of a run whose backoffs ran out at the step after `step` (or whose last good state
 * could not be restored): names the step, the epoch, the lr and the backoffs, and says how to continue
 * from the last good checkpoint.
 *
 * @example
 * ```ts
 * import { divergenceError } from "./guard.ts";
 * import { resolveConfig } from "./config.ts";
 * const run = {
 *   paths: [], rows: 1, epochs: 1, examples: 0, epoch: 0, position: null, epochLoss: 0, epochCount: 0,
 *   lrScale: 1, backoffs: 0,
 * };
 * const e = divergenceError({ config: resolveConfig({}), run, step: 4, lr: 0.05, what: "the loss is NaN" });
 * console.log(e.message.startsWith("training diverged at step 5")); // true
 * ```
 */
export function divergenceError(
  o: { config: TrainConfig; run: RunState; step: number; lr: number; what: string; lastCheckpoint?: string },
): DivergenceError {
  const { run, lr, what } = o, config = o.config, step = o.step + 1;
  const last = o.lastCheckpoint
    ? `The last good checkpoint ${o.lastCheckpoint} is intact: continue it with --resume ${
      shellWord(o.lastCheckpoint)
    } --lr ${fmt(config.lr / 4)}.`
    : "No checkpoint had been written yet.";
  const backed = run.backoffs > 0
    ? ` after ${run.backoffs} backoffs had halved the step size to ×1/${1 / run.lrScale} of the schedule's ` +
      `(the floor is ×1/${1 / BACKOFF_FLOOR})`
    : "";
  return new DivergenceError(
    step,
    `training diverged at step ${step} (epoch ${run.epoch + 1}, lr ${fmt(lr)})${backed}: ${what}. ` +
      `Lower --lr (now ${fmt(config.lr)}; try ${fmt(config.lr / 4)})` +
      (config.loss === "squared" ? "" : " or try --loss squared") + `. ${last}`,
  );
}

/**
 * The `backoff` event and its line: the failed step, its epoch (1-based), the new lr and multiplier, the
 * reason, and the step rolled back `to` (when `rollback`) or the batch retried.
 *
 * @example
 * ```ts
 * import { backoffNote } from "./guard.ts";
 * const n = backoffNote({ rollback: false, what: "refused", step: 3, epoch: 1, lr: 0.025, lrScale: 0.5, to: 2 });
 * console.log(n.text); // "backoff at step 3: update refused; step size ×0.5 (lr 0.025), batch retried"
 * ```
 */
export function backoffNote(
  o: StepFailure & { step: number; epoch: number; lr: number; lrScale: number; to: number },
): { event: Record<string, unknown>; text: string } {
  return {
    event: {
      event: "backoff",
      step: o.step,
      epoch: o.epoch,
      lr: o.lr,
      lrScale: o.lrScale,
      reason: o.what,
      ...(o.rollback ? { rolledBackTo: o.to } : {}),
    },
    text:
      `backoff at step ${o.step}: ${o.rollback ? "state off" : "update refused"}; step size ×${o.lrScale} ` +
      `(lr ${fmt(o.lr)})` + (o.rollback ? `, rolled back to step ${o.to}` : ", batch retried"),
  };
}

/**
 * x with three significant digits, as a plain number string.
 *
 * @example
 * ```ts
 * import { fmt } from "./guard.ts";
 * console.log(fmt(0.000123456)); // "0.000123"
 * ```
 */
export function fmt(x: number): string {
  return Number(x.toPrecision(3)).toString();
}
