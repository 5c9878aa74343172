/**
 * The trainer's default dependencies: lib/layers' output layers and lib/io's reader.
 *
 * @module
 */

import { createOutputLayer } from "../output/create.ts";
import { type ReaderPosition, readExamples } from "../io/read.ts";
import { UsageError } from "../core/errors.ts";
import { readWorkerExamples } from "../io/worker_reader.ts";
import type { CreateHead, OpenReader } from "./trainer.ts";

/**
 * Creates the output layer: lib/layers' createOutputLayer.
 *
 * @example
 * ```ts
 * import { createHead } from "./defaults.ts";
 * const layer = await createHead({ kind: "naive", D: 10, d: 3, init: new Float32Array(30), backend: "js" });
 * layer.close();
 * ```
 */
export const createHead: CreateHead = createOutputLayer;

/**
 * Rows per shuffle block of the reader (a window of the corpus shuffled each epoch).
 *
 * @example
 * ```ts
 * import { SHUFFLE_BUFFER } from "./defaults.ts";
 * console.log(SHUFFLE_BUFFER); // 65536
 * ```
 */
export const SHUFFLE_BUFFER = 1 << 16;

/**
 * Where the trainer's reader runs: FACTOROUT_READER, `worker` (the default) or `thread`. The train job reads
 * it before it prepares a corpus, so that a bad value costs nothing.
 *
 * @example
 * ```ts
 * import { readerPlace } from "./defaults.ts";
 * console.log(["worker", "thread"].includes(readerPlace())); // true
 * ```
 *
 * @returns the place
 * @throws {UsageError} another value
 */
export function readerPlace(): "worker" | "thread" {
  const where = Deno.env.get("FACTOROUT_READER") ?? "worker";
  if (where !== "worker" && where !== "thread") {
    throw new UsageError(`FACTOROUT_READER must be worker or thread, got '${where}'`);
  }
  return where;
}

/**
 * Whether the trainer splits the embedding bag's rows on the output layer's threads: FACTOROUT_BAG_SPLIT
 * `1` (the bag's table on the pool's memory, its rows split by the pool's axpyRows from the split table's
 * scatter size: embedding_bag.ts `usePool`), else (unset or `0`) the bag runs on the training thread. On the
 * 2-core machines a split bag lost at every CBOW batch measured while it added rows with JavaScript loops,
 * and with its rows in OpenBLAS gained a few per cent in quiet minutes and lost in busy ones (BENCHMARKS.md,
 * "The embedding bag on one thread", "The final tree"), so it stays opt-in. The train job reads it before
 * it prepares a corpus, so that a bad value costs nothing.
 *
 * @example
 * ```ts
 * import { bagSplit } from "./defaults.ts";
 * console.log(typeof bagSplit()); // "boolean"
 * ```
 *
 * @returns true to split
 * @throws {UsageError} another value
 */
export function bagSplit(): boolean {
  const v = Deno.env.get("FACTOROUT_BAG_SPLIT") ?? "0";
  if (v !== "0" && v !== "1") throw new UsageError(`FACTOROUT_BAG_SPLIT must be 0 or 1, got '${v}'`);
  return v === "1";
}

/**
 * Whether the trainer writes its checkpoints behind the steps (lib/train/write_behind.ts, on the checkpoint
 * writer's worker): FACTOROUT_WRITE_BEHIND `1` or unset, behind (where the output layer's threads take every
 * core, its pool stands down while a write runs: trainer.ts `#yieldCore`); `0` never (each checkpoint written
 * before the next step). The train job reads it before it prepares a corpus, so that a bad value costs nothing.
 *
 * @example
 * ```ts
 * import { writeBehind } from "./defaults.ts";
 * console.log(writeBehind()); // undefined where FACTOROUT_WRITE_BEHIND is unset
 * ```
 *
 * @returns true, false, or undefined (unset: the trainer writes behind the steps)
 * @throws {UsageError} another value
 */
export function writeBehind(): boolean | undefined {
  const v = Deno.env.get("FACTOROUT_WRITE_BEHIND") ?? "";
  if (v !== "" && v !== "0" && v !== "1") {
    throw new UsageError(`FACTOROUT_WRITE_BEHIND must be 0 or 1 (or unset), got '${v}'`);
  }
  return v === "" ? undefined : v === "1";
}

/**
 * Opens lib/io's reader with a shuffle buffer of {@link SHUFFLE_BUFFER} rows: on a worker thread
 * (readWorkerExamples: reading, decoding and shuffling off the training thread, the same batches in the same
 * order), or on the training thread (readExamples) when the environment variable FACTOROUT_READER is
 * `thread` (a machine whose cores are all busy gains nothing from the worker).
 *
 * @example
 * ```ts
 * import { openReader } from "./defaults.ts";
 * const batches = openReader(["runs/latest/corpus"], { batchSize: 64, seed: 1, epochs: 1 });
 * ```
 */
export const openReader: OpenReader = (paths, o) => {
  const where = readerPlace();
  const opts = {
    batchSize: o.batchSize,
    seed: o.seed,
    epochs: o.epochs,
    shuffleBuffer: SHUFFLE_BUFFER,
    ...(o.position == null ? {} : { start: o.position as ReaderPosition }),
  };
  return where === "worker" ? readWorkerExamples(paths, opts) : readExamples(paths, opts);
};
