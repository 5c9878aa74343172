/**
 * `deno task refresh`: continues a training run on new data, for a scheduler.
 *
 * ```sh
 * deno task refresh --from runs/latest --data data/new-articles/ [--epochs 1] [--lr 0.01] [--min-count 5]
 * ```
 *
 * Steps, all under the run folder's lock `<from>/run.lock` (shared with train and export):
 * 1. load the checkpoint the run publishes, the one `deno task export --checkpoint <from>` takes
 *    (lib/train/best.ts publishedCheckpoint): its newest good one, or for a finished `--keep-best` run whose
 *    best epoch is not its last, `best.fock`, the epoch whose vectors the run published (one log line says
 *    which and why). The refresh goes on from those parameters with the finished run's bookkeeping (its
 *    newest checkpoint's run state and options; best.ts continuation), its steps numbered on from the
 *    highest checkpoint step in `<from>/checkpoints`: its checkpoints sort after every one there, so the
 *    refreshed one is the run's newest (pruning keeps it; `train --resume` and the next refresh take it),
 *    and no file of the run is overwritten;
 * 2. prepare the new text (or take a folder of prepared shards: one line names the settings it was prepared
 *    with that differ from the run's corpus) into a staging folder `<from>/refresh-staging/<stamp>-<pid>/`,
 *    with the run's mode and the settings its corpus was prepared with (tokenisation, window, sample; from
 *    the run's last refresh, the prepared corpus it trained on, or `<from>/corpus`:
 *    lib/train/refresh_inputs.ts runPreparation; unknown: exit 5) and min-count 1, so that words already
 *    known are kept however rare they are in the new data;
 * 3. grow the vocabulary with the new data's words reaching `--min-count` that it lacks (most frequent
 *    first): each new output row enters W exactly through OutputLayer.appendRows, old rows unchanged;
 * 4. train `--epochs` epochs on the new data (ids remapped to the grown vocabulary on the fly; words
 *    below the min-count that are not in the vocabulary are dropped, and examples left empty: none left is
 *    exit 5), checkpoints going to staging, marked as a refresh's (`meta.refresh`, which train --resume
 *    refuses) when it trains or grows the vocabulary;
 * 5. write the final checkpoint into `<from>/checkpoints` (temporary name + rename; a step above the run's
 *    newest, also with `--epochs 0`; older ones pruned to the run's --keep-checkpoints, at least 2), then
 *    publish the embeddings as a new version of `<from>/embeddings` (or `--out`), `latest` moved only when
 *    the version is complete.
 * On any failure before step 5 the previous checkpoint and the published versions are untouched; a
 * crash leaves at most a staging folder and a stale lock, both cleared by the next run.
 *
 * SIGTERM/SIGINT/SIGHUP during training (lib/core/stop.ts): the step in progress is finished, a checkpoint of
 * the refresh is written into its staging folder with `stopped.json`, `<from>` is left unchanged, and the
 * job exits 9 printing the command to continue (the same command line): a rerun with the same `--data`
 * (the same path, and the same content: its identity, lib/train/corpus_identity.ts, is in `stopped.json`;
 * changed data starts over, in one line), `--epochs`, `--lr` and `--min-count` from the same checkpoint of
 * `<from>` (the same file with the same step and write time, and the same newest step above which its steps
 * are numbered) continues that staging folder instead of starting over, with the figures of an
 * uninterrupted refresh. The refreshed checkpoint records what it is a refresh of (meta `refresh`): a rerun
 * of the same command on the same data that finds it the run's newest and unpublished (a `kill -9`, exit
 * 7/8 while publishing) publishes it instead of training again. A signal at any other moment exits 9 at
 * once with no partial file: its staging folder is removed (and refresh-staging/ with it), and the line
 * says whether `<from>` is unchanged (rerun the same command) or already holds the refreshed checkpoint
 * (publish it with `deno task export --checkpoint <from>`; the checkpoint's write holds the signal until it
 * is whole, so the line is never wrong about it).
 *
 * Exit codes (the shared table of lib/core/exit_codes.ts; one line `refresh: <reason>` on stderr for every
 * non-zero one):
 * 0 done · 1 internal error · 2 bad flags (also a `--from` that is a part of a run, a publication or a
 * checkpoint file: the line names the run folder, and no lock is taken there) · 3 locked (another train/refresh/export works in `<from>`) ·
 * 4 no usable checkpoint in `<from>` · 5 bad data (missing, empty or corrupt) · 6 diverged (lower
 * --lr; nothing was written) · 7 export failed after the new checkpoint was saved (rerun
 * `deno task export --checkpoint <from>`) · 8 operating-system error (disk full, read-only, permission; also
 * when publishing fails for that after the checkpoint was saved) · 9 stopped by a signal (see above).
 *
 * @module
 */

