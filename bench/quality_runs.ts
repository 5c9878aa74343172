/**
 * The runs of `deno task bench:quality`, each giving a curve of quality against training seconds.
 *
 * - factorout (in this process, through the trainer's own pieces: {@link parseTrainArgs} resolves the
 *   flags exactly as `deno task train` does, so every per-loss default of the trainer applies): the
 *   reader handed to the {@link Trainer} copies the input embeddings at geometric time marks
 *   (cap·2^-k) and ends the stream at the wall-time cap; the copies are scored after the run, off the
 *   clock. The clock starts before the trainer is built and does not count the copies.
 * - fastText `-loss ns` and `-loss hs` (skipgram): one complete run per `-epoch` value, its wall time the
 *   point's seconds (fastText writes no intermediate vectors).
 * - fastText `-loss softmax` (skipgram): a time-boxed probe measures its words/s; then one complete
 *   `-epoch 1` run over the first lines of the text, as many tokens as it reads in ≈ the cap.
 *
 * @module
 */

import { join } from "node:path";
import { DivergenceError } from "../lib/core/errors.ts";
import type { LinAlgBackend } from "../lib/linalg/backend.ts";
import { parseTrainArgs } from "../lib/train/cli.ts";
import { openReader } from "../lib/train/defaults.ts";
import { resolveData } from "../lib/train/run_data.ts";
import { type OpenReader, Trainer } from "../lib/train/trainer.ts";
import { evalVec, runFastText, scoreVectors } from "./peers_runs.ts";
import type { QualityPoint, QualitySeries } from "./quality_plot.ts";
import { fmt } from "./report.ts";

/** A score with the fraction of the set it covers. */
export type Covered = { value: number; coverage: number };

/**
 * One point of a curve: seconds, the three scores (with coverage), and how far the run had got.
 *
 * @example
 * ```ts
 * import type { CurvePoint } from "./quality_runs.ts";
 * const p: CurvePoint = { seconds: 3, wordsim: 0.2, progress: "0.4 epochs" };
 * ```
 */
export type CurvePoint = QualityPoint & {
  /** "0.4 epochs", "-epoch 2", "12% of the text, 1 epoch" */
  progress: string;
  coverage?: { wordsim?: number; simlex?: number; analogy?: number };
};

/**
 * A system's curve: the plotted series plus the command it stands for and a note (why it stopped).
 *
 * @example
 * ```ts
 * import type { Curve } from "./quality_runs.ts";
 * const c: Curve = { label: "x", kind: "factored", loss: "spherical", points: [], command: "deno task train", note: "" };
 * ```
 */
export type Curve = Omit<QualitySeries, "points"> & {
  points: CurvePoint[];
  command: string;
  note: string;
  vocabulary?: number;
  /** factorout: seconds spent preparing the corpus before the clock started (≈ 0 when reused) */
  prepareSeconds?: number;
};

/** Settings every run shares. */
export type QualitySettings = {
  corpus: string;
  work: string;
  dim: number;
  window: number;
  minCount: number;
  threads: number;
  evalDir?: string;
  /** the analogy search's backend, shared by every scoring */
  backend?: LinAlgBackend;
};

type Scores = Awaited<ReturnType<typeof scoreVectors>>;

function pointOf(seconds: number, progress: string, s: Scores): CurvePoint {
  return {
    seconds,
    progress,
    wordsim: s.wordsim?.rho,
    simlex: s.simlex?.rho,
    analogy: s.analogy?.accuracy,
    coverage: { wordsim: s.wordsim?.coverage, simlex: s.simlex?.coverage, analogy: s.analogy?.coverage },
  };
}

/**
 * The time marks at which a capped run is sampled: `points` marks ending at `cap`, each twice the one
 * before (even spacing on the plot's log axis).
 *
 * @example
 * ```ts
 * import { timeMarks } from "./quality_runs.ts";
 * timeMarks(60, 4); // [7.5, 15, 30, 60]
 * ```
 */
