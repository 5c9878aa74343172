/**
 * Shared helpers of the output-layer tests (tests/layers_*_test.ts): a seeded generator, random W₀, H
 * and K-sparse batches with repeated indices, backend availability, and error measures.
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
