/**
 * `deno task bench:quality`: quality against training time, side by side (the paper's Figure 3, right,
 * for the Brown text), written as one block of BENCHMARKS.md (`<!-- bench:quality:start -->` …) with a
 * table and an SVG plot (default docs/quality-brown.svg).
 *
 * On one machine, in one run, at the same dim, window and min-count (and thread count) for every system:
 * - factorout skip-gram, factored output layer, with each `--losses` loss at the trainer's defaults for
 *   that loss (resolved as `deno task train` resolves them), stopped at `--cap-seconds` if not done;
 * - factorout skip-gram, naive O(Dd) output layer, the same loss and flags, stopped at the same cap;
 * - fastText skipgram `-loss softmax`, `-loss ns` and `-loss hs` (`--fasttext`), when `fasttext` and
 *   `/usr/bin/time` are installed (the block says so when not).
 * Each curve's points carry WordSim-353 ρ, SimLex-999 ρ and 3CosAdd analogy accuracy from lib/eval; how
 * the points are taken is in bench/quality_runs.ts and in the block.
 *
 * @module
 */

import { dirname, relative } from "node:path";
import { commaList, type FlagSpec, helpText, parseFlags, positiveInt } from "../lib/core/cli.ts";
import { exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { UsageError } from "../lib/core/errors.ts";
import { defaultEvalDir } from "../lib/eval/report.ts";
import { createBackend } from "../lib/linalg/select.ts";
import { writeFileAtomic } from "../lib/core/atomic.ts";
import { ensureBrownText } from "./peers_corpus.ts";
import { fastTextVersion } from "./peers_runs.ts";
import {
  type Curve,
  type CurvePoint,
  factoroutCurve,
  fastTextEpochCurve,
  fastTextSoftmaxCurve,
  type QualitySettings,
} from "./quality_runs.ts";
import { qualitySvg } from "./quality_plot.ts";
import { fmt, machineInfo, scratchFolder, stampBlock, table, writeBlocks } from "./report.ts";

const LOSSES = ["spherical", "taylor", "squared", "zloss"];
const FASTTEXT = ["softmax", "ns", "hs"];

/**
 * A score measured on under this fraction of its set's pairs is left out of the plot (it stays in the
 * tables): fastText softmax's few-thousand-token prefix scores ±1 on a handful of pairs, which only stretches
 * the axis.
 */
const MIN_PLOTTED_COVERAGE = 0.2;

/** The curve with its poorly covered scores removed, for the plot. */
function plotted(c: Curve): Curve {
  const keep = (v: number | undefined, cov: number | undefined) =>
    cov === undefined || cov >= MIN_PLOTTED_COVERAGE ? v : undefined;
  return {
    ...c,
    points: c.points.map((p) => ({
      ...p,
      wordsim: keep(p.wordsim, p.coverage?.wordsim),
      simlex: keep(p.simlex, p.coverage?.simlex),
    })),
  };
}

/** Settings `--quick` changes (a flag given explicitly wins): a smoke run of well under a minute. */
const FULL = { cap: 60, points: 8, ftEpochs: "1,2,5", probe: 20 };
const QUICK = { cap: 3, points: 3, ftEpochs: "1", probe: 2 };
// fastText's default 2M hash buckets make every .bin ~800 MB; the quick run keeps it small
const QUICK_FASTTEXT = ["-bucket", "10000", "-minn", "0", "-maxn", "0"];

/** The plot's default path, linked from the block in BENCHMARKS.md. */
const DEFAULT_SVG = "docs/quality-brown.svg";

const FLAGS: Record<string, FlagSpec> = {
  corpus: {
    type: "string",
    help: "the text to train on (the Brown text, written by bench/peers_corpus.ts if absent)",
    default: "data/generated/brown.txt",
  },
  dim: { type: "string", help: "embedding dimension of every system", default: "100" },
  window: { type: "string", help: "context window of every system", default: "5" },
  "min-count": { type: "string", help: "minimum word count of every system", default: "5" },
  threads: { type: "string", help: "threads for fastText and OpenBLAS", default: "2" },
  "cap-seconds": {
    type: "string",
    help: `wall-time cap of each factorout run (default ${FULL.cap}; --quick ${QUICK.cap})`,
  },
  points: {
    type: "string",
    help: `time marks per factorout run, cap/2^k (default ${FULL.points}; --quick ${QUICK.points})`,
  },
  losses: { type: "string", help: "factorout losses, comma-separated", default: LOSSES.join(",") },
  outputs: { type: "string", help: "factorout output layers: factored,naive", default: "factored,naive" },
  fasttext: {
    type: "string",
    help: `fastText skipgram losses among ${FASTTEXT.join(",")}, or none`,
    default: FASTTEXT.join(","),
  },
  "fasttext-epochs": {
    type: "string",
    help: `-epoch values of the ns and hs runs (default ${FULL.ftEpochs}; --quick ${QUICK.ftEpochs})`,
  },
  "softmax-probe-seconds": {
    type: "string",
    help: `time box of the softmax speed probe (default ${FULL.probe}; --quick ${QUICK.probe})`,
  },
  "train-args": {
    type: "string",
    help:
      "extra flags for every factorout run, space-separated (e.g. '--epochs 10'; not one the benchmark sets: --dim, --window, --min-count, … are its own flags)",
    default: "",
  },
  "eval-dir": { type: "string", help: "word-similarity/analogy sets (default: lib/eval's)" },
  quick: {
    type: "boolean",
    help: "a tiny run (for tests): short cap, few points, small fastText",
    default: false,
  },
  note: {
    type: "string",
    help: "a sentence added to the block (e.g. that the machine was shared)",
    default: "",
  },
  out: { type: "string", help: "the markdown file", default: "BENCHMARKS.md" },
  svg: {
    type: "string",
    help: `the plot (default ${DEFAULT_SVG}; with --no-write, none unless --svg is given)`,
  },
  "no-write": {
    type: "boolean",
    help: "print the block instead of writing the markdown file, and write no plot unless --svg is given",
    default: false,
  },
  work: {
    type: "string",
    help:
      "scratch folder: each run works in its own <work>.<pid>-<random>.tmp beside it, removed at the end " +
      "(after a kill, by the next run)",
    default: ".bench-tmp/quality",
  },
  keep: {
    type: "boolean",
    help: "keep the scratch folder (renamed to <work>.<pid>-<random>)",
    default: false,
  },
  help: { type: "boolean", short: "h", help: "show this help", default: false },
};

const cell = (x: number | undefined, cov?: number, digits = 3) =>
  x === undefined || !Number.isFinite(x)
    ? "—"
    : `${x.toFixed(digits)}${cov === undefined ? "" : ` (${(100 * cov).toFixed(0)}%)`}`;

/** The point with the highest WordSim-353 ρ (undefined when none has one). */
function bestOf(c: Curve): CurvePoint | undefined {
  return c.points.filter((p) => Number.isFinite(p.wordsim)).sort((a, b) => b.wordsim! - a.wordsim!)[0];
}

/**
 * The markdown of the block (without its stamp): the plot, how it was measured, the summary table (one
 * row per system), every point, the commands.
 *
 * @example
 * ```ts
 * import { qualityMarkdown } from "./quality.ts";
 * const md = qualityMarkdown([], { corpusName: "brown.txt", svgLink: "docs/quality-brown.svg", intro: "", notes: [] });
 * ```
 */
export function qualityMarkdown(
  curves: Curve[],
  o: { corpusName: string; svgLink: string; intro: string; notes: string[] },
): string {
  const rows = curves.map((c) => {
    const last = c.points.at(-1), best = bestOf(c);
    return [
      c.label,
      last ? fmt(last.seconds, 3) : "—",
      last?.progress ?? "—",
      cell(last?.wordsim, last?.coverage?.wordsim),
      cell(last?.simlex, last?.coverage?.simlex),
      cell(last?.analogy, last?.coverage?.analogy),
      best ? `${best.wordsim!.toFixed(3)} at ${fmt(best.seconds, 3)} s` : "—",
      c.note,
    ];
  });
  const every = curves.flatMap((c) =>
    c.points.map((p) => [
      c.label,
      fmt(p.seconds, 3),
      p.progress,
      cell(p.wordsim, p.coverage?.wordsim),
      cell(p.simlex, p.coverage?.simlex),
      cell(p.analogy, p.coverage?.analogy),
    ])
  );
  return [
    `### Quality against training time (${o.corpusName})`,
    "",
    `![WordSim-353 and SimLex-999 ρ against training seconds, one line per system](${o.svgLink})`,
    "",
    o.intro,
    "",
    table([
      "system",
      "last point, s",
      "progress",
      "WordSim-353 ρ",
      "SimLex-999 ρ",
      "analogy acc.",
      "best WordSim-353",
      "note",
    ], rows),
    "",
    ...(o.notes.length ? [...o.notes.map((n) => `- ${n}`), ""] : []),
    "<details><summary>every point</summary>",
    "",
    table(["system", "s", "progress", "WordSim-353 ρ", "SimLex-999 ρ", "analogy acc."], every),
    "",
    "</details>",
    "",
    "Commands:",
    "",
    ...curves.map((c) => `- ${c.label}: \`${c.command}\``),
  ].join("\n");
}

async function installed(cmd: string): Promise<boolean> {
  try {
    const o = await new Deno.Command("sh", {
      args: ["-c", `command -v ${cmd}`],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return o.code === 0;
  } catch {
    return false;
  }
}

/** The command: flags → runs → plot, block. */
async function main(): Promise<void> {
  const f = parseFlags(Deno.args, FLAGS);
  if (f.help) {
    console.log(helpText("npx deno task bench:quality [flags]", FLAGS, exitCodesHelp("locked")));
    return;
  }
  const started = performance.now();
  const quick = f.quick === true;
  const dflt = quick ? QUICK : FULL;
  const p: QualitySettings = {
    corpus: f.corpus as string,
    work: f.work as string,
    dim: positiveInt("--dim", f.dim),
    window: positiveInt("--window", f.window),
    minCount: positiveInt("--min-count", f["min-count"]),
    threads: positiveInt("--threads", f.threads),
    ...(typeof f["eval-dir"] === "string" ? { evalDir: f["eval-dir"] } : {}),
  };
  const cap = positiveInt("--cap-seconds", f["cap-seconds"] ?? String(dflt.cap));
  const points = positiveInt("--points", f.points ?? String(dflt.points));
  const probe = positiveInt("--softmax-probe-seconds", f["softmax-probe-seconds"] ?? String(dflt.probe));
  const ftEpochs = commaList(f["fasttext-epochs"] ?? dflt.ftEpochs).map((e) =>
    positiveInt("--fasttext-epochs", e)
  );
  const losses = commaList(f.losses);
  for (const l of losses) {
    if (!LOSSES.includes(l)) throw new UsageError(`--losses: unknown loss "${l}"; use ${LOSSES.join(",")}`);
  }
  const outputs = commaList(f.outputs) as ("factored" | "naive")[];
  for (const o of outputs) {
    if (o !== "factored" && o !== "naive") {
      throw new UsageError(`--outputs: unknown "${o}"; use factored,naive`);
    }
  }
  const ftWanted = f.fasttext === "none" ? [] : commaList(f.fasttext);
  for (const l of ftWanted) {
    if (!FASTTEXT.includes(l)) {
      throw new UsageError(`--fasttext: unknown "${l}"; use ${FASTTEXT.join(",")} or none`);
    }
  }
  if (losses.length * outputs.length + ftWanted.length === 0) {
    throw new UsageError("--losses/--outputs/--fasttext leave nothing to run");
  }
  const extra = (f["train-args"] as string).split(/\s+/).filter(Boolean);
  const evalDir = p.evalDir ?? defaultEvalDir();
  try {
    await Deno.stat(`${evalDir}/wordsim353.tsv`);
  } catch {
    throw new UsageError(
      `--eval-dir ${evalDir}: no wordsim353.tsv there; give the folder of the evaluation sets`,
    );
  }
  // before OpenBLAS is first opened (the analogy search, the output layers): every run uses `threads`
  Deno.env.set("OPENBLAS_NUM_THREADS", String(p.threads));
  const log = (s: string) => console.error(`[bench:quality] ${s}`);
  const corpus = await ensureBrownText(p.corpus);
  log(
    `${corpus.path}: ${corpus.lines} sentences, ${corpus.tokens} tokens${
      corpus.created ? " (written now)" : ""
    }`,
  );
  const notes: string[] = [];
  let ftOk = ftWanted.length > 0;
  if (ftOk) {
    const missing = [];
    if (!(await installed("fasttext"))) missing.push("fasttext (apt-get install fasttext)");
    try {
      await Deno.stat("/usr/bin/time");
    } catch {
      missing.push("/usr/bin/time (apt-get install time)");
    }
    if (missing.length) {
      ftOk = false;
      notes.push(`fastText runs skipped: ${missing.join(" and ")} not installed.`);
      log(notes.at(-1)!);
    }
  }
  // its own scratch folder: two runs at once must not share (and remove) one
  const scratch = await scratchFolder(p.work, log);
  p.work = scratch.path;
  const la = await createBackend("auto", { log });
  p.backend = la;
  const curves: Curve[] = [];
  try {
    for (const output of outputs) {
      for (const loss of losses) {
        log(`factorout ${output} ${loss}: training (cap ${cap} s)`);
        curves.push(await factoroutCurve(p, { loss, output, capSeconds: cap, points, extra }, log));
      }
    }
    if (ftOk) {
      const ftExtra = quick ? QUICK_FASTTEXT : [];
      for (const loss of ftWanted) {
        log(`fastText -loss ${loss}`);
        try {
          curves.push(
            loss === "softmax"
              ? await fastTextSoftmaxCurve(
                p,
                { probeSeconds: probe, targetSeconds: cap * 0.8, tokens: corpus.tokens },
                ftExtra,
                log,
              )
              : await fastTextEpochCurve(p, loss as "ns" | "hs", ftEpochs, corpus.tokens, ftExtra, log),
          );
        } catch (e) {
          // one peer failing must not cost the curves already measured: it is listed with the reason
          const why = (e as Error).message.split("\n")[0];
          log(`fastText -loss ${loss} failed: ${why}`);
          curves.push({
            label: `fastText -loss ${loss}`,
            kind: "fasttext",
            loss,
            points: [],
            command: `fasttext skipgram -loss ${loss}`,
            note: `failed: ${why}`,
          });
        }
      }
    }
  } finally {
    la.close();
    const kept = await scratch.done(f.keep === true);
    if (kept) log(`kept the scratch folder ${kept}`);
  }
  for (const c of curves) {
    const last = c.points.at(-1);
    log(
      `${c.label}: ${c.points.length} points; last ${last ? fmt(last.seconds) : "—"} s, WS-353 ${
        cell(last?.wordsim)
      }`,
    );
  }
  const settings = `dim ${p.dim}, window ${p.window}, min-count ${p.minCount}, ${p.threads} threads`;
  // --no-write writes nothing into the repository: the plot only where --svg names a place for it
  const svgPath = typeof f.svg === "string" ? f.svg : DEFAULT_SVG;
  if (typeof f.svg === "string" || !f["no-write"]) {
    await Deno.mkdir(dirname(svgPath), { recursive: true });
    await writeFileAtomic(svgPath, async (write) => {
      await write(qualitySvg(curves.map(plotted), {
        title: `Word-similarity quality against training time: ${corpus.path.split("/").pop()}`,
        subtitle: `${corpus.tokens.toLocaleString("en-US")} tokens, skip-gram, ${settings}; ` +
          `factorout ${cap} s cap per run; ${new Date().toISOString().slice(0, 10)}`,
      }));
    });
    log(`wrote ${svgPath}`);
  } else log(`--no-write: ${svgPath} not written (give --svg PATH for the plot)`);
  const minutes = (performance.now() - started) / 60000;
  const prepared = Math.max(0, ...curves.map((c) => c.prepareSeconds ?? 0));
  const fo = quick ? " (--quick: fastText without subwords, -bucket 10000)" : "";
  const intro = [
    `Corpus: \`${corpus.path}\` (${corpus.lines} sentences, ${corpus.tokens} tokens). Every system: skip-gram, ` +
    `${settings}. Scores from lib/eval on the vectors at each point: WordSim-353 and SimLex-999 Spearman ρ, ` +
    `3CosAdd analogy accuracy (questions-words); coverage in brackets.`,
    `factorout: the trainer's defaults for each loss (the flags of the \`deno task train\` commands below, ` +
    `resolved as the CLI resolves them), factored and naive output layer; each run stops at ${cap} s. Its time ` +
    `axis is the training clock (building the trainer + training, its epoch-end validation passes included; ` +
    `the corpus was prepared once beforehand, ${fmt(prepared, 2)} s, not on the clock); the input vectors ` +
    `are copied at ${points} time marks (${cap} s / 2^k) and at the end, and scored after the run.`,
    ftOk
      ? `fastText ${await fastTextVersion()}${fo}: ns and hs, one complete run per -epoch value; softmax, a ` +
        `${probe} s probe for its speed then one complete -epoch 1 run over as much of the text as it trains in ` +
        `≈ ${
          fmt(cap * 0.8)
        } s. fastText's seconds are each run's wall time (reading the text and writing the ` +
        `vectors included), its other settings its defaults.`
      : "fastText: not run.",
    `The whole benchmark took ${fmt(minutes, 3)} min (scoring included).`,
  ];
  if (typeof f.note === "string" && f.note) intro.push(f.note);
  const mdOut = f.out as string;
  const body = qualityMarkdown(curves, {
    corpusName: corpus.path.split("/").pop()!,
    svgLink: relative(dirname(mdOut), svgPath),
    intro: intro.join(" "),
    notes,
  });
  const command = `deno task bench:quality${Deno.args.length ? " " + Deno.args.join(" ") : ""}`;
  const block = stampBlock("quality", body, command, machineInfo(), new Date());
  if (f["no-write"]) console.log(block);
  else {
    await writeBlocks(mdOut, [["quality", block]]);
    log(`wrote the quality block of ${mdOut}`);
  }
}

if (import.meta.main) await runCommand("bench:quality", main);
