// The corpus job's --out and --input (pipelines/corpus.ts; docs/faults.md): nothing that is not a corpus is
// ever replaced (a regular file, a folder of other files, the folder the job runs in), a symbolic link's
// folder gets the new corpus, a corpus already prepared is not imported as loose shards, an import of shards
// replaces --out whole and only when complete (flags it cannot apply refused; a full disk or a stop leaves
// the previous corpus), one job at a time per --out (<out>.lock), and what killed jobs left beside --out is
// removed by the next one. Mostly in process (main()), on a 6,000-token generated text; child processes for
// a signal and a kill -9.
import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT } from "../lib/core/exit_codes.ts";
import { lockJob } from "../lib/core/lock.ts";
import { readManifest } from "../lib/io/manifest.ts";
import { main } from "../pipelines/corpus.ts";
import { pipeline, runScript } from "./child.ts";

const ROOT = await Deno.makeTempDir({ prefix: "faults_corpus_" });
const TEXT = join(ROOT, "t.txt");
{
  let s = 7;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const lines: string[] = [];
  for (let i = 0; i < 600; i++) {
    lines.push(Array.from({ length: 10 }, () => `w${Math.floor(60 ** rnd())}`).join(" "));
  }
  await Deno.writeTextFile(TEXT, lines.join("\n") + "\n");
}
const TEXT_ARGS = ["--input", TEXT, "--min-count", "1", "--window", "2"];

/** main() in this process: its exit code and its stderr lines (the last one: a failure's reason). */
async function corpus(args: string[]): Promise<{ code: number; last: string; err: string }> {
  const err: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await main(args);
    return { code, last: err[err.length - 1] ?? "", err: err.join("\n") };
  } finally {
    console.error = orig;
  }
}

/** A corpus prepared from TEXT in `dir` (`more` flags added): its manifest. */
async function prepared(dir: string, ...more: string[]): Promise<{ shards: { file: string }[] }> {
  const r = await corpus([...TEXT_ARGS, "--out", dir, ...more]);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
}

/** Every file under `dir` with its bytes (a folder's state, to compare before and after). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    out[e.name] = e.isFile
      ? btoa(String.fromCharCode(...Deno.readFileSync(p).subarray(0, 4096))) +
        Deno.statSync(p).size
      : e.isSymlink
      ? "link"
      : "dir";
  }
  return out;
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

/** A folder of shards without a manifest (and the vocabulary beside them), copied from a prepared corpus. */
async function shardFolder(name: string, ...more: string[]): Promise<string> {
  const c = join(ROOT, `${name}-src`), dir = join(ROOT, name);
  await prepared(c, ...more);
  await Deno.mkdir(dir);
  for (const n of names(c)) if (n !== "manifest.json") await Deno.copyFile(join(c, n), join(dir, n));
  return dir;
}

Deno.test("corpus --out: a regular file is refused as train refuses it (exit 8) and kept; a folder of other files is refused (exit 2) and untouched", async () => {
  const file = join(ROOT, "precious.txt");
  await Deno.writeTextFile(file, "precious data\n");
  const f = await corpus([...TEXT_ARGS, "--out", file]);
  // was: exit 0, the file renamed aside and deleted, a corpus folder in its place
  assert.equal(f.code, EXIT.io, f.err);
  assert.equal(
    f.last,
    `corpus: cannot create folder ${file}: a file or folder of that name already exists; remove it or choose another path`,
  );
  assert.equal(await Deno.readTextFile(file), "precious data\n");
  // the user's folder: shards of their own and notes, no corpus manifest (was: its part-00000.arrow and
  // vocab.tsv replaced by the corpus's)
  const user = join(ROOT, "user");
  await Deno.mkdir(user);
  await Deno.writeTextFile(join(user, "notes.txt"), "mine\n");
  await Deno.writeTextFile(join(user, "vocab.tsv"), "mine\t1\n");
  await Deno.writeTextFile(join(user, "part-00000.arrow"), "mine\n");
  const before = snapshot(user);
  const u = await corpus([...TEXT_ARGS, "--out", user]);
  assert.equal(u.code, EXIT.usage, u.err);
  assert.match(
    u.last,
    new RegExp(`^corpus: --out ${user} holds no corpus \\(no manifest\\.json of one\\) but 3 `),
  );
  assert.match(u.last, /notes\.txt, part-00000\.arrow, vocab\.tsv\): .*give a new or empty folder/);
  assert.deepEqual(snapshot(user), before);
  // a folder of hidden files only is written into (they stay); a corpus is replaced, other files beside it kept
  const hidden = join(ROOT, "hidden");
  await Deno.mkdir(hidden);
  await Deno.writeTextFile(join(hidden, ".keep"), "");
  const m = await prepared(hidden);
  await Deno.writeTextFile(join(hidden, "README"), "about this corpus\n");
  const again = await prepared(hidden, "--shard-rows", "2000");
  assert.notDeepEqual(again.shards, m.shards);
  assert.deepEqual(
    names(hidden),
    [".keep", "README", "manifest.json", "vocab.tsv", ...again.shards.map((s) => s.file)].sort(),
  );
});

