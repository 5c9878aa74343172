/**
 * The benchmark harness: `deno task bench [flags]` runs the sections, prints their markdown and
 * replaces their blocks in BENCHMARKS.md.
 *
 * Flags:
 * - `--only layers,losses,io,linalg`: the sections to run (default: all registered).
 * - `--backend js|blas|webgpu`: the backend to measure; a comma list runs each in turn (default blas).
 * - `--quick`: smallest configurations only, a smoke run.
 * - `--out BENCHMARKS.md`: the file to update (`--out -` prints only).
 * - `--configs 200000x256x128,793471x300x128`: only these D×d×m configurations (sections that take
 *   them: layers), instead of the section's own list.
 *
 * ## The section interface
 *
 * A section is a module under bench/ exporting
 *
 * ```ts
 * export function run(opts: BenchOptions): Promise<string>; // BenchOptions from bench/report.ts
 * ```
 *
 * that returns a markdown block (headings, tables, notes; no markers, no machine stamp: the harness adds
 * them). `opts.backend` is the backend to measure, `opts.quick` asks for a smoke-size run, `opts.log`
 * takes progress lines. Register it with one line in {@link SECTIONS} below:
 * `name` is what `--only` takes, `perBackend: true` gives it one block per backend
 * (`<!-- bench:NAME-BACKEND:start -->`), otherwise one block (`<!-- bench:NAME:start -->`) measured once.
 * A section that cannot run (a missing library) should throw; the harness reports the error in its
 * block and goes on with the next section, and exits with status 1 at the end.
 *
 * @example
 * ```ts
 * // deno run -A bench/main.ts --only linalg --quick --out -
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { machineInfo, stampBlock, writeBlocks } from "./report.ts";
import type { BenchBackend, BenchSection } from "./report.ts";
import { UsageError } from "../lib/core/errors.ts";

/** A registered benchmark section. */
export type SectionEntry = { name: string; perBackend: boolean; load: () => Promise<BenchSection> };

/** The sections, in the order they run. Registering one is one line. */
export const SECTIONS: SectionEntry[] = [
  { name: "linalg", perBackend: false, load: () => import("./linalg.ts") },
  { name: "layers", perBackend: true, load: () => import("./layers.ts") },
  { name: "losses", perBackend: true, load: () => import("./losses.ts") },
  { name: "io", perBackend: false, load: () => import("./io.ts") },
  { name: "trainer", perBackend: false, load: () => import("./trainer.ts") },
];

const BACKENDS: readonly BenchBackend[] = ["js", "blas", "webgpu"];

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      only: { type: "string" },
      backend: { type: "string", default: "blas" },
      quick: { type: "boolean", default: false },
      out: { type: "string", default: "BENCHMARKS.md" },
      configs: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      `usage: deno task bench [--only ${
        SECTIONS.map((s) => s.name).join(",")
      }] [--backend js|blas|webgpu[,…]] ` +
        `[--quick] [--out BENCHMARKS.md|-] [--configs DxdxM,…]`,
    );
    return 0;
  }
  const names = values.only
    ? values.only.split(",").map((s) => s.trim()).filter(Boolean)
    : SECTIONS.map((s) => s.name);
  for (const n of names) {
    if (!SECTIONS.some((s) => s.name === n)) {
      throw new UsageError(
        `--only: unknown section '${n}'; known: ${SECTIONS.map((s) => s.name).join(", ")}`,
      );
    }
  }
  const backends = values.backend.split(",").map((s) => s.trim()) as BenchBackend[];
  for (const b of backends) {
    if (!BACKENDS.includes(b)) {
      throw new UsageError(`--backend: unknown backend '${b}'; known: ${BACKENDS.join(", ")}`);
    }
  }
  const configList = values.configs?.split(",").map((s) => s.trim()).filter(Boolean);
  for (const c of configList ?? []) {
    if (!/^\d+x\d+x\d+$/.test(c)) {
      throw new UsageError(`--configs: '${c}' is not DxdxM (e.g. 200000x256x128)`);
    }
  }
  const command = `deno task bench ${args.join(" ")}`.trim();
  const machine = machineInfo();
  const log = (line: string) => console.error(`bench: ${line}`);
  const blocks: [string, string][] = [];
  let failed = 0;
  for (const entry of SECTIONS.filter((s) => names.includes(s.name))) {
    for (const backend of entry.perBackend ? backends : [backends[0]]) {
      const blockName = entry.perBackend ? `${entry.name}-${backend}` : entry.name;
      const t0 = performance.now();
      log(`section ${blockName} …`);
      let body: string;
      try {
        const section = await entry.load();
        body = await section.run({ backend, quick: values.quick, log, configs: configList });
      } catch (e) {
        failed++;
        body = `**section failed:** ${(e as Error).name}: ${(e as Error).message}`;
        console.error(e);
      }
      const secs = (performance.now() - t0) / 1000;
      log(`section ${blockName} done in ${secs.toFixed(1)} s`);
      const block = stampBlock(
        blockName,
        `${body}\n\n_section time: ${secs.toFixed(1)} s_`,
        command,
        machine,
        new Date(),
      );
      console.log(`${block}\n`);
      blocks.push([blockName, block]);
    }
  }
  if (values.out !== "-") {
    await writeBlocks(values.out, blocks);
    log(`wrote ${blocks.length} block(s) to ${values.out}`);
  }
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`bench: ${(e as Error).message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
