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
 * Size: the train job's one sequence (prepare, start or resume, train, checkpoint, publish, summarise) read
 * top to bottom, with the checks of its data that must come before the training.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { DataFormatError, UsageError } from "../core/errors.ts";
import { EXIT, ExitError, exportFailure } from "../core/exit_codes.ts";
import { osErrno, pathExists as exists } from "../core/os_errors.ts";
import { type EvalReport, evalSkipReason, evaluateEmbeddings, resolveEvalDir } from "../eval/report.ts";
import { replaceDir, tempNameFor, writeFileAtomic } from "../core/atomic.ts";
import { type HeldLock, lockRunFolder } from "../core/lock.ts";
import {
  latestVersionDir,
  publishEmbeddings,
  type PublishResult,
  readEmbeddingsManifest,
} from "../export/publish.ts";
import { atExit, holdingStop, StopController, StoppedError } from "../core/stop.ts";
import { exportCommand } from "../export/command.ts";
import { removeOldVersions } from "../export/prune.ts";
import { latestHoldingRun } from "./republish.ts";
import { checkFormatsHoldWords } from "../export/embeddings.ts";
import { type CorpusManifest, readManifest } from "../io/manifest.ts";
import { classifyInputs } from "../io/detect.ts";
import { fingerprintChange, fingerprintInputs, type InputFingerprint } from "../io/fingerprint.ts";
import { type CorpusIdentity, manifestIdentity, textCorpusIdentity } from "./corpus_identity.ts";
import { prepareCorpus } from "../io/prepare.ts";
import { requireComplete, scanShards } from "../io/shards.ts";
import { applyVocabularyDefaults, describeRecipe, SPHERICAL_MIN_FLOOR_MASS } from "./recipes.ts";
import { readVocab } from "../io/vocab.ts";
import {
  type Checkpoint,
  checkpointName,
  listCheckpoints,
  readCheckpoint,
  readNewestGoodCheckpoint,
} from "./checkpoint.ts";
import { cleanRunFolder, restoreAside } from "./run_folder.ts";
import type { TrainArgs } from "./cli.ts";
import { backendChange, FLAG_OF, resolveConfig, subsampleDraws, type TrainConfig } from "./config.ts";
import { refuseInsidePublication, refuseOutInside, resolveReal, shellWord } from "../core/cli.ts";
import { refreshMark } from "./refresh_inputs.ts";
import { fmt4, ProgressReporter } from "./progress.ts";
import { BEST_CHECKPOINT, Trainer, type TrainerDeps, type TrainSummary } from "./trainer.ts";
import { backendEnvironment } from "../linalg/select.ts";
import { bagSplit, readerPlace } from "./defaults.ts";

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
 * `io.out` made best-effort: when standard output fails (a closed pipe, `> /dev/full`, a closed
 * descriptor: EPIPE, ENOSPC, EBADF, EIO) one line on stderr says so and where the result is (`summary`,
 * the run's summary.json), and the progress and summary lines after it are dropped; the training and its
 * publication go on. Other errors are thrown.
 */
function bestEffortOut(io: JobIO, summary: () => string): (text: string) => void {
  let failed = false;
  return (text) => {
    if (failed) return;
    try {
      io.out(text);
    } catch (e) {
      const errno = osErrno(e) ?? (e instanceof Deno.errors.BrokenPipe ? "EPIPE" : undefined) ??
        (e instanceof Deno.errors.BadResource ? "EBADF" : undefined);
      if (!errno || !["EPIPE", "ENOSPC", "EBADF", "EIO"].includes(errno)) throw e;
      failed = true;
      io.err(
        `stdout: cannot write (${errno}: ${(e as Error).message}): progress and the summary line are not ` +
          `printed; the training goes on, and ${summary()} has the result`,
      );
    }
  };
}

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
  /** ρ of each similarity set, analogy accuracy, and the coverage of each (`coverage.analogy` included). */
  metrics: { wordsim353?: number; simlex999?: number; analogy?: number; coverage: Record<string, number> };
  /** `epoch`: the epoch of the run whose vectors were published (the best one under --keep-best). */
  embeddings?: { version: string; dir: string; files: string[]; epoch?: number; removedVersions?: string[] };
  /** This job: its wall-clock seconds (preparing, training, evaluating, publishing), the checkpoint it resumed. */
  thisInvocation: { seconds: number; resumedFrom?: string };
};

