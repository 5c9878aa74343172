// Failing tests of the 2026-12-05 clients sweep (/work/notes/sweep-clients-2026-12-05.md); no fixes here.
import assert from "node:assert/strict";
import { word2vecWordFault } from "../lib/export/embeddings.ts";
import { parseSimilarity } from "../lib/eval/similarity.ts";

// Finding 1: fastText 0.9.2 (`-pretrainedVectors`, loadVectors: `in >> word`) and word2vec's C tools split a
// .vec/.bin row on any C whitespace; a word with a tab, vertical tab or form feed shifts every later row
// (fastText silently keeps zero/random vectors). Such a word must be refused before a word2vec file is written.
Deno.test("word2vecWordFault: a tab, vertical tab or form feed in a word is refused (fastText misreads it)", () => {
  for (const w of ["tab\tword", "\tlead", "trail\t", "a\u000bb", "a\u000cb"]) {
    assert.notEqual(word2vecWordFault(w), "", JSON.stringify(w));
  }
});

// Finding: the first data line of a similarity file whose score is not a number is taken for a header and
// dropped silently (total counts 3 pairs of 4).
Deno.test("parseSimilarity: a first line `the paris NaN` is an error, not a silently dropped header", () => {
  assert.throws(() => parseSimilarity("the paris NaN\nthe king 3\nking queen 5\nthe man 1\n", "s.txt"));
  assert.throws(() => parseSimilarity("the paris 7,5\nthe king 3\nking queen 5\n", "s.txt"));
});
