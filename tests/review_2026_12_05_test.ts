// Failing tests of review 2026-12-05 (branch r2; /work/notes/review-2026-12-05.md). Each one names its
// finding; they fail on ef559ed and should pass once it is fixed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { publishEmbeddings } from "../lib/export/publish.ts";
import { pruneVersions } from "../lib/export/prune.ts";
import { findLatestCheckpoint, readCheckpoint } from "../lib/train/checkpoint.ts";
import { resolveConfig } from "../lib/train/config.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { EXIT } from "../lib/core/exit_codes.ts";
import { pipeline, runScript } from "./child.ts";

const WORDS = ["the", "cat", "sat", "on", "mat", "a"];
const quiet = () => {};

/** A run folder with one checkpoint (js backend, tiny model) and one published version "v0" (refresh_test.ts). */
async function makeRun(): Promise<string> {
  const run = await Deno.makeTempDir({ prefix: "review_test_" });
  const config = resolveConfig({
    dim: 6,
    backend: "js",
    out: run,
    minCount: 1,
    window: 2,
    epochs: 1,
    validation: 0,
    lr: 0.005,
    batch: 4,
    sample: 0,
    loss: "squared",
  });
  const t = await Trainer.create({
    config,
    vocab: { words: WORDS, counts: [60, 50, 40, 30, 20, 10] },
    log: quiet,
  });
  try {
    await t.saveCheckpoint(join(run, "checkpoints"));
    const e = await t.embeddings();
    await publishEmbeddings({
      outRoot: join(run, "embeddings"),
      words: e.words,
      input: e.input,
      d: e.d,
      formats: ["vec"],
      manifest: {},
      version: "v0",
    });
    return run;
  } finally {
    t.close();
  }
}

const refreshArgs = (run: string, data: string, epochs: string) => [
  ...["--from", run, "--data", data, "--epochs", epochs, "--min-count", "1", "--eval-dir", "none"],
  ...["--formats", "vec", "--backend", "js", "--progress", "none"],
];

Deno.test("review #2: a second refresh with --epochs 0 and no new words keeps the run's refresh mark (train --resume still refused)", async () => {
  const run = await makeRun();
  try {
    const text = join(run, "new.txt");
    await Deno.writeTextFile(text, "the dog sat on the mat\nthe dog ran to a cat\na dog sat\n".repeat(20));
    // the first refresh trains and grows the vocabulary (dog, ran, to): its checkpoint is marked
    const first = await runScript(pipeline("refresh"), refreshArgs(run, text, "1"));
    assert.equal(first.code, 0, first.stderr);
    const marked = await readCheckpoint((await findLatestCheckpoint(join(run, "checkpoints")))!);
    assert.equal((marked.meta.refresh as { data?: unknown }).data, text);
    // the second, --epochs 0 over words the run knows now: no step, no new word; its checkpoint is the
    // run's newest and still holds the first refresh's grown vocabulary and training
    const second = await runScript(pipeline("refresh"), refreshArgs(run, text, "0"));
    assert.equal(second.code, 0, second.stderr);
    const newest = await readCheckpoint((await findLatestCheckpoint(join(run, "checkpoints")))!);
    const resumed = await runScript(pipeline("train"), ["--resume", run, "--epochs", "3"]);
    assert.equal(
      resumed.code,
      EXIT.noCheckpoint,
      `train --resume of a refreshed run must be refused; meta.refresh of the newest checkpoint is ${
        JSON.stringify(Object.keys(newest.meta.refresh as object))
      }\n${resumed.stderr.split("\n").slice(-4).join("\n")}`,
    );
    // refused for being refreshed (lib/train/run.ts refuseRefreshed), not after preparing brown into the run
    // folder and finding the vocabularies differ (what happens: meta.refresh lost its `data`)
    assert.match(resumed.stderr, /the run was refreshed \(refresh --data /);
    await assert.rejects(Deno.stat(join(run, "corpus")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("review #1: train --keep-versions prunes without waiting for its own publication lock", async () => {
  // publishEmbeddings calls `committed` under <root>/publish.lock; train's committed prunes (removeOldVersions ->
  // pruneVersions -> lockPublication) the same root: the process waits 60 s for itself, then warns
  const root = await Deno.makeTempDir();
  try {
    const pub = (version: string, committed?: () => Promise<void>) =>
      publishEmbeddings({
        outRoot: root,
        words: ["a"],
        input: Float32Array.of(1),
        d: 1,
        formats: ["vec"],
        manifest: {},
        version,
        ...(committed ? { committed } : {}),
      });
    await pub("v1");
    let removed: string[] = [];
    const t0 = performance.now();
    await pub("v2", async () => {
      // what lib/train/run.ts's committed does with --keep-versions 1
      removed = await Promise.race([
        pruneVersions(root, 1),
        new Promise<string[]>((_, no) => setTimeout(() => no(new Error("pruneVersions waited 5 s")), 5000)),
      ]);
    }).catch((e) => assert.fail(`${(e as Error).message} (after ${Math.round(performance.now() - t0)} ms)`));
    assert.deepEqual(removed, ["v1"]);
  } finally {
    // the pruning left waiting (60 s, 10 ms polls) would keep the test alive: end it with the module
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});

Deno.test("review #3: shards with a negative target weight under a likelihood loss are bad data (exit 5 naming the shard), not an internal error", async () => {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const work = await Deno.makeTempDir();
  try {
    const dir = join(work, "shards");
    await Deno.mkdir(dir);
    const db = await DuckDBInstance.create(":memory:");
    const con = await db.connect();
    await con.run(
      `COPY (SELECT [CAST(i % 5 AS INTEGER)] AS input, ` +
        `[CAST((i + 1) % 5 AS INTEGER), CAST((i + 2) % 5 AS INTEGER)] AS target_index, ` +
        `[CAST(1.0 AS FLOAT), CAST(CASE WHEN i = 300 THEN -0.5 ELSE 0.5 END AS FLOAT)] AS target_value ` +
        `FROM range(400) t(i)) TO '${dir}/part-00000.parquet' (FORMAT parquet)`,
    );
    con.closeSync();
    await Deno.writeTextFile(join(dir, "vocab.tsv"), "a\t100\nb\t90\nc\t80\nd\t70\ne\t60\n");
    const r = await runScript(pipeline("train"), [
      ...["--data", dir, "--mode", "skipgram", "--dim", "4", "--batch", "16", "--epochs", "1"],
      ...["--out", join(work, "run"), "--eval-dir", "none", "--formats", "vec", "--progress", "none"],
    ]);
    const last = r.stderr.trimEnd().split("\n").at(-1)!;
    // it is: exit 1, "train: internal error: Y.values[7] = -0.5 is negative (example 3): …" (batch-local
    // positions, no file), after training started
    assert.equal(r.code, EXIT.badData, last);
    assert.match(last, /part-00000\.parquet/);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
