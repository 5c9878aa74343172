/**
 * BENCHMARKS.md bookkeeping for the benchmark harness: each section owns one block between
 * `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`; a run replaces only the blocks it ran, and
 * stamps each with the command, the machine and the date. The file is written to a temporary name in
 * the same directory and renamed, so a killed run never leaves half a file, under the file's lock, so that
 * two runs ending at once both keep their blocks ({@link writeBlocks}).
 *
 * @module
 */

import { basename, dirname } from "node:path";
import { openBlasBackend } from "../lib/linalg/blas.ts";
import { removeStaleDirTemps, tempNameFor, writeFileAtomic } from "../lib/core/atomic.ts";
import { lockJob, pidAlive } from "../lib/core/lock.ts";
import { removeAtExit } from "../lib/core/stop.ts";

/** Which backend a section measures. */
export type BenchBackend = "js" | "blas" | "webgpu";

/** What every section's `run` receives. */
export type BenchOptions = {
  /** The backend to measure (sections that are backend-independent may ignore it). */
  backend: BenchBackend;
  /** Smallest configurations only: a smoke run of a few seconds per section. */
  quick: boolean;
  /** Progress lines (stderr); the returned markdown is the result. */
  log: (line: string) => void;
  /**
   * Only these configurations, as "DxdxM" strings (e.g. "200000x256x128"); sections without
   * configurations of that shape ignore it. Undefined: the section's own list.
   */
  configs?: string[];
};

/** A benchmark section: a module exporting `run(opts)` that returns a markdown block. */
export type BenchSection = { run(opts: BenchOptions): Promise<string> };

/** The machine a benchmark ran on. */
export type MachineInfo = { cpu: string; cores: number; openblas: string; deno: string; os: string };

/**
 * Describes this machine: CPU model (/proc/cpuinfo), core count, the OpenBLAS build, Deno's version.
 *
 * @example
 * ```ts
 * import { machineInfo } from "./report.ts";
 * console.log(machineInfo().cpu);
 * ```
 *
 * @returns the description; fields that cannot be read say "unknown"
 */
export function machineInfo(): MachineInfo {
  let cpu = "unknown", cores = navigator.hardwareConcurrency ?? 0;
  try {
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    cpu = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? "unknown";
    const n = text.match(/^processor\s*:/gm)?.length ?? 0;
    if (n > 0) cores = n;
  } catch { /* not Linux: keep the defaults */ }
  let openblas = "not loaded";
  try {
    const b = openBlasBackend();
    openblas = `${b.config} (${b.threads} threads)`;
    b.close();
  } catch (e) {
    openblas = `unavailable: ${(e as Error).message}`;
  }
  return { cpu, cores, openblas, deno: Deno.version.deno, os: `${Deno.build.os}/${Deno.build.arch}` };
}

/**
 * Wraps a section's markdown between its markers, with a stamp line.
 *
 * @example
 * ```ts
 * import { stampBlock } from "./report.ts";
 * const m = { cpu: "x", cores: 2, openblas: "OpenBLAS 0.3.21", deno: "2.0.0", os: "linux/x86_64" };
 * const block = stampBlock("linalg", "| a |\n|---|\n| 1 |", "deno task bench --only linalg", m, new Date());
 * ```
 *
 * @param name the section's marker name
 * @param body the section's markdown
 * @param command the command that produced it
 * @param m the machine
 * @param date when it ran
 * @returns the block, markers included, without a trailing newline
 */
export function stampBlock(name: string, body: string, command: string, m: MachineInfo, date: Date): string {
  const stamp =
    `_\`${command}\` · ${date.toISOString().replace(/\.\d+Z$/, "Z")} · ${m.cpu}, ${m.cores} cores, ` +
    `${m.os} · ${m.openblas} · Deno ${m.deno}_`;
  return `<!-- bench:${name}:start -->\n${stamp}\n\n${body.trim()}\n<!-- bench:${name}:end -->`;
}

/**
 * Returns `text` with the block of section `name` replaced by `block` (markers included), or with
 * `block` appended when the section has no block yet.
 *
 * @example
 * ```ts
 * import { replaceBlock } from "./report.ts";
 * const t = replaceBlock("# B\n", "x", "<!-- bench:x:start -->\nhi\n<!-- bench:x:end -->");
 * ```
 *
 * @param text the current file content
 * @param name the section's marker name
 * @param block the new block (from {@link stampBlock})
 * @returns the new file content
 * @throws {Error} a start marker without its end marker (the file was edited by hand)
 */
export function replaceBlock(text: string, name: string, block: string): string {
  const start = `<!-- bench:${name}:start -->`, end = `<!-- bench:${name}:end -->`;
  const i = text.indexOf(start);
  if (i < 0) return `${text.replace(/\s*$/, "")}\n\n${block}\n`;
  const j = text.indexOf(end, i);
  if (j < 0) throw new Error(`BENCHMARKS.md: "${start}" has no matching "${end}"; fix the file by hand`);
  return text.slice(0, i) + block + text.slice(j + end.length);
}

