/**
 * The factored layer's numerical upkeep (lib/output/factored/upkeep.ts) against its plain references: the
 * stabilisation's re-inversion by Newton steps (reinvertFrom) against the LU inverse (reinvert).
 *
 * Run: npx deno test -A tests/layers_upkeep_test.ts   (≈ 1 s)
 */

import assert from "node:assert/strict";
import { createBackend } from "../lib/linalg/select.ts";
import { REFINE_MAX_RESIDUAL, reinvert, reinvertFrom } from "../lib/output/factored/upkeep.ts";
import { cpuBackends, relMaxDiff, rng } from "./layers_helpers.ts";

/** max|I − UᵀY| for row-major d×d U and Y (plain loops). */
function residual(U: Float64Array, Y: Float64Array, d: number): number {
  let worst = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = i === j ? 1 : 0;
      for (let k = 0; k < d; k++) s -= U[k * d + i] * Y[k * d + j];
      worst = Math.max(worst, Math.abs(s));
    }
  }
  return worst;
}

for (const backend of await cpuBackends()) {
  Deno.test(`reinvertFrom (${backend}): a Newton step or the LU inverse, each at the LU inverse's accuracy`, async () => {
    const la = await createBackend(backend, { log: () => {} });
    try {
      const d = 64, r = rng(7);
      const U = new Float64Array(d * d);
      for (let j = 0; j < d * d; j++) U[j] = 0.1 * (2 * r() - 1);
      for (let k = 0; k < d; k++) U[k * d + k] += 1;
      const lu = new Float64Array(d * d);
      reinvert(la, U, lu, d);
      const luResidual = residual(U, lu, d);
      assert.ok(luResidual < 1e-13, `LU residual ${luResidual}`);
      const T = new Float64Array(d * d), C = new Float64Array(d * d);
      // a maintained U⁻ᵀ off by a relative p: max|I − UᵀY| ≈ p·(a few), so p picks the path
      const cases = [
        { p: 1e-10, refined: true, why: "Newton" },
        { p: 3e-7, refined: false, why: "LU, just above the bound" },
        { p: 1e-3, refined: false, why: "LU" },
      ];
      for (const { p, refined, why } of cases) {
        const Y = lu.map((x) => x * (1 + p * (2 * r() - 1)));
        const before = residual(U, Y, d);
        assert.equal(before <= REFINE_MAX_RESIDUAL, refined, `${why}: residual ${before}`);
        assert.equal(reinvertFrom(la, U, Y, d, T, C), refined, why);
        // rounding level: the LU inverse's own residual (a Newton step from 3e-7 would leave ≈ 1e-13)
        const after = residual(U, Y, d);
        assert.ok(after <= 4 * luResidual, `${why}: residual ${after} after, LU's ${luResidual}`);
        assert.ok(relMaxDiff(Y, lu) < 1e-13, `${why}: ${relMaxDiff(Y, lu)} from the LU inverse`);
      }
    } finally {
      la.close();
    }
  });
}
