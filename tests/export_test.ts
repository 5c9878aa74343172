import assert from "node:assert/strict";
import { join } from "node:path";
import * as arrow from "apache-arrow";
import * as pq from "parquet-wasm";
import { DataFormatError, UsageError } from "../lib/core/errors.ts";
import { readArrowEmbeddings, writeArrowEmbeddings } from "../lib/export/arrow.ts";
import { readParquetEmbeddings, writeParquetEmbeddings } from "../lib/export/parquet.ts";
import {
  latestVersionDir,
  publishEmbeddings,
  readEmbeddingsManifest,
  sha256File,
} from "../lib/export/publish.ts";
import { readEmbeddings } from "../lib/export/read.ts";
import {
  formatFloat32,
  readWord2VecBinary,
  readWord2VecText,
  writeWord2VecBinary,
  writeWord2VecText,
} from "../lib/export/word2vec.ts";

/** Deterministic awkward floats: tiny, huge, negative zero, subnormal-ish, plus a seeded spread. */
function sample(V: number, d: number, seed = 7): { words: string[]; vectors: Float32Array } {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const vectors = new Float32Array(V * d);
  for (let i = 0; i < vectors.length; i++) vectors[i] = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 12 - 8);
  vectors[0] = -0;
  vectors[1] = 3.4e38;
  vectors[2] = 1.5e-42;
  vectors[3] = Math.fround(0.1);
  const words = Array.from(
    { length: V },
    (_, i) => ["the", "café", "naïve", "日本", "x_y", "Ünïcode"][i % 6] + i,
  );
  return { words, vectors };
}

function assertSameBits(a: Float32Array, b: Float32Array) {
  assert.equal(a.length, b.length);
  assert.deepEqual(
    new Uint32Array(a.buffer, a.byteOffset, a.length),
    new Uint32Array(b.buffer, b.byteOffset, b.length),
  );
}

Deno.test("formatFloat32 writes the shortest string that reads back to the same float32", () => {
  assert.equal(formatFloat32(Math.fround(0.1)), "0.1");
  assert.equal(formatFloat32(-0), "-0");
  assert.equal(formatFloat32(1), "1");
  const { vectors } = sample(50, 20);
  for (const x of vectors) {
    const s = formatFloat32(x);
    assert.ok(Object.is(Math.fround(Number(s)), x), `${x} -> ${s}`);
    assert.ok(s.replace(/^-/, "").replace(/e.*/, "").replace(".", "").replace(/^0+/, "").length <= 9, s);
  }
});