export function timeMarks(cap: number, points: number): number[] {
  return Array.from({ length: points }, (_, k) => cap / 2 ** (points - 1 - k));
}

/**
 * Trains factorout skip-gram with `loss` and `output` (factored or naive) at the trainer's defaults for
 * everything but dim, window and min-count, stopped at `capSeconds`; returns its curve. A divergence ends
 * the curve at its last good point, with the trainer's message in the note.
 *
 * @example
 * ```ts
 * import { factoroutCurve } from "./quality_runs.ts";
 * // const c = await factoroutCurve({ corpus, work, dim: 100, window: 5, minCount: 5, threads: 2 },
 * //   { loss: "spherical", output: "factored", capSeconds: 60, points: 8, extra: [] }, console.error);
 * ```
 */
export async function factoroutCurve(
  p: QualitySettings,
  run: { loss: string; output: "factored" | "naive"; capSeconds: number; points: number; extra: string[] },
  log: (line: string) => void,
): Promise<Curve> {
  const flags = [
    "--data",
    p.corpus,
    "--mode",
    "skipgram",
    "--loss",
    run.loss,
    "--output",
    run.output,
    "--dim",
    `${p.dim}`,
    "--window",
    `${p.window}`,
    "--min-count",
    `${p.minCount}`,
    "--threads",
    `${p.threads}`,
    ...run.extra,
  ];
  // one run folder for every factorout run: the prepared corpus is shared (resolveData reuses it)
  const args = await parseTrainArgs([...flags, "--out", join(p.work, "factorout")]);
  const config = args.config;
  const tPrep = performance.now();
  const data = await resolveData(config, log);
  const prepSeconds = (performance.now() - tPrep) / 1000;
  const rows = data.manifest.rows;
  const marks = timeMarks(run.capSeconds, run.points);
  const snaps: { seconds: number; progress: string; vectors: Float32Array }[] = [];
  let trainer: Trainer | undefined, next = 0, paused = 0, stoppedAt: number | undefined, stoppedAfter = "";
  const t0 = performance.now();
  const clock = () => (performance.now() - t0) / 1000 - paused;
  const epochsDone = () => `${fmt((trainer?.runProgress?.examples ?? 0) / rows, 2)} epochs`;
  const reader: OpenReader = async function* (paths, o) {
    for await (const b of openReader(paths, o)) {
      const t = clock();
      if (t >= run.capSeconds) {
        stoppedAt = t;
        stoppedAfter = epochsDone(); // the trainer counts a stopped run as complete once it returns
        return;
      }
      if (next < marks.length && t >= marks[next] && trainer) {
        const s0 = performance.now();
        snaps.push({ seconds: t, progress: epochsDone(), vectors: Float32Array.from(trainer.model.bag.E) });
        while (next < marks.length && marks[next] <= t) next++;
        paused += (performance.now() - s0) / 1000;
      }
      yield b;
    }
  };
  const label = `factorout ${run.output} ${run.loss}`;
  let note = "";
  let words: string[] = [];
  try {
    trainer = await Trainer.create({
      config,
      vocab: { words: data.words, counts: data.counts },
      openReader: reader,
      log: (l) => log(`  ${l}`),
    });
    words = [...trainer.vocab.words];
    try {
      const summary: Record<string, unknown> = await trainer.train({ paths: [data.dir], rows });
      const end = stoppedAt ?? clock();
      const progress = stoppedAt !== undefined ? stoppedAfter : `${config.epochs} epochs`;
      // the vectors the job would publish (a trainer that keeps its best epoch ends holding that one)
      snaps.push({ seconds: end, progress, vectors: (await trainer.embeddings()).input });
      note = stoppedAt !== undefined
        ? `stopped at the ${run.capSeconds} s cap after ${stoppedAfter} of ${config.epochs}`
        : `finished ${config.epochs} epochs`;
      for (const k of ["keptEpoch", "backoffs"]) {
        if (typeof summary[k] === "number") note += `; ${k} ${summary[k]}`;
      }
    } catch (e) {
      if (!(e instanceof DivergenceError)) throw e;
      // the trainer's message names the step, epoch and lr first; the rest is the layer's detail
      note = `diverged: ${/^training diverged at step \d+ \([^)]*\)/.exec(e.message)?.[0] ?? e.message}`;
    }
  } finally {
    trainer?.close();
  }
  log(`${label}: ${note}; scoring ${snaps.length} snapshots`);
  const points: CurvePoint[] = [];
  for (const s of snaps) {
    const sc = await scoreVectors(words, s.vectors, config.dim, {
      evalDir: p.evalDir,
      analogies: true,
      ...(p.backend ? { backend: p.backend } : {}),
    });
    points.push(pointOf(s.seconds, s.progress, sc));
  }
  const c = config;
  return {
    label,
    kind: run.output,
    loss: run.loss,
    points,
    command: `deno task train ${flags.join(" ")}` +
      ` (resolved: --lr ${c.lr} --lr-min ${c.lrMin} --lr-input-scale ${c.lrInputScale} --schedule ${c.schedule}` +
      ` --epochs ${c.epochs} --batch ${c.batch})`,
    note,
    prepareSeconds: prepSeconds,
    vocabulary: words.length,
  };
}

