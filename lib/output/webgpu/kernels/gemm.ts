/**
 * Tiled single-precision gemm in WGSL: C = alpha · op(A) · op(B) + beta · C, row-major.
 *
 * Shapes: op(A) is M×K (A stored M×K with leading dim lda, or K×M when transposed), op(B) is K×N (B stored
 * K×N with ldb, or N×K when transposed), C is M×N with ldc. Offsets offA/offB/offC (elements) select
 * sub-matrices. Tiles: 64×64 (or 32×32) outputs per workgroup of 16×16 invocations (4×4 or 2×2 each),
 * K in steps of 16 through workgroup memory (2 × 4 KiB or 2 × 2 KiB). Split-K: workgroup z sums k ∈ [z·kLen, min(K, (z+1)·kLen)) and
 * writes its partial to C + z·strideZ (beta must then be 0; a reduction sums the partials in order).
 * With `guard` = 1 the whole dispatch is skipped while the singular-step flag is set.
 * beta = 0 never reads C. Every sum runs in a fixed order: results are deterministic.
 *
 * @module
 */

/**
 * Byte size of the gemm's uniform (16 words).
 *
 * @example
 * ```ts
 * import { GEMM_PARAM_BYTES } from "./gemm.ts";
 * console.log(GEMM_PARAM_BYTES); // 64
 * ```
 */
export const GEMM_PARAM_BYTES = 64;

/**
 * Parameters of one gemm dispatch.
 *
 * @example
 * ```ts
 * import type { GemmParams } from "./gemm.ts";
 * const p: GemmParams = { M: 2, N: 2, K: 2, lda: 2, ldb: 2, ldc: 2 };
 * ```
 */
export type GemmParams = {
  M: number;
  N: number;
  K: number;
  lda: number;
  ldb: number;
  ldc: number;
  offA?: number;
  offB?: number;
  offC?: number;
  /** split-K length (default K: no split) */
  kLen?: number;
  /** 1: skip while the singular-step flag is set */
  guard?: number;
  /** element stride between split-K partials */
  strideZ?: number;
  alpha?: number;
  beta?: number;
};

/**
 * Packs {@link GemmParams} into the uniform layout.
 *
 * @example
 * ```ts
 * import { packGemm } from "./gemm.ts";
 * const b = packGemm({ M: 2, N: 2, K: 2, lda: 2, ldb: 2, ldc: 2, alpha: 1 });
 * ```
 */
export function packGemm(p: GemmParams): ArrayBuffer {
  const buf = new ArrayBuffer(GEMM_PARAM_BYTES);
  const u = new Uint32Array(buf), f = new Float32Array(buf);
  u.set([
    p.M,
    p.N,
    p.K,
    p.lda,
    p.ldb,
    p.ldc,
    p.offA ?? 0,
    p.offB ?? 0,
    p.offC ?? 0,
    p.kLen ?? Math.max(p.K, 1),
    p.guard ?? 0,
    p.strideZ ?? 0,
  ]);
  f[12] = p.alpha ?? 1;
  f[13] = p.beta ?? 0;
  return buf;
}

/**
 * Workgroup counts of a gemm dispatch: [ceil(N/64), ceil(M/64), splits].
 *
 * @example
 * ```ts
 * import { gemmGrid } from "./gemm.ts";
 * console.log(gemmGrid({ M: 100, N: 300, K: 50, lda: 50, ldb: 300, ldc: 300 })); // [5, 2, 1]
 * ```
 */
export function gemmGrid(p: GemmParams, tile: GemmTile = 64): [number, number, number] {
  const kLen = p.kLen ?? Math.max(p.K, 1);
  return [Math.ceil(p.N / tile), Math.ceil(p.M / tile), Math.max(1, Math.ceil(p.K / kLen))];
}

/**
 * Output tile edge of a gemm variant: 64 (4×4 outputs per invocation) or 32 (2×2, for small outputs,
 * where more, smaller workgroups spread the work over more multiprocessors).
 *
 * @example
 * ```ts
 * import type { GemmTile } from "./gemm.ts";
 * const t: GemmTile = 32;
 * ```
 */
export type GemmTile = 64 | 32;

/**
 * The tile for a gemm: 32 when 64-tiles would give fewer than 256 workgroups, else 64.
 *
 * @example
 * ```ts
 * import { chooseTile } from "./gemm.ts";
 * console.log(chooseTile({ M: 128, N: 300, K: 300, lda: 300, ldb: 300, ldc: 300 })); // 32
 * ```
 */
