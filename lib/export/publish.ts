/**
 * Atomic, versioned publication of embeddings for downstream services.
 *
 * Layout under `outRoot`:
 *
 * ```
 * outRoot/
 *   versions/<version>/        one complete, immutable version
 *     input.vec input.bin input.arrow input.parquet     (the input embeddings, the formats asked for)
 *     output.vec …             (optional: rows of the output matrix W = VU + 𝟙ωᵀ)
 *     eval.json                (optional: the whole evaluation report, when the job evaluated)
 *     manifest.json            (dims, vocabularySize, corpus, metrics, config, date, files with bytes+sha256)
 *   latest -> versions/<version>   a relative symlink, the one pointer readers follow
 * ```
 *
 * Protocol: everything is written into `versions/<version>.<pid>-<random>.tmp/` (the project's one
 * temporary name, lib/core/atomic.ts `tempNameFor`; each file itself tmp + fsync + rename), the directory
 * is fsynced and renamed to `versions/<version>/`, and only then is `latest` moved, by creating a
 * temporary symlink and renaming it over `latest` (rename(2) is atomic). A crash or an error at any point
 * leaves `latest` on the previous complete version; a failed publish removes its `.tmp` directory (a kill
 * -9 leaves one behind: {@link removeStaleTemps}, which every publishing job calls first, removes those of
 * dead processes: the pid in the name tells a live publisher's from a dead one's).
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { join } from "node:path";
import { UsageError } from "../core/errors.ts";
import { writeArrowEmbeddings } from "./arrow.ts";
import { parseTempName, removeStaleDirTemps, syncDir, tempNameFor, writeFileAtomic } from "../core/atomic.ts";
import { type HeldLock, lockJob, pidAlive } from "../core/lock.ts";
import { checkEmbeddings, type Embeddings } from "./embeddings.ts";
import { writeParquetEmbeddings } from "./parquet.ts";
import { EMBEDDING_FORMATS, type EmbeddingFormat } from "./read.ts";
import { writeWord2VecBinary, writeWord2VecText } from "./word2vec.ts";
import { holdingStop, removeAtExit } from "../core/stop.ts";
import { describeOsError, withPath } from "../core/os_errors.ts";

/**
 * Options of {@link publishEmbeddings}.
 *
 * @example
 * ```ts
 * import type { PublishOptions } from "./publish.ts";
 * const o: PublishOptions = { outRoot: "out/embeddings", words: ["a"], input: Float32Array.of(1, 2), d: 2, manifest: {} };
 * ```
 */
export type PublishOptions = {
  /** The root folder: versions/ and the `latest` symlink live here. */
  outRoot: string;
  /** The vocabulary, V words, row order of `input` and `output`. */
  words: string[];
  /** Input embeddings, V×d row-major. */
  input: Float32Array;
  /** Optional output rows of W, V×outputDim row-major. */
  output?: Float32Array;
  /** Dimension of the input embeddings. */
  d: number;
  /** Columns of `output` when it differs from d (e.g. a bias feature); default d. */
  outputDim?: number;
  /** Formats to write; default all four. */
  formats?: EmbeddingFormat[];
  /** Caller's fields for manifest.json (corpus, metrics, config, …); dims, vocabularySize, date and files are added. */
  manifest: Record<string, unknown>;
  /**
   * The whole evaluation report (any JSON), written as `eval.json` beside the embedding files and named by
   * the manifest's `evaluation` ({@link EVAL_FILE}); the compact figures go into the manifest's `metrics`.
   */
  evaluation?: unknown;
  /** Version name; default a UTC timestamp plus a random suffix, e.g. `20261127T221530Z-3fa2`. */
  version?: string;
  /** The publication date; default now. */
  now?: Date;
  /**
   * Called (and awaited) once `latest` points at the new version, before a stop signal that came during
   * the last renames takes effect (lib/core/stop.ts `holdingStop`): where a job updates its stop note and
   * writes what must go with the publication (train's summary.json). An error it throws is the
   * publication's error, with `latest` left on the new version.
   */
  committed?: (published: PublishResult) => void | Promise<void>;
};

/**
 * What {@link publishEmbeddings} returns: the version's name, its folder and the paths of its embedding
 * files and manifest.json, last ({@link versionFiles}; eval.json, named by the manifest, is not listed).
 *
 * @example
 * ```ts
 * import type { PublishResult } from "./publish.ts";
 * const r: PublishResult = { version: "v1", versionDir: "out/versions/v1", files: ["out/versions/v1/input.vec"] };
 * ```
 */
