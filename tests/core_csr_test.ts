/**
 * lib/core/csr.ts on its own: MergedTargets (used by every output layer and by the tests' references)
 * against a plain Map-based merge on random batches, in both orders and with buffers reused across batch
 * sizes; the builder, the row slices and the validation messages; RowSlots and SharedRowMarks against brute
 * force.
 */

import assert from "node:assert/strict";
import {
  CsrBuilder,
  findIndexOutside,
  MergedTargets,
  rowOfEntry,
  RowSlots,
  SharedRowMarks,
  sliceRows,
  validateCsr,
} from "../lib/core/csr.ts";
import { Rng } from "../lib/core/rng.ts";
import type { SparseBatch } from "../lib/core/types.ts";

function randomBatch(rng: Rng, m: number, maxK: number, D: number): SparseBatch {
  const offsets = new Int32Array(m + 1), idx: number[] = [], val: number[] = [];
  for (let i = 0; i < m; i++) {
    const K = rng.int(maxK + 1); // empty rows too
    for (let k = 0; k < K; k++) {
      idx.push(rng.int(D)); // small D: many repeats
      val.push(Math.fround(rng.uniform(-1, 2)));
    }
    offsets[i + 1] = idx.length;
  }
  return { offsets, indices: Int32Array.from(idx), values: Float32Array.from(val) };
}

/** The reference: per example, a Map in first-occurrence order, weights summed in float64. */
function referenceMerge(Y: SparseBatch): [number, number][][] {
  const out: [number, number][][] = [];
  for (let i = 0; i + 1 < Y.offsets.length; i++) {
    const acc = new Map<number, number>();
    for (let k = Y.offsets[i]; k < Y.offsets[i + 1]; k++) {
      acc.set(Y.indices[k], (acc.get(Y.indices[k]) ?? 0) + Y.values[k]);
    }
    out.push([...acc.entries()]);
  }
  return out;
}

Deno.test("MergedTargets: equals a Map-based merge, both orders, buffers reused across sizes", () => {
  const rng = new Rng(3);
  const mg = new MergedTargets();
  for (const [m, maxK, D] of [[1, 1, 1], [40, 12, 6], [3, 2, 100], [200, 9, 20], [5, 0, 4], [7, 30, 3]]) {
    const Y = randomBatch(rng, m, maxK, D);
    const want = referenceMerge(Y);
    for (const sorted of [false, true]) {
      mg.merge(Y, sorted);
      assert.equal(mg.m, m);
      assert.equal(mg.nnz, want.reduce((a, r) => a + r.length, 0));
      assert.equal(mg.maxK, Math.max(0, ...want.map((r) => r.length)));
      assert.equal(mg.off[m], mg.nnz);
      for (let i = 0; i < m; i++) {
        const got: [number, number][] = [];
        for (let e = mg.off[i]; e < mg.off[i + 1]; e++) {
          assert.equal(mg.ex[e], i, `ex of entry ${e}`);
          got.push([mg.idx[e], mg.w[e]]);
        }
        const expect = sorted ? [...want[i]].sort((a, b) => a[0] - b[0]) : want[i];
        assert.deepEqual(got, expect, `example ${i} (sorted: ${sorted})`);
      }
    }
  }
});

Deno.test("CsrBuilder and sliceRows: rows copied in order, slices rebased", () => {
  const rng = new Rng(4);
  const B = randomBatch(rng, 300, 7, 50);
  const b = new CsrBuilder();
  const picked = [5, 0, 299, 17, 17];
  for (const i of picked) b.pushRow(B, i);
  const v = b.view();
  assert.equal(b.m, picked.length);
  picked.forEach((i, r) => {
    assert.deepEqual(
      v.indices.subarray(v.offsets[r], v.offsets[r + 1]),
      B.indices.subarray(B.offsets[i], B.offsets[i + 1]),
    );
    assert.deepEqual(
      v.values.subarray(v.offsets[r], v.offsets[r + 1]),
      B.values.subarray(B.offsets[i], B.offsets[i + 1]),
    );
  });
  b.reset();
  assert.equal(b.view().offsets.length, 1);
  const s = sliceRows(B, 10, 20);
  assert.equal(s.offsets[0], 0);
  assert.equal(s.offsets.length, 11);
  assert.deepEqual(s.indices, B.indices.subarray(B.offsets[10], B.offsets[20]));
});

