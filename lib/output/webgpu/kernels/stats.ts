/**
 * Per-example statistics of the factored forward pass (ALGORITHM.md §4 step 1), one workgroup of 64 per
 * example i < m (fixed-order tree reductions over d):
 * q_i = h_i·(Q h_i) = Σ_k H[i,k]·QH[i,k],  s_i = h_i·w̄,  hω_i = h_i·ω.
 *
 * Layouts: H, QH m×d row-major; vecs = [ω (d), w̄ (d)]; out stats[4i..4i+3] = (q_i, s_i, hω_i, 0).
 *
 * @module
 */

import { STEP_WGSL } from "./common.ts";

/**
 * Bindings: 0 H, 1 QH, 2 vecs (read), 3 stats (read_write), 4 step (uniform). Grid: m.
 *
 * @example
 * ```ts
 * import { STATS_WGSL } from "./stats.ts";
 * console.log(STATS_WGSL.includes("fn main"));
 * ```
 */
export const STATS_WGSL: string = STEP_WGSL + /* wgsl */ `
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read> QH: array<f32>;
@group(0) @binding(2) var<storage, read> vecs: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<uniform> st: Step;
var<workgroup> rq: array<f32, 64>;
var<workgroup> rs: array<f32, 64>;
var<workgroup> rw: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = wg.x;
  let d = st.d;
  var q = 0.0; var s = 0.0; var hw = 0.0;
  for (var k = li; k < d; k += 64u) {
    let h = H[i * d + k];
    q += h * QH[i * d + k];
    hw += h * vecs[k];
    s += h * vecs[d + k];
  }
  rq[li] = q; rs[li] = s; rw[li] = hw;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w >>= 1u) {
    if (li < w) { rq[li] += rq[li + w]; rs[li] += rs[li + w]; rw[li] += rw[li + w]; }
    workgroupBarrier();
  }
  if (li == 0u) {
    stats[4u * i] = rq[0]; stats[4u * i + 1u] = rs[0]; stats[4u * i + 2u] = rw[0]; stats[4u * i + 3u] = 0.0;
  }
}
`;
