// bench/trainer_threads.sh in its QUICK=1 mode (a tiny corpus, threads 1 and 2): runs here in under a
// minute and writes the markdown table, one row per thread count, with the trainer's stage shares.
import assert from "node:assert/strict";
import { trainerTable } from "../bench/trainer.ts";

Deno.test("bench/trainer_threads.sh QUICK=1 writes the table in under a minute", async () => {
  const work = await Deno.makeTempDir();
  try {
    const t0 = performance.now();
    const r = await new Deno.Command("bash", {
      args: [new URL("../bench/trainer_threads.sh", import.meta.url).pathname],
      env: { QUICK: "1", TRAINER_WORK: work },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.ok(seconds < 60, `${seconds} s`);
    const text = await Deno.readTextFile(`${work}/trainer-threads.md`);
    const rows = text.split("\n").filter((l) => /^\| [12] \| worker \| \d+ \|/.test(l));
    assert.equal(rows.length, 2, text);
    assert.match(
      text,
      /\| threads \| reader \| trainer ex\/s .*\| layerStep % .*\| checkpoint % \| layer alone before \/ after \|/,
    );
    // the layer alone ran before and after each trainer run: two figures per row
    for (const row of rows) assert.match(row, /\| \d+ \/ \d+ \|$/, row);
    assert.match(text, /Command: `QUICK=1 bash bench\/trainer_threads\.sh`/);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("trainerTable: speed-up over the first row, the share of the layer alone, stage shares", () => {
  const t = trainerTable([
    {
      threads: 1,
      examplesPerSecond: 100,
      seconds: 10,
      stageSeconds: { layerStep: 5 },
      layerExamplesPerSecond: 200,
      layerRuns: [190, 210],
    },
    { threads: 2, examplesPerSecond: 170, seconds: 10, stageSeconds: { wait: 1 } },
  ]);
  const [one, two] = t.split("\n").slice(2).map((l) => l.split("|").map((c) => c.trim()));
  assert.deepEqual(one.slice(1, 7), ["1", "worker", "100", "1×", "200", "50%"]);
  assert.deepEqual(two.slice(1, 7), ["2", "worker", "170", "1.7×", "–", "–"]);
  assert.equal(one[12], "50"); // layerStep %
  assert.equal(one.at(-2), "190 / 210"); // the layer alone before and after the trainer
  assert.equal(two.at(-2), "–");
});
