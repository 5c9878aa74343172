/**
 * Removing old published versions (`--keep-versions N` of export and refresh): a scheduled job publishes a
 * new version into the same root every time, and each one is a full copy of the vectors in every format.
 *
 * The versions kept are the newest `keep` complete ones by their manifest's `date` (then name), and always
 * the one `latest` points to. They are chosen, and the others moved away, under the root's lock
 * (publish.ts `lockPublication`), which every publisher holds from moving its version into `versions/`
 * to pointing `latest` at it: two jobs publishing into one root never remove each other's new version. Only folders of `versions/` holding a readable manifest.json of a factorout
 * version are candidates: anything else there (temporaries, a user's folder) is never touched. A version
 * is first renamed to a temporary name of this process (lib/core/atomic.ts `tempNameFor`), then removed: a
 * kill in between leaves `versions/<v>.<pid>-<rand>.tmp`, which the next publishing job removes
 * (publish.ts `removeStaleTemps`), never a half-removed folder under a version's name. A reader that
 * resolved `latest` to a version just before it is removed loses it: keep at least 2 for readers that
 * are slower than the publishing schedule.
 *
 * @module
 */

import { join } from "node:path";
import { tempNameFor } from "../core/atomic.ts";
import { removeAtExit } from "../core/stop.ts";
import { latestVersionDir, lockPublication } from "./publish.ts";

/**
 * Removes the complete versions under `outRoot/versions` beyond the newest `keep` (by manifest date, then
 * name; the `latest` one is always kept, and counts among them); returns the names removed, oldest
 * first.
 *
 * @example
 * ```ts
 * import { pruneVersions } from "./prune.ts";
 * const root = await Deno.makeTempDir();
 * console.log(await pruneVersions(root, 2)); // [] (nothing published)
 * ```
 *
 * @param outRoot the publication root
 * @param keep how many versions to keep (≥ 1)
 * @returns the names of the versions removed
 */
export async function pruneVersions(outRoot: string, keep: number): Promise<string[]> {
  if (!Number.isInteger(keep) || keep < 1) {
    throw new RangeError(`pruneVersions: keep must be ≥ 1, got ${keep}`);
  }
  const dir = join(outRoot, "versions");
  // nothing published: nothing to lock (versions/ that is no folder: its listing below says so)
  if (
    !(await Deno.lstat(dir).then(
      () => true,
      (e) => e instanceof Deno.errors.NotFound ? false : Promise.reject(e),
    ))
  ) {
    return [];
  }
  // the choice and the moves away under the root's lock (publish.ts lockPublication): no publisher is
  // between moving its version into versions/ and pointing latest at it, so the newest version is never
  // one that latest is about to point at, and latest cannot move meanwhile. The removal itself follows
  // the lock's release: a version moved to a temporary name is no longer one
  const doomed: { name: string; tmp: string; forget: () => void }[] = [];
  const lock = await lockPublication(outRoot);
  try {
    const latest = await latestVersionDir(outRoot).catch(() => null);
    const latestName = latest === null ? undefined : latest.slice(latest.lastIndexOf("/") + 1);
    const versions: { name: string; date: string }[] = [];
    for await (const e of Deno.readDir(dir)) {
      if (!e.isDirectory || e.name.endsWith(".tmp")) continue;
      const date = await versionDate(join(dir, e.name));
      if (date !== undefined) versions.push({ name: e.name, date });
    }
    versions.sort((a, b) => a.date < b.date ? -1 : a.date > b.date ? 1 : a.name < b.name ? -1 : 1);
    const kept = new Set(versions.slice(-keep).map((v) => v.name));
    if (latestName !== undefined && !kept.has(latestName) && versions.some((v) => v.name === latestName)) {
      // latest is not among the newest (pointed back at an older version): it is kept, in place of the oldest
      kept.delete(versions.filter((v) => kept.has(v.name))[0].name);
      kept.add(latestName);
    }
    for (const v of versions) {
      if (kept.has(v.name)) continue;
      const path = join(dir, v.name), tmp = tempNameFor(path);
      const forget = removeAtExit(tmp);
      try {
        await Deno.rename(path, tmp);
      } catch (e) {
        forget();
        if (e instanceof Deno.errors.NotFound) continue; // removed meanwhile (by hand)
        throw e;
      }
      doomed.push({ name: v.name, tmp, forget });
    }
  } finally {
    await lock.release();
  }
  const removed: string[] = [];
  try {
    for (const d of doomed) {
      // a failure or a kill here leaves versions/<v>.<pid>-<rand>.tmp: the next publisher removes it
      await Deno.remove(d.tmp, { recursive: true });
      removed.push(d.name);
    }
  } finally {
    for (const d of doomed) d.forget();
  }
  return removed;
}

/** The `date` of a factorout version's manifest.json in `dir`, or undefined when it is not one. */
async function versionDate(dir: string): Promise<string | undefined> {
  try {
    const m = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
    return m?.format === "factorout-embeddings" && typeof m.date === "string" ? m.date : undefined;
  } catch {
    return undefined;
  }
}

/**
 * {@link pruneVersions} as the publishing jobs run it once a version is published: one `log` line naming
 * what was removed; a failure (a permission, a busy file system) is a warning line, not the job's error:
 * the new version is published, and the next run removes what this one could not.
 *
 * @example
 * ```ts
 * import { removeOldVersions } from "./prune.ts";
 * const root = await Deno.makeTempDir();
 * await removeOldVersions(root, 3, (line) => console.error(`export: ${line}`)); // nothing to remove
 * ```
 *
 * @param outRoot the publication root
 * @param keep how many versions to keep (`--keep-versions`)
 * @param log where the line goes
 * @returns the names of the versions removed
 */
export async function removeOldVersions(
  outRoot: string,
  keep: number,
  log: (line: string) => void,
): Promise<string[]> {
  try {
    const removed = await pruneVersions(outRoot, keep);
    if (removed.length) {
      log(
        `removed ${removed.length} old version(s) of ${outRoot} (--keep-versions ${keep}): ${
          removed.join(", ")
        }`,
      );
    }
    return removed;
  } catch (e) {
    log(`warning: old versions of ${outRoot} not removed (--keep-versions ${keep}): ${(e as Error).message}`);
    return [];
  }
}
