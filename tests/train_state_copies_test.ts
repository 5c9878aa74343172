// The trainer's state copies (the run start's and the epoch ends' rollback states, the checkpoints written
// behind the steps, the output layer's copies a waited-for checkpoint writes) refill the arrays of the copy
// before them once nothing needs it (lib/core/reuse.ts): a run makes one set, not one per epoch end. The
// results of reusing them (rollbacks, kept best epochs, checkpoint files) are held to runs that keep every
// copy apart in tests/train_backoff_test.ts and tests/train_write_behind_test.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { OutputLayer } from "../lib/core/types.ts";
import { createOutputLayer } from "../lib/output/create.ts";
import { checkpointName, readCheckpoint } from "../lib/train/checkpoint.ts";
import { Trainer } from "../lib/train/trainer.ts";
import type { CreateHead } from "../lib/train/types.ts";
import { memoryReader, ringCorpus, ringVocab, smallConfig } from "./train_fakes.ts";
import { blasAvailable } from "./layers_helpers.ts";

const V = 40;
const vocab = ringVocab(V);
const corpus = ringCorpus(V, 600);
const quiet = () => {};

/** The arrays of every checkpoint `t.toCheckpoint` makes from now on (the state copies among them). */
function recordCopies(t: Trainer): Record<string, Float32Array | Float64Array>[] {
  const made: Record<string, Float32Array | Float64Array>[] = [];
  const toCheckpoint = t.toCheckpoint.bind(t);
  t.toCheckpoint = async (o) => {
    const c = await toCheckpoint(o);
    made.push(c.arrays);
    return c;
  };
  return made;
}

/**
 * Output layers whose exported D×d arrays (V, the naive layer's W) are recorded (each state copy's and each
 * checkpoint's), and the W₀ each was made from.
 */
function recordingHeads(exported: Float32Array[], inits: Float32Array[] = []): CreateHead {
  return async (opts) => {
    if (opts.init) inits.push(opts.init);
    const layer: OutputLayer = await createOutputLayer({ ...opts, log: () => {} });
    const exportState = layer.exportState.bind(layer);
    layer.exportState = async (o) => {
      const s = await exportState(o);
      exported.push((s.arrays.V ?? s.arrays.W) as Float32Array);
      return s;
    };
    return layer;
  };
}

