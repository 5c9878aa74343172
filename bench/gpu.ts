/**
 * The GPU table (issue 6): time per example of one SGD step of the factored layer on WebGPU, the naive
 * layer on WebGPU and the naive layer on the CPU (OpenBLAS; fewer configs: it is slow), for
 * D ∈ {200,000, 793,471}, d ∈ {256, 300, 512}, m ∈ {128, 512}. Run by bench/gpu.sh on the GPU machine;
 * `--quick` (or GPU_QUICK=1) runs a tiny table on any adapter (llvmpipe) to check the script end to end.
 *
 * Set-up as bench/layers.ts: W₀ uniform with standard deviation 0.01, H with standard deviation 1/√d,
 * K = 5 uniform random targets of value 1 per example, squared loss, η = 1e-3, 4 batches cycled.
 * Factored, "pipelined": steps enqueued with no read-back (the loss stays on the GPU) and the losses read
 * once at the end, so the time includes all GPU work; "step()": the OutputLayer contract, loss and ∇H read
 * back every step. Default stabilisation (a read-back of the d×d state at an adaptive interval of 50 to
 * GPU_STABILIZE_EVERY = 500 steps; 300 warm-up steps let it settle) is included.
 *
 * Environment (for a shorter run): GPU_CONFIGS="D/d/m,…" measures only those configurations (default: the
 * whole table), GPU_CPU="D/d/m,…" the naive CPU ones (default 793471/300/128, 793471/300/512,
 * 200000/256/128), GPU_MB_SWEEP="64,110" the Woodbury block sizes also timed at the headline configuration
 * ("" for none), GPU_MODEL_MS="128,512" the batch sizes of the whole-model-ish rows ("" for none).
 * Naive GPU: steps submitted back to back, then one wait. Naive CPU: createOutputLayer backend "blas".
 *
 * Usage: deno run -A bench/gpu.ts [--quick] [--require-nvidia] [--out FILE] (`--help` lists the flags; a bad
 * flag or value, or no WebGPU adapter, is one line `bench/gpu: …`, exit 2; lib/core/cli.ts)
 *
 * @module
 */

