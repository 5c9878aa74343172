/**
 * Sparse gathers over the target rows of V, one V chunk (rows rowStart … rowEnd-1, a separate binding) at
 * a time (docs/factored-step.md "One step", steps 2 and 4).
 *
 * - GATHER_O: o_e = V[c_e]·ĥ_{i_e} + ω·h_{i_e} (one sum over k) for the entries e of this chunk (sorted[eLo … eHi-1]);
 *   one workgroup of 64 per entry, a fixed-order tree reduction over d. Grid: (min(cnt, 65535), ⌈cnt/65535⌉).
 * - GATHER_A: A[i,:] (+)= Σ_{e ∈ example i, c_e in chunk} ẏ_e V[c_e,:], entries in their fixed order; one
 *   workgroup per example, invocations over k. The first chunk overwrites A. Grid: m.
 *
 * Layouts: V chunk rows×d, Ĥ and A m×d row-major; batch integers as in common.ts.
 *
 * @module
 */

import { STEP_WGSL } from "./common.ts";

const CHUNK = /* wgsl */ `
struct Chunk { b: u32, rowStart: u32, rowEnd: u32, first: u32 }
`;

/**
 * Bindings: 0 V chunk, 1 Ĥ, 2 bi, 3 H (read), 4 o (read_write), 5 chunk, 6 step (uniform), 7 vecs (read).
 *
 * @example
 * ```ts
 * import { GATHER_O_WGSL } from "./gather.ts";
 * console.log(GATHER_O_WGSL.includes("fn main"));
 * ```
 */
export const GATHER_O_WGSL: string = STEP_WGSL + CHUNK + /* wgsl */ `
@group(0) @binding(0) var<storage, read> V: array<f32>;
@group(0) @binding(1) var<storage, read> Hh: array<f32>;
@group(0) @binding(2) var<storage, read> bi: array<u32>;
@group(0) @binding(3) var<storage, read> H: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<uniform> ch: Chunk;
@group(0) @binding(6) var<uniform> st: Step;
@group(0) @binding(7) var<storage, read> vecs: array<f32>;
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let eLo = bi[st.offChunk + 4u * ch.b];
  let eHi = bi[st.offChunk + 4u * ch.b + 1u];
  let u = eLo + wg.y * 65535u + wg.x;
  let valid = u < eHi;
  var e = 0u; var i = 0u; var c = 0u;
  if (valid) {
    e = bi[st.offSorted + u];
    i = bi[st.offEntEx + e];
    c = bi[st.offEntRow + e] - ch.rowStart;
  }
  let d = st.d;
  var acc = 0.0;
  if (valid) {
    for (var k = li; k < d; k += 64u) { acc += V[c * d + k] * Hh[i * d + k] + vecs[k] * H[i * d + k]; }
  }
  red[li] = acc;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w >>= 1u) {
    if (li < w) { red[li] += red[li + w]; }
    workgroupBarrier();
  }
  if (valid && li == 0u) { o[e] = red[0]; }
}
`;

/**
 * Bindings: 0 V chunk, 1 bi, 2 dy (read), 3 A (read_write), 4 chunk, 5 step (uniform).
 *
 * @example
 * ```ts
 * import { GATHER_A_WGSL } from "./gather.ts";
 * console.log(GATHER_A_WGSL.includes("fn main"));
 * ```
 */
export const GATHER_A_WGSL: string = STEP_WGSL + CHUNK + /* wgsl */ `
@group(0) @binding(0) var<storage, read> V: array<f32>;
@group(0) @binding(1) var<storage, read> bi: array<u32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> A: array<f32>;
@group(0) @binding(4) var<uniform> ch: Chunk;
@group(0) @binding(5) var<uniform> st: Step;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = wg.x;
  if (i >= st.m) { return; }
  let d = st.d;
  let e0 = bi[st.offExOff + i];
  let e1 = bi[st.offExOff + i + 1u];
  for (var k = li; k < d; k += 64u) {
    var acc = 0.0;
    if (ch.first == 0u) { acc = A[i * d + k]; }
    for (var e = e0; e < e1; e++) {
      let c = bi[st.offEntRow + e];
      if (c >= ch.rowStart && c < ch.rowEnd) { acc += dy[e] * V[(c - ch.rowStart) * d + k]; }
    }
    A[i * d + k] = acc;
  }
}
`;
