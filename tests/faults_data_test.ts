// What train, refresh and export do with prepared shards that cannot give the run the user asked for, and
// with inputs that can be read only once (docs/faults.md "Inputs"). The jobs run as child processes on a small
// Brown slice (js backend, one epoch, dim 8). Nothing is trained that cannot be published, and no setting is
// silently ignored: a vocabulary word the word2vec files of --formats cannot hold is refused before training
// (exit 5, naming vocab.tsv's line and the word), a byte-order mark is no part of word 0, a preparation
// flag given for prepared shards that were not prepared with it is refused (exit 2), and so is a corpus folder
// holding a shard its manifest does not list (exit 5: it would not be trained on).
import assert from "node:assert/strict";
import { EXIT } from "../lib/core/exit_codes.ts";
import { readVocab } from "../lib/io/vocab.ts";
import { pipeline, type Run, runScript as run } from "./child.ts";

const TRAIN = pipeline("train"), CORPUS = pipeline("corpus");
const SMALL = ["--epochs", "1", "--dim", "8", "--backend", "js", "--eval-dir", "none"];

/** A small cbow train job of `data` into `out`, `more` flags after. */
const trainInto = (out: string, data: string, ...more: string[]) =>
  run(TRAIN, [...SMALL, "--mode", "cbow", "--data", data, "--out", out, ...more]);
const train = async (data: string, ...more: string[]) => trainInto(await Deno.makeTempDir(), data, ...more);

/** The last stderr line: the one-line reason of a failed command. */
const lastLine = (r: Run) => r.stderr.trim().split("\n").pop()!;