/**
 * fastText skipgram `-loss ns|hs`: one complete run per value of `epochs`, each scored; the point's
 * seconds is the run's wall time (reading the text, training, writing .bin and .vec); its progress cell
 * adds the training seconds alone, `tokens` × epochs ÷ fastText's own words/s.
 *
 * @example
 * ```ts
 * import { fastTextEpochCurve } from "./quality_runs.ts";
 * // const c = await fastTextEpochCurve(settings, "ns", [1, 2, 5], 1013319, [], console.error);
 * ```
 */
export async function fastTextEpochCurve(
  p: QualitySettings,
  loss: "ns" | "hs",
  epochs: number[],
  tokens: number,
  extra: string[],
  log: (line: string) => void,
): Promise<Curve> {
  const points: CurvePoint[] = [];
  let command = "", vocabulary: number | undefined;
  for (const e of epochs) {
    const output = `skipgram-${loss}-e${e}`;
    const r = await runFastText(
      `skipgram-${loss}`,
      { ...p, epochs: e, output, evaluate: false, extra },
      log,
    );
    const s = await scoreFile(p, join(p.work, output));
    // its training alone, by its own words/s (the rest of the wall time: reading the text, writing ~800 MB)
    const train = (tokens * e) / r.wordsPerSecond;
    points.push(pointOf(r.wallSeconds, `-epoch ${e} (training ≈ ${fmt(train, 2)} s)`, s));
    command = r.command.replace(/-epoch \d+/, `-epoch ${epochs.join("|")}`);
    vocabulary = s.vocabulary;
  }
  return {
    label: `fastText -loss ${loss}`,
    kind: "fasttext",
    loss,
    points,
    command,
    note: `one complete run per -epoch (${epochs.join(", ")}); seconds = each run's wall time`,
    ...(vocabulary === undefined ? {} : { vocabulary }),
  };
}

/**
 * fastText skipgram `-loss softmax`, O(D·d) per example: a probe stopped by `timeout` after
 * `probeSeconds` gives its words/s, then one complete `-epoch 1` run reads the first lines of the text,
 * as many tokens as it trains in `targetSeconds` at that rate (its vocabulary is that prefix's).
 *
 * @example
 * ```ts
 * import { fastTextSoftmaxCurve } from "./quality_runs.ts";
 * // const c = await fastTextSoftmaxCurve(settings, { probeSeconds: 20, targetSeconds: 50, tokens: 1e6 }, [], console.error);
 * ```
 */
