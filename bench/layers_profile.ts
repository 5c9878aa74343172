/**
 * Per-kernel profile of the factored step on the CPU (issue 18, item 1): `deno run -A bench/layers.ts
 * --profile 200000x256x128` times every backend call of a run of steps and sums them by group (the forward
 * m×d×d products, the Gram products, the Woodbury m×m solve, the U/U⁻ᵀ update product, the float32
 * state updates, the Q update, the sparse row work, float64 and upkeep calls); the step's time not spent
 * in a backend call is the JavaScript between them (merge of the targets, the loss, scalar loops).
 *
 * The backend is wrapped, not changed: each call is timed with performance.now() and classified by its name
 * and shape, so the layer's code runs exactly as in production. The timing itself costs the step time (about
 * half a microsecond a call at ≈ 600 calls a step: 10–15% of a one-thread step at d = 256), so the profile
 * alternates blocks of timed and untimed steps ({@link ProfiledBackend.timing}) and takes the difference of
 * their step times off the JavaScript row, where it would otherwise land.
 *
 * @module
 */

import type { LinAlgBackend } from "../lib/linalg/backend.ts";
import { fmt, table } from "./report.ts";

/** Time (ms) and calls per kernel group. */
export type Profile = Map<string, { ms: number; calls: number; flops: number }>;

/**
 * The group a backend call belongs to, from its name and arguments (the shapes step32.ts and step64.ts
 * use; d = input dimension, m = batch size).
 */
function groupOf(name: string, a: unknown[], d: number, m: number): string {
  const n = (i: number) => a[i] as number;
  switch (name) {
    case "sgemm":
    case "dgemm": {
      const [tA, tB, M, N, K] = [a[0], a[1], n(2), n(3), n(4)];
      const p = name === "dgemm" ? " (float64)" : "";
      if (!tA && tB && M === m && N >= 2 * d && K === d) return "1 forward: H·[U;Q;U⁻ᵀ]ᵀ" + p;
      if (!tA && M === m && N === d && K === d) return "1/5 forward: m×d×d (ĤUᵀ, QH, AU, Z)" + p;
      if (!tA && tB && K === d && N === m) return "Gram: [X';H]·Hᵀ, S, E" + p;
      if (tA && !tB && N === d && K === m && M === m) return "Woodbury: N⁻ᵀZ (m×d×m)" + p;
      if (tA && !tB && (M === 2 * d || M === d) && N === d && K === m) return "6/7 U, U⁻ᵀ update product" + p;
      if (!tA && !tB && M === m && N === d && K === m) return "10 Q update: MH" + p;
      return "upkeep / other " + name;
    }
    case "ssyr2k":
    case "dsyr2k":
      return n(1) === d && n(2) === m ? "10 Q update: syr2k" : "upkeep / other syr2k";
    case "dsyrk":
      return "upkeep / other dsyrk (Gram of V)";
    case "dpotrf":
    case "strsm":
    case "dinvert":
    case "dsolve":
      return n(1) === m || (name !== "strsm" && n(1) === m)
        ? "Woodbury: m×m solve"
        : "upkeep / other " + name;
    case "axpyRows":
      return n(8) === d ? "sparse rows: V axpy (A, V update)" : "state saxpy: mirrors + accumulator";
    case "dotRows":
    case "gatherRows":
    case "scatterAddRows":
      return "sparse rows: V dot/gather/scatter";
    case "sger":
      return "rank-1 updates (m = 1)";
    default:
      return "other " + name;
  }
}

/** Flops of a call (2 per multiply-add) where they are clear, else 0. */
function flopsOf(name: string, a: unknown[]): number {
  const n = (i: number) => a[i] as number;
  if (name === "sgemm" || name === "dgemm") return 2 * n(2) * n(3) * n(4);
  if (name === "ssyr2k" || name === "dsyr2k") return 2 * n(1) * n(1) * n(2);
  if (name === "dsyrk") return n(1) * n(1) * n(2);
  if (name === "strsm") return n(1) * n(1) * n(2);
  return 0;
}

