/**
 * The pool's stand-down watch (lib/linalg/stand_down.ts): no stand-down while the caller runs its fair
 * share, one when it runs past halfway to every part, spans that double to the most while the workers keep
 * falling behind, a short look after a stand-down, and the least span again after a look that finds them
 * keeping up.
 *
 * Run: npx deno test -A tests/linalg_stand_down_test.ts
 */

import assert from "node:assert/strict";
import { STAND_DOWN, StandDownWatch } from "../lib/linalg/stand_down.ts";

/** Feeds `calls` calls of `parts` parts, the caller running `mine` of each; returns the non-zero answers. */
function feed(w: StandDownWatch, calls: number, mine: number, parts: number): { at: number; span: number }[] {
  const out: { at: number; span: number }[] = [];
  for (let i = 1; i <= calls; i++) {
    const span = w.seen(mine, parts);
    if (span > 0) out.push({ at: i, span });
  }
  return out;
}

Deno.test("stand-down watch: the fair share never stands down; all parts do, after one look", () => {
  const fair = new StandDownWatch(2);
  assert.deepEqual(feed(fair, 10 * STAND_DOWN.window, 1, 2), []);
  const behind = new StandDownWatch(2);
  assert.deepEqual(feed(behind, STAND_DOWN.window, 2, 2), [{
    at: STAND_DOWN.window,
    span: STAND_DOWN.minCalls,
  }]);
});

Deno.test("stand-down watch: the threshold is halfway from the fair share to every part", () => {
  // two threads: 3 of 4 parts is the threshold itself (not past it), 7 of 8 is past it
  assert.deepEqual(feed(new StandDownWatch(2), STAND_DOWN.window, 3, 4), []);
  assert.equal(feed(new StandDownWatch(2), STAND_DOWN.window, 7, 8).length, 1);
  // sixteen threads: fair 1/16, threshold 17/32 of the parts
  assert.deepEqual(feed(new StandDownWatch(16), STAND_DOWN.window, 8, 16), []);
  assert.equal(feed(new StandDownWatch(16), STAND_DOWN.window, 9, 16).length, 1);
  assert.throws(() => new StandDownWatch(1), RangeError);
  assert.throws(() => new StandDownWatch(2.5), RangeError);
});

Deno.test("stand-down watch: spans double to the most over short looks, and reset after a good look", () => {
  const w = new StandDownWatch(2);
  const spans: number[] = [];
  // the first look is a whole window; every look after a stand-down is a probe
  assert.deepEqual(feed(w, STAND_DOWN.window, 2, 2), [{ at: STAND_DOWN.window, span: STAND_DOWN.minCalls }]);
  for (let k = 0; k < 10; k++) {
    const got = feed(w, STAND_DOWN.probe, 2, 2);
    assert.equal(
      got.length,
      1,
      `look ${k} after a stand-down should be a probe of ${STAND_DOWN.probe} calls`,
    );
    assert.equal(got[0].at, STAND_DOWN.probe);
    spans.push(got[0].span);
  }
  const expected = Array.from(
    { length: 10 },
    (_, k) => Math.min(STAND_DOWN.minCalls * 2 ** (k + 1), STAND_DOWN.maxCalls),
  );
  assert.deepEqual(spans, expected);
  // a probe that finds the workers keeping up: back to whole windows and the least span
  assert.deepEqual(feed(w, STAND_DOWN.probe, 1, 2), []);
  assert.deepEqual(feed(w, STAND_DOWN.window - 1, 2, 2), [], "a whole window again before the next look");
  assert.deepEqual(feed(w, 1, 2, 2), [{ at: 1, span: STAND_DOWN.minCalls }]);
});