export type PublishResult = { version: string; versionDir: string; files: string[] };

/**
 * One file entry of manifest.json.
 *
 * @example
 * ```ts
 * import type { ManifestFileEntry } from "./publish.ts";
 * const f: ManifestFileEntry = { name: "input.vec", role: "input", format: "vec", bytes: 10, sha256: "ab…" };
 * ```
 */
export type ManifestFileEntry = {
  name: string;
  role: "input" | "output";
  format: EmbeddingFormat;
  bytes: number;
  sha256: string;
};

/** The name of a version's evaluation report ({@link PublishOptions.evaluation}): `eval.json`. */
export const EVAL_FILE = "eval.json";

/**
 * The paths of a published version's files from its manifest.json: its embedding files (`files`, in
 * their order) and manifest.json last; what {@link publishEmbeddings} returns as `files`, and what a job
 * names for a version it found already published. The evaluation report (`eval.json`) is not listed:
 * readers of `files` take every entry but manifest.json for an embedding file; the manifest's
 * `evaluation` names it.
 *
 * @example
 * ```ts
 * import { versionFiles } from "./publish.ts";
 * versionFiles("out/versions/v1", { files: [{ name: "input.vec" }] });
 * // ["out/versions/v1/input.vec", "out/versions/v1/manifest.json"]
 * ```
 */
export function versionFiles(versionDir: string, manifest: { files?: unknown }): string[] {
  const names = (Array.isArray(manifest.files) ? manifest.files : [])
    .map((f) => (f as { name?: unknown })?.name)
    .filter((n): n is string => typeof n === "string");
  return [...names, "manifest.json"].map((n) => join(versionDir, n));
}

/**
 * A version name from a date: `YYYYMMDDTHHMMSSZ-xxxx` (UTC, sortable, random 16-bit suffix).
 *
 * @example
 * ```ts
 * import { makeVersionName } from "./publish.ts";
 * makeVersionName(new Date("2026-11-27T22:15:30Z")); // "20261127T221530Z-…"
 * ```
 */
export function makeVersionName(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const rand = crypto.getRandomValues(new Uint16Array(1))[0].toString(16).padStart(4, "0");
  return `${stamp}-${rand}`;
}

/**
 * The sha256 of a file, hex, streaming.
 *
 * @example
 * ```ts
 * import { sha256File } from "./publish.ts";
 * await Deno.writeTextFile("/tmp/h.txt", "abc");
 * await sha256File("/tmp/h.txt"); // "ba7816bf…"
 * ```
 */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  const f = await Deno.open(path, { read: true });
  for await (const chunk of f.readable) h.update(chunk);
  return h.digest("hex");
}

/** The writer of each format; each gives `digest` the bytes it writes (lib/core/atomic.ts). */
const WRITERS: Record<
  EmbeddingFormat,
  (path: string, e: Embeddings, opts: { digest: Hash }) => Promise<void>
> = {
  vec: writeWord2VecText,
  bin: writeWord2VecBinary,
  arrow: writeArrowEmbeddings,
  parquet: writeParquetEmbeddings,
};

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Writes a complete embedding version and then moves `latest` to it (see the module doc for the
 * protocol). Throws {@link UsageError} for bad shapes, formats or an existing version name; on any
 * failure `latest` still points at the previous version, except for two failures after `latest` was
 * moved, which leave the new version published: the fsync of `outRoot` that follows the rename, and an
 * error thrown by `committed`.
 *
 * @example
 * ```ts
 * import { publishEmbeddings } from "./publish.ts";
 * const root = await Deno.makeTempDir();
 * const { version, versionDir, files } = await publishEmbeddings({
 *   outRoot: root, words: ["a", "b"], input: Float32Array.of(1, 0, 0, 1), d: 2,
 *   formats: ["vec", "parquet"], manifest: { corpus: "toy" },
 * });
 * ```
 */