Deno.test("word2vec text, binary, Arrow and Parquet files read back bit-exact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const V = 257, d = 13;
    const { words, vectors } = sample(V, d);
    const e = { words, vectors, d };
    await writeWord2VecText(join(dir, "e.vec"), e);
    await writeWord2VecBinary(join(dir, "e.bin"), e);
    await writeArrowEmbeddings(join(dir, "e.arrow"), e);
    await writeParquetEmbeddings(join(dir, "e.parquet"), e);
    const header = (await Deno.readTextFile(join(dir, "e.vec"))).split("\n")[0];
    assert.equal(header, `${V} ${d}`);
    const binBytes = await Deno.readFile(join(dir, "e.bin"));
    assert.equal(new TextDecoder().decode(binBytes.subarray(0, binBytes.indexOf(10))), `${V} ${d}`);
    // first row: "the0 " then d little-endian floats then "\n"
    const off = binBytes.indexOf(10) + 1 + "the0 ".length;
    assert.equal(new DataView(binBytes.buffer).getFloat32(off + 4 * 3, true), Math.fround(0.1));
    assert.equal(binBytes[off + 4 * d], 10);
    for (
      const [name, r] of [
        ["vec", await readWord2VecText(join(dir, "e.vec"))],
        ["bin", await readWord2VecBinary(join(dir, "e.bin"))],
        ["arrow", await readArrowEmbeddings(join(dir, "e.arrow"))],
        ["parquet", await readParquetEmbeddings(join(dir, "e.parquet"))],
        ["auto parquet", await readEmbeddings(join(dir, "e.parquet"))],
      ] as const
    ) {
      assert.equal(r.d, d, name);
      assert.deepEqual(r.words, words, name);
      assertSameBits(r.vectors, vectors);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Arrow and Parquet files have the documented schema, read by the libraries directly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const d = 4;
    const { words, vectors } = sample(10, d);
    await writeArrowEmbeddings(join(dir, "e.arrow"), { words, vectors, d });
    await writeParquetEmbeddings(join(dir, "e.parquet"), { words, vectors, d });
    const a = arrow.tableFromIPC(await Deno.readFile(join(dir, "e.arrow")));
    const p = arrow.tableFromIPC(pq.readParquet(await Deno.readFile(join(dir, "e.parquet"))).intoIPCStream());
    for (const t of [a, p]) {
      assert.equal(t.numRows, 10);
      const [w, v] = t.schema.fields;
      assert.equal(w.name, "word");
      assert.ok(arrow.DataType.isUtf8(w.type) || arrow.DataType.isLargeUtf8(w.type));
      assert.equal(v.name, "vector");
      assert.ok(arrow.DataType.isFixedSizeList(v.type));
      assert.equal((v.type as arrow.FixedSizeList).listSize, d);
      assert.equal(String((v.type as arrow.FixedSizeList).children[0].type), "Float32");
      assert.equal(t.getChild("word")!.get(3), words[3]);
      assert.deepEqual(
        Array.from(t.getChild("vector")!.get(3)!.toArray() as Float32Array),
        Array.from(vectors.subarray(12, 16)),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad word2vec files (and a repeated word) are refused naming the file and line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string, string, RegExp][] = [
      ["header.vec", "two 3\na 1 2 3\n", /line 1: expected a header/],
      [
        "short.vec",
        "2 3\na 1 2 3\nb 1 2\n",
        /line 3: expected a word and 3 values, got 2 values \(short row\)/,
      ],
      ["nan.vec", "2 3\na 1 2 3\nb 1 NaN 3\n", /line 3 \("b"\): value 2 is "NaN"/],
      ["junk.vec", "1 2\na 1 x\n", /line 2 \("a"\): value 2 is "x"/],
      ["fewer.vec", "3 2\na 1 2\nb 1 2\n", /header says 3 rows but the file has 2/],
      ["more.vec", "1 2\na 1 2\nb 1 2\n", /line 3: more rows than the header's V = 1/],
      ["empty.vec", "", /empty file/],
    ];
    for (const [name, text, re] of cases) {
      const p = join(dir, name);
      await Deno.writeTextFile(p, text);
      await assert.rejects(readWord2VecText(p), (e: unknown) => {
        assert.ok(e instanceof DataFormatError, name);
        assert.ok(e.message.startsWith(p), e.message);
        assert.match(e.message, re);
        return true;
      });
    }
    // binary: truncated row and NaN
    const good = join(dir, "g.bin");
    await writeWord2VecBinary(good, { words: ["a", "b"], vectors: Float32Array.of(1, 2, 3, 4), d: 2 });
    const bytes = await Deno.readFile(good);
    await Deno.writeFile(join(dir, "t.bin"), bytes.subarray(0, bytes.length - 3));
    await assert.rejects(
      readWord2VecBinary(join(dir, "t.bin")),
      /t\.bin: row 2 of 2 \("b"\): needs 8 bytes of float32, only 6 left/,
    );
    const nan = bytes.slice();
    new DataView(nan.buffer).setFloat32(nan.indexOf(10) + 3, NaN, true);
    await Deno.writeFile(join(dir, "n.bin"), nan);
    await assert.rejects(
      readWord2VecBinary(join(dir, "n.bin")),
      /n\.bin: row 1 of 2 \("a"\): value 1 is NaN/,
    );
    await Deno.writeTextFile(join(dir, "h.bin"), "abc\n");
    await assert.rejects(readWord2VecBinary(join(dir, "h.bin")), DataFormatError);
    // a word twice (any format, through readEmbeddings: eval and export --vectors) is refused
    await Deno.writeTextFile(join(dir, "dup.vec"), "3 2\na 1 2\nb 1 2\na 1 3\n");
    await assert.rejects(readEmbeddings(join(dir, "dup.vec")), /dup\.vec: row 3: word "a" repeats row 1/);
    await writeWord2VecBinary(join(dir, "dup.bin"), {
      words: ["a", "a"],
      vectors: Float32Array.of(1, 2, 3, 4),
      d: 2,
    });
    await assert.rejects(readEmbeddings(join(dir, "dup.bin")), DataFormatError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writers refuse words with whitespace and non-finite values; nothing is left behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      writeWord2VecText(join(dir, "w.vec"), { words: ["a b"], vectors: Float32Array.of(1), d: 1 }),
      /row 1: word "a b" contains whitespace, which word2vec files cannot hold; publish with --formats arrow,parquet/,
    );
    await assert.rejects(
      writeWord2VecBinary(join(dir, "w.bin"), { words: ["a"], vectors: Float32Array.of(Infinity), d: 1 }),
      UsageError,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("publishEmbeddings writes a complete version with a manifest and moves latest", async () => {
  const root = await Deno.makeTempDir();
  try {
    const d = 3;
    const { words, vectors } = sample(20, d);
    const output = vectors.map((x) => x * 0.5 + 1);
    const r1 = await publishEmbeddings({
      outRoot: root,
      words,
      input: vectors,
      output,
      d,
      manifest: { corpus: "toy", metrics: { rho: 0.5 }, config: { dim: d } },
      version: "v1",
    });
    assert.equal(r1.versionDir, join(root, "versions", "v1"));
    assert.equal(await latestVersionDir(root), join(root, "versions", "v1"));
    assert.equal(await Deno.readLink(join(root, "latest")), join("versions", "v1"));
    const m = await readEmbeddingsManifest(join(root, "latest"));
    assert.equal(m.dims, d);
    assert.equal(m.vocabularySize, 20);
    assert.equal(m.corpus, "toy");
    assert.deepEqual(m.metrics, { rho: 0.5 });
    assert.deepEqual(m.config, { dim: d });
    assert.ok(!Number.isNaN(Date.parse(m.date as string)));
    const files = m.files as { name: string; bytes: number; sha256: string }[];
    assert.deepEqual(files.map((f) => f.name), [
      "input.vec",
      "input.bin",
      "input.arrow",
      "input.parquet",
      "output.vec",
      "output.bin",
      "output.arrow",
      "output.parquet",
    ]);
    for (const f of files) {
      const p = join(r1.versionDir, f.name);
      assert.equal((await Deno.stat(p)).size, f.bytes);
      assert.equal(await sha256File(p), f.sha256);
      const back = await readEmbeddings(p);
      assertSameBits(back.vectors, f.name.startsWith("input") ? vectors : output);
    }
    assert.deepEqual(r1.files.map((f) => f.slice(r1.versionDir.length + 1)), [
      ...files.map((f) => f.name),
      "manifest.json",
    ]);
    const r2 = await publishEmbeddings({
      outRoot: root,
      words,
      input: output,
      d,
      formats: ["bin"],
      manifest: {},
    });
    assert.match(r2.version, /^\d{8}T\d{6}Z-[0-9a-f]{4}$/);
    assert.equal(await latestVersionDir(root), r2.versionDir);
    assertSameBits((await readEmbeddings(join(root, "latest", "input.bin"))).vectors, output);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a failing publish leaves latest on the previous version and no temporary folder", async () => {
  const root = await Deno.makeTempDir();
  try {
    await publishEmbeddings({
      outRoot: root,
      words: ["a", "b"],
      input: Float32Array.of(1, 2),
      d: 1,
      manifest: {},
      version: "old",
    });
    // the vec writer fails after the arrow file of the same version was written
    await assert.rejects(
      publishEmbeddings({
        outRoot: root,
        words: ["a", "b c"],
        input: Float32Array.of(3, 4),
        d: 1,
        formats: ["arrow", "vec"],
        manifest: {},
        version: "new",
      }),
      DataFormatError,
    );
    // a version name that exists is refused, not overwritten
    await assert.rejects(
      publishEmbeddings({
        outRoot: root,
        words: ["a"],
        input: Float32Array.of(9),
        d: 1,
        manifest: {},
        version: "old",
      }),
      /already exists/,
    );
    await assert.rejects(
      publishEmbeddings({ outRoot: root, words: ["a"], input: Float32Array.of(9), d: 2, manifest: {} }),
      /needs 2 floats, got 1/,
    );
    assert.equal(await latestVersionDir(root), join(root, "versions", "old"));
    assert.deepEqual([...Deno.readDirSync(join(root, "versions"))].map((e) => e.name), ["old"]);
    const back = await readWord2VecText(join(root, "latest", "input.vec"));
    assert.deepEqual(Array.from(back.vectors), [1, 2]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

async function exportCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../pipelines/export.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  };
}

Deno.test("deno task export: a checkpoint's input and output rows, a vector file converted, and every CLI error", async () => {
  const { resolveConfig } = await import("../lib/train/config.ts");
  const { Trainer } = await import("../lib/train/trainer.ts");
  const run = await Deno.makeTempDir();
  try {
    const words = ["the", "cat", "sat", "on"];
    const config = resolveConfig({ dim: 5, backend: "js", out: run, minCount: 1, validation: 0 });
    const t = await Trainer.create({ config, vocab: { words, counts: [4, 3, 2, 1] }, log: () => {} });
    const ckpt = await t.saveCheckpoint(join(run, "checkpoints"));
    const want = await t.embeddings({ output: true });
    t.close();
    const ok = await exportCli([
      "--checkpoint",
      run,
      "--formats",
      "vec,bin,arrow,parquet",
      "--output-rows",
      "--backend",
      "js",
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const res = JSON.parse(ok.stdout.trim().split("\n").pop()!);
    assert.equal(res.event, "published");
    assert.equal(await latestVersionDir(join(run, "embeddings")), res.dir);
    for (const fmt of ["vec", "bin", "arrow", "parquet"]) {
      const input = await readEmbeddings(join(res.dir, `input.${fmt}`));
      assert.deepEqual(input.words, words);
      assertSameBits(input.vectors, want.input);
      const output = await readEmbeddings(join(res.dir, `output.${fmt}`));
      assert.equal(output.d, want.dOut);
      assertSameBits(output.vectors, want.output!);
    }
    const m = await readEmbeddingsManifest(res.dir);
    assert.equal((m.source as { checkpoint: string }).checkpoint, ckpt);
    assert.equal(m.dims, 5);
    // convert the published .bin into Arrow under another root
    const conv = await exportCli([
      "--vectors",
      join(res.dir, "input.bin"),
      "--out",
      join(run, "converted"),
      "--formats",
      "arrow",
    ]);
    assert.equal(conv.code, 0, conv.stderr);
    assertSameBits(
      (await readEmbeddings(join(run, "converted", "latest", "input.arrow"))).vectors,
      want.input,
    );
    // errors
    await Deno.writeTextFile(join(run, "bad.vec"), "2 2\na 1 2\nb 1\n");
    await Deno.mkdir(join(run, "empty"));
    await Deno.writeTextFile(join(run, "ckpt-000000000009.fock"), "FOCKPT01 garbage");
    const help = await exportCli(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--formats <value>.*\(default: vec,bin,arrow,parquet\)/);
    const cases: [string[], number, RegExp][] = [
      [["--nope"], 2, /Unknown option '--nope'/],
      [[], 2, /exactly one of --checkpoint/],
      [["--checkpoint", run, "--formats", "xml"], 2, /unknown format "xml"/],
      [["--vectors", join(run, "bad.vec")], 2, /--out ROOT is required/],
      [
        ["--vectors", join(run, "bad.vec"), "--out", join(run, "o")],
        5,
        /bad\.vec: line 3: expected a word and 2 values/,
      ],
      [
        ["--vectors", join(run, "bad.vec"), "--out", join(run, "o"), "--output-rows"],
        2,
        /--output-rows needs --checkpoint/,
      ],
      [["--checkpoint", join(run, "empty")], 4, /no ckpt-\*\.fock/],
      [["--checkpoint", join(run, "missing")], 4, /no such file or folder/],
      [
        ["--checkpoint", join(run, "ckpt-000000000009.fock"), "--out", join(run, "o")],
        4,
        /unusable checkpoint/,
      ],
    ];
    for (const [args, code, re] of cases) {
      const r = await exportCli(args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.match(lines[lines.length - 1], re);
    }
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});
