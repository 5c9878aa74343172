/**
 * Every loss through the output layers (lib/layers): the naive layer (dense W, textbook O(Dd) step with the
 * loss's dense() form) against the factored layer (O(d² + Kd), the loss's fromStats form), on both CPU
 * backends, over 2,000 SGD steps of minibatches with K > 1 weighted targets and repeated indices, plus
 * all-zero h rows and zero weights inside a batch.
 *
 * Tolerances (float32 state in both layers; the factored layer stabilises every 50 steps by default): per
 * step |L_f − L_n| ≤ tolLoss·(1 + |L_n|) and max|∇H_f − ∇H_n| ≤ tolGrad·(1 + max|∇H_n|); after the last step
 * max|W_f − W_n| ≤ tolW·max|W_n|, per loss in SETTINGS below, or within SENSITIVITY_FACTOR × the trajectory's
 * own float32 rounding sensitivity where that is larger (see compareRuns).
 */

import assert from "node:assert/strict";
import { createOutputLayer } from "../lib/output/create.ts";
import { createLoss, LOSS_NAMES } from "../lib/losses/mod.ts";
import type { BackendName, LossName, LossOptions, OutputLayer, SparseBatch } from "../lib/core/types.ts";
import { mulberry32 as rng } from "../lib/core/rng.ts";

/**
 * Per-loss settings of the long run. Measured worst errors over 2,000 steps (js and blas): squared, taylor,
 * zloss: loss ≤ 2.5e-7, gradH ≤ 3.5e-6, W ≤ 2e-6 (relative as above); spherical (ε = 1e-2): loss 3.3e-6,
 * gradH 3e-4, W 5.3e-6. The tolerances below leave a margin of 5–10×.
 *
 * Spherical softmax runs with ε = 1e-2 and a smaller η: its ẏ_c = −2y_c o_c/(o_c² + ε) has slope up to 2y_c/ε
 * in o_c, so with a small ε a target output near 0 turns float32 rounding into large, diverging kicks; with
 * ε = 1e-3 (the default) and η = 0.005 even two naive runs whose W₀ differ by 6e-8 relative end 6e-2 apart in
 * W after 2,000 steps (docs/losses.md). The default ε gets its own 500-step run below.
 */
const SETTINGS: Record<
  LossName,
  { eta: number; options: LossOptions; tolLoss: number; tolGrad: number; tolW: number }
> = {
  squared: { eta: 0.02, options: {}, tolLoss: 2e-5, tolGrad: 2e-5, tolW: 3e-5 },
  spherical: { eta: 0.005, options: { epsilon: 1e-2 }, tolLoss: 2e-5, tolGrad: 1e-3, tolW: 3e-5 },
  taylor: { eta: 0.05, options: {}, tolLoss: 2e-5, tolGrad: 2e-5, tolW: 3e-5 },
  zloss: { eta: 0.02, options: {}, tolLoss: 2e-5, tolGrad: 2e-5, tolW: 3e-5 },
};

/** How many times the trajectory's own float32 rounding sensitivity an error may reach (see compareRuns). */
const SENSITIVITY_FACTOR = 10;
const STEPS = Number(Deno.env.get("FACTOROUT_LOSS_LAYER_STEPS") ?? 2000);
const D = 400, d = 16, m = 4;
const BACKENDS: BackendName[] = ["js", "blas"];

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** W₀ uniform in ±1/√d·0.5 (outputs of order 0.3 for ‖h‖ ≈ 1). */
function initW(r: () => number): Float32Array {
  const W = new Float32Array(D * d);
  const a = 0.5 / Math.sqrt(d);
  for (let i = 0; i < W.length; i++) W[i] = (2 * r() - 1) * a;
  return W;
}

/**
 * A minibatch: m rows of h with ‖h‖ ≈ 1; each example has 1…4 targets, drawn 40 % of the time from 6
 * "frequent" rows (so indices repeat across examples), with a repeated index inside an example every
 * fifth example and weights in [0, 1.5] (an exact 0 every so often).
 */
function randomBatch(r: () => number, step: number): { H: Float32Array; Y: SparseBatch } {
  const H = new Float32Array(m * d);
  for (let i = 0; i < H.length; i++) H[i] = normal(r) / Math.sqrt(d);
  const offsets = new Int32Array(m + 1), idx: number[] = [], val: number[] = [];
  for (let i = 0; i < m; i++) {
    const K = 1 + Math.floor(r() * 4);
    for (let k = 0; k < K; k++) {
      idx.push(r() < 0.4 ? Math.floor(r() * 6) : Math.floor(r() * D));
      val.push((step + i + k) % 11 === 0 ? 0 : 1.5 * r());
    }
    if ((step + i) % 5 === 0) {
      idx.push(idx[idx.length - 1]); // the same index twice in one example: weights add up
      val.push(0.25);
    }
    offsets[i + 1] = idx.length;
  }
  return { H, Y: { offsets, indices: Int32Array.from(idx), values: Float32Array.from(val) } };
}

