/**
 * The `blas` linear-algebra backend: OpenBLAS (Debian `libopenblas0-pthread`) through `Deno.dlopen`.
 *
 * - gemm, gemv, ger, syrk, syr2k: `cblas_*` with CblasRowMajor; a gemm with M = 1 or N = 1 goes to gemv. syrk and syr2k write the lower triangle (uplo =
 *   Lower, so only the lower triangle of an input C is read when beta ≠ 0) and the upper one is mirrored here
 *   (syr2k.ts, with `cblas_somatcopy` / `cblas_domatcopy`); ssyr2k with trans computes the lower triangle
 *   in syr2k.ts's two row blocks (the calls of the pool's step kernel).
 * - strsm: `cblas_strsm` (left side, lower-triangular, non-unit diagonal).
 * - dpotrf: LAPACK's `dpotrf_` with uplo = 'U' on the buffer (a row-major lower triangle is the
 *   column-major upper one).
 * - dinvert, dsolve: LAPACK's Fortran `dgetrf_`/`dgetri_`/`dgetrs_` (column-major). A row-major A is
 *   the column-major Aᵀ, and inv(Aᵀ) = inv(A)ᵀ, so inverting the buffer as it stands inverts A. For a
 *   solve, A X = B is Aᵀᵀ X = B: `dgetrs_` with trans = 'T' on the factorised buffer, with B moved to
 *   column-major and back.
 * - gatherRows: a TypedArray copy (memcpy) per row. scatterAddRows: `cblas_saxpy` per row when
 *   d ≥ 32 (faster than the TypeScript loop there; BENCHMARKS.md, "Design measurements"), the js
 *   reference's loop below that, where the FFI call would dominate. Rows are applied in order.
 * - dotRows: `cblas_sdot` per row (float32 accumulation), axpyRows: `cblas_saxpy` per
 *   row, both when d ≥ 32 (a subarray per row is cheaper through the FFI fast path than a raw address),
 *   the js reference's loops below that.
 *
 * Library search: `FACTOROUT_OPENBLAS` (a path) if set, else the usual Debian/Ubuntu paths, else the
 * dynamic loader's own search for `libopenblas.so.0`. `FACTOROUT_THREADS` sets OpenBLAS's thread count
 * (default: OpenBLAS's own, i.e. every core or `OPENBLAS_NUM_THREADS`).
 *
 * Every call is argument-checked (O(1)) before it reaches native code, so a short array raises a
 * RangeError instead of corrupting memory.
 *
 * Size: the FFI binding of OpenBLAS/LAPACK: one symbol table and one checked wrapper per routine, kept
 * together so that each native signature is read beside its argument checks.
 *
 * @module
 */

import type { F32, F64, LinAlgBackend } from "./backend.ts";
import { BackendUnavailableError, SingularMatrixError, UsageError } from "../core/errors.ts";
import { createJsBackend } from "./js.ts";
import { TOUCH_ROWS, touchRows } from "./touch.ts";
import {
  checkDims,
  checkGemm,
  checkGemv,
  checkGer,
  checkIndexedRows,
  checkRows,
  checkSquare,
  checkSyr2k,
  checkTrsm,
  checkVector,
  pivotTolerance,
} from "./check.ts";
import { mirrorTriangle, syr2kBlock, type Syr2kSymbols } from "./syr2k.ts";
import { DENO_TASK } from "../core/exit_codes.ts";

/** Where `libopenblas.so.0` is looked for when neither an argument nor FACTOROUT_OPENBLAS names it. */
export const OPENBLAS_SEARCH_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib64/libopenblas.so.0",
  "/usr/lib/libopenblas.so.0",
  "/usr/local/lib/libopenblas.so.0",
  "libopenblas.so.0",
];

/** gemv (and gemm with M = 1 or N = 1) runs on one OpenBLAS thread up to this many matrix elements. */
const GEMV_SINGLE_THREAD_MAX = 1 << 20;

/** dpotrf runs on one OpenBLAS thread up to this n (faster there than the threaded factorisation). */
const DPOTRF_SINGLE_THREAD_MAX_N = 256;

