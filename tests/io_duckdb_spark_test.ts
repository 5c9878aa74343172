/**
 * The corpus job on a cluster: the Spark SQL files (sql/spark/) parse as Spark SQL, take the same
 * parameters as the DuckDB steps (sql/corpus/), and a folder shaped exactly like Spark's output
 * (part-*-c000.snappy.parquet, int64 ids, _SUCCESS, hidden .crc files), written here by DuckDB, trains
 * with `deno task train --data`; `--data-complete` refuses one without `_SUCCESS`/manifest.json. The Spark
 * tokeniser carries the Unicode 16 letters and capitals the DuckDB one does (and, for the JVM's older
 * tables, those of Unicode 14 and 15), checked code point by code point in Java where there is one.
 */
import assert from "node:assert/strict";
import { openDuckdb } from "../lib/io/duckdb_connect.ts";
import { prepareCorpusDuckdb } from "../lib/io/duckdb_prepare.ts";
import { sqlDir, sqlLiteral } from "../lib/io/duckdb_sql.ts";
import { createTokenizer } from "../lib/io/tokenize.ts";

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

/** The code points of a character class body made of `\x{…}` escapes and ranges (`\p{…}` skipped). */
function classCodePoints(body: string): Set<number> {
  const out = new Set<number>();
  for (const m of body.matchAll(/\\x\{([0-9A-Fa-f]+)\}(?:-\\x\{([0-9A-Fa-f]+)\})?/g)) {
    const a = parseInt(m[1], 16), b = m[2] ? parseInt(m[2], 16) : a;
    for (let c = a; c <= b; c++) out.add(c);
  }
  return out;
}

/** Each capital of `from` with its small letter in `to` (translate's arguments), by code point. */
const pairs = (from: string, to: string) => {
  const t = [...to];
  return [...from].map((c, i) => `${c}>${t[i]}`);
};

/** The Spark tokeniser's one-row view `unicode16`: its string literals as Spark reads them (`\\` is `\`). */
async function sparkUnicode16(): Promise<{ word_chars: string; capitals: string; smalls: string }> {
  const sql = await Deno.readTextFile(`${sqlDir("spark")}/10_tokens.sql`);
  const view = /CREATE OR REPLACE TEMPORARY VIEW unicode16 AS\s+SELECT([\s\S]*?);/.exec(sql);
  assert.ok(view, "sql/spark/10_tokens.sql defines no view unicode16");
  const cols: Record<string, string> = {};
  for (const m of view[1].matchAll(/'((?:[^']|'')*)' AS (\w+)/g)) {
    cols[m[2]] = m[1].replaceAll("''", "'").replaceAll("\\\\", "\\");
  }
  return cols as { word_chars: string; capitals: string; smalls: string };
}

Deno.test("the Spark tokeniser has the DuckDB tokeniser's Unicode 16 letters, marks, digits and capitals", async () => {
  const duck = await Deno.readTextFile(`${sqlDir("corpus")}/10_tokens.sql`);
  const duckChars = /MACRO word_chars\(\) AS '([^']*)'/.exec(duck)![1];
  const [, duckFrom, duckTo] = /MACRO lower16\(x\) AS translate\(lower\(x\), '([^']*)', '([^']*)'\)/.exec(
    duck,
  )!;
  const spark = await sparkUnicode16();
  assert.ok(spark.word_chars.startsWith("\\p{L}\\p{M}\\p{N}"), spark.word_chars.slice(0, 40));
  const sparkSet = classCodePoints(spark.word_chars);
  const missing = [...classCodePoints(duckChars)].filter((c) => !sparkSet.has(c));
  assert.deepEqual(missing.map((c) => c.toString(16)), [], "letters DuckDB's class adds and Spark's lacks");
  assert.equal([...spark.capitals].length, [...spark.smalls].length);
  const sparkPairs = new Set(pairs(spark.capitals, spark.smalls));
  assert.deepEqual(pairs(duckFrom, duckTo).filter((p) => !sparkPairs.has(p)), [], "capitals Spark misses");
  // every capital lowercases (in V8's tables) to its partner
  for (const p of sparkPairs) assert.equal(p.split(">")[0].toLowerCase(), p.split(">")[1], p);
});

