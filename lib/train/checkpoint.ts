/**
 * Checkpoint files: one binary file holding everything needed to continue a run exactly.
 *
 * Layout (little-endian):
 *   bytes 0..8   magic "FOCKPT01"
 *   bytes 8..12  u32 header length n
 *   bytes 12..12+n  UTF-8 JSON header ({@link CheckpointHeader})
 *   then, from the first multiple of 8, the arrays in the header's table, each at `offset` (relative to
 *   the data start, a multiple of 8) with `length` elements of float32 ("f32") or float64 ("f64");
 *   last 40 bytes  the trailer: "FOCKSUM1" and the SHA-256 of every byte before it (header and arrays).
 *
 * The checksum is checked on every read: a flipped bit, a truncated file or a value changed in place is
 * "corrupt checkpoint (checksum mismatch)", never a resumed or published state. Files written before the
 * trailer existed (no trailer, header format 1) still load, with a warning. Every value must be finite.
 *
 * Written by lib/core/atomic.ts's writeFileAtomic: a unique temporary name (`<name>.<pid>-<random>.tmp`),
 * fsync'd, renamed over `<name>`, then the folder fsync'd: a reader sees the old file or the complete new one, never a partial file; if the
 * process is stopped by a signal meanwhile the temporary file is removed (lib/core/stop.ts), and
 * {@link removeStaleCheckpointTemps} clears those of killed processes.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename } from "node:path";
import { DataFormatError, UsageError } from "../core/errors.ts";
import { withPath } from "../core/os_errors.ts";
import { tempNameFor, writeFileAtomic } from "../core/atomic.ts";
import { pidAlive } from "../core/lock.ts";

const MAGIC = "FOCKPT01", SUM_MAGIC = "FOCKSUM1", TRAILER = 40;
/** Bytes hashed and written at a time (see writeCheckpoint). */
const WRITE_PIECE = 16 << 20;
const enc = new TextEncoder(), dec = new TextDecoder("utf-8", { fatal: true });

/**
 * One array's entry in the header's table.
 *
 * @example
 * ```ts
 * import type { ArrayEntry } from "./checkpoint.ts";
 * const e: ArrayEntry = { name: "model.E", dtype: "f32", length: 100, offset: 0 };
 * ```
 */
export type ArrayEntry = { name: string; dtype: "f32" | "f64"; length: number; offset: number };

/**
 * The JSON header: free-form metadata (`meta`) and the array table.
 *
 * @example
 * ```ts
 * import type { CheckpointHeader } from "./checkpoint.ts";
 * const h: CheckpointHeader = { format: 2, meta: { step: 3 }, arrays: [] };
 * ```
 */
export type CheckpointHeader = { format: 1 | 2; meta: Record<string, unknown>; arrays: ArrayEntry[] };

/**
 * A checkpoint in memory: the metadata and the named arrays.
 *
 * @example
 * ```ts
 * import type { Checkpoint } from "./checkpoint.ts";
 * const c: Checkpoint = { meta: { step: 1 }, arrays: { "model.E": new Float32Array(4) } };
 * ```
 */
export type Checkpoint = {
  meta: Record<string, unknown>;
  arrays: Record<string, Float32Array | Float64Array>;
  /** Set by {@link readCheckpoint} for a file without a checksum (written before checksums existed). */
  unchecked?: boolean;
};

