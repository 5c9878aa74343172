/**
 * {@link readExamples} on a worker thread: the shards are read, decoded, shuffled and cut into batches off
 * the training thread, and handed over in groups: the arrays of a group packed into one buffer, transferred
 * (no copy on this side), and seen here as views ({@link packGroup}, {@link unpackGroup}). The worker runs at
 * most {@link GROUPS_AHEAD} groups ahead (of {@link groupBatches} batches each). The order of
 * the batches is that of readExamples for the same options; an error in the worker is thrown here as the
 * same class with the same one-line message (so it keeps its exit code).
 *
 * @module
 */

import { rebuiltError, type SentError } from "../core/worker_errors.ts";
import { receiveMessageOnPort } from "node:worker_threads";
import type { ExampleBatch, ReadOptions } from "./read.ts";

/**
 * Examples per message from the worker, at least (a group is whole batches: ⌈GROUP_EXAMPLES / batch size⌉
 * of them, {@link groupBatches}). Each message costs the training thread a receive and a turn of its event
 * loop (≈ 0.4 ms on the 2-core machines): at batch 64 a group of 16 batches cost ≈ 30 µs a step, one of 64
 * about a third of that (BENCHMARKS.md, "Two threads on a host that drifts").
 *
 * @example
 * ```ts
 * import { GROUP_EXAMPLES } from "./worker_reader.ts";
 * console.log(GROUP_EXAMPLES); // 4096
 * ```
 */
export const GROUP_EXAMPLES = 4096;

/** Milliseconds of steps after which the training thread turns its event loop between two batches of a group. */
const TURN_MS = 100;

/**
 * Groups the worker may have sent and the training thread not yet taken (memory: this many groups of
 * {@link GROUP_EXAMPLES} examples, whatever the batch size).
 *
 * @example
 * ```ts
 * import { GROUPS_AHEAD } from "./worker_reader.ts";
 * console.log(GROUPS_AHEAD); // 4
 * ```
 */
export const GROUPS_AHEAD = 4;

/**
 * Batches per message for batches of `batchSize` examples.
 *
 * @example
 * ```ts
 * import { groupBatches } from "./worker_reader.ts";
 * console.log(groupBatches(64), groupBatches(1000), groupBatches(10_000)); // 64 5 1
 * ```
 *
 * @param batchSize examples per batch
 * @returns batches per group, at least 1
 */
export function groupBatches(batchSize: number): number {
  return Math.max(1, Math.ceil(GROUP_EXAMPLES / batchSize));
}

/**
 * A batch of {@link readWorkerExamples}: readExamples' batch, with the worker's cumulative milliseconds
 * of reading and decoding (`read`) and of shuffling into batches (`shuffle`).
 *
 * @example
 * ```ts
 * import type { TimedBatch } from "./worker_reader.ts";
 * const times = (b: TimedBatch) => b.times.read + b.times.shuffle;
 * ```
 */
export type TimedBatch = ExampleBatch & { times: { read: number; shuffle: number } };

/**
 * A group of batches as the worker sends it: the six arrays of every batch (inputs' and targets' offsets,
 * indices, values; all 4-byte elements) one after the other in one buffer, and the rest of each batch with
 * its arrays' lengths. One transferred buffer per message: receiving a message of 96 transferred arrays
 * cost the training thread ≈ 11 ms in Deno 2.9 on a busy machine, one buffer ≈ 0.3 ms.
 *
 * @example
 * ```ts
 * import type { PackedGroup } from "./worker_reader.ts";
 * const g: PackedGroup = { buf: new ArrayBuffer(0), metas: [] };
 * ```
 */
export type PackedGroup = {
  buf: ArrayBuffer;
  metas: (Omit<TimedBatch, "inputs" | "targets"> & { lens: number[] })[];
};

/**
 * Packs batches into one buffer (copies their arrays); {@link unpackGroup} gives them back.
 *
 * @example
 * ```ts
 * import { packGroup, unpackGroup } from "./worker_reader.ts";
 * const X = { offsets: Int32Array.of(0, 1), indices: Int32Array.of(4), values: Float32Array.of(1) };
 * const position = { epoch: 0, example: 1, file: 0, batch: 1, row: 1, fileName: "a", seed: 1, shuffleBuffer: 0, batchSize: 1, files: 1 };
 * const g = packGroup([{ inputs: X, targets: X, position, epoch: 0, size: 1, times: { read: 0, shuffle: 0 } }]);
 * console.log(unpackGroup(g)[0].targets.indices[0]); // 4
 * ```
 *
 * @param batches the batches
 * @returns the buffer and the rest of each batch
 */
export function packGroup(batches: TimedBatch[]): PackedGroup {
  const arrays = (b: TimedBatch) => [
    b.inputs.offsets,
    b.inputs.indices,
    b.inputs.values,
    b.targets.offsets,
    b.targets.indices,
    b.targets.values,
  ];
  let n = 0;
  for (const b of batches) for (const a of arrays(b)) n += a.length;
  const buf = new ArrayBuffer(4 * n), i32 = new Int32Array(buf), f32 = new Float32Array(buf);
  let at = 0;
  const metas = batches.map((b) => {
    const lens = arrays(b).map((a) => {
      (a instanceof Float32Array ? f32 : i32).set(a as never, at);
      at += a.length;
      return a.length;
    });
    return { position: b.position, epoch: b.epoch, size: b.size, times: b.times, lens };
  });
  return { buf, metas };
}

/**
 * The batches of a {@link packGroup}: their arrays are views of the group's buffer (no copy).
 *
 * @example
 * ```ts
 * import { unpackGroup } from "./worker_reader.ts";
 * console.log(unpackGroup({ buf: new ArrayBuffer(0), metas: [] }).length); // 0
 * ```
 *
 * @param g the group
 * @returns the batches, in order
 */
