// bench/pair.ts: two settings of the factored step in one process, alternating blocks: one thread
// against the split step on two, on a tiny layer (a few seconds).
import assert from "node:assert/strict";
import { median, pairRun, parseEnv } from "../bench/pair.ts";
import { UsageError } from "../lib/core/errors.ts";
import { openBlasBackend } from "../lib/linalg/blas.ts";

const blas = (() => {
  try {
    openBlasBackend().close();
    return true;
  } catch (e) {
    if (Deno.env.get("CI") === "true") throw e;
    return false;
  }
})();

Deno.test("pair: parseEnv and median", () => {
  assert.deepEqual(parseEnv(""), {});
  assert.deepEqual(parseEnv("FACTOROUT_THREADS=2,FACTOROUT_SPLIT=0"), {
    FACTOROUT_THREADS: "2",
    FACTOROUT_SPLIT: "0",
  });
  assert.throws(() => parseEnv("threads"), UsageError);
  assert.throws(() => parseEnv("=2"), UsageError);
  assert.equal(median([5, 1, 4, 2, 3]), 3);
});

Deno.test(
  { name: "pair: one thread against two, every block timed, the settings restored", ignore: !blas },
  async () => {
    const before = Deno.env.get("FACTOROUT_THREADS"), lines: string[] = [];
    const r = await pairRun({
      D: 400,
      d: 32,
      m: 8,
      k: 3,
      loss: "spherical",
      a: { FACTOROUT_THREADS: "1" },
      b: { FACTOROUT_THREADS: "2" },
      blocks: 3,
      steps: 4,
      log: (l) => lines.push(l),
    });
    assert.equal(r.a.length, 3);
    assert.equal(r.b.length, 3);
    assert.ok([...r.a, ...r.b].every((x) => Number.isFinite(x) && x > 0), JSON.stringify(r));
    assert.ok(r.bFaster >= 0 && r.bFaster <= 3);
    assert.equal(r.medianRatio, median(r.a.map((x, i) => r.b[i] / x)));
    // each side's backend says what it runs: one thread, and two split across them
    assert.ok(lines.some((l) => /^A: .*backend = blas .* 1 threads\)$/.test(l)), lines.join("\n"));
    assert.ok(
      lines.some((l) => /^B: .*backend = blas .* 2 threads, the factored step split/.test(l)),
      lines.join("\n"),
    );
    assert.equal(Deno.env.get("FACTOROUT_THREADS"), before);
  },
);
