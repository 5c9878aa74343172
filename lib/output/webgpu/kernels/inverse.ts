/**
 * In-place Gauss–Jordan inverse of a small n×n matrix (n ≤ MB ≤ 128) in one workgroup, for the Woodbury update
 * of U⁻ᵀ (docs/factored-step.md "One step", step 7): S = I + C, where C comes from a gemm, is inverted
 * without pivoting. For g_q ≥ 0, S is similar to the SPD matrix I − 2η G^½ HᵀH G^½ exactly when the step is
 * admissible, so every pivot must be > 0: a pivot ≤ GUARD_MARGIN = 1e-3 (as the CPU layers' guard; or not
 * finite) means the factor (I − 2ηHGHᵀ) would be singular or flip a direction. Then the sticky flag is set
 * (flag[0] = 1, flag[1] = step number) and every guarded update of the step is skipped; the host raises
 * SingularUpdateError when it next reads the flag.
 *
 * Layout: C and Sinv n×n row-major (n from the params uniform). Workgroup memory: (MB² + 2·MB)·4 bytes. Two barriers per pivot: column and row k are staged, then every
 * element is updated from them.
 *
 * @module
 */

import { GUARD_MARGIN } from "../../guard.ts";
import { STEP_WGSL } from "./common.ts";

/**
 * The block size: the largest that fits the workgroup storage limit, at most `cap` (default 64; the
 * one-workgroup elimination costs ∝ mb per block in latency (one barrier round per pivot), so larger blocks
 * trade fewer rounds for slower inverses; 62 fits WebGPU's default 16 KiB, 109 fits 48 KiB).
 *
 * @example
 * ```ts
 * import { inverseBlock } from "./inverse.ts";
 * console.log(inverseBlock(16384)); // 62
 * ```
 */
export function inverseBlock(maxWorkgroupStorage: number, cap = 64): number {
  let mb = Math.min(cap, 128);
  while ((mb * mb + 2 * mb) * 4 + 64 > maxWorkgroupStorage) mb--;
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
var<workgroup> row: array<f32, ${MB}>;
const MB = ${MB}u;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  let n = p.n;
  // S (stride MB, a constant: no integer division by n in the loops) = I + C
  for (var t = li; t < MB * MB; t += 256u) {
    let i = t / MB; let j = t % MB;
    if (i < n && j < n) { S[t] = C[i * n + j] + select(0.0, 1.0, i == j); }
  }
  workgroupBarrier();
  var bad = false;
  for (var k = 0u; k < n; k++) {
    // stage column k and row k, then update every element from them: two barriers per pivot
    for (var i = li; i < n; i += 256u) { col[i] = S[i * MB + k]; row[i] = S[k * MB + i]; }
    workgroupBarrier();
    let pv = col[k];
    if (!(pv > ${GUARD_MARGIN}) || !(pv < 3.0e38)) { bad = true; }
    let inv = 1.0 / pv;
    for (var t = li; t < MB * MB; t += 256u) {
      let i = t / MB; let j = t % MB;
      if (i < n && j < n) {
        let rj = select(row[j] * inv, inv, j == k);
        if (i == k) { S[t] = rj; } else if (j == k) { S[t] = -col[i] * inv; } else { S[t] = S[t] - col[i] * rj; }
      }
    }
    workgroupBarrier();
  }
  for (var t = li; t < n * n; t += 256u) { Sinv[t] = S[(t / n) * MB + t % n]; }
  if (li == 0u && bad && flag[0] == 0u) { flag[0] = 1u; flag[1] = st.stepNo; }
}
`;
}

/**
 * One whole Woodbury round in one workgroup (docs/factored-step.md "One step", step 7, blocked): with R = Ĥ_k
 * B (n×d) and X_k = rows [r0, r0 + n) of X (m×d), it forms S = I − R X_kᵀ (n×n, in workgroup memory), inverts
 * it by the Gauss–Jordan elimination of {@link inverseWgsl} (same pivots, same guard: a pivot ≤ GUARD_MARGIN
 * sets the sticky flag with the step number) and writes Z = S⁻¹ R (n×d). This replaces a gemm, the inverse
 * and a gemm (three dependent dispatches) per round; the step is latency-bound, so fewer dispatches is
 * faster.
 *
 * Layout: R n×d and Z n×d row-major (ld d), X row-major (ld d) read from element offset offX = r0·d.
 * Bindings: 0 R (read), 1 X (read), 2 Z (read_write), 3 flag (read_write), 4 params {n, d, offX, 0}
 * (uniform), 5 step. Grid: 1 workgroup of 256. Workgroup memory: (MB² + 2·MB)·4 bytes (as inverseWgsl).
 *
 * @example
 * ```ts
 * import { woodburyRoundWgsl } from "./inverse.ts";
 * const code = woodburyRoundWgsl(32);
 * ```
 */
export function woodburyRoundWgsl(MB: number): string {
  return STEP_WGSL + /* wgsl */ `
struct P { n: u32, d: u32, offX: u32, q2: u32 }
@group(0) @binding(0) var<storage, read> R: array<f32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Z: array<f32>;
@group(0) @binding(3) var<storage, read_write> flag: array<u32>;
@group(0) @binding(4) var<uniform> p: P;
@group(0) @binding(5) var<uniform> st: Step;
var<workgroup> S: array<f32, ${MB * MB}>;
var<workgroup> col: array<f32, ${MB}>;
var<workgroup> row: array<f32, ${MB}>;
const MB = ${MB}u;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  let n = p.n; let d = p.d;
  // S = I − R X_kᵀ (each entry a dot product of length d, summed in order)
  for (var t = li; t < MB * MB; t += 256u) {
    let i = t / MB; let j = t % MB;
    if (i < n && j < n) {
      var acc = 0.0;
      let ri = i * d; let xj = p.offX + j * d;
      for (var k = 0u; k < d; k++) { acc = fma(R[ri + k], X[xj + k], acc); }
      S[t] = select(0.0, 1.0, i == j) - acc;
    }
  }
  workgroupBarrier();
  var bad = false;
  for (var k = 0u; k < n; k++) {
    for (var i = li; i < n; i += 256u) { col[i] = S[i * MB + k]; row[i] = S[k * MB + i]; }
    workgroupBarrier();
    let pv = col[k];
    if (!(pv > ${GUARD_MARGIN}) || !(pv < 3.0e38)) { bad = true; }
    let inv = 1.0 / pv;
    for (var t = li; t < MB * MB; t += 256u) {
      let i = t / MB; let j = t % MB;
      if (i < n && j < n) {
        let rj = select(row[j] * inv, inv, j == k);
        if (i == k) { S[t] = rj; } else if (j == k) { S[t] = -col[i] * inv; } else { S[t] = S[t] - col[i] * rj; }
      }
    }
    workgroupBarrier();
  }
  // Z = S⁻¹ R: one column of R per invocation in registers, S read as a broadcast
  var rc: array<f32, ${MB}>;
  for (var j = li; j < d; j += 256u) {
    for (var l = 0u; l < n; l++) { rc[l] = R[l * d + j]; }
    for (var i = 0u; i < n; i++) {
      var acc = 0.0;
      for (var l = 0u; l < n; l++) { acc = fma(S[i * MB + l], rc[l], acc); }
      Z[i * d + j] = acc;
    }
  }
  if (li == 0u && bad && flag[0] == 0u) { flag[0] = 1u; flag[1] = st.stepNo; }
}
`;
}