Deno.test("corpus --out a corpus of more shards, prepared again with fewer: no old shard is left (the folder replaced whole, or file by file beside other files), so train finds none its manifest does not list", async () => {
  const listed = (m: { shards: { file: string }[]; draws?: { shards: { file: string }[] }[] }) =>
    (m.draws ?? [m]).flatMap((d) => d.shards.map((s) => s.file));
  for (const beside of [[], ["README"]]) {
    const out = join(ROOT, `shrink-${beside.length}`);
    // three draws of many Arrow shards, then one draw of fewer, then Parquet; each time exactly its own files
    const runs = [
      ["--shard-rows", "500", "--sample-draws", "3", "--sample", "1e-2"],
      ["--shard-rows", "2000"],
      ["--format", "parquet"],
    ];
    let before = Infinity;
    for (const [i, flags] of runs.entries()) {
      const m = await prepared(out, ...flags);
      // files of the user's beside the corpus: the next jobs swap the corpus in file by file
      if (i === 0) { for (const n of beside) await Deno.writeTextFile(join(out, n), "about this corpus\n"); }
      const files = listed(m);
      assert.ok(files.length < before, `${flags}: fewer shards (${files.length}) than before (${before})`);
      before = files.length;
      assert.deepEqual(names(out), [...beside, "manifest.json", "vocab.tsv", ...files].sort(), `${flags}`);
      // the reader's check of the folder (lib/io/manifest.ts) finds every shard listed
      assert.deepEqual(listed(await readManifest(out)), files);
    }
  }
});

Deno.test("corpus --out: a symbolic link's folder gets the new corpus (the link stays); a link to nothing and the folder the job runs in are refused (exit 2)", async () => {
  const real = join(ROOT, "real"), link = join(ROOT, "link");
  await prepared(real, "--shard-rows", "1000");
  await Deno.symlink(real, link);
  const m = await prepared(link, "--shard-rows", "2500");
  // was: the link renamed aside and removed, a folder in its place, the old corpus left at the real path
  assert.ok(Deno.lstatSync(link).isSymlink);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(join(real, "manifest.json"))).shards, m.shards);
  assert.deepEqual(names(real), ["manifest.json", "vocab.tsv", ...m.shards.map((s) => s.file)].sort());
  const dangling = join(ROOT, "dangling");
  await Deno.symlink(join(ROOT, "nowhere"), dangling);
  const d = await corpus([...TEXT_ARGS, "--out", dangling]);
  assert.equal(d.code, EXIT.usage, d.err);
  assert.match(
    d.last,
    /is a symbolic link to .*nowhere, which does not exist: create that folder, or remove the link/,
  );
  // --out . (was: "cannot rename . …: device or resource busy", exit 8)
  const here = join(ROOT, "here");
  await Deno.mkdir(here);
  const cwd = Deno.cwd();
  Deno.chdir(here);
  try {
    for (const out of [".", ".."]) {
      const r = await corpus([...TEXT_ARGS, "--out", out]);
      assert.equal(r.code, EXIT.usage, r.err);
      assert.match(r.last, new RegExp(`^corpus: --out ${out.replace(/\./g, "\\.")} is .*this job runs in: `));
    }
  } finally {
    Deno.chdir(cwd);
  }
  assert.deepEqual(names(here), []);
});

