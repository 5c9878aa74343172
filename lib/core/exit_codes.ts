/**
 * The exit codes of every command (`deno task train`, `corpus`, `export`, `eval`, `refresh`,
 * `bench:peers`), one table for schedulers (cron, systemd, Airflow) to act on. Every non-zero exit also
 * prints one line `<command>: <reason>` last on stderr. A command uses the codes that can happen in it
 * (its `--help` lists them); a code never changes meaning from one command to another.
 *
 * | code | meaning | what a scheduler should do |
 * |---|---|---|
 * | 0 | done | nothing |
 * | 1 | unexpected internal error (the stack with `--debug` or FACTOROUT_DEBUG=1) | alert a human |
 * | 2 | usage: a bad flag or value, or a `--backend` that cannot be loaded here (OpenBLAS, a WebGPU adapter: the line says what to install) | fix the job's command line or install the backend |
 * | 3 | locked: another job (train, refresh, export) holds the run folder's lock (corpus: its --out's) | retry later, or give --wait SECONDS |
 * | 4 | no usable checkpoint: none, corrupt, or from another configuration/vocabulary | run `deno task train` first, restore one, or drop the flags that differ |
 * | 5 | bad data: missing, empty or corrupt input/vector file | fix the data; retrying will not help |
 * | 6 | diverged: NaN/Inf or a singular update; the last good checkpoint is intact, nothing was published | lower --lr and rerun |
 * | 7 | export failed after training (the new checkpoint is saved) | rerun `deno task export` on it |
 * | 8 | operating-system I/O error: disk full, quota, read-only file system, permission denied, a missing folder or a path under a regular file; the line names the path | fix the disk or the path, then rerun |
 * | 9 | stopped by a signal (SIGTERM, SIGINT, SIGHUP): a checkpoint of the step in progress was written, or no partial file was left | rerun the command printed on the last line (`--resume` for train) |
 *
 * A missing *input* file (one the command reads) is bad data (5); every other operating-system error is
 * 8, in every command. No stack trace is printed unless `--debug` is on the command line or
 * FACTOROUT_DEBUG=1 is set.
 *
 * @module
 */

import {
  BackendUnavailableError,
  DataFormatError,
  DivergenceError,
  SingularUpdateError,
  UsageError,
} from "./errors.ts";
import { describeOsError } from "./os_errors.ts";

/**
 * The exit codes (see the module doc).
 *
 * @example
 * ```ts
 * import { EXIT } from "./exit_codes.ts";
 * if (Deno.args.length > 99) Deno.exit(EXIT.usage);
 * ```
 */
export const EXIT = Object.freeze({
  ok: 0,
  internal: 1,
  usage: 2,
  locked: 3,
  noCheckpoint: 4,
  badData: 5,
  diverged: 6,
  exportFailed: 7,
  io: 8,
  stopped: 9,
});

/**
 * How every message, `--help` usage line and printed command to continue writes a job's command line:
 * `npx deno task …`, as the README runs them (Deno comes from the npm package `deno`; no `deno` is put on
 * `PATH`). The one home of that prefix: `${DENO_TASK} train --resume runs/x`.
 *
 * @example
 * ```ts
 * import { DENO_TASK } from "./exit_codes.ts";
 * console.log(`resume with: ${DENO_TASK} train --resume runs/x`); // resume with: npx deno task train --resume runs/x
 * ```
 */
export const DENO_TASK = "npx deno task";

/** The name of an exit code in {@link EXIT}. */
export type ExitName = keyof typeof EXIT;

/** One short phrase per code, for `--help` texts. */
const PHRASE: Record<ExitName, string> = {
  ok: "done",
  internal: "internal error",
  usage: "bad flag or value",
  locked: "locked (another job holds the run folder, or the corpus --out; retry later or give --wait)",
  noCheckpoint: "no usable checkpoint (none, corrupt, or another config/vocabulary)",
  badData: "bad data (missing, empty or corrupt file)",
  diverged: "diverged (lower --lr; last good checkpoint kept)",
  exportFailed: `export failed after the checkpoint was saved (rerun ${DENO_TASK} export)`,
  io: "operating-system I/O error (disk full, permission, read-only, missing folder)",
  stopped: "stopped by a signal (checkpoint written or nothing partial left; rerun the printed command)",
};

