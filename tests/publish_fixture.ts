// A one-word publication for the tests of publication roots (locks, pruning, refusals around versions).
import { publishEmbeddings, type PublishOptions, type PublishResult } from "../lib/export/publish.ts";

/** Publishes the word "a" (d = 1, `.vec`) as `version` under `outRoot`; `more` adds options (`committed`). */
export function publishOneWord(
  outRoot: string,
  version: string,
  more: Partial<PublishOptions> = {},
): Promise<PublishResult> {
  return publishEmbeddings({
    outRoot,
    words: ["a"],
    input: Float32Array.of(1),
    d: 1,
    formats: ["vec"],
    manifest: {},
    version,
    ...more,
  });
}
