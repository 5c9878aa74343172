/**
 * Which calls the pooled backend (pool.ts) splits across its threads, and from what size: the one table of
 * split decisions. A call on shared memory below its row's size runs whole on the calling thread with
 * OpenBLAS on one thread; at or above it, split into parts on every thread. The sizes come from the
 * micro-benchmark `deno run -A bench/linalg.ts --pool` (each call at the factored step's shapes, one
 * thread against split with the workers held awake as in a step); BENCHMARKS.md ("Pool split decisions")
 * has the figures behind each row. `Infinity`: never split (it lost at every size measured).
 *
 * Sizes, per operation:
 * - `gemm`: 2·M·N·K flops (sgemm, dgemm; M = 1 or N = 1 never splits);
 * - `strsm`: N·N·K (the triangle's order N, K right-hand sides);
 * - `syr2k`: 2·N·N·K;
 * - `saxpy`: the elements of a few (≤ 5) long rows added at once (the float32 state updates);
 * - `dots`: rows × row length of an indexed dotRows (the target rows' dot products);
 * - `scatter`: rows × row length of an indexed axpyRows over many rows (A = Σ ẏ V rows, the V update).
 *
 * The sizes hold for calls inside a hold (pool.ts `hold`: the workers poll, as during the factored step);
 * a split outside one also pays a futex wake-up (tens of µs here).
 *
 * @module
 */

/** The operations the pooled backend may split. */
export type SplitOp = "gemm" | "strsm" | "syr2k" | "saxpy" | "dots" | "scatter";

/**
 * Smallest size (see the module) at which each operation is split. Benchmarks override an entry to time
 * both paths and restore it; nothing else writes it.
 *
 * @example
 * ```ts
 * import { POOL_SPLIT } from "./pool_split.ts";
 * console.log(2 * 128 * 256 * 256 >= POOL_SPLIT.gemm); // true: the step's m×d×d product at m = 128
 * ```
 */
export const POOL_SPLIT: Record<SplitOp, number> = {
  gemm: 2_000_000,
  strsm: 8_000_000,
  syr2k: 30_000_000,
  saxpy: 131_072,
  dots: 8_192,
  scatter: 200_000,
};

/**
 * Whether a call of `op` of this size is split (the table {@link POOL_SPLIT}).
 *
 * @example
 * ```ts
 * import { splits } from "./pool_split.ts";
 * console.log(splits("gemm", 1000)); // false: too small to pay a synchronisation
 * ```
 *
 * @param op the operation
 * @param size its size, as the module defines it for op
 * @returns true when the call is split
 */
export function splits(op: SplitOp, size: number): boolean {
  return size >= POOL_SPLIT[op];
}