function bytesOf(a: Float32Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Writes a checkpoint atomically (temporary name, fsync, rename, folder fsync). `opts.reuse`: a spare file
 * {@link pruneCheckpoints} kept, overwritten instead of a new temporary file (writeFileAtomic's `reuse`).
 *
 * @example
 * ```ts
 * import { readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
 * const path = await Deno.makeTempFile({ suffix: ".fock" });
 * await writeCheckpoint(path, { meta: { step: 1 }, arrays: { x: Float32Array.of(1, 2) } });
 * const back = await readCheckpoint(path);
 * ```
 */
export async function writeCheckpoint(
  path: string,
  ckpt: Checkpoint,
  opts: { reuse?: string } = {},
): Promise<void> {
  const entries: ArrayEntry[] = [];
  let offset = 0;
  for (const [name, a] of Object.entries(ckpt.arrays)) {
    if (!(a instanceof Float32Array) && !(a instanceof Float64Array)) {
      throw new TypeError(`checkpoint array '${name}' must be a Float32Array or Float64Array`);
    }
    entries.push({ name, dtype: a instanceof Float64Array ? "f64" : "f32", length: a.length, offset });
    offset += Math.ceil(a.byteLength / 8) * 8;
  }
  const header: CheckpointHeader = { format: 2, meta: ckpt.meta, arrays: entries };
  const json = enc.encode(JSON.stringify(header));
  const start = Math.ceil((12 + json.length) / 8) * 8;
  const head = new Uint8Array(start);
  head.set(enc.encode(MAGIC), 0);
  new DataView(head.buffer).setUint32(8, json.length, true);
  head.set(json, 12);
  // Written first, then hashed while their fsync runs on the runtime's thread (writeFileAtomic's flush): a
  // checkpoint waited for costs the write and the longer of hash and fsync, not the three (BENCHMARKS.md, "The
  // checksum while the checkpoint is fsync'd"). A write behind the steps runs all of it on the checkpoint
  // writer's worker (checkpoint_writer.ts).
  const hash = createHash("sha256");
  await writeFileAtomic(path, async (write, flush) => {
    const pad = new Uint8Array(8);
    // the file's bytes before the trailer, in order, in pieces of at most WRITE_PIECE
    const pieces = function* (): Generator<Uint8Array> {
      yield head;
      for (const e of entries) {
        const b = bytesOf(ckpt.arrays[e.name]);
        for (let at = 0; at < b.length; at += WRITE_PIECE) {
          yield b.subarray(at, Math.min(b.length, at + WRITE_PIECE));
        }
        if (b.length % 8) yield pad.subarray(0, 8 - (b.length % 8));
      }
    };
    for (const p of pieces()) await write(p);
    flush();
    for (const p of pieces()) hash.update(p);
    const trailer = new Uint8Array(TRAILER);
    trailer.set(enc.encode(SUM_MAGIC), 0);
    trailer.set(hash.digest(), 8);
    await write(trailer);
  }, {
    what: "cannot write checkpoint",
    syncDir: true,
    ...(opts.reuse ? { reuse: opts.reuse } : {}),
  });
}

/**
 * Reads and validates a checkpoint; a truncated or corrupt file throws a DataFormatError naming it, a file
 * that cannot be read (missing, a folder, no permission) an IoError "cannot read checkpoint <path>: …"
 * (lib/core/os_errors.ts; `reading`: a missing one is bad data, exit 5).
 *
 * @example
 * ```ts
 * import { readCheckpoint } from "./checkpoint.ts";
 * const c = await readCheckpoint("runs/latest/checkpoints/ckpt-000000001000.fock").catch(() => undefined);
 * ```
 */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  let buf = await withPath("cannot read checkpoint", path, () => Deno.readFile(path), { reading: true });
  if (buf.length < 12 || latin1(buf.subarray(0, 8)) !== MAGIC) {
    throw new DataFormatError(path, `not a factorout checkpoint (no ${MAGIC} magic at byte 0)`);
  }
  const hasSum = buf.length >= 12 + TRAILER &&
    latin1(buf.subarray(buf.length - TRAILER, buf.length - 32)) === SUM_MAGIC;
  if (hasSum) {
    const body = buf.subarray(0, buf.length - TRAILER);
    const want = buf.subarray(buf.length - 32);
    const got = createHash("sha256").update(body).digest();
    if (!want.every((b, i) => b === got[i])) {
      throw new DataFormatError(
        path,
        "corrupt checkpoint (checksum mismatch): the file was changed or damaged after it was written",
      );
    }
    buf = body;
  }
  const n = new DataView(buf.buffer, buf.byteOffset).getUint32(8, true);
  if (12 + n > buf.length) {
    throw new DataFormatError(path, `truncated: header of ${n} bytes, file has ${buf.length}`);
  }
  let header: CheckpointHeader;
  try {
    header = JSON.parse(dec.decode(buf.subarray(12, 12 + n)));
  } catch (e) {
    throw new DataFormatError(path, `corrupt header: ${(e as Error).message}`);
  }
  if (
    (header?.format !== 1 && header?.format !== 2) || !Array.isArray(header.arrays) ||
    typeof header.meta !== "object"
  ) {
    throw new DataFormatError(
      path,
      `unsupported checkpoint header (format ${JSON.stringify(header?.format)})`,
    );
  }
  if (header.format === 2 && !hasSum) {
    throw new DataFormatError(path, "corrupt checkpoint (truncated: its checksum trailer is missing)");
  }
  const start = Math.ceil((12 + n) / 8) * 8;
  const arrays: Checkpoint["arrays"] = {};
  for (const e of header.arrays) {
    const size = e.dtype === "f64" ? 8 : e.dtype === "f32" ? 4 : 0;
    if (!size || !Number.isInteger(e.length) || e.length < 0 || !Number.isInteger(e.offset) || e.offset % 8) {
      throw new DataFormatError(path, `array '${e.name}': bad table entry ${JSON.stringify(e)}`);
    }
    const from = start + e.offset, to = from + e.length * size;
    if (to > buf.length) {
      throw new DataFormatError(
        path,
        `truncated: array '${e.name}' ends at byte ${to}, file has ${buf.length}`,
      );
    }
    const copy = buf.slice(from, to).buffer;
    const a = size === 8 ? new Float64Array(copy) : new Float32Array(copy);
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i])) {
        throw new DataFormatError(
          path,
          `corrupt checkpoint: array '${e.name}'[${i}] is ${a[i]} (not finite)`,
        );
      }
    }
    arrays[e.name] = a;
  }
  return { meta: header.meta, arrays, ...(hasSum ? {} : { unchecked: true }) };
}

