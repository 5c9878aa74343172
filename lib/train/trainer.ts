/**
 * The trainer: a {@link Model} over a vocabulary, its output layer, the seeded RNG, the run state (schedule
 * and reader position) and the validation set, and the training loop with backoff, keep-best, progress and
 * checkpoints. Its parts live beside it: types.ts (what it takes and returns), guard.ts (a step attempted,
 * the epoch-end health check, divergence), state.ts (the state and its checkpoint form), best.ts
 * (keep-best), grow.ts (vocabulary growth). See docs/trainer-api.md.
 *
 * Size: just over 600 lines because `train()` is one loop whose closures (save, backoff, flush, account)
 * share its run state; cutting them out would pass that state through every call.
 *
 * @module
 */

import { DataFormatError, type DivergenceError, UsageError } from "../core/errors.ts";
import type { BackendName, OutputLayer } from "../core/types.ts";
import type { LinAlgBackend } from "../linalg/backend.ts";
import { isPooled, type PooledBackend } from "../linalg/pool.ts";
import { headWidth, initParams, Model } from "../model/model.ts";
import { attachStepPath } from "../model/gpu_model.ts";
import {
  type Checkpoint,
  checkpointName,
  pruneCheckpoints,
  readCheckpoint,
  removeCheckpointsAfter,
  vocabularyHash,
  writeCheckpoint,
} from "./checkpoint.ts";
import { dirname, join } from "node:path";
import { linkFileAtomic, tempNameFor } from "../core/atomic.ts";
import { removeAtExit } from "../core/stop.ts";
import { CheckpointWriter } from "./checkpoint_writer.ts";
import { adoptRunFields, resolveConfig, resumeDifferences, type TrainConfig } from "./config.ts";
import { epochNote, fmt4, ProgressReporter } from "./progress.ts";
import { Rng } from "../core/rng.ts";
import { learningRate } from "./schedule.ts";
import { ValidationSplit } from "./split.ts";
import { STAGE, StageClock } from "./stages.ts";
import { BEST_CHECKPOINT, findBest, keepsBest, stateInFile, writeBest } from "./best.ts";
import {
  attemptStep,
  BACKOFF_FLOOR,
  backoffNote,
  checkHealth,
  divergenceError,
  settleSteps,
} from "./guard.ts";
import { newWordRows } from "./grow.ts";
import { checkReaderBatch, checkTrainOptions, checkVocabulary } from "./checks.ts";
import { withPath } from "../core/os_errors.ts";
import { copyInto, type SpareArrays } from "../core/reuse.ts";
import { WriteBehind } from "./write_behind.ts";
import { TargetScaler, targetScales } from "./target_weights.ts";
import {
  hiddenBackend,
  initOutputRows,
  openHead,
  outputStateOf,
  parseTrainerCheckpoint,
  resolveDeps,
  setParams,
  specOf,
  trainerCheckpoint,
} from "./state.ts";
import type {
  GoodState,
  PoolCounts,
  ReaderBatch,
  RunState,
  StepFailure,
  TrainerDeps,
  TrainOptions,
  TrainSummary,
  Vocabulary,
} from "./types.ts";

export { BEST_CHECKPOINT } from "./best.ts";
export { BACKOFF_FLOOR, HEALTH_CHECK_MAX_DD, MAX_Q_DRIFT } from "./guard.ts";
export type {
  CreateHead,
  InvocationSummary,
  OpenReader,
  PoolCounts,
  ReaderBatch,
  TrainerDeps,
  TrainOptions,
  TrainSummary,
  Vocabulary,
} from "./types.ts";

/** Split calls a pool stands down for while a write behind the steps runs (ended when the write is done). */
const YIELD_CALLS = 2 ** 30;

/**
 * A model, its output layer and everything needed to continue training it exactly.
 *
 * @example
 * ```ts
 * import { Trainer } from "./trainer.ts";
 * const trainer = await Trainer.fromCheckpoint("runs/latest/checkpoints/ckpt-000000001000.fock").catch(() => null);
 * trainer?.close();
 * ```
 */
export class Trainer {
  /**
   * Optimisation steps so far (over all runs), which name and order the checkpoints. A refresh from a run's
   * best epoch numbers its steps on from the run's newest checkpoint (lib/train/best.ts continuation), so
   * the steps of the epochs it went back from are counted too.
   */
  step = 0;
  /**
   * Fields added to the meta of every checkpoint this trainer writes: a refresh's mark and record (`refresh`,
   * lib/train/refresh_inputs.ts), by which `train --resume` knows a refreshed run.
   */
  checkpointMeta: Record<string, unknown> = {};
  #run: RunState | null = null;
  #lastCheckpoint: string | undefined;
  #split: ValidationSplit;
  #la: LinAlgBackend | undefined;
  /** The pool counters of the output layers that a rollback replaced (see #poolCounts). */
  #poolReplaced: PoolCounts | undefined;
  #restores = 0; // states restored (#restore): a validation loss of this step before one is not this state's
  #output: OutputLayer;
  /** A checkpoint file holding exactly the current parameters (none once they change). */
  #cleanFile: string | undefined;
  /**
   * The run state and config that file holds ({@link fileKey}): a file whose run state or config is not the
   * current one (an epoch end, --resume's changed options) is rewritten.
   */
  #cleanRun: string | undefined;
  /** The `--target-power`/`--target-scale` scaler of the vocabulary (null: off; undefined: not built yet). */
  #scaler: TargetScaler | null | undefined;
  /** Checkpoint writes going on while train() steps (settled before the folder is read or the run ends). */
  #writes = new WriteBehind();
  /**
   * Arrays of a state copy that nothing needs any more (`model.*`, `output.*`): the next copy is written into
   * them (lib/core/reuse.ts), not into new memory. Held until close(): a checkpoint's size beside the state.
   */
  #spare: Record<string, Float32Array | Float64Array> | undefined;
  /**
   * A pruned checkpoint file kept under a temporary name (pruneCheckpoints' spare), which the next
   * checkpoint overwrites instead of writing into new page-cache memory; removed when the trainer closes,
   * or by the exit cleanup on a stop signal.
   */
  #spareFile: { path: string; dir: string; forget: () => void } | undefined;
  /**
   * During a train() whose checkpoints are written behind the steps: the worker that writes them
   * (checkpoint_writer.ts), on the core beside the training thread.
   */
  #writer: CheckpointWriter | undefined;
  /** Whether the output layer's pool stands down for a write behind the steps ({@link Trainer.#yieldCore}). */
  #yielded = false;
  /**
   * The vocabulary's hash and the word count it is of: each checkpoint carries it, and hashing every word
   * again at each one cost as much as copying the state into the spare arrays. The vocabulary changes only by
   * growing (growVocabulary appends words).
   */
  #vocabHash: { words: number; hash: string } | undefined;

  private constructor(
    readonly config: TrainConfig,
    readonly vocab: Vocabulary,
    readonly model: Model,
    output: OutputLayer,
    readonly rng: Rng,
    readonly deps: TrainerDeps,
    la?: LinAlgBackend,
  ) {
    this.#split = new ValidationSplit(config.validation);
    this.#la = la;
    this.#output = output;
    try {
      this.#attachStepPath();
    } catch (e) {
      output.close();
      throw e;
    }
  }

