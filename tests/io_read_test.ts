import assert from "node:assert/strict";
import * as arrow from "apache-arrow";
import * as pq from "parquet-wasm";
import { DataFormatError, UsageError } from "../lib/core/errors.ts";
import { readManifest } from "../lib/io/manifest.ts";
import { publishEmbeddings } from "../lib/export/publish.ts";
import { prepareCorpus } from "../lib/io/prepare.ts";
import { type ExampleBatch, readExamples, type ReadOptions } from "../lib/io/read.ts";
import { readVocab } from "../lib/io/vocab.ts";

async function collect(paths: string | string[], opts: ReadOptions): Promise<ExampleBatch[]> {
  const out: ExampleBatch[] = [];
  for await (const b of readExamples(paths, opts)) out.push(b);
  return out;
}

const plain = (b: ExampleBatch) => ({
  in: [Array.from(b.inputs.offsets), Array.from(b.inputs.indices), Array.from(b.inputs.values)],
  t: [Array.from(b.targets.offsets), Array.from(b.targets.indices), Array.from(b.targets.values)],
  epoch: b.epoch,
  size: b.size,
});

/** rows: [input ids, target ids, target weights]; written by apache-arrow's own writer. */
function foreignTable(
  rows: [number[], number[], number[]][],
  types: { ids?: "int32" | "int64"; large?: boolean; f64?: boolean; idsType?: arrow.DataType } = {},
): arrow.Table {
  const idT = types.idsType ?? (types.ids === "int64" ? new arrow.Int64() : new arrow.Int32());
  const vT = types.f64 ? new arrow.Float64() : new arrow.Float32();
  const listOf = (t: arrow.DataType) =>
    types.large
      ? new arrow.LargeList(new arrow.Field("item", t, true))
      : new arrow.List(new arrow.Field("item", t, true));
  const conv = (xs: number[]) => (arrow.DataType.isInt(idT) && idT.bitWidth === 64 ? xs.map(BigInt) : xs);
  return new arrow.Table({
    input: arrow.vectorFromArray(rows.map((r) => conv(r[0])), listOf(idT)),
    target_index: arrow.vectorFromArray(rows.map((r) => conv(r[1])), listOf(idT)),
    target_value: arrow.vectorFromArray(rows.map((r) => r[2]), listOf(vT)),
  } as never);
}

const ROWS: [number[], number[], number[]][] = [
  [[1, 2], [3], [1]],
  [[4], [5, 6, 7], [0.5, 0.25, 1]],
  [[], [0], [2]],
];

