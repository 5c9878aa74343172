/**
 * Benchmark section "io": corpus preparation (plain text → Arrow shards, tokens/s) and reading shards
 * into minibatches (Arrow IPC and Parquet zstd, K = 10, examples/s), each with its peak memory (VmHWM of
 * a fresh subprocess per measurement) at two corpus sizes, to show memory flat in corpus size.
 *
 * - prepare, text: a synthetic Zipf text file (V = 200,000 words) → cbow window 2 Arrow shards.
 * - prepare, synthetic stream: 10M and 100M tokens (quick: 1M, 3M), shards deleted as they land
 *   (disk stays small; the job's memory is what is measured).
 * - read: a skipgram window-5 corpus (K = 10 targets per row but at sentence ends; sentences of
 *   200–400 words) read with batch 512 and a 65,536-row
 *   shuffle block, 1 and 10 epochs (quick: 1 and 3).
 *
 * Run alone: `deno run -A bench/main.ts --only io` (or `deno run -A bench/io.ts` for the markdown).
 *
 * `deno run -A bench/io.ts --vec [--rows 83986] [--dim 256] [--impl lib/export/word2vec.ts]` measures the
 * `.vec` writer instead (not a section of bench/main.ts): formatFloat32 (and formatFloat32Reference,
 * putFloat32 where the module has them) in ns per value, then writeWord2VecText on rows × dim seeded
 * N(0, 0.05) float32, in ms, with the file's sha256 to compare the bytes of two implementations
 * (`--impl` names the module, e.g. an older word2vec.ts copied beside it from git).
 *
 * @example
 * ```ts
 * import { run } from "./io.ts";
 * console.log(await run({ backend: "js", quick: true, log: console.error }));
 * ```
 *
 * @module
 */

import { prepareCorpus } from "../lib/io/prepare.ts";
import { readExamples } from "../lib/io/read.ts";
import { writeSyntheticText } from "../lib/io/synthetic.ts";
import { sha256File } from "../lib/export/publish.ts";

/** Options of a section (the shape of bench/report.ts's BenchOptions). */
type Opts = { backend: string; quick: boolean; log: (line: string) => void };

type Result = {
  seconds: number;
  units: number;
  rate: number;
  peakMiB: number;
  extra?: Record<string, number>;
};

