// Fault injection on the jobs, as an operator or a scheduler would do it: real subprocesses of
// pipelines/train.ts, refresh.ts, export.ts and corpus.ts on a tiny generated corpus (js backend, so that
// results are byte-exact), SIGTERM at random moments (during training, during checkpoint writes, during
// export, during refresh, during corpus preparation), then --resume or a rerun: the same final state as
// an uninterrupted run; two trainings on one folder at once; corrupted, truncated and bit-flipped
// checkpoints; a fresh run into a used folder. docs/faults.md ("Jobs: signals, locks, checkpoints") has
// the table of these cases and their outcomes. Each random delay is printed in the assertion messages.
import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT } from "../lib/core/exit_codes.ts";
import { listCheckpoints, readCheckpoint } from "../lib/train/checkpoint.ts";
import { type Run as Result, spawnJob as spawn } from "./child.ts";

const dec = new TextDecoder();
const ROOT = await Deno.makeTempDir({ prefix: "faults_jobs_" });
const TEXT = join(ROOT, "tiny.txt"), TEXT2 = join(ROOT, "tiny2.txt");

/** A seeded Zipf-ish text: `lines` lines of 12 words from a 300-word vocabulary. */
function makeText(lines: number, seed: number, extra = 0): string {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const ws: string[] = [];
    for (let j = 0; j < 12; j++) ws.push(`w${Math.floor(300 ** rnd()) + extra * Math.floor(rnd() * 2)}`);
    out.push(ws.join(" "));
  }
  return out.join("\n") + "\n";
}
await Deno.writeTextFile(TEXT, makeText(3000, 1));
await Deno.writeTextFile(TEXT2, makeText(800, 2, 300));

const COMMON = [
  "--data",
  TEXT,
  "--backend",
  "js",
  "--dim",
  "16",
  "--batch",
  "4",
  "--min-count",
  "1",
  "--eval-dir",
  "none",
  "--progress",
  "none",
  "--formats",
  "bin",
];
const EPOCHS = ["--epochs", "10"];

const job = (name: string, args: string[], env?: Record<string, string>) => spawn(name, args, env).done;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function bytesOf(path: string): Promise<Uint8Array> {
  return await Deno.readFile(path);
}

/** Fails naming the first byte where two files' bytes differ (deepEqual's diff of large arrays takes minutes). */
function sameBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (i < a.length || i < b.length) {
    assert.fail(`${what}: differ at byte ${i} (${a.length} and ${b.length} bytes)`);
  }
}

async function latestBin(run: string): Promise<Uint8Array> {
  return await bytesOf(join(run, "embeddings", "latest", "input.bin"));
}

async function newestE(run: string): Promise<Float32Array> {
  const all = await listCheckpoints(join(run, "checkpoints"));
  return (await readCheckpoint(all[all.length - 1])).arrays["model.E"] as Float32Array;
}

/** Every *.tmp name under `dir` (recursively). */
async function temps(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (/\.tmp$/.test(e.name)) out.push(join(d, e.name));
      else if (e.isDirectory) await walk(join(d, e.name));
    }
  };
  await walk(dir).catch(() => {});
  return out;
}

function lastLine(r: Result): string {
  const lines = r.stderr.trim().split("\n");
  return lines[lines.length - 1];
}

/**
 * The command a job's last line prints after `cue` (`deno task <job> …`), split as bash splits it: the job's
 * name and its arguments, to run as they are.
 */
async function printedCommand(r: Result, cue: string): Promise<string[]> {
  const cmd = lastLine(r).split(cue)[1] ?? "";
  const out = await new Deno.Command("bash", { args: ["-c", `printf '%s\\n' ${cmd}`], stdout: "piped" })
    .output();
  const [npx, deno, task, name, ...args] = dec.decode(out.stdout).trimEnd().split("\n");
  assert.deepEqual([npx, deno, task], ["npx", "deno", "task"], `no command after '${cue}': ${r.stderr}`);
  return [name, ...args];
}

/**
 * Checks what a train job stopped by SIGTERM says against its run folder and finishes the run as its line
 * says: resume (stopped in training), export (stopped after training, before its version was in place), or
 * nothing (published). The machine's speed decides which phase a signal sent after a delay lands in; each
 * phase's outcome is checked for what is true then.
 */
async function finishStoppedTrain(r: Result, out: string, resume: string[], why: string): Promise<void> {
  assert.equal(r.code, EXIT.stopped, why);
  assert.deepEqual(await temps(out), [], why);
  await Deno.stat(join(out, "run.lock")).then(() => assert.fail(`lock left behind: ${why}`), () => {});
  const line = lastLine(r);
  const latest = () => Deno.readLink(join(out, "embeddings", "latest")).catch(() => undefined);
  let m;
  if (
    /^train: stopped by SIGTERM at step \d+ .*: checkpoint .*ckpt-\d+\.fock; resume with: npx deno task train --resume /
      .test(line)
  ) {
    assert.equal(await latest(), undefined, why);
    const res = await job("train", resume);
    assert.equal(res.code, 0, res.stderr);
  } else if (
    (m =
      /^train: stopped by SIGTERM; training is complete and its checkpoint (\S+)( \(epoch \d+, the lowest validation loss\))? is saved; publish it with: npx deno task export --checkpoint /
        .exec(line))
  ) {
    // the checkpoint the run publishes: its newest, or the best epoch's when that is not the last
    const all = await listCheckpoints(join(out, "checkpoints"));
    assert.equal(m[1], m[2] ? join(out, "checkpoints", "best.fock") : all.at(-1), why);
    assert.equal(await latest(), undefined, why);
    const [name, ...rest] = await printedCommand(r, "publish it with: ");
    const e = await job(name, rest);
    assert.equal(e.code, 0, e.stderr);
  } else {
    m =
      /^train: stopped by SIGTERM; training is complete and (.*) is published \(latest points at it\); nothing to rerun$/
        .exec(line);
    assert.ok(m, `unexpected last line: ${why}`);
    assert.ok(m[1].endsWith((await latest()) ?? "no latest"), why);
  }
}

// the uninterrupted reference run (10 epochs of 453 steps)
const REF = join(ROOT, "ref");
const refRun = await job("train", [...COMMON, ...EPOCHS, "--out", REF]);
if (refRun.code !== 0) throw new Error(refRun.stderr);
const REF_BIN = await latestBin(REF);
const REF_E = await newestE(REF);

