/**
 * Where a job writes (train, refresh): its progress and result lines on standard output, best-effort, and
 * its log on standard error.
 *
 * @module
 */

import { stdoutLost } from "../core/os_errors.ts";

/**
 * Where the job writes: `out` gets progress and the final summary (JSON lines unless `tty`), `err` the
 * log lines; `merged`: both end in one stream (lib/core/cli.ts stdoutIsStderr), where the log leaves out
 * the events the progress output shows (lib/train/progress.ts carriesEvents).
 *
 * @example
 * ```ts
 * import type { JobIO } from "./job_io.ts";
 * const io: JobIO = { out: (s) => console.log(s), err: (s) => console.error(s), tty: false };
 * ```
 */
export type JobIO = {
  out: (text: string) => void;
  err: (line: string) => void;
  tty: boolean;
  merged?: boolean;
};

/**
 * `io.out` made best-effort: when standard output fails (a closed pipe, `> /dev/full`, a closed
 * descriptor: EPIPE, ENOSPC, EBADF, EIO) one line on stderr says so and where the result is (`summary`:
 * train's summary.json, refresh's publication), and the progress and summary lines after it are dropped; the
 * training and its publication go on. Other errors are thrown. `failed` says whether that happened (a
 * progress output that shared the log's stream no longer carries the events then: they go to the log,
 * progress.ts carriesEvents).
 *
 * @example
 * ```ts
 * import { bestEffortOut } from "./job_io.ts";
 * const out = bestEffortOut({
 *   out: () => { throw new Deno.errors.BrokenPipe("closed"); },
 *   err: (line) => console.error(line),
 *   tty: false,
 * }, () => "runs/x/summary.json");
 * out.write("{}\n"); // one stderr line; nothing thrown
 * console.log(out.failed()); // true
 * ```
 */
export function bestEffortOut(
  io: JobIO,
  summary: () => string,
): { write: (text: string) => void; failed: () => boolean } {
  let failed = false;
  const write = (text: string) => {
    if (failed) return;
    try {
      io.out(text);
    } catch (e) {
      const errno = stdoutLost(e);
      if (!errno) throw e;
      failed = true;
      io.err(
        `stdout: cannot write (${errno}: ${(e as Error).message}): progress and the summary line are not ` +
          `printed; the training goes on, and ${summary()} has the result`,
      );
    }
  };
  return { write, failed: () => failed };
}
