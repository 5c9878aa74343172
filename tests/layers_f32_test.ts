/**
 * The float32-products path of the factored layer (the blas default from d = 64) for every loss, on both
 * CPU backends, against the naive layer from the same W₀ on the same batches: online (m = 1, rank-1 float64
 * loops), Woodbury (m = 6: Cholesky solve when every g_q > 0, an LU inverse when the Z-loss gives some
 * g_q ≤ 0) and direct re-inversion (m = 40 > d/2), with the spherical family's ω, w̄ terms (spherical,
 * Taylor, Z-loss). Each run must take most of its steps in float32 (`steps32`), else it would test the
 * float64 path.
 *
 * Tolerances as in losses_layers_test.ts (measured worst over these runs ≈ 10× below): per step
 * |L_f − L_n| ≤ 2e-5·(1 + |L_n|), max|∇H_f − ∇H_n| ≤ tolGrad·(1 + max|∇H_n|) (tolGrad 2e-5; 1e-3 for the
 * spherical softmax, whose ∇H cancels), and after the run max|W_f − W_n| ≤ 3e-5·max|W_n|.
 *
 * Run: npx deno test -A tests/layers_f32_test.ts   (a few seconds)
 */

import assert from "node:assert/strict";
import { FactoredOutputLayer } from "../lib/output/factored/layer.ts";
import { createBackend } from "../lib/linalg/select.ts";
import { createLoss } from "../lib/losses/mod.ts";
import type { LossName, LossOptions } from "../lib/core/types.ts";
import { cpuBackends, makeLayer, randomBatch, randomH, relMaxDiff, rng, uniform } from "./layers_helpers.ts";

const backends = await cpuBackends();

const SETTINGS: Record<LossName, { eta: number; options: LossOptions; tolGrad: number }> = {
  squared: { eta: 0.02, options: {}, tolGrad: 2e-5 },
  spherical: { eta: 0.005, options: { epsilon: 1e-2 }, tolGrad: 1e-3 },
  taylor: { eta: 0.05, options: {}, tolGrad: 2e-5 },
  zloss: { eta: 0.02, options: {}, tolGrad: 2e-5 },
};

for (const backend of backends) {
  for (const lossName of Object.keys(SETTINGS) as LossName[]) {
    Deno.test(`float32 products, ${lossName}, m ∈ {1, 6, 40}, d = 32: factored = naive, ${backend}`, async () => {
      const { eta, options, tolGrad } = SETTINGS[lossName];
      const D = 300, d = 32, K = 4, steps = 200;
      for (const m of [1, 6, 40]) {
        const r = rng(700 + m);
        const W0 = uniform(r, D * d, 0.5 / Math.sqrt(d));
        const naive = await makeLayer("naive", backend, D, d, W0, lossName, { lossOptions: options });
        const la = await createBackend(backend, { log: () => {} });
        const fact = FactoredOutputLayer.fromInit(D, d, W0, createLoss(lossName, options), la, {
          products: "float32",
          stabilizeEvery: 25,
        });
        let worstLoss = 0, worstGrad = 0;
        for (let t = 0; t < steps; t++) {
          const H = randomH(r, m, d, 1);
          const Y = randomBatch(r, m, D, K, { weighted: true, dupProb: 0.25 });
          const a = await naive.step(H, Y, eta);
          const b = await fact.step(H, Y, eta);
          worstLoss = Math.max(worstLoss, Math.abs(b.loss - a.loss) / (1 + Math.abs(a.loss)));
          let num = 0, den = 0;
          for (let j = 0; j < a.gradH.length; j++) {
            num = Math.max(num, Math.abs(b.gradH[j] - a.gradH[j]));
            den = Math.max(den, Math.abs(a.gradH[j]));
          }
          worstGrad = Math.max(worstGrad, num / (1 + den));
        }
        const W = relMaxDiff(await fact.weights(), await naive.weights());
        const what =
          `${lossName} m=${m}: loss ${worstLoss.toExponential(2)}, ∇H ${worstGrad.toExponential(2)}, ` +
          `W ${W.toExponential(2)}, float32 steps ${fact.steps32}/${steps}`;
        console.log(what);
        assert(fact.steps32 >= 0.8 * steps, `${what}: the float32 path should take most steps`);
        assert(worstLoss <= 2e-5, what);
        assert(worstGrad <= tolGrad, what);
        assert(W <= 3e-5, what);
        naive.close();
        fact.close();
      }
    });
  }
}
