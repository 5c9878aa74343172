/**
 * The synthetic part of `deno task bench:peers`: a Zipf text over a 200,000-word vocabulary (written by
 * `deno task corpus --synthetic … --synthetic-text FILE`, lib/io/synthetic.ts), fastText
 * `cbow -loss softmax` time-boxed on it (its words/s from the progress line: fastText builds its
 * vocabulary first, so not from wall time), factorout's trainer on the same text with the same dim,
 * window, min-count and threads, and the ratio against the target (≥ 1,000×).
 *
 * @module
 */

import { join } from "node:path";
import { fmt, table } from "./report.ts";
import { type PeerSettings, runFactorout, runFastText, type RunResult, timed } from "./peers_runs.ts";

/**
 * The synthetic part's settings (flags `--synthetic-*` of bench/peers.ts).
 *
 * @example
 * ```ts
 * import type { SyntheticSettings } from "./peers_synthetic.ts";
 * const s: SyntheticSettings = { vocab: 200_000, tokens: 2_500_000, minCount: 1, seed: 1, softmaxSeconds: 60,
 *   epochs: 1, wantVocabulary: 150_000 };
 * ```
 */
export type SyntheticSettings = {
  /** --synthetic-vocab: the generator's vocabulary V */
  vocab: number;
  /** --synthetic-tokens: tokens of the text */
  tokens: number;
  /** --synthetic-min-count: the min-count of both tools on this text */
  minCount: number;
  /** --synthetic-seed */
  seed: number;
  /** --synthetic-softmax-seconds: fastText's time box */
  softmaxSeconds: number;
  /** --synthetic-epochs: factorout's epochs (fastText's -epoch too: it only sets its lr schedule) */
  epochs: number;
  /** the vocabulary the part should reach (a warning in the block below it) */
  wantVocabulary: number;
};

/** What the text holds: tokens, lines, distinct words, words reaching min-count. */
export type SyntheticText = {
  path: string;
  command: string;
  tokens: number;
  lines: number;
  distinct: number;
  kept: number;
  seconds: number;
};

/** The synthetic part's measurements. */
export type SyntheticResult = {
  settings: SyntheticSettings;
  dim: number;
  window: number;
  text: SyntheticText;
  fastText: RunResult;
  factorout: RunResult;
  seconds: number;
};

/**
 * Writes the synthetic text with `deno task corpus` and counts its tokens, lines, distinct words and
 * the words with at least `minCount` occurrences.
 *
 * @example
 * ```ts
 * import { writeSyntheticText } from "./peers_synthetic.ts";
 * // const t = await writeSyntheticText("/tmp/zipf.txt", { vocab: 1000, tokens: 10000, minCount: 1, seed: 1,
 * //   softmaxSeconds: 5, epochs: 1, wantVocabulary: 0 }, console.error);
 * ```
 */
