/**
 * The `blas` backend with a pool of threads that split the large float32 products of one call among them
 * (issue 18: the factored step's d×d and m×d×d products are too small for OpenBLAS's own threading).
 * Each of `threads − 1` Deno workers binds OpenBLAS itself (pool_worker.ts); a split call writes its
 * parameters into a shared block, wakes the workers, and every thread, the caller included, claims parts
 * (2 per thread, 1 while held) until none is left; the caller then waits for the parts in progress
 * (pool_ops.ts says what a part computes). A worker that is slow to wake (cores oversubscribed) only takes
 * fewer parts. OpenBLAS is set to one thread for the duration of a split call, so the parts run side by
 * side, and back to `threads` after it, so every other call (a naive layer's large gemm, the upkeep's
 * O(Dd²) passes) keeps OpenBLAS's own threading.
 *
 * What is split: sgemm and dgemm (along the columns, or the rows when there are more), strsm (along the
 * right-hand sides), ssyr2k (column blocks of the upper triangle, mirrored), and axpyRows over a few long
 * rows (the float32 state updates), when every operand lives in memory made by {@link PooledBackend.sharedF32}
 * (a SharedArrayBuffer the workers hold) and the call is at least its size in the split table
 * (pool_split.ts `POOL_SPLIT`); a smaller call on shared memory runs whole on the calling thread with
 * OpenBLAS on one thread, and anything else as on the plain backend.
 *
 * Wake-ups: a worker with nothing to do spins briefly, then sleeps in Atomics.wait; waking it costs a futex
 * round trip (tens of µs, more when its core is busy). {@link PooledBackend.hold} keeps the workers polling
 * between the split calls of a step (one wake-up per step, at the hold; held calls use one part per
 * thread); `wakeups` counts them.
 *
 * Busy cores: when another process holds the workers' cores, a held worker misses most parts and, when it
 * runs, polls on the core the caller needs. The pool watches how the held calls' parts were shared
 * (stand_down.ts) and then stands the workers down: the caller runs the next calls' parts alone, the same
 * parts with the same bits, for a span that doubles while the cores stay busy. `standDowns` and
 * `callerOnlyCalls` count them.
 *
 * A split product adds the same terms in each element as the whole one (each part is the same kernel on a
 * block of columns or rows), so results differ from the one-thread call by float32 rounding at most (OpenBLAS
 * rounds a block of C differently from the whole: not bit for bit).
 *
 * Kernels: a layer above the backends may register a kernel module (pool_ops.ts PoolKernel: JavaScript that
 * runs over parts of a problem on shared memory, e.g. the losses of a range of examples); the workers
 * import it, and {@link PooledBackend.runKernel} runs it split like any other call. The pool knows nothing
 * of what a kernel computes.
 *
 * Workers start on the first split call (a few tens of ms) and end with close().
 *
 * Size: one closure over the shared control block, the parameter block and the workers (every split call,
 * hold and kernel run touches all three); the parts' own code is in pool_ops.ts, the split table in
 * pool_split.ts.
 *
 * @module
 */

import { Worker } from "node:worker_threads";
import type { F32, F64 } from "./backend.ts";
import { type BlasBackend, SAXPY_MIN_WIDTH, SYMBOLS } from "./blas.ts";
import { splits } from "./pool_split.ts";
import { StandDownWatch } from "./stand_down.ts";
import { mirrorTriangle } from "./syr2k.ts";
import { checkGemm, checkIndexedRows, checkSyr2k, checkTrsm, checkVector } from "./check.ts";
import {
  claimParts,
  CTL_ASLEEP,
  CTL_DONE,
  CTL_ERR,
  CTL_HOLD,
  CTL_LEN,
  CTL_NEXT,
  CTL_OP,
  CTL_PARTS,
  CTL_SEQ,
  KERNEL_ARGS,
  type KernelSpec,
  OP_AXPYIDX,
  OP_DGEMM,
  OP_DOTROWS,
  OP_EXIT,
  OP_KERNEL,
  OP_RECEIVE,
  OP_SAXPY,
  OP_SGEMM,
  OP_STRSM,
  OP_SYR2K,
  PAR_LEN,
  PART_TIME_SLOTS,
  PARTS_PER_THREAD,
  type PartSymbols,
  type PoolKernel,
  seqTag,
  type SharedViews,
} from "./pool_ops.ts";

/**
 * Smallest sparse row work (rows × row length) of a split dotRows or indexed axpyRows (the factored
 * step's gathers of target rows, its A = Σ ẏ V rows and its V update).
 *
 * @example
 * ```ts
 * import { POOL_MIN_ROWS } from "./pool.ts";
 * console.log(450 * 257 >= POOL_MIN_ROWS); // true: one step's target rows at m = 64, d = 257
 * ```
 */
