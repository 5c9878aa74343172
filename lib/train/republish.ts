/**
 * Whether a run's `latest` version already holds what publishing now would write: a `--resume` of a
 * finished run takes no step, and publishing again would add a copy of the same vectors as a new version
 * (and move `latest` to it) on every scheduled call.
 *
 * @module
 */

import { isDeepStrictEqual } from "node:util";
import { join, resolve } from "node:path";
import { latestVersionDir, readEmbeddingsManifest } from "../export/publish.ts";

/** What a publication of the run would carry, compared with the latest version's manifest.json. */
export type PublicationKey = {
  /** The trainer's step: the checkpoint the vectors come from. */
  step: number;
  /** The epoch whose vectors are published under --keep-best (undefined without it). */
  keptEpoch: number | undefined;
  /** The run's formats and output rows (`--formats`, `--export-output`). */
  formats: readonly string[];
  exportOutput: boolean;
  /** The evaluation figures the publication's manifest would carry. */
  metrics: unknown;
};

/** The part of a version's manifest.json read here. */
type Manifest = {
  training?: { step?: unknown; keptEpoch?: unknown };
  refresh?: { checkpoint?: unknown };
  source?: { checkpoint?: unknown };
  metrics?: unknown;
  files?: { name?: unknown; bytes?: unknown }[];
};

/**
 * The latest version under `outRoot` when its manifest.json records the same step, kept epoch and metrics
 * as `key` and it holds exactly the files of `key`'s formats and output rows, each there with its recorded
 * size; otherwise null (nothing published, another step, a version another job wrote, other formats, a file
 * removed). A manifest that cannot be read is null too: publishing again is always safe.
 *
 * @example
 * ```ts
 * import { latestHoldingRun } from "./republish.ts";
 * const dir = await latestHoldingRun("/nonexistent/embeddings", {
 *   step: 116, keptEpoch: 1, formats: ["vec"], exportOutput: false, metrics: { coverage: {} },
 * });
 * console.assert(dir === null);
 * ```
 */
export async function latestHoldingRun(outRoot: string, key: PublicationKey): Promise<string | null> {
  return await latestHolding(outRoot, key.formats, key.exportOutput, (m) =>
    m.training?.step === key.step &&
    m.training?.keptEpoch === key.keptEpoch &&
    isDeepStrictEqual(m.metrics, JSON.parse(JSON.stringify(key.metrics ?? null))));
}

/**
 * The latest version under `outRoot` when a refresh or an export published it from the checkpoint file
 * `checkpoint` (its manifest's `refresh.checkpoint` or `source.checkpoint`, compared as absolute paths) and it holds exactly the files of
 * `formats` (and the output rows when `outputRows`), each whole; otherwise null. A refresh run again after
 * its refreshed checkpoint is published there has nothing to do (pipelines/refresh.ts); another version
 * (another run's into a shared root, other formats, a file removed) is published again.
 *
 * @example
 * ```ts
 * import { latestHoldingCheckpoint } from "./republish.ts";
 * const dir = await latestHoldingCheckpoint("/nonexistent/embeddings", "runs/x/checkpoints/ckpt-000000000010.fock", ["vec"], false);
 * console.assert(dir === null);
 * ```
 */
export async function latestHoldingCheckpoint(
  outRoot: string,
  checkpoint: string,
  formats: readonly string[],
  outputRows: boolean,
): Promise<string | null> {
  return await latestHolding(
    outRoot,
    formats,
    outputRows,
    (m) => {
      const from = m.refresh?.checkpoint ?? m.source?.checkpoint;
      return typeof from === "string" && resolve(from) === resolve(checkpoint);
    },
  );
}

/**
 * `outRoot`'s latest version when `same` accepts its manifest and it lists exactly `input.<f>` (and
 * `output.<f>` when `output`) for each format f, every file there with its recorded size; else null.
 */
async function latestHolding(
  outRoot: string,
  formats: readonly string[],
  output: boolean,
  same: (m: Manifest) => boolean,
): Promise<string | null> {
  try {
    const dir = await latestVersionDir(outRoot);
    if (!dir) return null;
    const m = await readEmbeddingsManifest(dir) as Manifest;
    if (!same(m) || !Array.isArray(m.files)) return null;
    const want = new Set(formats.flatMap((f) => [`input.${f}`, ...(output ? [`output.${f}`] : [])]));
    if (m.files.length !== want.size) return null;
    for (const f of m.files) {
      if (typeof f.name !== "string" || !want.has(f.name)) return null;
      const st = await Deno.stat(join(dir, f.name)).catch(() => null);
      if (!st?.isFile || st.size !== f.bytes) return null;
    }
    return dir;
  } catch {
    // unreadable or not JSON: publish again
    return null;
  }
}
