// scripts/test_modules.ts: a SIGTERM reaches the test processes it runs (none is left running, each up to
// its 900 s timeout, on a shared machine), and the runner itself ends nonzero (143) naming them.
import assert from "node:assert/strict";
import { join } from "node:path";

const RUNNER = new URL("../scripts/test_modules.ts", import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    // a zombie (exited, not yet reaped) is not running
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

Deno.test({
  name: "test_modules: SIGTERM is forwarded to the running test processes, then exit 143",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const pids: number[] = [];
    try {
      for (const name of ["a", "b"]) {
        await Deno.writeTextFile(
          join(dir, `${name}_test.ts`),
          `Deno.test("sleeps", async () => {\n` +
            `  await Deno.writeTextFile(${JSON.stringify(join(dir, `${name}.pid`))}, String(Deno.pid));\n` +
            `  await new Promise((r) => setTimeout(r, 120_000));\n});\n`,
        );
      }
      const runner = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", RUNNER, dir],
        env: { FACTOROUT_TEST_JOBS: "2" },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const deadline = Date.now() + 60_000;
      while (pids.length < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        pids.length = 0;
        for (const name of ["a", "b"]) {
          const t = await Deno.readTextFile(join(dir, `${name}.pid`)).catch(() => "");
          if (t) pids.push(Number(t));
        }
      }
      assert.equal(pids.length, 2, "both test processes started");
      const t0 = performance.now();
      runner.kill("SIGTERM");
      const out = await runner.output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 143, err);
      assert.ok(performance.now() - t0 < 30_000, "the runner ends at once, not after the modules' timeout");
      // in the order they ended
      assert.match(
        err,
        /test_modules: stopped by SIGTERM; modules stopped: (?=.*a_test\.ts)(?=.*b_test\.ts)/,
      );
      for (const pid of pids) assert.equal(alive(pid), false, `test process ${pid} still running`);
    } finally {
      for (const pid of pids) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone, as it should be */ }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "SIGTERM to test_modules leaves no process a test module spawned",
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
