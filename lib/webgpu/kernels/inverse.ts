/**
 * In-place Gauss–Jordan inverse of a small n×n matrix (n ≤ MB ≤ 128) in one workgroup, for the Woodbury update
 * of U⁻ᵀ (ALGORITHM.md §4 step 7): S = I + C, where C comes from a gemm, is inverted without pivoting.
 * For g_q ≥ 0, S is similar to the SPD matrix I − 2η G^½ HᵀH G^½ exactly when the step is admissible, so
 * every pivot must be > 0: a pivot ≤ GUARD_MARGIN = 1e-3 (as the CPU layers' guard; or not finite) means the factor (I − 2ηHGHᵀ) would be singular
 * or flip a direction. Then the sticky flag is set (flag[0] = 1, flag[1] = step number) and every guarded
 * update of the step is skipped; the host raises SingularUpdateError when it next reads the flag.
 *
 * Layout: C and Sinv n×n row-major (n from the params uniform). Workgroup memory: (MB² + MB)·4 bytes.
 *
 * @module
 */

import { GUARD_MARGIN } from "../../layers/guard.ts";
import { STEP_WGSL } from "./common.ts";

/**
 * The block size: the largest that fits the workgroup storage limit, at most `cap` (default 64; the
 * one-workgroup elimination costs ∝ mb per block in latency (one barrier round per pivot), so larger blocks
 * trade fewer rounds for slower inverses; 63 fits WebGPU's default 16 KiB, 110 fits 48 KiB).
 *
 * @example
 * ```ts
 * import { inverseBlock } from "./inverse.ts";
 * console.log(inverseBlock(16384)); // 63
 * ```
 */
export function inverseBlock(maxWorkgroupStorage: number, cap = 64): number {
  let mb = Math.min(cap, 128);
  while ((mb * mb + mb) * 4 + 64 > maxWorkgroupStorage) mb--;
  return mb;
}

/**
 * Bindings: 0 C (read), 1 Sinv (read_write), 2 flag (read_write), 3 params {n} (uniform), 4 step.
 * Grid: 1 workgroup of 256.
 *
 * @example
 * ```ts
 * import { inverseWgsl } from "./inverse.ts";
 * const code = inverseWgsl(64);
 * ```
 */
export function inverseWgsl(MB: number): string {
  return STEP_WGSL + /* wgsl */ `
struct P { n: u32, q0: u32, q1: u32, q2: u32 }
@group(0) @binding(0) var<storage, read> C: array<f32>;
@group(0) @binding(1) var<storage, read_write> Sinv: array<f32>;
@group(0) @binding(2) var<storage, read_write> flag: array<u32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<uniform> st: Step;
var<workgroup> S: array<f32, ${MB * MB}>;
var<workgroup> col: array<f32, ${MB}>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  let n = p.n;
  for (var t = li; t < n * n; t += 256u) {
    S[t] = C[t] + select(0.0, 1.0, t / n == t % n);
  }
  workgroupBarrier();
  var bad = false;
  for (var k = 0u; k < n; k++) {
    for (var i = li; i < n; i += 256u) { col[i] = S[i * n + k]; }
    workgroupBarrier();
    let pv = col[k];
    if (!(pv > ${GUARD_MARGIN}) || !(pv < 3.0e38)) { bad = true; }
    let inv = 1.0 / pv;
    for (var j = li; j < n; j += 256u) {
      if (j == k) { S[k * n + k] = inv; } else { S[k * n + j] = S[k * n + j] * inv; }
    }
    workgroupBarrier();
    for (var t = li; t < n * n; t += 256u) {
      let i = t / n; let j = t % n;
      if (i != k) {
        if (j == k) { S[t] = -col[i] * inv; } else { S[t] = S[t] - col[i] * S[k * n + j]; }
      }
    }
    workgroupBarrier();
  }
  for (var t = li; t < n * n; t += 256u) { Sinv[t] = S[t]; }
  if (li == 0u && bad && flag[0] == 0u) { flag[0] = 1u; flag[1] = st.stepNo; }
}
`;
}
