// The per-mode/loss defaults (lib/train/recipes.ts): a recipe fills in only what was not given explicitly
// (a flag or a --config setting), --help lists every recipe, spherical softmax's ε follows a small
// vocabulary and a step product η·η_in above the recipe's (the scale invariance behind that is tested), and
// default flags on a corpus of ~100 words train to the end (they diverged at step 1).
import assert from "node:assert/strict";
import { resolveConfig } from "../lib/train/config.ts";
import { createLoss } from "../lib/losses/mod.ts";
import { helpText, parseTrainArgs } from "../lib/train/cli.ts";
import {
  applyRecipe,
  applyVocabularyDefaults,
  LONG_RUN_LR_FACTOR,
  LONG_RUN_TARGET_POWER,
  LONG_RUN_WINDOW,
  RECIPE_EPOCHS,
  RECIPE_FIELDS,
  RECIPES,
  SPHERICAL_MAX_EPSILON_RATIO,
  SPHERICAL_MIN_FLOOR_MASS,
} from "../lib/train/recipes.ts";

Deno.test("recipes: a loss's recipe applies unless the flag is given", async () => {
  const taylor = RECIPES.skipgram.taylor!;
  assert.ok(taylor.set.lr !== undefined && taylor.set.lr !== resolveConfig().lr);
  const a = await parseTrainArgs(["--loss", "taylor"]);
  assert.equal(a.config.lr, taylor.set.lr);
  assert.equal(a.recipe?.name, "skipgram/taylor");
  assert.deepEqual(a.recipe?.applied.lr, taylor.set.lr);
  const b = await parseTrainArgs(["--loss", "taylor", "--lr", "0.0123"]);
  assert.equal(b.config.lr, 0.0123);
  assert.equal(b.recipe?.applied.lr, undefined);
  // the default loss and mode keep DEFAULT_CONFIG's values
  const c = await parseTrainArgs([]);
  assert.deepEqual(c.config, resolveConfig());
});

Deno.test("recipes: a longer run keeps the total step: --lr ÷ (epochs / RECIPE_EPOCHS) unless --lr is given", async () => {
  const { lr: base, lossEpsilon: eps } = resolveConfig();
  const long = await parseTrainArgs(["--epochs", String(3 * RECIPE_EPOCHS)]);
  // (× LONG_RUN_LR_FACTOR for the weighted targets a long skip-gram spherical run gets: tested below)
  assert.ok(Math.abs(long.config.lr - LONG_RUN_LR_FACTOR * base / 3) < 1e-3 * base, String(long.config.lr));
  const taylorLr = RECIPES.skipgram.taylor!.set.lr!;
  const longTaylor = await parseTrainArgs(["--epochs", String(3 * RECIPE_EPOCHS), "--loss", "taylor"]);
  assert.ok(Math.abs(longTaylor.config.lr - taylorLr / 3) < 1e-3 * taylorLr, String(longTaylor.config.lr));
  // and the spherical softmax's ε × (epochs / RECIPE_EPOCHS): the floor probability stays up
  assert.ok(Math.abs(long.config.lossEpsilon - 3 * eps) < 1e-9, String(long.config.lossEpsilon));
  assert.equal(long.recipe?.applied.lossEpsilon, long.config.lossEpsilon);
  const given = await parseTrainArgs(["--epochs", String(3 * RECIPE_EPOCHS), "--lr", String(base)]);
  assert.equal(given.config.lr, base);
  assert.equal(given.config.lossEpsilon, eps);
  const givenEps = await parseTrainArgs(["--epochs", String(3 * RECIPE_EPOCHS), "--loss-epsilon", "0.002"]);
  assert.equal(givenEps.config.lossEpsilon, 0.002);
  assert.ok(Math.abs(givenEps.config.lr - LONG_RUN_LR_FACTOR * base / 3) < 1e-3 * base);
  const taylor = await parseTrainArgs(["--epochs", String(3 * RECIPE_EPOCHS), "--loss", "taylor"]);
  assert.equal(taylor.config.lossEpsilon, eps);
  const short = await parseTrainArgs(["--epochs", "2"]);
  assert.equal(short.config.lr, base);
  assert.equal(short.config.lossEpsilon, eps);
});