import {
  type FlagSpec,
  type FlagValue,
  HELP_FLAG,
  helpText,
  parseFlags,
  positiveNumber,
} from "../lib/core/cli.ts";
import { exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { writeFileAtomic } from "../lib/core/atomic.ts";
import { createOutputLayer } from "../lib/output/create.ts";
import { initParams, Model, type ModelSpec } from "../lib/model/model.ts";
import { attachStepPath } from "../lib/model/gpu_model.ts";
import type { SparseBatch } from "../lib/core/types.ts";
import { requestWebGpuDevice, type WebGpuContext } from "../lib/output/webgpu/device.ts";
import { WebGpuFactoredLayer } from "../lib/output/webgpu/factored.ts";
import { WebGpuNaiveLayer } from "../lib/output/webgpu/naive.ts";
import { Rng, uniformSource } from "../lib/core/rng.ts";

/** The flags of `deno run -A bench/gpu.ts` (bench/gpu.sh gives --out, and --quick or --require-nvidia). */
const FLAGS: Record<string, FlagSpec> = {
  quick: {
    type: "boolean",
    default: Deno.env.get("GPU_QUICK") === "1",
    help: "a tiny table on any adapter (llvmpipe): checks the script (also GPU_QUICK=1)",
  },
  "require-nvidia": { type: "boolean", default: false, help: "exit 3 unless the adapter is the NVIDIA GPU" },
  out: { type: "string", help: "the markdown file the table is also written to" },
  seconds: { type: "string", help: "the timing window of each measurement (default: 1; --quick 0.3)" },
  budget: {
    type: "string",
    help: "seconds after which the remaining measurements are skipped (default: GPU_BUDGET_S, else 300)",
  },
  help: HELP_FLAG,
};

/**
 * The command line and the WebGPU device, or the process ends: `--help` printed (exit 0), a bad flag or
 * value, or no WebGPU adapter, as one line `bench/gpu: …` (exit 2; lib/core/exit_codes.ts runCommand).
 */
async function start() {
  let r:
    | { values: Record<string, FlagValue>; budget: number; seconds: number; ctx: WebGpuContext }
    | undefined;
  await runCommand("bench/gpu", async () => {
    const values = parseFlags(Deno.args, FLAGS);
    if (values.help) {
      console.log(helpText(
        "npx deno run -A bench/gpu.ts [--quick] [--require-nvidia] [--out FILE] [flags]",
        FLAGS,
        exitCodesHelp().replace(
          /\n {2}8 /,
          "\n  3  the adapter is not the NVIDIA GPU (--require-nvidia)" +
            "\n  4  the device reported errors (the table is printed, its numbers are not valid)$&",
        ),
      ));
      Deno.exit(0);
    }
    const quick = values.quick === true;
    const budget = positiveNumber("--budget", values.budget ?? Deno.env.get("GPU_BUDGET_S") ?? "300");
    const seconds = positiveNumber("--seconds", values.seconds ?? (quick ? "0.3" : "1"));
    r = { values, budget, seconds, ctx: await requestWebGpuDevice({ log }) };
  });
  return r!;
}

const log = (l: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${l}`);
const T0 = performance.now();
const { values, budget: BUDGET_S, seconds: SECONDS, ctx } = await start();
/** Seconds after which the remaining measurements are skipped (the table is still printed). */
const overBudget = () => (performance.now() - T0) / 1000 > BUDGET_S;
const quick = values.quick === true;
const K = 5, ETA = 1e-3;

/** x uniform with standard deviation `std` (in ±std·√3). */
function fillUniform(x: Float32Array, std: number, seed: number): void {
  new Rng(seed).fillUniform(x, std * Math.sqrt(3));
}

function makeBatches(D: number, d: number, m: number): { H: Float32Array; Y: SparseBatch }[] {
  return [0, 1, 2, 3].map((b) => {
    const next = uniformSource(99 + b);
    const H = new Float32Array(m * d);
    fillUniform(H, 1 / Math.sqrt(d), 777 + b);
    const offsets = Int32Array.from({ length: m + 1 }, (_, i) => i * K);
    const indices = Int32Array.from({ length: m * K }, () => Math.floor(next() * D));
    return { H, Y: { offsets, indices, values: new Float32Array(m * K).fill(1) } };
  });
}

const nvidia = /nvidia/i.test(ctx.description) || /^(4318|0x10de|nvidia)$/i.test(ctx.vendor);
if (values["require-nvidia"] && !nvidia) {
  console.error(
    `FAIL: the WebGPU adapter is "${ctx.description}" (vendor ${ctx.vendor}${
      ctx.isFallback ? ", software" : ""
    }), ` +
      `not the NVIDIA GPU: the Vulkan loader did not find NVIDIA's ICD (check VK_DRIVER_FILES)`,
  );
  Deno.exit(3);
}

/** Read-back latency on this device: ms per mapAsync of 16 B after an empty submit, and per onSubmittedWorkDone. */
async function readbackLatency(): Promise<string> {
  const dev = ctx.device;
  const src = dev.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const stage = dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const med = (x: number[]) => x.sort((a, b) => a - b)[x.length >> 1];
  const maps: number[] = [], dones: number[] = [];
  for (let i = 0; i < 9; i++) {
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, stage, 0, 16);
    dev.queue.submit([enc.finish()]);
    const t0 = performance.now();
    await stage.mapAsync(GPUMapMode.READ);
    maps.push(performance.now() - t0);
    stage.unmap();
    dev.queue.submit([]);
    const t1 = performance.now();
    await dev.queue.onSubmittedWorkDone();
    dones.push(performance.now() - t1);
  }
  src.destroy();
  stage.destroy();
  return `read-back latency (median of 9): mapAsync of 16 B ${med(maps).toFixed(2)} ms, ` +
    `queue.onSubmittedWorkDone() ${med(dones).toFixed(2)} ms`;
}
const latency = await readbackLatency();
log(latency);

