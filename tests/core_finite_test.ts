// lib/core/finite.ts: allFinite against a Number.isFinite test per element, every position and length
// (the four running sums and the tail), NaN, ±Infinity, −0 and the largest floats.
import assert from "node:assert/strict";
import { allFinite } from "../lib/core/finite.ts";

Deno.test("allFinite: false exactly when some element is NaN or ±Infinity, at any position and length", () => {
  const plain = (x: Float32Array | Float64Array) => x.every((v) => Number.isFinite(v));
  for (let n = 0; n <= 13; n++) {
    const base = Float64Array.from({ length: n }, (_, i) => (i % 3 === 0 ? -0 : (i - 5) * 1e307));
    assert.equal(allFinite(base), true, `n ${n}`);
    assert.equal(allFinite(Float32Array.from(base, (v) => v / 1e307 * 3e37)), true, `n ${n}, float32`);
    for (let k = 0; k < n; k++) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const x = Float64Array.from(base);
        x[k] = bad;
        assert.equal(allFinite(x), false, `n ${n}, ${bad} at ${k}`);
        assert.equal(allFinite(x), plain(x));
        const y = Float32Array.from(x);
        assert.equal(allFinite(y), false, `n ${n}, float32 ${bad} at ${k}`);
      }
    }
  }
  // +Infinity in one running sum and −Infinity in another: each sum is NaN, not a cancelled 0
  assert.equal(allFinite(Float64Array.of(Infinity, -Infinity, 1, 1)), false);
  assert.equal(allFinite(Float64Array.of(Infinity, 1, 1, 1, -Infinity)), false);
});
