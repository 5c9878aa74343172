import assert from "node:assert/strict";
import * as arrow from "apache-arrow";
import { DataFormatError, UsageError } from "../lib/core/errors.ts";
import { ExampleColumns } from "../lib/io/columns.ts";
import { prepareCorpus } from "../lib/io/prepare.ts";
import { readManifest } from "../lib/io/manifest.ts";
import { readExamples } from "../lib/io/read.ts";
import { mixSeed, Sfc32 as Rng } from "../lib/core/rng.ts";
import { ZipfCorpus } from "../lib/io/synthetic.ts";
import { createBrownTokenizer, createTokenizer } from "../lib/io/tokenize.ts";
import { readVocab } from "../lib/io/vocab.ts";
import { progressReporter } from "../lib/io/progress.ts";
import { keepProbabilities, WindowEmitter, windowsReference } from "../lib/io/windows.ts";
import { main as corpusMain } from "../pipelines/corpus.ts";

const rowsOf = (b: { offsets: Int32Array; indices: Int32Array; values: Float32Array }) => {
  const out: [number[], number[]][] = [];
  for (let r = 0; r + 1 < b.offsets.length; r++) {
    const a = b.offsets[r], e = b.offsets[r + 1];
    out.push([Array.from(b.indices.subarray(a, e)), Array.from(b.values.subarray(a, e))]);
  }
  return out;
};

async function tinyCorpus(dir: string): Promise<string> {
  const p = `${dir}/tiny.txt`;
  // counts: a 2, b 2, c 1 → ids a=0, b=1, c=2 (ties by word)
  await Deno.writeTextFile(p, "A b, c.\nb a\n");
  return p;
}