  /** The model's step path for the backend (lib/model/gpu_model.ts: the whole model on the GPU for webgpu). */
  #attachStepPath(): void {
    const backend = this.config.backend === "webgpu" ? "webgpu" : this.#output.backend;
    attachStepPath(this.model, { backend, log: this.deps.log });
    // the embedding bag's outputs on the output layer's pool (lib/linalg/pool.ts), the bag itself split on
    // its threads only when asked (defaults.ts bagSplit)
    const pool = this.#outputPool();
    this.model.usePool(
      !this.model.resident ? pool : null,
      this.config.output === "factored",
      this.deps.splitBag,
    );
    // and its rows added with the output layer's backend (cblas_saxpy per input on blas)
    this.model.useBackend(!this.model.resident ? this.#outputBackend() : null);
  }

  /** The output layer's CPU backend (blas, pooled or js), or null (the webgpu layer's is the GPU). */
  #outputBackend(): LinAlgBackend | null {
    const la = (this.#output as { la?: LinAlgBackend }).la;
    return la && typeof la.axpyRows === "function" ? la : null;
  }

  /** The output layer's pooled backend (lib/linalg/pool.ts), or null when it has none. */
  #outputPool(): PooledBackend | null {
    const la = (this.#output as { la?: unknown }).la;
    return isPooled(la) ? la : null;
  }

  /**
   * The output layers' thread pool counters (lib/linalg/pool.ts) since this trainer was made, those of the
   * layers a rollback replaced included; undefined without a pool.
   */
  #poolCounts(): PoolCounts | undefined {
    const pool = this.#outputPool();
    return pool ? addCounts(this.#poolReplaced, pool) : this.#poolReplaced;
  }

  /** The output layer (rebuilt when a backoff rolls the state back). */
  get output(): OutputLayer {
    return this.#output;
  }

  /** Which backend runs the output layer. */
  get backend(): BackendName {
    return this.output.backend;
  }

  /**
   * A fresh trainer: parameters drawn from `config.seed` (E, hidden layers, then W₀).
   */
  static async create(
    opts: { config: TrainConfig; vocab: Vocabulary } & Partial<TrainerDeps>,
  ): Promise<Trainer> {
    const deps = await resolveDeps(opts);
    const config = resolveConfig(opts.config);
    checkVocabulary(opts.vocab);
    const V = opts.vocab.words.length;
    const rng = new Rng(config.seed);
    const spec = specOf(config, V);
    const initRng = rng.split();
    const params = initParams(spec, () => initRng.next());
    const d = headWidth(spec);
    const init = initOutputRows(V, d, initRng);
    const output = await openHead(deps, config, V, d, { init });
    const vocab = { words: [...opts.vocab.words], counts: [...opts.vocab.counts] };
    const la = await hiddenBackend(config, deps.log);
    const trainer = new Trainer(config, vocab, new Model(spec, params, output, la), output, rng, deps, la);
    // W₀, which the layer copied, is written memory nothing needs any more: the run start's state copy of
    // the layer's D×d array (V, or the naive layer's W) goes into it, not into new memory (lib/core/reuse.ts)
    trainer.#spare = { [config.output === "naive" ? "output.W" : "output.V"]: init };
    return trainer;
  }

  /**
   * A trainer restored from a checkpoint file (or an already read {@link Checkpoint}, with `file` the path
   * it was read from, which it then holds as its last checkpoint). `name` is only the path its messages give
   * an already read checkpoint that is not a file's content as it is (a refresh's continuation, one export
   * reads); without `file` or `name` they name none. `backend` overrides the checkpoint's backend (the
   * weights are the same on every backend).
   */
  static async fromCheckpoint(
    source: string | Checkpoint,
    opts: Partial<TrainerDeps> & { backend?: TrainConfig["backend"]; file?: string; name?: string } = {},
  ): Promise<Trainer> {
    const deps = await resolveDeps(opts);
    // the file whose content this is, and the path the messages name (a placeholder was printed:
    // "(from <checkpoint>)")
    const file = typeof source === "string" ? source : opts.file;
    const named = file ?? opts.name;
    const ckpt = typeof source === "string" ? await readCheckpoint(source) : source;
    const { config, vocab, spec, params, state, step, rng, run } = await parseTrainerCheckpoint(
      ckpt,
      named ?? "the checkpoint",
      opts.backend,
    );
    const V = vocab.words.length, d = headWidth(spec);
    const output = await openHead(deps, config, V, d, { state }, named);
    const la = await hiddenBackend(config, deps.log);
    const trainer = new Trainer(
      config,
      vocab,
      new Model(spec, params, output, la),
      output,
      Rng.fromState(rng),
      deps,
      la,
    );
    trainer.step = step;
    trainer.#run = run;
    trainer.#split.importState(ckpt.arrays);
    if (file !== undefined) {
      trainer.#lastCheckpoint = trainer.#cleanFile = file;
      trainer.#cleanRun = fileKey(run, config);
    }
    return trainer;
  }

