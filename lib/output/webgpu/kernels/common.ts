/**
 * The per-step uniform block shared by the factored layer's kernels, and the packed layout of a batch's
 * integer arrays on the GPU.
 *
 * Batch integers (one u32 storage buffer `bi`, sections at the offsets in {@link STEP_WGSL}):
 * - exOff[m+1]: example i owns merged entries exOff[i] … exOff[i+1]-1 (sorted by row within an example)
 * - entEx[n]: the example of entry e;  entRow[n]: its target row c (0 ≤ c < D)
 * - sorted[n]: entries sorted by (row, entry): the gather/scatter order; rows of one V chunk are contiguous
 * - rowOff[nU+1]: unique row r owns sorted[rowOff[r]] … sorted[rowOff[r+1]-1]
 * - chunk[4·nb]: for V chunk b: [eLo, eHi) range of `sorted`, [rLo, rHi) range of unique rows
 *
 * Per-example floats: stats[4i..] = (q_i, s_i, hω_i = h_i·ω, 0); exOut[4i..] = (g_q, g_s, 𝟙·ẏ_i, L_i).
 *
 * @module
 */

/**
 * WGSL declaration of the per-step uniform `Step` (80 bytes).
 *
 * @example
 * ```ts
 * import { STEP_WGSL } from "./common.ts";
 * console.log(STEP_WGSL.includes("struct Step"));
 * ```
 */
export const STEP_WGSL: string = /* wgsl */ `
struct Step {
  m: u32, n: u32, nU: u32, d: u32,
  offExOff: u32, offEntEx: u32, offEntRow: u32, offSorted: u32,
  offRowOff: u32, offChunk: u32, slot: u32, stepNo: u32,
  eta: f32, D: f32, eps: f32, za: f32,
  zb: f32, p0: u32, p1: u32, p2: u32,
}
`;

/** Size in bytes of the `Step` uniform. */
export const STEP_BYTES = 80;

/**
 * The values of one `Step` uniform.
 *
 * @example
 * ```ts
 * import { packStep, type StepUniform } from "./common.ts";
 * const s: StepUniform = { m: 1, n: 1, nU: 1, d: 4, offExOff: 0, offEntEx: 2, offEntRow: 3, offSorted: 4,
 *   offRowOff: 5, offChunk: 7, slot: 0, stepNo: 0, eta: 0.1, D: 10, eps: 1e-6, za: 0.1, zb: 10 };
 * const bytes = packStep(s);
 * ```
 */
export type StepUniform = {
  m: number;
  n: number;
  nU: number;
  d: number;
  offExOff: number;
  offEntEx: number;
  offEntRow: number;
  offSorted: number;
  offRowOff: number;
  offChunk: number;
  slot: number;
  stepNo: number;
  eta: number;
  D: number;
  eps: number;
  za: number;
  zb: number;
};

/**
 * Packs a {@link StepUniform} into the 80-byte layout of {@link STEP_WGSL}.
 *
 * @example
 * ```ts
 * import { packStep } from "./common.ts";
 * const b = packStep({ m: 1, n: 1, nU: 1, d: 4, offExOff: 0, offEntEx: 2, offEntRow: 3, offSorted: 4,
 *   offRowOff: 5, offChunk: 7, slot: 0, stepNo: 0, eta: 0.1, D: 10, eps: 1e-6, za: 0.1, zb: 10 });
 * console.log(b.byteLength); // 80
 * ```
 */
export function packStep(s: StepUniform): ArrayBuffer {
  const buf = new ArrayBuffer(STEP_BYTES);
  const u = new Uint32Array(buf), f = new Float32Array(buf);
  u.set([
    s.m,
    s.n,
    s.nU,
    s.d,
    s.offExOff,
    s.offEntEx,
    s.offEntRow,
    s.offSorted,
    s.offRowOff,
    s.offChunk,
    s.slot,
    s.stepNo,
  ]);
  f.set([s.eta, s.D, s.eps, s.za, s.zb], 12);
  return buf;
}

/**
 * WGSL snippet that stops a whole workgroup when the sticky singular-step flag is set (the guarded
 * updates of a refused step, and of every step after it until the host reads the flag, are skipped).
 * Needs `flag: array<u32>` bound and `li` (local_invocation_index) in scope.
 *
 * @example
 * ```ts
 * import { GUARD_WGSL } from "./common.ts";
 * console.log(GUARD_WGSL.length > 0);
 * ```
 */
export const GUARD_WGSL: string = /* wgsl */ `
  if (li == 0u) { wgStop = flag[0]; }
  if (workgroupUniformLoad(&wgStop) != 0u) { return; }
`;
