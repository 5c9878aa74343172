// The idempotent refresh (pipelines/refresh.ts, lib/train/republish.ts latestHoldingCheckpoint): the same refresh
// again has nothing to do only while latest holds its checkpoint in the asked formats and rows, whole; a review
// found other formats, --output-rows, a removed file and another run's version in a shared --out taken for it;
// --export-output, train's name for --output-rows.
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { makeRun } from "./refresh_fixture.ts";
import { pipeline, runScript } from "./child.ts";
import { latestVersionDir } from "../lib/export/publish.ts";
import { findLatestCheckpoint } from "../lib/train/checkpoint.ts";

const refresh = (args: string[]) => runScript(pipeline("refresh"), args);

const base = (run: string, data: string) => [
  "--from",
  run,
  "--data",
  data,
  "--epochs",
  "1",
  "--min-count",
  "1",
  "--eval-dir",
  "none",
  "--backend",
  "js",
  "--progress",
  "none",
];

/** New text beside `run` and a first refresh on it (`--formats vec`): returns the text's path. */
async function refreshedOnce(run: string): Promise<string> {
  const data = join(run, "new.txt");
  await Deno.writeTextFile(data, "the dog sat on the mat\nthe dog ran to a cat\na dog sat\n".repeat(20));
  const first = await refresh([...base(run, data), "--formats", "vec"]);
  assert.equal(first.code, 0, first.stderr);
  return data;
}

Deno.test("refresh: the same refresh again with other --formats publishes those formats (it said 'nothing to do')", async () => {
  const run = (await makeRun()).run;
  try {
    const data = await refreshedOnce(run);
    const saved = await findLatestCheckpoint(join(run, "checkpoints"));
    const second = await refresh([...base(run, data), "--formats", "vec,parquet"]);
    assert.equal(second.code, 0, second.stderr);
    // the user asked for Parquet: the latest version must hold it (publishing the newest checkpoint again
    // needs no training)
    const latest = (await latestVersionDir(join(run, "embeddings")))!;
    const files = (await Array.fromAsync(Deno.readDir(latest))).map((e) => e.name);
    assert.ok(files.some((n) => n.endsWith(".parquet")), `${latest}: ${files.join(", ")}\n${second.stderr}`);
    assert.equal(await findLatestCheckpoint(join(run, "checkpoints")), saved, "no training again");
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh: the same refresh again with --output-rows publishes the output rows (it said 'nothing to do')", async () => {
  const run = (await makeRun()).run;
  try {
    const data = await refreshedOnce(run);
    const second = await refresh([...base(run, data), "--formats", "vec", "--output-rows"]);
    assert.equal(second.code, 0, second.stderr);
    const latest = (await latestVersionDir(join(run, "embeddings")))!;
    const files = (await Array.fromAsync(Deno.readDir(latest))).map((e) => e.name);
    assert.ok(files.some((n) => /output/.test(n)), `${latest}: ${files.join(", ")}\n${second.stderr}`);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh: --export-output (train's name; alone, true or false) means what --output-rows, its older name, means; both at once, or another value, is exit 2", async () => {
  const run = (await makeRun()).run;
  try {
    const data = await refreshedOnce(run);
    const outputFiles = async () => {
      const latest = (await latestVersionDir(join(run, "embeddings")))!;
      return (await Array.fromAsync(Deno.readDir(latest))).map((e) => e.name).filter((n) => /output/.test(n));
    };
    // false: as without it, no output rows (the same refresh again: nothing to publish)
    const off = await refresh([...base(run, data), "--formats", "vec", "--export-output", "false"]);
    assert.equal(off.code, 0, off.stderr);
    assert.deepEqual(await outputFiles(), [], off.stderr);
    // alone: the output rows published, as --output-rows does (the test above)
    const on = await refresh([...base(run, data), "--formats", "vec", "--export-output"]);
    assert.equal(on.code, 0, on.stderr);
    assert.ok((await outputFiles()).length > 0, on.stderr);
    for (
      const [flags, re] of [
        [
          ["--export-output", "--output-rows"],
          /^refresh: --output-rows is --export-output under its older name: give one of them$/,
        ],
        [
          ["--export-output=maybe"],
          /^refresh: --export-output must be true or false \(also 1 or yes, 0 or no\), got 'maybe'$/,
        ],
      ] as [string[], RegExp][]
    ) {
      const r = await refresh([...base(run, data), ...flags]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr.trim(), re);
    }
    const help = await refresh(["--help"]);
    assert.match(help.stdout, /--export-output \[<value>\] +also publish the output rows of W/);
    assert.match(help.stdout, /--output-rows +the same as --export-output/);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh: a published file removed from latest: the same refresh again does not say latest 'holds it'", async () => {
  const run = (await makeRun()).run;
  try {
    const data = await refreshedOnce(run);
    const latest = (await latestVersionDir(join(run, "embeddings")))!;
    await Deno.remove(join(latest, "input.vec"));
    const second = await refresh([...base(run, data), "--formats", "vec"]);
    assert.equal(second.code, 0, second.stderr);
    const now = (await latestVersionDir(join(run, "embeddings")))!;
    assert.ok(
      (await Deno.stat(join(now, "input.vec")).catch(() => null)) !== null,
      `latest ${now} has no input.vec:\n${second.stderr}`,
    );
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("refresh: two runs refreshed into one --out: a retry of the first is not 'held' by the second's version of the same step", async () => {
  const a = (await makeRun()).run, b = (await makeRun()).run;
  const out = await Deno.makeTempDir({ prefix: "review2_out_" });
  try {
    const data = join(a, "new.txt");
    await Deno.writeTextFile(data, "the dog sat on the mat\nthe dog ran to a cat\na dog sat\n".repeat(20));
    const args = (run: string) => [...base(run, data), "--formats", "vec", "--out", out];
    assert.equal((await refresh(args(a))).code, 0);
    const second = await refresh(args(b));
    assert.equal(second.code, 0, second.stderr);
    const latest = (await latestVersionDir(out))!;
    const m = JSON.parse(await Deno.readTextFile(join(latest, "manifest.json")));
    assert.ok(String(m.refresh.checkpoint).startsWith(b), "latest is run b's refresh");
    // the scheduler retries run a's refresh: latest holds run b's vectors, not a's
    const retry = await refresh(args(a));
    assert.equal(retry.code, 0, retry.stderr);
    assert.doesNotMatch(retry.stderr, /holds it: nothing to do/, retry.stderr);
  } finally {
    for (const d of [a, b, out]) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("refresh: the same data spelled otherwise (./relative) is the same refresh: nothing to do", async () => {
  const run = (await makeRun()).run;
  try {
    const data = await refreshedOnce(run);
    const spelled = "./" + relative(Deno.cwd(), data);
    const again = await refresh([...base(run, spelled), "--formats", "vec"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /holds it: nothing to do/);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});
