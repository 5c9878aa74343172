/**
 * `deno task train`: train word embeddings with the exact factored output layer, then evaluate and
 * publish them. `--help` lists every flag with its default.
 *
 * Exit codes (the shared table of lib/core/exit_codes.ts; one line `train: <reason>` last on stderr for every
 * non-zero one): 0 done · 1 internal error · 2 bad flag or value (or `--out` holds a run: `--resume` or
 * `--overwrite`) · 3 locked (another job works in `--out`) · 4 no usable checkpoint for `--resume`
 * (none, corrupt, or trained with another configuration or vocabulary) · 5 bad data (missing, empty or
 * corrupt `--data`) · 6 diverged (the last good checkpoint is intact; lower --lr) · 7 publishing the
 * embeddings failed after training (the checkpoints are saved: rerun `deno task export --checkpoint`) · 8
 * operating-system error (disk full, read-only or unwritable `--out`, `--out` under a file), named by path ·
 * 9 stopped by SIGTERM/SIGINT/SIGHUP after writing a checkpoint (the last line gives the command to
 * resume; lib/core/stop.ts). No stack trace unless `--debug` or FACTOROUT_DEBUG=1.
 *
 * @module
 */

import { helpText, parseTrainArgs } from "../lib/train/cli.ts";
import { runTrainJob } from "../lib/train/run.ts";
import { EXIT, runCommand } from "../lib/core/exit_codes.ts";
import { StopController } from "../lib/core/stop.ts";
import { stdoutIsStderr } from "../lib/core/cli.ts";

const enc = new TextEncoder();

const stop = new StopController("train").install();
await runCommand("train", async () => {
  const args = await parseTrainArgs(Deno.args);
  if (args.help) {
    console.log(helpText());
    return;
  }
  await runTrainJob(
    args,
    {
      out: (text) => {
        // all of it (a pipe may take part); a failed write throws, which the job reports once and goes on
        const bytes = enc.encode(text);
        for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
      },
      err: (line) => console.error(line),
      tty: Deno.stdout.isTerminal(),
      merged: stdoutIsStderr(),
    },
    {},
    stop,
  );
});
Deno.exit(EXIT.ok);
