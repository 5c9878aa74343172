/**
 * The backward pass of the factored layer (docs/factored-step.md "One step", step 5, and the m×m matrix M of
 * step 10).
 *
 * - EPILOGUE (m×d, one invocation per element): with T = A·U from the gemm,
 *   T[i,:] += (𝟙·ẏ_i) ω  (so T_i = Wᵀẏ_i),  ∇H[i,:] = T[i,:] + 2 g_q,i (Qh_i) + g_s,i w̄,
 *   X[i,:] = 2η g_q,i h_i  (the Woodbury factor's left block).
 * - BUILD_M (m×m, one invocation per (i, j)): M = ∇Oᵀ∇O without forming ∇O:
 *   M_ij = ẏ_i·ẏ_j + 2g_j TH_ij + 2g_i TH_ji + 4g_i g_j QHH_ij + g_s,j 𝟙ẏ_i + g_s,i 𝟙ẏ_j
 *          + 2g_i g_s,j s_i + 2g_j g_s,i s_j + D g_s,i g_s,j,
 *   with TH = T Hᵀ (ẏ_i·o_j), QHH = (HQ)Hᵀ, and ẏ_i·ẏ_j by merging the two examples' row-sorted targets.
 *
 * Layouts: all m×d and m×m matrices row-major; vecs = [ω (d), w̄ (d)]; exOut, stats as in common.ts.
 *
 * @module
 */

import { STEP_WGSL } from "./common.ts";

/**
 * Bindings: 0 T (read_write), 1 QH, 2 H, 3 exOut, 4 vecs (read), 5 gradH, 6 X (read_write), 7 step,
 * 8 HF (read_write: ∇H also goes into its rows [m, 2m), the lower half of [H; F] for the Q update).
 * Grid: (ceil(d/16), ceil(m/16)).
 *
 * @example
 * ```ts
 * import { EPILOGUE_WGSL } from "./backward.ts";
 * console.log(EPILOGUE_WGSL.includes("fn main"));
 * ```
 */
export const EPILOGUE_WGSL: string = STEP_WGSL + /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> T: array<f32>;
@group(0) @binding(1) var<storage, read> QH: array<f32>;
@group(0) @binding(2) var<storage, read> H: array<f32>;
@group(0) @binding(3) var<storage, read> exOut: array<f32>;
@group(0) @binding(4) var<storage, read> vecs: array<f32>;
@group(0) @binding(5) var<storage, read_write> G: array<f32>;
@group(0) @binding(6) var<storage, read_write> X: array<f32>;
@group(0) @binding(7) var<uniform> st: Step;
@group(0) @binding(8) var<storage, read_write> HF: array<f32>;
@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x; let i = gid.y; let d = st.d;
  if (k >= d || i >= st.m) { return; }
  let g = exOut[4u * i]; let gs = exOut[4u * i + 1u]; let sdy = exOut[4u * i + 2u];
  let at = i * d + k;
  let t = T[at] + sdy * vecs[k];
  T[at] = t;
  let gh = t + 2.0 * g * QH[at] + gs * vecs[d + k];
  G[at] = gh;
  HF[st.m * d + at] = gh; // the lower half of [H; F] starts as ∇H (F = −η∇H + (η²/2) M H in place)
  X[at] = 2.0 * st.eta * g * H[at];
}
`;

/**
 * Bindings: 0 bi, 1 dy, 2 exOut, 3 stats, 4 T, 5 QH, 6 H (read), 7 M (read_write), 8 step.
 * Grid: (ceil(m/16), ceil(m/16)). The three m×m products T Hᵀ, QH Hᵀ are formed here, entry by entry (d
 * terms in order), instead of by two gemm dispatches before it.
 *
 * @example
 * ```ts
 * import { BUILD_M_WGSL } from "./backward.ts";
 * console.log(BUILD_M_WGSL.includes("fn main"));
 * ```
 */
export const BUILD_M_WGSL: string = STEP_WGSL + /* wgsl */ `
@group(0) @binding(0) var<storage, read> bi: array<u32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> exOut: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> T: array<f32>;
@group(0) @binding(5) var<storage, read> QH: array<f32>;
@group(0) @binding(6) var<storage, read> H: array<f32>;
@group(0) @binding(7) var<storage, read_write> M: array<f32>;
@group(0) @binding(8) var<uniform> st: Step;
@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x; let i = gid.y; let m = st.m;
  if (i >= m || j >= m) { return; }
  // ẏ_i·ẏ_j over shared target rows (entries of an example are sorted by row, unique).
  var yy = 0.0;
  var a = bi[st.offExOff + i]; let a1 = bi[st.offExOff + i + 1u];
  var b = bi[st.offExOff + j]; let b1 = bi[st.offExOff + j + 1u];
  loop {
    if (a >= a1 || b >= b1) { break; }
    let ra = bi[st.offEntRow + a]; let rb = bi[st.offEntRow + b];
    if (ra == rb) { yy += dy[a] * dy[b]; a++; b++; }
    else if (ra < rb) { a++; } else { b++; }
  }
  let gi = exOut[4u * i]; let gsi = exOut[4u * i + 1u]; let si1 = exOut[4u * i + 2u];
  let gj = exOut[4u * j]; let gsj = exOut[4u * j + 1u]; let sj1 = exOut[4u * j + 2u];
  let si = stats[4u * i + 1u]; let sj = stats[4u * j + 1u];
  let d = st.d;
  var thij = 0.0; var thji = 0.0; var qhh = 0.0;
  for (var k = 0u; k < d; k++) {
    let hi = H[i * d + k]; let hj = H[j * d + k];
    thij = fma(T[i * d + k], hj, thij);
    thji = fma(T[j * d + k], hi, thji);
    qhh = fma(QH[i * d + k], hj, qhh);
  }
  M[i * m + j] = yy + 2.0 * gj * thij + 2.0 * gi * thji + 4.0 * gi * gj * qhh
    + gsj * si1 + gsi * sj1 + 2.0 * gi * gsj * si + 2.0 * gj * gsi * sj + st.D * gsi * gsj;
}
`;
