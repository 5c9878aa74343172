// The standalone benches (bench/pair.ts, threads.ts, trainer.ts, gpu.ts, losses.ts, layers.ts --profile,
// linalg.ts --pool) parse their flags through lib/core/cli.ts like every command: --help lists each flag and the exit codes (exit 0, nothing measured),
// and an unknown flag or a bad value is one line `bench/<name>: …` with exit 2, no stack trace (they called
// node:util parseArgs directly, and a bad flag printed its TypeError's stack).
import assert from "node:assert/strict";
import { runCommand } from "./child.ts";

async function bench(name: string, ...args: string[]) {
  const script = new URL(`../bench/${name}.ts`, import.meta.url).pathname;
  // no WebGPU adapter (bench/gpu.ts must never need one for its flags): the loader finds no driver
  const r = await runCommand(Deno.execPath(), ["run", "-A", script, ...args], {
    env: {
      VK_DRIVER_FILES: "/nonexistent/icd.json",
      DENO_WEBGPU_BACKEND: "vulkan",
      OPENBLAS_NUM_THREADS: "1",
    },
  });
  return { code: r.code, out: r.stdout, err: r.stderr.trim() };
}

const CASES: [string, RegExp, [string[], RegExp][]][] = [
  ["pair", /--shape <value>/, [
    [["--shape", "14206x257"], /^bench\/pair: --shape wants DxdxM/],
    [["--shape", "40x8x4", "--blocks", "0"], /^bench\/pair: --blocks must be a positive integer, got "0"$/],
    [["--shape", "40x8x4", "--loss", "hinge"], /^bench\/pair: --loss must be one of .*got "hinge"$/],
    [["--shape", "40x8x4", "--a", "threads=1"], /^bench\/pair: --a\/--b want NAME=value/],
  ]],
  ["threads", /--modes <value> .*\(default: split,openblas\)/, [
    [["--modes", "split,mkl"], /^bench\/threads: --modes takes split, openblas, independent, got 'mkl'$/],
    [["--threads", "1,x"], /^bench\/threads: --threads must be a positive integer, got "x"$/],
    [["--seconds", "0"], /^bench\/threads: --seconds must be a positive number, got "0"$/],
  ]],
  ["trainer", /--layer-seconds <value> .*\(default: 4\)/, [
    [["--threads", "two"], /^bench\/trainer: --threads must be a positive integer, got "two"$/],
    [["--readers", "process"], /^bench\/trainer: --readers takes worker and thread, got 'process'$/],
    [["--dim"], /^bench\/trainer: --dim needs a value/],
  ]],
  ["gpu", /--require-nvidia .*exit 3 unless/, [
    [["--seconds", "-1"], /^bench\/gpu: --seconds must be a positive number, got "-1"$/],
    [["--budget", "soon"], /^bench\/gpu: --budget must be a positive number, got "soon"$/],
  ]],
  ["losses", /--backend <value> .*\(default: blas\)/, [
    [["--backend", "cuda"], /^bench\/losses: --backend must be js, blas or webgpu, got "cuda"$/],
  ]],
  ["layers", /--profile <value> .*DxdXm/, [
    [[], /^bench\/layers: --profile DxdXm is needed/],
    [["--profile", "200x16"], /^bench\/layers: --profile wants DxdXm .*got '200x16'$/],
    [["--profile", "200x16x4", "--loss", "hinge"], /^bench\/layers: --loss must be one of .*got "hinge"$/],
    [["--profile", "200x16x4", "--seconds", "0"], /^bench\/layers: --seconds must be a positive number/],
  ]],
  ["linalg", /--shapes <value> .*mxd/, [
    [[], /^bench\/linalg: alone, bench\/linalg\.ts runs --pool/],
    [["--pool", "--shapes", "64x"], /^bench\/linalg: --shapes wants mxd pairs .*got '64x'$/],
  ]],
];

for (const [name, flag, bad] of CASES) {
  Deno.test(`bench/${name}.ts: --help lists the flags and exit codes; a bad flag or value is one line, exit 2`, async () => {
    for (const h of ["--help", "-h"]) {
      const help = await bench(name, h);
      assert.equal(help.code, 0, help.err);
      assert.match(help.out, new RegExp(`^usage: npx deno run -A bench/${name}\\.ts`));
      assert.match(help.out, flag);
      assert.match(help.out, /Exit codes/);
    }
    for (
      const [args, why] of [
        [["--bogus"], new RegExp(`^bench/${name}: Unknown option '--bogus'`)],
        ...bad,
      ] as [
        string[],
        RegExp,
      ][]
    ) {
      const r = await bench(name, ...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.equal(r.err.split("\n").length, 1, r.err);
      assert.match(r.err, why);
    }
  });
}

Deno.test("bench/gpu.ts: no WebGPU adapter is one line naming what to install, exit 2", async () => {
  const r = await bench("gpu", "--quick");
  assert.equal(r.code, 2, r.err);
  assert.equal(r.err.split("\n").length, 1, r.err);
  assert.match(
    r.err,
    /^bench\/gpu: backend "webgpu" unavailable: .*apt-get install libvulkan1 mesa-vulkan-drivers/,
  );
});

Deno.test("bench/threads.ts --out none prints the table only, as its --help says (it wrote a file named 'none')", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    const root = new URL("..", import.meta.url).pathname;
    const r = await runCommand(Deno.execPath(), [
      "run",
      "-A",
      "--config",
      `${root}deno.json`,
      `${root}bench/threads.ts`,
      "--quick",
      "--threads",
      "1",
      "--seconds",
      "0.05",
      "--out",
      "none",
    ], { cwd, env: { OPENBLAS_NUM_THREADS: "1" } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\| threads \| path \|/m);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(cwd)), [], "nothing written where it ran");
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
