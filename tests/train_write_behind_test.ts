// Checkpoints written behind the steps (lib/train/write_behind.ts, the trainer's save, on the checkpoint
// writer's worker): the chain's order and errors, a failed write stopping the run at its next step with the
// error naming the folder, the checkpoints already written kept, the files the same as a run that waits for
// each write, and the output layer's pool standing down while a write takes a core it would use.
import assert from "node:assert/strict";
import { join } from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import { IoError } from "../lib/core/errors.ts";
import { checkpointName, readCheckpoint } from "../lib/train/checkpoint.ts";
import { Trainer } from "../lib/train/trainer.ts";
import type { OpenReader } from "../lib/train/types.ts";
import { WriteBehind } from "../lib/train/write_behind.ts";
import { flakyHeads, memoryReader, ringCorpus, ringVocab, smallConfig } from "./train_fakes.ts";
import { blasAvailable } from "./layers_helpers.ts";
import type { PooledBackend } from "../lib/linalg/pool.ts";

const V = 40;
const vocab = ringVocab(V);
const corpus = ringCorpus(V, 600);
const quiet = () => {};
const bytes = (a: Float32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

Deno.test("WriteBehind: tasks run in order; a failure is kept for settle(), the tasks after it do not run", async () => {
  const w = new WriteBehind(), done: string[] = [];
  assert.equal(w.pending, false);
  await w.settle(); // nothing started: nothing to wait for
  w.then(async () => {
    await new Promise((r) => setTimeout(r, 5));
    done.push("a");
  });
  w.then(() => {
    done.push("b");
    return Promise.reject(new Error("disk full"));
  });
  w.then(() => {
    done.push("c");
    return Promise.resolve();
  });
  assert.equal(w.pending, true);
  // the failure is not thrown where no one waits (an unhandled rejection would end the test process)
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(w.failed, true);
  await assert.rejects(w.settle(), /disk full/);
  assert.deepEqual(done, ["a", "b"]);
  assert.equal(w.pending, false);
  assert.equal(w.failed, false);
  w.then(() => {
    done.push("d");
    return Promise.resolve();
  });
  await w.settle();
  assert.deepEqual(done, ["a", "b", "d"]);
});

/** The memory reader, turning the event loop before each batch as the worker reader's messages do. */
function turningReader(onBatch: (epoch: number, n: number) => Promise<void> = async () => {}): OpenReader {
  const inner = memoryReader(corpus);
  return async function* (paths, opts) {
    let n = 0;
    for await (const b of inner(paths, opts)) {
      await new Promise((r) => setTimeout(r, 0));
      await onBatch(b.epoch, n++);
      yield b;
    }
  };
}

for (const writeBehind of [true, false]) {
  Deno.test(`trainer: a checkpoint ${writeBehind ? "written behind the steps" : "waited for"} that fails stops the run ${writeBehind ? "at a later step" : "at its step"}, the earlier checkpoints kept`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "write-behind-" });
    try {
      const ckpts = join(dir, "checkpoints");
      let broken = false;
      const keptNames: string[] = [];
      // at epoch 2's first batch (after epoch 1's checkpoint is on disk), the folder becomes a file
      const reader = turningReader(async (epoch) => {
        // the failed write's answer comes from the runtime's I/O threads, on a loaded machine after a few ms:
        // the batches after the break take a few ms each, as a real run's steps do
        if (broken) await new Promise((r) => setTimeout(r, 5));
        if (epoch === 2 && !broken) {
          broken = true;
          const kept = [...Deno.readDirSync(ckpts)].map((e) => e.name).sort();
          await Deno.rename(ckpts, join(dir, "kept"));
          await Deno.writeTextFile(ckpts, "not a folder");
          keptNames.push(...kept);
        }
      });
      const t = await Trainer.create({
        config: smallConfig({ epochs: 4 }),
        vocab,
        openReader: reader,
        log: quiet,
        writeBehind,
      });
      const perEpoch = Math.ceil(corpus.length / 16); // batches (steps) per epoch
      const e = await t.train({ paths: ["mem"], rows: corpus.length, checkpointDir: ckpts }).then(
        () => assert.fail("the run must fail"),
        (e) => e,
      );
      assert.ok(e instanceof IoError, `an IoError (exit 8): ${e}`);
      assert.match(e.message, new RegExp(`cannot create checkpoint folder ${ckpts}`));
      // behind the steps: it stopped at a step soon after the failed write, not at the next checkpoint (the
      // next epoch's end); waited for: at the epoch's end itself
      if (writeBehind) {
        assert.ok(
          t.step > 2 * perEpoch && t.step < 3 * perEpoch,
          `stopped at step ${t.step}; epoch 2 began at step ${2 * perEpoch}`,
        );
      } else assert.equal(t.step, 2 * perEpoch);
      // what was written stays: epoch 1's checkpoint and best.fock, whole
      assert.ok(keptNames.some((n) => n.startsWith("ckpt-")), `kept ${keptNames}`);
      for (const n of keptNames) await readCheckpoint(join(dir, "kept", n));
      t.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("trainer: checkpoints written behind the steps hold the states a waiting write would (epoch ends, every N steps, best.fock)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "write-behind-" });
  try {
    const runOnce = async (reader: OpenReader, sub: string, writeBehind: boolean) => {
      const t = await Trainer.create({
        config: smallConfig({ epochs: 3 }),
        vocab,
        openReader: reader,
        log: quiet,
        writeBehind,
      });
      const s = await t.train({
        paths: ["mem"],
        rows: corpus.length,
        checkpointDir: join(dir, sub),
        checkpointEvery: 7,
        keepCheckpoints: 100,
      });
      t.close();
      return s;
    };
    // each checkpoint written before the next step, against each written behind the steps while the reader
    // turns the event loop (and behind the steps with a reader that never does: written at the next save)
    const a = await runOnce(memoryReader(corpus), "a", false);
    const b = await runOnce(turningReader(), "b", true);
    const c = await runOnce(memoryReader(corpus), "c", true);
    assert.equal(a.steps, c.steps);
    assert.equal(a.steps, b.steps);
    const names = (sub: string) => [...Deno.readDirSync(join(dir, sub))].map((e) => e.name).sort();
    assert.ok(names("a").includes("best.fock") && names("a").length > 10, `${names("a")}`);
    for (const other of ["b", "c"]) {
      assert.deepEqual(names(other), names("a"));
    }
    for (const [n, other] of names("a").flatMap((n) => [[n, "b"], [n, "c"]])) {
      const [x, y] = [await readCheckpoint(join(dir, "a", n)), await readCheckpoint(join(dir, other, n))];
      const { createdAt: _x, ...mx } = x.meta as Record<string, unknown>;
      const { createdAt: _y, ...my } = y.meta as Record<string, unknown>;
      // the run's seconds differ between two runs: everything else is the same state
      const noSeconds = (m: Record<string, unknown>) =>
        JSON.stringify({ ...m, run: { ...(m.run as object), seconds: 0 } });
      assert.equal(noSeconds(mx), noSeconds(my), `${other}/${n}`);
      assert.deepEqual(Object.keys(x.arrays), Object.keys(y.arrays));
      for (const k of Object.keys(x.arrays)) {
        assert.deepEqual(bytes(x.arrays[k]), bytes(y.arrays[k]), `${other}/${n}: ${k} differs`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// The copy (the checkpoint object, its run state) is not held as the rollback state through the epoch; its
// arrays are the next copy's (tests/train_state_copies_test.ts), a checkpoint's size kept, not two.
Deno.test("trainer: an epoch end's state copy, written behind the steps, is let go once written (not held through the epoch)", async () => {
  // a collection on demand (node:v8's flag, node:vm's gc): the copy must be unreachable, not merely unused
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  const dir = await Deno.makeTempDir({ prefix: "write-behind-" });
  try {
    const ckpts = join(dir, "checkpoints"), written = new Set<string>();
    // the checkpoints toCheckpoint made, by step: an epoch end's is the copy written behind the steps
    const made = new Map<number, WeakRef<object>>();
    const box: { t?: Trainer } = {}; // the trainer, for the reader's check
    const held: number[] = [], checked: number[] = [];
    let epochEnd = -1, seen = 0;
    const reader = turningReader(async (epoch) => {
      if (epoch !== epochEnd) [epochEnd, seen] = [epoch, 0];
      // three steps into the second and third epochs, the epoch end's checkpoint written: its copy is garbage
      // (before: held by the trainer until the next checkpoint, here the next epoch's end)
      if (epoch === 0 || ++seen !== 4) return;
      const step = box.t!.step - 3, ref = made.get(step);
      assert.ok(ref, `a copy of step ${step} was made`);
      for (let i = 0; i < 1000 && !written.has(join(ckpts, checkpointName(step))); i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      let alive = true;
      for (let i = 0; i < 100 && alive; i++) {
        await new Promise((r) => setTimeout(r, 5)); // the write's chain ends (best.fock's link after it)
        gc();
        alive = ref.deref() !== undefined;
      }
      checked.push(step);
      if (alive) held.push(step);
    });
    const t = box.t = await Trainer.create({
      config: smallConfig({ epochs: 3 }),
      vocab,
      openReader: reader,
      log: quiet,
      writeBehind: true,
    });
    const toCheckpoint = t.toCheckpoint.bind(t);
    t.toCheckpoint = async () => {
      const c = await toCheckpoint();
      made.set(t.step, new WeakRef(c));
      return c;
    };
    await t.train({
      paths: ["mem"],
      rows: corpus.length,
      checkpointDir: ckpts,
      onCheckpoint: (p) => Promise.resolve(void written.add(p)),
    });
    t.close();
    assert.equal(checked.length, 2, `epochs 2 and 3 checked: ${checked}`);
    assert.deepEqual(held, [], `the copies of steps ${held} are still held by the trainer`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainer: a rollback while an epoch end's checkpoint is written behind the steps returns to that epoch end, as after a waiting write", async () => {
  const dir = await Deno.makeTempDir({ prefix: "write-behind-" });
  try {
    // 38-step epochs: a NaN at the first step after epoch 1's end (its write still going on), and one in epoch 3
    for (const nanAt of [39, 80]) {
      const runOnce = async (reader: OpenReader, sub: string, writeBehind = true) => {
        const lines: string[] = [];
        const t = await Trainer.create({
          config: smallConfig({ epochs: 4, schedule: "constant", lrMin: 0.003 }),
          vocab,
          openReader: reader,
          createHead: flakyHeads({ calls: 0, etas: [], created: 0, nan: (c) => c === nanAt }),
          log: (l) => lines.push(l),
          writeBehind,
        });
        await t.train({
          paths: ["mem"],
          rows: corpus.length,
          checkpointDir: join(dir, `${nanAt}${sub}`),
          checkpointEvery: 3,
          keepCheckpoints: 2,
        });
        const e = await t.embeddings({ output: true });
        t.close();
        return { e, backoffs: lines.filter((l) => l.includes('"event":"backoff"')) };
      };
      // each checkpoint written before the next step, against each written behind the steps
      const a = await runOnce(memoryReader(corpus), "a", false), b = await runOnce(turningReader(), "b");
      assert.equal(a.backoffs.length, 1, a.backoffs.join("\n"));
      assert.deepEqual(b.backoffs, a.backoffs);
      assert.deepEqual(bytes(b.e.input), bytes(a.e.input), `E after a NaN at step ${nanAt}`);
      assert.deepEqual(bytes(b.e.output!), bytes(a.e.output!), `W after a NaN at step ${nanAt}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainer: the log says whether checkpoints are written behind the steps or waited for", async () => {
  const dir = await Deno.makeTempDir({ prefix: "write-behind-" });
  try {
    for (const writeBehind of [true, false]) {
      const lines: string[] = [];
      const t = await Trainer.create({
        config: smallConfig({ epochs: 1 }),
        vocab,
        openReader: memoryReader(corpus),
        log: (l) => lines.push(l),
        writeBehind,
      });
      await t.train({ paths: ["mem"], rows: corpus.length, checkpointDir: join(dir, String(writeBehind)) });
      t.close();
      const said = lines.filter((l) => l.startsWith("checkpoints: "));
      assert.equal(said.length, 1, lines.join("\n"));
      assert.match(said[0], writeBehind ? /written behind the steps/ : /each written before the next step/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainer: a saveCheckpoint() of the caller's still being written when train() ends (its writer closed) completes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "write-behind-" });
  try {
    const t = await Trainer.create({
      config: smallConfig({ epochs: 1, keepBest: false }),
      vocab,
      openReader: memoryReader(corpus),
      log: quiet,
      writeBehind: true,
    });
    // the caller's checkpoint is large (a long write), so that the run ends while it is being written
    const toCheckpoint = t.toCheckpoint.bind(t);
    let big = false;
    t.toCheckpoint = async (o) => {
      const c = await toCheckpoint(o);
      if (big) c.arrays["extra"] = new Float32Array(48 << 20);
      return c;
    };
    const other = join(dir, "other");
    let save: Promise<string> | undefined;
    await t.train({
      paths: ["mem"],
      rows: corpus.length,
      checkpointDir: join(dir, "ckpt"),
      // the run's last checkpoint: the caller starts one of its own and lets the run end meanwhile
      onCheckpoint: async () => {
        big = true;
        save = t.saveCheckpoint(other);
        while (!(await Array.fromAsync(Deno.readDir(other)).catch(() => [])).length) {
          await new Promise((r) => setTimeout(r, 1));
        }
      },
    });
    assert.ok(save, "onCheckpoint was called");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<never>((_, no) =>
      timer = setTimeout(() => no(new Error("never settled")), 60_000)
    );
    try {
      const path = await Promise.race([save, hung]);
      assert.equal((await readCheckpoint(path)).arrays["extra"].length, 48 << 20);
    } finally {
      clearTimeout(timer);
    }
    t.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "trainer: with every core the pool's, it stands down while a checkpoint is written behind the steps, " +
    "takes the core back after, and the run's bits are a waiting run's",
  ignore: !(await blasAvailable()),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "write-behind-" });
  // batches of 256 × dim 256, the bag split too: calls the pool splits at every step. Checkpoints of ≈ 4 MB
  // (2,000 words), each written over about a step. (With the write posted only at the training thread's next
  // turn of the event loop, an async mkdir's, most writes started and ended between two steps: this test
  // failed about one run in three.)
  const Vw = 2000, big = ringCorpus(Vw, 6000), cores = String(navigator.hardwareConcurrency);
  try {
    const run = async (writeBehind: boolean) => {
      const lines: string[] = [];
      const had = Deno.env.get("FACTOROUT_THREADS");
      Deno.env.set("FACTOROUT_THREADS", cores);
      let t: Trainer;
      try {
        t = await Trainer.create({
          config: smallConfig({ epochs: 3, dim: 256, batch: 256, backend: "blas", output: "factored" }),
          vocab: ringVocab(Vw),
          openReader: memoryReader(big),
          log: (l) => lines.push(l),
          writeBehind,
          splitBag: true,
        });
      } finally {
        if (had === undefined) Deno.env.delete("FACTOROUT_THREADS");
        else Deno.env.set("FACTOROUT_THREADS", had);
      }
      // the pool's stand-downs in order: each one's calls (> 0: the trainer yields for a write, 0: it takes the
      // core back) and the split calls made so far
      const pool = (t.output as { la?: PooledBackend }).la!, standDown = pool.standDown.bind(pool);
      const downs: [number, number][] = [];
      pool.standDown = (calls) => {
        downs.push([calls, pool.splitCalls]);
        standDown(calls);
      };
      try {
        const s = await t.train({
          paths: ["mem"],
          rows: big.length,
          checkpointDir: join(dir, String(writeBehind)),
          checkpointEvery: 10,
        });
        const vectors = await t.embeddings({ output: true });
        return { pool: s.thisInvocation.pool!, downs, lines, vectors };
      } finally {
        t.close();
      }
    };
    const behind = await run(true), waited = await run(false);
    assert.ok(behind.pool && waited.pool, "the pool's counts (FACTOROUT_THREADS = the cores)");
    // the trainer's stand-downs only (the pool's own, for cores busy with other work, count in its
    // callerOnlyCalls too: on a loaded machine a waiting run has hundreds): the split calls after each
    // write's start run stood down, until a step after the write's end gives the core back
    const yields = behind.downs.filter(([calls], k) =>
      calls > 0 && k + 1 < behind.downs.length && behind.downs[k + 1][1] > behind.downs[k][1]
    );
    assert.ok(yields.length > 0, `stood down during the writes: ${JSON.stringify(behind.downs)}`);
    // and back: split calls run on every thread before the next write (a share of the calls stood down is no
    // test: it grows with the disk's time per write, up to 60% on a loaded machine)
    const backs = behind.downs.filter(([calls], k) =>
      calls === 0 && k + 1 < behind.downs.length && behind.downs[k + 1][1] > behind.downs[k][1]
    );
    assert.ok(backs.length > 0, `and back: ${JSON.stringify(behind.downs)}`);
    assert.deepEqual(waited.downs, [], "a run that waits for its writes does not stand down for them");
    assert.ok(
      behind.lines.some((l) => /training thread alone while one is written/.test(l)),
      behind.lines.join("\n"),
    );
    assert.deepEqual(behind.vectors.input, waited.vectors.input, "input vectors");
    assert.deepEqual(behind.vectors.output, waited.vectors.output, "output vectors");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
