/**
 * `deno task export`: publishes the embeddings of a checkpoint (or of an existing vector file) as a new
 * version under `--out`, atomically (see lib/export/publish.ts): word2vec .vec/.bin, Arrow IPC, Parquet;
 * the input embeddings always, the output rows of W with `--export-output` (`--output-rows`, its older name).
 *
 * ```sh
 * deno task export --checkpoint runs/latest --out runs/latest/embeddings --formats vec,parquet --export-output
 * deno task export --vectors model.vec --out out/embeddings --formats arrow   # convert an existing file
 * ```
 *
 * Exit codes (the shared table of lib/core/exit_codes.ts): 0 done, 1 internal error, 2 bad flags, 3 locked
 * (another job works in the checkpoint's run folder), 4 no usable checkpoint (none, corrupt: checksum
 * mismatch, truncated), 5 bad vector file, 8 an operating-system error (disk full, read-only `--out`, …; the
 * previous version stays published), 9 stopped by a signal (the unfinished version is removed; `latest`
 * still points at the previous complete one, or there is none: the line says which).
 *
 * `--out` is refused (exit 2) inside a run's working folders and inside a publication (its `versions/`, a
 * published version, `latest`): published versions are never changed. Before publishing, the job removes
 * the unfinished versions of publishes killed with kill -9 (their process gone; lib/export/publish.ts
 * `removeStaleTemps`), never a running one's.
 *
 * With `--checkpoint` inside a run folder (`<run>/checkpoints/`), the job holds `<run>/run.lock`, shared
 * with train and refresh (a run on a read-only file system is read without it, one line says so); a folder gives its newest good checkpoint (newer corrupt ones are skipped and
 * said so), or, for a finished `--keep-best` run whose best epoch is not its last, `best.fock`: the vectors
 * the train job publishes, so that its "publish it with" line publishes them.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { DataFormatError, UsageError } from "../lib/core/errors.ts";
import {
  type FlagSpec,
  HELP_FLAG,
  helpText,
  parseFlags,
  positiveInt,
  printResultLine,
  refusePublishIntoRun,
} from "../lib/core/cli.ts";
import { DENO_TASK, EXIT, exitCodesHelp, ExitError, runCommand } from "../lib/core/exit_codes.ts";
import { latestVersionDir, publishEmbeddings, removeStaleTemps } from "../lib/export/publish.ts";
import { checkFormatsHoldWords } from "../lib/export/embeddings.ts";
import { removeOldVersions } from "../lib/export/prune.ts";
import { osErrno, pathExists } from "../lib/core/os_errors.ts";
import { EMBEDDING_FORMATS, parseFormats, readEmbeddings } from "../lib/export/read.ts";
import {
  evalMetrics,
  type EvalReport,
  evalSkipReason,
  evaluateEmbeddings,
  formatEvalReport,
  resolveEvalDir,
} from "../lib/eval/report.ts";
import { lockRunFolder } from "../lib/core/lock.ts";
import { StopController } from "../lib/core/stop.ts";
import { readCheckpoint, readNewestGoodCheckpoint } from "../lib/train/checkpoint.ts";
import { publishedCheckpoint } from "../lib/train/best.ts";
import { cleanRunFolder, movedAsideCheckpoints } from "../lib/train/run_folder.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { exportOutputFlag } from "../lib/train/cli.ts";

const FLAGS: Record<string, FlagSpec> = {
  checkpoint: {
    type: "string",
    help:
      "a checkpoint file (ckpt-*.fock), a checkpoints folder or a run folder (its newest; a finished --keep-best run: its best.fock)",
  },
  vectors: {
    type: "string",
    help: "instead of --checkpoint: republish an embedding file (.vec/.bin/.arrow/.parquet)",
  },
  out: {
    type: "string",
    help:
      "the publication root (versions/ and the latest link); default <run>/embeddings for a checkpoint in <run>/checkpoints",
  },
  formats: { type: "string", help: "comma-separated formats", default: EMBEDDING_FORMATS.join(",") },
  "export-output": {
    type: "string",
    bare: "true",
    help:
      "also publish the output rows of W (checkpoint only), as train's --export-output: true (also given alone) | false",
  },
  "output-rows": { type: "boolean", help: "the same as --export-output (its older name, still accepted)" },
  backend: {
    type: "string",
    help: "backend that rebuilds the output layer: js | blas | auto",
    default: "auto",
  },
  eval: {
    type: "boolean",
    help: "evaluate before publishing: the metrics go into manifest.json, the whole report into eval.json",
    default: false,
  },
  "eval-dir": {
    type: "string",
    help: "evaluation sets for --eval (default: $FACTOROUT_EVAL_DIR, else ../shared/eval if there)",
  },
  "keep-versions": {
    type: "string",
    help:
      "after publishing, remove the versions of --out beyond the newest N (latest always kept; default: keep all)",
  },
  wait: {
    type: "string",
    help: "seconds to wait for another job's lock on the run folder (exit 3 after)",
    default: "0",
  },
  help: HELP_FLAG,
};

const stop = new StopController("export").install();
// until it publishes (then: what latest points at, said when the version's folder is made)
stop.note = "nothing was published; rerun the same command";
await runCommand("export", async () => {
  const f = parseFlags(Deno.args, FLAGS);
  if (f.help) {
    console.log(helpText(
      `${DENO_TASK} export (--checkpoint FILE|DIR | --vectors FILE) [--out ROOT] [flags]`,
      FLAGS,
      exitCodesHelp("locked", "noCheckpoint", "badData", "stopped"),
    ));
    return;
  }
  const formats = parseFormats(f.formats as string);
  const backend = f.backend as string;
  if (!["js", "blas", "auto"].includes(backend)) {
    throw new UsageError(`--backend must be js, blas or auto, got "${backend}"`);
  }
  const waitSeconds = Number(f.wait);
  if (!(waitSeconds >= 0) || String(f.wait).trim() === "") {
    throw new UsageError(`--wait must be a number of seconds >= 0, got ${JSON.stringify(f.wait)}`);
  }
  const keepVersions = f["keep-versions"] === undefined
    ? 0
    : positiveInt("--keep-versions", f["keep-versions"]);
  const hasCk = typeof f.checkpoint === "string", hasVec = typeof f.vectors === "string";
  if (hasCk === hasVec) {
    throw new UsageError("give exactly one of --checkpoint FILE|DIR or --vectors FILE; see --help");
  }
  const outputRows = exportOutputFlag(f["export-output"], f["output-rows"]);
  if (hasVec && outputRows) {
    const given = f["output-rows"] === true ? "--output-rows" : "--export-output";
    throw new UsageError(`${given} needs --checkpoint (a vector file has no output rows)`);
  }

  if (!f.eval && f["eval-dir"] !== undefined) {
    throw new UsageError(
      `--eval-dir ${f["eval-dir"]} is read only with --eval: add --eval to evaluate before publishing, ` +
        `or leave --eval-dir out`,
    );
  }
  // a named evaluation folder that is missing or empty is a typo (exit 2), before the lock and any work
  const evalDir = f.eval ? await resolveEvalDir(f["eval-dir"] as string | undefined) : undefined;

  let words: string[], input: Float32Array, d: number;
  let output: Float32Array | undefined, outputDim: number | undefined;
  const manifest: Record<string, unknown> = {};
  let out = f.out as string | undefined;
  let lock: Awaited<ReturnType<typeof lockRunFolder>> | undefined;
  try {
    if (hasVec) {
      if (!out) throw new UsageError("--out ROOT is required with --vectors");
      await refusePublishIntoRun(out);
      const e = await readEmbeddings(f.vectors as string);
      ({ words, d } = e);
      input = e.vectors;
      manifest.source = { vectors: f.vectors };
    } else {
      const ck = f.checkpoint as string;
      const st = await pathExists(ck) ? await Deno.stat(ck) : null;
      if (!st) throw new ExitError(EXIT.noCheckpoint, `--checkpoint ${ck}: no such file or folder`);
      // the run folder: <run> for <run>/checkpoints/<file>, <run>/checkpoints or <run>
      const norm = ck.replace(/\/+$/, "");
      const runDir = st.isDirectory
        ? (basename(norm) === "checkpoints" ? dirname(norm) : norm)
        : (basename(dirname(norm)) === "checkpoints" ? dirname(dirname(norm)) : undefined);
      if (out) await refusePublishIntoRun(out, runDir, "--checkpoint");
      // without --out a checkpoint publishes into its run's embeddings/: said before the model is loaded
      if (!out && st.isFile && runDir === undefined) {
        throw new UsageError(`--out ROOT is required: ${ck} is not in a <run>/checkpoints folder`);
      }
      // a run's folder (its checkpoints, or those a killed train --overwrite moved aside): under its lock,
      // after what killed jobs left there is cleared and the moved-aside checkpoints are put back
      if (
        runDir && (st.isFile || await Deno.stat(join(runDir, "checkpoints")).then(() => true, () => false) ||
          (await movedAsideCheckpoints(runDir)).length > 0)
      ) {
        try {
          lock = await lockRunFolder(runDir, "export", { waitSeconds });
        } catch (e) {
          // a run on a read-only file system (an archive) cannot be locked, nor changed by a job through this
          // mount: its checkpoints are read as they are, for an --out elsewhere (without one, publishing into
          // its embeddings/ fails below, naming it)
          if (osErrno(e) !== "EROFS") throw e;
          console.error(
            `export: ${runDir} is on a read-only file system: its checkpoints are read without the run's lock`,
          );
        }
        if (lock) await cleanRunFolder(runDir, (l) => console.error(`export: ${l}`));
      }
      let file: string, ckpt, epoch: number | undefined;
      try {
        if (st.isDirectory) {
          const log = (l: string) => console.error(`export: ${l}`);
          const newest = await readNewestGoodCheckpoint(ck, log);
          // a run publishes what its train job publishes: a finished --keep-best run its best epoch
          ({ file, ckpt, epoch } = await publishedCheckpoint(newest.path, newest.checkpoint, log));
          if (epoch !== undefined) {
            log(
              `${file}: epoch ${epoch} of the finished run, the lowest validation loss, which the run ` +
                `publishes (--keep-best); its last epoch is ${newest.path} (give that file to publish it)`,
            );
          }
        } else {
          file = ck;
          ckpt = await readCheckpoint(ck);
          if (ckpt.unchecked) console.error(`export: ${file} has no checksum (written by an older version)`);
        }
      } catch (e) {
        if (e instanceof Deno.errors.NotFound || (st.isFile && osErrno(e) === "ENOENT")) {
          throw new ExitError(
            EXIT.noCheckpoint,
            st.isFile
              ? (e as Error).message
              : `--checkpoint ${ck}: no ckpt-*.fock in it or in its checkpoints/`,
          );
        }
        if (e instanceof DataFormatError) {
          throw new ExitError(EXIT.noCheckpoint, `unusable checkpoint: ${e.message}`);
        }
        throw e;
      }
      if (!out) {
        const ckDir = dirname(file);
        if (basename(ckDir) !== "checkpoints") {
          throw new UsageError(`--out ROOT is required: ${file} is not in a <run>/checkpoints folder`);
        }
        out = join(dirname(ckDir), "embeddings");
      }
      let trainer: Trainer;
      try {
        trainer = await Trainer.fromCheckpoint(ckpt, {
          backend: backend as "js" | "blas" | "auto",
          log: (l) => console.error(l),
          name: file,
        });
      } catch (e) {
        if (e instanceof DataFormatError || e instanceof UsageError) {
          throw new ExitError(EXIT.noCheckpoint, `unusable checkpoint: ${file}: ${e.message}`);
        }
        throw e;
      }
      try {
        const emb = await trainer.embeddings({ output: outputRows });
        ({ words, input, d } = emb);
        if (emb.output) {
          output = emb.output;
          outputDim = emb.dOut;
        }
        manifest.config = trainer.config;
        manifest.corpus = { data: trainer.config.data };
        manifest.source = { checkpoint: file, step: trainer.step, ...(epoch === undefined ? {} : { epoch }) };
      } finally {
        trainer.close();
      }
    }
    // a word the word2vec files cannot hold (from a run on shards whose vocabulary has "of course"): one
    // line naming the source and the formats that hold it, not the version's temporary file
    checkFormatsHoldWords(
      words,
      formats,
      String((manifest.source as { vectors?: string; checkpoint?: string }).checkpoint ?? f.vectors),
      (i) => `row ${i + 1}`,
    );
    let report: EvalReport | undefined;
    if (evalDir) {
      report = await evaluateEmbeddings(words, input, d, { evalDir });
      console.error(formatEvalReport(report));
    } else if (f.eval) {
      console.error(`export: evaluation skipped (${evalSkipReason(f["eval-dir"] as string | undefined)})`);
    }
    // the shape every job writes (train's, lib/eval/report.ts evalMetrics); the whole report in eval.json
    manifest.metrics = evalMetrics(report);
    // versions left unfinished by killed publishes (kill -9): those of processes no longer running; a folder
    // without a pid in its name only under the run's lock
    const removed = await removeStaleTemps(out, { unowned: lock !== undefined });
    if (removed.length) {
      console.error(
        `export: cleanup: removed ${removed.length} temporary file(s) left by killed jobs: ${
          removed.map((n) => join(out!, n)).join(", ")
        }`,
      );
    }
    const previous = await latestVersionDir(out).catch(() => null); // not a link: the publish refuses it
    stop.note = `the unfinished version was removed; ${
      previous
        ? `latest still points at the previous one, ${previous}`
        : `nothing is published under ${out} (no latest)`
    }; rerun the same command`;
    const r = await publishEmbeddings({
      outRoot: out,
      words,
      input,
      d,
      ...(output ? { output, outputDim } : {}),
      formats,
      manifest,
      ...(report ? { evaluation: report } : {}),
      committed: ({ versionDir: dir }) => {
        stop.note = `version ${dir} is published and latest points at it; nothing to rerun`;
      },
    });
    const removedVersions = keepVersions
      ? await removeOldVersions(out, keepVersions, (l) => console.error(`export: ${l}`))
      : [];
    printResultLine(
      JSON.stringify({
        event: "published",
        version: r.version,
        dir: r.versionDir,
        files: r.files,
        // what manifest.json holds, as train's and refresh's summary lines carry them
        metrics: manifest.metrics,
        ...(keepVersions ? { removedVersions } : {}),
      }),
      `${r.versionDir} (${join(out, "latest")})`,
    );
  } finally {
    await lock?.release();
  }
});
// ended here, not by the event loop running dry: a signal after the work, while the runtime tears down, would
// meet no listener and end the process with the default 143 (docs/faults.md)
Deno.exit(EXIT.ok);
