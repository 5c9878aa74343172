/**
 * Stress of the factored layer: 100,000 online (m = 1) steps without NaN and still matching the naive
 * layer; learning rates near the singular limit (update factors down to 0.005); the singularity guard
 * refusing exactly the steps it must, with the state untouched.
 *
 * Run: npx deno test -A tests/layers_stress_test.ts   (≈ 20 s on 2 cores)
 */

import assert from "node:assert/strict";
import { SingularUpdateError } from "../lib/core/errors.ts";
import { FactoredOutputLayer } from "../lib/output/factored/layer.ts";
import { GUARD_MARGIN } from "../lib/output/guard.ts";
import { createBackend } from "../lib/linalg/select.ts";
import { createLoss } from "../lib/losses/mod.ts";
import type { OutputLayerState } from "../lib/core/types.ts";
import {
  cpuBackends,
  gramOfRows,
  largestEigenvalue,
  makeLayer,
  randomBatch,
  randomH,
  relMaxDiff,
  rng,
  uniform,
} from "./layers_helpers.ts";

const backends = await cpuBackends();

function allFinite(a: ArrayLike<number>): boolean {
  for (let j = 0; j < a.length; j++) if (!Number.isFinite(a[j])) return false;
  return true;
}

function sqnorm(h: Float32Array): number {
  let s = 0;
  for (const v of h) s += v * v;
  return s;
}

function assertSameState(a: OutputLayerState, b: OutputLayerState): void {
  assert.deepEqual(Object.keys(a.arrays).sort(), Object.keys(b.arrays).sort());
  for (const k of Object.keys(a.arrays)) {
    assert.deepEqual(a.arrays[k], b.arrays[k], `state array ${k} changed`);
  }
  assert.deepEqual(a.scalars, b.scalars);
}

