/**
 * The corpus job on a cluster: the Spark SQL files (sql/spark/) parse as Spark SQL, take the same
 * parameters as the DuckDB steps (sql/corpus/), and a folder shaped exactly like Spark's output
 * (part-*-c000.snappy.parquet, int64 ids, _SUCCESS, hidden .crc files), written here by DuckDB, trains
 * with `deno task train --data`; `--data-complete` refuses one without `_SUCCESS`/manifest.json.
 */
import assert from "node:assert/strict";
import { openDuckdb } from "../lib/io/duckdb_connect.ts";
import { prepareCorpusDuckdb } from "../lib/io/duckdb_prepare.ts";
import { sqlDir, sqlLiteral } from "../lib/io/duckdb_sql.ts";

const UUID = "c0ffee00-1234-4321-abcd-0123456789ab";

/** Writes `src`'s windows as Spark would: two snappy part files with int64 ids, .crc files, _SUCCESS. */
async function writeSparkShaped(src: string, out: string, success: boolean): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  const db = await openDuckdb({ threads: 2 });
  try {
    for (const part of [0, 1]) {
      const name = `part-0000${part}-${UUID}-c000.snappy.parquet`;
      await db.connection.run(
        `COPY (SELECT CAST(input AS BIGINT[]) AS input, CAST(target_index AS BIGINT[]) AS target_index,
           target_value FROM (SELECT *, row_number() OVER () AS rn FROM read_parquet(${
          sqlLiteral(`${src}/part-*.parquet`)
        })) WHERE rn % 2 = ${part})
         TO ${sqlLiteral(`${out}/${name}`)} (FORMAT parquet, COMPRESSION snappy)`,
      );
      await Deno.writeFile(`${out}/.${name}.crc`, Uint8Array.of(1, 2, 3, 4));
      const types = (await db.connection.runAndReadAll(
        `SELECT column_type FROM (DESCRIBE SELECT * FROM read_parquet(${sqlLiteral(`${out}/${name}`)}))`,
      )).getRows().map((r) => String(r[0]));
      assert.deepEqual(types, ["BIGINT[]", "BIGINT[]", "FLOAT[]"]);
      const codec = (await db.connection.runAndReadAll(
        `SELECT DISTINCT compression FROM parquet_metadata(${sqlLiteral(`${out}/${name}`)})`,
      )).getRows().map((r) => String(r[0]));
      assert.deepEqual(codec, ["SNAPPY"]);
    }
  } finally {
    db.close();
  }
  if (success) await Deno.writeTextFile(`${out}/_SUCCESS`, "");
  await Deno.copyFile(`${src}/vocab.tsv`, `${out}/vocab.tsv`);
}

async function train(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "pipelines/train.ts", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test("a Spark-shaped folder trains with train --data; --data-complete wants _SUCCESS or manifest.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = await prepareCorpusDuckdb({
      input: "brown",
      outDir: `${dir}/corpus`,
      mode: "skipgram",
      window: 2,
      minCount: 3,
      seed: 1,
      limitTokens: 20_000,
      threads: 2,
    });
    await writeSparkShaped(`${dir}/corpus`, `${dir}/spark`, true);
    const base = ["--out", `${dir}/run`, ..."--dim 8 --epochs 1 --eval-dir none --formats vec".split(" ")];
    const ok = await train(["--data", `${dir}/spark`, "--data-complete", "--backend", "js", ...base]);
    assert.equal(ok.code, 0, ok.stderr);
    const summary = JSON.parse(ok.stdout.trim().split("\n").filter((l) => l.includes('"summary"')).at(-1)!);
    // every row is read: most train, the rest are the validation split
    const n = summary.training.examples;
    assert.ok(n <= m.rows && n >= m.rows * 0.85, `${n} of ${m.rows} rows`);
    assert.equal(summary.vocabularySize, m.vocabSize);
    assert.match(ok.stderr, /has no manifest\.json: 2 shard\(s\) found by content/);

    await writeSparkShaped(`${dir}/corpus`, `${dir}/unfinished`, false);
    const bad = await train(["--data", `${dir}/unfinished`, "--data-complete", ...base, "--overwrite"]);
    assert.equal(bad.code, 5, bad.stderr);
    assert.match(
      bad.stderr.trim().split("\n").at(-1)!,
      /^train: .*unfinished: has neither manifest\.json nor _SUCCESS: the job that wrote these shards did not finish/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const params = (text: string) => new Set([...text.matchAll(/\$\{([a-z_]+)\}/g)].map((m) => m[1]));

Deno.test("the Spark SQL steps take the DuckDB steps' parameters", async () => {
  for (const step of ["10_tokens", "15_limit", "20_vocab", "30_ids", "40_windows"]) {
    const duck = params(await Deno.readTextFile(`${sqlDir("corpus")}/${step}.sql`));
    const spark = params(await Deno.readTextFile(`${sqlDir("spark")}/${step}.sql`));
    assert.deepEqual([...spark].sort(), [...duck].sort(), step);
  }
});

/** A Python with sqlglot (Debian's python3-sqlglot), or "" when there is none. */
async function sqlglotPython(): Promise<string> {
  for (const py of ["python3", "/usr/bin/python3"]) {
    try {
      const r = await new Deno.Command(py, { args: ["-c", "import sqlglot"], stderr: "null" }).output();
      if (r.code === 0) return py;
    } catch { /* not installed */ }
  }
  return "";
}
const PY = await sqlglotPython();

Deno.test({
  name: "sql/spark/*.sql parse as Spark SQL (sqlglot, dialect spark)",
  // under CI=true a missing sqlglot fails (scripts/ensure-system.sh installs python3-sqlglot) instead of skipping
  ignore: PY === "" && Deno.env.get("CI") !== "true",
  fn: async () => {
    assert.ok(
      PY !== "",
      "no Python with sqlglot: install python3-sqlglot (scripts/ensure-system.sh does as root)",
    );
    const script = `
import sqlglot, glob, re, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.sql")):
    s = re.sub(r"\\$\\{(\\w+)\\}", lambda m: "/data/x" if m.group(1) in ("input", "out") else "1", open(f).read())
    n = len([x for x in sqlglot.parse(s, read="spark", error_level=sqlglot.ErrorLevel.RAISE) if x])
    print(f.rsplit("/", 1)[1], n)
`;
    const r = await new Deno.Command(PY, {
      args: ["-c", script, sqlDir("spark")],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const dec = new TextDecoder();
    assert.equal(r.code, 0, dec.decode(r.stderr));
    const parsed = dec.decode(r.stdout).trim().split("\n");
    assert.ok(parsed.length >= 8, parsed.join("; "));
    assert.ok(parsed.includes("50_write.sql 2"), parsed.join("; "));
  },
});
