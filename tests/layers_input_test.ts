/**
 * Bad input to the output layers: every validation error, with the argument and position it names;
 * duplicate indices are legal and summed; evaluate() changes nothing.
 *
 * Run: npx deno test -A tests/layers_input_test.ts   (≈ 2 s)
 */

import assert from "node:assert/strict";
import { createOutputLayer } from "../lib/output/create.ts";
import { DivergenceError, UsageError } from "../lib/core/errors.ts";
import { createLoss } from "../lib/losses/mod.ts";
import { type ExampleScalars, exampleStats } from "../lib/output/factored/scalars.ts";
import type { OutputLayer, SparseBatch } from "../lib/core/types.ts";
import { cpuBackends, makeLayer, randomH, rng, uniform } from "./layers_helpers.ts";

const D = 5000, d = 4;
const quiet = { log: () => {} };

type ErrorClass = typeof RangeError | typeof TypeError | typeof UsageError;

function batch(offsets: number[], indices: number[], values?: number[]): SparseBatch {
  return {
    offsets: Int32Array.from(offsets),
    indices: Int32Array.from(indices),
    values: Float32Array.from(values ?? indices.map(() => 1)),
  };
}

async function rejects(
  p: () => Promise<unknown>,
  type: ErrorClass,
  msg: string | RegExp,
) {
  await assert.rejects(p, (e: unknown) => {
    assert(e instanceof type, `expected ${type.name}, got ${e}`);
    if (typeof msg === "string") assert.equal(e.message, msg);
    else assert.match(e.message, msg);
    return true;
  });
}