import { basename, join, resolve } from "node:path";
import { DataFormatError, UsageError } from "../lib/core/errors.ts";
import {
  type FlagSpec,
  helpText,
  nonNegativeInt,
  parseFlags,
  positiveInt,
  positiveNumber,
} from "../lib/core/cli.ts";
import { refuseOutInside, refusePublishIntoRun, shellWord, stdoutIsStderr } from "../lib/core/cli.ts";
import { bestEffortOut } from "../lib/train/job_io.ts";
import {
  DENO_TASK,
  EXIT,
  exitCodesHelp,
  ExitError,
  exportFailure,
  runCommand,
} from "../lib/core/exit_codes.ts";
import { pathExists as exists } from "../lib/core/os_errors.ts";
import { lockRunFolder } from "../lib/core/lock.ts";
import {
  publishEmbeddings,
  readEmbeddingsManifest,
  removeStaleTemps,
  versionFiles,
} from "../lib/export/publish.ts";
import { removeOldVersions } from "../lib/export/prune.ts";
import { checkFormatsHoldWords } from "../lib/export/embeddings.ts";
import { holdingStop, removeAtExit, StopController, StoppedError } from "../lib/core/stop.ts";
import { EMBEDDING_FORMATS, parseFormats } from "../lib/export/read.ts";
import { exportCommand } from "../lib/export/command.ts";
import { remapExamples } from "../lib/export/remap.ts";
import {
  evalMetrics,
  type EvalReport,
  evalSkipReason,
  evaluateEmbeddings,
  readMetrics,
  resolveEvalDir,
} from "../lib/eval/report.ts";
import { type CorpusManifest, readManifest } from "../lib/io/manifest.ts";
import { fingerprintChange, fingerprintInputs, type InputFingerprint } from "../lib/io/fingerprint.ts";
import { prepareCorpus } from "../lib/io/prepare.ts";
import { classifyInputs } from "../lib/io/detect.ts";
import { scanShards } from "../lib/io/shards.ts";
import { readVocab } from "../lib/io/vocab.ts";
import {
  type Checkpoint,
  checkpointName,
  checkpointStep,
  listCheckpoints,
  readNewestGoodCheckpoint,
} from "../lib/train/checkpoint.ts";
import { cleanRunFolder } from "../lib/train/run_folder.ts";
import { continuation, publishedCheckpoint } from "../lib/train/best.ts";
import { type CorpusIdentity, manifestIdentity, textCorpusIdentity } from "../lib/train/corpus_identity.ts";
import { latestHoldingCheckpoint } from "../lib/train/republish.ts";
import { resolveConfig } from "../lib/train/config.ts";
import { exportOutputFlag } from "../lib/train/cli.ts";
import { openReader as defaultOpenReader } from "../lib/train/defaults.ts";
import { ProgressReporter } from "../lib/train/progress.ts";
import { type OpenReader, Trainer } from "../lib/train/trainer.ts";
import {
  preparationDifferences,
  type RefreshCommit,
  type RefreshMark,
  refreshMark,
  type RefreshMeta,
  refuseNotRunFolder,
  runPreparation,
  unknownPreparation,
} from "../lib/train/refresh_inputs.ts";

const FLAGS: Record<string, FlagSpec> = {
  from: {
    type: "string",
    help: "the training run folder (checkpoints/, embeddings/) to continue (required)",
  },
  data: {
    type: "string",
    help: "new data: a text file or folder (.txt/.gz), or a folder of prepared shards (required)",
  },
  epochs: {
    type: "string",
    help: "epochs over the new data (0: only grow the vocabulary and publish)",
    default: "1",
  },
  lr: { type: "string", help: "initial learning rate of this refresh (default: the run's --lr)" },
  "min-count": {
    type: "string",
    help: "new words need this many occurrences in the new data (default: the run's)",
  },
  engine: {
    type: "string",
    help: "engine preparing new text: builtin | duckdb (docs/corpus-engines.md)",
    default: "builtin",
  },
  "memory-limit": { type: "string", help: "duckdb: memory limit, e.g. 2GB" },
  "spill-dir": {
    type: "string",
    help: "duckdb: folder for what does not fit in memory, made if missing (not its parent)",
  },
  out: { type: "string", help: "publication root (default: <from>/embeddings; not <from> itself)" },
  formats: { type: "string", help: "embedding files to publish", default: EMBEDDING_FORMATS.join(",") },
  "export-output": {
    type: "string",
    bare: "true",
    help: "also publish the output rows of W, as train's --export-output: true (also given alone) | false",
  },
  "output-rows": { type: "boolean", help: "the same as --export-output (its older name, still accepted)" },
  "keep-versions": {
    type: "string",
    help:
      "after publishing, remove the versions of the publication root beyond the newest N (latest always kept; " +
      "default: keep all)",
  },
  backend: { type: "string", help: "output-layer backend: js | blas | auto", default: "auto" },
  threads: { type: "string", help: "OpenBLAS threads (0: OpenBLAS's default)", default: "0" },
  "eval-dir": {
    type: "string",
    help:
      "evaluation sets ('none' skips evaluation; default: $FACTOROUT_EVAL_DIR, else ../shared/eval if there)",
  },
  progress: { type: "string", help: "auto | live | json | none", default: "auto" },
  wait: {
    type: "string",
    help: "seconds to wait for another job's lock on --from (exit 3 after)",
    default: "0",
  },
  help: { type: "boolean", short: "h", help: "show this help", default: false },
};

