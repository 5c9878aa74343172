/**
 * Crash-safe file writing: every file goes to a temporary name beside its destination, is flushed to
 * disk (fsync) and then renamed over the destination, so a reader sees either the old file or the whole
 * new one, never a torn one. An operating-system error comes out as an IoError naming the destination
 * (lib/core/os_errors.ts).
 *
 * A folder is replaced the same way ({@link replaceDir}): filled under a temporary name, then swapped in,
 * the old one removed only once the new one is complete.
 *
 * @module
 */

import { describeOsError, withPath, writeAll } from "./os_errors.ts";
import { holdingStop, removeAtExit } from "./stop.ts";

/**
 * A unique temporary name beside `path` (same directory, so the final rename stays on one file system);
 * `aside` names the place an old version of `path` is moved to while a new one replaces it
 * (`<path>.<pid>-<random>.old.tmp`, which {@link removeStaleDirTemps} moves back after a kill).
 *
 * @example
 * ```ts
 * import { tempNameFor } from "./atomic.ts";
 * const tmp = tempNameFor("out/manifest.json"); // "out/manifest.json.12345-ab12cd.tmp"
 * const old = tempNameFor("out/checkpoints", { aside: true }); // "out/checkpoints.12345-0f3e9a1b.old.tmp"
 * ```
 */
export function tempNameFor(path: string, opts: { aside?: boolean } = {}): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0");
  return `${path}.${Deno.pid}-${rand}${opts.aside ? ".old" : ""}.tmp`;
}

/**
 * Reads a name made by {@link tempNameFor} (`<base>.<pid>-<random>.tmp`, or `.old.tmp` for a folder
 * {@link replaceDir} moved aside): the destination's name and the pid of the job that made it; undefined
 * for another name. What a killed job's leftover is told by.
 *
 * @example
 * ```ts
 * import { parseTempName } from "./atomic.ts";
 * console.log(parseTempName("corpus.4242-0a1b2c3d.tmp")); // { base: "corpus", pid: 4242, old: false }
 * ```
 */
export function parseTempName(name: string): { base: string; pid: number; old: boolean } | undefined {
  const m = /^(.+)\.(\d+)-[0-9a-f]{8}(\.old)?\.tmp$/.exec(name);
  return m ? { base: m[1], pid: Number(m[2]), old: m[3] !== undefined } : undefined;
}

