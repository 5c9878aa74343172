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

/** The characters the C readers of word2vec files split a row on (fastText `in >> word`, word2vec `%s`). */
const C_SPLITS = /[ \t\n\v\f\r\0]/;

/** How {@link word2vecWordFault} names the characters of {@link C_SPLITS} other than a space or a line break. */
const SPLIT_NAMES: Record<string, string> = {
  "\t": "a tab",
  "\v": "a vertical tab",
  "\f": "a form feed",
  "\0": "a NUL",
};

/**
 * Why `word` cannot be a word of a word2vec text or binary file that every reader reads back, or `""` when
 * it can: empty, or holding a character the C readers split a row on: an ASCII space (what separates a
 * row's fields), a line feed (what ends a row), a carriage return (a row's `\r\n`), a tab, a vertical tab,
 * a form feed (fastText 0.9.2's `-pretrainedVectors` and word2vec's C tools split on all of these: a word
 * holding one shifts its row, and fastText then silently leaves every later row at zero) or a NUL (fastText
 * cuts its own words at it; its saved model cannot be read back). Any other character is written as it is,
 * a no-break space or U+3000 included, which every client reads back. The one test of the writers
 * ({@link checkWord2VecWords}) and of the jobs' checks before training ({@link checkFormatsHoldWords}).
 * The readers stay gensim's (lib/export/word2vec.ts splits a row on single spaces only), so a gensim file
 * whose words hold a tab is read, evaluated and republished as Arrow/Parquet; it is not written again as
 * `.vec`/`.bin`.
 *
 * @example
 * ```ts
 * import { word2vecWordFault } from "./embeddings.ts";
 * word2vecWordFault("of course"); // "contains a space or a line break"
 * word2vecWordFault("tab\tword"); // "contains a tab, on which word2vec and fastText split a row"
 * word2vecWordFault("cat"); // ""
 * ```
 */
export function word2vecWordFault(word: string): string {
  if (word.length === 0) return "is empty";
  const m = C_SPLITS.exec(word);
  if (!m) return "";
  const name = SPLIT_NAMES[m[0]];
  return name
    ? `contains ${name}, on which word2vec and fastText split a row`
    : "contains a space or a line break";
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
