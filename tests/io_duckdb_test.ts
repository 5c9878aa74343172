/**
 * The DuckDB engine of the corpus job (lib/io/duckdb_*.ts, sql/corpus/) against the built-in engine
 * (lib/io/prepare.ts): same vocab.tsv and rows, same errors for bad input.
 */
import assert from "node:assert/strict";
import { prepareCorpus, type PrepareOptions } from "../lib/io/prepare.ts";
import { prepareCorpusDuckdb } from "../lib/io/duckdb_prepare.ts";
import type { EngineStepProgress } from "../lib/io/progress.ts";
import { duckdbError, openDuckdb } from "../lib/io/duckdb_connect.ts";
import { corpusSqlParams } from "../lib/io/duckdb_prepare.ts";
import { loadStep, renderSql, sqlLiteral } from "../lib/io/duckdb_sql.ts";
import { createTokenizer } from "../lib/io/tokenize.ts";
import { readExamples } from "../lib/io/read.ts";
import { writeSyntheticText } from "../lib/io/synthetic.ts";
import { main as corpusMain } from "../pipelines/corpus.ts";
import type { SparseBatch } from "../lib/core/types.ts";
import { IoError } from "../lib/core/errors.ts";
import { EXIT, exitCodeFor } from "../lib/core/exit_codes.ts";
import type { CorpusManifest } from "../lib/io/manifest.ts";

const row = (b: SparseBatch, r: number) =>
  `${b.indices.subarray(b.offsets[r], b.offsets[r + 1]).join(",")}:${
    Array.from(b.values.subarray(b.offsets[r], b.offsets[r + 1])).join(",")
  }`;

/** Every row of a corpus folder as "input:weights|target:weights", in file order. */
async function rowsOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const b of readExamples(dir, { batchSize: 4096 })) {
    for (let r = 0; r < b.size; r++) out.push(`${row(b.inputs, r)}|${row(b.targets, r)}`);
  }
  return out;
}

type Opts = Omit<PrepareOptions, "outDir">;

/**
 * Runs both engines on `o` into `dir`/builtin and `dir`/duckdb; returns both manifests and the DuckDB
 * job's step progress (read every 5 ms).
 */
async function both(dir: string, o: Opts, extra: { textColumn?: string; duckInput?: string[] } = {}) {
  const a = await prepareCorpus({ ...o, outDir: `${dir}/builtin`, format: "parquet" });
  const steps: EngineStepProgress[] = [];
  const b = await prepareCorpusDuckdb({
    ...o,
    ...(extra.duckInput ? { input: extra.duckInput } : {}),
    ...(extra.textColumn ? { textColumn: extra.textColumn } : {}),
    onStepProgress: (p) => steps.push(p),
    progressIntervalMs: 5,
    outDir: `${dir}/duckdb`,
    memoryLimit: "500MB",
    spillDir: `${dir}/spill`,
    threads: 2,
  });
  return { a, b, steps };
}

async function assertSameCorpus(dir: string) {
  assert.deepEqual(
    await Deno.readTextFile(`${dir}/duckdb/vocab.tsv`),
    await Deno.readTextFile(`${dir}/builtin/vocab.tsv`),
  );
  // the same rows in the same order, cut into shards at the same lines
  const shardRows = async (d: string) =>
    (JSON.parse(await Deno.readTextFile(`${d}/manifest.json`)) as CorpusManifest).shards.map((s) => s.rows);
  assert.deepEqual(await shardRows(`${dir}/duckdb`), await shardRows(`${dir}/builtin`));
  const [ra, rb] = [await rowsOf(`${dir}/builtin`), await rowsOf(`${dir}/duckdb`)];
  assert.deepEqual(rb.length, ra.length);
  const at = rb.findIndex((x, i) => x !== ra[i]);
  assert(at < 0, `rows differ from row ${at} on`);
}

