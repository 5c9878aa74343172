/**
 * One call that evaluates embeddings on the standard sets found in an evaluation folder:
 * `wordsim353.tsv` (or `combined.tab`), `simlex999.txt` (or `SimLex-999.txt`) and `questions-words.txt`.
 * Sets whose file is absent are listed under `missing` with the path looked for (never silently).
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../core/errors.ts";
import { roundTo } from "../core/finite.ts";
import type { LinAlgBackend } from "../linalg/backend.ts";
import { createBackend } from "../linalg/select.ts";
import { type AnalogyResult, evaluateAnalogies, readAnalogyFile } from "./analogy.ts";
import { EmbeddingIndex } from "./index.ts";
import { evaluateSimilarity, readSimilarityFile, type SimilarityResult } from "./similarity.ts";

/**
 * The evaluation folder used when none is given: `$FACTOROUT_EVAL_DIR`, else `../shared/eval` next to
 * the repository (`/work/shared/eval` for a checkout at /work/main).
 *
 * @example
 * ```ts
 * import { defaultEvalDir } from "./report.ts";
 * console.log(defaultEvalDir());
 * ```
 */
export function defaultEvalDir(): string {
  const env = Deno.env.get("FACTOROUT_EVAL_DIR");
  if (env) return env;
  return fileURLToPath(new URL("../../../shared/eval", import.meta.url));
}

/**
 * What {@link evaluateEmbeddings} returns.
 *
 * @example
 * ```ts
 * import type { EvalReport } from "./report.ts";
 * const r: EvalReport = { evalDir: "/x", vocabularySize: 10, d: 2, similarity: {}, missing: [], seconds: 0 };
 * ```
 */
export type EvalReport = {
  evalDir: string;
  vocabularySize: number;
  d: number;
  /** Per similarity set ("wordsim353", "simlex999"): ρ and coverage, with its file. */
  similarity: Record<string, SimilarityResult & { file: string }>;
  /** Analogy accuracy, when questions-words.txt is present (the per-section list included). */
  analogy?: AnalogyResult & { file: string };
  /** Sets not evaluated, with the paths that were looked for. */
  missing: string[];
  /**
   * Rows whose vector is all zeros (no cosine): never a neighbour or an analogy answer, their similarity
   * pairs and analogy questions skipped (absent: not counted).
   */
  zeroVectors?: number;
  seconds: number;
};

const SIMILARITY_SETS: Record<string, string[]> = {
  wordsim353: ["wordsim353.tsv", "combined.tab", "wordsim353.txt"],
  simlex999: ["simlex999.txt", "SimLex-999.txt"],
};
const ANALOGY_FILES = ["questions-words.txt"];

