/**
 * `deno task eval`: evaluates an embedding file (word2vec .vec/.bin, Arrow .arrow, Parquet .parquet):
 * Spearman ρ on word-similarity sets (with coverage), Google-format analogy accuracy (3CosAdd over the
 * most frequent words), nearest neighbours of given words.
 *
 * ```sh
 * deno task eval --vectors runs/latest/embeddings/latest/input.vec
 * deno task eval --vectors out.bin --similarity ../shared/eval/simlex999.txt --neighbours king,paris --k 5
 * ```
 *
 * Exit codes (the shared table of lib/core/exit_codes.ts): 0 done, 1 internal error, 2 bad flags (also
 * nothing to evaluate: no set, from `--eval-dir none`, `FACTOROUT_EVAL_DIR=none`, the default folder missing
 * or holding none, and no `--neighbours`; said before the vectors are read, naming what to give), 5 a bad
 * vector or evaluation file (named with its line), 8 an operating-system error (an unreadable file, named), 9
 * stopped by SIGTERM/SIGINT/SIGHUP (it writes nothing; one line, lib/core/stop.ts).
 *
 * @module
 */

import { UsageError } from "../lib/core/errors.ts";
import { commaList, type FlagSpec, HELP_FLAG, helpText, parseFlags, positiveInt } from "../lib/core/cli.ts";
import { DENO_TASK, EXIT, exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { StopController } from "../lib/core/stop.ts";
import { describeOsError } from "../lib/core/os_errors.ts";
import { createBackend } from "../lib/linalg/select.ts";
import { readEmbeddings } from "../lib/export/read.ts";
import { evaluateAnalogies, readAnalogyFile } from "../lib/eval/analogy.ts";
import { EmbeddingIndex } from "../lib/eval/index.ts";
import { nearestNeighbours } from "../lib/eval/neighbours.ts";
import {
  type EvalReport,
  evalSetNames,
  evalSkipCause,
  evalSkipReason,
  evaluateEmbeddings,
  findEvalSets,
  formatEvalReport,
  resolveEvalDir,
} from "../lib/eval/report.ts";
import { evaluateSimilarity, readSimilarityFile } from "../lib/eval/similarity.ts";

const FLAGS: Record<string, FlagSpec> = {
  vectors: {
    type: "string",
    help: "embedding file: .vec/.txt, .bin, .arrow/.ipc/.feather or .parquet (required)",
  },
  similarity: {
    type: "string",
    help:
      "comma-separated word-similarity files (WordSim-353/SimLex-999 format); default: the sets in --eval-dir",
  },
  analogies: {
    type: "string",
    help: "Google-format analogy file; default: questions-words.txt in --eval-dir",
  },
  "eval-dir": {
    type: "string",
    help: "folder with wordsim353.tsv, simlex999.txt, questions-words.txt ('none': only --neighbours; " +
      "default: $FACTOROUT_EVAL_DIR, else ../shared/eval)",
  },
  "no-analogies": { type: "boolean", help: "skip the analogy evaluation", default: false },
  cutoff: { type: "string", help: "analogies: search the N most frequent words only", default: "30000" },
  neighbours: { type: "string", help: "comma-separated words whose nearest neighbours to print" },
  k: { type: "string", help: "neighbours per word", default: "10" },
  backend: { type: "string", help: "analogy search: blas (OpenBLAS sgemm) | js | auto", default: "auto" },
  "case-sensitive": {
    type: "boolean",
    help: "look words up exactly (otherwise: exact, then lower-cased)",
    default: false,
  },
  json: { type: "boolean", help: "print the report as one JSON object instead of text", default: false },
  help: HELP_FLAG,
};

/**
 * The report's name of each `--similarity` file: its base name without the extension (`simlex999`), or the
 * path as given where two files share that name (`a/sim.tsv` and `b/sim.tsv`: one result overwrote the
 * other). The same file named twice is refused (UsageError, exit 2).
 */
function similarityNames(files: string[]): [string, string][] {
  const base = (file: string) => file.replace(/^.*\//, "").replace(/\.[^.]*$/, "");
  const seen = new Set<string>();
  for (const file of files) {
    if (seen.has(file)) throw new UsageError(`--similarity names ${file} twice; give each file once`);
    seen.add(file);
  }
  return files.map((file) => [
    files.filter((other) => base(other) === base(file)).length > 1 ? file : base(file),
    file,
  ]);
}

/**
 * Why the flags evaluate no set (the reason for the message), or "" when they evaluate one: the sets of the
 * evaluation folder skipped (`useDir`, none resolved) or none there (or only the analogies, with
 * --no-analogies), or --analogies given with --no-analogies and no --similarity.
 */
async function nothingToEvaluate(
  f: Record<string, unknown>,
  useDir: boolean,
  evalDir: string | undefined,
  similarityFiles: number,
): Promise<string> {
  const analogies = f["no-analogies"] !== true;
  if (!useDir) {
    return similarityFiles === 0 && !analogies ? `--no-analogies skips --analogies ${f.analogies}` : "";
  }
  if (evalDir === undefined) {
    return `the evaluation sets are skipped (${evalSkipCause(f["eval-dir"] as string | undefined)})`;
  }
  const sets = await findEvalSets(evalDir);
  if (Object.keys(sets.similarity).length > 0 || (analogies && sets.analogy)) return "";
  return sets.analogy
    ? `${evalDir} holds only ${sets.analogy}, which --no-analogies skips`
    : `${evalDir} holds none of the evaluation sets`;
}

// a scheduler's signal ends it with exit 9 and one line, like every job (it writes nothing to clean up)
const stop = new StopController("eval").install();
stop.note = "nothing was written; rerun the same command";
await runCommand("eval", async () => {
  const f = parseFlags(Deno.args, FLAGS);
  if (f.help) {
    console.log(
      helpText(
        `${DENO_TASK} eval --vectors FILE [flags]`,
        FLAGS,
        exitCodesHelp("badData", "stopped"),
      ),
    );
    return;
  }
  if (typeof f.vectors !== "string" || f.vectors === "") {
    throw new UsageError("--vectors FILE is required; see --help");
  }
  const cutoff = positiveInt("--cutoff", f.cutoff);
  const k = positiveInt("--k", f.k);
  const caseSensitive = f["case-sensitive"] === true;
  const backend = f.backend as string;
  if (!["js", "blas", "auto"].includes(backend)) {
    throw new UsageError(`--backend must be js, blas or auto, got "${backend}"`);
  }
  const similarityFiles = commaList(f.similarity);
  const similarity = similarityNames(similarityFiles); // a file named twice: refused before any reading
  const useDir = similarityFiles.length === 0 && typeof f.analogies !== "string";
  // a named evaluation folder that is missing or empty is a typo (exit 2), before the vectors are read
  const evalDir = useDir ? await resolveEvalDir(f["eval-dir"] as string | undefined) : undefined;
  // nothing to evaluate is a command line to fix (exit 2), like a flag without its use: it printed only
  // "evaluated in 0.00 s" and exited 0
  const nothing = await nothingToEvaluate(f, useDir, evalDir, similarityFiles.length);
  if (nothing && commaList(f.neighbours).length === 0) {
    throw new UsageError(
      `nothing to evaluate: ${nothing}, and no --neighbours; give --eval-dir DIR (a folder holding ` +
        `${evalSetNames()}), --similarity FILES, --analogies FILE or --neighbours WORDS`,
    );
  }
  const t0 = performance.now();
  const emb = await readEmbeddings(f.vectors);
  const index = new EmbeddingIndex(emb.words, emb.vectors, emb.d);
  const loadSeconds = (performance.now() - t0) / 1000;
  // the --neighbours words first: an unknown one is exit 2 at once, before the evaluation (it threw the
  // evaluation away after computing it)
  const neighbours: Record<string, { word: string; cosine: number }[]> = {};
  for (const w of commaList(f.neighbours)) {
    try {
      neighbours[w] = nearestNeighbours(index, w, k, { caseSensitive });
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      throw new UsageError(`--neighbours ${w}: not a word of --vectors ${f.vectors} (${index.size} words)`);
    }
  }
  let report: EvalReport;
  if (useDir && !evalDir) {
    // 'none' (the flag, or the variable without it) or the default folder missing, as in the other jobs
    console.error(`eval: evaluation sets skipped (${evalSkipReason(f["eval-dir"] as string | undefined)})`);
  }
  if (evalDir) {
    report = await evaluateEmbeddings(emb.words, emb.vectors, emb.d, {
      evalDir,
      analogyCutoff: cutoff,
      analogies: !f["no-analogies"],
      index,
      backend: backend as "js" | "blas" | "auto",
      caseSensitive,
    });
  } else {
    const t1 = performance.now();
    report = {
      evalDir: "",
      vocabularySize: emb.words.length,
      d: emb.d,
      similarity: {},
      missing: [],
      zeroVectors: index.zeroRows,
      seconds: 0,
    };
    for (const [name, file] of similarity) {
      report.similarity[name] = {
        file,
        ...evaluateSimilarity(index, await readSimilarityFile(file), { caseSensitive }),
      };
    }
    if (typeof f.analogies === "string" && !f["no-analogies"]) {
      const sections = await readAnalogyFile(f.analogies);
      const la = await createBackend(backend as "js" | "blas" | "auto");
      try {
        report.analogy = {
          file: f.analogies,
          ...evaluateAnalogies(index, sections, { cutoff, caseSensitive, backend: la }),
        };
      } finally {
        la.close();
      }
    }
    report.seconds = (performance.now() - t1) / 1000;
  }
  // the report is what eval makes: standard output failing (`> /dev/full`) is an I/O error naming it, exit 8
  // (it said `cannot access (path not reported)`); a reader that closed the pipe is no error
  const print = (text: string) => {
    try {
      console.log(text);
    } catch (e) {
      throw describeOsError(e, "cannot write the report to", "standard output") ?? e;
    }
  };
  if (f.json) {
    print(JSON.stringify({ vectors: f.vectors, loadSeconds, ...report, neighbours }));
    return;
  }
  print(`${f.vectors}: ${emb.words.length} words × ${emb.d} (loaded in ${loadSeconds.toFixed(2)} s)`);
  const text = formatEvalReport(report);
  if (text) print(text);
  for (const [w, list] of Object.entries(neighbours)) {
    const zero = index.zero[index.lookup(w, caseSensitive)] === 1;
    print(
      `nearest to ${w}: ${
        zero
          ? "none (its vector is all zeros: no cosine)"
          : list.map((n) => `${n.word} ${n.cosine.toFixed(3)}`).join(", ")
      }`,
    );
  }
  print(`evaluated in ${report.seconds.toFixed(2)} s`);
});
// ended here, not by the event loop running dry (a signal during the runtime's teardown would be a 143)
Deno.exit(EXIT.ok);