/** Row width from which scatterAddRows calls cblas_saxpy per row instead of a TypeScript loop. */
/**
 * Narrowest rows that dotRows/axpyRows send to cblas (one call per row); narrower ones run JS loops.
 *
 * @example
 * ```ts
 * import { SAXPY_MIN_WIDTH } from "./blas.ts";
 * console.log(SAXPY_MIN_WIDTH); // 32
 * ```
 */
export const SAXPY_MIN_WIDTH = 32;

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112, LOWER = 122, LEFT = 141, NON_UNIT = 131;

/** The OpenBLAS and LAPACK symbols the backend (and the worker pool, lib/linalg/pool_worker.ts) bind. */
export const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  cblas_dgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f64",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f64",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  cblas_sgemv: {
    parameters: ["i32", "i32", "i32", "i32", "f32", "buffer", "i32", "buffer", "i32", "f32", "buffer", "i32"],
    result: "void",
  },
  cblas_dgemv: {
    parameters: ["i32", "i32", "i32", "i32", "f64", "buffer", "i32", "buffer", "i32", "f64", "buffer", "i32"],
    result: "void",
  },
  cblas_ssyr2k: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  cblas_dsyrk: {
    parameters: ["i32", "i32", "i32", "i32", "i32", "f64", "buffer", "i32", "f64", "buffer", "i32"],
    result: "void",
  },
  cblas_dsyr2k: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f64",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f64",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  // Fortran LAPACK: every argument by reference; dgetrs_ takes the hidden length of its CHARACTER argument.
  dgetrf_: { parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"], result: "void" },
  dgetri_: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "void",
  },
  dgetrs_: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "void",
  },
  cblas_strsm: {
    parameters: ["i32", "i32", "i32", "i32", "i32", "i32", "i32", "f32", "buffer", "i32", "buffer", "i32"],
    result: "void",
  },
  dpotrf_: { parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"], result: "void" },
  cblas_saxpy: { parameters: ["i32", "f32", "buffer", "i32", "buffer", "i32"], result: "void" },
  cblas_sger: {
    parameters: ["i32", "i32", "i32", "f32", "buffer", "i32", "buffer", "i32", "buffer", "i32"],
    result: "void",
  },
  cblas_sdot: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "f32" },
  cblas_somatcopy: {
    parameters: ["i32", "i32", "i32", "i32", "f32", "buffer", "i32", "buffer", "i32"],
    result: "void",
  },
  cblas_domatcopy: {
    parameters: ["i32", "i32", "i32", "i32", "f64", "buffer", "i32", "buffer", "i32"],
    result: "void",
  },
  openblas_get_config: { parameters: [], result: "pointer" },
  openblas_get_num_threads: { parameters: [], result: "i32" },
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
  /** The OPENBLAS_THREAD_TIMEOUT this load of OpenBLAS read (0: unset); optional: OpenBLAS ≥ 0.2.20. */
  openblas_thread_timeout: { parameters: [], result: "i32", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

type GemvFn = (
  order: number,
  trans: number,
  M: number,
  N: number,
  alpha: number,
  A: AllowSharedBufferSource,
  lda: number,
  x: AllowSharedBufferSource,
  incX: number,
  beta: number,
  y: AllowSharedBufferSource,
  incY: number,
) => void;

/**
 * A gemm with M = 1 or N = 1 is a gemv; OpenBLAS's gemm is several times slower there (BENCHMARKS.md,
 * "Design measurements"), which matters for the online (m = 1) factored step. Returns false when the
 * shape is not a vector product (then the caller runs gemm).
 */
function gemmAsGemv(
  gemv: GemvFn,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: F32 | F64,
  lda: number,
  B: F32 | F64,
  ldb: number,
  beta: number,
  C: F32 | F64,
  ldc: number,
): boolean {
  if (K === 0 || (M !== 1 && N !== 1)) return false;
  if (M === 1) {
    // C[0, :] (N) = alpha · op(B)ᵀ · op(A)[0, :] + beta · C[0, :]
    if (beta === 0) C.fill(0, 0, N);
    const incA = transA ? lda : 1;
    if (transB) gemv(ROW_MAJOR, NO_TRANS, N, K, alpha, B, ldb, A, incA, beta, C, 1); // B is N×K
    else gemv(ROW_MAJOR, TRANS, K, N, alpha, B, ldb, A, incA, beta, C, 1); // B is K×N
    return true;
  }
  // N = 1: C[:, 0] (M, stride ldc) = alpha · op(A) · op(B)[:, 0] + beta · C[:, 0]
  if (beta === 0) { for (let i = 0; i < M; i++) C[i * ldc] = 0; }
  const incB = transB ? 1 : ldb;
  if (transA) gemv(ROW_MAJOR, TRANS, K, M, alpha, A, lda, B, incB, beta, C, ldc); // A is K×M
  else gemv(ROW_MAJOR, NO_TRANS, M, K, alpha, A, lda, B, incB, beta, C, ldc); // A is M×K
  return true;
}

/** The `blas` backend, with what was loaded. */
export interface BlasBackend extends LinAlgBackend {
  /** The library path that was opened. */
  readonly path: string;
  /** OpenBLAS's build string, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64". */
  readonly config: string;
  /** The version alone, e.g. "0.3.21" ("" if the build string has none). */
  readonly version: string;
  /** OpenBLAS's thread count. */
  readonly threads: number;
  /**
   * The OPENBLAS_THREAD_TIMEOUT that the loaded OpenBLAS read ("" for its default), as OpenBLAS reports it
   * (`openblas_thread_timeout`; where a build lacks it, the value set around this open): how long its idle
   * threads poll before they sleep, 2^timeout cycles (default 28).
   */
  readonly threadTimeout: string;
}

function open(
  path: string | undefined,
  threadTimeout: string,
): { lib: Deno.DynamicLibrary<typeof SYMBOLS>; path: string; threadTimeout: string } {
  // OpenBLAS reads the variable when the library is loaded: set around every open, since close() unloads
  // the library and the next open loads it afresh (an open while it is loaded shares that load, whose
  // value OpenBLAS reports), and restored after, so that child processes do not inherit it
  const had = Deno.env.get("OPENBLAS_THREAD_TIMEOUT");
  const user = had ?? "";
  const set = threadTimeout !== "" && user === "";
  if (set) Deno.env.set("OPENBLAS_THREAD_TIMEOUT", threadTimeout);
  try {
    const opened = openFirst(path);
    const read = opened.lib.symbols.openblas_thread_timeout;
    const timeout = read ? read() : Number(set ? threadTimeout : user);
    return { ...opened, threadTimeout: timeout > 0 ? String(timeout) : "" };
  } finally {
    if (set) {
      if (had === undefined) Deno.env.delete("OPENBLAS_THREAD_TIMEOUT");
      else Deno.env.set("OPENBLAS_THREAD_TIMEOUT", had);
    }
  }
}

function openFirst(path: string | undefined): { lib: Deno.DynamicLibrary<typeof SYMBOLS>; path: string } {
  const env = Deno.env.get("FACTOROUT_OPENBLAS");
  const tried: string[] = [];
  const candidates = path !== undefined ? [path] : env ? [env] : OPENBLAS_SEARCH_PATHS;
  let last = "";
  for (const p of candidates) {
    tried.push(p);
    if (p.startsWith("/")) {
      try {
        Deno.statSync(p);
      } catch {
        last = `${p}: no such file`;
        continue;
      }
    }
    try {
      return { lib: Deno.dlopen(p, SYMBOLS), path: p };
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new BackendUnavailableError(
          "blas",
          `loading ${p} needs FFI permission: run deno with --allow-ffi (or -A)`,
        );
      }
      last = `${p}: ${(e as Error).message}`;
    }
  }
  const source = path !== undefined ? "the path given" : env ? "FACTOROUT_OPENBLAS" : "the default search";
  throw new BackendUnavailableError(
    "blas",
    `could not load OpenBLAS from ${source} (tried ${tried.join(", ")}; last error: ${last}). ` +
      `Fix: apt-get install libopenblas0-pthread (or run \`${DENO_TASK} setup\`), ` +
      `or set FACTOROUT_OPENBLAS to the path of libopenblas.so.0`,
  );
}

