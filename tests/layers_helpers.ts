/**
 * Shared helpers of the output-layer tests (tests/layers_*_test.ts): a seeded generator, random W₀, H
 * and K-sparse batches with repeated indices, backend availability, error measures, and the examples' Gram
 * matrix and its largest eigenvalue.
 *
 * @module
 */

import { createOutputLayer } from "../lib/output/create.ts";
import { createBackend } from "../lib/linalg/select.ts";
import { type BlasBackend, openBlasBackend } from "../lib/linalg/blas.ts";
import type { CreateOutputLayerOptions, LossName, OutputLayer, SparseBatch } from "../lib/core/types.ts";

/** A seeded uniform generator on [0, 1): the one rng, as a function. */
export { mulberry32 as rng } from "../lib/core/rng.ts";

/** n uniform values in [-scale, scale). */
export function uniform(r: () => number, n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let j = 0; j < n; j++) a[j] = (2 * r() - 1) * scale;
  return a;
}

/** m inputs of dimension d with E‖h‖² = norm2 (uniform entries). */
export function randomH(r: () => number, m: number, d: number, norm2 = 1): Float32Array {
  return uniform(r, m * d, Math.sqrt((3 * norm2) / d));
}

/**
 * A batch of m examples with K targets each, skewed towards small indices (idx = ⌊D·u³⌋) so that indices
 * repeat across examples; with probability `dupProb` a target repeats an earlier one of the same example.
 * Weights are 1 unless `weighted` (then uniform in [0.2, 1.2)).
 */
export function randomBatch(
  r: () => number,
  m: number,
  D: number,
  K: number,
  opts: { dupProb?: number; weighted?: boolean; varyK?: boolean } = {},
): SparseBatch {
  const dupProb = opts.dupProb ?? 0.2;
  const offsets = new Int32Array(m + 1);
  const idx: number[] = [], val: number[] = [];
  for (let i = 0; i < m; i++) {
    const k = opts.varyK ? Math.floor(r() * (K + 1)) : K;
    const start = idx.length;
    for (let t = 0; t < k; t++) {
      if (t > 0 && r() < dupProb) idx.push(idx[start + Math.floor(r() * t)]);
      else idx.push(Math.min(D - 1, Math.floor(D * r() ** 3)));
      val.push(opts.weighted ? 0.2 + r() : 1);
    }
    offsets[i + 1] = idx.length;
  }
  return { offsets, indices: Int32Array.from(idx), values: Float32Array.from(val) };
}

/** max|a − b| / max|b|. */
export function relMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let j = 0; j < b.length; j++) {
    num = Math.max(num, Math.abs(a[j] - b[j]));
    den = Math.max(den, Math.abs(b[j]));
  }
  return den > 0 ? num / den : num;
}

/** S = H Hᵀ (m×m, float64) of the m×d row-major H: the examples' Gram matrix (plain loops). */
export function gramOfRows(H: ArrayLike<number>, m: number, d: number): Float64Array {
  const S = new Float64Array(m * m);
  for (let a = 0; a < m; a++) {
    for (let b = 0; b < m; b++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += H[a * d + k] * H[b * d + k];
      S[a * m + b] = s;
    }
  }
  return S;
}

/**
 * λ_max(G½ S G½) of the symmetric positive semi-definite m×m S (G = diag(g), default I) by power iteration
 * (plain loops, up to 2,000 iterations, until it changes by less than 1e-14 relatively).
 */
export function largestEigenvalue(S: Float64Array, m: number, g?: ArrayLike<number>): number {
  let x = new Float64Array(m).fill(1), lam = 0;
  for (let it = 0; it < 2000; it++) {
    const y = new Float64Array(m);
    for (let a = 0; a < m; a++) {
      let s = 0;
      for (let b = 0; b < m; b++) s += (g ? Math.sqrt(g[a] * g[b]) : 1) * S[a * m + b] * x[b];
      y[a] = s;
    }
    const n = Math.hypot(...y);
    x = y.map((v) => v / n);
    if (Math.abs(n - lam) < 1e-14 * n) return n;
    lam = n;
  }
  return lam;
}

/** |a − b| / max(|b|, floor). */
export function relDiff(a: number, b: number, floor = 1e-30): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), floor);
}

/** True when the OpenBLAS backend loads. Under CI=true its absence is a test failure (throws). */
export async function blasAvailable(): Promise<boolean> {
  try {
    const la = await createBackend("blas", { log: () => {} });
    la.close();
    return true;
  } catch (e) {
    if (Deno.env.get("CI") === "true") throw e;
    console.error(`layers tests: OpenBLAS unavailable, blas cases skipped: ${(e as Error).message}`);
    return false;
  }
}

/** The CPU backends to test: js always, blas when it loads. */
export async function cpuBackends(): Promise<("js" | "blas")[]> {
  return (await blasAvailable()) ? ["js", "blas"] : ["js"];
}

/** createOutputLayer with logging collected into `lines` (quiet tests, asserted backend line). */
export async function makeLayer(
  kind: "naive" | "factored",
  backend: "js" | "blas",
  D: number,
  d: number,
  init: Float32Array,
  loss: LossName = "squared",
  extra: Partial<CreateOutputLayerOptions> = {},
  lines: string[] = [],
): Promise<OutputLayer> {
  return await createOutputLayer({
    kind,
    D,
    d,
    init,
    loss,
    backend,
    log: (l) => lines.push(l),
    ...extra,
  });
}

/** The plain blas backend on one OpenBLAS thread (FACTOROUT_THREADS is read when it opens). */
export function oneThread(): BlasBackend {
  const was = Deno.env.get("FACTOROUT_THREADS");
  Deno.env.set("FACTOROUT_THREADS", "1");
  try {
    return openBlasBackend();
  } finally {
    if (was === undefined) Deno.env.delete("FACTOROUT_THREADS");
    else Deno.env.set("FACTOROUT_THREADS", was);
  }
}
