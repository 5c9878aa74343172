// Operating-system faults, every command as a child process on a tiny generated corpus (js backend, d = 8):
// a full disk during checkpoint, export, corpus and refresh; a read-only output folder; `--out` under a
// regular file; a missing input; an unreadable input; negative flag values. Each must end with exit 8
// (5 for a missing input, 2 for a bad value) and exactly one stderr line `<command>: <what> <path>:
// <cause>; <what to do>` naming the path, no stack trace (only with --debug / FACTOROUT_DEBUG=1), and
// nothing written before lost (older checkpoints and the published version byte-identical, `latest`
// unmoved, no temporary file left on the full disk).
//
// A full disk is a 512 KiB tmpfs when the tests run as root and `mount` works, else the test-only
// injection FACTOROUT_FAULT_ENOSPC_AFTER_BYTES (lib/core/os_errors.ts), which both modes also check. A
// read-only folder is that tmpfs remounted read-only (root ignores file modes), else chmod 555. An
// unreadable input is chmod 000, read by a root child without CAP_DAC_OVERRIDE (setpriv), else by the
// non-root user itself. Cases that none of these can set up are skipped with a note.
import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT } from "../lib/core/exit_codes.ts";
import { withFlags } from "./child.ts";

const PIPE = new URL("../pipelines/", import.meta.url).pathname;
const dec = new TextDecoder();
const isRoot = Deno.uid() === 0;

type Result = { code: number; stdout: string; stderr: string };