for (
  const mode of [
    { name: "written behind the steps", writeBehind: true, folder: true },
    { name: "waited for", writeBehind: false, folder: true },
    { name: "without a checkpoint folder", writeBehind: false, folder: false },
  ]
) {
  Deno.test(`trainer: a run's state copies reuse one set of arrays (checkpoints ${mode.name})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "state-copies-" });
    try {
      const exported: Float32Array[] = [], inits: Float32Array[] = [];
      const t = await Trainer.create({
        config: smallConfig({ epochs: 4, keepBest: false }),
        vocab,
        openReader: memoryReader(corpus),
        createHead: recordingHeads(exported, inits),
        log: quiet,
        writeBehind: mode.writeBehind,
      });
      // every checkpoint toCheckpoint made: the model's arrays in a state copy are copies of the live ones
      const made = recordCopies(t);
      const s = await t.train({
        paths: ["mem"],
        rows: corpus.length,
        ...(mode.folder
          ? { checkpointDir: join(dir, "ckpt"), checkpointEvery: 9, keepCheckpoints: 100 }
          : {}),
      });
      // the run start's copy, one per epoch end (and per 9 steps with a folder) and the run's last checkpoint
      assert.ok(exported.length >= 5, `${exported.length} exports`);
      assert.equal(
        new Set(exported).size,
        1,
        `output V: ${new Set(exported).size} arrays for ${exported.length} copies`,
      );
      // and that one is W₀'s, which the layer copied: written memory, not new (issue 18 follow-up)
      assert.equal(inits.length, 1);
      assert.equal(exported[0], inits[0]);
      const live = t.model.bag.E;
      const copiesOfE = new Set(made.map((a) => a["model.E"]).filter((e) => e !== live));
      assert.equal(copiesOfE.size, 1, `model E: ${copiesOfE.size} arrays`);
      if (mode.folder) {
        // the files are the states of their steps (the last one the trainer's state now)
        const last = await readCheckpoint(s.checkpoint!);
        assert.deepEqual(last.arrays["model.E"], live);
        assert.equal(last.meta.step, t.step);
      }
      // embeddings() hands the spare copy of E to its caller: a later copy does not write into it
      const e = await t.embeddings();
      assert.notEqual(e.input, live);
      assert.deepEqual(e.input, live);
      const kept = e.input.slice();
      if (mode.folder) await t.saveCheckpoint(join(dir, "more"));
      live[0] += 1; // the model moves on; the caller's vectors stay as they were
      const again = await t.embeddings();
      assert.notEqual(again.input, e.input);
      assert.deepEqual(e.input, kept);
      t.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("trainer: the run start's copy of the output layer's D×d array goes into W₀'s array (factored V, naive W)", async () => {
  for (const output of ["factored", "naive"] as const) {
    const exported: Float32Array[] = [], inits: Float32Array[] = [];
    const t = await Trainer.create({
      config: smallConfig({ epochs: 1, keepBest: false, output }),
      vocab,
      openReader: memoryReader(corpus),
      createHead: recordingHeads(exported, inits),
      log: quiet,
    });
    await t.train({ paths: ["mem"], rows: corpus.length });
    assert.equal(inits.length, 1, output);
    assert.equal(exported[0], inits[0], output);
    t.close();
  }
});

for (const writeBehind of [true, false]) {
  Deno.test(`trainer: a checkpoint is written over the file the last pruning let go (${writeBehind ? "behind the steps" : "waited for"}); none is left after the run`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "spare-file-" });
    try {
      const ckpt = join(dir, "ckpt");
      const t = await Trainer.create({
        config: smallConfig({ epochs: 3, keepBest: false }),
        vocab,
        openReader: memoryReader(corpus),
        log: quiet,
        writeBehind,
      });
      // each checkpoint's inode, and the inode of the spare (the pruned file kept) beside it, if any
      const inodes: number[] = [], spares: (number | undefined)[] = [];
      const s = await t.train({
        paths: ["mem"],
        rows: corpus.length,
        checkpointDir: ckpt,
        checkpointEvery: 5,
        keepCheckpoints: 1,
        onCheckpoint: async (path) => {
          inodes.push((await Deno.stat(path)).ino!);
          const temps = (await Array.fromAsync(Deno.readDir(ckpt))).filter((e) => e.name.endsWith(".tmp"));
          assert.ok(temps.length <= 1, `spare files: ${temps.map((e) => e.name)}`);
          spares.push(temps.length ? (await Deno.stat(join(ckpt, temps[0].name))).ino! : undefined);
        },
      });
      assert.ok(inodes.length >= 4, `${inodes.length} checkpoints`);
      // from the second pruning on there is a spare, and the next checkpoint is that file (most of them: an
      // epoch end's rollback state can be the one kept, and a state only in memory is written out on its own)
      const followed = spares.slice(0, -1).filter((ino, i) =>
        ino !== undefined && inodes[i + 1] === ino
      ).length;
      assert.ok(followed >= inodes.length / 2, `checkpoints ${inodes}, spares ${spares}`);
      const left = (await Array.fromAsync(Deno.readDir(ckpt))).map((e) => e.name);
      assert.deepEqual(left.filter((n) => n.endsWith(".tmp")), [], `left: ${left}`);
      // the last one reads back whole (its checksum) and is the trainer's state
      const last = await readCheckpoint(s.checkpoint!);
      assert.deepEqual(last.arrays["model.E"], t.model.bag.E);
      t.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("trainer: the spare checkpoint file of a folder is not written over for a checkpoint in another folder (its parent)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spare-file-" });
  try {
    const sub = join(dir, "sub");
    const t = await Trainer.create({
      config: smallConfig({ epochs: 1, keepBest: false }),
      vocab,
      openReader: memoryReader(corpus),
      log: quiet,
    });
    // two checkpoints into sub/, keeping one: the older is sub/'s spare
    await t.saveCheckpoint(sub, { keep: 1 });
    t.renumber(t.step + 1);
    await t.saveCheckpoint(sub, { keep: 1 });
    const temps = (await Array.fromAsync(Deno.readDir(sub))).filter((e) => e.name.endsWith(".tmp"));
    assert.equal(temps.length, 1, "sub/'s spare");
    const spare = await Deno.stat(join(sub, temps[0].name));
    // a checkpoint into the folder above: a file of its own (sub/ may be another file system, where the
    // spare's rename out of it fails), the spare left in sub/ until close()
    const path = await t.saveCheckpoint(dir, { keep: 1 });
    assert.notEqual((await Deno.stat(path)).ino, spare.ino, "written over sub/'s spare");
    assert.equal((await Deno.stat(join(sub, temps[0].name))).ino, spare.ino);
    t.close();
    assert.deepEqual((await Array.fromAsync(Deno.readDir(sub))).map((e) => e.name), [checkpointName(t.step)]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainer: the state copies' validation arrays reuse one set once the held-out set is complete (no new shared memory per checkpoint)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "state-copies-val-" });
  try {
    const t = await Trainer.create({
      config: smallConfig({ epochs: 4, keepBest: false }),
      vocab,
      openReader: memoryReader(corpus),
      log: quiet,
      writeBehind: true,
    });
    const made = recordCopies(t);
    await t.train({
      paths: ["mem"],
      rows: corpus.length,
      checkpointDir: join(dir, "ckpt"),
      checkpointEvery: 9,
      keepCheckpoints: 100,
    });
    // the state copies (on shared memory) made once the held-out set stopped growing (after the first epoch)
    const last = made[made.length - 1]["val.Y.indices"].length;
    assert.ok(last > 0, "a held-out set");
    const copies = made.filter((a) =>
      a["val.Y.indices"].buffer instanceof SharedArrayBuffer && a["val.Y.indices"].length === last
    );
    assert.ok(copies.length >= 6, `${copies.length} copies`);
    // a SharedArrayBuffer that the writer's worker has seen is freed only when both threads collect it, and
    // the worker seldom does: a new one per checkpoint grew the process by the held-out set at each one
    for (const k of Object.keys(copies[0]).filter((k) => k.startsWith("val."))) {
      const buffers = new Set(copies.map((a) => a[k].buffer)).size;
      assert.ok(buffers <= 2, `${k}: ${buffers} buffers for ${copies.length} copies`);
    }
    t.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "trainer: an output array that only some state copies hold (the unsettled state) reuses the spare's, kept while a copy without it is made",
  ignore: !(await blasAvailable()),
}, async () => {
  // float32 products (blas, d ≥ 64) keep an unsettled state between settlements; D ≥ d
  const bigVocab = ringVocab(160), bigCorpus = ringCorpus(160, 600);
  const dir = await Deno.makeTempDir({ prefix: "state-copies-unsettled-" });
  try {
    const t = await Trainer.create({
      config: smallConfig({ epochs: 3, keepBest: false, backend: "blas", threads: 1, dim: 64, lr: 0.001 }),
      vocab: bigVocab,
      openReader: memoryReader(bigCorpus),
      log: quiet,
      writeBehind: true,
    });
    const made = recordCopies(t);
    await t.train({
      paths: ["mem"],
      rows: bigCorpus.length,
      checkpointDir: join(dir, "ckpt"),
      checkpointEvery: 3,
      keepCheckpoints: 100,
    });
    const copies = made.filter((a) => a["model.E"].buffer instanceof SharedArrayBuffer);
    const keys = ["output.unsettledU", "output.unsettledQ", "output.unsettledUinvt", "output.pending32"];
    const holding = copies.filter((a) => keys.every((k) => k in a));
    // the case in question: copies with the unsettled state and copies without it
    assert.ok(holding.length >= 4 && holding.length < copies.length, `${holding.length} of ${copies.length}`);
    for (const k of keys) {
      const buffers = new Set(holding.map((a) => a[k].buffer)).size;
      assert.equal(buffers, 1, `${k}: ${buffers} buffers for ${holding.length} copies`);
    }
    t.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
