// corpus, export and eval whose standard output fails (`> /dev/full`, a reader that closed the pipe). corpus and
// export: the work is done, one stderr line says the summary line was not printed and where the result is, exit
// 0 (they exited 8 after the work, `cannot access (path not reported): no space left on device`, and a
// scheduler reran a finished job). eval, whose report is its output: exit 8 naming standard output.
import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT } from "../lib/core/exit_codes.ts";
import { latestVersionDir } from "../lib/export/publish.ts";
import { writeWord2VecText } from "../lib/export/word2vec.ts";
import { runRedirected } from "./child.ts";

const ROOT = await Deno.makeTempDir({ prefix: "jobs_stdout_" });
const VEC = join(ROOT, "v.vec");
const TEXT = join(ROOT, "t.txt");
const SIM = join(ROOT, "sim.tsv");
const WORDS = ["man", "woman", "king", "queen", "apple"];
await writeWord2VecText(VEC, {
  words: WORDS,
  vectors: Float32Array.from({ length: WORDS.length * 3 }, (_, i) => Math.sin(i + 1)),
  d: 3,
});
await Deno.writeTextFile(TEXT, "the cat sat on the mat\nthe dog ran to the park\n".repeat(20));
await Deno.writeTextFile(SIM, "man\twoman\t5\nking\tqueen\t8\nman\tapple\t1\n");

const job = runRedirected;

const stdoutLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("stdout:"));

Deno.test("export: stdout to /dev/full: published, one stderr line naming the version, exit 0 (it exited 8)", async () => {
  const out = join(ROOT, "pub");
  const r = await job("export", ["--vectors", VEC, "--out", out, "--formats", "vec"], "> /dev/full");
  assert.equal(r.code, EXIT.ok, r.stderr);
  const latest = await latestVersionDir(out);
  assert.ok(latest, r.stderr);
  await Deno.stat(join(latest, "input.vec"));
  const lines = stdoutLines(r.stderr);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0],
    /^stdout: cannot write \(ENOSPC: .*\): the summary line is not printed; .*pub\/versions\/.* has the result$/,
  );
  assert.doesNotMatch(r.stderr, /path not reported/);
});

Deno.test("corpus: stdout to /dev/full: the corpus is written, one stderr line naming it, exit 0 (it exited 8)", async () => {
  const out = join(ROOT, "c");
  const r = await job("corpus", ["--input", TEXT, "--out", out, "--min-count", "1"], "> /dev/full");
  assert.equal(r.code, EXIT.ok, r.stderr);
  await Deno.stat(join(out, "manifest.json"));
  const lines = stdoutLines(r.stderr);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0],
    /^stdout: cannot write \(ENOSPC: .*\): the summary line is not printed; .*c\/manifest\.json has the result$/,
  );
});

Deno.test("corpus --synthetic-text: stdout to /dev/full: the text is written, exit 0", async () => {
  const out = join(ROOT, "syn.txt");
  const r = await job(
    "corpus",
    ["--synthetic", "--synthetic-tokens", "500", "--synthetic-text", out],
    "> /dev/full",
  );
  assert.equal(r.code, EXIT.ok, r.stderr);
  assert.ok((await Deno.stat(out)).size > 0);
  assert.equal(stdoutLines(r.stderr).length, 1, r.stderr);
});

Deno.test("eval: stdout to /dev/full: exit 8 naming standard output (it said `path not reported`)", async () => {
  const args = ["--vectors", VEC, "--similarity", SIM, "--no-analogies"];
  for (const json of [false, true]) {
    const r = await job("eval", json ? [...args, "--json"] : args, "> /dev/full");
    assert.equal(r.code, EXIT.io, r.stderr);
    const last = r.stderr.trimEnd().split("\n").at(-1)!;
    assert.match(last, /^eval: cannot write the report to standard output: no space left on device; /);
  }
  // a reader that closed the pipe is no error
  const r = await job("eval", args, "| true");
  assert.equal(r.code, EXIT.ok, r.stderr);
});

Deno.test("jobs_stdout: cleanup", async () => {
  await Deno.remove(ROOT, { recursive: true });
});
