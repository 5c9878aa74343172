/**
 * What killed jobs leave in a run folder, cleared by every job that takes the folder's lock (train, refresh,
 * export of the run's checkpoints): temporary checkpoints, unfinished versions, corpus temporaries, and
 * the old checkpoints that a `train --overwrite` moved aside (`checkpoints.<pid>-<rand>.old.tmp`) and did
 * not replace before it died, which are put back, so that a refresh or an export after a `kill -9` of
 * such a run finds the run's checkpoints where they belong.
 *
 * @module
 */

import { join } from "node:path";
import { removeStaleDirTemps } from "../core/atomic.ts";
import { pidAlive } from "../core/lock.ts";
import { removeStaleTemps } from "../export/publish.ts";
import { listCheckpoints, removeStaleCheckpointTemps } from "./checkpoint.ts";

/**
 * The names in a run folder whose temporaries (`<name>.<pid>-<rand>.tmp`, lib/core/atomic.ts) the jobs
 * working in it make: the corpus (replaceDir, and the corpus job's `--out <run>/corpus`), the checkpoints
 * moved aside by --overwrite, summary.json and run.lock (lib/core/lock.ts); embeddings/ and checkpoints/
 * clean their own. Only these are cleaned: a folder given as --out or --resume may hold other things of
 * the same pattern.
 */
const RUN_TEMP_BASES = ["corpus", "checkpoints", "summary.json", "run.lock"];

/** The old checkpoints an `--overwrite` run moved aside: `checkpoints.<pid>-<rand>.old.tmp`. */
const ASIDE = /^checkpoints\.(\d+)-[0-9a-f]{8}\.old\.tmp$/;

/**
 * The folders of `run` holding old checkpoints that an `--overwrite` run moved aside, whose process is
 * gone (a live one's are its own): what {@link cleanRunFolder} puts back. Empty when `run` is no folder.
 *
 * @example
 * ```ts
 * import { movedAsideCheckpoints } from "./run_folder.ts";
 * console.log(await movedAsideCheckpoints("/nonexistent")); // []
 * ```
 */
export async function movedAsideCheckpoints(run: string): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const e of Deno.readDir(run)) {
      const m = ASIDE.exec(e.name);
      if (m && e.isDirectory && !pidAlive(Number(m[1]))) found.push(join(run, e.name));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory)) throw e;
  }
  return found.sort();
}

/**
 * Under the run folder's lock: puts back the old checkpoints that an `--overwrite` run moved aside but did
 * not replace before it died ({@link movedAsideCheckpoints}; removed instead when the run had written its
 * own first checkpoint), then removes what killed jobs left in the folder (temporary checkpoints,
 * unfinished versions of `embeddings/`, corpus temporaries). One line each to `log`.
 *
 * @example
 * ```ts
 * import { cleanRunFolder } from "./run_folder.ts";
 * const run = await Deno.makeTempDir();
 * await cleanRunFolder(run, console.error); // nothing to do
 * ```
 *
 * @param out the run folder, whose lock the caller holds
 * @param log where the lines go
 */
export async function cleanRunFolder(out: string, log: (line: string) => void): Promise<void> {
  for (const dir of await movedAsideCheckpoints(out)) {
    await restoreAside(out, { dir, count: (await listCheckpoints(dir)).length }, log);
  }
  const ckDir = join(out, "checkpoints");
  const removed = [
    ...(await removeStaleCheckpointTemps(ckDir)).map((n) => join(ckDir, n)),
    ...(await removeStaleTemps(join(out, "embeddings"))).map((n) => join(out, "embeddings", n)),
    ...(await removeStaleDirTemps(out, pidAlive, { bases: RUN_TEMP_BASES })).map((n) => join(out, n)),
  ];
  if (removed.length) {
    log(`cleanup: removed ${removed.length} temporary file(s) left by killed jobs: ${removed.join(", ")}`);
  }
}

/**
 * Puts back checkpoints moved aside (by a `train --overwrite`, lib/train/run.ts) when the new run wrote none
 * into `<out>/checkpoints`; when it did, they were replaced, and are removed.
 *
 * @example
 * ```ts
 * import { restoreAside } from "./run_folder.ts";
 * // await restoreAside("runs/x", { dir: "runs/x/checkpoints.4242-0badf00d.old.tmp", count: 2 }, console.error);
 * ```
 *
 * @param out the run folder
 * @param aside the folder moved aside and how many checkpoints it holds
 * @param log where the line goes
 */
export async function restoreAside(
  out: string,
  aside: { dir: string; count: number },
  log: (line: string) => void,
): Promise<void> {
  const ckDir = join(out, "checkpoints");
  if ((await listCheckpoints(ckDir)).length) {
    await Deno.remove(aside.dir, { recursive: true });
    log(`cleanup: removed ${aside.dir}, the checkpoints a newer run in ${out} replaced`);
    return;
  }
  await Deno.remove(ckDir, { recursive: true }).catch(() => {});
  await Deno.rename(aside.dir, ckDir);
  log(`new run in ${out} wrote no checkpoint: the ${aside.count} old checkpoint(s) are back in ${ckDir}`);
}
