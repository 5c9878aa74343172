/**
 * Runs test modules side by side, **each in its own process** (the test task's runner for tests/), and the
 * JSDoc examples of `--doc` paths as more jobs of the same kind.
 *
 * Why not `deno test --parallel`: that runs the modules as threads of one process, and OpenBLAS's thread
 * pool and thread count are process-wide. Modules that call threaded OpenBLAS at the same time while
 * another one changes the thread count (lib/linalg/blas.ts runs small calls on one thread, the pool runs its
 * parts on one thread) deadlocked OpenBLAS 0.3.21 inside `sgemm_thread_tn` (two threads spinning in
 * `exec_blas`, seen in gdb) or crashed it. A trainer is one process with one caller of threaded OpenBLAS;
 * one process per module tests it that way.
 *
 * The examples (`deno test --doc`) run in groups, one process per folder below each `--doc` folder
 * (`lib/core`, `lib/io`, …; a file given alone is a group of its own), on one OpenBLAS thread, in the same
 * pool as the modules: `deno test` spends most of an example's time making the isolate it runs in (on the
 * 2-core VMs mostly first writes to new memory), and a separate `--parallel` run after the modules' pool,
 * which left a core idle at its end, took its whole time on top of theirs.
 *
 * The jobs start longest first, by the seconds `durations.json` in the first folder given records (a job
 * not in it counts as longest): a long module that starts last would run alone at the end on a 2-core
 * machine. `FACTOROUT_TEST_RECORD=1` writes this run's seconds there (`tests/durations.json`).
 *
 * Every module is type-checked once up front (`deno check`, and `deno check --doc` for the examples), then
 * run with `--no-check`. Each job's output is printed whole when it ends, so the logs of two jobs never
 * interleave. A job that does not end within the timeout is killed and reported by name; one killed by a
 * signal (a crash) says which. Exit status: 0 when every job passed, 1 otherwise, after a summary naming
 * each failed one.
 *
 * SIGTERM, SIGINT and SIGHUP (a CI timeout, Ctrl-C through `npx deno task test`) are forwarded to the test
 * processes running (the type check included); no further job starts; one that has not ended
 * {@link STOP_GRACE_MS} later is killed (SIGKILL). Once every one has ended the runner names the jobs it
 * stopped and exits with 128 + the signal's number (143 for SIGTERM), leaving no test process behind.
 *
 * Each module gets `FACTOROUT_THREADS` = CPUs ÷ jobs at once (at least 1; a value set by the caller
 * wins), so the jobs together never ask for more threads than the machine has: OpenBLAS's threads
 * busy-wait, and two modules on two OpenBLAS threads each, on a 2-core machine that other jobs shared, made
 * tests/layers_exact_test.ts run past ten minutes. The modules that test threaded paths set their own thread
 * counts. Mesa's software WebGPU (llvmpipe) gets `LP_NUM_THREADS=0` unless set: its tiny dispatches ran
 * faster without its helper threads, which a second job wants anyway.
 *
 * Environment: `FACTOROUT_TEST_JOBS` (jobs at once, default the number of CPUs),
 * `FACTOROUT_TEST_TIMEOUT_S` (per job, default 900), `FACTOROUT_TEST_RECORD`.
 *
 * Run: deno run -A scripts/test_modules.ts tests/ [--doc lib/ mod.ts] [--doc-ignore lib/output/webgpu/]
 *
 * @module
 */

const deno = Deno.execPath();

/** The command line: module paths, then after `--doc` the paths whose examples run; `--doc-ignore P` leaves P out. */
function parseCommandLine(
  argv: string[],
): { modulePaths: string[]; docPaths: string[]; docIgnore: string[] } {
  const modulePaths: string[] = [], docPaths: string[] = [], docIgnore: string[] = [];
  let into = modulePaths;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--doc") into = docPaths;
    else if (a === "--doc-ignore" || a.startsWith("--doc-ignore=")) {
      const v = a === "--doc-ignore" ? argv[++i] : a.slice("--doc-ignore=".length);
      if (!v) {
        console.error("test_modules: --doc-ignore needs a path");
        Deno.exit(2);
      }
      docIgnore.push(v.replace(/\/+$/, ""));
    } else if (a.startsWith("--")) {
      console.error(`test_modules: unknown flag '${a}' (--doc, --doc-ignore)`);
      Deno.exit(2);
    } else into.push(a);
  }
  if (modulePaths.length === 0 && docPaths.length === 0) modulePaths.push("tests/");
  return { modulePaths, docPaths, docIgnore };
}
const { modulePaths, docPaths, docIgnore } = parseCommandLine(Deno.args);

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
const llvmpipeThreads = Deno.env.get("LP_NUM_THREADS") ?? "0";
const record = ["1", "true", "yes"].includes(Deno.env.get("FACTOROUT_TEST_RECORD") ?? "");

/** One process to run: a test module, or a group of files whose examples run (`deno test --doc`). */
type Job = { name: string; args: string[]; threads: string };

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

