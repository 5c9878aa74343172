/**
 * An evaluation index over word embeddings: the rows normalised once to unit length (V×d row-major
 * Float32Array, zero rows stay zero and are marked in {@link EmbeddingIndex.zero}: a zero vector has no
 * cosine, so the evaluations skip it, never returning it as a neighbour or an analogy answer and skipping the
 * pairs and questions that hold it), and word lookup that tries the exact word first and then its
 * lower-cased form (the most frequent — lowest id — word with that lower-cased spelling). A vector with a
 * NaN or infinite component is refused (UsageError naming its row and word): its cosines would be NaN.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";

/**
 * Unit-normalised embeddings with word lookup. Build it once and share it between evaluations.
 *
 * @example
 * ```ts
 * import { EmbeddingIndex } from "./index.ts";
 * const ix = new EmbeddingIndex(["king", "queen"], Float32Array.of(3, 4, 4, 3), 2);
 * ix.cosine(ix.lookup("king"), ix.lookup("Queen")); // 0.96
 * ```
 */
export class EmbeddingIndex {
  /** The vocabulary, in row order (assumed most frequent first, as word2vec and fastText write it). */
  readonly words: string[];
  /** Vector dimension. */
  readonly d: number;
  /** V×d row-major unit rows. */
  readonly unit: Float32Array;
  /** 1 for a row whose vector is all zeros (it has no direction: no cosine), else 0; V entries. */
  readonly zero: Uint8Array;
  /** How many rows are all zeros. */
  readonly zeroRows: number;
  readonly #exact = new Map<string, number>();
  readonly #lower = new Map<string, number>();

  /**
   * @param words V words
   * @param vectors V×d row-major
   * @param d dimension
   */
  constructor(words: string[], vectors: Float32Array, d: number) {
    if (!Number.isInteger(d) || d <= 0) {
      throw new UsageError(`EmbeddingIndex: d must be a positive integer, got ${d}`);
    }
    if (vectors.length !== words.length * d) {
      throw new UsageError(
        `EmbeddingIndex: ${words.length} words × d=${d} needs ${
          words.length * d
        } floats, got ${vectors.length}`,
      );
    }
    this.words = words;
    this.d = d;
    this.unit = new Float32Array(vectors.length);
    this.zero = new Uint8Array(words.length);
    let zeroRows = 0;
    for (let i = 0; i < words.length; i++) {
      const base = i * d;
      let s = 0;
      for (let j = 0; j < d; j++) s += vectors[base + j] * vectors[base + j];
      // a NaN/Inf component makes s so: every cosine of the row would be NaN, and ranks of NaN are wrong
      if (!Number.isFinite(s)) {
        let j = 0;
        while (j < d && Number.isFinite(vectors[base + j])) j++;
        throw new UsageError(
          `EmbeddingIndex: row ${i} (${JSON.stringify(words[i])}) column ${j} is ${vectors[base + j]}: ` +
            `every vector must be finite (vectors of a diverged or damaged model?)`,
        );
      }
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      if (s === 0) (this.zero[i] = 1, zeroRows++);
      for (let j = 0; j < d; j++) this.unit[base + j] = vectors[base + j] * inv;
      const w = words[i];
      if (!this.#exact.has(w)) this.#exact.set(w, i);
      const lw = w.toLowerCase();
      if (!this.#lower.has(lw)) this.#lower.set(lw, i);
    }
    this.zeroRows = zeroRows;
  }

  /** Number of words. */
  get size(): number {
    return this.words.length;
  }

  /**
   * The row of `word`, or -1: exact match first, then (unless `caseSensitive`) by lower-cased spelling.
   *
   * @example
   * ```ts
   * import { EmbeddingIndex } from "./index.ts";
   * new EmbeddingIndex(["paris"], Float32Array.of(1), 1).lookup("Paris"); // 0
   * ```
   */
  lookup(word: string, caseSensitive = false): number {
    const i = this.#exact.get(word);
    if (i !== undefined) return i;
    if (caseSensitive) return -1;
    return this.#lower.get(word.toLowerCase()) ?? -1;
  }

  /**
   * Cosine similarity of rows i and j.
   *
   * @example
   * ```ts
   * import { EmbeddingIndex } from "./index.ts";
   * new EmbeddingIndex(["a", "b"], Float32Array.of(1, 0, 0, 1), 2).cosine(0, 1); // 0
   * ```
   */
  cosine(i: number, j: number): number {
    const d = this.d, u = this.unit;
    let s = 0;
    for (let k = 0; k < d; k++) s += u[i * d + k] * u[j * d + k];
    return s;
  }
}