type Row = {
  D: number;
  d: number;
  m: number;
  fPipe?: number;
  fSync?: number;
  nGpu?: number;
  nCpu?: number | string;
  setup?: number;
  notes: string[];
};

/** Runs `fn` (one or more steps, returning how many) until `seconds` passed; µs per step. */
async function timed(fn: () => Promise<number>, seconds: number, minSteps = 2): Promise<number> {
  let steps = 0;
  const t0 = performance.now();
  let now = t0;
  while (steps < minSteps || now - t0 < seconds * 1000) {
    steps += await fn();
    now = performance.now();
  }
  return ((now - t0) * 1000) / steps;
}

const envList = (name: string): string[] | undefined => {
  const v = Deno.env.get(name);
  return v === undefined ? undefined : v.split(",").map((x) => x.trim()).filter((x) => x.length > 0);
};
const only = envList("GPU_CONFIGS");
// (D, d) pairs, the headline configuration first (so a time limit never loses it)
const allPairs: [number, number][] = quick
  ? [[5_000, 48], [5_000, 32], [2_000, 48], [2_000, 32]]
  : [[793_471, 300], [200_000, 256], [793_471, 256], [793_471, 512], [200_000, 300], [200_000, 512]];
const allMs = quick ? [16, 64] : [128, 512];
const wanted = (D: number, d: number, m: number) => !only || only.includes(`${D}/${d}/${m}`);
const pairs = allPairs.filter(([D, d]) => allMs.some((m) => wanted(D, d, m)));
const ms = allMs;
const cpuConfigs = new Set(
  envList("GPU_CPU") ?? (quick ? ["5000/48/16"] : ["793471/300/128", "793471/300/512", "200000/256/128"]),
);
const mbSweep = (envList("GPU_MB_SWEEP") ?? ["64", "110"]).map(Number);
const modelMs = (envList("GPU_MODEL_MS") ?? ms.map(String)).map(Number);
const rows: Row[] = [];
const f3 = (x: number) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const profiles: string[] = [];
for (const [D, d] of pairs) {
  {
    if (overBudget()) {
      for (const m of ms.filter((m) => wanted(D, d, m))) {
        rows.push({ D, d, m, notes: [`skipped: over the ${BUDGET_S} s budget`] });
      }
      continue;
    }
    let W0: Float32Array | undefined = new Float32Array(D * d);
    fillUniform(W0, 0.01, 12345);
    for (const m of ms.filter((m) => wanted(D, d, m))) {
      const row: Row = { D, d, m, notes: [] };
      rows.push(row);
      if (overBudget()) {
        row.notes.push(`skipped: over the ${BUDGET_S} s budget`);
        continue;
      }
      const batches = makeBatches(D, d, m);
      // factored on the GPU
      try {
        const t0 = performance.now();
        const f = await WebGpuFactoredLayer.create({
          kind: "factored",
          D,
          d,
          init: W0,
          loss: "squared",
          context: ctx,
          log: () => {},
        });
        row.setup = (performance.now() - t0) / 1000;
        // warm-up: 300 steps, so that the adaptive stabilisation interval (50 at first) has settled
        for (let i = 0; i < (quick ? 4 : 300); i++) {
          await f.enqueueStep(batches[i % 4].H, batches[i % 4].Y, ETA);
        }
        await f.readLosses();
        let k = 0;
        const chunk = 200; // losses read back once per 200 steps (each map costs ~14 ms in Deno on the H200)
        row.fPipe = (await timed(async () => {
          for (let i = 0; i < chunk; i++, k++) await f.enqueueStep(batches[k % 4].H, batches[k % 4].Y, ETA);
          const L = await f.readLosses();
          if (!Number.isFinite(L[L.length - 1])) throw new Error(`loss ${L[L.length - 1]}`);
          return chunk;
        }, SECONDS)) / m;
        row.fSync = (await timed(async () => {
          const r = await f.step(batches[k % 4].H, batches[k++ % 4].Y, ETA);
          if (!Number.isFinite(r.loss)) throw new Error(`loss ${r.loss}`);
          return 1;
        }, SECONDS / 2)) / m;
        if (D === pairs[0][0] && d === pairs[0][1]) {
          const prof = await f.profileSteps(batches[0].H, batches[0].Y, 10);
          profiles.push(
            prof
              ? `D=${D}, d=${d}, m=${m}: GPU time per step by kernel (timestamp queries, one pass per dispatch): ` +
                prof.map((p) => `${p.kernel} ${p.usPerStep.toFixed(1)} µs (${p.dispatchesPerStep}×)`).join(
                  ", ",
                ) +
                `; sum ${prof.reduce((a, p) => a + p.usPerStep, 0).toFixed(1)} µs`
              : `D=${D}, d=${d}, m=${m}: no timestamp-query feature, no per-kernel profile`,
          );
          log(profiles[profiles.length - 1]);
        }
        if (D === pairs[0][0] && d === pairs[0][1]) {
          // the Woodbury block size trade-off (fewer rounds vs a slower one-workgroup inverse)
          for (const mb of mbSweep) {
            if (overBudget()) break;
            try {
              const g = await WebGpuFactoredLayer.create({
                kind: "factored",
                D,
                d,
                init: W0,
                loss: "squared",
                context: ctx,
                woodburyBlock: mb,
                log: () => {},
              });
              for (let i = 0; i < 4; i++) await g.enqueueStep(batches[i].H, batches[i].Y, ETA);
              await g.readLosses();
              let j = 0;
              const us = (await timed(async () => {
                for (let i = 0; i < chunk; i++, j++) {
                  await g.enqueueStep(batches[j % 4].H, batches[j % 4].Y, ETA);
                }
                await g.readLosses();
                return chunk;
              }, SECONDS / 2)) / m;
              row.notes.push(`Woodbury blocks of ${g.woodburyBlock}: ${f3(us)} µs/ex`);
              g.close();
            } catch (e) {
              row.notes.push(`blocks of ${mb}: ${(e as Error).message.slice(0, 80)}`);
            }
          }
        }
        const diag = await f.diagnostics();
        row.notes.push(
          `condU ${diag.condU.toFixed(2)}; stabilised every ${f.stabilizeInterval} steps at the end`,
        );
        f.close();
      } catch (e) {
        row.notes.push(`factored: ${(e as Error).message.slice(0, 120)}`);
      }
      log(
        `D=${D} d=${d} m=${m}: factored ${row.fPipe?.toFixed(3)} µs/ex pipelined, ${
          row.fSync?.toFixed(3)
        } step()`,
      );
      // naive on the GPU
      try {
        const n = await WebGpuNaiveLayer.create({
          kind: "naive",
          D,
          d,
          init: W0,
          loss: "squared",
          context: ctx,
          maxBatch: m,
          log: () => {},
        });
        await n.step(batches[0].H, batches[0].Y, ETA);
        let k = 0;
        row.nGpu = (await timed(async () => {
          for (let i = 0; i < 2; i++, k++) await n.enqueueStep(batches[k % 4].H, batches[k % 4].Y, ETA);
          await n.finish();
          return 2;
        }, SECONDS)) / m;
        const r = await n.step(batches[0].H, batches[0].Y, ETA);
        if (!Number.isFinite(r.loss)) throw new Error(`loss ${r.loss}`);
        n.close();
      } catch (e) {
        row.notes.push(`naive GPU: ${(e as Error).message.slice(0, 120)}`);
      }
      log(`D=${D} d=${d} m=${m}: naive GPU ${row.nGpu?.toFixed(2)} µs/ex`);
      // naive on the CPU (OpenBLAS)
      if (cpuConfigs.has(`${D}/${d}/${m}`) && !overBudget()) {
        try {
          const c = await createOutputLayer({
            kind: "naive",
            D,
            d,
            init: W0,
            loss: "squared",
            backend: "blas",
            log,
          });
          await c.step(batches[0].H, batches[0].Y, ETA);
          let k = 0;
          row.nCpu = (await timed(
            async () => {
              await c.step(batches[k % 4].H, batches[k++ % 4].Y, ETA);
              return 1;
            },
            SECONDS,
            2,
          )) / m;
          c.close();
        } catch (e) {
          row.nCpu = `unavailable: ${(e as Error).message.slice(0, 100)}`;
        }
        log(
          `D=${D} d=${d} m=${m}: naive CPU ${
            typeof row.nCpu === "number" ? row.nCpu.toFixed(1) : row.nCpu
          } µs/ex`,
        );
      }
    }
    W0 = undefined;
  }
}

