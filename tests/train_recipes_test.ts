// The per-mode/loss defaults (lib/train/recipes.ts): a recipe fills in only what was not given explicitly
// (a flag or a --config setting), --help lists every recipe, spherical softmax's ε follows a small
// vocabulary, and default flags on a corpus of ~100 words train to the end (they diverged at step 1).
import assert from "node:assert/strict";
import { resolveConfig } from "../lib/train/config.ts";
import { helpText, parseTrainArgs } from "../lib/train/cli.ts";
import {
  applyRecipe,
  applyVocabularyDefaults,
  RECIPE_EPOCHS,
  RECIPE_FIELDS,
  RECIPES,
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
  const base = resolveConfig().lr;
  const long = await parseTrainArgs(["--epochs", String(3 * RECIPE_EPOCHS)]);
  assert.ok(Math.abs(long.config.lr - base / 3) < 1e-3 * base, String(long.config.lr));
  const given = await parseTrainArgs(["--epochs", String(3 * RECIPE_EPOCHS), "--lr", String(base)]);
  assert.equal(given.config.lr, base);
  const short = await parseTrainArgs(["--epochs", "2"]);
  assert.equal(short.config.lr, base);
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
