/**
 * Keep-best: the best epoch's checkpoint (`best.fock`, never pruned) and finding that state again at the
 * end of a run; the checkpoint a finished run publishes, and the state a job that goes on from it (the
 * refresh) starts from; a checkpoint file as a state to go back to (the best epoch's, a rollback's).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { linkFileAtomic } from "../core/atomic.ts";
import { type Checkpoint, readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import { DEFAULT_CONFIG } from "./config.ts";
import type { GoodState, RunState } from "./types.ts";

/**
 * The name of the best epoch's checkpoint in the checkpoint folder (never pruned by --keep-checkpoints).
 *
 * @example
 * ```ts
 * import { BEST_CHECKPOINT } from "./trainer.ts";
 * console.log(BEST_CHECKPOINT); // "best.fock"
 * ```
 */
export const BEST_CHECKPOINT = "best.fock";

/**
 * Whether a finished run ends on its best epoch rather than its last: under keepBest, when the epoch with
 * the lowest validation loss, `best`, is not the final step's. The one decision of what a run publishes:
 * the trainer restores that epoch at the end of train(), and `export --checkpoint <run>` publishes it
 * ({@link publishedCheckpoint}).
 *
 * @example
 * ```ts
 * import { keepsBest } from "./best.ts";
 * console.log(keepsBest(true, { epoch: 1, step: 198, validationLoss: 33.9 }, 788)); // true
 * console.log(keepsBest(true, { epoch: 4, step: 788, validationLoss: 33.9 }, 788)); // false
 * ```
 */
export function keepsBest(
  keepBest: boolean,
  best: RunState["best"],
  step: number,
): best is NonNullable<RunState["best"]> {
  return keepBest && best !== undefined && best.step !== step;
}

/**
 * The checkpoint whose vectors a run's job publishes, from `ckpt`, the newest checkpoint (`file`) of its
 * folder: a finished run that ends on its best epoch ({@link keepsBest}) publishes {@link BEST_CHECKPOINT}
 * beside it (`epoch` says which), found as the trainer finds it ({@link findBest}: when it is gone or holds
 * another step, the newest, with a log line); any other run its newest.
 *
 * @example
 * ```ts
 * import { publishedCheckpoint } from "./best.ts";
 * const unfinished = { meta: { step: 5, run: { epoch: 0, epochs: 2 } }, arrays: {} };
 * const r = await publishedCheckpoint("runs/x/checkpoints/ckpt-000000000005.fock", unfinished, console.log);
 * console.log(r.file); // runs/x/checkpoints/ckpt-000000000005.fock
 * ```
 */
export async function publishedCheckpoint(
  file: string,
  ckpt: Checkpoint,
  log: (line: string) => void,
): Promise<{ file: string; ckpt: Checkpoint; epoch?: number }> {
  const meta = ckpt.meta as {
    step?: number;
    config?: { keepBest?: boolean };
    run?: Pick<RunState, "epoch" | "epochs" | "best"> | null;
  };
  const run = meta.run, step = meta.step ?? 0;
  // a checkpoint from before --keep-best has no run.best; one without the field, the default
  const keepBest = meta.config?.keepBest ?? DEFAULT_CONFIG.keepBest;
  // only a finished run ends on its best epoch: a stopped one goes on from its newest (train --resume)
  if (!run || run.epoch < run.epochs || !keepsBest(keepBest, run.best, step)) return { file, ckpt };
  const from = await findBest(run.best, undefined, join(dirname(file), BEST_CHECKPOINT), log);
  if (from?.file === undefined) return { file, ckpt };
  return { file: from.file, ckpt: await readCheckpoint(from.file), epoch: run.best.epoch };
}

