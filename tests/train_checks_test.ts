// The trainer's checks at its API boundary (lib/train/checks.ts): train()'s options, Trainer.create's
// vocabulary, each batch of a custom reader, and the checkpoint folder and file, each refused with one line
// of the project's error classes before a step is taken or a file is touched.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DataFormatError, IoError, UsageError } from "../lib/core/errors.ts";
import { listCheckpoints, pruneCheckpoints } from "../lib/train/checkpoint.ts";
import { type OpenReader, type ReaderBatch, Trainer } from "../lib/train/trainer.ts";
import { memoryReader, ringCorpus, ringVocab, smallConfig, toBatch } from "./train_fakes.ts";

const V = 20;
const vocab = ringVocab(V);
const corpus = ringCorpus(V, 64);
const config = smallConfig({ epochs: 1, validation: 0, checkpointMinutes: 0 });
const quiet = () => {};

/** A trainer over `openReader` (default: the ring corpus), closed after `f`. */
async function withTrainer<T>(f: (t: Trainer) => Promise<T>, openReader: OpenReader = memoryReader(corpus)) {
  const t = await Trainer.create({ config, vocab, openReader, log: quiet });
  try {
    return await f(t);
  } finally {
    t.close();
  }
}

Deno.test("train(): bad options are a UsageError naming the option, before any step or file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train-checks-" });
  try {
    const ck = join(dir, "ck");
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ keepCheckpoints: 0 }, /^train: keepCheckpoints must be an integer ≥ 1 .*got 0$/],
      [{ keepCheckpoints: 1.5 }, /keepCheckpoints .*got 1\.5$/],
      [{ checkpointEvery: -1 }, /^train: checkpointEvery must be an integer ≥ 0 .*got -1$/],
      [{ checkpointMinutes: -1 }, /^train: checkpointMinutes must be a finite number ≥ 0 .*got -1$/],
      [{ checkpointMinutes: NaN }, /checkpointMinutes .*got NaN$/],
      [{ rows: Infinity }, /^train: rows must be an integer ≥ 1 .*got Infinity$/],
      [{ rows: 2.5 }, /rows .*got 2\.5$/],
      [{ rows: "64" }, /rows .*got the string "64"$/],
      [{ rows: 0 }, /rows .*got 0$/],
      [{ epochs: 0 }, /^train: epochs must be an integer ≥ 1 .*got 0$/],
      [{ epochs: -1 }, /epochs .*got -1$/],
      [{ epochs: NaN }, /epochs .*got NaN$/],
      [{ paths: [] }, /^train: paths must be a non-empty array .*got \[\]$/],
      [{ paths: "mem" }, /paths .*got the string "mem"$/],
      [{ paths: [""] }, /paths .*got \[""\]$/],
      [{ checkpointDir: "" }, /^train: checkpointDir must be a non-empty folder path/],
      [{ resume: true }, /^train: resume: true, but this trainer holds no run to continue/],
    ];
    for (const [over, want] of cases) {
      await withTrainer(async (t) => {
        const opts = { paths: ["mem"], rows: corpus.length, checkpointDir: ck, ...over };
        await assert.rejects(
          // deno-lint-ignore no-explicit-any
          () => t.train(opts as any),
          (e: Error) => e instanceof UsageError && want.test(e.message) && !e.message.includes("\n"),
          JSON.stringify(over),
        );
        assert.equal(t.step, 0, JSON.stringify(over));
      });
      assert.deepEqual(await listCheckpoints(ck), [], JSON.stringify(over));
    }
    // keepCheckpoints 0 used to remove every checkpoint, the one the summary names included
    await withTrainer(async (t) => {
      const s = await t.train({
        paths: ["mem"],
        rows: corpus.length,
        checkpointDir: ck,
        checkpointEvery: 2,
        keepCheckpoints: 1,
      });
      assert.deepEqual(await listCheckpoints(ck), [s.checkpoint]);
      await assert.rejects(
        () => t.saveCheckpoint(ck, { keep: 0 }),
        /saveCheckpoint: keep must be an integer ≥ 1/,
      );
    });
    await assert.rejects(() => pruneCheckpoints(ck, 0), UsageError);
    assert.equal((await listCheckpoints(ck)).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Trainer.create: a repeated word or a count that is NaN, negative or not a number is refused", async () => {
  const cases: [{ words: unknown[]; counts: unknown[] }, RegExp][] = [
    [{ words: ["a", "b", "a"], counts: [3, 2, 1] }, /^vocabulary: word "a" is both id 0 and id 2/],
    [{ words: ["a", "b"], counts: [NaN, 1] }, /^vocabulary: the count of word 0 \("a"\) is NaN/],
    [{ words: ["a", "b"], counts: [1, -1] }, /count of word 1 \("b"\) is -1/],
    [{ words: ["a", "b"], counts: [1, "2"] }, /count of word 1 \("b"\) is the string "2"/],
    [{ words: ["a", 7], counts: [1, 1] }, /^vocabulary: word 1 is number, not a string/],
  ];
  for (const [v, want] of cases) {
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      () => Trainer.create({ config, vocab: v as any, log: quiet }),
      (e: Error) => e instanceof UsageError && want.test(e.message),
      JSON.stringify(v),
    );
  }
});

