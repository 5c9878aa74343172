// The factored step's profile (bench/layers_profile.ts): its calls are timed only while `timing` is on, the
// untimed calls reach the backend with the same results, and the table takes the timing's cost off the
// JavaScript row when the untimed steps' time is given.

import assert from "node:assert/strict";
import { type Profile, profiled, profileTable } from "../bench/layers_profile.ts";
import { createJsBackend } from "../lib/linalg/js.ts";
import type { LinAlgBackend } from "../lib/linalg/backend.ts";

const A = new Float32Array(8), B = new Float32Array(32), C = new Float32Array(16);

Deno.test("a profiled backend times its calls only while timing is on, and untimed calls still compute", () => {
  const prof: Profile = new Map();
  const la = profiled(createJsBackend(), prof, 4, 2);
  const A = new Float32Array(8).fill(1), B = new Float32Array(32).fill(2);
  const timed = new Float32Array(16), untimed = new Float32Array(16);
  la.sgemm(false, true, 2, 8, 4, 1, A, 4, B, 4, 0, timed, 8);
  la.timing = false;
  assert.equal(la.timing, false);
  la.sgemm(false, true, 2, 8, 4, 1, A, 4, B, 4, 0, untimed, 8);
  assert.deepEqual([...untimed], [...timed]);
  assert.deepEqual([...timed], new Array(16).fill(8));
  const forward = prof.get("1 forward: H·[U;Q;U⁻ᵀ]ᵀ");
  assert.equal(forward?.calls, 1, "the untimed call is not counted");
  la.timing = true;
  la.sgemm(false, true, 2, 8, 4, 1, A, 4, B, 4, 0, timed, 8);
  assert.equal(prof.get("1 forward: H·[U;Q;U⁻ᵀ]ᵀ")?.calls, 2);
});

Deno.test("the profile's table: the timing's cost is a row of its own, not JavaScript", () => {
  // 10 timed steps of 5 ms, 3 of them in calls; untimed steps of 4 ms: JavaScript 1 ms, timing 1 ms a step
  const prof: Profile = new Map([["1 forward: H·[U;Q;U⁻ᵀ]ᵀ", { ms: 30, calls: 10, flops: 3e9 }]]);
  const rows = (t: string) =>
    new Map(
      t.split("\n").filter((l) => l.startsWith("| ")).map((l) => {
        const c = l.split("|").map((x) => x.trim());
        return [c[1], c.slice(2, 4)];
      }),
    );
  const corrected = rows(profileTable(prof, 10, 50, 4));
  assert.deepEqual(corrected.get("JavaScript between calls (merge, loss, scalar loops)"), ["1", "25%"]);
  assert.deepEqual(corrected.get("**step** (untimed)"), ["4", "100%"]);
  assert.deepEqual(corrected.get("timing the calls (the timed step's excess, not in the rows above)"), [
    "1",
    "25%",
  ]);
  assert.deepEqual(corrected.get("1 forward: H·[U;Q;U⁻ᵀ]ᵀ"), ["3", "75%"]);
  // without the untimed steps: everything not in a call is JavaScript, as before
  const plain = rows(profileTable(prof, 10, 50));
  assert.deepEqual(plain.get("JavaScript between calls (merge, loss, scalar loops)"), ["2", "40%"]);
  assert.deepEqual(plain.get("**step**"), ["5", "100%"]);
});

Deno.test("a profiled backend counts the calls a call makes through a callback once (a pool's unheld, defer)", () => {
  const prof: Profile = new Map();
  const spin = (ms: number) => {
    for (const t0 = performance.now(); performance.now() - t0 < ms;) { /* busy */ }
  };
  const base = {
    ...createJsBackend(),
    sgemm: () => spin(20),
    unheld: <T>(f: () => T): T => f(),
  };
  const la = profiled(base as unknown as LinAlgBackend, prof, 4, 2);
  const t0 = performance.now();
  (la as unknown as typeof base).unheld(() => la.sgemm(false, true, 2, 8, 4, 1, A, 4, B, 4, 0, C, 8));
  const wall = performance.now() - t0;
  const sum = [...prof.values()].reduce((s, e) => s + e.ms, 0);
  assert.ok(prof.get("1 forward: H·[U;Q;U⁻ᵀ]ᵀ")!.ms >= 20);
  assert.ok(prof.get("other unheld")!.ms < 10, JSON.stringify([...prof]));
  assert.ok(sum <= wall + 1e-6, `the rows add up to ${sum} ms of a ${wall} ms call`);
});