export function unpackGroup(g: PackedGroup): TimedBatch[] {
  let at = 0;
  const view = (F: Int32ArrayConstructor | Float32ArrayConstructor, n: number) => {
    const v = new F(g.buf, 4 * at, n);
    at += n;
    return v;
  };
  return g.metas.map(({ lens, ...rest }) => ({
    ...rest,
    inputs: {
      offsets: view(Int32Array, lens[0]) as Int32Array,
      indices: view(Int32Array, lens[1]) as Int32Array,
      values: view(Float32Array, lens[2]) as Float32Array,
    },
    targets: {
      offsets: view(Int32Array, lens[3]) as Int32Array,
      indices: view(Int32Array, lens[4]) as Int32Array,
      values: view(Float32Array, lens[5]) as Float32Array,
    },
  }));
}

/**
 * What travels from the worker: a batch, the end, or an error.
 *
 * @example
 * ```ts
 * import type { FromWorker } from "./worker_reader.ts";
 * const end: FromWorker = { type: "end" };
 * ```
 */
export type FromWorker =
  | { type: "batches"; group: PackedGroup }
  | { type: "end" }
  | { type: "error"; error: SentError };

/**
 * Streams readExamples(paths, opts) from a worker thread (see the module doc). The worker starts at once
 * and reads ahead; leaving the loop early (break, a throw) or return() stops it.
 *
 * @example
 * ```ts
 * import { readWorkerExamples } from "./worker_reader.ts";
 * const batches = readWorkerExamples(["data/corpus"], { batchSize: 512, seed: 1 });
 * // for await (const b of batches) console.log(b.size, b.times.read);
 * await batches.return(); // stops the worker (started at once, reading ahead)
 * ```
 */
export function readWorkerExamples(
  paths: string[],
  opts: Omit<ReadOptions, "clock">,
): AsyncGenerator<TimedBatch, void, unknown> {
  // the worker starts now, not at the first next(): it reads while the trainer still prepares
  const w = startWorker(paths, opts);
  const batches = consume(w);
  const ret = batches.return.bind(batches);
  // return() stops the worker also when the batches were never asked for (a generator not started runs no
  // finally)
  batches.return = (v) => {
    w.close();
    return ret(v);
  };
  return batches;
}

type Started = {
  port: MessagePort;
  sync: Int32Array;
  crashed: () => FromWorker | undefined;
  turn: () => Promise<void>;
  close: () => void;
};

function startWorker(paths: string[], opts: Omit<ReadOptions, "clock">): Started {
  const worker = new Worker(new URL("./reader_worker.ts", import.meta.url).href, { type: "module" });
  // The batches come on a port read synchronously (receiveMessageOnPort): a message event would reach this
  // thread only when its event loop turns, one per turn, each turn a sleep on a busy machine. sync[POSTED]
  // counts the messages posted (this thread waits on it when none is there), sync[TAKEN] the batches taken
  // (the worker waits on it to stay GROUPS_AHEAD groups ahead).
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const { port1, port2 } = new MessageChannel();
  let crashed: FromWorker | undefined;
  worker.onerror = (ev: ErrorEvent) => {
    ev.preventDefault();
    crashed = {
      type: "error",
      error: { kind: "Error", message: `reader worker: ${ev.message}`, fields: {} },
    };
  };
  const tick = new MessageChannel();
  let ticked: (() => void) | null = null;
  tick.port1.onmessage = () => ticked?.();
  let closed = false;
  const group = groupBatches(opts.batchSize);
  worker.postMessage(
    { type: "start", paths, opts, group, ahead: GROUPS_AHEAD * group, sync, port: port2 },
    [port2],
  );
  return {
    port: port1,
    sync,
    crashed: () => crashed,
    turn: () =>
      new Promise<void>((r) => {
        ticked = r;
        tick.port2.postMessage(0);
      }),
    close: () => {
      if (closed) return;
      closed = true;
      port1.close();
      tick.port1.close();
      worker.terminate();
    },
  };
}

async function* consume(w: Started): AsyncGenerator<TimedBatch, void, unknown> {
  const { sync } = w;
  try {
    for (let taken = 0, posted = 0;;) {
      let m: FromWorker | undefined;
      for (;;) {
        m = (receiveMessageOnPort(w.port as never) as { message: FromWorker } | undefined)?.message ??
          w.crashed();
        if (m) break;
        // nothing yet: block briefly for the next post, then let the event loop run (a crashed worker, a stop)
        if (Atomics.wait(sync, POSTED, posted, 50) === "timed-out") {
          await new Promise((r) => setTimeout(r, 0));
        }
      }
      posted++;
      // a turn of the event loop per message: the signal handlers (a stop request) run there, and nothing
      // else here waits on anything asynchronous
      await w.turn();
      let turned = performance.now();
      if (m.type === "end") return;
      if (m.type === "error") throw rebuiltError(m.error, "the reader worker");
      // the group is taken when its last batch is: the worker runs GROUPS_AHEAD groups ahead of that
      const batches = unpackGroup(m.group);
      taken += batches.length;
      for (let i = 0; i < batches.length; i++) {
        if (i === batches.length - 1) {
          Atomics.store(sync, TAKEN, taken);
          Atomics.notify(sync, TAKEN);
        }
        // and one between batches once TURN_MS have passed: a group of long steps (large batches) would
        // otherwise hold a stop request back for the whole group
        if (i > 0 && performance.now() - turned >= TURN_MS) {
          await w.turn();
          turned = performance.now();
        }
        yield batches[i];
      }
    }
  } finally {
    w.close();
  }
}

/** Indices of the shared counters: batches posted by the worker, batches taken by the training thread. */
export const POSTED = 0, TAKEN = 1;