Deno.test("faults: SIGTERM at random moments in training, then --resume: byte-identical to the uninterrupted run (js)", async () => {
  for (let round = 0; round < 2; round++) {
    const out = join(ROOT, `term-${round}`);
    const delay = Math.floor(Math.random() * 700);
    const p = spawn("train", [...COMMON, ...EPOCHS, "--out", out]);
    await p.seen(/^train: /m);
    await sleep(delay);
    p.kill("SIGTERM");
    const r = await p.done;
    const why = `round ${round}, SIGTERM ${delay} ms into training: ${r.stderr}`;
    if (r.code !== 0) await finishStoppedTrain(r, out, [...COMMON, "--resume", out], why);
    assert.deepEqual(await latestBin(out), REF_BIN, why);
    assert.deepEqual(await newestE(out), REF_E, why);
  }
});

Deno.test("faults: SIGTERM in training on blas (d = 65, float32 products), then --resume: byte-identical to the uninterrupted run", async () => {
  const blas = (out: string) => [
    ...COMMON.map((x) => (x === "js" ? "blas" : x === "16" ? "64" : x)),
    "--lr",
    "0.001",
    "--epochs",
    "4",
    "--out",
    out,
  ];
  const ref = join(ROOT, "blas-ref"), out = join(ROOT, "blas-term");
  const r0 = await job("train", blas(ref));
  assert.equal(r0.code, 0, r0.stderr);
  const delay = Math.floor(Math.random() * 600);
  const p = spawn("train", blas(out));
  await p.seen(/^train: /m);
  await sleep(delay);
  p.kill("SIGTERM");
  const r = await p.done;
  const why = `SIGTERM ${delay} ms into training: ${r.stderr}`;
  if (r.code !== 0) {
    await finishStoppedTrain(r, out, ["--resume", out, "--eval-dir", "none", "--progress", "none"], why);
  }
  // the signal's checkpoint falls between two settlements of the float32 accumulator: it is saved as it is
  // (FactoredOutputLayer.exportState), so the resumed run takes the uninterrupted run's steps bit for bit
  console.log(`blas: ${lastLine(r).replace(/^train: /, "").slice(0, 40)}…`);
  assert.deepEqual(await newestE(out), await newestE(ref), why);
  assert.deepEqual(await latestBin(out), await latestBin(ref), why);
});

Deno.test("faults: SIGTERM then SIGINT during checkpoint writes corrupts nothing; exit 9 after the write; resume is exact", async () => {
  const out = join(ROOT, "twice");
  const delay = Math.floor(Math.random() * 500);
  // a checkpoint after every step: most of the time is spent writing one
  const p = spawn("train", [...COMMON, ...EPOCHS, "--checkpoint-every", "1", "--out", out]);
  await p.seen(/^train: /m);
  await sleep(delay);
  p.kill("SIGTERM");
  await sleep(1);
  p.kill("SIGINT"); // another signal: two SIGTERMs close together may coalesce into one
  const r = await p.done;
  const why = `SIGTERM ×2 ${delay} ms into training: ${r.stderr}`;
  assert.equal(r.code, EXIT.stopped, why);
  // the second signal is seen when it arrives before the process ends (signals may also coalesce)
  if (!/SIGINT while stopping: not stopping in the middle of a write/.test(r.stderr)) {
    console.log("the second signal arrived after the process had ended");
  }
  assert.deepEqual(await temps(out), [], why);
  for (const c of await listCheckpoints(join(out, "checkpoints"))) await readCheckpoint(c); // all load
  const res = await job("train", [...COMMON, "--resume", out, "--checkpoint-every", "0"]);
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(await latestBin(out), REF_BIN, why);
});

