// A refreshable run for the refresh tests: one checkpoint of a tiny js model and one published version "v0".
import { join } from "node:path";
import { publishEmbeddings } from "../lib/export/publish.ts";
import { resolveConfig, type TrainConfig } from "../lib/train/config.ts";
import { Trainer } from "../lib/train/trainer.ts";

/** The run's vocabulary. */
export const WORDS = ["the", "cat", "sat", "on", "mat", "a"];
const quiet = () => {};

/** A run folder with one checkpoint (js backend, tiny model; `over` its config) and one published version "v0". */
export async function makeRun(
  over: Partial<TrainConfig> = {},
): Promise<{ run: string; E: Float32Array; W: Float32Array; dOut: number }> {
  const run = await Deno.makeTempDir({ prefix: "refresh_test_" });
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
    ...over,
  });
  const t = await Trainer.create({
    config,
    vocab: { words: WORDS, counts: [60, 50, 40, 30, 20, 10] },
    log: quiet,
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
    return { run, E: e.input, W: e.output!, dOut: e.dOut };
  } finally {
    t.close();
  }
}
