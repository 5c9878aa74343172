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

if (import.meta.main) {
  const i = Deno.args.indexOf("--phase");
  if (i >= 0) {
    console.log(JSON.stringify(await phase(Deno.args[i + 1], JSON.parse(Deno.args[i + 2]))));
  } else {
    console.log(
      await run({ backend: "js", quick: Deno.args.includes("--quick"), log: (s) => console.error(s) }),
    );
  }
}
