/**
 * Benchmark section "trainer" (issue 18, item 3): the whole trainer (`pipelines/train.ts`, skip-gram,
 * factored head, OpenBLAS) on a synthetic Zipf corpus at each thread count, one child process each, with
 * the per-stage times of its summary (lib/train/stages.ts), beside the output layer alone
 * (bench/layers.ts' child) at the same D, d and m in the same run: the share of the layer's own speed the
 * trainer reaches.
 *
 *   deno task bench --only trainer --out -                      (threads 1,2; d = 256)
 *   deno run -A bench/trainer.ts --threads 1,2,4,8,16 --out -   (alone; --quick: a tiny corpus)
 *
 * Alone, `--help` lists its flags; a bad flag or value is one line `bench/trainer: …`, exit 2 (lib/core/cli.ts).
 *
 * @module
 */

import {
  commaList,
  type FlagSpec,
  HELP_FLAG,
  helpText,
  parseFlags,
  positiveInt,
  positiveNumber,
} from "../lib/core/cli.ts";
import { UsageError } from "../lib/core/errors.ts";
import { exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { join } from "node:path";
import { prepareCorpus } from "../lib/io/prepare.ts";
import { readExamples } from "../lib/io/read.ts";
import type { BenchOptions } from "./report.ts";
import { fmt, table } from "./report.ts";
import { STAGES } from "../lib/train/stages.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TRAIN = join(ROOT, "pipelines/train.ts");
const LAYERS = join(ROOT, "bench/layers.ts");
/**
 * The environment scripts/job.sh gives a job (large arrays on transparent huge pages), for both children:
 * the trainer is measured as `deno task train` runs it, and the layer alone under the same memory.
 */
const JOB_ENV = {
  GLIBC_TUNABLES: `glibc.malloc.hugetlb=1${
    Deno.env.get("GLIBC_TUNABLES") ? `:${Deno.env.get("GLIBC_TUNABLES")}` : ""
  }`,
};

/**
 * What one trainer run measured.
 *
 * @example
 * ```ts
 * import type { TrainerRow } from "./trainer.ts";
 * const r: TrainerRow = { threads: 1, examplesPerSecond: 1, stageSeconds: {}, seconds: 1, layerExamplesPerSecond: 2 };
 * ```
 */
export type TrainerRow = {
  threads: number;
  /** where the reader ran (FACTOROUT_READER) */
  reader?: "worker" | "thread";
  examplesPerSecond: number;
  seconds: number;
  stageSeconds: Record<string, number>;
  /** the layer alone: the mean of its runs just before and just after the trainer's (layerRuns) */
  layerExamplesPerSecond?: number;
  /** the layer alone's examples/s before and after the trainer's run: the host's drift between them */
  layerRuns?: number[];
};

/** Options of {@link measureTrainer}. */
type TrainerBenchOptions = {
  threads: number[];
  dim: number;
  batch: number;
  /** synthetic corpus: vocabulary and tokens */
  vocab: number;
  tokens: number;
  /** the trainer's epochs (default 1; the job's default run has 5: the epoch ends before the last are
   * written behind the steps) */
  epochs?: number;
  /** seconds of the layer-alone timing per thread count (0: skip it) */
  layerSeconds: number;
  /** the reader's places to compare (FACTOROUT_READER); default worker only */
  readers?: ("worker" | "thread")[];
  log: (line: string) => void;
};

async function output(cmd: Deno.Command): Promise<{ code: number; stdout: string; stderr: string }> {
  const o = await cmd.output();
  return {
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  };
}

/**
 * Prepares the corpus, then runs the trainer (one epoch, or `epochs`) at each thread count, with the layer alone
 * just before and just after it.
 *
 * @example
 * ```ts
 * import { measureTrainer } from "./trainer.ts";
 * const rows = await measureTrainer({
 *   threads: [1], dim: 8, batch: 64, vocab: 300, tokens: 3000, layerSeconds: 0, log: () => {},
 * });
 * console.log(rows[0].examplesPerSecond > 0); // true
 * ```
 */
export async function measureTrainer(o: TrainerBenchOptions): Promise<TrainerRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "factorout-bench-trainer-" });
  try {
    const corpus = join(dir, "corpus");
    const prep = await prepareCorpus({
      synthetic: { vocabSize: o.vocab, tokens: o.tokens, seed: 1 },
      outDir: corpus,
      mode: "skipgram",
      window: 5,
      minCount: 1,
      sample: 1e-4,
      seed: 1,
      format: "arrow",
    });
    const D = prep.vocabSize;
    // K̄, the corpus's targets per example: the layer alone runs at the trainer's d, m, K̄ and loss
    let examples = 0, targets = 0;
    for await (const b of readExamples([corpus], { batchSize: 4096 })) {
      examples += b.size;
      targets += b.targets.offsets[b.size];
    }
    const k = Math.max(1, Math.round(targets / Math.max(1, examples)));
    o.log(`trainer bench: corpus of ${prep.rows} examples, D = ${D}, K̄ = ${fmt(targets / examples)}`);
    const rows: TrainerRow[] = [];
    // the layer alone at t threads, in a process of its own (bench/layers.ts)
    const layerAlone = async (t: number): Promise<number> => {
      const cfg = {
        kind: "factored",
        backend: "blas",
        D,
        d: o.dim + 1,
        m: o.batch,
        seconds: o.layerSeconds,
        k,
        loss: "spherical",
      };
      const l = await output(
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--cached-only", LAYERS, "--child", JSON.stringify(cfg)],
          env: { ...JOB_ENV, NO_COLOR: "1", FACTOROUT_THREADS: String(t) },
          stdout: "piped",
          stderr: "piped",
        }),
      );
      const line = l.stdout.split("\n").find((x) => x.startsWith("RESULT "));
      if (!line) throw new Error(`layer alone, ${t} threads: ${l.stderr.trim().split("\n").pop()}`);
      return 1e6 / JSON.parse(line.slice(7)).usPerExample;
    };
    for (const t of o.threads) {
      for (const reader of o.readers ?? ["worker"]) {
        // the layer alone just before and just after the trainer, their mean the ratio's denominator: a host
        // whose speed drifts within minutes (BENCHMARKS.md, "State copies into arrays already written") moves
        // it less than one run on one side does
        const alone = o.layerSeconds > 0 && reader === (o.readers ?? ["worker"])[0];
        const layerBefore = alone ? await layerAlone(t) : undefined;
        const r = await output(
          new Deno.Command(Deno.execPath(), {
            args: [
              ...[
                "run",
                "-A",
                "--cached-only",
                TRAIN,
                "--data",
                corpus,
                "--out",
                join(dir, `run-${rows.length}`),
                "--epochs",
                String(o.epochs ?? 1),
              ],
              ...[
                "--dim",
                String(o.dim),
                "--batch",
                String(o.batch),
                "--threads",
                String(t),
                "--backend",
                "blas",
              ],
              ...["--eval-dir", "none", "--formats", "vec", "--progress", "json"],
            ],
            env: { ...JOB_ENV, NO_COLOR: "1", FACTOROUT_READER: reader },
            stdout: "piped",
            stderr: "piped",
          }),
        );
        if (r.code !== 0) {
          throw new Error(`train --threads ${t} exited ${r.code}: ${r.stderr.trim().split("\n").pop()}`);
        }
        const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
        const call = summary.training.thisInvocation; // this job's training (a fresh run: the whole run)
        const row: TrainerRow = {
          threads: t,
          reader,
          examplesPerSecond: call.examplesPerSecond,
          seconds: call.seconds,
          stageSeconds: call.stageSeconds ?? {},
        };
        if (layerBefore !== undefined) {
          const layerAfter = await layerAlone(t);
          row.layerRuns = [layerBefore, layerAfter];
          row.layerExamplesPerSecond = (layerBefore + layerAfter) / 2;
        }
        o.log(
          `trainer bench: ${t} thread(s), reader on the ${reader}: ${
            Math.round(row.examplesPerSecond)
          } examples/s`,
        );
        rows.push(row);
      }
    }
    return rows;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The markdown table of {@link measureTrainer}'s rows: examples/s, the speed-up over the first row, the
 * layer alone and the trainer's share of it, and each stage's share of the run.
 *
 * @example
 * ```ts
 * import { trainerTable } from "./trainer.ts";
 * console.log(trainerTable([{ threads: 1, examplesPerSecond: 100, seconds: 2, stageSeconds: { wait: 1 } }]));
 * ```
 */
