/**
 * The whole model on the GPU (issue 14) on whatever adapter this machine has (llvmpipe here): a small
 * trainer run with `--backend webgpu` (E resident, H gathered and E scattered on the GPU) gives the same
 * per-epoch losses and the same input and output vectors as `--backend blas` within float32 tolerance, reads
 * nothing back in its steady-state steps, and stays at the dispatch count per step; a checkpoint moves
 * from the CPU to the GPU and back; configurations the GPU path lacks are refused naming the flag.
 * Under CI=true a missing adapter fails; elsewhere the test is skipped with a log line.
 */

import assert from "node:assert/strict";
import { BackendUnavailableError, UsageError } from "../lib/core/errors.ts";
import { resolveConfig, type TrainConfig } from "../lib/train/config.ts";
import { Trainer, type Vocabulary } from "../lib/train/trainer.ts";
import { requestWebGpuDevice } from "../lib/output/webgpu/device.ts";
import type { WebGpuFactoredLayer } from "../lib/output/webgpu/factored.ts";
import { memoryReader, ringCorpus } from "./train_fakes.ts";

let available = true;
try {
  (await requestWebGpuDevice({ log: () => {} })).device.destroy();
} catch (e) {
  if (!(e instanceof BackendUnavailableError) || Deno.env.get("CI") === "true") throw e;
  console.error(`webgpu model test skipped (not under CI): ${e.message}`);
  available = false;
}
const opts = { ignore: !available, sanitizeResources: false, sanitizeOps: false };

const V = 60;
const vocab: Vocabulary = {
  words: Array.from({ length: V }, (_, i) => `w${i}`),
  counts: Array.from({ length: V }, (_, i) => 100 - i),
};
const corpus = ringCorpus(V, 1200);

function cfg(backend: TrainConfig["backend"], over: Partial<TrainConfig> = {}): TrainConfig {
  return resolveConfig({
    dim: 8,
    batch: 16,
    epochs: 2,
    lr: 0.003,
    lrMin: 0.0001,
    validation: 0.1,
    loss: "squared",
    backend,
    seed: 7,
    ...over,
  });
}

async function make(backend: TrainConfig["backend"], lines: string[] = [], over: Partial<TrainConfig> = {}) {
  return await Trainer.create({
    config: cfg(backend, over),
    vocab,
    openReader: memoryReader(corpus),
    log: (l) => lines.push(l),
  });
}

function epochs(lines: string[]): number[] {
  return lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((e) => e.event === "epoch")
    .map((e) => e.trainLoss);
}

