/**
 * Nearest neighbours of a word by cosine similarity.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { EmbeddingIndex } from "./index.ts";
import { topKByVector } from "./search.ts";

/**
 * The k words most cosine-similar to `word` (itself excluded), best first; zero vectors (no cosine) are
 * never among them, and a word whose own vector is zero has none (`[]`). Throws {@link UsageError} when the
 * word is not in the vocabulary.
 *
 * @example
 * ```ts
 * import { EmbeddingIndex } from "./index.ts";
 * import { nearestNeighbours } from "./neighbours.ts";
 * const ix = new EmbeddingIndex(["a", "b", "c"], Float32Array.of(1, 0, 0.6, 0.8, 0, 1), 2);
 * nearestNeighbours(ix, "a", 1); // [{ word: "b", cosine: 0.6 }]
 * ```
 */
export function nearestNeighbours(
  index: EmbeddingIndex,
  word: string,
  k = 10,
  opts: { caseSensitive?: boolean } = {},
): { word: string; cosine: number }[] {
  const id = index.lookup(word, opts.caseSensitive);
  if (id < 0) {
    throw new UsageError(`nearest neighbours: "${word}" is not in the vocabulary (${index.size} words)`);
  }
  if (index.zero[id]) return [];
  const v = index.unit.subarray(id * index.d, (id + 1) * index.d);
  return topKByVector(index, v, k, [id]).map(({ id, cosine }) => ({ word: index.words[id], cosine }));
}