/**
 * The `Exit codes` lines of a command's `--help`, one per code, the given codes in order (0, 1 and 2
 * are always listed, and 8, which every command that touches files can end with), so that every command
 * words the shared table the same way.
 *
 * @example
 * ```ts
 * import { exitCodesHelp } from "./exit_codes.ts";
 * console.log(exitCodesHelp("badData")); // "Exit codes (…):\n  0  done\n  1  internal error\n  2  bad flag or value\n  5  bad data (…)"
 * ```
 */
export function exitCodesHelp(...codes: ExitName[]): string {
  const names = [...new Set<ExitName>(["ok", "internal", "usage", ...codes, "io"])].sort((a, b) =>
    EXIT[a] - EXIT[b]
  );
  return ["Exit codes (one line `<command>: <reason>` last on stderr when not 0):"]
    .concat(names.map((n) => `  ${EXIT[n]}  ${PHRASE[n]}`)).join("\n");
}

/**
 * Raised to end a command with a given exit code and a one-line reason.
 *
 * @example
 * ```ts
 * import { EXIT, ExitError } from "./exit_codes.ts";
 * const e = new ExitError(EXIT.locked, "locked by pid 123 on host a since 2026-11-27T22:00:00Z");
 * console.log(e.message); // the one line printed last on stderr
 * ```
 */
export class ExitError extends Error {
  /** The process exit code. */
  readonly code: number;
  /**
   * @param code one of {@link EXIT}
   * @param message the one-line reason
   */
  constructor(code: number, message: string) {
    super(message);
    this.name = "ExitError";
    this.code = code;
  }
}

/** errnos of a read that mean "the input is not there" (ENOTDIR: a part of its path is a file). */
const MISSING = new Set(["ENOENT", "ENOTDIR"]);

/**
 * The exit code for an error: {@link ExitError}'s own, 2 for {@link UsageError} and
 * {@link BackendUnavailableError} (a setup to fix, not a bug), 5 for
 * {@link DataFormatError} and a missing input (Deno.errors.NotFound, or an IoError (lib/core/errors.ts) of a read
 * with errno ENOENT or ENOTDIR), 8 for every other operating-system error (IoError (lib/core/errors.ts), ENOSPC, EROFS,
 * EACCES, …), 6 for {@link DivergenceError}/{@link SingularUpdateError}, else 1.
 *
 * @example
 * ```ts
 * import { exitCodeFor } from "./exit_codes.ts";
 * import { UsageError } from "./errors.ts";
 * exitCodeFor(new UsageError("--k must be positive")); // 2
 * ```
 */
export function exitCodeFor(e: unknown): number {
  if (e instanceof ExitError) return e.code;
  if (e instanceof UsageError || e instanceof BackendUnavailableError) return EXIT.usage;
  if (e instanceof DataFormatError || e instanceof Deno.errors.NotFound) return EXIT.badData;
  if (e instanceof DivergenceError || e instanceof SingularUpdateError) return EXIT.diverged;
  const os = describeOsError(e);
  if (os) return os.reading && MISSING.has(os.errno) ? EXIT.badData : EXIT.io;
  return EXIT.internal;
}

/**
 * The error for a publication that failed after the checkpoint was saved: exit 8 (io) when the cause
 * is an operating-system error (a full disk is the same fault in train, refresh and export), 3 (locked)
 * when the publication root's lock stayed held by another job, else 7 (exportFailed). `text` words the
 * line around the cause's own one-line message.
 *
 * @example
 * ```ts
 * import { exportFailure } from "./exit_codes.ts";
 * const e = exportFailure(new Error("boom"), (why) => `export failed (${why}); rerun deno task export`);
 * console.log(e.code); // 7
 * ```
 */