  /**
   * Refuses (UsageError) to continue under a config whose model or data fields differ from this
   * trainer's; returns the differences in the other fields (lr, epochs, …) for logging.
   */
  checkCompatible(config: TrainConfig, source = "the checkpoint"): string[] {
    return resumeDifferences(this.config, config, this.#run?.lrScale ?? 1, source);
  }

  /**
   * Adopts the run-shaping fields (lr, lrMin, schedule, epochs, checkpointing, keepBest, out) of `config`;
   * a new lr resets the backoff multiplier to 1 (the new lr is taken as asked).
   */
  adopt(config: TrainConfig): void {
    this.checkCompatible(config);
    if (this.#run && this.config.lr !== config.lr) this.#run.lrScale = 1;
    adoptRunFields(this.config, config);
    if (this.#run) this.#run.epochs = config.epochs;
  }

  /** The examples done and planned in the current run (null before any). */
  get runProgress(): { examples: number; total: number; epoch: number } | null {
    const r = this.#run;
    return r ? { examples: r.examples, total: r.rows * r.epochs, epoch: r.epoch } : null;
  }

  /** The identity of the data the stored run trains on (TrainOptions.corpus), when it recorded one. */
  get runCorpus(): string | undefined {
    return this.#run?.corpus;
  }

  /**
   * Moves the step counter to `step` without taking a step (a refresh that trains none numbers its result
   * past the run's newest checkpoint): the run's own count of steps (summary `steps`) stays as it was.
   *
   * @example
   * ```ts ignore
   * trainer.renumber(newest + 1);
   * ```
   *
   * @param step the new value of {@link Trainer.step}
   */
  renumber(step: number): void {
    const run = this.#run;
    if (run) run.startStep = (run.startStep ?? 0) + step - this.step;
    this.step = step;
  }

  /** The last checkpoint written or loaded. */
  get lastCheckpoint(): string | undefined {
    return this.#lastCheckpoint;
  }

  /** Mean loss per held-out example (undefined when there is no validation set). */
  async validationLoss(): Promise<number | undefined> {
    if (this.#split.size === 0) return undefined;
    let sum = 0;
    for (const b of this.#split.batches(this.config.batch)) {
      sum += await this.model.evaluate(b.inputs, b.targets);
    }
    return sum / this.#split.size;
  }

  /**
   * Trains over shards; see {@link TrainOptions}. A step the factored layer's guard refuses, or one whose
   * loss or gradient is not finite, is not fatal: the step size is halved ({@link BACKOFF_FLOOR}), the
   * state is rolled back to the last good one when the failed step may have changed it, and training goes
   * on (a `backoff` log event). Throws DivergenceError, naming the step, once the multiplier would fall
   * below the floor; checkpoints already written are left as they are. With keepBest, a run whose last
   * epoch has a higher validation loss than an earlier one ends with the trainer holding that earlier
   * epoch's state (as if loaded from its checkpoint); the final state stays in the last checkpoint.
   */
  async train(opts: TrainOptions): Promise<TrainSummary> {
    let summary: TrainSummary;
    try {
      summary = await this.#train(opts);
    } catch (e) {
      // a run that failed leaves no write running behind it (the run's own error is the one thrown)
      await this.#writes.settle().catch(() => {});
      this.#dropSpareFile();
      this.#closeWriter();
      throw e;
    }
    try {
      await this.#writes.settle();
    } finally {
      // the folder ends with its checkpoints only (a later train() call prunes again)
      this.#dropSpareFile();
      this.#closeWriter();
    }
    return summary;
  }

  async #train(opts: TrainOptions): Promise<TrainSummary> {
    const c = this.config;
    checkTrainOptions(opts, this.#run !== null);
    // a folder that cannot be made or written is said now, not at the first checkpoint after a whole epoch
    if (opts.checkpointDir !== undefined) await checkpointFolderUsable(opts.checkpointDir);
    const epochs = opts.epochs ?? c.epochs;
    // the same data under other paths (a run continued in another --out prepares its text there) goes on
    const moved = !!opts.corpus && this.#run?.corpus === opts.corpus;
    if (opts.resume && this.#run && (sameList(this.#run.paths, opts.paths) || moved)) {
      if (opts.corpus && this.#run.corpus && opts.corpus !== this.#run.corpus) {
        throw new UsageError(
          `cannot resume: the data at ${
            opts.paths.join(", ")
          } is not the data the checkpoint's run trained on`,
        );
      }
      this.#run.epochs = epochs;
      this.#run.rows = opts.rows;
      this.#run.corpus ??= opts.corpus;
      this.#run.paths = [...opts.paths];
    } else {
      if (opts.resume && this.#run) {
        throw new UsageError(
          `cannot resume: the checkpoint's run read ${this.#run.paths.join(", ")}, not ${
            opts.paths.join(", ")
          }`,
        );
      }
      this.#run = {
        paths: [...opts.paths],
        rows: opts.rows,
        epochs,
        examples: 0,
        epoch: 0,
        position: null,
        epochLoss: 0,
        epochCount: 0,
        lrScale: 1,
        backoffs: 0,
        ...(opts.corpus ? { corpus: opts.corpus } : {}),
        startStep: this.step,
        seconds: 0,
      };
    }
    let run = this.#run;
    const every = opts.checkpointEvery ?? c.checkpointEvery, keep = opts.keepCheckpoints ?? c.keepCheckpoints;
    const keepBest = opts.keepBest ?? c.keepBest, dir = opts.checkpointDir;
    const progress = opts.progress ?? new ProgressReporter("none", 1, () => {});
    const total = run.rows * run.epochs;
    const t0 = performance.now();
    // this call's own count starts here, or lower after a rollback below it (the steps it takes again are its own)
    let startExamples = run.examples, startStep = this.step;
    // the run's own count, kept in its run state: a resumed run goes on counting (a checkpoint from before
    // these fields: its steps from step 0, where every train job's run starts; its seconds unknown, NaN)
    const runStart = run.startStep ?? 0, runSeconds0 = run.seconds ?? NaN;
    // a call that takes no step (a finished run resumed) adds none of its own seconds: it trained nothing,
    // and its checkpoint, current, is not rewritten to keep them
    let stepped = false;
    const runSeconds = () => runSeconds0 + (stepped ? (performance.now() - t0) / 1000 : 0);
    const clock = new StageClock(), S = STAGE, stages = () => clock.seconds();
    const pool0 = this.#poolCounts();
    let lr = learningRate(c, run.examples, total) * run.lrScale, ema = NaN, lastEpochLoss = NaN;
    const sample = () => ({
      step: this.step,
      // 1-based, as the epoch event (run.epoch counts the epochs whose end has passed; it is run.epochs
      // once the run is done: the last epoch)
      epoch: Math.min(run.epoch + 1, run.epochs),
      examples: run.examples,
      total,
      lr,
      loss: ema,
      seconds: (performance.now() - t0) / 1000,
      startExamples,
      stages,
    });
    const open = () =>
      this.deps.openReader(run.paths, {
        batchSize: c.batch,
        seed: c.seed,
        epochs: run.epochs,
        ...(run.position == null ? {} : { position: run.position }),
      });
    // opened before the state below is read or written: a reader on a worker thread reads ahead meanwhile
    let first: AsyncIterable<ReaderBatch> | undefined = open();
    // The state a rollback returns to (RunState.good): the last epoch end, whose health was checked, or the
    // run's start; never a checkpoint written between (every N steps, by the clock, at a stop), so that a
    // run goes back to the same state whenever its checkpoints were written. A checkpoint file (kept from
    // pruning until the next epoch end replaces it), else an in-memory copy (a checkpoint's size), written
    // out beside the first checkpoint taken before the next epoch end, where a resumed run finds it.
    let good: GoodState;
    try {
      let found: GoodState | undefined;
      if (run.good !== undefined && run.good !== this.step) {
        const name = checkpointName(run.good);
        found = dir ? await stateInFile(join(dir, name), run.good) : undefined;
        // resumed into another folder: the file beside the checkpoint it started from
        const beside = this.#cleanFile === undefined ? undefined : dirname(this.#cleanFile);
        if (!found && beside !== undefined && beside !== dir) {
          found = await stateInFile(join(beside, name), run.good);
        }
        if (!found) {
          this.deps.log(
            `resume: ${checkpointName(run.good)} (the last epoch end, step ${run.good}) is not in ${
              dir ?? "a checkpoint folder"
            }: a rollback before the next epoch end returns to step ${this.step}, not to step ${run.good} ` +
              `as the uninterrupted run would`,
          );
        }
      }
      if (!found) {
        run.good = this.step;
        found = await this.#goodState();
      }
      // a file in another folder (the run resumed into another --out) is linked (else copied) into this
      // run's, where its pruning and a later resume find it
      good = dir ? await this.#intoFolder(found, dir, checkpointName(run.good!)) : found;
      // the run's best epoch where the run's end looks for it: a job killed between an epoch's checkpoint and
      // best.fock's link to it (written behind the steps, the link is the next task of the chain) left
      // best.fock of an earlier epoch, or none; a run resumed into another folder has none there. Else the
      // run's end keeps its last epoch, not the uninterrupted run's best
      if (keepBest && dir && run.best) await this.#repairBest(dir, run);
    } catch (e) {
      await first[Symbol.asyncIterator]().return?.();
      throw e;
    }
    let goodStep = run.good;
    clock.mark(S.checkpoint);
    // The best epoch's state: best.fock with a checkpoint folder, else the in-memory good state of its step.
    let bestState: GoodState | undefined;
    // A state copy that neither the rollback nor the best state refers to any more (`replaced`: the rollback's,
    // which the caller replaces before the next step): its arrays become the next copy's, once. `later`: a
    // copy written behind the steps, whose arrays are the spare only once the chain it is in is settled
    // (best.fock's write, where the link is refused, and an onCheckpoint calling the trainer come after it)
    const given = new WeakSet<object>();
    let released: Record<string, Float32Array | Float64Array> | undefined;
    const recycle = (s: GoodState | undefined, replaced = false, later = false) => {
      if (s === undefined || s.file !== undefined || (s === good && !replaced) || s === bestState) return;
      if (given.has(s.ckpt.arrays)) return;
      given.add(s.ckpt.arrays);
      // a record of its own: embeddings() takes E out of the spare, not out of the copy's checkpoint
      if (later) released = { ...s.ckpt.arrays };
      else this.#spare = { ...this.#spare, ...s.ckpt.arrays };
    };
    // a checkpoint of a step that is already saved (an epoch end right after a periodic checkpoint, or a
    // resume that has not stepped yet) is not rewritten
    const minutes = opts.checkpointMinutes ?? c.checkpointMinutes;
    let savedAt = performance.now(), stopped = false;
    let written: string | undefined; // the checkpoint save() wrote last (saveBest links to it while no step followed)
    // the checkpoint being written behind the steps (save's `behind`), until it is written
    let behind: { path: string; step: number; state: GoodState & { file?: undefined } } | undefined;
    // atGood: an epoch end whose health was checked (or the run's start): the state becomes the one a
    // rollback returns to. Behind: the checkpoint is a copy of the state, written while training goes
    // on (the epoch ends before the last, the periodic checkpoints): the steps do not wait for the disk
    const save = async (atGood = false, opts2: { behind?: boolean } = {}) => {
      clock.mark(S.bookkeeping);
      await flush();
      // the last checkpoint's write first: its file may be this state's, and its error is this run's
      await this.#writes.settle();
      if (released) this.#spare = { ...this.#spare, ...released };
      released = undefined;
      written = undefined;
      behind = undefined;
      run.seconds = runSeconds(); // not compared by #fileIsCurrent: a file of this state stays current
      if (atGood) run.good = this.step;
      const writes = dir !== undefined && !this.#fileIsCurrent();
      // an epoch end whose state replaces the one a rollback returns to (below): a copy of that one gives its
      // arrays to this state's copies now
      if (atGood && (writes || this.#cleanFile !== undefined || run.good !== goodStep)) recycle(good, true);
      if (dir && writes) {
        if (!atGood && good.file === undefined) {
          // the state to go back to is only in memory: into a file first, which a resumed run will read
          const file = join(dir, checkpointName(run.good!));
          await withPath("cannot create checkpoint folder", dir, () => Deno.mkdir(dir, { recursive: true }));
          await writeCheckpoint(file, good.ckpt);
          const copy = good;
          good = { file, run: good.run };
          recycle(copy);
        }
        if (opts2.behind) {
          const state = await this.#stateCopy(), path = join(dir, checkpointName(this.step));
          const at = this.#stateMark(), protect = atGood ? undefined : good.file;
          // until its file is written, the copy is the state a rollback returns to
          if (atGood) good = state;
          behind = { path, step: this.step, state };
          this.#writes.then(async () => {
            await this.#commitCheckpoint(dir, path, state.ckpt, { keep, protect, at, behind: true });
            // written: the copy is let go (a rollback reads the file; saveBest links to it). Its arrays are
            // the next copy's once this chain is settled (best.fock's link below may write it, where refused)
            if (good === state) good = { file: path, run: state.run };
            recycle(state, false, true);
            if (behind?.state === state) {
              behind = undefined;
              written = path;
            }
            await opts.onCheckpoint?.(path);
          });
        } else {
          const path = await this.saveCheckpoint(dir, { keep, protect: atGood ? undefined : good.file });
          written = path;
          await opts.onCheckpoint?.(path);
        }
        savedAt = performance.now();
      }
      if (atGood && !behind && (this.#cleanFile || run.good !== goodStep)) good = await this.#goodState();
      goodStep = run.good!;
      clock.mark(S.checkpoint);
    };
    const saveBest = async () => {
      if (!keepBest) return;
      if (!dir) {
        const before = bestState;
        bestState = good; // save() has just made it the state of this step
        recycle(before);
        return;
      }
      clock.mark(S.bookkeeping);
      const b = behind;
      if (b !== undefined && b.step === this.step) {
        // after the epoch's checkpoint, written behind the steps: best.fock becomes a second name of it
        bestState = { file: join(dir, BEST_CHECKPOINT), run: structuredClone(run) };
        this.#writes.then(async () => {
          await writeBest(dir, () => Promise.resolve(b.state.ckpt), b.state.run, b.path);
        });
      } else {
        // the epoch's checkpoint, just written, holds this state: best.fock becomes a second name of it
        const same = written !== undefined && this.#cleanFile === written ? written : undefined;
        bestState = await writeBest(dir, () => this.toCheckpoint(), run, same);
      }
      clock.mark(S.checkpoint);
    };
    /** The run's figures, and this call's in `thisInvocation`; `trainLoss` NaN: the run's last known one. */
    const summarize = (trainLoss: number): TrainSummary => {
      const seconds = (performance.now() - t0) / 1000, examples = run.examples - startExamples;
      const runSecs = run.seconds = runSeconds();
      const now = this.#poolCounts(), pool = now && addCounts(now, pool0, -1);
      if (pool?.standDowns) {
        note(
          { event: "pool", ...pool },
          `threads: the split step's workers stood down ${pool.standDowns} time(s), their cores busy with ` +
            `other work; ${pool.callerOnlyCalls} of ${pool.splitCalls} split calls ran on the training thread ` +
            `alone (the same results; --threads 1 avoids the pool)`,
        );
      }
      return {
        steps: this.step - runStart,
        examples: run.examples,
        epochsDone: run.epoch,
        seconds: runSecs,
        examplesPerSecond: runSecs > 0 ? run.examples / runSecs : runSecs === 0 ? 0 : NaN,
        trainLoss: Number.isFinite(trainLoss) ? trainLoss : run.trainLoss ?? NaN,
        lr: run.lr ?? lr,
        ...(this.#lastCheckpoint ? { checkpoint: this.#lastCheckpoint } : {}),
        backoffs: run.backoffs,
        lrScale: run.lrScale,
        thisInvocation: {
          steps: this.step - startStep,
          examples,
          seconds,
          examplesPerSecond: seconds > 0 ? examples / seconds : 0,
          stageSeconds: clock.seconds(),
          ...(pool ? { pool } : {}),
        },
      };
    };
    /** Counts the steps whose losses are known (every step on the host path; each read-back on the GPU path). */
    const account = (pairs: [number, number][]) => {
      for (const [l, n] of pairs) {
        run.epochLoss += l;
        run.epochCount += n;
        ema = Number.isNaN(ema) ? l / n : 0.995 * ema + 0.005 * (l / n);
      }
    };
    const flush = async () => account(await this.model.flush());
    // the same before an epoch's end, a periodic checkpoint and the run's end, where a step refused on the
    // GPU (read back late) is backed off from as at its own step, not thrown
    const flushed = async (): Promise<StepFailure | undefined> => {
      const r = await settleSteps(this.model);
      if (!Array.isArray(r)) return r;
      account(r);
    };
    // a log line during training first ends the live progress line (on a terminal the log, stderr, shares
    // its line: it was printed after "ETA: 0h 0m24s", on the same line)
    const log = (line: string) => {
      progress.finish();
      this.deps.log(line);
    };
    // an event goes to the log and to the progress output, once where both are one stream (progress.ts);
    // a progress output that failed on this very event (run.ts bestEffortOut) leaves it to the log
    const note = (event: Record<string, unknown>, text: string) => {
      const carried = progress.carriesEvents;
      if (!carried) log(JSON.stringify(event));
      progress.note(event, text);
      if (carried && !progress.carriesEvents) log(JSON.stringify(event));
    };
    // the last validation loss and the state it is of: the run's end reports it again without a second pass
    let validated: { step: number; restores: number; loss: number | undefined } | undefined;
    const validation = async () => {
      if (validated?.step !== this.step || validated.restores !== this.#restores) {
        validated = { step: this.step, restores: this.#restores, loss: await this.validationLoss() };
      }
      return validated.loss;
    };
    /** Logs the epoch's losses; true when its validation loss is the lowest of the run so far. */
    const endEpoch = async (): Promise<boolean> => {
      lastEpochLoss = run.epochCount ? run.epochLoss / run.epochCount : NaN;
      if (Number.isFinite(lastEpochLoss)) run.trainLoss = lastEpochLoss;
      const val = await validation();
      const better = val !== undefined && Number.isFinite(val) &&
        (!run.best || val <= run.best.validationLoss);
      if (better) {
        run.best = {
          epoch: run.epoch + 1,
          step: this.step,
          validationLoss: val,
          ...(Number.isFinite(lastEpochLoss) ? { trainLoss: lastEpochLoss } : {}),
        };
      }
      const { event, text } = epochNote({
        epoch: run.epoch + 1,
        epochs: run.epochs,
        step: this.step,
        trainLoss: lastEpochLoss,
        ...(val === undefined ? {} : { validationLoss: val }),
        best: run.best,
        better,
      });
      note(event, text);
      run.epochLoss = 0;
      run.epochCount = 0;
      return better;
    };
    /** A failed step: halve the multiplier (or stop at the floor), roll back when needed; true if rolled back. */
    const backoff = async (f: StepFailure): Promise<boolean> => {
      // a checkpoint still being written is on disk before any is removed or named
      await this.#writes.settle();
      const failed = this.step + 1, epoch = run.epoch + 1, scale = run.lrScale / 2;
      if (scale < BACKOFF_FLOOR) throw this.#divergence(lr, f.what);
      // the run's plan as this run has it (a --resume may have changed --epochs, the data's paths), and its
      // backoffs; the rest from the state gone back to
      const carried = {
        lrScale: scale,
        backoffs: run.backoffs + 1,
        best: run.best,
        epochs: run.epochs,
        rows: run.rows,
        paths: run.paths,
        ...(run.corpus === undefined ? {} : { corpus: run.corpus }),
      };
      if (f.rollback) {
        try {
          await this.#restore(good);
        } catch (e) {
          throw this.#divergence(
            lr,
            `${f.what}; the last good state cannot be restored: ${(e as Error).message}`,
          );
        }
        run = this.#run!;
        startStep = Math.min(startStep, this.step);
        startExamples = Math.min(startExamples, run.examples);
        if (dir) {
          // the checkpoints taken since are of the abandoned steps: a --resume must not take one up
          const gone = await removeCheckpointsAfter(dir, this.step);
          if (gone.length) {
            if (this.#lastCheckpoint && gone.includes(this.#lastCheckpoint)) this.#lastCheckpoint = good.file;
            log(
              `backoff: removed ${gone.length} checkpoint(s) of the abandoned steps (${
                gone.map((p) => p.slice(p.lastIndexOf("/") + 1)).join(", ")
              })`,
            );
          }
        }
      }
      Object.assign(run, carried);
      if (!run.best) delete run.best;
      lr = learningRate(c, run.examples, total) * run.lrScale;
      const { event, text } = backoffNote({
        ...f,
        step: failed,
        epoch,
        lr,
        lrScale: run.lrScale,
        to: this.step,
      });
      note(event, text);
      return f.rollback;
    };
    const behindWrites = this.#writesBehind();
    if (behindWrites && dir) this.#writer ??= new CheckpointWriter();
    if (dir) {
      this.deps.log(
        behindWrites
          ? "checkpoints: written behind the steps on a worker (the last one before the job goes on; " +
            "FACTOROUT_WRITE_BEHIND=0 waits for each)" +
            (this.#yieldsCore()
              ? "; the split step runs on the training thread alone while one is written, every core being its"
              : "")
          : "checkpoints: each written before the next step (FACTOROUT_WRITE_BEHIND=0)",
      );
    }
    let improved = false, rolledBack = true;
    while (rolledBack) {
      rolledBack = false;
      const reader = first ?? open();
      first = undefined;
      let readerMs = { read: 0, shuffle: 0 }, batchNo = 0;
      for await (const b of reader) {
        clock.mark(S.wait);
        checkReaderBatch(b, this.vocab.words.length, run.paths.join(", "), ++batchNo);
        if (b.times) {
          clock.ms[S.read] += b.times.read - readerMs.read;
          clock.ms[S.shuffle] += b.times.shuffle - readerMs.shuffle;
          readerMs = b.times;
        }
        if (b.epoch !== run.epoch) {
          const lost = await flushed();
          if (lost && (rolledBack = await backoff(lost))) break;
          // an epoch's end is where the state is declared good: check the output layer's health first
          const sick = run.epochCount > 0 ? await this.#health(note) : undefined;
          if (sick && (rolledBack = await backoff(sick))) break;
          improved = run.epochCount > 0 && await endEpoch();
          run.epoch = b.epoch;
          await save(true, { behind: behindWrites });
          if (improved) await saveBest();
        }
        clock.mark(S.bookkeeping);
        // scaled before the split, so the held-out loss is the same objective as the training loss
        const { inputs, targets } = this.#split.apply(b.inputs, this.#scaleTargets(b.targets), b.epoch === 0);
        clock.mark(S.split);
        const m = inputs.offsets.length - 1;
        lr = learningRate(c, run.examples, total) * run.lrScale;
        if (m > 0) {
          let loss: number | StepFailure;
          const fwd = this.model.stepTimes[0], bwd = this.model.stepTimes[2];
          for (;;) {
            loss = await attemptStep(this.model, inputs, targets, lr, lr * c.lrInputScale);
            if (typeof loss === "number" || (rolledBack = await backoff(loss))) break;
          }
          clock.mark(S.layerStep);
          clock.move(S.layerStep, S.bagForward, this.model.stepTimes[0] - fwd);
          clock.move(S.layerStep, S.bagBackward, this.model.stepTimes[2] - bwd);
          if (rolledBack) break; // reopen the reader at the restored position
          this.step++;
          stepped = true;
          run.lr = lr;
          this.#cleanFile = undefined;
          // saveBest's link is of the step before: its copy goes once its write is done, not at the next save
          behind = undefined;
          // the write behind the steps is done: the output layer's threads take the core back now
          if (this.#yielded && !this.#writer?.busy) this.#yieldCore(false);
          account(this.model.settled(loss as number, m));
        }
        run.examples += b.size;
        run.position = b.position;
        // a checkpoint written behind the steps failed (a full disk): the run stops now, with its error
        if (this.#writes.failed) await this.#writes.settle();
        if (
          (every > 0 && m > 0 && this.step % every === 0) ||
          (minutes > 0 && performance.now() - savedAt >= minutes * 60000)
        ) {
          const lost = await flushed();
          if (lost && (rolledBack = await backoff(lost))) break;
          await save(false, { behind: behindWrites });
        }
        progress.update(sample());
        clock.mark(S.bookkeeping);
        if (opts.stop?.aborted) {
          stopped = true;
          break;
        }
      }
      const lost = rolledBack ? undefined : await flushed();
      // after a stop, the state gone back to is the one saved (its resume trains the rest at the lower rate)
      if (lost) rolledBack = await backoff(lost) && !stopped;
      // the last epoch's end; a stop is not an epoch's end (its repair or rollback would come at a step the
      // signal chose, and the resumed run checks at the epoch's end, as an uninterrupted one does)
      const sick = !rolledBack && !stopped && run.epochCount > 0 ? await this.#health(note) : undefined;
      if (sick) rolledBack = await backoff(sick);
    }
    if (stopped) {
      await save();
      progress.finish();
      return { ...summarize(run.epochCount ? run.epochLoss / run.epochCount : lastEpochLoss), stopped: true };
    }
    improved = run.epochCount > 0 && await endEpoch();
    // a reader that ended before the run's last epoch (a time cap cutting the data, as bench:quality does):
    // the parameters are of an unfinished epoch, so no epoch is reported kept (it said the configured last).
    // Not a count of examples: subsampling draws differ in size, so a whole run reads fewer than rows × epochs
    const cut = run.epoch < run.epochs - 1 ? { examples: run.examples, total } : undefined;
    if (cut) {
      note(
        { event: "dataEnded", step: this.step, ...cut },
        `the data ended after ${cut.examples} of the run's ${total} examples ` +
          `(${(cut.examples / Math.max(1, run.rows)).toFixed(2)} epochs of ${run.epochs})`,
      );
    }
    run.epoch = run.epochs;
    run.examples = Math.max(run.examples, total);
    progress.update(sample(), true);
    progress.finish();
    await save(true);
    if (improved) await saveBest();
    const best = run.best;
    const summary: TrainSummary = {
      ...summarize(lastEpochLoss),
      ...(best
        ? {
          bestEpoch: best.epoch,
          bestValidationLoss: best.validationLoss,
          ...(best.trainLoss === undefined ? {} : { bestTrainLoss: best.trainLoss }),
        }
        : {}),
      ...(cut ? {} : { keptEpoch: run.epochs }),
    };
    if (keepsBest(keepBest, best, this.step)) {
      const finished = structuredClone(run);
      if (await this.#restoreBest(best, bestState, dir && join(dir, BEST_CHECKPOINT))) {
        // the run is over: its state keeps the end's bookkeeping (all epochs done) with the kept epoch's
        // parameters, so that a checkpoint of it (a refresh's) is of a finished training
        this.#run = finished;
        // its rollback state is no longer the last epoch end: a run resumed from it goes back to its start
        delete finished.good;
        summary.keptEpoch = best.epoch;
        note(
          { event: "best", epoch: best.epoch, step: best.step, validationLoss: best.validationLoss },
          `keeping epoch ${best.epoch}'s parameters: its validation loss ${fmt4(best.validationLoss)} ` +
            `is the lowest (the final state is in ${this.#lastCheckpoint ?? "no checkpoint"})`,
        );
      }
    }
    const validationLoss = await validation();
    return { ...summary, ...(validationLoss === undefined ? {} : { validationLoss }) };
  }

  /** The batch's targets weighted by `--target-power`/`--target-scale` (lib/train/target_weights.ts), or as is. */
  #scaleTargets(Y: ReaderBatch["targets"]): ReaderBatch["targets"] {
    if (this.#scaler === undefined) {
      const scales = targetScales(this.vocab.counts, this.config.targetPower, this.config.targetScale);
      this.#scaler = scales && new TargetScaler(scales);
    }
    return this.#scaler ? this.#scaler.apply(Y) : Y;
  }

  /**
   * Whether checkpoints are written behind the steps: TrainerDeps.writeBehind, else yes (on the writer's
   * worker; with every core taken by the output layer's threads, its pool stands down meanwhile, which ran five
   * epochs faster than waiting for each checkpoint: BENCHMARKS.md, "The epoch's end on two threads").
   */
  #writesBehind(): boolean {
    return this.deps.writeBehind ?? true;
  }

  /** The epoch-end health check of the output layer (guard.ts' checkHealth) at the current step. */
  #health(note: (event: Record<string, unknown>, text: string) => void): Promise<StepFailure | undefined> {
    return checkHealth(this.#output, { step: this.step, epoch: this.#run!.epoch + 1 }, note);
  }

  /**
   * The current state to go back to: the checkpoint file that holds it when there is one (nothing in
   * memory but the run state), else a copy of it (a checkpoint's size) that later steps do not change.
   */
  async #goodState(): Promise<GoodState> {
    if (this.#cleanFile) return { file: this.#cleanFile, run: structuredClone(this.#run!) };
    return await this.#stateCopy();
  }

  /** A copy of the current state (a checkpoint's size) that later steps do not change. */
  async #stateCopy(): Promise<GoodState & { file?: undefined }> {
    const run = structuredClone(this.#run!);
    const spare = this.#spare;
    this.#spare = undefined;
    const ckpt = await this.toCheckpoint({ into: spare });
    // on shared memory: the checkpoint writer's worker reads a copy written behind the steps (the spares, and
    // W₀ that the run start's copy goes into, are on shared memory, so nothing is copied twice). Into the
    // spare's arrays, the validation set's too: a new SharedArrayBuffer that the worker has seen is freed only
    // once both threads collect it, and the worker seldom does (one per checkpoint grew the process steadily)
    for (const [k, a] of Object.entries(ckpt.arrays)) {
      if (k.startsWith("model.") || !(a.buffer instanceof SharedArrayBuffer)) {
        ckpt.arrays[k] = copyInto(a, spare?.[k], true);
      }
    }
    // the spare's arrays this copy has no key for (the output layer's unsettled state, there at some steps
    // only) stay spare for a later copy: let go, the next copy that has them took new shared memory, which the
    // writer's worker is slow to free
    const unused = Object.entries(spare ?? {}).filter(([k]) => !(k in ckpt.arrays));
    if (unused.length) this.#spare = { ...Object.fromEntries(unused), ...(this.#spare ?? {}) };
    // the run state of this moment, also in the copy (written out as a file when the run checkpoints)
    (ckpt.meta as { run: RunState | null }).run = run;
    return { ckpt, run };
  }

  /**
   * Sets the parameters, output layer, step, run and validation set to a saved state (of this trainer's
   * model and vocabulary). The RNG is left as it is: training does not draw from it.
   */
  async #restore(from: GoodState): Promise<void> {
    const ckpt = from.file === undefined ? from.ckpt : await readCheckpoint(from.file);
    const a = ckpt.arrays;
    const bad = (what: string): never => {
      throw new DataFormatError(from.file ?? "<snapshot>", what);
    };
    // deno-lint-ignore no-explicit-any
    const meta = ckpt.meta as Record<string, any>;
    setParams(this.model, a, bad);
    // copied: the layer may keep the arrays, and an in-memory snapshot must stay as it is
    const state = outputStateOf(meta, a, bad, from.file === undefined);
    const head = await this.deps.createHead({
      kind: this.config.output,
      D: state.D,
      d: state.d,
      state,
      loss: this.config.loss,
      backend: this.#output.backend,
      log: () => {},
    });
    this.#poolReplaced = this.#poolCounts();
    this.#restores++;
    this.#output.close();
    this.#output = head;
    this.model.head = head;
    this.#attachStepPath();
    this.step = meta.step;
    this.#run = structuredClone(from.run);
    this.#split.importState(a);
    this.#cleanFile = from.file;
    this.#cleanRun = from.file === undefined ? undefined : fileKey(from.run, meta.config);
  }

  /** `g` with its file in `dir` under `name`: linked there (else copied) when it is in another folder. */
  async #intoFolder(g: GoodState, dir: string, name: string): Promise<GoodState> {
    if (g.file === undefined) return g;
    await Deno.mkdir(dir, { recursive: true });
    if (await Deno.realPath(dirname(g.file)) === await Deno.realPath(dir)) return g;
    const mine = join(dir, name);
    if (!(await linkFileAtomic(g.file, mine))) await writeCheckpoint(mine, await readCheckpoint(g.file));
    return { file: mine, run: g.run };
  }

  /** Whether #cleanFile holds exactly the current state, its run state and config included. */
  #fileIsCurrent(): boolean {
    return this.#cleanFile !== undefined && this.#cleanRun === fileKey(this.#run, this.config);
  }

  /**
   * Makes `dir`'s best.fock hold the run's best epoch (`run.best`) where it does not, before a resumed run
   * takes a step: when the state resumed is that epoch's (a job killed between its checkpoint and
   * best.fock's link to it), a second name of the file it was loaded from (written out where the link is
   * refused); else, from a later state, the best.fock beside the checkpoint it started from (resumed into
   * another folder), or that epoch's own checkpoint, here or there while it is not pruned, whichever holds
   * that epoch. One line says so.
   */
  async #repairBest(dir: string, run: RunState): Promise<void> {
    const best = run.best!, file = join(dir, BEST_CHECKPOINT), from = this.#cleanFile;
    const id = (p: string) => Deno.stat(p).then((s) => `${s.dev}:${s.ino}`, () => undefined);
    const linked = await id(file);
    let source: string | undefined, why: string;
    if (best.step === this.step) {
      if (linked !== undefined && from !== undefined && linked === (await id(from))) return;
      if (linked !== undefined && (await stateInFile(file, best.step))) return;
      source = from;
      why = "a job killed before it was written";
    } else {
      const real = (p: string) => Deno.realPath(p).catch(() => p);
      const beside = from !== undefined && (await real(dirname(from))) !== (await real(dir))
        ? dirname(from)
        : undefined;
      // where that epoch's state may be: best.fock beside the checkpoint resumed from another folder, and
      // the epoch's own checkpoint (best.fock was a second name of it), here or there, until it is pruned
      const places = [
        ...(beside === undefined ? [] : [join(beside, BEST_CHECKPOINT)]),
        join(dir, checkpointName(best.step)),
        ...(beside === undefined ? [] : [join(beside, checkpointName(best.step))]),
      ];
      const found: string[] = [];
      for (const p of places) {
        const at = await id(p);
        // best.fock is already a second name of one of them
        if (at !== undefined && at === linked) return;
        if (at !== undefined) found.push(p);
      }
      // none to take it from (the common case once the epoch's checkpoint is pruned): best.fock is not read
      if (!found.length) return;
      if (linked !== undefined && (await stateInFile(file, best.step))) return;
      for (const p of found) {
        if (await stateInFile(p, best.step)) {
          source = p;
          break;
        }
      }
      if (source === undefined) return;
      why = beside === undefined ? "it held another epoch's, or none" : "the run resumed into another folder";
    }
    const read = source;
    await writeBest(dir, () => read ? readCheckpoint(read) : this.toCheckpoint(), run, source);
    this.deps.log(
      `keep-best: ${file} did not hold epoch ${best.epoch}'s state (step ${best.step}), the run's best so ` +
        `far (${why}): made from ${source ?? "the state resumed"}`,
    );
  }

  /** Restores the best epoch's state (best.ts' findBest); false when it is gone or is not that step's. */
  async #restoreBest(
    best: NonNullable<RunState["best"]>,
    saved: GoodState | undefined,
    file: string | undefined,
  ): Promise<boolean> {
    const from = await findBest(best, saved, file, this.deps.log);
    if (!from) return false;
    await this.#restore(from);
    return true;
  }

