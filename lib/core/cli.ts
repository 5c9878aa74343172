/**
 * Strict command-line parsing on `node:util` parseArgs: unknown flags, missing values and bad numbers
 * become {@link UsageError}s naming the flag.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "./errors.ts";

/**
 * One flag of a command: its parseArgs type, default and help text.
 *
 * @example
 * ```ts
 * import type { FlagSpec } from "./cli.ts";
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
 * `--debug`, which every command accepts: print the stack trace of an error (also FACTOROUT_DEBUG=1;
 * see lib/core/exit_codes.ts reportError). {@link parseFlags} and {@link helpText} add it by themselves.
 *
 * @example
 * ```ts
 * import { DEBUG_FLAG } from "./cli.ts";
 * console.log(DEBUG_FLAG.help);
 * ```
 */
export const DEBUG_FLAG: FlagSpec = {
  type: "boolean",
  default: false,
  help: "print the stack trace of an error (also FACTOROUT_DEBUG=1)",
};

/** A value that looks like a negative number (`-1`, `-0.5`, `-.5`, `-1e3`, `-inf`), not like a flag. */
const NEGATIVE = /^-(\d|\.\d|inf(inity)?$|nan$)/i;

/**
 * node:util parseArgs in strict mode, with two changes every command needs: a negative number after a
 * string flag is its value (`--lr -1` is `--lr=-1`, so that the flag's own check can say "--lr must be
 * a number > 0, got '-1'" instead of parseArgs' "argument is ambiguous"), and every parse error is a
 * one-line {@link UsageError} naming the flag. The one parseArgs wrapper of the project.
 *
 * @example
 * ```ts
 * import { parseArgsStrict } from "./cli.ts";
 * parseArgsStrict(["--lr", "-1"], { lr: { type: "string" } }); // { lr: "-1" }
 * ```
 */
export function parseArgsStrict(
  args: string[],
  options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>,
): Record<string, string | boolean | string[] | undefined> {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.startsWith("--") && !a.includes("=") ? a.slice(2) : undefined;
    if (name && options[name]?.type === "string" && i + 1 < args.length && NEGATIVE.test(args[i + 1])) {
      joined.push(`${a}=${args[++i]}`);
    } else joined.push(a);
  }
  try {
    const { values } = parseArgs({ args: joined, options, strict: true, allowPositionals: false });
    return { ...values } as Record<string, string | boolean | string[] | undefined>;
  } catch (e) {
    const msg = (e as Error).message;
    const flag = /^Option '(-[^ ']+)/.exec(msg)?.[1];
    if (flag && /argument is ambiguous|argument missing/.test(msg)) {
      throw new UsageError(
        `${flag} needs a value (one that starts with a dash is written ${flag}=-x); see --help`,
      );
    }
    throw new UsageError(`${msg.replace(/\.?\s*To specify.*$/s, "").replace(/\s*\n\s*/g, " ")}; see --help`);
  }
}

/**
 * Parses `args` strictly against `flags` (no positionals; {@link parseArgsStrict}), with `--debug`
 * ({@link DEBUG_FLAG}) added; throws {@link UsageError} on any problem.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./cli.ts";
 * const v = parseFlags(["--k", "5"], { k: { type: "string", default: "10", help: "neighbours" } });
 * v.k; // "5"
 * ```
 */
export function parseFlags(
  args: string[],
  flags: Record<string, FlagSpec>,
): Record<string, string | boolean | undefined> {
  const all = withDebug(flags);
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, spec] of Object.entries(all)) {
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}) };
  }
  const values = parseArgsStrict(args, options);
  const out: Record<string, string | boolean | undefined> = {};
  for (const [name, spec] of Object.entries(all)) {
    out[name] = (values[name] as string | boolean | undefined) ?? spec.default;
  }
  return out;
}

function withDebug(flags: Record<string, FlagSpec>): Record<string, FlagSpec> {
  return "debug" in flags ? flags : { ...flags, debug: DEBUG_FLAG };
}

/**
 * The help text: a usage line, then every flag with its default.
 *
 * @example
 * ```ts
 * import { helpText } from "./cli.ts";
 * console.log(helpText("deno task eval --vectors FILE", { k: { type: "string", default: "10", help: "neighbours" } }));
 * ```
 */
export function helpText(usage: string, flags: Record<string, FlagSpec>, notes = ""): string {
  const rows = Object.entries(withDebug(flags)).map(([name, s]) => {
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
 * import { positiveInt } from "./cli.ts";
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
 * import { commaList } from "./cli.ts";
 * commaList("vec, bin,,parquet"); // ["vec", "bin", "parquet"]
 * ```
 */
export function commaList(value: string | boolean | undefined): string[] {
  if (typeof value !== "string") return [];
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}