// whole-model-ish training: lib/model's Model (an embedding bag of 20 input tokens, mean, into d − 1 = 299
// plus the constant 1; no hidden layer), model.step() per batch: on webgpu the whole model on the GPU
// (lib/model/gpu_model.ts), on blas the model on the host with the factored head on OpenBLAS
type ModelRow = { D: number; d: number; m: number; gpu?: number; blas?: number; note: string[] };
const modelRows: ModelRow[] = [];
{
  const D = quick ? 5_000 : 793_471, d = quick ? 48 : 300, ctxTokens = 20;
  for (const m of modelMs) {
    const row: ModelRow = { D, d, m, note: [] };
    modelRows.push(row);
    if (overBudget()) {
      row.note.push(`skipped: over the ${BUDGET_S} s budget`);
      continue;
    }
    const spec: ModelSpec = { vocab: D, dim: d - 1, hidden: [], activation: "relu", bag: "mean" };
    const batches = makeBatches(D, d, m).map(({ Y }, b) => {
      const next = uniformSource(7 + b);
      const offsets = Int32Array.from({ length: m + 1 }, (_, i) => i * ctxTokens);
      const indices = Int32Array.from({ length: m * ctxTokens }, () => Math.floor(next() * D));
      return { X: { offsets, indices, values: new Float32Array(m * ctxTokens).fill(1) }, Y };
    });
    for (const backend of ["webgpu", "blas"] as const) {
      if (overBudget()) break;
      try {
        const params = initParams(spec, uniformSource(1));
        const init = new Float32Array(D * d);
        fillUniform(init, 0.01, 12345);
        const head = backend === "webgpu"
          ? await WebGpuFactoredLayer.create({
            kind: "factored",
            D,
            d,
            init,
            loss: "squared",
            context: ctx,
            log: () => {},
          })
          : await createOutputLayer({ kind: "factored", D, d, init, loss: "squared", backend: "blas", log });
        const model = new Model(spec, params, head);
        // webgpu: the whole model on the GPU (E resident, no read-back per step, losses every 50 steps)
        if (backend === "webgpu") attachStepPath(model, { backend, log: () => {} });
        await model.step(batches[0].X, batches[0].Y, ETA);
        await model.flush();
        let k = 0;
        const t0 = performance.now();
        const us = await timed(
          async () => {
            const L = await model.step(batches[k % 4].X, batches[k++ % 4].Y, ETA);
            if (!Number.isFinite(L)) throw new Error(`model loss ${L}`);
            return 1;
          },
          SECONDS,
          3,
        );
        // the steps still queued on the GPU count too
        const pairs = await model.flush();
        const usAll = (performance.now() - t0) * 1000 / k;
        if (pairs.some(([l]) => !Number.isFinite(l))) throw new Error("model loss not finite");
        row[backend === "webgpu" ? "gpu" : "blas"] = 1e6 / (Math.max(us, usAll) / m);
        head.close();
      } catch (e) {
        row.note.push(`${backend}: ${(e as Error).message.slice(0, 120)}`);
      }
    }
    log(
      `model D=${D} d=${d} m=${m}: ${row.gpu?.toFixed(0)} ex/s on webgpu, ${
        row.blas?.toFixed(0)
      } ex/s on blas`,
    );
  }
}