export const POOL_MIN_ROWS = 8_192;
/**
 * How long (ms) the calling thread polls for the workers' parts of a split call before it sleeps.
 *
 * @example
 * ```ts
 * import { POOL_CALLER_SPIN_MS } from "./pool.ts";
 * console.log(POOL_CALLER_SPIN_MS); // 1
 * ```
 */
export const POOL_CALLER_SPIN_MS = 1;
/** How long a worker may take to start (ms) before the pool gives up with an error. */
const START_TIMEOUT_MS = 60_000;

/** The pooled backend: a BlasBackend whose large calls on shared memory are split across threads. */
/**
 * One row of {@link PooledBackend.partTimes}: thread (0 = the caller), operation code (pool_ops.ts `OP_*`),
 * kernel mode (a kernel's first argument; 0 for other operations), milliseconds in its parts, parts run.
 *
 * @example
 * ```ts
 * import type { PartTime } from "./pool.ts";
 * const r: PartTime = { thread: 1, op: 10, mode: 0, ms: 12.5, parts: 100 };
 * ```
 */
export type PartTime = { thread: number; op: number; mode: number; ms: number; parts: number };

export interface PooledBackend extends BlasBackend {
  /** Threads a split call runs on (the caller and threads − 1 workers). */
  readonly parts: number;
  /**
   * A zeroed float32 array on memory the workers share; calls whose operands all live there are split.
   *
   * @param n length
   */
  sharedF32(n: number): Float32Array;
  /** Split calls so far (for tests and benchmarks). */
  readonly splitCalls: number;
  /** Of {@link PooledBackend.splitCalls}, the split sparse row calls (dotRows, indexed axpyRows). */
  readonly rowSplitCalls: number;
  /** Of {@link PooledBackend.splitCalls}, the kernel runs ({@link PooledBackend.runKernel}). */
  readonly kernelCalls: number;
  /**
   * Futex wake-ups so far: split calls (and holds) that found a worker asleep. Each costs tens of µs
   * before that worker takes a part; {@link PooledBackend.hold} keeps them out of a step.
   */
  readonly wakeups: number;
  /**
   * Times the workers stood down: over a look at the held split calls the calling thread ran more than
   * halfway from its fair share of the parts to all of them, because another process holds the workers'
   * cores (stand_down.ts). The caller then runs the next split calls' parts alone, the workers asleep.
   */
  readonly standDowns: number;
  /**
   * Split calls made while the workers stood down ({@link PooledBackend.standDown}): the calling thread runs
   * their parts (a worker still polling as the stand-down begins may take one).
   */
  readonly callerOnlyCalls: number;
  /**
   * Runs the parts of the next `calls` split calls on the calling thread alone, with the workers asleep: the
   * same parts as a split call, so the same bits, at the speed of one thread without a polling worker
   * beside it. The pool does this itself when its workers fall behind (stand_down.ts); a hold resumes
   * after the last of them.
   *
   * @example
   * ```ts ignore
   * la.standDown(512);
   * ```
   *
   * @param calls split calls (0 ends a stand-down now)
   */
  standDown(calls: number): void;
  /**
   * Keeps the workers awake until the matching {@link PooledBackend.release}: between the split calls of
   * one step a worker polls for the next operation instead of sleeping (and sleeps anyway after
   * pool_ops.ts HOLD_MAX_IDLE_MS without one). Holds nest; a worker asleep is woken now, so its wake-up
   * overlaps the caller's own work. Hold around a step, not between steps: a polling worker takes a core.
   *
   * @example
   * ```ts ignore
   * la.hold();
   * try { step(); } finally { la.release(); }
   * ```
   */
  hold(): void;
  /** Ends a {@link PooledBackend.hold} (the outermost one lets the workers sleep). */
  release(): void;
  /**
   * Starts the split call that `call` makes (one call of this backend: a product, a row call or a kernel
   * run) without taking a part of it, and returns at once: the workers take its parts while the caller
   * does work of its own that neither reads what the call writes nor writes what it reads, then
   * {@link PooledBackend.join}s, taking the parts left. A call below the split sizes runs whole inside
   * defer(), as it would have; `dotRows` and `ssyr2k`, which finish their results after the parts, are
   * refused. No other split call, shared allocation or kernel registration of this backend may come before
   * the join (they throw); unsplit calls may (OpenBLAS stays on one thread until the join). A `call` that
   * throws after starting its split is joined before its error is rethrown. For the step's serial
   * JavaScript, which otherwise runs while the workers wait (docs/factored-step.md).
   *
   * @example
   * ```ts ignore
   * la.defer(() => la.sgemm(false, true, m, n, k, 1, A, k, B, k, 0, C, n));
   * try { mergeTargets(); } finally { la.join(); }
   * ```
   *
   * @param call one call of this backend
   */
  defer(call: () => void): void;
  /** Takes the parts left of the call {@link PooledBackend.defer} started and waits for the rest (a no-op without one). */
  join(): void;
  /** Whether a call {@link PooledBackend.defer} started still waits for its {@link PooledBackend.join}. */
  readonly deferred: boolean;
  /**
   * Runs `call` with any {@link PooledBackend.hold} paused, so that the workers sleep through it: for a
   * caller's large calls on OpenBLAS's own threads (the factored layer's upkeep), whose threads would
   * otherwise share their cores with polling workers (a split call or kernel run inside it still runs
   * on the pool, waking the workers for it). The hold resumes after it (the next split call wakes the
   * workers) if one is still open then; unheld() inside unheld() and hold() inside it leave the
   * workers sleeping until the outermost unheld() returns. `call` must do its work synchronously: an async
   * one's work after its first await would run held.
   *
   * @example
   * ```ts ignore
   * la.unheld(() => upkeep());
   * ```
   *
   * @param call the work
   * @returns what call returns
   */
  unheld<T>(call: () => T): T;
  /**
   * With `partTimes: true` at creation: per thread (0 = the caller), operation and kernel mode, the
   * milliseconds spent in parts and the parts run since the start or the last reset (rows with no part
   * left out); null otherwise. For profiles: what each thread's share of a split call costs (bench/layers.ts
   * `--profile`).
   */
  partTimes(): PartTime[] | null;
  /** Zeroes the part times (call between split calls). */
  resetPartTimes(): void;
  /**
   * A zeroed float64 array on the shared memory (for a kernel's per-example scalars).
   *
   * @param n length
   */
  sharedF64(n: number): Float64Array;
  /**
   * A zeroed int32 array on the shared memory (for a kernel's indices).
   *
   * @param n length
   */
  sharedI32(n: number): Int32Array;
  /**
   * The id under which kernels find `a`'s buffer (`views.f32[id]`, `f64`, `i32`), or -1 when `a` is not on
   * this pool's shared memory. A kernel reads the whole buffer: pass arrays that start at its offset 0.
   *
   * @param a an array
   */
  sharedId(a: ArrayBufferView): number;
  /**
   * Registers a kernel module: each worker imports `url` and calls its `createKernel(init)` (now, or
   * when the workers start); `local` is the same kernel for the calling thread's parts. Returns its id.
   * Throws when a worker cannot load it.
   *
   * @param url module URL (`new URL("./x_kernel.ts", import.meta.url).href`)
   * @param init structured-cloneable options for createKernel
   * @param local the kernel on this thread (`createKernel(init)` of the same module)
   */
  registerKernel(url: string, init: unknown, local: PoolKernel): number;
  /**
   * The kernel arguments of the next {@link PooledBackend.runKernel} (pool_ops.ts KERNEL_ARGS on): write
   * them here first, then run.
   */
  readonly kernelArgs: Float64Array;
  /**
   * Runs kernel `id` split into parts (2 per thread) over `items` (the kernel decides what a part does
   * with them); arguments from {@link PooledBackend.kernelArgs}. Returns when every part is done; throws
   * what a part threw.
   *
   * @param id from registerKernel
   * @param items the problem's size, passed to the kernel as p[1]
   */
  runKernel(id: number, items: number): void;
}

