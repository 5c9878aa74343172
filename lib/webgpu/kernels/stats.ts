/**
 * Per-example statistics of the factored forward pass (ALGORITHM.md §4 step 1), one invocation per
 * example i < m:  q_i = h_i·(Q h_i) = Σ_k H[i,k]·QH[i,k],  s_i = h_i·w̄,  hω_i = h_i·ω.
 *
 * Layouts: H, QH m×d row-major; vecs = [ω (d), w̄ (d)]; out stats[4i..4i+3] = (q_i, s_i, hω_i, 0).
 *
 * @module
 */

import { STEP_WGSL } from "./common.ts";

/**
 * Bindings: 0 H, 1 QH, 2 vecs (read), 3 stats (read_write), 4 step (uniform). Grid: ceil(m/64).
 *
 * @example
 * ```ts
 * import { STATS_WGSL } from "./stats.ts";
 * console.log(STATS_WGSL.includes("fn main"));
 * ```
 */
export const STATS_WGSL = STEP_WGSL + /* wgsl */ `
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read> QH: array<f32>;
@group(0) @binding(2) var<storage, read> vecs: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<uniform> st: Step;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= st.m) { return; }
  let d = st.d;
  var q = 0.0; var s = 0.0; var hw = 0.0;
  for (var k = 0u; k < d; k++) {
    let h = H[i * d + k];
    q += h * QH[i * d + k];
    hw += h * vecs[k];
    s += h * vecs[d + k];
  }
  stats[4u * i] = q; stats[4u * i + 1u] = s; stats[4u * i + 2u] = hw; stats[4u * i + 3u] = 0.0;
}
`;
