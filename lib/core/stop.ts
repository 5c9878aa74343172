/**
 * Graceful stop of a job on SIGTERM, SIGINT or SIGHUP (what schedulers send: systemd, Kubernetes, cron's
 * shell, Ctrl-C, a closed terminal).
 *
 * A job installs one {@link StopController}. While it runs a section that stops by itself at a safe
 * point ({@link StopController.deferred}: the training loop, which checks {@link StopController.abort}
 * after each step and then writes a checkpoint), a signal only sets the flag. Anywhere else (preparing a
 * corpus, publishing, evaluating) the controller runs the registered exit cleanups (temporary files and
 * folders, the job's lock) and exits at once with `EXIT.stopped`, printing one line. A second signal never
 * kills the process: it is noted, and the job exits right after the write in progress.
 *
 * Temporary paths register themselves with {@link atExit} (lib/core/atomic.ts, the checkpoint writer,
 * the publisher), so that no file a reader would take for complete is left behind. The few renames that
 * put a finished result in place run inside {@link holdingStop}: a signal then takes effect once they are
 * all done, so that a stop never leaves a folder half-swapped.
 *
 * @module
 */

import { EXIT, ExitError } from "./exit_codes.ts";

/** The signals a job treats as "stop". */
export const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

/** One of {@link STOP_SIGNALS}. */
export type StopSignal = (typeof STOP_SIGNALS)[number];

const cleanups = new Set<() => void>();

/**
 * Registers a synchronous cleanup run when a stop signal ends the process at once; returns the function
 * that unregisters it (call it when the temporary path is renamed or removed).
 *
 * @example
 * ```ts
 * import { atExit } from "./stop.ts";
 * const done = atExit(() => Deno.removeSync("/tmp/x.tmp"));
 * done();
 * ```
 */
