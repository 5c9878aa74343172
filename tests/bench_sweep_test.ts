// bench/sweep.ts: the epoch the best-epoch rule would keep (the lowest held-out loss, the earliest on a tie)
// and the grid's size as documented in docs/training-defaults.md; the mean of the last k epochs' rows
// (--average, iterate averaging measured).
import assert from "node:assert/strict";
import { keptEpoch, sweepGrid, tailMean } from "../bench/sweep.ts";

Deno.test("sweep: the kept epoch is the one with the lowest held-out loss, the earliest on a tie", () => {
  // CBOW's recipe at dim 200: the loss is lowest after epoch 2 and rises after it
  const cbow = [8.496, 8.262, 8.271, 8.298].map((v, i) => ({ epoch: i + 1, validationLoss: v }));
  assert.equal(keptEpoch(cbow)?.epoch, 2);
  assert.equal(keptEpoch([{ epoch: 1, validationLoss: 1 }, { epoch: 2, validationLoss: 1 }])?.epoch, 1);
  assert.equal(keptEpoch([{ epoch: 1 }, { epoch: 2, validationLoss: 5 }])?.epoch, 2);
  assert.equal(keptEpoch([{ epoch: 1 }]), undefined);
});

Deno.test("sweep: the grid has the recipes (quick) and the documented 57 runs", () => {
  assert.equal(sweepGrid(true).length, 5);
  assert.equal(sweepGrid(false).length, 57);
});

Deno.test("sweep: --average's mean of the last k snapshots, plain and of the unit rows", () => {
  const snaps = [Float32Array.of(9, 9, 9, 9), Float32Array.of(3, 4, 0, 0), Float32Array.of(1, 0, 0, 2)];
  assert.deepEqual([...tailMean(snaps, 2, 2, false)], [2, 2, 0, 1]);
  assert.deepEqual([...tailMean(snaps, 1, 2, false)], [1, 0, 0, 2]);
  // unit rows: (0.6, 0.8) and (1, 0) average to (0.8, 0.4); a zero row stays zero, (0, 1) halves
  const u = tailMean(snaps, 2, 2, true);
  for (const [i, v] of [0.8, 0.4, 0, 0.5].entries()) assert.ok(Math.abs(u[i] - v) < 1e-6, `${i}: ${u[i]}`);
  assert.equal(tailMean(snaps, 3, 2, false)[0], Math.fround(13 / 3));
  assert.throws(() => tailMean(snaps, 4, 2, false), /k must be 1\.\.3/);
});
