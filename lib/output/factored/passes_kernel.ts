/**
 * The chunked O(Dd²) passes of passes.ts over V as a kernel of the pooled backend (lib/linalg/pool.ts
 * `registerKernel`), so that the epoch end's health check, the refresh and the layer's start run on every
 * thread: OpenBLAS's own threads gain nothing on one chunk of CHUNK_ROWS rows at d ≈ 256 (BENCHMARKS.md,
 * "The epoch's end on two threads").
 *
 * - `GRAM` (passes.ts `gramOf`): V's rows fall in {@link GRAM_BLOCKS} fixed blocks of whole chunks. A part
 *   takes a range of blocks; for each block it writes the lower triangle of the block's VᵀV (cblas_dsyrk over
 *   float64 copies of its chunks, in order) and the block's column sums into the block's own slot. The
 *   caller adds the slots in block order ({@link addGramSlots}), so the result is the same bits whichever
 *   thread ran which block, and at every thread count.
 * - `MATERIALIZE` (passes.ts `materialize`): out rows = V rows · U + ωᵀ for a range of chunks, each chunk
 *   as the serial pass computes it (a float64 copy, cblas_dgemm, ω added, one rounding).
 *
 * Shapes: V D×d float32 (the pool's shared memory, offset 0); the slots GRAM_BLOCKS × (d² + d) float64;
 * [U | ω] d² + d float64; out D×d float32 (may be V itself).
 *
 * The layering: this module sits beside passes.ts; the pool only loads it by URL in each worker.
 *
 * @module
 */

import {
  CBLAS,
  KERNEL_ARGS,
  partOf,
  type PartSymbols,
  type PoolKernel,
  type SharedViews,
} from "../../linalg/pool_ops.ts";
import type { PooledBackend } from "../../linalg/pool.ts";

/** Kernel modes (argument PASS_MODE). */
export const GRAM = 0, MATERIALIZE = 1;

/**
 * Argument slots (offsets from KERNEL_ARGS): the mode, V's rows, then buffer ids: V, the output (GRAM: the
 * slots; MATERIALIZE: out), [U | ω], and 1 where the pass uses ω (MATERIALIZE) or the column sums (GRAM).
 */
export const PASS_MODE = 0, PASS_ROWS = 1, PASS_V = 2, PASS_OUT = 3, PASS_UW = 4, PASS_SUM = 5;

/**
 * Blocks of V's rows in a split Gram: its most parts at once, and the slots it fills (GRAM_BLOCKS × (d² + d)
 * float64 on the shared memory).
 *
 * @example
 * ```ts
 * import { GRAM_BLOCKS } from "./passes_kernel.ts";
 * console.log(GRAM_BLOCKS); // 16
 * ```
 */
export const GRAM_BLOCKS = 16;

/**
 * The URL the pool's workers import this module from.
 *
 * @example
 * ```ts
 * import { PASSES_KERNEL_URL } from "./passes_kernel.ts";
 * console.log(PASSES_KERNEL_URL.endsWith("passes_kernel.ts")); // true
 * ```
 */
export const PASSES_KERNEL_URL = new URL("./passes_kernel.ts", import.meta.url).href;

/**
 * [first, end) chunk of block b of a Gram over D rows in chunks of `rows`.
 *
 * @example
 * ```ts
 * import { blockChunks } from "./passes_kernel.ts";
 * console.log(blockChunks(0, 5000, 256)); // [ 0, 2 ]: 20 chunks of 256 rows, 2 per block
 * ```
 *
 * @param b block (0 ≤ b < GRAM_BLOCKS)
 * @param D rows of V
 * @param rows rows per chunk
 * @returns the chunks [c0, c1)
 */
export function blockChunks(b: number, D: number, rows: number): [number, number] {
  return partOf(b, GRAM_BLOCKS, Math.ceil(D / rows), 1);
}

/**
 * G = Σ_b (block b's lower triangle), mirrored, and sum = Σ_b (block b's column sums), in block order: the
 * caller's side of a `GRAM` run.
 *
 * @example
 * ```ts
 * import { addGramSlots, GRAM_BLOCKS } from "./passes_kernel.ts";
 * const slots = new Float64Array(GRAM_BLOCKS * 6);
 * slots.set([1, 0, 2, 3, 1, 1], 0); // block 0: G = [1 ·; 2 3], sums [1, 1]
 * slots.set([1, 0, 0, 1, 0, 1], 6); // block 1: G = [1 ·; 0 1], sums [0, 1]
 * const G = new Float64Array(4), sum = new Float64Array(2);
 * addGramSlots(slots, 2, G, sum);
 * console.log(G, sum); // Float64Array(4) [ 2, 2, 2, 4 ] Float64Array(2) [ 1, 2 ]
 * ```
 *
 * @param slots GRAM_BLOCKS × (d² + d)
 * @param d dimension
 * @param G d×d output
 * @param sum d output, or null
 */
