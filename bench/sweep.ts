/**
 * `deno task bench:sweep`: trains the Brown corpus under a grid of step sizes, schedules, input-side step
 * ratios and loss parameters, per loss and per mode, and records after every epoch the WordSim-353 and
 * SimLex-999 ρ, the held-out loss and the mean norms of the input rows (E) and, at the end, of the output
 * rows (W). Each run is one JSON line in `runs/sweep/results.jsonl`; the table of the runs of this call is
 * printed and, with `--write`, put into docs/training-defaults.md between its sweep markers.
 *
 *   deno task bench:sweep [--quick] [--only <substring>] [--dim 100] [--epochs 5] [--write]
 *
 * `--set '<json>'` (repeatable): run those settings instead of the grid (exploration).
 * `--seed N`: the seed of every run (it also redraws the subsampling and the held-out split).
 * `--average`: also score the mean of the last k epochs' input rows E (k = 2, 3, 4, 5, 7, 10, 15; plain and
 * of the unit rows), iterate averaging measured without building it into the trainer (docs/losses.md).
 * `--quick`: only the recipes (each loss × mode at its defaults), 3 epochs; the full grid is listed by
 * {@link sweepGrid}. See docs/training-defaults.md.
 *
 * @module
 */

import { dirname } from "node:path";
import {
  type FlagSpec,
  HELP_FLAG,
  helpText,
  nonNegativeInt,
  parseFlags,
  positiveInt,
} from "../lib/core/cli.ts";
import { exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { writeFileAtomic } from "../lib/core/atomic.ts";
import { lockRunFolder } from "../lib/core/lock.ts";
import { resolveConfig, type TrainConfig } from "../lib/train/config.ts";
import { applyRecipe } from "../lib/train/recipes.ts";
import { resolveData } from "../lib/train/run_data.ts";
import { type ReaderBatch, Trainer } from "../lib/train/trainer.ts";
import { openReader } from "../lib/train/defaults.ts";
import { evaluateEmbeddings } from "../lib/eval/report.ts";
import { DataFormatError, DivergenceError, UsageError } from "../lib/core/errors.ts";

/**
 * One run of the sweep: a name and the settings it changes from the recipe of its loss and mode.
 *
 * @example
 * ```ts
 * import type { SweepCase } from "./sweep.ts";
 * const c: SweepCase = { name: "taylor lr 0.05", set: { loss: "taylor", lr: 0.05 } };
 * ```
 */
export type SweepCase = { name: string; set: Partial<TrainConfig> };

/** What one epoch of a sweep run measured. */
type EpochRow = {
  epoch: number;
  wordsim353?: number;
  simlex999?: number;
  validationLoss?: number;
  normE: number;
  /** ‖mean of the rows of E‖ / mean row norm: 1 when every row points the same way, ≈ 0 when isotropic */
  meanDirE: number;
  /** ρ of E with its mean row subtracted (is the loss of quality a shared direction?) */
  wordsim353Centred?: number;
  simlex999Centred?: number;
  seconds: number;
};

/**
 * The grid: for each loss and mode, the recipe, then step sizes around it, both schedules, input-side
 * step ratios and the loss parameters. `quick` keeps only the recipes.
 *
 * @example
 * ```ts
 * import { sweepGrid } from "./sweep.ts";
 * console.log(sweepGrid(true).length, sweepGrid(false).length); // 5 57
 * ```
 */
export function sweepGrid(quick: boolean): SweepCase[] {
  const out: SweepCase[] = [];
  const combos: Partial<TrainConfig>[] = [
    { mode: "skipgram", loss: "spherical" },
    { mode: "skipgram", loss: "taylor" },
    { mode: "skipgram", loss: "squared" },
    { mode: "skipgram", loss: "zloss" },
    { mode: "cbow", loss: "spherical" },
  ];
  for (const base of combos) {
    const tag = `${base.mode} ${base.loss}`;
    out.push({ name: `${tag} recipe`, set: base });
    if (quick) continue;
    const r = applyRecipe(resolveConfig(base), new Set(["mode", "loss"])).config;
    for (const f of [0.25, 0.5, 2, 4]) out.push({ name: `${tag} lr×${f}`, set: { ...base, lr: r.lr * f } });
    for (const s of [1, 2.5, 10]) {
      out.push({ name: `${tag} lr-input-scale ${s}`, set: { ...base, lrInputScale: s } });
    }
    out.push({
      name: `${tag} schedule ${r.schedule === "linear" ? "constant" : "linear"}`,
      set: { ...base, schedule: r.schedule === "linear" ? "constant" : "linear" },
    });
    if (base.loss === "spherical") {
      for (const e of [1e-2, 1e-4]) out.push({ name: `${tag} ε ${e}`, set: { ...base, lossEpsilon: e } });
    }
    if (base.mode === "cbow") {
      // the mean's own gradient (1/(context words) of fastText's update per row), at its recipe's input step
      out.push({ name: `${tag} bag mean`, set: { ...base, bag: "mean" } });
    }
    if (base.loss === "spherical" && base.mode === "skipgram") {
      // more epochs: the recipe's step ÷ (epochs/5) and ε × epochs/5 against the same step (and ε) throughout
      out.push({ name: `${tag} 10 epochs`, set: { ...base, epochs: 10 } });
      out.push({ name: `${tag} 10 epochs, 5-epoch lr`, set: { ...base, epochs: 10, lr: r.lr } });
    }
    if (base.loss === "squared") {
      out.push({ name: `${tag} bias-feature 0.1, lr×10`, set: { ...base, biasFeature: 0.1, lr: r.lr * 10 } });
    }
    if (base.loss === "zloss") {
      for (const b of [3, 5, 20]) out.push({ name: `${tag} b ${b}`, set: { ...base, zlossB: b } });
      for (const a of [1]) out.push({ name: `${tag} a ${a}`, set: { ...base, zlossA: a } });
    }
  }
  return out;
}

/**
 * The epoch `deno task train` keeps under its best-epoch rule (--keep-best, the default): the one with the
 * lowest held-out loss, the earliest on a tie; undefined when no epoch has one.
 *
 * @example
 * ```ts
 * import { keptEpoch } from "./sweep.ts";
 * keptEpoch([{ epoch: 1, validationLoss: 2 }, { epoch: 2, validationLoss: 3 }])?.epoch; // 1
 * ```
 */
export function keptEpoch<T extends { epoch: number; validationLoss?: number }>(rows: T[]): T | undefined {
  let best: T | undefined;
  for (const e of rows) {
    if (e.validationLoss !== undefined && (!best || e.validationLoss < best.validationLoss!)) best = e;
  }
  return best;
}

/** Mean Euclidean norm of the n rows of width d in A. */
function meanRowNorm(A: Float32Array, d: number): number {
  const n = A.length / d;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = i * d; k < (i + 1) * d; k++) s += A[k] * A[k];
    sum += Math.sqrt(s);
  }
  return n ? sum / n : 0;
}

