/**
 * The factored step on one thread and split across threads (lib/linalg/pool.ts, issue 18): the same run
 * with OpenBLAS on one thread (FACTOROUT_THREADS=1, nothing split) and with the pooled backend on two
 * threads must both match the naive layer with the bars of tests/layers_f32_test.ts, and match each other
 * within them, per step (loss, ∇H) and in W after the run; the pooled run must really have split calls.
 * Online (m = 1), Woodbury (m = 48) and direct re-inversion (m = 140 > d) steps, squared and Taylor
 * (ω, w̄ terms) losses. The update's tail (step_kernel.ts UPD_TAIL) on 3 and 4 parts, held or not, with
 * rows repeated inside and across the forward's ranges and fewer examples than parts: the same bits.
 *
 * Run: npx deno test -A tests/layers_threads_test.ts
 */

import assert from "node:assert/strict";
import { FactoredOutputLayer } from "../lib/output/factored/layer.ts";
import { openBlasBackend } from "../lib/linalg/blas.ts";
import { createPooledBackend } from "../lib/linalg/pool.ts";
import { POOL_SPLIT } from "../lib/linalg/pool_split.ts";
import { createLoss } from "../lib/losses/mod.ts";
import type { LossName, OutputLayer, StepResult } from "../lib/core/types.ts";
import {
  blasAvailable,
  makeLayer,
  oneThread,
  randomBatch,
  randomH,
  relMaxDiff,
  rng,
  uniform,
} from "./layers_helpers.ts";

const ok = await blasAvailable();
// the V update of the LU and direct paths splits at any size here (pool_split.ts decides it for speed
// alone; these tests check that the split path keeps the bits)
POOL_SPLIT.scatter = 0;

async function run(layer: OutputLayer, seed: number, m: number, steps: number, eta: number) {
  const r = rng(seed), out: StepResult[] = [];
  for (let t = 0; t < steps; t++) {
    const H = randomH(r, m, layer.d, 1);
    out.push(await layer.step(H, randomBatch(r, m, layer.D, 4, { weighted: true, dupProb: 0.25 }), eta));
  }
  return { out, W: await layer.weights() };
}

function worst(a: StepResult[], b: StepResult[]): { loss: number; grad: number } {
  let loss = 0, grad = 0;
  for (let t = 0; t < a.length; t++) {
    loss = Math.max(loss, Math.abs(b[t].loss - a[t].loss) / (1 + Math.abs(a[t].loss)));
    let num = 0, den = 0;
    for (let j = 0; j < a[t].gradH.length; j++) {
      num = Math.max(num, Math.abs(b[t].gradH[j] - a[t].gradH[j]));
      den = Math.max(den, Math.abs(a[t].gradH[j]));
    }
    grad = Math.max(grad, num / (1 + den));
  }
  return { loss, grad };
}

for (const lossName of ["squared", "taylor"] as LossName[]) {
  Deno.test(
    { name: `factored step, 1 thread vs 2 threads (pool) vs naive, ${lossName}`, ignore: !ok },
    async () => {
      const D = 1500, d = 128, steps = 120, eta = lossName === "taylor" ? 0.05 : 0.02;
      for (const m of [1, 48, 140]) {
        const W0 = uniform(rng(31 + m), D * d, 0.5 / Math.sqrt(d));
        const opts = { products: "float32" as const, stabilizeEvery: 25 };
        const naive = await makeLayer("naive", "blas", D, d, W0, lossName);
        const ref = await run(naive, 900 + m, m, steps, eta);
        naive.close();
        const one = FactoredOutputLayer.fromInit(D, d, W0, createLoss(lossName), oneThread(), opts);
        const a = await run(one, 900 + m, m, steps, eta);
        one.close();
        const pooled = createPooledBackend(openBlasBackend(), 2);
        const two = FactoredOutputLayer.fromInit(D, d, W0, createLoss(lossName), pooled, opts);
        // every product splits here, B = A U inside the forward's kernel run (step32.ts `fused`) too
        const gemmAt = POOL_SPLIT.gemm;
        POOL_SPLIT.gemm = 0;
        const b = await run(two, 900 + m, m, steps, eta).finally(() => POOL_SPLIT.gemm = gemmAt);
        const split = pooled.splitCalls, rowSplit = pooled.rowSplitCalls, steps32 = two.steps32;
        const kernels = pooled.kernelCalls;
        two.close();
        for (
          const [what, x, y] of [["1 thread vs naive", ref, a], ["2 threads vs naive", ref, b], [
            "2 threads vs 1 thread",
            a,
            b,
          ]] as const
        ) {
          const w = worst(x.out, y.out), dW = relMaxDiff(y.W, x.W);
          const msg = `${lossName} m=${m} ${what}: loss ${w.loss.toExponential(2)}, ∇H ${
            w.grad.toExponential(2)
          }, W ${dW.toExponential(2)}`;
          console.log(msg);
          assert(w.loss <= 2e-5 && w.grad <= 2e-5 && dW <= 3e-5, msg);
        }
        assert(steps32 >= 0.8 * steps, `the float32 path should take most steps (${steps32}/${steps})`);
        if (m > 1) assert(split >= steps, `the pooled run should split its products (${split} split calls)`);
        // the per-example work of the forward (dot products, losses, A, B = A U, ∇H rows) in one kernel
        // run; the V update in the update's tail kernel (Woodbury, m = 48: three update kernels per
        // float32 step) or in one split call (the direct re-inversion, m = 140 > d)
        if (m > 1) {
          const perStep = m < d ? 4 : 1;
          assert(kernels >= perStep * steps32, `the pooled run should run the step kernel (${kernels})`);
          if (m > d) assert(rowSplit >= steps32, `the pooled run should split its V update (${rowSplit})`);
        }
      }
    },
  );
}