export function trainerTable(rows: TrainerRow[]): string {
  const base = rows[0]?.examplesPerSecond ?? NaN;
  return table(
    [
      "threads",
      "reader",
      "trainer ex/s",
      "vs first row",
      "layer alone ex/s",
      "trainer / layer",
      ...STAGES.map((s) => `${s} %`),
      "layer alone before / after",
    ],
    rows.map((r) => [
      String(r.threads),
      r.reader ?? "worker",
      String(Math.round(r.examplesPerSecond)),
      `${fmt(r.examplesPerSecond / base)}×`,
      r.layerExamplesPerSecond ? String(Math.round(r.layerExamplesPerSecond)) : "–",
      r.layerExamplesPerSecond ? `${fmt((100 * r.examplesPerSecond) / r.layerExamplesPerSecond)}%` : "–",
      ...STAGES.map((s) => fmt((100 * (r.stageSeconds[s] ?? 0)) / r.seconds)),
      r.layerRuns ? r.layerRuns.map((x) => String(Math.round(x))).join(" / ") : "–",
    ]),
  );
}

/** The section of bench/main.ts (`--only trainer`): threads 1 and 2 at d = 256 (--quick: a tiny corpus). */
export async function run(opts: BenchOptions): Promise<string> {
  const rows = await measureTrainer({
    threads: [1, 2],
    dim: opts.quick ? 32 : 256,
    batch: 64,
    vocab: opts.quick ? 2000 : 200_000,
    tokens: opts.quick ? 20_000 : 500_000,
    layerSeconds: opts.quick ? 1 : 4,
    log: opts.log,
  });
  return `${
    trainerTable(rows)
  }\n\nStages: read and shuffle run on the reader's worker thread (overlapped); ` +
    `wait is what the training thread waited for batches. The layer alone: bench/layers.ts (spherical loss, ` +
    `K = the corpus's K̄ rounded, targets uniform over D), run just before and just after the trainer (the ` +
    `ratio uses their mean); the trainer: spherical loss, the corpus's targets.`;
}

