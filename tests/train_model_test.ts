// The model (embedding bag → hidden layers → [h, 1] → head): a finite-difference gradient check in float64
// through every parameter kind, sparse row updates, and the real naive output layer agreeing with the
// float64 textbook head.
import assert from "node:assert/strict";
import { createLoss } from "../lib/losses/mod.ts";
import { createBackend } from "../lib/linalg/select.ts";
import { NaiveOutputLayer } from "../lib/output/naive.ts";
import { headWidth, initParams, Model, type ModelParams, type ModelSpec } from "../lib/model/model.ts";
import { Rng } from "../lib/core/rng.ts";
import type { LossName } from "../lib/core/types.ts";
import { assertClose, DenseHead64, toBatch } from "./train_fakes.ts";

const examples = [
  { input: [1, 3, 3, 5], target: [2], value: [1] },
  { input: [0], target: [4, 1, 4], value: [1, 0.5, 0.25] },
  { input: [6, 2], target: [0], value: [1] },
];

function clone(p: ModelParams): ModelParams {
  return { E: p.E.slice(), layers: p.layers.map((l) => ({ A: l.A.slice(), b: l.b.slice() })) };
}

async function gradientCheck(
  hidden: number[],
  activation: "relu" | "tanh",
  bag: "mean" | "sum",
  loss: LossName,
) {
  const spec: ModelSpec = { vocab: 9, dim: 4, hidden, activation, bag };
  const rng = new Rng(7);
  const p0 = initParams(spec, () => rng.next(), Float64Array);
  // larger weights than the init so that the check sees curvature
  for (const a of [p0.E, ...p0.layers.flatMap((l) => [l.A, l.b])]) {
    for (let i = 0; i < a.length; i++) a[i] = 3 * (rng.next() - 0.5);
  }
  const d = headWidth(spec), D = 6;
  const W0 = new Float64Array(D * d).map(() => rng.next() - 0.5);
  const { inputs, targets } = toBatch(examples, 0, examples.length);
  const lossOf = async (p: ModelParams) => {
    const m = new Model(spec, clone(p), new DenseHead64(D, d, W0.slice(), createLoss(loss)));
    return await m.evaluate(inputs, targets);
  };
  // the SGD step's parameter change is -eta·gradient
  const eta = 1e-3;
  const stepped = clone(p0);
  const model = new Model(spec, stepped, new DenseHead64(D, d, W0.slice(), createLoss(loss)));
  const L = await model.step(inputs, targets, eta);
  assertClose(L, await lossOf(p0), 1e-12);
  const h = 1e-6;
  const checkArray = async (name: string, get: (p: ModelParams) => Float64Array, coords: number[]) => {
    for (const c of coords) {
      const plus = clone(p0), minus = clone(p0);
      get(plus)[c] += h;
      get(minus)[c] -= h;
      const fd = (await lossOf(plus) - await lossOf(minus)) / (2 * h);
      const g = (get(p0)[c] - get(stepped)[c]) / eta;
      const scale = Math.max(1, Math.abs(fd));
      assert(Math.abs(fd - g) <= 1e-5 * scale, `${name}[${c}]: backprop ${g} vs finite difference ${fd}`);
    }
  };
  const dim = spec.dim;
  // touched rows 0,1,2,3,5,6: every coordinate of rows 3 (repeated id) and 6, some of the others
  await checkArray("E", (p) => p.E as Float64Array, [
    3 * dim,
    3 * dim + 1,
    3 * dim + 3,
    6 * dim,
    6 * dim + 2,
    0,
    5,
    9,
    22,
  ]);
  // untouched rows (4, 7, 8) must not move
  for (const r of [4, 7, 8]) {
    for (let j = 0; j < dim; j++) {
      assert.equal(stepped.E[r * dim + j], p0.E[r * dim + j], `untouched row ${r} moved`);
    }
  }
  for (let l = 0; l < hidden.length; l++) {
    const A = p0.layers[l].A.length, b = p0.layers[l].b.length;
    await checkArray(`A${l}`, (p) => p.layers[l].A as Float64Array, [0, 1, Math.floor(A / 2), A - 1]);
    await checkArray(`b${l}`, (p) => p.layers[l].b as Float64Array, [0, b - 1]);
  }
}

Deno.test("model gradient check (float64 finite differences): no hidden layer, mean bag, squared loss", async () => {
  await gradientCheck([], "relu", "mean", "squared");
});

Deno.test("model gradient check: two tanh hidden layers, sum bag, spherical loss", async () => {
  await gradientCheck([5, 3], "tanh", "sum", "spherical");
});