const f = (x: number | undefined, p = 3) =>
  x === undefined ? "–" : x >= 100 ? x.toFixed(0) : x.toPrecision(p);
const lines: string[] = [];
lines.push(
  `Adapter: ${ctx.description} (vendor ${ctx.vendor}${ctx.isFallback ? ", software" : ""}); ` +
    `maxStorageBufferBindingSize ${ctx.limits.maxStorageBufferBindingSize} B. Deno ${Deno.version.deno}. ` +
    `${new Date().toISOString()}${quick ? " (quick table)" : ""}; ${
      ((performance.now() - T0) / 1000).toFixed(0)
    } s.`,
  "",
  "| D | d | m | factored GPU µs/ex (pipelined) | factored GPU µs/ex (step(), read-back) | naive GPU µs/ex | naive GPU TFLOP/s | naive CPU (blas) µs/ex | factored vs naive GPU | factored vs naive CPU | theory D/(4d) | factored set-up s | notes |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
);
rows.sort((a, b) => a.D - b.D || a.d - b.d || a.m - b.m);
for (const r of rows) {
  const cpu = typeof r.nCpu === "number" ? r.nCpu : undefined;
  lines.push(
    `| ${r.D} | ${r.d} | ${r.m} | ${f(r.fPipe)} | ${f(r.fSync)} | ${f(r.nGpu)} | ${
      r.nGpu ? f((6 * r.D * r.d) / (r.nGpu * 1e6)) : "–"
    } | ${typeof r.nCpu === "string" ? r.nCpu : f(cpu)} | ${
      r.nGpu && r.fPipe ? f(r.nGpu / r.fPipe) + "×" : "–"
    } | ${cpu && r.fPipe ? f(cpu / r.fPipe) + "×" : "–"} | ${f(r.D / (4 * r.d))}× | ${f(r.setup, 2)} | ${
      r.notes.join("; ")
    } |`,
  );
}
if (!quick) {
  lines.push("", "Targets (issue 6, D = 793,471, d = 300):");
  for (const m of ms) {
    const r = rows.find((x) => x.D === 793_471 && x.d === 300 && x.m === m);
    if (!r) continue;
    const cpu = typeof r.nCpu === "number" ? r.nCpu : undefined;
    const vsCpu = cpu && r.fPipe ? cpu / r.fPipe : undefined;
    const vsGpu = r.nGpu && r.fPipe ? r.nGpu / r.fPipe : undefined;
    lines.push(
      `- m = ${m}: factored vs naive CPU ${vsCpu ? f(vsCpu) + "×" : "not measured"} (target ≥ 1000×: ${
        vsCpu ? (vsCpu >= 1000 ? "met" : "not met") : "–"
      }); vs naive GPU ${vsGpu ? f(vsGpu) + "×" : "not measured"} (target ≥ 100×: ${
        vsGpu ? (vsGpu >= 100 ? "met" : "not met") : "–"
      })`,
    );
  }
}
lines.push("", `- ${latency}`);
if (profiles.length) lines.push(...profiles.map((p) => `- ${p}`));
lines.push(
  "",
  "Whole-model-ish training (lib/model Model: embedding bag of 20 tokens → d − 1, + 1; factored head; " +
    "model.step() per batch; webgpu: the whole model on the GPU, losses read every 50 steps; blas: the model " +
    "on the host), examples/s:",
  "",
  "| D | d | m | model on webgpu ex/s | model on blas ex/s | webgpu / blas | notes |",
  "|---|---|---|---|---|---|---|",
);
for (const r of modelRows) {
  lines.push(
    `| ${r.D} | ${r.d} | ${r.m} | ${f(r.gpu)} | ${f(r.blas)} | ${
      r.gpu && r.blas ? f(r.gpu / r.blas) + "×" : "–"
    } | ${r.note.join("; ")} |`,
  );
}
if (ctx.errors.length) {
  lines.push("", `**The device reported ${ctx.errors.length} error(s); the numbers above are not valid:**`);
  for (const e of ctx.errors.slice(0, 10)) lines.push(`- ${e.slice(0, 300)}`);
}
const text = lines.join("\n");
console.log(text);
if (typeof values.out === "string" && values.out !== "") await writeFileAtomic(values.out, text + "\n");
ctx.device.destroy();
if (ctx.errors.length) Deno.exit(4);
