/**
 * The update-factor guard (lib/output/guard.ts checkUpdateFactor) against a plain reference: λ_min(F) of F
 * = I − 2η G½ S G½ from the largest eigenvalue of G½ S G½ by power iteration. What it returns without a
 * factorisation is a lower bound of λ_min(F) (the stabilisation sums it: factored/scalars.ts addCondBudget),
 * and where the examples share a direction it is the Frobenius norm's, tighter than Gershgorin's.
 *
 * Run: npx deno test -A tests/output_guard_test.ts   (< 1 s)
 */

import assert from "node:assert/strict";
import { checkUpdateFactor, GuardScratch } from "../lib/output/guard.ts";
import { gramOfRows, largestEigenvalue, rng } from "./layers_helpers.ts";

/** Gershgorin's bound on λ_max(G½ S G½). */
function gershgorin(S: Float64Array, g: Float64Array, m: number): number {
  let most = 0;
  for (let a = 0; a < m; a++) {
    let s = 0;
    for (let b = 0; b < m; b++) s += Math.sqrt(g[a] * g[b]) * Math.abs(S[a * m + b]);
    most = Math.max(most, s);
  }
  return most;
}

/** ‖G½ S G½‖_F. */
function frobenius(S: Float64Array, g: Float64Array, m: number): number {
  let s = 0;
  for (let a = 0; a < m; a++) {
    for (let b = 0; b < m; b++) s += g[a] * g[b] * S[a * m + b] ** 2;
  }
  return Math.sqrt(s);
}

Deno.test("checkUpdateFactor: without a factorisation it returns a lower bound of λ_min(F)", () => {
  const r = rng(3), scratch = new GuardScratch();
  for (const [m, d, shared] of [[16, 32, 0], [64, 32, 0], [64, 32, 0.8], [128, 16, 0.5]]) {
    for (let trial = 0; trial < 4; trial++) {
      // rows h_i = shared·u (for half of them) + noise, norms ≈ 1; g_q in (0.5, 1.5)
      const u = Float64Array.from({ length: d }, () => r() - 0.5), H = new Float64Array(m * d);
      const nu = Math.hypot(...u);
      for (let i = 0; i < m; i++) {
        for (let k = 0; k < d; k++) {
          H[i * d + k] = (i % 2 === 0 ? shared * u[k] / nu : 0) + (r() - 0.5) * 2 / Math.sqrt(d);
        }
      }
      const S = gramOfRows(H, m, d), g = Float64Array.from({ length: m }, () => 0.5 + r());
      // η just inside the quick accept: the smaller bound gives 1 − 2η·bound = 0.502 (no factorisation)
      const lam = largestEigenvalue(S, m, g), eta = 0.249 / Math.min(gershgorin(S, g, m), frobenius(S, g, m));
      const got = checkUpdateFactor(m, eta, g, S, 1, scratch);
      assert.ok(got <= 1 - 2 * eta * lam + 1e-12, `m ${m}: ${got} > λ_min(F) = ${1 - 2 * eta * lam}`);
      assert.ok(Math.abs(got - 0.502) < 1e-12, `m ${m}: ${got} (the quick accept's value)`);
    }
  }
});

Deno.test("checkUpdateFactor: examples that share a direction get the Frobenius bound, tighter than Gershgorin's", () => {
  // 32 of 64 examples along one direction u (a frequent word in every bag), the rest independent: λ_max is
  // ≈ the shared block's, Gershgorin's row sums add the independent rows' |h_a·h_b| on top
  const r = rng(5), m = 64, d = 32, scratch = new GuardScratch();
  const u = Float64Array.from({ length: d }, () => r() - 0.5), H = new Float64Array(m * d);
  const nu = Math.hypot(...u);
  for (let i = 0; i < m; i++) {
    for (let k = 0; k < d; k++) H[i * d + k] = (i < 32 ? u[k] / nu : 0) + (r() - 0.5) * 0.6 / Math.sqrt(d);
  }
  const S = gramOfRows(H, m, d), g = new Float64Array(m).fill(1);
  const lam = largestEigenvalue(S, m, g), gersh = gershgorin(S, g, m);
  const eta = 0.249 / gersh; // Gershgorin alone: 1 − 2η·gersh = 0.502, a quick accept
  const got = checkUpdateFactor(m, eta, g, S, 1, scratch), truth = 1 - 2 * eta * lam;
  assert.ok(got <= truth + 1e-12, `${got} > λ_min(F) = ${truth}`);
  assert.ok(
    got > 0.5 + 0.5 * (truth - 0.5),
    `${got}: not much tighter than Gershgorin's 0.5 (λ_min(F) = ${truth})`,
  );
});