/** The rows of A (width d) minus their mean row, and the mean row's norm. */
function centreRows(A: Float32Array, d: number): { rows: Float32Array; meanNorm: number } {
  const n = A.length / d, mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mean[k] += A[i * d + k] / n;
  const rows = new Float32Array(A.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) rows[i * d + k] = A[i * d + k] - mean[k];
  return { rows, meanNorm: Math.hypot(...mean) };
}

/**
 * Trains one case and measures every epoch; returns one JSON-able record (diverged runs included).
 *
 * @example
 * ```ts
 * import { runCase } from "./sweep.ts";
 * const r = await runCase({ name: "x", set: { epochs: 1 } }, { dim: 100, limitTokens: 20000 });
 * ```
 */
export async function runCase(
  c: SweepCase,
  common: Partial<TrainConfig>,
  log: (line: string) => void = () => {},
  opts: { average?: boolean } = {},
): Promise<Record<string, unknown>> {
  const given = { ...common, ...c.set };
  const base = resolveConfig({ ...given, out: `runs/sweep/${given.mode ?? "skipgram"}` });
  const { config } = applyRecipe(base, new Set(Object.keys(given) as (keyof TrainConfig)[]));
  const data = await resolveData(config, log);
  const epochs: EpochRow[] = [];
  const t0 = performance.now();
  let trainer: Trainer | undefined;
  let trainSeconds = 0, pausedMs = 0;
  // --average: a copy of E after every epoch, to score the means of the last k (iterate averaging)
  const snapshots: Float32Array[] = [];
  let words: string[] = [];
  const measure = async (epoch: number) => {
    const p0 = performance.now();
    const emb = await trainer!.embeddings();
    if (opts.average) {
      snapshots.push(emb.input);
      words = emb.words;
    }
    const r = await evaluateEmbeddings(emb.words, emb.input, emb.d, { analogies: false });
    const val = await trainer!.validationLoss();
    const centred = centreRows(emb.input, emb.d);
    const rc = await evaluateEmbeddings(emb.words, centred.rows, emb.d, { analogies: false });
    epochs.push({
      epoch,
      wordsim353: r.similarity.wordsim353?.rho,
      simlex999: r.similarity.simlex999?.rho,
      validationLoss: val,
      normE: meanRowNorm(emb.input, emb.d),
      meanDirE: centred.meanNorm / meanRowNorm(emb.input, emb.d),
      wordsim353Centred: rc.similarity.wordsim353?.rho,
      simlex999Centred: rc.similarity.simlex999?.rho,
      seconds: (p0 - t0 - pausedMs) / 1000,
    });
    const e = epochs[epochs.length - 1];
    log(
      `  ${c.name} epoch ${epoch}: WS353 ${f3(e.wordsim353)} SimLex ${f3(e.simlex999)} ` +
        `(centred ${f3(e.wordsim353Centred)} ${f3(e.simlex999Centred)}) held-out ${
          f3(e.validationLoss)
        } ‖E‖ ${f3(e.normE)}`,
    );
    pausedMs += performance.now() - p0;
  };
  // the reader wrapper measures at each epoch boundary, between two steps, off the clock
  const reader = async function* (
    paths: string[],
    o: Parameters<typeof openReader>[1],
  ): AsyncIterable<ReaderBatch> {
    let epoch = 0;
    for await (const b of openReader(paths, o)) {
      if (b.epoch !== epoch) {
        await measure(epoch + 1);
        epoch = b.epoch;
      }
      yield b;
    }
  };
  let diverged: string | undefined;
  try {
    trainer = await Trainer.create({
      config,
      vocab: { words: data.words, counts: data.counts },
      openReader: reader,
      log,
    });
    // every epoch is measured, the last one too: the best-epoch rule (which one `deno task train` would
    // publish) is computed below from the held-out losses, not applied to the trainer
    await trainer.train({ paths: [data.dir], rows: data.manifest.rows, keepBest: false });
    trainSeconds = (performance.now() - t0 - pausedMs) / 1000;
    await measure(config.epochs);
  } catch (e) {
    if (!(e instanceof DivergenceError)) throw e;
    diverged = e.message.slice(0, 120);
  }
  let normW: number | undefined;
  if (trainer && !diverged) {
    const d = trainer.model.d;
    normW = meanRowNorm(await trainer.output.weights(), d);
  }
  trainer?.close();
  const averages = opts.average ? await scoreAverages(words, snapshots, config.dim, log) : undefined;
  const last = epochs[epochs.length - 1];
  const kept = config.keepBest ? keptEpoch(epochs) : undefined;
  return {
    name: c.name,
    set: c.set,
    config: {
      mode: config.mode,
      loss: config.loss,
      dim: config.dim,
      epochs: config.epochs,
      lr: config.lr,
      lrInputScale: config.lrInputScale,
      schedule: config.schedule,
      lossEpsilon: config.lossEpsilon,
      zlossA: config.zlossA,
      zlossB: config.zlossB,
      targetPower: config.targetPower,
      targetScale: config.targetScale,
    },
    vocab: data.words.length,
    wordsim353: last?.wordsim353,
    simlex999: last?.simlex999,
    seconds: trainSeconds,
    keptEpoch: kept?.epoch,
    keptWordsim353: kept?.wordsim353,
    keptSimlex999: kept?.simlex999,
    normW,
    epochs,
    ...(averages ? { averages } : {}),
    ...(diverged ? { diverged } : {}),
    date: new Date().toISOString(),
  };
}