Deno.test(
  { name: "factored step: sparse rows split across 2 threads = one thread, bit for bit", ignore: !ok },
  async () => {
    // products below the pool's size threshold run unsplit on one OpenBLAS thread, so the only differences
    // from the one-thread run are the split sparse row calls and the step kernel (step_kernel.ts: the
    // forward's per-example work on every thread, the update's tasks side by side): both keep every
    // element's operations and their order, so the runs must agree exactly
    const D = 2000, d = 64, m = 48, steps = 60, eta = 0.05;
    for (const lossName of ["spherical", "taylor", "zloss", "squared"] as LossName[]) {
      const W0 = uniform(rng(7), D * d, 0.5 / Math.sqrt(d));
      const opts = { products: "float32" as const, stabilizeEvery: 20 };
      const one = FactoredOutputLayer.fromInit(D, d, W0, createLoss(lossName), oneThread(), opts);
      const a = await run(one, 77, m, steps, eta);
      // the stabilisation's σ estimates, on the pool side by side (step_kernel.ts UPKEEP_SIGMA) and here
      // one after the other: the same numbers
      // (only while this stabilisation neither rebalances nor folds: those estimate again one after the other)
      const sigmas = async (layer: FactoredOutputLayer) => {
        const before = (await layer.exportState()).scalars;
        layer.stabilize();
        const { sigmaMax, sigmaMin, rebalances, folds } = (await layer.exportState()).scalars;
        assert.deepEqual([rebalances, folds], [before.rebalances, before.folds], "no rebalance, no fold");
        return [sigmaMax, sigmaMin];
      };
      const sigmaA = await sigmas(one);
      one.close();
      const pooled = createPooledBackend(oneThread(), 2);
      const two = FactoredOutputLayer.fromInit(D, d, W0, createLoss(lossName), pooled, opts);
      const b = await run(two, 77, m, steps, eta);
      const split = pooled.splitCalls, rowSplit = pooled.rowSplitCalls, steps32 = two.steps32;
      const kernels = pooled.kernelCalls;
      const sigmaB = await sigmas(two);
      assert.equal(pooled.kernelCalls, kernels + 1, `${lossName}: the σ estimates ran as one kernel run`);
      two.close();
      assert(sigmaA[0] > 1e-3 && sigmaA[1] > 1e-3, `${lossName}: σ estimates ${sigmaA}`);
      assert.deepEqual(sigmaB, sigmaA, `${lossName}: σ_max(U), σ_min(U) of the stabilisation`);
      assert(steps32 >= 0.8 * steps, `${lossName}: float32 steps ${steps32}/${steps}`);
      // the forward's two runs; with every g_i > 0 (not the Z-loss here) the Cholesky Woodbury path's three
      // more (the last with the V update); the Z-loss's LU path splits its V update
      const perStep = lossName === "zloss" ? 2 : 5;
      if (lossName === "zloss") {
        assert(rowSplit >= steps32, `${lossName}: split sparse row calls ${rowSplit}`);
      }
      assert(kernels >= perStep * steps32, `${lossName}: ${kernels} step kernel runs in ${steps32} steps`);
      assert.equal(
        split,
        rowSplit + kernels,
        `${lossName}: only the sparse rows and the kernel should be split`,
      );
      for (let t = 0; t < steps; t++) {
        assert.equal(b.out[t].loss, a.out[t].loss, `${lossName} step ${t}: loss`);
        assert.deepEqual(b.out[t].gradH, a.out[t].gradH, `${lossName} step ${t}: ∇H`);
      }
      assert.deepEqual(b.W, a.W, `${lossName}: W after ${steps} steps`);
    }
  },
);

