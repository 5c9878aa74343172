// `deno task train` whose standard output fails (`> /dev/full`, a reader that closed the pipe): the progress
// and summary lines are best-effort (one stderr line says stdout failed and where summary.json is), the
// training and its publication go on, and the job exits 0 (it aborted at the first progress line, exit 8).
import assert from "node:assert/strict";
import { join } from "node:path";
import { runRedirected } from "./child.ts";

const ROOT = await Deno.makeTempDir({ prefix: "train_stdout_" });
const ARGS = [
  ...["--limit-tokens", "20000", "--dim", "16", "--eval-dir", "none", "--formats", "vec"],
  ...["--backend", "js", "--progress", "json", "--epochs", "2"],
];
/** The job with its stdout sent to `redirect` (`> /dev/full`, `| head -c 10`). */
const job = (out: string, redirect: string) => runRedirected("train", [...ARGS, "--out", out], redirect);

for (
  const [name, redirect, errno] of [
    ["/dev/full", "> /dev/full", "ENOSPC"],
    ["a closed pipe", "| head -c 10 > /dev/null", "EPIPE"],
  ] as const
) {
  Deno.test(`train: stdout to ${name}: one stderr line, the run trains and publishes, exit 0`, async () => {
    const out = join(ROOT, errno);
    const r = await job(out, redirect);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("stdout:"));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0],
      new RegExp(
        `^stdout: cannot write \\(${errno}: .*\\): progress and the summary line are not printed; the ` +
          `training goes on, and .*/summary\\.json has the result$`,
      ),
    );
    const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    assert.equal(summary.training.epochsDone, 2);
    await Deno.stat(join(out, "embeddings", "latest", "input.vec"));
  });
}
