/**
 * Picks a CPU linear-algebra backend by name and logs which one runs.
 *
 * @module
 */

import type { LinAlgBackend } from "./backend.ts";
import { createJsBackend } from "./js.ts";
import { openBlasBackend, threadsFromEnv } from "./blas.ts";
import { UsageError } from "../core/errors.ts";
import { createPooledBackend } from "./pool.ts";

/** Options of {@link createBackend}. */
export type CreateBackendOptions = {
  /** Where the one "which backend runs" line goes; default console.error. */
  log?: (line: string) => void;
  /** The OpenBLAS library to open (default: FACTOROUT_OPENBLAS, then the usual Debian paths). */
  openblasPath?: string;
  /** On the split path, time each thread's parts (pool.ts `partTimes`; for profiles). */
  partTimes?: boolean;
};

/**
 * The most threads at which the blas backend splits the factored step itself when FACTOROUT_SPLIT is unset.
 * At two threads the split beat OpenBLAS's own threading in every paired trainer run on the 2-core machines,
 * quiet or shared: OpenBLAS's threads collapse when another job holds a core (BENCHMARKS.md, "Issue 18: the
 * second core"). At 4 to 16 threads on the 16-core host OpenBLAS's threading was the faster one ("Device runs
 * on the H200 machine").
 *
 * @example
 * ```ts
 * import { SPLIT_DEFAULT_MAX_THREADS } from "./select.ts";
 * console.log(SPLIT_DEFAULT_MAX_THREADS); // 2
 * ```
 */
export const SPLIT_DEFAULT_MAX_THREADS = 2;

/**
 * Creates a CPU linear-algebra backend and logs one line naming it, e.g.
 * `factorout: linear algebra backend = blas (OpenBLAS 0.3.21, /usr/lib/x86_64-linux-gnu/libopenblas.so.0, 2 threads)`.
 *
 * - "js": the plain TypeScript reference.
 * - "blas": OpenBLAS; throws BackendUnavailableError when it cannot be loaded. With more than one thread
 *   (FACTOROUT_THREADS, default every core) the backend either leaves the threads to OpenBLAS or splits the
 *   factored step across them itself (pool.ts: the large products and sparse rows on shared memory, and the
 *   per-example kernels of the step and the embedding bag). FACTOROUT_SPLIT=1 splits, 0 leaves it to
 *   OpenBLAS; unset, the split runs up to {@link SPLIT_DEFAULT_MAX_THREADS} threads. With more than one
 *   thread the line says which path runs; a FACTOROUT_SPLIT other than 0 or 1 is a UsageError.
 *   FACTOROUT_POOL_HOLD=0 lets the split path's workers sleep between its calls (pool.ts `hold`: by default
 *   they poll through each step), for measurements; other than 0 or 1 is a UsageError.
 * - "auto": blas, else js with the reason logged. Under `CI=true` a blas failure throws instead.
 *
 * @example
 * ```ts
 * import { createBackend } from "./select.ts";
 * const la = await createBackend("auto", { log: (l) => console.log(l) });
 * console.log(la.name);
 * la.close();
 * ```
 *
 * @param name "js", "blas" or "auto"
 * @param opts where to log, which library to open
 * @returns the backend; call close() when done
 * @throws {BackendUnavailableError} "blas" (or "auto" under CI=true) and OpenBLAS cannot be loaded
 * @throws {UsageError} an unknown name
 */
