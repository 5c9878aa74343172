/**
 * Operating-system errors in one home: recognising them ({@link osErrno}), turning them into one
 * {@link IoError} line `<what> <path>: <cause>; <what to do>` ({@link describeOsError}, {@link withPath}),
 * and the one chunked write loop of the project ({@link writeAll}), which names nothing itself but runs
 * inside a `withPath` at every site (shard writer, checkpoint, atomic publish, synthetic text).
 *
 * Test-only fault injection: with `FACTOROUT_FAULT_ENOSPC_AFTER_BYTES=N` in the environment,
 * {@link writeAll}/{@link writeAllSync} write the first N bytes of the thread and then fail as a full
 * disk does (`No space left on device (os error 28)`, errno ENOSPC): each thread counts its own (the
 * checkpoint writer's worker, lib/train/checkpoint_writer.ts, its checkpoints written behind the steps).
 * tests/faults_os_test.ts uses it where it cannot mount a small tmpfs (not root); it is never set in
 * production.
 *
 * @module
 */

import { IoError } from "./errors.ts";

/** errno → the cause in words and what to do about it. */
const KNOWN: Record<string, { cause: string; fix: string }> = {
  ENOSPC: { cause: "no space left on device", fix: "free space on its disk or choose another output folder" },
  EDQUOT: { cause: "disk quota exceeded", fix: "free space in the quota or choose another output folder" },
  EFBIG: { cause: "file too large for its file system", fix: "choose another output folder" },
  EROFS: {
    cause: "read-only file system",
    fix: "remount it read-write or choose another output folder",
  },
  EACCES: {
    cause: "permission denied",
    fix: "give this user access (chmod/chown) or choose another path",
  },
  EPERM: {
    cause: "operation not permitted",
    fix: "give this user access (chmod/chown) or choose another path",
  },
  ENOENT: { cause: "no such file or folder", fix: "check the path" },
  ENOTDIR: {
    cause: "a part of the path is a regular file, not a folder",
    fix: "choose a path under a folder",
  },
  EISDIR: { cause: "is a folder, not a file", fix: "give a file" },
  EEXIST: { cause: "a file or folder of that name already exists", fix: "remove it or choose another path" },
  ENOTEMPTY: { cause: "folder not empty", fix: "empty or remove it, or choose another path" },
  EMFILE: { cause: "too many open files", fix: "raise the open-file limit (ulimit -n)" },
  ENFILE: { cause: "too many open files in the system", fix: "close other programs or raise the limit" },
  EIO: { cause: "input/output error", fix: "check the disk (dmesg); the device may be failing" },
  ENAMETOOLONG: { cause: "file name too long", fix: "choose a shorter path" },
  ELOOP: { cause: "too many levels of symbolic links", fix: "fix the links in the path" },
  EBUSY: { cause: "device or resource busy", fix: "retry later" },
  EXDEV: { cause: "crosses file systems", fix: "keep the folder on one file system" },
  ETXTBSY: { cause: "file busy", fix: "retry later" },
};

/** Deno's error classes → errno, for errors that carry no `code`. */
const CLASS_ERRNO: [new (...a: never[]) => Error, string][] = [
  [Deno.errors.NotFound, "ENOENT"],
  [Deno.errors.PermissionDenied, "EACCES"],
  [Deno.errors.AlreadyExists, "EEXIST"],
  [Deno.errors.NotADirectory, "ENOTDIR"],
  [Deno.errors.IsADirectory, "EISDIR"],
  [Deno.errors.FilesystemLoop, "ELOOP"],
  [Deno.errors.Busy, "EBUSY"],
];

/** Deno's operation names (the word before the quoted path in its messages) that only read. */
const READ_OPS = new Set(["open", "readfile", "stat", "lstat", "readdir", "realpath", "readlink"]);

/** Deno's operation name → the start of our line. */
const OP_WHAT: Record<string, string> = {
  open: "cannot open",
  readfile: "cannot read",
  writefile: "cannot write",
  mkdir: "cannot create folder",
  remove: "cannot remove",
  rename: "cannot rename",
  symlink: "cannot create link",
  link: "cannot create link",
  copy: "cannot copy",
  stat: "cannot inspect",
  lstat: "cannot inspect",
  readdir: "cannot list folder",
  realpath: "cannot resolve",
  chmod: "cannot change mode of",
  chown: "cannot change owner of",
  truncate: "cannot truncate",
};

/**
 * The errno name of an operating-system error ("ENOSPC", "EACCES", …), or undefined when `e` is not one
 * (a bug, a parse error, a typed error of factorout). {@link IoError}s give their own.
 *
 * @example
 * ```ts
 * import { osErrno } from "./os_errors.ts";
 * try { await Deno.readFile("/nonexistent"); } catch (e) { console.log(osErrno(e)); } // "ENOENT"
 * ```
 */
export function osErrno(e: unknown): string | undefined {
  if (e instanceof IoError) return e.errno || "EIO";
  if (!(e instanceof Error)) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code) && /\(os error \d+\)/.test(e.message)) {
    return code;
  }
  for (const [cls, errno] of CLASS_ERRNO) if (e instanceof cls) return errno;
  return undefined;
}

/**
 * The errno of a write to standard output that failed because the stream is gone or full (EPIPE: a reader
 * that closed the pipe; ENOSPC: `> /dev/full`, a full disk; EBADF: a closed descriptor; EIO), where a job's
 * progress and result lines are best-effort (lib/train/job_io.ts bestEffortOut, lib/core/cli.ts
 * printResultLine); undefined for any other error, which the job reports as such.
 *
 * @example
 * ```ts
 * import { stdoutLost } from "./os_errors.ts";
 * console.log(stdoutLost(new Deno.errors.BrokenPipe("closed"))); // "EPIPE"
 * console.log(stdoutLost(new TypeError("a bug"))); // undefined
 * ```
 */
