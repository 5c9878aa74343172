/**
 * The train job's data: the corpus it prepares or reuses (`resolveData`: text prepared into `<out>/corpus`,
 * or a prepared folder or shards read where they are), its identity, and the checks of it that must come
 * before the training (settings a prepared corpus cannot apply, its draws).
 *
 * @module
 */

import { join } from "node:path";
import { UsageError } from "../core/errors.ts";
import { DENO_TASK, EXIT, ExitError } from "../core/exit_codes.ts";
import { pathExists as exists } from "../core/os_errors.ts";
import { replaceDir } from "../core/atomic.ts";
import { type CorpusManifest, readManifest } from "../io/manifest.ts";
import { classifyInputs } from "../io/detect.ts";
import { fingerprintChange, fingerprintInputs, type InputFingerprint } from "../io/fingerprint.ts";
import { type CorpusIdentity, manifestIdentity, textCorpusIdentity } from "./corpus_identity.ts";
import { prepareCorpus } from "../io/prepare.ts";
import { requireComplete, scanShards } from "../io/shards.ts";
import { readVocab } from "../io/vocab.ts";
import { FLAG_OF, subsampleDraws, type TrainConfig } from "./config.ts";

/**
 * The corpus settings that decide the prepared shards (the subsampling draws only when more than one, so
 * that a single-draw corpus prepared before draws existed is still reused).
 */
function corpusSettings(c: TrainConfig) {
  const draws = subsampleDraws(c);
  return {
    data: c.data,
    mode: c.mode,
    window: c.window,
    minCount: c.minCount,
    sample: c.sample,
    ...(draws > 1 ? { sampleDraws: draws, validation: c.validation } : {}),
    seed: c.seed,
    limitTokens: c.limitTokens,
  };
}

/**
 * Whether a corpus prepared with the settings `was` (its train-settings.json, less the inputs' fingerprint)
 * gives the run `c` exactly the data it would prepare: the same settings, and subsampling draws that give
 * every epoch the same draw — as many, or at least one per epoch on both sides (draw k does not depend on
 * their number, lib/io/draws.ts). Beyond draw 0 the positions left out depend on the held-out fraction.
 */
export function servesRun(was: Record<string, unknown>, c: TrainConfig): boolean {
  const now: Record<string, unknown> = corpusSettings(c);
  const rest = ({ sampleDraws: _n, validation: _v, ...other }: Record<string, unknown>) =>
    JSON.stringify(other);
  if (rest(was) !== rest(now)) return false;
  const N = Number(was.sampleDraws ?? 1), n = Number(now.sampleDraws ?? 1), E = c.epochs;
  if (!(N === n || (N >= E && n >= E))) return false;
  return E < 2 || N < 2 || was.validation === c.validation;
}

/**
 * The corpus a run trains on ({@link resolveData}): its folder and manifest, its vocabulary (read from
 * `vocabFile`; `""` for shards without vocab.tsv, whose ids are the words), its identity, and whether the
 * job prepared it from text (`prepared`) or took prepared shards as they are.
 */
export type ResolvedData = {
  dir: string;
  manifest: CorpusManifest;
  words: string[];
  counts: number[];
  identity: CorpusIdentity;
  vocabFile: string;
  prepared: boolean;
};

/**
 * Refuses a `--data` that does not exist (ExitError, exit 5, naming it). A new run checks it before its
 * `--out` is locked or looked at: a mistyped path into a folder that holds a run is this, not "already
 * holds a run (… a corpus prepared with other settings)" (exit 2); {@link resolveData} checks it again.
 */
export async function requireData(data: string): Promise<void> {
  if (data !== "brown" && !(await exists(data))) {
    throw new ExitError(
      EXIT.badData,
      `--data ${data}: no such file or folder (give 'brown', a text file or folder, or a folder of shards)`,
    );
  }
}

/**
 * Resolves `--data` to a corpus: a folder with manifest.json is used as it is; shards without one (a
 * folder, or a single `.arrow`/`.parquet` file, told by content) are read and checked once and used in
 * place ({@link scanShards}); text (or "brown") is prepared into `<out>/corpus`, reused when already
 * prepared with the same settings from inputs with the same content fingerprint. A binary file, or a
 * folder mixing shards and text, is refused (DataFormatError, exit 5).
 */
