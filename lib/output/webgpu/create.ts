/**
 * Entry point of the WebGPU backend for `createOutputLayer({ backend: "webgpu" })` (lib/output/create.ts
 * imports this module dynamically, so CPU-only users never touch navigator.gpu).
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import type { CreateOutputLayerOptions, OutputLayer } from "../../core/types.ts";
import { WebGpuFactoredLayer, type WebGpuLayerOptions } from "./factored.ts";
import { WebGpuNaiveLayer } from "./naive.ts";

/**
 * Creates the factored or naive output layer on a WebGPU device (a new one unless `opts.context` is
 * given). Throws BackendUnavailableError (cause and fix in the message) when no adapter exists.
 *
 * @example
 * ```ts
 * import { createWebGpuOutputLayer } from "./create.ts";
 * const D = 100, d = 8;
 * const layer = await createWebGpuOutputLayer({ kind: "factored", D, d, init: new Float32Array(D * d).fill(0.01) });
 * console.log(layer.backend); // "webgpu"
 * layer.close();
 * ```
 */
export async function createWebGpuOutputLayer(
  opts: CreateOutputLayerOptions | WebGpuLayerOptions,
): Promise<OutputLayer> {
  if (opts.kind === "factored") return await WebGpuFactoredLayer.create(opts);
  if (opts.kind === "naive") return await WebGpuNaiveLayer.create(opts);
  throw new UsageError(
    `kind must be "factored" or "naive", got "${String((opts as { kind?: unknown }).kind)}"`,
  );
}
