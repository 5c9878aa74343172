/**
 * The spherical loss family (lib/losses): for every loss, in float64, the O(K) form from statistics
 * (fromStats) against the independent textbook form over all D outputs (dense), both against central
 * finite differences, plus probabilities, invariances, edge cases and option validation.
 */

import assert from "node:assert/strict";
import { createLoss, LOSS_DEFAULTS, LOSS_NAMES, type SphericalFamilyLoss } from "../lib/losses/mod.ts";
import type { LossName } from "../lib/core/types.ts";
import { mulberry32 as rng } from "../lib/core/rng.ts";

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

type Case = { o: Float64Array; idx: Int32Array; y: Float64Array; K: number };

/** D dense outputs and K unique targets with arbitrary non-negative weights (one of them 0 when K ≥ 3). */
function randomCase(r: () => number, D: number, K: number, scale: number, shift = 0): Case {
  const o = new Float64Array(D);
  for (let j = 0; j < D; j++) o[j] = shift + scale * normal(r);
  const idx = new Int32Array(K);
  const seen = new Set<number>();
  for (let k = 0; k < K; k++) {
    let c: number;
    do c = Math.floor(r() * D); while (seen.has(c));
    seen.add(c);
    idx[k] = c;
  }
  const y = new Float64Array(K);
  for (let k = 0; k < K; k++) y[k] = k === 2 ? 0 : 0.1 + 1.9 * r();
  return { o, idx, y, K };
}

type Stats = {
  L: number;
  grad: Float64Array;
  dy: Float64Array;
  gq: number;
  gs: number;
  q: number;
  s: number;
};

/** fromStats on the case's statistics, with the dense ∇o = ẏ + 2 g_q o + g_s 𝟙 reconstructed. */
function viaStats(loss: SphericalFamilyLoss, c: Case): Stats {
  const D = c.o.length;
  let q = 0, s = 0;
  for (let j = 0; j < D; j++) {
    q += c.o[j] * c.o[j];
    s += c.o[j];
  }
  const oc = new Float64Array(c.K);
  for (let k = 0; k < c.K; k++) oc[k] = c.o[c.idx[k]];
  const dy = new Float64Array(c.K), g = { gq: NaN, gs: NaN };
  const L = loss.fromStats(oc, c.y, c.K, q, s, D, dy, g);
  const grad = new Float64Array(D);
  for (let j = 0; j < D; j++) grad[j] = 2 * g.gq * c.o[j] + g.gs;
  for (let k = 0; k < c.K; k++) grad[c.idx[k]] += dy[k];
  return { L, grad, dy, gq: g.gq, gs: g.gs, q, s };
}

function viaDense(loss: SphericalFamilyLoss, c: Case): { L: number; grad: Float64Array } {
  const grad = new Float64Array(c.o.length).fill(NaN);
  const L = loss.dense(c.o, c.idx, c.y, c.K, grad);
  return { L, grad };
}

