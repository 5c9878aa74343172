/**
 * Picks a CPU linear-algebra backend by name and logs which one runs.
 *
 * @module
 */

import type { LinAlgBackend } from "./backend.ts";
import { createJsBackend } from "./js.ts";
import { openBlasBackend } from "./blas.ts";
import { UsageError } from "../core/errors.ts";
import { createPooledBackend } from "./pool.ts";

/** Options of {@link createBackend}. */
export type CreateBackendOptions = {
  /** Where the one "which backend runs" line goes; default console.error. */
  log?: (line: string) => void;
  /** The OpenBLAS library to open (default: FACTOROUT_OPENBLAS, then the usual Debian paths). */
  openblasPath?: string;
};

/**
 * Creates a CPU linear-algebra backend and logs one line naming it, e.g.
 * `factorout: linear algebra backend = blas (OpenBLAS 0.3.21, /usr/lib/x86_64-linux-gnu/libopenblas.so.0, 2 threads)`.
 *
 * - "js": the plain TypeScript reference.
 * - "blas": OpenBLAS; throws BackendUnavailableError when it cannot be loaded. With FACTOROUT_SPLIT=1 and
 *   more than one thread (FACTOROUT_THREADS, default every core) the backend also splits the factored step
 *   across that many threads (pool.ts: the large products and sparse rows on shared memory, and the
 *   per-example kernels of the step and the embedding bag). Off by default: on the 16-core H200 host it
 *   was slower than OpenBLAS's own threading at 8 and 16 threads (BENCHMARKS.md, "Factored layer against
 *   threads"), and on the 2-core machines the evidence at 2 threads is mixed ("Two threads and the whole
 *   trainer"). With more than one thread the line says which path runs; a FACTOROUT_SPLIT other than 0 or
 *   1 is a UsageError. FACTOROUT_POOL_HOLD=0 lets the split path's workers sleep between its calls
 *   (pool.ts `hold`: by default they poll through each step), for measurements; other than 0 or 1 is a
 *   UsageError.
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
    return Promise.resolve(select(name, opts.openblasPath, log));
  } catch (e) {
    return Promise.reject(e);
  }
}

function select(name: string, path: string | undefined, log: (line: string) => void): LinAlgBackend {
  if (name === "js") {
    log("factorout: linear algebra backend = js (plain TypeScript)");
    return createJsBackend();
  }
  if (name === "blas" || name === "auto") {
    const env = Deno.env.get("FACTOROUT_SPLIT") ?? "";
    if (env !== "" && env !== "0" && env !== "1") {
      throw new UsageError(`FACTOROUT_SPLIT must be 0 or 1 (or unset), got '${env}'`);
    }
    const holdEnv = Deno.env.get("FACTOROUT_POOL_HOLD") ?? "";
    if (holdEnv !== "" && holdEnv !== "0" && holdEnv !== "1") {
      throw new UsageError(`FACTOROUT_POOL_HOLD must be 0 or 1 (or unset), got '${holdEnv}'`);
    }
    try {
      const b = openBlasBackend(path);
      const ver = b.version ? `OpenBLAS ${b.version}` : b.config;
      const split = b.threads > 1 && env === "1";
      const hold = holdEnv !== "0";
      const how = b.threads <= 1
        ? ""
        : split
        ? ", the factored step split across them by FACTOROUT_SPLIT=1: products, sparse rows, per-example kernels" +
          (hold ? "" : "; FACTOROUT_POOL_HOLD=0: the workers sleep between split calls")
        : ", OpenBLAS's own threading; FACTOROUT_SPLIT=1 splits the factored step across them";
      log(`factorout: linear algebra backend = blas (${ver}, ${b.path}, ${b.threads} threads${how})`);
      return split ? createPooledBackend(b, b.threads, { hold }) : b;
    } catch (e) {
      if (name === "blas" || Deno.env.get("CI") === "true") throw e;
      log(`factorout: linear algebra backend = js (fallback: ${(e as Error).message})`);
      return createJsBackend();
    }
  }
  throw new UsageError(`backend must be "js", "blas" or "auto", got '${name}'`);
}
