/**
 * The corpus job's SQL, kept as files in `sql/corpus/` (DuckDB dialect; `sql/spark/` holds the Spark SQL
 * version of each step): loads a step and fills in its `${name}` parameters. Values are typed: numbers
 * and booleans are written as SQL literals, strings as quoted literals; a parameter the file uses but the
 * caller does not give is an error naming both, so a step never runs with a hole in it.
 *
 * @module
 */

/** A parameter value: a number, a boolean, or a string (written as a quoted SQL literal). */
export type SqlParam = number | boolean | string;

/** The steps of the corpus job, in order (files `sql/corpus/<step>.sql`). */
export const CORPUS_STEPS = ["10_tokens", "15_limit", "20_vocab", "30_ids", "40_windows"] as const;

/** One step's name. */
export type CorpusStep = (typeof CORPUS_STEPS)[number];

/**
 * The folder holding the SQL files (`sql/` at the repository root).
 *
 * @example
 * ```ts
 * import { sqlDir } from "./duckdb_sql.ts";
 * console.log(sqlDir("corpus")); // ".../sql/corpus"
 * ```
 */
export function sqlDir(dialect: "corpus" | "spark"): string {
  return decodeURIComponent(new URL(`../../sql/${dialect}`, import.meta.url).pathname);
}

/**
 * A SQL literal for `v`: numbers must be finite, strings are single-quoted with quotes doubled.
 *
 * @example
 * ```ts
 * import { sqlLiteral } from "./duckdb_sql.ts";
 * sqlLiteral("it's"); // "'it''s'"
 * ```
 */
export function sqlLiteral(v: SqlParam): string {
  if (typeof v === "boolean") return v ? "TRUE" : "FALSE";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new RangeError(`SQL parameter must be finite, got ${v}`);
    return String(v);
  }
  return `'${v.replaceAll("'", "''")}'`;
}

/**
 * Fills the `${name}` parameters of `sql` (comments included, so that the step's text says what it ran
 * with). Throws a RangeError naming a parameter the text uses and `params` lacks.
 *
 * @example
 * ```ts
 * import { renderSql } from "./duckdb_sql.ts";
 * renderSql("SELECT ${n} AS n, ${s} AS s", { n: 2, s: "a" }); // "SELECT 2 AS n, 'a' AS s"
 * ```
 */
export function renderSql(sql: string, params: Record<string, SqlParam>, file = "SQL"): string {
  return sql.replace(/\$\{([a-z_]+)\}/g, (_, name: string) => {
    if (!(name in params)) throw new RangeError(`${file}: parameter \${${name}} is not given`);
    return sqlLiteral(params[name]);
  });
}

/**
 * Reads step `step` of the corpus job and fills in its parameters.
 *
 * @example
 * ```ts
 * import { loadStep } from "./duckdb_sql.ts";
 * const sql = await loadStep("15_limit", { limit_tokens: 1000 });
 * ```
 */
export async function loadStep(step: CorpusStep, params: Record<string, SqlParam>): Promise<string> {
  const file = `${sqlDir("corpus")}/${step}.sql`;
  return renderSql(await Deno.readTextFile(file), params, file);
}
