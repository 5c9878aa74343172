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

import { type FlagSpec, HELP_FLAG, helpText, parseFlags } from "../lib/core/cli.ts";
import { EXIT, exitCodesHelp, runCommand } from "../lib/core/exit_codes.ts";
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

const FLAGS: Record<string, FlagSpec> = {
  only: {
    type: "string",
    help: `the sections to run, comma-separated (default: all: ${SECTIONS.map((s) => s.name).join(",")})`,
  },
  backend: {
    type: "string",
    help: `the backend to measure, a comma list runs each (${BACKENDS.join(", ")})`,
    default: "blas",
  },
  quick: { type: "boolean", help: "smallest configurations only, a smoke run", default: false },
  out: { type: "string", help: "the markdown file to update; - prints only", default: "BENCHMARKS.md" },
  configs: {
    type: "string",
    help: "only these DxdxM configurations (layers), e.g. 200000x256x128,793471x300x128",
  },
  help: HELP_FLAG,
};

async function main(args: string[]): Promise<number> {
  const f = parseFlags(args, FLAGS);
  const values = {
    only: f.only as string | undefined,
    backend: f.backend as string,
    quick: f.quick === true,
    out: f.out as string,
    configs: f.configs as string | undefined,
  };
  if (f.help) {
    console.log(
      helpText(
        "npx deno task bench [flags]",
        FLAGS,
        `${
          exitCodesHelp("locked")
        }\n  (1 also when a section failed: its block says why, the other sections still ran)`,
      ),
    );
    return EXIT.ok;
  }
  const names = values.only !== undefined
    ? values.only.split(",").map((s) => s.trim()).filter(Boolean)
    : SECTIONS.map((s) => s.name);
  if (names.length === 0) throw new UsageError("--only names no section");
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
  await runCommand("bench", async () => {
    const code = await main(Deno.args);
    if (code !== EXIT.ok) Deno.exit(code);
  });
}