Deno.test("corpus --out <run>/corpus (a run folder's: checkpoints/ or run.lock beside it) is refused (exit 2) and untouched: train owns it", async () => {
  for (const part of ["checkpoints", "run.lock"]) {
    const run = join(ROOT, `run-${part}`), out = join(run, "corpus");
    await prepared(out); // a corpus prepared before the folder became a run's
    if (part === "checkpoints") await Deno.mkdir(join(run, part));
    else await Deno.writeTextFile(join(run, part), "{}");
    const before = snapshot(out);
    const r = await corpus([...TEXT_ARGS, "--out", out]);
    assert.equal(r.code, 2, r.err);
    assert.match(
      r.last,
      new RegExp(`--out .*run-${part}/corpus is the corpus folder of the run .*\\(it holds ${part}\\)`),
    );
    assert.deepEqual(snapshot(out), before);
  }
});

Deno.test("corpus --input: a prepared corpus (manifest.json, subsampling draws) is refused (exit 2), not imported as more shards", async () => {
  const c = join(ROOT, "drawn"), out = join(ROOT, "drawn-import");
  await prepared(c, "--sample", "1e-2", "--sample-draws", "3");
  assert.ok(names(c).some((n) => /\.draw\d+\./.test(n)), names(c).join(" "));
  const r = await corpus(["--input", c, "--out", out]);
  // was: exit 0, "has no manifest.json", every draw imported as shards of one corpus (3× the rows)
  assert.equal(r.code, EXIT.usage, r.err);
  assert.equal(
    r.last,
    `corpus: --input ${c} is a prepared corpus already (it holds manifest.json): train on it as it is ` +
      `(npx deno task train --data ${c}), or copy the folder; corpus --input imports shards without a manifest ` +
      "(Spark, DuckDB, pyarrow)",
  );
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("corpus --input <shards>: flags it cannot apply are refused (exit 2); the import replaces --out whole; a full disk leaves the old corpus", async () => {
  const shards = await shardFolder("loose", "--format", "parquet", "--shard-rows", "2500");
  const out = join(ROOT, "imported");
  const old = await prepared(out, "--shard-rows", "1000"); // arrow shards, more of them
  const before = snapshot(out);
  for (const flags of [["--mode", "cbow"], ["--format", "arrow"], ["--window", "4", "--min-count", "3"]]) {
    const r = await corpus(["--input", shards, "--out", out, ...flags]);
    // was: exit 0, the flags silently ignored (they are named in --help's order)
    assert.equal(r.code, EXIT.usage, r.err);
    const given = flags.filter((f) => f.startsWith("--")).join(", ");
    assert.ok(
      r.last.startsWith(`corpus: ${given}: not applied when importing shards (--input ${shards} `),
      r.last,
    );
  }
  assert.deepEqual(snapshot(out), before);
  // a full disk while the import writes its vocabulary (after copying the shards): the old corpus as it was
  // (was: its manifest deleted first and its shards overwritten in place)
  const { stderr, code } = await runScript(pipeline("corpus"), ["--input", shards, "--out", out], {
    FACTOROUT_FAULT_ENOSPC_AFTER_BYTES: "0",
  });
  assert.equal(code, EXIT.io, stderr);
  assert.match(stderr.trim().split("\n").pop()!, /^corpus: cannot write .*: no space left on device; /);
  assert.deepEqual(snapshot(out), before);
  assert.deepEqual(names(ROOT).filter((n) => n.startsWith("imported.") && n.endsWith(".tmp")), []);
  // the import: exactly the new corpus (was: the old arrow shards left beside the new manifest)
  const r = await corpus(["--input", shards, "--out", out]);
  assert.equal(r.code, 0, r.err);
  const m = JSON.parse(await Deno.readTextFile(join(out, "manifest.json")));
  assert.deepEqual(
    names(out),
    ["manifest.json", "vocab.tsv", ...m.shards.map((s: { file: string }) => s.file)].sort(),
  );
  assert.ok(m.shards.every((s: { file: string }) => s.file.endsWith(".parquet")));
  assert.ok(old.shards.length > m.shards.length);
});

Deno.test("corpus: one job per --out (<out>.lock, exit 3 naming the holder, --wait); a lock of a dead job is taken over", async () => {
  const out = join(ROOT, "locked");
  const held = await lockJob(`${out}.lock`, "corpus --out elsewhere");
  try {
    const r = await corpus([...TEXT_ARGS, "--out", out]);
    // was: both jobs ran, the last one's corpus won
    assert.equal(r.code, EXIT.locked, r.err);
    assert.match(
      r.last,
      new RegExp(
        `^corpus: locked: ${out}\\.lock is held by pid ${Deno.pid} on .*\\(corpus --out elsewhere\\)`,
      ),
    );
    const w = await corpus([...TEXT_ARGS, "--out", out, "--wait", "0.2"]);
    assert.equal(w.code, EXIT.locked, w.err);
    assert.match(w.err, /waiting up to 0\.2 s/);
  } finally {
    await held.release();
  }
  await Deno.stat(out).then(() => assert.fail("nothing written under the lock"), () => {});
  await prepared(out);
  await assert.rejects(Deno.stat(`${out}.lock`), Deno.errors.NotFound, "released");
});

Deno.test("corpus: the temporaries a kill -9 left beside --out (both engines' names) are removed by the next job into it, not a live job's or another folder's", async () => {
  const out = join(ROOT, "killed");
  await prepared(out);
  // a real kill -9 while the text is prepared into <out>.<pid>-<rand>.tmp (its progress lines go to stderr
  // when it is not a terminal)
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", pipeline("corpus"), "--synthetic", "--synthetic-tokens", "3000000", "--out", out],
    stdout: "null",
    stderr: "piped",
    env: { OPENBLAS_NUM_THREADS: "1" },
  }).spawn();
  const reader = child.stderr.getReader();
  let seen = "";
  while (!seen.includes('"progress":"windows"')) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel().catch(() => {});
  const left = names(ROOT).filter((n) => n.startsWith("killed.") && n.endsWith(".tmp"));
  assert.ok(left.some((n) => n.startsWith(`killed.${child.pid}-`)), `${names(ROOT).join(" ")}\n${seen}`);
  // DuckDB's spill folder and a lock's temporary file of that dead job; a live job's folder; another --out's
  const dead = child.pid;
  for (
    const n of [
      `killed.spill.${dead}-deadbeef.tmp`,
      `killed.${Deno.pid}-0badcafe.tmp`,
      `other.${dead}-deadbeef.tmp`,
    ]
  ) {
    await Deno.mkdir(join(ROOT, n));
  }
  await Deno.writeTextFile(join(ROOT, `killed.lock.${dead}-deadbeef.tmp`), "{}");
  const r = await corpus([...TEXT_ARGS, "--out", out]);
  assert.equal(r.code, 0, r.err);
  // was: every one of them left, after every kill
  assert.match(
    r.err,
    new RegExp(`removed .*killed\\.${dead}-.* beside ${out}, left by corpus jobs killed there`),
  );
  assert.deepEqual(
    names(ROOT).filter((n) => n.endsWith(".tmp")).sort(),
    [`killed.${Deno.pid}-0badcafe.tmp`, `other.${dead}-deadbeef.tmp`],
  );
  await Deno.remove(join(ROOT, `killed.${Deno.pid}-0badcafe.tmp`));
  await Deno.remove(join(ROOT, `other.${dead}-deadbeef.tmp`));
});

