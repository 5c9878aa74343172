/**
 * What the refresh job (pipelines/refresh.ts) checks about its inputs before it works: that `--from` is a
 * run folder (not one of its parts, a publication or a checkpoint file), how the run's corpus was prepared
 * (so that new text is tokenised and windowed the same way, and a prepared `--data` made otherwise is
 * said), and the mark a refresh leaves in its checkpoint, by which `train --resume` knows a refreshed run.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { UsageError } from "../core/errors.ts";
import { DENO_TASK, EXIT, ExitError } from "../core/exit_codes.ts";
import { refuseInsidePublication, resolveReal, shellWord } from "../core/cli.ts";
import { pathExists as exists } from "../core/os_errors.ts";
import { classifyInputs } from "../io/detect.ts";
import { type CorpusManifest, readManifest } from "../io/manifest.ts";
import type { Checkpoint } from "./checkpoint.ts";
import type { TrainConfig } from "./config.ts";
import { manifestIdentity } from "./corpus_identity.ts";

/**
 * The settings a corpus was prepared with that decide its words and windows (a corpus manifest's
 * `source`): `dynamicWindow` and `weights` only when recorded.
 */
export type Preparation = {
  lowercase: boolean;
  punctuation: "strip" | "keep";
  sentences: "line" | "punct";
  window: number;
  sample: number;
  dynamicWindow?: boolean;
  weights?: "distance" | "uniform" | "none";
};

/**
 * The mark of a refreshed run: the `--data` of the refresh that last trained it or grew its vocabulary,
 * and how the run's corpus was prepared (for the next refresh's new text).
 */
export type RefreshMark = { data: string; preparation?: Preparation };

/**
 * What a refresh records in its checkpoints (`meta.refresh`), one object: the run's mark (`data`,
 * `preparation`; see {@link refreshMark}), set by a refresh that trains or grows the vocabulary and carried
 * on by one that does neither, so that `train --resume` keeps refusing a refreshed run; and, in the
 * checkpoint a refresh commits into the run, its `commit`: the request (the data's identity, --epochs,
 * --lr, --min-count) that a rerun of the same command compares, and what its publication says, so that
 * the rerun can publish it instead of training on the data twice.
 */
export type RefreshMeta = Partial<RefreshMark> & { commit?: RefreshCommit };

/** The `commit` of {@link RefreshMeta}. */
export type RefreshCommit = {
  request: string;
  corpus: { data: string; dir: string; rows: number; tokens: number; refreshOf: string };
  from: string;
  newWords: number;
  previousVocabularySize: number;
  epochs: number;
  training?: unknown;
};

/** The corpus job's flag of each {@link Preparation} field. */
const FLAG: Record<keyof Preparation, string> = {
  lowercase: "--lowercase",
  punctuation: "--punctuation",
  sentences: "--sentences",
  window: "--window",
  sample: "--sample",
  dynamicWindow: "--dynamic-window",
  weights: "--weights",
};

/** The preparation a corpus manifest's `source` records, or undefined when it lacks a setting. */
function fromSource(src: Record<string, unknown> | undefined): Preparation | undefined {
  if (!src) return undefined;
  const { lowercase, punctuation, sentences, window, sample, dynamicWindow, weights } = src;
  if (
    typeof lowercase !== "boolean" || (punctuation !== "strip" && punctuation !== "keep") ||
    (sentences !== "line" && sentences !== "punct") || typeof window !== "number" ||
    typeof sample !== "number"
  ) return undefined;
  return {
    lowercase,
    punctuation,
    sentences,
    window,
    sample,
    ...(typeof dynamicWindow === "boolean" ? { dynamicWindow } : {}),
    ...(weights === "distance" || weights === "uniform" || weights === "none" ? { weights } : {}),
  };
}

