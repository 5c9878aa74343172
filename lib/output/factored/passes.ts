/**
 * The chunked O(Dd²) passes over V, accumulated in float64: W materialised ({@link materialize}), the
 * fold V ← V U + 𝟙ωᵀ ({@link foldInto}) and Q = VᵀV, w̄ = Vᵀ𝟙 ({@link gramOf}). Used by the upkeep
 * (refresh), the queries (weights, diagnostics) and the layer's construction.
 *
 * @module
 */

import type { LinAlgBackend } from "../../linalg/backend.ts";
import { isPooled } from "../../linalg/pool.ts";
import { addColumnSums, loadChunk, PassesSplit, storeChunk } from "./passes_kernel.ts";

/** Rows per chunk when V is streamed through float64 scratch. */
export const CHUNK_ROWS = 256;

/**
 * Float64 scratch for the chunked O(Dd²) passes ({@link foldInto}, {@link gramOf}, W materialisation), and
 * with a pooled backend the passes split across its threads (passes_kernel.ts), used where V is on its
 * shared memory.
 *
 * @example
 * ```ts
 * import { ChunkScratch } from "./passes.ts";
 * const s = new ChunkScratch(64);
 * ```
 */
export class ChunkScratch {
  /** CHUNK_ROWS×d input rows. */
  a: Float64Array;
  /** CHUNK_ROWS×d output rows. */
  b: Float64Array;
  /** The passes on the pool's threads (a pooled backend only). */
  readonly split: PassesSplit | undefined;
  /**
   * Allocates two CHUNK_ROWS×d float64 buffers; with a pooled `la`, registers the passes' kernel on it.
   *
   * @param d dimension
   * @param la the layer's backend
   */
  constructor(d: number, la?: LinAlgBackend) {
    this.a = new Float64Array(CHUNK_ROWS * d);
    this.b = new Float64Array(CHUNK_ROWS * d);
    this.split = la && isPooled(la) ? new PassesSplit(la, d, CHUNK_ROWS) : undefined;
  }
}

/**
 * out rows = V rows · U + ωᵀ (W materialised), computed in float64 by chunks and rounded once to float32.
 * `out` may be V itself (the fold). O(Dd²). Where `s` has a pool's split passes and V and out are on its
 * shared memory, the chunks run on every thread (passes_kernel.ts `MATERIALIZE`), each as here.
 *
 * @example
 * ```ts
 * import { materialize, ChunkScratch } from "./passes.ts";
 * import { createJsBackend } from "../../linalg/js.ts";
 * const W = new Float32Array(2);
 * materialize(createJsBackend(), Float32Array.of(1, 2), 1, 2, Float64Array.of(2, 0, 0, 2), Float64Array.of(0, 1), W, new ChunkScratch(2));
 * // W = [2, 5]
 * ```
 *
 * @param la backend (dgemm)
 * @param V D×d
 * @param D rows
 * @param d dimension
 * @param U d×d
 * @param omega d (or null for 0)
 * @param out D×d output
 * @param s scratch
 */
export function materialize(
  la: LinAlgBackend,
  V: Float32Array,
  D: number,
  d: number,
  U: Float64Array,
  omega: Float64Array | null,
  out: Float32Array,
  s: ChunkScratch,
): void {
  if (s.split?.materialize(V, D, U, omega, out)) return;
  for (let r0 = 0; r0 < D; r0 += CHUNK_ROWS) {
    const n = loadChunk(V, D, d, r0, CHUNK_ROWS, s.a);
    la.dgemm(false, false, n, d, d, 1, s.a, d, U, d, 0, s.b, d);
    storeChunk(s.b, n, d, r0, omega, 0, out);
  }
}

/**
 * Folds U and ω into V: V ← V U + 𝟙ωᵀ (float64 accumulation, one rounding), U ← I, U⁻ᵀ ← I, ω ← 0.
 * W is unchanged up to that one float32 rounding. O(Dd²).
 *
 * @example
 * ```ts
 * import { foldInto, ChunkScratch } from "./passes.ts";
 * import { createJsBackend } from "../../linalg/js.ts";
 * const V = Float32Array.of(1, 2), U = Float64Array.of(2, 0, 0, 2), Uinvt = Float64Array.of(0.5, 0, 0, 0.5);
 * foldInto(createJsBackend(), V, 1, 2, U, Uinvt, null, new ChunkScratch(2)); // V = [2, 4], U = I
 * ```
 *
 * @param la backend
 * @param V D×d, updated
 * @param D rows
 * @param d dimension
 * @param U d×d, set to I
 * @param Uinvt d×d, set to I
 * @param omega d, set to 0 (or null)
 * @param s scratch
 */
export function foldInto(
  la: LinAlgBackend,
  V: Float32Array,
  D: number,
  d: number,
  U: Float64Array,
  Uinvt: Float64Array,
  omega: Float64Array | null,
  s: ChunkScratch,
): void {
  materialize(la, V, D, d, U, omega, V, s);
  U.fill(0);
  Uinvt.fill(0);
  for (let k = 0; k < d; k++) U[k * d + k] = Uinvt[k * d + k] = 1;
  omega?.fill(0);
}

/**
 * G = AᵀA (d×d) and, when `sum` is given, sum = Aᵀ𝟙, for the D×d float32 A, accumulated in float64 by
 * chunks (dsyrk, symmetric by construction). O(Dd²). Where `s` has a pool's split passes and A is on its
 * shared memory, the chunks fall in fixed blocks summed in order (passes_kernel.ts `GRAM`): the same bits at
 * every thread count, within float64 rounding of this serial loop.
 *
 * @example
 * ```ts
 * import { gramOf, ChunkScratch } from "./passes.ts";
 * import { createJsBackend } from "../../linalg/js.ts";
 * const G = new Float64Array(4), sum = new Float64Array(2);
 * gramOf(createJsBackend(), Float32Array.of(1, 2, 3, 4), 2, 2, G, sum, new ChunkScratch(2)); // G = [10, 14, 14, 20]
 * ```
 *
 * @param la backend
 * @param A D×d
 * @param D rows
 * @param d dimension
 * @param G d×d output
 * @param sum d output or null
 * @param s scratch
 */
export function gramOf(
  la: LinAlgBackend,
  A: Float32Array,
  D: number,
  d: number,
  G: Float64Array,
  sum: Float64Array | null,
  s: ChunkScratch,
): void {
  if (s.split?.gram(A, D, G, sum)) return;
  G.fill(0, 0, d * d);
  sum?.fill(0, 0, d);
  for (let r0 = 0; r0 < D; r0 += CHUNK_ROWS) {
    const n = loadChunk(A, D, d, r0, CHUNK_ROWS, s.a);
    // a symmetric rank-n update: half the multiply-adds of the dgemm AᵀA, both triangles written
    la.dsyrk(true, d, n, 1, s.a, d, 1, G, d);
    if (sum) addColumnSums(s.a, n, d, sum);
  }
}