function assertClose(actual: number, expected: number, rel: number, abs: number, what: string): void {
  const err = Math.abs(actual - expected);
  assert.ok(
    Number.isFinite(actual) && err <= abs + rel * Math.abs(expected),
    `${what}: got ${actual}, expected ${expected} (|err| ${err.toExponential(2)})`,
  );
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

// Output scales per loss: the Taylor and spherical losses around moderate outputs, the Z-loss with a
// shifted mean (so μ ≠ 0 and g_s matters).
const SCALES: Record<LossName, { scale: number; shift: number }> = {
  squared: { scale: 1, shift: 0.3 },
  spherical: { scale: 1, shift: 0.2 },
  taylor: { scale: 1.5, shift: -0.4 },
  zloss: { scale: 2, shift: 1.5 },
};

for (const name of LOSS_NAMES) {
  Deno.test(`${name}: fromStats equals dense() in value and gradient (D = 50, K = 5, 40 draws)`, () => {
    const loss = createLoss(name);
    const r = rng(1234 + name.length);
    for (let trial = 0; trial < 40; trial++) {
      const c = randomCase(r, 50, 5, SCALES[name].scale, SCALES[name].shift);
      if (trial % 4 === 1) c.o[c.idx[0]] = 0; // a target output exactly 0
      const st = viaStats(loss, c), de = viaDense(loss, c);
      assertClose(st.L, de.L, 1e-12, 1e-12, `${name} trial ${trial} loss`);
      const gscale = maxAbs(de.grad);
      for (let j = 0; j < c.o.length; j++) {
        assertClose(st.grad[j], de.grad[j], 0, 1e-11 * (1 + gscale), `${name} trial ${trial} ∇o[${j}]`);
      }
    }
  });

  Deno.test(`${name}: dense() gradient matches central finite differences (float64)`, () => {
    const loss = createLoss(name);
    const r = rng(99 + name.length);
    for (let trial = 0; trial < 6; trial++) {
      const c = randomCase(r, 50, 5, SCALES[name].scale, SCALES[name].shift);
      if (trial === 1) c.o[c.idx[1]] = 0;
      const { grad } = viaDense(loss, c);
      const st = viaStats(loss, c);
      const scratch = new Float64Array(c.o.length);
      const gscale = maxAbs(grad);
      for (let j = 0; j < c.o.length; j++) {
        const h = 1e-6 * Math.max(1, Math.abs(c.o[j]));
        const keep = c.o[j];
        c.o[j] = keep + h;
        const Lp = loss.dense(c.o, c.idx, c.y, c.K, scratch);
        c.o[j] = keep - h;
        const Lm = loss.dense(c.o, c.idx, c.y, c.K, scratch);
        c.o[j] = keep;
        const fd = (Lp - Lm) / (2 * h);
        assertClose(grad[j], fd, 1e-5, 1e-6 * (1 + gscale), `${name} trial ${trial} dense ∂L/∂o[${j}] vs FD`);
        assertClose(
          st.grad[j],
          fd,
          1e-5,
          1e-6 * (1 + gscale),
          `${name} trial ${trial} fromStats ∇o[${j}] vs FD`,
        );
      }
    }
  });

  Deno.test(`${name}: fromStats partials ẏ, g_q, g_s match finite differences in (o_c, q, s)`, () => {
    const loss = createLoss(name);
    const r = rng(7 + name.length);
    const c = randomCase(r, 50, 4, SCALES[name].scale, SCALES[name].shift);
    const st = viaStats(loss, c);
    const D = c.o.length;
    const oc = new Float64Array(c.K);
    for (let k = 0; k < c.K; k++) oc[k] = c.o[c.idx[k]];
    const dy = new Float64Array(c.K), g = { gq: 0, gs: 0 };
    const f = (o: Float64Array, q: number, s: number) => loss.fromStats(o, c.y, c.K, q, s, D, dy, g);
    const hq = 1e-6 * st.q, hs = 1e-6 * Math.max(1, Math.abs(st.s));
    const fdq = (f(oc, st.q + hq, st.s) - f(oc, st.q - hq, st.s)) / (2 * hq);
    const fds = (f(oc, st.q, st.s + hs) - f(oc, st.q, st.s - hs)) / (2 * hs);
    assertClose(st.gq, fdq, 1e-5, 1e-9, `${name} g_q`);
    assertClose(st.gs, fds, 1e-5, 1e-9, `${name} g_s`);
    for (let k = 0; k < c.K; k++) {
      const keep = oc[k], h = 1e-6 * Math.max(1, Math.abs(keep));
      oc[k] = keep + h;
      const Lp = f(oc, st.q, st.s);
      oc[k] = keep - h;
      const Lm = f(oc, st.q, st.s);
      oc[k] = keep;
      assertClose(st.dy[k], (Lp - Lm) / (2 * h), 1e-5, 1e-9, `${name} ẏ[${k}]`);
    }
    if (!loss.usesSum) assert.equal(st.gs, 0, `${name} does not use s, so g_s must be 0`);
  });

  Deno.test(`${name}: all-zero outputs (all-zero h) give a finite loss and gradient, equal to dense()`, () => {
    const loss = createLoss(name);
    const D = 50;
    const c: Case = {
      o: new Float64Array(D),
      idx: Int32Array.of(3, 17, 40),
      y: Float64Array.of(1, 0.5, 0),
      K: 3,
    };
    const st = viaStats(loss, c), de = viaDense(loss, c);
    assert.ok(Number.isFinite(st.L) && Number.isFinite(st.gq) && Number.isFinite(st.gs), `${name}: ${st.L}`);
    for (const v of st.dy) assert.ok(Number.isFinite(v));
    assertClose(st.L, de.L, 1e-12, 1e-12, `${name} zero-output loss`);
    for (let j = 0; j < D; j++) assertClose(st.grad[j], de.grad[j], 0, 1e-12, `${name} zero-output ∇o[${j}]`);
    const Y = 1.5;
    const expected: Record<LossName, number> = {
      squared: 1 + 0.25, // Σ y_c²
      spherical: Y * Math.log(D), // every p_j = ε/(Dε) = 1/D
      taylor: Y * Math.log(D), // every f(0) = 1, N = D
      zloss: Y * Math.log1p(Math.exp(0.1 * 10)) / 0.1, // degenerate σ: z_c := 0
    };
    assertClose(st.L, expected[name], 1e-12, 1e-12, `${name} zero-output loss value`);
    if (name === "zloss") {
      assert.equal(maxAbs(st.grad), 0, "zloss: degenerate σ must give a zero gradient, not NaN");
    }
  });

  Deno.test(`${name}: very large outputs stay finite (no Inf in q, σ, loss or gradient)`, () => {
    const loss = createLoss(name);
    const r = rng(5);
    for (const scale of [1e6, 1e15, 1e30, 1e36]) {
      const c = randomCase(r, 50, 4, scale, name === "zloss" ? 0.5 * scale : 0);
      // The layers feed float32 outputs: round them to float32 (1e36 is close to its 3.4e38 limit).
      const o32 = Float32Array.from(c.o);
      c.o = Float64Array.from(o32);
      const st = viaStats(loss, c);
      assert.ok(
        Number.isFinite(st.q) && Number.isFinite(st.L),
        `${name} scale ${scale}: q ${st.q}, L ${st.L}`,
      );
      assert.ok(Number.isFinite(st.gq) && Number.isFinite(st.gs), `${name} scale ${scale}: g_q ${st.gq}`);
      for (const v of st.grad) assert.ok(Number.isFinite(v), `${name} scale ${scale}: ∇o ${v}`);
      const grad32 = new Float64Array(50);
      const L32 = loss.dense(o32, c.idx, c.y, c.K, grad32);
      assertClose(st.L, L32, 1e-9, 0, `${name} scale ${scale}: fromStats vs dense(Float32Array) loss`);
      const gscale = maxAbs(grad32);
      for (let j = 0; j < 50; j++) {
        assertClose(st.grad[j], grad32[j], 0, 1e-9 * gscale, `${name} scale ${scale}: ∇o[${j}]`);
      }
    }
  });

  Deno.test(`${name}: weights of 0 contribute nothing`, () => {
    const loss = createLoss(name);
    const r = rng(11);
    const c = randomCase(r, 50, 4, SCALES[name].scale, SCALES[name].shift);
    // Adding a zero-weight target changes neither the loss nor the gradient.
    const without: Case = { o: c.o, idx: c.idx.slice(0, 2), y: c.y.slice(0, 2), K: 2 };
    const withZero: Case = { o: c.o, idx: c.idx.slice(0, 3), y: Float64Array.of(c.y[0], c.y[1], 0), K: 3 };
    const a = viaStats(loss, without), b = viaStats(loss, withZero);
    assertClose(b.L, a.L, 1e-14, 0, `${name} zero weight loss`);
    for (let j = 0; j < 50; j++) {
      assertClose(b.grad[j], a.grad[j], 1e-14, 1e-15, `${name} zero weight ∇o[${j}]`);
    }
    assert.ok(b.dy[2] === 0, `${name}: ẏ of a zero-weight target is ${b.dy[2]}`);
    // All weights 0: the loss is 0 (squared error: ‖o‖² = q) and the gradient is 0 (squared: 2o).
    const zero: Case = { o: c.o, idx: c.idx, y: new Float64Array(4), K: 4 };
    const z = viaStats(loss, zero), zd = viaDense(loss, zero);
    assertClose(z.L, name === "squared" ? z.q : 0, 1e-14, 0, `${name} all-zero weights loss`);
    assertClose(zd.L, z.L, 1e-12, 1e-14, `${name} all-zero weights dense loss`);
    if (name !== "squared") assert.equal(maxAbs(z.grad), 0);
  });
}

Deno.test("spherical and taylor: the probabilities of all D outputs sum to 1 and match dense p_j", () => {
  const r = rng(21);
  for (const name of ["spherical", "taylor"] as const) {
    const loss = createLoss(name);
    for (let trial = 0; trial < 10; trial++) {
      const c = randomCase(r, 50, 1, 2, trial - 5);
      const { q, s } = viaStats(loss, c);
      let total = 0;
      for (let j = 0; j < 50; j++) {
        const p = loss.probability(c.o[j], q, s, 50);
        assert.ok(p > 0 && p < 1, `${name}: p_${j} = ${p}`);
        total += p;
        // −log p_j is the dense loss with a single unit-weight target j.
        const L = loss.dense(c.o, Int32Array.of(j), Float64Array.of(1), 1, new Float64Array(50));
        assertClose(-Math.log(p), L, 1e-12, 1e-12, `${name}: −log p_${j}`);
      }
      assertClose(total, 1, 1e-12, 0, `${name} trial ${trial}: Σ p_j`);
    }
  }
});

Deno.test("squared: the score is o_j; zloss: the score is z_j (mean 0, variance 1 over D)", () => {
  const r = rng(3);
  const c = randomCase(r, 50, 1, 3, 2);
  const sq = createLoss("squared"), zl = createLoss("zloss");
  const { q, s } = viaStats(sq, c);
  let sum = 0, sumSq = 0;
  for (let j = 0; j < 50; j++) {
    assert.equal(sq.probability(c.o[j], q, s, 50), c.o[j]);
    const z = zl.probability(c.o[j], q, s, 50);
    sum += z;
    sumSq += z * z;
  }
  assertClose(sum, 0, 0, 1e-12, "Σ z_j");
  assertClose(sumSq, 50, 1e-12, 0, "Σ z_j²");
  assert.equal(zl.probability(0, 0, 0, 50), 0, "degenerate σ: score 0");
});

Deno.test("zloss: shift and scale invariance, and a negative g_q is reproduced exactly", () => {
  const loss = createLoss("zloss");
  const r = rng(8);
  const c = randomCase(r, 50, 3, 1, 0);
  // A target well below the mean: z_c < 0, so g_q = −Σ t_c z_c/(2Dσ²) < 0 (t_c < 0).
  c.o[c.idx[0]] = -3;
  c.o[c.idx[1]] = -2.5;
  const base = viaStats(loss, c);
  assert.ok(base.gq < 0, `expected a negative g_q, got ${base.gq}`);
  const de = viaDense(loss, c);
  for (let j = 0; j < 50; j++) assertClose(base.grad[j], de.grad[j], 0, 1e-12, `∇o[${j}]`);
  for (const [alpha, beta] of [[3, 0], [0.01, 5], [250, -40]]) {
    const moved: Case = { ...c, o: c.o.map((v) => alpha * v + beta) };
    // σ² = q/D − μ² loses (μ/σ)²·1e-16 to cancellation (here up to ~3e-11), hence 1e-9.
    assertClose(viaStats(loss, moved).L, base.L, 1e-9, 0, `L(${alpha}·o + ${beta})`);
  }
});

Deno.test("spherical, taylor, zloss are linear in the target weights y (squared error is not)", () => {
  const r = rng(12);
  for (const name of ["spherical", "taylor", "zloss"] as const) {
    const loss = createLoss(name);
    const c = randomCase(r, 50, 4, SCALES[name].scale, SCALES[name].shift);
    const one = viaStats(loss, c);
    const twice = viaStats(loss, { ...c, y: c.y.map((v) => 2.5 * v) });
    assertClose(twice.L, 2.5 * one.L, 1e-13, 0, `${name}: L(2.5y)`);
    for (let j = 0; j < 50; j++) {
      assertClose(twice.grad[j], 2.5 * one.grad[j], 1e-13, 1e-15, `${name} ∇o[${j}]`);
    }
  }
});

Deno.test("spherical: the ε option is honoured; a target at exactly 0 has ẏ = 0 and finite loss", () => {
  const small = createLoss("spherical", { epsilon: 1e-9 }), big = createLoss("spherical", { epsilon: 0.5 });
  assert.equal(small.options.epsilon, 1e-9);
  const dy = new Float64Array(1), g = { gq: 0, gs: 0 };
  const Ls = small.fromStats(Float64Array.of(0), Float64Array.of(1), 1, 4, 0, 10, dy, g);
  assert.ok(dy[0] === 0, `ẏ at o_c = 0 is ${dy[0]}`);
  assertClose(Ls, -Math.log(1e-9) + Math.log(4 + 10e-9), 1e-14, 0, "L with ε = 1e-9");
  const Lb = big.fromStats(Float64Array.of(0), Float64Array.of(1), 1, 4, 0, 10, dy, g);
  assertClose(Lb, -Math.log(0.5) + Math.log(4 + 5), 1e-14, 0, "L with ε = 0.5");
  assertClose(g.gq, 1 / 9, 1e-14, 0, "g_q = Y/(q + Dε)");
});

Deno.test("taylor: statistics inconsistent beyond Σ f(o_j) ≥ D/2 (drifted float32 state) stay finite", () => {
  const loss = createLoss("taylor");
  const dy = new Float64Array(1), g = { gq: 0, gs: 0 };
  const L = loss.fromStats(Float64Array.of(0.5), Float64Array.of(1), 1, 0, -1e6, 100, dy, g);
  assert.ok(Number.isFinite(L) && Number.isFinite(g.gq) && Number.isFinite(g.gs), `L ${L}`);
});

Deno.test("options: defaults filled in, bad values rejected with a RangeError naming the option", () => {
  for (const name of LOSS_NAMES) assert.deepEqual({ ...createLoss(name).options }, { ...LOSS_DEFAULTS });
  assert.deepEqual(LOSS_DEFAULTS, { epsilon: 1e-3, a: 0.1, b: 10 });
  assert.equal(createLoss("zloss", { a: 2, b: -1 }).options.a, 2);
  for (const epsilon of [0, -1e-6, NaN, Infinity]) {
    assert.throws(
      () => createLoss("spherical", { epsilon }),
      (e) => e instanceof RangeError && /epsilon/.test(e.message),
    );
  }
  for (const a of [0, -0.1, NaN]) {
    assert.throws(
      () => createLoss("zloss", { a }),
      (e) => e instanceof RangeError && /lossOptions\.a\b/.test(e.message),
    );
  }
  assert.throws(
    () => createLoss("zloss", { b: NaN }),
    (e) => e instanceof RangeError && /lossOptions\.b\b/.test(e.message),
  );
  assert.throws(
    () => createLoss("softmax" as LossName),
    (e) => e instanceof RangeError && /softmax/.test(e.message),
  );
  assert.throws(
    () => createLoss("spherical", { eps: 1 } as unknown as { epsilon: number }),
    (e) => e instanceof RangeError && /lossOptions\.eps\b/.test(e.message),
  );
  assert.equal(createLoss().name, "squared");
  assert.equal(createLoss("taylor").usesSum, true);
  assert.equal(createLoss("zloss").usesSum, true);
  assert.equal(createLoss("spherical").usesSum, false);
  assert.equal(createLoss("squared").usesSum, false);
});
