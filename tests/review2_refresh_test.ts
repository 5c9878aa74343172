// Review 2026-12-05 (r3): failing tests of the idempotent refresh rule (38bc46a).
import assert from "node:assert/strict";
import { join } from "node:path";
import { latestVersionDir, publishEmbeddings } from "../lib/export/publish.ts";
import { findLatestCheckpoint } from "../lib/train/checkpoint.ts";
import { resolveConfig } from "../lib/train/config.ts";
import { Trainer } from "../lib/train/trainer.ts";

const WORDS = ["the", "cat", "sat", "on", "mat", "a"];

async function makeRun(): Promise<string> {
  const run = await Deno.makeTempDir({ prefix: "review2_refresh_" });
  const config = resolveConfig({
    dim: 6,
    backend: "js",
    out: run,
    minCount: 1,
    window: 2,
    epochs: 1,
    validation: 0,
    lr: 0.005,
    batch: 4,
    sample: 0,
    loss: "squared",
  });
  const t = await Trainer.create({
    config,
    vocab: { words: WORDS, counts: [60, 50, 40, 30, 20, 10] },
    log: () => {},
  });
  try {
    await t.saveCheckpoint(join(run, "checkpoints"));
    const e = await t.embeddings({ output: true });
    await publishEmbeddings({
      outRoot: join(run, "embeddings"),
      words: e.words,
      input: e.input,
      d: e.d,
      formats: ["vec"],
      manifest: {},
      version: "v0",
    });
    return run;
  } finally {
    t.close();
  }
}

async function refresh(args: string[]) {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../pipelines/refresh.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  };
}

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

Deno.test("review2: the same refresh again with other --formats publishes those formats (it said 'nothing to do')", async () => {
  const run = await makeRun();
  try {
    const data = join(run, "new.txt");
    await Deno.writeTextFile(data, "the dog sat on the mat\nthe dog ran to a cat\na dog sat\n".repeat(20));
    const first = await refresh([...base(run, data), "--formats", "vec"]);
    assert.equal(first.code, 0, first.stderr);
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

Deno.test("review2: the same refresh again with --output-rows publishes the output rows (it said 'nothing to do')", async () => {
  const run = await makeRun();
  try {
    const data = join(run, "new.txt");
    await Deno.writeTextFile(data, "the dog sat on the mat\nthe dog ran to a cat\na dog sat\n".repeat(20));
    const first = await refresh([...base(run, data), "--formats", "vec"]);
    assert.equal(first.code, 0, first.stderr);
    const second = await refresh([...base(run, data), "--formats", "vec", "--output-rows"]);
    assert.equal(second.code, 0, second.stderr);
    const latest = (await latestVersionDir(join(run, "embeddings")))!;
    const files = (await Array.fromAsync(Deno.readDir(latest))).map((e) => e.name);
    assert.ok(files.some((n) => /output/.test(n)), `${latest}: ${files.join(", ")}\n${second.stderr}`);
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("review2: a published file removed from latest: the same refresh again does not say latest 'holds it'", async () => {
  const run = await makeRun();
  try {
    const data = join(run, "new.txt");
    await Deno.writeTextFile(data, "the dog sat on the mat\nthe dog ran to a cat\na dog sat\n".repeat(20));
    const first = await refresh([...base(run, data), "--formats", "vec"]);
    assert.equal(first.code, 0, first.stderr);
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

Deno.test("review2: two runs refreshed into one --out: a retry of the first is not 'held' by the second's version of the same step", async () => {
  const a = await makeRun(), b = await makeRun();
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
