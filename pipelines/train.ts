/**
 * `deno task train`: train word embeddings with the exact factored output layer, then evaluate and
 * publish them. `--help` lists every flag with its default. Exit codes: 0 done, 2 bad usage (unknown
 * flag, bad value, missing data, mismatched checkpoint), 3 training diverged, 4 bad data or checkpoint
 * file, 1 anything else.
 *
 * @module
 */

import { DataFormatError, DivergenceError, UsageError } from "../lib/errors.ts";
import { helpText, parseTrainArgs } from "../lib/train/cli.ts";
import { runTrainJob } from "../lib/train/run.ts";

const enc = new TextEncoder();

async function main(argv: string[]): Promise<number> {
  try {
    const args = await parseTrainArgs(argv);
    if (args.help) {
      console.log(helpText());
      return 0;
    }
    await runTrainJob(args, {
      out: (text) => Deno.stdout.writeSync(enc.encode(text)),
      err: (line) => console.error(line),
      tty: Deno.stdout.isTerminal(),
    });
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`train: ${e.message}`);
      return 2;
    }
    if (e instanceof DivergenceError) {
      console.error(`train: ${e.message}`);
      return 3;
    }
    if (e instanceof DataFormatError) {
      console.error(`train: ${e.message}`);
      return 4;
    }
    console.error(`train: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