async function firstExisting(dir: string, names: string[]): Promise<string | undefined> {
  for (const n of names) {
    const p = join(dir, n);
    try {
      if ((await Deno.stat(p)).isFile) return p;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return undefined;
}

/**
 * The evaluation sets present in `evalDir`, found by their file names (nothing is read): each similarity
 * set found, under its name (`wordsim353`, `simlex999`), and the analogy file.
 *
 * @example
 * ```ts
 * import { findEvalSets } from "./report.ts";
 * console.log(await findEvalSets("/no/such/folder")); // { similarity: {} }
 * ```
 */
export async function findEvalSets(
  evalDir: string,
): Promise<{ similarity: Record<string, string>; analogy?: string }> {
  const similarity: Record<string, string> = {};
  for (const [name, files] of Object.entries(SIMILARITY_SETS)) {
    const file = await firstExisting(evalDir, files);
    if (file) similarity[name] = file;
  }
  const analogy = await firstExisting(evalDir, ANALOGY_FILES);
  return { similarity, ...(analogy ? { analogy } : {}) };
}

/**
 * Reads every evaluation set present in `evalDir` once and returns their paths, so that a job finds a
 * corrupt one (DataFormatError naming the file and line, exit 5) before it trains, not after.
 *
 * @example
 * ```ts
 * import { checkEvalSets } from "./report.ts";
 * console.log(await checkEvalSets("/no/such/folder")); // []
 * ```
 */
export async function checkEvalSets(evalDir: string): Promise<string[]> {
  const sets = await findEvalSets(evalDir);
  for (const file of Object.values(sets.similarity)) await readSimilarityFile(file);
  if (sets.analogy) await readAnalogyFile(sets.analogy);
  return [...Object.values(sets.similarity), ...(sets.analogy ? [sets.analogy] : [])];
}

/**
 * The file names of every set, for a message: `wordsim353.tsv|combined.tab|…, simlex999.txt|…, …`.
 *
 * @example
 * ```ts
 * import { evalSetNames } from "./report.ts";
 * console.log(`give a folder holding ${evalSetNames()}`);
 * ```
 */
export function evalSetNames(): string {
  return [...Object.values(SIMILARITY_SETS), ANALOGY_FILES].map((n) => n.join("|")).join(", ");
}

/**
 * The evaluation folder a job will use, checked before the job does any work (lock, corpus, training):
 * `given` (its `--eval-dir`), else `$FACTOROUT_EVAL_DIR`, else ../shared/eval ({@link defaultEvalDir}).
 * A folder the user named (the flag or the variable) that is missing, or that holds none of the sets, is
 * a typo: a {@link UsageError} naming it and the files looked for (exit 2). The default folder missing
 * is not an error (a fresh machine may not have it): undefined, as for `none` (skip the evaluation). The
 * sets found are read once ({@link checkEvalSets}: a corrupt one is exit 5 now, not after training).
 *
 * @example
 * ```ts
 * import { resolveEvalDir } from "./report.ts";
 * console.log(await resolveEvalDir("none")); // undefined
 * await resolveEvalDir("/no/such/folder").catch((e) => console.log(e.message)); // --eval-dir /no/such/folder: no such folder; …
 * ```
 *
 * @param given the `--eval-dir` of the command line, if any
 * @returns the folder, or undefined to skip the evaluation
 * @throws {UsageError} a named folder that is missing or holds none of the sets
 * @throws {DataFormatError} a corrupt set
 */
export async function resolveEvalDir(given?: string): Promise<string | undefined> {
  const env = Deno.env.get("FACTOROUT_EVAL_DIR") || undefined;
  const dir = given ?? env;
  if (dir === "none") return undefined;
  const isDir = async (p: string) => {
    try {
      return (await Deno.stat(p)).isDirectory;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
      throw e;
    }
  };
  if (dir === undefined) {
    const shared = defaultEvalDir();
    if (!(await isDir(shared))) return undefined;
    await checkEvalSets(shared);
    return shared;
  }
  const named = given !== undefined ? `--eval-dir ${dir}` : `FACTOROUT_EVAL_DIR=${dir}`;
  const what =
    `give the folder of the evaluation sets (${evalSetNames()}), or --eval-dir none to skip the evaluation`;
  if (!(await isDir(dir))) throw new UsageError(`${named}: no such folder; ${what}`);
  if ((await checkEvalSets(dir)).length === 0) {
    throw new UsageError(`${named}: none of the evaluation sets is there; ${what}`);
  }
  return dir;
}

/**
 * Why {@link resolveEvalDir} gave no folder for `given` (the job's `--eval-dir`), for the job's log line:
 * `--eval-dir none`, `FACTOROUT_EVAL_DIR=none`, or the default folder missing.
 *
 * @example
 * ```ts
 * import { evalSkipReason } from "./report.ts";
 * console.log(`evaluation: skipped (${evalSkipReason("none")})`); // evaluation: skipped (--eval-dir none)
 * ```
 */
export function evalSkipReason(given?: string): string {
  const cause = evalSkipCause(given);
  return cause.startsWith("no ") ? `${cause}; give --eval-dir` : cause;
}

/**
 * {@link evalSkipReason} without its advice: `--eval-dir none`, `FACTOROUT_EVAL_DIR=none`, or
 * `no <default folder> folder`, for a message that gives its own.
 *
 * @example
 * ```ts
 * import { evalSkipCause } from "./report.ts";
 * console.log(evalSkipCause("none")); // --eval-dir none
 * ```
 */
export function evalSkipCause(given?: string): string {
  if (given === "none") return "--eval-dir none";
  if (given === undefined && Deno.env.get("FACTOROUT_EVAL_DIR") === "none") return "FACTOROUT_EVAL_DIR=none";
  return `no ${defaultEvalDir()} folder`;
}

/**
 * Evaluates V×d embeddings (rows in frequency order) on the sets in `evalDir`: Spearman ρ on the
 * similarity sets, 3CosAdd analogy accuracy over the `analogyCutoff` (default 30000) most frequent
 * words; `analogies: false` skips the analogy run (the slowest part). Words are looked up exactly, else
 * lower-cased; `caseSensitive: true` looks them up exactly only. The analogy search runs on
 * `backend` (a {@link LinAlgBackend}, or a name for createBackend, which logs the one it picks through
 * `log`); default "auto": OpenBLAS sgemm when it loads, else the TypeScript kernel.
 *
 * @example
 * ```ts
 * import { evaluateEmbeddings } from "./report.ts";
 * const words = ["tiger", "cat", "dog"];
 * const r = await evaluateEmbeddings(words, Float32Array.of(1, 0, 0.9, 0.1, 0.7, 0.7), 2, { analogies: false });
 * console.log(r.similarity.wordsim353?.rho, r.similarity.wordsim353?.coverage);
 * ```
 */
export async function evaluateEmbeddings(
  words: string[],
  vectors: Float32Array,
  d: number,
  opts: {
    evalDir?: string;
    analogyCutoff?: number;
    analogies?: boolean;
    index?: EmbeddingIndex;
    backend?: LinAlgBackend | "js" | "blas" | "auto";
    caseSensitive?: boolean;
    log?: (line: string) => void;
  } = {},
): Promise<EvalReport> {
  const t0 = performance.now();
  const evalDir = opts.evalDir ?? defaultEvalDir();
  const index = opts.index ?? new EmbeddingIndex(words, vectors, d);
  const caseSensitive = opts.caseSensitive === true;
  const report: EvalReport = {
    evalDir,
    vocabularySize: words.length,
    d,
    similarity: {},
    missing: [],
    zeroVectors: index.zeroRows,
    seconds: 0,
  };
  const sets = await findEvalSets(evalDir);
  for (const [name, files] of Object.entries(SIMILARITY_SETS)) {
    const file = sets.similarity[name];
    if (!file) {
      report.missing.push(`${name} (${files.map((f) => join(evalDir, f)).join(" | ")})`);
      continue;
    }
    report.similarity[name] = {
      file,
      ...evaluateSimilarity(index, await readSimilarityFile(file), { caseSensitive }),
    };
  }
  if (opts.analogies !== false) {
    const file = sets.analogy;
    if (!file) report.missing.push(`analogy (${join(evalDir, ANALOGY_FILES[0])})`);
    else {
      const sections = await readAnalogyFile(file);
      const given = typeof opts.backend === "object" ? opts.backend : undefined;
      const la = given ?? await createBackend(
        (opts.backend ?? "auto") as "js" | "blas" | "auto",
        { log: opts.log ?? ((l: string) => console.error(l)) },
      );
      try {
        report.analogy = {
          file,
          ...evaluateAnalogies(index, sections, { cutoff: opts.analogyCutoff, caseSensitive, backend: la }),
        };
      } finally {
        if (!given) la.close();
      }
    }
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

/**
 * The `metrics` of every job that publishes (manifest.json of a version, train's summary, refresh's JSON
 * line): each similarity set's Spearman ρ under its name (`wordsim353`, `simlex999`), the analogy accuracy
 * (`analogy`), and each one's coverage under `coverage` (`coverage.analogy` included), rounded to 4
 * decimals; a set not evaluated is absent, and nothing evaluated is `{ coverage: {} }`. The whole report
 * (out-of-vocabulary words, analogy sections) goes beside it, in the version's `eval.json`.
 *
 * @example
 * ```ts
 * import type { EvalMetrics } from "./report.ts";
 * const m: EvalMetrics = { wordsim353: 0.3512, coverage: { wordsim353: 0.9887 } };
 * ```
 */
export type EvalMetrics = {
  wordsim353?: number;
  simlex999?: number;
  analogy?: number;
  coverage: Record<string, number>;
};

/**
 * The {@link EvalMetrics} of a report; `{ coverage: {} }` when there is none (the evaluation skipped).
 *
 * @example
 * ```ts
 * import { evalMetrics } from "./report.ts";
 * console.log(evalMetrics(undefined)); // { coverage: {} }
 * ```
 */
export function evalMetrics(report: EvalReport | undefined): EvalMetrics {
  const metrics: EvalMetrics = { coverage: {} };
  if (!report) return metrics;
  for (const [name, s] of Object.entries(report.similarity)) {
    (metrics as Record<string, unknown>)[name] = roundTo(s.rho, 4);
    metrics.coverage[name] = roundTo(s.coverage, 4);
  }
  if (report.analogy) {
    metrics.analogy = roundTo(report.analogy.total.accuracy, 4);
    metrics.coverage.analogy = roundTo(report.analogy.total.coverage, 4);
  }
  return metrics;
}

/**
 * The `metrics` of a manifest.json written by any version, as {@link EvalMetrics}: the shape every job
 * writes now is taken as it is; those of older versions are converted (refresh's
 * `{ wordsim353: { rho, coverage } }`, and the whole {@link EvalReport} of `export --eval`); anything else
 * (null, no evaluation, a shape not known) is `{ coverage: {} }`. Never throws.
 *
 * @example
 * ```ts
 * import { readMetrics } from "./report.ts";
 * console.log(readMetrics({ wordsim353: { rho: 0.351234, coverage: 1 } })); // { wordsim353: 0.3512, coverage: { wordsim353: 1 } }
 * console.log(readMetrics(null)); // { coverage: {} }
 * ```
 */
export function readMetrics(value: unknown): EvalMetrics {
  const metrics: EvalMetrics = { coverage: {} };
  const isObject = (x: unknown): x is Record<string, unknown> =>
    typeof x === "object" && x !== null && !Array.isArray(x);
  // JSON writes NaN as null: a ρ of too few pairs
  const figure = (x: unknown) => typeof x === "number" ? roundTo(x, 4) : x === null ? NaN : undefined;
  const put = (name: string, rho: unknown, coverage: unknown) => {
    const r = figure(rho), c = figure(coverage);
    if (r === undefined) return;
    (metrics as Record<string, unknown>)[name] = r;
    if (c !== undefined) metrics.coverage[name] = c;
  };
  if (!isObject(value)) return metrics;
  if (isObject(value.similarity)) {
    // export --eval's whole report
    for (const [name, s] of Object.entries(value.similarity)) {
      if (isObject(s)) put(name, s.rho, s.coverage);
    }
    const total = isObject(value.analogy) ? value.analogy.total : undefined;
    if (isObject(total)) put("analogy", total.accuracy, total.coverage);
    return metrics;
  }
  if (isObject(value.coverage)) {
    // the shape written now (train's always): a figure per set, and `coverage`
    const coverage = value.coverage;
    for (const [name, v] of Object.entries(value)) if (name !== "coverage") put(name, v, coverage[name]);
    return metrics;
  }
  // refresh's older { wordsim353: { rho, coverage } }
  for (const [name, v] of Object.entries(value)) if (isObject(v)) put(name, v.rho, v.coverage);
  return metrics;
}

/**
 * A few human-readable lines summarising an {@link EvalReport}.
 *
 * @example
 * ```ts
 * import { formatEvalReport } from "./report.ts";
 * console.log(formatEvalReport({ evalDir: "/x", vocabularySize: 1, d: 1, similarity: {}, missing: [], seconds: 0 }));
 * ```
 */
export function formatEvalReport(r: EvalReport): string {
  const lines: string[] = [];
  if (r.zeroVectors) {
    lines.push(
      `${r.zeroVectors} zero vector${
        r.zeroVectors === 1 ? "" : "s"
      } (all-zero rows, no cosine) skipped: never a ` +
        "neighbour or an analogy answer; pairs and questions holding one are not scored",
    );
  }
  for (const [name, s] of Object.entries(r.similarity)) {
    lines.push(
      `${name}: Spearman rho ${s.rho.toFixed(4)} on ${s.found}/${s.total} pairs (coverage ${
        (100 * s.coverage).toFixed(1)
      }%, ${s.oovPairs} OOV pairs skipped${s.zeroPairs ? `, ${s.zeroPairs} with a zero vector` : ""})`,
    );
  }
  if (r.analogy) {
    const a = r.analogy;
    // an empty group (no question of it answered) has no accuracy: "no questions", not 0.00%
    const f = (s: { accuracy: number; correct: number; answered: number; total: number; coverage: number }) =>
      s.total === 0
        ? "no questions"
        : s.answered === 0
        ? `none answered (coverage 0/${s.total})`
        : `${
          (100 * s.accuracy).toFixed(2)
        }% (${s.correct}/${s.answered}; coverage ${s.answered}/${s.total} = ${
          (100 * s.coverage).toFixed(1)
        }%)`;
    lines.push(`analogy (3CosAdd, top ${a.cutoff} words, ${a.search} search): total ${f(a.total)}`);
    lines.push(`  semantic ${f(a.semantic)}; syntactic ${f(a.syntactic)}`);
  }
  for (const m of r.missing) lines.push(`not evaluated, file not found: ${m}`);
  return lines.join("\n");
}