Deno.test(
  {
    name:
      "factored step on the pool: steps refused while the rows run on the workers = one thread, bit for bit",
    ignore: !ok,
  },
  async () => {
    // at η = 0.2 the first step's update factor leaves [½, 2]: its float32 step is refused after UPD_ROWS was
    // started for the workers (pool.ts defer), joined, and redone in float64 with the state untouched; the
    // stabilisation that follows it lets the next steps take float32 products again
    const D = 2000, d = 64, m = 48, steps = 30, eta = 0.2;
    const W0 = uniform(rng(7), D * d, 0.5 / Math.sqrt(d));
    const opts = { products: "float32" as const, stabilizeEvery: 20 };
    const one = FactoredOutputLayer.fromInit(D, d, W0, createLoss("spherical"), oneThread(), opts);
    const a = await run(one, 78, m, steps, eta);
    const steps32 = one.steps32;
    one.close();
    const pooled = createPooledBackend(oneThread(), 2);
    const two = FactoredOutputLayer.fromInit(D, d, W0, createLoss("spherical"), pooled, opts);
    const b = await run(two, 78, m, steps, eta);
    assert.equal(two.steps32, steps32);
    assert.equal(pooled.deferred, false);
    two.close();
    assert(steps32 > 0 && steps32 < steps, `float32 steps taken ${steps32} of ${steps}`);
    for (let t = 0; t < steps; t++) assert.equal(b.out[t].loss, a.out[t].loss, `step ${t}: loss`);
    assert.deepEqual(b.W, a.W, `W after ${steps} steps`);
  },
);

Deno.test(
  { name: "factored step on the pool: a loss that is not finite raises the one-thread error", ignore: !ok },
  async () => {
    // example 5's h overflows the float32 products (ĥ = ±∞): its loss is not finite; the step kernel marks
    // it and the caller must raise the one-thread path's DivergenceError, with its message, state unchanged
    const D = 500, d = 64, m = 32;
    const W0 = uniform(rng(3), D * d, 0.5 / Math.sqrt(d));
    const opts = { products: "float32" as const };
    const r = rng(4), H = randomH(r, m, d, 1), Y = randomBatch(r, m, D, 4, {});
    H.fill(3e38, 5 * d, 6 * d);
    const errors: string[] = [];
    for (const pooled of [false, true]) {
      const la = pooled ? createPooledBackend(oneThread(), 2) : oneThread();
      const layer = FactoredOutputLayer.fromInit(D, d, W0, createLoss("spherical"), la, opts);
      const W = await layer.weights();
      const e = await layer.step(H, Y, 0.05).then(() => null, (e: Error) => e);
      assert(e, `${pooled ? "pooled" : "one thread"}: the step should fail`);
      assert.equal(e.name, "DivergenceError", e.message);
      errors.push(e.message);
      assert.deepEqual(await layer.weights(), W, "the state should be unchanged");
      if (pooled) assert((la as ReturnType<typeof createPooledBackend>).kernelCalls >= 1, "ran on the pool");
      layer.close();
    }
    assert.equal(errors[1], errors[0]);
  },
);

