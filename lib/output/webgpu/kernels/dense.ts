/**
 * The naive (dense) layer's element-wise kernels, per W chunk b of `rows` output rows starting at
 * rowStart. O_b = H W_bᵀ is m×rows row-major (from the gemm); everything here is textbook O(mD) work.
 *
 * - DENSE_STATS: one workgroup per example i: partial q = Σ_j O_b[i,j]², s = Σ_j O_b[i,j] of this chunk,
 *   fixed-order tree reduction, into part[2(b·m + i) + {0,1}].
 * - DENSE_FINISH: one invocation per i: stats[4i..] = (Σ_b q-parts, Σ_b s-parts, 0, 0), chunk order.
 * - GATHER_DENSE: one invocation per merged entry e whose row lies in the chunk: o_e = O_b[i_e, c_e − rowStart].
 * - DENSE_GRAD: ∇O_b[i,j] = 2 g_q,i O_b[i,j] + g_s,i (in place over O_b; m×rows invocations).
 * - SCATTER_DENSE: ∇O_b[i_e, c_e − rowStart] += ẏ_e for the entries of the chunk (each (i, c) pair is
 *   unique after merging, so no two invocations touch one element).
 * - REDUCE_PARTS: out[t] = Σ_{z<Z} parts[z·n + t], in order of z (split-K partials of ∇H = ∇O W).
 *
 * @module
 */

import { STEP_WGSL } from "./common.ts";

const DCHUNK = /* wgsl */ `
struct DChunk { b: u32, rowStart: u32, rows: u32, nb: u32, Z: u32, n: u32, q0: u32, q1: u32 }
`;

/**
 * Bindings: 0 O_b (read), 1 part (read_write), 2 chunk, 3 step. Grid: m.
 *
 * @example
 * ```ts
 * import { DENSE_STATS_WGSL } from "./dense.ts";
 * console.log(DENSE_STATS_WGSL.includes("fn main"));
 * ```
 */
export const DENSE_STATS_WGSL: string = STEP_WGSL + DCHUNK + /* wgsl */ `
@group(0) @binding(0) var<storage, read> O: array<f32>;
@group(0) @binding(1) var<storage, read_write> part: array<f32>;
@group(0) @binding(2) var<uniform> ch: DChunk;
@group(0) @binding(3) var<uniform> st: Step;
var<workgroup> rq: array<f32, 256>;
var<workgroup> rs: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = wg.x;
  var q = 0.0; var s = 0.0;
  for (var j = li; j < ch.rows; j += 256u) { let v = O[i * ch.rows + j]; q += v * v; s += v; }
  rq[li] = q; rs[li] = s;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w >>= 1u) {
    if (li < w) { rq[li] += rq[li + w]; rs[li] += rs[li + w]; }
    workgroupBarrier();
  }
  if (li == 0u) { part[2u * (ch.b * st.m + i)] = rq[0]; part[2u * (ch.b * st.m + i) + 1u] = rs[0]; }
}
`;

/**
 * Bindings: 0 part (read), 1 stats (read_write), 2 chunk (nb used), 3 step. Grid: ceil(m/64).
 *
 * @example
 * ```ts
 * import { DENSE_FINISH_WGSL } from "./dense.ts";
 * console.log(DENSE_FINISH_WGSL.includes("fn main"));
 * ```
 */
export const DENSE_FINISH_WGSL: string = STEP_WGSL + DCHUNK + /* wgsl */ `
@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<uniform> ch: DChunk;
@group(0) @binding(3) var<uniform> st: Step;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= st.m) { return; }
  var q = 0.0; var s = 0.0;
  for (var b = 0u; b < ch.nb; b++) { q += part[2u * (b * st.m + i)]; s += part[2u * (b * st.m + i) + 1u]; }
  stats[4u * i] = q; stats[4u * i + 1u] = s; stats[4u * i + 2u] = 0.0; stats[4u * i + 3u] = 0.0;
}
`;

/**
 * Bindings: 0 O_b, 1 bi (read), 2 o (read_write), 3 chunk, 4 step. Grid: ceil(n/64).
 *
 * @example
 * ```ts
 * import { GATHER_DENSE_WGSL } from "./dense.ts";
 * console.log(GATHER_DENSE_WGSL.includes("fn main"));
 * ```
 */
export const GATHER_DENSE_WGSL: string = STEP_WGSL + DCHUNK + /* wgsl */ `
@group(0) @binding(0) var<storage, read> O: array<f32>;
@group(0) @binding(1) var<storage, read> bi: array<u32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@group(0) @binding(3) var<uniform> ch: DChunk;
@group(0) @binding(4) var<uniform> st: Step;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  if (e >= st.n) { return; }
  let c = bi[st.offEntRow + e];
  if (c < ch.rowStart || c >= ch.rowStart + ch.rows) { return; }
  o[e] = O[bi[st.offEntEx + e] * ch.rows + (c - ch.rowStart)];
}
`;

/**
 * Bindings: 0 O_b (read_write), 1 exOut (read), 2 chunk, 3 step. Grid: (ceil(rows/256), m).
 *
 * @example
 * ```ts
 * import { DENSE_GRAD_WGSL } from "./dense.ts";
 * console.log(DENSE_GRAD_WGSL.includes("fn main"));
 * ```
 */
export const DENSE_GRAD_WGSL: string = STEP_WGSL + DCHUNK + /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> O: array<f32>;
@group(0) @binding(1) var<storage, read> exOut: array<f32>;
@group(0) @binding(2) var<uniform> ch: DChunk;
@group(0) @binding(3) var<uniform> st: Step;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x; let i = gid.y;
  if (j >= ch.rows || i >= st.m) { return; }
  let at = i * ch.rows + j;
  O[at] = 2.0 * exOut[4u * i] * O[at] + exOut[4u * i + 1u];
}
`;

/**
 * Bindings: 0 O_b (read_write), 1 bi, 2 dy (read), 3 chunk, 4 step. Grid: ceil(n/64).
 *
 * @example
 * ```ts
 * import { SCATTER_DENSE_WGSL } from "./dense.ts";
 * console.log(SCATTER_DENSE_WGSL.includes("fn main"));
 * ```
 */
export const SCATTER_DENSE_WGSL: string = STEP_WGSL + DCHUNK + /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> O: array<f32>;
@group(0) @binding(1) var<storage, read> bi: array<u32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<uniform> ch: DChunk;
@group(0) @binding(4) var<uniform> st: Step;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  if (e >= st.n) { return; }
  let c = bi[st.offEntRow + e];
  if (c < ch.rowStart || c >= ch.rowStart + ch.rows) { return; }
  let at = bi[st.offEntEx + e] * ch.rows + (c - ch.rowStart);
  O[at] = O[at] + dy[e];
}
`;

/**
 * Bindings: 0 parts (read), 1 out (read_write), 2 chunk (Z partials of n floats each). Grid: ceil(n/256).
 *
 * @example
 * ```ts
 * import { REDUCE_PARTS_WGSL } from "./dense.ts";
 * console.log(REDUCE_PARTS_WGSL.includes("fn main"));
 * ```
 */
export const REDUCE_PARTS_WGSL: string = DCHUNK + /* wgsl */ `
@group(0) @binding(0) var<storage, read> parts: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> ch: DChunk;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= ch.n) { return; }
  var acc = 0.0;
  for (var z = 0u; z < ch.Z; z++) { acc += parts[z * ch.n + t]; }
  out[t] = acc;
}
`;