  #divergence(lr: number, what: string): DivergenceError {
    return divergenceError({
      config: this.config,
      run: this.#run!,
      step: this.step,
      lr,
      what,
      ...(this.#lastCheckpoint ? { lastCheckpoint: this.#lastCheckpoint } : {}),
    });
  }

  /**
   * Appends new words: new input rows uniform in ±1/dim, new output rows entering W exactly (desired rows
   * uniform in ±1/d, through OutputLayer.appendRows), both from the trainer's RNG. Returns their ids.
   */
  async growVocabulary(newWords: string[], counts: number[]): Promise<number[]> {
    const V = this.vocab.words.length, n = newWords.length;
    const rows = newWordRows(this.vocab, newWords, counts, this.rng, this.config.dim, this.model.d);
    if (n === 0) return [];
    await this.model.syncHost();
    this.#cleanFile = undefined;
    await this.output.appendRows(rows.output);
    this.model.bag.appendRows(rows.input);
    this.model.resident?.upload();
    this.model.spec.vocab = V + n;
    this.vocab.words.push(...newWords);
    this.vocab.counts.push(...counts);
    this.#scaler = undefined; // the frequencies changed: rebuilt at the next batch
    return Array.from({ length: n }, (_, i) => V + i);
  }

  /** The complete state as a {@link Checkpoint}. */
  async toCheckpoint(opts: { into?: SpareArrays } = {}): Promise<Checkpoint> {
    await this.model.syncHost();
    const words = this.vocab.words.length;
    if (this.#vocabHash?.words !== words) {
      this.#vocabHash = { words, hash: await vocabularyHash(this.vocab.words) };
    }
    const ckpt = await trainerCheckpoint({
      ...opts,
      vocabHash: this.#vocabHash.hash,
      config: this.config,
      vocab: this.vocab,
      model: this.model,
      output: this.output,
      step: this.step,
      rng: this.rng,
      run: this.#run,
      split: this.#split.exportState(),
    });
    Object.assign(ckpt.meta, this.checkpointMeta);
    return ckpt;
  }