for (const kind of ["naive", "factored"] as const) {
  Deno.test(`${kind}: every bad batch is refused with a message naming argument and position`, async () => {
    const r = rng(1);
    const layer = await makeLayer(kind, "js", D, d, uniform(r, D * d, 0.1));
    const H4 = randomH(r, 4, d);
    const good = batch([0, 1, 2, 3, 4], [1, 2, 3, 4]);
    const cases: [() => Promise<unknown>, typeof RangeError | typeof TypeError, string | RegExp][] = [
      [
        () => layer.step(Array.from(H4) as unknown as Float32Array, good, 0.1),
        TypeError,
        "H must be a Float32Array (m×d row-major), got Array",
      ],
      [
        () => layer.step(H4, { ...good, offsets: [0, 1, 2, 3, 4] as unknown as Int32Array }, 0.1),
        TypeError,
        "Y.offsets must be an Int32Array, got Array",
      ],
      [
        () => layer.step(H4, { ...good, indices: Float64Array.of(1, 2, 3, 4) as unknown as Int32Array }, 0.1),
        TypeError,
        "Y.indices must be an Int32Array, got Float64Array",
      ],
      [
        () =>
          layer.step(H4, { ...good, values: Float64Array.of(1, 1, 1, 1) as unknown as Float32Array }, 0.1),
        TypeError,
        "Y.values must be a Float32Array, got Float64Array",
      ],
      [
        () => layer.step(H4, null as unknown as SparseBatch, 0.1),
        TypeError,
        "Y must be a SparseBatch, got null",
      ],
      [
        () => layer.step(new Float32Array(0), batch([0], []), 0.1),
        RangeError,
        "Y.offsets must have m+1 ≥ 2 entries (at least one example), got 1",
      ],
      [
        () => layer.step(randomH(r, 3, d), good, 0.1),
        RangeError,
        "H.length = 12 but Y has m = 4 examples and d = 4: H must be m×d = 16 (row-major)",
      ],
      [
        () => layer.step(H4, { ...good, values: Float32Array.of(1, 1, 1) }, 0.1),
        RangeError,
        "Y.values.length = 3 differs from Y.indices.length = 4",
      ],
      [
        () => layer.step(H4, batch([1, 1, 2, 3, 4], [1, 2, 3, 4]), 0.1),
        RangeError,
        "Y.offsets[0] = 1 must be 0",
      ],
      [
        () => layer.step(H4, batch([0, 2, 1, 3, 4], [1, 2, 3, 4]), 0.1),
        RangeError,
        "Y.offsets[2] = 1 < Y.offsets[1] = 2: offsets must be non-decreasing",
      ],
      [
        () => layer.step(H4, batch([0, 1, 2, 3, 3], [1, 2, 3, 4]), 0.1),
        RangeError,
        "Y.offsets[4] = 3 must equal Y.indices.length = 4",
      ],
      [
        () => layer.step(H4, batch([0, 1, 2, 3, 4], [1, 2, 3, -1]), 0.1),
        RangeError,
        "Y.indices[3] = -1 is outside [0, D=5000) (example 3)",
      ],
      [
        () => layer.step(H4, batch([0, 1, 2, 3, 4], [1, 2, 3, 4], [1, NaN, 1, 1]), 0.1),
        RangeError,
        "Y.values[1] = NaN is not finite (example 1)",
      ],
      [
        () => layer.step(H4, batch([0, 1, 2, 3, 4], [1, 2, 3, 4], [1, 1, Infinity, 1]), 0.1),
        RangeError,
        "Y.values[2] = Infinity is not finite (example 2)",
      ],
      [
        () => layer.step(H4.map((v, j) => (j === 9 ? NaN : v)), good, 0.1),
        RangeError,
        "H[9] = NaN is not finite (example 2, column 1)",
      ],
      [
        () => layer.step(H4.map((v, j) => (j === 14 ? -Infinity : v)), good, 0.1),
        RangeError,
        "H[14] = -Infinity is not finite (example 3, column 2)",
      ],
      [() => layer.step(H4, good, 0), RangeError, "eta (learning rate) must be a finite number > 0, got 0"],
      [
        () => layer.step(H4, good, -0.1),
        RangeError,
        "eta (learning rate) must be a finite number > 0, got -0.1",
      ],
      [
        () => layer.step(H4, good, NaN),
        RangeError,
        "eta (learning rate) must be a finite number > 0, got NaN",
      ],
      [
        () => layer.step(H4, good, Infinity),
        RangeError,
        "eta (learning rate) must be a finite number > 0, got Infinity",
      ],
      [
        () => layer.evaluate(H4, batch([0, 1, 2, 3, 4], [1, 2, 3, 5000])),
        RangeError,
        "Y.indices[3] = 5000 is outside [0, D=5000) (example 3)",
      ],
      [
        () => layer.score(new Float32Array(3), Int32Array.of(1)),
        RangeError,
        "h.length = 3 but must be 1×4 = 4 (row-major)",
      ],
      [
        () => layer.score(Float32Array.of(1, 0, NaN, 0), Int32Array.of(1)),
        RangeError,
        "h[2] = NaN is not finite (row 0, column 2)",
      ],
      [
        () => layer.score(new Float32Array(4), Int32Array.of(1, 5000)),
        RangeError,
        "rows[1] = 5000 is outside [0, D=5000)",
      ],
      [() => layer.topK(new Float32Array(4), 0), RangeError, "k must be a positive integer, got 0"],
      [
        () => layer.appendRows(new Float32Array(6)),
        RangeError,
        "rows.length = 6 is not a multiple of d = 4 (n×d row-major)",
      ],
      [
        () => layer.appendRows(Float32Array.of(1, 2, 3, NaN)),
        RangeError,
        "rows[3] = NaN is not finite (row 0, column 3)",
      ],
    ];
    const before = await layer.exportState();
    for (const [f, type, msg] of cases) await rejects(f, type, msg);
    // the exact message of the issue's example: 18 targets, the 18th of example 3 is out of range
    const offs = [0, 5, 10, 15, 18], idx = Array.from({ length: 18 }, (_, k) => k);
    idx[17] = 5000;
    await rejects(
      () => layer.step(H4, batch(offs, idx), 0.1),
      RangeError,
      "Y.indices[17] = 5000 is outside [0, D=5000) (example 3)",
    );
    const after = await layer.exportState();
    for (const k of Object.keys(before.arrays)) {
      assert.deepEqual(after.arrays[k], before.arrays[k], `${k} changed`);
    }
    layer.close();
  });

  Deno.test(`${kind}: repeated indices are summed, within and across examples; evaluate() changes nothing`, async () => {
    const r = rng(2);
    const W0 = uniform(r, 50 * d, 0.2);
    const a = await makeLayer(kind, "js", 50, d, W0, "spherical");
    const b = await makeLayer(kind, "js", 50, d, W0, "spherical");
    const H = randomH(r, 3, d);
    // example 0: {7: 1, 7: 0.5, 9: 1}; example 1: {7: 2}; example 2: {9: 0.25, 9: 0.25}
    const dup = batch([0, 3, 4, 6], [7, 7, 9, 7, 9, 9], [1, 0.5, 1, 2, 0.25, 0.25]);
    const merged = batch([0, 2, 3, 4], [7, 9, 7, 9], [1.5, 1, 2, 0.5]);
    const s0 = await a.exportState();
    const ea = await a.evaluate(H, dup), eb = await b.evaluate(H, merged);
    assert.deepEqual((await a.exportState()).arrays, s0.arrays, "evaluate must not change the state");
    assert(Math.abs(ea.loss - eb.loss) <= 1e-12 * Math.abs(eb.loss));
    assert.deepEqual(ea.gradH, eb.gradH);
    const sa = await a.step(H, dup, 0.05), sb = await b.step(H, merged, 0.05);
    assert.equal(sa.loss, ea.loss);
    assert.deepEqual(sa.gradH, ea.gradH);
    assert(Math.abs(sa.loss - sb.loss) <= 1e-12 * Math.abs(sb.loss));
    const wa = await a.weights(), wb = await b.weights();
    for (let j = 0; j < wa.length; j++) {
      assert(Math.abs(wa[j] - wb[j]) <= 1e-6, `W[${j}] ${wa[j]} vs ${wb[j]}`);
    }
    a.close();
    b.close();
  });
}