/** Runs `deno run -A pipelines/<cmd>.ts args` (under `prefix`, e.g. setpriv, when given). */
async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; prefix?: string[] } = {},
): Promise<Result> {
  const argv = ["run", "-A", join(PIPE, `${cmd}.ts`), ...args];
  const [exe, ...rest] = opts.prefix
    ? [...opts.prefix, Deno.execPath(), ...argv]
    : [Deno.execPath(), ...argv];
  const o = await new Deno.Command(exe, {
    args: rest,
    stdout: "piped",
    stderr: "piped",
    env: { OPENBLAS_NUM_THREADS: "1", FACTOROUT_DEBUG: "", ...opts.env },
  }).output();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

/** Exit `code`, one last line `<cmd>: … <path>: <cause>; <fix>`, no other line of that command, no stack. */
function assertOneLine(r: Result, cmd: string, code: number, path: string, cause: RegExp): string {
  assert.equal(r.code, code, `${cmd} exit ${r.code}:\n${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  const last = lines[lines.length - 1];
  const esc = path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  assert.match(last, new RegExp(`^${cmd}: [a-z][^:]* ${esc}\\S*: `), r.stderr);
  assert.match(last, cause, r.stderr);
  assert.match(last, /; [a-z].+$/, `says what to do: ${last}`);
  assert.ok(!/^\s+at /m.test(r.stderr), `no stack trace:\n${r.stderr}`);
  assert.ok(!/\b(Error|Uncaught)\b.*\(os error/.test(r.stderr), `no raw Deno error:\n${r.stderr}`);
  assert.equal(lines.filter((l) => l.startsWith(`${cmd}: cannot`)).length, 1, r.stderr);
  return last;
}

const COMMON = ["--backend", "js", "--eval-dir", "none", "--progress", "none"];
const TRAIN = [
  ...COMMON,
  "--dim",
  "8",
  "--epochs",
  "2",
  "--min-count",
  "1",
  "--lr",
  "0.001",
  "--formats",
  "vec",
];

async function corpusFile(dir: string): Promise<string> {
  // 2000 sentences of 12 words drawn from a Zipf-like law over 300 words (fixed LCG: reproducible)
  let s = 12345;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const lines: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const w: string[] = [];
    for (let j = 0; j < 12; j++) w.push(`w${Math.floor(Math.exp(next() * Math.log(300))) - 1}`);
    lines.push(w.join(" "));
  }
  const path = join(dir, "c.txt");
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

async function sh(...args: string[]): Promise<boolean> {
  const o = await new Deno.Command(args[0], { args: args.slice(1), stdout: "null", stderr: "null" }).output()
    .catch(() => ({ success: false }));
  return o.success;
}

/** A small tmpfs at `dir` (root only), or false. */
async function mountTmpfs(dir: string, size = "512k"): Promise<boolean> {
  return isRoot && await sh("mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir);
}

/** Fills the file system of `dir` up to `leave` bytes free. */
async function fill(dir: string, leave: number): Promise<void> {
  const out = await new Deno.Command("df", { args: ["-B1", "--output=avail", dir], stdout: "piped" })
    .output();
  const avail = Number(dec.decode(out.stdout).trim().split("\n").pop());
  const f = await Deno.open(join(dir, "filler"), { write: true, create: true });
  try {
    const chunk = new Uint8Array(4096);
    for (let n = 0; n < avail - leave; n += chunk.length) await f.write(chunk);
  } catch {
    // full already
  } finally {
    f.close();
  }
}

async function files(dir: string): Promise<Map<string, Uint8Array>> {
  const m = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) m.set(e.name, await Deno.readFile(join(dir, e.name)));
  }
  return m;
}

async function tmpLeft(dir: string): Promise<string[]> {
  const left: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.name.endsWith(".tmp")) left.push(join(d, e.name));
      else if (e.isDirectory) await walk(join(d, e.name));
    }
  };
  await walk(dir);
  return left;
}

/** A finished run in `out`: returns its checkpoints and its published version (bytes) to compare later. */
async function trainedRun(data: string, out: string) {
  const r = await run("train", ["--data", data, "--out", out, ...TRAIN]);
  assert.equal(r.code, 0, r.stderr);
  return {
    checkpoints: await files(join(out, "checkpoints")),
    latest: await Deno.readLink(join(out, "embeddings", "latest")),
    version: await files(join(out, "embeddings", "latest")),
  };
}

type Snapshot = Awaited<ReturnType<typeof trainedRun>>;

async function assertIntact(out: string, before: Snapshot): Promise<void> {
  const ck = await files(join(out, "checkpoints"));
  for (const [name, bytes] of before.checkpoints) {
    assert.deepEqual(ck.get(name), bytes, `checkpoint ${name} kept`);
  }
  assert.equal(await Deno.readLink(join(out, "embeddings", "latest")), before.latest, "latest unmoved");
  assert.deepEqual(
    await files(join(out, "embeddings", "latest")),
    before.version,
    "published version intact",
  );
}

Deno.test("faults: a full disk in train (checkpoint), export, refresh and corpus: exit 8, the path named, nothing lost", async () => {
  const work = await Deno.makeTempDir({ prefix: "faults-os-" });
  const data = await corpusFile(work);
  const disk = join(work, "disk");
  await Deno.mkdir(disk);
  const mounted = await mountTmpfs(disk);
  // without a tmpfs, the same faults come from the injected write failure (counted from the start of
  // each process: 0 fails the first chunk written through the shared writer)
  const full = mounted ? {} : { env: { FACTOROUT_FAULT_ENOSPC_AFTER_BYTES: "0" } };
  if (!mounted) console.log("faults: no tmpfs (not root or mount refused): injected ENOSPC instead");
  try {
    const out = join(disk, "run");
    const before = await trainedRun(data, out);
    if (mounted) await fill(disk, 8192);

    // train --resume: the next checkpoint does not fit
    const t = await run("train", ["--resume", out, ...withFlags(TRAIN, "--epochs", "3")], full);
    const tl = assertOneLine(
      t,
      "train",
      EXIT.io,
      join(out, "checkpoints", "ckpt-"),
      /no space left on device/,
    );
    assert.match(tl, /cannot write checkpoint .*\.fock: no space left on device; free space/);
    await assertIntact(out, before);
    assert.deepEqual(await tmpLeft(out), [], "no partial file left on the full disk");

    // export: the new version does not fit; the previous one stays published
    const e = await run("export", ["--checkpoint", out, "--formats", "vec,bin", "--backend", "js"], full);
    assertOneLine(e, "export", EXIT.io, join(out, "embeddings", "versions"), /no space left on device/);
    await assertIntact(out, before);
    assert.deepEqual(await tmpLeft(out), [], "no partial version left");

    // refresh: the same fault, the same code; the run's checkpoints and version untouched
    const f = await run("refresh", ["--from", out, "--data", data, ...COMMON], full);
    assertOneLine(f, "refresh", EXIT.io, out, /no space left on device/);
    await assertIntact(out, before);
    await assert.rejects(Deno.stat(join(out, "refresh.lock")), Deno.errors.NotFound, "lock released");

    // corpus: its shard (or vocabulary) does not fit
    const c = await run("corpus", ["--input", data, "--out", join(disk, "corpus"), "--min-count", "1"], full);
    assertOneLine(c, "corpus", EXIT.io, join(disk, "corpus"), /no space left on device/);
    assert.deepEqual(await tmpLeft(disk), [], "no partial shard left");
  } finally {
    if (mounted) await sh("umount", disk);
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("faults: a disk with no byte left: every job's line names its lock file, the first file it writes", async () => {
  // the lock file's write was not inside withPath: the line said "cannot access (path not reported)". Only a
  // real full disk shows it (the injected ENOSPC is the shared writer's, which the lock does not use)
  if (!isRoot) {
    console.log("faults: not root: no tmpfs, the lock file's full disk is skipped");
    return;
  }
  const work = await Deno.makeTempDir({ prefix: "faults-os-" });
  const data = await corpusFile(work);
  const disk = join(work, "disk");
  await Deno.mkdir(disk);
  const mounted = await mountTmpfs(disk);
  try {
    if (!mounted) {
      console.log("faults: mount refused: the lock file's full disk is skipped");
      return;
    }
    const out = join(disk, "run");
    const before = await trainedRun(data, out);
    await fill(disk, 0);
    const lockFile = join(out, "run.lock");
    const jobs: [string, string[], string][] = [
      ["train", ["--resume", out, ...withFlags(TRAIN, "--epochs", "3")], lockFile],
      ["export", ["--checkpoint", out, "--formats", "vec", "--backend", "js"], lockFile],
      ["refresh", ["--from", out, "--data", data, ...COMMON], lockFile],
      [
        "corpus",
        ["--input", data, "--out", join(disk, "corpus"), "--min-count", "1"],
        join(disk, "corpus.lock"),
      ],
    ];
    for (const [cmd, args, lock] of jobs) {
      const r = await run(cmd, args);
      const line = assertOneLine(r, cmd, EXIT.io, lock, /no space left on device/);
      assert.match(line, /cannot write lock file /, line);
    }
    await assertIntact(out, before);
    assert.deepEqual(
      (await tmpLeft(disk)).filter((p) => !p.endsWith("filler")),
      [],
      "no lock temporary left",
    );
  } finally {
    if (mounted) await sh("umount", disk);
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("faults: a read-only output folder: train, export, corpus and refresh exit 8 naming it, the run intact; export to another --out reads a read-only run", async () => {
  const work = await Deno.makeTempDir({ prefix: "faults-os-" });
  const data = await corpusFile(work);
  const disk = join(work, "ro");
  await Deno.mkdir(disk);
  const mounted = await mountTmpfs(disk, "2m");
  if (isRoot && !mounted) {
    console.log("faults: root without mount: modes are ignored, read-only case skipped");
    await Deno.remove(work, { recursive: true });
    return;
  }
  const cause = mounted ? /read-only file system/ : /permission denied/;
  try {
    const out = join(disk, "run");
    const before = await trainedRun(data, out);
    if (mounted) assert.ok(await sh("mount", "-o", "remount,ro", disk));
    else {
      for (
        const d of [
          disk,
          out,
          join(out, "checkpoints"),
          join(out, "embeddings"),
          join(out, "embeddings", "versions"),
        ]
      ) {
        await Deno.chmod(d, 0o555);
      }
    }
    const t = await run("train", ["--resume", out, ...withFlags(TRAIN, "--epochs", "3")]);
    assertOneLine(t, "train", EXIT.io, out, cause);
    const n = await run("train", ["--data", data, "--out", join(disk, "new"), ...TRAIN]);
    assertOneLine(n, "train", EXIT.io, join(disk, "new"), cause);
    const e = await run("export", ["--checkpoint", out, "--formats", "vec", "--backend", "js"]);
    // export takes the run folder's lock (run.lock) before it writes under embeddings/: either is named
    assertOneLine(e, "export", EXIT.io, out, cause);
    // to an --out elsewhere: a read-only file system (an archive of runs) is exported without the run's
    // lock, which it cannot hold, and which no job can need there (it exited 8 on the lock file); a folder
    // this user may not write is still refused (another user's job may be writing it)
    const pub = join(work, "pub");
    const x = await run("export", ["--checkpoint", out, "--out", pub, "--formats", "vec", "--backend", "js"]);
    if (mounted) {
      assert.equal(x.code, 0, x.stderr);
      assert.match(
        x.stderr,
        /is on a read-only file system: its checkpoints are read without the run's lock/,
      );
      await Deno.stat(join(pub, "latest", "input.vec"));
    } else assertOneLine(x, "export", EXIT.io, out, cause);
    const c = await run("corpus", ["--input", data, "--out", join(disk, "corpus"), "--min-count", "1"]);
    assertOneLine(c, "corpus", EXIT.io, join(disk, "corpus"), cause);
    const f = await run("refresh", ["--from", out, "--data", data, ...COMMON]);
    assertOneLine(f, "refresh", EXIT.io, out, cause);
    await assertIntact(out, before);
  } finally {
    if (mounted) await sh("umount", disk);
    else await sh("chmod", "-R", "u+w", disk);
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("faults: --out under a regular file (every command), a full disk when train publishes, --debug: exit 8, the path named", async () => {
  const work = await Deno.makeTempDir({ prefix: "faults-os-" });
  try {
    const data = await corpusFile(work);
    const file = join(work, "a-file");
    await Deno.writeTextFile(file, "not a folder\n");
    const cause = /a part of the path is a regular file, not a folder; choose a path under a folder$/;
    assertOneLine(
      await run("train", ["--data", data, "--out", join(file, "run"), ...TRAIN]),
      "train",
      EXIT.io,
      file,
      cause,
    );
    assertOneLine(
      await run("corpus", ["--input", data, "--out", join(file, "c"), "--min-count", "1"]),
      "corpus",
      EXIT.io,
      file,
      cause,
    );
    assertOneLine(
      await run("corpus", [
        "--synthetic",
        "--synthetic-tokens",
        "1000",
        "--synthetic-text",
        join(file, "s.txt"),
      ]),
      "corpus",
      EXIT.io,
      file,
      cause,
    );
    const out = join(work, "run");
    const before = await trainedRun(data, out);
    assertOneLine(
      await run("export", [
        "--checkpoint",
        out,
        "--out",
        join(file, "emb"),
        "--formats",
        "vec",
        "--backend",
        "js",
      ]),
      "export",
      EXIT.io,
      file,
      cause,
    );
    // a full disk when train publishes, after its checkpoints: 8 as in export, and the remedy works. The
    // injected budget is what the same run wrote through the shared writer before publishing (its shard and
    // checkpoints, vocabulary and manifest; a folder name of the same length gives checkpoints of the same
    // size): more than the training thread writes, the checkpoint writer's worker counting its own
    let budget = 64;
    for (const sub of ["corpus", "checkpoints"]) {
      for await (const e of Deno.readDir(join(out, sub))) {
        if (/^(part-.*\.arrow|ckpt-.*\.fock|vocab\.tsv|manifest\.json)$/.test(e.name)) {
          budget += (await Deno.stat(join(out, sub, e.name))).size;
        }
      }
    }
    const out2 = join(work, "rux");
    // --keep-best false: best.fock, rewritten at each better epoch, would spend the budget differently
    const p = await run("train", ["--data", data, "--out", out2, ...TRAIN, "--keep-best", "false"], {
      env: { FACTOROUT_FAULT_ENOSPC_AFTER_BYTES: String(budget) },
    });
    assert.equal(p.code, EXIT.io, p.stderr);
    const pl = p.stderr.trimEnd().split("\n").pop()!;
    assert.match(
      pl,
      /^train: publishing the embeddings into .*rux\/embeddings failed after training \(cannot write .*: no space left on device; .*\); the checkpoints in .*rux\/checkpoints are saved: rerun npx deno task export --checkpoint /,
    );
    assert.ok(!/^\s+at /m.test(p.stderr), p.stderr);
    assert.equal((await files(join(out2, "checkpoints"))).size, 2, "both checkpoints saved");
    const again = await run("export", ["--checkpoint", out2, "--formats", "vec", "--backend", "js"]);
    assert.equal(again.code, 0, again.stderr);
    // the test-only injected ENOSPC (what CI uses without root) gives the same line and keeps the version
    const inj = await run("export", ["--checkpoint", out, "--formats", "vec", "--backend", "js"], {
      env: { FACTOROUT_FAULT_ENOSPC_AFTER_BYTES: "100" },
    });
    assertOneLine(inj, "export", EXIT.io, join(out, "embeddings", "versions"), /no space left on device/);
    await assertIntact(out, before);
    assert.deepEqual(await tmpLeft(out), []);
    // refresh saves its checkpoint first, then fails to publish: 8 as in export, and it says so
    const f = await run("refresh", ["--from", out, "--data", data, "--out", join(file, "emb"), ...COMMON]);
    assert.equal(f.code, EXIT.io, f.stderr);
    assert.match(
      f.stderr.trimEnd().split("\n").pop()!,
      /^refresh: export failed \(cannot create folder .*a-file\/emb/,
    );
    assert.ok(!/^\s+at /m.test(f.stderr), f.stderr);
    await assertIntact(out, { ...before, checkpoints: new Map() });
    // with --debug (or FACTOROUT_DEBUG=1) the stack comes too, the last line unchanged
    const dbgs: { args: string[]; env: Record<string, string> }[] = [
      { args: ["--debug"], env: {} },
      { args: [], env: { FACTOROUT_DEBUG: "1" } },
    ];
    for (const dbg of dbgs) {
      const d = await run("corpus", ["--input", data, "--out", join(file, "c"), ...dbg.args], {
        env: dbg.env,
      });
      assert.equal(d.code, EXIT.io, d.stderr);
      assert.match(d.stderr, /^\s+at /m, "stack with debug");
      assert.match(
        d.stderr.trimEnd().split("\n").pop()!,
        /^corpus: cannot create folder .*a-file\/c(\.[0-9a-f-]+\.tmp)?: a part/,
      );
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("faults: a missing input is bad data (5), an unreadable one an I/O error (8), named in every command", async () => {
  const work = await Deno.makeTempDir({ prefix: "faults-os-" });
  try {
    const data = await corpusFile(work);
    const missing = join(work, "nope.txt");
    assertOneLine0(await run("train", ["--data", missing, "--out", join(work, "r")]), "train", missing);
    assertOneLine0(await run("corpus", ["--input", missing, "--out", join(work, "c")]), "corpus", missing);
    // --neighbours: something to evaluate also where ../shared/eval is missing (nothing is exit 2)
    const evalArgs = (vec: string) => ["--vectors", vec, "--neighbours", "a"];
    assertOneLine0(await run("eval", evalArgs(join(work, "nope.vec"))), "eval", join(work, "nope.vec"));
    assertOneLine0(
      await run("export", ["--vectors", join(work, "nope.vec"), "--out", join(work, "e")]),
      "export",
      join(work, "nope.vec"),
    );
    assertOneLine0(await run("eval", evalArgs(join(data, "x.vec"))), "eval", data);

    // unreadable: chmod 000, and a root child without the capability to override file modes
    const prefix = isRoot
      ? [
        "setpriv",
        "--inh-caps=-dac_override,-dac_read_search",
        "--bounding-set=-dac_override,-dac_read_search",
      ]
      : undefined;
    if (isRoot && !(await sh("setpriv", "--bounding-set=-dac_override", "true"))) {
      console.log("faults: root without setpriv: unreadable-input case skipped");
      return;
    }
    const out = join(work, "run");
    await trainedRun(data, out);
    const secret = join(work, "secret.txt"), vec = join(work, "secret.vec");
    await Deno.copyFile(data, secret);
    await Deno.copyFile(join(out, "embeddings", "latest", "input.vec"), vec);
    await Deno.chmod(secret, 0);
    await Deno.chmod(vec, 0);
    const denied = /permission denied; give this user access/;
    // a folder on the way that cannot be searched: not "missing" (5) but unreadable (8)
    const closed = join(work, "closed");
    await Deno.mkdir(closed);
    await Deno.copyFile(data, join(closed, "c.txt"));
    await Deno.chmod(closed, 0);
    const inClosed = join(closed, "c.txt");
    const tr = await run("train", ["--data", inClosed, "--out", join(work, "r3"), ...TRAIN], { prefix });
    assertOneLine(tr, "train", EXIT.io, inClosed, denied);
    const cr = await run("corpus", ["--input", inClosed, "--out", join(work, "c3")], { prefix });
    assertOneLine(cr, "corpus", EXIT.io, inClosed, denied);
    await Deno.chmod(closed, 0o755);
    // an unreadable shard of a prepared corpus (Arrow read here, Parquet in a worker): not "corrupt" (5)
    const pq = join(work, "pq");
    assert.equal(
      (await run("corpus", ["--input", data, "--out", pq, "--format", "parquet", "--min-count", "1"])).code,
      0,
    );
    for (const shard of [join(pq, "part-00000.parquet"), join(out, "corpus", "part-00000.arrow")]) {
      await Deno.chmod(shard, 0);
      const dir = join(shard, "..");
      const r = await run("train", ["--data", dir, "--out", join(work, "r4"), ...TRAIN], { prefix });
      const line = assertOneLine(r, "train", EXIT.io, shard, denied);
      assert.match(line, /^train: cannot read shard /);
      await Deno.chmod(shard, 0o644);
    }
    // an unreadable --config is the same fault (8); a missing one stays a usage error (2)
    const cfg = join(work, "c.json");
    await Deno.writeTextFile(cfg, "{}");
    await Deno.chmod(cfg, 0);
    assertOneLine(await run("train", ["--config", cfg], { prefix }), "train", EXIT.io, cfg, denied);
    assertOneLine(
      await run("train", ["--data", secret, "--out", join(work, "r2"), ...TRAIN], { prefix }),
      "train",
      EXIT.io,
      secret,
      denied,
    );
    assertOneLine(
      await run("corpus", ["--input", secret, "--out", join(work, "c2")], { prefix }),
      "corpus",
      EXIT.io,
      secret,
      denied,
    );
    assertOneLine(await run("eval", evalArgs(vec), { prefix }), "eval", EXIT.io, vec, denied);
    assertOneLine(
      await run("export", ["--vectors", vec, "--out", join(work, "e2")], { prefix }),
      "export",
      EXIT.io,
      vec,
      denied,
    );
    assertOneLine(
      await run("refresh", ["--from", out, "--data", secret, ...COMMON], { prefix }),
      "refresh",
      EXIT.io,
      secret,
      denied,
    );
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

/** A missing input: exit 5, one last line naming it, no stack. */
function assertOneLine0(r: Result, cmd: string, path: string): void {
  assert.equal(r.code, EXIT.badData, `${cmd}: ${r.stderr}`);
  const last = r.stderr.trimEnd().split("\n").pop()!;
  assert.ok(last.startsWith(`${cmd}: `) && last.includes(path), r.stderr);
  assert.match(last, /no such file|does not exist|not a folder/);
  assert.ok(!/^\s+at /m.test(r.stderr), r.stderr);
}

Deno.test("CLI values: negative numbers reach each command's own check (exit 2, the flag and value named)", async () => {
  const cases: [string, string[], RegExp][] = [
    ["train", ["--lr", "-1"], /^train: --lr must be a number > 0, got '-1'$/],
    ["train", ["--dim", "-5"], /^train: --dim must be an integer ≥ 1.*, got '-5'$/],
    ["train", ["--epochs", "-2"], /^train: --epochs must be an integer ≥ 1, got '-2'$/],
    ["corpus", ["--window", "-1"], /^corpus: --window must be an integer >= 1, got "-1"$/],
    ["eval", ["--vectors", "x.vec", "--k", "-5"], /^eval: --k must be a positive integer, got "-5"$/],
    [
      "refresh",
      ["--from", "r", "--data", "d", "--epochs", "-2"],
      /^refresh: --epochs must be an integer >= 0, got "-2"$/,
    ],
    [
      "refresh",
      ["--from", "r", "--data", "d", "--lr", "-1"],
      /^refresh: --lr must be a positive number, got "-1"$/,
    ],
    ["export", ["--formats", "-1"], /^export: --formats: unknown format "-1"/],
    ["train", ["--lr", "--dim", "3"], /^train: --lr needs a value/],
  ];
  for (const [cmd, args, re] of cases) {
    const r = await run(cmd, args);
    assert.equal(r.code, EXIT.usage, `${cmd} ${args.join(" ")}: ${r.stderr}`);
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
  }
  // every --help lists the I/O code and --debug, in the one format
  for (const cmd of ["train", "corpus", "export", "eval", "refresh"]) {
    const h = await run(cmd, ["--help"]);
    assert.equal(h.code, 0, h.stderr);
    assert.match(
      h.stdout,
      /\n {2}8 {2}operating-system I\/O error \(disk full, permission, read-only, missing folder\)/,
      cmd,
    );
    assert.match(h.stdout, /--debug/, cmd);
    // one help format for every command (lib/core/cli.ts helpText)
    assert.match(h.stdout, new RegExp(`^usage: npx deno task ${cmd}\\b`), cmd);
    assert.match(h.stdout, /\n\nflags:\n {2}--\S+ <value> +\S/, cmd);
    assert.match(h.stdout, /\n {2}--\S+ <value> +\S.*\(default: \S/, cmd);
  }
});
