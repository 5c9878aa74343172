/**
 * State of the output layers: exportState → restore → bit-identical continuation (js), appendRows
 * entering new rows exactly, score and topK agreeing between the layers, diagnostics.
 *
 * Run: npx deno test -A tests/layers_state_test.ts   (≈ 5 s)
 */

import assert from "node:assert/strict";
import { createOutputLayer } from "../lib/output/create.ts";
import { FactoredOutputLayer } from "../lib/output/factored/layer.ts";
import { createBackend } from "../lib/linalg/select.ts";
import { createLoss } from "../lib/losses/mod.ts";
import type { LossName, OutputLayer } from "../lib/core/types.ts";
import { cpuBackends, makeLayer, randomBatch, randomH, relMaxDiff, rng, uniform } from "./layers_helpers.ts";

const backends = await cpuBackends();
const LOSSES: { loss: LossName; eta: number; eps: number }[] = [
  { loss: "squared", eta: 0.03, eps: 1e-6 },
  { loss: "spherical", eta: 0.01, eps: 0.1 },
  { loss: "taylor", eta: 1, eps: 1e-6 },
  { loss: "zloss", eta: 0.05, eps: 1e-6 },
];

for (const kind of ["factored", "naive"] as const) {
  for (const { loss, eta, eps } of LOSSES) {
    Deno.test(`${kind} ${loss}: exportState → restore continues bit-identically (js), across stabilisations and a fold`, async () => {
      const D = 120, d = 8, m = 5;
      const r = rng(31);
      const W0 = uniform(r, D * d, 0.2);
      const opts = { stabilizeEvery: 10, recomputeQEvery: 35, lossOptions: { epsilon: eps } };
      const a = await makeLayer(kind, "js", D, d, W0, loss, opts);
      const batches = Array.from(
        { length: 90 },
        () => ({ H: randomH(r, m, d), Y: randomBatch(r, m, D, 3, { weighted: true }) }),
      );
      for (let t = 0; t < 23; t++) await a.step(batches[t].H, batches[t].Y, eta);
      const state = await a.exportState();
      const b = await createOutputLayer({ kind, D, d, state, backend: "js", log: () => {} });
      for (let t = 23; t < 90; t++) {
        const x = await a.step(batches[t].H, batches[t].Y, eta);
        const y = await b.step(batches[t].H, batches[t].Y, eta);
        assert.equal(y.loss, x.loss, `step ${t}: loss`);
        assert.deepEqual(y.gradH, x.gradH, `step ${t}: ∇H`);
      }
      const sa = await a.exportState(), sb = await b.exportState();
      assert.deepEqual(sb, sa);
      if (kind === "factored") {
        assert.equal(sa.scalars.steps, 90);
        assert(sa.scalars.folds >= 2, "the continuation should include a fold (recomputeQEvery = 35)");
        assert.deepEqual(Object.keys(sa.arrays).sort(), ["Q", "U", "Uinvt", "V", "omega", "wbar"]);
      }
      // the state is a copy: stepping the layer does not change an exported state
      const copy = structuredClone(sa);
      await a.step(batches[0].H, batches[0].Y, eta);
      assert.deepEqual(sa, copy);
      a.close();
      b.close();
    });
  }
}

