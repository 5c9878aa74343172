import assert from "node:assert/strict";
import { publishOneWord } from "./publish_fixture.ts";
import { join } from "node:path";
import * as arrow from "apache-arrow";
import * as pq from "parquet-wasm";
import { DataFormatError, UsageError } from "../lib/core/errors.ts";
import { EXIT } from "../lib/core/exit_codes.ts";
import { embeddingsToArrowTable, readArrowEmbeddings, writeArrowEmbeddings } from "../lib/export/arrow.ts";
import { readParquetEmbeddings, writeParquetEmbeddings } from "../lib/export/parquet.ts";
import {
  latestVersionDir,
  publishEmbeddings,
  readEmbeddingsManifest,
  removeStaleTemps,
  sha256File,
} from "../lib/export/publish.ts";
import { parseFormats, readEmbeddings } from "../lib/export/read.ts";
import {
  formatFloat32,
  readWord2VecBinary,
  readWord2VecText,
  writeWord2VecBinary,
  writeWord2VecText,
} from "../lib/export/word2vec.ts";
import { pipeline, type Run, runCommand } from "./child.ts";

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

/** Runs `fn` with a new temporary folder, removed after it (also when it throws). */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
  await inTempDir(async (dir) => {
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
  });
});

Deno.test("Arrow and Parquet files have the documented schema, read by the libraries directly", async () => {
  await inTempDir(async (dir) => {
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
  });
});

