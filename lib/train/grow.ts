/**
 * Vocabulary growth: the checks on new words and the rows they enter with.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { Rng } from "../core/rng.ts";
import { initOutputRows } from "./state.ts";
import type { Vocabulary } from "./types.ts";

/**
 * The rows of `newWords` (refused with UsageError when counts do not match or a word is known or
 * repeated): input rows uniform in ±1/dim, then desired output rows uniform in ±1/d, both from a split of
 * `rng`. Nothing is drawn for no words.
 *
 * @example
 * ```ts
 * import { newWordRows } from "./grow.ts";
 * import { Rng } from "../core/rng.ts";
 * const r = newWordRows({ words: ["a"], counts: [1] }, ["b"], [1], new Rng(1), 4, 5);
 * console.log(r.input.length, r.output.length); // 4 5
 * ```
 */
export function newWordRows(
  vocab: Vocabulary,
  newWords: string[],
  counts: number[],
  rng: Rng,
  dim: number,
  d: number,
): { input: Float32Array; output: Float32Array } {
  if (newWords.length !== counts.length) {
    throw new UsageError(`growVocabulary: ${newWords.length} words but ${counts.length} counts`);
  }
  const known = new Set(vocab.words), seen = new Set<string>();
  const dup = newWords.filter((w) => known.has(w) || seen.has(w) || !seen.add(w));
  if (dup.length) {
    throw new UsageError(
      `growVocabulary: already in the vocabulary (or repeated): ${dup.slice(0, 10).join(", ")}`,
    );
  }
  const n = newWords.length;
  if (n === 0) return { input: new Float32Array(0), output: new Float32Array(0) };
  const split = rng.split();
  const input = new Float32Array(n * dim);
  split.fillUniform(input, 1 / dim);
  return { input, output: initOutputRows(n, d, split) };
}