/**
 * Writes `data` (bytes, a string, or a function that writes chunks) to `path` atomically: temporary
 * file (or `opts.reuse`, overwritten), fsync, rename. On any failure the temporary file is removed and the
 * destination is untouched. A function may call its `flush` once most bytes are written: their fsync starts
 * then, on the runtime's thread, while the function goes on (a checkpoint hashes its bytes meanwhile); the
 * final fsync, of what came after, waits for it.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * await writeFileAtomic("/tmp/hello.txt", "hello\n");
 * await writeFileAtomic("/tmp/two.txt", async (write) => { await write("a\n"); await write("b\n"); });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data:
    | Uint8Array
    | string
    | ((write: (chunk: Uint8Array | string) => Promise<void>, flush: () => void) => Promise<void>),
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const what = opts.what ?? "cannot write";
  // a file of the caller's to overwrite (its pages are in memory already), else a new temporary file
  const reused = opts.reuse === undefined
    ? undefined
    : await Deno.open(opts.reuse, { write: true }).catch(() => undefined);
  const tmp = reused ? opts.reuse! : tempNameFor(path);
  const forget = removeAtExit(tmp);
  const file = reused ?? await withPath(
    what,
    path,
    () => Deno.open(tmp, { write: true, createNew: true, mode: 0o644 }),
  ).catch((e) => {
    forget();
    throw e;
  });
  let closed = false;
  // an fsync the caller started early (flush): it runs on the runtime's thread while the caller goes on
  let early: Promise<void> | undefined;
  const flush = () => {
    early ??= file.sync();
    early.catch(() => {}); // its error is the write's: awaited below, before the final fsync
  };
  try {
    const enc = new TextEncoder();
    const digest = opts.digest;
    let size = 0;
    const write = async (chunk: Uint8Array | string) => {
      const bytes = typeof chunk === "string" ? enc.encode(chunk) : chunk;
      const written = writeAll(file, bytes);
      // hashed while the runtime writes it on its own thread; a hash that throws waits for the write first
      // (a write's rejection left unheard would end the process)
      try {
        digest?.update(bytes);
      } catch (e) {
        await written.catch(() => {});
        throw e;
      }
      size += bytes.length;
      await written;
    };
    if (typeof data === "function") await data(write, flush);
    else await write(data);
    await early;
    // a reused file longer than this one: its tail goes
    if (reused) await file.truncate(size);
    await file.sync();
    file.close();
    closed = true;
    await Deno.rename(tmp, path);
  } catch (e) {
    await early?.catch(() => {});
    if (!closed) file.close();
    await Deno.remove(tmp).catch(() => {}); // a full disk must not stay full of our partial file
    throw describeOsError(e, what, path) ?? e;
  } finally {
    forget();
  }
  // some file systems refuse fsync on a folder; the rename itself is still atomic
  if (opts.syncDir) await syncDir(dirOf(path), { bestEffort: true });
}

/**
 * Makes `path` a second name of the finished file `src` (a hard link, no copy), atomically: linked under a
 * temporary name beside `path`, then renamed over it, so a reader sees the old `path` or the whole file.
 * For an immutable file (a checkpoint) whose bytes `path` should hold. Returns false, leaving `path` as it
 * was, where the link cannot be made (a file system without hard links, `src` gone): the caller then writes
 * the file itself.
 *
 * @example
 * ```ts
 * import { linkFileAtomic, writeFileAtomic } from "./atomic.ts";
 * await writeFileAtomic("/tmp/a.bin", "data");
 * console.log(await linkFileAtomic("/tmp/a.bin", "/tmp/b.bin")); // true: b.bin is a.bin's bytes
 * ```
 *
 * @param src the file, not modified afterwards
 * @param path the second name
 * @param opts syncDir: fsync the folder after the rename
 * @returns whether `path` now names `src`'s file
 */
export async function linkFileAtomic(
  src: string,
  path: string,
  opts: Pick<AtomicWriteOptions, "syncDir"> = {},
): Promise<boolean> {
  const tmp = tempNameFor(path);
  const forget = removeAtExit(tmp);
  try {
    await Deno.link(src, tmp);
  } catch {
    forget();
    return false;
  }
  try {
    await Deno.rename(tmp, path);
  } catch {
    await Deno.remove(tmp).catch(() => {});
    return false;
  } finally {
    forget();
  }
  if (opts.syncDir) await syncDir(dirOf(path), { bestEffort: true });
  return true;
}

/**
 * Options of {@link writeFileAtomic}.
 *
 * @example
 * ```ts
 * import type { AtomicWriteOptions } from "./atomic.ts";
 * const o: AtomicWriteOptions = { what: "cannot write checkpoint", syncDir: true };
 * ```
 */
export type AtomicWriteOptions = {
  /** The start of an error's message, before the path (default "cannot write"). */
  what?: string;
  /** Also fsync the folder after the rename, so the new name itself survives a power cut. */
  syncDir?: boolean;
  /**
   * Given every byte written, in order (a node:crypto Hash): the file's hash without reading the file back
   * (a read allocates new memory for every chunk, on these VMs dearer than the hash itself).
   */
  digest?: { update(bytes: Uint8Array): unknown };
  /**
   * A file of the caller's beside `path` that nothing else names (a temporary name from {@link tempNameFor}:
   * an old version it has let go), overwritten in place, truncated to the new length and renamed to `path`,
   * instead of a new temporary file: its pages are in the page cache already, and writing into new
   * page-cache memory cost the 2-vCPU VMs most of a checkpoint's write (BENCHMARKS.md, "The epoch's
   * end on one core"). Gone or not openable: a new temporary file, as without it. On failure it
   * is removed, as the temporary file is.
   */
  reuse?: string;
};

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : i === 0 ? "/" : ".";
}

/**
 * Flushes a directory's entries (new names, renames) to disk. Linux allows fsync on a directory opened
 * read-only; where the platform refuses, the error is rethrown unless `bestEffort` is set.
 *
 * @example
 * ```ts
 * import { syncDir } from "./atomic.ts";
 * await syncDir("/tmp", { bestEffort: true });
 * ```
 */
