/**
 * The trainer's state and its checkpoint form: the model spec and initial output rows a config implies,
 * a trainer checkpoint read back (checked) or written out, the parameters set from one, and the trainer's
 * default dependencies.
 *
 * @module
 */

import { DataFormatError } from "../core/errors.ts";
import type { OutputLayer, OutputLayerState } from "../core/types.ts";
import type { SpareArrays } from "../core/reuse.ts";
import type { LinAlgBackend } from "../linalg/backend.ts";
import { createBackend } from "../linalg/select.ts";
import { headWidth, type Model, type ModelParams, type ModelSpec } from "../model/model.ts";
import type { Rng, RngState } from "../core/rng.ts";
import { type Checkpoint, vocabularyHash } from "./checkpoint.ts";
import { resolveConfig, type TrainConfig } from "./config.ts";
import type { RunState, TrainerDeps, Vocabulary } from "./types.ts";

/**
 * The output layer's init: W₀ uniform in ±1/d (W₀ = 0 is a saddle of the spherical losses).
 *
 * @example
 * ```ts
 * import { initOutputRows } from "./state.ts";
 * import { Rng } from "../core/rng.ts";
 * console.log(initOutputRows(2, 4, new Rng(1)).length); // 8
 * ```
 */
export function initOutputRows(n: number, d: number, rng: Rng): Float32Array {
  // on shared memory: the run start's state copy goes into it, and the checkpoint writer's worker reads copies
  const W = new Float32Array(new SharedArrayBuffer(4 * n * d));
  rng.fillUniform(W, 1 / d);
  return W;
}

/**
 * The model spec a config gives over a vocabulary of `vocab` words.
 *
 * @example
 * ```ts
 * import { specOf } from "./state.ts";
 * import { resolveConfig } from "./config.ts";
 * console.log(specOf(resolveConfig({ dim: 8 }), 100).dim); // 8
 * ```
 */
export function specOf(config: TrainConfig, vocab: number): ModelSpec {
  return {
    vocab,
    dim: config.dim,
    hidden: [...config.hidden],
    activation: config.activation,
    bag: config.bag,
    bias: config.biasFeature,
  };
}

/**
 * The hidden layers' sgemm backend (the output layer's CPU backend; none without hidden layers).
 *
 * @example
 * ```ts
 * import { hiddenBackend } from "./state.ts";
 * import { resolveConfig } from "./config.ts";
 * console.log(await hiddenBackend(resolveConfig({}), console.error)); // undefined
 * ```
 */
export async function hiddenBackend(
  config: TrainConfig,
  log: (line: string) => void,
): Promise<LinAlgBackend | undefined> {
  if (config.hidden.length === 0) return undefined;
  const name = config.backend === "webgpu" ? "auto" : config.backend;
  const la = await createBackend(name, { log });
  log(`hidden layers [${config.hidden}]: ${config.activation}, sgemm on ${la.name}`);
  return la;
}

/**
 * The loss options a config sets (lib/losses' LossOptions).
 *
 * @example
 * ```ts
 * import { lossOptionsOf } from "./state.ts";
 * import { resolveConfig } from "./config.ts";
 * console.log(Object.keys(lossOptionsOf(resolveConfig({})))); // ["epsilon", "a", "b"]
 * ```
 */
export function lossOptionsOf(c: TrainConfig): { epsilon: number; a: number; b: number } {
  return { epsilon: c.lossEpsilon, a: c.zlossA, b: c.zlossB };
}

/**
 * The output layer of a trainer (`deps.createHead` with the config's kind, loss and backend), new from
 * `init` rows or restored from a `state` (of checkpoint `from`); logs which one it is.
 *
 * @example
 * ```ts
 * import { openHead, resolveDeps } from "./state.ts";
 * import { resolveConfig } from "./config.ts";
 * const config = resolveConfig({ output: "naive", backend: "js", dim: 2 });
 * const head = await openHead(await resolveDeps({ log: () => {} }), config, 3, 3, { init: new Float32Array(9) });
 * head.close();
 * ```
 */
export async function openHead(
  deps: TrainerDeps,
  config: TrainConfig,
  D: number,
  d: number,
  from: { init: Float32Array } | { state: OutputLayerState },
  file?: string,
): Promise<OutputLayer> {
  const output = await deps.createHead({
    kind: config.output,
    D,
    d,
    ...from,
    loss: config.loss,
    lossOptions: lossOptionsOf(config),
    backend: config.backend,
    log: deps.log,
  });
  deps.log(
    `output layer: ${config.output}, backend ${output.backend}, D = ${D}, d = ${d}, loss ${config.loss}` +
      (file === undefined ? "" : ` (from ${file})`),
  );
  return output;
}