const HEADER = "# factorout benchmarks\n\n" +
  "Written by `deno task bench` (bench/main.ts); each block below is replaced when its section is rerun.\n" +
  "Blocks carry the command, the machine and the date they were measured with.\n";

/** How long {@link writeBlocks} waits for another bench writing the same file (held for milliseconds). */
const BLOCKS_LOCK_WAIT_S = 60;

/**
 * Replaces the given blocks in the markdown file at `path` (creating it with a header if absent),
 * writing a temporary file beside it and renaming it over the original (lib/core/atomic.ts). The read,
 * the replacement and the rename hold `<path>.lock` (lib/core/lock.ts `lockJob`): two benches ending at
 * once (`deno task bench` and `bench:peers`, each its own blocks) both land, where the second rename put
 * back the file the second had read before the first wrote, losing the first one's block. Another bench
 * holding it is waited for, silently, up to 60 s; still held then: exit code 3 (`EXIT.locked`) naming it.
 * A killed bench's lock is taken over (one line); `<path>.lock.guard` stays beside the file once two met.
 *
 * @example
 * ```ts
 * import { writeBlocks } from "./report.ts";
 * await writeBlocks("/tmp/B.md", [["x", "<!-- bench:x:start -->\nhi\n<!-- bench:x:end -->"]]);
 * ```
 *
 * @param path the file (BENCHMARKS.md)
 * @param blocks [name, block] pairs
 */
export async function writeBlocks(path: string, blocks: [string, string][]): Promise<void> {
  // no --wait flag here: the message says it was waited for
  const lock = await lockJob(`${path}.lock`, `bench: blocks ${blocks.map(([n]) => n).join(",")} of ${path}`, {
    waitSeconds: BLOCKS_LOCK_WAIT_S,
    pollMs: 10,
    quietWait: true,
    fixedWait: true,
  });
  try {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      text = HEADER;
    }
    for (const [name, block] of blocks) text = replaceBlock(text, name, block);
    await writeFileAtomic(path, text);
  } finally {
    await lock.release();
  }
}

/**
 * A benchmark run's own scratch folder: `<work>.<pid>-<random>.tmp` beside `work` (lib/core/atomic.ts
 * tempNameFor), so that two runs at once never share one and the first to end cannot remove the other's
 * files. The folders a killed run left (its pid no longer running) are removed first
 * (removeStaleDirTemps); a stop signal that a job's handler turns into an exit removes this one (removeAtExit).
 * `done(keep)` removes it at the end, or with `keep` renames it to `<work>.<pid>-<random>` (no `.tmp`: no
 * later run removes it) and returns that name.
 *
 * @example
 * ```ts
 * import { scratchFolder } from "./report.ts";
 * const s = await scratchFolder("/tmp/bench-demo/quality");
 * await Deno.writeTextFile(`${s.path}/a.txt`, "a");
 * await s.done(false);
 * ```
 *
 * @param work the scratch folder's name (its parent is created)
 * @param log receives one line naming the stale folders removed
 */
export async function scratchFolder(
  work: string,
  log: (line: string) => void = () => {},
): Promise<{ path: string; done(keep: boolean): Promise<string | undefined> }> {
  work = work.replace(/(.)\/+$/, "$1");
  const parent = dirname(work);
  await Deno.mkdir(parent, { recursive: true });
  const stale = await removeStaleDirTemps(parent, pidAlive, { bases: [basename(work)] });
  if (stale.length) log(`removed the scratch folder(s) of runs no longer running: ${stale.join(", ")}`);
  const path = tempNameFor(work);
  const forget = removeAtExit(path);
  await Deno.mkdir(path);
  return {
    path,
    async done(keep: boolean) {
      try {
        if (!keep) {
          await Deno.remove(path, { recursive: true }).catch(() => {});
          return undefined;
        }
        const kept = path.replace(/\.tmp$/, "");
        await Deno.rename(path, kept);
        return kept;
      } finally {
        forget();
      }
    },
  };
}

/**
 * Formats a number with a fixed count of significant digits, e.g. 3 → "1.23e+4" style avoided: 12300.
 *
 * @example
 * ```ts
 * import { fmt } from "./report.ts";
 * fmt(0.000123456); // "0.000123"
 * ```
 *
 * @param x the number
 * @param digits significant digits (default 3)
 * @returns the formatted number
 */
export function fmt(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 10 ** digits) return Math.round(x).toLocaleString("en-US");
  return Number(x.toPrecision(digits)).toString();
}

/**
 * Renders a markdown table.
 *
 * @example
 * ```ts
 * import { table } from "./report.ts";
 * table(["a", "b"], [["1", "2"]]);
 * ```
 *
 * @param head column titles
 * @param rows cells
 * @returns the table, one line per row
 */
export function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}