/**
 * A wrapped backend ({@link profiled}) whose calls are timed while `timing` is true; while false each call goes
 * to the backend through a bound function (no timing, no classification).
 */
export type ProfiledBackend = LinAlgBackend & { timing: boolean };

/**
 * A backend that forwards to `la` and, while its `timing` is true (the default), adds each call's time to
 * `prof` under its group.
 *
 * @example
 * ```ts
 * import { profiled } from "./layers_profile.ts";
 * import { createJsBackend } from "../lib/linalg/js.ts";
 * const prof = new Map();
 * const la = profiled(createJsBackend(), prof, 4, 2);
 * const A = new Float32Array(8), B = new Float32Array(32), C = new Float32Array(16);
 * la.sgemm(false, true, 2, 8, 4, 1, A, 4, B, 4, 0, C, 8);
 * la.timing = false;
 * la.sgemm(false, true, 2, 8, 4, 1, A, 4, B, 4, 0, C, 8); // not counted
 * console.log([...prof.keys()], prof.get("1 forward: H·[U;Q;U⁻ᵀ]ᵀ").calls); // ["1 forward: H·[U;Q;U⁻ᵀ]ᵀ"] 1
 * ```
 *
 * @param la the backend
 * @param prof where the times go
 * @param d input dimension (for the classification)
 * @param m batch size
 * @returns the wrapped backend
 */
export function profiled(la: LinAlgBackend, prof: Profile, d: number, m: number): ProfiledBackend {
  const out = Object.create(la) as Record<string, unknown>;
  const timed: Record<string, unknown> = {}, plain: Record<string, unknown> = {};
  // the time of the timed calls made inside the call in progress (a pool's unheld(f) and defer(f) run
  // callbacks that call the backend): each call's row gets its own time only, so that no time counts twice
  let inner = 0;
  for (const key of Object.keys(la) as (keyof LinAlgBackend)[]) {
    const f = la[key];
    if (typeof f !== "function" || key === "close") continue;
    plain[key] = (f as (...x: unknown[]) => unknown).bind(la);
    timed[key] = (...a: unknown[]) => {
      const t0 = performance.now(), outer = inner;
      inner = 0;
      try {
        return (f as (...x: unknown[]) => unknown).apply(la, a);
      } finally {
        // a pool kernel's run is grouped by its mode (the first kernel argument, step_kernel.ts ARG_MODE)
        const g = (key as string) === "runKernel" && "kernelArgs" in la
          ? `pool kernel ${a[0]}, mode ${(la as { kernelArgs: Float64Array }).kernelArgs[0]}`
          : groupOf(key, a, d, m);
        const e = prof.get(g) ?? { ms: 0, calls: 0, flops: 0 }, ms = performance.now() - t0;
        e.ms += ms - inner;
        inner = outer + ms;
        e.calls++;
        e.flops += flopsOf(key, a);
        prof.set(g, e);
      }
    };
  }
  let timing = true;
  Object.assign(out, timed);
  Object.defineProperty(out, "timing", {
    get: () => timing,
    set: (on: boolean) => {
      if (on !== timing) Object.assign(out, on ? timed : plain);
      timing = on;
    },
  });
  return out as unknown as ProfiledBackend;
}

/**
 * The profile as a markdown table: per group ms per step, share of the step, calls per step and GFLOP/s; the
 * rest of the step is reported as JavaScript. Given `untimedMs`, the step time of steps taken with the timing
 * off in the same run, the shares are of that step and the JavaScript is what it leaves after the calls: the
 * timing's own cost (the timed step's excess over it) no longer counts as JavaScript, and gets a row of its own.
 *
 * @example
 * ```ts
 * import { profileTable } from "./layers_profile.ts";
 * console.log(profileTable(new Map([["x", { ms: 2, calls: 4, flops: 2e9 }]]), 1, 4, 3.5));
 * ```
 *
 * @param prof the summed times
 * @param steps steps profiled
 * @param totalMs wall time of those steps
 * @param untimedMs wall time per step of steps taken with the timing off, in the same run
 * @returns the table
 */
