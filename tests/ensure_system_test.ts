// scripts/ensure-system.sh: each command installs only the packages it uses (train and refresh: OpenBLAS,
// never a bench peer), and a package that cannot be installed (an offline root host: apt-get exits 100; not
// root) is one `<command>: …` line naming it and its install command, exit 2 when the command needs it,
// a warning otherwise. apt-get, id and ldconfig are stubs on a PATH of their own; no network.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pidAlive } from "../lib/core/lock.ts";

const SCRIPT = new URL("../scripts/ensure-system.sh", import.meta.url).pathname;
const JOB = new URL("../scripts/job.sh", import.meta.url).pathname;

type Host = { root?: boolean; apt?: "ok" | "offline"; blas?: boolean; fasttext?: boolean; ci?: boolean };

/** A PATH with only the stubs and the few tools the script runs; `root` an empty file system prefix. */
async function host(dir: string, h: Host): Promise<{ env: Record<string, string>; aptLog: string }> {
  const bin = join(dir, "bin"), aptLog = join(dir, "apt.log");
  await Deno.mkdir(bin, { recursive: true });
  const stub = (name: string, body: string) =>
    Deno.writeTextFile(join(bin, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
  await stub("id", `echo ${h.root === false ? 1000 : 0}`);
  await stub(
    "ldconfig",
    h.blas ? `echo "	libopenblas.so.0 (libc6,x86-64) => /usr/lib/libopenblas.so.0"` : "true",
  );
  await stub(
    "apt-get",
    `echo "$*" >> ${aptLog}\n` +
      (h.apt === "ok" ? "exit 0" : `echo "E: Could not resolve 'deb.debian.org'" >&2\nexit 100`),
  );
  if (h.fasttext) await stub("fasttext", "exit 0");
  for (const tool of ["bash", "dirname", "mktemp", "rm"]) {
    const real = new TextDecoder().decode(
      (await new Deno.Command("bash", { args: ["-c", `command -v ${tool}`], stdout: "piped" }).output())
        .stdout,
    ).trim();
    await Deno.symlink(real, join(bin, tool));
  }
  return {
    env: { PATH: bin, FACTOROUT_SYSTEM_ROOT: join(dir, "fs"), ...(h.ci ? { CI: "true" } : {}) },
    aptLog,
  };
}

async function ensure(dir: string, h: Host, who: string, ...jobArgs: string[]) {
  const { env, aptLog } = await host(dir, h);
  const args = [SCRIPT, who, ...(jobArgs.length ? ["--", ...jobArgs] : [])];
  const o = await new Deno.Command("/bin/bash", { args, env, clearEnv: true, stderr: "piped", cwd: dir })
    .output();
  const apt = await Deno.readTextFile(aptLog).catch(() => "");
  return { code: o.code, err: new TextDecoder().decode(o.stderr).trim(), apt };
}

async function inTemp(f: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ensure-system: train and refresh install OpenBLAS only, never a bench or test package", async () => {
  for (const who of ["train", "refresh"]) {
    await inTemp(async (dir) => {
      const r = await ensure(dir, { apt: "ok" }, who);
      assert.equal(r.code, 0, r.err);
      assert.match(r.apt, /install .*libopenblas0-pthread/);
      assert.doesNotMatch(r.apt, /fasttext|sqlglot|vulkan|time/);
    });
    await inTemp(async (dir) => {
      // OpenBLAS there, fastText and sqlglot not: nothing to do, apt-get never runs
      const r = await ensure(dir, { apt: "offline", blas: true }, who);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.apt, "");
      assert.equal(r.err, "");
    });
  }
});

