/**
 * Thread scaling of the factored layer on the CPU (issue 18, item 4): examples/s of the factored step at
 * each thread count t (FACTOROUT_THREADS), against its own 1-thread rate and the sgemm peak at t threads,
 * measured in one run. Above one thread, each path of `--modes` gets its row: `split` (FACTOROUT_SPLIT=1: the
 * step's products, sparse rows and kernels split across t threads, lib/linalg/pool.ts) and `openblas`
 * (FACTOROUT_SPLIT=0: OpenBLAS's own threading), so one run shows which scales. Each (t, path, config)
 * is a child process (`bench/layers.ts --child`, the same measurement as the layers section, factored only);
 * each t also gets a child that measures the sgemm peak.
 *
 *   deno run -A bench/threads.ts --out table.md [--quick] [--threads 1,2,4] [--modes split,openblas,independent]
 *     [--seconds 1]
 *
 * bench/threads.sh runs it on a bare machine (see there). --quick: tiny layers, threads 1 and 2. `--help` lists
 * the flags; a bad flag or value is one line `bench/threads: …`, exit 2 (lib/core/cli.ts).
 *
 * @module
 */

import {
  commaList,
  type FlagSpec,
  HELP_FLAG,
  helpText,
  parseFlags,
  positiveInt,
  positiveNumber,
} from "../lib/core/cli.ts";
import { UsageError } from "../lib/core/errors.ts";
import { exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
import { openBlasBackend } from "../lib/linalg/blas.ts";
import { sgemmPeak } from "./linalg.ts";
import type { ChildConfig, ChildResult } from "./layers.ts";
import { fmt, table } from "./report.ts";

const LAYERS = new URL("./layers.ts", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;
/** Deno flags of the children: no config and no type check (the machine may have no network). */
const RUN = ["run", "-A", "--no-config", "--no-check"];

/**
 * The paths a row can measure above one thread, and the FACTOROUT_SPLIT each sets. `independent` is no path
 * of one step: t one-thread processes at once, each its own layer, their examples/s summed: what the machine
 * gives t streams of work that share nothing, the most any split of one step could reach.
 */
const MODES = { split: "1", openblas: "0", independent: "" } as const;
type Mode = keyof typeof MODES;

async function child(args: string[], threads: number, timeoutS: number, split = ""): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...RUN, ...args],
    env: { FACTOROUT_THREADS: String(threads), FACTOROUT_SPLIT: split, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutS * 1000),
  }).output().catch((e) => ({
    success: false,
    stdout: new Uint8Array(),
    stderr: new TextEncoder().encode(String(e)),
  }));
  const stdout = new TextDecoder().decode(out.stdout);
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (!out.success || !line) {
    const sig = "signal" in out && out.signal
      ? ` (${out.signal}: killed after the ${timeoutS} s limit?)`
      : "";
    const err = sig + new TextDecoder().decode(out.stderr).trim().split("\n").slice(-2).join(" / ");
    throw new Error(`child ${args.join(" ")} (threads ${threads}) failed: ${err.slice(0, 300)}`);
  }
  return line.slice("RESULT ".length);
}

/** The flags of `deno run -A bench/threads.ts` (bench/threads.sh gives --out, --quick and --threads). */
const FLAGS: Record<string, FlagSpec> = {
  out: { type: "string", help: "the markdown file the table is written to (- or none: stdout only)" },
  quick: { type: "boolean", default: false, help: "tiny layers, threads 1 and 2" },
  threads: { type: "string", help: "the thread counts, comma-separated (default: 1,2,4,8,16; --quick 1,2)" },
  seconds: { type: "string", help: "the timing window of each row (default: 0.8; --quick 0.3)" },
  modes: {
    type: "string",
    default: "split,openblas",
    help:
      `the paths measured above one thread: ${Object.keys(MODES).join(", ")} (independent: t one-thread ` +
      "processes at once, their examples/s summed)",
  },
  peak: { type: "boolean", default: false, help: "(child) print the sgemm peak at FACTOROUT_THREADS" },
  help: HELP_FLAG,
};

