/**
 * Runs test modules side by side, **each in its own process** (the test task's runner for tests/).
 *
 * Why not `deno test --parallel`: that runs the modules as threads of one process, and OpenBLAS's thread
 * pool and thread count are process-wide. Modules that call threaded OpenBLAS at the same time while
 * another one changes the thread count (lib/linalg/blas.ts runs small calls on one thread, the pool runs its
 * parts on one thread) deadlocked OpenBLAS 0.3.21 inside `sgemm_thread_tn` (two threads spinning in
 * `exec_blas`, seen in gdb) or crashed it. A trainer is one process with one caller of threaded OpenBLAS;
 * one process per module tests it that way.
 *
 * Every module is type-checked once up front (`deno check`), then run with `--no-check`. Each module's
 * output is printed whole when it ends, so the logs of two modules never interleave. A module that does not
 * end within the timeout is killed and reported by name; a module killed by a signal (a crash) says which.
 * Exit status: 0 when every module passed, 1 otherwise, after a summary naming each failed module.
 *
 * SIGTERM, SIGINT and SIGHUP (a CI timeout, Ctrl-C through `npx deno task test`) are forwarded to the test
 * processes running (the type check included); no further module starts; one that has not ended
 * {@link STOP_GRACE_MS} later is killed (SIGKILL). Once every one has ended the runner names the modules it
 * stopped and exits with 128 + the signal's number (143 for SIGTERM), leaving no test process behind.
 *
 * Each module gets `FACTOROUT_THREADS` = CPUs ÷ modules at once (at least 1; a value set by the caller
 * wins), so the modules together never ask for more threads than the machine has: OpenBLAS's threads
 * busy-wait, and two modules on two OpenBLAS threads each, on a 2-core machine that other jobs shared, made
 * tests/layers_exact_test.ts run past ten minutes. The modules that test threaded paths set their own thread counts.
 *
 * Environment: `FACTOROUT_TEST_JOBS` (modules at once, default the number of CPUs),
 * `FACTOROUT_TEST_TIMEOUT_S` (per module, default 900).
 *
 * Run: deno run -A scripts/test_modules.ts tests/
 *
 * @module
 */

const deno = Deno.execPath();
const args = Deno.args.length > 0 ? Deno.args : ["tests/"];

function positiveInt(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`test_modules: ${name} must be a positive integer, got '${raw}'`);
    Deno.exit(2);
  }
  return v;
}

const cpus = navigator.hardwareConcurrency || 2;
const jobs = positiveInt("FACTOROUT_TEST_JOBS", cpus);
const timeoutS = positiveInt("FACTOROUT_TEST_TIMEOUT_S", 900);
const threads = Deno.env.get("FACTOROUT_THREADS") || String(Math.max(1, Math.floor(cpus / jobs)));
// what lib/output/webgpu/device.ts sets for its own requests, for the tests that ask navigator.gpu directly
// (Linux: Vulkan only; EGL's teardown at exit crashed a module after its tests had passed)
const webgpuBackend = Deno.env.get("DENO_WEBGPU_BACKEND") || (Deno.build.os === "linux" ? "vulkan" : "");

/** The test modules named by `args`: files as given, folders searched for `*_test.ts` (sorted). */
async function modules(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(p);
    } catch {
      console.error(`test_modules: '${p}' does not exist`);
      Deno.exit(2);
    }
    if (info.isFile) {
      out.push(p);
      continue;
    }
    const found: string[] = [];
    for await (const e of Deno.readDir(p)) {
      if (e.isFile && /_test\.(ts|tsx|js|mjs)$/.test(e.name)) found.push(`${p.replace(/\/$/, "")}/${e.name}`);
    }
    out.push(...found.sort());
  }
  return out;
}

type Outcome = {
  file: string;
  ok: boolean;
  seconds: number;
  why: string;
  summary: string;
  /** For a failed module, what failed (deno's ERRORS section, else its last lines), shortened. */
  excerpt: string;
};

/** How long the test processes get to end after a forwarded stop signal before they are killed. */
const STOP_GRACE_MS = 5000;
const SIGNAL_NUMBER = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type StopSignal = keyof typeof SIGNAL_NUMBER;
/** The child processes running now (each module's `deno test`, the type check). */
const running = new Set<Deno.ChildProcess>();
/** The stop signal received, if any: no module starts after it. */
let stopping: StopSignal | undefined;

/**
 * Sends `signal` to `child`'s process group (a module runs in a session of its own, `setsid`, so the jobs
 * its tests spawn are in it too and no job is left running, reparented), else to `child` alone.
 */
function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    Deno.kill(-child.pid, signal);
    return;
  } catch { /* not a group of its own (the type check), or gone */ }
  try {
    child.kill(signal);
  } catch { /* already gone */ }
}

for (const signal of Object.keys(SIGNAL_NUMBER) as StopSignal[]) {
  Deno.addSignalListener(signal, () => {
    if (stopping) return;
    stopping = signal;
    console.error(`test_modules: ${signal}: stopping the ${running.size} running test process(es)`);
    for (const child of running) kill(child, signal);
    const timer = setTimeout(() => {
      for (const child of running) kill(child, "SIGKILL");
    }, STOP_GRACE_MS);
    Deno.unrefTimer(timer);
  });
}

