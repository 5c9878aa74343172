/**
 * Word-similarity evaluation: Spearman's ρ between human scores and the cosine of the two words'
 * vectors, over the pairs whose two words are both in the vocabulary (out-of-vocabulary pairs are
 * skipped and counted: coverage = found / total).
 *
 * File formats accepted (tab- or space-separated, `#` comment lines skipped):
 * - `word1 word2 score` (WordSim-353 `combined.tab`/`.tsv`, the shared `simlex999.txt`);
 * - a first line that is a header naming the columns (e.g. SimLex-999's `word1 word2 POS SimLex999 conc(w1)
 *   …`, WordSim-353's `Word 1\tWord 2\tHuman (mean)`): the score column is the one named `SimLex999`,
 *   else the first from the third on whose name holds "human", "score", "mean", "avg", "value", "sim",
 *   "rating", "gold", "relat" or "judg". A first line whose third column is neither a number nor such a name is a data line
 *   with a bad score (`the paris NaN`, `7,5`): an error naming the line, never skipped as a header.
 *
 * A score is a decimal number (`7.35`, `-1`, `1e-3`); `NaN`, `Infinity`, `0x10`, `7,5` are refused.
 *
 * @module
 */

import { DataFormatError } from "../core/errors.ts";
import type { EmbeddingIndex } from "./index.ts";
import { spearman } from "./spearman.ts";

/**
 * One human-scored word pair.
 *
 * @example
 * ```ts
 * import type { SimilarityPair } from "./similarity.ts";
 * const p: SimilarityPair = { a: "tiger", b: "cat", score: 7.35, line: 4 };
 * ```
 */
export type SimilarityPair = { a: string; b: string; score: number; line: number };

/**
 * The result of a similarity evaluation.
 *
 * @example
 * ```ts
 * import type { SimilarityResult } from "./similarity.ts";
 * const r: SimilarityResult = { rho: 0.31, found: 300, total: 353, coverage: 300 / 353, oovPairs: 53, zeroPairs: 0, oovWords: ["x"] };
 * ```
 */
export type SimilarityResult = {
  /** Spearman's ρ over the pairs found (NaN with fewer than 2). */
  rho: number;
  /** Pairs with both words in the vocabulary. */
  found: number;
  /** Pairs in the file. */
  total: number;
  /** found / total. */
  coverage: number;
  /** Pairs skipped because a word is missing. */
  oovPairs: number;
  /** Pairs skipped because a word's vector is all zeros (it has no cosine); not in `found`. */
  zeroPairs: number;
  /** The missing words (distinct, in file order). */
  oovWords: string[];
};

/**
 * Parses a similarity file's text (see the module doc for the formats); `file` names it in errors.
 *
 * @example
 * ```ts
 * import { parseSimilarity } from "./similarity.ts";
 * parseSimilarity("# comment\ntiger\tcat\t7.35\n", "ws.tsv"); // [{ a: "tiger", b: "cat", score: 7.35, line: 2 }]
 * ```
 */
export function parseSimilarity(text: string, file: string): SimilarityPair[] {
  const lines = text.split(/\r?\n/);
  const pairs: SimilarityPair[] = [];
  let scoreCol = -1;
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line === "" || line.startsWith("#")) continue;
    const cols = line.includes("\t") ? line.split("\t").map((c) => c.trim()) : line.split(/\s+/);
    if (scoreCol < 0) {
      // a header only when it names its score column; any other first line is data, checked below
      const named = cols.length >= 3 && isScore(cols[2]) ? -1 : headerScoreColumn(cols);
      scoreCol = named >= 0 ? named : 2;
      if (named >= 0) continue; // header line
    }
    if (cols.length <= scoreCol) {
      throw new DataFormatError(
        file,
        `line ${n + 1}: expected word1, word2 and a score (column ${scoreCol + 1}), got ${
          JSON.stringify(line)
        }`,
      );
    }
    if (!isScore(cols[scoreCol])) {
      throw new DataFormatError(
        file,
        `line ${n + 1}: score ${JSON.stringify(cols[scoreCol])} is not a number` +
          (pairs.length === 0
            ? " (a header line names its score column: SimLex999, or a name holding human, score, mean, avg, " +
              "value, sim, rating, gold, relat or judg)"
            : ""),
      );
    }
    const score = Number(cols[scoreCol]);
    pairs.push({ a: cols[0], b: cols[1], score, line: n + 1 });
  }
  if (pairs.length === 0) throw new DataFormatError(file, "no word pairs found");
  return pairs;
}

/** A decimal number, as a score is written (`7.35`, `-1`, `.5`, `1e-3`): no `NaN`, `Infinity`, hex or `7,5`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function isScore(s: string): boolean {
  return DECIMAL.test(s) && Number.isFinite(Number(s));
}

/**
 * The score column a header line names (`SimLex999`, else the first from the third column on whose name
 * holds a known score word), or -1 when the line is no header.
 */
function headerScoreColumn(header: string[]): number {
  const lower = header.map((h) => h.toLowerCase());
  const exact = lower.findIndex((h) => h === "simlex999");
  if (exact >= 0) return exact;
  return lower.findIndex((h, i) =>
    i >= 2 && /human|score|mean|avg|average|value|sim|rating|gold|relat|judg/.test(h)
  );
}

/**
 * Reads and parses a similarity file.
 *
 * @example
 * ```ts
 * import { readSimilarityFile } from "./similarity.ts";
 * const pairs = await readSimilarityFile("../shared/eval/wordsim353.tsv");
 * ```
 */
export async function readSimilarityFile(path: string): Promise<SimilarityPair[]> {
  return parseSimilarity(await Deno.readTextFile(path), path);
}

/**
 * Spearman's ρ between the human scores and the cosines, with coverage (OOV pairs skipped, and the pairs with
 * a zero vector, which has no cosine, counted apart in `zeroPairs`).
 *
 * @example
 * ```ts
 * import { EmbeddingIndex } from "./index.ts";
 * import { evaluateSimilarity } from "./similarity.ts";
 * const ix = new EmbeddingIndex(["a", "b", "c"], Float32Array.of(1, 0, 1, 1, 0, 1), 2);
 * const pairs = [{ a: "a", b: "b", score: 8, line: 1 }, { a: "a", b: "c", score: 1, line: 2 }, { a: "a", b: "zz", score: 5, line: 3 }];
 * const r = evaluateSimilarity(ix, pairs); // rho 1, found 2, total 3
 * ```
 */
export function evaluateSimilarity(
  index: EmbeddingIndex,
  pairs: SimilarityPair[],
  opts: { caseSensitive?: boolean } = {},
): SimilarityResult {
  const human: number[] = [];
  const model: number[] = [];
  const oov = new Set<string>();
  let zeroPairs = 0;
  for (const p of pairs) {
    const i = index.lookup(p.a, opts.caseSensitive);
    const j = index.lookup(p.b, opts.caseSensitive);
    if (i < 0) oov.add(p.a);
    if (j < 0) oov.add(p.b);
    if (i < 0 || j < 0) continue;
    if (index.zero[i] || index.zero[j]) {
      zeroPairs++; // a zero vector has no cosine (it was counted as 0 and moved ρ)
      continue;
    }
    human.push(p.score);
    model.push(index.cosine(i, j));
  }
  const found = human.length;
  return {
    rho: found >= 2 ? spearman(human, model) : NaN,
    found,
    total: pairs.length,
    coverage: pairs.length ? found / pairs.length : 0,
    oovPairs: pairs.length - found - zeroPairs,
    zeroPairs,
    oovWords: [...oov],
  };
}