/**
 * The mean of the last `k` snapshots of a table of rows of width `d`; with `unit`, each snapshot's rows
 * are normalised first (a zero row stays zero).
 *
 * @example
 * ```ts
 * import { tailMean } from "./sweep.ts";
 * tailMean([Float32Array.of(9, 9), Float32Array.of(1, 0), Float32Array.of(3, 0)], 2, 2, false); // [2, 0]
 * ```
 */
export function tailMean(snaps: Float32Array[], k: number, d: number, unit: boolean): Float32Array {
  if (!(k >= 1 && k <= snaps.length)) {
    throw new RangeError(`tailMean: k must be 1..${snaps.length}, got ${k}`);
  }
  const mean = new Float32Array(snaps[0].length);
  for (const s of snaps.slice(snaps.length - k)) {
    for (let i = 0; i < s.length; i += d) {
      let norm = 1;
      if (unit) {
        let q = 0;
        for (let j = i; j < i + d; j++) q += s[j] * s[j];
        norm = Math.sqrt(q) || 1;
      }
      for (let j = i; j < i + d; j++) mean[j] += s[j] / (norm * k);
    }
  }
  return mean;
}

/**
 * The scores of the mean of the last k epochs' E (k = 2, 3, 5, … up to all), plain and of the unit rows
 * (each snapshot's rows normalised first, so a late epoch's longer rows do not dominate the mean).
 */
