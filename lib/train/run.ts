/**
 * The `deno task train` job: prepare (or reuse) the corpus, build or resume the trainer, train with
 * progress and checkpoints, evaluate, publish the embeddings, write and print a summary.
 *
 * Run folder (`--out`, default `runs/latest`):
 *   corpus/        the prepared shards, vocab.tsv, manifest.json, train-settings.json (text input only)
 *   checkpoints/   ckpt-<step>.fock, the newest --keep-checkpoints kept
 *   embeddings/    versions/<version>/ (input.vec, input.bin, …, manifest.json) and the `latest` link
 *   summary.json   the final summary
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DataFormatError, UsageError } from "../errors.ts";
import { EXIT, ExitError } from "../exit_codes.ts";
import { type EvalReport, evaluateEmbeddings } from "../eval/report.ts";
import { publishEmbeddings } from "../export/publish.ts";
import { type CorpusManifest, readManifest } from "../io/manifest.ts";
import { prepareCorpus } from "../io/prepare.ts";
import { applyVocabularyDefaults, describeRecipe, SPHERICAL_MIN_FLOOR_MASS } from "./recipes.ts";
import { readVocab } from "../io/vocab.ts";
import { findLatestCheckpoint, listCheckpoints, readCheckpoint } from "./checkpoint.ts";
import type { TrainArgs } from "./cli.ts";
import { resolveConfig, type TrainConfig } from "./config.ts";
import { ProgressReporter } from "./progress.ts";
import { Trainer, type TrainerDeps, type TrainSummary } from "./trainer.ts";

/**
 * Where the job writes: `out` gets progress and the final summary (JSON lines unless `tty`), `err` the
 * log lines.
 *
 * @example
 * ```ts
 * import type { JobIO } from "./run.ts";
 * const io: JobIO = { out: (s) => console.log(s), err: (s) => console.error(s), tty: false };
 * ```
 */
export type JobIO = { out: (text: string) => void; err: (line: string) => void; tty: boolean };

/**
 * What the job returns and writes to summary.json.
 *
 * @example
 * ```ts
 * import type { JobSummary } from "./run.ts";
 * ```
 */
export type JobSummary = {
  event: "summary";
  out: string;
  backend: string;
  output: string;
  loss: string;
  mode: string;
  vocabularySize: number;
  d: number;
  training: TrainSummary;
  metrics: { wordsim353?: number; simlex999?: number; analogy?: number; coverage: Record<string, number> };
  embeddings?: { version: string; dir: string; files: string[] };
  seconds: number;
};

/**
 * The evaluation folder when none is given: `../shared/eval` next to the repository, when it exists.
 *
 * @example
 * ```ts
 * import { defaultEvalDir } from "./run.ts";
 * console.log(defaultEvalDir());
 * ```
 */
