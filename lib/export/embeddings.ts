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

/** The embedding formats that are word2vec files (a row: its word, then its values, separated by spaces). */
export const WORD2VEC_FORMATS: readonly string[] = ["vec", "bin"];

/**
 * Why `word` cannot be a word of a word2vec text or binary file so that it reads back, or `""` when it can:
 * empty, or holding an ASCII space (what separates a row's fields), a line feed (what ends a row) or a
 * carriage return (a row's `\r\n`). Any other character is written as it is, a no-break space or a tab
 * included, as gensim writes them; lib/export/word2vec.ts reads them back the way gensim does. The one test
 * of the writers ({@link checkWord2VecWords}) and of the jobs' checks before training
 * ({@link checkFormatsHoldWords}).
 *
 * @example
 * ```ts
 * import { word2vecWordFault } from "./embeddings.ts";
 * word2vecWordFault("of course"); // "contains a space or a line break"
 * word2vecWordFault("cat"); // ""
 * ```
 */
export function word2vecWordFault(word: string): string {
  if (word.length === 0) return "is empty";
  return /[ \n\r]/.test(word) ? "contains a space or a line break" : "";
}

/** What to do about a word a word2vec file cannot hold. */
const USE_ARROW = "publish with --formats arrow,parquet, which hold any word, or correct the word";

/**
 * Throws a {@link DataFormatError} for `file` when a word cannot be stored in a word2vec file so that it
 * reads back ({@link word2vecWordFault}).
 *
 * @example
 * ```ts
 * import { checkWord2VecWords } from "./embeddings.ts";
 * checkWord2VecWords(["the", "cat", "new\u00a0york"], "out/input.vec");
 * ```
 */
export function checkWord2VecWords(words: string[], file: string): void {
  for (let i = 0; i < words.length; i++) {
    const fault = word2vecWordFault(words[i]);
    if (fault) {
      throw new DataFormatError(
        file,
        `row ${i + 1}: word ${
          JSON.stringify(words[i])
        } ${fault}, which word2vec files cannot hold; ${USE_ARROW}`,
      );
    }
  }
}

/**
 * Refuses, before any training or writing, a vocabulary that the word2vec files among `formats` (vec,
 * bin) cannot hold: a {@link DataFormatError} (exit 5) for `file`, the word's source, naming the row
 * `row(i)` gives (a vocabulary file's line, a checkpoint's row) and the word, saying that
 * `--formats arrow,parquet` holds it. Other formats hold any word: nothing to check.
 *
 * @example
 * ```ts
 * import { checkFormatsHoldWords } from "./embeddings.ts";
 * checkFormatsHoldWords(["of course"], ["arrow"], "vocab.tsv", (i) => `line ${i + 1}`); // arrow: fine
 * ```
 */
export function checkFormatsHoldWords(
  words: readonly string[],
  formats: readonly string[],
  file: string,
  row: (i: number) => string,
): void {
  const w2v = formats.filter((f) => WORD2VEC_FORMATS.includes(f));
  if (w2v.length === 0) return;
  for (let i = 0; i < words.length; i++) {
    const fault = word2vecWordFault(words[i]);
    if (fault) {
      throw new DataFormatError(
        file,
        `${row(i)}: word ${JSON.stringify(words[i])} ${fault}, which the word2vec files of --formats ` +
          `${w2v.join(",")} cannot hold; ${USE_ARROW}`,
      );
    }
  }
}
