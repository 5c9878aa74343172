/**
 * Exit codes of the export, eval and refresh commands, for schedulers (cron, systemd, Airflow) to act
 * on. Every non-zero exit also prints one line `<command>: <reason>` on stderr.
 *
 * | code | meaning | what a scheduler should do |
 * |---|---|---|
 * | 0 | done | nothing |
 * | 1 | unexpected internal error | alert a human |
 * | 2 | usage: a bad flag or value | fix the job's command line |
 * | 3 | locked: another refresh holds the lock | retry later |
 * | 4 | no usable checkpoint (none, or corrupt) | run `deno task train` first, or restore one |
 * | 5 | bad data: missing, empty or corrupt input/vector file | fix the data; retrying will not help |
 * | 6 | diverged: NaN/Inf or a singular update; nothing was published | lower --lr and rerun |
 * | 7 | export failed after training (the new checkpoint is saved) | rerun `deno task export` on it |
 *
 * @module
 */

import { DataFormatError, DivergenceError, SingularUpdateError, UsageError } from "../errors.ts";

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
});

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
 * {@link DataFormatError} and a missing file (Deno.errors.NotFound), 6 for {@link DivergenceError}/{@link SingularUpdateError}, else 1.
 *
 * @example
 * ```ts
 * import { exitCodeFor } from "./exit_codes.ts";
 * import { UsageError } from "../errors.ts";
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
 * Runs a command's main function: on an error prints `<command>: <message>` as one line on stderr
 * (the stack too for an internal error) and exits with {@link exitCodeFor}.
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
    const code = exitCodeFor(e);
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`${name}: ${msg.replace(/\s*\n\s*/g, " ")}`);
    if (code === EXIT.internal && e instanceof Error && e.stack) console.error(e.stack);
    Deno.exit(code);
  }
}