/**
 * The output layer's state stored in a checkpoint (meta.output names its arrays `output.<name>`);
 * `bad(what)` throws for a missing part; `copy` copies the arrays (a snapshot that must stay unchanged).
 *
 * @example
 * ```ts
 * import { outputStateOf } from "./state.ts";
 * const bad = (what: string): never => { throw new Error(what); };
 * const meta = { output: { kind: "naive", D: 1, d: 2, loss: "squared", scalars: {}, arrays: ["W"] } };
 * console.log(outputStateOf(meta, { "output.W": new Float32Array(2) }, bad).arrays.W.length); // 2
 * ```
 */
export function outputStateOf(
  // deno-lint-ignore no-explicit-any
  meta: Record<string, any>,
  arrays: Checkpoint["arrays"],
  bad: (what: string) => never,
  copy = false,
): OutputLayerState {
  const os = meta.output as Omit<OutputLayerState, "arrays"> & { arrays: string[] };
  if (!os || !Array.isArray(os.arrays)) bad("output layer state missing");
  return {
    kind: os.kind,
    D: os.D,
    d: os.d,
    loss: os.loss,
    lossOptions: os.lossOptions,
    scalars: os.scalars,
    arrays: Object.fromEntries(os.arrays.map((k) => {
      const a = arrays[`output.${k}`];
      if (!a) bad(`array output.${k} missing`);
      return [k, copy ? a.slice() : a];
    })),
  };
}

/**
 * The trainer's dependencies, defaults filled in (lib/output's layers, lib/io's reader, console.error).
 *
 * @example
 * ```ts
 * import { resolveDeps } from "./state.ts";
 * const deps = await resolveDeps({ log: () => {} });
 * console.log(typeof deps.openReader); // "function"
 * ```
 */
export async function resolveDeps(opts: Partial<TrainerDeps>): Promise<TrainerDeps> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const createHead = opts.createHead ?? (await import("./defaults.ts")).createHead;
  const openReader = opts.openReader ?? (await import("./defaults.ts")).openReader;
  const splitBag = opts.splitBag ?? (await import("./defaults.ts")).bagSplit();
  const writeBehind = "writeBehind" in opts
    ? opts.writeBehind
    : (await import("./defaults.ts")).writeBehind();
  return { log, createHead, openReader, splitBag, ...(writeBehind === undefined ? {} : { writeBehind }) };
}

/**
 * What a trainer checkpoint holds, checked: the config (its backend replaced by `backend` when given),
 * the vocabulary, the model's parameters and the output layer's state, the step, RNG and run state.
 * Throws DataFormatError naming `file` for anything missing or inconsistent.
 *
 * @example
 * ```ts
 * import { parseTrainerCheckpoint } from "./state.ts";
 * const bad = { meta: { kind: "other" }, arrays: {} };
 * await parseTrainerCheckpoint(bad, "x.fock").catch((e) => console.log(e.name)); // DataFormatError
 * ```
 */
