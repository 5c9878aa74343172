// One home for the tests that run a job (pipelines/*.ts) as a child process: its exit code and output.

/** A finished child: exit code, stdout and stderr as text. */
export type Run = { code: number; stdout: string; stderr: string };

const dec = new TextDecoder();

/** pipelines/<name>.ts's path. */
export const pipeline = (name: string): string =>
  new URL(`../pipelines/${name}.ts`, import.meta.url).pathname;

/** Runs `deno run -A script ...args` (one OpenBLAS thread unless `env` says otherwise). */
export async function runScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { OPENBLAS_NUM_THREADS: "1", ...env },
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
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