export function profileTable(prof: Profile, steps: number, totalMs: number, untimedMs?: number): string {
  const rows: string[][] = [];
  const stepMs = untimedMs ?? totalMs / steps;
  const share = (ms: number) => `${fmt((ms / stepMs) * 100, 2)}%`;
  let blas = 0;
  const sorted = [...prof.entries()].sort((a, b) => b[1].ms - a[1].ms);
  for (const [g, e] of sorted) {
    blas += e.ms;
    rows.push([
      g,
      fmt(e.ms / steps, 3),
      share(e.ms / steps),
      fmt(e.calls / steps, 3),
      e.flops ? fmt(e.flops / (e.ms * 1e6), 3) : "",
    ]);
  }
  const js = stepMs - blas / steps;
  rows.push(["JavaScript between calls (merge, loss, scalar loops)", fmt(js, 3), share(js), "", ""]);
  if (untimedMs === undefined) {
    rows.push(["**step**", fmt(stepMs, 3), "100%", "", ""]);
  } else {
    rows.push(["**step** (untimed)", fmt(stepMs, 3), "100%", "", ""]);
    const cost = totalMs / steps - stepMs;
    rows.push([
      "timing the calls (the timed step's excess, not in the rows above)",
      fmt(cost, 3),
      share(cost),
      "",
      "",
    ]);
  }
  return table(["kernel group", "ms / step", "share", "calls / step", "GFLOP/s"], rows);
}

/** Names of the pool's operation codes (lib/linalg/pool_ops.ts `OP_*`). */
const OP_NAMES: Record<number, string> = {
  1: "split sgemm",
  2: "split dgemm",
  3: "split strsm",
  4: "split saxpy (state rows)",
  5: "split ssyr2k",
  8: "split dotRows",
  9: "split axpyRows (indexed)",
};

/** Names of the factored step kernel's modes (lib/output/factored/step_kernel.ts). */
const MODE_NAMES = ["FWD_ROWS", "GRAD_ROWS", "UPD_ROWS", "UPD_TASKS", "UPD_TAIL"];

/**
 * The pool's part times (lib/linalg/pool.ts `partTimes`) as a markdown table: per operation and thread
 * (0 = the calling thread), the parts run per step, the milliseconds per part and per step. Set beside the
 * one-thread profile, it shows what a thread's share of a split call costs when both threads run at once
 * (BENCHMARKS.md, "Where the second core goes").
 *
 * @example
 * ```ts
 * import { partTimeTable } from "./layers_profile.ts";
 * console.log(partTimeTable([{ thread: 0, op: 1, mode: 0, ms: 20, parts: 100 }], 50));
 * ```
 *
 * @param rows the part times
 * @param steps steps profiled
 * @returns the table
 */
export function partTimeTable(
  rows: { thread: number; op: number; mode: number; ms: number; parts: number }[],
  steps: number,
): string {
  const name = (op: number, mode: number) =>
    op === 10 ? `kernel ${MODE_NAMES[mode] ?? `mode ${mode}`}` : OP_NAMES[op] ?? `operation ${op}`;
  const sorted = [...rows].sort((a, b) => a.op - b.op || a.mode - b.mode || a.thread - b.thread);
  return table(
    ["pool part (per thread)", "thread", "parts / step", "ms / part", "ms / step"],
    sorted.map((r) => [
      name(r.op, r.mode),
      String(r.thread),
      fmt(r.parts / steps, 3),
      fmt(r.ms / r.parts, 3),
      fmt(r.ms / steps, 3),
    ]),
  );
}
