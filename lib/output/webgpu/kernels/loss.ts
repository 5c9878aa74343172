/**
 * The losses of the spherical family in WGSL (docs/losses.md), mirroring lib/losses/*.ts `fromStats`
 * (same clamps, same degenerate cases) in float32: one invocation per example i < m reads its merged
 * targets' outputs o_e and weights y_e, q_i and s_i, and writes ẏ_e, and exOut[4i..] = (g_q, g_s, 𝟙·ẏ_i, L_i).
 * LOSS_REDUCE then sums L_i over the batch in a fixed order into ring[slot] (the loss stays on the GPU
 * until the host asks for it).
 *
 * @module
 */

import type { LossName } from "../../../core/types.ts";
import { STEP_WGSL } from "./common.ts";

const BODIES: Record<LossName, string> = {
  squared: /* wgsl */ `
  L = q;
  for (var e = e0; e < e1; e++) {
    let y = entY[e]; let oe = o[e];
    L += y * (y - 2.0 * oe);
    let t = -2.0 * y; dy[e] = t; sdy += t;
  }
  g = 1.0; gs = 0.0;`,
  spherical: /* wgsl */ `
  let N = max(q, 0.0) + D * st.eps;
  var Y = 0.0;
  for (var e = e0; e < e1; e++) {
    let y = entY[e]; let oe = o[e];
    let f = oe * oe + st.eps;
    Y += y;
    if (y != 0.0) { L -= y * log(f); }
    let t = -2.0 * y * oe / f; dy[e] = t; sdy += t;
  }
  L += Y * log(N);
  g = Y / N; gs = 0.0;`,
  taylor: /* wgsl */ `
  let N = max(D + s + 0.5 * q, 0.5 * D);
  var Y = 0.0;
  for (var e = e0; e < e1; e++) {
    let y = entY[e]; let oe = o[e];
    let f = 1.0 + oe + 0.5 * oe * oe;
    Y += y;
    if (y != 0.0) { L -= y * log(f); }
    let t = -y * (1.0 + oe) / f; dy[e] = t; sdy += t;
  }
  L += Y * log(N);
  g = Y / (2.0 * N); gs = Y / N;`,
  zloss: /* wgsl */ `
  let a = st.za; let b = st.zb;
  let mu = s / D; let ms = max(q, 0.0) / D;
  let vr = ms - mu * mu;
  if (!(vr > 1e-12 * ms) || !(vr > 0.0)) {
    let l0 = softplus(a * b) / a;
    for (var e = e0; e < e1; e++) { L += entY[e] * l0; dy[e] = 0.0; }
    g = 0.0; gs = 0.0;
  } else {
    let sigma = sqrt(vr);
    var T = 0.0; var Tz = 0.0;
    for (var e = e0; e < e1; e++) {
      let y = entY[e];
      let z = (o[e] - mu) / sigma;
      let x = a * (b - z);
      if (y != 0.0) { L += y * softplus(x) / a; }
      let t = -y * sigmoid(x);
      let de = t / sigma; dy[e] = de; sdy += de;
      T += t; Tz += t * z;
    }
    g = -Tz / (2.0 * D * vr);
    gs = (-T + (mu / sigma) * Tz) / (D * sigma);
  }`,
};

/** The factored step's per-example statistics, formed in the loss kernel (no dispatch of their own). */
const STATS_BINDINGS = /* wgsl */ `
@group(0) @binding(8) var<storage, read> H: array<f32>;
@group(0) @binding(9) var<storage, read> QH: array<f32>;
@group(0) @binding(10) var<storage, read> vecs: array<f32>;
`;
/** stats[4i..] = (q_i = h_i·Qh_i, s_i = h_i·w̄, hω_i = h_i·ω, 0), each summed in order over k. */
const STATS_BODY = /* wgsl */ `
    {
      let d = st.d;
      var sq = 0.0; var ss = 0.0; var sw = 0.0;
      for (var k = 0u; k < d; k++) {
        let h = H[i * d + k];
        sq = fma(h, QH[i * d + k], sq); sw = fma(h, vecs[k], sw); ss = fma(h, vecs[d + k], ss);
      }
      stats[4u * i] = sq; stats[4u * i + 1u] = ss; stats[4u * i + 2u] = sw; stats[4u * i + 3u] = 0.0;
    }`;

/**
 * The loss kernel for one loss, with the batch's sum: Bindings: 0 bi, 1 entY, 2 o, 3 stats (read), 4 dy,
 * 5 exOut (read_write), 6 step (uniform), 7 ring (read_write: ring[slot] = Σ L_i). Grid: 1 workgroup.
 * With `statsFromH` (the factored layer) it first forms stats[4i..] = (q_i, s_i, hω_i) itself from
 * 8 H, 9 QH, 10 vecs (read), and stats is read_write.
 *
 * @example
 * ```ts
 * import { lossWgsl } from "./loss.ts";
 * const code = lossWgsl("spherical");
 * ```
 */
export function lossWgsl(name: LossName, statsFromH = false): string {
  const body = BODIES[name];
  if (!body) throw new RangeError(`loss must be one of squared, spherical, taylor, zloss; got "${name}"`);
  return STEP_WGSL + /* wgsl */ `
@group(0) @binding(0) var<storage, read> bi: array<u32>;
@group(0) @binding(1) var<storage, read> entY: array<f32>;
@group(0) @binding(2) var<storage, read> o: array<f32>;
@group(0) @binding(3) var<storage, ${statsFromH ? "read_write" : "read"}> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> exOut: array<f32>;
@group(0) @binding(6) var<uniform> st: Step;
@group(0) @binding(7) var<storage, read_write> ring: array<f32>;
${statsFromH ? STATS_BINDINGS : ""}
var<workgroup> red: array<f32, 256>;
fn softplus(x: f32) -> f32 { if (x > 0.0) { return x + log(1.0 + exp(-x)); } return log(1.0 + exp(x)); }
fn sigmoid(x: f32) -> f32 { if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); } let e = exp(x); return e / (1.0 + e); }
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  // one workgroup: invocation li takes examples li, li + 256, …, then the batch's loss is reduced here
  // in the order of LOSS_REDUCE (no second dispatch)
  var lsum = 0.0;
  for (var i = li; i < st.m; i += 256u) {
    let e0 = bi[st.offExOff + i];
    let e1 = bi[st.offExOff + i + 1u];
    ${statsFromH ? STATS_BODY : ""}
    let q = stats[4u * i];
    let s = stats[4u * i + 1u];
    let D = st.D;
    var L = 0.0; var g = 0.0; var gs = 0.0; var sdy = 0.0;
    ${body}
    exOut[4u * i] = g; exOut[4u * i + 1u] = gs; exOut[4u * i + 2u] = sdy; exOut[4u * i + 3u] = L;
    lsum += L;
  }
  red[li] = lsum;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w >>= 1u) {
    if (li < w) { red[li] += red[li + w]; }
    workgroupBarrier();
  }
  if (li == 0u) { ring[st.slot] = red[0]; }
}
`;
}