export async function fastTextSoftmaxCurve(
  p: QualitySettings,
  o: { probeSeconds: number; targetSeconds: number; tokens: number },
  extra: string[],
  log: (line: string) => void,
): Promise<Curve> {
  // the box must outlast reading the text (two passes) before the first progress line: doubled once if not
  let probe;
  for (let box = o.probeSeconds;; box *= 2) {
    try {
      probe = await runFastText(
        "skipgram-softmax",
        { ...p, epochs: 1, box, output: "softmax-probe", evaluate: false, extra },
        log,
      );
      break;
    } catch (e) {
      if (box > o.probeSeconds || !/no fastText progress line/.test((e as Error).message)) throw e;
      log(`fastText -loss softmax: no progress line within ${box} s; probing again for ${2 * box} s`);
    } finally {
      await removeOutputs(join(p.work, "softmax-probe"));
    }
  }
  const want = Math.max(1000, Math.floor(probe.wordsPerSecond * o.targetSeconds));
  const prefix = join(p.work, "softmax-prefix.txt");
  const got = await writePrefix(p.corpus, prefix, want);
  const epochHours = o.tokens / probe.wordsPerSecond / 3600;
  const base = {
    label: "fastText -loss softmax",
    kind: "fasttext" as const,
    loss: "softmax",
    command: probe.command.replace(/ \(timeout.*$/, ""),
  };
  const rate = `${fmt(probe.wordsPerSecond)} words/s` +
    ` (one epoch of the whole text ≈ ${fmt(epochHours, 2)} h)`;
  let r;
  try {
    r = await runFastText(
      "skipgram-softmax",
      { ...p, corpus: prefix, epochs: 1, output: "softmax-prefix", evaluate: false, extra },
      log,
    );
  } catch (e) {
    return {
      ...base,
      points: [],
      note: `${rate}; the prefix run failed: ${(e as Error).message.split("\n")[0]}`,
    };
  }
  const s = await scoreFile(p, join(p.work, "softmax-prefix"));
  const share = `${fmt((100 * got) / o.tokens, 2)}% of the text`;
  return {
    ...base,
    points: [pointOf(r.wallSeconds, `${share}, 1 epoch`, s)],
    command: base.command + ` (then -input <first ${got} tokens> -epoch 1)`,
    note: `${rate}; point: one complete -epoch 1 run over the first ${got} tokens (${share}, ` +
      `${s.vocabulary} words), what it trains in ≈ ${fmt(o.targetSeconds)} s`,
    vocabulary: s.vocabulary,
  };
}

async function scoreFile(p: QualitySettings, output: string): Promise<Scores> {
  const s = await evalVec(`${output}.vec`, p.evalDir, {
    analogies: true,
    ...(p.backend ? { backend: p.backend } : {}),
  });
  await removeOutputs(output);
  return s;
}

/** fastText's outputs (.bin is ~800 MB with its default 2M buckets): removed once scored. */
async function removeOutputs(output: string): Promise<void> {
  for (const ext of [".bin", ".vec"]) await Deno.remove(output + ext).catch(() => {});
}

/**
 * Writes the first whole lines of `src` holding at most `tokens` tokens (at least one line) to `dst`;
 * returns the tokens written.
 *
 * @example
 * ```ts
 * import { writePrefix } from "./quality_runs.ts";
 * // const n = await writePrefix("data/generated/brown.txt", "/tmp/prefix.txt", 5000);
 * ```
 */
export async function writePrefix(src: string, dst: string, tokens: number): Promise<number> {
  const lines = (await Deno.readTextFile(src)).split("\n");
  const out: string[] = [];
  let n = 0;
  for (const line of lines) {
    if (line.length === 0) continue;
    const k = line.split(" ").length;
    if (out.length > 0 && n + k > tokens) break;
    out.push(line);
    n += k;
  }
  await Deno.writeTextFile(dst, out.join("\n") + "\n");
  return n;
}