Deno.test("createOutputLayer: bad options are refused naming the option", async () => {
  const init = new Float32Array(10 * 2);
  const base = { kind: "factored" as const, D: 10, d: 2, init, backend: "js" as const, ...quiet };
  const cases: [() => Promise<OutputLayer>, ErrorClass, string | RegExp][] = [
    [
      () => createOutputLayer({ ...base, kind: "dense" as "naive" }),
      UsageError,
      'kind must be "factored" or "naive", got "dense"',
    ],
    [() => createOutputLayer({ ...base, D: 0 }), RangeError, "D must be a positive integer, got 0"],
    [() => createOutputLayer({ ...base, d: 2.5 }), RangeError, "d must be a positive integer, got 2.5"],
    [
      () => createOutputLayer({ ...base, init: new Float32Array(19) }),
      RangeError,
      "init.length = 19 but must be 10×2 = 20 (row-major)",
    ],
    [
      () => createOutputLayer({ ...base, init: init.map((_, j) => (j === 5 ? Infinity : 0)) }),
      RangeError,
      "init[5] = Infinity is not finite (row 2, column 1)",
    ],
    [
      () => createOutputLayer({ ...base, init: undefined }),
      UsageError,
      "createOutputLayer: give init (W₀, D×d) or state",
    ],
    [
      () => createOutputLayer({ ...base, backend: "cuda" as "js" }),
      UsageError,
      'backend must be "js", "blas", "auto" or "webgpu", got "cuda"',
    ],
    [
      () => createOutputLayer({ ...base, loss: "softmax" as "squared" }),
      RangeError,
      /loss must be one of squared, spherical, taylor, zloss/,
    ],
    [
      () => createOutputLayer({ ...base, stabilizeEvery: -1 }),
      RangeError,
      "stabilizeEvery must be an integer ≥ 0, got -1",
    ],
    [
      () => createOutputLayer({ ...base, recomputeQEvery: 1.5 }),
      RangeError,
      "recomputeQEvery must be an integer ≥ 0, got 1.5",
    ],
  ];
  for (const [f, type, msg] of cases) await rejects(f, type, msg);
  const layer = await createOutputLayer(base);
  const state = await layer.exportState();
  layer.close();
  await rejects(
    () => createOutputLayer({ ...base, kind: "naive", state }),
    UsageError,
    'state.kind = "factored" but kind = "naive"',
  );
  await rejects(
    () => createOutputLayer({ ...base, D: 11, init: undefined, state }),
    UsageError,
    "state is 10×2 but D×d = 11×2 was asked",
  );
  await rejects(
    () => createOutputLayer({ ...base, loss: "taylor", state }),
    UsageError,
    'state.loss = "squared" but loss = "taylor"',
  );
  const broken = { ...state, arrays: { ...state.arrays, U: new Float64Array(3) } };
  await rejects(
    () => createOutputLayer({ ...base, state: broken }),
    RangeError,
    "state.arrays.U.length = 3, expected 4",
  );
});

