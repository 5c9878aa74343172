/**
 * The Z-loss of de Brébisson & Vincent (2016), docs/losses.md. With μ = s/D, σ = √(q/D − μ²) and the
 * Z-normalised target outputs z_c = (o_c − μ)/σ:
 *
 *   L = Σ_c y_c (1/a) softplus(a (b − z_c)),  softplus(x) = log(1 + eˣ).
 *
 * By the chain rule, with t_c = ∂L/∂z_c = −y_c sigmoid(a(b − z_c)), T = Σ_c t_c, T_z = Σ_c t_c z_c:
 *
 *   ẏ_c = t_c/σ,   g_q = −T_z/(2Dσ²),   g_s = (−T + (μ/σ) T_z)/(Dσ)
 *
 * (∂z_c/∂o_c = 1/σ, ∂z_c/∂μ = −1/σ, ∂z_c/∂σ = −z_c/σ, ∂σ/∂q = 1/(2Dσ), ∂σ/∂s = −μ/(Dσ)). g_q may be
 * negative. Degenerate outputs (σ² ≤ 1e-12·q/D, e.g. all-zero h) have no defined z: the loss is then
 * taken at z_c = 0 (L = Y·softplus(ab)/a) with zero gradient.
 *
 * @module
 */

import type { LossOptions } from "../core/types.ts";
import type { LossScalars, SphericalFamilyLoss } from "./loss.ts";
import { resolveLossOptions } from "./options.ts";

/**
 * Below this fraction of the mean square q/D the variance is treated as 0 (no defined Z-normalisation).
 * float64 computes q/D − μ² to ~1e-16 relative, so 1e-12 keeps well clear of rounding noise.
 */
export const ZLOSS_RELATIVE_VARIANCE_FLOOR = 1e-12;

/** log(1 + eˣ) without overflow for large |x|. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** 1/(1 + e⁻ˣ) without overflow for large |x|. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** True when the variance is too small (or, from drifted statistics, negative) to Z-normalise. */
function degenerate(variance: number, meanSquare: number): boolean {
  return !(variance > ZLOSS_RELATIVE_VARIANCE_FLOOR * meanSquare) || !(variance > 1e-300);
}

/**
 * The Z-loss with sharpness `a` > 0 (default 0.1) and offset `b` (default 10).
 *
 * @example
 * ```ts
 * import { ZLoss } from "./zloss.ts";
 * const loss = new ZLoss({ a: 0.1, b: 10 });
 * const dy = new Float64Array(1), g = { gq: 0, gs: 0 };
 * const L = loss.fromStats(Float64Array.of(3), Float64Array.of(1), 1, 1000, 10, 1000, dy, g);
 * ```
 */
export class ZLoss implements SphericalFamilyLoss {
  /** Always "zloss". */
  readonly name = "zloss" as const;
  /** Hyperparameters; `a` and `b` are used. */
  readonly options: Required<LossOptions>;
  /** The Z-loss depends on s = Σ_j o_j (through μ). */
  readonly usesSum = true;
  readonly weightsNonNegative = true;
  readonly #a: number;
  readonly #b: number;

  /**
   * Creates the loss.
   * @param options `a` > 0 and finite `b` (RangeError otherwise); defaults in LOSS_DEFAULTS
   */
  constructor(options: LossOptions = {}) {
    this.options = resolveLossOptions(options);
    this.#a = this.options.a;
    this.#b = this.options.b;
  }

  /** From (o_c, y_c, q, s, D); allocates nothing. */
  fromStats(
    o: Float64Array,
    y: Float64Array,
    K: number,
    q: number,
    s: number,
    D: number,
    dy: Float64Array,
    out: LossScalars,
  ): number {
    const a = this.#a, b = this.#b;
    const mu = s / D, meanSquare = Math.max(q, 0) / D;
    const variance = meanSquare - mu * mu;
    let L = 0;
    if (degenerate(variance, meanSquare)) {
      const l0 = softplus(a * b) / a;
      for (let k = 0; k < K; k++) {
        L += y[k] * l0;
        dy[k] = 0;
      }
      out.gq = 0;
      out.gs = 0;
      return L;
    }
    const sigma = Math.sqrt(variance);
    let T = 0, Tz = 0;
    for (let k = 0; k < K; k++) {
      const yk = y[k];
      const z = (o[k] - mu) / sigma;
      const x = a * (b - z);
      if (yk !== 0) L += (yk * softplus(x)) / a;
      const t = -yk * sigmoid(x);
      dy[k] = t / sigma;
      T += t;
      Tz += t * z;
    }
    out.gq = -Tz / (2 * D * variance);
    out.gs = (-T + (mu / sigma) * Tz) / (D * sigma);
    return L;
  }

  /**
   * Textbook form over all D: μ = mean(o), σ² = mean((o − μ)²) (two passes), z = (o − μ)/σ,
   * L = Σ_c y_c softplus(a(b − z_c))/a; ∂z_c/∂o_j = (δ_cj − 1/D)/σ − z_c z_j/(Dσ), so
   * ∂L/∂o_j = [j target] t_j/σ − T/(Dσ) − z_j T_z/(Dσ).
   */
  dense(
    o: Float32Array | Float64Array,
    idx: Int32Array,
    y: Float64Array,
    K: number,
    dOut: Float64Array,
  ): number {
    const a = this.#a, b = this.#b, D = o.length;
    let sum = 0, sumSq = 0;
    for (let j = 0; j < D; j++) {
      sum += o[j];
      sumSq += o[j] * o[j];
    }
    const mu = sum / D;
    let variance = 0;
    for (let j = 0; j < D; j++) variance += (o[j] - mu) * (o[j] - mu);
    variance /= D;
    let L = 0;
    if (degenerate(variance, sumSq / D)) {
      for (let k = 0; k < K; k++) L += (y[k] * softplus(a * b)) / a;
      dOut.fill(0, 0, D);
      return L;
    }
    const sigma = Math.sqrt(variance);
    let T = 0, Tz = 0;
    for (let k = 0; k < K; k++) {
      const z = (o[idx[k]] - mu) / sigma;
      const x = a * (b - z);
      if (y[k] !== 0) L += (y[k] * softplus(x)) / a;
      const t = -y[k] * sigmoid(x);
      T += t;
      Tz += t * z;
    }
    for (let j = 0; j < D; j++) dOut[j] = (-T - ((o[j] - mu) / sigma) * Tz) / (D * sigma);
    for (let k = 0; k < K; k++) {
      const z = (o[idx[k]] - mu) / sigma;
      dOut[idx[k]] += (-y[k] * sigmoid(a * (b - z))) / sigma;
    }
    return L;
  }

  /**
   * The Z-loss defines no distribution: this is the score z_j = (o_j − μ)/σ (0 when degenerate), which
   * ranks outputs exactly as o_j does.
   */
  probability(oj: number, q: number, s: number, D: number): number {
    const mu = s / D, meanSquare = Math.max(q, 0) / D;
    const variance = meanSquare - mu * mu;
    if (degenerate(variance, meanSquare)) return 0;
    return (oj - mu) / Math.sqrt(variance);
  }
}
