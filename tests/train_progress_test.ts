// The live progress line on a terminal (lib/train/progress.ts) and the trainer's log lines on the same
// terminal: `deno task train` in a shell writes the live line to stdout and its log (the epoch event, a
// backoff) to stderr, both on the screen. A log line during training ends the live line first: the epoch's
// JSON event was printed after "ETA:    0h 0m24s" on the live line itself. Where the two are one stream, an
// event shows once.
import assert from "node:assert/strict";
import { ProgressReporter } from "../lib/train/progress.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { memoryReader, ringCorpus, ringVocab, smallConfig } from "./train_fakes.ts";
import { runRedirected } from "./child.ts";
import { shellWord } from "../lib/core/cli.ts";
import { runTrainJob } from "../lib/train/run.ts";
import { parseTrainArgs } from "../lib/train/cli.ts";

/** What a terminal shows of `text`: each line as its last carriage return left it. */
function screen(text: string): string[] {
  return text.split("\n").map((l) => l.slice(l.lastIndexOf("\r") + 1));
}

Deno.test("train: on one terminal, every log line starts a line of its own, never after the live progress", async () => {
  const V = 40, corpus = ringCorpus(V, 600);
  let tty = "";
  const trainer = await Trainer.create({
    config: smallConfig({ epochs: 3 }),
    vocab: ringVocab(V),
    openReader: memoryReader(corpus),
    log: (line) => tty += line + "\n",
  });
  try {
    // interval 0: the live line is drawn at every step, so each epoch's end finds it drawn
    await trainer.train({
      paths: ["mem"],
      rows: corpus.length,
      progress: new ProgressReporter("live", 0, (t) => tty += t),
    });
  } finally {
    trainer.close();
  }
  const lines = screen(tty);
  const events = lines.filter((l) => l.includes(`"event":"epoch"`));
  assert.equal(events.length, 3, tty);
  for (const l of events) assert.ok(l.startsWith(`{"event":"epoch"`), JSON.stringify(l));
  const texts = lines.filter((l) => /^epoch \d\/3: train loss/.test(l));
  assert.equal(texts.length, 3, tty);
  // the live line is still drawn (on lines of its own)
  assert.ok(lines.some((l) => /^Progress: +\d/.test(l)), tty);
  for (const l of lines) assert.ok(!/ETA: .*\S\{/.test(l), JSON.stringify(l));
});

Deno.test("train: the JSON progress lines count epochs from 1, as the epoch events do (they counted from 0)", async () => {
  const V = 40, corpus = ringCorpus(V, 600), epochs = 3;
  let out = "";
  const trainer = await Trainer.create({
    config: smallConfig({ epochs }),
    vocab: ringVocab(V),
    openReader: memoryReader(corpus),
    log: () => {},
  });
  try {
    // interval 0: a progress line at every step
    await trainer.train({
      paths: ["mem"],
      rows: corpus.length,
      progress: new ProgressReporter("json", 0, (t) => out += t),
    });
  } finally {
    trainer.close();
  }
  const lines = out.trim().split("\n").map((l) => JSON.parse(l));
  const ends = lines.filter((l) => l.event === "epoch").map((l) => l.epoch);
  assert.deepEqual(ends, [1, 2, 3]);
  // every progress line names the epoch whose event ends it: the epochs ended before it, plus one
  let ended = 0;
  for (const l of lines) {
    if (l.event === "epoch") ended = l.epoch;
    else if (l.event === "progress") {
      assert.equal(l.epoch, Math.min(ended + 1, epochs), JSON.stringify(l));
    }
  }
  const progress = lines.filter((l) => l.event === "progress");
  assert.equal(progress[0].epoch, 1);
  assert.equal(progress.at(-1).epoch, epochs); // the final line, after the last epoch's event
});

Deno.test("train: where the progress output and the log are one stream, each event shows once, on the progress output", async () => {
  for (const mode of ["json", "live", "none"] as const) {
    const V = 40, corpus = ringCorpus(V, 600);
    let stream = "";
    const trainer = await Trainer.create({
      config: smallConfig({ epochs: 2 }),
      vocab: ringVocab(V),
      openReader: memoryReader(corpus),
      log: (line) => stream += line + "\n",
    });
    const progress = new ProgressReporter(mode, 0, (t) => stream += t, true);
    assert.equal(progress.carriesEvents, mode !== "none");
    try {
      await trainer.train({ paths: ["mem"], rows: corpus.length, progress });
    } finally {
      trainer.close();
    }
    const lines = screen(stream);
    const json = lines.filter((l) => l.startsWith(`{"event":"epoch"`)).length;
    const text = lines.filter((l) => /^epoch \d\/2: train loss/.test(l)).length;
    // json: the progress output's JSON lines; live: its text lines; none: the log's JSON lines (nothing else
    // reports them)
    assert.deepEqual([json, text], mode === "live" ? [0, 2] : [2, 0], `${mode}: ${stream}`);
  }
});

Deno.test("train CLI: a job whose stdout and stderr go to one file writes each epoch event once (it was twice)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = `${dir}/job.log`;
    const flags =
      "--limit-tokens 12000 --epochs 2 --dim 16 --batch 16 --formats vec --eval-dir none --threads 1";
    const r = await runRedirected(
      "train",
      [...flags.split(" "), "--out", `${dir}/run`],
      `> ${shellWord(log)} 2>&1`,
    );
    const text = await Deno.readTextFile(log);
    assert.equal(r.code, 0, text);
    const events = text.split("\n").filter((l) => l.startsWith(`{"event":"epoch"`)).map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => e.epoch), [1, 2], text);
    // the log's other lines are still there
    assert.match(text, /^train: skipgram, dim 16/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train job: where the two are one stream and standard output fails, the events go on in the log (they vanished)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const err: string[] = [];
    let writes = 0;
    const io = {
      // the first progress write fails (a reader that closed the stream); stderr still works
      out: () => {
        writes++;
        throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
      },
      err: (l: string) => err.push(l),
      tty: false,
      merged: true,
    };
    const flags =
      "--limit-tokens 12000 --epochs 2 --dim 8 --batch 16 --formats vec --eval-dir none --threads 1";
    await runTrainJob(
      await parseTrainArgs([
        ...flags.split(" "),
        "--out",
        `${dir}/run`,
        "--progress",
        "json",
        "--backend",
        "js",
      ]),
      io,
    );
    assert.equal(writes, 1, "one failed write, then none");
    assert.equal(err.filter((l) => l.startsWith("stdout: cannot write (EPIPE")).length, 1, err.join("\n"));
    const epochs = err.filter((l) => l.startsWith(`{"event":"epoch"`)).map((l) => JSON.parse(l).epoch);
    assert.deepEqual(epochs, [1, 2], err.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