for (const format of ["arrow", "parquet"] as const) {
  Deno.test(`round trip by hand: cbow, ${format}`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const input = await tinyCorpus(dir);
      const m = await prepareCorpus({
        input,
        outDir: `${dir}/out`,
        mode: "cbow",
        window: 1,
        minCount: 1,
        seed: 1,
        format,
      });
      assert.deepEqual(m.vocabSize, 3);
      assert.deepEqual(m.rows, 5);
      assert.deepEqual((await readVocab(`${dir}/out/vocab.tsv`)).words, ["a", "b", "c"]);
      const got: [number[], number[]][] = [], tgt: [number[], number[]][] = [];
      const sizes: number[] = [];
      for await (const b of readExamples(`${dir}/out`, { batchSize: 2 })) {
        got.push(...rowsOf(b.inputs));
        tgt.push(...rowsOf(b.targets));
        sizes.push(b.size);
      }
      assert.deepEqual(sizes, [2, 2, 1]);
      // sentence [a b c]: [b]→a, [a c]→b, [b]→c; sentence [b a]: [a]→b, [b]→a
      assert.deepEqual(got, [[[1], [1]], [[0, 2], [1, 1]], [[1], [1]], [[0], [1]], [[1], [1]]]);
      assert.deepEqual(tgt, [[[0], [1]], [[1], [1]], [[2], [1]], [[1], [1]], [[0], [1]]]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`round trip by hand: skipgram, ${format}`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const input = await tinyCorpus(dir);
      const m = await prepareCorpus({
        input,
        outDir: `${dir}/out`,
        mode: "skipgram",
        window: 2,
        minCount: 1,
        seed: 1,
        format,
        shardRows: 2,
      });
      assert.deepEqual(m.rows, 5);
      assert.deepEqual(m.shards.map((x) => x.rows), [3, 2]); // a shard ends at the first sentence boundary past 2 rows
      const inp: [number[], number[]][] = [], tgt: [number[], number[]][] = [];
      for await (const b of readExamples(`${dir}/out`, { batchSize: 4 })) {
        inp.push(...rowsOf(b.inputs));
        tgt.push(...rowsOf(b.targets));
      }
      assert.deepEqual(inp.map((r) => r[0]), [[0], [1], [2], [1], [0]]);
      // weights (w − |d| + 1)/w with w = 2: distance 1 → 1, distance 2 → 0.5
      assert.deepEqual(tgt, [
        [[1, 2], [1, 0.5]],
        [[0, 2], [1, 1]],
        [[0, 1], [0.5, 1]],
        [[0], [1]],
        [[1], [1]],
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("Brown corpus: tags stripped, lines are sentences, limitTokens takes a slice", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = await prepareCorpus({
      input: "brown",
      outDir: dir,
      mode: "cbow",
      window: 2,
      minCount: 1,
      seed: 1,
      limitTokens: 2000,
    });
    assert.deepEqual(m.tokens, 2000);
    const v = await readVocab(`${dir}/vocab.tsv`, { expectedSize: m.vocabSize });
    assert.deepEqual(v.words[0], "the");
    assert(v.words.includes("jury") && v.words.includes("fulton"));
    assert(!v.words.some((w) => w.includes("/")), "a /tag survived");
    assert(!v.words.includes("``") && !v.words.includes("."), "punctuation kept with punctuation: strip");
    assert.deepEqual((await readManifest(dir)).rows, m.rows);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizers: Unicode, lowercase, punctuation, sentences", () => {
  const seen: string[][] = [];
  const push = (t: string[], n: number) => seen.push(t.slice(0, n));
  createTokenizer({})("Café NAÏVE Straße, don't e-mail 3.14!", push);
  assert.deepEqual(seen.pop(), ["café", "naïve", "straße", "don't", "e-mail", "3.14"]);
  createTokenizer({ lowercase: false, punctuation: "keep" })("Hi, you!", push);
  assert.deepEqual(seen.pop(), ["Hi", ",", "you", "!"]);
  createTokenizer({ sentences: "punct" })("One two. Three!", push);
  assert.deepEqual(seen.splice(0), [["one", "two"], ["three"]]);
  createTokenizer({})("e\u0301te\u0301", push); // decomposed é → NFC
  assert.deepEqual(seen.pop(), ["\u00e9t\u00e9"]);
  createBrownTokenizer({})("\tThe/at jury/nn ,/, said/vbd ``/`` no/at ''/'' ./.", push);
  assert.deepEqual(seen.pop(), ["the", "jury", "said", "no"]);
});

Deno.test("window emitter matches the reference (both modes, fixed and dynamic windows)", () => {
  const rng = new Rng(5);
  for (const mode of ["cbow", "skipgram"] as const) {
    for (const dynamicWindow of [false, true]) {
      for (let trial = 0; trial < 20; trial++) {
        const n = 1 + rng.nextInt(12), window = 1 + rng.nextInt(4);
        const ids = Array.from({ length: n }, () => rng.nextInt(6));
        const cols = new ExampleColumns(2, 2);
        new WindowEmitter({ mode, window, dynamicWindow }, new Rng(trial)).emit(
          Int32Array.from(ids),
          n,
          cols,
        );
        const ref = windowsReference(ids, { mode, window, dynamicWindow }, new Rng(trial));
        assert.deepEqual(cols.rows, ref.length);
        for (let r = 0; r < ref.length; r++) {
          assert.deepEqual(Array.from(cols.inIdx.subarray(cols.inOff[r], cols.inOff[r + 1])), ref[r].input);
          assert.deepEqual(Array.from(cols.tIdx.subarray(cols.tOff[r], cols.tOff[r + 1])), ref[r].target);
          assert.deepEqual(Array.from(cols.tVal.subarray(cols.tOff[r], cols.tOff[r + 1])), ref[r].value);
        }
      }
    }
  }
});

Deno.test("subsampling keeps frequent words less often (word2vec formula)", () => {
  const p = keepProbabilities([1000, 10, 0], 1010, 1e-2);
  const f = 1000 / 1010;
  assert.ok(Math.abs(p[0] - (Math.sqrt(f / 1e-2) + 1) * 1e-2 / f) < 1e-6);
  assert.ok(p[0] < 0.2);
  assert.deepEqual(p[1], 1);
  assert.deepEqual(p[2], 1);
});

Deno.test("synthetic Zipf stream: deterministic per seed, Zipf-shaped", () => {
  const collect = (seed: number) => {
    const z = new ZipfCorpus({ vocabSize: 1000, tokens: 20000, seed });
    const ids: number[] = [];
    z.forEachSentence((b, n) => {
      for (let i = 0; i < n; i++) ids.push(b[i]);
    });
    return ids;
  };
  const a = collect(7), b = collect(7), c = collect(8);
  assert.deepEqual(a.length, 20000);
  assert.deepEqual(a, b);
  assert(a.some((x, i) => x !== c[i]));
  const counts = new Array(1000).fill(0);
  for (const x of a) counts[x]++;
  // P(0)/P(1) = 2 for s = 1: check it loosely, and that rank 0 is the most frequent
  assert(counts[0] > counts[1] && counts[1] > counts[9]);
  assert(Math.abs(counts[0] / counts[1] - 2) < 0.3, `ratio ${counts[0] / counts[1]}`);
  assert(mixSeed(1, 2) !== mixSeed(2, 1));
});

Deno.test("synthetic prepare: deterministic shards for a seed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = async (out: string) => {
      await prepareCorpus({
        synthetic: { vocabSize: 500, tokens: 5000, seed: 3 },
        outDir: out,
        mode: "skipgram",
        window: 3,
        minCount: 1,
        seed: 9,
        sample: 1e-2,
      });
      return await Deno.readFile(`${out}/part-00000.arrow`);
    };
    const x = await run(`${dir}/a`), y = await run(`${dir}/b`);
    assert.deepEqual(x, y);
    const t = arrow.tableFromIPC(x);
    assert(t.numRows > 1000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepare errors: empty corpus, no word reaching min-count, bad options", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/empty.txt`, "\n ,,, \n");
    await assert.rejects(
      () =>
        prepareCorpus({
          input: `${dir}/empty.txt`,
          outDir: `${dir}/o`,
          mode: "cbow",
          window: 2,
          minCount: 1,
          seed: 1,
        }),
      (e: Error) => e instanceof DataFormatError && /empty\.txt: empty corpus: no tokens/.test(e.message),
    );
    await Deno.writeTextFile(`${dir}/rare.txt`, "x y z\n");
    await assert.rejects(
      () =>
        prepareCorpus({
          input: `${dir}/rare.txt`,
          outDir: `${dir}/o`,
          mode: "cbow",
          window: 2,
          minCount: 5,
          seed: 1,
        }),
      (e: Error) =>
        e instanceof DataFormatError && /empty corpus: no word occurs at least --min-count 5/.test(e.message),
    );
    await Deno.writeTextFile(`${dir}/one.txt`, "x\nx\n");
    await assert.rejects(
      () =>
        prepareCorpus({
          input: `${dir}/one.txt`,
          outDir: `${dir}/o`,
          mode: "skipgram",
          window: 2,
          minCount: 1,
          seed: 1,
        }),
      (e: Error) =>
        e instanceof DataFormatError &&
        /gave no window with context \(sentences of one word\?\)$/.test(e.message),
    );
    // a sentence of six words whose every word subsampling removed: --sample is named, not one-word sentences
    await Deno.writeTextFile(`${dir}/six.txt`, "the cat sat on the mat\n");
    await assert.rejects(
      () =>
        prepareCorpus({
          input: `${dir}/six.txt`,
          outDir: `${dir}/o`,
          mode: "skipgram",
          window: 2,
          minCount: 1,
          sample: 1e-4,
          seed: 1,
        }),
      (e: Error) =>
        e instanceof DataFormatError &&
        /six\.txt: empty corpus: 6 tokens gave no window with context after --sample 0\.0001 removed the frequent words .*; give --sample 0$/
          .test(e.message),
    );
    await assert.rejects(
      () =>
        prepareCorpus({
          input: `${dir}/one.txt`,
          outDir: `${dir}/o`,
          mode: "cbow",
          window: 0,
          minCount: 1,
          seed: 1,
        }),
      (e: Error) => e instanceof UsageError && /--window must be an integer >= 1, got 0/.test(e.message),
    );
    await assert.rejects(
      () =>
        prepareCorpus({
          input: `${dir}/missing.txt`,
          outDir: `${dir}/o`,
          mode: "cbow",
          window: 1,
          minCount: 1,
          seed: 1,
        }),
      (e: Error) => e instanceof UsageError && /missing\.txt" does not exist/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gzip input and folders are read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/in`);
    const gz = new Response(new Blob(["a b a b\n"]).stream().pipeThrough(new CompressionStream("gzip")));
    await Deno.writeFile(`${dir}/in/x.txt.gz`, new Uint8Array(await gz.arrayBuffer()));
    await Deno.writeTextFile(`${dir}/in/y.txt`, "b a\n");
    const m = await prepareCorpus({
      input: `${dir}/in`,
      outDir: `${dir}/o`,
      mode: "cbow",
      window: 1,
      minCount: 1,
      seed: 1,
    });
    assert.deepEqual(m.tokens, 6);
    assert.deepEqual(m.rows, 6);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gzip: every member of a concatenated file is read (cat a.gz b.gz), as gzip -d does; zero padding ignored, other trailing data and truncation refused naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const gzip = async (text: string) =>
    new Uint8Array(
      await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
    );
  const cat = (...parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
    return out;
  };
  const prepare = (input: string, out: string) =>
    prepareCorpus({ input, outDir: `${dir}/${out}`, mode: "cbow", window: 1, minCount: 1, seed: 1 });
  try {
    const a = await gzip("a b a b\n"), b = await gzip("c d c\n");
    await Deno.writeFile(`${dir}/multi.gz`, cat(a, b, await gzip("")));
    const m = await prepare(`${dir}/multi.gz`, "m");
    assert.equal(m.tokens, 7, "three members: 4 + 3 + 0 tokens");
    assert.deepEqual((await readVocab(`${dir}/m/vocab.tsv`)).words, ["a", "b", "c", "d"]);
    await Deno.writeFile(`${dir}/padded.gz`, cat(a, new Uint8Array(512)));
    assert.equal((await prepare(`${dir}/padded.gz`, "p")).tokens, 4);
    await Deno.writeFile(
      `${dir}/trailing.gz`,
      cat(a, new TextEncoder().encode("garbage after the member\n")),
    );
    await assert.rejects(
      prepare(`${dir}/trailing.gz`, "t"),
      (e) =>
        e instanceof DataFormatError &&
        e.message.startsWith(
          `${dir}/trailing.gz: cannot read gzip input: data after the end of a gzip member`,
        ),
    );
    await Deno.writeFile(`${dir}/cut.gz`, cat(a, b.subarray(0, 15)));
    await assert.rejects(
      prepare(`${dir}/cut.gz`, "c"),
      (e) =>
        e instanceof DataFormatError &&
        /cut\.gz: cannot read gzip input: the gzip data is truncated/.test(e.message),
    );
    // the job: exit 5, one line naming the file
    const errs: string[] = [], err = console.error;
    console.error = (s: string) => errs.push(s);
    try {
      assert.equal(await corpusMain(["--input", `${dir}/trailing.gz`, "--out", `${dir}/job`]), 5);
    } finally {
      console.error = err;
    }
    assert.match(
      errs.at(-1)!,
      new RegExp(`^corpus: ${dir}/trailing\\.gz: cannot read gzip input: data after`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: strict flags, --help lists every flag with its default, a run writes a corpus", async () => {
  const lines: string[] = [], errs: string[] = [];
  const log = console.log, err = console.error;
  console.log = (s: string) => lines.push(s);
  console.error = (s: string) => errs.push(s);
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await corpusMain(["--bogus"]), 2);
    assert(/Unknown option '--bogus'/.test(errs.join("\n")));
    assert.deepEqual(await corpusMain(["--help"]), 0);
    const help = lines.join("\n");
    for (
      const f of [
        "--input",
        "--out",
        "--mode",
        "--window",
        "--min-count",
        "--max-vocab",
        "--sample",
        "--seed",
        "--format",
        "--shard-rows",
        "--lowercase",
        "--synthetic",
      ]
    ) {
      assert(new RegExp(`${f} .*\\(default: `).test(help), `${f} missing from --help`);
    }
    assert.deepEqual(await corpusMain(["--window", "x"]), 2);
    assert(/--window must be an integer >= 1, got "x"/.test(errs.join("\n")));
    // the shared exit-code table (lib/core/exit_codes.ts): a missing or empty input is bad data, 5
    assert.deepEqual(await corpusMain(["--input", `${dir}/missing.txt`, "--out", `${dir}/m`]), 5);
    assert.match(errs.at(-1)!, /^corpus: --input: ".*missing\.txt" does not exist/);
    await Deno.writeTextFile(`${dir}/empty.txt`, "");
    assert.deepEqual(await corpusMain(["--input", `${dir}/empty.txt`, "--out", `${dir}/m`]), 5);
    assert.match(errs.at(-1)!, /^corpus: .*empty\.txt: empty corpus/);
    assert.match(
      help,
      /Exit codes.*:\n {2}0 {2}done\n {2}1 {2}internal error\n {2}2 {2}bad flag or value\n {2}3 {2}.*\n {2}5 {2}bad data/,
    );
    lines.length = 0;
    assert.deepEqual(
      await corpusMain([
        "--input",
        "brown",
        "--out",
        `${dir}/c`, // not dir: it holds empty.txt, and --out is never a folder of other files
        "--limit-tokens",
        "500",
        "--min-count",
        "1",
        "--format",
        "parquet",
      ]),
      0,
    );
    const summary = JSON.parse(lines.at(-1)!);
    assert.deepEqual(summary.tokens, 500);
    assert.deepEqual(summary.format, "parquet");
  } finally {
    console.log = log;
    console.error = err;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RNG: deterministic and unbiased enough", () => {
  const a = new Rng(1), b = new Rng(1);
  for (let i = 0; i < 100; i++) assert.deepEqual(a.nextU32(), b.nextU32());
  const counts = new Array(10).fill(0);
  const r = new Rng(2);
  for (let i = 0; i < 100000; i++) counts[r.nextInt(10)]++;
  for (const c of counts) assert(Math.abs(c - 10000) < 500, `bucket ${c}`);
  assert.throws(() => new ZipfCorpus({ vocabSize: 1, tokens: 1, seed: 1 }), UsageError);
});

Deno.test("progress: a live line on a terminal, JSON lines otherwise", () => {
  const p = {
    phase: "windows" as const,
    bytes: 50,
    totalBytes: 100,
    tokens: 2_000_000,
    totalTokens: 0,
    rows: 10,
    shards: 1,
    elapsedS: 1,
    tokensPerS: 2_000_000,
    etaS: 1,
  };
  const tty: string[] = [], pipe: string[] = [];
  const a = progressReporter({ tty: true, write: (s) => tty.push(s) });
  a.update(p);
  a.end();
  assert.equal(
    tty[0],
    "\r\u001b[2K" + "windows  50.0% 50B/100B 2.00M tokens 2.00M tok/s rows 10 shards 1 ETA 0:00:01",
  );
  assert.equal(tty[1], "\n");
  const b = progressReporter({ tty: false, write: (s) => pipe.push(s) });
  b.update(p);
  const j = JSON.parse(pipe[0]);
  assert.equal(j.progress, "windows");
  assert.equal(j.tokens, 2_000_000);
  assert.ok(pipe[0].endsWith("\n"));
  // an engine step (--engine duckdb): the same live line, or one JSON object naming the engine and step
  const s = {
    engine: "duckdb",
    step: "tokenising",
    percent: 43.14,
    rows: 12_300_000,
    totalRows: 28_600_000,
    stepS: 12,
    elapsedS: 75,
  };
  const c = progressReporter({ tty: true, write: (x) => tty.push(x) });
  c.step(s);
  c.step({ ...s, percent: NaN, rows: 0, totalRows: 0 });
  c.end();
  assert.equal(
    tty.at(-3),
    "\r\u001b[2Kduckdb tokenising  43.1% rows 12.30M/28.60M step 0:00:12 total 0:01:15",
  );
  assert.equal(tty.at(-2), "\r\u001b[2Kduckdb tokenising     ?% step 0:00:12 total 0:01:15");
  assert.equal(tty.at(-1), "\n");
  const d = progressReporter({ tty: false, write: (x) => pipe.push(x) });
  d.step({ ...s, percent: NaN });
  const k = JSON.parse(pipe.at(-1)!);
  assert.deepEqual([k.progress, k.step, k.percent, k.totalRows], ["duckdb", "tokenising", -1, 28_600_000]);
});

Deno.test("max-vocab keeps the most frequent words; out-of-vocabulary words are dropped before windowing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/t.txt`, "a a a b b c\na c b\n");
    const m = await prepareCorpus({
      input: `${dir}/t.txt`,
      outDir: `${dir}/o`,
      mode: "cbow",
      window: 1,
      minCount: 1,
      maxVocab: 2,
      seed: 1,
    });
    assert.deepEqual((await readVocab(`${dir}/o/vocab.tsv`)).words, ["a", "b"]);
    // sentences without c: [a a a b b] and [a b] → 5 + 2 rows
    assert.equal(m.rows, 7);
    assert.equal(m.keptTokens, 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Issue 18 follow-up (2026-12-06): pass 2 read and tokenised the text again and looked every word up
// (about 0.5 s of the Brown corpus's 2.4 s); it replays pass 1's token log (lib/io/token_log.ts) now, the
// text read once. The log past its cap (or a counter that pruned words) reads it again: the same bytes.
Deno.test("pass 2 replays pass 1's tokens: the text read once, the shards byte for byte those of a second read", async () => {
  const dir = await Deno.makeTempDir();
  const open = Deno.open;
  try {
    const input = `${dir}/text.txt`;
    const rng = new Rng(mixSeed(5, 0));
    const words = ["the", "of", "a", "cat", "dog", "Sat", "ran", "on", "mat", "rare"];
    const lines: string[] = [];
    for (let l = 0; l < 400; l++) {
      const n = rng.nextInt(40);
      // sentences within lines (--sentences punct), empty lines, one line longer than MAX_SENTENCE's 1000 words
      const row = Array.from({ length: l === 7 ? 2500 : n }, () => words[rng.nextInt(words.length)]);
      if (n > 10) row.splice(5, 0, "end.");
      lines.push(row.join(" "));
    }
    await Deno.writeTextFile(input, lines.join("\n") + "\n");
    const opened: string[] = [];
    Deno.open = (path, options) => {
      if (String(path) === input) opened.push(String(path));
      return open(path, options);
    };
    const prepare = (out: string, tokenLogCap?: number) =>
      prepareCorpus({
        input,
        outDir: `${dir}/${out}`,
        mode: "skipgram",
        window: 2,
        minCount: 2,
        seed: 3,
        sample: 0.05,
        sampleDraws: 2,
        sentences: "punct",
        limitTokens: 9001, // stops within a line
        batchRows: 97,
        shardRows: 1000,
        ...(tokenLogCap === undefined ? {} : { tokenLogCap }),
      });
    // (the input's type is sniffed first: an open of its own)
    const a = await prepare("replayed");
    const once = opened.length;
    const b = await prepare("read-again", 16);
    assert.equal(
      opened.length - once,
      once + 1,
      `${once} opens replayed, ${opened.length - once} read again`,
    );
    assert.deepEqual({ ...a, created: "" }, { ...b, created: "" });
    assert.ok(a.shards.length > 1 && a.rows > 0);
    const files = [...Deno.readDirSync(`${dir}/replayed`)].map((e) => e.name).sort();
    assert.deepEqual(files, [...Deno.readDirSync(`${dir}/read-again`)].map((e) => e.name).sort());
    for (const f of files.filter((f) => f !== "manifest.json")) {
      assert.deepEqual(
        await Deno.readFile(`${dir}/replayed/${f}`),
        await Deno.readFile(`${dir}/read-again/${f}`),
        f,
      );
    }
  } finally {
    Deno.open = open;
    await Deno.remove(dir, { recursive: true });
  }
});
