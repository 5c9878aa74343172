/**
 * The training defaults per loss and per mode (the "recipes"): the one table of the settings that differ
 * from {@link DEFAULT_CONFIG} for a `--loss` × `--mode`, found by `deno task bench:sweep` (the runs and the
 * reasons are in docs/training-defaults.md and docs/losses.md). An explicit flag or `--config` setting
 * always wins over a recipe.
 *
 * @module
 */

import { FLAG_OF, resolveConfig, type TrainConfig } from "./config.ts";
import type { LossName } from "../core/types.ts";

/**
 * The settings one recipe changes, and why (one line).
 *
 * @example
 * ```ts
 * import type { Recipe } from "./recipes.ts";
 * const r: Recipe = { set: { lr: 0.05 }, why: "Taylor's target gradients are ~1, not ~1/√ε" };
 * ```
 */
export type Recipe = {
  set: Partial<TrainConfig>;
  why: string;
  /**
   * With `--bag` given explicitly: the settings for that bag instead of `set`'s (the input step a recipe
   * tunes depends on the bag's update rule: mean moves a row by 1/(rows) of what mean-full moves it).
   */
  byBag?: Partial<Record<TrainConfig["bag"], Partial<TrainConfig>>>;
};

/**
 * The fields a recipe may set (run-shaping and loss settings and the input bag's update rule, never data or
 * model shape).
 */
export const RECIPE_FIELDS: readonly (keyof TrainConfig)[] = Object.freeze([
  "bag",
  "lr",
  "lrMin",
  "lrInputScale",
  "schedule",
  "lossEpsilon",
  "zlossA",
  "zlossB",
  "targetPower",
  "targetScale",
]);

/**
 * The run length the recipes' step sizes are tuned for. A longer run (`--epochs` above it, `--lr` not
 * given) divides the step size by epochs/RECIPE_EPOCHS, keeping the total step Σ η of the linear schedule:
 * with the same step, the input rows keep growing past the point where their similarities are best
 * (docs/losses.md, "More epochs, worse vectors"). The spherical softmax's ε is then multiplied by
 * epochs/RECIPE_EPOCHS as well (ε not given), or its outputs outgrow ε late in the run, and a skip-gram
 * spherical run narrows its window to {@link LONG_RUN_WINDOW} and weighs its targets by
 * {@link LONG_RUN_TARGET_POWER} (each not given; the latter with its step × {@link LONG_RUN_LR_FACTOR}).
 *
 * @example
 * ```ts
 * import { RECIPE_EPOCHS } from "./recipes.ts";
 * console.log(RECIPE_EPOCHS); // 5
 * ```
 */
export const RECIPE_EPOCHS = 5;

/**
 * The recipes, by mode then loss. A combination not listed runs {@link DEFAULT_CONFIG} as it is.
 *
 * @example
 * ```ts
 * import { RECIPES } from "./recipes.ts";
 * console.log(RECIPES.skipgram.taylor?.set.lr);
 * ```
 */
export const RECIPES: Readonly<Record<TrainConfig["mode"], Partial<Record<LossName, Recipe>>>> = Object
  .freeze({
    skipgram: {
      spherical: { set: {}, why: "the tuned default" },
      taylor: { set: { lr: 0.1 }, why: "its gradients are ≈ 10× smaller than the spherical softmax's" },
      squared: {
        set: { lr: 0.001, lrInputScale: 50, targetPower: 0.5, targetScale: 4 },
        why: "a step is refused once 2η·Σ_batch‖h‖² ≥ 1; raw targets are dominated by frequent contexts",
      },
      zloss: {
        set: { lr: 0.002 },
        why:
          "its gradient ∝ 1/σ, large while the outputs are small: --lr 0.004 is refused at step 1 at dim 200",
      },
    },
    cbow: {
      spherical: {
        set: { bag: "mean-full", lr: 0.002, lrInputScale: 20 },
        why: "fastText's update: each context row moves by the whole gradient of the mean, not the " +
          "1/(context words) share its gradient gives it",
        byBag: { mean: { lrInputScale: 300 } },
      },
    },
  });

