/**
 * Up to three independent small products in one dispatch: workgroup z computes C_z = α_z op(A_z) op(B_z) +
 * β_z C_z (row-major; β = 0 never reads C; `guard` = 1: skipped while the singular-step flag is set), one
 * output per invocation, its K terms summed in order with fma. The factored step's products are m×d×d or
 * d×d×m with m ≤ a few hundred: latency, not FLOPs, bounds them, so fewer dispatches is the saving. Used for
 * Ĥ = H Uᵀ with QH = H Q; each Woodbury round's L = X_k Bᵀ with R = Ĥ_k B; and U −= Ĥᵀ X with P = H U_new⁻¹
 * and F = (η²/2) M H − η ∇H.
 *
 * @module
 */

import type { GemmParams } from "./gemm.ts";

/** Bytes of one product's parameters in the uniform (16 words). */
const ONE_BYTES = 64;

/**
 * One product: C (M×N, ldc, from offC) = α op(A) op(B) + β C, op(A) M×K (A M×K with lda from offA, or K×M
 * when tA), op(B) K×N (B K×N with ldb from offB, or N×K when tB).
 *
 * @example
 * ```ts
 * import type { Product } from "./multi.ts";
 * const p: Product = { M: 2, N: 3, K: 4, lda: 4, ldb: 4, ldc: 3, tB: true };
 * ```
 */
export type Product = Omit<GemmParams, "kLen" | "strideZ" | "guard"> & {
  tA?: boolean;
  tB?: boolean;
  /** skip while the singular-step flag is set */
  guard?: boolean;
};

/**
 * Packs the products' parameters into the uniform.
 *
 * @example
 * ```ts
 * import { packProducts } from "./multi.ts";
 * const p = { M: 2, N: 3, K: 4, lda: 4, ldb: 4, ldc: 3 };
 * console.log(packProducts([p, p]).byteLength); // 128
 * ```
 */
export function packProducts(ps: Product[]): ArrayBuffer {
  const buf = new ArrayBuffer(ONE_BYTES * ps.length);
  const u = new Uint32Array(buf), f = new Float32Array(buf);
  ps.forEach((p, z) => {
    const w = 16 * z;
    u.set([p.M, p.N, p.K, p.lda, p.ldb, p.ldc, p.offA ?? 0, p.offB ?? 0, p.offC ?? 0], w);
    u.set([p.tA ? 1 : 0, p.tB ? 1 : 0, p.guard ? 1 : 0], w + 9);
    f.set([p.alpha ?? 1, p.beta ?? 0], w + 12);
  });
  return buf;
}

/** The body for product z (bindings A{z}, B{z}, C{z}, parameters p.p{z}). */
const branch = (z: number) => /* wgsl */ `
    let q = p.p${z};
    if (i >= q.M || j >= q.N) { return; }
    if (q.guard == 1u && flag[0] != 0u) { return; }
    var acc = 0.0;
    for (var k = 0u; k < q.K; k++) {
      let a = A${z}[q.offA + select(i * q.lda + k, k * q.lda + i, q.tA == 1u)];
      let b = B${z}[q.offB + select(k * q.ldb + j, j * q.ldb + k, q.tB == 1u)];
      acc = fma(a, b, acc);
    }
    let c = q.offC + i * q.ldc + j;
    if (q.beta == 0.0) { C${z}[c] = q.alpha * acc; } else { C${z}[c] = q.alpha * acc + q.beta * C${z}[c]; }
  `;

/**
 * The kernel for n ∈ {2, 3} products. Bindings: 3z A_z, 3z+1 B_z (read), 3z+2 C_z (read_write), then flag
 * (read), then the parameters (uniform). Grid: (⌈max N / 64⌉, max M, n).
 *
 * @example
 * ```ts
 * import { multiWgsl } from "./multi.ts";
 * console.log(multiWgsl(3).includes("fn main"));
 * ```
 */
export function multiWgsl(n: number): string {
  const zs = Array.from({ length: n }, (_, z) => z);
  return /* wgsl */ `
struct One { M: u32, N: u32, K: u32, lda: u32, ldb: u32, ldc: u32, offA: u32, offB: u32,
  offC: u32, tA: u32, tB: u32, guard: u32, alpha: f32, beta: f32, q0: u32, q1: u32 }
struct P { ${zs.map((z) => `p${z}: One`).join(", ")} }
${
    zs.map((z) =>
      `@group(0) @binding(${3 * z}) var<storage, read> A${z}: array<f32>;
@group(0) @binding(${3 * z + 1}) var<storage, read> B${z}: array<f32>;
@group(0) @binding(${3 * z + 2}) var<storage, read_write> C${z}: array<f32>;`
    ).join("\n")
  }
@group(0) @binding(${3 * n}) var<storage, read> flag: array<u32>;
@group(0) @binding(${3 * n + 1}) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x; let i = gid.y;
  ${zs.map((z) => `if (gid.z == ${z}u) {${branch(z)}}`).join(" else ")}
}
`;
}
