/**
 * Exactness of the factored output layer against the naive (dense-W) reference, docs/factored-step.md
 * "Exactness": same W₀, same random K-sparse batches (repeated indices within and across examples), per-step
 * loss and ∇H, and W = VU + 𝟙ωᵀ against the naive W after thousands of steps, in float32, stabilisation on.
 *
 * Run: npx deno test -A tests/layers_exact_test.ts   (≈ 1 min on 2 cores; the 10,000-step run is most of it)
 */

import assert, { equal as assertEquals } from "node:assert/strict";
import { FactoredOutputLayer } from "../lib/output/factored/layer.ts";
import { MergedTargets } from "../lib/core/csr.ts";
import { createBackend } from "../lib/linalg/select.ts";
import { createLoss } from "../lib/losses/mod.ts";
import type { LossName, OutputLayer, SparseBatch } from "../lib/core/types.ts";
import {
  blasAvailable,
  cpuBackends,
  makeLayer,
  randomBatch,
  randomH,
  relDiff,
  relMaxDiff,
  rng,
  uniform,
} from "./layers_helpers.ts";

const backends = await cpuBackends();

/** Runs naive and factored side by side; returns the worst per-step loss and ∇H differences and final W's. */
async function sideBySide(
  naive: OutputLayer,
  fact: OutputLayer,
  r: () => number,
  steps: number,
  m: number,
  K: number,
  eta: number,
): Promise<{ loss: number; gradH: number; W: number }> {
  const { D, d } = naive;
  let loss = 0, gradH = 0;
  for (let t = 0; t < steps; t++) {
    const H = randomH(r, m, d, 1);
    const Y = randomBatch(r, m, D, K, { weighted: true, dupProb: 0.25 });
    const a = await naive.step(H, Y, eta);
    const b = await fact.step(H, Y, eta);
    loss = Math.max(loss, relDiff(b.loss, a.loss));
    gradH = Math.max(gradH, relMaxDiff(b.gradH, a.gradH));
  }
  return { loss, gradH, W: relMaxDiff(await fact.weights(), await naive.weights()) };
}

for (const backend of backends) {
  Deno.test(`exact per step, squared error, m ∈ {1, 7, 64} (64 > d = 16), backend ${backend}`, async () => {
    // tolerances (float32 state, observed ≈ 1e-7 / 2e-6 / 6e-7): loss 1e-5, ∇H 1e-4, W after 150 steps 1e-5
    const D = 300, d = 16, K = 4;
    for (const [m, eta] of [[1, 0.1], [7, 0.03], [64, 0.01]]) {
      const r = rng(100 + m);
      const W0 = uniform(r, D * d, 0.1);
      const lines: string[] = [];
      const naive = await makeLayer("naive", backend, D, d, W0, "squared", {}, lines);
      const fact = await makeLayer("factored", backend, D, d, W0, "squared", { stabilizeEvery: 20 }, lines);
      assert(
        lines.some((l) => l.includes(`factored output layer D=${D} d=${d} loss=squared backend=${backend}`)),
      );
      assertEquals(fact.backend, backend);
      const e = await sideBySide(naive, fact, r, 150, m, K, eta);
      assert(e.loss <= 1e-5, `m=${m}: loss differs by ${e.loss}`);
      assert(e.gradH <= 1e-4, `m=${m}: ∇H differs by ${e.gradH}`);
      assert(e.W <= 1e-5, `m=${m}: W differs by ${e.W}`);
      const dg = await fact.diagnostics({ full: true });
      // Woodbury increments in float32 (blas default) leave max|UU⁻¹ − I| ≈ 4e-8 between re-inversions
      assert(dg.inverseError < (backend === "js" ? 1e-9 : 1e-6), `inverseError ${dg.inverseError}`);
      assert(dg.qDrift! < 1e-5, `qDrift ${dg.qDrift}`);
      naive.close();
      fact.close();
    }
  });

  Deno.test(`a stabilisation that finds cond(U) > maxCond rebalances U and V, W unchanged, backend ${backend}`, async () => {
    const D = 300, d = 16, K = 4, maxCond = 1.5;
    const r = rng(77);
    const W0 = uniform(r, D * d, 0.1);
    const naive = await makeLayer("naive", backend, D, d, W0);
    const la = await createBackend(backend, { log: () => {} });
    // no automatic upkeep, so that U drifts freely; then one stabilisation, by hand
    const fact = FactoredOutputLayer.fromInit(D, d, W0, createLoss("squared"), la, {
      stabilizeEvery: 0,
      maxCond,
    });
    const e = await sideBySide(naive, fact, r, 300, 7, K, 0.05);
    assert(e.W <= 1e-5, `W differs by ${e.W} before the stabilisation`);
    const before = await fact.diagnostics();
    // the case must need the rebalance: U drifted past maxCond and none has run yet
    assert(
      before.condU > 2 * maxCond,
      `condU ${before.condU}: the case no longer drives cond(U) past maxCond`,
    );
    assertEquals(before.rebalances, 0);
    fact.stabilize();
    const after = await fact.diagnostics({ full: true });
    assertEquals(after.rebalances, 1, "a stabilisation with cond(U) > maxCond at d ≤ 64 rebalances");
    // the rebalance brings the singular values into [0.5, 2] (a fold, if it could not, makes U ≈ I)
    assert(after.condU <= 4 * maxCond, `condU ${after.condU} after the rebalance (was ${before.condU})`);
    assert(after.inverseError < 1e-9, `inverseError ${after.inverseError}`);
    const W = relMaxDiff(await fact.weights(), await naive.weights());
    assert(W <= 1e-5, `W differs by ${W} after the rebalance`);
    naive.close();
    fact.close();
  });

  Deno.test(`Woodbury and direct re-inversion both exact, forced either way, backend ${backend}`, async () => {
    const D = 200, d = 16, K = 3;
    for (
      const [m, minDirect, eta] of [[7, 1, 0.03], [64, 1_000_000, 0.01], [7, 1_000_000, 0.03], [64, 1, 0.01]]
    ) {
      const r = rng(7 * m + minDirect);
      const W0 = uniform(r, D * d, 0.1);
      const naive = await makeLayer("naive", backend, D, d, W0);
      const la = await createBackend(backend, { log: () => {} });
      const fact = FactoredOutputLayer.fromInit(D, d, W0, createLoss("squared"), la, {
        directSolveMinBatch: minDirect,
        stabilizeEvery: 0,
        recomputeQEvery: 0,
      });
      const e = await sideBySide(naive, fact, r, 60, m, K, eta);
      const path = m >= minDirect ? "direct" : "Woodbury";
      assert(e.loss <= 1e-5 && e.gradH <= 1e-4 && e.W <= 1e-5, `${path} m=${m}: ${JSON.stringify(e)}`);
      naive.close();
      fact.close();
    }
  });
}