Deno.test("model gradient check: relu hidden layer, mean bag, taylor loss", async () => {
  await gradientCheck([6], "relu", "mean", "taylor");
});

Deno.test("model: the real naive output layer (js) gives the float64 head's loss, ∇H and parameter updates", async () => {
  const spec: ModelSpec = { vocab: 9, dim: 4, hidden: [5], activation: "tanh", bag: "mean" };
  const rng = new Rng(3);
  const p32 = initParams(spec, () => rng.next(), Float32Array);
  for (const a of [p32.E, p32.layers[0].A]) for (let i = 0; i < a.length; i++) a[i] = 2 * (rng.next() - 0.5);
  const p64: ModelParams = {
    E: Float64Array.from(p32.E),
    layers: [{ A: Float64Array.from(p32.layers[0].A), b: Float64Array.from(p32.layers[0].b) }],
  };
  const d = headWidth(spec), D = 7;
  const W = new Float32Array(D * d).map(() => rng.next() - 0.5);
  const la = await createBackend("js");
  const naive = new NaiveOutputLayer(D, d, W, createLoss("spherical"), la);
  const m32 = new Model(spec, p32, naive);
  const m64 = new Model(spec, p64, new DenseHead64(D, d, Float64Array.from(W), createLoss("spherical")));
  const { inputs, targets } = toBatch(examples, 0, examples.length);
  for (let s = 0; s < 5; s++) {
    const a = await m32.step(inputs, targets, 0.05), b = await m64.step(inputs, targets, 0.05);
    assertClose(a, b, 1e-4 * Math.abs(b));
  }
  for (let i = 0; i < p32.E.length; i++) assertClose(p32.E[i], p64.E[i], 1e-4);
  for (let i = 0; i < p32.layers[0].A.length; i++) assertClose(p32.layers[0].A[i], p64.layers[0].A[i], 1e-4);
  naive.close();
});

Deno.test("model: a non-finite activation makes step return NaN without updating", async () => {
  const spec: ModelSpec = { vocab: 3, dim: 2, hidden: [], activation: "relu", bag: "mean" };
  const p = initParams(spec, () => 0.7, Float64Array);
  p.E[2] = NaN;
  const before = p.E.slice();
  const model = new Model(
    spec,
    p,
    new DenseHead64(3, 3, new Float64Array(9).fill(0.1), createLoss("squared")),
  );
  const X = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(1), values: Float32Array.of(1) };
  assert(Number.isNaN(await model.step(X, X, 0.1)));
  for (let i = 0; i < p.E.length; i++) assert(Object.is(p.E[i], before[i]));
});

Deno.test("model: hidden layers on sgemm (js and blas backends) match the plain-loop reference", async () => {
  const spec: ModelSpec = { vocab: 30, dim: 12, hidden: [16, 8], activation: "relu", bag: "mean" };
  const d = headWidth(spec), D = 11;
  const { inputs, targets } = toBatch(
    [
      ...examples,
      ...examples.map((e) => ({ ...e, input: e.input.map((i) => i + 20) })),
    ],
    0,
    6,
  );
  const rng = new Rng(11);
  const p0 = initParams(spec, () => rng.next(), Float32Array);
  const W = new Float32Array(D * d).map(() => rng.next() - 0.5);
  const runWith = async (la?: Awaited<ReturnType<typeof createBackend>>) => {
    const p = clone(p0);
    const model = new Model(spec, p, new DenseHead64(D, d, Float64Array.from(W), createLoss("taylor")), la);
    const losses: number[] = [];
    for (let s = 0; s < 4; s++) losses.push(await model.step(inputs, targets, 0.1));
    return { p, losses };
  };
  const ref = await runWith();
  for (const name of ["js", "blas"] as const) {
    const la = await createBackend(name);
    const got = await runWith(la);
    for (let s = 0; s < 4; s++) {
      assertClose(got.losses[s], ref.losses[s], 1e-5 * Math.abs(ref.losses[s]), `${name} loss ${s}`);
    }
    const pairs: [ArrayLike<number>, ArrayLike<number>, string][] = [[got.p.E, ref.p.E, "E"]];
    got.p.layers.forEach((l, i) =>
      pairs.push([l.A, ref.p.layers[i].A, `A${i}`], [l.b, ref.p.layers[i].b, `b${i}`])
    );
    for (const [a, b, what] of pairs) {
      for (let i = 0; i < a.length; i++) assertClose(a[i], b[i], 1e-5, `${name} ${what}[${i}]`);
    }
    la.close();
  }
});