/** The flags of `deno run -A bench/trainer.ts` (bench/trainer_threads.sh gives them). */
const FLAGS: Record<string, FlagSpec> = {
  threads: { type: "string", default: "1,2", help: "the OpenBLAS thread counts, comma-separated" },
  dim: { type: "string", default: "256", help: "embedding dimension d (--quick: 32)" },
  batch: { type: "string", default: "64", help: "examples per batch m" },
  vocab: { type: "string", default: "200000", help: "vocabulary of the synthetic corpus (--quick: 2000)" },
  tokens: { type: "string", default: "500000", help: "tokens of the synthetic corpus (--quick: 20000)" },
  epochs: { type: "string", default: "1", help: "the trainer's epochs (the job's default run: 5)" },
  "layer-seconds": { type: "string", default: "4", help: "timing window of the layer alone (--quick: 1)" },
  readers: {
    type: "string",
    default: "worker",
    help: "where the reader runs, comma-separated: worker, thread",
  },
  quick: { type: "boolean", default: false, help: "a tiny corpus: checks the script" },
  out: { type: "string", default: "-", help: "the markdown file the table is written to; - prints it" },
  help: HELP_FLAG,
};

async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, FLAGS);
  if (f.help) {
    console.log(helpText("npx deno run -A bench/trainer.ts [flags]", FLAGS, exitCodesHelp()));
    return;
  }
  const q = f.quick === true;
  const threads = commaList(f.threads).map((t) => positiveInt("--threads", t));
  if (threads.length === 0) throw new UsageError("--threads names no thread count");
  const readers = commaList(f.readers);
  for (const r of readers) {
    if (r !== "worker" && r !== "thread") {
      throw new UsageError(`--readers takes worker and thread, got '${r}'`);
    }
  }
  if (readers.length === 0) throw new UsageError("--readers names no reader");
  const dim = positiveInt("--dim", f.dim), vocab = positiveInt("--vocab", f.vocab);
  const tokens = positiveInt("--tokens", f.tokens);
  const layerSeconds = positiveNumber("--layer-seconds", f["layer-seconds"]);
  const rows = await measureTrainer({
    threads,
    dim: q ? 32 : dim,
    batch: positiveInt("--batch", f.batch),
    epochs: positiveInt("--epochs", f.epochs),
    vocab: q ? 2000 : vocab,
    tokens: q ? 20_000 : tokens,
    layerSeconds: q ? 1 : layerSeconds,
    readers: readers as ("worker" | "thread")[],
    log: (l) => console.error(l),
  });
  const text = trainerTable(rows) + "\n";
  if (f.out === "-") console.log(text);
  else await Deno.writeTextFile(f.out as string, text);
}

if (import.meta.main) await runCommand("bench/trainer", () => main(Deno.args));
