/**
 * The vocabulary: counted in a streaming first pass, filtered (`minCount`, `maxVocab`), sorted by count
 * (descending, ties by word in code-unit order, so ids are deterministic), and stored as `vocab.tsv`:
 * one `word<TAB>count` line per id, in id order.
 *
 * @module
 */

import { writeFileAtomic } from "../core/atomic.ts";
import { DataFormatError, UsageError } from "../core/errors.ts";
import { DENO_TASK } from "../core/exit_codes.ts";

/** A vocabulary in id order: `words[i]` has id i and was seen `counts[i]` times. */
export type Vocabulary = { words: string[]; counts: number[] };

/**
 * Streaming word counter with word2vec's bounded-memory rule: when more than `maxEntries` distinct words
 * are held, words seen at most `reduce` times are dropped and `reduce` grows by one (so only very rare
 * words can lose counts, and memory stays bounded however large the corpus). One hash lookup per token:
 * the map gives a slot, the counts live in a typed array.
 *
 * @example
 * ```ts
 * import { WordCounter } from "./vocab.ts";
 * const c = new WordCounter();
 * for (const w of ["a", "b", "a"]) c.add(w);
 * console.log(c.get("a")); // 2
 * ```
 */
export class WordCounter {
  /** total tokens added */
  total = 0;
  /** distinct words dropped by pruning (0 unless the cap was reached) */
  pruned = 0;
  #slots = new Map<string, number>();
  #counts = new Float64Array(1024);
  #reduce = 1;
  readonly #maxEntries: number;

  /** @param maxEntries distinct words held before pruning (default 10,000,000) */
  constructor(maxEntries = 10_000_000) {
    this.#maxEntries = maxEntries;
  }

  /** Distinct words held. */
  get size(): number {
    return this.#slots.size;
  }