function latin1(b: Uint8Array): string {
  return String.fromCharCode(...b);
}

/**
 * File name of the checkpoint after `step` steps: ckpt-<12-digit step>.fock (sorts by step).
 *
 * @example
 * ```ts
 * import { checkpointName } from "./checkpoint.ts";
 * checkpointName(42); // "ckpt-000000000042.fock"
 * ```
 */
export function checkpointName(step: number): string {
  return `ckpt-${String(step).padStart(12, "0")}.fock`;
}

/**
 * The step in a checkpoint's file name (`ckpt-<step>.fock`, {@link checkpointName}; a path is read by its
 * last part), or undefined for another name (best.fock).
 *
 * @example
 * ```ts
 * import { checkpointStep } from "./checkpoint.ts";
 * checkpointStep("runs/x/checkpoints/ckpt-000000000042.fock"); // 42
 * checkpointStep("runs/x/checkpoints/best.fock"); // undefined
 * ```
 */
export function checkpointStep(path: string): number | undefined {
  const m = /^ckpt-(\d+)\.fock$/.exec(basename(path));
  return m ? Number(m[1]) : undefined;
}

/**
 * The complete checkpoints in a folder, oldest first (temporary `.tmp` files are ignored).
 *
 * @example
 * ```ts
 * import { listCheckpoints } from "./checkpoint.ts";
 * const all = await listCheckpoints("runs/latest/checkpoints");
 * ```
 */
export async function listCheckpoints(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /^ckpt-\d+\.fock$/.test(e.name)) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return names.sort().map((n) => `${dir}/${n}`);
}

/**
 * The newest complete checkpoint in a folder (or the `checkpoints/` folder inside it), or undefined.
 *
 * @example
 * ```ts
 * import { findLatestCheckpoint } from "./checkpoint.ts";
 * const path = await findLatestCheckpoint("runs/latest");
 * ```
 */
export async function findLatestCheckpoint(dir: string): Promise<string | undefined> {
  const own = await listCheckpoints(dir);
  if (own.length) return own[own.length - 1];
  const inner = await listCheckpoints(`${dir}/checkpoints`);
  return inner.length ? inner[inner.length - 1] : undefined;
}

/**
 * Deletes all but the newest `keep` checkpoints of a folder, and never the one named like `protect` (a
 * run's rollback state, RunState.good). With `opts.spare`, the oldest one pruned that no other name links
 * to (not best.fock's) is not deleted but renamed to a temporary name beside it, and that path returned: the
 * next {@link writeCheckpoint}'s `reuse`, which writes into its pages instead of new ones. Nothing else names
 * it; a job killed meanwhile leaves it to {@link removeStaleCheckpointTemps}.
 *
 * @example
 * ```ts
 * import { pruneCheckpoints } from "./checkpoint.ts";
 * await pruneCheckpoints("runs/latest/checkpoints", 3);
 * ```
 */
