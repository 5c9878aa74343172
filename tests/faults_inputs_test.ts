// Inputs recognised by content (issue 12, docs/faults.md "Inputs"): pipelines/train.ts and
// pipelines/corpus.ts run as child processes on small generated inputs (js backend, one epoch, dim 8).
// Zero exit-0 runs on the wrong data: shards without manifest train as shards (the same vectors as with
// the manifest), a single shard file works, a Parquet table of sentences, a binary file, a folder mixing
// shards and text and a corrupt Parquet page are refused with exit 5 and one line naming the file;
// invalid UTF-8 is dropped and reported, a text file changed in place is prepared again, a long line is
// cut so that --shard-rows holds.
import assert from "node:assert/strict";
import { publishOneWord } from "./publish_fixture.ts";
import { join } from "node:path";
import * as arrow from "apache-arrow";
import * as pq from "parquet-wasm";
import { EXIT } from "../lib/core/exit_codes.ts";
import { pipeline, type Run, runScript, withFlags } from "./child.ts";
import { resolveConfig } from "../lib/train/config.ts";
import { logCorpusUse, resolveData } from "../lib/train/run_data.ts";

const TRAIN = pipeline("train"), CORPUS = pipeline("corpus");
const SMALL = ["--epochs", "1", "--dim", "8", "--backend", "js", "--eval-dir", "none", "--formats", "vec"];
const run = runScript;

const train = async (data: string, ...more: string[]) =>
  run(
    TRAIN,
    withFlags([...SMALL, "--mode", "cbow", "--data", data, "--out", await Deno.makeTempDir()], ...more),
  );

/** The last stderr line: the one-line reason of a failed command. */
const lastLine = (r: Run) => r.stderr.trim().split("\n").pop()!;

/** A failed run: exit 5, one line naming `file` and matching `why`, no stack of any kind. */
function refused(r: Run, file: string, why: RegExp): void {
  assert.equal(r.code, EXIT.badData, r.stderr);
  const line = lastLine(r);
  assert.ok(line.includes(file), `names ${file}: ${line}`);
  assert.match(line, why);
  assert.doesNotMatch(r.stderr, /wasm:\/\/|^\s+at /m, "no stack");
}

