/**
 * The sparse update of V and the update of the shared rows ω, w̄ (docs/factored-step.md "One step", steps 8,
 * 9, 11).
 *
 * - SCATTER_V, per V chunk: V[c,:] −= η Σ_{e with row c} ẏ_e · P[i_e,:], where P = H U_new⁻¹ (row i is
 *   (U_new⁻ᵀ h_i)ᵀ). Deterministic without atomics: the host groups the entries by row (CSR over the
 *   unique rows), and one workgroup owns each unique row, summing its entries in a fixed order.
 *   Grid: (min(cnt, 65535), ⌈cnt/65535⌉) over the chunk's unique rows [rLo, rHi).
 * - VEC_UPDATE (the second z-slice of one SCATTER_V dispatch), one invocation per k < d:
 *   ω[k] −= η Σ_i H[i,k] (2 g_q,i hω_i + g_s,i),   w̄[k] −= η Σ_i H[i,k] (𝟙·ẏ_i + 2 g_q,i s_i + D g_s,i).
 * Both are skipped while the singular-step flag is set.
 *
 * @module
 */

import { GUARD_WGSL, STEP_WGSL } from "./common.ts";

/** ω[k] and w̄[k] from the batch (k = the invocation's column). */
const VEC_BODY = /* wgsl */ `
    let d = st.d;
    if (k < d) {
      var aw = 0.0; var ab = 0.0;
      for (var i = 0u; i < st.m; i++) {
        let h = H[i * d + k];
        let g = exOut[4u * i]; let gs = exOut[4u * i + 1u]; let sdy = exOut[4u * i + 2u];
        aw += h * (2.0 * g * stats[4u * i + 2u] + gs);
        ab += h * (sdy + 2.0 * g * stats[4u * i + 1u] + st.D * gs);
      }
      vecs[k] = vecs[k] - st.eta * aw;
      vecs[d + k] = vecs[d + k] - st.eta * ab;
    }`;

/**
 * Bindings: 0 V chunk (read_write), 1 bi, 2 dy, 3 P (read), 4 flag (read), 5 chunk, 6 step (uniform),
 * 7 H, 8 exOut, 9 stats (read), 10 vecs (read_write). Grid: (x, y, z) with x·y ≥ the chunk's unique rows;
 * z = 2 in one of the step's dispatches: its second slice (x·y·64 ≥ d) updates ω and w̄ (VEC_UPDATE).
 *
 * @example
 * ```ts
 * import { SCATTER_V_WGSL } from "./scatter.ts";
 * console.log(SCATTER_V_WGSL.includes("fn main"));
 * ```
 */
export const SCATTER_V_WGSL: string = STEP_WGSL + /* wgsl */ `
struct Chunk { b: u32, rowStart: u32, rowEnd: u32, first: u32 }
@group(0) @binding(0) var<storage, read_write> V: array<f32>;
@group(0) @binding(1) var<storage, read> bi: array<u32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> P: array<f32>;
@group(0) @binding(4) var<storage, read> flag: array<u32>;
@group(0) @binding(5) var<uniform> ch: Chunk;
@group(0) @binding(6) var<uniform> st: Step;
@group(0) @binding(7) var<storage, read> H: array<f32>;
@group(0) @binding(8) var<storage, read> exOut: array<f32>;
@group(0) @binding(9) var<storage, read> stats: array<f32>;
@group(0) @binding(10) var<storage, read_write> vecs: array<f32>;
var<workgroup> wgStop: u32;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${GUARD_WGSL}
  if (wg.z == 1u) {
    // the second slice of the grid updates ω and w̄ (one invocation per column k)
    let k = (wg.y * 65535u + wg.x) * 64u + li;
    ${VEC_BODY}
    return;
  }
  let rLo = bi[st.offChunk + 4u * ch.b + 2u];
  let rHi = bi[st.offChunk + 4u * ch.b + 3u];
  let r = rLo + wg.y * 65535u + wg.x;
  if (r >= rHi) { return; }
  let u0 = bi[st.offRowOff + r];
  let u1 = bi[st.offRowOff + r + 1u];
  let c = bi[st.offEntRow + bi[st.offSorted + u0]] - ch.rowStart;
  let d = st.d;
  for (var k = li; k < d; k += 64u) {
    var acc = 0.0;
    for (var u = u0; u < u1; u++) {
      let e = bi[st.offSorted + u];
      acc += dy[e] * P[bi[st.offEntEx + e] * d + k];
    }
    V[c * d + k] = V[c * d + k] - st.eta * acc;
  }
}
`;
