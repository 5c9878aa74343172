// The reader on a worker thread (lib/io/worker_reader.ts): the same batches in the same order as
// readExamples (so the same vectors), a resumed position the same too, errors thrown on the training
// thread as the same class with the same one-line message, and `deno task train` on a corrupt shard
// exits 5 with that line.
import assert from "node:assert/strict";
import { DataFormatError, IoError, UsageError } from "../lib/core/errors.ts";
import { EXIT } from "../lib/core/exit_codes.ts";
import { rebuiltError, sendableError } from "../lib/core/worker_errors.ts";
import { pipeline, runScript } from "./child.ts";
import { prepareCorpus } from "../lib/io/prepare.ts";
import { type ExampleBatch, readExamples, type ReadOptions } from "../lib/io/read.ts";
import {
  groupBatches,
  GROUPS_AHEAD,
  packGroup,
  readWorkerExamples,
  type TimedBatch,
  unpackGroup,
} from "../lib/io/worker_reader.ts";

const plain = (b: ExampleBatch) => ({
  in: [Array.from(b.inputs.offsets), Array.from(b.inputs.indices), Array.from(b.inputs.values)],
  t: [Array.from(b.targets.offsets), Array.from(b.targets.indices), Array.from(b.targets.values)],
  epoch: b.epoch,
  size: b.size,
  position: JSON.stringify(b.position),
});

async function corpusDir(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await prepareCorpus({
    synthetic: { vocabSize: 300, tokens: 20000, seed: 4 },
    outDir: dir,
    mode: "skipgram",
    window: 2,
    minCount: 1,
    seed: 1,
    format: "arrow",
    batchRows: 500,
    shardRows: 5000,
  });
  return dir;
}

async function both(paths: string[], opts: ReadOptions) {
  const a: ReturnType<typeof plain>[] = [], b: ReturnType<typeof plain>[] = [];
  for await (const x of readExamples(paths, opts)) a.push(plain(x));
  for await (const x of readWorkerExamples(paths, opts)) b.push(plain(x));
  return { thread: a, worker: b };
}