export function addGramSlots(
  slots: Float64Array,
  d: number,
  G: Float64Array,
  sum: Float64Array | null,
): void {
  const slot = d * d + d;
  G.fill(0, 0, d * d);
  sum?.fill(0, 0, d);
  for (let b = 0; b < GRAM_BLOCKS; b++) {
    const o = b * slot;
    for (let i = 0; i < d; i++) {
      for (let j = 0, r = i * d; j <= i; j++) G[r + j] += slots[o + r + j];
    }
    if (sum) { for (let c = 0; c < d; c++) sum[c] += slots[o + d * d + c]; }
  }
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) G[j * d + i] = G[i * d + j];
  }
}

/**
 * What each thread's kernel is made from: d and the rows per chunk (passes.ts CHUNK_ROWS); its float64
 * chunk scratch is its own.
 *
 * @example
 * ```ts
 * import type { PassesKernelInit } from "./passes_kernel.ts";
 * const init: PassesKernelInit = { d: 64, rows: 256 };
 * ```
 */
export type PassesKernelInit = { d: number; rows: number };

/**
 * The passes kernel for one thread (the pool calls it as `createKernel` in each worker; ChunkScratch calls
 * it for the calling thread).
 *
 * @example
 * ```ts
 * import { createKernel } from "./passes_kernel.ts";
 * const kernel = createKernel({ d: 4, rows: 256 });
 * console.log(typeof kernel); // "function"
 * ```
 *
 * @param init d
 * @returns the kernel
 */
export function createKernel(init: PassesKernelInit): PoolKernel {
  const d = init.d, rows = init.rows, a = new Float64Array(rows * d), b = new Float64Array(rows * d);
  return (sym: PartSymbols, v: SharedViews, p: Float64Array, w: number, parts: number) => {
    const k = KERNEL_ARGS, D = p[k + PASS_ROWS], V = v.f32[p[k + PASS_V]]!;
    const withSum = p[k + PASS_SUM] === 1;
    if (p[k + PASS_MODE] === GRAM) {
      const slots = v.f64[p[k + PASS_OUT]]!, slot = d * d + d;
      const [b0, b1] = partOf(w, parts, GRAM_BLOCKS, 1);
      for (let blk = b0; blk < b1; blk++) {
        const G = slots.subarray(blk * slot, blk * slot + d * d),
          sum = slots.subarray(blk * slot + d * d, (blk + 1) * slot);
        G.fill(0);
        sum.fill(0);
        const [c0, c1] = blockChunks(blk, D, rows);
        for (let c = c0; c < c1; c++) {
          const n = loadChunk(V, D, d, c * rows, rows, a);
          sym.cblas_dsyrk(CBLAS.ROW_MAJOR, CBLAS.LOWER, CBLAS.TRANS, d, n, 1, a, d, 1, G, d);
          if (withSum) addColumnSums(a, n, d, sum);
        }
      }
      return;
    }
    const out = v.f32[p[k + PASS_OUT]]!, UW = v.f64[p[k + PASS_UW]]!;
    const [c0, c1] = partOf(w, parts, Math.ceil(D / rows), 1);
    for (let c = c0; c < c1; c++) {
      const n = loadChunk(V, D, d, c * rows, rows, a);
      sym.cblas_dgemm(CBLAS.ROW_MAJOR, CBLAS.NO_TRANS, CBLAS.NO_TRANS, n, d, d, 1, a, d, UW, d, 0, b, d);
      storeChunk(b, n, d, c * rows, withSum ? UW : null, d * d, out);
    }
  };
}

/**
 * Rows r0 … r0 + n − 1 of the D×d float32 V into the float64 `a` (n = min(rows, D − r0)): the chunk every
 * pass works on, here and in passes.ts.
 *
 * @example
 * ```ts
 * import { loadChunk } from "./passes_kernel.ts";
 * const a = new Float64Array(4);
 * console.log(loadChunk(Float32Array.of(1, 2, 3, 4, 5, 6), 3, 2, 2, 2, a), a); // 1 Float64Array(4) [ 5, 6, 0, 0 ]
 * ```
 *
 * @param V D×d
 * @param D rows of V
 * @param d dimension
 * @param r0 first row
 * @param rows rows per chunk
 * @param a rows×d output
 * @returns n, the rows loaded
 */
export function loadChunk(
  V: Float32Array,
  D: number,
  d: number,
  r0: number,
  rows: number,
  a: Float64Array,
): number {
  const n = Math.min(rows, D - r0);
  for (let j = 0; j < n * d; j++) a[j] = V[r0 * d + j];
  return n;
}

/**
 * sum += the column sums of the n×d chunk `a` (w̄'s and s = Vᵀ𝟙's pass).
 *
 * @example
 * ```ts
 * import { addColumnSums } from "./passes_kernel.ts";
 * const sum = new Float64Array(2);
 * addColumnSums(Float64Array.of(1, 2, 3, 4), 2, 2, sum);
 * console.log(sum); // Float64Array(2) [ 4, 6 ]
 * ```
 *
 * @param a n×d chunk
 * @param n rows
 * @param d dimension
 * @param sum d, added to
 */
