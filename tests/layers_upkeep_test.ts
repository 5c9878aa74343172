/**
 * The factored layer's numerical upkeep (lib/output/factored/upkeep.ts) against its plain references: the
 * stabilisation's re-inversion by Newton steps (reinvertFrom) against the LU inverse (reinvert).
 *
 * Run: npx deno test -A tests/layers_upkeep_test.ts   (≈ 1 s)
 */

import assert from "node:assert/strict";
import { createBackend } from "../lib/linalg/select.ts";
import { REFINE_MAX_RESIDUAL, reinvert, reinvertFrom } from "../lib/output/factored/upkeep.ts";
import { FactoredOutputLayer } from "../lib/output/factored/layer.ts";
import { createLoss } from "../lib/losses/mod.ts";
import { cpuBackends, randomH, relMaxDiff, rng, uniform } from "./layers_helpers.ts";

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

for (const backend of await cpuBackends()) {
  Deno.test(`stabilisation (${backend}): steps that each halve U along one direction keep cond(U) bounded`, async () => {
    // the same example h again and again (a small vocabulary, a high rate): each step multiplies U by
    // F = I − 2η g h hᵀ, whose eigenvalue along h is ≈ 0.55 — a factor inside [½, 2], so no single step is
    // strong, but cond(U) doubles at each. The upkeep must stabilise before it runs away (it reached 10¹²
    // within the 100 steps between scheduled stabilisations when such steps counted for nothing). A
    // stabilisation leaves cond(U) ≤ 4·maxCond (d ≤ 64: a rebalance, folded beyond), and the next comes once
    // the steps may have doubled it: ≤ 8·maxCond
    const la = await createBackend(backend, { log: () => {} });
    const D = 40, d = 64, m = 4, r = rng(11);
    const W0 = uniform(r, D * d, 0.5 / Math.sqrt(d));
    const layer = FactoredOutputLayer.fromInit(D, d, W0, createLoss("squared"), la, {});
    try {
      const h = randomH(r, 1, d, 1), H = new Float32Array(m * d);
      for (let i = 0; i < m; i++) H.set(h, i * d);
      const Y = {
        offsets: Int32Array.from([0, 1, 2, 3, 4]),
        indices: Int32Array.from([3, 9, 17, 30]),
        values: new Float32Array(4).fill(1),
      };
      // η such that the factor along h is 0.55: 2η·m·g·‖h‖² = 0.45, g = 1 for the squared loss
      const eta = 0.45 / (2 * m);
      let worst = 0, factors = 0;
      for (let t = 0; t < 120; t++) {
        const before = await layer.diagnostics();
        await layer.step(H, Y, eta);
        const after = await layer.diagnostics();
        worst = Math.max(worst, after.condU);
        if (after.stabilizations === before.stabilizations && after.condU > 1.5 * before.condU) factors++;
      }
      assert.ok(factors > 10, `the steps should grow cond(U) (${factors} did)`);
      assert.ok(
        worst <= 8 * layer.maxCond,
        `cond(U) reached ${worst.toPrecision(3)} (maxCond ${layer.maxCond})`,
      );
      const { qDrift } = await layer.diagnostics({ full: true });
      assert.ok(qDrift! < 1e-4, `Q drift ${qDrift}`);
    } finally {
      layer.close();
    }
  });
}