  /**
   * Writes `ckpt-<step>.fock` into `dir` atomically and keeps the newest `keep` (and the one named like
   * `protect`); returns its path. Its meta holds {@link Trainer.checkpointMeta}'s entries.
   */
  async saveCheckpoint(dir: string, opts: { keep?: number; protect?: string } = {}): Promise<string> {
    const keep = opts.keep ?? this.config.keepCheckpoints;
    if (!Number.isInteger(keep) || keep < 1) {
      throw new UsageError(`saveCheckpoint: keep must be an integer ≥ 1 (checkpoints kept), got ${keep}`);
    }
    const path = join(dir, checkpointName(this.step)), at = this.#stateMark();
    // the spare's arrays are this checkpoint's until it is written (a call meanwhile copies into new ones)
    const spare = this.#spare;
    this.#spare = undefined;
    const ckpt = await this.toCheckpoint({ into: spare });
    await this.#commitCheckpoint(dir, path, ckpt, { keep, protect: opts.protect, at });
    // the output layer's arrays are copies, written: the next checkpoint's (the model's are the live ones)
    const copies = Object.entries(ckpt.arrays).filter(([k]) => k.startsWith("output."));
    this.#spare = { ...spare, ...Object.fromEntries(copies) };
    return path;
  }

  /** Which state this is: its step, the restores so far, its run state and config ({@link fileKey}). */
  #stateMark(): { step: number; restores: number; key: string } {
    return { step: this.step, restores: this.#restores, key: fileKey(this.#run, this.config) };
  }