/** A prepared corpus (cbow, Brown slice): its folder. */
async function corpus(format: "arrow" | "parquet"): Promise<string> {
  const dir = await Deno.makeTempDir();
  const r = await run(CORPUS, [
    ...["--input", "brown", "--limit-tokens", "6000", "--out", dir, "--mode", "cbow", "--window", "2"],
    ...["--min-count", "2", "--format", format, "--shard-rows", "2000", "--batch-rows", "500"],
  ]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

async function copyDir(from: string, skip: string[] = []): Promise<string> {
  const to = await Deno.makeTempDir();
  for (const e of Deno.readDirSync(from)) {
    if (!skip.includes(e.name)) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
  return to;
}

function vectors(r: Run): string {
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
  return Deno.readTextFileSync(`${summary.embeddings.dir}/input.vec`);
}

Deno.test("inputs: a folder of shards without manifest.json trains as shards, with the same vectors as with it", async () => {
  const withManifest = await corpus("arrow");
  const bare = await copyDir(withManifest, ["manifest.json"]);
  // what Spark and a killed corpus job leave beside the shards
  await Deno.writeFile(`${bare}/_SUCCESS`, new Uint8Array(0));
  await Deno.writeTextFile(`${bare}/part-00009.arrow.tmp`, "half a shard");
  const a = await train(withManifest);
  const b = await train(bare);
  assert.match(b.stderr, /has no manifest\.json: \d+ shard\(s\) found by content, \d+ rows/);
  assert.match(b.stderr, /vocabulary from .*vocab\.tsv/);
  assert.match(b.stderr, /ignored 1 unfinished shard/);
  assert.equal(vectors(b), vectors(a));
  // no vocab.tsv: the ids are the words, and the log says so
  await Deno.remove(`${bare}/vocab.tsv`);
  const c = await train(bare);
  assert.match(c.stderr, /the ids are the words \("0" … "\d+"\)/);
  assert.match(vectors(c).split("\n")[1], /^0 /);
  // the shards say cbow: --mode skipgram is refused
  const d = await train(bare, "--mode", "skipgram");
  assert.equal(d.code, EXIT.usage, d.stderr);
  assert.match(
    lastLine(d),
    /holds cbow windows but --mode is skipgram: train them with --mode cbow, or prepare/,
  );
  // a text file among the shards: refused, naming both
  await Deno.writeTextFile(`${bare}/README`, "notes\n");
  refused(await train(bare), `${bare}/README`, /is text but .*part-00000\.arrow is an Arrow IPC shard/);
  const e = await run(CORPUS, ["--input", bare, "--out", await Deno.makeTempDir()]);
  refused(e, `${bare}/README`, /all shards or all text/);
});

Deno.test("inputs: one shard file works for train --data and corpus --input; shards of other corpora are refused", async () => {
  const pqDir = await corpus("parquet");
  const one = `${pqDir}/part-00000.parquet`;
  const r = await train(one);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(await Deno.readTextFile(`${pqDir}/manifest.json`)).shards[0].rows;
  assert.match(r.stderr, new RegExp(`, ${rows} examples/epoch`));
  const out = await Deno.makeTempDir();
  const c = await run(CORPUS, ["--input", one, "--out", out]);
  assert.equal(c.code, 0, c.stderr);
  const m = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  assert.deepEqual([m.rows, m.mode, m.shards[0].file], [rows, "cbow", "part-00000.parquet"]);
  // a shard of another corpus (other vocabulary size) in the folder: refused by name
  const mixed = await copyDir(pqDir, ["manifest.json"]);
  const other = await Deno.makeTempDir();
  const o = await run(CORPUS, [
    ...["--input", "brown", "--limit-tokens", "3000", "--out", other, "--mode", "cbow", "--window", "2"],
    ...["--format", "parquet"],
  ]);
  assert.equal(o.code, 0, o.stderr);
  await Deno.copyFile(`${other}/part-00000.parquet`, `${mixed}/part-00099.parquet`);
  refused(await train(mixed), `${mixed}/part-00099.parquet`, /has another schema than .*vocab_size/);
});

Deno.test("inputs: a DuckDB-like Parquet table of sentences is refused, saying what columns were expected", async () => {
  const dir = await Deno.makeTempDir();
  const lines = Array.from({ length: 500 }, (_, i) => `the cat ${i % 9} sat on the mat`);
  const t = arrow.tableFromArrays({ id: Int32Array.from(lines.map((_, i) => i)), text: lines });
  const file = `${dir}/sentences.parquet`;
  await Deno.writeFile(file, pq.writeParquet(pq.Table.fromIPCStream(arrow.tableToIPC(t, "stream"))));
  const why = /not a window shard|column "input" is missing .*text.*needs input, target_index, target_value/;
  refused(await train(file), file, why);
  refused(await train(dir), file, /table of text, not training windows/);
  refused(await run(CORPUS, ["--input", file, "--out", `${dir}/c`]), file, why);
});

Deno.test("inputs: a binary file is refused with its name and the offset of its first NUL byte", async () => {
  const dir = await Deno.makeTempDir();
  const bytes = new Uint8Array(100_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24 | 1; // no NUL …
  bytes[70_001] = 0; // … until here, past the 64 KiB sniffed at the start
  await Deno.writeFile(`${dir}/blob.bin`, bytes);
  refused(await train(`${dir}/blob.bin`), `${dir}/blob.bin`, /not a text file: byte 70001 is 0x00/);
  refused(
    await run(CORPUS, ["--input", `${dir}/blob.bin`, "--out", `${dir}/c`]),
    `${dir}/blob.bin`,
    /not a text file: byte 70001/,
  );
  const rand = new Uint8Array(50_000);
  crypto.getRandomValues(rand);
  await Deno.mkdir(`${dir}/t`);
  await Deno.writeTextFile(`${dir}/t/a.txt`, "the cat sat on the mat\n".repeat(50));
  await Deno.writeFile(`${dir}/t/b.dat`, rand);
  refused(await train(`${dir}/t`), `${dir}/t/b.dat`, /not a text file: byte \d+ is 0x00/);
});

Deno.test("inputs: lines with invalid UTF-8 are dropped and reported; mostly non-UTF-8 input is refused", async () => {
  const dir = await Deno.makeTempDir();
  const enc = new TextEncoder();
  const good = enc.encode("the cafe serves the naive cat\n".repeat(100));
  const latin1 = Uint8Array.of(...enc.encode("the caf"), 0xe9, ...enc.encode(" serves the na"), 0xef, 0x0a);
  const file = `${dir}/mixed.txt`;
  await Deno.writeFile(file, Uint8Array.of(...good, ...latin1, ...latin1, ...good));
  const out = `${dir}/c`;
  const r = await run(CORPUS, ["--input", file, "--out", out, "--min-count", "1"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `dropped 2 of 202 lines holding invalid UTF-8 \\(first bad byte at ${file}:${good.length + 7}\\)`,
    ),
  );
  const m = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  assert.deepEqual([m.text.invalidUtf8Lines, m.text.firstInvalidUtf8], [2, `${file}:${good.length + 7}`]);
  const words = (await Deno.readTextFile(`${out}/vocab.tsv`)).split("\n").map((l) => l.split("\t")[0]);
  assert.ok(!words.includes("caf") && !words.includes("na"), "no word split at a bad byte");
  const bad = `${dir}/latin1.txt`;
  await Deno.writeFile(bad, Uint8Array.of(...latin1, ...latin1, ...latin1));
  refused(await run(CORPUS, ["--input", bad, "--out", `${dir}/d`]), bad, /3 of 3 lines are not valid UTF-8/);
});

Deno.test("inputs: a text file changed in place (same size, same mtime) is prepared again", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/a.txt`;
  await Deno.writeTextFile(file, "the cat sat on the mat with the dog\n".repeat(200));
  const config = resolveConfig({ data: file, out: `${dir}/run`, mode: "cbow", minCount: 1 });
  const log: string[] = [];
  const first = await resolveData(config, (l) => log.push(l));
  await resolveData(config, (l) => log.push(l));
  assert.match(log.join("\n"), /reusing .* same input content, sha256/);
  const { mtime } = await Deno.stat(file);
  await Deno.writeTextFile(file, "the cow sat on the mat with the dog\n".repeat(200));
  await Deno.utime(file, mtime!, mtime!);
  const again = await resolveData(config, (l) => log.push(l));
  assert.match(log.pop()!, /prepared in/);
  assert.match(log.pop()!, /a\.txt changed content \(same size\)/);
  assert.ok(first.words.includes("cat") && !again.words.includes("cat") && again.words.includes("cow"));
});

Deno.test("inputs: a prepared corpus trains its own window, and the log says so when --window differs", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/a.txt`;
  await Deno.writeTextFile(file, "the cat sat on the mat with the dog\n".repeat(200));
  const prepared = resolveConfig({ data: file, out: `${dir}/run`, minCount: 1, window: 5 });
  const log: string[] = [];
  await resolveData(prepared, (l) => log.push(l));
  const corpus = `${dir}/run/corpus`;
  log.length = 0;
  // said once nothing refuses the run (logCorpusUse, after refuseUnappliedSettings), not by resolveData
  const use = async (window: number, out: string) => {
    const c = resolveConfig({ data: corpus, out: `${dir}/${out}`, minCount: 1, window });
    logCorpusUse(await resolveData(c, (l) => log.push(l)), c, (l) => log.push(l));
  };
  await use(5, "run2");
  assert.ok(!log.some((l) => /prepared with window/.test(l)), log.join("\n"));
  await resolveData(
    resolveConfig({ data: corpus, out: `${dir}/run3`, minCount: 1, window: 4 }),
    (l) => log.push(l),
  );
  assert.ok(!log.some((l) => /prepared with window/.test(l)), log.join("\n"));
  await use(4, "run3");
  assert.ok(
    log.some((l) =>
      l.includes(`--data ${corpus} was prepared with window 5, so its windows train, not --window 4`)
    ),
    log.join("\n"),
  );
});

Deno.test("inputs: a 1 MB line without newlines is cut into bounded sentences; --shard-rows holds", async () => {
  const dir = await Deno.makeTempDir();
  const words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
  const parts: string[] = [];
  for (let n = 0, i = 0; n < 1_000_000; i++) {
    const w = words[(i * 7 + (i >> 3)) % words.length];
    parts.push(w);
    n += w.length + 1;
  }
  await Deno.writeTextFile(`${dir}/line.txt`, parts.join(" "));
  const out = `${dir}/c`;
  const r = await run(CORPUS, [
    ...["--input", `${dir}/line.txt`, "--out", out, "--mode", "skipgram", "--window", "2"],
    ...["--shard-rows", "20000", "--batch-rows", "4096"],
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /cut lines longer than 65536 bytes 15 time\(s\)/);
  const m = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  assert.ok(m.rows > parts.length * 0.99, `${m.rows} rows`);
  assert.ok(m.shards.length >= 8, `${m.shards.length} shards`);
  // a shard ends at the first line end past --shard-rows: at most one 64 KiB piece (< 11,000 words) more
  for (const s of m.shards) assert.ok(s.rows < 20000 + 11000, `${s.file}: ${s.rows} rows`);
  assert.equal(m.text.cutInWord, 0);
});

Deno.test("inputs: a train --out inside a published version (or latest, or versions/) is refused (exit 2); the version untouched", async () => {
  const root = await Deno.makeTempDir();
  const text = `${root}/a.txt`;
  await Deno.writeTextFile(text, "the cat sat on the mat with the dog\n".repeat(200));
  const pub = `${root}/emb`;
  const { versionDir } = await publishOneWord(pub, "v1");
  const before = [...Deno.readDirSync(versionDir)].map((e) => e.name).sort();
  for (
    const [out, why] of [
      [`${pub}/latest/run`, /is inside the published version v1 of the publication root/],
      [`${versionDir}`, /is inside the published version v1/],
      [`${pub}/versions`, /is the versions\/ folder of the publication root/],
    ] as [string, RegExp][]
  ) {
    const r = await run(TRAIN, [...SMALL, "--min-count", "1", "--data", text, "--out", out]);
    assert.equal(r.code, EXIT.usage, r.stderr);
    assert.match(
      lastLine(r),
      new RegExp(`^train: --out ${out} ${why.source}.*never changed; give the run a folder`),
    );
  }
  assert.deepEqual(
    [...Deno.readDirSync(versionDir)].map((e) => e.name).sort(),
    before,
    "the version untouched",
  );
  assert.deepEqual([...Deno.readDirSync(`${pub}/versions`)].map((e) => e.name), ["v1"]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("inputs: a corrupt Parquet page or a truncated Arrow file gives one line naming the file, exit 5", async () => {
  const pqDir = await corpus("parquet");
  const file = `${pqDir}/part-00000.parquet`;
  const b = await Deno.readFile(file);
  for (let i = Math.floor(b.length / 4); i < Math.floor(b.length / 2); i++) b[i] = (b[i] * 7 + 13) & 255;
  await Deno.writeFile(file, b);
  refused(await train(pqDir), file, /shard 0, row group \d+: truncated or corrupt shard/);
  const bare = await copyDir(pqDir, ["manifest.json"]);
  refused(await train(bare), `${bare}/part-00000.parquet`, /truncated or corrupt shard/);
  const arDir = await corpus("arrow");
  const ar = `${arDir}/part-00000.arrow`;
  const a = await Deno.readFile(ar);
  await Deno.writeFile(ar, a.subarray(0, Math.floor(a.length * 0.6)));
  refused(await train(arDir), ar, /truncated|corrupt/);
});

Deno.test("inputs: an --out inside the --data (corpus: --input) folder is refused (exit 2) before anything is written into it", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/a.txt`, "the cat sat on the mat with the dog\n".repeat(200));
  for (const out of [dir, `${dir}/run`]) {
    const r = await run(TRAIN, [...SMALL, "--min-count", "1", "--data", dir, "--out", out]);
    assert.equal(r.code, EXIT.usage, r.stderr);
    assert.match(
      lastLine(r),
      new RegExp(`^train: --out ${out} is inside --data ${dir}: .*put --out outside`),
    );
  }
  for (const out of [dir, `${dir}/corpus`]) {
    const r = await run(CORPUS, ["--input", dir, "--out", out]);
    assert.equal(r.code, EXIT.usage, r.stderr);
    assert.match(
      lastLine(r),
      new RegExp(`^corpus: --out ${out} is inside --input ${dir}: .*put --out outside`),
    );
  }
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.txt"], "the data folder untouched");
  // outside it, the same folder trains (and trains again: its input is still text alone)
  for (let i = 0; i < 2; i++) {
    const r = await run(TRAIN, [
      ...SMALL,
      "--min-count",
      "1",
      "--data",
      dir,
      "--out",
      await Deno.makeTempDir(),
    ]);
    assert.equal(r.code, 0, r.stderr);
  }
});

Deno.test("inputs: a corrupt evaluation set in --eval-dir fails before training (exit 5), not after it", async () => {
  const dir = await Deno.makeTempDir(), evalDir = `${dir}/eval`, out = `${dir}/run`;
  await Deno.mkdir(evalDir);
  await Deno.writeTextFile(`${evalDir}/simlex999.txt`, "no header here\n");
  await Deno.writeTextFile(`${dir}/a.txt`, "the cat sat on the mat with the dog\n".repeat(200));
  const args = [...SMALL.filter((a) => a !== "none" && a !== "--eval-dir"), "--min-count", "1"];
  const r = await run(TRAIN, [...args, "--data", `${dir}/a.txt`, "--out", out, "--eval-dir", evalDir]);
  refused(r, `${evalDir}/simlex999.txt`, /line 1: score "here" is not a number/);
  assert.ok(!r.stderr.includes("train: skipgram"), "refused before training");
  await assert.rejects(Deno.stat(`${out}/checkpoints`), Deno.errors.NotFound);
});

Deno.test("inputs: a bad FACTOROUT_* value exits 2 naming it before the run folder or a corpus is made", async () => {
  const work = await Deno.makeTempDir();
  try {
    for (
      const [name, value] of [
        ["FACTOROUT_SPLIT", "yes"],
        ["FACTOROUT_POOL_HOLD", "2"],
        ["FACTOROUT_THREADS", "0"],
        ["FACTOROUT_READER", "disk"],
        ["FACTOROUT_BAG_SPLIT", "yes"],
        ["FACTOROUT_WRITE_BEHIND", "on"],
      ]
    ) {
      const out = `${work}/${name}`;
      // the default data (Brown) would be prepared first before: the check comes before any corpus work
      const r = await run(TRAIN, ["--epochs", "1", "--out", out], { [name]: value });
      assert.equal(r.code, EXIT.usage, `${name}: ${r.stderr}`);
      assert.match(lastLine(r), new RegExp(`${name} must be .*got '${value}'`));
      assert.equal(await Deno.stat(out).then(() => true, () => false), false, `${name}: ${out} was made`);
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("inputs: train refused on its --data leaves no --out folder it made; one that existed stays", async () => {
  const work = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${work}/blob.bin`, new Uint8Array(1000)); // a NUL at byte 0: not text
    const made = `${work}/new-run`;
    const r = await run(TRAIN, [...SMALL, "--data", `${work}/blob.bin`, "--out", made]);
    refused(r, `${work}/blob.bin`, /not a text file/);
    assert.equal(await Deno.stat(made).then(() => true, () => false), false, "no empty run folder left");
    const mine = `${work}/mine`;
    await Deno.mkdir(mine);
    refused(
      await run(TRAIN, [...SMALL, "--data", `${work}/blob.bin`, "--out", mine]),
      `${work}/blob.bin`,
      /not a text/,
    );
    assert.deepEqual([...Deno.readDirSync(mine)], [], "the user's own folder stays, empty");
    // export: --eval-dir without --eval is a usage error, not silently ignored
    const e = await run(pipeline("export"), ["--checkpoint", mine, "--eval-dir", work]);
    assert.equal(e.code, EXIT.usage, e.stderr);
    assert.match(lastLine(e), /^export: --eval-dir .* is read only with --eval/);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("inputs: a missing --data into an --out that holds a run is exit 5 naming the path, not 'already holds a run' (exit 2)", async () => {
  const work = await Deno.makeTempDir();
  try {
    // a run folder whose corpus was prepared with other settings (no train-settings.json): it holds a run
    const used = `${work}/used`;
    await Deno.mkdir(`${used}/corpus`, { recursive: true });
    await Deno.writeTextFile(`${used}/corpus/manifest.json`, "{}");
    const held = await run(TRAIN, [...SMALL, "--data", "brown", "--limit-tokens", "3000", "--out", used]);
    assert.equal(held.code, EXIT.usage, held.stderr);
    assert.match(lastLine(held), /already holds a run \(a corpus prepared with other settings\)/);
    const typo = `${work}/no-such-corpus.txt`;
    const r = await run(TRAIN, [...SMALL, "--data", typo, "--out", used]);
    refused(r, typo, /no such file or folder/);
    assert.doesNotMatch(r.stderr, /already holds a run/);
    assert.deepEqual([...Deno.readDirSync(used)].map((e) => e.name), ["corpus"], "the run folder untouched");
    assert.equal(await Deno.readTextFile(`${used}/corpus/manifest.json`), "{}");
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("inputs: a named --eval-dir (or FACTOROUT_EVAL_DIR) that is missing or holds no set exits 2 before any work, in every job", async () => {
  const work = await Deno.makeTempDir();
  try {
    const empty = `${work}/empty`, missing = `${work}/missing`, from = `${work}/run`;
    await Deno.mkdir(empty);
    await Deno.mkdir(from); // a run folder (refresh checks that it exists first): nothing may appear in it
    await Deno.writeTextFile(`${empty}/notes.txt`, "not an evaluation set\n");
    const jobs: [string, string[]][] = [
      [TRAIN, [
        "--epochs",
        "1",
        "--dim",
        "8",
        "--limit-tokens",
        "2000",
        "--backend",
        "js",
        "--out",
        `${work}/out`,
      ]],
      [pipeline("refresh"), ["--from", from, "--data", `${work}/new.txt`]],
      [pipeline("export"), ["--checkpoint", from, "--eval"]],
      [pipeline("eval"), ["--vectors", `${work}/x.vec`]],
    ];
    for (const [script, args] of jobs) {
      for (
        const [dir, why] of [[missing, /no such folder/], [
          empty,
          /none of the evaluation sets is there/,
        ]] as const
      ) {
        for (const how of ["flag", "env"]) {
          const r = how === "flag"
            ? await run(script, [...args, "--eval-dir", dir])
            : await run(script, args, { FACTOROUT_EVAL_DIR: dir });
          const named = how === "flag" ? `--eval-dir ${dir}` : `FACTOROUT_EVAL_DIR=${dir}`;
          const what = `${script} ${how} ${dir}`;
          assert.equal(r.code, EXIT.usage, `${what}: ${r.stderr}`);
          assert.equal(r.stderr.trim().split("\n").length, 1, `${what}: one line: ${r.stderr}`);
          assert.ok(lastLine(r).includes(`${named}: `), `${what}: ${lastLine(r)}`);
          assert.match(lastLine(r), why);
          assert.match(lastLine(r), /wordsim353\.tsv.*simlex999\.txt.*questions-words\.txt.*--eval-dir none/);
        }
      }
    }
    // before any work: no run folder made, nothing (no lock, no staging) in the refreshed one
    assert.equal(await Deno.stat(`${work}/out`).then(() => true, () => false), false);
    assert.deepEqual([...Deno.readDirSync(from)], []);
    // 'none' skips the evaluation: the flag wins over the variable
    const r = await run(pipeline("eval"), [
      "--vectors",
      `${work}/x.vec`,
      "--eval-dir",
      "none",
      "--neighbours",
      "a",
    ], {
      FACTOROUT_EVAL_DIR: missing,
    });
    assert.equal(r.code, EXIT.badData, r.stderr); // the missing vectors, not the folder
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

/** A small corpus job (brown, a few shards): the swap tests run it into a folder that holds another file. */
const SMALL_CORPUS = [
  "--input",
  "brown",
  "--mode",
  "cbow",
  "--window",
  "2",
  "--min-count",
  "1",
  "--shard-rows",
  "2000",
];

Deno.test("inputs: a corpus folder left by a kill -9 during the corpus job's swap is refused by train (exit 5) and repaired by the next corpus job", async () => {
  const work = await Deno.makeTempDir();
  try {
    // --out also holds another file, so the corpus job swaps file by file (pipelines/corpus.ts intoCorpusFolder)
    const out = `${work}/c`, fresh = `${work}/new`;
    await Deno.mkdir(out);
    await Deno.writeTextFile(`${out}/.keep`, "");
    const args = SMALL_CORPUS;
    for (const [dir, tokens] of [[out, "6000"], [fresh, "9000"]]) {
      const r = await run(CORPUS, [...args, "--limit-tokens", tokens, "--out", dir]);
      assert.equal(r.code, 0, r.stderr);
    }
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    const newFiles = [...Deno.readDirSync(fresh)].map((e) => e.name).filter((n) => n !== "manifest.json")
      .sort();
    assert.ok(newFiles.length >= 4, newFiles.join(" "));
    // the states a kill leaves: (a) old manifest and one old shard removed, the new corpus whole in the
    // temporary folder; (b) every old file removed, half of the new ones moved in, the manifest not yet
    const states: Record<string, (dir: string, tmp: string) => void> = {
      a: (dir, tmp) => {
        Deno.removeSync(`${dir}/manifest.json`);
        Deno.removeSync(`${dir}/part-00000.arrow`);
        for (const n of [...newFiles, "manifest.json"]) Deno.copyFileSync(`${fresh}/${n}`, `${tmp}/${n}`);
      },
      b: (dir, tmp) => {
        for (const e of [...Deno.readDirSync(dir)]) {
          if (e.isFile && e.name !== ".keep") Deno.removeSync(`${dir}/${e.name}`);
        }
        newFiles.forEach((n, i) => Deno.copyFileSync(`${fresh}/${n}`, `${i % 2 ? tmp : dir}/${n}`));
        Deno.copyFileSync(`${fresh}/manifest.json`, `${tmp}/manifest.json`);
      },
    };
    for (const [name, arrange] of Object.entries(states)) {
      const dir = await copyDir(out);
      const tmp = `${dir}/corpus.${dead.pid}-deadbeef.tmp`;
      await Deno.mkdir(tmp);
      arrange(dir, tmp);
      // train: one line naming the temporary folder and what to do, before any training (was: exit 0 on a mix)
      const t = await train(dir);
      assert.equal(t.code, EXIT.badData, `${name}: ${t.stderr}`);
      assert.match(
        lastLine(t),
        new RegExp(`${tmp}: unfinished work of a job \\(pid ${dead.pid}\\) killed while writing`),
      );
      assert.match(lastLine(t), /npx deno task corpus --out/);
      assert.ok(!t.stderr.includes("examples/epoch"), `${name}: refused before training`);
      // the next corpus job repairs it: the killed job's folder and every stale shard gone, .keep kept
      const c = await run(CORPUS, [...args, "--limit-tokens", "6000", "--out", dir]);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stderr, /left by a corpus job killed there/);
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      const manifest = JSON.parse(Deno.readTextFileSync(`${dir}/manifest.json`));
      const listed = manifest.shards.map((s: { file: string }) => s.file);
      assert.deepEqual(names, [".keep", "manifest.json", ...listed, "vocab.tsv"].sort(), name);
      assert.equal((await train(dir)).code, 0, name);
    }
    // a job still running there (its pid alive): wait for it
    const busy = await copyDir(out);
    await Deno.mkdir(`${busy}/corpus.${Deno.pid}-0badcafe.tmp`);
    Deno.removeSync(`${busy}/manifest.json`);
    const w = await train(busy);
    assert.equal(w.code, EXIT.badData, w.stderr);
    assert.match(lastLine(w), new RegExp(`a job \\(pid ${Deno.pid}\\) is writing ${busy} now`));
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("inputs: a corpus job whose file-by-file swap fails midway keeps the rest of the new corpus in its temporary folder: train refuses --out, the next corpus job repairs it", async () => {
  const { main } = await import("../pipelines/corpus.ts");
  const work = await Deno.makeTempDir();
  const orig = Deno.remove;
  try {
    const out = `${work}/c`;
    await Deno.mkdir(out);
    await Deno.writeTextFile(`${out}/.keep`, ""); // another file: the swap goes file by file
    const args = [...SMALL_CORPUS, "--out", out];
    assert.equal(await main([...args, "--limit-tokens", "6000"]), 0);
    const shards = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.endsWith(".arrow")).sort();
    assert.ok(shards.length >= 2, shards.join(" "));
    // the removal of the second old shard fails (the old manifest and first shard are gone by then)
    (Deno as { remove: typeof Deno.remove }).remove = (path, o) =>
      String(path) === `${out}/${shards[1]}`
        ? Promise.reject(new Deno.errors.PermissionDenied("injected remove failure"))
        : orig(path, o);
    const code = await main([...args, "--limit-tokens", "9000"]).finally(() => {
      (Deno as { remove: typeof Deno.remove }).remove = orig;
    });
    assert.notEqual(code, 0);
    // no manifest: the folder is no corpus now; its temporary folder says so to train (was: removed, and
    // train read the shards left as they were)
    const tmp = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) =>
      /^corpus\.\d+-[0-9a-f]{8}\.tmp$/.test(n)
    );
    assert.equal(tmp.length, 1, [...Deno.readDirSync(out)].map((e) => e.name).join(" "));
    // the job ran in this process: its pid, in the folder's name, is as dead as a finished job's once renamed
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    const left = `${out}/${tmp[0].replace(/^corpus\.\d+-/, `corpus.${dead.pid}-`)}`;
    await Deno.rename(`${out}/${tmp[0]}`, left);
    const t = await train(out);
    assert.equal(t.code, EXIT.badData, t.stderr);
    assert.ok(lastLine(t).startsWith(`train: ${left}: unfinished work of a job`), t.stderr);
    assert.equal(await main([...args, "--limit-tokens", "6000"]), 0);
    assert.equal((await train(out)).code, 0);
  } finally {
    (Deno as { remove: typeof Deno.remove }).remove = orig;
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("inputs: shards with a negative target weight are bad data (exit 5 naming the shard and row), not an internal error mid-training", async () => {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const work = await Deno.makeTempDir();
  try {
    const dir = join(work, "shards");
    await Deno.mkdir(dir);
    const db = await DuckDBInstance.create(":memory:");
    const con = await db.connect();
    await con.run(
      `COPY (SELECT [CAST(i % 5 AS INTEGER)] AS input, ` +
        `[CAST((i + 1) % 5 AS INTEGER), CAST((i + 2) % 5 AS INTEGER)] AS target_index, ` +
        `[CAST(1.0 AS FLOAT), CAST(CASE WHEN i = 300 THEN -0.5 ELSE 0.5 END AS FLOAT)] AS target_value ` +
        `FROM range(400) t(i)) TO '${dir}/part-00000.parquet' (FORMAT parquet)`,
    );
    con.closeSync();
    await Deno.writeTextFile(join(dir, "vocab.tsv"), "a\t100\nb\t90\nc\t80\nd\t70\ne\t60\n");
    const r = await runScript(pipeline("train"), [
      ...["--data", dir, "--mode", "skipgram", "--dim", "4", "--batch", "16", "--epochs", "1"],
      ...["--out", join(work, "run"), "--eval-dir", "none", "--formats", "vec", "--progress", "none"],
    ]);
    const last = r.stderr.trimEnd().split("\n").at(-1)!;
    // it was: exit 1, "train: internal error: Y.values[7] = -0.5 is negative (example 3): …" (batch-local
    // positions, no file), after training started
    assert.equal(r.code, EXIT.badData, last);
    assert.match(last, /part-00000\.parquet.*row 300.*target_value\[1\] = -0\.5; target weights must be ≥ 0/);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