Deno.test("ensure-system: an offline root host: train goes on with a warning naming OpenBLAS; CI=true exits 2", async () => {
  await inTemp(async (dir) => {
    const r = await ensure(dir, { apt: "offline" }, "train");
    assert.equal(r.code, 0, r.err);
    const last = r.err.split("\n").at(-1)!;
    assert.match(
      last,
      /^train: warning: missing Debian packages libopenblas0-pthread \(apt-get install failed: E: Could not resolve/,
    );
    assert.match(last, /sudo apt-get install libopenblas0-pthread/);
  });
  await inTemp(async (dir) => {
    const r = await ensure(dir, { apt: "offline", ci: true }, "refresh");
    assert.equal(r.code, 2, r.err);
    assert.match(
      r.err.split("\n").at(-1)!,
      /^refresh: missing Debian packages libopenblas0-pthread .*sudo apt-get install libopenblas0-pthread/,
    );
  });
});

Deno.test("ensure-system: test and bench tasks install the rest; a needed peer that cannot be installed exits 2", async () => {
  await inTemp(async (dir) => {
    const r = await ensure(dir, { apt: "ok" }, "test");
    assert.equal(r.code, 0, r.err);
    for (
      const p of [
        "libopenblas0-pthread",
        "libvulkan1",
        "mesa-vulkan-drivers",
        "python3-sqlglot",
        "fasttext",
        "time",
      ]
    ) {
      assert.match(r.apt, new RegExp(`install .*\\b${p}\\b`), p);
    }
  });
  await inTemp(async (dir) => {
    const r = await ensure(dir, { apt: "offline", blas: true }, "bench:peers");
    assert.equal(r.code, 2, r.err);
    assert.match(
      r.err.split("\n").at(-1)!,
      /^bench:peers: missing Debian packages fasttext time \(apt-get install failed: .*'sudo apt-get install fasttext time'/,
    );
  });
  await inTemp(async (dir) => {
    // not root: nothing is tried, the line says what to run
    const r = await ensure(dir, { root: false, blas: true, fasttext: true }, "bench:peers");
    assert.equal(r.code, 2, r.err);
    assert.equal(r.apt, "");
    assert.match(
      r.err,
      /^bench:peers: missing Debian packages time \(not root\): install them with 'sudo apt-get install time'/,
    );
  });
  await inTemp(async (dir) => {
    const r = await ensure(dir, { apt: "ok" }, "nonsense");
    assert.equal(r.code, 2);
    assert.match(r.err, /^ensure-system: give the command/);
  });
});

Deno.test("ensure-system: deno.json's tasks and scripts/job.sh name their command", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks;
  for (const t of ["test", "bench", "bench:peers", "bench:quality", "bench:sweep"]) {
    assert.ok(tasks[t].startsWith(`bash scripts/ensure-system.sh ${t} && `), `${t}: ${tasks[t]}`);
  }
  // train and refresh run scripts/job.sh, which gives ensure-system the job's arguments (deno task appends
  // them to the task's last command only)
  for (const t of ["train", "refresh"]) assert.equal(tasks[t], `bash scripts/job.sh ${t}`, t);
  assert.equal(tasks.setup, "bash scripts/ensure-system.sh all");
  for (const t of ["corpus", "export", "eval"]) assert.doesNotMatch(tasks[t], /ensure-system|job\.sh/, t);
  assert.match(await Deno.readTextFile(JOB), /ensure-system\.sh" "\$job" -- "\$@"/);
});

Deno.test("ensure-system: a train asking for --backend webgpu (flag or --config file) also installs the WebGPU packages", async () => {
  const gpu = /install .*libvulkan1[\s\S]*install .*mesa-vulkan-drivers/;
  for (
    const [args, webgpu] of [
      [[], false],
      [["--backend", "webgpu"], true],
      [["--epochs", "1", "--backend=webgpu", "--dim", "50"], true],
      [["--backend", "blas"], false],
      [["--config", "webgpu.json"], true],
      [["--config=webgpu.json"], true],
      [["--config", "webgpu.json", "--backend", "js"], false], // flags override the file
      [["--config", "blas.json"], false],
      [["--config", "missing.json"], false], // the job says what is wrong with it
      [["--out", "--backend"], false],
    ] as [string[], boolean][]
  ) {
    await inTemp(async (dir) => {
      await Deno.writeTextFile(join(dir, "webgpu.json"), '{ "dim": 50,\n  "backend" : "webgpu" }\n');
      await Deno.writeTextFile(join(dir, "blas.json"), '{"backend":"blas"}');
      const r = await ensure(dir, { apt: "ok" }, "train", ...args);
      assert.equal(r.code, 0, r.err);
      assert.match(r.apt, /install .*libopenblas0-pthread/, args.join(" "));
      if (webgpu) assert.match(r.apt, gpu, args.join(" "));
      else assert.doesNotMatch(r.apt, /vulkan/, args.join(" "));
    });
  }
  await inTemp(async (dir) => {
    // offline: the WebGPU packages are a warning like OpenBLAS (the job says what its adapter lacks)
    const r = await ensure(dir, { apt: "offline", blas: true }, "train", "--backend", "webgpu");
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /^train: warning: missing Debian packages libvulkan1 mesa-vulkan-drivers /m);
  });
});

/**
 * A root host whose apt-get hangs (it writes its pid to `pidFile`, then sleeps): `script` (ensure-system
 * or job.sh) with `args` is started and, once apt-get runs, sent `signal`.
 */
async function stoppedDuringInstall(script: string, args: string[], signal: Deno.Signal) {
  const dir = await Deno.makeTempDir();
  const pidFile = join(dir, "apt.pid");
  let apt = 0;
  try {
    const bin = join(dir, "bin");
    await Deno.mkdir(bin, { recursive: true });
    const stub = (name: string, body: string) =>
      Deno.writeTextFile(join(bin, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
    await stub("id", "echo 0");
    await stub("ldconfig", "true");
    await stub("apt-get", `echo $$ > ${pidFile}\nexec sleep 60`);
    for (const tool of ["bash", "dirname", "mktemp", "rm", "sleep"]) {
      const real = new TextDecoder().decode(
        (await new Deno.Command("bash", { args: ["-c", `type -P ${tool}`], stdout: "piped" }).output())
          .stdout,
      ).trim();
      await Deno.symlink(real, join(bin, tool));
    }
    const child = new Deno.Command("/bin/bash", {
      args: [script, ...args],
      env: { PATH: bin, FACTOROUT_SYSTEM_ROOT: join(dir, "fs") },
      clearEnv: true,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const t0 = Date.now();
    while (!(apt = Number(await Deno.readTextFile(pidFile).catch(() => "0")))) {
      assert.ok(Date.now() - t0 < 20_000, "apt-get never ran");
      await new Promise((r) => setTimeout(r, 20));
    }
    const t1 = Date.now();
    child.kill(signal);
    const o = await child.output();
    return {
      code: o.code,
      err: new TextDecoder().decode(o.stderr).trim(),
      seconds: (Date.now() - t1) / 1000,
      aptAlive: pidAlive(apt),
    };
  } finally {
    if (apt && pidAlive(apt)) Deno.kill(apt, "SIGKILL"); // the old scripts left it running
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ensure-system: SIGTERM or SIGINT during apt-get stops apt-get too, one line, exit 143 or 130", async () => {
  for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as [Deno.Signal, number][]) {
    const r = await stoppedDuringInstall(SCRIPT, ["train"], signal);
    assert.equal(r.code, code, r.err);
    assert.equal(r.aptAlive, false, "apt-get was left running");
    assert.ok(r.seconds < 10, `${r.seconds} s`);
    const last = r.err.split("\n").at(-1)!;
    assert.match(
      last,
      new RegExp(
        `^train: stopped by ${signal} while installing the Debian packages libopenblas0-pthread .*rerun`,
      ),
    );
  }
});

Deno.test("scripts/job.sh: SIGTERM while the job's packages install stops the installer and apt-get, exit 143, no job", async () => {
  const r = await stoppedDuringInstall(JOB, ["train", "--backend", "webgpu"], "SIGTERM");
  assert.equal(r.code, 143, r.err);
  assert.equal(r.aptAlive, false, "apt-get was left running");
  assert.ok(r.seconds < 10, `${r.seconds} s`);
  assert.match(
    r.err.split("\n").at(-1)!,
    /^train: stopped by SIGTERM while installing the Debian packages libopenblas0-pthread libvulkan1 mesa-vulkan-drivers /,
  );
});

// apt-get installs for real: the loader cache is read again after it (a review found the pre-install one
// re-checked, so CI=true exited 2 on a fresh root machine and train warned of a js fallback)

/** A root host whose apt-get really installs: afterwards ldconfig -p lists OpenBLAS and Vulkan. */
async function runInstalling(who: string, ci: boolean) {
  const dir = await Deno.makeTempDir();
  try {
    const bin = join(dir, "bin"), fs = join(dir, "fs"), done = join(dir, "installed");
    await Deno.mkdir(bin, { recursive: true });
    const stub = (name: string, body: string) =>
      Deno.writeTextFile(join(bin, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
    await stub("id", "echo 0");
    await stub(
      "ldconfig",
      `[ -e ${done} ] && printf '\\tlibopenblas.so.0 (libc6,x86-64) => /usr/lib/libopenblas.so.0\\n` +
        `\\tlibvulkan.so.1 (libc6,x86-64) => /usr/lib/libvulkan.so.1\\n'; true`,
    );
    await stub(
      "apt-get",
      `if [ "$1" = install ] || [ "$2" = install ] || [[ " $* " == *" install "* ]]; then touch ${done}; ` +
        `mkdir -p ${fs}/usr/share/vulkan/icd.d && touch ${fs}/usr/share/vulkan/icd.d/lvp_icd.x86_64.json; ` +
        `mkdir -p ${fs}/usr/bin && printf '#!/bin/bash\\nexit 0\\n' > ${fs}/usr/bin/time && chmod +x ${fs}/usr/bin/time; fi; exit 0`,
    );
    for (const tool of ["bash", "touch", "mkdir", "chmod", "printf", "mktemp", "rm"]) {
      const real = new TextDecoder().decode(
        (await new Deno.Command("bash", { args: ["-c", `type -P ${tool} || true`], stdout: "piped" })
          .output())
          .stdout,
      ).trim();
      if (real) await Deno.symlink(real, join(bin, tool));
    }
    const o = await new Deno.Command("/bin/bash", {
      args: [SCRIPT, who],
      env: { PATH: bin, FACTOROUT_SYSTEM_ROOT: fs, ...(ci ? { CI: "true" } : {}) },
      clearEnv: true,
      stderr: "piped",
    }).output();
    return { code: o.code, err: new TextDecoder().decode(o.stderr).trim() };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ensure-system under CI=true on a root host whose apt-get installs OpenBLAS: exit 0", async () => {
  const r = await runInstalling("train", true);
  assert.equal(r.code, 0, r.err);
});

Deno.test("ensure-system train on a root host whose apt-get installs OpenBLAS: no 'missing' warning", async () => {
  const r = await runInstalling("train", false);
  assert.equal(r.code, 0, r.err);
  assert.doesNotMatch(r.err, /missing Debian packages/);
});
