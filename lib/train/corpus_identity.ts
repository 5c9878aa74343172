/**
 * The identity of the data a run trains on, recorded in its checkpoints (`RunState.corpus`) and compared
 * on `--resume`, so that a run never goes on over other data at the same `--data` path: a text file edited
 * in place, or a prepared corpus folder prepared again with other settings. Only content counts, never a
 * timestamp that changes without it (a prepared corpus's `created`, a text file's mtime when it is hashed
 * whole).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { CorpusManifest } from "../io/manifest.ts";
import type { InputFingerprint } from "../io/fingerprint.ts";

/** The recorded identity: which kind of input it was drawn from, and a SHA-256 of that input's content. */
export type CorpusIdentity = string;

function digest(kind: string, value: unknown): CorpusIdentity {
  return `${kind}:${createHash("sha256").update(JSON.stringify(value)).digest("hex")}`;
}

/**
 * The identity of a corpus prepared from text: the preparation settings (less the number of subsampling
 * draws, which a resume may change: draw k does not depend on it) and each input file's size and hash
 * (and mtime when only each file's head and tail are hashed).
 *
 * @example
 * ```ts
 * import { textCorpusIdentity } from "./corpus_identity.ts";
 * const f = { method: "sha256" as const, files: [{ path: "a.txt", bytes: 3, mtimeMs: 5, sha256: "ab" }] };
 * const later = { ...f, files: [{ ...f.files[0], mtimeMs: 9 }] };
 * console.log(textCorpusIdentity({ window: 5 }, f) === textCorpusIdentity({ window: 5 }, later)); // true
 * ```
 */
export function textCorpusIdentity(
  settings: Record<string, unknown>,
  inputs: InputFingerprint,
): CorpusIdentity {
  const { sampleDraws: _n, validation: _v, ...rest } = settings;
  const whole = inputs.method === "sha256";
  return digest("text", {
    settings: rest,
    method: inputs.method,
    files: inputs.files.map((f) => [f.path, f.bytes, f.sha256, whole ? 0 : f.mtimeMs]),
  });
}

/**
 * The identity of a prepared corpus (a folder with manifest.json, or shards read by content): its
 * manifest less the time it was written (shard names, rows and bytes, vocabulary size, how it was
 * prepared).
 *
 * @example
 * ```ts
 * import { manifestIdentity } from "./corpus_identity.ts";
 * import type { CorpusManifest } from "../io/manifest.ts";
 * const m = { rows: 2, created: "2026-01-01T00:00:00Z" } as unknown as CorpusManifest;
 * console.log(manifestIdentity(m) === manifestIdentity({ ...m, created: "2027-01-01T00:00:00Z" })); // true
 * ```
 */
export function manifestIdentity(manifest: CorpusManifest): CorpusIdentity {
  const { created: _created, ...rest } = manifest;
  return digest("corpus", rest);
}
