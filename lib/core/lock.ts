/**
 * A lock file for jobs that must not run twice at once on one folder (train, refresh and export all
 * take `<run>/run.lock`, {@link lockRunFolder}; the corpus job `<out>.lock` beside its `--out`,
 * {@link lockJob}): created with O_EXCL (`createNew`), holding `{ pid, host, time, command }` as JSON. A lock left by a crashed process (same
 * host, pid no longer alive) is taken over, with a message; a live holder, or one on another host,
 * makes {@link acquireLock} fail with {@link LockedError}.
 *
 * Taking over is serialised by an advisory `flock` on `<lock>.guard`, so two processes that find the
 * same stale lock cannot both remove it: the second sees the first one's fresh lock instead.
 *
 * @module
 */

import { EXIT, ExitError } from "./exit_codes.ts";
import { atExit, removeAtExit } from "./stop.ts";
import { tempNameFor } from "./atomic.ts";
import { describeOsError, pathExists, withPath } from "./os_errors.ts";

/**
 * What a lock file holds.
 *
 * @example
 * ```ts
 * import type { LockInfo } from "./lock.ts";
 * const l: LockInfo = { pid: 4242, host: "worker-1", time: "2026-11-27T22:00:00.000Z", command: "refresh" };
 * ```
 */
export type LockInfo = { pid: number; host: string; time: string; command: string };

/**
 * Raised when the lock is held by a live process (or one on another host).
 *
 * @example
 * ```ts
 * import { LockedError } from "./lock.ts";
 * const e = new LockedError("runs/latest/run.lock", { pid: 1, host: "h", time: "t", command: "refresh" });
 * console.log(e.holder?.pid);
 * ```
 */
export class LockedError extends Error {
  /** The lock file. */
  readonly path: string;
  /** Its holder, when the file could be read. */
  readonly holder?: LockInfo;
  /**
   * @param path the lock file
   * @param holder who holds it
   */
  constructor(path: string, holder?: LockInfo) {
    super(
      holder
        ? `${path} is held by pid ${holder.pid} on ${holder.host} since ${holder.time} (${holder.command}); ` +
          `retry when it is done (or give --wait SECONDS), or remove the file if that process is gone`
        : `${path} is held by another process (unreadable lock file); retry later or remove it`,
    );
    this.name = "LockedError";
    this.path = path;
    this.holder = holder;
  }
}

/**
 * A held lock: {@link HeldLock.release} removes the file if it is still ours.
 *
 * @example
 * ```ts
 * import { acquireLock } from "./lock.ts";
 * const lock = await acquireLock("/tmp/demo.lock", "demo");
 * await lock.release();
 * ```
 */
export type HeldLock = { path: string; info: LockInfo; tookOver?: LockInfo; release(): Promise<void> };

/**
 * Whether a process with this pid is alive on this host (Linux: /proc/<pid> exists and is not a zombie: a
 * process killed a moment ago stays in /proc until its parent reaps it, and must not keep its lock).
 *
 * @example
 * ```ts
 * import { pidAlive } from "./lock.ts";
 * pidAlive(Deno.pid); // true
 * ```
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === Deno.pid) return true;
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return false;
  }
  // "pid (comm) state …": comm may hold spaces and parentheses, the state follows the last ')'
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}

async function readLock(path: string): Promise<LockInfo | undefined> {
  try {
    const j = JSON.parse(await Deno.readTextFile(path));
    if (typeof j.pid === "number" && typeof j.host === "string") return j as LockInfo;
  } catch { /* missing, being written, or corrupt */ }
  return undefined;
}

/**
 * Creates the lock file holding `info`, or returns false when one exists. The file is written whole under a
 * temporary name and hard-linked into place (link fails if the name exists), so a job that reads the lock
 * never finds it empty; where the file system has no hard links, it is created in place.
 */
