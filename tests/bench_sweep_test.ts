// bench/sweep.ts: the epoch the best-epoch rule would keep (the lowest held-out loss, the earliest on a tie)
// and the grid's size as documented in docs/training-defaults.md.
import assert from "node:assert/strict";
import { keptEpoch, sweepGrid } from "../bench/sweep.ts";

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
