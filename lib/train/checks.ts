/**
 * The trainer's checks at its API boundary: the vocabulary of {@link Trainer.create}, the options of
 * `train()`, and each batch a reader yields (a custom `openReader` is the caller's code: its batches are
 * checked before the step, where a bad one would otherwise fail deep in a layer, or turn into NaN and a
 * divergence). Each check costs at most O(m + nnz) per batch, far below the step's cost.
 *
 * @module
 */

import { DataFormatError, UsageError } from "../core/errors.ts";
import { describeValue, validateCsr } from "../core/csr.ts";
import type { ReaderBatch, TrainOptions, Vocabulary } from "./types.ts";

/**
 * Refuses (UsageError) a vocabulary without words, with another number of counts than words, a word
 * that is not a string or is repeated (one line naming both ids), or a count that is not a finite number
 * ≥ 0.
 *
 * @example
 * ```ts
 * import { checkVocabulary } from "./checks.ts";
 * checkVocabulary({ words: ["the", "of"], counts: [100, 50] });
 * ```
 */
export function checkVocabulary(vocab: Vocabulary): void {
  const words = vocab?.words, counts = vocab?.counts;
  if (!Array.isArray(words) || !Array.isArray(counts)) {
    throw new UsageError(
      `vocabulary: words and counts must be arrays, got ${describeValue(words)} and ${describeValue(counts)}`,
    );
  }
  const V = words.length;
  if (V < 1 || counts.length !== V) {
    throw new UsageError(
      `vocabulary: ${V} words and ${counts.length} counts; need at least one word and one count per word`,
    );
  }
  const seen = new Map<string, number>();
  for (let i = 0; i < V; i++) {
    const w = words[i];
    if (typeof w !== "string") {
      throw new UsageError(`vocabulary: word ${i} is ${describeValue(w)}, not a string`);
    }
    const first = seen.get(w);
    if (first !== undefined) {
      throw new UsageError(
        `vocabulary: word ${JSON.stringify(w)} is both id ${first} and id ${i}; every word must be once`,
      );
    }
    seen.set(w, i);
    const c = counts[i];
    if (typeof c !== "number" || !Number.isFinite(c) || c < 0) {
      throw new UsageError(
        `vocabulary: the count of word ${i} (${JSON.stringify(w)}) is ${shown(c)}; ` +
          `counts must be finite numbers ≥ 0`,
      );
    }
  }
}

/**
 * Refuses (UsageError naming the option) `train()` options of the wrong type or out of range: `paths` a
 * non-empty array of non-empty strings, `rows` an integer ≥ 1, `epochs` (when given) an integer ≥ 1,
 * `checkpointEvery` an integer ≥ 0, `keepCheckpoints` an integer ≥ 1, `checkpointMinutes` a finite number
 * ≥ 0, `checkpointDir` a non-empty string; and `resume: true` when the trainer holds no run to continue
 * (`hasRun` false: created fresh, not loaded from a run's checkpoint).
 *
 * @example
 * ```ts
 * import { checkTrainOptions } from "./checks.ts";
 * checkTrainOptions({ paths: ["data/corpus"], rows: 1000, epochs: 2 }, false);
 * ```
 */