Deno.test("faults: SIGTERM during export leaves latest on a complete version and no temporary folder", async () => {
  const run = join(ROOT, "export-run");
  await Deno.mkdir(run);
  await Deno.symlink(join(REF, "checkpoints"), join(run, "checkpoints"));
  let stopped = 0, latestBefore: string | undefined, versionsBefore = 0;
  for (let round = 0; round < 3; round++) {
    const delay = Math.floor(Math.random() * 700);
    const p = spawn("export", [
      "--checkpoint",
      join(run, "checkpoints"),
      "--formats",
      "vec,bin,arrow,parquet",
      "--output-rows",
      "--backend",
      "js",
    ]);
    await p.seen(/./); // its first line: the job is running (a signal while deno loads it is the default 143)
    await sleep(delay);
    p.kill("SIGTERM");
    const r = await p.done;
    const why = `round ${round}, SIGTERM ${delay} ms after start, exit ${r.code}: ${r.stderr}`;
    // the signal lands wherever the machine's speed puts it: before the version is in place (removed), in
    // its renames or after (published), or after the exit (0); each outcome is checked for what it says
    assert.ok(r.code === 0 || r.code === EXIT.stopped, why);
    const versions = join(run, "embeddings", "versions");
    const names = await Array.fromAsync(Deno.readDir(versions)).catch(() => []);
    for (const v of names) await Deno.stat(join(versions, v.name, "manifest.json")); // complete
    const latest = await Deno.readLink(join(run, "embeddings", "latest")).catch(() => undefined);
    if (r.code === 0) assert.equal(names.length, versionsBefore + 1, why);
    if (r.code === EXIT.stopped) {
      stopped++;
      const published = /^export: stopped by SIGTERM; version (.*) is published and latest points at it/
        .exec(lastLine(r));
      if (published) assert.ok(latest && published[1].endsWith(latest), why);
      else {
        // before its publication: nothing was published; in it: the unfinished version was removed, and what
        // latest points at (the previous version, or none in round 0)
        assert.match(
          lastLine(r),
          /^export: stopped by SIGTERM; (nothing was published|the unfinished version was removed; (latest still points at the previous one, .*|nothing is published under .* \(no latest\)));/,
          why,
        );
        if (latestBefore === undefined) assert.doesNotMatch(lastLine(r), /latest still points/, why);
        assert.equal(latest, latestBefore, why);
        assert.equal(names.length, versionsBefore, why);
      }
    }
    assert.deepEqual(await temps(run), [], why);
    await Deno.stat(join(run, "run.lock")).then(() => assert.fail(`lock left behind: ${why}`), () => {});
    latestBefore = latest;
    versionsBefore = names.length;
  }
  console.log(`export: ${stopped} of 3 stopped by SIGTERM`);
  // a later export runs as usual after the stopped ones
  const again = await job("export", [
    "--checkpoint",
    join(run, "checkpoints"),
    "--formats",
    "vec",
    "--backend",
    "js",
  ]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(await temps(run), []);
  await Deno.stat(join(run, "run.lock")).then(() => assert.fail("lock left behind"), () => {});
});

Deno.test("faults: SIGTERM just after an export's last line (its exit path) is exit 0 or 9 with the lock gone, never the default 143", async () => {
  // it ended when its event loop ran dry: a signal during the runtime's teardown met no listener (143);
  // half of the signals sent 0-40 ms after the published line did (the known gap of the test above)
  const run = join(ROOT, "export-exit");
  await Deno.mkdir(run);
  await Deno.symlink(join(REF, "checkpoints"), join(run, "checkpoints"));
  const codes: number[] = [];
  for (let round = 0; round < 6; round++) {
    const p = spawn("export", ["--checkpoint", run, "--formats", "bin", "--backend", "js"]);
    // stdout's one line is the published event, printed last (after it: the lock's release, the exit)
    while (!p.stdout().includes("\n")) {
      if (await Promise.race([p.done.then(() => true), sleep(2).then(() => false)])) break;
    }
    await sleep(round * 2);
    p.kill("SIGTERM");
    const r = await p.done;
    codes.push(r.code);
    const why = `round ${round}, SIGTERM ${
      round * 2
    } ms after the published line: exit ${r.code}: ${r.stderr}`;
    assert.ok(r.code === 0 || r.code === EXIT.stopped, why);
    if (r.code === EXIT.stopped) {
      assert.match(
        lastLine(r),
        /^export: stopped by SIGTERM; version .* is published and latest points at it/,
        why,
      );
    }
    await Deno.stat(join(run, "run.lock")).then(() => assert.fail(`lock left behind: ${why}`), () => {});
    assert.deepEqual(await temps(run), [], why);
  }
  console.log(`export exit path: exit codes ${codes.join(", ")}`);
});

Deno.test("faults: SIGTERM while eval reads its vectors is exit 9 with one line (it writes nothing)", async () => {
  const fifo = join(ROOT, "slow.vec");
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert.ok(made.success, "mkfifo");
  const p = spawn("eval", ["--vectors", fifo, "--eval-dir", "none", "--neighbours", "w1"]);
  // opening the fifo for writing returns once eval has opened it for reading: it is loaded and running
  const opening = Deno.open(fifo, { write: true });
  const first = await Promise.race([opening, p.done]);
  if (!(first instanceof Deno.FsFile)) {
    (await Deno.open(fifo, { read: true })).close(); // lets the pending open end
    (await opening).close();
    assert.fail(`eval ended without opening its --vectors: exit ${first.code}: ${first.stderr}`);
  }
  const w = first;
  await w.write(new TextEncoder().encode("2 2\nw1 1 0\n"));
  p.kill("SIGTERM");
  const r = await p.done;
  w.close();
  assert.equal(r.code, EXIT.stopped, r.stderr);
  assert.equal(lastLine(r), "eval: stopped by SIGTERM; nothing was written; rerun the same command");
});

Deno.test("faults: SIGTERM during refresh keeps <from> unchanged; the same command continues it to the uninterrupted result", async () => {
  const a = join(ROOT, "refresh-a"), b = join(ROOT, "refresh-b");
  for (const d of [a, b]) {
    await new Deno.Command("cp", { args: ["-r", REF, d] }).output();
    await Deno.remove(join(d, "embeddings"), { recursive: true });
  }
  const args = (from: string) => [
    "--from",
    from,
    "--data",
    TEXT2,
    "--epochs",
    "30",
    "--min-count",
    "1",
    "--backend",
    "js",
    "--eval-dir",
    "none",
    "--formats",
    "bin",
    "--progress",
    "none",
  ];
  const full = await job("refresh", args(a));
  assert.equal(full.code, 0, full.stderr);
  const before = await listCheckpoints(join(b, "checkpoints"));
  const beforeBytes = await Promise.all(before.map(bytesOf));
  const delay = Math.floor(Math.random() * 400);
  const p = spawn("refresh", args(b));
  await p.seen(/refresh: \d+ new words/);
  await sleep(delay);
  p.kill("SIGTERM");
  const r = await p.done;
  const why = `SIGTERM ${delay} ms into the refresh's training: ${r.stderr}`;
  const line = lastLine(r);
  let m;
  if (r.code === 0) {
    // finished before the signal
  } else if (
    /^refresh: stopped by SIGTERM at step \d+: .* is unchanged; continue with: npx deno task refresh /.test(
      line,
    )
  ) {
    assert.equal(r.code, EXIT.stopped, why);
    assert.deepEqual(await listCheckpoints(join(b, "checkpoints")), before, why);
    assert.deepEqual(await Promise.all(before.map(bytesOf)), beforeBytes, why);
    const again = await job("refresh", args(b));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /refresh: continuing the refresh stopped at /);
  } else if (
    /^refresh: stopped by SIGTERM; nothing partial was left and .* is unchanged; rerun the same command$/
      .test(line)
  ) {
    // after its training, before its checkpoint was in <from>: the same command redoes it
    assert.equal(r.code, EXIT.stopped, why);
    assert.deepEqual(await Promise.all(before.map(bytesOf)), beforeBytes, why);
    assert.equal((await job("refresh", args(b))).code, 0, why);
  } else if (
    (m = /^refresh: stopped by SIGTERM; the refreshed model is saved as (\S+); publish it with: (.*)$/.exec(
      line,
    ))
  ) {
    assert.equal(r.code, EXIT.stopped, why);
    assert.equal((await listCheckpoints(join(b, "checkpoints"))).at(-1), m[1], why);
    const e = await job("export", ["--checkpoint", b, "--formats", "bin", "--backend", "js"]);
    assert.equal(e.code, 0, e.stderr);
  } else {
    assert.equal(r.code, EXIT.stopped, why);
    assert.match(line, /^refresh: stopped by SIGTERM; the refresh is complete and .* is published/, why);
  }
  assert.deepEqual(await newestE(b), await newestE(a), why);
  assert.deepEqual(await latestBin(b), await latestBin(a), why);
  assert.deepEqual(await Array.fromAsync(Deno.readDir(join(b, "refresh-staging"))).catch(() => []), [], why);
  assert.deepEqual(await temps(b), [], why);
});