function maxDiff(a: Float32Array, b: Float32Array): { diff: number; scale: number } {
  assert.equal(a.length, b.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { diff, scale };
}

async function assertSameVectors(gpu: Trainer, cpu: Trainer, what: string, tol: number) {
  const g = await gpu.embeddings({ output: true }), c = await cpu.embeddings({ output: true });
  const inp = maxDiff(g.input, c.input), out = maxDiff(g.output!, c.output!);
  console.error(
    `${what}: input vectors max diff ${inp.diff} (scale ${inp.scale}), output ${out.diff} (${out.scale})`,
  );
  assert.ok(inp.diff <= tol * inp.scale, `${what}: input vectors differ by ${inp.diff} (scale ${inp.scale})`);
  assert.ok(
    out.diff <= tol * out.scale,
    `${what}: output vectors differ by ${out.diff} (scale ${out.scale})`,
  );
}

Deno.test(
  "webgpu model: --backend webgpu trains like --backend blas with no read-back in steady state",
  opts,
  async () => {
    const glines: string[] = [], clines: string[] = [];
    const gpu = await make("webgpu", glines);
    assert.ok(glines.some((l) => l.startsWith("step path: the whole model on the GPU")), glines.join("\n"));
    const layer = gpu.output as WebGpuFactoredLayer;
    const resident = gpu.model.resident!;
    assert.ok(resident, "the GPU step path is attached");
    // per model step: the read-backs it waited for, and the dispatches of its factored step
    const reads: number[] = [], dispatches: number[] = [];
    const step = resident.step.bind(resident);
    resident.step = async (...a) => {
      const r0 = layer.counters().readbacks;
      const loss = await step(...a);
      reads.push(layer.counters().readbacks - r0);
      dispatches.push(layer.counters().dispatchesPerStep);
      return loss;
    };
    const gs = await gpu.train({ paths: ["mem"], rows: corpus.length });
    const cpu = await make("blas", clines);
    const cs = await cpu.train({ paths: ["mem"], rows: corpus.length });
    const ge = epochs(glines), ce = epochs(clines);
    assert.equal(ge.length, 2);
    for (let e = 0; e < ge.length; e++) {
      assert.ok(
        Math.abs(ge[e] - ce[e]) <= 1e-4 * Math.abs(ce[e]),
        `epoch ${e}: webgpu ${ge[e]} vs blas ${ce[e]}`,
      );
    }
    assert.ok(
      Math.abs(gs.validationLoss! - cs.validationLoss!) <= 1e-4 * Math.abs(cs.validationLoss!),
      `validation: webgpu ${gs.validationLoss} vs blas ${cs.validationLoss}`,
    );
    await assertSameVectors(gpu, cpu, "webgpu vs blas", 1e-4);
    // steady state: no read-back; read-backs only at the loss reads (every 50 steps) and stabilisations
    const steps = reads.length, busy = reads.filter((r) => r > 0).length;
    console.error(
      `webgpu model: ${steps} steps, ${busy} with a read-back (${
        reads.reduce((a, b) => a + b, 0)
      } in all), ` +
        `dispatches per step ${Math.min(...dispatches)}–${Math.max(...dispatches)}`,
    );
    assert.ok(steps >= 100, `${steps} steps`);
    assert.ok(busy <= 2 * Math.ceil(steps / 50), `${busy} of ${steps} steps waited for a read-back`);
    // the factored step (nb = 1, one Woodbury round at m = 16: 24) and the input side's gather and scatter
    // (issue 14's target, ≤ 16 at m = 128, d = 300, is not met yet: docs/webgpu.md)
    assert.ok(Math.max(...dispatches) <= 26, `dispatches per step ${Math.max(...dispatches)}`);
    gpu.close();
    cpu.close();
  },
);

Deno.test(
  "webgpu factored: at most 16 dispatches (Woodbury blocks of 64) and no read-back per enqueued step at m = 128, d = 300",
  opts,
  async () => {
    const D = 500, d = 300, m = 128;
    const { WebGpuFactoredLayer } = await import("../lib/output/webgpu/factored.ts");
    const init = Float32Array.from({ length: D * d }, (_, i) => Math.sin(i) * 0.01);
    const layer = await WebGpuFactoredLayer.create({
      kind: "factored",
      D,
      d,
      init,
      loss: "squared",
      log: () => {},
      // the fused structure at two Woodbury rounds; the default block is 32 (4 rounds, 22 dispatches),
      // faster on an H200 (docs/webgpu.md, BENCHMARKS.md)
      woodburyBlock: 64,
    });
    const H = Float32Array.from({ length: m * d }, (_, i) => Math.cos(i) / Math.sqrt(d));
    const Y = {
      offsets: Int32Array.from({ length: m + 1 }, (_, i) => 3 * i),
      indices: Int32Array.from({ length: 3 * m }, (_, i) => (i * 7919) % D),
      values: new Float32Array(3 * m).fill(1),
    };
    for (let s = 0; s < 2; s++) {
      await layer.enqueueStep(H, Y, 1e-3);
      const c = layer.counters();
      assert.ok(c.dispatchesPerStep <= 16, `${c.dispatchesPerStep} dispatches per step`);
      assert.equal(c.readbacksPerStep, 0);
    }
    const diag = await layer.diagnostics();
    console.error(
      `m = ${m}, d = ${d}: ${diag.dispatchesPerStep} dispatches per step (Woodbury blocks of ${layer.woodburyBlock})`,
    );
    const losses = await layer.readLosses();
    assert.ok(losses.length === 2 && losses.every(Number.isFinite), `losses ${losses}`);
    layer.close();
  },
);

Deno.test("webgpu model: --bag mean-full (fastText's update) trains like --backend blas", opts, async () => {
  // 4 context ids per example: the gather takes the mean, the scatter each row's whole gradient
  const over: Partial<TrainConfig> = { bag: "mean-full" };
  const gpu = await make("webgpu", [], over), cpu = await make("blas", [], over);
  await gpu.train({ paths: ["mem"], rows: corpus.length });
  await cpu.train({ paths: ["mem"], rows: corpus.length });
  await assertSameVectors(gpu, cpu, "mean-full: webgpu vs blas", 1e-4);
  // and not the mean's run: the rows moved 4× as far per step
  const mean = await make("blas", [], { bag: "mean" });
  await mean.train({ paths: ["mem"], rows: corpus.length });
  const a = (await cpu.embeddings()).input, b = (await mean.embeddings()).input;
  assert.ok(a.some((v, i) => Math.abs(v - b[i]) > 1e-3), "mean-full trained the same as mean");
  for (const t of [gpu, cpu, mean]) t.close();
});

Deno.test("webgpu model: a CPU checkpoint resumes on the GPU and back", opts, async () => {
  const a = await make("blas");
  await a.train({ paths: ["mem"], rows: corpus.length, epochs: 1 });
  const ckpt = await a.toCheckpoint();
  a.close();
  const log = () => {};
  // each trainer gets its own copy: a trainer keeps (and trains) the arrays of the Checkpoint it is given
  const onGpu = await Trainer.fromCheckpoint(structuredClone(ckpt), {
    backend: "webgpu",
    log,
    openReader: memoryReader(corpus),
  });
  const onCpu = await Trainer.fromCheckpoint(structuredClone(ckpt), {
    backend: "blas",
    log,
    openReader: memoryReader(corpus),
  });
  assert.ok(onGpu.model.resident, "resumed on the GPU path");
  await assertSameVectors(onGpu, onCpu, "loaded", 1e-6);
  for (const t of [onGpu, onCpu]) {
    await t.train({ paths: ["mem"], rows: corpus.length, epochs: 2, resume: true });
  }
  await assertSameVectors(onGpu, onCpu, "resumed and trained", 1e-4);
  const back = await Trainer.fromCheckpoint(structuredClone(await onGpu.toCheckpoint()), {
    backend: "blas",
    log,
  });
  await assertSameVectors(back, onGpu, "GPU → CPU", 1e-6);
  for (const t of [onGpu, onCpu, back]) t.close();
});

Deno.test("webgpu model: hidden layers and the naive layer are refused naming the flag", opts, async () => {
  for (
    const [over, flag] of [[{ hidden: [6] }, "--hidden"], [{ output: "naive" }, "--output"]] as [
      Partial<TrainConfig>,
      string,
    ][]
  ) {
    await assert.rejects(
      () =>
        Trainer.create({
          config: cfg("webgpu", over),
          vocab,
          openReader: memoryReader(corpus),
          log: () => {},
        }),
      (e: Error) => e instanceof UsageError && e.message.includes(flag),
    );
  }
});
