// bench:peers helpers (bench/peers_runs.ts, bench/peers_synthetic.ts): fastText's progress and vocabulary
// lines are parsed, and the synthetic text's counts agree with an independent count of the generator.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fastTextVocabulary, lastWordsPerSecPerThread } from "../bench/peers_runs.ts";
import { writeSyntheticText } from "../bench/peers_synthetic.ts";
import { ZipfCorpus } from "../lib/io/synthetic.ts";

Deno.test("fastText output: the last words/sec/thread and the vocabulary size are read", () => {
  const stderr = "\rRead 0M words\nNumber of words:  387\nNumber of labels: 0\n" +
    "\rProgress:   1.2% words/sec/thread:     640 lr:  0.049 avg.loss: 10.1 ETA:  70h 0m" +
    "\rProgress:   2.5% words/sec/thread:     655 lr:  0.048 avg.loss:  9.9 ETA:  69h 0m";
  assert.equal(lastWordsPerSecPerThread(stderr), 655);
  assert.equal(fastTextVocabulary(stderr), 387);
  assert.equal(fastTextVocabulary("no such line"), undefined);
  assert.throws(() => lastWordsPerSecPerThread("Read 0M words\n"), /no fastText progress line/);
});

Deno.test("synthetic text: tokens, lines, distinct words and min-count survivors match the generator", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = {
      vocab: 3000,
      tokens: 20000,
      minCount: 2,
      seed: 7,
      softmaxSeconds: 1,
      epochs: 1,
      wantVocabulary: 1,
    };
    const t = await writeSyntheticText(join(dir, "z.txt"), s, () => {});
    const counts = new Map<number, number>();
    let lines = 0;
    new ZipfCorpus({ vocabSize: s.vocab, tokens: s.tokens, seed: s.seed }).forEachSentence((ids, n) => {
      lines++;
      for (let i = 0; i < n; i++) counts.set(ids[i], (counts.get(ids[i]) ?? 0) + 1);
    });
    assert.equal(t.tokens, s.tokens);
    assert.equal(t.lines, lines);
    assert.equal(t.distinct, counts.size);
    assert.equal(t.kept, [...counts.values()].filter((c) => c >= 2).length);
    assert.ok(t.kept < t.distinct, "some words occur once");
    assert.match(
      t.command,
      /^deno task corpus --synthetic --synthetic-vocab 3000 --synthetic-tokens 20000 --seed 7/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