const NOTES = "On SIGTERM, SIGINT or SIGHUP the step in progress is finished, the refresh's state kept in\n" +
  "<from>/refresh-staging/ (<from> unchanged) and the command to continue printed; the exit code is 9.\n\n" +
  exitCodesHelp("locked", "noCheckpoint", "badData", "diverged", "exportFailed", "stopped");

/** Wraps data-stage failures as exit code 5 (bad data). */
async function dataStage<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof DataFormatError || e instanceof UsageError || e instanceof Deno.errors.NotFound) {
      throw new ExitError(EXIT.badData, `${what}: ${(e as Error).message}`);
    }
    throw e;
  }
}

const stop = new StopController("refresh").install();
await runCommand("refresh", async () => {
  const f = parseFlags(Deno.args, FLAGS);
  if (f.help) {
    console.log(helpText(`${DENO_TASK} refresh --from RUN_DIR --data NEW_DATA [flags]`, FLAGS, NOTES));
    return;
  }
  if (typeof f.from !== "string" || f.from === "") {
    throw new UsageError("--from RUN_DIR is required; see --help");
  }
  if (typeof f.data !== "string" || f.data === "") {
    throw new UsageError("--data FILE|DIR is required; see --help");
  }
  const from = f.from.replace(/\/+$/, "");
  const epochs = nonNegativeInt("--epochs", f.epochs);
  const lr = f.lr === undefined ? undefined : positiveNumber("--lr", f.lr);
  const minCountFlag = f["min-count"] === undefined ? undefined : positiveInt("--min-count", f["min-count"]);
  const formats = parseFormats(f.formats as string);
  const keepVersions = f["keep-versions"] === undefined
    ? 0
    : positiveInt("--keep-versions", f["keep-versions"]);
  const backend = f.backend as string;
  if (!["js", "blas", "auto"].includes(backend)) {
    throw new UsageError(`--backend must be js, blas or auto, got "${backend}"`);
  }
  const threads = nonNegativeInt("--threads", f.threads);
  // --export-output, as train calls it; --output-rows, its older name here, still means the same
  const outputRows = exportOutputFlag(f["export-output"], f["output-rows"]);
  const engine = f.engine as string;
  if (engine !== "builtin" && engine !== "duckdb") {
    throw new UsageError(`--engine must be builtin or duckdb, got ${JSON.stringify(engine)}`);
  }
  for (const k of ["memory-limit", "spill-dir"]) {
    if (f[k] !== undefined && engine !== "duckdb") throw new UsageError(`--${k} needs --engine duckdb`);
  }
  if (threads > 0) Deno.env.set("OPENBLAS_NUM_THREADS", String(threads));
  const progressMode = f.progress as string;
  if (!["auto", "live", "json", "none"].includes(progressMode)) {
    throw new UsageError(`--progress must be auto, live, json or none`);
  }
  const waitSeconds = Number(f.wait);
  if (!(waitSeconds >= 0) || String(f.wait).trim() === "") {
    throw new UsageError(`--wait must be a number of seconds >= 0, got ${JSON.stringify(f.wait)}`);
  }
  const log = (line: string) => console.error(line);
  // standard output is best-effort, as train's (lib/train/run.ts): a closed pipe or a full disk there drops
  // the progress and the result line (one stderr line says so), and the refresh goes on
  const enc = new TextEncoder();
  const stdout = bestEffortOut({
    out: (text) => {
      const bytes = enc.encode(text);
      for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
    },
    err: log,
    tty: Deno.stdout.isTerminal(),
  }, () => `${typeof f.out === "string" ? f.out : join(from, "embeddings")}/latest`);
  const merged = stdoutIsStderr();

  if (!(await exists(from))) throw new ExitError(EXIT.noCheckpoint, `--from ${from}: no such run folder`);
  // a part of a run, a publication or a checkpoint file: exit 2 naming the run folder, and no lock there
  await refuseNotRunFolder(from);
  // a named evaluation folder that is missing or empty is a typo (exit 2), a corrupt set bad data (exit
  // 5): both before the lock and the refresh's training
  const evalDir = await resolveEvalDir(f["eval-dir"] as string | undefined);
  await refuseOutInside(f.data, from, "--from");
  if (typeof f.out === "string") {
    await refuseOutInside(f.data, f.out);
    await refusePublishIntoRun(f.out, from, "--from");
  }
  const lock = await lockRunFolder(from, `refresh --data ${f.data}`, { log, waitSeconds });
  const stagingRoot = join(from, "refresh-staging");
  let staging = join(stagingRoot, `${new Date().toISOString().replace(/[-:.]/g, "")}-${Deno.pid}`);
  let trainer: Trainer | undefined;
  let keepStaging = false;
  // a stop removes this refresh's staging folder (its partial corpus, its checkpoints), except when it is
  // kept to be continued (stopped.json): nothing else would ever read it
  let forgetStaging = () => {};
  try {
    // leftovers of killed jobs (we hold the lock), and the checkpoints a killed train --overwrite moved aside
    await cleanRunFolder(from, (l) => log(`refresh: ${l}`));
    const removed = [
      // a publication root of its own: only the leftovers of dead publishers with a pid (no run's lock there)
      ...(typeof f.out === "string" ? await removeStaleTemps(f.out, { unowned: false }) : []),
    ];
    if (removed.length) log(`refresh: removed temporary files left by killed jobs: ${removed.join(", ")}`);
    // 1. the checkpoint: the newest says whether the training is finished, the published one is the base
    const newest = await pickNewest(join(from, "checkpoints"), from, log);
    // a training stopped before its last epoch (a signal, kill -9, a divergence) is not a result to refresh:
    // the refresh's checkpoint would become the run's newest and the training could not be resumed
    const run = (newest.checkpoint.meta as { run?: { epoch?: number; epochs?: number } | null }).run;
    if (run && typeof run.epoch === "number" && typeof run.epochs === "number" && run.epoch < run.epochs) {
      throw new ExitError(
        EXIT.noCheckpoint,
        `--from ${from}: its newest checkpoint ${newest.path} is of a training stopped in epoch ${
          run.epoch + 1
        } of ` +
          `${run.epochs}; finish it first (${DENO_TASK} train --resume ${shellWord(from)}), then refresh`,
      );
    }
    const base = await publishedCheckpoint(newest.path, newest.checkpoint, (l) => log(`refresh: ${l}`));
    const ckpt = base.file;
    // the refresh's steps are numbered above every checkpoint of the run (corrupt newer ones included)
    const names = await listCheckpoints(join(from, "checkpoints"));
    const after = Math.max(
      Number(newest.checkpoint.meta.step ?? 0),
      ...names.map((p) => checkpointStep(p) ?? 0),
    );
    const baseStep = Number(base.ckpt.meta.step ?? 0);
    log(
      `refresh: starting from ${ckpt} (` +
        (base.epoch !== undefined
          ? `epoch ${base.epoch}, the one the run published: its lowest validation loss, --keep-best; the ` +
            `newest checkpoint ${newest.path} is epoch ${run?.epochs ?? "?"}`
          : "the newest checkpoint, the one the run publishes") +
        (after > baseStep ? `; the refresh's steps are numbered on from step ${after}` : "") + ")",
    );
    // the identity of --data (its content, as train --resume checks it): a stopped refresh is continued, and
    // an unpublished refreshed checkpoint published, only over the same data
    const data = f.data;
    const source = await dataStage(`--data ${data}`, () => identifyData(data, log));
    // a refresh stopped by a signal with the same inputs from the same checkpoint (the same file, step and
    // write time, and the same newest step its steps are numbered above) is continued; other leftovers of
    // crashed refreshes are removed
    const key = JSON.stringify({
      base: ckpt,
      step: baseStep,
      written: base.ckpt.meta.createdAt ?? null,
      after,
      data: f.data,
      epochs,
      lr,
      minCount: minCountFlag ?? null,
    });
    let resumed: { ckpt: Checkpoint; path: string; dir: string; oldV: number; dropped: number } | undefined;
    if (await exists(stagingRoot)) {
      for await (const e of Deno.readDir(stagingRoot)) {
        const at = join(stagingRoot, e.name);
        const info = await Deno.readTextFile(join(at, "stopped.json")).then(JSON.parse, () => undefined);
        if (!resumed && info?.key === key) {
          const changed = dataChange(info.data, source);
          if (changed) {
            // never the old data's staged corpus or grown model: the new data is refreshed from the start
            log(
              `refresh: --data ${data} changed since the refresh in ${at} was stopped (${changed}); ` +
                `removing it and starting over on the new data`,
            );
            await Deno.remove(at, { recursive: true });
            continue;
          }
          const r = await readNewestGoodCheckpoint(join(at, "checkpoints")).catch(() => undefined);
          if (r) {
            resumed = {
              ckpt: r.checkpoint,
              path: r.path,
              dir: info.dir,
              oldV: info.oldV,
              dropped: Number(info.dropped ?? 0),
            };
            staging = at;
            log(`refresh: continuing the refresh stopped at ${r.path}`);
            continue;
          }
        }
        log(`refresh: removing ${at} left by an earlier run`);
        await Deno.remove(at, { recursive: true });
      }
    }
    // the staging root holds no other folder now: a stop removes it whole, not leaving it empty
    if (!resumed) forgetStaging = removeAtExit(stagingRoot);
    // what the refresh checkpoint records (RefreshCommit.request): the same command with the same data
    const request = JSON.stringify({
      identity: source.identity,
      epochs,
      lr: lr ?? null,
      minCount: minCountFlag ?? null,
    });
    const outRoot = typeof f.out === "string" ? f.out : join(from, "embeddings");
    // what the export command that publishes it needs beside the checkpoint: this refresh's formats and rows
    const publishCommand = (checkpoint: string) =>
      exportCommand({
        checkpoint,
        formats,
        outputRows,
        ...(typeof f.out === "string" ? { out: f.out } : {}),
      });
    /** Step 5's publication: publishes the refreshed model `t`, saved as `saved`, and prints the JSON line. */
    const publish = async (t: Trainer, saved: string, record: RefreshCommit): Promise<void> => {
      const emb = await t.embeddings({ output: outputRows });
      let report: EvalReport | undefined;
      if (evalDir) {
        // the sets train evaluates, analogies included: a refreshed version's metrics compare with the run's
        report = await evaluateEmbeddings(emb.words, emb.input, emb.d, { evalDir });
      } else log(`refresh: evaluation skipped (${evalSkipReason(f["eval-dir"] as string | undefined)})`);
      // the shape train writes (lib/eval/report.ts evalMetrics)
      const metrics = evalMetrics(report);
      let published;
      try {
        published = await publishEmbeddings({
          outRoot,
          words: emb.words,
          input: emb.input,
          d: emb.d,
          ...(emb.output ? { output: emb.output, outputDim: emb.dOut } : {}),
          formats,
          committed: ({ versionDir: dir }) => {
            stop.note =
              `the refresh is complete and ${dir} is published (latest points at it); nothing to rerun`;
          },
          ...(report ? { evaluation: report } : {}),
          manifest: {
            corpus: record.corpus,
            metrics,
            config: t.config,
            refresh: {
              from: record.from,
              checkpoint: saved,
              newWords: record.newWords,
              previousVocabularySize: record.previousVocabularySize,
              epochs: record.epochs,
              training: record.training,
            },
          },
        });
      } catch (e) {
        throw exportFailure(
          e,
          (why) => `export failed (${why}); the checkpoint ${saved} is saved: ${publishCommand(saved)}`,
        );
      }
      const removedVersions = keepVersions
        ? await removeOldVersions(outRoot, keepVersions, (l) => log(`refresh: ${l}`))
        : [];
      stdout.write(
        JSON.stringify({
          event: "refresh",
          from,
          previousCheckpoint: record.from,
          checkpoint: saved,
          newWords: record.newWords,
          vocabularySize: emb.words.length,
          training: record.training,
          metrics,
          // the fields of train's summary (docs/trainer-api.md)
          embeddings: {
            version: published.version,
            dir: published.versionDir,
            files: published.files,
            ...(keepVersions ? { removedVersions } : {}),
          },
        }) + "\n",
      );
    };
    const done = (newest.checkpoint.meta.refresh as RefreshMeta | undefined)?.commit;
    const published = !resumed && done?.request === request
      ? await latestHoldingCheckpoint(outRoot, newest.path, formats, outputRows)
      : null;
    if (published) {
      // this refresh is the run's newest checkpoint and published where asked, in these formats (a
      // scheduler's retry, or a rerun after export --checkpoint published it): the same command again would
      // apply the data twice
      log(
        `refresh: the run's newest checkpoint ${newest.path} is this refresh of --data ${data} (the same content, ` +
          `--epochs, --lr and --min-count), and ${published} (latest) holds it: nothing to do (to train on the same ` +
          `data again, give another --epochs or --lr)`,
      );
      const m = await readEmbeddingsManifest(published);
      const removedVersions = keepVersions
        ? await removeOldVersions(outRoot, keepVersions, (l) => log(`refresh: ${l}`))
        : [];
      stdout.write(
        JSON.stringify({
          event: "refresh",
          from,
          unchanged: true,
          checkpoint: newest.path,
          newWords: done!.newWords,
          vocabularySize: m.vocabularySize,
          training: done!.training,
          // a version an older refresh or export published: its metrics in the shape written now
          metrics: readMetrics(m.metrics),
          embeddings: {
            version: basename(published),
            dir: published,
            files: versionFiles(published, m),
            ...(keepVersions ? { removedVersions } : {}),
          },
        }) + "\n",
      );
      return;
    }
    if (!resumed && done?.request === request) {
      // killed, or publishing failed, after the refreshed checkpoint was saved: training again would apply
      // the same data twice
      log(
        `refresh: the run's newest checkpoint ${newest.path} is this refresh of --data ${data} (the same content), ` +
          `not published in ${outRoot}; publishing it instead of training again`,
      );
      stop.note = `the refreshed model is saved as ${newest.path}; publish it with: ${publishCommand(from)}`;
      trainer = await Trainer.fromCheckpoint(newest.checkpoint, {
        backend: backend as "js" | "blas" | "auto",
        log,
        name: newest.path,
      });
      await publish(trainer, newest.path, done);
      return;
    }
    let map = new Int32Array(0);
    // the examples the remap drops, per batch (a batch read again after a rollback counts once): the
    // examples reported are those trained, not those read
    const droppedAt = new Map<string, number>();
    const droppedNow = () => [...droppedAt.values()].reduce((a, b) => a + b, 0);
    const openReader: OpenReader = (paths, o) =>
      (async function* () {
        for await (const b of defaultOpenReader(paths, o)) {
          const r = remapExamples(b.inputs, b.targets, map, paths.join(","));
          const at = (b.position as { example?: unknown } | null)?.example ?? JSON.stringify(b.position);
          droppedAt.set(`${b.epoch} ${at}`, r.dropped);
          yield { ...b, inputs: r.inputs, targets: r.targets };
        }
      })();
    try {
      trainer = await Trainer.fromCheckpoint(
        resumed?.ckpt ?? continuation(base.ckpt, newest.checkpoint, after),
        {
          backend: backend as "js" | "blas" | "auto",
          log,
          openReader,
          name: resumed?.path ?? ckpt,
        },
      );
    } catch (e) {
      if (e instanceof DataFormatError || e instanceof UsageError) {
        throw new ExitError(EXIT.noCheckpoint, `unusable checkpoint: ${resumed?.path ?? ckpt}: ${e.message}`);
      }
      throw e;
    }
    const cfg = trainer.config;
    // the job options this refresh runs with, in its checkpoints (a later train --resume goes on with them,
    // publishing what this refresh publishes: its --export-output is train's), checked as train
    // checks them
    const given = f["eval-dir"] as string | undefined;
    const job = resolveConfig(
      {
        ...cfg,
        threads,
        formats: [...formats],
        exportOutput: outputRows,
        ...(given === undefined ? {} : { evalDir: given }),
      },
      "refresh",
    );
    cfg.threads = job.threads;
    cfg.formats = job.formats;
    cfg.exportOutput = job.exportOutput;
    cfg.evalDir = job.evalDir;
    const oldV = resumed?.oldV ?? trainer.vocab.words.length;
    const minCount = minCountFlag ?? cfg.minCount;
    // the figures of the refresh's start, also when it is continued (its checkpoint has steps and new words)
    log(`refresh: step ${after}, ${oldV} words, ${cfg.mode}, dim ${cfg.dim}`);
    // how the run's corpus was prepared: new text is prepared the same way, a prepared --data is compared
    const prep = await runPreparation(from, cfg, newest.checkpoint);

    // 2. the new data
    await Deno.mkdir(staging, { recursive: true });
    const { dir, manifest } = await dataStage(`--data ${data}`, async () => {
      // prepared data is read where it is, by a continued refresh too (shards without manifest.json)
      if (source.corpus) {
        const diff = "preparation" in prep
          ? preparationDifferences(source.corpus.manifest.source, prep.preparation)
          : [];
        if (diff.length) {
          log(
            `refresh: --data ${data} was prepared with ${
              diff.join(", ")
            }: its words and windows train, not ` +
              `the run's (from ${(prep as { origin: string }).origin}); prepare it again with the run's ` +
              `settings to train those`,
          );
        }
        return source.corpus;
      }
      // text: a continued refresh goes on over the corpus it prepared (the same content, checked above)
      if (resumed) return { dir: resumed.dir, manifest: await readManifest(resumed.dir) };
      if ("unknown" in prep) throw unknownPreparation(from, cfg.data, prep.unknown, data, cfg.mode);
      const p = prep.preparation;
      const out = join(staging, "corpus");
      log(`refresh: preparing ${data} into ${out} as the run's corpus was (from ${prep.origin})`);
      const m = await (engine === "duckdb"
        ? (await import("../lib/io/duckdb_prepare.ts")).prepareCorpusDuckdb
        : prepareCorpus)({
          ...(engine === "duckdb"
            ? {
              ...(f["memory-limit"] !== undefined ? { memoryLimit: String(f["memory-limit"]) } : {}),
              spillDir: f["spill-dir"] !== undefined ? String(f["spill-dir"]) : `${out}.spill`,
            }
            : {}),
          input: data,
          outDir: out,
          mode: cfg.mode,
          window: p.window,
          minCount: 1,
          sample: p.sample,
          seed: cfg.seed + trainer!.step,
          lowercase: p.lowercase,
          punctuation: p.punctuation,
          sentences: p.sentences,
          ...(p.dynamicWindow !== undefined ? { dynamicWindow: p.dynamicWindow } : {}),
          ...(p.weights === "distance" || p.weights === "uniform" ? { weights: p.weights } : {}),
        });
      return { dir: out, manifest: m };
    });
    if (manifest.mode !== "external" && manifest.mode !== cfg.mode) {
      throw new ExitError(
        EXIT.badData,
        `--data ${dir} holds ${manifest.mode} windows but the run is ${cfg.mode}`,
      );
    }
    if (manifest.rows === 0) throw new ExitError(EXIT.badData, `--data ${dir}: no examples`);
    const nv = await dataStage(
      `--data ${dir}`,
      () => readVocab(join(dir, manifest.vocabFile), { expectedSize: manifest.vocabSize }),
    );

    // 3. grow the vocabulary: the words the run's vocabulary (its first oldV words) lacks; a continued
    // refresh's checkpoint already holds them (appended in this order), and they are counted the same
    const known = new Set(trainer.vocab.words.slice(0, oldV));
    const newWords: string[] = [], newCounts: number[] = [], newLines: number[] = [];
    for (let i = 0; i < nv.words.length; i++) {
      if (!known.has(nv.words[i]) && nv.counts[i] >= minCount) {
        newWords.push(nv.words[i]);
        newCounts.push(nv.counts[i]);
        newLines.push(i + 1);
      }
    }
    // words the word2vec files of --formats cannot hold ("of course" in a shard folder's vocab.tsv): refused
    // before the training, not when publishing after it
    checkFormatsHoldWords(trainer.vocab.words, formats, resumed?.path ?? ckpt, (i) => `row ${i + 1}`);
    checkFormatsHoldWords(newWords, formats, join(dir, manifest.vocabFile), (k) => `line ${newLines[k]}`);
    const held = new Set(trainer.vocab.words);
    const missing = newWords.map((_, k) => k).filter((k) => !held.has(newWords[k]));
    await trainer.growVocabulary(missing.map((k) => newWords[k]), missing.map((k) => newCounts[k]));
    const ids = new Map(trainer.vocab.words.map((w, i) => [w, i] as const));
    map = new Int32Array(nv.words.length);
    let unknown = 0;
    for (let i = 0; i < nv.words.length; i++) {
      map[i] = ids.get(nv.words[i]) ?? -1;
      if (map[i] < 0) unknown++;
    }
    log(
      `refresh: ${newWords.length} new words (min-count ${minCount})` +
        (newWords.length ? `, e.g. ${newWords.slice(0, 8).join(", ")}` : "") +
        `; ${unknown} rarer unknown words dropped; vocabulary ${oldV} → ${trainer.vocab.words.length}`,
    );
    const nothing = () =>
      new ExitError(
        EXIT.badData,
        `--data ${data}: no example of it uses a word the run knows or one reaching --min-count ${minCount}, ` +
          `so there is nothing to train; nothing was written (give other data, or a lower --min-count)`,
      );
    if (unknown === nv.words.length) throw nothing();
    // the mark of a refreshed run, in its checkpoints: train --resume refuses them (the run's data and
    // vocabulary are not the checkpoint's any more), the next refresh reads the run's preparation from it.
    // Set by a refresh that trains or grows the vocabulary; one that does neither carries the run's on
    const mark: RefreshMark | undefined = epochs > 0 || newWords.length > 0
      ? { data, ...("preparation" in prep ? { preparation: prep.preparation } : {}) }
      : refreshMark(newest.checkpoint);
    if (mark) trainer.checkpointMeta = { refresh: mark satisfies RefreshMeta };

    // 4. train
    let training: (Awaited<ReturnType<Trainer["train"]>> & { droppedExamples?: number }) | undefined;
    if (epochs > 0) {
      trainer.adopt(resolveConfig({ ...cfg, epochs, ...(lr !== undefined ? { lr } : {}) }));
      const mode = progressMode === "auto"
        ? (Deno.stdout.isTerminal() ? "live" : "json")
        : progressMode as "live" | "json" | "none";
      const progress = new ProgressReporter(
        mode,
        mode === "live" ? 0.25 : 10,
        stdout.write,
        () => merged && !stdout.failed(),
      );
      training = await dataStage(`--data ${dir}`, async () => {
        try {
          return await stop.deferred(() =>
            trainer!.train({
              paths: [dir],
              rows: manifest.rows,
              epochs,
              resume: !!resumed,
              checkpointDir: join(staging, "checkpoints"),
              progress,
              stop: stop.abort,
            })
          );
        } catch (e) {
          if (e instanceof UsageError) throw new Error(e.message); // a usage problem inside training is not bad data
          throw e;
        }
      });
    }

    const dropped = (resumed?.dropped ?? 0) + droppedNow();
    if (training?.stopped || stop.signal) {
      forgetStaging();
      const stopped = {
        key,
        dir,
        oldV,
        dropped,
        data: { identity: source.identity, inputs: source.inputs },
      };
      await Deno.writeTextFile(join(staging, "stopped.json"), JSON.stringify(stopped) + "\n");
      keepStaging = true;
      throw new StoppedError(
        `stopped by ${stop.signal} at step ${trainer.step}: the refresh's checkpoint ${trainer.lastCheckpoint} ` +
          `is kept in ${staging} and ${from} is unchanged; continue with: ${DENO_TASK} refresh ${
            Deno.args.map(shellWord).join(" ")
          }`,
      );
    }
    // from here a stop removes the staging folder (a continued one too): until the checkpoint is in <from>,
    // the same command redoes the refresh; once it is, the line says so and how to publish it
    if (resumed) forgetStaging = removeAtExit(stagingRoot);
    stop.note = `nothing partial was left and ${from} is unchanged; rerun the same command`;
    if (training) {
      // every example the remap dropped (its known words never in one window): nothing was trained
      if (training.examples - dropped <= 0) throw nothing();
      training = {
        ...training,
        examples: training.examples - dropped,
        droppedExamples: dropped,
        thisInvocation: {
          ...training.thisInvocation,
          examples: training.thisInvocation.examples - droppedNow(),
        },
      };
    }

    // 5. commit: checkpoint, then the embeddings
    if (trainer.step <= after) {
      // no step taken (--epochs 0): advance the counter so that the grown model gets its own file, the
      // run's newest, and the run's checkpoints stay as they were
      trainer.renumber(after + 1);
      log(
        `refresh: step counter advanced to ${trainer.step}, past the run's newest checkpoint (step ${after})`,
      );
    }
    const refreshed = trainer;
    // recorded in the checkpoint: a rerun of the same command that finds it unpublished publishes it
    const record: RefreshCommit = {
      request,
      corpus: { data, dir, rows: manifest.rows, tokens: manifest.tokens, refreshOf: cfg.data },
      from: ckpt,
      newWords: newWords.length,
      previousVocabularySize: oldV,
      epochs,
      // the summary names the checkpoint written into <from>, not the staging copy, which is removed
      ...(training
        ? { training: { ...training, checkpoint: join(from, "checkpoints", checkpointName(trainer.step)) } }
        : {}),
    };
    // one entry, meta.refresh: the run's mark (if any) and this refresh's commit
    refreshed.checkpointMeta = { refresh: { ...mark, commit: record } satisfies RefreshMeta };
    // a signal during the write stops the job once it is whole, with the note that says it is there
    const saved = await holdingStop(async () => {
      const path = await refreshed.saveCheckpoint(join(from, "checkpoints"), {
        keep: Math.max(2, cfg.keepCheckpoints),
      });
      stop.note = `the refreshed model is saved as ${path}; publish it with: ${publishCommand(from)}`;
      return path;
    });
    log(`refresh: checkpoint ${saved}`);
    await publish(trainer, saved, record);
  } finally {
    trainer?.close();
    if (!keepStaging) {
      await Deno.remove(staging, { recursive: true }).catch(() => {});
      await Deno.remove(stagingRoot).catch(() => {}); // only when empty
    }
    await lock.release();
  }
});
// ended here, not by the event loop running dry: a signal after the work, while the runtime tears down, would
// meet no listener and end the process with the default 143 (docs/faults.md)
Deno.exit(EXIT.ok);