export async function pruneCheckpoints(
  dir: string,
  keep: number,
  protect?: string,
  opts: { spare?: boolean } = {},
): Promise<string | undefined> {
  // keep 0 would remove the checkpoint just written, which the run then names as its last
  if (!Number.isInteger(keep) || keep < 1) {
    throw new UsageError(`pruneCheckpoints: keep must be an integer ≥ 1 (checkpoints kept), got ${keep}`);
  }
  const all = await listCheckpoints(dir);
  let spare: string | undefined;
  for (const p of all.slice(0, Math.max(0, all.length - keep))) {
    if (protect !== undefined && basename(p) === basename(protect)) continue;
    if (opts.spare && spare === undefined && (await Deno.stat(p).catch(() => undefined))?.nlink === 1) {
      const aside = tempNameFor(p);
      if (await Deno.rename(p, aside).then(() => true, () => false)) {
        spare = aside;
        continue;
      }
    }
    await Deno.remove(p).catch(() => {});
  }
  return spare;
}

/**
 * Deletes the checkpoints of a folder taken after step `step` (a rollback to that step abandoned them: a
 * `--resume` must not take one up); returns their paths.
 *
 * @example
 * ```ts
 * import { removeCheckpointsAfter } from "./checkpoint.ts";
 * const gone = await removeCheckpointsAfter("runs/latest/checkpoints", 40);
 * ```
 */
export async function removeCheckpointsAfter(dir: string, step: number): Promise<string[]> {
  const last = checkpointName(step);
  const gone = (await listCheckpoints(dir)).filter((p) => basename(p) > last);
  for (const p of gone) await Deno.remove(p).catch(() => {});
  return gone;
}

/**
 * A stable hash of a vocabulary (SHA-256 of the words joined by newlines, hex): checkpoints carry it so
 * that one made for another vocabulary is refused.
 *
 * @example
 * ```ts
 * import { vocabularyHash } from "./checkpoint.ts";
 * const h = await vocabularyHash(["the", "of"]);
 * ```
 */
export async function vocabularyHash(words: readonly string[]): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", enc.encode(words.join("\n")));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Removes the temporary checkpoint files (`ckpt-*.fock.tmp`, `ckpt-*.fock.<pid>-<random>.tmp`) that
 * killed processes left in `dir`; a file whose pid is alive on this host is kept. Call it under the run
 * folder's lock. Returns the names removed.
 *
 * @example
 * ```ts
 * import { removeStaleCheckpointTemps } from "./checkpoint.ts";
 * const removed = await removeStaleCheckpointTemps("runs/latest/checkpoints");
 * ```
 */
export async function removeStaleCheckpointTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = /^ckpt-\d+\.fock(?:\.(\d+)-[0-9a-f]+)?\.tmp$/.exec(e.name);
      if (!e.isFile || !m || (m[1] && pidAlive(Number(m[1])))) continue;
      await Deno.remove(`${dir}/${e.name}`).catch(() => {});
      removed.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}

/**
 * Reads the newest checkpoint of a folder (or of its `checkpoints/` folder) that loads and passes its
 * checksum, skipping newer truncated or corrupt ones; `skipped` names those and why, and `log` (when given)
 * gets one line about them and one about a checkpoint without a checksum. Throws DataFormatError (the
 * newest one's reason) when none is good, Deno.errors.NotFound when there is none.
 *
 * @example
 * ```ts
 * import { readNewestGoodCheckpoint } from "./checkpoint.ts";
 * const r = await readNewestGoodCheckpoint("runs/latest").catch(() => undefined);
 * ```
 */
export async function readNewestGoodCheckpoint(
  dir: string,
  log?: (line: string) => void,
): Promise<{ path: string; checkpoint: Checkpoint; skipped: { path: string; reason: string }[] }> {
  let all = await listCheckpoints(dir);
  if (!all.length) all = await listCheckpoints(`${dir}/checkpoints`);
  if (!all.length) {
    throw new Deno.errors.NotFound(`${dir}: no checkpoint (ckpt-*.fock) in it or in its checkpoints/`);
  }
  const skipped: { path: string; reason: string }[] = [];
  let first: DataFormatError | undefined;
  for (const path of all.reverse()) {
    try {
      const checkpoint = await readCheckpoint(path);
      if (log && skipped.length) {
        log(
          `skipping ${skipped.length} newer unusable checkpoint(s) (${
            skipped.map((s) => s.reason).join("; ")
          }); using ${path}, the newest good one`,
        );
      }
      if (log && checkpoint.unchecked) log(`${path} has no checksum (written by an older version)`);
      return { path, checkpoint, skipped };
    } catch (e) {
      if (!(e instanceof DataFormatError)) throw e;
      first ??= e;
      skipped.push({ path, reason: e.message });
    }
  }
  throw new DataFormatError(
    dir,
    `no good checkpoint: all ${all.length} are corrupt or truncated (newest: ${first!.message})`,
  );
}