/**
 * Whether `la` is a pooled backend (it can run kernels on shared memory).
 *
 * @example
 * ```ts
 * import { isPooled } from "./pool.ts";
 * import { createJsBackend } from "./js.ts";
 * console.log(isPooled(createJsBackend())); // false
 * ```
 *
 * @param la a backend, or anything
 * @returns true for a {@link PooledBackend}
 */
export function isPooled(la: unknown): la is PooledBackend {
  return typeof la === "object" && la !== null && "runKernel" in la && "sharedId" in la;
}

/**
 * Wraps `base` (OpenBLAS with `base.threads` threads) so that its large calls on shared memory run on
 * `parts` threads.
 *
 * @example
 * ```ts ignore
 * import { openBlasBackend } from "./blas.ts";
 * import { createPooledBackend } from "./pool.ts";
 * const la = createPooledBackend(openBlasBackend(), 2);
 * const A = la.sharedF32(256 * 256), C = la.sharedF32(256 * 256);
 * la.sgemm(false, false, 256, 256, 256, 1, A, 256, A, 256, 0, C, 256); // split in two
 * la.close();
 * ```
 *
 * @param base the plain backend (owned: closed by close())
 * @param parts threads per split call (≥ 2)
 * @param opts spin: iterations a waiting thread polls before it sleeps (default 2000); callerSpinMs: how
 *   long the calling thread then keeps polling for the workers' parts before it sleeps (default
 *   {@link POOL_CALLER_SPIN_MS}); hold: false makes {@link PooledBackend.hold} do nothing (the workers
 *   sleep between split calls; select.ts: FACTOROUT_POOL_HOLD=0); partTimes: time each thread's parts
 *   ({@link PooledBackend.partTimes}); standDown: false keeps the workers from standing down when they fall
 *   behind (stand_down.ts), for measurements of the split itself (bench/linalg.ts `--pool`) and tests of
 *   wake-ups ({@link PooledBackend.standDown} still works)
 * @returns the backend
 */