Deno.test(
  {
    name: "factored step: the upkeep runs with the caller's hold paused (unheld), a throw in it too",
    ignore: !ok,
  },
  async () => {
    const D = 300, d = 32, m = 8, r = rng(5);
    const pooled = createPooledBackend(openBlasBackend(), 2);
    const layer = FactoredOutputLayer.fromInit(
      D,
      d,
      uniform(rng(3), D * d, 0.5 / Math.sqrt(d)),
      createLoss("squared"),
      pooled,
      { products: "float32", stabilizeEvery: 1 },
    );
    try {
      // where the upkeep runs: inside the pool's unheld() or not
      let depth = 0, inside = 0, outside = 0;
      const unheld = pooled.unheld;
      pooled.unheld = <T>(call: () => T): T => {
        depth++;
        try {
          return unheld(call);
        } finally {
          depth--;
        }
      };
      const stabilize = layer.stabilize.bind(layer), refresh = layer.refresh.bind(layer);
      layer.stabilize = () => (depth > 0 ? inside++ : outside++, stabilize());
      layer.refresh = () => (depth > 0 ? inside++ : outside++, refresh());
      const step = () => layer.step(randomH(r, m, d, 1), randomBatch(r, m, D, 4, { weighted: true }), 0.02);
      pooled.hold(); // as the model holds the pool over its batch
      try {
        for (let t = 0; t < 4; t++) await step();
      } finally {
        pooled.release();
      }
      assert.equal(outside, 0, "the upkeep ran outside unheld()");
      assert(inside >= 4, `the upkeep should run at every step here (${inside})`);
      // a throw in the upkeep reaches the caller, leaves unheld() and the caller's hold as they were
      layer.stabilize = () => {
        throw new Error("upkeep failed");
      };
      pooled.hold();
      await assert.rejects(step(), /upkeep failed/);
      assert.equal(depth, 0);
      pooled.release();
      assert.throws(() => pooled.release(), /without a matching hold/);
    } finally {
      layer.close();
    }
  },
);

Deno.test(
  {
    name:
      "factored step: the update's tail on 3 and 4 parts, held or not, few rows and examples = one thread",
    ignore: !ok,
  },
  async () => {
    // step_kernel.ts UPD_TAIL: Q's increment in two row blocks (part 1 waits for part 0's), the V update by
    // the forward's ranges of examples (one per thread) with the rows several ranges name on part 1. Few
    // rows (D = 30: rows repeated inside a range and across ranges), m below the number of parts (empty
    // ranges), d = 32 and 47 (the kernel runs from d = 32, where syr2k.ts has two blocks): the same bits as
    // one thread
    // (Taylor: ω, w̄ by columns in UPD_TASKS; unheld: a pool made with hold: false runs 2 parts per thread,
    // so 8 parts on 4 threads, and the solves' columns (solveColumns) split over up to 7 parts)
    const D = 30, steps = 8, eta = 0.05;
    for (const [d, lossName] of [[32, "squared"], [47, "squared"], [47, "taylor"]] as const) {
      const W0 = uniform(rng(9), D * d, 0.5 / Math.sqrt(d));
      const opts = { products: "float32" as const, stabilizeEvery: 5 };
      for (const m of [2, 5]) {
        const go = async (la: ReturnType<typeof oneThread>, held: boolean) => {
          const layer = FactoredOutputLayer.fromInit(D, d, W0, createLoss(lossName), la, opts);
          const r = rng(40 + m), out: StepResult[] = [];
          const pool = held ? la as ReturnType<typeof createPooledBackend> : null;
          pool?.hold();
          try {
            for (let t = 0; t < steps; t++) {
              const Y = randomBatch(r, m, D, 6, { weighted: true, dupProb: 0.3, varyK: true });
              out.push(await layer.step(randomH(r, m, d, 1), Y, eta));
            }
          } finally {
            pool?.release();
          }
          const W = await layer.weights(), steps32 = layer.steps32;
          layer.close();
          return { out, W, steps32 };
        };
        const a = await go(oneThread(), false);
        for (const [parts, held] of [[3, true], [4, false]] as const) {
          const pooled = createPooledBackend(oneThread(), parts, { hold: held });
          const b = await go(pooled, held);
          const where = `${lossName}, d ${d}, m ${m}, ${parts} parts${held ? ", held" : ", unheld"}`;
          assert(
            b.steps32 >= steps - 1 && (lossName === "squared"
              ? pooled.kernelCalls >= 5 * b.steps32 // every step on the Cholesky path's kernels
              : pooled.kernelCalls > 2 * b.steps32), // some (Taylor: the LU path where a g_i ≤ 0)
            `${where}: ran on the pool (${b.steps32} float32 steps, ${pooled.kernelCalls} kernel runs)`,
          );
          for (let t = 0; t < steps; t++) {
            assert.equal(b.out[t].loss, a.out[t].loss, `${where}, step ${t}: loss`);
            assert.deepEqual(b.out[t].gradH, a.out[t].gradH, `${where}, step ${t}: ∇H`);
          }
          assert.deepEqual(b.W, a.W, `${where}: W`);
        }
      }
    }
  },
);