export function chooseTile(p: GemmParams): GemmTile {
  const [x, y, z] = gemmGrid(p, 64);
  return x * y * z < 256 ? 32 : 64;
}

/**
 * The WGSL of a gemm variant. Bindings: 0 A, 1 B (read), 2 C (read_write), 3 params (uniform),
 * 4 flag (read).
 *
 * @example
 * ```ts
 * import { gemmWgsl } from "./gemm.ts";
 * const code = gemmWgsl(false, true); // C = alpha·A·Bᵀ + beta·C
 * ```
 */
export function gemmWgsl(transA: boolean, transB: boolean, tile: GemmTile = 64): string {
  const T = tile, R = tile / 16;
  // A tile element (r, kk) -> As[kk*T + r]; B tile element (kk, c) -> Bs[kk*T + c].
  const loadA = transA
    ? `let r = idx % ${T}u; let kk = idx / ${T}u; let gr = row0 + r; let gk = kt + kk;
       var v = 0.0; if (gr < p.M && gk < k1) { v = A[p.offA + gk * p.lda + gr]; } As[kk * ${T}u + r] = v;`
    : `let r = idx / 16u; let kk = idx % 16u; let gr = row0 + r; let gk = kt + kk;
       var v = 0.0; if (gr < p.M && gk < k1) { v = A[p.offA + gr * p.lda + gk]; } As[kk * ${T}u + r] = v;`;
  const loadB = transB
    ? `let c = idx / 16u; let kk = idx % 16u; let gc = col0 + c; let gk = kt + kk;
       var v = 0.0; if (gc < p.N && gk < k1) { v = B[p.offB + gc * p.ldb + gk]; } Bs[kk * ${T}u + c] = v;`
    : `let c = idx % ${T}u; let kk = idx / ${T}u; let gc = col0 + c; let gk = kt + kk;
       var v = 0.0; if (gc < p.N && gk < k1) { v = B[p.offB + gk * p.ldb + gc]; } Bs[kk * ${T}u + c] = v;`;
  let stores = "";
  let fma = "", loadsA = "", loadsB = "";
  for (let i = 0; i < R; i++) {
    loadsA += `let a${i} = As[kk * ${T}u + lid.y + ${16 * i}u]; `;
    loadsB += `let b${i} = Bs[kk * ${T}u + lid.x + ${16 * i}u]; `;
    for (let j = 0; j < R; j++) fma += `acc[${i * R + j}] += a${i} * b${j}; `;
  }
  for (let i = 0; i < R; i++) {
    for (let j = 0; j < R; j++) {
      stores += `  { let r = row0 + lid.y + ${16 * i}u; let c = col0 + lid.x + ${16 * j}u;
    if (r < p.M && c < p.N) { let at = zoff + r * p.ldc + c; var v = p.alpha * acc[${i * R + j}];
      if (p.beta != 0.0) { v += p.beta * C[at]; } C[at] = v; } }\n`;
    }
  }
  return /* wgsl */ `
struct P {
  M: u32, N: u32, K: u32, lda: u32, ldb: u32, ldc: u32, offA: u32, offB: u32,
  offC: u32, kLen: u32, guard: u32, strideZ: u32, alpha: f32, beta: f32, q0: u32, q1: u32,
}
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<storage, read> flag: array<u32>;
var<workgroup> As: array<f32, ${16 * T}>;
var<workgroup> Bs: array<f32, ${16 * T}>;
var<workgroup> wgStop: u32;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  if (li == 0u) { wgStop = select(0u, flag[0], p.guard != 0u); }
  if (workgroupUniformLoad(&wgStop) != 0u) { return; }
  let row0 = wg.y * ${T}u;
  let col0 = wg.x * ${T}u;
  let k0 = wg.z * p.kLen;
  let k1 = min(p.K, k0 + p.kLen);
  var acc: array<f32, ${R * R}>;
  for (var kt = k0; kt < k1; kt += 16u) {
    for (var t = 0u; t < ${R}u; t++) {
      let idx = li + t * 256u;
      ${loadA}
    }
    for (var t = 0u; t < ${R}u; t++) {
      let idx = li + t * 256u;
      ${loadB}
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      ${loadsA}
      ${loadsB}
      ${fma}
    }
    workgroupBarrier();
  }
  let zoff = p.offC + wg.z * p.strideZ;
${stores}
}
`;
}
