// lib/core/lock.ts: waiting for a live holder reads the lock file between tries; a try writes, fsyncs and
// links a temporary file, and at a 10 ms poll (the publication lock's) that was ~100 fsyncs a second.
import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireLock, LockedError, lockJob } from "../lib/core/lock.ts";
import { EXIT, ExitError } from "../lib/core/exit_codes.ts";

/** The temporary files (`*.tmp`) created in `dir` from now on, until `stop`. */
function watchTemporaries(dir: string): { created: string[]; stop: () => Promise<void> } {
  const watcher = Deno.watchFs(dir);
  const created: string[] = [];
  const watching = (async () => {
    for await (const e of watcher) {
      if (e.kind === "create") created.push(...e.paths.filter((p) => p.endsWith(".tmp")));
    }
  })();
  return {
    created,
    stop: async () => {
      watcher.close();
      await watching;
    },
  };
}

Deno.test("acquireLock: a wait for a live holder creates no temporary file per poll; it takes the lock once let go", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "x.lock");
  const { created, stop } = watchTemporaries(dir);
  try {
    const held = await acquireLock(path, "first", () => {});
    const before = created.length;
    // held by this live process: 400 ms of 10 ms polls, then LockedError
    await assert.rejects(
      acquireLock(path, "second", () => {}, { waitSeconds: 0.4, pollMs: 10 }),
      LockedError,
    );
    await new Promise((r) => setTimeout(r, 50)); // the watcher's last events
    const during = created.length - before;
    assert.ok(during <= 3, `${during} temporary files written during the wait (one per try, not per poll)`);
    // let go during a wait: the waiter takes it
    const waiting = acquireLock(path, "third", () => {}, { waitSeconds: 5, pollMs: 10 });
    setTimeout(() => held.release(), 100);
    const third = await waiting;
    assert.equal(third.info.command, "third");
    await third.release();
  } finally {
    await stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("acquireLock: a wait on a lock file that cannot be read (corrupt) reads it, writing no temporary per poll; it is held", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "x.lock");
  await Deno.writeTextFile(path, "not a lock\n");
  const { created, stop } = watchTemporaries(dir);
  try {
    await assert.rejects(
      acquireLock(path, "second", () => {}, { waitSeconds: 0.4, pollMs: 10 }),
      LockedError,
    );
    await new Promise((r) => setTimeout(r, 50));
    // a try on an unreadable lock writes up to 9 (it tries again 8 times, in case the holder was letting go):
    // two tries, the first and the one at the deadline (at every 10 ms poll it wrote about 160)
    assert.ok(created.length <= 20, `${created.length} temporary files written during the wait`);
  } finally {
    await stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lockJob: a lock with a wait of its own (fixedWait) says how long it waited, not to give --wait", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "x.lock");
  const held = await acquireLock(path, "first", () => {});
  try {
    const opts = { waitSeconds: 0.05, pollMs: 10, quietWait: true };
    await assert.rejects(
      () => lockJob(path, "second", { ...opts, fixedWait: true }),
      (e: Error) =>
        e instanceof ExitError && e.code === EXIT.locked && /\(waited 0\.05 s\)/.test(e.message) &&
        !e.message.includes("--wait"),
    );
    // a job's own lock keeps the advice (its --wait flag)
    await assert.rejects(() => lockJob(path, "third", opts), /or give --wait SECONDS/);
  } finally {
    await held.release();
    await Deno.remove(dir, { recursive: true });
  }
});
