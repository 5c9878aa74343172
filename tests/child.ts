// One home for the tests that run a job (pipelines/*.ts) as a child process: its exit code and output.

/** A finished child: exit code, stdout and stderr as text. */
export type Run = { code: number; stdout: string; stderr: string };

import { shellWord } from "../lib/core/cli.ts";

const dec = new TextDecoder();

/** pipelines/<name>.ts's path. */
export const pipeline = (name: string): string =>
  new URL(`../pipelines/${name}.ts`, import.meta.url).pathname;

/** Runs `command ...args` to its end (in `cwd`, with `env` over this process's environment). */
export async function runCommand(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  const out = await new Deno.Command(command, { args, ...opts, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `deno run -A script ...args` (one OpenBLAS thread unless `env` says otherwise). */
export function runScript(script: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runCommand(Deno.execPath(), ["run", "-A", script, ...args], {
    env: { OPENBLAS_NUM_THREADS: "1", ...env },
  });
}

/**
 * Runs `deno run -A pipelines/<name>.ts ...args` under bash with its standard output sent by `redirect`
 * (`> /dev/full`, `| head -c 10 > /dev/null`, `> log 2>&1`), one OpenBLAS thread: the job's own exit code
 * (not the pipe's last command's) and its stderr (empty when `redirect` takes it too).
 */
export async function runRedirected(
  name: string,
  args: string[],
  redirect: string,
): Promise<{ code: number; stderr: string }> {
  const cmd = [Deno.execPath(), "run", "-A", pipeline(name), ...args].map(shellWord).join(" ");
  const r = await new Deno.Command("bash", {
    args: ["-c", `${cmd} ${redirect}; exit \${PIPESTATUS[0]}`],
    env: { OPENBLAS_NUM_THREADS: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: r.code, stderr: dec.decode(r.stderr) };
}

/**
 * A job's arguments: `base` (a test's shared flags) with `overrides` appended, every flag of `overrides`
 * dropped from `base` first (with its value: the next argument when it does not start with `--`). Every
 * job refuses a flag that takes one value given twice (lib/core/cli.ts), so a test that changes one of its
 * shared flags says so here instead of repeating it.
 */
export function withFlags(base: readonly string[], ...overrides: string[]): string[] {
  const given = new Set(overrides.filter((a) => a.startsWith("--")).map((a) => a.split("=")[0]));
  const kept: string[] = [];
  for (let i = 0; i < base.length; i++) {
    const name = base[i].split("=")[0];
    if (!base[i].startsWith("--") || !given.has(name)) {
      kept.push(base[i]);
      continue;
    }
    if (!base[i].includes("=") && i + 1 < base.length && !base[i + 1].startsWith("--")) i++;
  }
  return [...kept, ...overrides];
}

/**
 * A job of pipelines/<name>.ts started as a child (`env` over one OpenBLAS thread), read as it runs:
 * `done` resolves with its Run when it has ended, `seen(re)` when its stderr has matched `re` (or it ended),
 * `kill(sig)` signals it unless it is already gone, `stdout()` is what it has written so far.
 */
export function spawnJob(name: string, args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", pipeline(name), ...args],
    stdout: "piped",
    stderr: "piped",
    env: { OPENBLAS_NUM_THREADS: "1", ...env },
  }).spawn();
  let stderr = "", stdout = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const pump = async (s: ReadableStream<Uint8Array>, into: (t: string) => void) => {
    for await (const chunk of s) {
      into(dec.decode(chunk));
      for (const w of waiters.splice(0)) {
        if (w.re.test(stderr)) w.resolve();
        else waiters.push(w);
      }
    }
  };
  const pumps = Promise.all([
    pump(child.stderr, (t) => (stderr += t)),
    pump(child.stdout, (t) => (stdout += t)),
  ]);
  const done = (async (): Promise<Run> => {
    const { code } = await child.status;
    await pumps;
    for (const w of waiters.splice(0)) w.resolve();
    return { code, stdout, stderr };
  })();
  const seen = (re: RegExp) =>
    re.test(stderr) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ re, resolve }));
  const kill = (sig: Deno.Signal) => {
    try {
      child.kill(sig);
    } catch { /* already gone */ }
  };
  return { child, done, seen, kill, stdout: () => stdout };
}
