/**
 * The checkpoint writer (lib/train/checkpoint_writer.ts): a file written on its worker is the bytes
 * writeCheckpoint writes on this thread (also over a spare file); `busy` while a write runs; a failed write
 * rejects with the same error class and message (its exit code), and the writer goes on; arrays off shared
 * memory are refused; close() rejects a write in progress and every later one.
 *
 * Run: npx deno test -A tests/train_checkpoint_writer_test.ts
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { IoError } from "../lib/core/errors.ts";
import { CheckpointWriter } from "../lib/train/checkpoint_writer.ts";
import { type Checkpoint, writeCheckpoint } from "../lib/train/checkpoint.ts";
import { copyInto } from "../lib/core/reuse.ts";

function sharedCheckpoint(n: number, seed: number): Checkpoint {
  const a = new Float32Array(n), b = new Float64Array(7);
  for (let i = 0; i < n; i++) a[i] = Math.sin(seed + i);
  for (let i = 0; i < 7; i++) b[i] = seed / (i + 1);
  return {
    meta: { step: seed, note: "x" },
    arrays: { a: copyInto(a, undefined, true), b: copyInto(b, undefined, true) },
  };
}

Deno.test("checkpoint writer: the file is writeCheckpoint's bytes, also over a spare; busy while it writes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ckpt-writer-" });
  const writer = new CheckpointWriter();
  try {
    const ckpt = sharedCheckpoint(3 << 20, 1); // 12 MB: a write that lasts
    assert.ok(ckpt.arrays.a.buffer instanceof SharedArrayBuffer);
    assert.equal(writer.busy, false);
    const done = writer.write(join(dir, "w.fock"), ckpt);
    assert.equal(writer.busy, true, "busy from the call on");
    await done;
    assert.equal(writer.busy, false);
    await writeCheckpoint(join(dir, "main.fock"), ckpt);
    assert.deepEqual(await Deno.readFile(join(dir, "w.fock")), await Deno.readFile(join(dir, "main.fock")));
    // over a spare file of another length: cut to the new one, the spare's name gone
    const spare = join(dir, ".spare.tmp");
    await Deno.writeFile(spare, new Uint8Array(20 << 20).fill(7));
    const small = sharedCheckpoint(1000, 2);
    await writer.write(join(dir, "s.fock"), small, { reuse: spare });
    await writeCheckpoint(join(dir, "s-main.fock"), small);
    assert.deepEqual(await Deno.readFile(join(dir, "s.fock")), await Deno.readFile(join(dir, "s-main.fock")));
    await assert.rejects(Deno.stat(spare), Deno.errors.NotFound);
  } finally {
    writer.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint writer: a failed write rejects with its class and one-line message; the writer goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ckpt-writer-" });
  const writer = new CheckpointWriter();
  try {
    const file = join(dir, "not-a-folder");
    await Deno.writeTextFile(file, "x");
    const bad = join(file, "c.fock");
    const e = await writer.write(bad, sharedCheckpoint(100, 3)).then(
      () => assert.fail("must fail"),
      (e) => e,
    );
    assert.ok(e instanceof IoError, `an IoError (exit 8), got ${e}`);
    assert.match(e.message, /^cannot write checkpoint .*not-a-folder\/c\.fock/);
    assert.equal(e.message.includes("\n"), false);
    assert.equal(writer.busy, false);
    await writer.write(join(dir, "ok.fock"), sharedCheckpoint(100, 4));
    await Deno.stat(join(dir, "ok.fock"));
    // an array off shared memory: refused here, nothing posted
    await assert.rejects(
      writer.write(join(dir, "plain.fock"), { meta: {}, arrays: { a: new Float32Array(4) } }),
      /array 'a' is not on shared memory/,
    );
    assert.equal(writer.busy, false);
  } finally {
    writer.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint writer: close() rejects a write in progress and every later one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ckpt-writer-" });
  try {
    const writer = new CheckpointWriter();
    const inFlight = writer.write(join(dir, "big.fock"), sharedCheckpoint(16 << 20, 5));
    writer.close();
    await assert.rejects(inFlight, /closed during a write/);
    assert.equal(writer.busy, false);
    await assert.rejects(writer.write(join(dir, "later.fock"), sharedCheckpoint(10, 6)), /closed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
