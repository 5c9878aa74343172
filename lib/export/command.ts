/**
 * The `deno task export` command line that publishes a checkpoint as a job would: the one home of the
 * "publish it with" and "rerun" lines that train and refresh print (their `--formats`, `--output-rows` and
 * `--out` spelled out, defaults left out).
 *
 * @module
 */

import { shellWord } from "../core/cli.ts";
import { EMBEDDING_FORMATS, type EmbeddingFormat } from "./read.ts";
import { DENO_TASK } from "../core/exit_codes.ts";

/** What the printed export command publishes. */
export type ExportCommand = {
  /** the run folder or checkpoint file given to `--checkpoint` */
  checkpoint: string;
  /** the formats to write (all four, the default, are left out of the line) */
  formats: readonly EmbeddingFormat[];
  /** also publish the output rows of W (`--output-rows`) */
  outputRows: boolean;
  /** the publication root, when not the default `<run>/embeddings` */
  out?: string;
};

/**
 * The command line, each path quoted for a POSIX shell.
 *
 * @example
 * ```ts
 * import { exportCommand } from "./command.ts";
 * console.log(exportCommand({ checkpoint: "runs/a", formats: ["vec"], outputRows: true }));
 * // deno task export --checkpoint runs/a --formats vec --output-rows
 * ```
 *
 * @param c what to publish
 * @returns the command
 */
export function exportCommand(c: ExportCommand): string {
  const formats = c.formats.join(",");
  return `${DENO_TASK} export --checkpoint ${shellWord(c.checkpoint)}` +
    (formats === EMBEDDING_FORMATS.join(",") ? "" : ` --formats ${formats}`) +
    (c.outputRows ? " --output-rows" : "") +
    (c.out === undefined ? "" : ` --out ${shellWord(c.out)}`);
}