  /**
   * Counts one token; returns its word's slot: the word's place in first-seen order ({@link
   * WordCounter.entries}' order), which stays so while no word was pruned (`pruned` 0).
   */
  add(word: string): number {
    this.total++;
    const slot = this.#slots.get(word);
    if (slot !== undefined) {
      this.#counts[slot]++;
      return slot;
    }
    const n = this.#slots.size;
    if (n >= this.#counts.length) {
      const c = new Float64Array(this.#counts.length * 2);
      c.set(this.#counts);
      this.#counts = c;
    }
    this.#slots.set(word, n);
    this.#counts[n] = 1;
    if (n + 1 > this.#maxEntries) this.#prune();
    return n;
  }

  /** The count of `word` (0 if not held). */
  get(word: string): number {
    const s = this.#slots.get(word);
    return s === undefined ? 0 : this.#counts[s];
  }

  /** (word, count) pairs, in first-seen order. */
  *entries(): IterableIterator<[string, number]> {
    for (const [w, s] of this.#slots) yield [w, this.#counts[s]];
  }

  #prune(): void {
    const slots = new Map<string, number>();
    const counts = new Float64Array(this.#counts.length);
    for (const [w, s] of this.#slots) {
      const c = this.#counts[s];
      if (c <= this.#reduce) {
        this.pruned++;
        continue;
      }
      counts[slots.size] = c;
      slots.set(w, slots.size);
    }
    this.#slots = slots;
    this.#counts = counts;
    this.#reduce++;
  }
}

/**
 * Keeps the words seen at least `minCount` times, sorts them by count (descending; ties by word) and
 * keeps the first `maxVocab` (0 or undefined: all).
 *
 * @example
 * ```ts
 * import { buildVocabulary } from "./vocab.ts";
 * const v = buildVocabulary([["b", 2], ["a", 2], ["c", 1]], { minCount: 2 });
 * console.log(v.words); // ["a", "b"]
 * ```
 */
export function buildVocabulary(
  counts: Iterable<[string, number]>,
  opts: { minCount: number; maxVocab?: number },
): Vocabulary {
  if (!(Number.isInteger(opts.minCount) && opts.minCount >= 1)) {
    throw new UsageError(`--min-count must be an integer >= 1, got ${opts.minCount}`);
  }
  const kept: [string, number][] = [];
  for (const [w, c] of counts) if (c >= opts.minCount) kept.push([w, c]);
  kept.sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const n = opts.maxVocab && opts.maxVocab > 0 ? Math.min(opts.maxVocab, kept.length) : kept.length;
  const words = new Array<string>(n), c = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    words[i] = kept[i][0];
    c[i] = kept[i][1];
  }
  return { words, counts: c };
}

/**
 * Writes `vocab.tsv` (`word<TAB>count` per line, id order) to `path` through a temporary file and a
 * rename. Words containing a tab or a line break are refused.
 *
 * @example
 * ```ts
 * import { writeVocab } from "./vocab.ts";
 * await writeVocab("/tmp/vocab.tsv", { words: ["the", "cat"], counts: [10, 3] });
 * ```
 */
export async function writeVocab(path: string, vocab: Vocabulary): Promise<void> {
  const parts: string[] = [];
  for (let i = 0; i < vocab.words.length; i++) {
    const w = vocab.words[i];
    if (/[\t\r\n]/.test(w) || w.length === 0) {
      throw new UsageError(
        `vocabulary word ${i} (${JSON.stringify(w)}) is empty or contains a tab or line break`,
      );
    }
    parts.push(`${w}\t${vocab.counts[i]}\n`);
  }
  await writeFileAtomic(path, parts.join(""));
}

/**
 * Reads a `vocab.tsv` (a UTF-8 byte-order mark at its start is skipped). With `expectedSize` (the
 * manifest's `vocabSize`) a different line count is an error. Errors name the file and line: a line without a tab, a count that is not a non-negative
 * integer, a repeated word, an empty file.
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a prepared corpus in data/corpus (`deno task corpus`)
 * import { readVocab } from "./vocab.ts";
 * const { words, counts } = await readVocab("data/corpus/vocab.tsv");
 * ```
 */
export async function readVocab(path: string, opts: { expectedSize?: number } = {}): Promise<Vocabulary> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new DataFormatError(path, `cannot read the vocabulary: ${(e as Error).message}`);
  }
  // a UTF-8 byte-order mark (what Windows editors and some exporters write first) is no part of word 0
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const words: string[] = [];
  const counts: number[] = [];
  const seen = new Set<string>();
  let line = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    line++;
    const s = text.slice(start, end).replace(/\r$/, "");
    start = end + 1;
    if (s.length === 0) {
      if (start >= text.length) break;
      throw new DataFormatError(path, `line ${line}: empty line (expected word<TAB>count)`);
    }
    const tab = s.lastIndexOf("\t");
    if (tab <= 0) {
      throw new DataFormatError(
        path,
        `line ${line}: expected word<TAB>count, got ${JSON.stringify(s.slice(0, 60))}`,
      );
    }
    const w = s.slice(0, tab);
    const c = Number(s.slice(tab + 1));
    if (!Number.isInteger(c) || c < 0) {
      throw new DataFormatError(
        path,
        `line ${line}: count ${JSON.stringify(s.slice(tab + 1))} is not a non-negative integer`,
      );
    }
    if (seen.has(w)) throw new DataFormatError(path, `line ${line}: word ${JSON.stringify(w)} appears twice`);
    seen.add(w);
    words.push(w);
    counts.push(c);
  }
  if (words.length === 0) throw new DataFormatError(path, "empty vocabulary (no word<TAB>count lines)");
  if (opts.expectedSize !== undefined && words.length !== opts.expectedSize) {
    throw new DataFormatError(
      path,
      `vocabulary has ${words.length} words but the manifest says vocabSize = ${opts.expectedSize}; ` +
        `the vocabulary does not belong to these shards (re-run ${DENO_TASK} corpus)`,
    );
  }
  return { words, counts };
}
