/**
 * Bad input to the output layers: every validation error, with the argument and position it names;
 * duplicate indices are legal and summed; evaluate() changes nothing.
 *
 * Run: npx deno test -A tests/layers_input_test.ts   (≈ 2 s)
 */

import assert from "node:assert/strict";
import { createOutputLayer } from "../lib/output/create.ts";
import { UsageError } from "../lib/core/errors.ts";
import type { OutputLayer, SparseBatch } from "../lib/core/types.ts";
import { makeLayer, randomH, rng, uniform } from "./layers_helpers.ts";

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
    // the exact message of the example: 18 targets, the 18th of example 3 is out of range
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
    }
  }
});