async function scoreAverages(
  words: string[],
  snaps: Float32Array[],
  d: number,
  log: (line: string) => void,
): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const n = snaps.length;
  for (const k of [2, 3, 4, 5, 7, 10, 15].filter((k) => k <= n)) {
    for (const unit of [false, true]) {
      const mean = tailMean(snaps, k, d, unit);
      const r = await evaluateEmbeddings(words, mean, d, { analogies: false });
      const row = {
        last: k,
        unit,
        wordsim353: r.similarity.wordsim353?.rho,
        simlex999: r.similarity.simlex999?.rho,
      };
      out.push(row);
      log(
        `  mean of the last ${k} epochs${unit ? " (unit rows)" : ""}: WS353 ${f3(row.wordsim353)} SimLex ${
          f3(row.simlex999)
        }`,
      );
    }
  }
  return out;
}

const f3 = (x: unknown) => (typeof x === "number" ? x.toFixed(3) : "—");

/**
 * A markdown table of sweep records: settings, final WS353/SimLex, the per-epoch SimLex, seconds.
 *
 * @example
 * ```ts
 * import { sweepTable } from "./sweep.ts";
 * console.log(sweepTable([]));
 * ```
 */
export function sweepTable(rows: Record<string, unknown>[]): string {
  const lines = [
    "| run | epochs | lr | lr-input-scale | WS353 | SimLex | kept epoch (held-out): WS353 / SimLex | WS353 per epoch | SimLex per epoch | held-out loss per epoch | ‖E‖ | ‖W‖ | s |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const c = r.config as Record<string, unknown>;
    const ep = (r.epochs as EpochRow[]) ?? [];
    lines.push(
      `| ${r.name} | ${c.epochs} | ${c.lr} | ${c.lrInputScale} | ${
        r.diverged ? "diverged" : f3(r.wordsim353)
      } | ${f3(r.simlex999)} | ${
        r.keptEpoch === undefined ? "—" : `${r.keptEpoch}: ${f3(r.keptWordsim353)} / ${f3(r.keptSimlex999)}`
      } | ${ep.map((e) => f3(e.wordsim353)).join(" ")} | ${ep.map((e) => f3(e.simlex999)).join(" ")} | ${
        ep.map((e) => f3(e.validationLoss)).join(" ")
      } | ${f3(ep[ep.length - 1]?.normE)} | ${f3(r.normW)} | ${
        typeof r.seconds === "number" ? r.seconds.toFixed(0) : "—"
      } |`,
    );
  }
  return lines.join("\n");
}

/** The doc `--write` puts the table into. */
const SWEEP_DOC = "docs/training-defaults.md";

const FLAGS: Record<string, FlagSpec> = {
  quick: {
    type: "boolean",
    help: "only the recipes (each loss × mode at its defaults), 3 epochs",
    default: false,
  },
  only: { type: "string", help: "only the grid's runs whose name holds this text (e.g. 'zloss')" },
  dim: { type: "string", help: "embedding dimension of every run", default: "100" },
  epochs: { type: "string", help: "epochs of every run (default 5; --quick 3)" },
  seed: {
    type: "string",
    help: "the seed of every run (also redraws the subsampling and the held-out split)",
  },
  set: {
    type: "string",
    multiple: true,
    help:
      'a JSON object of train settings to run instead of the grid, repeatable (e.g. \'{"loss":"taylor","lr":0.05}\')',
  },
  average: {
    type: "boolean",
    help: "also score the mean of the last k epochs' input rows (iterate averaging)",
    default: false,
  },
  results: {
    type: "string",
    help: "the JSON-lines file each run is appended to",
    default: "runs/sweep/results.jsonl",
  },
  write: {
    type: "boolean",
    help: `put the table into ${SWEEP_DOC} between its sweep markers (refused when no run is selected)`,
    default: false,
  },
  help: HELP_FLAG,
};

/** The markers of {@link SWEEP_DOC} the table goes between. */
const SWEEP_MARKERS = ["<!-- sweep:begin -->", "<!-- sweep:end -->"] as const;

/**
 * The runs a command line selects: its `--set` objects, else the grid (`--quick`: the recipes) filtered by
 * `--only`. A `--set` that is not a JSON object, or a selection of no run, is a {@link UsageError}: an empty
 * sweep would still write an empty table over the recorded one.
 *
 * @example
 * ```ts
 * import { selectCases } from "./sweep.ts";
 * console.log(selectCases({ quick: true, only: "zloss" }).map((c) => c.name)); // ["skipgram zloss recipe"]
 * ```
 */
