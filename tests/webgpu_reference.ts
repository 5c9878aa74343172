/**
 * Test helpers for the WebGPU tests: a float64 textbook naive layer (dense o = W h per example, the loss's
 * own `dense` reference, ∇h = Wᵀ∇o, W ← W − η Σ ∇o hᵀ), seeded random data and batches.
 *
 * @module
 */

import { createLoss } from "../lib/losses/mod.ts";
import type { LossName, SparseBatch } from "../lib/core/types.ts";

/** A seeded uniform generator on [0, 1): the one rng, as a function. */
export { mulberry32 as rng } from "../lib/core/rng.ts";

/** A random batch: m examples of K targets in [0, D) (repeats allowed), H uniform in [-scale, scale]. */
export function randomBatch(
  r: () => number,
  m: number,
  d: number,
  D: number,
  K: number,
  scale: number,
  hot = 0,
): { H: Float32Array; Y: SparseBatch } {
  const H = new Float32Array(m * d).map(() => (r() * 2 - 1) * scale);
  const offsets = new Int32Array(m + 1), indices = new Int32Array(m * K), values = new Float32Array(m * K);
  for (let i = 0; i < m; i++) {
    offsets[i + 1] = (i + 1) * K;
    for (let k = 0; k < K; k++) {
      // with `hot` > 0, a share of the targets falls on a few rows: repeated indices within and across examples
      indices[i * K + k] = hot > 0 && r() < hot ? Math.floor(r() * 3) : Math.floor(r() * D);
      values[i * K + k] = 0.25 + r();
    }
  }
  return { H, Y: { offsets, indices, values } };
}

/** The float64 textbook naive layer. */
export class ReferenceNaive {
  readonly W: Float64Array;
  readonly #loss;
  constructor(readonly D: number, readonly d: number, W0: Float32Array, loss: LossName) {
    this.W = Float64Array.from(W0);
    this.#loss = createLoss(loss);
  }

  /** Loss, ∇H (m×d) and, when eta > 0, the update. */
  step(H: Float32Array, Y: SparseBatch, eta: number): { loss: number; gradH: Float64Array } {
    const { D, d, W } = this;
    const m = Y.offsets.length - 1;
    const grad = new Float64Array(m * d);
    const dW = new Float64Array(D * d);
    const o = new Float64Array(D), dOut = new Float64Array(D);
    let L = 0;
    for (let i = 0; i < m; i++) {
      const merged = new Map<number, number>();
      for (let k = Y.offsets[i]; k < Y.offsets[i + 1]; k++) {
        merged.set(Y.indices[k], (merged.get(Y.indices[k]) ?? 0) + Y.values[k]);
      }
      const idx = Int32Array.from(merged.keys());
      const y = Float64Array.from(merged.values());
      for (let j = 0; j < D; j++) {
        let t = 0;
        for (let k = 0; k < d; k++) t += W[j * d + k] * H[i * d + k];
        o[j] = t;
      }
      L += this.#loss.dense(o, idx, y, idx.length, dOut);
      for (let j = 0; j < D; j++) {
        const g = dOut[j];
        for (let k = 0; k < d; k++) {
          grad[i * d + k] += g * W[j * d + k];
          dW[j * d + k] += g * H[i * d + k];
        }
      }
    }
    if (eta > 0) { for (let t = 0; t < W.length; t++) W[t] -= eta * dW[t]; }
    return { loss: L, gradH: grad };
  }
}

/** max|a − b| / max(max|b|, floor). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-12): number {
  let num = 0, den = floor;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}
