// `deno task train` whose standard output fails (`> /dev/full`, a reader that closed the pipe): the progress
// and summary lines are best-effort (one stderr line says stdout failed and where summary.json is), the
// training and its publication go on, and the job exits 0 (it aborted at the first progress line, exit 8).
import assert from "node:assert/strict";
import { join } from "node:path";

const PIPE = new URL("../pipelines/train.ts", import.meta.url).pathname;
const ROOT = await Deno.makeTempDir({ prefix: "train_stdout_" });
const ARGS = [
  ...["--limit-tokens", "20000", "--dim", "16", "--eval-dir", "none", "--formats", "vec"],
  ...["--backend", "js", "--progress", "json", "--epochs", "2"],
];
const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** The job run by bash with its stdout sent to `redirect` (`> /dev/full`, `| head -c 10`). */
async function job(out: string, redirect: string): Promise<{ code: number; stderr: string }> {
  const cmd = `${q(Deno.execPath())} run -A ${q(PIPE)} ${ARGS.join(" ")} --out ${q(out)} ${redirect}; ` +
    `exit \${PIPESTATUS[0]}`;
  const r = await new Deno.Command("bash", { args: ["-c", cmd], stdout: "null", stderr: "piped" }).output();
  return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
}

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
