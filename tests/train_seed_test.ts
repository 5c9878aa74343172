// Same vectors for the same seed (issue 13): a tiny `deno task train` run (pipelines/train.ts as a child
// process: the default reader, the trainer loop, checkpoints at every epoch, the export) gives the same
// input and output vectors twice, and the same as the code before the trainer was split and its reader
// moved to a worker (the fixture tests/fixtures/train_seed.sha256, made on main 389e1e9 by
// `deno test -A tests/train_seed_test.ts` with FACTOROUT_WRITE_FIXTURE=1).
import assert from "node:assert/strict";
import { pipeline, runScript } from "./child.ts";

const TRAIN = pipeline("train"), CORPUS = pipeline("corpus");
const FIXTURE = new URL("./fixtures/train_seed.sha256", import.meta.url).pathname;
const HOW = "# made on main 389e1e9 (before the trainer split) by: " +
  "FACTOROUT_WRITE_FIXTURE=1 deno test -A tests/train_seed_test.ts";
const run = runScript;

const hex = (b: ArrayBuffer) =>
  Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");

/** SHA-256 of the run's input.vec and output.vec, one `name hash` line each. */
async function vectorHashes(data: string, env: Record<string, string> = {}): Promise<string> {
  const r = await run(TRAIN, [
    ...["--data", data, "--out", await Deno.makeTempDir(), "--epochs", "2", "--dim", "8", "--batch", "16"],
    ...["--backend", "js", "--eval-dir", "none", "--formats", "vec", "--export-output", "--seed", "7"],
  ], env);
  assert.equal(r.code, 0, r.stderr);
  const dir = JSON.parse(r.stdout.trim().split("\n").pop()!).embeddings.dir;
  const lines: string[] = [];
  for (const name of ["input.vec", "output.vec"]) {
    const bytes = await Deno.readFile(`${dir}/${name}`);
    lines.push(`${name} ${hex(await crypto.subtle.digest("SHA-256", bytes))}`);
  }
  return lines.join("\n") + "\n";
}

Deno.test("train: same vectors for the same seed, twice and as before the split", async () => {
  const data = await Deno.makeTempDir();
  const c = await run(CORPUS, [
    ...["--input", "brown", "--limit-tokens", "6000", "--out", data, "--window", "2", "--min-count", "2"],
    ...["--shard-rows", "2000", "--batch-rows", "500"],
  ]);
  assert.equal(c.code, 0, c.stderr);
  const a = await vectorHashes(data), b = await vectorHashes(data);
  assert.equal(b, a, "two runs with one seed");
  assert.equal(
    await vectorHashes(data, { FACTOROUT_READER: "thread" }),
    a,
    "the reader on the training thread",
  );
  if (Deno.env.get("FACTOROUT_WRITE_FIXTURE") === "1") {
    await Deno.writeTextFile(FIXTURE, `${HOW}\n${a}`);
  }
  const expected = (await Deno.readTextFile(FIXTURE)).split("\n").filter((l) => !l.startsWith("#"));
  assert.equal(a, expected.join("\n"), "the vectors of the code before the split");
});
