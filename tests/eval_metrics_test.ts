// One shape of `metrics` in every published version (lib/eval/report.ts evalMetrics): train's compact one.
// A walkthrough found three: train's `{ wordsim353: ρ, coverage: { wordsim353 } }`, refresh's
// `{ wordsim353: { rho, coverage } }` and export --eval's whole report (every out-of-vocabulary word list);
// the whole report now goes into the version's eval.json. A refresh finding a version an older job published
// reads its metrics through readMetrics (never a crash, the shape written now), and its JSON line's
// `embeddings` carries `files`, as train's summary does.
import assert from "node:assert/strict";
import { join } from "node:path";
import { evalMetrics, type EvalReport, readMetrics } from "../lib/eval/report.ts";
import {
  EVAL_FILE,
  latestVersionDir,
  publishEmbeddings,
  readEmbeddingsManifest,
  versionFiles,
} from "../lib/export/publish.ts";
import { latestHoldingRun } from "../lib/train/republish.ts";
import { makeRun } from "./refresh_fixture.ts";
import { pipeline, runScript } from "./child.ts";

const refresh = (args: string[]) => runScript(pipeline("refresh"), args);
const exportJob = (args: string[]) => runScript(pipeline("export"), args);

/** A similarity set over the refresh fixture's words (one pair out of its vocabulary). */
async function evalDirIn(dir: string): Promise<string> {
  const evalDir = join(dir, "eval");
  await Deno.mkdir(evalDir);
  await Deno.writeTextFile(
    join(evalDir, "wordsim353.tsv"),
    "cat\tmat\t5\nthe\ta\t3\nsat\ton\t4\ncat\tsat\t2\nfoo\tbar\t1\n",
  );
  return evalDir;
}

/** The compact shape: numbers at the top, numbers under `coverage`, nothing else. */
function assertCompact(m: unknown, what: string): void {
  assert.ok(typeof m === "object" && m !== null, what);
  const { coverage, ...figures } = m as Record<string, unknown>;
  assert.ok(typeof coverage === "object" && coverage !== null, `${what}: coverage`);
  for (const [k, v] of [...Object.entries(figures), ...Object.entries(coverage as object)]) {
    assert.ok(typeof v === "number" || v === null, `${what}: ${k} is ${JSON.stringify(v)}`);
  }
}

Deno.test("readMetrics: every shape a version ever wrote reads as the one shape; an unknown one as none", () => {
  const compact = {
    wordsim353: 0.3512,
    simlex999: 0.1,
    analogy: 0.25,
    coverage: { wordsim353: 0.9, analogy: 0.5 },
  };
  assert.deepEqual(readMetrics(compact), compact);
  // a ρ of too few pairs is NaN, which JSON writes as null
  assert.deepEqual(readMetrics({ wordsim353: null, coverage: { wordsim353: 0.1 } }), {
    wordsim353: NaN,
    coverage: { wordsim353: 0.1 },
  });
  // refresh's old shape
  assert.deepEqual(
    readMetrics({ wordsim353: { rho: 0.351234, coverage: 0.987654 }, simlex999: { rho: 0.1, coverage: 1 } }),
    { wordsim353: 0.3512, simlex999: 0.1, coverage: { wordsim353: 0.9877, simlex999: 1 } },
  );
  // export --eval's old shape: the whole report
  const report = {
    evalDir: "/x",
    vocabularySize: 3,
    d: 2,
    similarity: {
      wordsim353: {
        rho: 0.5,
        coverage: 0.75,
        found: 3,
        total: 4,
        oovPairs: 1,
        oovWords: ["zebra"],
        file: "/x/w",
      },
    },
    analogy: { total: { accuracy: 0.123456, coverage: 0.5, correct: 1, answered: 8, total: 16 } },
    missing: [],
    seconds: 0,
  };
  const fromReport = { wordsim353: 0.5, analogy: 0.1235, coverage: { wordsim353: 0.75, analogy: 0.5 } };
  assert.deepEqual(readMetrics(report), fromReport);
  assert.deepEqual(evalMetrics(report as unknown as EvalReport), fromReport);
  for (const none of [null, undefined, {}, "text", 3, [1, 2], { wordsim353: "high" }, { similarity: 7 }]) {
    assert.deepEqual(readMetrics(none), { coverage: {} }, JSON.stringify(none));
  }
  assert.deepEqual(evalMetrics(undefined), { coverage: {} });
});