for (const backend of backends) {
  Deno.test(`factored, float32 products (${backend}): exporting or reading between settlements changes nothing, and the export continues bit-identically`, async () => {
    // the float32 path keeps ≤ 16 steps of increments in a float32 accumulator before adding them to the
    // float64 state. A layer that exports its state, reads its weights and diagnostics mid-way (a
    // checkpoint, an evaluation) must take the same steps as one that does not, bit for bit, and a layer
    // rebuilt from that state must too; the exported U, Q, U⁻ᵀ include the pending increments
    const D = 150, d = 16, m = 6, eta = 0.01;
    const r = rng(37);
    const W0 = uniform(r, D * d, 0.2);
    const loss = () => createLoss("spherical", { epsilon: 0.1 });
    const opts = { products: "float32" as const, stabilizeEvery: 0, recomputeQEvery: 0 };
    const newBackend = () => createBackend(backend, { log: () => {} });
    const a = FactoredOutputLayer.fromInit(D, d, W0, loss(), await newBackend(), opts);
    const ref = FactoredOutputLayer.fromInit(D, d, W0, loss(), await newBackend(), opts);
    const naive = await makeLayer("naive", backend, D, d, W0, "spherical", { lossOptions: { epsilon: 0.1 } });
    const batches = Array.from(
      { length: 60 },
      () => ({ H: randomH(r, m, d), Y: randomBatch(r, m, D, 3, { weighted: true }) }),
    );
    for (let t = 0; t < 21; t++) {
      await a.step(batches[t].H, batches[t].Y, eta);
      await ref.step(batches[t].H, batches[t].Y, eta);
      await naive.step(batches[t].H, batches[t].Y, eta);
    }
    assert.equal(a.steps32, 21, "every step so far took the float32 path");
    const state = await a.exportState(); // 5 steps after a settlement
    assert.equal(state.scalars.pendingSteps, 5);
    assert.equal(state.scalars.mirrorsValid, 1);
    assert.deepEqual(
      Object.keys(state.arrays).sort(),
      [
        "Q",
        "U",
        "Uinvt",
        "V",
        "mirrors32",
        "omega",
        "pending32",
        "unsettledQ",
        "unsettledU",
        "unsettledUinvt",
        "wbar",
      ],
    );
    // the settled sums: a float64 layer built from them (no accumulator) holds the naive layer's W
    const f64 = FactoredOutputLayer.fromState(state, loss(), await newBackend(), { products: "float64" });
    assert(
      relMaxDiff(await f64.weights(), await naive.weights()) <= 1e-5,
      "exported U, Q, U⁻ᵀ lack the pending steps",
    );
    assert((await f64.diagnostics({ full: true })).qDrift! <= 1e-5);
    assert.deepEqual(await f64.weights(), await a.weights());
    f64.close();
    await a.diagnostics({ full: true });
    await a.score(batches[0].H.subarray(0, d), Int32Array.of(0, 7));
    const b = FactoredOutputLayer.fromState(state, loss(), await newBackend(), opts);
    for (let t = 21; t < 60; t++) {
      const x = await ref.step(batches[t].H, batches[t].Y, eta);
      const y = await a.step(batches[t].H, batches[t].Y, eta);
      const z = await b.step(batches[t].H, batches[t].Y, eta);
      await naive.step(batches[t].H, batches[t].Y, eta);
      assert.equal(y.loss, x.loss, `step ${t}: loss after exporting`);
      assert.deepEqual(y.gradH, x.gradH, `step ${t}: ∇H after exporting`);
      assert.equal(z.loss, x.loss, `step ${t}: loss of the restored layer`);
      assert.deepEqual(z.gradH, x.gradH, `step ${t}: ∇H of the restored layer`);
    }
    const final = await ref.exportState();
    assert.deepEqual(await a.exportState(), final);
    assert.deepEqual(await b.exportState(), final);
    const drift = relMaxDiff(await a.weights(), await naive.weights());
    assert(drift <= 1e-5, `float32 products: W drift ${drift} after 60 steps`);
    const dg = await a.diagnostics({ full: true });
    assert(dg.qDrift! <= 1e-5, `qDrift ${dg.qDrift}`);
    assert(dg.inverseError <= 1e-5, `inverseError ${dg.inverseError}`);
    // a state from before these fields (settled, no accumulator) still loads and continues
    const old = structuredClone(final);
    for (const k of ["unsettledU", "unsettledQ", "unsettledUinvt", "pending32", "mirrors32"]) {
      delete old.arrays[k];
    }
    delete old.scalars.pendingSteps;
    delete old.scalars.mirrorsValid;
    const c = FactoredOutputLayer.fromState(old, loss(), await newBackend(), opts);
    assert.deepEqual(await c.weights(), await ref.weights());
    await c.step(batches[0].H, batches[0].Y, eta);
    a.close();
    b.close();
    c.close();
    ref.close();
    naive.close();
  });

  for (const { loss, eta, eps } of LOSSES) {
    Deno.test(`appendRows enters new rows exactly (${loss}, ${backend}): old rows kept, Q = WᵀW, training stays exact`, async () => {
      const D = 80, d = 8, m = 4;
      const r = rng(41);
      const W0 = uniform(r, D * d, 0.2);
      const lossOptions = { epsilon: eps };
      const fact = await makeLayer("factored", backend, D, d, W0, loss, { lossOptions, stabilizeEvery: 7 });
      const naive = await makeLayer("naive", backend, D, d, W0, loss, { lossOptions });
      const train = async (n: number, Dnow: number) => {
        for (let t = 0; t < n; t++) {
          const H = randomH(r, m, d), Y = randomBatch(r, m, Dnow, 3, { weighted: true });
          const x = await fact.step(H, Y, eta), y = await naive.step(H, Y, eta);
          assert(relMaxDiff(x.gradH, y.gradH) <= 1e-3, `∇H ${relMaxDiff(x.gradH, y.gradH)}`);
        }
      };
      await train(40, D); // U ≠ I, and ω ≠ 0 for the losses that use s
      let Dnow = D;
      for (const n of [3, 1, 150]) { // the last one outgrows V's capacity headroom
        const before = await fact.weights();
        const rows = uniform(r, n * d, 0.3);
        await fact.appendRows(rows);
        await naive.appendRows(rows);
        Dnow += n;
        assert.equal(fact.D, Dnow);
        assert.equal(naive.D, Dnow);
        const after = await fact.weights();
        assert.equal(after.length, Dnow * d);
        assert.deepEqual(after.subarray(0, before.length), before, "old rows changed");
        const added = after.subarray(before.length);
        const err = relMaxDiff(added, rows);
        assert(err <= 1e-6, `new rows differ from the requested ones by ${err}`);
        const dg = await fact.diagnostics({ full: true });
        assert(dg.qDrift! <= 1e-6, `qDrift ${dg.qDrift}`);
        if (dg.wbarDrift !== undefined) assert(dg.wbarDrift <= 1e-6, `wbarDrift ${dg.wbarDrift}`);
        assert.deepEqual((await naive.weights()).subarray(before.length), rows);
      }
      await train(40, Dnow); // targets now include the new rows
      const drift = relMaxDiff(await fact.weights(), await naive.weights());
      assert(drift <= 2e-5, `after appending and training: drift ${drift}`);
      fact.close();
      naive.close();
    });

    Deno.test(`score and topK agree between the layers (${loss}, ${backend})`, async () => {
      const D = 400, d = 8;
      const r = rng(51);
      const W0 = uniform(r, D * d, 0.3);
      const lossOptions = { epsilon: eps };
      const fact = await makeLayer("factored", backend, D, d, W0, loss, { lossOptions });
      const naive = await makeLayer("naive", backend, D, d, W0, loss, { lossOptions });
      for (let t = 0; t < 30; t++) {
        const H = randomH(r, 6, d), Y = randomBatch(r, 6, D, 2);
        await fact.step(H, Y, eta);
        await naive.step(H, Y, eta);
      }
      for (let k = 0; k < 5; k++) {
        const h = randomH(r, 1, d);
        const rows = Int32Array.from({ length: 20 }, () => Math.floor(r() * D));
        const pf = await fact.score(h, rows), pn = await naive.score(h, rows);
        const e = relMaxDiff(pf, pn);
        assert(e <= 1e-4, `score differs by ${e}`);
        // squared error and the Z-loss return scores (o_j and z_j); the other two probabilities
        if (loss === "spherical" || loss === "taylor") {
          for (const p of pf) assert(p >= 0 && p <= 1, `probability ${p}`);
        }
        const tf = await fact.topK(h, 10), tn = await naive.topK(h, 10);
        assert.equal(tf.indices.length, 10);
        for (let i = 1; i < 10; i++) {
          assert(tf.scores[i] <= tf.scores[i - 1], "topK must be sorted best first");
        }
        assert(relMaxDiff(tf.scores, tn.scores) <= 1e-4, "topK scores differ");
        // the same rows, up to swaps of near-ties
        let same = 0;
        for (const j of tf.indices) if (tn.indices.includes(j)) same++;
        assert(same >= 9, `topK rows differ: ${tf.indices} vs ${tn.indices}`);
        // topK's best score is the best over every row's score
        const all = await naive.score(h, Int32Array.from({ length: D }, (_, j) => j));
        assert(Math.abs(Math.max(...all) - tn.scores[0]) <= 1e-12 * Math.abs(tn.scores[0]));
      }
      if (loss !== "squared") {
        // probabilities over all D sum to 1 (for the normalised losses)
        const all = await fact.score(randomH(r, 1, d), Int32Array.from({ length: D }, (_, j) => j));
        const sum = all.reduce((x, y) => x + y, 0);
        if (loss !== "zloss") assert(Math.abs(sum - 1) <= 1e-6, `${loss}: Σ p = ${sum}`);
      }
      fact.close();
      naive.close();
    });
  }
}