/** Runs `child` to its end as one of {@link running}; a stop signal that came before its spawn reaches it too. */
async function watched(child: Deno.ChildProcess): Promise<Deno.CommandOutput> {
  running.add(child);
  if (stopping) kill(child, stopping);
  try {
    return await child.output();
  } finally {
    running.delete(child);
  }
}

/** After a stop signal, once every child has ended: the line, and the exit with 128 + its number. */
function exitIfStopped(stopped: string[]): void {
  if (!stopping) return;
  console.error(
    `test_modules: stopped by ${stopping}${stopped.length ? `; modules stopped: ${stopped.join(", ")}` : ""}`,
  );
  Deno.exit(128 + SIGNAL_NUMBER[stopping]);
}

const decoder = new TextDecoder();
/** The `ok | N passed | M failed` line deno prints last, without colours. */
function summaryLine(text: string): string {
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  const lines = plain.trim().split("\n").filter((l) => /\bpassed\b.*\bfailed\b/.test(l));
  return lines.at(-1)?.trim() ?? "";
}

/**
 * What a failed module printed about its failure, without colours: deno's ERRORS section (the assertion
 * and its message) when there is one, else the last lines. Repeated after the table, so that a CI log
 * that keeps only its tail still shows why.
 */
function failureExcerpt(text: string, maxLines = 40): string {
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  const errors = plain.indexOf(" ERRORS ");
  const failures = plain.indexOf(" FAILURES ", errors + 1);
  const part = errors >= 0 ? plain.slice(errors, failures > errors ? failures : undefined) : plain;
  const lines = part.trim().split("\n").filter((l) => !/^\s+at /.test(l))
    .map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
  return (errors >= 0 ? lines.slice(0, maxLines) : lines.slice(-maxLines)).join("\n");
}

async function runOne(file: string): Promise<Outcome> {
  const t0 = performance.now();
  // a session of its own (setsid; --wait keeps the exit status): a stop or a timeout reaches its jobs too
  const child = new Deno.Command("setsid", {
    args: ["--wait", deno, "test", "-A", "--no-check", file],
    env: { FACTOROUT_THREADS: threads, ...(webgpuBackend ? { DENO_WEBGPU_BACKEND: webgpuBackend } : {}) },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill(child, "SIGKILL");
  }, timeoutS * 1000);
  const { code, signal, stdout, stderr } = await watched(child);
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  const text = decoder.decode(stdout) + decoder.decode(stderr);
  console.log(`\n===== ${file} =====\n${text.trimEnd()}`);
  const why = stopping && (signal !== null || code !== 0)
    ? `stopped by ${stopping}`
    : timedOut
    ? `did not end within ${timeoutS} s (FACTOROUT_TEST_TIMEOUT_S); killed`
    : signal !== null
    ? `killed by ${signal} (a crash)`
    : code !== 0
    ? `exit code ${code}`
    : "";
  const ok = why === "";
  return { file, ok, seconds, why, summary: summaryLine(text), excerpt: ok ? "" : failureExcerpt(text) };
}

const files = await modules(args);
if (files.length === 0) {
  console.error(`test_modules: no *_test.ts modules under ${args.join(" ")}`);
  Deno.exit(2);
}

const t0 = performance.now();
const check = await watched(
  new Deno.Command(deno, { args: ["check", ...files], stdin: "null", stdout: "inherit", stderr: "inherit" })
    .spawn(),
);
exitIfStopped([]);
if (!check.success) {
  console.error("test_modules: type check failed (deno check above)");
  Deno.exit(1);
}

const outcomes: Outcome[] = [];
let next = 0;
async function lane(): Promise<void> {
  while (next < files.length && !stopping) {
    const file = files[next++];
    outcomes.push(await runOne(file));
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, lane));
exitIfStopped(outcomes.filter((o) => o.why.startsWith("stopped by")).map((o) => o.file));

outcomes.sort((a, b) => a.file.localeCompare(b.file));
const failed = outcomes.filter((o) => !o.ok);
console.log(
  `\n===== ${files.length} modules, ${jobs} at a time, one process each, FACTOROUT_THREADS=${threads} =====`,
);
for (const o of outcomes) {
  console.log(`${o.ok ? "ok    " : "FAILED"} ${o.file} (${o.seconds.toFixed(1)} s) ${o.why || o.summary}`);
}
const wall = ((performance.now() - t0) / 1000).toFixed(0);
if (failed.length > 0) {
  for (const o of failed) console.log(`\n----- why ${o.file} failed -----\n${o.excerpt}`);
  console.log(
    `\n${failed.length} of ${files.length} modules FAILED (${wall} s): ${
      failed.map((o) => o.file).join(", ")
    }`,
  );
  Deno.exit(1);
}
console.log(`\nall ${files.length} modules passed (${wall} s)`);