export function atExit(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/**
 * {@link atExit} for a temporary file or folder: removed (recursively) if the process is stopped.
 *
 * @example
 * ```ts
 * import { removeAtExit } from "./stop.ts";
 * const forget = removeAtExit("/tmp/out.tmp");
 * forget();
 * ```
 */
export function removeAtExit(path: string): () => void {
  removals.add(path);
  const forget = atExit(() => removePath(path));
  return () => {
    removals.delete(path);
    forget();
  };
}

/** The paths {@link removeAtExit} registered (removed again after {@link SETTLE_MS} while they come back). */
const removals = new Set<string>();

/**
 * How long the exit cleanup waits before removing the temporary paths a second time: a file-system call
 * that another thread had already started when the signal came (the job's async mkdir of its temporary
 * folder, a shard file being created) can recreate a path just removed (tests/stop_test.ts).
 */
const SETTLE_MS = 50;

/**
 * How many times the exit cleanup waits {@link SETTLE_MS} and removes again while a path keeps coming back:
 * on a loaded machine the calls in flight may not have run within one wait (1 of 20 folders was left behind
 * in tests/stop_test.ts under a load of 4 on 2 cores).
 */
const SETTLE_ROUNDS = 20;

function removePath(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch { /* already renamed or removed */ }
}

/** Runs and forgets every registered cleanup (each at most once), then removes the temporary paths again. */
function runCleanups(): void {
  const paths = [...removals];
  removals.clear();
  for (const f of [...cleanups]) {
    cleanups.delete(f);
    try {
      f();
    } catch { /* best effort: the process is ending */ }
  }
  if (paths.length === 0) return;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (let round = 0; round < SETTLE_ROUNDS; round++) {
    Atomics.wait(cell, 0, 0, SETTLE_MS);
    let back = false;
    for (const p of paths) back = removeIfThere(p) || back;
    if (!back) return;
  }
}

/** Removes `path` when it exists; true when it did. */
function removeIfThere(path: string): boolean {
  try {
    Deno.lstatSync(path);
  } catch {
    return false;
  }
  removePath(path);
  return true;
}

/** How many {@link holdingStop} sections are running, and the stop that waits for the last to end. */
let held = 0;
let heldStop: (() => void) | undefined;

/**
 * Runs `f` (the renames that put a finished result in place: a corpus folder swapped in, a version
 * published) with stop signals held: a signal that comes meanwhile, outside a deferred section, stops the
 * job as soon as the last held section has ended, with the {@link StopController.note} in force then. So a
 * stop lands before the swap (the temporary result is removed; the old one stays) or after it (the new
 * one is complete), never between two of its renames. Only the process's own signal handling waits:
 * `kill -9` still ends it anywhere.
 *
 * @example
 * ```ts
 * import { holdingStop } from "./stop.ts";
 * const dir = await Deno.makeTempDir();
 * await holdingStop(async () => {
 *   await Deno.writeTextFile(`${dir}/a.tmp`, "a");
 *   await Deno.rename(`${dir}/a.tmp`, `${dir}/a`);
 * });
 * ```
 */
export async function holdingStop<T>(f: () => Promise<T>): Promise<T> {
  held++;
  try {
    return await f();
  } finally {
    held--;
    if (held === 0 && heldStop) {
      const stopNow = heldStop;
      heldStop = undefined;
      stopNow();
    }
  }
}

/**
 * Raised (exit code 9, `EXIT.stopped`) when a job stopped on a signal after saving its state.
 *
 * @example
 * ```ts
 * import { StoppedError } from "./stop.ts";
 * const e = new StoppedError("stopped by SIGTERM at step 40: checkpoint runs/x/checkpoints/ckpt-000000000040.fock");
 * console.log(e.message);
 * ```
 */
export class StoppedError extends ExitError {
  /** @param message the one-line reason: where the state is and how to continue */
  constructor(message: string) {
    super(EXIT.stopped, message);
    this.name = "StoppedError";
  }
}

/**
 * A job's stop handling; see the module doc.
 *
 * @example
 * ```ts
 * import { StopController } from "./stop.ts";
 * const stop = new StopController("train").install();
 * stop.note = "nothing was published; rerun the same command";
 * await stop.deferred(async () => { while (!stop.abort.aborted) break; });
 * stop.dispose();
 * ```
 */
export class StopController {
  /** The command name, first on the printed line. */
  readonly command: string;
  /** What the one line says after "stopped by SIGTERM" when the job exits at once. */
  note = "nothing partial was left; rerun the same command";
  #signal: StopSignal | undefined;
  #ac = new AbortController();
  #deferred = 0;
  #handlers: [StopSignal, () => void][] = [];
  #log: (line: string) => void;
  #exit: (code: number) => void;

  /**
   * @param command the command name for messages
   * @param log where the lines go (default console.error)
   * @param exit how to end the process (default Deno.exit; tests pass a stub)
   */
  constructor(
    command: string,
    log: (line: string) => void = (l) => console.error(l),
    exit: (code: number) => void = (c) => Deno.exit(c),
  ) {
    this.command = command;
    this.#log = log;
    this.#exit = exit;
  }

  /** Listens for {@link STOP_SIGNALS}; returns this. */
  install(): this {
    for (const sig of STOP_SIGNALS) {
      const h = () => this.receive(sig);
      try {
        Deno.addSignalListener(sig, h);
        this.#handlers.push([sig, h]);
      } catch { /* a platform without this signal */ }
    }
    return this;
  }

  /** Stops listening (the process keeps running while a signal listener is installed). */
  dispose(): void {
    for (const [sig, h] of this.#handlers) Deno.removeSignalListener(sig, h);
    this.#handlers = [];
  }

  /** The first signal received, if any. */
  get signal(): StopSignal | undefined {
    return this.#signal;
  }

  /** Aborted on the first signal: what a deferred section polls. */
  get abort(): AbortSignal {
    return this.#ac.signal;
  }

  /**
   * Runs `f` during which a signal only sets {@link abort} (`f` stops at its next safe point); if a
   * signal came before, `f` still runs and sees the flag at its first check.
   */
  async deferred<T>(f: () => Promise<T>): Promise<T> {
    this.#deferred++;
    try {
      return await f();
    } finally {
      this.#deferred--;
    }
  }

  /** Handles one signal (what the installed listeners call). */
  receive(sig: StopSignal): void {
    if (this.#signal) {
      this.#log(
        `${this.command}: ${sig} while stopping: not stopping in the middle of a write; exiting as soon as it is complete`,
      );
      return;
    }
    this.#signal = sig;
    this.#ac.abort(new StoppedError(`stopped by ${sig}`));
    if (this.#deferred > 0) {
      this.#log(`${this.command}: ${sig}: finishing the step in progress, then writing a checkpoint`);
      return;
    }
    if (held > 0) {
      heldStop = () => this.#stopNow(sig);
      return;
    }
    this.#stopNow(sig);
  }

  /** Runs the exit cleanups and ends the process with `EXIT.stopped` and one line. */
  #stopNow(sig: StopSignal): void {
    runCleanups();
    this.#log(`${this.command}: stopped by ${sig}; ${this.note}`);
    this.#exit(EXIT.stopped);
  }
}
