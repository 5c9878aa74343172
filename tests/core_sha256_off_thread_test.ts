// lib/core/sha256_off_thread.ts: the worker's SHA-256 is node:crypto's, for pieces of any size (a piece
// larger than a slot of the ring, many small ones), and each digest starts the next hash; a checkpoint
// hashed on it is the same file, byte for byte.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Sha256OffThread, SLOT_BYTES } from "../lib/core/sha256_off_thread.ts";
import { readCheckpoint, writeCheckpoint } from "../lib/train/checkpoint.ts";
import { writeFileAtomic } from "../lib/core/atomic.ts";
import { mulberry32 as rng } from "../lib/core/rng.ts";

Deno.test("Sha256OffThread: node:crypto's SHA-256 for pieces of any size; each digest starts a new hash", async () => {
  const h = new Sha256OffThread();
  try {
    const r = rng(3);
    for (
      const sizes of [
        [0],
        [3],
        [SLOT_BYTES + 5, 17, 2 * SLOT_BYTES + 1],
        Array.from({ length: 50 }, () => 1000),
      ]
    ) {
      const pieces = sizes.map((n) => {
        const b = new Uint8Array(n);
        for (let i = 0; i < n; i += 97) b[i] = Math.floor(r() * 256);
        return b;
      });
      const want = createHash("sha256");
      for (const b of pieces) want.update(b);
      const expected = new Uint8Array(want.digest());
      for (const b of pieces) {
        await h.update(b);
        b.fill(9); // copied: changing the bytes once update resolved changes nothing
      }
      assert.deepEqual(await h.digest(), expected, `pieces of ${sizes.slice(0, 3)}…`);
    }
  } finally {
    h.close();
  }
  await assert.rejects(h.digest(), /after close/);
});

Deno.test("writeCheckpoint with the checksum hashed on the worker: the same file, byte for byte", async () => {
  const dir = await Deno.makeTempDir();
  const h = new Sha256OffThread();
  try {
    const ckpt = {
      meta: { step: 7 },
      arrays: { a: new Float32Array(5_000_001).map((_, i) => i % 13), b: Float64Array.of(0.5, -1) },
    };
    await writeCheckpoint(join(dir, "here.fock"), ckpt);
    await writeCheckpoint(join(dir, "worker.fock"), ckpt, { hasher: h });
    assert.deepEqual(
      await Deno.readFile(join(dir, "worker.fock")),
      await Deno.readFile(join(dir, "here.fock")),
    );
    assert.equal((await readCheckpoint(join(dir, "worker.fock"))).meta.step, 7);
  } finally {
    h.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic: a hash that fails while its piece is being written is the write's error, not an unhandled rejection", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const failing = { update: () => Promise.reject(new Error("the SHA-256 worker failed: gone")) };
    // a piece large enough that its write is still running when the hash's rejection comes
    await assert.rejects(
      writeFileAtomic(join(dir, "x.bin"), new Uint8Array(32 << 20), { digest: failing }),
      /worker failed: gone/,
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), [], "no temporary file left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeCheckpoint on the worker: a write that fails midway leaves no bytes in the next file's checksum", async () => {
  const dir = await Deno.makeTempDir();
  const h = new Sha256OffThread();
  try {
    // the second array fails in the hashing pass, once the first was hashed on the worker (its third read:
    // the header's table, the write, the hash)
    const a = new Float32Array(100_000).fill(1);
    let reads = 0;
    const arrays = { a } as Record<string, Float32Array>;
    Object.defineProperty(arrays, "b", {
      enumerable: true,
      get: () => {
        if (++reads > 2) throw new Error("no space left on device");
        return new Float32Array(4);
      },
    });
    await assert.rejects(
      writeCheckpoint(join(dir, "failed.fock"), { meta: { step: 1 }, arrays }, { hasher: h }),
      {
        message: "no space left on device",
      },
    );
    // the next checkpoint hashed on the same worker reads back (its checksum is of its own bytes)
    const ckpt = { meta: { step: 2 }, arrays: { a: Float32Array.of(1, 2, 3) } };
    await writeCheckpoint(join(dir, "next.fock"), ckpt, { hasher: h });
    assert.deepEqual((await readCheckpoint(join(dir, "next.fock"))).arrays.a, ckpt.arrays.a);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
      ["next.fock"],
      "no temporary file left",
    );
  } finally {
    h.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Sha256OffThread: close() rejects an update waiting for a slot and a digest waiting for the worker", async () => {
  const h = new Sha256OffThread();
  // more pieces than slots: the update waits for the worker to free one
  const update = h.update(new Uint8Array(3 * SLOT_BYTES));
  const digest = h.digest();
  h.close();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const never = new Promise((r) => timer = setTimeout(() => r("still waiting"), 5000));
  const settled = (p: Promise<unknown>) =>
    Promise.race([p.then(() => "resolved", (e: Error) => e.message), never]);
  try {
    assert.match(String(await settled(update)), /after close/);
    assert.match(String(await settled(digest)), /after close/);
  } finally {
    clearTimeout(timer);
  }
});
