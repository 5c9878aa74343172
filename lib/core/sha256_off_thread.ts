/**
 * SHA-256 computed on a worker thread, for writes behind the steps: the bytes given to `update` are copied
 * into a shared ring of {@link SLOTS} slots and hashed there in order, so that the training thread spends a
 * copy into memory already written, a fraction of the hash itself, which a write behind the steps ran on the
 * training thread between two batches (BENCHMARKS.md, "The epoch's end on one core").
 * lib/core/atomic.ts's `digest` option takes it; `digest()` is the hash of every byte given since the last
 * one. The worker lives until `close()`.
 *
 * @example
 * ```ts
 * import { Sha256OffThread } from "./sha256_off_thread.ts";
 * const h = new Sha256OffThread();
 * await h.update(new TextEncoder().encode("abc"));
 * const d = await h.digest(); // ba7816bf…
 * h.close();
 * ```
 *
 * @module
 */

/** Bytes per slot of the ring: the checkpoint's write pieces (lib/train/checkpoint.ts) fit one. */
export const SLOT_BYTES = 16 << 20;
/** Slots of the ring: one hashed while the next is filled. */
export const SLOTS = 2;

/** Messages to the worker (lib/core/sha256_worker.ts). */
export type ToSha256Worker =
  | { kind: "ring"; ring: SharedArrayBuffer }
  | { kind: "piece"; slot: number; at: number; length: number }
  | { kind: "end" };
/** Messages from the worker. */
export type FromSha256Worker = { kind: "free"; slot: number } | { kind: "digest"; digest: Uint8Array };

/** SHA-256 on a worker thread; see the module's documentation. */
export class Sha256OffThread {
  readonly #worker: Worker;
  readonly #ring = new Uint8Array(new SharedArrayBuffer(SLOT_BYTES * SLOTS));
  readonly #free: number[] = Array.from({ length: SLOTS }, (_, i) => i);
  #waiting: (() => void)[] = [];
  #digests: ((d: Uint8Array) => void)[] = [];
  #failed: Error | undefined;
  #closed = false;

  constructor() {
    this.#worker = new Worker(new URL("./sha256_worker.ts", import.meta.url).href, { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<FromSha256Worker>) => {
      const m = e.data;
      if (m.kind === "free") {
        this.#free.push(m.slot);
        this.#waiting.shift()?.();
      } else this.#digests.shift()?.(m.digest);
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#failed = new Error(`the SHA-256 worker failed: ${e.message}`);
      for (const w of this.#waiting.splice(0)) w();
      for (const d of this.#digests.splice(0)) d(new Uint8Array(0));
    };
    this.#post({ kind: "ring", ring: this.#ring.buffer as SharedArrayBuffer });
  }

  #post(m: ToSha256Worker): void {
    if (this.#closed) throw new Error("Sha256OffThread: used after close()");
    if (this.#failed) throw this.#failed;
    this.#worker.postMessage(m);
  }

  /** Adds `bytes` (copied: the caller may change them once this resolves). */
  async update(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length; at += SLOT_BYTES) {
      while (this.#free.length === 0) {
        await new Promise<void>((r) => this.#waiting.push(r));
        if (this.#failed) throw this.#failed;
      }
      const slot = this.#free.shift()!, part = bytes.subarray(at, Math.min(bytes.length, at + SLOT_BYTES));
      this.#ring.set(part, slot * SLOT_BYTES);
      this.#post({ kind: "piece", slot, at: slot * SLOT_BYTES, length: part.length });
    }
  }

  /** The SHA-256 (32 bytes) of every byte given since the last digest; the next update starts a new one. */
  async digest(): Promise<Uint8Array> {
    const d = new Promise<Uint8Array>((r) => this.#digests.push(r));
    this.#post({ kind: "end" });
    const out = await d;
    if (this.#failed) throw this.#failed;
    return out;
  }

  /** Ends the worker; an update or digest still waiting for it rejects (it would never hear back). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.terminate();
    this.#failed ??= new Error("Sha256OffThread: used after close()");
    for (const w of this.#waiting.splice(0)) w();
    for (const d of this.#digests.splice(0)) d(new Uint8Array(0));
  }
}
