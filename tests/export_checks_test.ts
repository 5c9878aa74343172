// The library's refusals at the export and evaluation boundary: a word on two rows is not published (it
// would not read back), a NaN/Inf vector is not evaluated (its ρ would be made of NaN cosines), and the
// file-system failures of publishEmbeddings and readEmbeddings are the project's one-line IoError.
import assert from "node:assert/strict";
import { join } from "node:path";
import { IoError, UsageError } from "../lib/core/errors.ts";
import { EmbeddingIndex } from "../lib/eval/index.ts";
import { evaluateEmbeddings } from "../lib/eval/report.ts";
import { publishEmbeddings } from "../lib/export/publish.ts";
import { readEmbeddings } from "../lib/export/read.ts";

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