export async function syncDir(dir: string, opts: { bestEffort?: boolean } = {}): Promise<void> {
  try {
    const f = await Deno.open(dir, { read: true });
    try {
      await f.sync();
    } finally {
      f.close();
    }
  } catch (e) {
    if (!opts.bestEffort) throw e;
  }
}

/**
 * Fills a new version of folder `dir` under a unique temporary name beside it (`fill` gets that path),
 * then swaps it in: the old folder is renamed aside, the new one renamed to `dir`, the old one removed.
 * Until `fill` succeeds the old folder is untouched; if `fill` fails or a stop signal ends the process
 * the temporary folder is removed. The two renames run with stop signals held (lib/core/stop.ts
 * `holdingStop`): a signal during them stops the job once the new folder is in place, after `committed`
 * (where the job says so in its stop note). {@link removeStaleDirTemps} repairs a kill -9 between them.
 *
 * @example
 * ```ts
 * import { replaceDir } from "./atomic.ts";
 * await replaceDir("/tmp/corpus-demo", async (tmp) => { await Deno.writeTextFile(`${tmp}/a.txt`, "a"); });
 * ```
 */
export async function replaceDir<T>(
  dir: string,
  fill: (tmp: string) => Promise<T>,
  opts: { committed?: () => void } = {},
): Promise<T> {
  dir = dir.replace(/\/+$/, "");
  const tmp = tempNameFor(dir);
  const forget = removeAtExit(tmp);
  let result: T;
  let old: { path: string; forget: () => void } | undefined;
  try {
    await Deno.mkdir(tmp, { recursive: true });
    result = await fill(tmp);
    old = await holdingStop(async () => {
      const aside = tempNameFor(dir, { aside: true });
      let moved = false;
      try {
        await Deno.rename(dir, aside);
        moved = true;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      try {
        await Deno.rename(tmp, dir);
      } catch (e) {
        if (moved) await Deno.rename(aside, dir);
        throw e;
      }
      forget();
      opts.committed?.();
      // a stop right after the swap removes the old folder on its way out
      return moved ? { path: aside, forget: removeAtExit(aside) } : undefined;
    });
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  } finally {
    forget();
  }
  if (old) {
    // a stop signal meanwhile removes it too (its exit cleanup), which a stub exit in a test outlives
    await Deno.remove(old.path, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    old.forget();
  }
  return result;
}

/**
 * Cleans what {@link replaceDir} and {@link writeFileAtomic} leave in `parent` when a process is killed
 * (`<name>.<pid>-<random>.tmp` files and folders of dead pids); an `<name>.<pid>-<random>.old.tmp` folder
 * is moved back to `<name>` when `<name>` is missing (a kill between the two renames), else removed.
 * Call it under the folder's lock. `opts.bases` limits it to the temporaries of those names (the corpus
 * job's `--out` in a folder it shares with other things). Returns the names removed or restored.
 *
 * @example
 * ```ts
 * import { removeStaleDirTemps } from "./atomic.ts";
 * import { pidAlive } from "./lock.ts";
 * const dir = await Deno.makeTempDir();
 * const cleaned = await removeStaleDirTemps(dir, pidAlive); // [] in a fresh folder
 * ```
 */
export async function removeStaleDirTemps(
  parent: string,
  alive: (pid: number) => boolean,
  opts: { bases?: string[] } = {},
): Promise<string[]> {
  const done: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(parent));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return done;
    throw e;
  }
  for (const e of entries) {
    const t = parseTempName(e.name);
    if (!t || alive(t.pid) || (opts.bases && !opts.bases.includes(t.base))) continue;
    const path = `${parent}/${e.name}`, base = `${parent}/${t.base}`;
    if (t.old && e.isDirectory && !(await Deno.stat(base).then(() => true, () => false))) {
      await Deno.rename(path, base);
      done.push(`${e.name} -> ${t.base}`);
    } else {
      await Deno.remove(path, { recursive: true }).catch(() => {});
      done.push(e.name);
    }
  }
  return done;
}
