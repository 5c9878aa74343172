/**
 * What the train job refuses or sets aside before it trains in a run folder: the checkpoint to resume
 * (`pickCheckpoint`, unusable ones exit 4), a resume that would mix two runs or timelines
 * (`refuseOtherRun`, `refuseFewerEpochs`, `refuseRefreshed`), and a new run into a used folder
 * (`guardUsedFolder`: refused without --overwrite, its old checkpoints moved aside with it).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { DataFormatError, UsageError } from "../core/errors.ts";
import { DENO_TASK, EXIT, ExitError } from "../core/exit_codes.ts";
import { osErrno, pathExists as exists } from "../core/os_errors.ts";
import { tempNameFor } from "../core/atomic.ts";
import { latestVersionDir } from "../export/publish.ts";
import { atExit, holdingStop } from "../core/stop.ts";
import {
  type Checkpoint,
  checkpointName,
  listCheckpoints,
  readCheckpoint,
  readNewestGoodCheckpoint,
} from "./checkpoint.ts";
import { type TrainConfig } from "./config.ts";
import { resolveReal, shellWord } from "../core/cli.ts";
import { refreshMark } from "./refresh_inputs.ts";
import { servesRun } from "./run_data.ts";

/**
 * What a run folder holds that a job starting or continuing another run there would replace: its
 * checkpoints, its published embeddings, and a corpus prepared with settings other than `c`'s (one that
 * would be reused as it is does not count).
 */
async function heldState(c: TrainConfig): Promise<{ held: string[]; checkpoints: string[] }> {
  const out = c.out;
  const checkpoints = await listCheckpoints(join(out, "checkpoints"));
  const stamp = await Deno.readTextFile(join(out, "corpus", "train-settings.json")).catch(() => undefined);
  // the stamp also holds the inputs' content fingerprint (resolveData): compare the settings alone
  let same = false;
  try {
    const { inputs: _inputs, ...settings } = JSON.parse(stamp ?? "null") ?? {};
    same = servesRun(settings, c);
  } catch { /* an unreadable stamp: another corpus */ }
  const otherCorpus = (await exists(join(out, "corpus", "manifest.json"))) && !same;
  const held = [
    ...(checkpoints.length ? [`${checkpoints.length} checkpoint(s)`] : []),
    ...(otherCorpus ? ["a corpus prepared with other settings"] : []),
    ...((await latestVersionDir(join(out, "embeddings"))) ? ["published embeddings"] : []),
  ];
  return { held, checkpoints };
}

/** Whether two files hold the same bytes. */
async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * Refuses (UsageError, exit 2) to continue the run of checkpoint `ckptPath` (at `step`) in `c.out` when
 * that folder holds another run: its checkpoints would be pruned and mixed with this run's, its corpus
 * prepared again and its published `latest` replaced. A checkpoint inside `c.out` (its checkpoints/), or
 * a copy of one of its checkpoints (the bytes of its checkpoint of that step), is of the run `c.out` holds; `outGiven`
 * says whether `c.out` is the job's --out or the folder saved in the checkpoint (a loose file, whose run
 * folder may have been moved and another run made there since).
 *
 * A checkpoint given as a file (not `picked` from a folder) must also be the newest of the run there:
 * continuing an older one would write a second timeline beside the first (its checkpoints colliding
 * with, or sorting below, the later ones that a `--resume <out>` takes).
 */
export async function refuseOtherRun(
  c: TrainConfig,
  ckptPath: string,
  step: number,
  opts: { outGiven: boolean; picked: boolean },
): Promise<void> {
  const out = c.out, own = join(out, "checkpoints"), from = await resolveReal(dirname(ckptPath));
  const inside = from === (await resolveReal(own)) || from === (await resolveReal(out));
  const { held, checkpoints } = await heldState(c);
  if (!inside) {
    const twin = join(own, checkpointName(step));
    if (!(checkpoints.includes(twin) && (await sameBytes(twin, ckptPath))) && held.length) {
      throw new UsageError(
        opts.outGiven
          ? `--out ${out} holds another run (${held.join(", ")}) than the one of --resume ${ckptPath} ` +
            `(or this run went on past step ${step} and pruned it): continuing there would prune and mix its ` +
            `checkpoints; give an --out without a run, or --resume ${shellWord(out)} to continue that one`
          : `--resume ${ckptPath}: the run folder saved in it, ${out}, now holds another run (${
            held.join(", ")
          }; or this run went on past step ${step} and pruned it): continuing there would prune and mix its ` +
            `checkpoints and replace what it published; give ` +
            `--out OTHER (a folder without a run) to continue this checkpoint's run there, or --resume ${
              shellWord(out)
            } to continue that one`,
      );
    }
  }
  if (opts.picked) return;
  const newest = checkpoints.at(-1);
  const newestStep = newest ? Number(/ckpt-(\d+)\.fock$/.exec(newest)![1]) : -1;
  if (newest && newestStep > step) {
    throw new UsageError(
      `--resume ${ckptPath} is at step ${step}, but ${own} holds a later checkpoint, ${newest}: continuing ` +
        `from it there would mix two timelines (a later --resume ${shellWord(out)} takes the newest); ` +
        `resume into another folder (--out OTHER), or remove the checkpoints after step ${step} first`,
    );
  }
}

/**
 * Refuses (UsageError, exit 2) a resume whose `--epochs` is below the epochs its checkpoint's run has
 * completed, or below the epoch it is in: the run's later vectors would be published as an earlier
 * epoch's.
 */