for (const backend of backends) {
  Deno.test(`float32 products (sgemm into float64 state): exact per step, m ∈ {1, 7, 40}, d = 32, ${backend}`, async () => {
    // tolerances as for float64 products; measured ∇H ≈ 2e-6, W ≈ 1e-6 after 150 steps
    const D = 300, d = 32, K = 4;
    for (const [m, eta] of [[1, 0.1], [7, 0.03], [40, 0.01]]) {
      const r = rng(300 + m);
      const W0 = uniform(r, D * d, 0.1);
      const naive = await makeLayer("naive", backend, D, d, W0);
      const la = await createBackend(backend, { log: () => {} });
      const fact = FactoredOutputLayer.fromInit(D, d, W0, createLoss("squared"), la, {
        products: "float32",
        stabilizeEvery: 20,
      });
      assert.equal(fact.products, "float32");
      const e = await sideBySide(naive, fact, r, 150, m, K, eta);
      assert(e.loss <= 1e-5 && e.gradH <= 1e-4 && e.W <= 1e-5, `m=${m}: ${JSON.stringify(e)}`);
      naive.close();
      fact.close();
    }
  });
}

Deno.test("long run: 10,000 steps, D = 5,000, d = 64, m = 32, K = 5, float32, stabilisation on", async () => {
  // The naive reference runs on blas (≈ 2 ms/step; the js naive layer is ≈ 40 ms/step at this size,
  // far too slow for a test); the factored layer runs on js and on blas against the same naive W. With
  // OpenBLAS, js takes the first 1,000 steps (its own linear algebra at the 1,000-step bound; ≈ 1.8 ms a
  // step, half the test's time over 10,000) and blas the 10,000 (step64.ts and step32.ts, the same steps).
  // Measured (this file): drift ≈ 7e-7 at 1,000 steps and ≈ 1.0–1.2e-6 at 10,000 (both backends).
  // Asserted: ≤ 5e-6 at 1,000 and ≤ 1e-4 at 10,000 (the bound), and bounded, not growing:
  // the 10,000-step drift is at most 10× the 1,000-step one.
  const haveBlas = await blasAvailable();
  const steps = haveBlas ? 10_000 : 1_000; // without OpenBLAS (not under CI) only the 1,000-step bound
  const D = 5000, d = 64, m = 32, K = 5, eta = 0.02;
  const r = rng(7);
  const W0 = uniform(r, D * d, 0.05);
  const refBackend = haveBlas ? "blas" : "js";
  const naive = await makeLayer("naive", refBackend, D, d, W0);
  const facts = [];
  // recomputeQEvery 3,000 (default 5,000) so that step 10,000 is not a fold: U, U⁻ᵀ and Q are then
  // 1,000 steps of incremental updates old, and their diagnostics mean something
  const names: string[] = [], until: number[] = [];
  for (const b of backends) {
    until.push(b === "js" && haveBlas ? 1000 : steps);
    const la = await createBackend(b, { log: () => {} });
    facts.push(FactoredOutputLayer.fromInit(D, d, W0, createLoss("squared"), la, {
      recomputeQEvery: 3000,
      products: "float64",
    }));
    names.push(`${b} (float64 products)`);
  }
  if (haveBlas) {
    // the float32-products path (the blas default from d = 64) on the same run
    const la = await createBackend("blas", { log: () => {} });
    facts.push(FactoredOutputLayer.fromInit(D, d, W0, createLoss("squared"), la, {
      recomputeQEvery: 3000,
      products: "float32",
    }));
    names.push("blas (float32 products)");
    until.push(steps);
  }
  const drift1k: number[] = [];
  for (let t = 1; t <= steps; t++) {
    const H = randomH(r, m, d, 1);
    const Y = randomBatch(r, m, D, K);
    await naive.step(H, Y, eta);
    for (let i = 0; i < facts.length; i++) if (t <= until[i]) await facts[i].step(H, Y, eta);
    if (t === 1000 || t === steps) {
      const Wn = await naive.weights();
      for (let i = 0; i < facts.length; i++) {
        if (t > until[i]) continue;
        const drift = relMaxDiff(await facts[i].weights(), Wn);
        const dg = await facts[i].diagnostics({ full: true });
        console.log(
          `long run, factored ${names[i]} vs naive ${refBackend}, step ${t}: ` +
            `max|W_f − W_n|/max|W_n| = ${drift.toExponential(2)}, condU ${dg.condU.toFixed(2)}, ` +
            `qDrift ${dg.qDrift!.toExponential(2)}, inverseError ${dg.inverseError.toExponential(2)}, ` +
            `rebalances ${dg.rebalances}, folds ${dg.folds}`,
        );
        assert(dg.qDrift! < 1e-5, `qDrift ${dg.qDrift}`);
        assert(dg.inverseError < 1e-8, `inverseError ${dg.inverseError}`);
        if (t === 1000) {
          assert(drift <= 5e-6, `drift at 1,000 steps ${drift} > 5e-6 (${names[i]})`);
          drift1k[i] = drift;
        }
        if (t === 10_000) {
          assert(drift <= 1e-4, `drift at 10,000 steps ${drift} > 1e-4 (${names[i]})`);
          assert(drift <= 10 * Math.max(drift1k[i], 1e-7), `drift grows: ${drift1k[i]} → ${drift}`);
        }
      }
    }
  }
  naive.close();
  for (const f of facts) f.close();
});

