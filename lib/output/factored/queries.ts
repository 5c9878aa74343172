/**
 * The read-only queries of the factored layer, and appendRows: W materialised, scores and exact top-k
 * from the factored state in O(d² + |rows| d) or O(Dd + d²), the diagnostics (cond(U), inverse and Q
 * drift), and exact growth of W by new rows.
 *
 * @module
 */

import type { Diagnostics } from "../../core/types.ts";
import { selectTopK } from "../topk.ts";
import { validateMatrix, validateRows, validateVector } from "../validate.ts";
import { gramOf, materialize } from "./passes.ts";
import type { FactoredState } from "./state.ts";
import { reinvert, topLeftSingular } from "./upkeep.ts";

/**
 * W = V U + 𝟙ωᵀ materialised (float64 accumulation, O(Dd²)).
 *
 * @example
 * ```ts ignore
 * const W = await weights(st); // D×d
 * ```
 *
 * @param st the state
 * @returns W
 */
export function weights(st: FactoredState): Promise<Float32Array> {
  const W = new Float32Array(st.D * st.d);
  materialize(st.la, st.V, st.D, st.d, st.settledView().U, st.omega, W, st.chunk);
  return Promise.resolve(W);
}

/** ĥ = U h, q = hᵀQh, s = w̄·h, ω·h for one input (float64). */
function stats(st: FactoredState, h: Float32Array): { hhat: Float64Array; q: number; s: number; hw: number } {
  const d = st.d, { U, Q } = st.settledView();
  const hhat = new Float64Array(d);
  let q = 0, s = 0, hw = 0;
  for (let r = 0; r < d; r++) {
    let a = 0, b = 0;
    for (let c = 0; c < d; c++) {
      a += U[r * d + c] * h[c];
      b += Q[r * d + c] * h[c];
    }
    hhat[r] = a;
    q += b * h[r];
    s += st.wbar[r] * h[r];
    hw += st.omega[r] * h[r];
  }
  return { hhat, q: q > 0 ? q : 0, s, hw };
}

/**
 * Probabilities (scores for squared error) of `rows` for input h, in O(d² + |rows| d).
 *
 * @example
 * ```ts ignore
 * const p = await score(st, h, Int32Array.of(3, 7));
 * ```
 *
 * @param st the state
 * @param h input (d)
 * @param rows output rows
 * @returns one probability per row
 */
