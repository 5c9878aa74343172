/**
 * Checkpoints written on a worker thread: the trainer's writes behind the steps (write_behind.ts). The
 * worker runs writeCheckpoint (the pieces, their fsync, the checksum, the rename) on its own event loop,
 * from arrays on shared memory that the training thread does not change meanwhile (its state copy). Written
 * on the training thread, a write behind the steps moved on only when that thread's event loop turned, about
 * once per group of batches: each of its two dozen awaits waited for one, and a 178 MB checkpoint took
 * seconds. Its checksum and page-cache copies are the worker's work, on the core beside the training thread.
 *
 * {@link CheckpointWriter.busy} reads a counter on shared memory that the worker lowers as a write ends, so
 * the trainer sees it between two steps without a turn of its event loop (the output layer's threads stand
 * down while a write takes their core: trainer.ts).
 *
 * @module
 */

import type { Checkpoint } from "./checkpoint.ts";
import { rebuiltError, type SentError } from "../core/worker_errors.ts";

/**
 * What the writer posts to its worker: a write (arrays on shared memory) with its id and the in-flight
 * counter.
 *
 * @example
 * ```ts
 * import type { WriteRequest } from "./checkpoint_writer.ts";
 * const r: WriteRequest = {
 *   id: 0,
 *   path: "run/ckpt-1.fock",
 *   meta: {},
 *   arrays: {},
 *   flight: new Int32Array(new SharedArrayBuffer(4)),
 * };
 * ```
 */
export type WriteRequest = {
  id: number;
  path: string;
  meta: Record<string, unknown>;
  arrays: Record<string, Float32Array | Float64Array>;
  reuse?: string;
  flight: Int32Array;
};

/**
 * The worker's answer to a {@link WriteRequest}: done, or its error.
 *
 * @example
 * ```ts
 * import type { WriteReply } from "./checkpoint_writer.ts";
 * const r: WriteReply = { id: 0 };
 * ```
 */
export type WriteReply = { id: number; error?: SentError };

/**
 * Writes checkpoints on a worker thread; started at construction (its module loads while the caller goes
 * on), ended by close().
 *
 * @example
 * ```ts
 * import { CheckpointWriter } from "./checkpoint_writer.ts";
 * import { readCheckpoint } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * const V = new Float32Array(new SharedArrayBuffer(12));
 * V.set([1, 2, 3]);
 * const writer = new CheckpointWriter();
 * await writer.write(`${dir}/a.fock`, { meta: { step: 1 }, arrays: { V } });
 * writer.close();
 * console.log((await readCheckpoint(`${dir}/a.fock`)).arrays.V); // Float32Array(3) [ 1, 2, 3 ]
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class CheckpointWriter {
  readonly #worker: Worker;
  readonly #flight = new Int32Array(new SharedArrayBuffer(4));
  readonly #waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  #next = 0;
  /** Why later writes are refused: close(), or the worker's failure (its message). */
  #ended: Error | undefined;

  constructor() {
    this.#worker = new Worker(new URL("./checkpoint_writer_worker.ts", import.meta.url).href, {
      type: "module",
    });
    this.#worker.onmessage = (ev: MessageEvent<WriteReply>) => {
      const w = this.#waiting.get(ev.data.id);
      this.#waiting.delete(ev.data.id);
      if (ev.data.error) w?.reject(rebuiltError(ev.data.error, "the checkpoint writer"));
      else w?.resolve();
    };
    this.#worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      this.#worker.terminate();
      this.#fail(new Error(`checkpoint writer worker: ${ev.message}`));
    };
  }

  /** Whether a write is in progress (read from shared memory: no turn of the event loop needed). */
  get busy(): boolean {
    return Atomics.load(this.#flight, 0) > 0;
  }

  /**
   * Writes `ckpt` as `path` (writeCheckpoint, `reuse` as there) on the worker. Every array must be on
   * shared memory, and left unchanged until the promise settles.
   *
   * @param path the checkpoint file
   * @param ckpt its metadata and arrays
   * @param opts `reuse`: a file of the same folder to write over (writeFileAtomic's reuse)
   * @returns when the file is written and renamed into place; rejects with the write's error
   * @throws {TypeError} an array not on shared memory
   */
  write(path: string, ckpt: Checkpoint, opts: { reuse?: string } = {}): Promise<void> {
    if (this.#ended) return Promise.reject(this.#ended);
    for (const [name, a] of Object.entries(ckpt.arrays)) {
      if (!(a.buffer instanceof SharedArrayBuffer)) {
        return Promise.reject(new TypeError(`checkpoint writer: array '${name}' is not on shared memory`));
      }
    }
    const id = this.#next++;
    const req: WriteRequest = {
      id,
      path,
      meta: ckpt.meta,
      arrays: ckpt.arrays as Record<string, Float32Array | Float64Array>,
      flight: this.#flight,
      ...(opts.reuse ? { reuse: opts.reuse } : {}),
    };
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      Atomics.add(this.#flight, 0, 1);
      this.#worker.postMessage(req);
    });
  }

  /** Ends the worker; writes still waited for reject (their files stay temporary and are cleaned up later). */
  close(): void {
    if (this.#ended) return;
    this.#worker.terminate();
    this.#fail(new Error("checkpoint writer: closed during a write"), new Error("checkpoint writer: closed"));
  }

  /** Rejects the writes waited for with `e`, and every later one with `later` (default `e`). */
  #fail(e: Error, later = e): void {
    this.#ended = later;
    Atomics.store(this.#flight, 0, 0);
    for (const w of this.#waiting.values()) w.reject(e);
    this.#waiting.clear();
  }
}
