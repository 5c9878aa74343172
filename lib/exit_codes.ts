/**
 * The exit codes of every command (`deno task train`, `corpus`, `export`, `eval`, `refresh`,
 * `bench:peers`), one table for schedulers (cron, systemd, Airflow) to act on. Every non-zero exit also
 * prints one line `<command>: <reason>` last on stderr. A command uses the codes that can happen in it
 * (its `--help` lists them); a code never changes meaning from one command to another.
 *
 * | code | meaning | what a scheduler should do |
 * |---|---|---|
 * | 0 | done | nothing |
 * | 1 | unexpected internal error (stack on stderr) | alert a human |
 * | 2 | usage: a bad flag or value | fix the job's command line |
 * | 3 | locked: another job (train, refresh, export) holds the run folder's lock | retry later, or give --wait SECONDS |
 * | 4 | no usable checkpoint: none, corrupt, or from another configuration/vocabulary | run `deno task train` first, restore one, or drop the flags that differ |
 * | 5 | bad data: missing, empty or corrupt input/vector file | fix the data; retrying will not help |
 * | 6 | diverged: NaN/Inf or a singular update; the last good checkpoint is intact, nothing was published | lower --lr and rerun |
 * | 7 | export failed after training (the new checkpoint is saved) | rerun `deno task export` on it |
 * | 9 | stopped by a signal (SIGTERM, SIGINT, SIGHUP): a checkpoint of the step in progress was written, or no partial file was left | rerun the command printed on the last line (`--resume` for train) |
 *
 * @module
 */

import { DataFormatError, DivergenceError, SingularUpdateError, UsageError } from "./errors.ts";

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
  stopped: 9,
});

/** The name of an exit code in {@link EXIT}. */
export type ExitName = keyof typeof EXIT;

/** One short phrase per code, for `--help` texts. */
const PHRASE: Record<ExitName, string> = {
  ok: "done",
  internal: "internal error",
  usage: "bad flag or value",
  locked: "locked (another job holds the run folder; retry later or give --wait)",
  noCheckpoint: "no usable checkpoint (none, corrupt, or another config/vocabulary)",
  badData: "bad data (missing, empty or corrupt file)",
  diverged: "diverged (lower --lr; last good checkpoint kept)",
  exportFailed: "export failed after the checkpoint was saved (rerun deno task export)",
  stopped: "stopped by a signal (checkpoint written or nothing partial left; rerun the printed command)",
};

/**
 * The `Exit codes` lines of a command's `--help`, one per code, the given codes in order (0, 1 and 2
 * are always listed), so that every command words the shared table the same way.
 *
 * @example
 * ```ts
 * import { exitCodesHelp } from "./exit_codes.ts";
 * console.log(exitCodesHelp("badData")); // "Exit codes (…):\n  0  done\n  1  internal error\n  2  bad flag or value\n  5  bad data (…)"
 * ```
 */
export function exitCodesHelp(...codes: ExitName[]): string {
  const names = [...new Set<ExitName>(["ok", "internal", "usage", ...codes])].sort((a, b) =>
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
 * throw new ExitError(EXIT.locked, "locked by pid 123 on host a since 2026-11-27T22:00:00Z");
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

/**
 * The exit code for an error: {@link ExitError}'s own, 2 for {@link UsageError}, 5 for
 * {@link DataFormatError} and a missing file (Deno.errors.NotFound), 6 for
 * {@link DivergenceError}/{@link SingularUpdateError}, else 1.
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
  if (e instanceof UsageError) return EXIT.usage;
  if (e instanceof DataFormatError || e instanceof Deno.errors.NotFound) return EXIT.badData;
  if (e instanceof DivergenceError || e instanceof SingularUpdateError) return EXIT.diverged;
  return EXIT.internal;
}

/**
 * Prints an error as the command's last stderr line, `<command>: <message>` (the stack first for an
 * internal error), and returns its exit code ({@link exitCodeFor}).
 *
 * @example
 * ```ts
 * import { reportError } from "./exit_codes.ts";
 * const code = reportError("corpus", new Error("boom")); // 1, after printing the stack and "corpus: boom"
 * ```
 */
export function reportError(name: string, e: unknown): number {
  const code = exitCodeFor(e);
  const msg = e instanceof Error ? e.message : String(e);
  if (code === EXIT.internal && e instanceof Error && e.stack) console.error(e.stack);
  console.error(`${name}: ${msg.replace(/\s*\n\s*/g, " ")}`);
  return code;
}

/**
 * Runs a command's main function: on an error prints `<command>: <message>` as one line, last on
 * stderr (the stack before it for an internal error), and exits with {@link exitCodeFor}.
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