Deno.test("recipes: a longer skip-gram spherical run narrows its window and weighs its targets, unless given", async () => {
  const { window, lr: base } = resolveConfig();
  assert.ok(LONG_RUN_WINDOW < window && LONG_RUN_TARGET_POWER > 0 && LONG_RUN_LR_FACTOR < 1);
  const long = await parseTrainArgs(["--epochs", String(3 * RECIPE_EPOCHS)]);
  assert.equal(long.config.window, LONG_RUN_WINDOW);
  assert.equal(long.config.targetPower, LONG_RUN_TARGET_POWER);
  assert.deepEqual(
    { window: long.recipe?.applied.window, targetPower: long.recipe?.applied.targetPower },
    { window: LONG_RUN_WINDOW, targetPower: LONG_RUN_TARGET_POWER },
  );
  // the measured 15-epoch point: lr 0.001, ε 0.003, window 4, target power 0.25 (docs/training-defaults.md)
  const e15 = (await parseTrainArgs(["--epochs", "15"])).config;
  assert.deepEqual(
    [e15.lr, e15.lossEpsilon, e15.window, e15.targetPower, e15.targetScale],
    [0.001, 0.003, 4, 0.25, 1],
  );
  // an explicit --lr keeps the window and the weights (they are about the objective, not the step)
  const lr = (await parseTrainArgs(["--epochs", "15", "--lr", "0.002"])).config;
  assert.deepEqual([lr.lr, lr.window, lr.targetPower], [0.002, LONG_RUN_WINDOW, LONG_RUN_TARGET_POWER]);
  // an explicit --target-power wins and then the step is not lowered for it; --window wins, either way
  const tp = (await parseTrainArgs(["--epochs", "15", "--target-power", "0"])).config;
  assert.deepEqual([tp.targetPower, tp.window], [0, LONG_RUN_WINDOW]);
  assert.ok(Math.abs(tp.lr - base / 3) < 1e-3 * base, String(tp.lr));
  assert.equal((await parseTrainArgs(["--epochs", "15", "--window", "5"])).config.window, 5);
  assert.equal((await parseTrainArgs(["--epochs", "15", "--window", "2"])).config.window, 2);
  // the recipe's own length keeps the defaults, and so do the other losses and CBOW (not measured)
  const short = (await parseTrainArgs(["--epochs", String(RECIPE_EPOCHS)])).config;
  assert.deepEqual([short.window, short.targetPower, short.lr], [window, 0, base]);
  for (const flags of [["--loss", "taylor"], ["--mode", "cbow"]]) {
    const c = (await parseTrainArgs(["--epochs", "15", ...flags])).config;
    assert.deepEqual([c.window, c.targetPower], [window, 0], flags.join(" "));
  }
  // the --help section names the rule
  assert.match(
    helpText(),
    new RegExp(`--window ${LONG_RUN_WINDOW}, --target-power ${LONG_RUN_TARGET_POWER}`),
  );
});

Deno.test("recipes: a --config file setting counts as explicit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/c.json`;
    await Deno.writeTextFile(file, JSON.stringify({ loss: "taylor", lr: 0.0042 }));
    const a = await parseTrainArgs(["--config", file]);
    assert.equal(a.config.lr, 0.0042);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recipes: only run-shaping and loss fields, every value valid", () => {
  for (const [mode, losses] of Object.entries(RECIPES)) {
    for (const [loss, r] of Object.entries(losses)) {
      for (const k of Object.keys(r!.set)) {
        assert.ok(RECIPE_FIELDS.includes(k as never), `${mode}/${loss}: ${k}`);
      }
      const cfg = resolveConfig({ mode, loss });
      const { config } = applyRecipe(cfg, new Set());
      for (const [k, v] of Object.entries(r!.set)) assert.equal(config[k as keyof typeof config], v);
    }
  }
});

