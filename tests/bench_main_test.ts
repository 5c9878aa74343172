// bench/main.ts (`deno task bench`): flags through lib/core/cli.ts like every command: --help with each flag's
// default and the exit codes; a bad flag or an empty --only is one line, exit 2, before any section runs.
import assert from "node:assert/strict";
import { runCommand } from "./child.ts";

const BENCH = new URL("../bench/main.ts", import.meta.url).pathname;

async function bench(...args: string[]) {
  const r = await runCommand(Deno.execPath(), ["run", "-A", BENCH, "--out", "-", ...args]);
  return { code: r.code, out: r.stdout, err: r.stderr.trim() };
}

Deno.test("bench: --help lists the flags and exit codes; bad flags exit 2 with one line", async () => {
  const help = await bench("--help");
  assert.equal(help.code, 0, help.err);
  assert.match(help.out, /^usage: npx deno task bench \[flags\]/);
  assert.match(help.out, /--backend <value> .*\(default: blas\)/);
  assert.match(help.out, /Exit codes/);
  for (
    const [args, why] of [
      [["--bogus"], /^bench: .*--bogus/],
      [["--only", ""], /^bench: --only names no section$/],
      [["--only", "nope"], /^bench: --only: unknown section 'nope'/],
      [["--backend", "cuda"], /^bench: --backend: unknown backend 'cuda'/],
    ] as [string[], RegExp][]
  ) {
    const r = await bench(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.equal(r.err.split("\n").length, 1, r.err);
    assert.match(r.err, why);
  }
});
