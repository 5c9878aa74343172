/**
 * Which rows a run publishes and scores as its word vectors (`--vectors`): the input rows E (the
 * default), the output rows W (without the bias feature's column), or their sum E + W (GloVe's W + C).
 * In CBOW the input rows are trained only as parts of a context's mean, while each output row is trained
 * as its word's own target, so the output side can be the better word vector (docs/training-defaults.md).
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";

/**
 * The choices of `--vectors`.
 *
 * @example
 * ```ts
 * import { VECTOR_CHOICES } from "./vectors.ts";
 * console.log(VECTOR_CHOICES.join("|")); // input|output|sum
 * ```
 */
export const VECTOR_CHOICES = ["input", "output", "sum"] as const;

/**
 * One of {@link VECTOR_CHOICES}.
 *
 * @example
 * ```ts
 * import type { VectorChoice } from "./vectors.ts";
 * const v: VectorChoice = "sum";
 * ```
 */
export type VectorChoice = (typeof VECTOR_CHOICES)[number];

/**
 * The word vectors of a choice, V rows of `d` floats: E itself for "input"; W's rows without their last
 * column (the weight of the bias feature, a per-word bias rather than a direction) for "output"; E + W for
 * "sum", which needs W's rows as wide as E's (no hidden layer). `output` is V×dOut, dOut including the bias
 * column. Throws a UsageError naming `--vectors` when the output rows are missing or of another width.
 *
 * @example
 * ```ts
 * import { wordVectors } from "./vectors.ts";
 * const E = Float32Array.of(1, 2), W = Float32Array.of(10, 20, 0.5); // V = 1, d = 2, dOut = 3
 * wordVectors("sum", { input: E, d: 2, output: W, dOut: 3 }).vectors; // [11, 22]
 * ```
 */
export function wordVectors(
  choice: VectorChoice,
  emb: { input: Float32Array; d: number; output?: Float32Array; dOut: number },
): { vectors: Float32Array; d: number } {
  if (choice === "input") return { vectors: emb.input, d: emb.d };
  const W = emb.output;
  if (!W) throw new UsageError(`--vectors ${choice}: the output rows of W were not read`);
  const dW = emb.dOut - 1, V = W.length / emb.dOut;
  if (choice === "sum" && dW !== emb.d) {
    throw new UsageError(
      `--vectors sum: the output rows are ${dW} wide (the last hidden layer) and the input rows ${emb.d}; ` +
        "use --vectors input or output with --hidden",
    );
  }
  const out = new Float32Array(V * dW);
  for (let i = 0; i < V; i++) {
    const w = i * emb.dOut, o = i * dW;
    if (choice === "output") out.set(W.subarray(w, w + dW), o);
    else for (let k = 0; k < dW; k++) out[o + k] = emb.input[o + k] + W[w + k];
  }
  return { vectors: out, d: dW };
}
