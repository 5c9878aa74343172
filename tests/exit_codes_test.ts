// The shared exit-code table (lib/exit_codes.ts): the error → code mapping every command uses, and the
// `--help` lines built from it.
import assert from "node:assert/strict";
import { EXIT, exitCodeFor, exitCodesHelp, ExitError } from "../lib/exit_codes.ts";
import * as old from "../lib/export/exit_codes.ts";
import { StoppedError } from "../lib/stop.ts";
import { DataFormatError, DivergenceError, SingularUpdateError, UsageError } from "../lib/errors.ts";

Deno.test("exit codes: one table, errors mapped to it", () => {
  assert.deepEqual(Object.values(EXIT), [0, 1, 2, 3, 4, 5, 6, 7, 9], "codes are distinct, in order");
  assert.equal(exitCodeFor(new UsageError("--x")), EXIT.usage);
  assert.equal(exitCodeFor(new DataFormatError("a.txt", "row 1")), EXIT.badData);
  assert.equal(exitCodeFor(new Deno.errors.NotFound("a.txt")), EXIT.badData);
  assert.equal(exitCodeFor(new DivergenceError(3, "NaN")), EXIT.diverged);
  assert.equal(exitCodeFor(new SingularUpdateError("singular")), EXIT.diverged);
  assert.equal(exitCodeFor(new ExitError(EXIT.noCheckpoint, "none")), 4);
  assert.equal(exitCodeFor(new TypeError("bug")), EXIT.internal);
  assert.equal(exitCodeFor("a string"), EXIT.internal);
  assert.equal(exitCodeFor(new StoppedError("stopped by SIGTERM")), 9);
  assert.equal(old.EXIT, EXIT, "lib/export/exit_codes.ts re-exports the same table");
});

Deno.test("exit codes: --help lines list 0, 1, 2 and the asked codes in order, once each", () => {
  const lines = exitCodesHelp("diverged", "badData", "badData").split("\n");
  assert.match(lines[0], /^Exit codes/);
  assert.deepEqual(lines.slice(1).map((l) => Number(l.trim().split(/\s+/)[0])), [0, 1, 2, 5, 6]);
  assert.match(lines[4], /bad data/);
  assert.match(lines[5], /diverged/);
});
