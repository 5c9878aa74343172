/**
 * Typed errors of factorout. Every message names the argument, file, row or step at fault and, where
 * there is one, what to change. Each class maps to one exit code in lib/core/exit_codes.ts.
 *
 * Which class for a misuse, the same on every backend (one check site where the backends share it):
 * - TypeError: a value of the wrong type (H not a Float32Array, Y.offsets not an Int32Array);
 * - RangeError: a value out of its range (a length, an index, a count, a non-finite number);
 * - {@link UsageError}: a flag or option that is unknown or does not fit the others (an unknown kind or
 *   backend, a state of another layer, no init, a bad command-line value): exit 2;
 * - {@link DataFormatError}: bad input data (exit 5); {@link IoError}: the operating system (exit 8).
 *
 * @module
 */

/**
 * Raised when a factored step would make U singular or flip the sign of one of its directions
 * (2·η·g_q·‖h‖² ≥ 1 for an online step), instead of silently producing Inf/NaN.
 *
 * @example
 * ```ts
 * import { SingularUpdateError } from "./errors.ts";
 * try { throw new SingularUpdateError("step 12: factor 1 - 2*eta*g_q*|h|^2 = -0.3; lower --lr"); }
 * catch (e) { if (e instanceof SingularUpdateError) console.error(e.message); }
 * ```
 */
export class SingularUpdateError extends Error {
  /** @param message what happened and what to change */
  constructor(message: string) {
    super(message);
    this.name = "SingularUpdateError";
  }
}

/**
 * Raised when a matrix to factor or invert (U of the factored layer at a stabilisation, a solve) is
 * singular to working precision or holds NaN. A RangeError, as before; the trainer takes it for a
 * numerical failure of the step (backoff and rollback) rather than a bug.
 *
 * @example
 * ```ts
 * import { SingularMatrixError } from "./errors.ts";
 * const e = new SingularMatrixError("dinvert: the 3x3 matrix is singular to working precision");
 * console.log(e instanceof RangeError); // true
 * ```
 */
export class SingularMatrixError extends RangeError {
  /** @param message the operation, the matrix size and the failing pivot */
  constructor(message: string) {
    super(message);
    this.name = "SingularMatrixError";
  }
}

/**
 * Raised when a backend (OpenBLAS, a WebGPU adapter) cannot be loaded. The message names the cause
 * and the fix (which Debian package to install, which variable to set).
 *
 * @example
 * ```ts
 * import { BackendUnavailableError } from "./errors.ts";
 * const e = new BackendUnavailableError("blas", "libopenblas.so.0 not found; apt-get install libopenblas0-pthread");
 * console.log(e.backend);
 * ```
 */
export class BackendUnavailableError extends Error {
  /** The backend that could not be loaded. */
  readonly backend: string;
  /**
   * @param backend the backend's name ("blas", "webgpu")
   * @param message the cause and the fix
   */
  constructor(backend: string, message: string) {
    super(`backend "${backend}" unavailable: ${message}`);
    this.name = "BackendUnavailableError";
    this.backend = backend;
  }
}

/**
 * Raised for a corrupt, truncated or badly shaped data file (Arrow IPC, Parquet, vocabulary,
 * checkpoint). The message names the file and, where known, the shard, row or batch.
 *
 * @example
 * ```ts
 * import { DataFormatError } from "./errors.ts";
 * const e = new DataFormatError("data/shards/part-00001.arrow", "row 17: target_index[2] = 90210 >= vocabulary size 50000");
 * console.log(e.message); // names the file, then the row
 * ```
 */
export class DataFormatError extends Error {
  /** The file at fault. */
  readonly file: string;
  /**
   * @param file the path of the file at fault
   * @param message what is wrong, with the row or batch
   */
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "DataFormatError";
    this.file = file;
  }
}

/**
 * Raised for a bad command-line flag, configuration value or option.
 *
 * @example
 * ```ts
 * import { UsageError } from "./errors.ts";
 * const e = new UsageError("--dim must be a positive integer, got 'abc'");
 * console.log(e.name); // "UsageError" (exit code 2)
 * ```
 */
export class UsageError extends Error {
  /** @param message which flag or option, what was given, what is accepted */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Raised when training diverges (a NaN/Inf loss or gradient). The message names the step and what to
 * change; the last good checkpoint is left intact.
 *
 * @example
 * ```ts
 * import { DivergenceError } from "./errors.ts";
 * const e = new DivergenceError(1200, "loss is NaN at step 1200; lower --lr (now 0.5)");
 * console.log(e.step); // 1200
 * ```
 */
export class DivergenceError extends Error {
  /** The step at which divergence was detected. */
  readonly step: number;
  /**
   * @param step the step at which it happened
   * @param message what happened and what to change
   */
  constructor(step: number, message: string) {
    super(message);
    this.name = "DivergenceError";
    this.step = step;
  }
}

/**
 * Raised for an operating-system error on a file or folder (disk full, read-only file system, permission
 * denied, a missing folder, a path under a regular file). Deno's own errors often name no path (a
 * failed `write` on an open file says only "No space left on device"); this one always names the path
 * and the operation, as one line `<what> <path>: <cause>; <what to do>`. Build it with `withPath` or
 * `describeOsError` (lib/core/os_errors.ts), which map the errno to the cause and the fix.
 *
 * @example
 * ```ts
 * import { IoError } from "./errors.ts";
 * const e = new IoError("cannot write checkpoint", "runs/x/checkpoints/ckpt-12.fock", "ENOSPC",
 *   "no space left on device", "free space on its disk or choose another output folder");
 * console.log(e.message); // "cannot write checkpoint runs/x/…/ckpt-12.fock: no space left on device; free space …"
 * ```
 */
export class IoError extends Error {
  /** The operation, e.g. "cannot write checkpoint". */
  readonly what: string;
  /** The file or folder at fault. */
  readonly path: string;
  /** The errno name, e.g. "ENOSPC", "EROFS", "EACCES" ("" when unknown). */
  readonly errno: string;
  /** The cause in words, e.g. "no space left on device". */
  readonly reason: string;
  /** Whether the operation read an input (a missing input is bad data, exit 5; see lib/core/exit_codes.ts). */
  readonly reading: boolean;
  /**
   * @param what the operation, e.g. "cannot write checkpoint"
   * @param path the file or folder
   * @param errno the errno name ("ENOSPC"), "" when unknown
   * @param cause the cause in words ("no space left on device")
   * @param fix what to do ("free space on its disk or choose another --out")
   * @param opts `reading`: the operation read an input; `cause`: the original error
   */
  constructor(
    what: string,
    path: string,
    errno: string,
    cause: string,
    fix: string,
    opts: { reading?: boolean; cause?: unknown } = {},
  ) {
    super(`${what} ${path}: ${cause}; ${fix}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "IoError";
    this.what = what;
    this.path = path;
    this.errno = errno;
    this.reason = cause;
    this.reading = opts.reading ?? false;
  }
}