  /**
   * Writes `ckpt`, the state marked `at`, as `path` in `dir` (the folder made if it is gone), prunes the
   * folder to `keep` (and `protect`), and records it: the last checkpoint, and the file of the current state
   * while no step or restore has followed `at` (a checkpoint written behind the steps lands later).
   */
  async #commitCheckpoint(
    dir: string,
    path: string,
    ckpt: Checkpoint,
    o: {
      keep: number;
      protect: string | undefined;
      at: { step: number; restores: number; key: string };
      behind?: boolean;
    },
  ): Promise<void> {
    // synchronous: a write behind the steps is posted to its worker before the next step, not at the training
    // thread's next turn of the event loop (which the steps do not take), where the promise of an async mkdir
    // would settle
    await withPath("cannot create checkpoint folder", dir, () => Deno.mkdirSync(dir, { recursive: true }));
    // the spare goes to this write (taken before any await: a second write at once makes a file of its own)
    // (a spare of this folder's only: one in a folder inside it, renamed out of there, may be on another disk)
    const spare = this.#spareFile?.dir === dir ? this.#takeSpareFile() : undefined;
    const reuse = spare ? { reuse: spare.path } : {};
    // a write behind the steps goes to the writer's worker (the copy's arrays are on shared memory); any
    // other is waited for, and written here
    const writer = o.behind ? this.#writer : undefined;
    try {
      if (writer) {
        this.#yieldCore(true);
        await writer.write(path, ckpt, reuse);
      } else await writeCheckpoint(path, ckpt, reuse);
    } finally {
      if (writer && !writer.busy) this.#yieldCore(false);
      spare?.forget();
    }
    const kept = await pruneCheckpoints(dir, o.keep, o.protect, { spare: true });
    if (kept) {
      this.#dropSpareFile();
      this.#spareFile = { path: kept, dir, forget: removeAtExit(kept) };
    }
    this.#lastCheckpoint = path;
    if (this.step === o.at.step && this.#restores === o.at.restores) {
      this.#cleanFile = path;
      this.#cleanRun = o.at.key;
    }
  }

  /**
   * The word vectors: `input` the rows of E (V×d, d = dim); with `output: true` also the rows of W
   * (V×dOut, dOut = d of the output layer, the last column the bias feature's weight).
   */
  async embeddings(opts: { output?: boolean } = {}): Promise<
    { words: string[]; input: Float32Array; d: number; output?: Float32Array; dOut: number }
  > {
    await this.model.syncHost();
    // the spare copy of E, when there is one, becomes the caller's
    const spareE = this.#spare?.["model.E"], E = this.model.bag.E;
    if (spareE) delete this.#spare!["model.E"];
    const input = E instanceof Float32Array ? copyInto(E, spareE) : Float32Array.from(E);
    const output = opts.output ? await this.output.weights() : undefined;
    return {
      words: [...this.vocab.words],
      input,
      d: this.config.dim,
      dOut: this.model.d,
      ...(output ? { output } : {}),
    };
  }

  /** Lets the checkpoint writer's worker go (train() has settled its writes) and the pool take its core back. */
  #closeWriter(): void {
    this.#writer?.close();
    this.#writer = undefined;
    this.#yieldCore(false);
  }

  /**
   * `yield`: a write behind the steps starts, and where the output layer's threads take every core, its pool
   * stands down (the training thread runs the split step's parts alone, the same parts, so the same bits):
   * the write's worker and the kernel's page-cache copies take a core, and a split step would wait at each
   * synchronisation for the thread that shares it. false: the write is done; the threads come back.
   */
  #yieldCore(yieldIt: boolean): void {
    if (yieldIt === this.#yielded || !this.#yieldsCore()) return;
    this.#yielded = yieldIt;
    this.#outputPool()!.standDown(yieldIt ? YIELD_CALLS : 0);
  }

  /** Whether the output layer's pool takes every core (and stands down while a write behind the steps runs). */
  #yieldsCore(): boolean {
    const pool = this.#outputPool();
    return pool !== null && pool.parts >= navigator.hardwareConcurrency;
  }

  /** The spare checkpoint file, now the caller's (undefined when there is none). */
  #takeSpareFile(): { path: string; dir: string; forget: () => void } | undefined {
    const f = this.#spareFile;
    this.#spareFile = undefined;
    return f;
  }

  /** Removes the spare checkpoint file, if any. */
  #dropSpareFile(): void {
    const f = this.#takeSpareFile();
    if (!f) return;
    try {
      Deno.removeSync(f.path);
    } catch { /* gone already */ }
    f.forget();
  }

  /** Frees the output layer's (and the hidden layers' backend's) resources, and removes the spare checkpoint file. */
  close(): void {
    this.#dropSpareFile();
    this.#closeWriter();
    this.#spare = undefined;
    this.output.close();
    this.#la?.close();
    this.#la = undefined;
  }
}