function peakMiB(): number {
  const s = Deno.readTextFileSync("/proc/self/status");
  const m = s.match(/VmHWM:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** One measurement, run in this process (called in a fresh subprocess by {@link measure}). */
async function phase(name: string, a: Record<string, unknown>): Promise<Result> {
  const t0 = performance.now();
  if (name === "prepare-text" || name === "prepare-synthetic") {
    const m = await prepareCorpus({
      ...(name === "prepare-text"
        ? { input: a.input as string }
        : { synthetic: { vocabSize: a.vocab as number, tokens: a.tokens as number, seed: 1 } }),
      outDir: a.out as string,
      mode: "cbow",
      window: 2,
      minCount: 1,
      seed: 1,
      onShard: a.discard ? (s) => Deno.remove(`${a.out}/${s.file}`) : undefined,
    });
    const seconds = (performance.now() - t0) / 1000;
    return {
      seconds,
      units: m.tokens,
      rate: m.tokens / seconds,
      peakMiB: peakMiB(),
      extra: { rows: m.rows, vocab: m.vocabSize },
    };
  }
  if (name === "read") {
    let n = 0, k = 0;
    for await (
      const b of readExamples(a.dir as string, {
        batchSize: 512,
        shuffleBuffer: 65536,
        seed: 1,
        epochs: a.epochs as number,
      })
    ) {
      n += b.size;
      k += b.targets.indices.length;
    }
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, units: n, rate: n / seconds, peakMiB: peakMiB(), extra: { meanK: k / n } };
  }
  throw new Error(`unknown phase ${name}`);
}

async function measure(name: string, args: Record<string, unknown>): Promise<Result> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--phase", name, JSON.stringify(args)],
    stdout: "piped",
    stderr: "inherit",
  });
  const out = await cmd.output();
  if (!out.success) throw new Error(`bench io: phase ${name} failed (exit ${out.code})`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

const f = (
  x: number,
  d = 2,
) => (x >= 1e6 ? `${(x / 1e6).toFixed(d)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(d));

/**
 * Runs the section and returns its markdown block.
 *
 * @example
 * ```ts
 * import { run } from "./io.ts";
 * const md = await run({ backend: "js", quick: true, log: () => {} });
 * ```
 */
export async function run(opts: Opts): Promise<string> {
  const q = opts.quick;
  const tmp = await Deno.makeTempDir({ prefix: "factorout-bench-io-" });
  const rows: string[] = [];
  try {
    // prepare from plain text
    const textTokens = q ? 1_000_000 : 10_000_000;
    opts.log(`io: writing ${f(textTokens)} tokens of synthetic text`);
    const textPath = `${tmp}/zipf.txt`;
    const bytes = await writeSyntheticText(textPath, { vocabSize: 200_000, tokens: textTokens, seed: 1 });
    opts.log("io: prepare from text");
    const pt = await measure("prepare-text", { input: textPath, out: `${tmp}/text`, discard: true });
    rows.push(
      `| prepare, plain text (${f(bytes / 1e6, 0)} MB) → Arrow, cbow w=2 | ${f(pt.units)} tokens | ${
        pt.seconds.toFixed(2)
      } | **${f(pt.rate)} tokens/s** | ${pt.peakMiB.toFixed(0)} |`,
    );
    await Deno.remove(textPath);
    // prepare from the synthetic stream at two sizes
    for (const tokens of q ? [1_000_000, 3_000_000] : [10_000_000, 100_000_000]) {
      opts.log(`io: prepare synthetic ${f(tokens)} tokens`);
      const ps = await measure("prepare-synthetic", {
        vocab: 200_000,
        tokens,
        out: `${tmp}/syn${tokens}`,
        discard: true,
      });
      rows.push(
        `| prepare, synthetic Zipf stream (V = 200k) → Arrow, cbow w=2 | ${f(tokens)} tokens | ${
          ps.seconds.toFixed(2)
        } | ${f(ps.rate)} tokens/s | ${ps.peakMiB.toFixed(0)} |`,
      );
    }
    // read: K = 10 skipgram corpus
    const readTokens = q ? 200_000 : 1_000_000;
    for (const format of ["arrow", "parquet"] as const) {
      const dir = `${tmp}/read-${format}`;
      opts.log(`io: building a ${format} skipgram corpus (${f(readTokens)} tokens, K = 10)`);
      const m = await prepareCorpus({
        synthetic: { vocabSize: 200_000, tokens: readTokens, seed: 2, sentenceLength: [200, 400] },
        outDir: dir,
        mode: "skipgram",
        window: 5,
        minCount: 1,
        seed: 1,
        format,
      });
      for (const epochs of q ? [1, 3] : [1, 10]) {
        opts.log(`io: read ${format}, ${epochs} epoch(s)`);
        const r = await measure("read", { dir, epochs });
        rows.push(
          `| read ${format === "arrow" ? "Arrow IPC" : "Parquet (zstd)"} → batches of 512, shuffled (K̄ = ${
            r.extra!.meanK.toFixed(2)
          }) | ${f(m.rows)} rows × ${epochs} = ${f(r.units)} examples | ${r.seconds.toFixed(2)} | **${
            f(r.rate)
          } examples/s** | ${r.peakMiB.toFixed(0)} |`,
        );
      }
      await Deno.remove(dir, { recursive: true });
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return [
    "### Corpus I/O (lib/io)",
    "",
    `Targets: prepare ≥ 1M tokens/s from plain text; read ≥ 3M examples/s (Arrow IPC) and ≥ 1M examples/s (Parquet zstd) at K = 10; peak memory flat in corpus size.${
      q ? " **Quick (smoke) sizes.**" : ""
    }`,
    "",
    "| what | size | seconds | rate | peak RSS (MiB) |",
    "| --- | --- | ---: | ---: | ---: |",
    ...rows,
    "",
    "Each row runs in a fresh `deno` subprocess; peak RSS is its VmHWM (Deno runtime included). Preparation deletes shards as they land (`onShard`), so disk use stays small.",
  ].join("\n");
}

/** The `.vec` writer's measurement (`--vec`): lines of text, for BENCHMARKS.md by hand. */
async function benchVec(args: string[]): Promise<string[]> {
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const rows = Number(arg("rows", "83986")), d = Number(arg("dim", "256"));
  const impl = arg("impl", "lib/export/word2vec.ts");
  const m = await import(new URL(impl, `file://${Deno.cwd()}/`).href);
  // N(0, 0.05) by Box–Muller from a seeded LCG: the same floats on every run and implementation
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const vectors = new Float32Array(rows * d);
  for (let i = 0; i < vectors.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(rnd())), t = 2 * Math.PI * rnd();
    vectors[i] = 0.05 * r * Math.cos(t);
    if (i + 1 < vectors.length) vectors[i + 1] = 0.05 * r * Math.sin(t);
  }
  const lines = [`${impl}: ${rows} × ${d} float32, N(0, 0.05)`];
  const n = Math.min(1 << 20, vectors.length);
  const out = new Uint8Array(32);
  const perValue: [string, (x: number) => number][] = [
    ["formatFloat32", (x) => m.formatFloat32(x).length],
    ["formatFloat32Reference", (x) => m.formatFloat32Reference(x).length],
    ["putFloat32", (x) => m.putFloat32(out, 0, x)],
  ];
  for (const [name, fn] of perValue) {
    if (typeof m[name] !== "function") continue;
    let best = Infinity, sink = 0;
    for (let rep = 0; rep < 4; rep++) { // the first warms the JIT up
      const t0 = performance.now();
      for (let i = 0; i < n; i++) sink += fn(vectors[i]);
      if (rep > 0) best = Math.min(best, performance.now() - t0);
    }
    lines.push(`${name}: ${((best * 1e6) / n).toFixed(1)} ns per value (best of 3 over ${n}; ${sink})`);
  }
  const dir = await Deno.makeTempDir({ prefix: "factorout-bench-vec-" });
  try {
    const path = `${dir}/e.vec`;
    const words = Array.from({ length: rows }, (_, i) => `w${i}`);
    for (let rep = 0; rep < 2; rep++) {
      const t0 = performance.now();
      await m.writeWord2VecText(path, { words, vectors, d });
      const ms = performance.now() - t0;
      const size = (await Deno.stat(path)).size;
      lines.push(
        `writeWord2VecText: ${ms.toFixed(0)} ms (${(size / 1e6).toFixed(1)} MB` +
          (rep === 0 ? `, sha256 ${await sha256File(path)})` : ")"),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return lines;
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--phase");
  if (Deno.args.includes("--vec")) {
    for (const line of await benchVec(Deno.args)) console.log(line);
  } else if (i >= 0) {
    console.log(JSON.stringify(await phase(Deno.args[i + 1], JSON.parse(Deno.args[i + 2]))));
  } else {
    console.log(
      await run({ backend: "js", quick: Deno.args.includes("--quick"), log: (s) => console.error(s) }),
    );
  }
}