Deno.test("bad word2vec files (and a repeated word) are refused naming the file and line", async () => {
  await inTempDir(async (dir) => {
    const cases: [string, string, RegExp][] = [
      ["header.vec", "two 3\na 1 2 3\n", /line 1: expected a header/],
      // GloVe's files have no header: the error says so and what to add
      [
        "glove.txt",
        "the 0.5 -1 2e-3\ncat 1 2 3\n",
        /line 1: expected a header "V d" \(two integers\), got "the 0\.5 -1 2e-3": a word and 3 values, as in a file without word2vec's header \(GloVe's\); put a line "<rows> 3" first$/,
      ],
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
      /t\.bin: header says 2 rows of 2 float32, which need at least 24 bytes; the file has 23 \(truncated/,
    );
    // long words pass that check: a row cut short is still found where it ends
    await writeWord2VecBinary(good, {
      words: ["a", "bbbbbbbbbb"],
      vectors: Float32Array.of(1, 2, 3, 4),
      d: 2,
    });
    const long = await Deno.readFile(good);
    await Deno.writeFile(join(dir, "t.bin"), long.subarray(0, long.length - 7));
    await assert.rejects(
      readWord2VecBinary(join(dir, "t.bin")),
      /t\.bin: row 2 of 2 \("bbbbbbbbbb"\): needs 8 bytes of float32, only 2 left \(short row\)/,
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
  });
});

Deno.test("writers refuse words with whitespace and non-finite values; nothing is left behind", async () => {
  await inTempDir(async (dir) => {
    await assert.rejects(
      writeWord2VecText(join(dir, "w.vec"), { words: ["a b"], vectors: Float32Array.of(1), d: 1 }),
      /row 1: word "a b" contains a space or a line break, which word2vec files cannot hold; publish with --formats arrow,parquet/,
    );
    for (const w of ["", "a\nb", "a\r"]) {
      await assert.rejects(
        writeWord2VecBinary(join(dir, "w.bin"), { words: [w], vectors: Float32Array.of(1), d: 1 }),
        DataFormatError,
        JSON.stringify(w),
      );
    }
    await assert.rejects(
      writeWord2VecBinary(join(dir, "w.bin"), { words: ["a"], vectors: Float32Array.of(Infinity), d: 1 }),
      UsageError,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

// Issue 18 follow-up (2026-12-06): the Arrow file was joined into one new array (tableToIPC) before it was
// written; its pieces are written as they are now, the same bytes.
Deno.test("writeArrowEmbeddings writes Arrow's file piece by piece: the bytes of tableToIPC, nothing joined first", async () => {
  await inTempDir(async (dir) => {
    const d = 5;
    const { words, vectors } = sample(30, d);
    const expected = arrow.tableToIPC(embeddingsToArrowTable({ words, vectors, d }), "file");
    const toUint8Array = arrow.RecordBatchFileWriter.prototype.toUint8Array;
    arrow.RecordBatchFileWriter.prototype.toUint8Array = () => {
      throw new Error("the file was joined into one array before it was written");
    };
    try {
      await writeArrowEmbeddings(join(dir, "e.arrow"), { words, vectors, d });
    } finally {
      arrow.RecordBatchFileWriter.prototype.toUint8Array = toUint8Array;
    }
    assert.deepEqual(await Deno.readFile(join(dir, "e.arrow")), expected);
  });
});

// Issue 18 follow-up (2026-12-06): each file's sha256 was taken by reading the file back after writing it
// (0.86 s of a 215 MB .vec on the project's VMs, where every chunk read is new memory); the bytes are hashed
// as they are written now (lib/core/atomic.ts writeFileAtomic's digest).
Deno.test("publishEmbeddings hashes each file as it writes it: no file of the version is read back", async () => {
  await inTempDir(async (root) => {
    const d = 3;
    const { words, vectors } = sample(20, d);
    const open = Deno.open;
    const read: string[] = [];
    Deno.open = (path, options) => {
      // a file of the version (syncDir opens its folders to fsync them)
      if (options?.read && /\.(vec|bin|arrow|parquet|json)$/.test(String(path))) read.push(String(path));
      return open(path, options);
    };
    let r;
    try {
      r = await publishEmbeddings({
        outRoot: root,
        words,
        input: vectors,
        output: vectors.map((x) => -x),
        d,
        evaluation: { rho: 0.5 },
        manifest: {},
        version: "v1",
      });
    } finally {
      Deno.open = open;
    }
    assert.deepEqual(read, []);
    const m = await readEmbeddingsManifest(r.versionDir);
    const entries = [
      ...(m.files as { name: string; sha256: string }[]),
      m.evaluation as { name: string; sha256: string },
    ];
    assert.equal(entries.length, 9);
    for (const f of entries) assert.equal(await sha256File(join(r.versionDir, f.name)), f.sha256, f.name);
  });
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

function exportCli(args: string[]): Promise<Run> {
  return runCommand(Deno.execPath(), ["run", "-A", pipeline("export"), ...args]);
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
    // --export-output, as train calls it: alone publishes the output rows, false does not
    for (
      const [args, rows] of [[["--export-output"], true], [["--export-output", "false"], false]] as const
    ) {
      const r = await exportCli(["--checkpoint", run, "--formats", "vec", "--backend", "js", ...args]);
      assert.equal(r.code, 0, r.stderr);
      const dir = JSON.parse(r.stdout.trim().split("\n").pop()!).dir;
      assert.equal(
        await Deno.stat(join(dir, "output.vec")).then(() => true, () => false),
        rows,
        args.join(" "),
      );
    }
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
      [
        ["--vectors", join(run, "bad.vec"), "--out", join(run, "o"), "--export-output"],
        2,
        /--export-output needs --checkpoint/,
      ],
      // train's name and its older one here, both given
      [
        ["--checkpoint", run, "--export-output", "--output-rows"],
        2,
        /--output-rows is --export-output under its older name/,
      ],
      [["--checkpoint", run, "--export-output", "maybe"], 2, /--export-output must be true or false/],
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

Deno.test("word2vec readers: float32 overflow, impossible headers, non-decimal numbers and a text file named .bin are bad data naming the file and line", async () => {
  await inTempDir(async (dir) => {
    const vec: [string, string, RegExp][] = [
      // 1e40 is a finite double but Infinity as the float32 it is stored as
      ["big.vec", "2 2\nthe 1e40 2\ncat 1 2\n", /line 2 \("the"\): value 1 is 1e40, beyond float32's range/],
      ["neg.vec", "1 2\nthe 1 -3.5e38\n", /line 2 \("the"\): value 2 is -3\.5e38, beyond float32's range/],
      ["hex.vec", "1 2\nthe 0x10 2\n", /line 2 \("the"\): value 1 is "0x10", not a decimal number/],
      ["binlit.vec", "1 2\nthe 1 0b1\n", /value 2 is "0b1", not a decimal number/],
      ["inf.vec", "1 2\nthe Infinity 1\n", /value 1 is "Infinity", not a decimal number/],
      [
        "space.vec",
        "1 2\nthe  1 2\n",
        /line 2: expected a word and 2 values, got 3 values \(values are separated by single spaces\)/,
      ],
      // headers whose rows could not fit: refused as data (they were an internal error: Invalid array length)
      ["hugeV.vec", "99999999999 300\nthe 1 2\n", /line 2: expected a word and 300 values/],
      ["hugeV2.vec", "99999999999 2\nthe 1 2\n", /header says 99999999999 rows but the file has 1/],
      ["hugeD.vec", "3 999999999999\nthe 1 2\n", /line 2: expected a word and 999999999999 values/],
      ["unsafe.vec", "99999999999999999999 2\n", /line 1: V = 99999999999999999999 rows is too large/],
    ];
    for (const [name, text, re] of vec) {
      const p = join(dir, name);
      await Deno.writeTextFile(p, text);
      await assert.rejects(readEmbeddings(p), (e: unknown) => {
        assert.ok(e instanceof DataFormatError, `${name}: ${e}`);
        assert.ok(e.message.startsWith(p), e.message);
        assert.match(e.message, re, name);
        return true;
      });
    }
    // .bin: V·(4d + a word and its space) is compared with the file's size before anything is allocated
    const bin: [string, string | Uint8Array, RegExp][] = [
      [
        "hugeV.bin",
        "99999999999 300\nthe ",
        /header says 99999999999 rows of 300 float32, which need at least/,
      ],
      ["hugeD.bin", "3 999999999999\nthe ", /header says 3 rows of 999999999999 float32/],
      // a word2vec text file named .bin: its rows are read as float32 garbage, then bytes are left over
      [
        "text.bin",
        "2 3\nthe 0.123456 0.234567 0.345678\ncat 0.456789 0.567891 0.678912\n",
        /bytes left after the header's 2 rows .*not a word2vec binary file of that header \(a text \.vec named \.bin\?\)/,
      ],
      [
        "short.bin",
        "2 3\nthe 0 0 0\ncat 0 0 0\n",
        /need at least 32 bytes; the file has 24 \(truncated, or not a word2vec binary file\)/,
      ],
      // the model fastText writes beside its .vec (fastText 0.9.2: magic 793712314, version 12, its args);
      // the header error quoted its bytes
      [
        "model.bin",
        new Uint8Array([0xba, 0x16, 0x4f, 0x2f, 12, 0, 0, 0, 200, 0, 0, 0, 5, 0, 0, 0, 0x0a, 1, 0, 0, 0]),
        /: a fastText model \(fastText's own \.bin format\), not a word2vec binary file: give the \.vec file/,
      ],
    ];
    for (const [name, content, re] of bin) {
      const p = join(dir, name);
      if (typeof content === "string") await Deno.writeTextFile(p, content);
      else await Deno.writeFile(p, content);
      await assert.rejects(readEmbeddings(p), (e: unknown) => {
        assert.ok(e instanceof DataFormatError, `${name}: ${e}`);
        assert.match(e.message, re, name);
        return true;
      });
    }
  });
});

Deno.test("word2vec readers split rows as gensim and word2vec do: on ASCII spaces, so gensim's own files read back", async () => {
  await inTempDir(async (dir) => {
    // the bytes gensim 4.2 writes (KeyedVectors.save_word2vec_format) for the words "a\u00a0b", "c\td", "e"
    // and vectors [1,2], [3,4], [5,6]; gensim reads both back with those words
    await Deno.writeTextFile(join(dir, "g.vec"), "3 2\na\u00a0b 1.0 2.0\nc\td 3.0 4.0\ne 5.0 6.0\n");
    const f = (...x: number[]) => new Uint8Array(Float32Array.of(...x).buffer);
    const enc = new TextEncoder();
    await Deno.writeFile(
      join(dir, "g.bin"),
      new Uint8Array([
        ...enc.encode("3 2\na\u00a0b "),
        ...f(1, 2),
        ...enc.encode("c\td "),
        ...f(3, 4),
        ...enc.encode("e "),
        ...f(5, 6),
      ]),
    );
    for (const name of ["g.vec", "g.bin"]) {
      const e = await readEmbeddings(join(dir, name));
      assert.deepEqual(e.words, ["a\u00a0b", "c\td", "e"], name);
      assert.deepEqual(Array.from(e.vectors), [1, 2, 3, 4, 5, 6], name);
    }
    // reading is gensim's, writing is every client's: "c\td" is refused by our word2vec writers (fastText and
    // word2vec's C tools split a row on a tab: every later row misread), the no-break space is written and
    // reads back (it was refused as whitespace)
    const e = await readEmbeddings(join(dir, "g.vec"));
    await assert.rejects(writeWord2VecText(join(dir, "t.vec"), e), /row 2: word "c\\td" contains a tab/);
    await assert.rejects(writeWord2VecBinary(join(dir, "t.bin"), e), /row 2: word "c\\td" contains a tab/);
    const kept = { words: [e.words[0], e.words[2]], vectors: Float32Array.of(1, 2, 5, 6), d: 2 };
    await writeWord2VecText(join(dir, "o.vec"), kept);
    await writeWord2VecBinary(join(dir, "o.bin"), kept);
    for (const name of ["o.vec", "o.bin"]) {
      assert.deepEqual((await readEmbeddings(join(dir, name))).words, kept.words, name);
    }
    // fastText ends each row with a space; Windows line ends
    await Deno.writeTextFile(join(dir, "ft.vec"), "2 2 \r\nthe 0.5 -1 \r\ncat 1e-05 +2.5 \r\n");
    const ft = await readEmbeddings(join(dir, "ft.vec"));
    assert.deepEqual(ft.words, ["the", "cat"]);
    assert.deepEqual(Array.from(ft.vectors), [0.5, -1, Math.fround(1e-5), 2.5]);
  });
});

Deno.test("a word starting with U+FEFF (a byte-order mark) reads back whole from every format, as gensim reads it", async () => {
  // a shard folder's vocab.tsv may hold "\ufeffthe" on any line (text split by a tool that kept each
  // file's byte-order mark); the .vec reader kept it, while .bin, Arrow and Parquet dropped it (a
  // TextDecoder per word strips a leading BOM), so "\ufeffthe" read back as "the", a second "the"
  await inTempDir(async (dir) => {
    const e = { words: ["the", "\ufeffthe", "a\ufeffb"], vectors: Float32Array.of(1, 2, 3, 4, 5, 6), d: 2 };
    await writeWord2VecText(join(dir, "b.vec"), e);
    await writeWord2VecBinary(join(dir, "b.bin"), e);
    await writeArrowEmbeddings(join(dir, "b.arrow"), e);
    await writeParquetEmbeddings(join(dir, "b.parquet"), e);
    for (const name of ["b.vec", "b.bin", "b.arrow", "b.parquet"]) {
      const r = await readEmbeddings(join(dir, name));
      assert.deepEqual(r.words, e.words, name);
      assert.deepEqual(Array.from(r.vectors), [1, 2, 3, 4, 5, 6], name);
    }
  });
});

Deno.test("empty embedding sets (a 0-row .vec, Arrow or Parquet file) and fixed_size_list[0] vectors are bad data naming the file", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "empty.vec"), "0 5\n");
    await writeWord2VecBinary(join(dir, "seed.bin"), { words: ["a"], vectors: Float32Array.of(1), d: 1 });
    await Deno.writeTextFile(join(dir, "empty.bin"), "0 5\n");
    const none = embeddingsToArrowTable({ words: [], vectors: new Float32Array(0), d: 5 });
    await Deno.writeFile(join(dir, "empty.arrow"), arrow.tableToIPC(none, "file"));
    const props = new pq.WriterPropertiesBuilder().build();
    await Deno.writeFile(
      join(dir, "empty.parquet"),
      pq.writeParquet(pq.Table.fromIPCStream(arrow.tableToIPC(none, "stream")), props),
    );
    for (const name of ["empty.vec", "empty.bin", "empty.arrow", "empty.parquet"]) {
      const p = join(dir, name);
      await assert.rejects(readEmbeddings(p), (e: unknown) => {
        assert.ok(e instanceof DataFormatError, `${name}: ${e}`);
        assert.equal(e.message, `${p}: holds no vectors (0 rows): nothing to evaluate or publish`);
        return true;
      });
    }
    // vectors of no value (fixed_size_list<float32>[0]): it was a usage error (exit 2) naming no file
    const item = new arrow.Field("item", new arrow.Float32(), false);
    const zero = new arrow.Table({
      word: arrow.vectorFromArray(["a", "b"], new arrow.Utf8()),
      vector: arrow.makeVector(
        arrow.makeData({
          type: new arrow.FixedSizeList(0, item),
          length: 2,
          nullCount: 0,
          child: arrow.makeData({
            type: new arrow.Float32(),
            length: 0,
            nullCount: 0,
            data: new Float32Array(0),
          }),
        }),
      ),
    });
    await Deno.writeFile(join(dir, "zero.arrow"), arrow.tableToIPC(zero, "file"));
    await Deno.writeFile(
      join(dir, "zero.parquet"),
      pq.writeParquet(pq.Table.fromIPCStream(arrow.tableToIPC(zero, "stream")), props),
    );
    for (const name of ["zero.arrow", "zero.parquet"]) {
      await assert.rejects(readEmbeddings(join(dir, name)), (e: unknown) => {
        assert.ok(e instanceof DataFormatError, `${name}: ${e}`);
        assert.match(e.message, new RegExp(`^${join(dir, name)}: column "vector" has 0 values per row`));
        return true;
      });
    }
    // the library refuses an empty version too
    await assert.rejects(
      publishEmbeddings({ outRoot: dir, words: [], input: new Float32Array(0), d: 5, manifest: {} }),
      /no words \(0 rows\): an empty version is never published/,
    );
  });
});

Deno.test("--formats: one parser for every job; a format given twice is written and listed once", async () => {
  assert.deepEqual(parseFormats("vec, parquet,vec,,vec"), ["vec", "parquet"]);
  assert.deepEqual(parseFormats(["bin", "bin"]), ["bin"]);
  assert.throws(
    () => parseFormats("vec,xml"),
    { name: "UsageError", message: '--formats: unknown format "xml"; accepted: vec,bin,arrow,parquet' },
  );
  assert.throws(
    () => parseFormats(" , "),
    { name: "UsageError", message: "--formats must name at least one of vec,bin,arrow,parquet" },
  );
  const { resolveConfig, parseField } = await import("../lib/train/config.ts");
  assert.deepEqual(parseField("formats", "vec,vec"), ["vec"]);
  assert.deepEqual(resolveConfig({ formats: ["arrow", "vec", "arrow"] }).formats, ["arrow", "vec"]);
});

Deno.test("removeStaleTemps: the unfinished versions of dead publishers go, a live publisher's stays", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dead = new Deno.Command("true").spawn();
    await dead.status; // a pid that no longer runs
    const versions = join(root, "versions");
    await Deno.mkdir(versions, { recursive: true });
    const killed = `20261205T000000Z-dead.${dead.pid}-0badf00d.tmp`;
    const running = `20261205T000000Z-live.${Deno.pid}-0badf00d.tmp`; // this process: alive
    const legacy = "20261205T000000Z-old.tmp"; // written before the pid was in the name
    for (const n of [killed, running, legacy]) {
      await Deno.mkdir(join(versions, n));
      await Deno.writeTextFile(join(versions, n, "input.vec"), "partial");
    }
    await Deno.symlink("versions/x", join(root, `latest.${dead.pid}-0badf00d.tmp`));
    await Deno.symlink("versions/x", join(root, `latest.${Deno.pid}-0badf00e.tmp`));
    // without the run's lock (export --vectors): only what carries a dead pid
    assert.deepEqual(
      (await removeStaleTemps(root, { unowned: false })).sort(),
      [`latest.${dead.pid}-0badf00d.tmp`, join("versions", killed)].sort(),
    );
    assert.deepEqual([...Deno.readDirSync(versions)].map((e) => e.name).sort(), [legacy, running].sort());
    // a publish of a version a live publisher is writing is refused, its folder untouched
    await assert.rejects(
      publishOneWord(root, "20261205T000000Z-live"),
      /20261205T000000Z-live\.\d+-0badf00d\.tmp exists \(another publish of version 20261205T000000Z-live/,
    );
    // under the lock (train, refresh, export of a run): the unowned one too; the live one always stays
    assert.deepEqual(await removeStaleTemps(root), [join("versions", legacy)]);
    assert.deepEqual([...Deno.readDirSync(versions)].map((e) => e.name), [running]);
    assert.ok((await Deno.lstat(join(root, `latest.${Deno.pid}-0badf00e.tmp`))).isSymlink);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno task export: kill -9 leftovers cleaned by the next export (a live one's kept), a true stop line, --out inside a version, repeated flags, empty sets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "factorout-export-cli-" });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    const root = join(dir, "pub"), versions = join(root, "versions");
    const big = join(dir, "big.bin");
    const V = 30000, d = 48;
    await writeWord2VecBinary(big, {
      words: Array.from({ length: V }, (_, i) => `w${i}`),
      vectors: new Float32Array(V * d).map((_, i) => (i % 97) / 7 - 3),
      d,
    });
    const args = ["--vectors", big, "--out", root, "--formats", "vec,bin,arrow,parquet"];
    const temps = () =>
      Array.fromAsync(Deno.readDir(versions)).then((l) =>
        l.map((e) => e.name).filter((n) => n.endsWith(".tmp"))
      )
        .catch(() => [] as string[]);
    // a live publisher's unfinished version (this test's pid): never removed
    await Deno.mkdir(versions, { recursive: true });
    const live = `20261205T000000Z-live.${Deno.pid}-0badf00d.tmp`;
    await Deno.mkdir(join(versions, live));
    /** Starts the export and sends `signal` once its unfinished version's folder exists. */
    const interrupt = async (signal: Deno.Signal) => {
      const before = await temps();
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("../pipelines/export.ts", import.meta.url).pathname, ...args],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const out = child.output();
      let mine: string | undefined;
      for (let i = 0; i < 6000 && !mine; i++) {
        mine = (await temps()).find((n) => !before.includes(n));
        if (!mine) await sleep(5);
      }
      child.kill(signal);
      const o = await out;
      return { mine, code: o.code, stderr: new TextDecoder().decode(o.stderr) };
    };
    const killed = await interrupt("SIGKILL");
    assert.ok(killed.mine, `no unfinished version seen: ${killed.stderr}`);
    assert.match(killed.mine!, new RegExp(`^\\d{8}T\\d{6}Z-[0-9a-f]{4}\\.\\d+-[0-9a-f]{8}\\.tmp$`));
    assert.deepEqual((await temps()).sort(), [killed.mine!, live].sort(), "kill -9 leaves its folder");
    // the next export removes it (its process is gone) before it publishes; stopped in its own publication,
    // it says that nothing is published here (there is no previous version for latest to point at)
    const stopped = await interrupt("SIGTERM");
    assert.match(
      stopped.stderr,
      new RegExp(
        `export: cleanup: removed 1 temporary file\\(s\\) left by killed jobs: .*${
          killed.mine!.replaceAll(".", "\\.")
        }`,
      ),
    );
    const last = stopped.stderr.trim().split("\n").pop()!;
    console.log(`SIGTERM in its publication: exit ${stopped.code}, ${last}`);
    if (stopped.code === EXIT.stopped && /unfinished version was removed/.test(last)) {
      assert.equal(
        last,
        `export: stopped by SIGTERM; the unfinished version was removed; nothing is published under ${root} ` +
          `(no latest); rerun the same command`,
      );
    } else assert.ok(stopped.code === 0 || stopped.code === EXIT.stopped, stopped.stderr);
    // a run to its end: a format given twice is written and listed once
    await Deno.remove(join(root, "latest")).catch(() => {});
    for (const v of await Array.fromAsync(Deno.readDir(versions))) {
      if (!v.name.endsWith(".tmp")) await Deno.remove(join(versions, v.name), { recursive: true });
    }
    const small = join(dir, "small.vec");
    await Deno.writeTextFile(small, "2 3\nthe 1 2 3\ncat 4 5 6\n");
    const ok = await exportCli(["--vectors", small, "--out", root, "--formats", "vec,bin,vec"]);
    assert.equal(ok.code, 0, ok.stderr);
    const published = JSON.parse(ok.stdout.trim().split("\n").pop()!);
    const m = await readEmbeddingsManifest(published.dir);
    assert.deepEqual((m.files as { name: string }[]).map((f) => f.name), ["input.vec", "input.bin"]);
    assert.deepEqual(await temps(), [live], "only the live publisher's folder is left");
    const manifestBefore = await Deno.readTextFile(join(root, "latest", "manifest.json"));
    await Deno.writeTextFile(join(dir, "empty.vec"), "0 5\n");
    await Deno.writeTextFile(join(dir, "lone.fock"), "FOCKPT01 not a checkpoint at all");
    const cases: [string[], number, RegExp][] = [
      // inside the published version: it changed the immutable version (exit 0)
      [
        ["--vectors", small, "--out", join(root, "latest")],
        2,
        /inside the published version .* never changed/,
      ],
      [["--vectors", small, "--out", versions], 2, /is the versions\/ folder of the publication root/],
      // the last one won silently
      [["--vectors", small, "--vectors", big, "--out", root], 2, /--vectors is given twice/],
      // an empty set was published as the new latest (exit 0)
      [["--vectors", join(dir, "empty.vec"), "--out", root], 5, /empty\.vec: holds no vectors \(0 rows\)/],
      // the flag is checked before the checkpoint is read (a garbage file: exit 4 after reading it)
      [
        ["--checkpoint", join(dir, "lone.fock")],
        2,
        /--out ROOT is required: .*lone\.fock is not in a <run>\/checkpoints/,
      ],
    ];
    for (const [a, code, re] of cases) {
      const r = await exportCli(a);
      assert.equal(r.code, code, `${a.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr.trim().split("\n").pop()!, re, a.join(" "));
    }
    assert.equal(await Deno.readTextFile(join(root, "latest", "manifest.json")), manifestBefore);
    assert.deepEqual(
      [...Deno.readDirSync(join(root, "latest"))].map((e) => e.name).sort(),
      ["input.bin", "input.vec", "manifest.json"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scripts/job.sh runs the job in the caller's folder: relative paths are the caller's, not the repository's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "factorout-job-sh-" });
  const repo = new URL("..", import.meta.url).pathname;
  const out = `relout-${crypto.randomUUID().slice(0, 8)}`;
  const job = (...args: string[]) =>
    runCommand("bash", [join(repo, "scripts", "job.sh"), ...args], { cwd: dir });
  try {
    await Deno.writeTextFile(join(dir, "plus.vec"), "2 3\nthe 1 2 3\ncat 4 5 6\n");
    // it wrote <repo>/relout, and read --vectors plus.vec from the repository (exit 5)
    const exp = await job("export", "--vectors", "plus.vec", "--out", out, "--formats", "vec");
    assert.equal(exp.code, 0, exp.stderr);
    assert.deepEqual((await readEmbeddings(join(dir, out, "latest", "input.vec"))).words, ["the", "cat"]);
    assert.equal(
      await Deno.stat(join(repo, out)).then(() => true, () => false),
      false,
      "written in the repository",
    );
    const ev = await job(
      "eval",
      "--vectors",
      "plus.vec",
      "--eval-dir",
      "none",
      "--neighbours",
      "the",
      "--k",
      "1",
    );
    assert.equal(ev.code, 0, ev.stderr);
    assert.match(ev.stdout, /^plus\.vec: 2 words × 3/);
    assert.match(ev.stdout, /nearest to the: cat /);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(join(repo, out), { recursive: true }).catch(() => {});
  }
});

Deno.test("scripts/job.sh runs the job with glibc's huge-page advice for large arrays, keeping a caller's own setting", async () => {
  // job.sh in a folder of its own, beside a stand-in for Deno that prints the environment it was given
  const dir = await Deno.makeTempDir({ prefix: "factorout-job-env-" });
  const repo = new URL("..", import.meta.url).pathname;
  try {
    await Deno.mkdir(join(dir, "scripts"));
    await Deno.mkdir(join(dir, "node_modules", "deno"), { recursive: true });
    await Deno.copyFile(join(repo, "scripts", "job.sh"), join(dir, "scripts", "job.sh"));
    const fake = join(dir, "node_modules", "deno", "deno");
    await Deno.writeTextFile(fake, '#!/usr/bin/env bash\nprintf "%s" "${GLIBC_TUNABLES-unset}"\n');
    await Deno.chmod(fake, 0o755);
    const tunables = async (env: Record<string, string>) => {
      const { code, stdout, stderr } = await new Deno.Command("bash", {
        args: [join(dir, "scripts", "job.sh"), "export"],
        env,
        clearEnv: true,
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      return new TextDecoder().decode(stdout);
    };
    const path = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
    assert.equal(await tunables(path), "glibc.malloc.hugetlb=1");
    assert.equal(
      await tunables({ ...path, GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }),
      "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=2",
    );
    for (const own of ["glibc.malloc.hugetlb=0", "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=0"]) {
      assert.equal(await tunables({ ...path, GLIBC_TUNABLES: own }), own, "the caller's setting wins");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
