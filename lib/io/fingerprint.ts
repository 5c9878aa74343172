/**
 * A content fingerprint of text inputs (each file's size, modification time and SHA-256), so that a
 * prepared corpus is reused only while its inputs are unchanged, also when a file is rewritten in place
 * at the same path. Inputs up to {@link FULL_HASH_LIMIT} bytes in all (256 MiB) are hashed whole; above that, each
 * file's first and last MiB (with size and mtime), and the fingerprint says so (`method`).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { resolveTextInputs } from "./text.ts";

/** Total input size up to which every byte is hashed (256 MiB: about 2 s at the ~120 MB/s measured). */
export const FULL_HASH_LIMIT = 1 << 28;

/** Bytes hashed at each end of a file above {@link FULL_HASH_LIMIT}. */
const END_BYTES = 1 << 20;

/**
 * One fingerprint: how it was made and, per input file, its size, mtime (ms) and hash.
 *
 * @example
 * ```ts
 * import type { InputFingerprint } from "./fingerprint.ts";
 * const f: InputFingerprint = { method: "sha256", files: [{ path: "a.txt", bytes: 3, mtimeMs: 0, sha256: "ab" }] };
 * ```
 */
export type InputFingerprint = {
  method: "sha256" | "sha256-head-tail";
  files: { path: string; bytes: number; mtimeMs: number; sha256: string }[];
};

async function hashFile(path: string, bytes: number, whole: boolean, buf: Uint8Array): Promise<string> {
  const h = createHash("sha256");
  const f = await Deno.open(path);
  try {
    const range = async (from: number, to: number) => {
      if (from > 0) await f.seek(from, Deno.SeekMode.Start);
      let left = to - from;
      while (left > 0) {
        const n = await f.read(buf.subarray(0, Math.min(buf.length, left)));
        if (n === null || n === 0) break;
        h.update(buf.subarray(0, n));
        left -= n;
      }
    };
    if (whole || bytes <= 2 * END_BYTES) await range(0, bytes);
    else {
      await range(0, END_BYTES);
      await range(bytes - END_BYTES, bytes);
    }
  } finally {
    f.close();
  }
  return h.digest("hex");
}

/**
 * Fingerprints the text inputs of `input` (as {@link resolveTextInputs} expands it).
 *
 * @example
 * ```ts
 * import { fingerprintInputs } from "./fingerprint.ts";
 * const f = await fingerprintInputs("brown");
 * console.log(f.method, f.files.length); // "sha256" 500
 * ```
 */
export async function fingerprintInputs(
  input: string | string[],
  fullLimit: number = FULL_HASH_LIMIT,
): Promise<InputFingerprint> {
  const inputs = await resolveTextInputs(input);
  const total = inputs.reduce((s, x) => s + x.bytes, 0);
  const whole = total <= fullLimit;
  const files: InputFingerprint["files"] = [];
  const buf = new Uint8Array(END_BYTES);
  for (const i of inputs) {
    const st = await Deno.stat(i.path);
    files.push({
      path: i.path,
      bytes: st.size,
      mtimeMs: st.mtime?.getTime() ?? 0,
      sha256: await hashFile(i.path, st.size, whole, buf),
    });
  }
  return { method: whole ? "sha256" : "sha256-head-tail", files };
}

/**
 * The first difference between two fingerprints, in words ("" when they are equal).
 *
 * @example
 * ```ts
 * import { fingerprintChange } from "./fingerprint.ts";
 * fingerprintChange({ method: "sha256", files: [] }, { method: "sha256", files: [] }); // ""
 * ```
 */
export function fingerprintChange(was: InputFingerprint | undefined, now: InputFingerprint): string {
  if (!was || !Array.isArray(was.files)) return "no fingerprint of the inputs was recorded";
  if (was.files.length !== now.files.length) {
    return `${was.files.length} input file(s) then, ${now.files.length} now`;
  }
  for (let i = 0; i < now.files.length; i++) {
    const a = was.files[i], b = now.files[i];
    if (a.path !== b.path) return `${a.path} is now ${b.path}`;
    if (a.bytes !== b.bytes) return `${b.path} changed size (${a.bytes} → ${b.bytes} bytes)`;
    if (a.sha256 !== b.sha256) return `${b.path} changed content (same size)`;
    // a whole-file hash decides alone; with head and tail only, a new mtime also counts as a change
    if (now.method !== "sha256" && a.mtimeMs !== b.mtimeMs) return `${b.path} changed modification time`;
  }
  if (was.method !== now.method) return `fingerprint method ${was.method} → ${now.method}`;
  return "";
}
