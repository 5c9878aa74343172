/**
 * The runs of `deno task bench:peers`: one fastText or factorout training, each under `/usr/bin/time -v`
 * (wall time, peak RSS), with its words/s read the same way for both tools.
 *
 * Words/s: fastText's own progress line (words/sec/thread × threads, tokens read including subsampled
 * ones); factorout: corpus tokens × epochs ÷ training seconds (the same definition).
 *
 * @module
 */

import { join } from "node:path";
import { readEmbeddings } from "../lib/export/read.ts";
import { evaluateEmbeddings } from "../lib/eval/report.ts";
import type { LinAlgBackend } from "../lib/linalg/backend.ts";
import { fmt } from "./report.ts";

/** A fastText run: model and loss. */
export type FastTextRun = `${"cbow" | "skipgram"}-${"ns" | "hs" | "softmax"}`;

/**
 * One run's measurements (one table row).
 *
 * @example
 * ```ts
 * import type { RunResult } from "./peers_runs.ts";
 * const r: RunResult = { name: "factorout", command: "deno task train …", epochs: "5", wallSeconds: 60,
 *   wordsPerSecond: 1e5, wordsPerSecondPerThread: 5e4, peakRssMiB: 300 };
 * ```
 */
export type RunResult = {
  name: FastTextRun | "factorout";
  command: string;
  epochs: string;
  wallSeconds: number;
  trainSeconds?: number;
  wordsPerSecond: number;
  wordsPerSecondPerThread: number;
  extra?: string;
  peakRssMiB: number;
  wordsim?: { rho: number; coverage: number };
  simlex?: { rho: number; coverage: number };
  /** words in the trained vocabulary (after min-count) */
  vocabulary?: number;
  /** true when stopped by the time box before the end */
  boxed?: boolean;
};

type Timed = { code: number; wallSeconds: number; peakRssKiB: number; stdout: string; stderr: string };

/**
 * Runs `cmd args` under /usr/bin/time -v (and `timeout --signal=INT` when a time box is given).
 *
 * @example
 * ```ts
 * import { timed } from "./peers_runs.ts";
 * const r = await timed("true", [], { log: console.error });
 * console.log(r.peakRssKiB > 0);
 * ```
 */
export async function timed(
  cmd: string,
  args: string[],
  opts: { timeoutSeconds?: number; env?: Record<string, string>; log: (s: string) => void },
): Promise<Timed> {
  const full = opts.timeoutSeconds
    ? ["timeout", "--signal=INT", String(opts.timeoutSeconds), cmd, ...args]
    : [cmd, ...args];
  opts.log(`$ ${full.join(" ")}`);
  const t0 = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-v", ...full],
    stdout: "piped",
    stderr: "piped",
    env: opts.env,
  }).output();
  const wallSeconds = (performance.now() - t0) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  const stdout = new TextDecoder().decode(out.stdout);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  if (!rss) throw new Error(`/usr/bin/time -v printed no peak memory for ${cmd}:\n${stderr.slice(-2000)}`);
  // drop /usr/bin/time's own report from the command's stderr
  const own = stderr.search(
    /(^|\n)(Command exited with non-zero status|Command terminated by signal|\tCommand being timed)/,
  );
  return {
    code: out.code,
    wallSeconds,
    peakRssKiB: Number(rss[1]),
    stdout,
    stderr: own >= 0 ? stderr.slice(0, own) : stderr,
  };
}

/**
 * Scores of word vectors through lib/eval: WordSim-353 and SimLex-999 ρ with their coverage and, with
 * `analogies`, the 3CosAdd analogy accuracy with its coverage (undefined where the set's file is absent).
 *
 * @example
 * ```ts
 * import { scoreVectors } from "./peers_runs.ts";
 * // const s = await scoreVectors(words, vectors, 100, { analogies: true, backend: la });
 * ```
 */
export async function scoreVectors(
  words: string[],
  vectors: Float32Array,
  d: number,
  opts: { evalDir?: string; analogies?: boolean; backend?: LinAlgBackend } = {},
) {
  const r = await evaluateEmbeddings(words, vectors, d, {
    analogies: opts.analogies ?? false,
    evalDir: opts.evalDir,
    ...(opts.backend ? { backend: opts.backend } : {}),
  });
  const pick = (
    k: string,
  ) => (r.similarity[k] ? { rho: r.similarity[k].rho, coverage: r.similarity[k].coverage } : undefined);
  return {
    wordsim: pick("wordsim353"),
    simlex: pick("simlex999"),
    analogy: r.analogy
      ? { accuracy: r.analogy.total.accuracy, coverage: r.analogy.total.coverage }
      : undefined,
    vocabulary: words.length,
    missing: r.missing,
  };
}

