/**
 * The `deno task train` job: prepare (or reuse) the corpus, build or resume the trainer, train with
 * progress and checkpoints, evaluate, publish the embeddings, write and print a summary.
 *
 * Run folder (`--out`, default `runs/latest`):
 *   corpus/        the prepared shards, vocab.tsv, manifest.json, train-settings.json (text input only)
 *   checkpoints/   ckpt-<step>.fock, the newest --keep-checkpoints kept; best.fock, the epoch with the
 *                  lowest validation loss (--keep-best)
 *   embeddings/    versions/<version>/ (input.vec, input.bin, …, manifest.json) and the `latest` link
 *   summary.json   the run's summary, over its jobs (the first and every --resume; docs/trainer-api.md)
 *   run.lock       held while a train, refresh or export job works in the folder (lib/core/lock.ts)
 *
 * Never destroys good state: a new run into a folder that holds one is refused unless `--overwrite`, and
 * even then the old checkpoints are only moved aside until the new run's first checkpoint is written (put
 * back if it fails before), and a corpus is prepared under a temporary name and swapped in when complete.
 * On SIGTERM/SIGINT/SIGHUP (lib/core/stop.ts) training stops after the step in progress, writes a checkpoint
 * and ends with exit code 9 and the command to resume.
 *
 * This file holds the job's one sequence (prepare, start or resume, train, checkpoint, publish, summarise),
 * read top to bottom; its data (the corpus prepared or reused, and its checks) is in run_data.ts, what it
 * refuses before training in a run folder in run_guards.ts, and the folder's clean-up in run_folder.ts.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { UsageError } from "../core/errors.ts";
import { DENO_TASK, EXIT, ExitError, exportFailure } from "../core/exit_codes.ts";
import { pathExists as exists } from "../core/os_errors.ts";
import { bestEffortOut, type JobIO } from "./job_io.ts";
import {
  type EvalMetrics,
  evalMetrics,
  type EvalReport,
  evalSkipReason,
  evaluateEmbeddings,
  resolveEvalDir,
} from "../eval/report.ts";
import { writeFileAtomic } from "../core/atomic.ts";
import { type HeldLock, lockRunFolder } from "../core/lock.ts";
import {
  publishEmbeddings,
  type PublishResult,
  readEmbeddingsManifest,
  versionFiles,
} from "../export/publish.ts";
import { StopController, StoppedError } from "../core/stop.ts";
import { exportCommand } from "../export/command.ts";
import { removeOldVersions } from "../export/prune.ts";
import { latestHoldingRun } from "./republish.ts";
import { checkFormatsHoldWords } from "../export/embeddings.ts";
import { applyVocabularyDefaults, describeRecipe, SPHERICAL_MIN_FLOOR_MASS } from "./recipes.ts";
import { type Checkpoint, readCheckpoint } from "./checkpoint.ts";
import { cleanRunFolder, restoreAside } from "./run_folder.ts";
import type { TrainArgs } from "./cli.ts";
import { backendChange, resolveConfig, subsampleDraws, type TrainConfig } from "./config.ts";
import { refuseInsidePublication, refuseOutInside, shellWord } from "../core/cli.ts";
import { fmt4, ProgressReporter } from "./progress.ts";
import { BEST_CHECKPOINT, Trainer, type TrainerDeps, type TrainSummary } from "./trainer.ts";
import { backendEnvironment } from "../linalg/select.ts";
import { bagSplit, readerPlace, writeBehind } from "./defaults.ts";
import { logCorpusUse, refuseUnappliedSettings, requireData, resolveData } from "./run_data.ts";
import { requireOutputBackend } from "../output/create.ts";
import { refuseUnsupportedOnGpu } from "../model/gpu_model.ts";
import {
  type Aside,
  guardUsedFolder,
  pickCheckpoint,
  refuseFewerEpochs,
  refuseOtherRun,
  refuseRefreshed,
  unusable,
} from "./run_guards.ts";

/**
 * What the job returns and writes to summary.json: the run, over all its invocations (its start and every
 * `--resume`; `training`, from the run state its checkpoints carry), and in `thisInvocation` (and
 * `training.thisInvocation`) what this one job did (docs/trainer-api.md, "summary.json").
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
  /** ρ of each similarity set, analogy accuracy, and the coverage of each (lib/eval/report.ts `evalMetrics`). */
  metrics: EvalMetrics;
  /** `epoch`: the epoch of the run whose vectors were published (the best one under --keep-best). */
  embeddings?: { version: string; dir: string; files: string[]; epoch?: number; removedVersions?: string[] };
  /** This job: its wall-clock seconds (preparing, training, evaluating, publishing), the checkpoint it resumed. */
  thisInvocation: { seconds: number; resumedFrom?: string };
};