Deno.test("duckdb = builtin on the whole Brown corpus: vocab.tsv and rows (skipgram, distance weights)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { a, b, steps } = await both(dir, {
      input: "brown",
      mode: "skipgram",
      window: 3,
      minCount: 5,
      seed: 1,
    });
    // the live progress: each long step reported under its name, sane numbers, some with a percentage
    const names = new Set(steps.map((p) => p.step));
    for (const n of ["reading the input", "tokenising", "counting words", "making and writing the windows"]) {
      assert(names.has(n), `no progress for step '${n}' (got ${[...names].join(", ")})`);
    }
    for (const p of steps) {
      assert.equal(p.engine, "duckdb");
      assert(Number.isNaN(p.percent) || (p.percent >= 0 && p.percent <= 100), `percent ${p.percent}`);
      assert(p.rows <= p.totalRows && p.stepS >= 0 && p.stepS <= p.elapsedS);
    }
    assert(steps.some((p) => Number.isFinite(p.percent) && p.totalRows > 0), "DuckDB reported no progress");
    assert.deepEqual([b.rows, b.vocabSize, b.tokens, b.keptTokens], [
      a.rows,
      a.vocabSize,
      a.tokens,
      a.keptTokens,
    ]);
    assert.deepEqual([b.maxInputK, b.maxTargetK], [a.maxInputK, a.maxTargetK]);
    assert.deepEqual(b.text, a.text);
    assert(a.tokens > 1_000_000);
    await assertSameCorpus(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("duckdb = builtin on a Brown slice: cbow, punctuation kept, sentences at . ! ?, max-vocab, shards cut at the same lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { a, b } = await both(dir, {
      input: "brown",
      mode: "cbow",
      window: 4,
      minCount: 2,
      maxVocab: 3000,
      seed: 1,
      punctuation: "keep",
      sentences: "punct",
      limitTokens: 120_000,
      shardRows: 20_000,
      batchRows: 4096,
    });
    assert.deepEqual([b.rows, b.vocabSize, b.tokens], [a.rows, a.vocabSize, a.tokens]);
    assert(b.shards.length >= 4, `${b.shards.length} shards`);
    await assertSameCorpus(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("duckdb = builtin on plain text: ties by code unit, Unicode, uniform weights, long sentences, .gz", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // ties: "ｚ" (U+FF5A) sorts after "😀" (U+1F600) in UTF-16 code units, before it in code points
    const lines = [
      "Zebra ｚ 😀 apple Été ete don't e-mail 3.14 — ½ naïve",
      "😀 ｚ zebra, apple! été. ETE ete? don't",
      Array.from({ length: 2300 }, (_, i) => `w${i % 7}`).join(" "), // cut into pieces of 1000
      "one",
      "",
    ];
    await Deno.writeTextFile(`${dir}/in.txt`, lines.join("\n") + "\n");
    // two gzip members (`cat a.gz b.gz`): both engines read every member, as gzip -d does
    const member = async (text: string) =>
      new Uint8Array(
        await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")))
          .arrayBuffer(),
      );
    const [m1, m2] = [
      await member(lines.slice(0, 2).join("\n") + "\n"),
      await member(lines.slice(2).join("\n")),
    ];
    const gz = new Uint8Array(m1.length + m2.length);
    gz.set(m1);
    gz.set(m2, m1.length);
    await Deno.writeFile(`${dir}/in.txt.gz`, gz);
    const o: Opts = {
      input: `${dir}/in.txt`,
      mode: "skipgram",
      window: 2,
      minCount: 1,
      seed: 3,
      weights: "uniform",
    };
    const { a } = await both(dir, o);
    const vocab = (await Deno.readTextFile(`${dir}/duckdb/vocab.tsv`)).split("\n").map((l) =>
      l.split("\t")[0]
    );
    assert(vocab.indexOf("😀") < vocab.indexOf("ｚ"), "UTF-16 code-unit order for ties");
    assert(a.rows > 2300);
    await assertSameCorpus(dir);
    await Deno.remove(`${dir}/builtin`, { recursive: true });
    await Deno.remove(`${dir}/duckdb`, { recursive: true });
    const g = await both(dir, { ...o, input: `${dir}/in.txt.gz`, mode: "cbow" });
    assert.deepEqual([g.a.tokens, g.b.tokens], [a.tokens, a.tokens], "every member read");
    await assertSameCorpus(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("duckdb reads a Parquet table's text column like the same lines in a text file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lines = ["The cat sat on the mat.", "A dog sat on the log.", "the cat and the dog"];
    await Deno.writeTextFile(`${dir}/in.txt`, lines.join("\n"));
    const db = await openDuckdb();
    await db.connection.run(
      `COPY (SELECT i::BIGINT AS doc_id, t AS sentence FROM (VALUES ${
        lines.map((l, i) => `(${i}, ${sqlLiteral(l)})`).join(",")
      }, (9, NULL)) v(i, t)) TO ${sqlLiteral(`${dir}/table.parquet`)} (FORMAT parquet)`,
    );
    db.close();
    const o: Opts = { input: `${dir}/in.txt`, mode: "cbow", window: 2, minCount: 1, seed: 1 };
    const { b } = await both(dir, o, { textColumn: "sentence", duckInput: [`${dir}/table.parquet`] });
    assert.deepEqual(b.source.textColumn, "sentence");
    await assertSameCorpus(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("duckdb Parquet tables: each file read once by its literal name (glob characters, quotes), Hive-style folders are no columns", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const db = await openDuckdb();
    const table = async (path: string, text: string, column = "text") => {
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await db.connection.run(
        `COPY (SELECT ${sqlLiteral(text)} AS "${column}" FROM range(3)) TO ${
          sqlLiteral(path)
        } (FORMAT parquet)`,
      );
    };
    const g = `${dir}/g`;
    await table(`${g}/xa.parquet`, "secret never meant");
    await table(`${g}/x*.parquet`, "the intended words");
    await table(`${g}/y1.parquet`, "other file");
    await table(`${g}/y[1].parquet`, "bracket file");
    await table(`${g}/q'd"[?].parquet`, "quoted name");
    await table(`${dir}/h/text=the quick fox/p.parquet`, "real words here");
    await table(`${dir}/h2/text=SECRET/p.parquet`, "body words", "body");
    db.close();
    const vocab = async (input: string) => {
      const out = `${dir}/out`;
      await Deno.remove(out, { recursive: true }).catch(() => {});
      await prepareCorpusDuckdb({
        input: [input],
        textColumn: "text",
        outDir: out,
        mode: "cbow",
        window: 1,
        minCount: 1,
        seed: 1,
        threads: 2,
      });
      return (await Deno.readTextFile(`${out}/vocab.tsv`)).trim().split("\n").sort().join(" ");
    };
    assert.deepEqual(await vocab(`${g}/y[1].parquet`), "bracket\t3 file\t3");
    assert.deepEqual(await vocab(`${g}/x*.parquet`), "intended\t3 the\t3 words\t3");
    assert.deepEqual(await vocab(`${g}/q'd"[?].parquet`), "name\t3 quoted\t3");
    // the folder: every file once (none twice, none missed)
    assert.deepEqual(
      await vocab(g),
      "bracket\t3 file\t6 intended\t3 meant\t3 name\t3 never\t3 other\t3 quoted\t3 secret\t3 the\t3 words\t3",
    );
    // text=… on the path is a folder name, not a column: the file's own column, or none
    assert.deepEqual(await vocab(`${dir}/h`), "here\t3 real\t3 words\t3");
    await assert.rejects(
      () => vocab(`${dir}/h2`),
      /p\.parquet: has no column "text" \(columns: body VARCHAR\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("duckdb spills into a folder of its own inside --spill-dir (shared by jobs), removed after; a killed job's is removed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSyntheticText(`${dir}/zipf.txt`, { vocabSize: 2000, tokens: 20_000, seed: 5 });
    const spill = `${dir}/shared`;
    await Deno.mkdir(spill);
    const host = Deno.hostname().replace(/[^A-Za-z0-9.-]/g, "_");
    // a killed job's (a pid that is no process), another host's, and someone else's file: only the first goes
    const dead = `factorout-spill-${host}.999999999-0a1b2c3d.tmp`;
    const otherHost = `factorout-spill-elsewhere.999999999-0a1b2c3d.tmp`;
    for (const d of [dead, otherHost]) await Deno.mkdir(`${spill}/${d}`);
    await Deno.writeTextFile(`${spill}/duckdb_temp_storage_DEFAULT-0.tmp`, "someone else's");
    // what the spill folder holds at each notice after the first (the removal, made before its own folder)
    const during: string[][] = [];
    const notices: string[] = [];
    await prepareCorpusDuckdb({
      input: `${dir}/zipf.txt`,
      outDir: `${dir}/out`,
      mode: "skipgram",
      window: 2,
      minCount: 1,
      seed: 1,
      threads: 2,
      spillDir: spill,
      onNotice: (l) => {
        notices.push(l);
        during.push(Array.from(Deno.readDirSync(spill), (e) => e.name).sort());
      },
    });
    const own = new RegExp(
      `^factorout-spill-${host.replaceAll(".", "\\.")}\\.${Deno.pid}-[0-9a-f]{8}\\.tmp$`,
    );
    assert(
      during.length > 1 && during.slice(1).every((names) => names.filter((n) => own.test(n)).length === 1),
      String(during),
    );
    assert.match(notices[0], new RegExp(`removed ${dead} in ${spill}, left by DuckDB jobs killed there`));
    assert.deepEqual(
      Array.from(Deno.readDirSync(spill), (e) => e.name).sort(),
      ["duckdb_temp_storage_DEFAULT-0.tmp", otherHost],
    );
    // a folder it made itself is removed too
    const more = {
      input: `${dir}/zipf.txt`,
      mode: "cbow" as const,
      window: 1,
      minCount: 1,
      seed: 1,
      threads: 2,
    };
    await Deno.mkdir(`${dir}/made`);
    await prepareCorpusDuckdb({ ...more, outDir: `${dir}/out2`, spillDir: `${dir}/made/spill` });
    assert.deepEqual(Array.from(Deno.readDirSync(`${dir}/made`)), []);
    // a missing parent is named, not made (as mkdir without -p): it made /scratch for /scratch/spill and
    // removed only spill
    await assert.rejects(
      () => prepareCorpusDuckdb({ ...more, outDir: `${dir}/out3`, spillDir: `${dir}/none/deeper/spill` }),
      (e) =>
        e instanceof IoError && exitCodeFor(e) === EXIT.io &&
        e.message ===
          `cannot use spill folder ${dir}/none/deeper/spill: its parent folder ${dir}/none/deeper does not ` +
            "exist; create it first, or give --spill-dir a folder whose parent exists",
    );
    assert.ok(!(await Deno.stat(`${dir}/none`).then(() => true, () => false)), "a parent was made");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("duckdb subsampling and dynamic windows: seeded, and equal in distribution to the built-in engine", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // a Zipf text (a few frequent words, many rare ones): what subsampling is for
    await writeSyntheticText(`${dir}/zipf.txt`, { vocabSize: 5000, tokens: 200_000, seed: 5 });
    const o: Opts = {
      input: `${dir}/zipf.txt`,
      mode: "skipgram",
      window: 5,
      minCount: 5,
      seed: 7,
      sample: 1e-3,
      dynamicWindow: true,
    };
    const { a, b } = await both(dir, o);
    // the hash draws are not the built-in generator's, so kept tokens and rows agree within sampling noise
    const rel = (x: number, y: number) => Math.abs(x - y) / y;
    assert(b.keptTokens < b.tokens * 0.85, `subsampling dropped words: ${b.keptTokens} of ${b.tokens}`);
    assert(rel(b.keptTokens, a.keptTokens) < 0.01, `kept ${b.keptTokens} vs ${a.keptTokens}`);
    assert(rel(b.rows, a.rows) < 0.01, `rows ${b.rows} vs ${a.rows}`);
    // shrunk windows: fewer targets per row than the full window's, as in the built-in engine
    const meanK = async (d: string) => {
      let n = 0, k = 0;
      for await (const x of readExamples(d, { batchSize: 4096 })) {
        n += x.size;
        k += x.targets.offsets[x.size];
      }
      return k / n;
    };
    const [ka, kb] = [await meanK(`${dir}/builtin`), await meanK(`${dir}/duckdb`)];
    assert(rel(kb, ka) < 0.02 && kb < 8, `mean targets per row ${kb} vs ${ka}`);
    // same seed: the same corpus; another seed: another one
    const again = await prepareCorpusDuckdb({ ...o, outDir: `${dir}/again`, threads: 2 });
    assert.deepEqual(again.keptTokens, b.keptTokens);
    assert.deepEqual(await rowsOf(`${dir}/again`), await rowsOf(`${dir}/duckdb`));
    const other = await prepareCorpusDuckdb({ ...o, seed: 8, outDir: `${dir}/other`, threads: 2 });
    assert.notDeepEqual(other.keptTokens, b.keptTokens);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("duckdb: preparing the same input twice writes the same shards, byte for byte (4 threads, many row groups)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // subsampling and dynamic windows on (their draws are hashes of each token's place), several shards
    // of many small row groups: enough for 4 threads to finish them out of order
    const o = {
      input: "brown",
      mode: "skipgram" as const,
      window: 3,
      minCount: 2,
      seed: 7,
      sample: 1e-3,
      dynamicWindow: true,
      limitTokens: 300_000,
      shardRows: 60_000,
      batchRows: 2048,
      threads: 4,
    };
    const digest = async (run: string) => {
      const m = await prepareCorpusDuckdb({ ...o, outDir: `${dir}/${run}` });
      return await Promise.all(m.shards.map(async (s) => {
        const bytes = await Deno.readFile(`${dir}/${run}/${s.file}`);
        const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
        return `${s.file} ${s.rows} ${s.bytes} ${
          Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("")
        }`;
      }));
    };
    const first = await digest("a");
    assert(first.length >= 3, first.join("\n"));
    assert.deepEqual(await digest("b"), first);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the tokeniser step makes the built-in tokeniser's tokens for every code point (Unicode 16 letters, capitals)", async () => {
  // lines of 64 code points each, space-separated: each one a word, a punctuation token or white space
  const cps: string[] = [];
  for (let i = 0; i < 0x110000; i++) {
    // İ lowercases to i + U+0307 in JavaScript, to i in DuckDB: the documented difference
    if ((i < 0xd800 || i > 0xdfff) && i !== 0x130) cps.push(String.fromCodePoint(i));
  }
  const lines: string[] = [];
  for (let i = 0; i < cps.length; i += 64) lines.push(cps.slice(i, i + 64).join(" "));
  const tok = createTokenizer({ punctuation: "keep" });
  const want: string[] = [];
  for (const [i, l] of lines.entries()) tok(l, (t, n) => want.push(`${i + 1}:${t.slice(0, n).join(" ")}`));
  const db = await openDuckdb({ threads: 2 });
  try {
    const con = db.connection;
    await con.run("CREATE TABLE lines (line_id BIGINT, tagged BOOLEAN, text VARCHAR)");
    const app = await con.createAppender("lines");
    for (const [i, l] of lines.entries()) {
      app.appendBigInt(BigInt(i + 1));
      app.appendBoolean(false);
      app.appendVarchar(l);
      app.endRow();
    }
    app.closeSync();
    const params = corpusSqlParams({
      outDir: "",
      mode: "cbow",
      window: 1,
      minCount: 1,
      seed: 1,
      punctuation: "keep",
    });
    await con.run(await loadStep("10_tokens", params));
    const r = await con.runAndReadAll(
      "SELECT line_id, string_agg(word, ' ' ORDER BY k) FROM tokens GROUP BY line_id ORDER BY line_id",
    );
    const got = r.getRows().map(([i, w]) => `${i}:${w}`);
    const diff = got.filter((x, i) => x !== want[i]).slice(0, 2);
    assert.deepEqual(got.length, want.length);
    assert.deepEqual(diff, [], `first lines that differ (DuckDB) ${diff.join(" | ")}`);
  } finally {
    db.close();
  }
});

/** Runs `deno task corpus` in-process; returns the exit code and the last stderr line. */
async function cli(args: string[]): Promise<{ code: number; line: string }> {
  const err: string[] = [];
  const orig = console.error;
  console.error = (...x: unknown[]) => err.push(x.join(" "));
  try {
    const code = await corpusMain(args);
    return { code, line: err.at(-1) ?? "" };
  } finally {
    console.error = orig;
  }
}

Deno.test("bad input: the DuckDB path gives the built-in path's one-line errors and exit codes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/bin.txt`, Uint8Array.of(0x61, 0x62, 0, 0x63, 10));
    await Deno.writeTextFile(`${dir}/ok.txt`, "a b a b\n");
    await Deno.writeFile(`${dir}/latin1.txt`, Uint8Array.of(0x63, 0x61, 0x66, 0xe9, 10, 0xe9, 10, 0x61, 10));
    await Deno.writeTextFile(`${dir}/one.txt`, "alone\n");
    await Deno.writeTextFile(`${dir}/big.txt`, "many words in one line of text\n".repeat(20_000));
    for (
      const args of [
        ["--input", `${dir}/missing.txt`],
        ["--input", `${dir}/bin.txt`],
        ["--input", `${dir}/latin1.txt`],
        ["--input", `${dir}/one.txt`, "--min-count", "1"],
        ["--input", `${dir}/ok.txt`, "--min-count", "9"],
        ["--input", `${dir}/ok.txt`, "--window", "0"],
      ]
    ) {
      const a = await cli([...args, "--out", `${dir}/a`]);
      const b = await cli([...args, "--out", `${dir}/b`, "--engine", "duckdb"]);
      assert.notDeepEqual(a.code, 0, args.join(" "));
      assert.deepEqual(b, a, args.join(" "));
    }
    // a table: a missing text column, a column that is not text (exit 5, naming file and columns)
    const db = await openDuckdb();
    await db.connection.run(
      `COPY (SELECT 1::BIGINT AS id, 'a b a b' AS body) TO ${
        sqlLiteral(`${dir}/t.parquet`)
      } (FORMAT parquet)`,
    );
    db.close();
    // [input file, flags, exit code, the last line]
    const cases: [string, string, number, RegExp][] = [
      [
        "t.parquet",
        "--engine duckdb --text-column text",
        5,
        /t\.parquet: has no column "text" \(columns: id BIGINT, body VARCHAR\)/,
      ],
      ["t.parquet", "--engine duckdb --text-column id", 5, /column "id" is BIGINT, not text/],
      ["ok.txt", "--engine duckdb --text-column x", 5, /--text-column x reads Parquet tables/],
      ["ok.txt", "--text-column x", 2, /^corpus: --text-column needs --engine duckdb$/],
      ["ok.txt", "--engine duckdb --memory-limit lots", 2, /--memory-limit must be a size above 0 like 2GB/],
      ["ok.txt", "--engine duckdb --memory-limit 0GB", 2, /--memory-limit must be a size above 0/],
      // the appender running out of memory while loading text is DuckDB's memory, not an internal error
      [
        "big.txt",
        "--engine duckdb --memory-limit 1MB",
        8,
        /DuckDB ran out of memory while reading the input; spill folder .*\(--memory-limit 1MB\); raise --memory-limit/,
      ],
      [
        "ok.txt",
        `--engine duckdb --spill-dir ${dir}/ok.txt`,
        8,
        /cannot use spill folder .*ok\.txt: it is a file, not a folder; give --spill-dir a folder/,
      ],
      [
        "ok.txt",
        `--engine duckdb --spill-dir ${dir}/nowhere/spill`,
        8,
        /^corpus: cannot use spill folder .*nowhere\/spill: its parent folder .*nowhere does not exist; create it first/,
      ],
      // a Parquet table of text without --text-column: not "windows made already"
      [
        "t.parquet",
        "--engine duckdb",
        2,
        /holds Arrow\/Parquet files and no --text-column was given: a table of text is read with --engine duckdb --text-column COLUMN/,
      ],
      ["ok.txt", "--engine duckdb --format arrow", 2, /--engine duckdb writes Parquet shards/],
    ];
    for (const [file, flags, code, line] of cases) {
      const r = await cli(["--input", `${dir}/${file}`, ...flags.split(" "), "--out", `${dir}/c`]);
      assert.deepEqual(r.code, code, flags);
      assert.match(r.line, line);
    }
    assert.ok(
      !(await Deno.stat(`${dir}/nowhere`).then(() => true, () => false)),
      "--spill-dir's parent made",
    );
    // a good run through the CLI: Parquet by default, the spill folder beside --out gone afterwards
    const ok = await cli([
      "--input",
      `${dir}/ok.txt`,
      "--engine",
      "duckdb",
      "--min-count",
      "1",
      "--window",
      "1",
      "--out",
      `${dir}/d`,
    ]);
    assert.deepEqual(ok.code, 0);
    assert.deepEqual((await rowsOf(`${dir}/d`)).length, 4);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).filter((e) => e.name.includes("spill")).length,
      0,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SQL parameters: literals are typed and quoted, a missing parameter is named", () => {
  assert.deepEqual(
    renderSql("SELECT ${a}, ${b}, ${c}", { a: 2, b: true, c: "it's" }),
    "SELECT 2, TRUE, 'it''s'",
  );
  let msg = "";
  try {
    renderSql("SELECT ${nope}", {}, "x.sql");
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.deepEqual(msg, "x.sql: parameter ${nope} is not given");
});

Deno.test("a full disk: the spill folder blamed only for a spill file, else the file DuckDB could not write", () => {
  const spillDir = "/data/run/refresh-staging/x/corpus.spill";
  const full = (file: string) =>
    (duckdbError(
      new Error(`IO Error: Could not write file "${file}": No space left on device`),
      "making and writing the windows",
      { spillDir },
    ) as Error).message;
  // the output shard (finding of the 2026-12-05 sweep: the line blamed spilling, and --spill-dir cannot help)
  const shard = "/data/run/refresh-staging/x/corpus/.parts/part-0.parquet";
  const m = full(shard);
  assert.equal(
    m,
    `DuckDB could not write while making and writing the windows: ${shard}: no space left on device; ` +
      `free space on its disk or choose another output folder`,
  );
  assert.doesNotMatch(m, /spill/);
  // a file in the spill folder, or one of DuckDB's temporary files: spilling, and the spill advice
  for (const f of [`${spillDir}/duckdb_temp_storage_S32K-0.tmp`, "/elsewhere/duckdb_temp_block-7.block"]) {
    assert.match(full(f), /^DuckDB could not spill while .*; spill folder .*corpus\.spill: .*--spill-dir/);
  }
  // no file named: spilling, as before
  const none = duckdbError(new Error("IO Error: No space left on device"), "counting", {}) as Error;
  assert.match(none.message, /^DuckDB could not spill while counting; spill folder \.tmp/);
});

Deno.test("duckdb engine: preparing into a folder with an earlier corpus removes its shards, draws included", async () => {
  const dir = await Deno.makeTempDir();
  const text = `${dir}/t.txt`;
  await Deno.writeTextFile(text, "the cat sat on the mat and the dog sat on the log\n".repeat(40));
  const out = `${dir}/c`;
  await Deno.mkdir(out);
  // what an earlier prepare with subsampling draws (or more shards) left, and a file that is no shard
  for (
    const f of ["part-00007.parquet", "part-00000.draw02.parquet", "part-00003.draw01.arrow", "notes.txt"]
  ) {
    await Deno.writeTextFile(`${out}/${f}`, "old");
  }
  await prepareCorpusDuckdb({
    input: text,
    outDir: out,
    mode: "skipgram",
    window: 2,
    minCount: 1,
    seed: 1,
    memoryLimit: "500MB",
    spillDir: `${dir}/spill`,
    threads: 1,
  });
  const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
  assert.deepEqual(names, ["manifest.json", "notes.txt", "part-00000.parquet", "vocab.tsv"]);
  // and the folder reads: no unlisted shard left behind
  assert.ok((await rowsOf(out)).length > 0);
  await Deno.remove(dir, { recursive: true });
});