Deno.test("faults: SIGTERM while refresh prepares its data or after its checkpoint is saved: the line is true of <from>, no staging folder is left", async () => {
  const text = join(ROOT, "refresh-big.txt");
  await Deno.writeTextFile(text, makeText(10000, 3, 300));
  // the signal right after a log line: while the new data is prepared (≈ 0.1 s), or while the refreshed
  // model's embeddings are published; a slower or faster machine moves it into the phase before or after,
  // whose outcome is checked instead
  for (const [i, cue] of [/refresh: preparing /, /refresh: checkpoint /].entries()) {
    const run = join(ROOT, `refresh-stop-${i}`);
    await new Deno.Command("cp", { args: ["-r", REF, run] }).output();
    const before = await listCheckpoints(join(run, "checkpoints"));
    const args = ["--from", run, "--data", text, "--epochs", "1", "--min-count", "1", "--backend", "js"];
    const p = spawn("refresh", [...args, "--eval-dir", "none", "--formats", "bin", "--progress", "none"]);
    await p.seen(cue);
    p.kill("SIGTERM");
    const r = await p.done;
    const why = `SIGTERM after ${cue}: exit ${r.code}: ${r.stderr}`;
    const staging = await Array.fromAsync(Deno.readDir(join(run, "refresh-staging"))).catch(() => []);
    const now = await listCheckpoints(join(run, "checkpoints"));
    const line = lastLine(r);
    let m;
    if (
      r.code === EXIT.stopped &&
      /^refresh: stopped by SIGTERM at step \d+: .* is unchanged; continue with/.test(line)
    ) {
      // in the refresh's training: kept to be continued (the test above continues one)
      assert.equal(staging.length, 1, why);
      await Deno.stat(join(run, "refresh-staging", staging[0].name, "stopped.json"));
      assert.deepEqual(now, before, why);
      continue;
    }
    assert.deepEqual(staging.map((e) => e.name), [], `no staging folder: ${why}`);
    if (
      r.code === 0 || /^refresh: stopped by SIGTERM; the refresh is complete and .* is published/.test(line)
    ) {
      assert.ok(r.code === 0 || r.code === EXIT.stopped, why);
      assert.notDeepEqual(now, before, why);
    } else if (
      r.code === EXIT.stopped &&
      /^refresh: stopped by SIGTERM; nothing partial was left.*; rerun the same command$/.test(line)
    ) {
      assert.deepEqual(now, before, why);
    } else if (
      r.code === EXIT.stopped &&
      (m =
        /^refresh: stopped by SIGTERM; the refreshed model is saved as (\S+); publish it with: (npx deno task export .*)$/
          .exec(line))
    ) {
      assert.equal(now.at(-1), m[1], why);
      // the refresh's --formats carried (the run's command line, followed as printed)
      assert.equal(m[2], `npx deno task export --checkpoint ${run} --formats bin`, why);
      const e = await job("export", ["--checkpoint", run, "--backend", "js", "--formats", "bin"]);
      assert.equal(e.code, 0, e.stderr);
    } else assert.fail(`unexpected outcome: ${why}`);
    assert.deepEqual(await temps(run), [], why);
  }
});

Deno.test("faults: SIGTERM during corpus preparation leaves no partial corpus; the old one stays", async () => {
  const out = join(ROOT, "corpus-out");
  const ok = await job("corpus", ["--input", TEXT, "--out", out, "--min-count", "1"]);
  assert.equal(ok.code, 0, ok.stderr);
  const manifest = await Deno.readTextFile(join(out, "manifest.json"));
  const delay = Math.floor(Math.random() * 2500);
  const p = spawn("corpus", [
    "--synthetic",
    "--synthetic-tokens",
    "3000000",
    "--out",
    out,
  ]);
  await p.seen(/"progress"/);
  await sleep(delay);
  p.kill("SIGTERM");
  const r = await p.done;
  const why = `SIGTERM ${delay} ms after start: ${r.stderr}`;
  assert.ok(r.code === 0 || r.code === EXIT.stopped, why);
  const now = await Deno.readTextFile(join(out, "manifest.json"));
  if (r.code === EXIT.stopped && /the new corpus in .* is complete/.test(lastLine(r))) {
    // the signal came while the finished corpus was being swapped in: held until it was whole
    assert.match(lastLine(r), /^corpus: stopped by SIGTERM; the new corpus in .* is complete/, why);
    assert.equal(JSON.parse(now).tokens, 3000000, why);
  } else if (r.code === EXIT.stopped) {
    assert.match(lastLine(r), /^corpus: stopped by SIGTERM; the unfinished corpus was removed/, why);
    assert.equal(now, manifest, why);
  }
  const left = [...Deno.readDirSync(ROOT)].map((e) => e.name).filter((n) => n.startsWith("corpus-out."));
  assert.deepEqual(left, [], why);
});

Deno.test("faults: SIGTERM while corpus --synthetic-text writes its text leaves neither the text nor its .tmp", async () => {
  const text = join(ROOT, "synthetic.txt");
  const p = spawn("corpus", ["--synthetic", "--synthetic-tokens", "3000000", "--synthetic-text", text]);
  // its temporary file exists from its creation to the rename: the text is being generated (synchronously:
  // the signal is handled at the first await after it, the fsync)
  while (!(await Deno.stat(`${text}.tmp`).then(() => true, () => false))) {
    if (await Promise.race([p.done.then(() => true), sleep(5).then(() => false)])) break;
  }
  p.kill("SIGTERM");
  const r = await p.done;
  const why = `SIGTERM while the text was written: exit ${r.code}: ${r.stderr}`;
  await Deno.stat(`${text}.tmp`).then(() => assert.fail(`temporary file left: ${why}`), () => {});
  if (r.code === 0) {
    // a fast machine finished first: the text is whole
    assert.match(r.stdout, /"tokens":3000000/, why);
    await Deno.stat(text);
  } else {
    assert.equal(r.code, EXIT.stopped, why);
    assert.match(lastLine(r), /^corpus: stopped by SIGTERM; /, why);
    await Deno.stat(text).then(() => assert.fail(`text left: ${why}`), () => {});
  }
});