export function defaultEvalDir(): string | undefined {
  const repo = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
  const dir = join(dirname(repo), "shared", "eval");
  try {
    return Deno.statSync(dir).isDirectory ? dir : undefined;
  } catch {
    return undefined;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The corpus settings that decide the prepared shards. */
function corpusSettings(c: TrainConfig) {
  return {
    data: c.data,
    mode: c.mode,
    window: c.window,
    minCount: c.minCount,
    sample: c.sample,
    seed: c.seed,
    limitTokens: c.limitTokens,
  };
}

/**
 * Resolves `--data` to a prepared corpus folder: a folder with manifest.json is used as it is; text (or
 * "brown") is prepared into `<out>/corpus`, reused when already prepared with the same settings.
 */
export async function resolveData(
  c: TrainConfig,
  log: (line: string) => void,
): Promise<{ dir: string; manifest: CorpusManifest; words: string[]; counts: number[] }> {
  let dir: string;
  if (c.data !== "brown" && (await exists(join(c.data, "manifest.json")))) {
    dir = c.data;
  } else {
    if (c.data !== "brown" && !(await exists(c.data))) {
      throw new ExitError(
        EXIT.badData,
        `--data ${c.data}: no such file or folder (give 'brown', a text file or folder, or a folder of shards)`,
      );
    }
    dir = join(c.out, "corpus");
    const settings = JSON.stringify(corpusSettings(c));
    const stamp = join(dir, "train-settings.json");
    const same = (await exists(join(dir, "manifest.json"))) && (await exists(stamp)) &&
      (await Deno.readTextFile(stamp)) === settings;
    if (same) log(`corpus: reusing ${dir} (prepared with the same settings)`);
    else {
      log(
        `corpus: preparing ${c.data} into ${dir} (mode ${c.mode}, window ${c.window}, min-count ${c.minCount})`,
      );
      const t0 = performance.now();
      await Deno.remove(stamp).catch(() => {});
      await prepareCorpus({
        input: c.data,
        outDir: dir,
        mode: c.mode,
        window: c.window,
        minCount: c.minCount,
        sample: c.sample,
        seed: c.seed,
        ...(c.limitTokens > 0 ? { limitTokens: c.limitTokens } : {}),
      });
      await Deno.writeTextFile(`${stamp}.tmp`, settings);
      await Deno.rename(`${stamp}.tmp`, stamp);
      log(`corpus: prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  const manifest = await readManifest(dir);
  if (manifest.mode !== "external" && manifest.mode !== c.mode) {
    throw new UsageError(
      `--data ${dir} holds ${manifest.mode} windows but --mode is ${c.mode}; prepare it with --mode ${c.mode}`,
    );
  }
  if (manifest.rows === 0) throw new ExitError(EXIT.badData, `--data ${dir}: the corpus has no examples`);
  const { words, counts } = await readVocab(join(dir, manifest.vocabFile), {
    expectedSize: manifest.vocabSize,
  });
  return { dir, manifest, words, counts };
}

/**
 * Runs the whole job for parsed arguments; returns the summary (also written to `<out>/summary.json`).
 * Throws UsageError (bad flags), {@link ExitError} with EXIT.noCheckpoint (a missing, corrupt or
 * mismatched `--resume` checkpoint), EXIT.badData (missing or empty `--data`) or EXIT.exportFailed
 * (publishing failed after training), DataFormatError (corrupt data), DivergenceError.
 */
export async function runTrainJob(
  args: TrainArgs,
  io: JobIO,
  deps: Partial<TrainerDeps> = {},
): Promise<JobSummary> {
  const t0 = performance.now();
  if (args.threads > 0) Deno.env.set("OPENBLAS_NUM_THREADS", String(args.threads));
  const log = io.err;
  let config = args.config;
  let trainer: Trainer | undefined;
  let ckptPath: string | undefined;
  if (args.resume) {
    const st = await Deno.stat(args.resume).catch(() => null);
    if (!st) {
      throw new ExitError(
        EXIT.noCheckpoint,
        `--resume ${args.resume}: no such checkpoint file or run folder`,
      );
    }
    ckptPath = st.isDirectory ? await findLatestCheckpoint(args.resume) : args.resume;
    if (!ckptPath) {
      throw new ExitError(
        EXIT.noCheckpoint,
        `--resume ${args.resume}: no checkpoint (ckpt-*.fock) in it or in its checkpoints/`,
      );
    }
    const ckpt = await unusable(ckptPath, readCheckpoint(ckptPath));
    const saved = ckpt.meta.config as Record<string, unknown> | undefined;
    if (!saved) throw new ExitError(EXIT.noCheckpoint, `--resume ${ckptPath}: not a trainer checkpoint`);
    const merged: Record<string, unknown> = { ...saved };
    for (const k of args.explicit) merged[k] = args.config[k];
    if (!args.explicit.has("out") && st.isDirectory) {
      // a run folder (its checkpoints/ holds the file) or the checkpoints folder itself
      merged.out = ckptPath.startsWith(join(args.resume, "checkpoints") + "/")
        ? args.resume
        : dirname(ckptPath.replace(/\/[^/]*$/, ""));
    }
    config = resolveConfig(merged);
    trainer = await unusable(
      ckptPath,
      Trainer.fromCheckpoint(ckpt, {
        ...deps,
        log,
        ...(args.explicit.has("backend") ? { backend: config.backend } : {}),
      }),
    );
    let changes: string[];
    try {
      changes = trainer.checkCompatible(config, ckptPath);
    } catch (e) {
      trainer.close();
      if (e instanceof UsageError) throw new ExitError(EXIT.noCheckpoint, e.message);
      throw e;
    }
    for (const change of changes) log(`resume: ${change}`);
    trainer.adopt(config);
    log(`resume: ${ckptPath} at step ${trainer.step}`);
  }
  try {
    const data = await resolveData(config, log);
    if (trainer) {
      const same = trainer.vocab.words.length === data.words.length &&
        trainer.vocab.words.every((w, i) => w === data.words[i]);
      if (!same) {
        throw new ExitError(
          EXIT.noCheckpoint,
          `--resume ${ckptPath}: the checkpoint's vocabulary (${trainer.vocab.words.length} words) is not the corpus's ` +
            `(${data.words.length} words in ${data.dir}); resume with the data it was trained on`,
        );
      }
    } else {
      const ckDir = join(config.out, "checkpoints");
      const old = await listCheckpoints(ckDir);
      if (old.length) {
        log(
          `new run in ${config.out}: removing ${old.length} old checkpoint(s) (use --resume ${config.out} to continue one)`,
        );
        for (const p of old) await Deno.remove(p);
      }
      if (args.recipe) {
        const { name, applied } = args.recipe;
        log(
          `defaults: ${describeRecipe(name, applied)}${
            Object.keys(applied).length ? " (recipe; explicit flags win)" : ""
          }`,
        );
      }
      const small = applyVocabularyDefaults(config, args.explicit, data.words.length);
      if (Object.keys(small.applied).length) {
        config = small.config;
        log(
          `defaults: ${
            describeRecipe(`vocabulary of ${data.words.length} words`, small.applied)
          } (ε·D ≥ ${SPHERICAL_MIN_FLOOR_MASS} keeps the step stable)`,
        );
      }
      trainer = await Trainer.create({
        config,
        vocab: { words: data.words, counts: data.counts },
        ...deps,
        log,
      });
    }
    log(
      `train: ${config.mode}, dim ${config.dim}, hidden [${config.hidden}], loss ${config.loss}, ${config.output} output on ` +
        `${trainer.backend}, ${data.manifest.rows} examples/epoch, ${config.epochs} epochs, batch ${config.batch}, lr ${config.lr}`,
    );
    const mode = args.progress === "auto" ? (io.tty ? "live" : "json") : args.progress;
    const progress = new ProgressReporter(mode, mode === "live" ? 0.25 : 10, io.out);
    const training = await trainer.train({
      paths: [data.dir],
      rows: data.manifest.rows,
      resume: !!args.resume,
      checkpointDir: join(config.out, "checkpoints"),
      progress,
    });
    const emb = await trainer.embeddings({ output: args.exportOutput });
    const evalDir = args.evalDir ?? defaultEvalDir();
    let report: EvalReport | undefined;
    if (evalDir && evalDir !== "none") {
      report = await evaluateEmbeddings(emb.words, emb.input, emb.d, { evalDir });
    } else log("evaluation: skipped (no ../shared/eval folder; give --eval-dir)");
    const metrics: JobSummary["metrics"] = { coverage: {} };
    if (report) {
      for (const [name, s] of Object.entries(report.similarity)) {
        (metrics as Record<string, unknown>)[name] = round(s.rho, 4);
        metrics.coverage[name] = round(s.coverage, 4);
      }
      if (report.analogy) metrics.analogy = round(report.analogy.total.accuracy, 4);
      for (const m of report.missing) log(`evaluation: not found ${m}`);
    }
    let published: Awaited<ReturnType<typeof publishEmbeddings>>;
    try {
      published = await publishEmbeddings({
        outRoot: join(config.out, "embeddings"),
        words: emb.words,
        input: emb.input,
        d: emb.d,
        ...(emb.output ? { output: emb.output, outputDim: emb.dOut } : {}),
        formats: args.formats,
        manifest: {
          corpus: {
            data: config.data,
            dir: data.dir,
            rows: data.manifest.rows,
            tokens: data.manifest.tokens,
          },
          metrics,
          config,
          training: { ...training, step: trainer.step, backend: trainer.backend },
        },
      });
    } catch (e) {
      throw new ExitError(
        EXIT.exportFailed,
        `publishing the embeddings into ${join(config.out, "embeddings")} failed after training ` +
          `(${(e as Error).message}); the checkpoints in ${join(config.out, "checkpoints")} are saved: ` +
          `rerun deno task export --checkpoint ${config.out}`,
      );
    }
    const summary: JobSummary = {
      event: "summary",
      out: config.out,
      backend: trainer.backend,
      output: config.output,
      loss: config.loss,
      mode: config.mode,
      vocabularySize: emb.words.length,
      d: emb.d,
      training,
      metrics,
      embeddings: { version: published.version, dir: published.versionDir, files: published.files },
      seconds: round((performance.now() - t0) / 1000, 2),
    };
    await Deno.writeTextFile(join(config.out, "summary.json.tmp"), JSON.stringify(summary, null, 2) + "\n");
    await Deno.rename(join(config.out, "summary.json.tmp"), join(config.out, "summary.json"));
    if (io.tty) {
      io.out(
        [
          `done in ${summary.seconds} s: ${training.steps} steps, ${
            Math.round(training.examplesPerSecond)
          } examples/s on ${trainer.backend}`,
          `train loss ${training.trainLoss.toFixed(4)}` +
          (training.validationLoss === undefined
            ? ""
            : `, validation loss ${training.validationLoss.toFixed(4)}`),
          ...(metrics.wordsim353 === undefined ? [] : [`WordSim-353 rho ${metrics.wordsim353}`]),
          ...(metrics.simlex999 === undefined ? [] : [`SimLex-999 rho ${metrics.simlex999}`]),
          ...(metrics.analogy === undefined ? [] : [`analogy accuracy ${metrics.analogy}`]),
          `embeddings: ${published.versionDir}`,
        ].join("\n") + "\n",
      );
    } else io.out(JSON.stringify(summary) + "\n");
    return summary;
  } finally {
    trainer?.close();
  }
}

/** Awaits a checkpoint read; a corrupt or missing file becomes exit code 4 (no usable checkpoint). */
async function unusable<T>(path: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof DataFormatError || e instanceof Deno.errors.NotFound || e instanceof UsageError) {
      throw new ExitError(
        EXIT.noCheckpoint,
        `--resume ${path}: unusable checkpoint: ${(e as Error).message}`,
      );
    }
    throw e;
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Number.isFinite(x) ? Math.round(x * f) / f : x;
}