Deno.test("worker reader: the same batches in the same order as readExamples, also from a resumed position", async () => {
  const dir = await corpusDir();
  try {
    const opts = { batchSize: 64, seed: 3, epochs: 2, shuffleBuffer: 1000 };
    const { thread, worker } = await both([dir], opts);
    assert.ok(thread.length > 100, `${thread.length} batches`);
    assert.deepEqual(worker, thread);
    const start = JSON.parse(thread[37].position);
    const resumed = await both([dir], { ...opts, start });
    assert.deepEqual(resumed.worker, resumed.thread);
    assert.deepEqual(resumed.worker, thread.slice(38));
    // small batches: several groups (groupBatches(8) = 512 batches each), the worker held GROUPS_AHEAD groups
    // ahead of the training thread, the last group partial
    const small = await both([dir], { ...opts, batchSize: 8 });
    assert.ok(small.thread.length > 2 * GROUPS_AHEAD * groupBatches(8), `${small.thread.length} batches`);
    assert.equal(small.thread.length % groupBatches(8) === 0, false);
    assert.deepEqual(small.worker, small.thread);
    // leaving early stops the worker (the test's resource sanitizer fails on a live worker)
    for await (const b of readWorkerExamples([dir], opts)) if (b.size) break;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("worker reader: errors arrive as the same class with the same message", async () => {
  const dir = await corpusDir();
  try {
    const f = `${dir}/part-00000.arrow`;
    const bytes = await Deno.readFile(f);
    await Deno.writeFile(`${dir}/half.arrow`, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const messageOf = async (it: AsyncIterable<unknown>) => {
      try {
        for await (const _ of it) { /* read on */ }
      } catch (e) {
        return e as Error;
      }
      assert.fail("no error");
    };
    const opts = { batchSize: 7, seed: 1 };
    const a = await messageOf(readExamples(`${dir}/half.arrow`, opts));
    const b = await messageOf(readWorkerExamples([`${dir}/half.arrow`], opts));
    assert.ok(b instanceof DataFormatError, `${b.name}: ${b.message}`);
    assert.equal(b.message, a.message);
    assert.equal((b as DataFormatError).file, (a as DataFormatError).file);
    const u = await messageOf(readWorkerExamples([dir], { batchSize: 0 }));
    assert.ok(u instanceof UsageError);
    assert.match(u.message, /batchSize must be an integer >= 1, got 0/);
    const gone = await messageOf(readWorkerExamples([`${dir}/none.arrow`], opts));
    const gone0 = await messageOf(readExamples(`${dir}/none.arrow`, opts));
    assert.equal(gone.constructor, gone0.constructor);
    assert.equal(gone.message, gone0.message);
    // the fields that decide exit codes travel too
    const io = rebuiltError(
      sendableError(new IoError("cannot read", "x", "EIO", "i/o error", "retry", { reading: true })),
    );
    assert.ok(io instanceof IoError);
    assert.equal((io as IoError).errno, "EIO");
    assert.equal((io as IoError).reading, true);
    const nf = rebuiltError(sendableError(new Deno.errors.NotFound("No such file (os error 2): open 'x'")));
    assert.ok(nf instanceof Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: a corrupt shard (the last one) stops the run with exit 5 and the reader's line", async () => {
  const dir = await corpusDir();
  try {
    // the last shard cut short
    const manifest = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
    const last = `${dir}/${manifest.shards.at(-1).file}`;
    const bytes = await Deno.readFile(last);
    await Deno.writeFile(last, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const out = await Deno.makeTempDir();
    const r = await runScript(pipeline("train"), [
      ...["--data", dir, "--out", out, "--epochs", "1", "--dim", "8", "--backend", "js"],
      ...["--eval-dir", "none", "--formats", "vec", "--progress", "none"],
    ]);
    const err = r.stderr;
    assert.equal(r.code, EXIT.badData, err);
    const line = err.trim().split("\n").pop()!;
    // cut short under a manifest: its size says so at open (before any of it is decoded)
    assert.match(
      line,
      /^train: .*\.arrow: shard \d+: holds \d+ bytes but the manifest says \d+: replaced or truncated/,
    );
    assert.doesNotMatch(err, /^\s+at /m, "no stack");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("worker reader: a group packed into one buffer unpacks to the same batches, as views of it", () => {
  const batch = (k: number): TimedBatch => ({
    inputs: {
      offsets: Int32Array.of(0, 1, 3),
      indices: Int32Array.of(k, 2, 9),
      values: Float32Array.of(1, 0.5, 0.25),
    },
    targets: {
      offsets: Int32Array.of(0, 2, 2 + k),
      indices: Int32Array.from({ length: 2 + k }, (_, i) => i * k),
      values: Float32Array.from({ length: 2 + k }, (_, i) => i / 3),
    },
    position: {
      epoch: 0,
      example: 2 * k,
      file: 0,
      batch: k,
      row: 2 * k,
      fileName: "p",
      seed: 1,
      shuffleBuffer: 0,
      batchSize: 2,
      files: 1,
    },
    epoch: 0,
    size: 2,
    times: { read: k, shuffle: 0 },
  });
  const batches = [batch(1), batch(0), batch(5)];
  const g = packGroup(batches), back = unpackGroup(g);
  assert.equal(g.buf.byteLength, 4 * batches.reduce((n, b) => n + 6 + b.targets.indices.length * 2 + 6, 0));
  assert.deepEqual(back, batches);
  for (const b of back) {
    for (
      const a of [b.inputs.offsets, b.inputs.indices, b.inputs.values, b.targets.offsets, b.targets.values]
    ) {
      assert.equal(a.buffer, g.buf, "every array is a view of the group's buffer");
    }
  }
});

Deno.test("worker reader: the event loop turns between long steps inside a group (a stop request is seen)", async () => {
  // a group of 64 batches of 64 examples; each "step" takes 40 ms without yielding to the event loop, as a
  // training step does. A macrotask (what a signal listener is) must run within about TURN_MS, not only
  // at the next group, 64 steps (2.5 s) later
  const dir = await corpusDir();
  try {
    let seenAt = -1, n = 0;
    for await (const _ of readWorkerExamples([dir], { batchSize: 64, seed: 3, epochs: 1 })) {
      if (++n === 2) setTimeout(() => (seenAt = n), 0); // inside the first group
      if (n >= 16 || seenAt >= 0) break;
      const t = performance.now();
      while (performance.now() - t < 40) { /* a step */ }
    }
    assert.ok(seenAt >= 0 && seenAt <= 6, `the timer ran after batch ${seenAt}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
