/**
 * The `--config FILE` of `deno task train`: a JSON object of {@link TrainConfig} fields, read and checked
 * key by key, each wrong value one line naming the file, the key and what it expects.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { describeOsError } from "../core/os_errors.ts";
import { DEFAULT_CONFIG, fieldKind, fieldProblem, splitList, type TrainConfig } from "./config.ts";

/**
 * Reads the settings of a `--config` file ({@link configFileSettings}). A missing file is a usage error
 * (exit 2), an unreadable one an I/O error (8), as in every command; not JSON: a usage error.
 *
 * @example
 * ```ts
 * import { readConfigFile } from "./config_file.ts";
 * await readConfigFile("/no/such.json").catch((e) => console.log(e.name)); // UsageError
 * ```
 */
export async function readConfigFile(file: string): Promise<Partial<TrainConfig>> {
  let text: string, parsed: unknown;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    const os = describeOsError(e, "cannot read --config", file, { reading: true });
    if (os && !["ENOENT", "ENOTDIR", "EISDIR"].includes(os.errno)) throw os;
    throw new UsageError(`--config ${file}: cannot read it (${os?.reason ?? (e as Error).message})`);
  }
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--config ${file}: not valid JSON (${(e as Error).message})`);
  }
  const twice = repeatedKey(text);
  if (twice !== undefined) {
    // JSON.parse keeps the last value silently: a key written twice is most likely an edit gone wrong
    throw new UsageError(`--config ${file}: the setting '${twice}' is written twice; keep one`);
  }
  return configFileSettings(parsed, file);
}

/**
 * The settings of a `--config` file's JSON (`file`, for messages), checked key by key: each a field of
 * {@link TrainConfig} (camelCase) holding a value of its kind, a JSON number, true or false, or a string; a
 * list (`hidden`, `formats`) as an array or as the comma-separated string its flag takes (`"vec,bin"`).
 * Anything else is a one-line UsageError naming the file, the key and what it expects (`--config run.json:
 * 'dim' must be an integer ≥ 1 and ≤ 8192 (a JSON number), got the string "50"`). Settings that depend on
 * each other (lrMin ≤ lr) are left to resolveConfig.
 *
 * @example
 * ```ts
 * import { configFileSettings } from "./config_file.ts";
 * configFileSettings({ dim: 50, formats: "vec,bin" }, "run.json"); // { dim: 50, formats: ["vec", "bin"] }
 * ```
 */
export function configFileSettings(parsed: unknown, file: string): Partial<TrainConfig> {
  const source = `--config ${file}`;
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new UsageError(`${source}: must hold a JSON object of settings`);
  }
  const settings: Record<string, unknown> = {};
  for (const [k, given] of Object.entries(parsed as Record<string, unknown>)) {
    if (!Object.hasOwn(DEFAULT_CONFIG, k)) { // own keys: "constructor" or "__proto__" is no setting
      throw new UsageError(
        `${source}: unknown setting '${k}'; known: ${Object.keys(DEFAULT_CONFIG).join(", ")}`,
      );
    }
    const key = k as keyof TrainConfig, kind = fieldKind(key);
    const v = kind === "list" && typeof given === "string"
      ? splitList(key as "hidden" | "formats", given)
      : given;
    const want = fieldProblem(key, v);
    if (want !== undefined) {
      throw new UsageError(`${source}: '${k}' must be ${want} (${JSON_KIND[kind]}), got ${jsonValue(given)}`);
    }
    settings[k] = v;
  }
  return settings as Partial<TrainConfig>;
}

/**
 * The first key written twice in the outermost object of `text` (valid JSON), as JSON.parse decodes it;
 * undefined when every key is written once. Keys of nested objects are not looked at.
 *
 * @example
 * ```ts
 * import { repeatedKey } from "./config_file.ts";
 * console.log(repeatedKey('{"dim": 50, "lr": 0.1, "dim": 100}')); // dim
 * console.log(repeatedKey('{"a": {"b": 1, "b": 2}, "c": "a"}')); // undefined
 * ```
 */
export function repeatedKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1) {
        let k = j + 1;
        while (/\s/.test(text[k] ?? "")) k++;
        if (text[k] === ":") {
          const key = JSON.parse(text.slice(i, j + 1)) as string;
          if (seen.has(key)) return key;
          seen.add(key);
        }
      }
      i = j;
    }
  }
  return undefined;
}

/** What a config file's value of each kind of field is written as. */
const JSON_KIND = {
  number: "a JSON number",
  boolean: "JSON true or false",
  list: "an array, or a comma-separated string",
  string: "a JSON string",
} as const;

/** A JSON value as a message shows it: its kind, then the value (`the string "50"`, `null`). */
function jsonValue(v: unknown): string {
  if (v === null) return "null";
  const kind = Array.isArray(v) ? "the array" : typeof v === "object" ? "the object" : `the ${typeof v}`;
  // a number JSON.parse made Infinity (1e400) is no `null`
  const text = typeof v === "number" ? String(v) : JSON.stringify(v) ?? String(v);
  return `${kind} ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}
