// lib/core/stop.ts: a signal inside a deferred section only sets the flag; outside it runs the exit cleanups
// and exits 9 once; a second signal never exits; cleanups registered and forgotten.
import assert from "node:assert/strict";
import { EXIT } from "../lib/core/exit_codes.ts";
import { atExit, removeAtExit, StopController, StoppedError } from "../lib/core/stop.ts";

function controller() {
  const lines: string[] = [], exits: number[] = [];
  const stop = new StopController("job", (l) => lines.push(l), (c) => exits.push(c));
  return { stop, lines, exits };
}

Deno.test("stop: a signal during a deferred section sets the flag; a second one is noted and does not exit", async () => {
  const { stop, lines, exits } = controller();
  let sawAbort = false;
  await stop.deferred(async () => {
    stop.receive("SIGTERM");
    stop.receive("SIGINT");
    await Promise.resolve();
    sawAbort = stop.abort.aborted;
  });
  assert.ok(sawAbort);
  assert.equal(stop.signal, "SIGTERM");
  assert.deepEqual(exits, []);
  assert.match(lines[0], /^job: SIGTERM: finishing the step in progress, then writing a checkpoint/);
  assert.match(lines[1], /^job: SIGINT while stopping: not stopping in the middle of a write/);
  assert.ok(stop.abort.reason instanceof StoppedError);
  assert.equal((stop.abort.reason as StoppedError).code, EXIT.stopped);
});

Deno.test("stop: a signal outside a deferred section removes registered temporaries and exits 9 with one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tmp = `${dir}/x.tmp`, kept = `${dir}/kept.tmp`;
    await Deno.mkdir(tmp);
    await Deno.writeTextFile(`${tmp}/a`, "a");
    await Deno.writeTextFile(kept, "k");
    const forgetTmp = removeAtExit(tmp);
    const forgetKept = removeAtExit(kept);
    forgetKept(); // renamed into place meanwhile: no longer a temporary
    let ran = 0;
    const forgetCount = atExit(() => ran++);
    const { stop, lines, exits } = controller();
    stop.note = "nothing partial left";
    stop.receive("SIGHUP");
    assert.deepEqual(exits, [EXIT.stopped]);
    assert.deepEqual(lines, ["job: stopped by SIGHUP; nothing partial left"]);
    await assert.rejects(Deno.stat(tmp), Deno.errors.NotFound);
    assert.equal(await Deno.readTextFile(kept), "k");
    assert.equal(ran, 1);
    stop.receive("SIGTERM"); // a second signal: no second exit, cleanups not run again
    assert.deepEqual(exits, [EXIT.stopped]);
    assert.equal(ran, 1);
    forgetTmp();
    forgetCount();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stop: install and dispose add and remove the signal listeners", () => {
  const { stop } = controller();
  stop.install();
  stop.dispose();
  stop.dispose(); // twice is harmless
});