export function stdoutLost(e: unknown): string | undefined {
  const errno = osErrno(e) ?? (e instanceof Deno.errors.BrokenPipe ? "EPIPE" : undefined) ??
    (e instanceof Deno.errors.BadResource ? "EBADF" : undefined);
  return errno && ["EPIPE", "ENOSPC", "EBADF", "EIO"].includes(errno) ? errno : undefined;
}

/**
 * Turns an operating-system error into an {@link IoError}: the cause and the fix from its errno, the
 * operation and path from the arguments or, failing those, from Deno's message (`…: mkdir 'runs/x'`).
 * An IoError is returned as is; undefined when `e` is not an operating-system error.
 *
 * @example
 * ```ts
 * import { describeOsError } from "./os_errors.ts";
 * try { await Deno.mkdir("/proc/x/y"); } catch (e) { console.log(describeOsError(e)?.message); }
 * ```
 */
export function describeOsError(
  e: unknown,
  what?: string,
  path?: string,
  opts: { reading?: boolean } = {},
): IoError | undefined {
  if (e instanceof IoError) return e;
  const errno = osErrno(e);
  if (errno === undefined) return undefined;
  const message = (e as Error).message;
  const known = KNOWN[errno];
  const cause = known?.cause ??
    (message.replace(/\s*\(os error \d+\).*$/s, "").toLowerCase() || errno);
  const fix = known?.fix ?? "check the path and its disk";
  // Deno's messages end with `: <op> '<path>'` or `: <op> '<from>' -> '<to>'`
  const m = /: (\w+) '(.*?)'(?: -> '(.*)')?$/s.exec(message);
  const op = m?.[1];
  const where = path ?? (m ? (m[3] !== undefined ? `${m[2]} to ${m[3]}` : m[2]) : "(path not reported)");
  const reading = opts.reading ?? (what === undefined && op !== undefined && READ_OPS.has(op));
  return new IoError(
    what ?? (op ? OP_WHAT[op] ?? `cannot ${op}` : "cannot access"),
    where,
    errno,
    cause,
    fix,
    { reading, cause: e },
  );
}

/**
 * Runs `fn` (sync or async); an operating-system error it throws comes out as an {@link IoError} naming
 * `what` and `path`, the one line every command prints for it (exit code 8, or 5 for a missing input
 * read with `reading: true`). Other errors pass through unchanged.
 *
 * @example
 * ```ts
 * import { withPath } from "./os_errors.ts";
 * await withPath("cannot write report", "/tmp/report.json", () => Deno.writeTextFile("/tmp/report.json", "{}"));
 * ```
 */
export async function withPath<T>(
  what: string,
  path: string,
  fn: () => Promise<T> | T,
  opts: { reading?: boolean } = {},
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw describeOsError(e, what, path, opts) ?? e;
  }
}

let faultBudget: number | undefined | null = null;

/** Bytes left before the injected ENOSPC (test-only; see the module doc), or undefined when off. */
function injectedBudget(): number | undefined {
  if (faultBudget === null) {
    let raw: string | undefined;
    try {
      raw = Deno.env.get("FACTOROUT_FAULT_ENOSPC_AFTER_BYTES");
    } catch {
      raw = undefined; // no --allow-env: no injection
    }
    const n = raw === undefined || raw === "" ? NaN : Number(raw);
    faultBudget = Number.isFinite(n) && n >= 0 ? n : undefined;
  }
  return faultBudget;
}

/** How many of `want` bytes may be written before the injected ENOSPC; throws it when none. */
function allowance(want: number): number {
  const budget = injectedBudget();
  if (budget === undefined) return want;
  if (budget <= 0 && want > 0) {
    throw Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
  }
  const n = Math.min(want, budget);
  faultBudget = budget - n;
  return n;
}

/**
 * Writes all of `bytes` to an open file, in chunks of at most 16 MiB (Deno's `write` may write fewer
 * bytes than asked). Call it inside {@link withPath}: a failed write names no path by itself.
 *
 * @example
 * ```ts
 * import { withPath, writeAll } from "./os_errors.ts";
 * const f = await Deno.open("/tmp/x.bin", { write: true, create: true, truncate: true });
 * try { await withPath("cannot write", "/tmp/x.bin", () => writeAll(f, new Uint8Array(10))); } finally { f.close(); }
 * ```
 */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    const n = allowance(Math.min(bytes.length - off, 1 << 24));
    off += await file.write(bytes.subarray(off, off + n));
  }
}

/**
 * The synchronous {@link writeAll}.
 *
 * @example
 * ```ts
 * import { writeAllSync } from "./os_errors.ts";
 * const f = Deno.openSync("/tmp/y.bin", { write: true, create: true, truncate: true });
 * try { writeAllSync(f, new Uint8Array(10)); } finally { f.close(); }
 * ```
 */
export function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) {
    const n = allowance(Math.min(bytes.length - off, 1 << 24));
    off += file.writeSync(bytes.subarray(off, off + n));
  }
}

/**
 * Whether `path` exists: false when it or a folder on its way is missing (ENOENT, ENOTDIR); any other
 * operating-system error (permission denied on a folder of the path, I/O error) is thrown as an
 * {@link IoError} "cannot inspect <path>", so that an unreadable input is not reported as a missing one.
 *
 * @example
 * ```ts
 * import { pathExists } from "./os_errors.ts";
 * console.log(await pathExists("/nonexistent")); // false
 * ```
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    const errno = osErrno(e);
    if (errno === "ENOENT" || errno === "ENOTDIR") return false;
    throw describeOsError(e, "cannot inspect", path, { reading: true }) ?? e;
  }
}