Deno.test("train(): a reader batch that is malformed, out of the vocabulary or not finite is a DataFormatError naming the batch, before its step", async () => {
  const good = (): ReaderBatch => ({ ...toBatch(corpus, 0, 4), position: null, epoch: 0, size: 4 });
  const withValues = (b: ReaderBatch, part: "inputs" | "targets", k: number, v: number): ReaderBatch => {
    const values = b[part].values.slice();
    values[k] = v;
    return { ...b, [part]: { ...b[part], values } };
  };
  const withId = (b: ReaderBatch, part: "inputs" | "targets", k: number, id: number): ReaderBatch => {
    const indices = b[part].indices.slice();
    indices[k] = id;
    return { ...b, [part]: { ...b[part], indices } };
  };
  const cases: [() => unknown, RegExp][] = [
    [() => null, /reader batch 2: not a batch object: null$/],
    [() => ({}), /reader batch 2: inputs must be a SparseBatch, got undefined$/],
    [() => ({ ...good(), inputs: toBatch(corpus, 0, 3).inputs }), /inputs have 3 examples but targets 4/],
    [
      () => withId(good(), "inputs", 1, V + 3),
      /inputs\.indices\[1\] = 23 is outside the vocabulary's ids \[0, 20\)/,
    ],
    [() => withId(good(), "inputs", 0, -1), /inputs\.indices\[0\] = -1 is outside/],
    [() => withId(good(), "targets", 2, V), /targets\.indices\[2\] = 20 is outside the vocabulary's ids/],
    [() => withValues(good(), "inputs", 1, NaN), /inputs\.values\[1\] = NaN is not finite \(example/],
    [() => withValues(good(), "inputs", 0, Infinity), /inputs\.values\[0\] = Infinity is not finite/],
    [() => withValues(good(), "targets", 0, NaN), /targets\.values\[0\] = NaN is not finite/],
    [
      () => ({
        ...good(),
        inputs: { offsets: [0, 1, 2, 3, 4], indices: [1, 2, 3, 4], values: [1, 1, 1, 1] },
      }),
      /inputs\.offsets must be an Int32Array, got Array/,
    ],
    [() => ({ ...good(), size: 3 }), /size must be an integer ≥ its 4 examples .*got 3$/],
    [() => ({ ...good(), epoch: -1 }), /epoch must be an integer ≥ 0, got -1$/],
  ];
  for (const [bad, want] of cases) {
    // one good batch, then the bad one: the first is stepped, the second refused before its step
    const reader: OpenReader = async function* () {
      yield good();
      yield bad() as ReaderBatch;
      yield good();
    };
    await withTrainer(async (t) => {
      await assert.rejects(
        () => t.train({ paths: ["mem"], rows: 12 }),
        (e: Error) =>
          e instanceof DataFormatError && e.message.startsWith("mem: reader batch 2: ") &&
          want.test(e.message),
        String(want),
      );
      assert.equal(t.step, 1, String(want));
    }, reader);
  }
  // a batch of no example (a remapping reader dropped them all) and one whose size counts dropped ones pass
  const empty = { offsets: Int32Array.of(0), indices: new Int32Array(0), values: new Float32Array(0) };
  const fine: OpenReader = async function* () {
    yield { inputs: empty, targets: empty, position: null, epoch: 0, size: 2 };
    yield { ...good(), size: 6 };
  };
  await withTrainer(async (t) => {
    await t.train({ paths: ["mem"], rows: 8 });
    assert.equal(t.step, 1);
  }, fine);
});

Deno.test("train(): a checkpoint folder that cannot be made is an IoError before the first batch; a checkpoint that cannot be read an IoError naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train-checks-" });
  try {
    const file = join(dir, "a-file");
    await Deno.writeTextFile(file, "x");
    let read = 0;
    const counting: OpenReader = async function* (paths, o) {
      for await (const b of memoryReader(corpus)(paths, o)) {
        read++;
        yield b;
      }
    };
    await withTrainer(async (t) => {
      await assert.rejects(
        () => t.train({ paths: ["mem"], rows: corpus.length, checkpointDir: join(file, "ck") }),
        (e: Error) =>
          e instanceof IoError && e.errno === "ENOTDIR" &&
          e.message ===
            `cannot create checkpoint folder ${join(file, "ck")}: a part of the path is a regular ` +
              "file, not a folder; choose a path under a folder",
      );
      assert.equal(read, 0);
      assert.equal(t.step, 0);
    }, counting);
    await assert.rejects(
      () => Trainer.fromCheckpoint(join(dir, "nope.fock"), { log: quiet }),
      (e: Error) =>
        e instanceof IoError && e.reading && e.errno === "ENOENT" &&
        e.message.startsWith(`cannot read checkpoint ${join(dir, "nope.fock")}: no such file or folder`),
    );
    await assert.rejects(
      () => Trainer.fromCheckpoint(dir, { log: quiet }),
      (e: Error) =>
        e instanceof IoError && e.errno === "EISDIR" && e.message.includes(`checkpoint ${dir}: is a folder`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