Deno.test("files from apache-arrow's writer (int64 ids, large_list, float64) are read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const t = foreignTable(ROWS, { ids: "int64", large: true, f64: true });
    assert.ok(arrow.DataType.isLargeList(t.schema.fields[0].type));
    await Deno.writeFile(`${dir}/x.arrow`, arrow.tableToIPC(t, "stream"));
    await Deno.writeFile(`${dir}/y.feather`, arrow.tableToIPC(t, "file"));
    for (const f of ["x.arrow", "y.feather"]) {
      const [b] = await collect(`${dir}/${f}`, { batchSize: 10, vocabSize: 8 });
      assert.deepEqual(plain(b), {
        in: [[0, 2, 3, 3], [1, 2, 4], [1, 1, 1]],
        t: [[0, 1, 4, 5], [3, 5, 6, 7, 0], [1, 0.5, 0.25, 1, 2]],
        epoch: 0,
        size: 3,
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("files from parquet-wasm's writer (int64 ids, large_list, zstd) are read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const t = foreignTable(ROWS, { ids: "int64", large: true });
    const props = new pq.WriterPropertiesBuilder().setCompression(pq.Compression.ZSTD).setMaxRowGroupSize(2)
      .build();
    await Deno.writeFile(
      `${dir}/x.parquet`,
      pq.writeParquet(pq.Table.fromIPCStream(arrow.tableToIPC(t, "stream")), props),
    );
    const batches = await collect(dir, { batchSize: 2 });
    assert.deepEqual(batches.map((b) => b.size), [2, 1]);
    assert.deepEqual(Array.from(batches[0].targets.indices), [3, 5, 6, 7]);
    assert.deepEqual(Array.from(batches[1].targets.values), [2]);
    assert.deepEqual(Array.from(batches[0].inputs.indices), [1, 2, 4]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const format of ["arrow", "parquet"] as const) {
  Deno.test(`resume from a saved position yields exactly the remaining batches (${format}, shuffled, 2 epochs)`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      await prepareCorpus({
        synthetic: { vocabSize: 300, tokens: 3000, seed: 2 },
        outDir: dir,
        mode: "skipgram",
        window: 2,
        minCount: 1,
        seed: 1,
        format,
        shardRows: 700,
        batchRows: 128,
      });
      const opts: ReadOptions = { batchSize: 37, shuffleBuffer: 250, seed: 11, epochs: 2 };
      const all = (await collect(dir, opts)).map(plain);
      const again = (await collect(dir, opts)).map(plain);
      assert.deepEqual(again, all, "same seed, same batches");
      const other = (await collect(dir, { ...opts, seed: 12 })).map(plain);
      assert.notDeepEqual(other, all);
      // every example appears once per epoch: the multiset of target rows is that of the unshuffled read
      const flat = (bs: ReturnType<typeof plain>[], e: number) =>
        bs.filter((b) => b.epoch === e).flatMap((b) => b.t[1]).sort();
      const unshuffled = (await collect(dir, { batchSize: 1000 })).map(plain);
      assert.deepEqual(flat(all, 0), flat(unshuffled, 0));
      assert.deepEqual(flat(all, 1), flat(unshuffled, 0));
      const withPos = await collect(dir, opts);
      for (const k of [0, 1, 5, withPos.length >> 1, withPos.length - 2, withPos.length - 1]) {
        const saved = JSON.parse(JSON.stringify(withPos[k].position));
        const rest = (await collect(dir, { ...opts, start: saved })).map(plain);
        assert.deepEqual(rest, all.slice(k + 1), `resume after batch ${k}`);
      }
      await assert.rejects(
        () => collect(dir, { ...opts, seed: 5, start: withPos[3].position }),
        (e: Error) => e instanceof UsageError && /seed was 11/.test(e.message),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

async function corpusDir(format: "arrow" | "parquet" = "arrow"): Promise<string> {
  const dir = await Deno.makeTempDir();
  await prepareCorpus({
    synthetic: { vocabSize: 50, tokens: 600, seed: 4 },
    outDir: dir,
    mode: "cbow",
    window: 2,
    minCount: 1,
    seed: 1,
    format,
    batchRows: 200,
  });
  return dir;
}

const isData = (re: RegExp) => (e: Error) => {
  assert.ok(e instanceof DataFormatError, `${e.name}: ${e.message}`);
  assert.match(e.message, re);
  return true;
};

Deno.test("error: truncated Arrow shard (mid-message, and at a message boundary); no garbage yielded", async () => {
  const dir = await corpusDir();
  try {
    const f = `${dir}/part-00000.arrow`;
    const bytes = await Deno.readFile(f);
    const good = await collect(f, { batchSize: 1000 });
    const rows = good.reduce((s, b) => s + b.size, 0);
    await Deno.writeFile(`${dir}/cut.arrow`, bytes.subarray(0, bytes.length - 8)); // no end-of-stream marker
    await assert.rejects(
      () => collect(`${dir}/cut.arrow`, { batchSize: 1000 }),
      isData(/cut\.arrow: shard 0: truncated Arrow IPC stream after record batch 2/),
    );
    await Deno.writeFile(`${dir}/half.arrow`, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const seen: ExampleBatch[] = [];
    await assert.rejects(async () => {
      for await (const b of readExamples(`${dir}/half.arrow`, { batchSize: 1 })) seen.push(b);
    }, isData(/half\.arrow: shard 0, record batch \d: truncated or corrupt shard \(Expected to read/));
    assert.equal(seen.length, 0, "no batch of a corrupt shard reached the trainer");
    assert.ok(rows > 400);
    // the manifest's row count catches a shard replaced by a shorter complete one (the shards above, which
    // it does not list, removed: the folder is refused while they are there)
    for (const n of ["cut.arrow", "half.arrow"]) await Deno.remove(`${dir}/${n}`);
    const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
    m.shards[0].rows += 1;
    m.rows += 1;
    await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(m));
    await assert.rejects(
      () => collect(dir, { batchSize: 1000 }),
      isData(/part-00000\.arrow: shard 0: holds \d+ rows but the manifest says \d+/),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("error: truncated or corrupt Parquet shard", async () => {
  const dir = await corpusDir("parquet");
  try {
    const bytes = await Deno.readFile(`${dir}/part-00000.parquet`);
    await Deno.writeFile(`${dir}/cut.parquet`, bytes.subarray(0, bytes.length - 100));
    await assert.rejects(
      () => collect(`${dir}/cut.parquet`, { batchSize: 10 }),
      isData(/cut\.parquet: shard 0, row group 0: truncated or corrupt shard \(no closing PAR1/),
    );
    const bad = bytes.slice();
    for (let i = 8; i < 200; i++) bad[i] ^= 0x5a; // scramble the first column chunk
    await Deno.writeFile(`${dir}/bad.parquet`, bad);
    await assert.rejects(
      () => collect(`${dir}/bad.parquet`, { batchSize: 10 }),
      isData(/bad\.parquet: shard 0, row group 0: truncated or corrupt shard/),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("error: wrong schema names the column and the type found", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const strings = new arrow.Table({
      input: arrow.vectorFromArray([[1]], new arrow.List(new arrow.Field("item", new arrow.Int32(), true))),
      target_index: arrow.vectorFromArray(
        [["a"]],
        new arrow.List(new arrow.Field("item", new arrow.Utf8(), true)),
      ),
      target_value: arrow.vectorFromArray(
        [[1]],
        new arrow.List(new arrow.Field("item", new arrow.Float32(), true)),
      ),
    } as never);
    await Deno.writeFile(`${dir}/s.arrow`, arrow.tableToIPC(strings, "stream"));
    await assert.rejects(
      () => collect(`${dir}/s.arrow`, { batchSize: 4 }),
      isData(
        /s\.arrow: shard 0: wrong schema: column "target_index" has type List<Utf8>.*expected list or large_list of int32 or int64/,
      ),
    );
    await Deno.writeFile(
      `${dir}/u.arrow`,
      arrow.tableToIPC(foreignTable(ROWS, { idsType: new arrow.Uint32() }), "stream"),
    );
    await assert.rejects(
      () => collect(`${dir}/u.arrow`, { batchSize: 4 }),
      isData(/column "input" has type List<Uint32>/),
    );
    const missing = new arrow.Table(
      {
        input: arrow.vectorFromArray([[1]], new arrow.List(new arrow.Field("item", new arrow.Int32(), true))),
      } as never,
    );
    await Deno.writeFile(`${dir}/m.arrow`, arrow.tableToIPC(missing, "stream"));
    await assert.rejects(
      () => collect(`${dir}/m.arrow`, { batchSize: 4 }),
      isData(/column "target_index" is missing \(found input: List<Int32>\)/),
    );
    const flat = new arrow.Table({
      input: arrow.vectorFromArray([1], new arrow.Int32()),
      target_index: arrow.vectorFromArray([1], new arrow.Int32()),
      target_value: arrow.vectorFromArray([1], new arrow.Float32()),
    } as never);
    await Deno.writeFile(`${dir}/f.arrow`, arrow.tableToIPC(flat, "stream"));
    await assert.rejects(
      () => collect(`${dir}/f.arrow`, { batchSize: 4 }),
      isData(/column "input" has type Int32; expected list or large_list/),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("error: id outside [0, vocab), NaN/Inf weights, nulls, mismatched lengths", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/a.arrow`, arrow.tableToIPC(foreignTable(ROWS), "stream"));
    await assert.rejects(
      () => collect(`${dir}/a.arrow`, { batchSize: 4, vocabSize: 6 }),
      isData(
        /a\.arrow: shard 0, record batch 0, row 1 \(row 1 of the file\): target_index\[1\] = 6 outside \[0, 6\)/,
      ),
    );
    const neg = ROWS.map((r) => [...r]) as typeof ROWS;
    neg[2] = [[-3], [0], [1]];
    await Deno.writeFile(
      `${dir}/n.arrow`,
      arrow.tableToIPC(foreignTable(neg, { ids: "int64", large: true }), "stream"),
    );
    await assert.rejects(
      () => collect(`${dir}/n.arrow`, { batchSize: 4 }),
      isData(/row 2 \(row 2 of the file\): input\[0\] = -3 outside \[0, 2\^31\)/),
    );
    for (const [bad, shown] of [[NaN, "NaN"], [Infinity, "Infinity"]] as const) {
      const rows = ROWS.map((r) => [...r]) as typeof ROWS;
      rows[1] = [[4], [5, 6, 7], [0.5, bad, 1]];
      await Deno.writeFile(`${dir}/w.arrow`, arrow.tableToIPC(foreignTable(rows, { f64: true }), "stream"));
      await assert.rejects(
        () => collect(`${dir}/w.arrow`, { batchSize: 4 }),
        isData(
          new RegExp(`row 1 \\(row 1 of the file\\): target_value\\[1\\] = ${shown}; weights must be finite`),
        ),
      );
    }
    const nulls = new arrow.Table({
      input: arrow.vectorFromArray(
        [[1], null],
        new arrow.List(new arrow.Field("item", new arrow.Int32(), true)),
      ),
      target_index: arrow.vectorFromArray(
        [[1], [2]],
        new arrow.List(new arrow.Field("item", new arrow.Int32(), true)),
      ),
      target_value: arrow.vectorFromArray(
        [[1], [1]],
        new arrow.List(new arrow.Field("item", new arrow.Float32(), true)),
      ),
    } as never);
    await Deno.writeFile(`${dir}/z.arrow`, arrow.tableToIPC(nulls, "stream"));
    await assert.rejects(
      () => collect(`${dir}/z.arrow`, { batchSize: 4 }),
      isData(/row 1 \(row 1 of the file\): column "input" has 1 null\(s\)/),
    );
    const uneven = ROWS.map((r) => [...r]) as typeof ROWS;
    uneven[0] = [[1], [3, 4], [1]];
    await Deno.writeFile(`${dir}/e.arrow`, arrow.tableToIPC(foreignTable(uneven), "stream"));
    await assert.rejects(
      () => collect(`${dir}/e.arrow`, { batchSize: 4 }),
      isData(/row 0 .*: target_index has 2 entries but target_value 1/),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("error: empty corpus, vocab.tsv that does not match the manifest", async () => {
  const dir = await corpusDir();
  try {
    const empty = foreignTable([]);
    await Deno.mkdir(`${dir}/e`);
    await Deno.writeFile(`${dir}/e/x.arrow`, arrow.tableToIPC(empty, "stream"));
    await assert.rejects(
      () => collect(`${dir}/e`, { batchSize: 4 }),
      isData(/x\.arrow: empty corpus: the shards hold no rows/),
    );
    await Deno.mkdir(`${dir}/none`);
    await assert.rejects(
      () => collect(`${dir}/none`, { batchSize: 4 }),
      isData(/none: empty corpus: no \.arrow or \.parquet shards found/),
    );
    // the corpus folder's manifest lists no shard of e/: the folder is refused while it is there
    await Deno.remove(`${dir}/e`, { recursive: true });
    const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
    await Deno.writeTextFile(`${dir}/vocab.tsv`, "extra\t1\n", { append: true });
    await assert.rejects(
      () => collect(dir, { batchSize: 4 }),
      isData(
        new RegExp(
          `vocab\\.tsv: vocabulary has ${
            m.vocabSize + 1
          } words but .*manifest\\.json says vocabSize = ${m.vocabSize}`,
        ),
      ),
    );
    await assert.rejects(
      () => readVocab(`${dir}/vocab.tsv`, { expectedSize: m.vocabSize }),
      isData(/vocabulary has \d+ words but the manifest says vocabSize/),
    );
    await Deno.writeTextFile(`${dir}/vocab.tsv`, "a\t1\nb\tx\n");
    await assert.rejects(
      () => readVocab(`${dir}/vocab.tsv`),
      isData(/vocab\.tsv: line 2: count "x" is not a non-negative integer/),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ids are checked against the manifest's vocabulary size; bad options are refused", async () => {
  const dir = await corpusDir();
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
    const V = m.vocabSize;
    m.vocabSize = 3;
    await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(m));
    const lines = (await Deno.readTextFile(`${dir}/vocab.tsv`)).split("\n").slice(0, 3).join("\n") + "\n";
    await Deno.writeTextFile(`${dir}/vocab.tsv`, lines);
    await assert.rejects(
      () => collect(dir, { batchSize: 4 }),
      isData(
        /part-00000\.arrow: shard 0, record batch 0, row \d+ .*outside \[0, 3\) \(the vocabulary size\)/,
      ),
    );
    assert.ok(V > 3);
    await assert.rejects(
      () => collect(dir, { batchSize: 0 }),
      (e: Error) => e instanceof UsageError && /batchSize must be an integer >= 1, got 0/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("breaking out early closes the shards (resource sanitizer); no .tmp files are left", async () => {
  for (const format of ["arrow", "parquet"] as const) {
    const dir = await corpusDir(format);
    try {
      for await (const b of readExamples(dir, { batchSize: 5, shuffleBuffer: 0 })) {
        assert.equal(b.size, 5);
        break;
      }
      const names: string[] = [];
      for await (const e of Deno.readDir(dir)) names.push(e.name);
      assert.deepEqual(names.sort(), ["manifest.json", `part-00000.${format}`, "vocab.tsv"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("error: a shard replaced while it is read (the same rows, another window) fails at its next open", async () => {
  const make = async (window: number) => {
    const dir = await Deno.makeTempDir();
    await prepareCorpus({
      synthetic: { vocabSize: 50, tokens: 600, seed: 4 },
      ...{ outDir: dir, mode: "skipgram", window, minCount: 1, seed: 1, format: "arrow" as const },
    });
    return dir;
  };
  const a = await make(3), b = await make(1);
  try {
    const name = "part-00000.arrow";
    const sizes = [(await Deno.stat(`${a}/${name}`)).size, (await Deno.stat(`${b}/${name}`)).size];
    assert.notEqual(sizes[0], sizes[1], "the other window gives another size");
    const batches: ExampleBatch[] = [];
    await assert.rejects(
      async () => {
        for await (
          const batch of readExamples(a, { batchSize: 64, shuffleBuffer: 1 << 16, seed: 1, epochs: 2 })
        ) {
          // a corpus job prepares the folder again while the first epoch is read
          if (batches.push(batch) === 1) await Deno.copyFile(`${b}/${name}`, `${a}/${name}`);
        }
      },
      isData(/part-00000\.arrow: shard 0: holds \d+ bytes but the manifest says \d+: replaced or truncated/),
    );
    assert.ok(batches.every((x) => x.epoch === 0), "nothing of the replaced shard was yielded");
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("error: a manifest listing a shard twice, or a file outside the corpus folder (absolute, ../)", async () => {
  const dir = await corpusDir();
  const other = await Deno.makeTempDir();
  try {
    const path = `${dir}/manifest.json`;
    const m = JSON.parse(await Deno.readTextFile(path));
    const first = m.shards[0];
    await Deno.copyFile(`${dir}/${first.file}`, `${other}/${first.file}`);
    const cases: [unknown[], RegExp][] = [
      [[...m.shards, first], /"shards\[1\]" names part-00000\.arrow, listed twice \(also shards\[0\]\)/],
      [[...m.shards, { ...first, file: `./${first.file}` }], /listed twice/],
      [
        [{ ...first, file: `${other}/${first.file}` }],
        /names \/.*part-00000\.arrow, a file outside the corpus folder/,
      ],
      [
        [{ ...first, file: `../${other.split("/").at(-1)}/${first.file}` }],
        /a file outside the corpus folder/,
      ],
    ];
    for (const [shards, re] of cases) {
      const rows = (shards as { rows: number }[]).reduce((s, x) => s + x.rows, 0);
      await Deno.writeTextFile(path, JSON.stringify({ ...m, shards, rows }));
      await assert.rejects(() => collect(dir, { batchSize: 64 }), isData(re));
      await assert.rejects(
        () => collect(dir, { batchSize: 64 }),
        isData(/manifest\.json: field "shards\[\d\]"/),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});

/** `s` as a regular expression matching it literally. */
const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

Deno.test("error: a shard its manifest does not list (stale part-NNNNN, any name by content, in a subfolder) is refused naming it and the manifest; other files are not", async () => {
  const dir = await corpusDir();
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
    const listed = `${dir}/${m.shards[0].file}`;
    const rows = async (path: string) =>
      (await collect(path, { batchSize: 1000 })).reduce((n, b) => n + b.size, 0);
    // what may lie beside the listed shards, no shard of the corpus: read as before
    await Deno.writeTextFile(`${dir}/README.md`, "how this corpus was made\n");
    await Deno.copyFile(listed, `${dir}/.part-00009.arrow`);
    await Deno.copyFile(listed, `${dir}/part-00009.arrow.tmp`);
    await Deno.copyFile(listed, `${dir}/_part-00009.arrow`);
    await Deno.mkdir(`${dir}/corpus.4242-0a1b2c3d.tmp`); // a corpus job at work: its shards are not the folder's yet
    await Deno.copyFile(listed, `${dir}/corpus.4242-0a1b2c3d.tmp/part-00000.arrow`);
    assert.equal(await rows(dir), m.rows);
    const cases: [string, () => Promise<void>][] = [
      // an earlier, larger corpus's shard left in the folder (named as the corpus job names them)
      ["part-00009.arrow", () => Deno.copyFile(listed, `${dir}/part-00009.arrow`)],
      // named as a draw's shard, even empty
      [
        "part-00001.draw01.parquet",
        () => Deno.writeFile(`${dir}/part-00001.draw01.parquet`, new Uint8Array()),
      ],
      // another name, an Arrow shard by its content (as a folder without a manifest tells shards)
      ["extra.bin", () => Deno.copyFile(listed, `${dir}/extra.bin`)],
      // a Parquet file in a subfolder (a folder without a manifest is read with its subfolders)
      ["more/x.snappy.parquet", async () => {
        await Deno.mkdir(`${dir}/more`);
        await Deno.writeTextFile(`${dir}/more/x.snappy.parquet`, "PAR1 and the rest of a Parquet file");
      }],
    ];
    for (const [name, add] of cases) {
      await add();
      // a file named as no shard is called what it is, found by its content (an exported vectors.parquet)
      const what = name.split("/").pop()!.startsWith("part-")
        ? "a shard"
        : "an Arrow/Parquet file \\(read as a shard by its content\\)";
      const why = new RegExp(
        `^${literal(`${dir}/${name}`)}: ${what} that ${
          literal(dir)
        }/manifest\\.json does not list, so it would ` +
          "not be trained on \\(left by an earlier corpus in this folder, or copied in by hand\\): move it out of " +
          "the folder to " +
          "train on the listed shards, or prepare the corpus again into a new folder \\(npx deno task corpus --out NEW",
      );
      // was: read without a word, the file left out (the rows of the listed shards only)
      await assert.rejects(() => rows(dir), isData(why), name);
      await assert.rejects(() => readManifest(dir), isData(why), name);
      // a caller that trains nothing on the folder, and a listed shard given as a file, read it as before
      assert.equal((await readManifest(dir, { unlisted: "ignore" })).rows, m.rows);
      assert.equal(await rows(listed), m.rows);
      await Deno.remove(`${dir}/${name.split("/")[0]}`, { recursive: true });
      assert.equal(await rows(dir), m.rows, `${name} removed: read again`);
    }
    // several: the first named, the others counted
    for (const n of ["part-00003.arrow", "part-00002.arrow"]) await Deno.copyFile(listed, `${dir}/${n}`);
    await assert.rejects(
      () => rows(dir),
      isData(
        /part-00002\.arrow: a shard that .* does not list \(and 1 more: part-00003\.arrow\), so they .*move them out/,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corpus folder holding another corpus or a published version in a subfolder (each with its own manifest.json) is read as its manifest lists it", async () => {
  const dir = await corpusDir();
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
    const rows = async (path: string) =>
      (await collect(path, { batchSize: 1000 })).reduce((n, b) => n + b.size, 0);
    // a smaller corpus prepared beside the data it was cut from (the corpus job keeps other files beside
    // its corpus: corpus --out DIR/small, or DIR prepared again with DIR/small in it)
    await prepareCorpus({
      synthetic: { vocabSize: 20, tokens: 200, seed: 5 },
      outDir: `${dir}/small`,
      mode: "cbow",
      window: 2,
      minCount: 1,
      seed: 1,
    });
    // vectors published next to the corpus they were trained on (input.arrow, input.parquet)
    await publishEmbeddings({
      outRoot: `${dir}/embeddings`,
      words: ["a", "b"],
      input: Float32Array.of(1, 2, 3, 4),
      d: 2,
      formats: ["vec", "arrow", "parquet"],
      manifest: {},
    });
    // neither is a shard of this corpus left out: each is read through its own manifest.json (it was
    // refused: "DIR/small/part-00000.arrow: a shard that DIR/manifest.json does not list …")
    assert.equal((await readManifest(dir)).rows, m.rows);
    assert.equal(await rows(dir), m.rows);
    assert.ok((await rows(`${dir}/small`)) > 0);
    // a subfolder of shards without a manifest is still refused
    await Deno.mkdir(`${dir}/more`);
    await Deno.copyFile(`${dir}/${m.shards[0].file}`, `${dir}/more/x.arrow`);
    await assert.rejects(
      () => rows(dir),
      isData(
        /more\/x\.arrow: an Arrow\/Parquet file \(read as a shard by its content\) that .* does not list/,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("error: a shard its manifest lists that is missing is refused naming it, the folder and what to do", async () => {
  const dir = await corpusDir();
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
    await Deno.remove(`${dir}/${m.shards[0].file}`);
    await assert.rejects(
      () => collect(dir, { batchSize: 64 }),
      isData(
        new RegExp(
          `manifest\\.json: field "shards\\[0\\]" names ${
            literal(m.shards[0].file)
          }, which does not exist in ` +
            `${literal(dir)}: the corpus is incomplete; restore the file, or prepare the corpus again`,
        ),
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
