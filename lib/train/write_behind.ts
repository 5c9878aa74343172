/**
 * The trainer's checkpoint writes that go on while it trains: one chain of tasks (a checkpoint's write,
 * its pruning, best.fock's link), started between two steps and settled before anything that reads the
 * checkpoint folder or ends the run. A task's error is kept, not thrown where no one waits for it, and
 * comes out of the next {@link WriteBehind.settle}.
 *
 * @module
 */

/**
 * A chain of background tasks run one after another.
 *
 * @example
 * ```ts
 * import { WriteBehind } from "./write_behind.ts";
 * const writes = new WriteBehind(), done: number[] = [];
 * writes.then(async () => { done.push(1); });
 * writes.then(async () => { done.push(2); });
 * console.log(writes.pending); // true
 * await writes.settle();
 * console.log(done, writes.pending); // [ 1, 2 ] false
 * ```
 */
export class WriteBehind {
  #chain: Promise<void> | undefined;
  #failed = false;

  /** Whether a task is started and not yet settled. */
  get pending(): boolean {
    return this.#chain !== undefined;
  }

  /** Whether a task has failed (settle() throws its error): the caller stops at its next step. */
  get failed(): boolean {
    return this.#failed;
  }

  /**
   * Starts `task` once the tasks before it have finished; it does not start after one of them failed
   * (their error is the one settle() throws).
   */
  then(task: () => Promise<void>): void {
    const chain = (this.#chain ?? Promise.resolve()).then(task);
    // handled here: a rejection waits for settle(), not for the runtime's unhandled-rejection exit
    chain.catch(() => {
      this.#failed = true;
    });
    this.#chain = chain;
  }

  /** Waits for every task started; throws the first task's error (the tasks after it did not run). */
  async settle(): Promise<void> {
    const chain = this.#chain;
    if (chain === undefined) return;
    try {
      await chain;
    } finally {
      if (this.#chain === chain) {
        this.#chain = undefined;
        this.#failed = false;
      }
    }
  }
}