async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, FLAGS);
  if (f.help) {
    console.log(helpText("npx deno run -A bench/threads.ts [flags]", FLAGS, exitCodesHelp()));
    return;
  }
  if (f.peak) {
    // child: the sgemm peak at this process's FACTOROUT_THREADS
    const la = openBlasBackend();
    console.log(`RESULT ${JSON.stringify({ threads: la.threads, peak: sgemmPeak(la, true) })}`);
    la.close();
    Deno.exit(0);
  }
  const quick = f.quick === true;
  const threads = commaList(f.threads ?? (quick ? "1,2" : "1,2,4,8,16")).map((t) =>
    positiveInt("--threads", t)
  );
  if (threads.length === 0) throw new UsageError("--threads names no thread count");
  const seconds = positiveNumber("--seconds", f.seconds ?? (quick ? "0.3" : "0.8"));
  const modes = commaList(f.modes) as Mode[];
  for (const mode of modes) {
    if (!(mode in MODES)) {
      throw new UsageError(`--modes takes ${Object.keys(MODES).join(", ")}, got '${mode}'`);
    }
  }
  const configs = quick
    ? [{ D: 20_000, d: 128, m: 64 }, { D: 10_000, d: 96, m: 32 }]
    : [{ D: 793_471, d: 300, m: 128 }, { D: 200_000, d: 256, m: 128 }];
  const t0 = performance.now();
  const rows: string[][] = [];
  const base = new Map<string, number>();
  for (const t of threads) {
    let peak = NaN;
    try {
      peak = (JSON.parse(await child([SELF, "--peak"], t, 60)) as { peak: number }).peak;
    } catch (e) {
      console.error(`threads: ${(e as Error).message}`);
    }
    for (const mode of t === 1 ? ["one thread" as const] : modes) {
      for (const c of configs) {
        const cfg: ChildConfig = { kind: "factored", backend: "blas", ...c, seconds };
        const key = `${c.D}/${c.d}/${c.m}`;
        const split = mode === "one thread" ? "" : MODES[mode];
        const lead = [String(t), mode, fmt(c.D), String(c.d), String(c.m)];
        try {
          const args = [LAYERS, "--child", JSON.stringify(cfg)];
          const runs = mode === "independent"
            ? await Promise.all(Array.from({ length: t }, () => child(args, 1, 120)))
            : [await child(args, t, 120, split)];
          const results = runs.map((line) => JSON.parse(line) as ChildResult), r = results[0];
          // independent: the processes' examples/s summed, and µs per example of that sum
          const exs = results.reduce((sum, x) => sum + 1e6 / x.usPerExample, 0);
          const us = 1e6 / exs, stepMs = (us * c.m) / 1000;
          if (t === threads[0] && !base.has(key)) base.set(key, exs);
          const pct = (24 * c.m * c.d * c.d) / (stepMs * 1e6) / peak * 100;
          rows.push([
            ...lead,
            fmt(us),
            fmt(exs),
            `${fmt(exs / (base.get(key) ?? NaN), 3)}×`,
            fmt(peak),
            `${fmt(pct, 2)}%`,
            fmt(r.setupS),
          ]);
          console.error(
            `threads: t=${t} ${mode} ${key}: ${fmt(us)} µs/example, peak ${fmt(peak)} GFLOP/s`,
          );
        } catch (e) {
          rows.push([...lead, `error: ${(e as Error).message}`, "", "", "", "", ""]);
          console.error(`threads: ${(e as Error).message}`);
        }
      }
    }
  }
  const head = [
    "threads",
    "path",
    "D",
    "d",
    "m",
    "factored µs/ex",
    "factored ex/s",
    `vs ${threads[0]} thread(s)`,
    "sgemm peak GFLOP/s (same t)",
    "factored % of that peak",
    "set-up s",
  ];
  const md = `### Factored layer against threads (\`bench/threads.sh\`${quick ? ", quick" : ""})\n\n` +
    `${new Date().toISOString().slice(0, 10)}, ${Deno.hostname()}, ${navigator.hardwareConcurrency} CPUs; ` +
    `squared loss, K = 5, η = 1e-3; each row a child process: warm-up 0.3× the window, then the median over ` +
    `blocks of 100 steps in a ${seconds} s window (bench/layers.ts). FACTOROUT_THREADS = t sets OpenBLAS's ` +
    `threads; above one thread, path split (FACTOROUT_SPLIT=1) splits the step's products, sparse rows and ` +
    `kernels across t threads (lib/linalg/pool.ts), path openblas (FACTOROUT_SPLIT=0) leaves the threads ` +
    `to OpenBLAS${
      modes.includes("independent")
        ? "; path independent runs t one-thread processes at once, each its own layer, and sums their " +
          "examples/s (µs/ex of that sum): the most any split of one step could reach"
        : ""
    }. ` +
    `% of peak: 24·m·d² flops per step over the sgemm peak measured at the same t. ` +
    `Total ${fmt((performance.now() - t0) / 1000)} s.\n\n` + table(head, rows) + "\n";
  // "-" and "none" (as --help says) print the table only
  if (typeof f.out === "string" && !["", "-", "none"].includes(f.out)) await Deno.writeTextFile(f.out, md);
  console.log(md);
}

if (import.meta.main) await runCommand("bench/threads", () => main(Deno.args));
