/**
 * Strict command-line parsing on `node:util` parseArgs: unknown flags, missing values and bad numbers
 * become {@link UsageError}s naming the flag.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";

/**
 * One flag of a command: its parseArgs type, default and help text.
 *
 * @example
 * ```ts
 * import type { FlagSpec } from "./args.ts";
 * const f: FlagSpec = { type: "string", default: "10", help: "neighbours per word" };
 * ```
 */
export type FlagSpec = {
  type: "string" | "boolean";
  default?: string | boolean;
  help: string;
  short?: string;
};

/**
 * Parses `args` strictly against `flags` (no positionals); throws {@link UsageError} on any problem.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./args.ts";
 * const v = parseFlags(["--k", "5"], { k: { type: "string", default: "10", help: "neighbours" } });
 * v.k; // "5"
 * ```
 */
export function parseFlags(
  args: string[],
  flags: Record<string, FlagSpec>,
): Record<string, string | boolean | undefined> {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, spec] of Object.entries(flags)) {
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}) };
  }
  try {
    const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
    const out: Record<string, string | boolean | undefined> = {};
    for (const [name, spec] of Object.entries(flags)) {
      out[name] = (values as Record<string, string | boolean>)[name] ?? spec.default;
    }
    return out;
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/\.?\s*To specify.*$/s, "")}; see --help`);
  }
}

/**
 * The help text: a usage line, then every flag with its default.
 *
 * @example
 * ```ts
 * import { helpText } from "./args.ts";
 * console.log(helpText("deno task eval --vectors FILE", { k: { type: "string", default: "10", help: "neighbours" } }));
 * ```
 */
export function helpText(usage: string, flags: Record<string, FlagSpec>, notes = ""): string {
  const rows = Object.entries(flags).map(([name, s]) => {
    const left = `  --${name}${s.type === "string" ? " <value>" : ""}${s.short ? `, -${s.short}` : ""}`;
    const def = s.default === undefined ? "" : ` (default: ${s.default === "" ? '""' : s.default})`;
    return `${left.padEnd(30)} ${s.help}${def}`;
  });
  return `usage: ${usage}\n\nflags:\n${rows.join("\n")}\n${notes ? `\n${notes}\n` : ""}`;
}

/**
 * A positive integer from a flag's string value, or a {@link UsageError} naming the flag.
 *
 * @example
 * ```ts
 * import { positiveInt } from "./args.ts";
 * positiveInt("--k", "10"); // 10
 * ```
 */
export function positiveInt(flag: string, value: string | boolean | undefined): number {
  const n = Number(value);
  if (typeof value !== "string" || !/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

/**
 * A comma-separated list from a flag's value (empty items dropped).
 *
 * @example
 * ```ts
 * import { commaList } from "./args.ts";
 * commaList("vec, bin,,parquet"); // ["vec", "bin", "parquet"]
 * ```
 */
export function commaList(value: string | boolean | undefined): string[] {
  if (typeof value !== "string") return [];
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}