/**
 * Spark's tokeniser, in Java as Spark runs it: lower() (the JVM's String.toLowerCase), translate by code
 * point, regexp_extract_all with group 1, the word test regexp_extract(w, class, 0) = ''. Reads the
 * patterns and the lines from files; prints per line the tokens of "keep" (the punctuation pattern),
 * "strip" (the word pattern) and "split" (the punctuation pattern less what the word test drops).
 */
const SPARK_TOKENS_JAVA = `
import java.nio.file.*; import java.util.*; import java.util.regex.*;
public class SparkTokens {
  static String translate(String s, String from, String to) {
    Map<Integer, Integer> d = new HashMap<>();
    int[] f = from.codePoints().toArray(), t = to.codePoints().toArray();
    for (int i = 0; i < f.length; i++) d.putIfAbsent(f[i], t[i]);
    StringBuilder b = new StringBuilder();
    s.codePoints().forEach(c -> b.appendCodePoint(d.getOrDefault(c, c)));
    return b.toString();
  }
  static List<String> all(Pattern p, String s) {
    List<String> out = new ArrayList<>(); Matcher m = p.matcher(s);
    while (m.find()) out.add(m.group(1));
    return out;
  }
  public static void main(String[] a) throws Exception {
    List<String> in = Files.readAllLines(Path.of(a[0]));
    Pattern punct = Pattern.compile(in.get(0)), word = Pattern.compile(in.get(1)), isWord = Pattern.compile(in.get(2));
    String from = in.get(3), to = in.get(4);
    StringBuilder out = new StringBuilder();
    for (int i = 5; i < in.size(); i++) {
      String l = translate(in.get(i).toLowerCase(Locale.ROOT), from, to);
      List<String> split = new ArrayList<>();
      for (String w : all(punct, l)) { Matcher m = isWord.matcher(w); if (m.find() && !m.group(0).isEmpty()) split.add(w); }
      out.append(i - 4).append(':').append(String.join(" ", all(punct, l))).append('\\t')
        .append(String.join(" ", all(word, l))).append('\\t').append(String.join(" ", split)).append('\\n');
    }
    Files.writeString(Path.of(a[1]), out.toString());
  }
}
`;

/** The Spark tokeniser's patterns, as sqlglot (dialect spark) parses sql/spark/10_tokens.sql. */
const SPARK_PATTERNS_PY = `
import sqlglot, re, sys, json
from sqlglot import exp
s = re.sub(r"\\$\\{(\\w+)\\}", "TRUE", open(sys.argv[1]).read())
stmts = [x for x in sqlglot.parse(s, read="spark", error_level=sqlglot.ErrorLevel.RAISE) if x]
view = next(x for x in stmts if "unicode16" in x.sql(dialect="spark").split("AS")[0].lower())
cols = {a.alias: a.this.this for a in view.find_all(exp.Alias) if isinstance(a.this, exp.Literal)}
def ev(e):
    if isinstance(e, exp.Literal): return e.this
    if isinstance(e, exp.Concat): return "".join(ev(x) for x in e.expressions)
    if isinstance(e, exp.Column): return cols[e.name]
    raise ValueError("cannot evaluate " + e.sql(dialect="spark"))
def calls(name):
    return [c for c in stmts[-1].find_all(exp.Func) if (c.sql_name() if not isinstance(c, exp.Anonymous) else c.name).lower() == name]
extract = [ev(c.expressions[1]) for c in calls("regexp_extract_all")]
is_word = [ev(c.args.get("expression")) if "expression" in c.args else ev(c.expressions[1]) for c in calls("regexp_extract")]
print(json.dumps({"extract": extract, "isWord": is_word, "capitals": cols["capitals"], "smalls": cols["smalls"]}))
`;

