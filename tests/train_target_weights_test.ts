// `--target-power α` and `--target-scale k` (lib/train/target_weights.ts): the flags' parsing and validation,
// the squared recipe turning them on (an explicit flag wins), the factors k·(D·p(c))^−α, the scaled weights
// reaching the output layer (training and held-out examples alike), and the factored layer agreeing with
// the naive one on such weights.
import assert from "node:assert/strict";
import { UsageError } from "../lib/core/errors.ts";
import { resolveConfig } from "../lib/train/config.ts";
import { parseTrainArgs } from "../lib/train/cli.ts";
import { RECIPES } from "../lib/train/recipes.ts";
import { TargetScaler, targetScales } from "../lib/train/target_weights.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { createOutputLayer } from "../lib/output/create.ts";
import type { CreateHead } from "../lib/train/trainer.ts";
import type { SparseBatch } from "../lib/core/types.ts";
import { memoryReader, ringCorpus, ringVocab, smallConfig } from "./train_fakes.ts";
import {
  cpuBackends,
  makeLayer,
  randomBatch,
  randomH,
  relDiff,
  relMaxDiff,
  rng,
  uniform,
} from "./layers_helpers.ts";

Deno.test("target power: --target-power and --target-scale parse, bad values are one-line UsageErrors naming the flag", async () => {
  const a = await parseTrainArgs(["--target-power", "0.25", "--target-scale", "3"]);
  assert.equal(a.config.targetPower, 0.25);
  assert.equal(a.config.targetScale, 3);
  assert.equal(resolveConfig().targetPower, 0, "off by default");
  assert.equal(resolveConfig().targetScale, 1, "off by default");
  for (const v of ["-0.5", "1.5", "x", "", "NaN", "Infinity"]) {
    await assert.rejects(
      () => parseTrainArgs(["--target-power", v]),
      (e) =>
        e instanceof UsageError && /^--target-power must be a number ≥ 0 and ≤ 1, got '/.test(e.message) &&
        !e.message.includes("\n"),
      v,
    );
  }
  for (const v of ["0", "-1", "1001", "y"]) {
    await assert.rejects(
      () => parseTrainArgs(["--target-scale", v]),
      (e) =>
        e instanceof UsageError && /^--target-scale must be a number > 0 and ≤ 1000, got '/.test(e.message) &&
        !e.message.includes("\n"),
      v,
    );
  }
  assert.throws(() => resolveConfig({ targetPower: "0.5" }), /--target-power must be a number/);
});

Deno.test("target power: the squared recipe turns it on, an explicit flag (even the default) wins, other losses keep it off", async () => {
  const { targetPower: power, targetScale: scale } = RECIPES.skipgram.squared!.set;
  assert.ok(power !== undefined && power > 0, "the squared recipe sets --target-power");
  assert.ok(scale !== undefined && scale !== 1, "the squared recipe sets --target-scale");
  const a = await parseTrainArgs(["--loss", "squared"]);
  assert.equal(a.config.targetPower, power);
  assert.equal(a.config.targetScale, scale);
  assert.equal(a.recipe?.applied.targetPower, power);
  const b = await parseTrainArgs(["--loss", "squared", "--target-power", "0", "--target-scale", "1"]);
  assert.equal(b.config.targetPower, 0);
  assert.equal(b.config.targetScale, 1);
  assert.equal(b.config.lr, a.config.lr, "the rest of the recipe still applies");
  for (const loss of ["spherical", "taylor", "zloss"]) {
    const c = (await parseTrainArgs(["--loss", loss])).config;
    assert.equal(c.targetPower, 0, loss);
    assert.equal(c.targetScale, 1, loss);
  }
  assert.equal((await parseTrainArgs(["--mode", "cbow", "--loss", "squared"])).config.targetPower, 0);
});