function maxAbs(a: ArrayLike<number>): number {
  let x = 0;
  for (let i = 0; i < a.length; i++) x = Math.max(x, Math.abs(a[i]));
  return x;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let x = 0;
  for (let i = 0; i < a.length; i++) x = Math.max(x, Math.abs(a[i] - b[i]));
  return x;
}

async function pair(
  loss: LossName,
  backend: BackendName,
  init: Float32Array,
  lossOptions: LossOptions = {},
): Promise<[OutputLayer, OutputLayer]> {
  const log = () => {};
  const naive = await createOutputLayer({ kind: "naive", D, d, init, loss, lossOptions, backend, log });
  const factored = await createOutputLayer({ kind: "factored", D, d, init, loss, lossOptions, backend, log });
  assert.equal(factored.backend, backend, `the factored layer runs on ${factored.backend}, not ${backend}`);
  return [naive, factored];
}

type Settings = { eta: number; options: LossOptions; tolLoss: number; tolGrad: number; tolW: number };

/** W₀ with every entry moved by a float32-rounding-sized relative amount (≤ 1.8e-7). */
function perturb(W: Float32Array): Float32Array {
  return W.map((v, i) => v * (1 + ((i % 7) - 3) * 6e-8));
}

/**
 * Runs naive and factored side by side for `steps` steps and checks every step and W at the end. A third
 * layer, naive from a W₀ perturbed at float32 rounding level, measures how much this trajectory amplifies
 * rounding by itself: an error is accepted if it is within the stated tolerance OR within
 * SENSITIVITY_FACTOR × the largest naive-vs-perturbed-naive difference seen so far (the loss landscape of
 * spherical softmax, for one, turns rounding into diverging kicks near o_c = 0; no float32 implementation
 * can track another better than that). A wrong formula or a broken update gives errors of order 1.
 */
async function compareRuns(loss: LossName, backend: BackendName, set: Settings, steps: number, seed: number) {
  const r = rng(seed);
  const init = initW(r);
  const [naive, factored] = await pair(loss, backend, init, set.options);
  const [reference] = await pair(loss, backend, perturb(init), set.options);
  let worstL = 0, worstG = 0, sensL = 0, sensG = 0, early = 0, late = 0;
  try {
    for (let step = 0; step < steps; step++) {
      const { H, Y } = randomBatch(r, step);
      const n = await naive.step(H, Y, set.eta);
      const f = await factored.step(H, Y, set.eta);
      const p = await reference.step(H, Y, set.eta);
      assert.ok(
        Number.isFinite(n.loss) && Number.isFinite(f.loss),
        `step ${step}: loss ${n.loss} / ${f.loss}`,
      );
      const scaleL = 1 + Math.abs(n.loss), scaleG = 1 + maxAbs(n.gradH);
      const eL = Math.abs(f.loss - n.loss) / scaleL, eG = maxAbsDiff(f.gradH, n.gradH) / scaleG;
      sensL = Math.max(sensL, Math.abs(p.loss - n.loss) / scaleL);
      sensG = Math.max(sensG, maxAbsDiff(p.gradH, n.gradH) / scaleG);
      assert.ok(
        eL <= Math.max(set.tolLoss, SENSITIVITY_FACTOR * sensL),
        `${loss}/${backend} step ${step}: loss naive ${n.loss} vs factored ${f.loss} (rel ${
          eL.toExponential(2)
        }; ` +
          `rounding sensitivity so far ${sensL.toExponential(2)})`,
      );
      assert.ok(
        eG <= Math.max(set.tolGrad, SENSITIVITY_FACTOR * sensG),
        `${loss}/${backend} step ${step}: gradH differs by ${
          eG.toExponential(2)
        } relative to 1 + max|gradH| ` +
          `(rounding sensitivity so far ${sensG.toExponential(2)})`,
      );
      worstL = Math.max(worstL, eL);
      worstG = Math.max(worstG, eG);
      if (step < 100) early += n.loss / 100;
      if (step >= steps - 100) late += n.loss / 100;
    }
    const Wn = await naive.weights(), Wf = await factored.weights(), Wp = await reference.weights();
    const eW = maxAbsDiff(Wf, Wn) / maxAbs(Wn), sensW = maxAbsDiff(Wp, Wn) / maxAbs(Wn);
    console.log(
      `${loss}/${backend}: ${steps} steps, η ${set.eta}, worst rel. error (rounding sensitivity): loss ` +
        `${worstL.toExponential(2)} (${sensL.toExponential(2)}), gradH ${worstG.toExponential(2)} ` +
        `(${sensG.toExponential(2)}), W ${eW.toExponential(2)} (${
          sensW.toExponential(2)
        }); mean batch loss ` +
        `${early.toFixed(2)} → ${late.toFixed(2)}`,
    );
    assert.ok(
      eW <= Math.max(set.tolW, SENSITIVITY_FACTOR * sensW),
      `${loss}/${backend}: after ${steps} steps max|W_f − W_n|/max|W_n| = ${eW.toExponential(2)} ` +
        `(rounding sensitivity ${sensW.toExponential(2)})`,
    );
  } finally {
    naive.close();
    factored.close();
    reference.close();
  }
}

