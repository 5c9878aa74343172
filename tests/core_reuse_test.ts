// lib/core/reuse.ts: copyInto writes into the array it is given only when that has the source's type and
// length and is not a view of the source's memory; otherwise a new copy. The source is never changed.
import assert from "node:assert/strict";
import { copyInto } from "../lib/core/reuse.ts";

Deno.test("copyInto: the given array when it fits (same type and length), else a new copy; never the source's memory", () => {
  const src = Float32Array.of(1, -0, 3.5, NaN);
  const fits = new Float32Array(4).fill(9);
  const c = copyInto(src, fits);
  assert.equal(c, fits);
  assert.deepEqual([...c], [1, -0, 3.5, NaN]);
  assert.ok(Object.is(c[1], -0));
  assert.deepEqual([...src], [1, -0, 3.5, NaN], "the source is unchanged");
  for (
    const [what, into] of [
      ["none", undefined],
      ["another length", new Float32Array(5)],
      ["another type", new Float64Array(4)],
      ["the source itself", src],
      ["a view of the source's buffer", new Float32Array(src.buffer, 0, 4)],
    ] as const
  ) {
    const before = into && into.slice();
    const out = copyInto(src, into);
    assert.notEqual(out, into, what);
    assert.notEqual(out.buffer, src.buffer, `${what}: a copy, not the source's memory`);
    assert.ok(out instanceof Float32Array, what);
    assert.deepEqual([...out], [...src], what);
    if (into && before) assert.deepEqual([...into], [...before], `${what}: left as it was`);
  }
  const wide = Float64Array.of(0.1, 2);
  const intoWide = new Float64Array(2);
  assert.equal(copyInto(wide, intoWide), intoWide);
  assert.deepEqual([...intoWide], [0.1, 2]);
});