/** The newest good checkpoint of the run (newer corrupt ones skipped, said in one line); else exit 4. */
async function pickNewest(
  dir: string,
  from: string,
  log: (line: string) => void,
): Promise<{ path: string; checkpoint: Checkpoint }> {
  try {
    return await readNewestGoodCheckpoint(dir, (l) => log(`refresh: ${l}`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ExitError(
        EXIT.noCheckpoint,
        `no checkpoint (ckpt-*.fock) in ${dir}; run ${DENO_TASK} train --out ${shellWord(from)} first`,
      );
    }
    if (e instanceof DataFormatError) {
      throw new ExitError(EXIT.noCheckpoint, `unusable checkpoint: ${e.message}`);
    }
    throw e;
  }
}

/**
 * `--data` and its identity (lib/train/corpus_identity.ts, as train's resolveData computes it): a prepared
 * corpus (manifest.json) or shards without one (Spark's output, vocab.tsv beside them; their counts are
 * new) with the folder and manifest to read, or text, by its content fingerprint (prepared later).
 */
async function identifyData(data: string, log: (line: string) => void): Promise<{
  identity: CorpusIdentity;
  inputs?: InputFingerprint;
  corpus?: { dir: string; manifest: CorpusManifest };
}> {
  if (await exists(join(data, "manifest.json"))) {
    const manifest = await readManifest(data);
    return { identity: manifestIdentity(manifest), corpus: { dir: data, manifest } };
  }
  if (!(await exists(data))) throw new DataFormatError(data, "no such file or folder");
  const c = await classifyInputs([data]);
  if (c.kind === "shards") {
    const s = await scanShards(data, c, log);
    if (!s.vocabFile) {
      throw new DataFormatError(
        data,
        "refresh needs the words of the shards' ids: put vocab.tsv beside them",
      );
    }
    return { identity: manifestIdentity(s.manifest), corpus: { dir: s.dir, manifest: s.manifest } };
  }
  // by absolute paths: new.txt, ./new.txt and /abs/new.txt are the same data (a rerun spelling it otherwise
  // would train on it twice)
  const inputs = await fingerprintInputs(resolve(data));
  return { identity: textCorpusIdentity({}, inputs), inputs };
}

/** How `now` differs from the data a stopped refresh recorded (stopped.json `data`); "" when the same. */
function dataChange(
  was: { identity?: unknown; inputs?: InputFingerprint } | undefined,
  now: { identity: CorpusIdentity; inputs?: InputFingerprint },
): string {
  if (was?.identity === now.identity) return "";
  if (!was?.identity) return "its identity was not recorded";
  if (was.inputs && now.inputs) return fingerprintChange(was.inputs, now.inputs) || "its content changed";
  if (!was.inputs !== !now.inputs) {
    return now.inputs ? "it was a prepared corpus, now text" : "it was text, now a prepared corpus";
  }
  return "it was prepared again";
}