/**
 * The recipe of a config's mode and loss applied under the explicit settings: every recipe field not
 * in `explicit` takes the recipe's value. Returns the config (validated again), the recipe's name and
 * what it changed (empty when nothing).
 *
 * @example
 * ```ts
 * import { applyRecipe } from "./recipes.ts";
 * import { resolveConfig } from "./config.ts";
 * const { config, applied } = applyRecipe(resolveConfig({ loss: "taylor" }), new Set(["loss"]));
 * ```
 */
export function applyRecipe(
  config: TrainConfig,
  explicit: ReadonlySet<keyof TrainConfig>,
): { config: TrainConfig; name: string; applied: Partial<TrainConfig> } {
  const name = `${config.mode}/${config.loss}`;
  const recipe = RECIPES[config.mode]?.[config.loss];
  const set = recipeSet(recipe, config, explicit);
  const applied: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(set)) {
    if (!explicit.has(k as keyof TrainConfig) && config[k as keyof TrainConfig] !== v) applied[k] = v;
  }
  const long = config.mode === "skipgram" && config.loss === "spherical" && config.epochs > RECIPE_EPOCHS;
  // a longer skip-gram spherical run: nearer contexts and rarer ones weighed up, or it drifts to relatedness
  if (long && !explicit.has("window") && config.window > LONG_RUN_WINDOW) applied.window = LONG_RUN_WINDOW;
  const weighted = long && !explicit.has("targetPower") && config.targetPower === 0;
  if (weighted) applied.targetPower = LONG_RUN_TARGET_POWER;
  if (!explicit.has("lr") && config.epochs > RECIPE_EPOCHS) {
    // the same total step Σ η as RECIPE_EPOCHS epochs: more epochs average more, they do not move further
    const lr = (applied.lr as number | undefined) ?? config.lr;
    const f = weighted ? LONG_RUN_LR_FACTOR : 1;
    applied.lr = Number((lr * f * RECIPE_EPOCHS / config.epochs).toPrecision(4));
  }
  const eps = sphericalEpsilonForStep(config, set, applied, explicit);
  if (eps !== undefined) applied.lossEpsilon = eps;
  const longEps = sphericalEpsilonForEpochs(config, applied, explicit);
  if (longEps !== undefined) applied.lossEpsilon = longEps;
  if (Object.keys(applied).length === 0) return { config, name, applied: {} };
  return { config: resolveConfig({ ...config, ...applied }), name, applied: applied as Partial<TrainConfig> };
}

/**
 * A recipe's settings for a config: its `set`, with its settings for the bag given explicitly (`--bag`)
 * over them when it has some.
 */
function recipeSet(
  recipe: Recipe | undefined,
  config: TrainConfig,
  explicit: ReadonlySet<keyof TrainConfig>,
): Partial<TrainConfig> {
  const forBag = explicit.has("bag") ? recipe?.byBag?.[config.bag] : undefined;
  return forBag ? { ...recipe!.set, ...forBag } : recipe?.set ?? {};
}

/**
 * The spherical softmax's ε for a step larger than its recipe's (`--lr` or `--lr-input-scale` raised, ε not
 * given): ε × (η·η_in)/(η₀·η_in₀), at most ×{@link SPHERICAL_MAX_EPSILON_RATIO}, or undefined when the
 * product is not larger. The loss depends on the
 * scale of the outputs only through ε: scaling E by a and W by b is the same run as η_in·a², η·b², ε·a²b².
 * So a step 4× larger on both sides at the same ε is the default run with ε/16, whose target ridge
 * (ẏ_c peaks at o_c = √ε, slope 2/ε) kicks pairs to random signs: the loss is fine, the similarities are not
 * (docs/losses.md, "Four times the step").
 */
function sphericalEpsilonForStep(
  config: TrainConfig,
  set: Partial<TrainConfig>,
  applied: Record<string, unknown>,
  explicit: ReadonlySet<keyof TrainConfig>,
): number | undefined {
  if (config.loss !== "spherical" || explicit.has("lossEpsilon")) return undefined;
  const base = resolveConfig({ mode: config.mode, loss: config.loss, ...set });
  const lr = (applied.lr as number | undefined) ?? config.lr;
  const scale = (applied.lrInputScale as number | undefined) ?? config.lrInputScale;
  const ratio = (lr * lr * scale) / (base.lr * base.lr * base.lrInputScale);
  const eps0 = (applied.lossEpsilon as number | undefined) ?? config.lossEpsilon;
  return ratio > 1 ? Number((eps0 * Math.min(ratio, SPHERICAL_MAX_EPSILON_RATIO)).toPrecision(4)) : undefined;
}