export function score(st: FactoredState, h: Float32Array, rows: Int32Array): Promise<Float64Array> {
  try {
    validateVector("h", h, st.d);
    validateRows(rows, st.D);
    const { hhat, q, s, hw } = stats(st, h);
    const d = st.d, V = st.V, out = new Float64Array(rows.length);
    for (let k = 0; k < rows.length; k++) {
      let o = hw;
      const r = rows[k] * d;
      for (let c = 0; c < d; c++) o += V[r + c] * hhat[c];
      out[k] = st.loss.probability(o, q, s, st.D);
    }
    return Promise.resolve(out);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Exact top-k over all D rows by the loss's probability, O(Dd + d²).
 *
 * @example
 * ```ts ignore
 * const { indices, scores } = await topK(st, h, 10);
 * ```
 *
 * @param st the state
 * @param h input (d)
 * @param k how many
 * @returns the k best rows and their probabilities
 */
export function topK(
  st: FactoredState,
  h: Float32Array,
  k: number,
): Promise<{ indices: Int32Array; scores: Float64Array }> {
  try {
    validateVector("h", h, st.d);
    const { hhat, q, s, hw } = stats(st, h);
    const D = st.D, d = st.d, V = st.V, p = new Float64Array(D);
    for (let j = 0; j < D; j++) {
      let o = hw;
      const r = j * d;
      for (let c = 0; c < d; c++) o += V[r + c] * hhat[c];
      p[j] = st.loss.probability(o, q, s, D);
    }
    return Promise.resolve(selectTopK(p, D, k));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * cond(U) (power iteration, with an exact inverse), max|U U⁻¹ − I| for the maintained U⁻ᵀ, counters,
 * and with `{ full: true }` the O(Dd²) qDrift = max|Q − WᵀW| / max|Q| (and wbarDrift when ω, w̄ are kept).
 *
 * @example
 * ```ts ignore
 * console.log((await diagnostics(st, { full: true })).qDrift);
 * ```
 *
 * @param st the state
 * @param opts full: also the O(Dd²) drifts
 * @returns the diagnostics
 */
export function diagnostics(st: FactoredState, opts: { full?: boolean } = {}): Promise<Diagnostics> {
  const { d, la } = st;
  const { U, Q, Uinvt } = st.settledView(), T = st.dd, u = st.u, tmp = st.tmp;
  la.dgemm(false, true, d, d, d, 1, U, d, Uinvt, d, 0, T, d);
  let inverseError = 0;
  for (let r = 0; r < d; r++) {
    for (let c = 0; c < d; c++) {
      inverseError = Math.max(inverseError, Math.abs(T[r * d + c] - (r === c ? 1 : 0)));
    }
  }
  const sigmaMax = topLeftSingular(la, U, d, u, tmp);
  reinvert(la, U, T, d);
  const sigmaMin = 1 / topLeftSingular(la, T, d, u, tmp);
  const out: Diagnostics = {
    condU: sigmaMax / sigmaMin,
    inverseError,
    steps: st.steps,
    sigmaMax,
    sigmaMin,
    rescales: st.rescales,
    folds: st.folds,
    stabilizations: st.stabilizations,
    rebalances: st.rebalances,
  };
  if (opts.full) {
    // WᵀW from V's Gram in one pass over V, W never formed: W = V U + 𝟙ωᵀ gives
    // WᵀW = Uᵀ(VᵀV)U + Uᵀs ωᵀ + ω sᵀU + D ωωᵀ and w̄ = Uᵀs + Dω, s = Vᵀ𝟙 (ω = 0 unless the loss uses the sum)
    const usesSum = st.loss.usesSum, D = st.D;
    const G = new Float64Array(d * d), s = usesSum ? new Float64Array(d) : null;
    gramOf(la, st.V, D, d, G, s, st.chunk);
    la.dgemm(false, false, d, d, d, 1, G, d, U, d, 0, T, d);
    la.dgemm(true, false, d, d, d, 1, U, d, T, d, 0, G, d);
    const sumW = s && new Float64Array(d), omega = st.omega;
    if (s && sumW) {
      la.dgemv(true, d, d, 1, U, d, s, 0, sumW); // Uᵀs
      for (let r = 0; r < d; r++) {
        for (let c = 0; c < d; c++) {
          G[r * d + c] += sumW[r] * omega[c] + omega[r] * sumW[c] + D * omega[r] * omega[c];
        }
      }
      for (let c = 0; c < d; c++) sumW[c] += D * omega[c];
    }
    let num = 0, den = 0;
    for (let r = 0; r < d; r++) {
      for (let c = 0; c < d; c++) {
        // the mean of the two triangles: the Gram of W is exactly symmetric, as gramOf makes it
        const g = r === c ? G[r * d + c] : 0.5 * (G[r * d + c] + G[c * d + r]);
        num = Math.max(num, Math.abs(Q[r * d + c] - g));
        den = Math.max(den, Math.abs(Q[r * d + c]));
      }
    }
    out.qDrift = den > 0 ? num / den : num;
    if (sumW) {
      let a = 0, b = 0;
      for (let c = 0; c < d; c++) {
        a = Math.max(a, Math.abs(st.wbar[c] - sumW[c]));
        b = Math.max(b, Math.abs(sumW[c]));
      }
      out.wbarDrift = b > 0 ? a / b : a;
    }
  }
  return Promise.resolve(out);
}

/**
 * Appends n rows to W exactly: V_new = U⁻ᵀ(w − ω) with an exact inverse of U (O(d³) once per call),
 * Q += Σ w wᵀ, w̄ += Σ w; O(d²) per row. V grows with headroom (×1.5).
 *
 * @example
 * ```ts ignore
 * await appendRows(st, new Float32Array(2 * st.d)); // two zero rows of W
 * ```
 *
 * @param st the state (D grows)
 * @param rows n×d rows of W to append
 */
export function appendRows(st: FactoredState, rows: Float32Array): Promise<void> {
  try {
    const d = st.d, D = st.D;
    const n = validateMatrix("rows", rows, -1, d);
    if (n === 0) return Promise.resolve();
    st.settle();
    if (st.Vbuf.length < (D + n) * d) {
      const grown = st.f32(Math.max((D + n) * d, Math.ceil(D * 1.5) * d));
      grown.set(st.V);
      st.Vbuf = grown;
    }
    const Ui = st.dd, omega = st.omega, Q = st.Q, wbar = st.wbar, usesSum = st.loss.usesSum;
    st.mirrorsOk = false;
    reinvert(st.la, st.U, Ui, d); // exact U⁻ᵀ
    const w = st.tmp;
    for (let t = 0; t < n; t++) {
      for (let c = 0; c < d; c++) w[c] = rows[t * d + c] - omega[c];
      const out = (D + t) * d;
      for (let r = 0; r < d; r++) {
        let acc = 0;
        for (let c = 0; c < d; c++) acc += Ui[r * d + c] * w[c];
        st.Vbuf[out + r] = acc;
      }
      for (let r = 0; r < d; r++) {
        const wr = rows[t * d + r];
        for (let c = 0; c < d; c++) Q[r * d + c] += wr * rows[t * d + c];
        if (usesSum) wbar[r] += wr;
      }
    }
    st.D = D + n;
    st.V = st.Vbuf.subarray(0, st.D * d);
    return Promise.resolve();
  } catch (e) {
    return Promise.reject(e);
  }
}