export async function resolveData(
  c: TrainConfig,
  log: (line: string) => void,
  opts: { complete?: boolean; expect?: { identity: CorpusIdentity; checkpoint: string } } = {},
): Promise<ResolvedData> {
  // a resumed run goes on only over the data its checkpoint trained on; checked before a changed text
  // is prepared, so the corpus it trained on stays
  const same = (identity: CorpusIdentity, why: string) => {
    if (!opts.expect || opts.expect.identity === identity) return identity;
    throw new ExitError(
      EXIT.noCheckpoint,
      `--resume ${opts.expect.checkpoint}: --data ${c.data} is not the data this checkpoint trained on (${why}); ` +
        `restore that data to resume, or start a new run on it (--overwrite or another --out)`,
    );
  };
  let dir: string;
  let identity: CorpusIdentity | undefined;
  let prepared = false;
  await requireData(c.data);
  if (c.data !== "brown" && (await exists(join(c.data, "manifest.json")))) {
    dir = c.data;
  } else {
    const inputs = c.data === "brown" ? null : await classifyInputs([c.data]);
    if (inputs?.kind === "shards") {
      if (opts.complete) await requireComplete(c.data);
      const s = await scanShards(c.data, inputs, log);
      const id = same(manifestIdentity(s.manifest), "its shards changed");
      checkCorpus(c, s.dir, s.manifest);
      return {
        dir: s.dir,
        manifest: s.manifest,
        words: s.vocab.words,
        counts: s.vocab.counts,
        identity: id,
        vocabFile: s.vocabFile,
        prepared: false,
      };
    }
    dir = join(c.out, "corpus");
    prepared = true;
    const fingerprint = await fingerprintInputs(c.data);
    const settings = JSON.stringify({ ...corpusSettings(c), inputs: fingerprint });
    const stamp = join(dir, "train-settings.json");
    let change = "not prepared yet";
    if ((await exists(join(dir, "manifest.json"))) && (await exists(stamp))) {
      let was: Record<string, unknown> = {};
      try {
        was = JSON.parse(await Deno.readTextFile(stamp));
      } catch { /* an unreadable stamp: prepare again */ }
      const { inputs: wasInputs, ...wasSettings } = was;
      change = !servesRun(wasSettings, c)
        ? "other settings"
        : fingerprintChange(wasInputs as InputFingerprint | undefined, fingerprint);
    }
    identity = same(
      textCorpusIdentity(corpusSettings(c), fingerprint),
      change === "not prepared yet" ? "its text or preparation settings changed" : change,
    );
    if (!change) {
      log(
        `corpus: reusing ${dir} (prepared with the same settings from the same input content, ${fingerprint.method})`,
      );
    } else {
      log(
        `corpus: preparing ${c.data} into ${dir} (${change}; mode ${c.mode}, window ${c.window}, min-count ${c.minCount}` +
          `${subsampleDraws(c) > 1 ? `, ${subsampleDraws(c)} subsampling draws` : ""})`,
      );
      const t0 = performance.now();
      // prepared under a temporary name and swapped in when complete: the old corpus stays until then
      await replaceDir(dir, async (tmp) => {
        await prepareCorpus({
          input: c.data,
          outDir: tmp,
          mode: c.mode,
          window: c.window,
          minCount: c.minCount,
          sample: c.sample,
          sampleDraws: subsampleDraws(c),
          holdOut: c.validation,
          seed: c.seed,
          ...(c.limitTokens > 0 ? { limitTokens: c.limitTokens } : {}),
          onNotice: (line) => log(`corpus: ${line}`),
        });
        await Deno.writeTextFile(join(tmp, "train-settings.json"), settings);
      });
      log(`corpus: prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  const manifest = await readManifest(dir);
  identity ??= same(manifestIdentity(manifest), "its manifest.json changed: the corpus was prepared again");
  checkCorpus(c, dir, manifest);
  const vocabFile = join(dir, manifest.vocabFile);
  const { words, counts } = await readVocab(vocabFile, { expectedSize: manifest.vocabSize });
  return { dir, manifest, words, counts, identity, vocabFile, prepared };
}

/**
 * Says how the run uses its corpus, once nothing more refuses it ({@link refuseUnappliedSettings} comes
 * first, so that no line says what would train before the one that refuses it): the window a prepared
 * corpus was prepared with when it is not the run's `--window` (a recipe's, or a resume's; its windows
 * train), and how the epochs read a subsampled corpus: each its own draw, or (fewer draws than epochs)
 * cycling.
 */
export function logCorpusUse(data: ResolvedData, c: TrainConfig, log: (line: string) => void): void {
  const m = data.manifest;
  const window = m.source?.window;
  if (typeof window === "number" && window !== c.window) {
    log(
      `corpus: --data ${data.dir} was prepared with window ${window}, so its windows train, not --window ${c.window} ` +
        `(prepare it again with --window ${c.window} to train those)`,
    );
  }
  const n = m.draws?.length ?? 1, sample = Number(m.source?.sample ?? 0);
  if (n > 1 && m.source?.holdOut !== c.validation) {
    log(
      `corpus: its draws 1-${
        n - 1
      } leave out the windows a --validation of ${m.source?.holdOut} holds out, ` +
        `not ${c.validation}: the held-out loss also sees windows trained in other draws ` +
        `(prepare it with --hold-out ${c.validation})`,
    );
  }
  if (!(sample > 0) || c.epochs < 2) return;
  if (n >= c.epochs) log(`corpus: ${n} subsampling draws, one per epoch`);
  else {
    log(
      `corpus: ${n} subsampling draw(s) for ${c.epochs} epochs: epoch e reads draw e mod ${n}` +
        (n === 1 ? " (every epoch the same windows; --sample-draws, docs/training-defaults.md)" : ""),
    );
  }
}

/**
 * The corpus's windows fit --mode and it has examples. (A prepared corpus keeps the window it was prepared
 * with: {@link logCorpusUse} says so.)
 */
function checkCorpus(c: TrainConfig, dir: string, manifest: CorpusManifest): void {
  if (manifest.mode !== "external" && manifest.mode !== c.mode) {
    throw new UsageError(
      `--data ${dir} holds ${manifest.mode} windows but --mode is ${c.mode}: train them with --mode ${manifest.mode}, ` +
        `or prepare it again with --mode ${c.mode}`,
    );
  }
  if (manifest.rows === 0) throw new ExitError(EXIT.badData, `--data ${dir}: the corpus has no examples`);
}

/** The fields of TrainConfig that only preparing text applies (the corpus job's flags of the same names). */
const PREPARATION_FIELDS = ["minCount", "window", "sample", "sampleDraws", "limitTokens"] as const;

/**
 * Refuses (UsageError, exit 2) a preparation setting given explicitly (flag or --config) for a new run on
 * prepared shards when the shards were not prepared with that value: train applies it only when it prepares
 * text, so the run would train on other data than asked for. Recipe defaults are not given, and a resume
 * keeps its checkpoint's settings (checked against it), so neither is refused. Called before
 * {@link logCorpusUse}: the refusal is the job's one line.
 */
export function refuseUnappliedSettings(
  c: TrainConfig,
  explicit: Set<keyof TrainConfig>,
  data: ResolvedData,
): void {
  if (data.prepared) return;
  const src = data.manifest.source ?? {};
  for (const key of PREPARATION_FIELDS) {
    if (!explicit.has(key)) continue;
    const was = key === "sampleDraws" ? (data.manifest.draws?.length ?? 1) : src[key];
    if (typeof was === "number" && was === c[key]) continue;
    const flag = FLAG_OF[key];
    const how = typeof was === "number"
      ? `prepared with ${flag} ${was}`
      : src.scanned !== undefined
      ? "without manifest.json: prepared with settings it does not record"
      : `its manifest.json records no ${flag}`;
    throw new UsageError(
      `${flag} ${c[key]} cannot apply to --data ${c.data}: it holds prepared shards (${how}), and train ` +
        `applies ${flag} only to the text it prepares; prepare the corpus again with it (${DENO_TASK} corpus ` +
        `--input TEXT --out DIR ${flag} ${c[key]} …, then train --data DIR), or leave ${flag} out`,
    );
  }
}