Deno.test("diagnostics report condU, inverseError, qDrift on demand, and the counters", async () => {
  const D = 100, d = 6;
  const r = rng(61);
  const layer: OutputLayer = await makeLayer("factored", "js", D, d, uniform(r, D * d, 0.2), "squared", {
    stabilizeEvery: 0,
  });
  for (let t = 0; t < 60; t++) await layer.step(randomH(r, 4, d), randomBatch(r, 4, D, 2), 0.05);
  const cheap = await layer.diagnostics();
  assert.equal(cheap.qDrift, undefined);
  assert.equal(cheap.steps, 60);
  assert(cheap.condU > 1.5, `without stabilisation U drifts from I: condU ${cheap.condU}`);
  assert(cheap.inverseError > 0 && cheap.inverseError < 1e-10, `inverseError ${cheap.inverseError}`);
  const full = await layer.diagnostics({ full: true });
  // Q is updated exactly (float64) while V rounds to float32, so WᵀW and Q part by ~1e-7
  assert(full.qDrift !== undefined && full.qDrift < 1e-5, `qDrift ${full.qDrift}`);
  layer.close();
});

for (const backend of backends) {
  for (const loss of ["squared", "zloss"] as const) {
    Deno.test(`${backend} ${loss}: diagnostics' qDrift and wbarDrift (from V's Gram) equal those of W materialised`, async () => {
      const D = 300, d = 8, r = rng(67);
      const a = await makeLayer("factored", backend, D, d, uniform(r, D * d, 0.2), loss, {
        stabilizeEvery: 0,
        recomputeQEvery: 0,
      });
      for (let t = 0; t < 40; t++) await a.step(randomH(r, 4, d), randomBatch(r, 4, D, 2), 0.05);
      const state = await a.exportState();
      a.close();
      const omega = state.arrays.omega as Float64Array;
      if (loss === "zloss") assert(omega.some((x) => x !== 0), "ω is kept: the test covers its terms");
      // Q and w̄ moved off by a known amount: the drift found must be theirs, against the reference below
      const Q = state.arrays.Q as Float64Array, wbar = state.arrays.wbar as Float64Array;
      Q[2 * d + 2] *= 1.03;
      wbar[1] += 0.05 * Math.max(...wbar.map(Math.abs));
      const b = await createOutputLayer({ kind: "factored", D, d, state, backend, loss, log: () => {} });
      const got = await b.diagnostics({ full: true });
      // the reference: W materialised, its Gram and column sums in float64
      const W = await b.weights(), G = new Float64Array(d * d), sum = new Float64Array(d);
      for (let j = 0; j < D; j++) {
        for (let p = 0; p < d; p++) {
          sum[p] += W[j * d + p];
          for (let q = 0; q < d; q++) G[p * d + q] += W[j * d + p] * W[j * d + q];
        }
      }
      const drift = (want: Float64Array, have: Float64Array) =>
        Math.max(...have.map((x, i) => Math.abs(x - want[i]))) / Math.max(...have.map(Math.abs));
      const qRef = drift(G, Q);
      assert(qRef > 1e-3, `the perturbation shows: ${qRef}`);
      assert(Math.abs(got.qDrift! - qRef) <= 1e-5 * qRef, `qDrift ${got.qDrift} against ${qRef}`);
      if (loss === "zloss") {
        const wRef = drift(wbar, sum);
        assert(wRef > 1e-3, `the perturbation shows: ${wRef}`);
        assert(Math.abs(got.wbarDrift! - wRef) <= 1e-4 * wRef, `wbarDrift ${got.wbarDrift} against ${wRef}`);
      } else assert.equal(got.wbarDrift, undefined);
      b.close();
    });
  }
}