/** A `java` that runs single-file programs (Java 11 or later), or "" when there is none. */
async function javaCommand(): Promise<string> {
  try {
    const r = await new Deno.Command("java", { args: ["-version"], stderr: "piped" }).output();
    return r.code === 0 ? "java" : "";
  } catch {
    return "";
  }
}
const JAVA = await javaCommand();

Deno.test({
  name:
    "the Spark tokeniser, run in Java, makes the built-in tokeniser's tokens for every code point (Unicode 16)",
  // needs sqlglot (as the parse test, required under CI) and a Java (skipped without one)
  ignore: JAVA === "" || (PY === "" && Deno.env.get("CI") !== "true"),
  fn: async () => {
    assert.ok(PY !== "", "no Python with sqlglot: install python3-sqlglot");
    const dec = new TextDecoder();
    const py = await new Deno.Command(PY, {
      args: ["-c", SPARK_PATTERNS_PY, `${sqlDir("spark")}/10_tokens.sql`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(py.code, 0, dec.decode(py.stderr));
    const p = JSON.parse(dec.decode(py.stdout)) as {
      extract: string[];
      isWord: string[];
      capitals: string;
      smalls: string;
    };
    assert.equal(p.extract.length, 2, JSON.stringify(p.extract.map((x) => x.slice(0, 30))));
    assert.equal(p.isWord.length, 1);
    const punct = p.extract.find((x) => x.includes("|[^"))!,
      word = p.extract.find((x) => !x.includes("|[^"))!;
    // lines of 64 code points each, space-separated, NFC as Spark's input must be (it has no NFC)
    const lines: string[] = [];
    let line: string[] = [];
    for (let i = 0; i < 0x110000; i++) {
      if (i >= 0xd800 && i <= 0xdfff) continue;
      line.push(String.fromCodePoint(i));
      if (line.length === 64) {
        lines.push(line.join(" ").normalize("NFC"));
        line = [];
      }
    }
    lines.push(line.join(" ").normalize("NFC"));
    // a line of the input file must stay one line: drop the line breaks Java's readAllLines splits at
    const input = lines.map((l) => l.replace(/[\n\r\u0085\u2028\u2029]/g, " "));
    const want = (o: Parameters<typeof createTokenizer>[0]) => {
      const tok = createTokenizer(o), out: string[] = [];
      for (const l of input) {
        const t: string[] = [];
        tok(l, (s, n) => t.push(...s.slice(0, n)));
        out.push(t.join(" "));
      }
      return out;
    };
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/SparkTokens.java`, SPARK_TOKENS_JAVA);
      await Deno.writeTextFile(
        `${dir}/in.txt`,
        [punct, word, p.isWord[0], p.capitals, p.smalls, ...input].join("\n") + "\n",
      );
      const r = await new Deno.Command(JAVA, {
        args: [`${dir}/SparkTokens.java`, `${dir}/in.txt`, `${dir}/out.txt`],
        stderr: "piped",
      }).output();
      assert.equal(r.code, 0, dec.decode(r.stderr));
      const got = (await Deno.readTextFile(`${dir}/out.txt`)).split("\n").filter((l) => l !== "");
      assert.equal(got.length, input.length);
      const expected = [
        want({ punctuation: "keep" }),
        want({ punctuation: "strip" }),
        want({ punctuation: "strip", sentences: "punct" }),
      ];
      for (const [m, name] of ["keep", "strip", "split"].entries()) {
        const diff = got.map((g, i) => [i, g.slice(g.indexOf(":") + 1).split("\t")[m]] as const)
          .filter(([i, g]) => g !== expected[m][i]).slice(0, 2)
          .map(([i, g]) =>
            `line ${i + 1}: spark ${JSON.stringify(g)} built-in ${JSON.stringify(expected[m][i])}`
          );
        assert.deepEqual(diff, [], `${name}: first lines that differ`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