for (const loss of ["squared", "spherical", "taylor", "zloss"] as const) {
  Deno.test(`${loss}: edge inputs (all-zero h, zero weights, a target output of exactly 0, large outputs) agree and stay finite`, async () => {
    const Dn = 60, dn = 4;
    const r = rng(8);
    for (const scale of [0.1, 1e3]) {
      const W0 = uniform(r, Dn * dn, scale);
      W0.fill(0, 5 * dn, 6 * dn); // row 5 is zero: its output is exactly 0 for any h
      const naive = await makeLayer("naive", "js", Dn, dn, W0, loss);
      const fact = await makeLayer("factored", "js", Dn, dn, W0, loss);
      const H = randomH(r, 3, dn);
      H.fill(0, 0, dn); // example 0: h = 0
      const Y = batch([0, 2, 4, 5], [1, 2, 5, 7, 9], [1, 0, 1, 0, 0.5]); // zero weights, target row 5
      const eta = 1e-3 * Math.min(1, 1 / (scale * scale));
      for (let t = 0; t < 3; t++) {
        const a = await naive.step(H, Y, eta), b = await fact.step(H, Y, eta);
        assert(
          Number.isFinite(a.loss) && Number.isFinite(b.loss),
          `${loss} scale ${scale}: loss ${a.loss} ${b.loss}`,
        );
        assert(
          Math.abs(a.loss - b.loss) <= 1e-5 * Math.max(1, Math.abs(a.loss)),
          `${loss}: ${a.loss} vs ${b.loss}`,
        );
        for (let j = 0; j < a.gradH.length; j++) {
          assert(Number.isFinite(b.gradH[j]));
          assert(Math.abs(a.gradH[j] - b.gradH[j]) <= 1e-4 * Math.max(1e-6, ...a.gradH.map(Math.abs)));
        }
      }
      naive.close();
      fact.close();
    }
  });
}