export async function publishEmbeddings(opts: PublishOptions): Promise<PublishResult> {
  const { outRoot, words, input, output, d } = opts;
  const outputDim = opts.outputDim ?? d;
  const formats = opts.formats ?? [...EMBEDDING_FORMATS];
  if (formats.length === 0) {
    throw new UsageError("publishEmbeddings: formats is empty; give at least one of vec,bin,arrow,parquet");
  }
  for (const f of formats) {
    if (!EMBEDDING_FORMATS.includes(f)) {
      throw new UsageError(
        `publishEmbeddings: unknown format ${JSON.stringify(f)}; use vec, bin, arrow or parquet`,
      );
    }
  }
  if (words.length === 0) {
    throw new UsageError("publishEmbeddings: no words (0 rows): an empty version is never published");
  }
  // a word on two rows: readEmbeddings (eval --vectors, export --vectors) refuses such a file
  const seen = new Map<string, number>();
  for (let i = 0; i < words.length; i++) {
    const first = seen.get(words[i]);
    if (first !== undefined) {
      throw new UsageError(
        `publishEmbeddings: word ${JSON.stringify(words[i])} is on rows ${first} and ${i} (0-based); ` +
          `every word must be on one row`,
      );
    }
    seen.set(words[i], i);
  }
  checkEmbeddings(words, input, d, "publishEmbeddings input");
  if (output) checkEmbeddings(words, output, outputDim, "publishEmbeddings output");
  const now = opts.now ?? new Date();
  const version = opts.version ?? makeVersionName(now);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(version) || version.endsWith(".tmp")) {
    throw new UsageError(
      `publishEmbeddings: bad version name ${JSON.stringify(version)} (letters, digits, . _ -)`,
    );
  }
  const versionsDir = join(outRoot, "versions");
  await withPath("cannot create folder", versionsDir, () => Deno.mkdir(versionsDir, { recursive: true }));
  const versionDir = join(versionsDir, version);
  // the pid in the name: a kill -9 leaves this folder, and the next publisher removes it once this process
  // is gone (removeStaleTemps), never while it runs
  const tmpDir = tempNameFor(versionDir);
  if (await exists(versionDir)) {
    throw new UsageError(`publishEmbeddings: version ${versionDir} already exists`);
  }
  const rival = (await Array.fromAsync(Deno.readDir(versionsDir))).find((e) => {
    const t = parseTempName(e.name);
    return e.name === `${version}.tmp` || (t?.base === version && pidAlive(t.pid));
  });
  if (rival) {
    throw new UsageError(
      `publishEmbeddings: ${join(versionsDir, rival.name)} exists (another publish of version ${version} ` +
        `in progress, or a crashed one)`,
    );
  }
  // a stop signal while writing removes the unfinished version (lib/core/stop.ts); registered before the
  // folder exists: a stop while the mkdir runs (or just after it) left it behind under a line saying removed.
  // The mkdir holds the signal: one that fails (the folder is another publisher's) is forgotten before the
  // exit cleanups run, which would otherwise remove that publisher's folder
  const forget = removeAtExit(tmpDir);
  await holdingStop(async () => {
    try {
      await Deno.mkdir(tmpDir); // not recursive: fails if the name is taken (never another job's: its pid)
    } catch (e) {
      forget();
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new UsageError(
          `publishEmbeddings: ${tmpDir} exists (another publish in progress, or a crashed one)`,
        );
      }
      throw describeOsError(e, "cannot create folder", tmpDir) ?? e;
    }
  });
  let renamed = false;
  try {
    const entries: ManifestFileEntry[] = [];
    const sets: { role: "input" | "output"; e: Embeddings }[] = [{
      role: "input",
      e: { words, vectors: input, d },
    }];
    if (output) sets.push({ role: "output", e: { words, vectors: output, d: outputDim } });
    for (const { role, e } of sets) {
      for (const format of formats) {
        const name = `${role}.${format}`;
        const path = join(tmpDir, name);
        // hashed as it is written, not read back (a read takes new memory for every chunk: BENCHMARKS.md,
        // "The job outside the training loop")
        const digest = createHash("sha256");
        await WRITERS[format](path, e, { digest });
        const bytes = (await Deno.stat(path)).size;
        entries.push({ name, role, format, bytes, sha256: digest.digest("hex") });
      }
    }
    let evaluation: { name: string; bytes: number; sha256: string } | null = null;
    if (opts.evaluation !== undefined) {
      const path = join(tmpDir, EVAL_FILE);
      const digest = createHash("sha256");
      await writeFileAtomic(path, JSON.stringify(opts.evaluation, null, 2) + "\n", { digest });
      evaluation = { name: EVAL_FILE, bytes: (await Deno.stat(path)).size, sha256: digest.digest("hex") };
    }
    const manifest = {
      corpus: null,
      metrics: null,
      config: null,
      ...opts.manifest,
      evaluation,
      format: "factorout-embeddings",
      formatVersion: 1,
      version,
      date: now.toISOString(),
      dims: d,
      outputDims: output ? outputDim : null,
      vocabularySize: words.length,
      hasOutput: output !== undefined,
      latestPointer: "symlink outRoot/latest -> versions/<version>",
      files: entries,
    };
    await writeFileAtomic(join(tmpDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    await syncDir(tmpDir);
    if (await exists(versionDir)) {
      throw new UsageError(`publishEmbeddings: version ${versionDir} appeared meanwhile`);
    }
    // a signal here stops the job once latest points at the new version (or the version is left complete)
    const published: PublishResult = { version, versionDir, files: versionFiles(versionDir, manifest) };
    // under the root's lock: no other publisher prunes between the rename and the move of latest (it would
    // see this version as the newest, not yet latest, and remove it: latest would point at nothing)
    const lock = await lockPublication(outRoot);
    let locked = true;
    const unlock = async () => {
      if (!locked) return;
      locked = false;
      await lock.release();
    };
    try {
      await holdingStop(async () => {
        await Deno.rename(tmpDir, versionDir);
        renamed = true;
        try {
          await syncDir(versionsDir);
          await moveLatest(outRoot, version);
        } catch (e) {
          // not published: removed, so that what the job says (an error, or a stop held meanwhile) is
          // true; unless latest was moved already (the root's fsync failed after the rename): removing the
          // version would leave latest pointing at nothing
          const latest = await latestVersionDir(outRoot).catch(() => null);
          if (latest !== versionDir) await Deno.remove(versionDir, { recursive: true }).catch(() => {});
          throw e;
        }
        // latest points at it: the lock goes before `committed`, which may prune this root (under the lock)
        await unlock();
        await opts.committed?.(published);
      });
    } finally {
      await unlock();
    }
    return published;
  } catch (e) {
    if (!renamed) await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
    throw e;
  } finally {
    forget();
  }
}

/**
 * Moves `outRoot/latest` to `versions/<version>` atomically (temporary symlink renamed over it), under
 * the root's lock ({@link lockPublication}: no pruning job removes the version meanwhile). The version
 * folder must exist and be complete (hold a manifest.json).
 *
 * @example
 * ```ts
 * import { pointLatest } from "./publish.ts";
 * // await pointLatest("out/embeddings", "20261127T221530Z-3fa2"); // e.g. a rollback
 * ```
 */
export async function pointLatest(outRoot: string, version: string): Promise<void> {
  const lock = await lockPublication(outRoot);
  try {
    await moveLatest(outRoot, version);
  } finally {
    await lock.release();
  }
}

/** {@link pointLatest} under the root's lock, which the caller holds. */
async function moveLatest(outRoot: string, version: string): Promise<void> {
  const target = join("versions", version);
  if (!(await exists(join(outRoot, target, "manifest.json")))) {
    throw new UsageError(
      `pointLatest: ${join(outRoot, target)} is not a complete version (no manifest.json)`,
    );
  }
  const latest = join(outRoot, "latest");
  try {
    const st = await Deno.lstat(latest);
    if (!st.isSymlink) {
      throw new UsageError(
        `${latest} exists and is not a symlink; move it away so that latest can be published`,
      );
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const tmp = tempNameFor(latest);
  const forget = removeAtExit(tmp);
  await Deno.symlink(target, tmp);
  try {
    await Deno.rename(tmp, latest);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  } finally {
    forget();
  }
  await syncDir(outRoot);
}

/**
 * The folder `latest` points to, or null when nothing has been published under `outRoot`.
 *
 * @example
 * ```ts
 * import { latestVersionDir } from "./publish.ts";
 * const dir = await latestVersionDir("out/embeddings"); // "out/embeddings/versions/2026…" or null
 * ```
 */
export async function latestVersionDir(outRoot: string): Promise<string | null> {
  try {
    const target = await Deno.readLink(join(outRoot, "latest"));
    return target.startsWith("/") ? target : join(outRoot, target);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Reads `manifest.json` of a version folder (or of `latest` when given the root).
 *
 * @example
 * ```ts
 * import { readEmbeddingsManifest } from "./publish.ts";
 * // const m = await readEmbeddingsManifest("out/embeddings/latest"); console.log(m.vocabularySize);
 * ```
 */
export async function readEmbeddingsManifest(versionDir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(join(versionDir, "manifest.json")));
}

/**
 * Removes what publishes killed by a signal they could not catch (kill -9, a crash, a power cut) left
 * under `outRoot`: `versions/<version>.<pid>-<random>.tmp/` folders, `latest.<pid>-<random>.tmp`
 * links and `publish.lock.<pid>-<random>.tmp` files (the root's lock being written) whose pid is no longer running on this host (`alive`, default lib/core/lock.ts `pidAlive`; the
 * rule of lib/core/atomic.ts `removeStaleDirTemps`, which it calls), so never a live publisher's. Folders
 * named `versions/<version>.tmp` (no pid: written before the pid was in the name) are removed too unless
 * `unowned: false`, which a caller without the run folder's lock passes (export `--vectors`): nothing
 * tells whose they are. Every publishing job calls it before publishing. Returns the names removed,
 * relative to `outRoot`.
 *
 * @example
 * ```ts
 * import { removeStaleTemps } from "./publish.ts";
 * const removed = await removeStaleTemps("out/embeddings");
 * ```
 */
export async function removeStaleTemps(
  outRoot: string,
  opts: { alive?: (pid: number) => boolean; unowned?: boolean } = {},
): Promise<string[]> {
  const alive = opts.alive ?? pidAlive;
  const dir = join(outRoot, "versions");
  // nothing to clean where there is no folder (a root not made yet, or under a regular file: the publish
  // that follows says so, with its own exit code)
  const isDir = (p: string) => Deno.stat(p).then((st) => st.isDirectory, () => false);
  if (!(await isDir(outRoot))) return [];
  const removed = (await isDir(dir))
    ? (await removeStaleDirTemps(dir, alive)).map((n) => join("versions", n))
    : [];
  if (opts.unowned !== false && (await isDir(dir))) {
    try {
      for await (const ent of Deno.readDir(dir)) {
        if (ent.name.endsWith(".tmp") && !parseTempName(ent.name)) {
          await Deno.remove(join(dir, ent.name), { recursive: true });
          removed.push(join("versions", ent.name));
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  try {
    for await (const ent of Deno.readDir(outRoot)) {
      const t = parseTempName(ent.name);
      if ((t?.base === "latest" || t?.base === PUBLISH_LOCK) && !t.old && !alive(t.pid)) {
        await Deno.remove(join(outRoot, ent.name)).catch(() => {});
        removed.push(ent.name);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}

/** The lock file of a publication root ({@link lockPublication}), `<outRoot>/publish.lock`. */
export const PUBLISH_LOCK = "publish.lock";

/** How long a publisher waits for another one's {@link PUBLISH_LOCK} (held for a rename, a link, a prune). */
const PUBLISH_LOCK_WAIT_S = 60;

/**
 * Takes the lock of a publication root, `<outRoot>/publish.lock` (lib/core/lock.ts: the holder's pid and
 * host; one left by a killed process is taken over), held only while a version is moved into `versions/`
 * and `latest` is pointed at it ({@link publishEmbeddings}, {@link pointLatest}) and while old versions
 * are chosen and moved away (lib/export/prune.ts): so that a pruning job never sees a version that is in
 * `versions/` but not yet `latest`, and never removes the one `latest` is being moved to. Every publisher
 * of the root takes it, whatever other lock it holds (a run folder's run.lock is always taken first). A
 * live holder is waited for, silently, up to 60 s (it holds it for milliseconds); still held then: exit
 * code 3 (`EXIT.locked`) naming it.
 *
 * @example
 * ```ts
 * import { lockPublication } from "./publish.ts";
 * const root = await Deno.makeTempDir();
 * const lock = await lockPublication(root);
 * await lock.release();
 * ```
 */
export function lockPublication(outRoot: string): Promise<HeldLock> {
  // the run folder's advice (--wait) is no flag of the publication lock: the message says it was waited for
  return lockJob(join(outRoot, PUBLISH_LOCK), "publish", {
    waitSeconds: PUBLISH_LOCK_WAIT_S,
    pollMs: 10,
    quietWait: true,
    fixedWait: true,
  });
}