/** A prepared corpus (cbow, window 2, min-count 2, 6000 Brown tokens): its folder. */
async function corpus(): Promise<string> {
  const dir = await Deno.makeTempDir();
  const r = await run(CORPUS, [
    ...["--input", "brown", "--limit-tokens", "6000", "--out", dir, "--mode", "cbow", "--window", "2"],
    ...["--min-count", "2", "--shard-rows", "2000", "--batch-rows", "500"],
  ]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

/** The shards of `from` without manifest.json, what Spark leaves: a folder whose vocab.tsv is `vocab`. */
async function bareCopy(from: string, vocab: (text: string) => string): Promise<string> {
  const to = await Deno.makeTempDir();
  for (const e of Deno.readDirSync(from)) {
    if (e.name.endsWith(".arrow")) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
  await Deno.writeTextFile(`${to}/vocab.tsv`, vocab(await Deno.readTextFile(`${from}/vocab.tsv`)));
  return to;
}

const summaryOf = (r: Run) => JSON.parse(r.stdout.trim().split("\n").pop()!);

Deno.test("data: a vocabulary word word2vec files cannot hold is refused before training; a BOM is no part of word 0", async () => {
  const prepared = await corpus();
  const words = (await readVocab(`${prepared}/vocab.tsv`)).words;
  // line 2 of vocab.tsv becomes "of course" (a phrase from another tokenizer)
  const spaced = await bareCopy(prepared, (t) => t.replace(/\n[^\t\n]+\t/, "\nof course\t"));
  const out = await Deno.makeTempDir();
  const r = await trainInto(out, spaced, "--formats", "vec");
  assert.equal(r.code, EXIT.badData, r.stderr);
  assert.match(
    lastLine(r),
    new RegExp(
      `^train: ${spaced}/vocab\\.tsv: line 2: word "of course" contains a space or a line break, which the word2vec files ` +
        "of --formats vec cannot hold; publish with --formats arrow,parquet",
    ),
  );
  assert.ok(!(await Deno.stat(`${out}/checkpoints`).then(() => true, () => false)), "nothing trained");
  // arrow and parquet hold it: the run trains and publishes; export --checkpoint to .vec says the same
  const arrowRun = await Deno.makeTempDir();
  const a = await trainInto(arrowRun, spaced, "--formats", "arrow");
  assert.equal(a.code, 0, a.stderr);
  const e = await run(pipeline("export"), ["--checkpoint", arrowRun, "--formats", "vec"]);
  assert.equal(e.code, EXIT.badData, e.stderr);
  assert.match(
    lastLine(e),
    /checkpoints\/ckpt-\d+\.fock: row 2: word "of course" contains a space or a line break/,
  );
  assert.match(lastLine(e), /--formats arrow,parquet/);
  assert.doesNotMatch(e.stderr, /\.tmp|rerun/);
  // a resume that keeps --formats vec is refused before it trains; with arrow it goes on
  const res = await run(TRAIN, ["--resume", arrowRun, "--epochs", "2", "--formats", "vec,arrow"]);
  assert.equal(res.code, EXIT.badData, res.stderr);
  assert.match(lastLine(res), /vocab\.tsv: line 2: word "of course" .*--formats vec cannot hold/);

  // a UTF-8 byte-order mark before word 0 (Windows editors, some exporters): skipped
  const bom = await bareCopy(prepared, (t) => "\uFEFF" + t);
  assert.equal((await readVocab(`${bom}/vocab.tsv`)).words[0], words[0]);
  const b = await train(bom, "--formats", "vec");
  assert.equal(b.code, 0, b.stderr);
  const vec = await Deno.readTextFile(`${summaryOf(b).embeddings.dir}/input.vec`);
  assert.equal(vec.split("\n")[1].split(" ")[0], words[0]);

  // refresh: the new data's "of course" would enter the vocabulary: refused before its training, the run
  // untouched
  const from = summaryOf(b).out;
  const before = [...Deno.readDirSync(`${from}/checkpoints`)].map((x) => x.name).sort();
  const f = await run(pipeline("refresh"), [
    "--from",
    from,
    "--data",
    spaced,
    "--formats",
    "vec",
    "--min-count",
    "1",
  ]);
  assert.equal(f.code, EXIT.badData, f.stderr);
  assert.match(
    lastLine(f),
    new RegExp(`^refresh: ${spaced}/vocab\\.tsv: line 2: word "of course" contains a space or a line break`),
  );
  assert.deepEqual([...Deno.readDirSync(`${from}/checkpoints`)].map((x) => x.name).sort(), before);
});

Deno.test("data: --min-count, --window, --limit-tokens, --sample given for prepared shards not prepared with them exit 2; the same values, recipe defaults and --resume train", async () => {
  const prepared = await corpus(); // window 2, min-count 2, limit-tokens 6000
  for (
    const [flag, value] of [["--min-count", "3"], ["--window", "4"], ["--limit-tokens", "1000"], [
      "--sample",
      "1e-3",
    ]]
  ) {
    const r = await train(prepared, flag, value);
    assert.equal(r.code, EXIT.usage, r.stderr);
    // the refusal alone: no line before it saying what would train ("… so its windows train, not --window 4")
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(
      lastLine(r),
      new RegExp(
        `^train: ${flag} ${
          value === "1e-3" ? "0.001" : value
        } cannot apply to --data ${prepared}: it holds ` +
          `prepared shards \\(prepared with ${flag} \\d+\\).*npx deno task corpus .*${flag}`,
      ),
    );
  }
  // shards without manifest.json: their settings are unknown
  const bare = await bareCopy(prepared, (t) => t);
  const u = await train(bare, "--min-count", "2");
  assert.equal(u.code, EXIT.usage, u.stderr);
  assert.match(lastLine(u), /--min-count 2 cannot apply .*without manifest\.json/);
  // the values it was prepared with (and the cbow recipe's window, not given) train; so does a resume
  const out = await Deno.makeTempDir();
  const ok = await trainInto(
    out,
    prepared,
    ...["--formats", "vec", "--min-count", "2", "--window", "2", "--limit-tokens", "6000"],
  );
  assert.equal(ok.code, 0, ok.stderr);
  const res = await run(TRAIN, ["--resume", out, "--epochs", "2", "--min-count", "2"]);
  assert.equal(res.code, 0, res.stderr);
});

Deno.test("data: a prepared corpus holding a shard its manifest does not list is refused by train, train --resume and refresh (exit 5, naming it and the manifest) before training; a listed one missing is named too", async () => {
  const prepared = await corpus();
  const m = JSON.parse(await Deno.readTextFile(`${prepared}/manifest.json`));
  const out = await Deno.makeTempDir();
  const ok = await trainInto(out, prepared, "--formats", "vec");
  assert.equal(ok.code, 0, ok.stderr);
  const checkpoints = () => [...Deno.readDirSync(`${out}/checkpoints`)].map((x) => x.name).sort();
  const before = checkpoints();
  // a shard left by an earlier, larger corpus in the folder, or copied in by hand to be trained on
  const stale = `${prepared}/part-00009.arrow`;
  await Deno.copyFile(`${prepared}/${m.shards[0].file}`, stale);
  const jobs: [string, string, () => Promise<Run>][] = [
    ["train", "train: ", () => train(prepared, "--formats", "vec")],
    ["train --resume", "train: ", () => run(TRAIN, ["--resume", out, "--epochs", "2"])],
    [
      "refresh",
      `refresh: --data ${prepared}: `,
      () => run(pipeline("refresh"), ["--from", out, "--data", prepared, "--formats", "vec"]),
    ],
  ];
  for (const [what, prefix, job] of jobs) {
    const r = await job();
    // was: exit 0, trained on the listed shards only, without a word
    assert.equal(r.code, EXIT.badData, `${what}: ${r.stderr}`);
    assert.match(
      lastLine(r),
      new RegExp(
        `^${prefix}${stale}: a shard that ${prepared}/manifest\\.json does not list, so it ` +
          "would not be trained on .*: move it out of the folder to train on the listed shards, or prepare the " +
          "corpus again " +
          "into a new folder \\(npx deno task corpus --out NEW",
      ),
      what,
    );
    assert.ok(!r.stderr.includes("examples/epoch"), `${what}: refused before training`);
  }
  assert.deepEqual(checkpoints(), before, "nothing trained");
  // removed: the run goes on
  await Deno.remove(stale);
  const res = await run(TRAIN, ["--resume", out, "--epochs", "2"]);
  assert.equal(res.code, 0, res.stderr);
  // the opposite, a shard the manifest lists missing: one line naming it and what to do
  const last = m.shards.at(-1).file;
  await Deno.remove(`${prepared}/${last}`);
  const gone = await train(prepared);
  assert.equal(gone.code, EXIT.badData, gone.stderr);
  assert.match(
    lastLine(gone),
    new RegExp(
      `^train: ${prepared}/manifest\\.json: field "shards\\[${
        m.shards.length - 1
      }\\]" names ${last}, which does not exist in ${prepared}: the corpus is incomplete; restore the file`,
    ),
  );
});

/** Runs job `script` with `stdin` piped in (closed after `input`), killed after 60 s (a hang fails the test). */
async function runPiped(script: string, args: string[], input: string): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { OPENBLAS_NUM_THREADS: "1" },
    signal: AbortSignal.timeout(60_000),
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(input)).catch(() => {}); // the job may have exited already
  await w.close().catch(() => {});
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("data: a pipe (/dev/stdin) or a named FIFO as --input/--data is refused before it is opened (exit 5), not read twice or waited on", async () => {
  const dir = await Deno.makeTempDir();
  const text = "the cat sat on the mat with the dog\n".repeat(100);
  const why =
    /not a regular file \(a pipe, FIFO or device\): the text is read more than once .*save it to a file first/;
  const jobs = [[CORPUS, "--input"], [TRAIN, "--data", "--eval-dir", "none"]];
  for (const [script, flag, ...more] of jobs) {
    const r = await runPiped(script, [flag, "/dev/stdin", "--out", `${dir}/out`, ...more], text);
    assert.equal(r.code, EXIT.badData, r.stderr);
    assert.match(lastLine(r), /: \/dev\/stdin: not a regular file/);
    assert.match(lastLine(r), why);
  }
  const fifo = `${dir}/fifo`;
  assert.equal((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
  for (const [script, flag, ...more] of jobs) {
    const r = await runPiped(script, [flag, fifo, "--out", `${dir}/out`, ...more], "");
    assert.equal(r.code, EXIT.badData, r.stderr);
    assert.match(lastLine(r), new RegExp(`: ${fifo}: not a regular file`));
  }
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["fifo"], "no --out left");
});