Deno.test("the same misuse throws the same error class and message on every backend (js; webgpu where an adapter exists)", async () => {
  const adapter = await (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu?.requestAdapter();
  if (!adapter && Deno.env.get("CI") === "true") {
    throw new Error("no WebGPU adapter (CI=true: a missing backend is a failure)");
  }
  const backends = ["js", ...(adapter ? ["webgpu"] : [])] as const;
  if (!adapter) console.error("layers tests: no WebGPU adapter, the webgpu half of the misuse case skipped");
  const D = 10, d = 2, init = uniform(rng(5), D * d, 0.1);
  for (const kind of ["factored", "naive"] as const) {
    const ref = await createOutputLayer({ kind, D, d, init, backend: "js", ...quiet });
    const state = await ref.exportState();
    ref.close();
    const other = kind === "factored" ? "naive" : "factored";
    const H = new Float32Array(2 * d).fill(0.1);
    for (const backend of backends) {
      const base = { kind, D, d, init, backend: backend as "js" | "webgpu", ...quiet };
      const cases: [() => Promise<unknown>, ErrorClass, string][] = [
        [
          () => createOutputLayer({ ...base, init: undefined }),
          UsageError,
          "createOutputLayer: give init (W₀, D×d) or state",
        ],
        [
          () => createOutputLayer({ ...base, kind: other, state }),
          UsageError,
          `state.kind = "${kind}" but kind = "${other}"`,
        ],
        [
          () => createOutputLayer({ ...base, D: 11, init: undefined, state }),
          UsageError,
          "state is 10×2 but D×d = 11×2 was asked",
        ],
        [
          () => createOutputLayer({ ...base, loss: "taylor", state }),
          UsageError,
          'state.loss = "squared" but loss = "taylor"',
        ],
        [
          () => createOutputLayer({ ...base, stabilizeEvery: -1 }),
          RangeError,
          "stabilizeEvery must be an integer ≥ 0, got -1",
        ],
        [
          () => createOutputLayer({ ...base, init: new Float32Array(3) }),
          RangeError,
          "init.length = 3 but must be 10×2 = 20 (row-major)",
        ],
        [() => createOutputLayer({ ...base, D: 0 }), RangeError, "D must be a positive integer, got 0"],
        // a state's fields of the wrong type, or a state with other loss options
        [
          () =>
            createOutputLayer({
              ...base,
              init: undefined,
              state: { ...state, D: "10" as unknown as number },
            }),
          TypeError,
          'state.D must be a number, got string "10"',
        ],
        [
          () => createOutputLayer({ ...base, init: undefined, state: { ...state, arrays: null as never } }),
          TypeError,
          "state.arrays must be an object (of typed arrays, from exportState()), got null",
        ],
        [
          () =>
            createOutputLayer({ ...base, init: undefined, state: { ...state, scalars: undefined as never } }),
          TypeError,
          "state.scalars must be an object (of numbers, from exportState()), got undefined",
        ],
        [
          () => createOutputLayer({ ...base, init: undefined, state, lossOptions: { epsilon: 0.5 } }),
          UsageError,
          "state.lossOptions.epsilon = 0.001 but lossOptions.epsilon = 0.5: a state continues with its own " +
          "loss options (leave lossOptions out, or give the state's)",
        ],
        kind === "naive"
          ? [
            () =>
              createOutputLayer({
                ...base,
                init: undefined,
                state: { ...state, arrays: { W: Float64Array.from(state.arrays.W) } },
              }),
            TypeError,
            "state.arrays.W must be a Float32Array, got Float64Array",
          ]
          : [
            () =>
              createOutputLayer({
                ...base,
                init: undefined,
                state: {
                  ...state,
                  arrays: { ...state.arrays, V: state.arrays.V.map((v, j) => j === 3 ? NaN : v) },
                },
              }),
            RangeError,
            "state.arrays.V[3] = NaN is not finite (row 1, column 1): the state is corrupt; load another checkpoint " +
            "or export it again",
          ],
      ];
      for (const [f, type, msg] of cases) await rejects(f, type, msg);
      const layer = await createOutputLayer(base);
      try {
        await rejects(
          () => layer.step(H, batch([0, 1, 2], [1, 10]), 0.1),
          RangeError,
          "Y.indices[1] = 10 is outside [0, D=10) (example 1)",
        );
        await rejects(
          () => layer.step(H, batch([0, 1, 2], [1, 2]), -1),
          RangeError,
          "eta (learning rate) must be a finite number > 0, got -1",
        );
        await rejects(
          () => layer.step(H, batch([0, 1, 2], [1, 2]), "0.1" as unknown as number),
          TypeError,
          'eta (learning rate) must be a number, got string "0.1"',
        );
        await rejects(
          () => layer.score(new Float32Array(d), Int32Array.of(10)),
          RangeError,
          "rows[0] = 10 is outside [0, D=10)",
        );
      } finally {
        layer.close();
      }
      const closed = "this output layer was closed; create a new one (createOutputLayer) to go on";
      await rejects(() => layer.step(H, batch([0, 1, 2], [1, 2]), 0.1), UsageError, closed);
      await rejects(() => layer.evaluate(H, batch([0, 1, 2], [1, 2])), UsageError, closed);
      await rejects(() => layer.weights(), UsageError, closed);
      await rejects(() => layer.exportState(), UsageError, closed);
      await rejects(() => layer.appendRows(new Float32Array(d)), UsageError, closed);
      await rejects(() => layer.diagnostics(), UsageError, closed);
      // a layer built from a state takes the state's loss and its options
      const sph = await createOutputLayer({
        kind,
        D,
        d,
        init,
        loss: "spherical",
        lossOptions: { epsilon: 0.2 },
        backend: "js",
        ...quiet,
      });
      const sphState = await sph.exportState();
      sph.close();
      const again = await createOutputLayer({ kind, D, d, state: sphState, backend: base.backend, ...quiet });
      const s2 = await again.exportState();
      again.close();
      assert.equal(s2.loss, "spherical", `${backend}: the state's loss`);
      assert.equal(s2.lossOptions?.epsilon, 0.2, `${backend}: the state's loss options`);
    }
  }
});

for (const backend of await cpuBackends()) {
  Deno.test(`a loss or ∇H that is not finite is refused with DivergenceError before the state changes, naive and factored alike (${backend})`, async () => {
    // the naive layer returned Inf/NaN as a normal result and wrote NaN into W; the factored layer checked the
    // loss but returned a finite loss with an infinite ∇H
    const Dn = 40, dn = 4;
    const Y = batch([0, 2, 3], [3, 7, 9], [1, 0.5, 1]);
    const H = new Float32Array(2 * dn).map((_, i) => Math.cos(i));
    const cases: { scale: number; kind: "naive" | "factored"; msg: RegExp }[] = [
      // squared loss ~1e40 (finite in float64), ∇H = ∇O W ~1e40 (not finite in float32)
      ...(["naive", "factored"] as const).map((kind) => ({
        scale: 1e20,
        kind,
        msg:
          /^step 1: ∇H\[0\] = (Infinity|NaN) is not finite \(example 0, column 0; the squared loss is finite\); the layer's state is unchanged\. Lower the learning rate\.$/,
      })),
      // outputs ~3e38: the loss itself overflows
      {
        scale: 3e38,
        kind: "naive",
        msg:
          /^step 1: the squared loss of example 0 is not finite \(L = Infinity\); the layer's state is unchanged\. Lower the learning rate\.$/,
      },
    ];
    for (const { scale, kind, msg } of cases) {
      const init = new Float32Array(Dn * dn).map((_, i) => Math.sin(i * 1.3) * scale);
      const layer = await createOutputLayer({ kind, D: Dn, d: dn, init, loss: "squared", backend, ...quiet });
      for (const op of ["evaluate", "step"] as const) {
        await assert.rejects(
          () => op === "evaluate" ? layer.evaluate(H, Y) : layer.step(H, Y, 1e-45),
          (e: unknown) => {
            assert(
              e instanceof DivergenceError,
              `${kind} ${op} at ${scale}: expected DivergenceError, got ${e}`,
            );
            assert.match(e.message, msg);
            assert.equal(e.step, 1);
            return true;
          },
        );
      }
      assert.deepEqual(await layer.weights(), init, `${kind} at ${scale}: W changed`);
      assert.equal((await layer.diagnostics()).steps, 0);
      layer.close();
    }
    // the naive layer diverging under a large learning rate: refused at the step whose ∇H overflows, W finite
    const init = new Float32Array(30 * dn).map((_, i) => Math.sin(i) * 0.1);
    const naive = await createOutputLayer({
      kind: "naive",
      D: 30,
      d: dn,
      init,
      loss: "squared",
      backend,
      ...quiet,
    });
    const h = new Float32Array(dn).fill(1), y = batch([0, 1], [3]);
    let refused = false;
    for (let t = 0; t < 60 && !refused; t++) {
      try {
        const r = await naive.step(h, y, 3);
        assert(
          Number.isFinite(r.loss) && r.gradH.every(Number.isFinite),
          `step ${t + 1} returned a non-finite result`,
        );
      } catch (e) {
        assert(e instanceof DivergenceError, `step ${t + 1}: ${e}`);
        refused = true;
      }
    }
    assert(refused, "η = 3 diverges: some step must be refused");
    assert((await naive.weights()).every(Number.isFinite), "W holds a NaN or an infinity");
    naive.close();
  });
}

Deno.test("a negative target weight is refused (RangeError, before any state change) by the likelihood losses on every layer and backend; squared fits it", async () => {
  const adapter = await (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu?.requestAdapter();
  if (!adapter && Deno.env.get("CI") === "true") {
    throw new Error("no WebGPU adapter (CI=true: a missing backend is a failure)");
  }
  const D = 10, d = 2, init = uniform(rng(7), D * d, 0.1);
  const H = new Float32Array(2 * d).fill(0.1);
  const Y = batch([0, 1, 3], [2, 4, 5], [1, 0.5, -0.25]);
  for (const loss of ["squared", "spherical", "taylor", "zloss"] as const) {
    assert.equal(createLoss(loss).weightsNonNegative, loss !== "squared", loss);
    for (const kind of ["factored", "naive"] as const) {
      for (const backend of ["js", "blas", ...(adapter ? ["webgpu" as const] : [])] as const) {
        const layer = await createOutputLayer({ kind, D, d, init, loss, backend, ...quiet });
        try {
          const what = `${loss} ${kind} ${backend}`;
          if (loss === "squared") {
            assert.ok(Number.isFinite((await layer.step(H, Y, 0.1)).loss), what);
            continue;
          }
          const before = await layer.weights();
          for (const call of [() => layer.evaluate(H, Y), () => layer.step(H, Y, 0.1)]) {
            await rejects(
              call,
              RangeError,
              `Y.values[2] = -0.25 is negative (example 1): the ${loss} loss takes target weights ≥ 0 ` +
                "(a negative weight makes it unbounded below); only the squared loss fits values of either sign",
            );
          }
          assert.deepEqual(await layer.weights(), before, `${what}: W unchanged`);
          // a zero weight is a weight
          await layer.step(H, batch([0, 1, 3], [2, 4, 5], [1, 0, 0.25]), 0.1);
        } finally {
          layer.close();
        }
      }
    }
  }
});

Deno.test("q = hᵀQh: clamped at 0 from below, a NaN kept (not zeroed) for the loss check to refuse", () => {
  const dn = 2;
  const st = {
    d: dn,
    loss: createLoss("spherical"),
    q: new Float64Array(4),
    s: new Float64Array(4),
    hw: new Float64Array(4),
    omega: new Float64Array(dn),
    wbar: new Float64Array(dn),
  } as unknown as ExampleScalars;
  const H = Float64Array.of(1, 0, 1, 0, 1, 0, 1, 0);
  // rows of QH: (Qh)_i·h_i = 2, −3, NaN, −0
  const QH = Float64Array.of(2, 0, -3, 0, NaN, 0, -0, 0);
  exampleStats(st, 4, H, QH, 0, dn);
  assert.equal(st.q[0], 2);
  assert(Object.is(st.q[1], 0) && Object.is(st.q[3], 0), `negative or −0 → +0: ${st.q}`);
  assert(Number.isNaN(st.q[2]), `a NaN q was turned into ${st.q[2]}`);
});
