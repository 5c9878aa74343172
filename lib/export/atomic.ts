/**
 * Crash-safe file writing: every file goes to a temporary name beside its destination, is flushed to
 * disk (fsync) and then renamed over the destination, so a reader sees either the old file or the whole
 * new one, never a torn one. An operating-system error comes out as an IoError naming the destination
 * (lib/os_errors.ts).
 *
 * @module
 */

import { describeOsError, withPath, writeAll } from "../os_errors.ts";

/**
 * A unique temporary name beside `path` (same directory, so the final rename stays on one file system).
 *
 * @example
 * ```ts
 * import { tempNameFor } from "./atomic.ts";
 * const tmp = tempNameFor("out/manifest.json"); // "out/manifest.json.12345-ab12cd.tmp"
 * ```
 */
export function tempNameFor(path: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0");
  return `${path}.${Deno.pid}-${rand}.tmp`;
}

/**
 * Writes `data` (bytes, a string, or a function that writes chunks) to `path` atomically: temporary
 * file, fsync, rename. On any failure the temporary file is removed and the destination is untouched.
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
  data: Uint8Array | string | ((write: (chunk: Uint8Array | string) => Promise<void>) => Promise<void>),
): Promise<void> {
  const tmp = tempNameFor(path);
  const file = await withPath(
    "cannot write",
    path,
    () => Deno.open(tmp, { write: true, createNew: true, mode: 0o644 }),
  );
  let closed = false;
  try {
    const enc = new TextEncoder();
    const write = (chunk: Uint8Array | string) =>
      writeAll(file, typeof chunk === "string" ? enc.encode(chunk) : chunk);
    if (typeof data === "function") await data(write);
    else await write(data);
    await file.sync();
    file.close();
    closed = true;
    await Deno.rename(tmp, path);
  } catch (e) {
    if (!closed) file.close();
    await Deno.remove(tmp).catch(() => {});
    throw describeOsError(e, "cannot write", path) ?? e;
  }
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