Deno.test("recipes: CBOW trains with fastText's update (--bag mean-full); --bag mean keeps its own input step", async () => {
  const r = RECIPES.cbow.spherical!;
  const a = await parseTrainArgs(["--mode", "cbow"]);
  assert.equal(a.config.bag, "mean-full");
  assert.equal(a.config.lrInputScale, r.set.lrInputScale);
  assert.equal(a.config.lr, r.set.lr);
  assert.equal(a.config.lossEpsilon, resolveConfig().lossEpsilon);
  // the mean's gradient gives a row 1/(context words) of mean-full's step: its recipe's input step is larger
  const mean = await parseTrainArgs(["--mode", "cbow", "--bag", "mean"]);
  assert.equal(mean.config.bag, "mean");
  assert.equal(mean.config.lrInputScale, r.byBag!.mean!.lrInputScale);
  assert.ok(mean.config.lrInputScale > 5 * a.config.lrInputScale);
  // … and that larger input step is the recipe's, not a larger step: ε stays
  assert.equal(mean.config.lossEpsilon, resolveConfig().lossEpsilon);
  const given = await parseTrainArgs(["--mode", "cbow", "--bag", "mean", "--lr-input-scale", "7"]);
  assert.equal(given.config.lrInputScale, 7);
  const scale = await parseTrainArgs(["--mode", "cbow", "--lr-input-scale", "7"]);
  assert.equal(scale.config.bag, "mean-full");
  assert.equal(scale.config.lrInputScale, 7);
  // skip-gram keeps the mean (one input row: the same update)
  assert.equal((await parseTrainArgs([])).config.bag, "mean");
  assert.ok(helpText().includes("cbow/spherical with --bag mean: --lr-input-scale"));
});

Deno.test("recipes: --help lists the per-loss defaults", () => {
  const h = helpText();
  assert.match(h, /Defaults per --mode\/--loss/);
  for (const loss of ["taylor", "squared", "zloss"]) assert.ok(h.includes(`skipgram/${loss}:`), loss);
  assert.ok(h.includes("cbow/spherical:"));
});

Deno.test("recipes: spherical ε rises to keep D·ε ≥ the floor mass on a small vocabulary", () => {
  const c = resolveConfig();
  const small = applyVocabularyDefaults(c, new Set(), 100);
  assert.equal(small.config.lossEpsilon, SPHERICAL_MIN_FLOOR_MASS / 100);
  assert.equal(applyVocabularyDefaults(c, new Set(), 14206).config.lossEpsilon, c.lossEpsilon);
  assert.equal(applyVocabularyDefaults(c, new Set(["lossEpsilon"]), 100).config.lossEpsilon, c.lossEpsilon);
  const taylor = resolveConfig({ loss: "taylor" });
  assert.deepEqual(applyVocabularyDefaults(taylor, new Set(), 100).applied, {});
});