/**
 * Creates the checkpoint folder and writes and removes a temporary file in it (named like a checkpoint's
 * temporary, which removeStaleCheckpointTemps clears if the process dies meanwhile); an operating-system
 * error is an IoError naming the folder.
 */
async function checkpointFolderUsable(dir: string): Promise<void> {
  await withPath("cannot create checkpoint folder", dir, () => Deno.mkdir(dir, { recursive: true }));
  const probe = tempNameFor(join(dir, checkpointName(0)));
  await withPath("cannot write in checkpoint folder", dir, async () => {
    await Deno.writeFile(probe, new Uint8Array(0), { createNew: true });
    await Deno.remove(probe);
  });
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** a + sign·b, field by field (an undefined side counts as zeros). */
function addCounts(a: PoolCounts | undefined, b: PoolCounts | undefined, sign = 1): PoolCounts {
  const zero = { splitCalls: 0, callerOnlyCalls: 0, standDowns: 0 };
  const x = a ?? zero, y = b ?? zero;
  return {
    splitCalls: x.splitCalls + sign * y.splitCalls,
    callerOnlyCalls: x.callerOnlyCalls + sign * y.callerOnlyCalls,
    standDowns: x.standDowns + sign * y.standDowns,
  };
}

/**
 * What a checkpoint file's run state and config are compared by (Trainer #fileIsCurrent): all of them but
 * the run's training seconds, a clock reading that a file of the same state written earlier holds too.
 */
function fileKey(run: RunState | null, config: unknown): string {
  return JSON.stringify([run && { ...run, seconds: undefined }, config]);
}
