// Failing tests of the 2026-12-05 clients sweep (/work/notes/sweep-clients-2026-12-05.md); no fixes here.
import assert from "node:assert/strict";
import { parseSimilarity } from "../lib/eval/similarity.ts";

// Finding: the first data line of a similarity file whose score is not a number is taken for a header and
// dropped silently (total counts 3 pairs of 4).
Deno.test("parseSimilarity: a first line `the paris NaN` is an error, not a silently dropped header", () => {
  assert.throws(() => parseSimilarity("the paris NaN\nthe king 3\nking queen 5\nthe man 1\n", "s.txt"));
  assert.throws(() => parseSimilarity("the paris 7,5\nthe king 3\nking queen 5\n", "s.txt"));
});