export function createBackend(
  name: "js" | "blas" | "auto",
  opts: CreateBackendOptions = {},
): Promise<LinAlgBackend> {
  const log = opts.log ?? ((line: string) => console.error(line));
  try {
    return Promise.resolve(select(name, opts.openblasPath, log, opts.partTimes ?? false));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * The OPENBLAS_THREAD_TIMEOUT that OpenBLAS is loaded with where the split will run: its own threads, which
 * then serve only the calls the pool does not split (the upkeep's O(Dd²) products), sleep right after a
 * call instead of polling for 2²⁸ cycles (about 0.1 s), during which they take the core of a pool thread
 * (BENCHMARKS.md, "Touching the target rows and OpenBLAS's idle threads"). A value the user set wins.
 *
 * @example
 * ```ts
 * import { SPLIT_OPENBLAS_THREAD_TIMEOUT } from "./select.ts";
 * console.log(SPLIT_OPENBLAS_THREAD_TIMEOUT); // "4"
 * ```
 */
export const SPLIT_OPENBLAS_THREAD_TIMEOUT = "4";

/**
 * Whether the split will run, judged before OpenBLAS is loaded (its thread count is known only after):
 * FACTOROUT_SPLIT=1, or unset and the count OpenBLAS will take between 2 and
 * {@link SPLIT_DEFAULT_MAX_THREADS}. That count is FACTOROUT_THREADS (openBlasBackend sets it, uncapped),
 * else OpenBLAS's own rule: the first of OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS, OMP_NUM_THREADS above 0
 * (read as C's atoi), else the cores, capped at the cores this process may use. A wrong guess only costs
 * speed.
 */
function splitExpected(splitEnv: string): boolean {
  if (splitEnv === "0") return false;
  const cores = navigator.hardwareConcurrency;
  const ours = threadsFromEnv(); // 0 when unset (checked by backendEnvironment before this runs)
  const atoi = (name: string) => Number(/^\s*([+-]?\d+)/.exec(Deno.env.get(name) ?? "")?.[1] ?? 0);
  const theirs = ["OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"].map(atoi).find((t) => t > 0);
  const threads = ours > 0 ? ours : Math.min(theirs ?? cores, cores);
  return threads > 1 && (splitEnv === "1" || threads <= SPLIT_DEFAULT_MAX_THREADS);
}

/**
 * The environment variables the blas backend reads, checked: FACTOROUT_SPLIT and FACTOROUT_POOL_HOLD ("",
 * "0" or "1") and FACTOROUT_THREADS (a positive integer, or unset). A job calls it before its first step
 * (the train job, before it prepares a corpus) so that a bad value costs nothing; {@link createBackend}
 * calls it too.
 *
 * @example
 * ```ts
 * import { backendEnvironment } from "./select.ts";
 * console.log(typeof backendEnvironment().split); // "string"
 * ```
 *
 * @returns FACTOROUT_SPLIT and FACTOROUT_POOL_HOLD ("" when unset)
 * @throws {UsageError} a value outside those
 */
export function backendEnvironment(): { split: string; hold: string } {
  const split = Deno.env.get("FACTOROUT_SPLIT") ?? "";
  if (split !== "" && split !== "0" && split !== "1") {
    throw new UsageError(`FACTOROUT_SPLIT must be 0 or 1 (or unset), got '${split}'`);
  }
  const hold = Deno.env.get("FACTOROUT_POOL_HOLD") ?? "";
  if (hold !== "" && hold !== "0" && hold !== "1") {
    throw new UsageError(`FACTOROUT_POOL_HOLD must be 0 or 1 (or unset), got '${hold}'`);
  }
  threadsFromEnv();
  return { split, hold };
}

function select(
  name: string,
  path: string | undefined,
  log: (line: string) => void,
  partTimes: boolean,
): LinAlgBackend {
  if (name === "js") {
    log("factorout: linear algebra backend = js (plain TypeScript)");
    return createJsBackend();
  }
  if (name === "blas" || name === "auto") {
    const { split: env, hold: holdEnv } = backendEnvironment();
    try {
      const b = openBlasBackend(path, splitExpected(env) ? SPLIT_OPENBLAS_THREAD_TIMEOUT : "");
      const ver = b.version ? `OpenBLAS ${b.version}` : b.config;
      const split = b.threads > 1 && (env === "1" || (env === "" && b.threads <= SPLIT_DEFAULT_MAX_THREADS));
      const hold = holdEnv !== "0";
      const how = b.threads <= 1
        ? ""
        : split
        ? `, the factored step split across them (${
          env === "1"
            ? "FACTOROUT_SPLIT=1"
            : "the default at this thread count; FACTOROUT_SPLIT=0 leaves it to OpenBLAS"
        }): products, sparse rows, per-example kernels` +
          (hold ? "" : "; FACTOROUT_POOL_HOLD=0: the workers sleep between split calls") +
          (b.threadTimeout === SPLIT_OPENBLAS_THREAD_TIMEOUT
            ? `; OpenBLAS's own threads sleep right after a call (OPENBLAS_THREAD_TIMEOUT=${b.threadTimeout})`
            : "")
        : `, OpenBLAS's own threading (${
          env === "0" ? "FACTOROUT_SPLIT=0" : "the default above " + SPLIT_DEFAULT_MAX_THREADS + " threads"
        }); FACTOROUT_SPLIT=1 splits the factored step across them`;
      log(`factorout: linear algebra backend = blas (${ver}, ${b.path}, ${b.threads} threads${how})`);
      return split ? createPooledBackend(b, b.threads, { hold, partTimes }) : b;
    } catch (e) {
      // a usage mistake (FACTOROUT_THREADS not a positive integer) is the user's to fix, not a missing backend
      if (name === "blas" || Deno.env.get("CI") === "true" || e instanceof UsageError) throw e;
      log(`factorout: linear algebra backend = js (fallback: ${(e as Error).message})`);
      return createJsBackend();
    }
  }
  throw new UsageError(`backend must be "js", "blas" or "auto", got '${name}'`);
}
