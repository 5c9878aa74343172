/**
 * `createOutputLayer`: the one entry point that builds a naive or factored output layer on a backend,
 * from W₀ or from an exported state, and logs (once per layer) which backend runs it.
 *
 * @module
 */

import { createBackend } from "../linalg/select.ts";
import { createLoss } from "../losses/mod.ts";
import type { CreateOutputLayerOptions, OutputLayer } from "../core/types.ts";
import { FactoredOutputLayer } from "./factored/layer.ts";
import { NaiveOutputLayer } from "./naive.ts";
import { validateCount, validateDims, validateMatrix, validateStateShape } from "./validate.ts";
import { UsageError } from "../core/errors.ts";
import { describeValue } from "../core/csr.ts";

/**
 * Checks, before any work, that a layer of `backend` can be built here: for "webgpu" that an adapter is
 * found (lib/output/webgpu/device.ts `requestWebGpuAdapter`, no device made); the CPU backends are loaded
 * when their layer is built. A job asked for `--backend webgpu` calls it before it prepares its corpus.
 *
 * @example
 * ```ts
 * import { requireOutputBackend } from "./create.ts";
 * await requireOutputBackend("js"); // nothing to check
 * ```
 *
 * @throws {BackendUnavailableError} no WebGPU adapter, naming the cause and the fix
 */
export async function requireOutputBackend(backend: string): Promise<void> {
  if (backend !== "webgpu") return;
  const { requestWebGpuAdapter } = await import("./webgpu/device.ts");
  await requestWebGpuAdapter();
}

/**
 * Creates an output layer.
 *
 * - `kind`: "factored" (W = VU + 𝟙ωᵀ, O(d² + Kd) per example) or "naive" (dense W, the reference).
 * - `backend`: "js" (plain TypeScript), "blas" (OpenBLAS), "auto" (default: blas, else js, logged; under
 *   CI=true a missing OpenBLAS is an error) or "webgpu" (dispatched to lib/output/webgpu/create.ts, imported only
 *   then, so CPU use never needs a GPU).
 * - `init` (W₀, D×d row-major) or `state` (from `exportState()`, rebuilt exactly: a corrupt state, e.g. a
 *   NaN in an array, is refused; so are a `loss` or `lossOptions` other than the state's).
 * - `loss` (default "squared") and `lossOptions`; factored only: `stabilizeEvery` (default 50; 100 with float32 products),
 *   `recomputeQEvery` (default 5000, and with the default a refresh also waits for 8·D examples since the
 *   last one: see FactoredOptions).
 *
 * One line naming the layer, its size, loss and backend goes to `log` (default console.error), besides
 * the backend's own line.
 *
 * @example
 * ```ts
 * import { createOutputLayer } from "./create.ts";
 * const D = 1000, d = 16;
 * const layer = await createOutputLayer({ kind: "factored", D, d, init: new Float32Array(D * d), backend: "js" });
 * const s = await layer.exportState();
 * const copy = await createOutputLayer({ kind: "factored", D, d, state: s, backend: "js" });
 * layer.close();
 * copy.close();
 * ```
 *
 * @param opts what to build
 * @returns the layer; call close() when done
 * @throws {UsageError} an unknown kind or backend, a state that does not fit the options (kind, size, loss,
 *   loss options), no init
 * @throws {RangeError | TypeError} a value of the wrong type or out of range (dimensions, init, counts, a
 *   state's fields: a corrupt state is a RangeError naming the field)
 * @throws {BackendUnavailableError} the requested backend cannot be loaded
 */
