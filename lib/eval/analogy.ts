/**
 * Analogy accuracy in the Google format (`questions-words.txt`): lines `: section` start a section, other
 * lines hold four words a b c d meaning a:b :: c:d. A question is answered by 3CosAdd: the word x among
 * the `cutoff` most frequent (the first rows) maximising cos(x, b − a + c) over unit vectors, a, b and c
 * excluded; it is correct when x = d. Questions with a word outside the cut-off vocabulary are skipped
 * and counted (coverage = answered / total), as in word2vec's compute-accuracy; so are the questions with a
 * word whose vector is all zeros (no cosine), and a zero vector is never an answer.
 *
 * @module
 */

import { DataFormatError, UsageError } from "../core/errors.ts";
import type { EmbeddingIndex } from "./index.ts";
import type { LinAlgBackend } from "../linalg/backend.ts";
import { bestRows, bestRowsGemm } from "./search.ts";

/**
 * One section of analogy questions.
 *
 * @example
 * ```ts
 * import type { AnalogySection } from "./analogy.ts";
 * const s: AnalogySection = { name: "capital-common-countries", questions: [["Athens", "Greece", "Baghdad", "Iraq"]] };
 * ```
 */
export type AnalogySection = { name: string; questions: [string, string, string, string][] };

/**
 * Accuracy counts: `correct` of `answered` questions (all four words in the cut-off vocabulary) out of
 * `total` in the file.
 *
 * @example
 * ```ts
 * import type { AnalogyScore } from "./analogy.ts";
 * const s: AnalogyScore = { correct: 3, answered: 10, total: 20, accuracy: 0.3, coverage: 0.5 };
 * ```
 */
export type AnalogyScore = {
  correct: number;
  answered: number;
  total: number;
  accuracy: number;
  coverage: number;
};

/**
 * The result of an analogy evaluation: per section, semantic (sections not named `gram…`), syntactic
 * (`gram…`) and overall.
 *
 * @example
 * ```ts
 * import type { AnalogyResult } from "./analogy.ts";
 * const z = { correct: 0, answered: 0, total: 0, accuracy: NaN, coverage: 0 };
 * const r: AnalogyResult = { cutoff: 30000, search: "js", sections: [], semantic: z, syntactic: z, total: z };
 * ```
 */
export type AnalogyResult = {
  cutoff: number;
  /** Which search ran: "blas" (sgemm) or "js" (the fused TypeScript kernel). */
  search: "blas" | "js";
  sections: ({ name: string } & AnalogyScore)[];
  semantic: AnalogyScore;
  syntactic: AnalogyScore;
  total: AnalogyScore;
};

/**
 * Parses Google-format analogy text; `file` names it in errors.
 *
 * @example
 * ```ts
 * import { parseAnalogies } from "./analogy.ts";
 * parseAnalogies(": capitals\nAthens Greece Baghdad Iraq\n", "q.txt")[0].questions.length; // 1
 * ```
 */
export function parseAnalogies(text: string, file: string): AnalogySection[] {
  const sections: AnalogySection[] = [];
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith(":")) {
      sections.push({ name: line.slice(1).trim() || `section-${sections.length + 1}`, questions: [] });
      continue;
    }
    const w = line.split(/\s+/);
    if (w.length !== 4) {
      throw new DataFormatError(
        file,
        `line ${n + 1}: expected 4 words, got ${w.length}: ${JSON.stringify(line)}`,
      );
    }
    if (sections.length === 0) sections.push({ name: "default", questions: [] });
    sections[sections.length - 1].questions.push([w[0], w[1], w[2], w[3]]);
  }
  if (sections.every((s) => s.questions.length === 0)) {
    throw new DataFormatError(file, "no analogy questions found");
  }
  return sections;
}

/**
 * Reads and parses a Google-format analogy file.
 *
 * @example
 * ```ts
 * import { readAnalogyFile } from "./analogy.ts";
 * const sections = await readAnalogyFile("../shared/eval/questions-words.txt");
 * ```
 */
export async function readAnalogyFile(path: string): Promise<AnalogySection[]> {
  return parseAnalogies(await Deno.readTextFile(path), path);
}