export async function parseTrainerCheckpoint(
  ckpt: Checkpoint,
  file: string,
  backend?: TrainConfig["backend"],
): Promise<{
  config: TrainConfig;
  vocab: Vocabulary;
  spec: ModelSpec;
  params: ModelParams;
  state: OutputLayerState;
  step: number;
  rng: RngState;
  run: RunState | null;
}> {
  // deno-lint-ignore no-explicit-any
  const meta = ckpt.meta as Record<string, any>;
  const bad = (what: string): never => {
    throw new DataFormatError(file, `not a trainer checkpoint: ${what}`);
  };
  if (meta.kind !== "factorout-trainer") bad(`kind is ${JSON.stringify(meta.kind)}`);
  let config: TrainConfig;
  try {
    config = resolveConfig(
      { ...meta.config, ...(backend ? { backend } : {}) },
      `${file} config`,
    );
  } catch (e) {
    throw new DataFormatError(file, (e as Error).message);
  }
  const words = meta.vocab?.words, counts = meta.vocab?.counts;
  if (!Array.isArray(words) || !Array.isArray(counts) || words.length !== counts.length) {
    bad("vocabulary missing");
  }
  const hash = await vocabularyHash(words);
  if (hash !== meta.vocabHash) bad(`vocabulary hash ${hash} ≠ stored ${meta.vocabHash}`);
  const V = words.length, spec = specOf(config, V), d = headWidth(spec);
  const arr = (name: string, length: number): Float32Array => {
    const a = ckpt.arrays[name];
    if (!(a instanceof Float32Array) || a.length !== length) {
      bad(`array ${name} has ${a?.length} elements, expected ${length} float32`);
    }
    return a as Float32Array;
  };
  const params: ModelParams = { E: arr("model.E", V * config.dim), layers: [] };
  let n = config.dim;
  config.hidden.forEach((p, l) => {
    params.layers.push({ A: arr(`model.A.${l}`, p * n), b: arr(`model.b.${l}`, p) });
    n = p;
  });
  const state = outputStateOf(meta, ckpt.arrays, bad);
  if (state.D !== V || state.d !== d) bad(`output layer is ${state.D}×${state.d}, expected ${V}×${d}`);
  return {
    config,
    vocab: { words: [...words], counts: [...counts] },
    spec,
    params,
    state,
    step: meta.step,
    rng: meta.rng,
    run: meta.run ? { lrScale: 1, backoffs: 0, ...meta.run } : null,
  };
}

/**
 * The complete state of a trainer as a {@link Checkpoint}: the model's arrays are the live ones, the output
 * layer's its exportState copies (written into `into`'s arrays of the same names where they fit).
 *
 * @example
 * ```ts
 * import { trainerCheckpoint } from "./state.ts";
 * import type { Checkpoint } from "./checkpoint.ts";
 * const save = (parts: Parameters<typeof trainerCheckpoint>[0]): Promise<Checkpoint> => trainerCheckpoint(parts);
 * ```
 */
export async function trainerCheckpoint(t: {
  config: TrainConfig;
  vocab: Vocabulary;
  model: Model;
  output: OutputLayer;
  step: number;
  rng: Rng;
  run: RunState | null;
  split: Checkpoint["arrays"];
  /** arrays (by checkpoint name) the output layer's copies may be written into (lib/core/reuse.ts) */
  into?: SpareArrays;
  /** {@link vocabularyHash} of `vocab.words`, when the caller has it (else computed) */
  vocabHash?: string;
}): Promise<Checkpoint> {
  const into = t.into && Object.fromEntries(
    Object.entries(t.into).flatMap(([k, a]) => k.startsWith("output.") ? [[k.slice(7), a]] : []),
  );
  const state = await t.output.exportState({ into });
  const arrays: Checkpoint["arrays"] = { "model.E": t.model.bag.E };
  t.model.layers.forEach((l, i) => {
    arrays[`model.A.${i}`] = l.A;
    arrays[`model.b.${i}`] = l.b;
  });
  for (const [k, a] of Object.entries(state.arrays)) arrays[`output.${k}`] = a;
  Object.assign(arrays, t.split);
  const meta = {
    kind: "factorout-trainer",
    config: t.config,
    vocab: t.vocab,
    vocabHash: t.vocabHash ?? await vocabularyHash(t.vocab.words),
    step: t.step,
    rng: t.rng.state(),
    run: t.run,
    output: {
      kind: state.kind,
      D: state.D,
      d: state.d,
      loss: state.loss,
      lossOptions: state.lossOptions,
      scalars: state.scalars,
      arrays: Object.keys(state.arrays),
    },
    createdAt: new Date().toISOString(),
  };
  return { meta, arrays };
}

/**
 * Sets the model's parameters (E, hidden layers) to those of a checkpoint of the same model; throws
 * through `bad` when E does not match.
 *
 * @example
 * ```ts
 * import { setParams } from "./state.ts";
 * import type { Model } from "../model/model.ts";
 * const reset = (model: Model, arrays: Record<string, Float32Array>) => setParams(model, arrays, (w) => {
 *   throw new Error(w);
 * });
 * ```
 */
export function setParams(model: Model, a: Checkpoint["arrays"], bad: (what: string) => never): void {
  if (a["model.E"]?.length !== model.bag.E.length) bad("model.E does not match the model");
  model.bag.E.set(a["model.E"]);
  model.layers.forEach((l, i) => {
    l.A.set(a[`model.A.${i}`]);
    l.b.set(a[`model.b.${i}`]);
  });
}