export async function createOutputLayer(opts: CreateOutputLayerOptions): Promise<OutputLayer> {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError("createOutputLayer: options object required");
  }
  const { kind, D, d } = opts;
  if (kind !== "factored" && kind !== "naive") {
    throw new UsageError(`kind must be "factored" or "naive", got ${JSON.stringify(kind)}`);
  }
  validateDims(D, d);
  const backend = opts.backend ?? "auto";
  if (backend !== "js" && backend !== "blas" && backend !== "auto" && backend !== "webgpu") {
    throw new UsageError(`backend must be "js", "blas", "auto" or "webgpu", got ${JSON.stringify(backend)}`);
  }
  // every check that does not depend on the backend comes before the dispatch: the same misuse throws the
  // same error on the CPU and on the GPU
  const state = opts.state;
  // the loss: the state's (a different name or different options are refused: the layer is rebuilt
  // exactly), else the options'
  let loss;
  if (state) {
    validateStateShape(state);
    if (state.kind !== kind) throw new UsageError(`state.kind = "${state.kind}" but kind = "${kind}"`);
    if (state.D !== D || state.d !== d) {
      throw new UsageError(`state is ${state.D}×${state.d} but D×d = ${D}×${d} was asked`);
    }
    if (opts.loss !== undefined && opts.loss !== state.loss) {
      throw new UsageError(`state.loss = "${state.loss}" but loss = "${opts.loss}"`);
    }
    loss = createLoss(state.loss, state.lossOptions ?? {});
    if (opts.lossOptions !== undefined) {
      const asked = createLoss(state.loss, opts.lossOptions).options;
      for (const k of Object.keys(loss.options) as (keyof typeof asked)[]) {
        if (!Object.is(asked[k], loss.options[k])) {
          throw new UsageError(
            `state.lossOptions.${k} = ${loss.options[k]} but lossOptions.${k} = ${
              asked[k]
            }: a state continues ` +
              `with its own loss options (leave lossOptions out, or give the state's)`,
          );
        }
      }
    }
    if (kind === "naive") {
      // the same on every backend (the webgpu layer converted any array before)
      const W = state.arrays.W;
      if (!(W instanceof Float32Array)) {
        throw new TypeError(`state.arrays.W must be a Float32Array, got ${describeValue(W)}`);
      }
      validateMatrix("state.arrays.W", W, D, d);
    }
  } else {
    if (opts.init === undefined) throw new UsageError(`createOutputLayer: give init (W₀, D×d) or state`);
    validateMatrix("init", opts.init, D, d);
    loss = createLoss(opts.loss ?? "squared", opts.lossOptions ?? {});
  }
  if (opts.stabilizeEvery !== undefined) validateCount("stabilizeEvery", opts.stabilizeEvery);
  if (opts.recomputeQEvery !== undefined) validateCount("recomputeQEvery", opts.recomputeQEvery);
  if (backend === "webgpu") {
    // loaded only when asked for; a literal specifier, so that a bundle (bench/gpu-prepare.sh) includes it
    const mod = await import("./webgpu/create.ts");
    // the loss resolved here (a webgpu layer built from a state takes the state's loss, not the default)
    return await mod.createWebGpuOutputLayer({ ...opts, loss: loss.name, lossOptions: { ...loss.options } });
  }
  const log = opts.log ?? ((line: string) => console.error(line));
  const la = await createBackend(backend, { log });
  try {
    let layer: OutputLayer;
    if (kind === "naive") {
      if (state) {
        layer = new NaiveOutputLayer(
          D,
          d,
          state.arrays.W as Float32Array,
          loss,
          la,
          state.scalars.steps ?? 0,
        );
      } else {
        layer = new NaiveOutputLayer(D, d, opts.init!, loss, la);
      }
    } else {
      const fo = { stabilizeEvery: opts.stabilizeEvery, recomputeQEvery: opts.recomputeQEvery };
      layer = state ? FactoredOutputLayer.fromState(state, loss, la, fo) : FactoredOutputLayer.fromInit(
        D,
        d,
        opts.init!,
        loss,
        la,
        fo,
      );
    }
    log(`factorout: ${kind} output layer D=${D} d=${d} loss=${loss.name} backend=${la.name}`);
    return layer;
  } catch (e) {
    la.close();
    throw e;
  }
}