/**
 * How the corpus the run trained on was prepared, and where that was read from; or `unknown`, why it
 * cannot be known. In order: what an earlier refresh recorded in the run's newest checkpoint; the
 * manifest of a prepared corpus folder the run trained on (`--data C`; unless it was prepared again since:
 * the run's recorded corpus identity); `<from>/corpus`, the text train prepared for the run; for a run
 * trained on text (or brown) train's own preparation: the default tokenisation, the run's window and
 * sample. A run trained on shards whose settings are not recorded (no manifest.json), or on a corpus
 * folder that is gone or was prepared again, is `unknown`.
 *
 * @example
 * ```ts ignore
 * const p = await runPreparation("runs/x", trainer.config, newest.checkpoint);
 * if ("unknown" in p) console.log(p.unknown);
 * ```
 */
export async function runPreparation(
  from: string,
  cfg: TrainConfig,
  newest: Checkpoint,
): Promise<{ preparation: Preparation; origin: string } | { unknown: string }> {
  const mark = refreshMark(newest);
  const recorded = fromSource(mark?.preparation);
  if (recorded) return { preparation: recorded, origin: "the run's last refresh" };
  const identity = (newest.meta.run as { corpus?: string } | null | undefined)?.corpus;
  const data = cfg.data;
  // only how the run's corpus was prepared is read here, nothing trains on it: a shard its manifest does
  // not list is no matter
  if (data !== "brown" && await exists(join(data, "manifest.json"))) {
    const m = await readManifest(data, { unlisted: "ignore" }).catch(() => undefined) as
      | CorpusManifest
      | undefined;
    if (m && identity?.startsWith("corpus:") && manifestIdentity(m) !== identity) {
      return { unknown: `was prepared again after the run trained on it` };
    }
    const p = fromSource(m?.source);
    if (p) return { preparation: p, origin: join(data, "manifest.json") };
    return { unknown: `records no preparation settings in its manifest.json` };
  }
  const own = await readManifest(join(from, "corpus"), { unlisted: "ignore" }).catch(() => undefined);
  const p = fromSource(own?.source);
  if (p) return { preparation: p, origin: join(from, "corpus", "manifest.json") };
  const trainDefaults = {
    preparation: {
      lowercase: true,
      punctuation: "strip",
      sentences: "line",
      window: cfg.window,
      sample: cfg.sample,
    } as Preparation,
    origin: `train's preparation of the text ${data}`,
  };
  if (data === "brown" || identity?.startsWith("text:")) return trainDefaults;
  if (identity?.startsWith("corpus:")) {
    return {
      unknown: (await exists(data))
        ? "holds shards without manifest.json, which records no preparation settings"
        : "is not there any more",
    };
  }
  // no identity recorded (an older checkpoint): what the data is now
  if (!(await exists(data))) return { unknown: "is not there any more" };
  const kind = await classifyInputs([data]).then((c) => c.kind, () => undefined);
  if (kind === "text") return trainDefaults;
  return { unknown: "holds shards without manifest.json, which records no preparation settings" };
}

/**
 * The refusal (exit 5) of new text that cannot be prepared as the run's corpus was: the line names the
 * corpus job's flags to prepare it with, then give the prepared folder as `--data`.
 *
 * @example
 * ```ts
 * import { unknownPreparation } from "./refresh_inputs.ts";
 * const e = unknownPreparation("runs/x", "C", "is not there any more", "new.txt", "cbow");
 * console.log(e.code); // 5
 * ```
 */
export function unknownPreparation(
  from: string,
  data: string,
  why: string,
  text: string,
  mode: string,
): ExitError {
  return new ExitError(
    EXIT.badData,
    `--from ${from}: the corpus its run trained on (--data ${data}) ${why}, so how it was tokenised and windowed ` +
      `is unknown and --data ${text} cannot be prepared the same way; prepare it as that corpus was ` +
      `(${DENO_TASK} corpus --input ${shellWord(text)} --out DIR --mode ${mode} --lowercase true|false ` +
      `--punctuation strip|keep --sentences line|punct --window N --sample T), then refresh with --data DIR`,
  );
}