function score(correct: number, answered: number, total: number): AnalogyScore {
  return {
    correct,
    answered,
    total,
    accuracy: answered ? correct / answered : NaN,
    coverage: total ? answered / total : 0,
  };
}

/**
 * 3CosAdd accuracy per section and in total, over the `cutoff` most frequent words (default 30000,
 * word2vec's threshold; capped at the vocabulary size). Questions are scored in blocks of 256: with
 * `backend` an OpenBLAS backend, by sgemm ({@link bestRowsGemm}); otherwise by the fused TypeScript
 * kernel ({@link bestRows}). `search` in the result says which ran.
 *
 * @example
 * ```ts
 * import { EmbeddingIndex } from "./index.ts";
 * import { evaluateAnalogies } from "./analogy.ts";
 * const ix = new EmbeddingIndex(["man", "woman", "king", "queen"], Float32Array.of(1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1), 3);
 * const r = evaluateAnalogies(ix, [{ name: "g", questions: [["man", "woman", "king", "queen"]] }]);
 * r.total.accuracy; // 1
 * ```
 */
export function evaluateAnalogies(
  index: EmbeddingIndex,
  sections: AnalogySection[],
  opts: { cutoff?: number; caseSensitive?: boolean; backend?: LinAlgBackend } = {},
): AnalogyResult {
  const la = opts.backend?.name === "blas" ? opts.backend : undefined;
  const cutoff = opts.cutoff ?? 30000;
  if (!Number.isInteger(cutoff) || cutoff <= 0) {
    throw new UsageError(`analogy cutoff must be a positive integer, got ${cutoff}`);
  }
  const N = Math.min(cutoff, index.size);
  const d = index.d, u = index.unit, zero = index.zero;
  const BLOCK = 256;
  const queries = new Float32Array(BLOCK * d);
  const exclude = new Int32Array(BLOCK * 3);
  const answers = new Int32Array(BLOCK);
  // the sgemm's scores (BLOCK×N), one array for every block: a new one per block cost more than the sgemm
  // (fresh memory; BENCHMARKS.md, "The job outside the training loop")
  let scores: Float32Array | undefined;
  const out: ({ name: string } & AnalogyScore)[] = [];
  const sem = [0, 0, 0], syn = [0, 0, 0], all = [0, 0, 0];
  for (const section of sections) {
    let correct = 0, answered = 0;
    let nq = 0;
    const flush = () => {
      if (nq === 0) return;
      if (la) scores ??= new Float32Array(BLOCK * N);
      const { best } = la
        ? bestRowsGemm(la, u, N, d, queries, nq, exclude, 3, BLOCK, zero, scores)
        : bestRows(u, N, d, queries, nq, exclude, 3, zero);
      for (let q = 0; q < nq; q++) if (best[q] === answers[q]) correct++;
      nq = 0;
    };
    for (const [a, b, c, x] of section.questions) {
      const ia = index.lookup(a, opts.caseSensitive), ib = index.lookup(b, opts.caseSensitive);
      const ic = index.lookup(c, opts.caseSensitive), ix = index.lookup(x, opts.caseSensitive);
      if (ia < 0 || ib < 0 || ic < 0 || ix < 0 || ia >= N || ib >= N || ic >= N || ix >= N) continue;
      if (zero[ia] || zero[ib] || zero[ic] || zero[ix]) continue; // no cosine: skipped, not answered
      answered++;
      const base = nq * d;
      for (let k = 0; k < d; k++) queries[base + k] = u[ib * d + k] - u[ia * d + k] + u[ic * d + k];
      exclude[nq * 3] = ia;
      exclude[nq * 3 + 1] = ib;
      exclude[nq * 3 + 2] = ic;
      answers[nq] = ix;
      if (++nq === BLOCK) flush();
    }
    flush();
    const total = section.questions.length;
    out.push({ name: section.name, ...score(correct, answered, total) });
    const bucket = section.name.startsWith("gram") ? syn : sem;
    for (const acc of [bucket, all]) {
      acc[0] += correct;
      acc[1] += answered;
      acc[2] += total;
    }
  }
  return {
    cutoff: N,
    search: la ? "blas" : "js",
    sections: out,
    semantic: score(sem[0], sem[1], sem[2]),
    syntactic: score(syn[0], syn[1], syn[2]),
    total: score(all[0], all[1], all[2]),
  };
}