/**
 * The corpus settings that decide the prepared shards (the subsampling draws only when more than one, so
 * that a single-draw corpus prepared before draws existed is still reused).
 */
function corpusSettings(c: TrainConfig) {
  const draws = subsampleDraws(c);
  return {
    data: c.data,
    mode: c.mode,
    window: c.window,
    minCount: c.minCount,
    sample: c.sample,
    ...(draws > 1 ? { sampleDraws: draws, validation: c.validation } : {}),
    seed: c.seed,
    limitTokens: c.limitTokens,
  };
}

/**
 * Whether a corpus prepared with the settings `was` (its train-settings.json, less the inputs' fingerprint)
 * gives the run `c` exactly the data it would prepare: the same settings, and subsampling draws that give
 * every epoch the same draw — as many, or at least one per epoch on both sides (draw k does not depend on
 * their number, lib/io/draws.ts). Beyond draw 0 the positions left out depend on the held-out fraction.
 */
function servesRun(was: Record<string, unknown>, c: TrainConfig): boolean {
  const now: Record<string, unknown> = corpusSettings(c);
  const rest = ({ sampleDraws: _n, validation: _v, ...other }: Record<string, unknown>) =>
    JSON.stringify(other);
  if (rest(was) !== rest(now)) return false;
  const N = Number(was.sampleDraws ?? 1), n = Number(now.sampleDraws ?? 1), E = c.epochs;
  if (!(N === n || (N >= E && n >= E))) return false;
  return E < 2 || N < 2 || was.validation === c.validation;
}

/**
 * The corpus a run trains on ({@link resolveData}): its folder and manifest, its vocabulary (read from
 * `vocabFile`; `""` for shards without vocab.tsv, whose ids are the words), its identity, and whether the
 * job prepared it from text (`prepared`) or took prepared shards as they are.
 */
export type ResolvedData = {
  dir: string;
  manifest: CorpusManifest;
  words: string[];
  counts: number[];
  identity: CorpusIdentity;
  vocabFile: string;
  prepared: boolean;
};

/**
 * Refuses a `--data` that does not exist (ExitError, exit 5, naming it). A new run checks it before its
 * `--out` is locked or looked at: a mistyped path into a folder that holds a run is this, not "already
 * holds a run (… a corpus prepared with other settings)" (exit 2); {@link resolveData} checks it again.
 */
async function requireData(data: string): Promise<void> {
  if (data !== "brown" && !(await exists(data))) {
    throw new ExitError(
      EXIT.badData,
      `--data ${data}: no such file or folder (give 'brown', a text file or folder, or a folder of shards)`,
    );
  }
}

/**
 * Resolves `--data` to a corpus: a folder with manifest.json is used as it is; shards without one (a
 * folder, or a single `.arrow`/`.parquet` file, told by content) are read and checked once and used in
 * place ({@link scanShards}); text (or "brown") is prepared into `<out>/corpus`, reused when already
 * prepared with the same settings from inputs with the same content fingerprint. A binary file, or a
 * folder mixing shards and text, is refused (DataFormatError, exit 5).
 */