/**
 * The OpenBLAS thread count FACTOROUT_THREADS asks for: 0 when unset or empty (OpenBLAS's own count).
 *
 * @example
 * ```ts
 * import { threadsFromEnv } from "./blas.ts";
 * console.log(threadsFromEnv() >= 0); // true
 * ```
 *
 * @returns the count, or 0
 * @throws {UsageError} a value that is not a positive integer
 */
export function threadsFromEnv(): number {
  const env = Deno.env.get("FACTOROUT_THREADS");
  if (env === undefined || env === "") return 0;
  const t = Number(env);
  if (!Number.isInteger(t) || t < 1) {
    throw new UsageError(`FACTOROUT_THREADS must be a positive integer, got '${env}'`);
  }
  return t;
}

/**
 * Opens OpenBLAS and returns the `blas` backend.
 *
 * @example
 * ```ts
 * import { openBlasBackend } from "./blas.ts";
 * const la = openBlasBackend();
 * const A = Float32Array.of(1, 2, 3, 4), B = Float32Array.of(1, 0, 0, 1), C = new Float32Array(4);
 * la.sgemm(false, false, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2); // C = A
 * console.log(la.config);
 * la.close();
 * ```
 *
 * @param path the library to open; default FACTOROUT_OPENBLAS, then {@link OPENBLAS_SEARCH_PATHS}
 * @param threadTimeout the OPENBLAS_THREAD_TIMEOUT to load OpenBLAS with, unless the variable is set ("":
 *   OpenBLAS's default); it applies only if this open loads the library (none in the process is open);
 *   {@link BlasBackend.threadTimeout} says what the load used
 * @returns the backend; close() unloads the library
 * @throws {BackendUnavailableError} the library cannot be found or opened (message names the paths and the fix)
 * @throws {UsageError} FACTOROUT_THREADS is not a positive integer
 */
