/**
 * One tiled gemm dispatch, shared by the GPU naive and factored layers: picks the tile for the shape,
 * builds (or reuses) the pipeline, the uniform and the bind group under `key`, and dispatches the grid.
 * Layout and semantics are those of {@link gemmWgsl} (row-major C = op(A)·op(B) as set by `p`).
 *
 * @module
 */

import { chooseTile, gemmGrid, type GemmParams, gemmWgsl, packGemm } from "./kernels/gemm.ts";
import type { Runner } from "./runner.ts";

/**
 * Encodes C = op(A)·op(B) (parameters `p`, see kernels/gemm.ts) on the runner's current pass.
 * `flag` is the status buffer the kernel may raise (a layer's error flag, or a dummy one).
 *
 * @example
 * ```ts ignore
 * dispatchGemm(runner, "hhat", false, true, H, U, Hhat, params, flag);
 * ```
 */
export function dispatchGemm(
  r: Runner,
  key: string,
  tA: boolean,
  tB: boolean,
  A: GPUBuffer,
  B: GPUBuffer,
  C: GPUBuffer,
  p: GemmParams,
  flag: GPUBuffer,
): void {
  const tile = chooseTile(p);
  const pipe = r.pipeline(`gemm${tA ? "T" : "N"}${tB ? "T" : "N"}${tile}`, () => gemmWgsl(tA, tB, tile));
  const u = r.uniform(`g:${key}`, packGemm(p));
  r.dispatch(pipe, r.group(`g:${key}`, pipe, [A, B, C, u, flag]), ...gemmGrid(p, tile));
}
