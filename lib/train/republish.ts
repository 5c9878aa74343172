/**
 * Whether a run's `latest` version already holds what publishing now would write: a `--resume` of a
 * finished run takes no step, and publishing again would add a copy of the same vectors as a new version
 * (and move `latest` to it) on every scheduled call.
 *
 * @module
 */

import { isDeepStrictEqual } from "node:util";
import { join } from "node:path";
import { latestVersionDir, readEmbeddingsManifest } from "../export/publish.ts";
import { checkpointStep } from "./checkpoint.ts";

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

/**
 * The latest version under `outRoot` when its manifest.json records the same step, kept epoch, formats,
 * output rows and metrics as `key` and every file it lists is there with its recorded size; otherwise
 * null (nothing published, another step, a version another job wrote, a file removed). A manifest that
 * cannot be read is null too: publishing again is always safe.
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
  try {
    const dir = await latestVersionDir(outRoot);
    if (!dir) return null;
    const m = await readEmbeddingsManifest(dir) as {
      training?: { step?: unknown; keptEpoch?: unknown };
      config?: { formats?: unknown; exportOutput?: unknown };
      metrics?: unknown;
      files?: { name?: unknown; bytes?: unknown }[];
    };
    const same = m.training?.step === key.step &&
      m.training?.keptEpoch === key.keptEpoch &&
      isDeepStrictEqual(m.config?.formats, [...key.formats]) &&
      m.config?.exportOutput === key.exportOutput &&
      isDeepStrictEqual(m.metrics, JSON.parse(JSON.stringify(key.metrics ?? null))) &&
      Array.isArray(m.files) && m.files.length > 0;
    if (!same) return null;
    for (const f of m.files!) {
      if (typeof f.name !== "string" || f.name.includes("/")) return null;
      const s = await Deno.stat(join(dir, f.name)).catch(() => null);
      if (!s?.isFile || s.size !== f.bytes) return null;
    }
    return dir;
  } catch {
    // unreadable or not JSON: publish again
    return null;
  }
}

/**
 * The step of the checkpoint whose vectors the latest version under `outRoot` holds, as its manifest.json
 * records it (a run's `training.step`, an export's `source.step`, a refresh's `refresh.checkpoint`);
 * undefined when nothing is published there or the manifest does not say. A refresh that finds its
 * refreshed checkpoint unpublished publishes it instead of training again (pipelines/refresh.ts).
 *
 * @example
 * ```ts
 * import { latestPublishedStep } from "./republish.ts";
 * console.assert((await latestPublishedStep("/nonexistent/embeddings")) === undefined);
 * ```
 */
export async function latestPublishedStep(outRoot: string): Promise<number | undefined> {
  try {
    const dir = await latestVersionDir(outRoot);
    if (!dir) return undefined;
    const m = await readEmbeddingsManifest(dir) as {
      training?: { step?: unknown };
      source?: { step?: unknown };
      refresh?: { checkpoint?: unknown };
    };
    const step = m.training?.step ?? m.source?.step ??
      (typeof m.refresh?.checkpoint === "string" ? checkpointStep(m.refresh.checkpoint) : undefined);
    return typeof step === "number" ? step : undefined;
  } catch {
    return undefined; // unreadable: nothing known to be published
  }
}