/**
 * The spherical softmax's ε for a run longer than {@link RECIPE_EPOCHS} whose step the recipe lowers (neither
 * `--lr` nor ε given): ε × epochs/RECIPE_EPOCHS.
 * With the step divided by epochs/RECIPE_EPOCHS alone, the rows keep growing after SimLex's peak and the
 * floor probability ε/(q + Dε) keeps falling, so the long run fits ever rarer co-occurrences; the larger ε
 * keeps the floor up (docs/losses.md, "More epochs, worse vectors"). Undefined when nothing changes.
 */
function sphericalEpsilonForEpochs(
  config: TrainConfig,
  applied: Record<string, unknown>,
  explicit: ReadonlySet<keyof TrainConfig>,
): number | undefined {
  if (
    config.loss !== "spherical" || explicit.has("lossEpsilon") || explicit.has("lr") ||
    config.epochs <= RECIPE_EPOCHS
  ) return undefined;
  const eps0 = (applied.lossEpsilon as number | undefined) ?? config.lossEpsilon;
  return Number((eps0 * config.epochs / RECIPE_EPOCHS).toPrecision(4));
}

/**
 * The context radius of a skip-gram spherical-softmax run longer than {@link RECIPE_EPOCHS} (`--window` not
 * given; it only narrows a wider default). More passes over the same objective favour relatedness over
 * similarity (WordSim-353 rises, SimLex-999 stalls from the run's middle on); the nearer contexts of a
 * window of 4 pull it back toward similarity, while a window of 3 loses both (docs/losses.md, "More epochs,
 * worse vectors"). A corpus setting: it decides how `--data` text is prepared, not shards prepared before.
 * With {@link LONG_RUN_TARGET_POWER} and {@link LONG_RUN_LR_FACTOR}, the long run's three changes.
 *
 * @example
 * ```ts
 * import { LONG_RUN_WINDOW } from "./recipes.ts";
 * console.log(LONG_RUN_WINDOW); // 4
 * ```
 */
export const LONG_RUN_WINDOW = 4;

/**
 * The `--target-power` of a skip-gram spherical-softmax run longer than {@link RECIPE_EPOCHS} (not given, and
 * 0): each context c's weight × (D·p(c))^−0.25, the frequent contexts weighed down and the rare ones up, so
 * the long run spends its extra passes on the rarer co-occurrences that similarity rests on (SimLex 0.158 →
 * 0.172 at seed 1, 15 epochs; α = 0.5 overshoots: docs/losses.md).
 *
 * @example
 * ```ts
 * import { LONG_RUN_TARGET_POWER } from "./recipes.ts";
 * console.log(LONG_RUN_TARGET_POWER); // 0.25
 * ```
 */
export const LONG_RUN_TARGET_POWER = 0.25;

/**
 * The step of a long run whose recipe set {@link LONG_RUN_TARGET_POWER}, on top of × RECIPE_EPOCHS/epochs
 * (`--lr` not given): the weighted rare targets make the rows grow faster (mean ‖E‖ row 1.20 against 1.05 at
 * 15 epochs); × 0.75 brings them back to the 5-epoch run's length (0.94 against 0.99).
 *
 * @example
 * ```ts
 * import { LONG_RUN_LR_FACTOR } from "./recipes.ts";
 * console.log(LONG_RUN_LR_FACTOR); // 0.75
 * ```
 */
export const LONG_RUN_LR_FACTOR = 0.75;

/**
 * The most the spherical softmax's ε is raised for a larger step (η·η_in up to 16× the recipe's: `--lr` 4×,
 * the range measured). Beyond it ε stays there and a far too large step is left to the trainer's backoff:
 * an ε scaled without bound would make any step a rescaled stable run, and flatten p toward the uniform
 * floor (docs/losses.md, "Four times the step").
 *
 * @example
 * ```ts
 * import { SPHERICAL_MAX_EPSILON_RATIO } from "./recipes.ts";
 * console.log(SPHERICAL_MAX_EPSILON_RATIO); // 16
 * ```
 */
export const SPHERICAL_MAX_EPSILON_RATIO = 16;

