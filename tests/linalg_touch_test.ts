/**
 * lib/linalg/touch.ts: touchRows reads one float per cache line of each row it is given, inside the row
 * (never past its d floats, whatever lda, at the end of the matrix too), and nothing for n = 0.
 */

import assert from "node:assert/strict";
import { touchRows } from "../lib/linalg/touch.ts";

/** A matrix whose reads are recorded (touchRows indexes A only). */
function recorded(length: number): { A: Float32Array; reads: number[] } {
  const data = Float32Array.from({ length }, (_, i) => i % 7);
  const reads: number[] = [];
  const A = new Proxy(data, {
    get(t, k) {
      if (typeof k === "string" && /^\d+$/.test(k)) reads.push(Number(k));
      return Reflect.get(t, k);
    },
  });
  return { A, reads };
}

Deno.test("touchRows: one float per 64 bytes of each row given, inside the row", () => {
  // d not a multiple of 16; lda = d (rows packed: a read past d would land in the next row, or past the
  // array for the last one) and lda > d (strided rows)
  for (const [d, lda] of [[37, 37], [37, 40], [16, 16], [5, 9]]) {
    const D = 5, rows = Int32Array.of(3, 4, 0, 4, 2);
    const { A, reads } = recorded((D - 1) * lda + d); // the last row ends the array
    const sum = touchRows(A, lda, rows, 1, 3, d); // entries 1..3: rows 4, 0, 4
    const want: number[] = [];
    for (const r of [4, 0, 4]) for (let c = 0; c < d; c += 16) want.push(r * lda + c);
    assert.deepEqual(reads, want, `d ${d}, lda ${lda}`);
    for (const i of reads) assert(i < A.length, `read ${i} past the array (${A.length})`);
    assert.equal(sum, want.reduce((s, i) => s + (i % 7), 0));
  }
});

Deno.test("touchRows: n = 0 reads nothing", () => {
  const { A, reads } = recorded(64);
  assert.equal(touchRows(A, 16, Int32Array.of(1, 2), 2, 0, 16), 0);
  assert.deepEqual(reads, []);
});