for (const backend of backends) {
  Deno.test(`100,000 online steps (m = 1), no NaN, W still matches the naive layer, ${backend}`, async () => {
    // D = 40, d = 8, squared error, η = 0.05 on ‖h‖² ≈ 1 (factor ≈ 0.9 per step): U contracts by ~e^-1250
    // along visited directions over the run, so without rescaling V would overflow float32 many times over.
    const D = 40, d = 8, steps = 100_000;
    const r = rng(11);
    const W0 = uniform(r, D * d, 0.3);
    const naive = await makeLayer("naive", backend, D, d, W0);
    const fact = await makeLayer("factored", backend, D, d, W0);
    let bad = 0;
    for (let t = 0; t < steps; t++) {
      const H = randomH(r, 1, d, 1);
      const Y = randomBatch(r, 1, D, 2, { weighted: true });
      const a = await fact.step(H, Y, 0.05);
      await naive.step(H, Y, 0.05);
      if (!Number.isFinite(a.loss) || !allFinite(a.gradH)) bad++;
    }
    assert.equal(bad, 0, `${bad} steps had a non-finite loss or ∇H`);
    const Wf = await fact.weights(), Wn = await naive.weights();
    assert(allFinite(Wf));
    const drift = relMaxDiff(Wf, Wn);
    const dg = await fact.diagnostics({ full: true });
    console.log(
      `${steps} online steps (${backend}): drift ${drift.toExponential(2)}, condU ${dg.condU.toFixed(2)}, ` +
        `qDrift ${dg.qDrift!.toExponential(2)}, rebalances ${dg.rebalances}, folds ${dg.folds}`,
    );
    assert(drift <= 1e-4, `drift ${drift}`);
    assert(dg.condU <= 64, `condU ${dg.condU}`);
    naive.close();
    fact.close();
  });

  Deno.test(`learning rates near the singular limit (factor 0.005 … 0.1 every step), ${backend}`, async () => {
    // Online: η_t = c/(2‖h‖²), c ∈ [0.9, 0.995] (squared error, g_q = 1): every step shrinks U by 10–200×
    // along h. Batches of 8: η at 90–99% of the guard's limit (1 − margin)/(2 λ_max(HᵀH)).
    const D = 60, d = 8;
    for (const m of [1, 8]) {
      const r = rng(20 + m);
      const W0 = uniform(r, D * d, 0.3);
      const naive = await makeLayer("naive", backend, D, d, W0);
      const fact = await makeLayer("factored", backend, D, d, W0);
      // and the float32-products path (the blas default from d = 64), which must redo each of these strong
      // steps in float64 from the start: with the float64 layer's stabilisation schedule (float32 products
      // default to stabilising half as often) it must then give the float64 layer's bits at every step.
      // (With its own schedule it follows another rounding of the same exact trajectory, and on these
      // near-singular steps the two part by up to 1.3e-3 of max|∇H| on one OpenBLAS kernel, Cooperlake,
      // and 7e-4 on another, Haswell: a bar on that would measure the machine, not the fallback.)
      const fact32 = FactoredOutputLayer.fromInit(
        D,
        d,
        W0,
        createLoss("squared"),
        await createBackend(backend, { log: () => {} }),
        { products: "float32", stabilizeEvery: (fact as FactoredOutputLayer).stabilizeEvery },
      );
      for (let t = 0; t < 2000; t++) {
        const H = randomH(r, m, d, 1);
        const Y = randomBatch(r, m, D, 2);
        const c = 0.9 + 0.095 * r();
        const eta = m === 1
          ? c / (2 * sqnorm(H))
          : (c * (1 - GUARD_MARGIN)) / (2 * largestEigenvalue(gramOfRows(H, m, d), m));
        const a = await fact.step(H, Y, eta);
        const b = await naive.step(H, Y, eta);
        assert(Number.isFinite(a.loss) && allFinite(a.gradH), `step ${t}: non-finite`);
        // ∇H against the float32 naive layer, relative to the step's max|∇H|: on these near-singular steps
        // ∇H nearly cancels now and then, and float32 rounding shows. 1e-3 holds on this seed's data
        // (mulberry32, seed 21); over seeds 21–26 the worst step of 2,000 was measured at 3.0e-3, so the
        // data stay pinned to this generator and seed.
        const e = relMaxDiff(a.gradH, b.gradH);
        assert(e <= 1e-3, `m=${m} step ${t}: ∇H differs by ${e}`);
        const c32 = await fact32.step(H, Y, eta);
        assert.equal(c32.loss, a.loss, `m=${m} step ${t}: loss (float32 products, redone in float64)`);
        assert.deepEqual(c32.gradH, a.gradH, `m=${m} step ${t}: ∇H (float32 products, redone in float64)`);
      }
      const drift = relMaxDiff(await fact.weights(), await naive.weights());
      const dg = await fact.diagnostics();
      console.log(
        `near-singular m=${m} (${backend}): drift ${
          drift.toExponential(2)
        }, stabilisations ${dg.stabilizations}, ` +
          `condU ${dg.condU.toFixed(2)}`,
      );
      // W after 2,000 such steps: 1e-4 on this seed's data; up to 5.2e-4 over seeds 21–26 (see above)
      assert(drift <= 1e-4, `m=${m}: drift ${drift}`);
      assert.deepEqual(await fact32.weights(), await fact.weights(), `m=${m}: W (float32 products)`);
      naive.close();
      fact.close();
      fact32.close();
    }
  });

  Deno.test(`the guard refuses 2η g_q‖h‖² ≥ 1 − margin with SingularUpdateError, state unchanged, ${backend}`, async () => {
    const D = 30, d = 4;
    const r = rng(5);
    const W0 = uniform(r, D * d, 0.3);
    const h = Float32Array.of(1, 0, 0, 0); // ‖h‖² = 1, squared error: g_q = 1, factor 1 − 2η
    const Y = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(3), values: Float32Array.of(1) };
    const fact = await makeLayer("factored", backend, D, d, W0);
    await fact.step(randomH(r, 1, d, 1), Y, 0.01); // step 1, so the refusal below is step 2
    for (const eta of [0.5, 0.6, 5, 0.4996]) {
      const before = await fact.exportState();
      await assert.rejects(() => fact.step(h, Y, eta), (e: unknown) => {
        assert(e instanceof SingularUpdateError, `expected SingularUpdateError, got ${e}`);
        assert.match(e.message, /^step 2: the update factor 1 − 2·eta·g_q·‖h‖²/);
        assert.match(e.message, /Lower the learning rate below 0\.499/);
        assert.match(e.message, /state is unchanged/);
        return true;
      });
      assertSameState(before, await fact.exportState());
    }
    // just inside the margin the step is taken
    const ok = await fact.step(h, Y, 0.499);
    assert(Number.isFinite(ok.loss));
    // a batch: 3 copies of h make λ_max(HᵀH) = 3, limit (1 − margin)/6
    const H3 = new Float32Array(3 * d);
    for (let i = 0; i < 3; i++) H3[i * d] = 1;
    const Y3 = {
      offsets: Int32Array.of(0, 1, 2, 3),
      indices: Int32Array.of(1, 2, 1),
      values: Float32Array.of(1, 1, 1),
    };
    const before = await fact.exportState();
    await assert.rejects(() => fact.step(H3, Y3, 0.17), (e: unknown) => {
      assert(e instanceof SingularUpdateError);
      assert.match(e.message, /batch of 3 examples/);
      assert.match(e.message, /Lower the learning rate below 0\.166/);
      return true;
    });
    assertSameState(before, await fact.exportState());
    assert(Number.isFinite((await fact.step(H3, Y3, 0.16)).loss));
    fact.close();
  });

  Deno.test(`refused steps leave the trajectory identical to never having tried them, ${backend}`, async () => {
    const D = 50, d = 6, m = 4;
    const r = rng(9);
    const W0 = uniform(r, D * d, 0.2);
    const a = await makeLayer("factored", backend, D, d, W0);
    const b = await makeLayer("factored", backend, D, d, W0);
    for (let t = 0; t < 200; t++) {
      const H = randomH(r, m, d, 1);
      const Y = randomBatch(r, m, D, 3);
      if (t % 7 === 3) await assert.rejects(() => a.step(H, Y, 10), SingularUpdateError);
      const x = await a.step(H, Y, 0.02), y = await b.step(H, Y, 0.02);
      assert.equal(x.loss, y.loss);
      assert.deepEqual(x.gradH, y.gradH);
    }
    assert.deepEqual(await a.weights(), await b.weights());
    a.close();
    b.close();
  });

  Deno.test(`float32 products: refused steps and evaluations between settlements change no state and no later bit, ${backend}`, async () => {
    // a refused step is redone in float64 to be refused exactly; with float32 increments pending, neither
    // that nor an evaluation may settle them (the exported state, pending part included, stays the same)
    const D = 60, d = 16, m = 4;
    const r = rng(11);
    const W0 = uniform(r, D * d, 0.2);
    const opts = { products: "float32" as const, stabilizeEvery: 0, recomputeQEvery: 0 };
    const make = async () =>
      FactoredOutputLayer.fromInit(
        D,
        d,
        W0,
        createLoss("squared"),
        await createBackend(backend, { log: () => {} }),
        opts,
      );
    const a = await make(), b = await make();
    let refused = 0;
    for (let t = 0; t < 60; t++) {
      const H = randomH(r, m, d, 1);
      const Y = randomBatch(r, m, D, 3);
      if (t % 5 === 3) {
        const before = await a.exportState();
        await a.evaluate(H, Y);
        await assert.rejects(() => a.step(H, Y, 10), SingularUpdateError);
        refused++;
        assertSameState(before, await a.exportState());
      }
      const x = await a.step(H, Y, 0.02), y = await b.step(H, Y, 0.02);
      assert.equal(x.loss, y.loss, `step ${t}`);
      assert.deepEqual(x.gradH, y.gradH, `step ${t}`);
    }
    assert.equal(refused, 12);
    assert(a.steps32 >= 50, `${a.steps32} of 60 steps on the float32 path`);
    assertSameState(await a.exportState(), await b.exportState());
    a.close();
    b.close();
  });
}
