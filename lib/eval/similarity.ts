/**
 * Word-similarity evaluation: Spearman's ρ between human scores and the cosine of the two words'
 * vectors, over the pairs whose two words are both in the vocabulary (out-of-vocabulary pairs are
 * skipped and counted: coverage = found / total).
 *
 * File formats accepted (tab- or space-separated, `#` comment lines skipped):
 * - `word1 word2 score` (WordSim-353 `combined.tab`/`.tsv`, the shared `simlex999.txt`);
 * - a header line naming the columns (e.g. SimLex-999's `word1 word2 POS SimLex999 conc(w1) …`):
 *   the score column is the one named `SimLex999`, else one whose name contains "human", "score",
 *   "mean" or "sim", else the third.
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
 * const r: SimilarityResult = { rho: 0.31, found: 300, total: 353, coverage: 300 / 353, oovPairs: 53, oovWords: ["x"] };
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
      const numeric = cols.length >= 3 && Number.isFinite(Number(cols[2])) && cols[2] !== "";
      if (numeric) scoreCol = 2;
      else {
        scoreCol = pickScoreColumn(cols);
        if (scoreCol < 0 || scoreCol >= cols.length) {
          throw new DataFormatError(
            file,
            `line ${n + 1}: header ${JSON.stringify(line)} has no score column`,
          );
        }
        continue; // header line
      }
    }
    if (cols.length <= scoreCol) {
      throw new DataFormatError(
        file,
        `line ${n + 1}: expected word1, word2 and a score (column ${scoreCol + 1}), got ${
          JSON.stringify(line)
        }`,
      );
    }
    const score = Number(cols[scoreCol]);
    if (cols[scoreCol] === "" || !Number.isFinite(score)) {
      throw new DataFormatError(
        file,
        `line ${n + 1}: score ${JSON.stringify(cols[scoreCol])} is not a number`,
      );
    }
    pairs.push({ a: cols[0], b: cols[1], score, line: n + 1 });
  }
  if (pairs.length === 0) throw new DataFormatError(file, "no word pairs found");
  return pairs;
}

function pickScoreColumn(header: string[]): number {
  const lower = header.map((h) => h.toLowerCase());
  const exact = lower.findIndex((h) => h === "simlex999");
  if (exact >= 0) return exact;
  const fuzzy = lower.findIndex((h, i) => i >= 2 && /human|score|mean|sim/.test(h));
  if (fuzzy >= 0) return fuzzy;
  return header.length >= 3 ? 2 : -1;
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
 * Spearman's ρ between the human scores and the cosines, with coverage (OOV pairs skipped).
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
  for (const p of pairs) {
    const i = index.lookup(p.a, opts.caseSensitive);
    const j = index.lookup(p.b, opts.caseSensitive);
    if (i < 0) oov.add(p.a);
    if (j < 0) oov.add(p.b);
    if (i < 0 || j < 0) continue;
    human.push(p.score);
    model.push(index.cosine(i, j));
  }
  const found = human.length;
  return {
    rho: found >= 2 ? spearman(human, model) : NaN,
    found,
    total: pairs.length,
    coverage: pairs.length ? found / pairs.length : 0,
    oovPairs: pairs.length - found,
    oovWords: [...oov],
  };
}