export async function writeSyntheticText(
  path: string,
  s: SyntheticSettings,
  log: (line: string) => void,
): Promise<SyntheticText> {
  const t0 = performance.now();
  const corpus = new URL("../pipelines/corpus.ts", import.meta.url).pathname;
  const flags = [
    "--synthetic",
    "--synthetic-vocab",
    `${s.vocab}`,
    "--synthetic-tokens",
    `${s.tokens}`,
    "--seed",
    `${s.seed}`,
    "--synthetic-text",
    path,
  ];
  const r = await timed(Deno.execPath(), ["run", "-A", corpus, ...flags], { log });
  if (r.code !== 0) throw new Error(`deno task corpus exited with ${r.code}:\n${r.stderr.slice(-1500)}`);
  const counts = new Map<string, number>();
  let tokens = 0, lines = 0;
  for (const line of (await Deno.readTextFile(path)).split("\n")) {
    if (line.length === 0) continue;
    lines++;
    for (const w of line.split(" ")) {
      tokens++;
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  let kept = 0;
  for (const c of counts.values()) if (c >= s.minCount) kept++;
  return {
    path,
    command: `deno task corpus ${flags.join(" ").replace(path, "<tmp>/synthetic.txt")}`,
    tokens,
    lines,
    distinct: counts.size,
    kept,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * Runs the synthetic part: the text, fastText `cbow -loss softmax` (time-boxed), factorout (the same
 * mode and loss as the Brown part, `epochs` epochs).
 *
 * @example
 * ```ts
 * import { runSynthetic } from "./peers_synthetic.ts";
 * // const r = await runSynthetic({ work, dim: 100, window: 5, threads: 2 }, settings,
 * //   { mode: "skipgram", loss: "spherical", extra: [] }, console.error);
 * ```
 */
export async function runSynthetic(
  p: Pick<PeerSettings, "work" | "dim" | "window" | "threads">,
  s: SyntheticSettings,
  fo: { mode: string; loss: string; extra: string[] },
  log: (line: string) => void,
): Promise<SyntheticResult> {
  const t0 = performance.now();
  const work = join(p.work, "synthetic");
  await Deno.mkdir(work, { recursive: true });
  const text = await writeSyntheticText(join(work, "synthetic.txt"), s, log);
  log(
    `synthetic text: ${text.tokens} tokens, ${text.lines} lines, ${text.distinct} distinct words, ` +
      `${text.kept} with ≥ ${s.minCount} occurrences (${fmt(text.seconds)} s)`,
  );
  const common: PeerSettings = {
    corpus: text.path,
    work,
    dim: p.dim,
    window: p.window,
    epochs: s.epochs,
    minCount: s.minCount,
    threads: p.threads,
  };
  log("running synthetic cbow-softmax");
  const fastText = await runFastText(
    "cbow-softmax",
    { ...common, box: s.softmaxSeconds, evaluate: false, output: "ft-softmax" },
    log,
  );
  log(
    `synthetic cbow-softmax: ${fmt(fastText.wordsPerSecond)} words/s, vocabulary ${
      fastText.vocabulary ?? "?"
    }`,
  );
  log("running synthetic factorout");
  const factorout = await runFactorout(
    { ...common, tokens: text.tokens, ...fo, evaluate: false, output: "factorout" },
    log,
  );
  log(
    `synthetic factorout: ${fmt(factorout.wordsPerSecond)} words/s (train ${
      fmt(factorout.trainSeconds ?? NaN)
    } s), vocabulary ${factorout.vocabulary ?? "?"}`,
  );
  return {
    settings: s,
    dim: p.dim,
    window: p.window,
    text,
    fastText,
    factorout,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * The synthetic part's markdown: the corpus, a table of both runs, the ratio against ≥ 1,000×.
 *
 * @example
 * ```ts
 * import { syntheticMarkdown } from "./peers_synthetic.ts";
 * // console.log(syntheticMarkdown(result, 2));
 * ```
 */
export function syntheticMarkdown(r: SyntheticResult, threads: number): string {
  const { settings: s, text } = r;
  const row = (x: RunResult, label: string) => [
    label,
    x.epochs,
    x.vocabulary !== undefined ? int(x.vocabulary) : "—",
    fmt(x.wallSeconds, 3) + (x.trainSeconds !== undefined ? ` (train ${fmt(x.trainSeconds, 3)})` : ""),
    fmt(x.wordsPerSecondPerThread, 3),
    fmt(x.wordsPerSecond, 3),
    fmt(x.peakRssMiB, 3),
    x.extra ?? "",
  ];
  const ratio = r.factorout.wordsPerSecond / r.fastText.wordsPerSecond;
  const out = [
    `### Synthetic ${int(s.vocab)}-word Zipf corpus`,
    "",
    `Text: \`${text.command}\` (lib/io/synthetic.ts: P(rank r) ∝ 1/(r+1), sentences of 5–30 words): ` +
    `${int(text.tokens)} tokens, ${int(text.lines)} lines, ${int(text.distinct)} distinct words, ` +
    `**${int(text.kept)} with ≥ ${s.minCount} occurrences** (min-count ${s.minCount} for both tools). ` +
    `dim ${r.dim}, window ${r.window}, ${threads} threads for both. fastText's vocabulary counts its ` +
    `end-of-line token \`</s>\` too. fastText \`cbow -loss softmax\` is stopped after ` +
    `${s.softmaxSeconds} s; its words/s is the last progress line's (it counts from the end of its vocabulary ` +
    `pass, not from the start of the process). factorout trains ${s.epochs} epoch(s): corpus tokens × epochs ÷ ` +
    `training seconds (corpus preparation and export excluded; the epoch-end checkpoint included).`,
    "",
    table(
      [
        "run",
        "epochs",
        "vocab (after min-count)",
        "wall s",
        "words/s/thread",
        "words/s",
        "peak RSS MiB",
        "note",
      ],
      [
        row(r.fastText, "fastText cbow -loss softmax (time-boxed)"),
        row(r.factorout, `**factorout** (exact, factored; ${modeOf(r.factorout.command)})`),
      ],
    ),
    "",
    `- factorout words/s ÷ fastText cbow -loss softmax words/s = **${fmt(ratio, 4)}×** (target ≥ 1,000×: ${
      ratio >= 1000 ? "met" : "not met"
    })`,
  ];
  const vocabs = [r.fastText.vocabulary, r.factorout.vocabulary].filter((v) => v !== undefined) as number[];
  if (vocabs.some((v) => v < s.wantVocabulary)) {
    out.push(
      `- **warning**: a vocabulary below ${int(s.wantVocabulary)} words (${
        vocabs.map(int).join(" / ")
      }): raise --synthetic-tokens`,
    );
  }
  out.push(
    `- part time: ${fmt(r.seconds, 3)} s (text ${fmt(text.seconds, 3)} s)`,
    "",
    "Commands:",
    "",
    `- \`${text.command}\``,
    `- \`${r.fastText.command}\``,
    `- \`${r.factorout.command}\``,
  );
  return out.join("\n");
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");

function modeOf(command: string): string {
  const mode = /--mode (\S+)/.exec(command)?.[1] ?? "?";
  const loss = /--loss (\S+)/.exec(command)?.[1] ?? "?";
  return `${mode}, ${loss}`;
}