/**
 * {@link scoreVectors} of a vector file (any format lib/export reads).
 *
 * @example
 * ```ts
 * import { evalVec } from "./peers_runs.ts";
 * // const { wordsim, simlex, vocabulary } = await evalVec("out/input.vec");
 * ```
 */
export async function evalVec(
  path: string,
  evalDir?: string,
  opts: { analogies?: boolean; backend?: LinAlgBackend } = {},
) {
  const e = await readEmbeddings(path);
  return await scoreVectors(e.words, e.vectors, e.d, { evalDir, ...opts });
}

/**
 * The last words/sec/thread of fastText's progress lines.
 *
 * @example
 * ```ts
 * import { lastWordsPerSecPerThread } from "./peers_runs.ts";
 * lastWordsPerSecPerThread("Progress: 1.0% words/sec/thread: 640 lr: 0.05"); // 640
 * ```
 */
export function lastWordsPerSecPerThread(stderr: string): number {
  const all = [...stderr.matchAll(/words\/sec\/thread:\s*(\d+)/g)];
  if (all.length === 0) {
    throw new Error(`no fastText progress line (words/sec/thread) found in:\n${stderr.slice(-1500)}`);
  }
  return Number(all[all.length - 1][1]);
}

/**
 * fastText's vocabulary size, from its `Number of words:` line (undefined when it did not print one).
 *
 * @example
 * ```ts
 * import { fastTextVocabulary } from "./peers_runs.ts";
 * fastTextVocabulary("Read 1M words\nNumber of words:  49815\n"); // 49815
 * ```
 */
