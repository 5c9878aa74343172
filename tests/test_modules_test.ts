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

Deno.test({
  name:
    "test_modules: the longest job by durations.json first; --doc groups run the examples; RECORD writes the seconds",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const tests = join(dir, "tests"), lib = join(dir, "lib");
      await Deno.mkdir(tests);
      await Deno.mkdir(join(lib, "sub"), { recursive: true });
      for (const name of ["a", "b", "c"]) {
        await Deno.writeTextFile(join(tests, `${name}_test.ts`), `Deno.test("${name}", () => {});\n`);
      }
      const example = (body: string) =>
        `/**\n * @example\n * \`\`\`ts\n * ${body}\n * \`\`\`\n */\nexport const x = 1;\n`;
      await Deno.writeTextFile(join(lib, "sub", "good.ts"), example(`console.log("example ran");`));
      await Deno.writeTextFile(
        join(lib, "top.ts"),
        example(`if (1 + 1 === 2) throw new Error("example failed");`),
      );
      await Deno.writeTextFile(join(lib, "skipped.ts"), example(`throw new Error("an ignored folder ran");`));
      await Deno.writeTextFile(join(lib, "plain.ts"), `export const y = 2;\n`);
      // b recorded longest, a shortest; c not recorded (runs first)
      await Deno.writeTextFile(
        join(tests, "durations.json"),
        JSON.stringify({ [join(tests, "a_test.ts")]: 1, [join(tests, "b_test.ts")]: 30 }),
      );
      const run = async (env: Record<string, string>, ...args: string[]) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", RUNNER, tests, ...args],
          env: { FACTOROUT_TEST_JOBS: "1", NO_COLOR: "1", ...env },
          stdout: "piped",
          stderr: "piped",
        }).output();
        return {
          code: out.code,
          text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
        };
      };
      const ran = await run({}, "--doc", lib, "--doc-ignore", join(lib, "skipped.ts"));
      // the unrecorded groups of examples first too
      const started = [...ran.text.matchAll(/^===== (.+) =====$/gm)].map((m) => m[1]);
      assert.deepEqual(
        started.filter((n) => n.endsWith("_test.ts")),
        ["c", "b", "a"].map((n) => join(tests, `${n}_test.ts`)),
        ran.text,
      );
      // one group per folder below lib, one for lib's own files; the ignored file is left out
      assert.match(ran.text, new RegExp(`^ok +examples of ${join(lib, "sub")} `, "m"));
      assert.match(ran.text, /example ran/);
      assert.match(ran.text, new RegExp(`^FAILED examples of ${lib} `, "m"));
      assert.match(ran.text, /example failed/);
      assert.doesNotMatch(ran.text, /an ignored folder ran/);
      assert.equal(ran.code, 1);
      assert.match(ran.text, /1 of 5 jobs FAILED/);

      await Deno.remove(join(lib, "top.ts"));
      const rec = await run(
        { FACTOROUT_TEST_RECORD: "1" },
        "--doc",
        lib,
        "--doc-ignore",
        join(lib, "skipped.ts"),
      );
      assert.equal(rec.code, 0, rec.text);
      const seconds = JSON.parse(await Deno.readTextFile(join(tests, "durations.json")));
      assert.deepEqual(
        Object.keys(seconds).sort(),
        [...["a", "b", "c"].map((n) => join(tests, `${n}_test.ts`)), `examples of ${join(lib, "sub")}`]
          .sort(),
      );
      for (const s of Object.values(seconds)) assert.ok(typeof s === "number" && s > 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