Deno.test("corpus --input <shards>: SIGTERM while importing leaves the previous corpus whole or the new one complete, as its last line says; no temporary left", async () => {
  const shards = await shardFolder("many", "--shard-rows", "40"); // 150 shards: the copy takes a while
  const out = join(ROOT, "stopped");
  const old = await prepared(out, "--format", "parquet");
  const before = snapshot(out);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", pipeline("corpus"), "--input", shards, "--out", out],
    stdout: "null",
    stderr: "piped",
    env: { OPENBLAS_NUM_THREADS: "1" },
  }).spawn();
  const reader = child.stderr.getReader();
  let stderr = "";
  // the scan is logged before the copying starts: the signal comes during it (or, on a fast machine, after)
  while (!stderr.includes("has no manifest.json")) {
    const { value, done } = await reader.read();
    if (done) break;
    stderr += new TextDecoder().decode(value);
  }
  child.kill("SIGTERM");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    stderr += new TextDecoder().decode(value);
  }
  const { code } = await child.status;
  const last = stderr.trim().split("\n").pop()!;
  const why = `exit ${code}: ${stderr}`;
  const m = JSON.parse(await Deno.readTextFile(join(out, "manifest.json")));
  if (code === EXIT.stopped && /unfinished corpus was removed/.test(last)) {
    // was: the old manifest deleted, some of the new shards beside the old vocabulary, a .tmp shard
    assert.deepEqual(snapshot(out), before, why);
    assert.deepEqual(m.shards, old.shards, why);
  } else {
    assert.ok(code === 0 || /the new corpus in .* is complete/.test(last), why);
    assert.equal(m.shards.length, 150, why);
    assert.deepEqual(
      names(out),
      ["manifest.json", "vocab.tsv", ...m.shards.map((s: { file: string }) => s.file)].sort(),
      why,
    );
  }
  assert.deepEqual(names(ROOT).filter((n) => n.startsWith("stopped.")), [], why);
});

