/**
 * The input side of the model on the GPU (lib/model/gpu_model.ts): an embedding bag over E (rows×dim, in
 * chunks of rows, one binding each, like V). The batch's input CSR is packed like the targets (batch.ts:
 * repeats merged per example, entries grouped by row, ranged per chunk) with the bag's weights (values,
 * divided by the example's weight sum for `mean`).
 *
 * - EMBED_GATHER, per chunk, one workgroup per example: H[i, k] (+)= Σ_{e of i in the chunk} w_e E[c_e, k]
 *   for k < dim, H[i, dim] = bias; written into H and into rows i and 2m + i of [H; F; H] (the factored
 *   step's Q update). The first chunk writes, later ones add.
 * - EMBED_SCATTER, per chunk, one workgroup per unique row c: E[c, :] −= lr Σ_{e with row c} w_e ∇H[i_e, :dim]
 *   in a fixed order (deterministic with repeated ids, no float atomics); skipped while the singular-step
 *   flag is set, like every state write of a refused step.
 *
 * @module
 */

import { GUARD_WGSL } from "./common.ts";

/**
 * WGSL of the bag's uniform: the packed sections' offsets and the shapes.
 *
 * @example
 * ```ts
 * import { EMBED_WGSL } from "./embed.ts";
 * console.log(EMBED_WGSL.includes("struct Embed"));
 * ```
 */
export const EMBED_WGSL: string = /* wgsl */ `
struct Embed {
  m: u32, dim: u32, d: u32, offExOff: u32,
  offEntEx: u32, offEntRow: u32, offSorted: u32, offRowOff: u32,
  offChunk: u32, p0: u32, bias: f32, lr: f32,
}
struct Chunk { b: u32, rowStart: u32, rowEnd: u32, first: u32 }
`;

/**
 * Packs the {@link EMBED_WGSL} uniform (48 bytes).
 *
 * @example
 * ```ts
 * import { packEmbed } from "./embed.ts";
 * const u = packEmbed({ m: 2, dim: 4, d: 5, off: { exOff: 0, entEx: 3, entRow: 5, sorted: 7, rowOff: 9, chunk: 11 }, bias: 1, lr: 0.1 });
 * console.log(u.byteLength); // 48
 * ```
 */
export function packEmbed(e: {
  m: number;
  dim: number;
  d: number;
  off: { exOff: number; entEx: number; entRow: number; sorted: number; rowOff: number; chunk: number };
  bias: number;
  lr: number;
}): ArrayBuffer {
  const buf = new ArrayBuffer(48);
  const o = e.off;
  new Uint32Array(buf).set([e.m, e.dim, e.d, o.exOff, o.entEx, o.entRow, o.sorted, o.rowOff, o.chunk, 0]);
  new Float32Array(buf).set([e.bias, e.lr], 10);
  return buf;
}

/**
 * Bindings: 0 E chunk, 1 bi, 2 w (read), 3 H, 4 HFH (read_write), 5 chunk, 6 embed (uniform). Grid: m.
 *
 * @example
 * ```ts
 * import { EMBED_GATHER_WGSL } from "./embed.ts";
 * console.log(EMBED_GATHER_WGSL.includes("fn main"));
 * ```
 */
export const EMBED_GATHER_WGSL: string = EMBED_WGSL + /* wgsl */ `
@group(0) @binding(0) var<storage, read> E: array<f32>;
@group(0) @binding(1) var<storage, read> bi: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> H: array<f32>;
@group(0) @binding(4) var<storage, read_write> HFH: array<f32>;
@group(0) @binding(5) var<uniform> ch: Chunk;
@group(0) @binding(6) var<uniform> em: Embed;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = wg.x;
  if (i >= em.m) { return; }
  let dim = em.dim; let d = em.d;
  let e0 = bi[em.offExOff + i];
  let e1 = bi[em.offExOff + i + 1u];
  for (var k = li; k < d; k += 64u) {
    var acc = 0.0;
    if (k == dim) {
      acc = em.bias;
    } else {
      if (ch.first == 0u) { acc = H[i * d + k]; }
      for (var e = e0; e < e1; e++) {
        let c = bi[em.offEntRow + e];
        if (c >= ch.rowStart && c < ch.rowEnd) { acc += w[e] * E[(c - ch.rowStart) * dim + k]; }
      }
    }
    H[i * d + k] = acc;
    HFH[i * d + k] = acc;
    HFH[(2u * em.m + i) * d + k] = acc;
  }
}
`;

/**
 * Bindings: 0 E chunk (read_write), 1 bi, 2 w, 3 G (∇H), 4 flag (read), 5 chunk, 6 embed (uniform).
 * Grid: (min(cnt, 65535), ⌈cnt/65535⌉) over the chunk's unique rows.
 *
 * @example
 * ```ts
 * import { EMBED_SCATTER_WGSL } from "./embed.ts";
 * console.log(EMBED_SCATTER_WGSL.includes("fn main"));
 * ```
 */
export const EMBED_SCATTER_WGSL: string = EMBED_WGSL + /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> E: array<f32>;
@group(0) @binding(1) var<storage, read> bi: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> G: array<f32>;
@group(0) @binding(4) var<storage, read> flag: array<u32>;
@group(0) @binding(5) var<uniform> ch: Chunk;
@group(0) @binding(6) var<uniform> em: Embed;
var<workgroup> wgStop: u32;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${GUARD_WGSL}
  let rLo = bi[em.offChunk + 4u * ch.b + 2u];
  let rHi = bi[em.offChunk + 4u * ch.b + 3u];
  let r = rLo + wg.y * 65535u + wg.x;
  if (r >= rHi) { return; }
  let u0 = bi[em.offRowOff + r];
  let u1 = bi[em.offRowOff + r + 1u];
  let c = bi[em.offEntRow + bi[em.offSorted + u0]] - ch.rowStart;
  let dim = em.dim; let d = em.d;
  for (var k = li; k < dim; k += 64u) {
    var acc = 0.0;
    for (var u = u0; u < u1; u++) {
      let e = bi[em.offSorted + u];
      acc += w[e] * G[bi[em.offEntEx + e] * d + k];
    }
    E[c * dim + k] = E[c * dim + k] - em.lr * acc;
  }
}
`;
