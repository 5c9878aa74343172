/**
 * Copy of n floats between storage buffers: dst[offD + t] = src[offS + t], t < n (one invocation each,
 * 256 per workgroup, 2-D grid for large n). With guard = 1 the copy is skipped while the singular-step
 * flag is set (used to commit U⁻ᵀ only for an accepted step).
 *
 * @module
 */

/**
 * Bindings: 0 src (read), 1 dst (read_write), 2 params {n, offS, offD, guard, rowWidth} (uniform), 3 flag.
 *
 * @example
 * ```ts
 * import { COPY_WGSL } from "./copy.ts";
 * console.log(COPY_WGSL.includes("fn main"));
 * ```
 */
export const COPY_WGSL: string = /* wgsl */ `
struct P { n: u32, offS: u32, offD: u32, guard: u32, width: u32, q0: u32, q1: u32, q2: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
@group(0) @binding(3) var<storage, read> flag: array<u32>;
var<workgroup> wgStop: u32;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  if (li == 0u) { wgStop = select(0u, flag[0], p.guard != 0u); }
  if (workgroupUniformLoad(&wgStop) != 0u) { return; }
  let t = (wg.y * p.width + wg.x) * 256u + li;
  if (t < p.n) { dst[p.offD + t] = src[p.offS + t]; }
}
`;