/**
 * The state a job that goes on from a finished run starts from (the refresh): the parameters of the
 * checkpoint the run publishes (`published`, {@link publishedCheckpoint}: best.fock, or its newest) with the
 * run's bookkeeping at its end (`newest`, its newest checkpoint: its config and its run state, every epoch
 * done), as train() leaves a trainer that keeps its best epoch; numbered at least `after`, the highest
 * checkpoint step of the run's folder, so that the job's checkpoints sort after every one there (pruning
 * keeps them, `--resume` and a later refresh take them). The run state loses the states of the run it
 * points at, its best epoch and its rollback state (RunState.best and .good): the job's parameters are
 * neither once it changes them, and a checkpoint of it still naming them would be published (best.fock) or
 * rolled back to in its place. Only the numbering moves: the output layer's own counters are in its
 * state, and the schedule counts examples, not steps.
 *
 * @example
 * ```ts
 * import { continuation } from "./best.ts";
 * const best = { meta: { step: 5, run: { epoch: 1, epochs: 3 } }, arrays: {} };
 * const run = { epoch: 3, epochs: 3, good: 15, best: { epoch: 1, step: 5, validationLoss: 2 } };
 * const last = { meta: { step: 15, run }, arrays: {} };
 * const start = continuation(best, last, 15);
 * console.log(start.meta.step, start.meta.run); // 15 { epoch: 3, epochs: 3 }
 * ```
 */
export function continuation(published: Checkpoint, newest: Checkpoint, after: number): Checkpoint {
  const run = structuredClone(newest.meta.run ?? null) as Partial<RunState> | null;
  if (run) {
    delete run.best;
    delete run.good;
  }
  return {
    meta: {
      ...published.meta,
      config: newest.meta.config ?? published.meta.config,
      run,
      step: Math.max(Number(published.meta.step ?? 0), after),
    },
    arrays: published.arrays,
  };
}

/**
 * Writes `ckpt` (the state at the end of the best epoch so far; made only when needed) as
 * {@link BEST_CHECKPOINT} in `dir`; returns it as a state to go back to, with a copy of the run state
 * `run`. `same`, when given, is a checkpoint file that already holds this very state (the epoch's
 * checkpoint, just written): best.fock then becomes a second name of that file (a hard link; pruning the
 * epoch's checkpoint leaves it), not a second serialisation, unless the file system refuses the link.
 *
 * @example
 * ```ts
 * import { writeBest } from "./best.ts";
 * import type { Checkpoint } from "./checkpoint.ts";
 * import type { RunState } from "./types.ts";
 * const keep = (dir: string, ckpt: () => Promise<Checkpoint>, run: RunState, same?: string) =>
 *   writeBest(dir, ckpt, run, same);
 * ```
 */
export async function writeBest(
  dir: string,
  ckpt: () => Promise<Checkpoint>,
  run: RunState,
  same?: string,
): Promise<GoodState> {
  await Deno.mkdir(dir, { recursive: true });
  const file = join(dir, BEST_CHECKPOINT);
  if (!same || !(await linkFileAtomic(same, file, { syncDir: true }))) {
    await writeCheckpoint(file, await ckpt());
  }
  return { file, run: structuredClone(run) };
}

/**
 * The best epoch's state: this run's in-memory or file copy `saved`, else the file `file` when it holds
 * that step; undefined, with a log line, when it is gone or is not that step's.
 *
 * @example
 * ```ts
 * import { findBest } from "./best.ts";
 * const none = await findBest({ epoch: 1, step: 5, validationLoss: 1 }, undefined, undefined, () => {});
 * console.log(none); // undefined
 * ```
 */
export async function findBest(
  best: NonNullable<RunState["best"]>,
  saved: GoodState | undefined,
  file: string | undefined,
  log: (line: string) => void,
): Promise<GoodState | undefined> {
  const from = saved ?? (file ? await stateInFile(file, best.step) : undefined);
  const step = from?.file === undefined ? from?.ckpt.meta.step : best.step;
  if (!from || step !== best.step) {
    log(
      `keep-best: epoch ${best.epoch}'s state (step ${best.step}) is not in ${file ?? "memory"}; ` +
        `keeping the last epoch's parameters`,
    );
    return undefined;
  }
  return from;
}

/**
 * The checkpoint file `file` as a state to go back to, with the run state it carries, when it is readable
 * and holds step `step`; else undefined.
 *
 * @example
 * ```ts
 * import { stateInFile } from "./best.ts";
 * console.log(await stateInFile("no/such/ckpt-000000000010.fock", 10)); // undefined
 * ```
 */
export async function stateInFile(file: string, step: number): Promise<GoodState | undefined> {
  const ckpt = await readCheckpoint(file).catch(() => undefined);
  // deno-lint-ignore no-explicit-any
  const run = (ckpt?.meta as Record<string, any> | undefined)?.run;
  if (ckpt?.meta.step !== step || !run) return undefined;
  return { file, run: { lrScale: 1, backoffs: 0, ...run } };
}