/**
 * Builds the model (`build`), turning a failed allocation of its arrays (a RangeError from V8) into a
 * UsageError (exit 2) that names --dim and --hidden and about how much memory they need over `words`
 * words: the input and output rows (V×dim, V×d float32), the hidden layers' weights, and the factored
 * output layer's d×d float64 arrays (about ten).
 */
async function buildingModel<T>(c: TrainConfig, words: number, build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (e) {
    if (!(e instanceof RangeError) || !/allocation failed|invalid (typed )?array length/i.test(e.message)) {
      throw e;
    }
    const widths = [c.dim, ...c.hidden], d = widths[widths.length - 1];
    let weights = 0;
    for (let i = 1; i < widths.length; i++) weights += widths[i - 1] * widths[i];
    const bytes = 4 * (words * c.dim + words * d + weights) + (c.output === "factored" ? 10 * 8 * d * d : 0);
    throw new UsageError(
      `--dim ${c.dim}${c.hidden.length ? ` --hidden ${c.hidden.join(",")}` : ""}: the model over ${words} ` +
        `words needs about ${
          (bytes / 2 ** 30).toFixed(1)
        } GiB, which could not be allocated (${e.message}); ` +
        `lower --dim or --hidden`,
    );
  }
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
  stop: StopController = new StopController("train", io.err),
): Promise<JobSummary> {
  const t0 = performance.now();
  const log = io.err;
  let config = args.config;
  let trainer: Trainer | undefined;
  let ckptPath: string | undefined;
  let ckpt: Checkpoint | undefined;
  let resumeDir = false;
  let lock: HeldLock | undefined;
  let aside: Aside | undefined;
  // the run folder's lock first, then (under it) the cleanup of killed jobs' leftovers, before any
  // checkpoint is chosen: a kill may have left the old checkpoints moved aside
  // a run folder this job made is removed again if the job fails before writing anything into it
  let madeOut: string | undefined;
  const lockOut = async (dir: string) => {
    if (!(await exists(dir))) madeOut = dir;
    lock = await lockRunFolder(dir, "train", { log, waitSeconds: args.waitSeconds });
    await cleanRunFolder(dir, log);
  };
  try {
    // a model --backend webgpu cannot run (--hidden, --output naive) is refused from the flags alone, before
    // any work (a resume: once its checkpoint's settings are known, below)
    if (!args.resume) refuseUnsupportedOnGpu(config);
    // the environment the backend and the reader will read, checked before any lock or corpus work
    if (config.backend !== "js") backendEnvironment();
    readerPlace();
    bagSplit();
    writeBehind();
    // a named evaluation folder that is missing or empty is a typo (exit 2), and a corrupt set bad data
    // (exit 5): both now, not after the training; the sets are read once here. A resume that names none
    // goes on with the run's, known once its checkpoint is read
    const runsEvalDir = !!args.resume && !args.explicit.has("evalDir");
    let evalDir = runsEvalDir ? undefined : await resolveEvalDir(config.evalDir);
    if (args.resume) {
      const st = await Deno.stat(args.resume).catch(() => null);
      if (!st) {
        throw new ExitError(
          EXIT.noCheckpoint,
          `--resume ${args.resume}: no such checkpoint file or run folder`,
        );
      }
      resumeDir = st.isDirectory;
      if (resumeDir) {
        await lockOut(
          args.explicit.has("out")
            ? config.out
            : basename(args.resume.replace(/\/+$/, "")) === "checkpoints"
            ? dirname(args.resume.replace(/\/+$/, ""))
            : args.resume,
        );
      }
      ({ ckptPath, ckpt } = await pickCheckpoint(args.resume, st.isDirectory, log));
      const saved = ckpt.meta.config as Record<string, unknown> | undefined;
      if (!saved) throw new ExitError(EXIT.noCheckpoint, `--resume ${ckptPath}: not a trainer checkpoint`);
      // a checkpoint from before --sample-draws trained on one subsampling draw: it goes on with it
      const merged: Record<string, unknown> = { sampleDraws: 1, ...saved };
      for (const k of args.explicit) merged[k] = args.config[k];
      if (!args.explicit.has("out") && st.isDirectory) {
        // a run folder (its checkpoints/ holds the file) or the checkpoints folder itself
        merged.out = ckptPath.startsWith(join(args.resume, "checkpoints") + "/")
          ? args.resume
          : dirname(ckptPath.replace(/\/[^/]*$/, ""));
      } else if (!args.explicit.has("out") && basename(dirname(ckptPath)) === "checkpoints") {
        // a file of a run folder's checkpoints/ continues that run folder, where it is now (moved or
        // copied, the folder its checkpoint saved may hold another run)
        merged.out = dirname(dirname(ckptPath));
      }
      config = await unusable(
        ckptPath,
        Promise.resolve().then(() => resolveConfig(merged, `${ckptPath} config`)),
      );
      refuseUnsupportedOnGpu(config); // before the model is built: exit 2, the checkpoint is usable
      if (runsEvalDir) {
        const given = config.evalDir;
        evalDir = await resolveEvalDir(given).catch((e) => {
          if (!(e instanceof UsageError) || given === undefined) throw e;
          throw new UsageError(`--resume ${ckptPath}: the run's ${e.message}`);
        });
      }
      useThreads(config);
      if (!lock) {
        await lockOut(config.out);
        ckpt = await unusable(ckptPath, readCheckpoint(ckptPath)); // may have changed before the lock
      }
      refuseRefreshed(ckpt, ckptPath, config.out);
      await refuseOtherRun(config, ckptPath, Number(ckpt.meta.step), {
        outGiven: args.explicit.has("out"),
        picked: st.isDirectory,
      });
      refuseFewerEpochs(config.epochs, ckpt.meta.run, ckptPath);
      const words = (ckpt.meta.vocab as { words?: unknown[] } | undefined)?.words?.length ?? 0;
      trainer = await unusable(
        ckptPath!,
        buildingModel(config, words, () =>
          Trainer.fromCheckpoint(ckpt!, {
            ...deps,
            log,
            file: ckptPath!,
            ...(args.explicit.has("backend") ? { backend: config.backend } : {}),
          })),
      );
      let changes: string[];
      try {
        changes = trainer.checkCompatible(config, ckptPath);
      } catch (e) {
        if (e instanceof UsageError) throw new ExitError(EXIT.noCheckpoint, e.message);
        throw e;
      }
      // the trainer already runs on a --backend given (Trainer.fromCheckpoint): its change is the checkpoint's
      const moved = backendChange(String(saved.backend ?? "auto"), config.backend);
      if (moved && !changes.some((c) => c.startsWith("backend:"))) changes.push(moved);
      for (const change of changes) log(`resume: ${change}`);
      trainer.adopt(config);
      log(`resume: ${ckptPath} at step ${trainer.step}`);
    } else {
      useThreads(config);
      // "one draw per epoch" made concrete: a resumed run (--epochs changed or not) keeps its corpus
      if (config.sampleDraws === 0) config = { ...config, sampleDraws: subsampleDraws(config) };
      await refuseOutInside(config.data, config.out);
      await refuseInsidePublication(config.out, "--out", () => "give the run a folder of its own");
      // a missing --data is named as such (exit 5), before the folder it would train into is locked or
      // judged by what it holds
      await requireData(config.data);
      // no adapter is said now, not after the corpus is prepared (minutes on a large one)
      await requireOutputBackend(config.backend);
      await lockOut(config.out);
      aside = await guardUsedFolder(config, args.overwrite, log);
    }
    stop.note =
      "nothing partial was left (the corpus is swapped in only when complete); rerun the same command";
    const trained = trainer?.runCorpus;
    const data = await resolveData(config, log, {
      complete: args.dataComplete,
      ...(trained && ckptPath ? { expect: { identity: trained, checkpoint: ckptPath } } : {}),
    });
    if (!trainer) refuseUnappliedSettings(config, args.explicit, data);
    logCorpusUse(data, config, log); // after the refusals: no line says what would train before one
    // a word the run's word2vec files cannot hold (a shard folder's vocab.tsv may hold any: "of course"):
    // refused now, not when publishing after the whole training
    checkFormatsHoldWords(data.words, config.formats, data.vocabFile, (i) => `line ${i + 1}`);
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
      // the old run's best epoch is not this run's (when its checkpoints were not moved aside whole)
      await Deno.remove(join(config.out, "checkpoints", BEST_CHECKPOINT)).catch(() => {});
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
      const c = config;
      trainer = await buildingModel(c, data.words.length, () =>
        Trainer.create({
          config: c,
          vocab: { words: data.words, counts: data.counts },
          ...deps,
          log,
        }));
    }
    log(
      `train: ${config.mode}, dim ${config.dim}, hidden [${config.hidden}], loss ${config.loss}, ${config.output} output on ` +
        `${trainer.backend}, ${data.manifest.rows} examples/epoch, ${config.epochs} epochs, batch ${config.batch}, lr ${config.lr}`,
    );
    const mode = args.progress === "auto" ? (io.tty ? "live" : "json") : args.progress;
    const { write: out, failed: outFailed } = bestEffortOut(io, () => join(config.out, "summary.json"));
    // one stream with the log: the events only on the progress output, until that fails (then in the log)
    const progress = new ProgressReporter(
      mode,
      mode === "live" ? 0.25 : 10,
      out,
      () => (io.merged ?? false) && !outFailed(),
    );
    const t = trainer;
    const training = await stop.deferred(() =>
      t.train({
        paths: [data.dir],
        rows: data.manifest.rows,
        corpus: data.identity,
        resume: !!args.resume,
        checkpointDir: join(config.out, "checkpoints"),
        progress,
        stop: stop.abort,
        onCheckpoint: async () => {
          if (!aside) return;
          await Deno.remove(aside.dir, { recursive: true });
          aside.forget();
          log(
            `new run in ${config.out}: its first checkpoint is written; removed the ${aside.count} old one(s)`,
          );
          aside = undefined;
        },
      })
    );
    if (training.stopped || stop.signal) {
      const at = trainer.runProgress;
      throw new StoppedError(
        `stopped by ${stop.signal ?? "a stop request"} at step ${trainer.step}` +
          (at ? ` (epoch ${Math.min(at.epoch + 1, config.epochs)} of ${config.epochs})` : "") +
          `: checkpoint ${trainer.lastCheckpoint ?? "(none: no --out checkpoints)"}; ` +
          `resume with: ${DENO_TASK} train --resume ${shellWord(config.out)}`,
      );
    }
    // the checkpoint this run publishes, which export --checkpoint <out> publishes too (publishedCheckpoint)
    const kept = training.keptEpoch !== undefined && training.keptEpoch !== trainer.config.epochs;
    const bestFile = join(config.out, "checkpoints", BEST_CHECKPOINT);
    const source = kept
      ? `${bestFile} (epoch ${training.keptEpoch}, the lowest validation loss)`
      : trainer.lastCheckpoint;
    stop.note = `training is complete and its checkpoint ${source} is saved; ` +
      `publish it with: ${publishCommand(config)}`;
    if (kept) {
      log(
        `keep-best: evaluating and publishing epoch ${training.keptEpoch}'s vectors (the lowest validation ` +
          `loss); the last epoch's state is in ${training.checkpoint ?? "no checkpoint"}`,
      );
    }
    const emb = await trainer.embeddings({ output: config.exportOutput });
    let report: EvalReport | undefined;
    if (evalDir) report = await evaluateEmbeddings(emb.words, emb.input, emb.d, { evalDir });
    else log(`evaluation: skipped (${evalSkipReason(config.evalDir)})`);
    const metrics = evalMetrics(report);
    for (const m of report?.missing ?? []) log(`evaluation: not found ${m}`);
    let summary: JobSummary | undefined, published: PublishResult | undefined;
    // a resume of a finished run takes no step: the latest version holds these vectors already
    const held = ckptPath && training.thisInvocation.steps === 0
      ? await latestHoldingRun(join(config.out, "embeddings"), {
        step: trainer.step,
        keptEpoch: training.keptEpoch,
        formats: config.formats,
        exportOutput: config.exportOutput,
        metrics,
      })
      : null;
    try {
      // summary.json is written with the publication, a stop held meanwhile: it never misses a published run
      const committed = async (r: PublishResult) => {
        published = r;
        // latest points at it from here: a stop held while summary.json is written (or fails) says so
        stop.note = `training is complete and ${r.versionDir} is published (latest points at it), ` +
          `without its summary.json; nothing to rerun`;
        const removedVersions = args.keepVersions === undefined
          ? undefined
          : await removeOldVersions(join(config.out, "embeddings"), args.keepVersions, (l) =>
            log(`embeddings: ${l}`));
        summary = {
          event: "summary",
          out: config.out,
          backend: t.backend,
          output: config.output,
          loss: config.loss,
          mode: config.mode,
          vocabularySize: emb.words.length,
          d: emb.d,
          training,
          metrics,
          embeddings: {
            version: r.version,
            dir: r.versionDir,
            files: r.files,
            ...(training.keptEpoch === undefined ? {} : { epoch: training.keptEpoch }),
            ...(removedVersions === undefined ? {} : { removedVersions }),
          },
          thisInvocation: {
            seconds: round((performance.now() - t0) / 1000, 2),
            ...(ckptPath ? { resumedFrom: ckptPath } : {}),
          },
        };
        await writeFileAtomic(join(config.out, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
        stop.note = `training is complete and ${r.versionDir} is published (latest points at it); ` +
          `nothing to rerun`;
      };
      if (held) {
        log(
          `embeddings: ${held} (latest) holds this run's vectors already (step ${trainer.step}, the same ` +
            `formats and metrics); nothing published again`,
        );
        const manifest = await readEmbeddingsManifest(held);
        await committed({ version: basename(held), versionDir: held, files: versionFiles(held, manifest) });
      } else {
        await publishEmbeddings({
          outRoot: join(config.out, "embeddings"),
          words: emb.words,
          input: emb.input,
          d: emb.d,
          ...(emb.output ? { output: emb.output, outputDim: emb.dOut } : {}),
          formats: config.formats,
          committed,
          ...(report ? { evaluation: report } : {}),
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
      }
    } catch (e) {
      if (published) {
        // committed was reached: the version is published, only the report is missing
        const done = published;
        throw exportFailure(
          e,
          (why) =>
            `training is complete and ${done.versionDir} is published (latest points at it), but ` +
            `${join(config.out, "summary.json")} could not be written (${why}); the embeddings are usable, ` +
            `nothing to rerun (the training figures are in the version's manifest.json)`,
        );
      }
      throw exportFailure(
        e,
        (why) =>
          `publishing the embeddings into ${join(config.out, "embeddings")} failed after training ` +
          `(${why}); the checkpoints in ${join(config.out, "checkpoints")} are saved: ` +
          `rerun ${publishCommand(config)}`,
      );
    }
    if (!summary || !published) throw new Error("publishEmbeddings returned without calling committed");
    if (io.tty) {
      out(
        [
          `done in ${summary.thisInvocation.seconds} s: ${training.thisInvocation.steps} steps, ${
            Math.round(training.thisInvocation.examplesPerSecond)
          } examples/s on ${trainer.backend}` +
          (ckptPath ? ` (the run: ${training.steps} steps, ${training.epochsDone} epochs)` : ""),
          `train loss ${fmt4(training.trainLoss)}` +
          (training.validationLoss === undefined
            ? ""
            : `, validation loss ${training.validationLoss.toFixed(4)}`),
          ...(metrics.wordsim353 === undefined ? [] : [`WordSim-353 rho ${metrics.wordsim353}`]),
          ...(metrics.simlex999 === undefined ? [] : [`SimLex-999 rho ${metrics.simlex999}`]),
          ...(metrics.analogy === undefined ? [] : [`analogy accuracy ${metrics.analogy}`]),
          ...(training.backoffs
            ? [`step size halved ${training.backoffs}× (backoff ×${training.lrScale})`]
            : []),
          `embeddings: ${published.versionDir}` +
          (training.bestEpoch !== undefined && training.keptEpoch === training.bestEpoch
            ? ` (epoch ${training.keptEpoch}: the lowest validation loss)`
            : ""),
        ].join("\n") + "\n",
      );
    } else out(JSON.stringify(summary) + "\n");
    return summary;
  } finally {
    trainer?.close();
    if (aside) {
      // a failure here must neither hide the job's own error nor keep the lock: the old checkpoints stay
      // aside, where the next job into the folder puts them back (run_folder.ts cleanRunFolder)
      const { dir } = aside;
      await restoreAside(config.out, aside, log).then(aside.forget, (e) =>
        log(
          `cleanup: could not put the old checkpoints in ${dir} back (${(e as Error).message}); the next ` +
            `train job into ${config.out} puts them back`,
        ));
    }
    await lock?.release();
    if (madeOut) await Deno.remove(madeOut).catch(() => {}); // only an empty folder is removed
  }
}

/**
 * Sets the OpenBLAS thread count of the run's `--threads` (0: leaves OpenBLAS's own), before the backend
 * is loaded. A resumed run calls it with the checkpoint's count, which decides its float32 rounding.
 */
function useThreads(c: TrainConfig): void {
  if (c.threads > 0) Deno.env.set("OPENBLAS_NUM_THREADS", String(c.threads));
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Number.isFinite(x) ? Math.round(x * f) / f : x;
}

/**
 * The export command that publishes what the run `c` publishes: its checkpoint folder (export takes the
 * epoch the run publishes, lib/train/best.ts publishedCheckpoint), its --formats and its output rows
 * (--export-output).
 */
function publishCommand(c: TrainConfig): string {
  return exportCommand({ checkpoint: c.out, formats: c.formats, outputRows: c.exportOutput });
}