Deno.test("faults: two trainings on one folder at once: one runs, the other refuses naming the holder; the folder stays resumable", async () => {
  const out = join(ROOT, "two");
  const [x, y] = await Promise.all([
    job("train", [...COMMON, "--epochs", "3", "--out", out]),
    job("train", [...COMMON, "--epochs", "3", "--out", out]),
  ]);
  const codes = [x.code, y.code].sort();
  const loser = x.code === 0 ? y : x;
  assert.equal(codes[0], 0, `${x.stderr}\n---\n${y.stderr}`);
  // the loser either met the lock (3) or, started after the winner finished, the used folder (2)
  assert.ok(codes[1] === EXIT.locked || codes[1] === EXIT.usage, loser.stderr);
  if (codes[1] === EXIT.locked) {
    assert.match(
      lastLine(loser),
      /^train: locked: .*run\.lock is held by pid \d+ on \S+ since \d{4}-\d\d-\d\dT/,
    );
  }
  const res = await job("train", [...COMMON, "--epochs", "4", "--resume", out]);
  assert.equal(res.code, 0, res.stderr);
  // a held lock with --wait: waits, then refuses with 3 when still held
  await Deno.writeTextFile(
    join(out, "run.lock"),
    JSON.stringify({ pid: Deno.pid, host: Deno.hostname(), time: "2026-12-04T00:00:00Z", command: "test" }),
  );
  const w = await job("train", [...COMMON, "--resume", out, "--wait", "0.5"]);
  assert.equal(w.code, EXIT.locked, w.stderr);
  assert.match(w.stderr, /waiting up to 0\.5 s/);
  // a stale lock (dead pid) is taken over and logged
  const dead = new Deno.Command("true").spawn();
  await dead.status;
  await Deno.writeTextFile(
    join(out, "run.lock"),
    JSON.stringify({
      pid: dead.pid,
      host: Deno.hostname(),
      time: "2026-12-04T00:00:00Z",
      command: "crashed",
    }),
  );
  const t = await job("train", [...COMMON, "--resume", out]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stderr, /lock: taking over .*run\.lock from pid \d+/);
  await Deno.stat(join(out, "run.lock")).then(() => assert.fail("lock left"), () => {});
});