export function checkTrainOptions(opts: TrainOptions, hasRun: boolean): void {
  if (opts === null || typeof opts !== "object") {
    throw new UsageError(`train: options must be an object, got ${describeValue(opts)}`);
  }
  const { paths } = opts;
  if (!Array.isArray(paths) || paths.length === 0 || paths.some((p) => typeof p !== "string" || p === "")) {
    throw new UsageError(
      `train: paths must be a non-empty array of shard files or corpus folders (strings), got ${
        Array.isArray(paths) ? JSON.stringify(paths) : shown(paths)
      }`,
    );
  }
  const int = (name: string, v: unknown, min: number, what: string) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      throw new UsageError(`train: ${name} must be an integer ≥ ${min} (${what}), got ${shown(v)}`);
    }
  };
  int("rows", opts.rows, 1, "the examples per epoch");
  if (opts.epochs !== undefined) int("epochs", opts.epochs, 1, "the epochs of the run");
  if (opts.checkpointEvery !== undefined) {
    int("checkpointEvery", opts.checkpointEvery, 0, "steps between checkpoints; 0: only at epoch ends");
  }
  if (opts.keepCheckpoints !== undefined) int("keepCheckpoints", opts.keepCheckpoints, 1, "checkpoints kept");
  const minutes = opts.checkpointMinutes;
  if (minutes !== undefined && (typeof minutes !== "number" || !Number.isFinite(minutes) || minutes < 0)) {
    throw new UsageError(
      `train: checkpointMinutes must be a finite number ≥ 0 (0: off), got ${shown(minutes)}`,
    );
  }
  if (
    opts.checkpointDir !== undefined && (typeof opts.checkpointDir !== "string" || opts.checkpointDir === "")
  ) {
    throw new UsageError(
      `train: checkpointDir must be a non-empty folder path, got ${shown(opts.checkpointDir)}`,
    );
  }
  if (opts.resume && !hasRun) {
    throw new UsageError(
      "train: resume: true, but this trainer holds no run to continue (it was created fresh, or loaded from " +
        "a checkpoint written outside a training run); load the run's checkpoint with Trainer.fromCheckpoint, " +
        "or leave resume out to start a new run",
    );
  }
}

/**
 * Checks one batch of a reader before the step: an object with `inputs` and `targets` in CSR form of the
 * same number of examples (Int32Array offsets and indices, Float32Array values, offsets from 0 and
 * non-decreasing to the indices' length), every id in [0, `V`), every value finite, `epoch` an integer
 * ≥ 0 and `size` an integer ≥ the examples (a remapping reader may drop some). A batch of no example
 * passes. Throws DataFormatError naming `source` (the reader's paths), the batch and the example.
 *
 * @example
 * ```ts
 * import { checkReaderBatch } from "./checks.ts";
 * const X = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(3), values: Float32Array.of(1) };
 * checkReaderBatch({ inputs: X, targets: X, position: null, epoch: 0, size: 1 }, 10, "mem", 1);
 * ```
 *
 * @param b the batch
 * @param V the vocabulary size (ids lie in [0, V))
 * @param source the reader's paths, for the message
 * @param n the batch's number since the reader was opened (1-based), for the message
 */
export function checkReaderBatch(b: ReaderBatch, V: number, source: string, n: number): void {
  const bad = (what: string): never => {
    throw new DataFormatError(source, `reader batch ${n}: ${what}`);
  };
  if (b === null || typeof b !== "object") bad(`not a batch object: ${describeValue(b)}`);
  const m = csrRows("inputs", b.inputs, V, bad);
  const mY = csrRows("targets", b.targets, V, bad);
  if (typeof b.epoch !== "number" || !Number.isInteger(b.epoch) || b.epoch < 0) {
    bad(`epoch must be an integer ≥ 0, got ${shown(b.epoch)}`);
  }
  if (m !== mY) bad(`inputs have ${m} examples but targets ${mY}; each example needs both`);
  if (typeof b.size !== "number" || !Number.isInteger(b.size) || b.size < m) {
    bad(`size must be an integer ≥ its ${m} examples (the examples read), got ${shown(b.size)}`);
  }
}

/** A value for a message: a number or string as it is (a string quoted), else its type. */
function shown(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  return describeValue(v);
}

/** The examples of a CSR part of a batch, validated (lib/core/csr.ts validateCsr; a batch of none passes). */
function csrRows(name: string, B: unknown, V: number, bad: (what: string) => never): number {
  const X = B as ReaderBatch["inputs"];
  if (X !== null && typeof X === "object" && X.offsets instanceof Int32Array && X.offsets.length === 1) {
    if (X.offsets[0] !== 0 || X.indices?.length !== 0 || X.values?.length !== 0) {
      bad(`${name}: no example, but offsets [${X.offsets[0]}] and ${X.indices?.length} indices`);
    }
    return 0;
  }
  try {
    return validateCsr(name, X, V);
  } catch (e) {
    if (!(e instanceof RangeError || e instanceof TypeError)) throw e;
    const outside = /is outside \[0, D=\d+\)/.test(e.message);
    return bad(
      outside ? e.message.replace(/\[0, D=(\d+)\)/, "the vocabulary's ids [0, $1)") : e.message,
    );
  }
}