async function createLock(path: string, info: LockInfo): Promise<boolean> {
  const body = new TextEncoder().encode(JSON.stringify(info) + "\n");
  // the one temporary name of the project (atomic.ts): a train run removes one left by a killed job
  const tmp = tempNameFor(path), forget = removeAtExit(tmp);
  // a full disk, a read-only folder: the line names the lock file (the first file every job writes)
  const write = (p: string, mayExist: boolean) =>
    withPath("cannot write lock file", p, () => writeSynced(p, body, mayExist));
  try {
    await write(tmp, true);
    try {
      await Deno.link(tmp, path);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) return false;
      if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotSupported) {
        return await write(path, false);
      }
      throw describeOsError(e, "cannot create lock file", path) ?? e;
    }
    return true;
  } finally {
    await Deno.remove(tmp).catch(() => {});
    forget();
  }
}

/** Writes `body` to a new file at `path` and syncs it; false when `path` exists (and `mayExist` is false). */
async function writeSynced(path: string, body: Uint8Array, mayExist: boolean): Promise<boolean> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, {
      write: true,
      createNew: !mayExist,
      create: true,
      truncate: true,
      mode: 0o644,
    });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    throw e;
  }
  try {
    await f.write(body);
    await f.sync();
  } finally {
    f.close();
  }
  return true;
}

/**
 * Takes the lock at `path` or throws {@link LockedError}. `log` receives the takeover message and (unless
 * `quietWait`) one line when it starts waiting for a live holder; `waitSeconds` is how long it waits
 * (default 0), retrying every `pollMs` (default 500).
 *
 * @example
 * ```ts
 * import { acquireLock } from "./lock.ts";
 * const lock = await acquireLock("/tmp/demo-run.lock", "refresh", console.error);
 * try {
 *   // the work
 * } finally {
 *   await lock.release();
 * }
 * ```
 */
export async function acquireLock(
  path: string,
  command: string,
  log: (line: string) => void = (l) => console.error(l),
  opts: { waitSeconds?: number; pollMs?: number; quietWait?: boolean } = {},
): Promise<HeldLock> {
  const deadline = Date.now() + Math.max(0, opts.waitSeconds ?? 0) * 1000;
  let said = opts.quietWait === true;
  for (;;) {
    try {
      return await acquireOnce(path, command, log);
    } catch (e) {
      if (!(e instanceof LockedError) || Date.now() >= deadline) throw e;
      if (!said) {
        log(`lock: ${e.message.replace(/; retry when.*$/, "")}; waiting up to ${opts.waitSeconds} s`);
        said = true;
      }
      // until its holder lets go (or dies), wait by reading the lock file: a try writes and fsyncs one
      const poll = opts.pollMs ?? 500;
      do {
        await new Promise((r) => setTimeout(r, Math.min(poll, Math.max(1, deadline - Date.now()))));
        const holder = await readLock(path);
        // gone, or its holder dead on this host: try; unreadable but there (corrupt) is held, as a try finds
        if (
          holder === undefined
            ? !(await pathExists(path))
            : holder.host === Deno.hostname() && !pidAlive(holder.pid)
        ) {
          break;
        }
      } while (Date.now() < deadline);
    }
  }
}

async function acquireOnce(
  path: string,
  command: string,
  log: (line: string) => void,
): Promise<HeldLock> {
  const info: LockInfo = { pid: Deno.pid, host: Deno.hostname(), time: new Date().toISOString(), command };
  const held = (tookOver?: LockInfo): HeldLock => ({
    path,
    info,
    tookOver,
    async release() {
      const now = await readLock(path);
      if (now && now.pid === info.pid && now.host === info.host && now.time === info.time) {
        await Deno.remove(path).catch(() => {});
      }
    },
  });
  if (await createLock(path, info)) return held();
  // the lock exists: is its holder dead? decide and take over under the guard's flock
  const guard = await withPath(
    "cannot open lock guard",
    `${path}.guard`,
    () => Deno.open(`${path}.guard`, { read: true, write: true, create: true }),
  );
  try {
    await guard.lock(true);
    let holder = await readLock(path);
    // released meanwhile: take it, or read who took it first. A lock file is never seen half written, so
    // one that is there and stays unreadable is corrupt (treated as held); one gone again by the time it is
    // read (a holder whose hold is short, released between our try and our read) is tried again, up to
    // a bound: it counted toward the corrupt file's 8 tries, and a burst of short holds ended in "unreadable"
    for (let unreadable = 0, tries = 0; holder === undefined && unreadable < 8 && tries < 1000; tries++) {
      if (await createLock(path, info)) return held();
      holder = await readLock(path);
      if (holder === undefined && (await pathExists(path))) unreadable++;
    }
    if (holder === undefined) throw new LockedError(path, undefined);
    if (holder.host !== info.host || pidAlive(holder.pid)) throw new LockedError(path, holder);
    log(
      `lock: taking over ${path} from pid ${holder.pid} on ${holder.host} (since ${holder.time}), which is no longer running`,
    );
    await Deno.remove(path).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    if (!(await createLock(path, info))) throw new LockedError(path, await readLock(path));
    return held(holder);
  } finally {
    await guard.unlock().catch(() => {});
    guard.close();
  }
}