export function exportFailure(e: unknown, text: (reason: string) => string): ExitError {
  if (e instanceof ExitError && e.code === EXIT.locked) return new ExitError(EXIT.locked, text(e.message));
  const os = describeOsError(e);
  return new ExitError(
    os ? EXIT.io : EXIT.exportFailed,
    text(os ? os.message : e instanceof Error ? e.message : String(e)),
  );
}

/**
 * FACTOROUT_DEBUG, read once here: `1`, `true`, `yes`, `on` (any case) ask for stack traces; unset,
 * empty, `0`, `false`, `no`, `off` do not. Every command checks it as it parses its flags (lib/core/cli.ts
 * parseFlags), so that another value is a usage error (exit 2) before any work, as the other FACTOROUT_*
 * variables are.
 *
 * @example
 * ```ts
 * import { debugFromEnv } from "./exit_codes.ts";
 * console.log(typeof debugFromEnv()); // "boolean"
 * ```
 *
 * @returns whether the variable asks for stack traces (false without --allow-env)
 * @throws {UsageError} another value
 */
export function debugFromEnv(): boolean {
  let env: string | undefined;
  try {
    env = Deno.env.get("FACTOROUT_DEBUG");
  } catch {
    return false; // no --allow-env
  }
  const v = (env ?? "").trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["", "0", "false", "no", "off"].includes(v)) return false;
  throw new UsageError(
    `FACTOROUT_DEBUG must be 1, true, yes or on (or 0, false, no, off, unset), got '${env}'`,
  );
}

/**
 * Whether stack traces are wanted: `--debug` among `args` (default: the process's arguments) or
 * FACTOROUT_DEBUG set to 1/true/yes/on ({@link debugFromEnv}; another value: no stack, its usage error is
 * the command's line).
 *
 * @example
 * ```ts
 * import { debugWanted } from "./exit_codes.ts";
 * debugWanted(["--debug"]); // true
 * ```
 */
export function debugWanted(args: readonly string[] = Deno.args): boolean {
  if (args.includes("--debug")) return true;
  try {
    return debugFromEnv();
  } catch {
    return false;
  }
}

/**
 * Prints an error as the command's last stderr line, `<command>: <message>`, and returns its exit code
 * ({@link exitCodeFor}). An operating-system error is worded `<what> <path>: <cause>; <what to do>`
 * (lib/core/os_errors.ts). The stack (and its cause's) is printed before that line only when
 * {@link debugWanted}; an internal error without it says to rerun with --debug.
 *
 * @example
 * ```ts
 * import { reportError } from "./exit_codes.ts";
 * const code = reportError("corpus", new Error("boom")); // 1, after "corpus: internal error: boom (rerun with --debug …)"
 * ```
 */
export function reportError(name: string, e: unknown, opts: { debug?: boolean } = {}): number {
  const code = exitCodeFor(e);
  const debug = opts.debug ?? debugWanted();
  if (debug && e instanceof Error && e.stack) {
    console.error(e.stack);
    if (e.cause instanceof Error && e.cause.stack) console.error(`caused by: ${e.cause.stack}`);
  }
  const os = e instanceof ExitError ? undefined : describeOsError(e);
  let msg = os ? os.message : e instanceof Error ? e.message : String(e);
  if (code === EXIT.internal) {
    msg = `internal error: ${msg}${debug ? "" : " (rerun with --debug for the stack trace)"}`;
  }
  console.error(`${name}: ${msg.replace(/\s*\n\s*/g, " ")}`);
  return code;
}

/**
 * Runs a command's main function: on an error prints `<command>: <message>` as one line, last on
 * stderr (the stack before it only with `--debug`/FACTOROUT_DEBUG=1), and exits with
 * {@link exitCodeFor}.
 *
 * @example
 * ```ts
 * import { runCommand } from "./exit_codes.ts";
 * // await runCommand("eval", async () => { ... });
 * ```
 */
export async function runCommand(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    Deno.exit(reportError(name, e));
  }
}
