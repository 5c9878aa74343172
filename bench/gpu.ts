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
 * back every step. Default stabilisation (every 50 steps, read-back of the d×d state) is included.
 * Naive GPU: steps submitted back to back, then one wait. Naive CPU: createOutputLayer backend "blas".
 *
 * Usage: deno run -A bench/gpu.ts [--quick] [--require-nvidia] [--out FILE]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createOutputLayer } from "../lib/layers/create.ts";
import type { SparseBatch } from "../lib/types.ts";
import { requestWebGpuDevice } from "../lib/webgpu/device.ts";
import { WebGpuFactoredLayer } from "../lib/webgpu/factored.ts";
import { WebGpuNaiveLayer } from "../lib/webgpu/naive.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: Deno.env.get("GPU_QUICK") === "1" },
    "require-nvidia": { type: "boolean", default: false },
    out: { type: "string" },
    seconds: { type: "string" },
  },
});
const quick = values.quick!;
const SECONDS = Number(values.seconds ?? (quick ? 0.3 : 1.0));
const K = 5, ETA = 1e-3;
const log = (l: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${l}`);

function fillUniform(x: Float32Array, std: number, seed: number): void {
  const a = std * Math.sqrt(3) * 2 / 4294967296;
  let s = seed | 0 || 1;
  for (let i = 0; i < x.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    x[i] = (s >>> 0) * a - std * Math.sqrt(3);
  }
}

function makeBatches(D: number, d: number, m: number): { H: Float32Array; Y: SparseBatch }[] {
  return [0, 1, 2, 3].map((b) => {
    let s = 99 + b;
    const next = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 4294967296;
    };
    const H = new Float32Array(m * d);
    fillUniform(H, 1 / Math.sqrt(d), 777 + b);
    const offsets = Int32Array.from({ length: m + 1 }, (_, i) => i * K);
    const indices = Int32Array.from({ length: m * K }, () => Math.floor(next() * D));
    return { H, Y: { offsets, indices, values: new Float32Array(m * K).fill(1) } };
  });
}

const ctx = await requestWebGpuDevice({ log });
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

const Ds = quick ? [2_000, 5_000] : [200_000, 793_471];
const ds = quick ? [32, 48] : [256, 300, 512];
const ms = quick ? [16, 64] : [128, 512];
const cpuConfigs = new Set(quick ? ["5000/48/16"] : ["793471/300/128", "200000/256/128", "793471/300/512"]);
const rows: Row[] = [];
for (const D of Ds) {
  for (const d of ds) {
    let W0: Float32Array | undefined = new Float32Array(D * d);
    fillUniform(W0, 0.01, 12345);
    for (const m of ms) {
      const row: Row = { D, d, m, notes: [] };
      rows.push(row);
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
        for (let i = 0; i < 4; i++) await f.enqueueStep(batches[i].H, batches[i].Y, ETA);
        await f.readLosses();
        let k = 0;
        const chunk = 20;
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
        const diag = await f.diagnostics();
        row.notes.push(`condU ${diag.condU.toFixed(2)}`);
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
      if (cpuConfigs.has(`${D}/${d}/${m}`)) {
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

const f = (x: number | undefined, p = 3) =>
  x === undefined ? "–" : x >= 100 ? x.toFixed(0) : x.toPrecision(p);
const lines: string[] = [];
lines.push(
  `Adapter: ${ctx.description} (vendor ${ctx.vendor}${ctx.isFallback ? ", software" : ""}); ` +
    `maxStorageBufferBindingSize ${ctx.limits.maxStorageBufferBindingSize} B. Deno ${Deno.version.deno}. ` +
    `${new Date().toISOString()}${quick ? " (quick table)" : ""}.`,
  "",
  "| D | d | m | factored GPU µs/ex (pipelined) | factored GPU µs/ex (step(), read-back) | naive GPU µs/ex | naive CPU (blas) µs/ex | factored vs naive GPU | factored vs naive CPU | theory D/(4d) | factored set-up s | notes |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
);
for (const r of rows) {
  const cpu = typeof r.nCpu === "number" ? r.nCpu : undefined;
  lines.push(
    `| ${r.D} | ${r.d} | ${r.m} | ${f(r.fPipe)} | ${f(r.fSync)} | ${f(r.nGpu)} | ${
      typeof r.nCpu === "string" ? r.nCpu : f(cpu)
    } | ${r.nGpu && r.fPipe ? f(r.nGpu / r.fPipe) + "×" : "–"} | ${
      cpu && r.fPipe ? f(cpu / r.fPipe) + "×" : "–"
    } | ${f(r.D / (4 * r.d))}× | ${f(r.setup, 2)} | ${r.notes.join("; ")} |`,
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
const text = lines.join("\n");
console.log(text);
if (values.out) {
  const tmp = `${values.out}.tmp`;
  await Deno.writeTextFile(tmp, text + "\n");
  await Deno.rename(tmp, values.out);
}
ctx.device.destroy();