export function selectCases(o: { quick: boolean; only?: string; set?: string[] }): SweepCase[] {
  if (o.set?.length) {
    if (o.only !== undefined) {
      throw new UsageError("--only selects among the grid's runs; it does not apply to --set");
    }
    return o.set.map((j) => {
      let v: unknown;
      try {
        v = JSON.parse(j);
      } catch (e) {
        throw new UsageError(
          `--set must be a JSON object of train settings, got '${j}' (${(e as Error).message})`,
        );
      }
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        throw new UsageError(`--set must be a JSON object of train settings, got '${j}'`);
      }
      return { name: j, set: v as Partial<TrainConfig> };
    });
  }
  if (o.only === "") throw new UsageError("--only needs a part of a run's name (e.g. 'zloss')");
  const grid = sweepGrid(o.quick);
  const cases = grid.filter((c) => o.only === undefined || c.name.includes(o.only));
  if (cases.length === 0) {
    throw new UsageError(
      `--only '${o.only}' matches none of the ${grid.length} runs of the ${o.quick ? "--quick " : ""}grid ` +
        `(e.g. '${grid[0].name}')`,
    );
  }
  return cases;
}

/** The command: flags → runs → table (→ the doc with --write). */
async function main(): Promise<void> {
  const f = parseFlags(Deno.args, FLAGS);
  if (f.help) {
    console.log(
      helpText("npx deno task bench:sweep [flags]", FLAGS, exitCodesHelp("locked", "badData", "diverged")),
    );
    return;
  }
  const quick = f.quick === true;
  const common: Partial<TrainConfig> = {
    dim: positiveInt("--dim", f.dim),
    epochs: positiveInt("--epochs", f.epochs ?? (quick ? "3" : "5")),
    ...(f.seed !== undefined ? { seed: nonNegativeInt("--seed", f.seed) } : {}),
  };
  const cases = selectCases({
    quick,
    ...(typeof f.only === "string" ? { only: f.only } : {}),
    ...(Array.isArray(f.set) ? { set: f.set } : {}),
  });
  const resultsPath = f.results as string;
  // the runs prepare (and reuse) their corpus under runs/sweep/<mode>: one sweep at a time there
  const lock = await lockRunFolder("runs/sweep", "bench:sweep");
  try {
    const resultsDir = dirname(resultsPath);
    if (resultsDir !== ".") await Deno.mkdir(resultsDir, { recursive: true });
    console.error(`sweep: ${cases.length} runs, dim ${common.dim}, ${common.epochs} epochs → ${resultsPath}`);
    const rows: Record<string, unknown>[] = [];
    for (const c of cases) {
      const r = await runCase(c, common, (line) => {
        if (line.startsWith("  ")) console.error(line);
      }, { average: f.average === true });
      rows.push(r);
      await Deno.writeTextFile(resultsPath, JSON.stringify(r) + "\n", { append: true });
      console.error(
        `${c.name}: WS353 ${f3(r.wordsim353)} SimLex ${f3(r.simlex999)} ${r.diverged ?? ""} (${
          (r.seconds as number).toFixed(0)
        } s)`,
      );
    }
    const table = sweepTable(rows);
    console.log(table);
    if (f.write) {
      const stamp =
        `\`deno task bench:sweep ${Deno.args.join(" ")}\` on ${Deno.build.os} ${Deno.build.arch}, ` +
        `${navigator.hardwareConcurrency} cores, ${new Date().toISOString().slice(0, 10)}`;
      await writeSweepTable(SWEEP_DOC, `${stamp}\n\n${table}`);
    }
  } finally {
    await lock.release();
  }
}

/**
 * Puts `body` between the sweep markers of the doc at `path`, atomically (temporary file + rename).
 *
 * @example
 * ```ts
 * import { writeSweepTable } from "./sweep.ts";
 * await Deno.writeTextFile("/tmp/d.md", "a\n<!-- sweep:begin -->\nold\n<!-- sweep:end -->\n");
 * await writeSweepTable("/tmp/d.md", "| new |");
 * ```
 */
export async function writeSweepTable(path: string, body: string): Promise<void> {
  const doc = await Deno.readTextFile(path);
  const [begin, end] = SWEEP_MARKERS;
  const i = doc.indexOf(begin), j = doc.indexOf(end);
  if (i < 0 || j < i) {
    throw new DataFormatError(path, `no ${begin} … ${end} markers to write the table between`);
  }
  await writeFileAtomic(path, doc.slice(0, i + begin.length) + `\n${body}\n` + doc.slice(j));
}

if (import.meta.main) await runCommand("bench:sweep", main);