for (const backend of BACKENDS) {
  for (const loss of LOSS_NAMES) {
    Deno.test(`${loss} on ${backend}: naive vs factored over ${STEPS} steps (K > 1 weighted, repeated indices)`, () =>
      compareRuns(loss, backend, SETTINGS[loss], STEPS, 2015 + loss.length * 7 + backend.length));
  }
  Deno.test(`spherical with the default ε on ${backend}: naive vs factored over 500 steps`, () =>
    compareRuns(
      "spherical",
      backend,
      { eta: 0.002, options: {}, tolLoss: 2e-4, tolGrad: 1e-3, tolW: 2e-4 },
      Math.min(500, STEPS),
      31 + backend.length,
    ));
}

/** Tolerance (relative, as above) of the 20-step edge-case runs. */
const EDGE_TOL = 2e-5;

for (const backend of BACKENDS) {
  Deno.test(`all losses on ${backend}: all-zero h rows and zero weights inside a batch`, async () => {
    for (const loss of LOSS_NAMES) {
      const r = rng(77);
      const [naive, factored] = await pair(loss, backend, initW(r));
      try {
        // Example 0: h = 0 with two targets. Example 1: every weight 0. Example 2: one index listed twice.
        // Example 3: an ordinary example.
        const H = new Float32Array(m * d);
        for (let i = d; i < H.length; i++) H[i] = normal(r) / Math.sqrt(d);
        const Y: SparseBatch = {
          offsets: Int32Array.of(0, 2, 4, 6, 7),
          indices: Int32Array.of(5, 9, 3, 11, 7, 7, 2),
          values: Float32Array.of(1, 0.5, 0, 0, 0.5, 0.5, 1),
        };
        // The zero-h example alone: o = 0, so its loss is known in closed form.
        const zeroOnly = {
          offsets: Int32Array.of(0, 2),
          indices: Int32Array.of(5, 9),
          values: Float32Array.of(1, 0.5),
        };
        const expected: Record<LossName, number> = {
          squared: 1 + 0.25,
          spherical: 1.5 * Math.log(D),
          taylor: 1.5 * Math.log(D),
          zloss: 1.5 * Math.log1p(Math.exp(createLoss("zloss").options.a * createLoss("zloss").options.b)) /
            createLoss("zloss").options.a,
        };
        for (const layer of [naive, factored]) {
          const e = await layer.evaluate(new Float32Array(d), zeroOnly);
          assert.ok(
            Math.abs(e.loss - expected[loss]) <= 1e-5 * expected[loss],
            `${loss}/${backend}: zero-h loss ${e.loss}, expected ${expected[loss]}`,
          );
          for (const g of e.gradH) assert.ok(Number.isFinite(g), `${loss}: zero-h gradH ${g}`);
          if (loss === "zloss") assert.equal(maxAbs(e.gradH), 0, "zloss: degenerate σ gives zero gradH");
        }
        for (let step = 0; step < 20; step++) {
          const n = await naive.step(H, Y, 0.02), f = await factored.step(H, Y, 0.02);
          assert.ok(Number.isFinite(n.loss) && Number.isFinite(f.loss), `${loss}/${backend} step ${step}`);
          assert.ok(
            Math.abs(f.loss - n.loss) <= EDGE_TOL * (1 + Math.abs(n.loss)),
            `${loss}/${backend} step ${step}: loss naive ${n.loss} vs factored ${f.loss}`,
          );
          assert.ok(
            maxAbsDiff(f.gradH, n.gradH) <= EDGE_TOL * (1 + maxAbs(n.gradH)),
            `${loss}/${backend} step ${step}: gradH differs by ${maxAbsDiff(f.gradH, n.gradH)}`,
          );
          if (loss !== "squared") {
            // Example 1 has only zero weights: no gradient reaches its h.
            assert.equal(
              maxAbs(f.gradH.subarray(d, 2 * d)),
              0,
              `${loss}: zero-weight example, factored gradH`,
            );
            assert.equal(maxAbs(n.gradH.subarray(d, 2 * d)), 0, `${loss}: zero-weight example, naive gradH`);
          }
          if (loss === "zloss") {
            assert.equal(maxAbs(f.gradH.subarray(0, d)), 0, "zloss: zero-h row, factored gradH");
          }
        }
        const Wn = await naive.weights(), Wf = await factored.weights();
        for (const w of Wf) assert.ok(Number.isFinite(w));
        const eW = maxAbsDiff(Wf, Wn) / maxAbs(Wn);
        assert.ok(eW <= EDGE_TOL, `${loss}/${backend}: W differs by ${eW.toExponential(2)} after 20 steps`);
      } finally {
        naive.close();
        factored.close();
      }
    }
  });
}