export function addColumnSums(a: Float64Array, n: number, d: number, sum: Float64Array): void {
  for (let i = 0; i < n; i++) {
    for (let c = 0, r = i * d; c < d; c++) sum[c] += a[r + c];
  }
}

/**
 * out's rows r0 … r0 + n − 1 = the float64 chunk `b` + ωᵀ (ω = omega's first d entries from `at`, or 0),
 * rounded once to float32: the end of a chunk of W materialised, here and in passes.ts.
 *
 * @example
 * ```ts
 * import { storeChunk } from "./passes_kernel.ts";
 * const out = new Float32Array(4);
 * storeChunk(Float64Array.of(1, 2), 1, 2, 1, Float64Array.of(0.5, 0.5), 0, out);
 * console.log(out); // Float32Array(4) [ 0, 0, 1.5, 2.5 ]
 * ```
 *
 * @param b n×d chunk
 * @param n rows
 * @param d dimension
 * @param r0 first row of out
 * @param omega ω at `at`, or null for 0
 * @param at ω's offset in omega
 * @param out D×d output
 */
export function storeChunk(
  b: Float64Array,
  n: number,
  d: number,
  r0: number,
  omega: Float64Array | null,
  at: number,
  out: Float32Array,
): void {
  for (let i = 0; i < n; i++) {
    const row = (r0 + i) * d;
    for (let c = 0; c < d; c++) out[row + c] = b[i * d + c] + (omega ? omega[at + c] : 0);
  }
}

/**
 * The split passes of one layer: the kernel registered on its pool, the Gram's slots and [U | ω] on the
 * shared memory (GRAM_BLOCKS × (d² + d) + d² + d float64). passes.ts `gramOf` and `materialize` run through it
 * when their V is on that memory.
 *
 * @example
 * ```ts ignore
 * const split = new PassesSplit(pool, d, CHUNK_ROWS);
 * if (!split.gram(V, D, G, sum)) serialGram();
 * ```
 */
export class PassesSplit {
  readonly #pool: PooledBackend;
  readonly #kernel: number;
  readonly #d: number;
  #slots: Float64Array | undefined;
  #uw: Float64Array | undefined;

  /**
   * Registers the kernel (the workers load it when they start).
   *
   * @param pool the pooled backend
   * @param d dimension
   * @param rows rows per chunk
   */
  constructor(pool: PooledBackend, d: number, rows: number) {
    const init: PassesKernelInit = { d, rows };
    this.#pool = pool;
    this.#d = d;
    this.#kernel = pool.registerKernel(PASSES_KERNEL_URL, init, createKernel(init));
  }

  /**
   * G = VᵀV and sum = Vᵀ𝟙 split by blocks of rows ({@link addGramSlots}); false (nothing done) when V is not
   * on the pool's shared memory.
   *
   * @param V D×d
   * @param D rows
   * @param G d×d output
   * @param sum d output, or null
   * @returns whether it ran
   */
  gram(V: Float32Array, D: number, G: Float64Array, sum: Float64Array | null): boolean {
    const pool = this.#pool, d = this.#d, v = pool.sharedId(V);
    if (v < 0) return false;
    // allocated on first use: a layer whose V is not shared never holds them
    const slots = this.#slots ??= pool.sharedF64(GRAM_BLOCKS * (d * d + d));
    const args = pool.kernelArgs;
    args[PASS_MODE] = GRAM;
    args[PASS_ROWS] = D;
    args[PASS_V] = v;
    args[PASS_OUT] = pool.sharedId(slots);
    args[PASS_UW] = -1;
    args[PASS_SUM] = sum ? 1 : 0;
    pool.runKernel(this.#kernel, GRAM_BLOCKS);
    addGramSlots(slots, d, G, sum);
    return true;
  }

  /**
   * out rows = V rows · U + ωᵀ split by chunks; false (nothing done) when V or out is not on the pool's
   * shared memory.
   *
   * @param V D×d
   * @param D rows
   * @param U d×d
   * @param omega d, or null for 0
   * @param out D×d output (may be V)
   * @returns whether it ran
   */
  materialize(
    V: Float32Array,
    D: number,
    U: Float64Array,
    omega: Float64Array | null,
    out: Float32Array,
  ): boolean {
    const pool = this.#pool, d = this.#d, v = pool.sharedId(V), o = pool.sharedId(out);
    if (v < 0 || o < 0) return false;
    const uw = this.#uw ??= pool.sharedF64(d * d + d);
    uw.set(U.subarray(0, d * d));
    if (omega) uw.set(omega.subarray(0, d), d * d);
    const args = pool.kernelArgs;
    args[PASS_MODE] = MATERIALIZE;
    args[PASS_ROWS] = D;
    args[PASS_V] = v;
    args[PASS_OUT] = o;
    args[PASS_UW] = pool.sharedId(uw);
    args[PASS_SUM] = omega ? 1 : 0;
    pool.runKernel(this.#kernel, D);
    return true;
  }
}