/** Whether `path` is `ignored` or inside it. */
function ignoredBy(path: string, ignored: string[]): boolean {
  const p = path.replace(/^\.\//, "");
  return ignored.some((i) => {
    const x = i.replace(/^\.\//, "");
    return p === x || p.startsWith(`${x}/`);
  });
}

/** Every `.ts` file under `dir` (sorted), outside `ignored`. */
async function tsFiles(dir: string, ignored: string[]): Promise<string[]> {
  const out: string[] = [];
  const entries = (await Array.fromAsync(Deno.readDir(dir))).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const p = `${dir}/${e.name}`;
    if (ignoredBy(p, ignored)) continue;
    if (e.isDirectory) out.push(...await tsFiles(p, ignored));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/**
 * The example groups of `paths`: a file is a group of its own; a folder gives one group per folder right
 * below it (with everything under that) and one for its own files. Only files with a `ts` example block.
 */
async function docGroups(paths: string[], ignored: string[]): Promise<{ name: string; files: string[] }[]> {
  const groups = new Map<string, string[]>();
  for (const raw of paths) {
    const p = raw.replace(/\/+$/, "");
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(p);
    } catch {
      console.error(`test_modules: '${raw}' does not exist`);
      Deno.exit(2);
    }
    const files = info.isFile ? [p] : await tsFiles(p, ignored);
    for (const f of files) {
      if (!/```ts\s*$/m.test(await Deno.readTextFile(f))) continue;
      const below = info.isFile ? "" : f.slice(p.length + 1).split("/");
      const group = info.isFile ? p : below.length > 1 ? `${p}/${below[0]}` : p;
      groups.set(group, [...(groups.get(group) ?? []), f]);
    }
  }
  return [...groups].map(([name, files]) => ({ name, files }));
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

async function runOne(job: Job): Promise<Outcome> {
  const file = job.name;
  const t0 = performance.now();
  // a session of its own (setsid; --wait keeps the exit status): a stop or a timeout reaches its jobs too
  const child = new Deno.Command("setsid", {
    args: ["--wait", deno, "test", "-A", "--no-check", ...job.args],
    env: {
      FACTOROUT_THREADS: job.threads,
      LP_NUM_THREADS: llvmpipeThreads,
      ...(webgpuBackend ? { DENO_WEBGPU_BACKEND: webgpuBackend } : {}),
    },
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

const files = modulePaths.length ? await modules(modulePaths) : [];
const groups = docPaths.length ? await docGroups(docPaths, docIgnore) : [];
if (modulePaths.length && files.length === 0) {
  console.error(`test_modules: no *_test.ts modules under ${modulePaths.join(" ")}`);
  Deno.exit(2);
}
const docFiles = groups.flatMap((g) => g.files);
const all: Job[] = [
  ...files.map((f) => ({ name: f, args: [f], threads })),
  // the examples on one OpenBLAS thread, as before in one process: no call of theirs is threaded
  ...groups.map((g) => ({ name: `examples of ${g.name}`, args: ["--doc", ...g.files], threads: "1" })),
];

/** Where the jobs' seconds are kept: `durations.json` in the first folder given. */
async function durationsFile(): Promise<string | undefined> {
  for (const p of modulePaths) {
    if ((await Deno.stat(p).catch(() => undefined))?.isDirectory) {
      return `${p.replace(/\/+$/, "")}/durations.json`;
    }
  }
  return undefined;
}
const durationsPath = await durationsFile();
const known: Record<string, number> = {};
if (durationsPath) {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(durationsPath));
    // only numbers count: anything else is a job not recorded
    for (const [name, v] of Object.entries(parsed ?? {})) if (typeof v === "number") known[name] = v;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      console.error(
        `test_modules: ${durationsPath} ignored (${(e as Error).message}); jobs run in name order`,
      );
    }
  }
}
// longest first; a job not recorded first of all, in name order (a stable sort)
const order = [...all].sort((a, b) => (known[b.name] ?? Infinity) - (known[a.name] ?? Infinity) || 0);

const t0 = performance.now();
const checks = await Promise.all([
  ...(files.length ? [["check", ...files]] : []),
  ...(docFiles.length ? [["check", "--doc", ...docFiles]] : []),
].map((args) =>
  watched(new Deno.Command(deno, { args, stdin: "null", stdout: "inherit", stderr: "inherit" }).spawn())
));
exitIfStopped([]);
if (checks.some((c) => !c.success)) {
  console.error("test_modules: type check failed (deno check above)");
  Deno.exit(1);
}

const outcomes: Outcome[] = [];
let next = 0;
async function lane(): Promise<void> {
  while (next < order.length && !stopping) {
    const job = order[next++];
    outcomes.push(await runOne(job));
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, order.length) }, lane));
exitIfStopped(outcomes.filter((o) => o.why.startsWith("stopped by")).map((o) => o.file));

outcomes.sort((a, b) => a.file.localeCompare(b.file));
const failed = outcomes.filter((o) => !o.ok);
console.log(
  `\n===== ${files.length} modules${
    groups.length ? ` and ${groups.length} groups of examples` : ""
  }, ${jobs} at a time, one process each, FACTOROUT_THREADS=${threads} =====`,
);
for (const o of outcomes) {
  console.log(`${o.ok ? "ok    " : "FAILED"} ${o.file} (${o.seconds.toFixed(1)} s) ${o.why || o.summary}`);
}
const wall = ((performance.now() - t0) / 1000).toFixed(0);
if (record && durationsPath) {
  const seconds = Object.fromEntries(outcomes.map((o) => [o.file, Math.round(o.seconds * 10) / 10]));
  await Deno.writeTextFile(durationsPath, JSON.stringify(seconds, null, 2) + "\n");
  console.log(`test_modules: each job's seconds written to ${durationsPath} (FACTOROUT_TEST_RECORD)`);
}
if (failed.length > 0) {
  for (const o of failed) console.log(`\n----- why ${o.file} failed -----\n${o.excerpt}`);
  console.log(
    `\n${failed.length} of ${all.length} jobs FAILED (${wall} s): ${failed.map((o) => o.file).join(", ")}`,
  );
  Deno.exit(1);
}
console.log(`\nall ${all.length} jobs passed (${wall} s)`);
