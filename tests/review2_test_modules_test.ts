// Review 2026-12-05 (r3): scripts/test_modules.ts forwards a stop signal to each module's `deno test`, but a
// process that the module spawned (a train/refresh job, as most of tests/ do) is left running, reparented to
// init: "leaving no test process behind" (its doc) holds only for the test processes themselves.
import assert from "node:assert/strict";
import { join } from "node:path";

const RUNNER = new URL("../scripts/test_modules.ts", import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

Deno.test({
  name: "review2: SIGTERM to test_modules leaves no process a test module spawned",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    let pid = 0;
    try {
      const pidFile = join(dir, "child.pid");
      await Deno.writeTextFile(
        join(dir, "spawns_test.ts"),
        `Deno.test("spawns a job", async () => {\n` +
          `  const c = new Deno.Command("sleep", { args: ["120"] }).spawn();\n` +
          `  await Deno.writeTextFile(${JSON.stringify(pidFile)}, String(c.pid));\n` +
          `  await c.status;\n});\n`,
      );
      const runner = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", RUNNER, dir],
        env: { FACTOROUT_TEST_JOBS: "1" },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const deadline = Date.now() + 60_000;
      while (!pid && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        pid = Number(await Deno.readTextFile(pidFile).catch(() => "0"));
      }
      assert.ok(pid > 0, "the module's job started");
      runner.kill("SIGTERM");
      const out = await runner.output();
      assert.equal(out.code, 143, new TextDecoder().decode(out.stderr));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(alive(pid), false, `the module's job ${pid} is still running (orphaned)`);
    } finally {
      if (pid) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