/**
 * Float64 dense reference (plain loops, independent of both layers and of the backends): W ← W − η ∇Oᵀ H
 * with the loss's dense() per example. Returns loss and ∇H of the step; `gq` receives each example's g_q.
 */
class Dense64 {
  W: Float64Array;
  #o: Float64Array;
  #dO: Float64Array;
  #mg = new MergedTargets();
  constructor(
    readonly D: number,
    readonly d: number,
    W0: Float32Array,
    readonly lossName: LossName,
    readonly eps: number,
  ) {
    this.W = Float64Array.from(W0);
    this.#o = new Float64Array(D);
    this.#dO = new Float64Array(D);
  }
  step(H: Float32Array, Y: SparseBatch, eta: number, gq: number[]): { loss: number; gradH: Float64Array } {
    const { D, d, W } = this;
    const loss = createLoss(this.lossName, { epsilon: this.eps });
    const m = Y.offsets.length - 1, o = this.#o, mg = this.#mg;
    mg.merge(Y);
    const grads = new Float64Array(m * d), dOs: Float64Array[] = [];
    let L = 0;
    for (let i = 0; i < m; i++) {
      let q = 0, s = 0;
      for (let j = 0; j < D; j++) {
        let a = 0;
        for (let c = 0; c < d; c++) a += W[j * d + c] * H[i * d + c];
        o[j] = a;
        q += a * a;
        s += a;
      }
      const idx = mg.idx.slice(mg.off[i], mg.off[i + 1]), y = mg.w.slice(mg.off[i], mg.off[i + 1]);
      const dO = new Float64Array(D);
      L += loss.dense(o, idx, y, idx.length, dO);
      const oc = Float64Array.from(idx, (c) => o[c]), g = { gq: 0, gs: 0 };
      loss.fromStats(oc, y, idx.length, q, s, D, new Float64Array(idx.length), g);
      gq.push(g.gq);
      for (let j = 0; j < D; j++) for (let c = 0; c < d; c++) grads[i * d + c] += W[j * d + c] * dO[j];
      dOs.push(dO);
    }
    for (let i = 0; i < m; i++) {
      const dO = dOs[i];
      for (let j = 0; j < D; j++) {
        const f = eta * dO[j];
        if (f !== 0) { for (let c = 0; c < d; c++) W[j * d + c] -= f * H[i * d + c]; }
      }
    }
    void this.#dO;
    return { loss: L, gradH: grads };
  }
}