export function fastTextVocabulary(stderr: string): number | undefined {
  const m = /Number of words:\s*(\d+)/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

/** Settings shared by a fastText and a factorout run. */
export type PeerSettings = {
  corpus: string;
  work: string;
  dim: number;
  window: number;
  epochs: number;
  minCount: number;
  threads: number;
};

/**
 * Trains fastText (`fasttext cbow|skipgram -loss ns|hs|softmax`, other settings at fastText's defaults
 * unless `extra` adds flags);
 * with `box` it is stopped by `timeout` after that many seconds and only its words/s (and vocabulary) is
 * kept, else its `.vec` is evaluated (unless `evaluate` is false).
 *
 * @example
 * ```ts
 * import { runFastText } from "./peers_runs.ts";
 * // const r = await runFastText("cbow-softmax", { corpus, work, dim: 100, window: 5, epochs: 5,
 * //   minCount: 5, threads: 2, box: 60 }, console.error);
 * ```
 */
export async function runFastText(
  name: FastTextRun,
  p: PeerSettings & { box?: number; output?: string; evaluate?: boolean; extra?: string[] },
  log: (s: string) => void,
): Promise<RunResult> {
  const [model, loss] = name.split("-");
  const output = join(p.work, p.output ?? name);
  const args = [
    model,
    "-input",
    p.corpus,
    "-output",
    output,
    "-dim",
    `${p.dim}`,
    "-ws",
    `${p.window}`,
    "-epoch",
    `${p.epochs}`,
    "-minCount",
    `${p.minCount}`,
    "-thread",
    `${p.threads}`,
    "-loss",
    loss,
    ...(p.extra ?? []),
  ];
  const r = await timed("fasttext", args, { timeoutSeconds: p.box, log });
  const boxed = p.box !== undefined && r.code !== 0; // stopped by `timeout` (124), not finished
  if (r.code !== 0 && p.box === undefined) {
    throw new Error(`fasttext ${name} exited with ${r.code}:\n${r.stderr.slice(-1500)}`);
  }
  const wpt = lastWordsPerSecPerThread(r.stderr);
  const progress = [...r.stderr.matchAll(/Progress:\s*([\d.]+)%/g)].pop()?.[1];
  const res: RunResult = {
    name,
    command: `fasttext ${args.join(" ").replaceAll(p.work + "/", "")}` +
      (p.box ? ` (timeout ${p.box} s)` : ""),
    epochs: boxed ? `${p.epochs} (stopped at ${progress ?? "?"}%)` : `${p.epochs}`,
    wallSeconds: r.wallSeconds,
    wordsPerSecondPerThread: wpt,
    wordsPerSecond: wpt * p.threads,
    peakRssMiB: r.peakRssKiB / 1024,
    boxed,
  };
  const vocabulary = fastTextVocabulary(r.stderr);
  if (vocabulary !== undefined) res.vocabulary = vocabulary;
  if (!boxed && p.evaluate !== false) {
    const ev = await evalVec(`${output}.vec`);
    Object.assign(res, { wordsim: ev.wordsim, simlex: ev.simlex, vocabulary: ev.vocabulary });
  } else if (boxed && progress !== undefined && Number(progress) > 0) {
    res.extra = `full run ≈ ${fmt((r.wallSeconds * 100) / Number(progress) / 60, 3)} min`;
  }
  return res;
}

/**
 * Trains factorout (`pipelines/train.ts`, the factored layer, OPENBLAS_NUM_THREADS = threads) with every
 * setting that fastText also has passed explicitly (the trainer's own defaults differ: dim 200); its
 * published `input.vec` is evaluated when `evaluate` is true.
 *
 * @example
 * ```ts
 * import { runFactorout } from "./peers_runs.ts";
 * // const r = await runFactorout({ corpus, work, dim: 100, window: 5, epochs: 5, minCount: 5, threads: 2,
 * //   tokens: 1e6, mode: "skipgram", loss: "spherical", extra: [], evaluate: true }, console.error);
 * ```
 */
export async function runFactorout(
  p: PeerSettings & {
    tokens: number;
    mode: string;
    loss: string;
    extra: string[];
    evaluate: boolean;
    output?: string;
  },
  log: (s: string) => void,
): Promise<RunResult> {
  const out = join(p.work, p.output ?? "factorout");
  const train = new URL("../pipelines/train.ts", import.meta.url).pathname;
  const args = [
    "run",
    "-A",
    train,
    "--data",
    p.corpus,
    "--mode",
    p.mode,
    "--loss",
    p.loss,
    "--dim",
    `${p.dim}`,
    "--window",
    `${p.window}`,
    "--epochs",
    `${p.epochs}`,
    "--min-count",
    `${p.minCount}`,
    "--threads",
    `${p.threads}`,
    "--out",
    out,
    "--overwrite", // the work folder is reused from one benchmark run to the next
    "--progress",
    "json",
    "--formats",
    p.evaluate ? "vec" : "bin",
    "--eval-dir",
    "none",
    ...p.extra,
  ];
  const r = await timed(Deno.execPath(), args, {
    env: { OPENBLAS_NUM_THREADS: `${p.threads}`, NO_COLOR: "1" },
    log,
  });
  if (r.code !== 0) {
    throw new Error(`factorout train exited with ${r.code}:\n${(r.stderr + r.stdout).slice(-2500)}`);
  }
  // the final JSON line {"event":"summary", training: {seconds, examplesPerSecond, …}, embeddings: {dir}}
  let summary: Record<string, unknown> | undefined;
  for (const line of r.stdout.split("\n")) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    try {
      const j = JSON.parse(t);
      if (j && j.event === "summary") summary = j;
    } catch { /* not JSON */ }
  }
  if (!summary) {
    throw new Error(`factorout train printed no {"event":"summary"} line:\n${r.stdout.slice(-1500)}`);
  }
  const training = summary.training as { seconds: number; examplesPerSecond: number; examples: number };
  const trainSeconds = training.seconds;
  const embDir = (summary.embeddings as { dir?: string } | undefined)?.dir;
  if (!embDir) throw new Error(`factorout train's summary names no embeddings folder under ${out}`);
  // tokens the corpus pipeline read (differs from the text's count only under --limit-tokens)
  let tokens = p.tokens;
  const m = JSON.parse(await Deno.readTextFile(join(embDir, "manifest.json")));
  if (typeof m.corpus?.tokens === "number" && m.corpus.tokens > 0) tokens = m.corpus.tokens;
  const wps = (tokens * p.epochs) / trainSeconds;
  const res: RunResult = {
    name: "factorout",
    command: `deno task train ${args.slice(3).join(" ").replace(out, "<tmp>").replaceAll(p.work + "/", "")}`,
    epochs: `${p.epochs}`,
    wallSeconds: r.wallSeconds,
    trainSeconds,
    wordsPerSecond: wps,
    wordsPerSecondPerThread: wps / p.threads,
    extra: `trainer: ${fmt(training.examplesPerSecond)} examples/s (${
      fmt(training.examples)
    } examples after subsampling)`,
    peakRssMiB: r.peakRssKiB / 1024,
  };
  if (typeof summary.vocabularySize === "number") res.vocabulary = summary.vocabularySize;
  if (p.evaluate) {
    const ev = await evalVec(join(embDir, "input.vec"));
    Object.assign(res, { wordsim: ev.wordsim, simlex: ev.simlex, vocabulary: ev.vocabulary });
  }
  return res;
}

/**
 * The Debian package version of fastText ("unknown" when dpkg cannot tell).
 *
 * @example
 * ```ts
 * import { fastTextVersion } from "./peers_runs.ts";
 * console.log(await fastTextVersion()); // e.g. "0.9.2+ds-1"
 * ```
 */
export async function fastTextVersion(): Promise<string> {
  try {
    const o = await new Deno.Command("dpkg-query", {
      args: ["-W", "-f=${Version}", "fasttext"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    const v = new TextDecoder().decode(o.stdout).trim();
    return o.code === 0 && v ? v : "unknown";
  } catch {
    return "unknown";
  }
}