export async function resolveData(
  c: TrainConfig,
  log: (line: string) => void,
  opts: { complete?: boolean; expect?: { identity: CorpusIdentity; checkpoint: string } } = {},
): Promise<ResolvedData> {
  // a resumed run goes on only over the data its checkpoint trained on; checked before a changed text
  // is prepared, so the corpus it trained on stays
  const same = (identity: CorpusIdentity, why: string) => {
    if (!opts.expect || opts.expect.identity === identity) return identity;
    throw new ExitError(
      EXIT.noCheckpoint,
      `--resume ${opts.expect.checkpoint}: --data ${c.data} is not the data this checkpoint trained on (${why}); ` +
        `restore that data to resume, or start a new run on it (--overwrite or another --out)`,
    );
  };
  let dir: string;
  let identity: CorpusIdentity | undefined;
  let prepared = false;
  await requireData(c.data);
  if (c.data !== "brown" && (await exists(join(c.data, "manifest.json")))) {
    dir = c.data;
  } else {
    const inputs = c.data === "brown" ? null : await classifyInputs([c.data]);
    if (inputs?.kind === "shards") {
      if (opts.complete) await requireComplete(c.data);
      const s = await scanShards(c.data, inputs, log);
      const id = same(manifestIdentity(s.manifest), "its shards changed");
      checkCorpus(c, s.dir, s.manifest, log);
      return {
        dir: s.dir,
        manifest: s.manifest,
        words: s.vocab.words,
        counts: s.vocab.counts,
        identity: id,
        vocabFile: s.vocabFile,
        prepared: false,
      };
    }
    dir = join(c.out, "corpus");
    prepared = true;
    const fingerprint = await fingerprintInputs(c.data);
    const settings = JSON.stringify({ ...corpusSettings(c), inputs: fingerprint });
    const stamp = join(dir, "train-settings.json");
    let change = "not prepared yet";
    if ((await exists(join(dir, "manifest.json"))) && (await exists(stamp))) {
      let was: Record<string, unknown> = {};
      try {
        was = JSON.parse(await Deno.readTextFile(stamp));
      } catch { /* an unreadable stamp: prepare again */ }
      const { inputs: wasInputs, ...wasSettings } = was;
      change = !servesRun(wasSettings, c)
        ? "other settings"
        : fingerprintChange(wasInputs as InputFingerprint | undefined, fingerprint);
    }
    identity = same(
      textCorpusIdentity(corpusSettings(c), fingerprint),
      change === "not prepared yet" ? "its text or preparation settings changed" : change,
    );
    if (!change) {
      log(
        `corpus: reusing ${dir} (prepared with the same settings from the same input content, ${fingerprint.method})`,
      );
    } else {
      log(
        `corpus: preparing ${c.data} into ${dir} (${change}; mode ${c.mode}, window ${c.window}, min-count ${c.minCount}` +
          `${subsampleDraws(c) > 1 ? `, ${subsampleDraws(c)} subsampling draws` : ""})`,
      );
      const t0 = performance.now();
      // prepared under a temporary name and swapped in when complete: the old corpus stays until then
      await replaceDir(dir, async (tmp) => {
        await prepareCorpus({
          input: c.data,
          outDir: tmp,
          mode: c.mode,
          window: c.window,
          minCount: c.minCount,
          sample: c.sample,
          sampleDraws: subsampleDraws(c),
          holdOut: c.validation,
          seed: c.seed,
          ...(c.limitTokens > 0 ? { limitTokens: c.limitTokens } : {}),
          onNotice: (line) => log(`corpus: ${line}`),
        });
        await Deno.writeTextFile(join(tmp, "train-settings.json"), settings);
      });
      log(`corpus: prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  const manifest = await readManifest(dir);
  identity ??= same(manifestIdentity(manifest), "its manifest.json changed: the corpus was prepared again");
  checkCorpus(c, dir, manifest, log);
  const vocabFile = join(dir, manifest.vocabFile);
  const { words, counts } = await readVocab(vocabFile, { expectedSize: manifest.vocabSize });
  return { dir, manifest, words, counts, identity, vocabFile, prepared };
}

/**
 * Says how the epochs read a subsampled corpus: each its own draw, or (fewer draws than epochs) cycling.
 */
function logDraws(m: CorpusManifest, c: TrainConfig, log: (line: string) => void): void {
  const n = m.draws?.length ?? 1, sample = Number(m.source?.sample ?? 0);
  if (n > 1 && m.source?.holdOut !== c.validation) {
    log(
      `corpus: its draws 1-${
        n - 1
      } leave out the windows a --validation of ${m.source?.holdOut} holds out, ` +
        `not ${c.validation}: the held-out loss also sees windows trained in other draws ` +
        `(prepare it with --hold-out ${c.validation})`,
    );
  }
  if (!(sample > 0) || c.epochs < 2) return;
  if (n >= c.epochs) log(`corpus: ${n} subsampling draws, one per epoch`);
  else {
    log(
      `corpus: ${n} subsampling draw(s) for ${c.epochs} epochs: epoch e reads draw e mod ${n}` +
        (n === 1 ? " (every epoch the same windows; --sample-draws, docs/training-defaults.md)" : ""),
    );
  }
}

/**
 * The corpus's windows fit --mode and it has examples. A prepared corpus keeps the window it was prepared
 * with: when that is not the run's `--window` (given, or a recipe's), the log says which one trains.
 */
function checkCorpus(
  c: TrainConfig,
  dir: string,
  manifest: CorpusManifest,
  log: (line: string) => void,
): void {
  if (manifest.mode !== "external" && manifest.mode !== c.mode) {
    throw new UsageError(
      `--data ${dir} holds ${manifest.mode} windows but --mode is ${c.mode}; prepare it with --mode ${c.mode}`,
    );
  }
  if (manifest.rows === 0) throw new ExitError(EXIT.badData, `--data ${dir}: the corpus has no examples`);
  const window = manifest.source?.window;
  if (typeof window === "number" && window !== c.window) {
    log(
      `corpus: --data ${dir} was prepared with window ${window}, so its windows train, not --window ${c.window} ` +
        `(prepare it again with --window ${c.window} to train those)`,
    );
  }
}

/** The fields of TrainConfig that only preparing text applies (the corpus job's flags of the same names). */
const PREPARATION_FIELDS = ["minCount", "window", "sample", "sampleDraws", "limitTokens"] as const;

/**
 * Refuses (UsageError, exit 2) a preparation setting given explicitly (flag or --config) for a new run on
 * prepared shards when the shards were not prepared with that value: train applies it only when it prepares
 * text, so the run would train on other data than asked for. Recipe defaults are not given, and a resume
 * keeps its checkpoint's settings (checked against it), so neither is refused.
 */
function refuseUnappliedSettings(c: TrainConfig, explicit: Set<keyof TrainConfig>, data: ResolvedData): void {
  if (data.prepared) return;
  const src = data.manifest.source ?? {};
  for (const key of PREPARATION_FIELDS) {
    if (!explicit.has(key)) continue;
    const was = key === "sampleDraws" ? (data.manifest.draws?.length ?? 1) : src[key];
    if (typeof was === "number" && was === c[key]) continue;
    const flag = FLAG_OF[key];
    const how = typeof was === "number"
      ? `prepared with ${flag} ${was}`
      : src.scanned !== undefined
      ? "without manifest.json: prepared with settings it does not record"
      : `its manifest.json records no ${flag}`;
    throw new UsageError(
      `${flag} ${c[key]} cannot apply to --data ${c.data}: it holds prepared shards (${how}), and train ` +
        `applies ${flag} only to the text it prepares; prepare the corpus again with it (deno task corpus ` +
        `--input TEXT --out DIR ${flag} ${c[key]} …, then train --data DIR), or leave ${flag} out`,
    );
  }
}

/**
 * What a run folder holds that a job starting or continuing another run there would replace: its
 * checkpoints, its published embeddings, and a corpus prepared with settings other than `c`'s (one that
 * would be reused as it is does not count).
 */
async function heldState(c: TrainConfig): Promise<{ held: string[]; checkpoints: string[] }> {
  const out = c.out;
  const checkpoints = await listCheckpoints(join(out, "checkpoints"));
  const stamp = await Deno.readTextFile(join(out, "corpus", "train-settings.json")).catch(() => undefined);
  // the stamp also holds the inputs' content fingerprint (resolveData): compare the settings alone
  let same = false;
  try {
    const { inputs: _inputs, ...settings } = JSON.parse(stamp ?? "null") ?? {};
    same = servesRun(settings, c);
  } catch { /* an unreadable stamp: another corpus */ }
  const otherCorpus = (await exists(join(out, "corpus", "manifest.json"))) && !same;
  const held = [
    ...(checkpoints.length ? [`${checkpoints.length} checkpoint(s)`] : []),
    ...(otherCorpus ? ["a corpus prepared with other settings"] : []),
    ...((await latestVersionDir(join(out, "embeddings"))) ? ["published embeddings"] : []),
  ];
  return { held, checkpoints };
}

/** Whether two files hold the same bytes. */
async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * Refuses (UsageError, exit 2) to continue the run of checkpoint `ckptPath` (at `step`) in `c.out` when
 * that folder holds another run: its checkpoints would be pruned and mixed with this run's, its corpus
 * prepared again and its published `latest` replaced. A checkpoint inside `c.out` (its checkpoints/), or
 * a copy of one of its checkpoints (the bytes of its checkpoint of that step), is of the run `c.out` holds; `outGiven`
 * says whether `c.out` is the job's --out or the folder saved in the checkpoint (a loose file, whose run
 * folder may have been moved and another run made there since).
 *
 * A checkpoint given as a file (not `picked` from a folder) must also be the newest of the run there:
 * continuing an older one would write a second timeline beside the first (its checkpoints colliding
 * with, or sorting below, the later ones that a `--resume <out>` takes).
 */
async function refuseOtherRun(
  c: TrainConfig,
  ckptPath: string,
  step: number,
  opts: { outGiven: boolean; picked: boolean },
): Promise<void> {
  const out = c.out, own = join(out, "checkpoints"), from = await resolveReal(dirname(ckptPath));
  const inside = from === (await resolveReal(own)) || from === (await resolveReal(out));
  const { held, checkpoints } = await heldState(c);
  if (!inside) {
    const twin = join(own, checkpointName(step));
    if (!(checkpoints.includes(twin) && (await sameBytes(twin, ckptPath))) && held.length) {
      throw new UsageError(
        opts.outGiven
          ? `--out ${out} holds another run (${held.join(", ")}) than the one of --resume ${ckptPath} ` +
            `(or this run went on past step ${step} and pruned it): continuing there would prune and mix its ` +
            `checkpoints; give an --out without a run, or --resume ${shellWord(out)} to continue that one`
          : `--resume ${ckptPath}: the run folder saved in it, ${out}, now holds another run (${
            held.join(", ")
          }; or this run went on past step ${step} and pruned it): continuing there would prune and mix its ` +
            `checkpoints and replace what it published; give ` +
            `--out OTHER (a folder without a run) to continue this checkpoint's run there, or --resume ${
              shellWord(out)
            } to continue that one`,
      );
    }
  }
  if (opts.picked) return;
  const newest = checkpoints.at(-1);
  const newestStep = newest ? Number(/ckpt-(\d+)\.fock$/.exec(newest)![1]) : -1;
  if (newest && newestStep > step) {
    throw new UsageError(
      `--resume ${ckptPath} is at step ${step}, but ${own} holds a later checkpoint, ${newest}: continuing ` +
        `from it there would mix two timelines (a later --resume ${shellWord(out)} takes the newest); ` +
        `resume into another folder (--out OTHER), or remove the checkpoints after step ${step} first`,
    );
  }
}

/**
 * Refuses (UsageError, exit 2) a resume whose `--epochs` is below the epochs its checkpoint's run has
 * completed, or below the epoch it is in: the run's later vectors would be published as an earlier
 * epoch's.
 */
function refuseFewerEpochs(epochs: number, run: unknown, ckptPath: string): void {
  // run.epoch: the epochs whose end has passed; run.epochCount: the examples of the epoch in progress
  // whose losses are counted (0 at an epoch's end: none begun)
  const r = run as { epoch?: unknown; epochCount?: unknown } | null | undefined;
  const done = Number(r?.epoch), inEpoch = Number(r?.epochCount) > 0 ? done + 1 : 0;
  if (!(done >= 0)) return;
  const need = Math.max(done, inEpoch);
  if (epochs >= need) return;
  throw new UsageError(
    `--epochs ${epochs}: the run of --resume ${ckptPath} has completed ${done} epoch(s)` +
      (inEpoch ? ` and is in epoch ${inEpoch}` : "") +
      `; give --epochs ${need} or more (or leave --epochs out to keep the run's)`,
  );
}

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
    // the environment the backend and the reader will read, checked before any lock or corpus work
    if (config.backend !== "js") backendEnvironment();
    readerPlace();
    bagSplit();
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
    logDraws(data.manifest, config, log);
    if (!trainer) refuseUnappliedSettings(config, args.explicit, data);
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
    const out = bestEffortOut(io, () => join(config.out, "summary.json"));
    const progress = new ProgressReporter(mode, mode === "live" ? 0.25 : 10, out);
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
          `resume with: deno task train --resume ${shellWord(config.out)}`,
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
    const metrics: JobSummary["metrics"] = { coverage: {} };
    if (report) {
      for (const [name, s] of Object.entries(report.similarity)) {
        (metrics as Record<string, unknown>)[name] = round(s.rho, 4);
        metrics.coverage[name] = round(s.coverage, 4);
      }
      if (report.analogy) {
        metrics.analogy = round(report.analogy.total.accuracy, 4);
        metrics.coverage.analogy = round(report.analogy.total.coverage, 4);
      }
      for (const m of report.missing) log(`evaluation: not found ${m}`);
    }
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
        const manifest = await readEmbeddingsManifest(held) as { files: { name: string }[] };
        await committed({
          version: basename(held),
          versionDir: held,
          files: [...manifest.files.map((f) => join(held, f.name)), join(held, "manifest.json")],
        });
      } else {
        await publishEmbeddings({
          outRoot: join(config.out, "embeddings"),
          words: emb.words,
          input: emb.input,
          d: emb.d,
          ...(emb.output ? { output: emb.output, outputDim: emb.dOut } : {}),
          formats: config.formats,
          committed,
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

/**
 * Refuses (exit 4) to resume a checkpoint a refresh wrote (its mark, lib/train/refresh_inputs.ts): its
 * last training read the refresh's staging copy of the new data, which is gone, with a vocabulary grown
 * past the run's corpus, so the run goes on by refreshing again, not by train.
 */
function refuseRefreshed(ckpt: Checkpoint, ckptPath: string, out: string): void {
  const mark = refreshMark(ckpt);
  if (!mark) return;
  throw new ExitError(
    EXIT.noCheckpoint,
    `--resume ${ckptPath}: the run was refreshed (refresh --data ${
      shellWord(mark.data)
    }), and train cannot ` +
      `resume a refreshed run (its last training read the refresh's new data, with a grown vocabulary); ` +
      `run deno task refresh --from ${shellWord(out)} --data NEW_DATA again to train it on more data`,
  );
}

/**
 * The checkpoint to resume: the file given, or the newest good one of a folder (newer corrupt or
 * truncated ones are skipped, and said so in one line). Unusable: exit code 4.
 */
async function pickCheckpoint(
  resume: string,
  isDir: boolean,
  log: (line: string) => void,
): Promise<{ ckptPath: string; ckpt: Checkpoint }> {
  let ckptPath: string, ckpt: Checkpoint;
  if (isDir) {
    let r;
    try {
      r = await readNewestGoodCheckpoint(resume, (l) => log(`resume: ${l}`));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new ExitError(
          EXIT.noCheckpoint,
          `--resume ${resume}: no checkpoint (ckpt-*.fock) in it or in its checkpoints/`,
        );
      }
      throw await unusable(resume, Promise.reject(e)).catch((x) => x);
    }
    ({ path: ckptPath, checkpoint: ckpt } = r);
  } else {
    ckptPath = resume;
    ckpt = await unusable(resume, readCheckpoint(resume));
    if (ckpt.unchecked) log(`resume: ${ckptPath} has no checksum (written by an older version)`);
  }
  return { ckptPath, ckpt };
}

/**
 * Refuses a new run into a folder that holds one (checkpoints, published embeddings, or a corpus that it
 * would replace: prepared with other settings) without `--overwrite` (UsageError, exit 2); with it, moves
 * the old checkpoints aside (deleted after the new run's first checkpoint). A corpus that would be reused
 * as it is does not count, so a first run stopped or failed before its first checkpoint can be rerun as it
 * was.
 */
async function guardUsedFolder(
  config: TrainConfig,
  overwrite: boolean,
  log: (line: string) => void,
): Promise<Aside | undefined> {
  const out = config.out;
  const ckDir = join(out, "checkpoints");
  const { held, checkpoints: old } = await heldState(config);
  if (!held.length) return undefined;
  if (!overwrite) {
    throw new UsageError(
      `--out ${out} already holds a run (${held.join(", ")}): continue it with --resume ${shellWord(out)}, ` +
        `choose another --out, or give --overwrite to replace it`,
    );
  }
  if (!old.length) return undefined;
  const dir = tempNameFor(ckDir, { aside: true });
  // a stop signal before this run's first checkpoint (while its corpus is prepared, say) ends the process
  // at once: its exit cleanup puts them back, registered in the same held section as the rename
  const forget = await holdingStop(async () => {
    await Deno.rename(ckDir, dir);
    return atExit(() => putBackSync(ckDir, dir));
  });
  log(
    `new run in ${out} (--overwrite): ${old.length} old checkpoint(s) moved to ${dir}; ` +
      `they are deleted once this run writes its first checkpoint, and put back if it fails before`,
  );
  return { dir, count: old.length, forget };
}

/** Checkpoints an `--overwrite` run moved aside: where, how many, and the exit cleanup that puts them back. */
type Aside = { dir: string; count: number; forget: () => void };

/** {@link restoreAside} as a stop signal's exit cleanup (synchronous, silent: the process is ending). */
function putBackSync(ckDir: string, dir: string): void {
  try {
    const written = [...Deno.readDirSync(ckDir)].some((e) => /^ckpt-\d+\.fock$/.test(e.name));
    if (written) {
      Deno.removeSync(dir, { recursive: true });
      return;
    }
    Deno.removeSync(ckDir, { recursive: true });
  } catch { /* no checkpoints folder: nothing of this run's */ }
  try {
    Deno.renameSync(dir, ckDir);
  } catch { /* put back already */ }
}

/** Awaits a checkpoint read; a corrupt or missing file becomes exit code 4 (no usable checkpoint). */
async function unusable<T>(path: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (
      e instanceof DataFormatError || e instanceof Deno.errors.NotFound || e instanceof UsageError ||
      osErrno(e) === "ENOENT" // readCheckpoint's IoError for a file gone meanwhile
    ) {
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

/**
 * The export command that publishes what the run `c` publishes: its checkpoint folder (export takes the
 * epoch the run publishes, lib/train/best.ts publishedCheckpoint), its --formats and its output rows
 * (--export-output).
 */
function publishCommand(c: TrainConfig): string {
  return exportCommand({ checkpoint: c.out, formats: c.formats, outputRows: c.exportOutput });
}