export function openBlasBackend(path?: string, threadTimeout = ""): BlasBackend {
  // checked before the library is opened: a bad value is the same usage error whether or not OpenBLAS loads
  const threadsSet = threadsFromEnv();
  const { lib, path: opened, threadTimeout: loadedThreadTimeout } = open(path, threadTimeout);
  const s = lib.symbols;
  if (threadsSet > 0) s.openblas_set_num_threads(threadsSet);
  const cfgPtr = s.openblas_get_config();
  const config = cfgPtr === null ? "OpenBLAS" : new Deno.UnsafePointerView(cfgPtr).getCString();
  const version = /OpenBLAS\s+([0-9][0-9.]*)/.exec(config)?.[1] ?? "";
  const threads = s.openblas_get_num_threads();
  /**
   * gemv on one OpenBLAS thread up to GEMV_SINGLE_THREAD_MAX elements: between the small BLAS calls of
   * an online (m = 1) factored step the JS loops run long enough for OpenBLAS's worker thread to go to
   * sleep, and waking it costs more than the call (BENCHMARKS.md, "Design measurements").
   */
  /** Runs `call` on one OpenBLAS thread when `small` (and more than one is configured), else as is. */
  const onOneThreadIf = (small: boolean, call: () => void): void => {
    if (!small || threads <= 1) return call();
    // the count found is restored: a pooled backend keeps OpenBLAS on one thread while its workers run the
    // parts of a deferred call (pool.ts defer), and OpenBLAS must not change its count under them
    const was = s.openblas_get_num_threads();
    if (was <= 1) return call();
    s.openblas_set_num_threads(1);
    try {
      call();
    } finally {
      s.openblas_set_num_threads(was);
    }
  };
  const smallGemv = (gemv: GemvFn): GemvFn => (order, trans, M, N, alpha, A, lda, x, incX, beta, y, incY) =>
    onOneThreadIf(
      M * N <= GEMV_SINGLE_THREAD_MAX,
      () => gemv(order, trans, M, N, alpha, A, lda, x, incX, beta, y, incY),
    );
  const sgemv = smallGemv(s.cblas_sgemv), dgemv = smallGemv(s.cblas_dgemv);
  // rows narrower than SAXPY_MIN_WIDTH: the js reference's loops (a call per row costs more there)
  const narrow = createJsBackend();

  // scratch for LAPACK's by-reference scalars, pivots and workspace (grown on demand, never per call)
  const iN = new Int32Array(1), iK = new Int32Array(1), iInfo = new Int32Array(1), iLwork = new Int32Array(1);
  const transT = Uint8Array.of(84); // 'T'
  const upperU = Uint8Array.of(85); // 'U'
  let ipiv = new Int32Array(0), work = new Float64Array(0), colB = new Float64Array(0);
  let closed = false;
  const live = (op: string) => {
    if (closed) {
      throw new Error(`blas.${op}: the backend was closed; create a new one with openBlasBackend()`);
    }
  };

  /** dgetrf_ on the n×n buffer A (Aᵀ in column-major); throws RangeError when singular. */
  const factor = (op: string, A: F64, n: number) => {
    const tol = pivotTolerance(A, n);
    if (tol !== tol) throw new SingularMatrixError(`${op}: A contains NaN`);
    if (ipiv.length < n) ipiv = new Int32Array(n);
    iN[0] = n;
    iInfo[0] = 0;
    // On one OpenBLAS thread: the threaded LU (getrf_parallel) recurses with a job array of about half a
    // MiB on the caller's stack per level and overflows a 2 MiB thread stack (a Worker, a deno test
    // module) by n = 128 (tests/linalg_lapack_threads_test.ts); the factored layer's n are small enough
    // that one thread loses little.
    onOneThreadIf(true, () => s.dgetrf_(iN, iN, A, iN, ipiv, iInfo));
    if (iInfo[0] < 0) throw new Error(`${op}: dgetrf_ rejected argument ${-iInfo[0]} (n = ${n})`);
    for (let k = 0; k < n; k++) {
      const u = Math.abs(A[k * n + k]);
      if (!(u > tol) || !Number.isFinite(u)) {
        throw new SingularMatrixError(
          `${op}: the ${n}x${n} matrix is singular to working precision (pivot ${k} = ${u}, tolerance ${tol})`,
        );
      }
    }
  };

  const backend: BlasBackend = {
    name: "blas",
    path: opened,
    config,
    version,
    threads,
    threadTimeout: loadedThreadTimeout,
    sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      live("sgemm");
      checkGemm("sgemm", transA, transB, M, N, K, A, lda, B, ldb, C, ldc);
      if (M === 0 || N === 0) return;
      if (gemmAsGemv(sgemv, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
      s.cblas_sgemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        M,
        N,
        K,
        alpha,
        A,
        lda,
        B,
        ldb,
        beta,
        C,
        ldc,
      );
    },
    dgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      live("dgemm");
      checkGemm("dgemm", transA, transB, M, N, K, A, lda, B, ldb, C, ldc);
      if (M === 0 || N === 0) return;
      if (gemmAsGemv(dgemv, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
      s.cblas_dgemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        M,
        N,
        K,
        alpha,
        A,
        lda,
        B,
        ldb,
        beta,
        C,
        ldc,
      );
    },
    sgemv(trans, M, N, alpha, A, lda, x, beta, y) {
      live("sgemv");
      checkGemv("sgemv", trans, M, N, A, lda, x, y);
      if (beta === 0) y.fill(0, 0, trans ? N : M); // BLAS may compute 0·NaN; the contract says overwrite
      if (M === 0 || N === 0) return;
      sgemv(ROW_MAJOR, trans ? TRANS : NO_TRANS, M, N, alpha, A, lda, x, 1, beta, y, 1);
    },
    sger(M, N, alpha, x, y, A, lda) {
      live("sger");
      checkGer("sger", M, N, x, y, A, lda);
      if (M === 0 || N === 0) return;
      // one thread for the online step's d×d updates, as for gemv (see smallGemv)
      onOneThreadIf(
        M * N <= GEMV_SINGLE_THREAD_MAX,
        () => s.cblas_sger(ROW_MAJOR, M, N, alpha, x, 1, y, 1, A, lda),
      );
    },
    dgemv(trans, M, N, alpha, A, lda, x, beta, y) {
      live("dgemv");
      checkGemv("dgemv", trans, M, N, A, lda, x, y);
      if (beta === 0) y.fill(0, 0, trans ? N : M);
      if (M === 0 || N === 0) return;
      dgemv(ROW_MAJOR, trans ? TRANS : NO_TRANS, M, N, alpha, A, lda, x, 1, beta, y, 1);
    },
    dsyr2k(trans, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      live("dsyr2k");
      checkSyr2k("dsyr2k", trans, N, K, A, lda, B, ldb, C, ldc);
      if (N === 0) return;
      s.cblas_dsyr2k(ROW_MAJOR, LOWER, trans ? TRANS : NO_TRANS, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      mirrorTriangle(s.cblas_domatcopy, C, N, ldc, "lower");
    },
    dsyrk(trans, N, K, alpha, A, lda, beta, C, ldc) {
      live("dsyrk");
      checkSyr2k("dsyrk", trans, N, K, A, lda, A, lda, C, ldc);
      if (N === 0) return;
      s.cblas_dsyrk(ROW_MAJOR, LOWER, trans ? TRANS : NO_TRANS, N, K, alpha, A, lda, beta, C, ldc);
      mirrorTriangle(s.cblas_domatcopy, C, N, ldc, "lower");
    },
    ssyr2k(trans, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      live("ssyr2k");
      checkSyr2k("ssyr2k", trans, N, K, A, lda, B, ldb, C, ldc);
      if (N === 0) return;
      if (trans) {
        // in two row blocks, the calls the pool's step kernel makes (syr2k.ts): the same bits
        const sym = s as unknown as Syr2kSymbols;
        syr2kBlock(sym, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        syr2kBlock(sym, 1, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      } else s.cblas_ssyr2k(ROW_MAJOR, LOWER, NO_TRANS, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      mirrorTriangle(s.cblas_somatcopy, C, N, ldc, "lower");
    },
    gatherRows(src: F32, d: number, rows: Int32Array, n: number, out: F32) {
      checkRows("gatherRows", src, d, rows, n, out, "out");
      for (let i = 0; i < n; i++) out.set(src.subarray(rows[i] * d, rows[i] * d + d), i * d);
    },
    scatterAddRows(dst: F32, d: number, rows: Int32Array, n: number, src: F32, alpha: number) {
      checkRows("scatterAddRows", dst, d, rows, n, src, "src");
      if (d >= SAXPY_MIN_WIDTH) {
        live("scatterAddRows");
        for (let i = 0; i < n; i++) {
          const r = rows[i] * d;
          s.cblas_saxpy(d, alpha, src.subarray(i * d, i * d + d), 1, dst.subarray(r, r + d), 1);
        }
        return;
      }
      narrow.scatterAddRows(dst, d, rows, n, src, alpha);
    },
    dotRows(
      A: F32,
      lda: number,
      aRows: Int32Array,
      B: F32,
      ldb: number,
      bRows: Int32Array,
      n: number,
      d: number,
      out: F64,
      first = 0,
    ) {
      checkIndexedRows("dotRows", "A", A, lda, aRows, n, d, first);
      checkIndexedRows("dotRows", "B", B, ldb, bRows, n, d, first);
      checkVector("dotRows", "out", out, first + n);
      const end = first + n;
      if (d >= SAXPY_MIN_WIDTH) {
        live("dotRows");
        for (let k0 = first; k0 < end; k0 += TOUCH_ROWS) {
          // A's rows of this chunk are read first, their cache misses together (touch.ts)
          const k1 = Math.min(end, k0 + TOUCH_ROWS);
          touchRows(A, lda, aRows, k0, k1 - k0, d);
          for (let k = k0; k < k1; k++) {
            const a = aRows[k] * lda, b = bRows[k] * ldb;
            out[k] = s.cblas_sdot(d, A.subarray(a, a + d), 1, B.subarray(b, b + d), 1);
          }
        }
        return;
      }
      narrow.dotRows(A, lda, aRows, B, ldb, bRows, n, d, out, first);
    },
    axpyRows(
      alpha: F32 | F64,
      X: F32,
      ldx: number,
      xRows: Int32Array,
      Y: F32,
      ldy: number,
      yRows: Int32Array,
      n: number,
      d: number,
      first = 0,
    ) {
      checkVector("axpyRows", "alpha", alpha, first + n);
      checkIndexedRows("axpyRows", "X", X, ldx, xRows, n, d, first);
      checkIndexedRows("axpyRows", "Y", Y, ldy, yRows, n, d, first);
      const end = first + n;
      if (d >= SAXPY_MIN_WIDTH) {
        live("axpyRows");
        for (let k = first; k < end; k++) {
          const a = alpha[k];
          if (a === 0) continue;
          const x = xRows[k] * ldx, y = yRows[k] * ldy;
          s.cblas_saxpy(d, a, X.subarray(x, x + d), 1, Y.subarray(y, y + d), 1);
        }
        return;
      }
      narrow.axpyRows(alpha, X, ldx, xRows, Y, ldy, yRows, n, d, first);
    },
    dinvert(A: F64, n: number) {
      live("dinvert");
      checkSquare("dinvert", A, n);
      if (n === 0) return;
      factor("dinvert", A, n);
      const lwork = Math.max(1, 64 * n);
      if (work.length < lwork) work = new Float64Array(lwork);
      iN[0] = n;
      iLwork[0] = lwork;
      iInfo[0] = 0;
      s.dgetri_(iN, A, iN, ipiv, work, iLwork, iInfo);
      if (iInfo[0] !== 0) throw new RangeError(`dinvert: dgetri_ failed with info = ${iInfo[0]} (n = ${n})`);
    },
    dsolve(A: F64, n: number, B: F64, k: number) {
      live("dsolve");
      checkSquare("dsolve", A, n);
      checkDims("dsolve", { k });
      checkVector("dsolve", "B", B, n * k);
      if (n === 0) return;
      factor("dsolve", A, n);
      if (k === 0) return;
      // B (n×k row-major) → column-major n×k
      let Bc: F64 = B;
      if (k > 1) {
        if (colB.length < n * k) colB = new Float64Array(n * k);
        Bc = colB;
        for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) Bc[c * n + i] = B[i * k + c];
      }
      iN[0] = n;
      iK[0] = k;
      iInfo[0] = 0;
      s.dgetrs_(transT, iN, iK, A, iN, ipiv, Bc, iN, iInfo, 1n);
      if (iInfo[0] !== 0) {
        throw new Error(`dsolve: dgetrs_ rejected argument ${-iInfo[0]} (n = ${n}, k = ${k})`);
      }
      if (k > 1) { for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) B[i * k + c] = Bc[c * n + i]; }
    },
    dpotrf(A: F64, n: number) {
      live("dpotrf");
      checkSquare("dpotrf", A, n);
      if (n === 0) return true;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j <= i; j++) if (A[i * n + j] !== A[i * n + j]) return false; // NaN
      }
      // the row-major lower triangle is the column-major upper one: A = UᵀU there, U = Lᵀ
      iN[0] = n;
      iInfo[0] = 0;
      // OpenBLAS's threaded dpotrf is slower than one thread at the factored layer's m×m sizes, and
      // switching is cheap (BENCHMARKS.md, "Design measurements")
      onOneThreadIf(n <= DPOTRF_SINGLE_THREAD_MAX_N, () => s.dpotrf_(upperU, iN, A, iN, iInfo));
      if (iInfo[0] < 0) throw new Error(`dpotrf: dpotrf_ rejected argument ${-iInfo[0]} (n = ${n})`);
      return iInfo[0] === 0;
    },
    strsm(trans, N, K, alpha, L, ldl, B, ldb) {
      live("strsm");
      checkTrsm("strsm", N, K, L, ldl, B, ldb);
      if (N === 0 || K === 0) return;
      s.cblas_strsm(ROW_MAJOR, LEFT, LOWER, trans ? TRANS : NO_TRANS, NON_UNIT, N, K, alpha, L, ldl, B, ldb);
    },
    close() {
      if (closed) return;
      closed = true;
      lib.close();
    },
  };
  return backend;
}