const LOSS_RUNS: { loss: LossName; eta: number; eps: number }[] = [
  { loss: "squared", eta: 0.03, eps: 1e-6 },
  // spherical with ε = 0.1: with a small ε (the loss's default is 1e-3, lib/losses/options.ts) the
  // gradient reaches 1/√ε near o_c = 0 and a learning rate that trains at all makes the trajectory chaotic
  // (float32 noise amplified; naive and factored drift apart equally from a float64 run), so exactness is
  // tested where training is stable.
  { loss: "spherical", eta: 0.01, eps: 0.1 },
  { loss: "taylor", eta: 1, eps: 1e-6 },
  { loss: "zloss", eta: 0.05, eps: 1e-6 },
];

for (const backend of backends) {
  for (const run of LOSS_RUNS) {
    Deno.test(`${run.loss}: 1,000 steps naive vs factored vs float64 reference, weighted K ≤ 4 with repeats, ${backend}`, async () => {
      // Both float32 layers are compared with the float64 dense reference. Asserted: the factored layer's
      // errors are within 3× the naive float32 layer's (+ a small floor), and below absolute ceilings:
      // loss 1e-5, ∇H 1e-3 (relative to max|∇H| of the step: ∇H cancels, so float32 noise shows), W 2e-5.
      const D = 300, d = 16, m = 7, K = 4, steps = 1000;
      const r = rng(3);
      const W0 = uniform(r, D * d, 0.1);
      const lossOptions = { epsilon: run.eps };
      const naive = await makeLayer("naive", backend, D, d, W0, run.loss, { lossOptions });
      const fact = await makeLayer("factored", backend, D, d, W0, run.loss, { lossOptions });
      const ref = new Dense64(D, d, W0, run.loss, run.eps);
      const gq: number[] = [];
      const worst = { nL: 0, fL: 0, nG: 0, fG: 0 };
      for (let t = 0; t < steps; t++) {
        const H = randomH(r, m, d, 1);
        const Y = randomBatch(r, m, D, K, { weighted: true, varyK: true, dupProb: 0.3 });
        const e = ref.step(H, Y, run.eta, gq);
        const a = await naive.step(H, Y, run.eta);
        const b = await fact.step(H, Y, run.eta);
        worst.nL = Math.max(worst.nL, relDiff(a.loss, e.loss));
        worst.fL = Math.max(worst.fL, relDiff(b.loss, e.loss));
        worst.nG = Math.max(worst.nG, relMaxDiff(a.gradH, e.gradH));
        worst.fG = Math.max(worst.fG, relMaxDiff(b.gradH, e.gradH));
      }
      const nW = relMaxDiff(await naive.weights(), ref.W), fW = relMaxDiff(await fact.weights(), ref.W);
      console.log(
        `${run.loss} ${backend}: vs float64 — loss naive ${worst.nL.toExponential(2)} factored ${
          worst.fL.toExponential(2)
        }; ∇H naive ${worst.nG.toExponential(2)} factored ${worst.fG.toExponential(2)}; W naive ${
          nW.toExponential(2)
        } factored ${fW.toExponential(2)}`,
      );
      assert(
        worst.fL <= 3 * worst.nL + 1e-7 && worst.fL <= 1e-5,
        `loss error ${worst.fL} (naive ${worst.nL})`,
      );
      // ∇H and W: 3× holds on this seed's data (mulberry32); on other seeds (3–6, either generator) the
      // ratio was measured up to 5.2× (∇H) and 3.4× (W), under the absolute ceilings: the data stay pinned.
      assert(worst.fG <= 3 * worst.nG + 1e-6 && worst.fG <= 1e-3, `∇H error ${worst.fG} (naive ${worst.nG})`);
      assert(fW <= 3 * nW + 1e-7 && fW <= 2e-5, `W error ${fW} (naive ${nW})`);
      if (run.loss === "zloss") {
        const neg = gq.filter((g) => g < 0).length;
        assert(neg > 0, "the Z-loss run should include examples with negative g_q (U expanding)");
        console.log(`zloss: ${neg} of ${gq.length} examples had g_q < 0`);
      }
      naive.close();
      fact.close();
    });
  }
}
