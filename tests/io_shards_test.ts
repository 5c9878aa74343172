// lib/io/shards.ts (shards without manifest.json) and lib/io/fingerprint.ts (corpus reuse by content).
import assert from "node:assert/strict";
import { join } from "node:path";
import * as arrow from "apache-arrow";
import { ExampleColumns } from "../lib/io/columns.ts";
import { corpusSchema } from "../lib/io/schema.ts";
import { columnsToRecordBatch, openArrowShard } from "../lib/io/shard_writer.ts";
import { classifyInputs } from "../lib/io/detect.ts";
import { fingerprintChange, fingerprintInputs } from "../lib/io/fingerprint.ts";
import { prepareCorpus } from "../lib/io/prepare.ts";
import { importShards, scanShards } from "../lib/io/shards.ts";

async function prepared(format: "arrow" | "parquet", limitTokens = 4000) {
  const dir = await Deno.makeTempDir();
  const m = await prepareCorpus({
    input: "brown",
    outDir: dir,
    mode: "cbow",
    window: 2,
    minCount: 2,
    seed: 1,
    limitTokens,
    format,
    shardRows: 1500,
    batchRows: 500,
  });
  return { dir, m };
}

async function scan(dir: string, log: string[] = []) {
  const c = await classifyInputs([dir]);
  assert.equal(c.kind, "shards");
  return scanShards(dir, c as Extract<typeof c, { kind: "shards" }>, (l) => log.push(l));
}

for (const format of ["arrow", "parquet"] as const) {
  Deno.test(`shards: a ${format} folder scanned without its manifest gives the manifest's rows and shards`, async () => {
    const { dir, m } = await prepared(format);
    await Deno.remove(`${dir}/manifest.json`);
    const log: string[] = [];
    const s = await scan(dir, log);
    assert.equal(s.manifest.rows, m.rows);
    assert.equal(s.manifest.mode, "cbow");
    assert.equal(s.manifest.vocabSize, m.vocabSize);
    assert.deepEqual(s.manifest.shards.map((x) => [x.file, x.rows]), m.shards.map((x) => [x.file, x.rows]));
    assert.equal([s.manifest.maxInputK, s.manifest.maxTargetK].join(), [m.maxInputK, m.maxTargetK].join());
    assert.match(log[0], /no manifest\.json: \d+ shard\(s\) found by content/);
    // ids as words without vocab.tsv: factorout's shards say their vocabulary size
    await Deno.remove(`${dir}/vocab.tsv`);
    const ids = await scan(dir);
    assert.equal(ids.vocab.words.length, m.vocabSize);
    assert.equal(ids.vocab.words[5], "5");
    assert.ok(ids.vocab.counts[0] > 0);
  });
}

Deno.test("shards: another corpus's shard in the folder is refused; import writes a complete corpus", async () => {
  const a = await prepared("arrow");
  const b = await prepared("arrow", 2500);
  await Deno.remove(`${a.dir}/manifest.json`);
  const out = await Deno.makeTempDir();
  const c = await classifyInputs([a.dir]);
  const m = await importShards(a.dir, c as Extract<typeof c, { kind: "shards" }>, out, () => {});
  assert.equal(m.rows, a.m.rows);
  assert.ok(await Deno.stat(`${out}/manifest.json`));
  assert.equal(await Deno.readTextFile(`${out}/vocab.tsv`), await Deno.readTextFile(`${a.dir}/vocab.tsv`));
  await Deno.copyFile(`${b.dir}/part-00000.arrow`, `${a.dir}/part-00042.arrow`);
  await assert.rejects(
    () => scan(a.dir),
    /part-00042\.arrow: shard \d+ has another schema than .*vocab_size=/,
  );
});

Deno.test("fingerprint: content, not the path, decides; head and tail only above the limit", async () => {
  const dir = await Deno.makeTempDir();
  const f = `${dir}/a.txt`;
  await Deno.writeTextFile(f, "x".repeat(5000));
  const a = await fingerprintInputs(f);
  assert.equal(a.method, "sha256");
  assert.equal(fingerprintChange(a, await fingerprintInputs(f)), "");
  const { mtime } = await Deno.stat(f);
  await Deno.writeTextFile(f, "x".repeat(2500) + "y" + "x".repeat(2499));
  await Deno.utime(f, mtime!, mtime!);
  assert.match(fingerprintChange(a, await fingerprintInputs(f)), /a\.txt changed content \(same size\)/);
  await Deno.writeTextFile(f, "x".repeat(5001));
  assert.match(fingerprintChange(a, await fingerprintInputs(f)), /changed size \(5000 → 5001 bytes\)/);
  const ht = await fingerprintInputs(f, 10);
  assert.equal(ht.method, "sha256-head-tail");
  assert.match(fingerprintChange(undefined, ht), /no fingerprint/);
});

// Issue 18 follow-up (2026-12-06): each record batch was serialised into one new array (apache-arrow's
// toUint8Array joins its pieces, copying the batch's columns) before it was written; on the project's VMs
// that new memory cost more than the copy (the Brown corpus of `deno task train`: 0.5–1 s of its 3–4 s).
// The pieces are written as they are: the same bytes as Arrow's own stream of the batches.
Deno.test("arrow shards: batches written piece by piece, byte for byte Arrow's stream, none joined first", async () => {
  const dir = await Deno.makeTempDir();
  const toUint8Array = arrow.RecordBatchStreamWriter.prototype.toUint8Array;
  try {
    const meta = new Map([["factorout.vocab_size", "9"]]);
    const cols = new ExampleColumns();
    const fill = (b: number) => {
      cols.clear();
      for (let r = 0; r < [3, 1, 5][b]; r++) {
        for (let k = 0; k <= (r + b) % 3; k++) cols.pushInput((r * 7 + k + b) % 9);
        cols.pushTarget((r + 2 * b) % 9, 0.5 + r);
        cols.endRow();
      }
    };
    // the expected stream first (Arrow's own writer joins it), then the shard with joining refused
    const batches = [0, 1, 2].map((b) => (fill(b), columnsToRecordBatch(cols, true, corpusSchema(meta))));
    const expected = arrow.RecordBatchStreamWriter.writeAll(batches).toUint8Array(true);
    arrow.RecordBatchStreamWriter.prototype.toUint8Array = () => {
      throw new Error("a batch was joined into one array before it was written");
    };
    const path = join(dir, "part-00000.arrow");
    const w = await openArrowShard(path, meta);
    for (const b of [0, 1, 2]) {
      fill(b);
      await w.writeBatch(cols);
    }
    const info = await w.close();
    assert.deepEqual([info.rows, info.batches, info.bytes], [9, 3, expected.length]);
    assert.deepEqual(await Deno.readFile(path), expected);
  } finally {
    arrow.RecordBatchStreamWriter.prototype.toUint8Array = toUint8Array;
    await Deno.remove(dir, { recursive: true });
  }
});