Deno.test("backend webgpu is dispatched to lib/output/webgpu/create.ts and matches the CPU layer on one step", async () => {
  const adapter = await (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu?.requestAdapter();
  if (!adapter) {
    if (Deno.env.get("CI") === "true") {
      throw new Error("no WebGPU adapter (CI=true: a missing backend is a failure)");
    }
    console.error("layers tests: no WebGPU adapter, webgpu dispatch case skipped");
    return;
  }
  const D = 50, d = 4;
  const r = rng(71);
  const init = uniform(r, D * d, 0.1);
  const lines: string[] = [];
  const g = await createOutputLayer({
    kind: "factored",
    D,
    d,
    init,
    backend: "webgpu",
    log: (l) => lines.push(l),
  });
  const c = await makeLayer("factored", "js", D, d, init);
  assert.equal(g.backend, "webgpu");
  const H = randomH(r, 2, d), Y = randomBatch(r, 2, D, 2);
  const a = await g.step(H, Y, 0.1), b = await c.step(H, Y, 0.1);
  assert(Math.abs(a.loss - b.loss) <= 1e-5 * Math.abs(b.loss), `${a.loss} vs ${b.loss}`);
  assert(relMaxDiff(a.gradH, b.gradH) <= 1e-4);
  g.close();
  c.close();
});

Deno.test("a corrupt factored state is refused with a RangeError naming the field; every legitimate state still loads", async () => {
  // fromState checked types and lengths only: a NaN in V or Q, a U⁻ᵀ that is not U's inverse, an asymmetric
  // Q, steps = NaN or a NaN condBudget gave NaN or silently wrong results, or turned the stabilisation off
  const D = 60, d = 6, m = 4, eta = 0.02;
  const r = rng(83);
  const W0 = uniform(r, D * d, 0.2);
  const loss = () => createLoss("spherical", { epsilon: 0.1 });
  const opts = { products: "float32" as const, stabilizeEvery: 10, recomputeQEvery: 0 };
  const a = FactoredOutputLayer.fromInit(
    D,
    d,
    W0,
    loss(),
    await createBackend("js", { log: () => {} }),
    opts,
  );
  for (let t = 0; t < 19; t++) await a.step(randomH(r, m, d), randomBatch(r, m, D, 3), eta);
  await a.appendRows(uniform(r, 3 * d, 0.2)); // settles; a few steps after it leave increments pending
  for (let t = 0; t < 3; t++) await a.step(randomH(r, m, d), randomBatch(r, m, D + 3, 3), eta);
  const good = await a.exportState();
  assert.equal(good.scalars.pendingSteps, 2, "exported between settlements (step 20 stabilised)");
  const load = (s: typeof good) =>
    createOutputLayer({ kind: "factored", D: D + 3, d, state: s, backend: "js", log: () => {} });
  // legitimate: between settlements, after appendRows; as a float64 layer; an old state without the fields
  // of the float32 path; a state exported right after a refresh
  for (const products of ["float32", "float64"] as const) {
    const b = FactoredOutputLayer.fromState(good, loss(), await createBackend("js", { log: () => {} }), {
      products,
    });
    assert.deepEqual(await b.weights(), await a.weights());
    b.close();
  }
  // the settled arrays alone (a state from before the float32 path's fields)
  const asOld = (s: typeof good) => {
    for (const k of ["unsettledU", "unsettledQ", "unsettledUinvt", "pending32", "mirrors32"]) {
      delete s.arrays[k];
    }
    delete s.scalars.pendingSteps;
    delete s.scalars.mirrorsValid;
  };
  const settled = structuredClone(good);
  asOld(settled);
  (await load(settled)).close();
  a.refresh();
  (await load(await a.exportState())).close();
  a.close();
  const cases: [string, (s: typeof good) => void, string | RegExp][] = [
    ["V NaN", (s) => (s.arrays.V[13] = NaN), "state.arrays.V[13] = NaN is not finite (row 2, column 1)"],
    [
      "U Inf",
      (s) => (s.arrays.U[7] = Infinity),
      "state.arrays.U[7] = Infinity is not finite (row 1, column 1)",
    ],
    [
      "Uinvt NaN",
      (s) => (s.arrays.Uinvt[0] = NaN),
      "state.arrays.Uinvt[0] = NaN is not finite (row 0, column 0)",
    ],
    ["Q NaN", (s) => (s.arrays.Q[1] = NaN), "state.arrays.Q[1] = NaN is not finite (row 0, column 1)"],
    [
      "omega NaN",
      (s) => (s.arrays.omega[2] = NaN),
      "state.arrays.omega[2] = NaN is not finite (row 0, column 2)",
    ],
    [
      "wbar Inf",
      (s) => (s.arrays.wbar[5] = -Infinity),
      "state.arrays.wbar[5] = -Infinity is not finite (row 0, column 5)",
    ],
    [
      "pending32 NaN",
      (s) => (s.arrays.pending32[40] = NaN),
      "state.arrays.pending32[40] = NaN is not finite (row 6, column 4)",
    ],
    [
      "mirrors32 NaN",
      (s) => (s.arrays.mirrors32[3] = NaN),
      "state.arrays.mirrors32[3] = NaN is not finite (row 0, column 3)",
    ],
    [
      "unsettledU altered",
      (s) => (s.arrays.unsettledU[4] += 0.5),
      /^state\.arrays\.unsettledU\[4\] \+ pending32\[4\] = .* but state\.arrays\.U\[4\] = .*: the float32 path's pending increments do not add up to the settled state/,
    ],
    [
      "Uinvt × 2",
      (s) => {
        asOld(s); // (else the unsettled arrays no longer add up to it)
        s.arrays.Uinvt.forEach((v, j, A) => (A[j] = 2 * v));
      },
      /^state\.arrays\.Uinvt is not the inverse transpose of state\.arrays\.U: max\|UᵀU⁻ᵀ − I\| = 1\.00 > 0\.001/,
    ],
    [
      "Q asymmetric",
      (s) => {
        asOld(s);
        s.arrays.Q[1 * d + 4] += 0.01;
      },
      /^state\.arrays\.Q is not symmetric: Q\[1,4\] = .* but Q\[4,1\] = /,
    ],
    ["steps NaN", (s) => (s.scalars.steps = NaN), "state.scalars.steps must be an integer ≥ 0, got NaN"],
    ["steps -5", (s) => (s.scalars.steps = -5), "state.scalars.steps must be an integer ≥ 0, got -5"],
    ["steps 2.5", (s) => (s.scalars.steps = 2.5), "state.scalars.steps must be an integer ≥ 0, got 2.5"],
    ["folds -1", (s) => (s.scalars.folds = -1), /^state\.scalars\.folds = -1 must be an integer ≥ 0/],
    [
      "examplesSinceRefresh NaN",
      (s) => (s.scalars.examplesSinceRefresh = NaN),
      /^state\.scalars\.examplesSinceRefresh = NaN must be an integer ≥ 0/,
    ],
    [
      "condBudget NaN",
      (s) => (s.scalars.condBudget = NaN),
      /^state\.scalars\.condBudget = NaN must be a finite number ≥ 0/,
    ],
    [
      "sigmaMin 0",
      (s) => (s.scalars.sigmaMin = 0),
      /^state\.scalars\.sigmaMin = 0 must be a finite number > 0/,
    ],
    ["refreshAuto 2", (s) => (s.scalars.refreshAuto = 2), /^state\.scalars\.refreshAuto = 2 must be 0 or 1/],
  ];
  for (const [what, spoil, msg] of cases) {
    const s = structuredClone(good);
    spoil(s);
    await assert.rejects(() => load(s), (e: unknown) => {
      assert(e instanceof RangeError, `${what}: expected a RangeError, got ${e}`);
      if (typeof msg === "string") assert(e.message.startsWith(msg), `${what}: ${e.message}`);
      else assert.match(e.message, msg, what);
      if (!/steps must/.test(e.message)) assert.match(e.message, /the state is corrupt/, what);
      return true;
    }, what);
  }
});