Deno.test("publishEmbeddings: the evaluation report goes into eval.json, named by the manifest's evaluation (not in files)", async () => {
  const root = await Deno.makeTempDir();
  try {
    const base = {
      outRoot: root,
      words: ["a", "b"],
      input: Float32Array.of(1, 0, 0, 1),
      d: 2,
      formats: ["vec" as const],
    };
    const r = await publishEmbeddings({
      ...base,
      manifest: { metrics: { coverage: {} } },
      evaluation: { x: [1] },
    });
    const m = await readEmbeddingsManifest(r.versionDir);
    const ev = m.evaluation as { name: string; bytes: number };
    assert.equal(ev.name, EVAL_FILE);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(join(r.versionDir, EVAL_FILE))), { x: [1] });
    assert.equal(ev.bytes, (await Deno.stat(join(r.versionDir, EVAL_FILE))).size);
    assert.deepEqual((m.files as { name: string }[]).map((f) => f.name), ["input.vec"]);
    assert.deepEqual(r.files.map((f) => f.slice(r.versionDir.length + 1)), [
      "input.vec",
      "manifest.json",
    ]);
    assert.deepEqual(versionFiles(r.versionDir, m), r.files);
    // none given: no file, `evaluation: null`
    const r2 = await publishEmbeddings({ ...base, manifest: {} });
    assert.equal((await readEmbeddingsManifest(r2.versionDir)).evaluation, null);
    assert.deepEqual(r2.files.map((f) => f.slice(r2.versionDir.length + 1)), ["input.vec", "manifest.json"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("latestHoldingRun: a latest version whose metrics have an older shape is another publication, never a crash", async () => {
  const root = await Deno.makeTempDir();
  try {
    const key = {
      step: 7,
      keptEpoch: undefined,
      formats: ["vec"],
      exportOutput: false,
      metrics: { wordsim353: 0.5, coverage: { wordsim353: 1 } },
    };
    const publish = (metrics: unknown) =>
      publishEmbeddings({
        outRoot: root,
        words: ["a"],
        input: Float32Array.of(1),
        d: 1,
        formats: ["vec"],
        manifest: { metrics, training: { step: 7 } },
      });
    const held = await publish(key.metrics);
    assert.equal(await latestHoldingRun(root, key), held.versionDir);
    for (
      const old of [{ wordsim353: { rho: 0.5, coverage: 1 } }, { similarity: {}, missing: [] }, "x", null]
    ) {
      await publish(old);
      assert.equal(await latestHoldingRun(root, key), null, JSON.stringify(old));
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("refresh writes train's metrics shape, the whole report in eval.json, and embeddings.files in its JSON line; the same refresh again reads an older version's metrics in that shape", async () => {
  const { run } = await makeRun();
  try {
    const evalDir = await evalDirIn(run);
    const data = join(run, "new.txt");
    await Deno.writeTextFile(data, "the dog sat on the mat\nthe dog ran to a cat\na dog sat\n".repeat(5));
    const args = [
      ...["--from", run, "--data", data, "--epochs", "1", "--min-count", "1", "--eval-dir", evalDir],
      ...["--formats", "vec", "--backend", "js", "--progress", "none"],
    ];
    const r = await refresh(args);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    const latest = (await latestVersionDir(join(run, "embeddings")))!;
    const m = await readEmbeddingsManifest(latest);
    assertCompact(m.metrics, "manifest metrics");
    assert.deepEqual(Object.keys(m.metrics as object).sort(), ["coverage", "wordsim353"]);
    assert.equal((m.metrics as { coverage: { wordsim353: number } }).coverage.wordsim353, 0.8); // foo bar: out
    assert.deepEqual(s.metrics, m.metrics);
    // the whole report beside it
    const report = JSON.parse(await Deno.readTextFile(join(latest, EVAL_FILE)));
    assert.deepEqual(report.similarity.wordsim353.oovWords.sort(), ["bar", "foo"]);
    // the fields of train's summary
    assert.deepEqual(s.embeddings.files, versionFiles(latest, m));
    assert.deepEqual(s.embeddings.files.map((f: string) => f.slice(latest.length + 1)), [
      "input.vec",
      "manifest.json",
    ]);
    assert.deepEqual([s.embeddings.version, s.embeddings.dir], [latest.split("/").at(-1), latest]);
    // the same command again: nothing to do, the same line's figures
    const again = await refresh(args);
    assert.equal(again.code, 0, again.stderr);
    const u = JSON.parse(again.stdout.trim().split("\n").at(-1)!);
    assert.equal(u.unchanged, true);
    assert.deepEqual(u.metrics, s.metrics);
    assert.deepEqual(u.embeddings, s.embeddings);
    // a version an older refresh published (its metrics { wordsim353: { rho, coverage } }): the shape written now
    const rho = (m.metrics as { wordsim353: number }).wordsim353;
    const old = { ...m, metrics: { wordsim353: { rho, coverage: 0.8 } } };
    await Deno.writeTextFile(join(latest, "manifest.json"), JSON.stringify(old, null, 2) + "\n");
    const older = await refresh(args);
    assert.equal(older.code, 0, older.stderr);
    const o = JSON.parse(older.stdout.trim().split("\n").at(-1)!);
    assert.equal(o.unchanged, true);
    assert.deepEqual(o.metrics, s.metrics);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("export --eval writes train's metrics shape into manifest.json and the whole report into eval.json; without --eval, { coverage: {} }", async () => {
  const { run } = await makeRun();
  try {
    const evalDir = await evalDirIn(run);
    const out = join(run, "exported");
    const common = ["--checkpoint", run, "--out", out, "--formats", "vec", "--backend", "js"];
    const r = await exportJob([...common, "--eval", "--eval-dir", evalDir]);
    assert.equal(r.code, 0, r.stderr);
    const line = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    const m = await readEmbeddingsManifest(line.dir);
    assertCompact(m.metrics, "export --eval metrics");
    assert.deepEqual(Object.keys(m.metrics as object).sort(), ["coverage", "wordsim353"]);
    assert.deepEqual((m.metrics as { coverage: object }).coverage, { wordsim353: 0.8 });
    const report = JSON.parse(await Deno.readTextFile(join(line.dir, EVAL_FILE)));
    assert.equal(report.similarity.wordsim353.total, 5);
    assert.deepEqual(line.files, versionFiles(line.dir, m));
    // the published line carries them as train's and refresh's summaries do (it had none)
    assert.deepEqual(line.metrics, m.metrics);
    const plain = await exportJob(common);
    assert.equal(plain.code, 0, plain.stderr);
    const plainLine = JSON.parse(plain.stdout.trim().split("\n").at(-1)!);
    const p = await readEmbeddingsManifest(plainLine.dir);
    assert.deepEqual([p.metrics, p.evaluation], [{ coverage: {} }, null]);
    assert.deepEqual(plainLine.metrics, { coverage: {} });
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("train writes the same shape: summary.metrics is the manifest's, eval.json beside it; a resume that publishes nothing names the same files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const evalDir = await evalDirIn(dir);
    const out = join(dir, "run");
    const train = (args: string[]) => runScript(pipeline("train"), args);
    const r = await train([
      ...["--limit-tokens", "3000", "--epochs", "1", "--dim", "8", "--batch", "16", "--formats", "vec"],
      ...["--backend", "js", "--progress", "none", "--eval-dir", evalDir, "--out", out],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    const m = await readEmbeddingsManifest(s.embeddings.dir);
    assertCompact(m.metrics, "train metrics");
    assert.deepEqual(s.metrics, m.metrics);
    assert.ok("wordsim353" in s.metrics, JSON.stringify(s.metrics));
    assert.ok(JSON.parse(await Deno.readTextFile(join(s.embeddings.dir, EVAL_FILE))).similarity.wordsim353);
    assert.deepEqual(s.embeddings.files, versionFiles(s.embeddings.dir, m));
    // eval.json is no embedding file: not in `files` (a reader takes every entry but manifest.json for one)
    assert.ok(!s.embeddings.files.includes(join(s.embeddings.dir, EVAL_FILE)));
    const resumed = await train(["--resume", out, "--progress", "none"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /holds this run's vectors already/);
    assert.deepEqual(
      JSON.parse(resumed.stdout.trim().split("\n").at(-1)!).embeddings.files,
      s.embeddings.files,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
