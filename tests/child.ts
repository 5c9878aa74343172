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