Deno.test("CsrBuilder: runs of rows, unweighted sources, entry by entry, take copies; equal to row by row", () => {
  const rng = new Rng(9);
  const B = randomBatch(rng, 500, 6, 40);
  // a run of rows at once equals the same rows one by one, across many buffer growths
  const run = new CsrBuilder(), one = new CsrBuilder();
  for (const [r0, r1] of [[0, 3], [3, 3], [10, 200], [499, 500], [0, 500]]) {
    run.appendRows(B.offsets, B.indices, B.values, r0, r1);
    for (let r = r0; r < r1; r++) one.pushRow(B, r);
  }
  assert.deepEqual(run.view(), one.view());
  assert.equal(run.m, 3 + 190 + 1 + 500);
  // null values mean 1
  const u = new CsrBuilder();
  u.appendRows(B.offsets, B.indices, null, 5, 9);
  u.appendRow(B.offsets, B.indices, null, 7);
  assert(u.view().values.every((x) => x === 1));
  assert.deepEqual(
    u.view().indices.subarray(0, B.offsets[9] - B.offsets[5]),
    B.indices.subarray(B.offsets[5], B.offsets[9]),
  );
  // entry by entry: a dropped row leaves no trace; take() returns copies that outlive reuse
  const e = new CsrBuilder();
  e.push(3, 0.5);
  e.endRow();
  e.push(8, 1);
  e.push(9, 2);
  assert.equal(e.openEntries, 2);
  e.dropRow();
  for (let k = 0; k < 1000; k++) e.push(k, k); // grows inside an open row
  e.endRow();
  const t = e.take();
  assert.deepEqual(Array.from(t.offsets), [0, 1, 1001]);
  assert.equal(t.indices[1], 0);
  assert.equal(t.values[1000], 999);
  e.reset();
  e.push(7, 7);
  e.endRow();
  assert.equal(t.indices[0], 3); // the copy is unchanged
  assert.deepEqual(Array.from(e.view().offsets), [0, 1]);
});

Deno.test("validateCsr / findIndexOutside / rowOfEntry: the position at fault", () => {
  const B = {
    offsets: Int32Array.of(0, 2, 2, 5),
    indices: Int32Array.of(1, 2, 3, 9, 4),
    values: new Float32Array(5),
  };
  assert.equal(findIndexOutside(B, 10), -1);
  assert.equal(findIndexOutside(B, 5), 3);
  assert.equal(rowOfEntry(B.offsets, 3), 2);
  assert.equal(rowOfEntry(B.offsets, 1), 0);
  assert.equal(validateCsr("X", B, 10), 3);
  assert.throws(() => validateCsr("X", B, 5), {
    name: "RangeError",
    message: "X.indices[3] = 9 is outside [0, D=5) (example 2)",
  });
  assert.throws(
    () => validateCsr("X", { ...B, values: new Float32Array(4) }, 10),
    /X.values.length = 4 differs/,
  );
  assert.throws(() => validateCsr("X", { ...B, offsets: Int32Array.of(0, 3, 2, 5) }, 10), /non-decreasing/);
  assert.throws(() => validateCsr("X", null as unknown as SparseBatch, 10), TypeError);
});

Deno.test("SharedRowMarks: marks exactly the entries whose row another range names (brute force)", () => {
  const marks = new SharedRowMarks();
  let seed = 5;
  const next = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let trial = 0; trial < 300; trial++) {
    const ranges = 1 + next(6), rows = 1 + next(trial % 2 ? 20 : 2_000_000_000);
    const bounds = new Int32Array(ranges + 1);
    bounds[0] = next(4); // entries before the first range are not read nor written
    for (let w = 0; w < ranges; w++) bounds[w + 1] = bounds[w] + next(trial % 3 ? 40 : 3); // empty ranges too
    const end = bounds[ranges];
    const idx = Int32Array.from({ length: end }, () => next(rows));
    const flags = new Int32Array(end + 2).fill(7);
    const marked = marks.mark(idx, bounds, ranges, flags);
    const rangeOf = (k: number) => {
      let w = 0;
      while (k >= bounds[w + 1]) w++;
      return w;
    };
    let want = 0;
    for (let k = bounds[0]; k < end; k++) {
      let shared = 0;
      for (let j = bounds[0]; j < end; j++) if (idx[j] === idx[k] && rangeOf(j) !== rangeOf(k)) shared = 1;
      assert.equal(flags[k], shared, `trial ${trial}: entry ${k} (row ${idx[k]})`);
      want += shared;
    }
    for (let k = 0; k < bounds[0]; k++) {
      assert.equal(flags[k], 7, `trial ${trial}: entry ${k} before the ranges`);
    }
    assert.equal(flags[end], 7, `trial ${trial}: past the ranges`);
    assert.equal(marked, want, `trial ${trial}: count`);
  }
});

Deno.test("RowSlots: one slot per distinct row, numbered in order of first appearance (brute force)", () => {
  const slots = new RowSlots(), rng = new Rng(11), next = (n: number) => rng.int(n);
  for (let trial = 0; trial < 300; trial++) {
    // few distinct rows (long probe chains) and ids up to 2e9; the table reused across sizes
    const rows = 1 + next(trial % 2 ? 20 : 2_000_000_000),
      first = next(4),
      end = first + next(trial % 3 ? 600 : 3);
    const idx = Int32Array.from({ length: end }, () => next(rows));
    const slot = new Int32Array(end + 1).fill(-7);
    const n = slots.assign(idx, first, end, slot);
    const seen = new Map<number, number>();
    for (let k = first; k < end; k++) {
      if (!seen.has(idx[k])) seen.set(idx[k], seen.size);
      assert.equal(slot[k], seen.get(idx[k]), `trial ${trial}: entry ${k} (row ${idx[k]})`);
    }
    assert.equal(n, seen.size, `trial ${trial}: distinct rows`);
    for (let k = 0; k < first; k++) assert.equal(slot[k], -7, `trial ${trial}: entry ${k} before first`);
    assert.equal(slot[end], -7, `trial ${trial}: past the end`);
  }
});
