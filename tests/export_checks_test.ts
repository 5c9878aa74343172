// The library's refusals at the export and evaluation boundary: a word on two rows is not published (it
// would not read back), a NaN/Inf vector is not evaluated (its ρ would be made of NaN cosines), and the
// file-system failures of publishEmbeddings and readEmbeddings are the project's one-line IoError; a word
// with a character the C readers of word2vec files split on is not written into .vec/.bin.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DataFormatError, IoError, UsageError } from "../lib/core/errors.ts";
import { EmbeddingIndex } from "../lib/eval/index.ts";
import { evaluateEmbeddings } from "../lib/eval/report.ts";
import { publishEmbeddings } from "../lib/export/publish.ts";
import { readEmbeddings } from "../lib/export/read.ts";
import { checkFormatsHoldWords, word2vecWordFault } from "../lib/export/embeddings.ts";
import { writeWord2VecBinary, writeWord2VecText } from "../lib/export/word2vec.ts";
import { writeArrowEmbeddings } from "../lib/export/arrow.ts";

Deno.test("publishEmbeddings: a word on two rows is refused in one line naming both rows, before anything is written", async () => {
  const root = await Deno.makeTempDir({ prefix: "export-checks-" });
  try {
    await assert.rejects(
      () =>
        publishEmbeddings({
          outRoot: join(root, "e"),
          words: ["a", "b", "a"],
          input: Float32Array.of(1, 0, 0, 1, 1, 1),
          d: 2,
          formats: ["vec"],
          manifest: {},
        }),
      (e: Error) =>
        e instanceof UsageError &&
        e.message ===
          'publishEmbeddings: word "a" is on rows 0 and 2 (0-based); every word must be on one row',
    );
    assert.equal(await Deno.stat(join(root, "e")).then(() => true, () => false), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("publishEmbeddings under a regular file, readEmbeddings of a missing file or a folder: one-line IoErrors naming the path", async () => {
  const root = await Deno.makeTempDir({ prefix: "export-checks-" });
  try {
    const file = join(root, "a-file");
    await Deno.writeTextFile(file, "x");
    await assert.rejects(
      () =>
        publishEmbeddings({
          outRoot: join(file, "e"),
          words: ["a"],
          input: Float32Array.of(1, 2),
          d: 2,
          formats: ["vec"],
          manifest: {},
        }),
      (e: Error) =>
        e instanceof IoError && e.errno === "ENOTDIR" &&
        e.message.startsWith(
          `cannot create folder ${join(file, "e", "versions")}: a part of the path is a regular file`,
        ),
    );
    const missing = join(root, "nope.vec");
    for (
      const path of [missing, join(root, "nope.parquet"), join(root, "nope.arrow"), join(root, "nope.bin")]
    ) {
      await assert.rejects(
        () => readEmbeddings(path),
        (e: Error) =>
          e instanceof IoError && e.reading && e.errno === "ENOENT" && e.message.includes(path) &&
          e.message.includes("no such file or folder") && !e.message.includes("\n"),
        path,
      );
    }
    const folder = join(root, "dir.vec");
    await Deno.mkdir(folder);
    await assert.rejects(
      () => readEmbeddings(folder),
      (e: Error) => e instanceof IoError && e.errno === "EISDIR" && e.message.includes(folder),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("readEmbeddings of a cut .arrow file: one line saying it is truncated or corrupt, not the reader's TypeError", async () => {
  const root = await Deno.makeTempDir({ prefix: "export-checks-" });
  try {
    const whole = join(root, "e.arrow"), cut = join(root, "cut.arrow");
    const words = Array.from({ length: 200 }, (_, i) => `w${i}`);
    await writeArrowEmbeddings(whole, { words, vectors: new Float32Array(200 * 8).fill(0.5), d: 8 });
    const bytes = await Deno.readFile(whole);
    for (const n of [16, 200, bytes.length >> 1, bytes.length - 9]) {
      await Deno.writeFile(cut, bytes.subarray(0, n));
      await assert.rejects(
        () => readEmbeddings(cut),
        (e: Error) =>
          e instanceof DataFormatError && e.message.startsWith(`${cut}: not an Arrow IPC file or stream: `) &&
          !/Cannot read properties|undefined|null/.test(e.message) && !e.message.includes("\n"),
        `${n} bytes`,
      );
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("readEmbeddings of binary data under a .vec name: one line saying so, not the bytes themselves", async () => {
  const root = await Deno.makeTempDir({ prefix: "export-checks-" });
  try {
    const bin = join(root, "e.bin"), renamed = join(root, "e.vec"), noise = join(root, "noise.vec");
    const words = Array.from({ length: 20 }, (_, i) => `w${i}`);
    await writeWord2VecBinary(bin, { words, vectors: new Float32Array(20 * 8).fill(0.25), d: 8 });
    await Deno.copyFile(bin, renamed);
    const random = new Uint8Array(3000);
    for (let i = 0; i < random.length; i++) random[i] = (i * 131 + 7) % 256;
    await Deno.writeFile(noise, random);
    for (const [path, line] of [[renamed, 2], [noise, 1]] as const) {
      await assert.rejects(
        () => readEmbeddings(path),
        (e: Error) =>
          e instanceof DataFormatError && e.message.startsWith(`${path}: line ${line}: expected `) &&
          e.message.includes("binary data, not word2vec text") && !/[\uFFFD\n]/.test(e.message),
        path,
      );
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("evaluateEmbeddings and EmbeddingIndex refuse a NaN or infinite vector, naming its row and word", async () => {
  const ev = await Deno.makeTempDir({ prefix: "export-checks-" });
  try {
    await Deno.writeTextFile(join(ev, "wordsim353.tsv"), "a\tb\t5\nb\tc\t3\na\tc\t1\n");
    const words = ["a", "b", "c"];
    const ok = await evaluateEmbeddings(words, Float32Array.of(1, 0, 0, 1, 1, 1), 2, {
      evalDir: ev,
      analogies: false,
    });
    assert.ok(Math.abs(ok.similarity.wordsim353!.rho + 0.8660254) < 1e-6);
    for (
      const [bad, row, col, v] of [[NaN, 0, 0, "NaN"], [Infinity, 2, 1, "Infinity"], [
        -Infinity,
        1,
        0,
        "-Infinity",
      ]] as const
    ) {
      const vectors = Float32Array.of(1, 0, 0, 1, 1, 1);
      vectors[row * 2 + col] = bad;
      const want = `EmbeddingIndex: row ${row} ("${
        words[row]
      }") column ${col} is ${v}: every vector must be finite`;
      await assert.rejects(
        () => evaluateEmbeddings(words, vectors, 2, { evalDir: ev, analogies: false }),
        (e: Error) => e instanceof UsageError && e.message.startsWith(want),
      );
      assert.throws(() => new EmbeddingIndex(words, vectors, 2), UsageError);
    }
  } finally {
    await Deno.remove(ev, { recursive: true });
  }
});

// Sweep 2026-12-05, finding 1: fastText 0.9.2 (`-pretrainedVectors`, loadVectors: `in >> word`) and
// word2vec's C tools split a .vec/.bin row on any C whitespace; a word with a tab, vertical tab or form feed
// shifts its row and fastText silently leaves every later row at zero (a NUL: fastText's saved model cannot
// be loaded). Such a word is refused before a word2vec file is written; gensim's files holding one are
// still read (and can be republished as Arrow/Parquet).
Deno.test("word2vecWordFault: a tab, vertical tab, form feed or NUL in a word is refused (fastText misreads it)", async () => {
  for (const w of ["tab\tword", "\tlead", "trail\t", "a\u000bb", "a\u000cb", "a\u0000b"]) {
    assert.match(word2vecWordFault(w), /on which word2vec and fastText split a row/, JSON.stringify(w));
  }
  for (const w of ["a b", "a\nb", "a\r"]) {
    assert.equal(word2vecWordFault(w), "contains a space or a line break");
  }
  // what every client reads back: no-break space, U+3000, U+2028, U+0085, U+001C
  for (const w of ["new\u00a0york", "a\u3000b", "a\u2028b", "a\u0085b", "a\u001cb", "caf\u00e9"]) {
    assert.equal(word2vecWordFault(w), "", JSON.stringify(w));
  }
  assert.throws(
    () => checkFormatsHoldWords(["the", "tab\tword"], ["arrow", "vec"], "vocab.tsv", (i) => `line ${i + 1}`),
    (e: Error) =>
      e instanceof DataFormatError &&
      e.message ===
        'vocab.tsv: line 2: word "tab\\tword" contains a tab, on which word2vec and fastText split a row, ' +
          "which the word2vec files of --formats vec cannot hold; publish with --formats arrow,parquet, which " +
          "hold any word, or correct the word",
  );
  checkFormatsHoldWords(["tab\tword"], ["arrow", "parquet"], "vocab.tsv", (i) => `line ${i + 1}`);
  const dir = await Deno.makeTempDir({ prefix: "export-checks-" });
  try {
    const emb = { words: ["the", "a\fb", "new"], vectors: Float32Array.of(1, 2, 3, 4, 5, 6), d: 2 };
    await assert.rejects(
      writeWord2VecText(join(dir, "w.vec"), emb),
      /row 2: word "a\\fb" contains a form feed/,
    );
    await assert.rejects(writeWord2VecBinary(join(dir, "w.bin"), emb), DataFormatError);
    // reading stays gensim's: a gensim .vec whose word holds a tab is read as gensim reads it
    await Deno.writeTextFile(join(dir, "g.vec"), "3 2\nthe 1 2\ntab\tword 3 4\nnew 0.5 6\n");
    const got = await readEmbeddings(join(dir, "g.vec"));
    assert.deepEqual(got.words, ["the", "tab\tword", "new"]);
    assert.deepEqual([...got.vectors], [1, 2, 3, 4, 0.5, 6]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