/**
 * The least total floor mass D·ε of the spherical softmax. Its normaliser's gradient g_q = Y/(q + Dε) is
 * at most Y/(Dε) while the outputs are small, and a step is refused once 2η·Σ_batch g_q‖h‖² ≥ 1: with the
 * default ε = 1e-3 a vocabulary of a few hundred words makes that bound 100× tighter than on Brown
 * (D ≈ 14k, Dε ≈ 14). Keeping Dε ≥ 10 keeps the default step inside it at any D.
 *
 * @example
 * ```ts
 * import { SPHERICAL_MIN_FLOOR_MASS } from "./recipes.ts";
 * console.log(SPHERICAL_MIN_FLOOR_MASS); // 10
 * ```
 */
export const SPHERICAL_MIN_FLOOR_MASS = 10;

/**
 * The settings that depend on the vocabulary size D, applied once D is known (a new run, not a resume),
 * under the explicit settings: spherical softmax's ε is raised to {@link SPHERICAL_MIN_FLOOR_MASS}/D when
 * that is larger. Returns the config and what changed.
 *
 * @example
 * ```ts
 * import { applyVocabularyDefaults } from "./recipes.ts";
 * import { resolveConfig } from "./config.ts";
 * applyVocabularyDefaults(resolveConfig(), new Set(), 100).config.lossEpsilon; // 0.1
 * ```
 */
export function applyVocabularyDefaults(
  config: TrainConfig,
  explicit: ReadonlySet<keyof TrainConfig>,
  vocabularySize: number,
): { config: TrainConfig; applied: Partial<TrainConfig> } {
  if (config.loss !== "spherical" || explicit.has("lossEpsilon") || !(vocabularySize > 0)) {
    return { config, applied: {} };
  }
  const eps = SPHERICAL_MIN_FLOOR_MASS / vocabularySize;
  if (eps <= config.lossEpsilon) return { config, applied: {} };
  const lossEpsilon = Number(eps.toPrecision(3));
  return { config: { ...config, lossEpsilon }, applied: { lossEpsilon } };
}

/**
 * One line per recipe for `--help` and the log: "skipgram/taylor: --lr 0.05 (why)".
 *
 * @example
 * ```ts
 * import { describeRecipe, RECIPES } from "./recipes.ts";
 * console.log(describeRecipe("skipgram/taylor", RECIPES.skipgram.taylor!.set));
 * ```
 */
export function describeRecipe(name: string, set: Partial<TrainConfig>, why?: string): string {
  const parts = Object.entries(set).map(([k, v]) => `${FLAG_OF[k as keyof TrainConfig]} ${v}`);
  return `${name}: ${parts.length ? parts.join(" ") : "the defaults"}${why ? ` (${why})` : ""}`;
}

/**
 * The `--help` section listing every recipe.
 *
 * @example
 * ```ts
 * import { recipesHelp } from "./recipes.ts";
 * console.log(recipesHelp());
 * ```
 */
export function recipesHelp(): string {
  const lines = ["Defaults per --mode/--loss (any flag given explicitly wins; docs/training-defaults.md):"];
  for (const [mode, losses] of Object.entries(RECIPES)) {
    for (const [loss, r] of Object.entries(losses)) {
      if (!r) continue;
      lines.push(`  ${describeRecipe(`${mode}/${loss}`, r.set, r.why)}`);
      for (const [bag, set] of Object.entries(r.byBag ?? {})) {
        lines.push(`  ${describeRecipe(`${mode}/${loss} with --bag ${bag}`, set)}`);
      }
    }
  }
  lines.push(
    `  any: --epochs above ${RECIPE_EPOCHS} without --lr: --lr × ${RECIPE_EPOCHS}/epochs (the same total step)`,
    `  spherical, --epochs above ${RECIPE_EPOCHS} without --lr: --loss-epsilon × epochs/${RECIPE_EPOCHS} (unless given)`,
    `  skipgram/spherical, --epochs above ${RECIPE_EPOCHS}: --window ${LONG_RUN_WINDOW}, --target-power ${LONG_RUN_TARGET_POWER}` +
      ` and then --lr × ${LONG_RUN_LR_FACTOR} (each unless given; a long run drifts to relatedness)`,
    `  spherical on D words: --loss-epsilon raised to ${SPHERICAL_MIN_FLOOR_MASS}/D when larger (small vocabularies)`,
  );
  return lines.join("\n");
}