export function refuseFewerEpochs(epochs: number, run: unknown, ckptPath: string): void {
  // run.epoch: the epochs whose end has passed; run.epochCount: the examples of the epoch in progress
  // whose losses are counted (0 at an epoch's end: none begun)
  const r = run as { epoch?: unknown; epochCount?: unknown } | null | undefined;
  const done = Number(r?.epoch), inEpoch = Number(r?.epochCount) > 0 ? done + 1 : 0;
  if (!(done >= 0)) return;
  const need = Math.max(done, inEpoch);
  if (epochs >= need) return;
  throw new UsageError(
    `--epochs ${epochs}: the run of --resume ${ckptPath} has completed ${done} epoch(s)` +
      (inEpoch ? ` and is in epoch ${inEpoch}` : "") +
      `; give --epochs ${need} or more (or leave --epochs out to keep the run's)`,
  );
}

/**
 * Refuses (exit 4) to resume a checkpoint a refresh wrote (its mark, lib/train/refresh_inputs.ts): its
 * last training read the refresh's staging copy of the new data, which is gone, with a vocabulary grown
 * past the run's corpus, so the run goes on by refreshing again, not by train.
 */
export function refuseRefreshed(ckpt: Checkpoint, ckptPath: string, out: string): void {
  const mark = refreshMark(ckpt);
  if (!mark) return;
  throw new ExitError(
    EXIT.noCheckpoint,
    `--resume ${ckptPath}: the run was refreshed (refresh --data ${
      shellWord(mark.data)
    }), and train cannot ` +
      `resume a refreshed run (its last training read the refresh's new data, with a grown vocabulary); ` +
      `run ${DENO_TASK} refresh --from ${shellWord(out)} --data NEW_DATA again to train it on more data`,
  );
}

/**
 * The checkpoint to resume: the file given, or the newest good one of a folder (newer corrupt or
 * truncated ones are skipped, and said so in one line). Unusable: exit code 4.
 */
export async function pickCheckpoint(
  resume: string,
  isDir: boolean,
  log: (line: string) => void,
): Promise<{ ckptPath: string; ckpt: Checkpoint }> {
  let ckptPath: string, ckpt: Checkpoint;
  if (isDir) {
    let r;
    try {
      r = await readNewestGoodCheckpoint(resume, (l) => log(`resume: ${l}`));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new ExitError(
          EXIT.noCheckpoint,
          `--resume ${resume}: no checkpoint (ckpt-*.fock) in it or in its checkpoints/`,
        );
      }
      throw await unusable(resume, Promise.reject(e)).catch((x) => x);
    }
    ({ path: ckptPath, checkpoint: ckpt } = r);
  } else {
    ckptPath = resume;
    ckpt = await unusable(resume, readCheckpoint(resume));
    if (ckpt.unchecked) log(`resume: ${ckptPath} has no checksum (written by an older version)`);
  }
  return { ckptPath, ckpt };
}

/**
 * Refuses a new run into a folder that holds one (checkpoints, published embeddings, or a corpus that it
 * would replace: prepared with other settings) without `--overwrite` (UsageError, exit 2); with it, moves
 * the old checkpoints aside (deleted after the new run's first checkpoint). A corpus that would be reused
 * as it is does not count, so a first run stopped or failed before its first checkpoint can be rerun as it
 * was.
 */
export async function guardUsedFolder(
  config: TrainConfig,
  overwrite: boolean,
  log: (line: string) => void,
): Promise<Aside | undefined> {
  const out = config.out;
  const ckDir = join(out, "checkpoints");
  const { held, checkpoints: old } = await heldState(config);
  if (!held.length) return undefined;
  if (!overwrite) {
    throw new UsageError(
      `--out ${out} already holds a run (${held.join(", ")}): continue it with --resume ${shellWord(out)}, ` +
        `choose another --out, or give --overwrite to replace it`,
    );
  }
  if (!old.length) return undefined;
  const dir = tempNameFor(ckDir, { aside: true });
  // a stop signal before this run's first checkpoint (while its corpus is prepared, say) ends the process
  // at once: its exit cleanup puts them back, registered in the same held section as the rename
  const forget = await holdingStop(async () => {
    await Deno.rename(ckDir, dir);
    return atExit(() => putBackSync(ckDir, dir));
  });
  log(
    `new run in ${out} (--overwrite): ${old.length} old checkpoint(s) moved to ${dir}; ` +
      `they are deleted once this run writes its first checkpoint, and put back if it fails before`,
  );
  return { dir, count: old.length, forget };
}

/** Checkpoints an `--overwrite` run moved aside: where, how many, and the exit cleanup that puts them back. */
export type Aside = { dir: string; count: number; forget: () => void };

/** {@link restoreAside} as a stop signal's exit cleanup (synchronous, silent: the process is ending). */
function putBackSync(ckDir: string, dir: string): void {
  try {
    const written = [...Deno.readDirSync(ckDir)].some((e) => /^ckpt-\d+\.fock$/.test(e.name));
    if (written) {
      Deno.removeSync(dir, { recursive: true });
      return;
    }
    Deno.removeSync(ckDir, { recursive: true });
  } catch { /* no checkpoints folder: nothing of this run's */ }
  try {
    Deno.renameSync(dir, ckDir);
  } catch { /* put back already */ }
}

/** Awaits a checkpoint read; a corrupt or missing file becomes exit code 4 (no usable checkpoint). */
export async function unusable<T>(path: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (
      e instanceof DataFormatError || e instanceof Deno.errors.NotFound || e instanceof UsageError ||
      osErrno(e) === "ENOENT" // readCheckpoint's IoError for a file gone meanwhile
    ) {
      throw new ExitError(
        EXIT.noCheckpoint,
        `--resume ${path}: unusable checkpoint: ${(e as Error).message}`,
      );
    }
    throw e;
  }
}