Deno.test("target power: the factors are (D·p(c))^−α, and the scaler leaves the reader's batch alone", () => {
  assert.equal(targetScales([5, 1], 0), null);
  assert.deepEqual(Array.from(targetScales([5, 1], 0, 3)!), [3, 3]);
  const counts = [600, 200, 100, 100];
  const s = targetScales(counts, 0.5)!;
  const total = 1000, D = 4;
  counts.forEach((n, i) => assert.ok(Math.abs(s[i] - (n * D / total) ** -0.5) < 1e-6, `word ${i}`));
  assert.ok(s[0] < 1 && s[3] > 1, "frequent words down, rare words up");
  // a word at the uniform frequency keeps its value; a count of 0 counts as 1
  assert.equal(targetScales([7, 7, 7], 0.75)![1], 1);
  assert.ok(Math.abs(targetScales(counts, 0.5, 4)![2] - 4 * s[2]) < 1e-6, "k multiplies");
  assert.ok(Number.isFinite(targetScales([0, 9], 1)![0]));
  const Y = {
    offsets: Int32Array.of(0, 2, 3),
    indices: Int32Array.of(0, 3, 3),
    values: Float32Array.of(1, 0.5, 2),
  };
  const scaler = new TargetScaler(s);
  const out = scaler.apply(Y);
  assert.deepEqual(Array.from(Y.values), [1, 0.5, 2], "input untouched");
  assert.deepEqual(Array.from(out.values), [s[0], 0.5 * s[3], 2 * s[3]].map(Math.fround));
  assert.equal(out.indices, Y.indices);
  assert.throws(
    () =>
      scaler.apply({ offsets: Int32Array.of(0, 1), indices: Int32Array.of(4), values: Float32Array.of(1) }),
    /target id 4 is outside the vocabulary of 4 words/,
  );
});

Deno.test("target power: the trainer hands the layer the scaled weights, in training and held-out batches", async () => {
  const V = 30, vocab = ringVocab(V), corpus = ringCorpus(V, 200);
  const scales = targetScales(vocab.counts, 0.5, 3)!;
  const seen: { step: number[]; evaluate: number[] } = { step: [], evaluate: [] };
  const expected = new Map<string, number>();
  for (const ex of corpus) {
    expected.set(`${ex.input.join(",")}>${ex.target[0]}`, ex.value[0] * scales[ex.target[0]]);
  }
  const capture: CreateHead = async (opts) => {
    const layer = await createOutputLayer({ ...opts, log: () => {} });
    const step = layer.step.bind(layer), evaluate = layer.evaluate.bind(layer);
    const record = (into: number[], Y: SparseBatch) => {
      for (let k = 0; k < Y.offsets[Y.offsets.length - 1]; k++) into.push(Y.values[k]);
    };
    layer.step = (H, Y, eta) => (record(seen.step, Y), step(H, Y, eta));
    layer.evaluate = (H, Y) => (record(seen.evaluate, Y), evaluate(H, Y));
    return layer;
  };
  const config = smallConfig({
    loss: "squared",
    targetPower: 0.5,
    targetScale: 3,
    epochs: 1,
    validation: 0.2,
    output: "naive",
  });
  const t = await Trainer.create({
    config,
    vocab,
    openReader: memoryReader(corpus),
    createHead: capture,
    log: () => {},
  });
  await t.train({ paths: ["mem"], rows: corpus.length });
  assert.ok(
    seen.step.length > 100 && seen.evaluate.length > 10,
    `${seen.step.length} ${seen.evaluate.length}`,
  );
  const allowed = new Set([...expected.values()].map(Math.fround));
  for (const v of [...seen.step, ...seen.evaluate]) {
    assert.ok(allowed.has(v), `value ${v} is not a scaled weight`);
  }
  assert.ok(!seen.step.every((v) => v === 1), "weights were scaled");
  t.close();
});

for (const backend of await cpuBackends()) {
  Deno.test(`target power: factored = naive on frequency-weighted squared-error targets, ${backend}`, async () => {
    // Zipf counts: the factors span ≈ 0.6 … 10; same tolerances as tests/layers_exact_test.ts' squared case
    const D = 300, d = 16, K = 6, m = 16, eta = 0.01;
    const scaler = new TargetScaler(
      targetScales(Array.from({ length: D }, (_, i) => 6000 / (i + 1)), 0.5, 4)!,
    );
    const r = rng(11);
    const W0 = uniform(r, D * d, 0.1);
    const naive = await makeLayer("naive", backend, D, d, W0, "squared");
    const fact = await makeLayer("factored", backend, D, d, W0, "squared", { stabilizeEvery: 20 });
    let loss = 0, gradH = 0;
    for (let t = 0; t < 150; t++) {
      const H = randomH(r, m, d, 1);
      const Y = scaler.apply(randomBatch(r, m, D, K, { weighted: true, dupProb: 0.25 }));
      const a = await naive.step(H, Y, eta), b = await fact.step(H, Y, eta);
      loss = Math.max(loss, relDiff(b.loss, a.loss));
      gradH = Math.max(gradH, relMaxDiff(b.gradH, a.gradH));
    }
    const W = relMaxDiff(await fact.weights(), await naive.weights());
    assert.ok(loss <= 1e-5 && gradH <= 1e-4 && W <= 1e-5, `loss ${loss} ∇H ${gradH} W ${W}`);
    naive.close();
    fact.close();
  });
}