/**
 * The settings of a prepared corpus (`source` of its manifest) that differ from the run's preparation,
 * as `--window 1 (the run's 5)`; empty when they agree or the corpus records none of them.
 *
 * @example
 * ```ts
 * import { preparationDifferences } from "./refresh_inputs.ts";
 * const run = { lowercase: true, punctuation: "strip" as const, sentences: "line" as const, window: 5, sample: 0 };
 * console.log(preparationDifferences({ ...run, window: 1 }, run)); // ["--window 1 (the run's 5)"]
 * ```
 */
export function preparationDifferences(
  source: Record<string, unknown> | undefined,
  run: Preparation,
): string[] {
  const out: string[] = [];
  for (const key of Object.keys(FLAG) as (keyof Preparation)[]) {
    const was = source?.[key], want = run[key];
    if (was === undefined || want === undefined || was === want) continue;
    out.push(`${FLAG[key]} ${was} (the run's ${want})`);
  }
  return out;
}

/**
 * Refuses a `--from` that is not a run folder but a part of one (its `checkpoints/`, `corpus/`,
 * `refresh-staging/` or `embeddings/`), a publication (a version, `latest`, a root's `versions/`), or a
 * checkpoint file: UsageError (exit 2) naming the run folder to give, before any lock is taken there (a
 * refresh wrote `run.lock` into a published version, and its advice, `train --out <from>`, wrote a run
 * into the run's own folders).
 *
 * @example
 * ```ts
 * import { refuseNotRunFolder } from "./refresh_inputs.ts";
 * await refuseNotRunFolder("/no/such/run"); // nothing there: not refused here
 * ```
 */
export async function refuseNotRunFolder(from: string): Promise<void> {
  const st = await Deno.stat(from).catch(() => undefined);
  if (!st) return;
  const give = (what: string, run: string | undefined) =>
    new UsageError(
      `--from ${from} is ${what}, not a run folder: ` +
        (run !== undefined
          ? `give the run folder ${run}`
          : "give the run folder (the one holding checkpoints/ and embeddings/)"),
    );
  const real = await resolveReal(from);
  const runAbove = async (dir: string) =>
    (await Deno.stat(join(dir, "checkpoints")).catch(() => undefined))?.isDirectory === true;
  const parentOf = (p: string) => dirname(p.replace(/\/+$/, "") || "/");
  if (!st.isDirectory) {
    const ck = parentOf(from);
    throw give(
      /\.fock$/.test(from) ? "a checkpoint file" : "a file",
      basename(dirname(real)) === "checkpoints" ? parentOf(ck) : undefined,
    );
  }
  await refuseInsidePublication(from, "--from", (root) => {
    const run = dirname(root);
    return basename(root) === "embeddings"
      ? `give the run folder whose embeddings these are (${run}), not a publication`
      : "give the run folder whose embeddings these are, not a publication";
  });
  if (await runAbove(real)) return;
  const part = basename(real);
  if (
    ["checkpoints", "corpus", "refresh-staging", "embeddings"].includes(part) && await runAbove(dirname(real))
  ) {
    throw give(`the ${part}/ folder of a run`, parentOf(from));
  }
  const isLink = await Deno.lstat(join(real, "latest")).then((s) => s.isSymlink, () => false);
  if (isLink) throw give("a publication root", undefined);
}

/**
 * The mark of a refresh in a checkpoint's meta (`meta.refresh`), or undefined for one a train job wrote.
 *
 * @example
 * ```ts
 * import { refreshMark } from "./refresh_inputs.ts";
 * console.log(refreshMark({ meta: { refresh: { data: "new.txt" } }, arrays: {} })?.data); // "new.txt"
 * ```
 */
export function refreshMark(ckpt: Checkpoint): RefreshMark | undefined {
  const m = ckpt.meta.refresh as RefreshMeta | undefined;
  if (!m || typeof m.data !== "string") return undefined;
  return { data: m.data, ...(m.preparation ? { preparation: m.preparation } : {}) };
}