export function createPooledBackend(
  base: BlasBackend,
  parts: number,
  opts: { spin?: number; callerSpinMs?: number; hold?: boolean; partTimes?: boolean; standDown?: boolean } =
    {},
): PooledBackend {
  if (!Number.isInteger(parts) || parts < 2) {
    throw new RangeError(`parts must be an integer ≥ 2, got ${parts}`);
  }
  const spin = opts.spin ?? 2000, callerSpinMs = opts.callerSpinMs ?? POOL_CALLER_SPIN_MS;
  const holdOn = opts.hold ?? true;
  const lib = Deno.dlopen(base.path, {
    cblas_sgemm: SYMBOLS.cblas_sgemm,
    cblas_dgemm: SYMBOLS.cblas_dgemm,
    cblas_strsm: SYMBOLS.cblas_strsm,
    cblas_saxpy: SYMBOLS.cblas_saxpy,
    cblas_sdot: SYMBOLS.cblas_sdot,
    cblas_ssyr2k: SYMBOLS.cblas_ssyr2k,
    cblas_somatcopy: SYMBOLS.cblas_somatcopy,
    cblas_dgemv: SYMBOLS.cblas_dgemv,
    cblas_dsyrk: SYMBOLS.cblas_dsyrk,
    openblas_set_num_threads: SYMBOLS.openblas_set_num_threads,
  });
  const sym = lib.symbols as unknown as PartSymbols;
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_LEN * 4));
  const parSab = new SharedArrayBuffer(PAR_LEN * 8), par = new Float64Array(parSab);
  const views: SharedViews = { f32: [], f64: [], i32: [], kernels: [] };
  const timesSab = opts.partTimes ? new SharedArrayBuffer(parts * PART_TIME_SLOTS * 8) : null;
  const times = timesSab ? new Float64Array(timesSab) : null;
  if (times) views.times = times.subarray(0, PART_TIME_SLOTS);
  const kernelSpecs: KernelSpec[] = [];
  const bufs: SharedArrayBuffer[] = [];
  const ids = new WeakMap<ArrayBufferLike, number>();
  let workers: Worker[] = [];
  let started = false, closed = false, splitCalls = 0, rowSplitCalls = 0, kernelCalls = 0;
  let wakeups = 0, holds = 0;
  // stand-downs (stand_down.ts): split calls left to run on the caller alone
  const watch = opts.standDown === false ? null : new StandDownWatch(parts);
  let soloLeft = 0, standDowns = 0, callerOnlyCalls = 0;
  /** Inside an unheld() call: the hold flag stays off until the outermost one returns. */
  let paused = false;
  let failed: Error | null = null;

  const waitDone = (n: number, timeoutMs = Infinity): boolean => {
    const t0 = performance.now();
    for (let i = 0; i < spin; i++) if (Atomics.load(ctl, CTL_DONE) >= n) return true;
    // then poll for up to callerSpinMs more: a thread that sleeps gives up its core, and on a machine with
    // more runnable threads than cores it waits a scheduler time slice (milliseconds) to get one back, far
    // longer than the part it waits for (tens of µs)
    while (performance.now() - t0 < callerSpinMs) if (Atomics.load(ctl, CTL_DONE) >= n) return true;
    for (;;) {
      const c = Atomics.load(ctl, CTL_DONE);
      if (c >= n) return true;
      const left = timeoutMs - (performance.now() - t0);
      if (left <= 0) return false;
      Atomics.wait(ctl, CTL_DONE, c, Math.min(left, 1000));
    }
  };
  /**
   * Starts operation `op` (parameters already in `par`) split into `n` parts (0: a control message); `wake`
   * false leaves the sleeping workers asleep (the caller runs the parts).
   */
  const signal = (op: number, n = 0, wake = true) => {
    const seq = (Atomics.load(ctl, CTL_SEQ) + 1) | 0;
    if (wake && Atomics.load(ctl, CTL_ASLEEP) > 0) wakeups++;
    Atomics.store(ctl, CTL_DONE, 0);
    // the new tag before the new part count: a worker still in claimParts for the last operation, which
    // read its exhausted CTL_NEXT, must not see a larger part count and claim a part with the old tag
    Atomics.store(ctl, CTL_NEXT, seqTag(seq) << 8);
    Atomics.store(ctl, CTL_OP, op);
    Atomics.store(ctl, CTL_PARTS, n);
    Atomics.store(ctl, CTL_SEQ, seq);
    if (wake) Atomics.notify(ctl, CTL_SEQ);
    return seq;
  };
  const start = () => {
    started = true;
    Atomics.store(ctl, CTL_DONE, 0);
    const url = new URL("./pool_worker.ts", import.meta.url).href;
    workers = Array.from({ length: parts - 1 }, (_, i) => {
      const wk = new Worker(new URL(url));
      wk.postMessage({
        path: base.path,
        ctl: ctl.buffer,
        par: parSab,
        spin,
        bufs,
        kernels: kernelSpecs,
        times: timesSab,
        thread: i + 1,
      });
      return wk;
    });
    if (!waitDone(parts - 1, START_TIMEOUT_MS)) {
      failed = new Error(`the ${parts - 1} pool workers did not start within ${START_TIMEOUT_MS / 1000} s`);
      throw failed;
    }
    if (Atomics.exchange(ctl, CTL_ERR, 0) !== 0) {
      failed = new Error("pool: a worker could not load a kernel module (its reason is on stderr)");
      throw failed;
    }
    // a waiting worker must not keep the process alive (a layer that is never closed)
    for (const wk of workers) wk.unref();
  };
  const register = (b: SharedArrayBuffer) => {
    ids.set(b, bufs.length);
    bufs.push(b);
    views.f32.push(new Float32Array(b));
    views.f64.push(b.byteLength % 8 === 0 ? new Float64Array(b) : null);
    views.i32.push(new Int32Array(b));
    if (started && !failed) {
      signal(OP_RECEIVE);
      for (const wk of workers) wk.postMessage({ bufs: [b] });
      if (!waitDone(parts - 1, START_TIMEOUT_MS)) {
        throw new Error("the pool workers did not take a new buffer");
      }
    }
  };
  // the row indices and the coefficients (or results) of a split sparse row call, copied here so that
  // the callers' own arrays need not be shared: [xRows | yRows] and alpha (or out), n entries each
  let rowIdx: Int32Array<ArrayBufferLike> = new Int32Array(0), rowIdxId = -1;
  let rowVal: Float64Array<ArrayBufferLike> = new Float64Array(0), rowValId = -1;
  const rowScratch = (n: number) => {
    if (rowIdx.length >= 2 * n) return;
    const cap = Math.max(2 * n, 2 * rowIdx.length, 1024);
    const bi = new SharedArrayBuffer(4 * cap), bv = new SharedArrayBuffer(8 * (cap / 2));
    register(bi);
    register(bv);
    rowIdx = new Int32Array(bi);
    rowIdxId = ids.get(bi)!;
    rowVal = new Float64Array(bv);
    rowValId = ids.get(bv)!;
  };
  /** Copies entries [first, first + n) of the two index arrays to the scratch (rows checked by the caller). */
  const rowsToScratch = (aRows: Int32Array, bRows: Int32Array, n: number, first: number) => {
    rowScratch(n);
    rowIdx.set(aRows.subarray(first, first + n));
    rowIdx.set(bRows.subarray(first, first + n), n);
  };
  /** Whether a sparse row call of n rows of d is split: shared operands, cblas rows, large enough. */
  const splitsRows = (op: "dots" | "scatter", a: number, b: number, n: number, d: number) =>
    a >= 0 && b >= 0 && d >= SAXPY_MIN_WIDTH && n >= 8 && splits(op, n * d);
  /** id of the shared buffer under `a` and a's offset in elements, or -1. */
  const where = (a: F32 | F64): number => ids.get(a.buffer) ?? -1;
  /** Runs `call` with OpenBLAS on one thread. */
  const oneThread = (call: () => void) => {
    if (base.threads <= 1) return call();
    lib.symbols.openblas_set_num_threads(1);
    try {
      call();
    } finally {
      lib.symbols.openblas_set_num_threads(base.threads);
    }
  };
  /** Sets the hold flag where a hold is open and neither unheld() nor a stand-down keeps it off. */
  const resumeHold = () => {
    if (holds > 0 && !paused && !closed && soloLeft === 0) Atomics.store(ctl, CTL_HOLD, 1);
  };
  const standDown = (calls: number) => {
    soloLeft = calls;
    // a polling worker goes to sleep (pool_worker.ts); the last caller-only call resumes a hold
    if (calls > 0) Atomics.store(ctl, CTL_HOLD, 0);
    else resumeHold();
  };
  // defer(): the next run() starts its operation and returns; join() finishes it (deferredTag ≥ 0)
  let deferring = false, deferredTag = -1, deferredOp = 0, deferredParts = 0, deferredSolo = false;
  /** Throws when a deferred call still runs: its parts read the parameter block that a new call writes. */
  const idle = () => {
    if (deferredTag >= 0) throw new Error("pool: a deferred split call is still running; join() first");
  };
  const run = (op: number) => {
    if (closed) throw new Error("pool: the backend was closed; create a new one");
    idle();
    if (!started) start();
    if (failed) throw failed;
    splitCalls++;
    if (base.threads > 1) lib.symbols.openblas_set_num_threads(1);
    // held workers are polling: one part each (smaller parts run slower); else PARTS_PER_THREAD, so
    // that a worker slow to wake only takes fewer parts
    const n = Math.min(255, parts * (holds > 0 ? 1 : PARTS_PER_THREAD)); // CTL_NEXT counts parts in 8 bits
    // stood down: the same parts (so the same bits), the workers left asleep; a worker still polling
    // may take one, and waitDone counts it
    const solo = soloLeft > 0;
    const tag = seqTag(signal(op, n, !solo));
    if (deferring) {
      // OpenBLAS stays on one thread until the join: the workers' calls share its thread count
      deferring = false;
      deferredTag = tag;
      deferredOp = op;
      deferredParts = n;
      deferredSolo = solo;
      return;
    }
    finish(op, tag, n, solo);
  };
  /** The caller's side of a started operation: its parts, the wait, the stand-down watch, errors. */
  const finish = (op: number, tag: number, n: number, solo: boolean) => {
    try {
      const mine = claimParts(sym, views, ctl, par, tag);
      waitDone(n);
      if (solo) {
        callerOnlyCalls++;
        if (soloLeft > 0 && --soloLeft === 0) resumeHold();
      } else if (watch && holds > 0 && !paused) {
        // only held calls count: between holds (and in unheld()) the workers sleep by design, and the
        // caller takes the parts of a worker that is still waking
        const calls = watch.seen(mine, n);
        if (calls > 0) {
          standDowns++;
          standDown(calls);
        }
      }
    } finally {
      if (base.threads > 1) lib.symbols.openblas_set_num_threads(base.threads);
    }
    if (Atomics.exchange(ctl, CTL_ERR, 0) !== 0) {
      const e = views.error;
      views.error = undefined;
      throw e ?? new Error(`pool: a part of operation ${op} threw on a worker thread`);
    }
  };
  const sharedBuffer = (bytes: number) => {
    idle(); // register() signals OP_RECEIVE to started workers, which would take a deferred call's place
    const b = new SharedArrayBuffer(Math.max(8, Math.ceil(bytes / 8) * 8));
    register(b);
    return b;
  };
  const gemm = (
    op: number,
    tA: boolean,
    tB: boolean,
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
  ): "split" | "small" | "plain" => {
    idle();
    const a = where(A), b = where(B), c = where(C);
    if (a < 0 || b < 0 || c < 0) return "plain";
    // a small call on shared memory (the split caller's own): one OpenBLAS thread, whose threading does
    // not pay at these sizes; the caller runs it
    if (!splits("gemm", 2 * M * N * K) || M === 1 || N === 1) return "small";
    checkGemm(op === OP_SGEMM ? "sgemm" : "dgemm", tA, tB, M, N, K, A, lda, B, ldb, C, ldc);
    const s = A.BYTES_PER_ELEMENT;
    par.set([
      tA ? 1 : 0,
      tB ? 1 : 0,
      M,
      N,
      K,
      alpha,
      a,
      A.byteOffset / s,
      lda,
      b,
      B.byteOffset / s,
      ldb,
      beta,
      c,
      C.byteOffset / s,
      ldc,
      N >= M ? 1 : 0,
    ]);
    run(op);
    return "split";
  };

  const pooled: PooledBackend = {
    ...base,
    parts,
    get splitCalls() {
      return splitCalls;
    },
    get rowSplitCalls() {
      return rowSplitCalls;
    },
    get kernelCalls() {
      return kernelCalls;
    },
    get wakeups() {
      return wakeups;
    },
    get standDowns() {
      return standDowns;
    },
    get callerOnlyCalls() {
      return callerOnlyCalls;
    },
    standDown(calls: number) {
      if (!Number.isInteger(calls) || calls < 0) {
        throw new RangeError(`standDown: calls must be an integer ≥ 0, got ${calls}`);
      }
      standDown(calls);
    },
    hold() {
      if (!holdOn) return;
      // paused: unheld() sets the flag when it returns; stood down: the last caller-only call does
      if (holds++ > 0 || closed || paused || soloLeft > 0) return;
      Atomics.store(ctl, CTL_HOLD, 1);
      if (started && Atomics.load(ctl, CTL_ASLEEP) > 0) {
        wakeups++;
        Atomics.notify(ctl, CTL_SEQ); // the worker finds no new operation and polls (pool_worker.ts)
      }
    },
    partTimes() {
      if (!times) return null;
      const rows: PartTime[] = [];
      for (let t = 0; t < parts; t++) {
        for (let k = 0; k < PART_TIME_SLOTS; k += 2) {
          const n = times[t * PART_TIME_SLOTS + k + 1];
          if (n > 0) {
            rows.push({
              thread: t,
              op: k >> 5,
              mode: (k >> 1) & 15,
              ms: times[t * PART_TIME_SLOTS + k],
              parts: n,
            });
          }
        }
      }
      return rows;
    },
    resetPartTimes() {
      times?.fill(0);
    },
    get deferred() {
      return deferredTag >= 0;
    },
    defer(call: () => void) {
      idle();
      deferring = true;
      try {
        call();
      } catch (e) {
        // a call that started its split and then threw (or made a second call): its parts are joined first,
        // and the call's own error is the one reported
        if (deferredTag >= 0) {
          try {
            pooled.join();
          } catch { /* reported below */ }
        }
        throw e;
      } finally {
        // a call that did not split ran whole inside call(): nothing to join
        deferring = false;
      }
    },
    join() {
      if (deferredTag < 0) return;
      const tag = deferredTag;
      deferredTag = -1;
      finish(deferredOp, tag, deferredParts, deferredSolo);
    },
    unheld<T>(call: () => T): T {
      if (holds === 0 || closed || paused) return call();
      paused = true;
      Atomics.store(ctl, CTL_HOLD, 0);
      try {
        return call();
      } finally {
        paused = false;
        // the hold resumes only if one is still open (call may have released it, or closed the pool)
        resumeHold();
      }
    },
    release() {
      if (!holdOn) return;
      if (holds === 0) throw new Error("pool: release() without a matching hold()");
      if (--holds === 0) Atomics.store(ctl, CTL_HOLD, 0);
    },
    sharedF32(n: number): Float32Array {
      return new Float32Array(sharedBuffer(4 * n), 0, n);
    },
    sharedF64(n: number): Float64Array {
      return new Float64Array(sharedBuffer(8 * n), 0, n);
    },
    sharedI32(n: number): Int32Array {
      return new Int32Array(sharedBuffer(4 * n), 0, n);
    },
    sharedId(a: ArrayBufferView): number {
      return a.byteOffset === 0 ? ids.get(a.buffer) ?? -1 : -1;
    },
    registerKernel(url: string, init: unknown, local: PoolKernel): number {
      if (closed) throw new Error("pool: the backend was closed; create a new one");
      idle();
      const spec: KernelSpec = { id: kernelSpecs.length, url, init };
      kernelSpecs.push(spec);
      views.kernels[spec.id] = local;
      if (started && !failed) {
        signal(OP_RECEIVE);
        for (const wk of workers) wk.postMessage({ bufs: [], kernels: [spec] });
        if (!waitDone(parts - 1, START_TIMEOUT_MS)) throw new Error("the pool workers did not load a kernel");
        if (Atomics.exchange(ctl, CTL_ERR, 0) !== 0) {
          kernelSpecs.pop();
          views.kernels[spec.id] = null;
          throw new Error(`pool: a worker could not load the kernel ${url} (its reason is on stderr)`);
        }
      }
      return spec.id;
    },
    kernelArgs: par.subarray(KERNEL_ARGS),
    runKernel(id: number, items: number) {
      idle();
      if (!views.kernels[id]) throw new RangeError(`runKernel: no kernel ${id}; register it first`);
      par[0] = id;
      par[1] = items;
      kernelCalls++;
      run(OP_KERNEL);
    },
    sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      const how = gemm(OP_SGEMM, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      if (how === "plain") base.sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      else if (how === "small") {
        oneThread(() => base.sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
      }
    },
    dgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      const how = gemm(OP_DGEMM, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      if (how === "plain") base.dgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      else if (how === "small") {
        oneThread(() => base.dgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
      }
    },
    strsm(trans, N, K, alpha, L, ldl, B, ldb) {
      idle();
      const l = where(L), b = where(B);
      if (l < 0 || b < 0) return base.strsm(trans, N, K, alpha, L, ldl, B, ldb);
      if (!splits("strsm", N * N * K) || K < 32) {
        return oneThread(() => base.strsm(trans, N, K, alpha, L, ldl, B, ldb));
      }
      checkTrsm("strsm", N, K, L, ldl, B, ldb);
      par.set([trans ? 1 : 0, N, K, alpha, l, L.byteOffset / 4, ldl, b, B.byteOffset / 4, ldb]);
      run(OP_STRSM);
    },
    ssyr2k(trans, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      idle();
      // its triangle is mirrored after the parts: not a call to defer
      if (deferring) throw new Error("pool: ssyr2k cannot be deferred");
      const a = where(A), b = where(B), c = where(C);
      if (!trans || a < 0 || b < 0 || c < 0) {
        return base.ssyr2k(trans, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      }
      if (!splits("syr2k", 2 * N * N * K)) {
        return oneThread(() => base.ssyr2k(trans, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
      }
      checkSyr2k("ssyr2k", trans, N, K, A, lda, B, ldb, C, ldc);
      // the parts read C's upper triangle (and the diagonal blocks whole): with beta ≠ 0 it must hold the
      // lower one's values first, the triangle the plain backends read (blas.ts)
      if (beta !== 0) mirrorTriangle(sym.cblas_somatcopy, C, N, ldc, "lower");
      par.set([
        N,
        K,
        alpha,
        a,
        A.byteOffset / 4,
        lda,
        b,
        B.byteOffset / 4,
        ldb,
        beta,
        c,
        C.byteOffset / 4,
        ldc,
      ]);
      run(OP_SYR2K);
      // the parts wrote the upper triangle (and the diagonal blocks whole): mirror it down
      mirrorTriangle(sym.cblas_somatcopy, C, N, ldc, "upper");
    },
    dotRows(A, lda, aRows, B, ldb, bRows, n, d, out, first = 0) {
      idle();
      // its results are copied out after the parts: not a call to defer
      if (deferring) throw new Error("pool: dotRows cannot be deferred");
      const a = where(A), b = where(B);
      if (!splitsRows("dots", a, b, n, d)) {
        const call = () => base.dotRows(A, lda, aRows, B, ldb, bRows, n, d, out, first);
        return a >= 0 && b >= 0 ? oneThread(call) : call();
      }
      checkIndexedRows("dotRows", "A", A, lda, aRows, n, d, first);
      checkIndexedRows("dotRows", "B", B, ldb, bRows, n, d, first);
      checkVector("dotRows", "out", out, first + n);
      rowsToScratch(aRows, bRows, n, first);
      par.set([n, d, a, A.byteOffset / 4, lda, b, B.byteOffset / 4, ldb, rowIdxId, 0, rowValId, 0]);
      rowSplitCalls++;
      run(OP_DOTROWS);
      out.set(rowVal.subarray(0, n), first);
    },
    axpyRows(alpha, X, ldx, xRows, Y, ldy, yRows, n, d, first = 0) {
      idle();
      const x = where(X), y = where(Y);
      const few = n <= 5 && d >= SAXPY_MIN_WIDTH; // a few long rows (the float32 state updates)
      if (!few && splitsRows("scatter", x, y, n, d)) {
        // many rows: split by the row of Y each entry adds to (pool_ops.ts OP_AXPYIDX)
        checkVector("axpyRows", "alpha", alpha, first + n);
        checkIndexedRows("axpyRows", "X", X, ldx, xRows, n, d, first);
        checkIndexedRows("axpyRows", "Y", Y, ldy, yRows, n, d, first);
        rowsToScratch(xRows, yRows, n, first);
        rowVal.set(alpha.subarray(first, first + n));
        par.set([n, d, x, X.byteOffset / 4, ldx, y, Y.byteOffset / 4, ldy, rowIdxId, 0, rowValId, 0]);
        rowSplitCalls++;
        run(OP_AXPYIDX);
        return;
      }
      if (x < 0 || y < 0) return base.axpyRows(alpha, X, ldx, xRows, Y, ldy, yRows, n, d, first);
      if (!few || !splits("saxpy", n * d)) {
        return oneThread(() => base.axpyRows(alpha, X, ldx, xRows, Y, ldy, yRows, n, d, first));
      }
      checkIndexedRows("axpyRows", "X", X, ldx, xRows, n, d, first);
      checkIndexedRows("axpyRows", "Y", Y, ldy, yRows, n, d, first);
      par[0] = n;
      par[1] = d;
      for (let r = 0; r < n; r++) {
        const k = 2 + 5 * r;
        par[k] = alpha[first + r];
        par[k + 1] = x;
        par[k + 2] = X.byteOffset / 4 + xRows[first + r] * ldx;
        par[k + 3] = y;
        par[k + 4] = Y.byteOffset / 4 + yRows[first + r] * ldy;
      }
      run(OP_SAXPY);
    },
    close() {
      if (closed) return;
      // a deferred call's parts may still run on the workers: finished first (its error, if any, dropped)
      if (deferredTag >= 0) {
        try {
          pooled.join();
        } catch { /* closing */ }
      }
      closed = true;
      if (started && !failed) {
        signal(OP_EXIT);
        waitDone(parts - 1, 5000);
      }
      for (const wk of workers) wk.terminate();
      lib.close();
      base.close();
    },
  };
  return pooled;
}