Deno.test({
  name: "recipes: default flags on a corpus of about a hundred words train to the end",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      const script = new URL("../pipelines/train.ts", import.meta.url).pathname;
      const r = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          script,
          "--limit-tokens",
          "4000",
          "--out",
          out,
          "--eval-dir",
          "none",
          "--formats",
          "vec",
        ],
        stdout: "piped",
        stderr: "piped",
        env: { OPENBLAS_NUM_THREADS: "1" },
      }).output();
      const err = new TextDecoder().decode(r.stderr);
      assert.equal(r.code, 0, err);
      const m = err.match(/vocabulary of (\d+) words: --loss-epsilon ([\d.e-]+)/);
      assert.ok(m, err);
      assert.ok(Number(m[1]) >= 50 && Number(m[1]) <= 1000, m[1]);
      const summary = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
      assert.ok(Number.isFinite(summary.training.trainLoss));
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("recipes: spherical ε grows with the step product η·η_in above its recipe's, unless given", async () => {
  const eps = resolveConfig().lossEpsilon;
  const ratio = (a: Awaited<ReturnType<typeof parseTrainArgs>>) => a.config.lossEpsilon / eps;
  // 4× --lr: both sides 4× (η·η_in 16×) → ε 16×; one side 4× → ε 4×
  assert.equal(ratio(await parseTrainArgs(["--lr", "0.016"])), 16);
  assert.ok(Math.abs(ratio(await parseTrainArgs(["--lr", "0.016", "--lr-input-scale", "1.25"])) - 4) < 1e-9);
  assert.ok(Math.abs(ratio(await parseTrainArgs(["--lr-input-scale", "20"])) - 4) < 1e-9);
  // at most ×SPHERICAL_MAX_EPSILON_RATIO: a far larger step is left to the backoff
  assert.equal(ratio(await parseTrainArgs(["--lr", "0.1"])), SPHERICAL_MAX_EPSILON_RATIO);
  // the default step and a smaller one keep ε; the longer run's lowered step does not raise it for the step
  // (only for the run's length: × epochs/RECIPE_EPOCHS, tested above)
  assert.equal(ratio(await parseTrainArgs([])), 1);
  assert.equal(ratio(await parseTrainArgs(["--lr", "0.001"])), 1);
  assert.ok(Math.abs(ratio(await parseTrainArgs(["--epochs", "15"])) - 15 / RECIPE_EPOCHS) < 1e-9);
  // an explicit ε wins; other losses have no ε to scale; cbow's recipe (lr 0.002, lrInputScale 20) is its own
  // reference: twice its lr is 4× the step product
  assert.equal(
    (await parseTrainArgs(["--lr", "0.016", "--loss-epsilon", "0.002"])).config.lossEpsilon,
    0.002,
  );
  assert.equal(ratio(await parseTrainArgs(["--loss", "taylor", "--lr", "0.4"])), 1);
  assert.equal(ratio(await parseTrainArgs(["--mode", "cbow"])), 1);
  assert.equal(ratio(await parseTrainArgs(["--mode", "cbow", "--lr", "0.004"])), 4);
});

Deno.test("recipes: the spherical run with E·a, W·b, η·b², η_in·a², ε·a²b² is the same run, scaled", () => {
  // the invariance behind scaling ε with η·η_in: plain SGD on o = W·E[x] with the spherical loss
  const D = 12, d = 3, V = 5, steps = 200;
  const rng = (s: number) => () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  const pairs = Array.from({ length: 40 }, (_, i) => [i % V, (i * 7 + 3) % D]);
  const run = (a: number, b: number, lr: number, lrIn: number, epsilon: number) => {
    const r = rng(7), E = Float64Array.from({ length: V * d }, () => a * r());
    const W = Float64Array.from({ length: D * d }, () => b * r());
    const loss = createLoss("spherical", { epsilon }), o = new Float64Array(D), dO = new Float64Array(D);
    const h = new Float64Array(d);
    for (let t = 0; t < steps; t++) {
      const [x, c] = pairs[t % pairs.length];
      for (let k = 0; k < d; k++) h[k] = E[x * d + k];
      for (let j = 0; j < D; j++) {
        o[j] = 0;
        for (let k = 0; k < d; k++) o[j] += W[j * d + k] * h[k];
      }
      loss.dense(o, Int32Array.of(c), Float64Array.of(1), 1, dO);
      for (let j = 0; j < D; j++) {
        for (let k = 0; k < d; k++) {
          E[x * d + k] -= lrIn * dO[j] * W[j * d + k];
          W[j * d + k] -= lr * dO[j] * h[k];
        }
      }
    }
    return E;
  };
  const lr = 0.05, lrIn = 0.25, eps = 1e-3, a = 2, b = 2;
  const E = run(1, 1, lr, lrIn, eps), E2 = run(a, b, lr * b * b, lrIn * a * a, eps * a * a * b * b);
  for (let i = 0; i < E.length; i++) {
    assert.ok(Math.abs(E2[i] - a * E[i]) < 1e-9 * (1 + Math.abs(E2[i])), `${i}`);
  }
  // the same step product at the unscaled ε is another run: the rows do not follow
  const E3 = run(a, b, lr * b * b, lrIn * a * a, eps);
  assert.ok(E3.some((v, i) => Math.abs(v - a * E[i]) > 1e-3), "ε must matter");
});