Deno.test("corpus --input DIR: symbolic links in the folder are followed (a file, a folder), both engines; a link to nothing, a loop or a second name of a file refused, exit 5", async () => {
  const dir = join(ROOT, "links");
  const elsewhere = join(ROOT, "elsewhere");
  await Deno.mkdir(join(elsewhere, "sub"), { recursive: true });
  await Deno.mkdir(dir);
  await Deno.writeTextFile(join(dir, "a.txt"), "alpha beta gamma\n".repeat(10));
  await Deno.writeTextFile(join(elsewhere, "b.txt"), "delta epsilon\n".repeat(10));
  await Deno.writeTextFile(join(elsewhere, "sub", "c.txt"), "zeta eta theta iota\n".repeat(10));
  await Deno.symlink(join(elsewhere, "b.txt"), join(dir, "b.txt"));
  await Deno.symlink(join(elsewhere, "sub"), join(dir, "sub"));
  for (const engine of ["builtin", "duckdb"]) {
    const out = join(ROOT, `links-${engine}`);
    const r = await corpus(["--input", dir, "--out", out, "--min-count", "1", "--engine", engine]);
    assert.equal(r.code, 0, r.err);
    const m = JSON.parse(await Deno.readTextFile(join(out, "manifest.json")));
    // 30 + 20 + 40: it read a.txt alone (30 tokens), the linked file and folder skipped without a word
    assert.equal(m.tokens, 90, engine);
    assert.equal(m.vocabSize, 9, engine);
  }
  await Deno.symlink(dir, join(elsewhere, "sub", "up")); // back to the folder given
  let r = await corpus(["--input", dir, "--out", join(ROOT, "links-loop"), "--min-count", "1"]);
  assert.equal(r.code, EXIT.badData, r.err);
  assert.match(
    r.last,
    /^corpus: .*links\/sub\/up: a symbolic link to .*, a folder already read as .* \(a loop/,
  );
  await Deno.remove(join(elsewhere, "sub", "up"));
  // a link beside the file it names: the file's data would be read twice
  await Deno.symlink(join(dir, "a.txt"), join(dir, "z.txt"));
  r = await corpus(["--input", dir, "--out", join(ROOT, "links-twice"), "--min-count", "1"]);
  assert.equal(r.code, EXIT.badData, r.err);
  assert.match(r.last, /^corpus: .*links\/[az]\.txt: the same file as .*links\/[az]\.txt .*read twice/);
  await Deno.remove(join(dir, "z.txt"));
  await Deno.symlink(join(ROOT, "nowhere.txt"), join(dir, "gone.txt"));
  r = await corpus(["--input", dir, "--out", join(ROOT, "links-gone"), "--min-count", "1"]);
  assert.equal(r.code, EXIT.badData, r.err);
  assert.match(
    r.last,
    /^corpus: .*links\/gone\.txt: a symbolic link to .*nowhere\.txt, which does not exist/,
  );
});

addEventListener("unload", () => {
  try {
    Deno.removeSync(ROOT, { recursive: true });
  } catch { /* gone */ }
});