/**
 * Takes `<dir>/run.lock` (creating `dir`), the one lock of a run folder shared by train, refresh and
 * export, waiting up to `waitSeconds` for a live holder; a holder still there ends the command with
 * exit code 3 (`EXIT.locked`) naming it (pid, host, start time). The lock is also released if a stop
 * signal ends the process at once (lib/core/stop.ts). {@link lockJob} with the run folder's lock file.
 *
 * @example
 * ```ts
 * import { lockRunFolder } from "./lock.ts";
 * const lock = await lockRunFolder("/tmp/run-demo", "train");
 * await lock.release();
 * ```
 */
export async function lockRunFolder(
  dir: string,
  command: string,
  opts: { log?: (line: string) => void; waitSeconds?: number } = {},
): Promise<HeldLock> {
  await Deno.mkdir(dir, { recursive: true });
  return await lockJob(`${dir.replace(/\/+$/, "")}/run.lock`, command, opts);
}

/**
 * A job's lock file at `path` (its folder must exist): {@link acquireLock}, waiting up to `waitSeconds`
 * for a live holder, one still there ending the command with exit code 3 (`EXIT.locked`, `locked: <path>
 * is held by pid …`); released too if a stop signal ends the process at once (lib/core/stop.ts). The run
 * folder's `run.lock` ({@link lockRunFolder}) and the corpus job's `<out>.lock` beside its `--out` (the
 * folder it replaces whole, so that the lock cannot be inside it).
 *
 * @example
 * ```ts
 * import { lockJob } from "./lock.ts";
 * const lock = await lockJob("/tmp/corpus-demo.lock", "corpus");
 * await lock.release();
 * ```
 */
export async function lockJob(
  path: string,
  command: string,
  opts: {
    log?: (line: string) => void;
    waitSeconds?: number;
    pollMs?: number;
    quietWait?: boolean;
    /** the wait is the lock's own, no --wait flag of the command: the message says how long it waited */
    fixedWait?: boolean;
  } = {},
): Promise<HeldLock> {
  // registered before the lock exists and forgotten only once it is removed: a stop signal between the
  // lock file's creation and the return, or during the release, still removes it (a lock file holding this
  // process's pid and host is this job's: one job per process)
  let lock: HeldLock | undefined;
  const forget = atExit(() => {
    try {
      const now = JSON.parse(Deno.readTextFileSync(path));
      if (now.pid === Deno.pid && now.host === Deno.hostname() && (!lock || now.time === lock.info.time)) {
        Deno.removeSync(path);
      }
    } catch { /* gone already, or never written */ }
  });
  try {
    const { waitSeconds, pollMs, quietWait } = opts;
    lock = await acquireLock(path, command, opts.log, { waitSeconds, pollMs, quietWait });
  } catch (e) {
    forget();
    if (e instanceof LockedError) {
      const said = opts.fixedWait
        ? e.message.replace(/ \(or give --wait SECONDS\)/, ` (waited ${opts.waitSeconds ?? 0} s)`)
        : e.message;
      throw new ExitError(EXIT.locked, `locked: ${said}`);
    }
    throw e;
  }
  const release = lock.release;
  lock.release = async () => {
    try {
      await release();
    } finally {
      forget();
    }
  };
  return lock;
}
