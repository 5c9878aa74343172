/**
 * The in-memory shape of a set of word embeddings, shared by every writer and reader of lib/export and
 * by lib/eval: V words and a V×d row-major Float32Array (row i is the vector of `words[i]`).
 *
 * @module
 */

import { DataFormatError, UsageError } from "../core/errors.ts";

/**
 * Word embeddings: `vectors` is V×d row-major, row i belongs to `words[i]`.
 *
 * @example
 * ```ts
 * import type { Embeddings } from "./embeddings.ts";
 * const e: Embeddings = { words: ["a", "b"], vectors: Float32Array.of(1, 0, 0, 1), d: 2 };
 * ```
 */
export type Embeddings = { words: string[]; vectors: Float32Array; d: number };

/**
 * Checks that `vectors` has `words.length × d` finite entries; throws a {@link UsageError} naming the
 * first bad row (`what` names the caller's argument or file in the message).
 *
 * @example
 * ```ts
 * import { checkEmbeddings } from "./embeddings.ts";
 * checkEmbeddings(["a"], Float32Array.of(1, 2), 2, "input");
 * ```
 */
export function checkEmbeddings(words: string[], vectors: Float32Array, d: number, what: string): void {
  if (!Number.isInteger(d) || d <= 0) throw new UsageError(`${what}: d must be a positive integer, got ${d}`);
  if (vectors.length !== words.length * d) {
    throw new UsageError(
      `${what}: ${words.length} words × d=${d} needs ${words.length * d} floats, got ${vectors.length}`,
    );
  }
  for (let i = 0; i < vectors.length; i++) {
    if (!Number.isFinite(vectors[i])) {
      const row = Math.floor(i / d);
      throw new UsageError(`${what}: row ${row} ("${words[row]}") column ${i % d} is ${vectors[i]}`);
    }
  }
}

/**
 * Throws a {@link DataFormatError} for `file` when a word cannot be stored in a word2vec file so that it
 * reads back: empty, or holding an ASCII space (what separates a row's fields), a line feed (what ends a
 * row) or a carriage return (a row's `\r\n`). Any other character is written as it is, a no-break space or a
 * tab included, as gensim writes them; lib/export/word2vec.ts reads them back the way gensim does.
 *
 * @example
 * ```ts
 * import { checkWord2VecWords } from "./embeddings.ts";
 * checkWord2VecWords(["the", "cat", "new\u00a0york"], "out/input.vec");
 * ```
 */
export function checkWord2VecWords(words: string[], file: string): void {
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w.length === 0 || /[ \n\r]/.test(w)) {
      throw new DataFormatError(
        file,
        `row ${i}: word ${JSON.stringify(w)} is empty or holds a space or a line break, which word2vec ` +
          `files use to separate a row's fields and rows`,
      );
    }
  }
}