Deno.test("faults: corrupt, truncated and bit-flipped checkpoints: checksum mismatch is exit 4 everywhere; --resume falls back to the newest good one", async () => {
  const one = join(ROOT, "one");
  const r0 = await job("train", [...COMMON, "--epochs", "2", "--keep-checkpoints", "1", "--out", one]);
  assert.equal(r0.code, 0, r0.stderr);
  const [ck] = await listCheckpoints(join(one, "checkpoints"));
  const good = await bytesOf(ck);
  // a flipped bit in the header (inside the JSON, e.g. a config key)
  const flipped = good.slice();
  flipped[40] ^= 0x20;
  await Deno.writeFile(ck, flipped);
  for (
    const [name, args] of [
      ["train", ["--resume", ck]],
      ["train", ["--resume", one]],
      ["export", ["--checkpoint", one]],
      ["refresh", ["--from", one, "--data", TEXT2, "--eval-dir", "none"]],
    ] as const
  ) {
    const r = await job(name, [...args]);
    assert.equal(r.code, EXIT.noCheckpoint, `${name} ${args}: ${r.stderr}`);
    assert.match(lastLine(r), /corrupt checkpoint \(checksum mismatch\)/, r.stderr);
  }
  // 1e30 and NaN written into the payload: caught by the checksum, never resumed or published
  for (const v of [1e30, NaN]) {
    const bad = good.slice();
    new DataView(bad.buffer).setFloat32(bad.length - 40 - 64, v, true);
    await Deno.writeFile(ck, bad);
    const r = await job("export", ["--checkpoint", ck, "--out", join(ROOT, "never")]);
    assert.equal(r.code, EXIT.noCheckpoint, r.stderr);
    assert.match(r.stderr, /checksum mismatch/);
    await Deno.stat(join(ROOT, "never")).then(() => assert.fail("published"), () => {});
  }
  await Deno.writeFile(ck, good);

  // three checkpoints; the newest truncated, the next bit-flipped: resume uses the third and says so
  const three = join(ROOT, "three");
  const r1 = await job("train", [...COMMON, ...EPOCHS, "--out", three]);
  assert.equal(r1.code, 0, r1.stderr);
  const all = await listCheckpoints(join(three, "checkpoints"));
  assert.equal(all.length, 3);
  const newest = await bytesOf(all[2]);
  await Deno.writeFile(all[2], newest.subarray(0, newest.length >> 1));
  const mid = await bytesOf(all[1]);
  mid[mid.length - 100] ^= 1;
  await Deno.writeFile(all[1], mid);
  const res = await job("train", [...COMMON, "--resume", three]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(
    res.stderr,
    new RegExp(
      `resume: skipping 2 newer unusable checkpoint\\(s\\) .*; using ${all[0]}, the newest good one`,
    ),
  );
  assert.deepEqual(await latestBin(three), REF_BIN, "resumed from the older checkpoint, same result");
});

Deno.test("faults: --resume over other data at the same --data path (text edited, corpus prepared again) is exit 4; nothing trains, the corpus stays", async () => {
  const dir = join(ROOT, "changed");
  await Deno.mkdir(dir);
  const text = join(dir, "t.txt"), out = join(dir, "run");
  const base = [...COMMON.slice(2), "--epochs", "1"];
  await Deno.writeTextFile(text, makeText(600, 5));
  const r0 = await job("train", ["--data", text, ...base, "--out", out]);
  assert.equal(r0.code, 0, r0.stderr);
  const ckpts = await listCheckpoints(join(out, "checkpoints"));
  const corpusFiles = [...Deno.readDirSync(join(out, "corpus"))].map((e) => join(out, "corpus", e.name))
    .sort();
  const corpusBytes = await Promise.all(corpusFiles.map(bytesOf));
  // the same lines in another order: the same words and counts (the vocabulary check alone passes)
  const lines = (await Deno.readTextFile(text)).trimEnd().split("\n");
  await Deno.writeTextFile(text, [...lines.slice(300), ...lines.slice(0, 300)].join("\n") + "\n");
  const edited = await job("train", ["--resume", out, "--epochs", "2"]);
  assert.equal(edited.code, EXIT.noCheckpoint, edited.stderr);
  assert.match(
    lastLine(edited),
    /^train: --resume .*: --data .*t\.txt is not the data this checkpoint trained on \(.*t\.txt changed content/,
  );
  assert.deepEqual(await listCheckpoints(join(out, "checkpoints")), ckpts, "nothing trained");
  assert.deepEqual(
    await Promise.all(corpusFiles.map(bytesOf)),
    corpusBytes,
    "the corpus it trained on stays",
  );
  // a prepared corpus folder prepared again with another window, at the same path
  const corpus = join(dir, "corpus"), out2 = join(dir, "run2");
  const prep = (window: string) =>
    job("corpus", ["--input", text, "--out", corpus, "--min-count", "1", "--window", window]);
  assert.equal((await prep("5")).code, 0);
  const r1 = await job("train", ["--data", corpus, ...base, "--out", out2]);
  assert.equal(r1.code, 0, r1.stderr);
  const same = await job("train", ["--resume", out2, "--epochs", "2"]);
  assert.equal(same.code, 0, `the same corpus resumes: ${same.stderr}`);
  assert.equal((await prep("2")).code, 0);
  const again = await job("train", ["--resume", out2, "--epochs", "3"]);
  assert.equal(again.code, EXIT.noCheckpoint, again.stderr);
  assert.match(lastLine(again), /is not the data this checkpoint trained on \(its manifest\.json changed/);
});

Deno.test("faults: --resume of one run with --out holding another run is exit 2; that run's checkpoints and version stay", async () => {
  const dir = join(ROOT, "two-runs"), corpus = join(dir, "corpus");
  const base = [...COMMON.slice(2), "--data", corpus, "--epochs", "1", "--checkpoint-every", "100"];
  assert.equal((await job("corpus", ["--input", TEXT2, "--out", corpus, "--min-count", "1"])).code, 0);
  const a = join(dir, "a"), b = join(dir, "b");
  assert.equal((await job("train", [...base, "--out", a])).code, 0);
  assert.equal((await job("train", [...base, "--seed", "3", "--keep-checkpoints", "9", "--out", b])).code, 0);
  const bFiles = [
    ...await listCheckpoints(join(b, "checkpoints")),
    join(b, "embeddings", "latest", "input.bin"),
  ];
  const bBytes = await Promise.all(bFiles.map(bytesOf));
  const aLast = (await listCheckpoints(join(a, "checkpoints"))).pop()!;
  for (const from of [aLast, a]) {
    const r = await job("train", ["--resume", from, "--out", b, "--epochs", "2"]);
    assert.equal(r.code, EXIT.usage, r.stderr);
    assert.match(
      lastLine(r),
      /^train: --out .*\/b holds another run \(\d+ checkpoint\(s\), published embeddings\) than the one of --resume/,
    );
  }
  assert.deepEqual(await listCheckpoints(join(b, "checkpoints")), bFiles.slice(0, -1));
  assert.deepEqual(await Promise.all(bFiles.map(bytesOf)), bBytes, "b untouched");
  // into a folder without a run, or the run's own folder through a copy of its checkpoint, it continues
  assert.equal((await job("train", ["--resume", aLast, "--out", join(dir, "c"), "--epochs", "2"])).code, 0);
  const copy = join(dir, "copy.fock");
  await Deno.copyFile(aLast, copy);
  assert.equal((await job("train", ["--resume", copy, "--out", a, "--epochs", "2"])).code, 0);
});

Deno.test("faults: a run on text resumed into another --out (its corpus prepared there) ends as the run resumed in place", async () => {
  const dir = join(ROOT, "moved"), a = join(dir, "a"), c = join(dir, "c");
  const first = await job("train", [...COMMON, "--epochs", "1", "--out", a]);
  assert.equal(first.code, 0, first.stderr);
  const elsewhere = await job("train", ["--resume", a, "--out", c, "--epochs", "2"]);
  assert.equal(elsewhere.code, 0, elsewhere.stderr);
  const inPlace = await job("train", ["--resume", a, "--epochs", "2"]);
  assert.equal(inPlace.code, 0, inPlace.stderr);
  assert.deepEqual(await latestBin(c), await latestBin(a));
});

Deno.test("faults: the command printed to continue after SIGTERM pastes back as-is for an --out with a space and a quote", async () => {
  const out = join(ROOT, "my run's $HOME");
  const j = spawn("train", [...COMMON, ...EPOCHS, "--out", out]);
  await j.seen(/^train: skipgram/m);
  j.kill("SIGTERM");
  const r = await j.done;
  assert.equal(r.code, EXIT.stopped, r.stderr);
  const cmd = lastLine(r).split("resume with: ")[1];
  const words = await new Deno.Command("bash", { args: ["-c", `printf '%s\\n' ${cmd}`], stdout: "piped" })
    .output();
  assert.deepEqual(
    dec.decode(words.stdout).trimEnd().split("\n"),
    ["npx", "deno", "task", "train", "--resume", out],
    cmd,
  );
});

Deno.test("faults: SIGTERM, then the printed resume command as it is: the run's --threads, --formats and --eval-dir; byte-identical on blas", async () => {
  // --threads alone sets the children's thread count (no FACTOROUT_THREADS from the test runner, no
  // OPENBLAS_NUM_THREADS): a resume that dropped it ran on OpenBLAS's own count, whose float32 sums round
  // otherwise; and an evaluation folder by default, which a resume that dropped --eval-dir none evaluated on
  const sets = join(ROOT, "eval-sets");
  await Deno.mkdir(sets, { recursive: true });
  await Deno.writeTextFile(
    join(sets, "simlex999.txt"),
    "word1\tword2\tSimLex999\nman\twoman\t8\nthe\tof\t1\n",
  );
  const env = { FACTOROUT_THREADS: "", OPENBLAS_NUM_THREADS: "", FACTOROUT_EVAL_DIR: sets };
  // Brown's first 100,000 tokens: large enough that 1 and 2 threads give other bits
  const args = (out: string) => [
    ...[
      "--limit-tokens",
      "100000",
      "--backend",
      "blas",
      "--dim",
      "64",
      "--epochs",
      "3",
      "--progress",
      "none",
    ],
    ...["--threads", "1", "--formats", "vec", "--eval-dir", "none", "--out", out],
  ];
  const ref = join(ROOT, "threads-ref"), out = join(ROOT, "threads-term");
  const r0 = await job("train", args(ref), env);
  assert.equal(r0.code, 0, r0.stderr);
  const p = spawn("train", args(out), env);
  await p.seen(/^train: skipgram/m);
  p.kill("SIGTERM");
  const r = await p.done;
  assert.equal(r.code, EXIT.stopped, r.stderr);
  const resume = await printedCommand(r, "resume with: ");
  assert.deepEqual(resume, ["train", "--resume", out]);
  const res = await job(resume[0], resume.slice(1), env);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /backend = blas \(OpenBLAS [^,]*, [^,]*, 1 threads\)/, res.stderr);
  assert.match(res.stderr, /^evaluation: skipped \(--eval-dir none\)$/m, res.stderr);
  const files = async (run: string) =>
    (await Array.fromAsync(Deno.readDir(join(run, "embeddings", "latest")))).map((e) => e.name).sort();
  assert.deepEqual(await files(out), ["input.vec", "manifest.json"]);
  const vec = (run: string) => bytesOf(join(run, "embeddings", "latest", "input.vec"));
  sameBytes(await vec(out), await vec(ref), `input.vec of the resumed run: ${res.stderr}`);
  // a --threads given on resume wins, with one line saying what it costs
  const again = join(ROOT, "threads-again");
  const p2 = spawn("train", args(again), env);
  await p2.seen(/^train: skipgram/m);
  p2.kill("SIGTERM");
  assert.equal((await p2.done).code, EXIT.stopped);
  const res2 = await job("train", ["--resume", again, "--threads", "2"], env);
  assert.equal(res2.code, 0, res2.stderr);
  assert.match(
    res2.stderr,
    /^resume: threads: 1 → 2: the result matches an uninterrupted run only up to float32 rounding/m,
  );
  assert.match(res2.stderr, /backend = blas \(OpenBLAS [^,]*, [^,]*, 2 threads/);
});

Deno.test("faults: SIGTERM after a --keep-best training, then the printed export command as it is: the best epoch's vectors and the run's formats", async () => {
  // Brown's first 30,000 tokens at a high constant lr: the validation loss is lowest after epoch 1 of 4,
  // so the run publishes epoch 1 (best.fock) while its newest checkpoint is epoch 4's
  const args = (out: string) => [
    ...["--backend", "js", "--limit-tokens", "30000", "--min-count", "2", "--epochs", "4", "--lr", "0.03"],
    ...["--schedule", "constant", "--dim", "64", "--keep-best", "true", "--eval-dir", "none"],
    ...["--formats", "bin,arrow,parquet", "--progress", "none", "--out", out],
  ];
  const ref = join(ROOT, "best-ref");
  const r0 = await job("train", args(ref));
  assert.equal(r0.code, 0, r0.stderr);
  assert.equal(JSON.parse(r0.stdout.trim().split("\n").at(-1)!).embeddings.epoch, 1, r0.stderr);
  const latest = (run: string) => join(run, "embeddings", "latest");
  const files = async (run: string) =>
    (await Array.fromAsync(Deno.readDir(latest(run)))).map((e) => e.name).sort();
  // the signal while the vectors are published (≈ 0.2 s: parquet); a busy machine may send it after
  for (let attempt = 0; attempt < 3; attempt++) {
    const out = join(ROOT, `best-term-${attempt}`);
    const p = spawn("train", args(out));
    await p.seen(/^keep-best: evaluating and publishing epoch 1's vectors/m);
    p.kill("SIGTERM");
    const r = await p.done;
    if (r.code === 0 || /is published \(latest points at it\)/.test(lastLine(r))) continue;
    assert.equal(r.code, EXIT.stopped, r.stderr);
    assert.match(
      lastLine(r),
      /training is complete and its checkpoint \S+best\.fock \(epoch 1, the lowest validation loss\) is saved; publish it with: /,
    );
    const exp = await printedCommand(r, "publish it with: ");
    assert.deepEqual(exp, ["export", "--checkpoint", out, "--formats", "bin,arrow,parquet"]);
    const e = await job(exp[0], exp.slice(1));
    assert.equal(e.code, 0, e.stderr);
    assert.deepEqual(await files(out), await files(ref));
    for (const f of ["input.bin", "input.arrow"]) {
      sameBytes(await bytesOf(join(latest(out), f)), await bytesOf(join(latest(ref), f)), f);
    }
    // the run can be refreshed, twice (the refreshed checkpoint is of a finished training, its newest; the
    // second with another --epochs: the same refresh again has nothing to do)
    for (let k = 0; k < 2; k++) {
      const before = await listCheckpoints(join(ref, "checkpoints"));
      const rf = await job("refresh", [
        ...["--from", ref, "--data", TEXT2, "--epochs", String(k + 1), "--backend", "js"],
        ...["--eval-dir", "none", "--formats", "vec", "--progress", "none"],
      ]);
      assert.equal(rf.code, 0, rf.stderr);
      const saved = JSON.parse(rf.stdout.trim().split("\n").at(-1)!).checkpoint as string;
      const after = await listCheckpoints(join(ref, "checkpoints"));
      assert.equal(after.at(-1), saved, "the refreshed checkpoint is the run's newest");
      assert.ok(!before.includes(saved));
    }
    return;
  }
  assert.fail("in 3 tries the signal never came before the run had published its vectors");
});

Deno.test("faults: refresh --from a training stopped before its last epoch is exit 4; the run stays resumable", async () => {
  const out = join(ROOT, "unfinished");
  const j = spawn("train", [...COMMON, ...EPOCHS, "--out", out]);
  await j.seen(/^train: skipgram/m);
  j.kill("SIGTERM");
  assert.equal((await j.done).code, EXIT.stopped);
  const before = await listCheckpoints(join(out, "checkpoints"));
  const r = await job("refresh", ["--from", out, "--data", TEXT2, "--backend", "js", "--eval-dir", "none"]);
  assert.equal(r.code, EXIT.noCheckpoint, r.stderr);
  assert.match(
    lastLine(r),
    /is of a training stopped in epoch 1 of 10; finish it first \(npx deno task train --resume /,
  );
  assert.deepEqual(await listCheckpoints(join(out, "checkpoints")), before, "nothing written into the run");
});

Deno.test("faults: a fresh run into a used folder refuses (exit 2); --overwrite keeps the old checkpoints until its own first one", async () => {
  const out = join(ROOT, "used");
  const r0 = await job("train", [...COMMON, "--epochs", "2", "--out", out]);
  assert.equal(r0.code, 0, r0.stderr);
  const old = await listCheckpoints(join(out, "checkpoints"));
  const oldBytes = await Promise.all(old.map(bytesOf));
  const refused = await job("train", [...COMMON, "--epochs", "2", "--window", "3", "--out", out]);
  assert.equal(refused.code, EXIT.usage, refused.stderr);
  assert.match(
    lastLine(refused),
    /^train: --out .* already holds a run \(2 checkpoint\(s\), a corpus prepared with other settings, published embeddings\): continue it with --resume .*, or give --overwrite/,
  );
  assert.deepEqual(await Promise.all(old.map(bytesOf)), oldBytes);
  // --overwrite, but the new run fails before its first checkpoint (diverges at step 1): nothing lost
  const failed = await job("train", [
    ...COMMON,
    "--epochs",
    "2",
    "--lr",
    "1e6",
    "--lr-min",
    "1e6",
    "--overwrite",
    "--out",
    out,
  ]);
  assert.equal(failed.code, EXIT.diverged, failed.stderr);
  assert.match(failed.stderr, /old checkpoint\(s\) are back in/);
  assert.deepEqual(await listCheckpoints(join(out, "checkpoints")), old);
  assert.deepEqual(await Promise.all(old.map(bytesOf)), oldBytes);
  // kill -9 of an --overwrite run before its first checkpoint: the old ones are still aside; the next job
  // (here --resume, which must find them) puts them back under the lock
  const dead = new Deno.Command("true").spawn();
  await dead.status;
  const lastArrays = (await readCheckpoint(old[1])).arrays;
  await Deno.rename(join(out, "checkpoints"), join(out, `checkpoints.${dead.pid}-0badf00d.old.tmp`));
  const back = await job("train", [...COMMON, "--resume", out]);
  assert.equal(back.code, 0, back.stderr);
  assert.match(back.stderr, /the 2 old checkpoint\(s\) are back in/);
  assert.deepEqual(await bytesOf(old[0]), oldBytes[0]);
  // (the newest one is rewritten at the same step by the resumed run: same arrays)
  assert.deepEqual((await readCheckpoint(old[1])).arrays, lastArrays);
  // stale temporaries of killed jobs are cleaned at start, under the lock
  await Deno.writeTextFile(join(out, "checkpoints", "ckpt-000000000001.fock.tmp"), "x");
  await Deno.writeTextFile(join(out, "checkpoints", "ckpt-000000000002.fock.999999999-0badf00d.tmp"), "x");
  await Deno.mkdir(join(out, "embeddings", "versions", "20260101T000000Z-dead.tmp"));
  await Deno.mkdir(join(out, "corpus.999999999-0badf00d.tmp"));
  // --overwrite succeeding: the old checkpoints go once the new run has written its first
  const ok = await job("train", [...COMMON, "--epochs", "1", "--seed", "7", "--overwrite", "--out", out]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /cleanup: removed 4 temporary file\(s\) left by killed jobs/);
  assert.match(ok.stderr, /its first checkpoint is written; removed the 2 old one\(s\)/);
  const now = await listCheckpoints(join(out, "checkpoints"));
  assert.equal(now.length, 1);
  assert.ok(!old.includes(now[0]) || (await readCheckpoint(now[0])).meta.config !== undefined);
  assert.equal(((await readCheckpoint(now[0])).meta.config as { seed: number }).seed, 7);
  assert.deepEqual(await temps(out), []);
});

Deno.test("faults: SIGTERM to an --overwrite run before its first checkpoint puts the old checkpoints back at once", async () => {
  const out = join(ROOT, "overwrite-stop");
  const r0 = await job("train", [...COMMON, "--epochs", "1", "--out", out]);
  assert.equal(r0.code, 0, r0.stderr);
  const old = await listCheckpoints(join(out, "checkpoints"));
  const oldBytes = await Promise.all(old.map(bytesOf));
  // other settings: its corpus is prepared again, and the signal comes while it is (or, on a slow machine,
  // once its training has started: then it stops after its first checkpoint, which replaces the old ones)
  const p = spawn("train", [...COMMON, "--epochs", "1", "--window", "3", "--overwrite", "--out", out]);
  await p.seen(/old checkpoint\(s\) moved to /);
  p.kill("SIGTERM");
  const r = await p.done;
  const why = `SIGTERM after the old checkpoints were moved aside: ${r.stderr}`;
  assert.equal(r.code, EXIT.stopped, why);
  const left = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.endsWith(".tmp"));
  assert.deepEqual(left, [], `nothing moved aside is left: ${why}`);
  if (/resume with: |; training is complete /.test(lastLine(r))) {
    // in its training or after it (a slow machine): its first checkpoint replaced the old ones
    assert.match(r.stderr, /its first checkpoint is written; removed the \d+ old one\(s\)/, why);
  } else {
    assert.match(lastLine(r), /^train: stopped by SIGTERM; nothing partial was left/, why);
    assert.deepEqual(await listCheckpoints(join(out, "checkpoints")), old, why);
    assert.deepEqual(await Promise.all(old.map(bytesOf)), oldBytes, why);
  }
});

Deno.test({
  name: "faults: cleanup of the temporary root",
  fn: async () => {
    await Deno.remove(ROOT, { recursive: true });
  },
});

Deno.test("faults: scripts/job.sh (what a scheduler runs) passes SIGTERM to the job: checkpoint and exit 9", async () => {
  // its own folder: the test above removes ROOT when the others are done
  const dir = await Deno.makeTempDir({ prefix: "faults_job_sh_" }), out = join(dir, "run");
  const text = join(dir, "tiny.txt");
  await Deno.writeTextFile(text, makeText(3000, 1));
  const args = COMMON.map((a) => a === TEXT ? text : a);
  const root = new URL("..", import.meta.url).pathname;
  const child = new Deno.Command("bash", {
    args: [join(root, "scripts/job.sh"), "train", ...args, "--epochs", "400", "--out", out],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.getReader();
  let stderr = "";
  // wait until training runs (its first epoch line), then signal the process the scheduler started
  while (!/"event":"epoch"/.test(stderr)) {
    const { value, done } = await reader.read();
    if (done) break;
    stderr += dec.decode(value);
  }
  try {
    child.kill("SIGTERM");
  } catch { /* it ended before: the assertions below show its stderr */ }
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    stderr += dec.decode(value);
  }
  const { code } = await child.status;
  assert.equal(code, EXIT.stopped, stderr);
  assert.match(stderr.trimEnd().split("\n").pop()!, /^train: stopped by SIGTERM at step \d+ .*resume with:/);
  await Deno.remove(dir, { recursive: true });
});
