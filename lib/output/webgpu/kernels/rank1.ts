/**
 * Right rank-one update of the rows of one V chunk, for the stabilisation's rescale of a singular direction
 * u (docs/factored-step.md "Numerical upkeep"): V ← V (I + β u uᵀ), i.e. V[r,:] += β (V[r,:]·u) uᵀ. One
 * workgroup of 64 per row.
 *
 * Layouts: V chunk rows×d row-major, u length d.
 *
 * @module
 */

/**
 * Bindings: 0 V chunk (read_write), 1 u (read), 2 params {rows, d, beta} (uniform).
 * Grid: (min(rows, 65535), ⌈rows/65535⌉).
 *
 * @example
 * ```ts
 * import { RANK1_WGSL } from "./rank1.ts";
 * console.log(RANK1_WGSL.includes("fn main"));
 * ```
 */
export const RANK1_WGSL = /* wgsl */ `
struct P { rows: u32, d: u32, beta: f32, q0: u32 }
@group(0) @binding(0) var<storage, read_write> V: array<f32>;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = wg.y * 65535u + wg.x;
  let valid = r < p.rows;
  let d = p.d;
  var acc = 0.0;
  if (valid) { for (var k = li; k < d; k += 64u) { acc += V[r * d + k] * u[k]; } }
  red[li] = acc;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w >>= 1u) {
    if (li < w) { red[li] += red[li + w]; }
    workgroupBarrier();
  }
  let t = p.beta * red[0];
  if (valid) { for (var k = li; k < d; k += 64u) { V[r * d + k] = V[r * d + k] + t * u[k]; } }
}
`;
