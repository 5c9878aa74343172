// Subsampling draws (`--sample-draws`): the corpus job writes n independently subsampled sets of windows,
// draw 0 byte for byte the single-draw corpus and draw k the same whatever n; the reader gives epoch e
// draw e mod n, resumes exactly inside a later epoch's draw; the manifest check refuses inconsistent draws;
// the train job prepares one draw per epoch and says so.
import assert from "node:assert/strict";
import { DataFormatError, UsageError } from "../lib/core/errors.ts";
import { checkOptions, prepareCorpus, type PrepareOptions, shardFileName } from "../lib/io/prepare.ts";
import { readManifest } from "../lib/io/manifest.ts";
import { type ExampleBatch, type ReaderPosition, readExamples } from "../lib/io/read.ts";
import { resolveConfig, subsampleDraws } from "../lib/train/config.ts";
import { rowHash } from "../lib/core/row_hash.ts";
import { ExampleColumns } from "../lib/io/columns.ts";
import { WindowEmitter } from "../lib/io/windows.ts";
import { Sfc32 } from "../lib/core/rng.ts";
import { parseTrainArgs } from "../lib/train/cli.ts";
import { runTrainJob } from "../lib/train/run.ts";
import { withFlags } from "./child.ts";

const SYNTH = { vocabSize: 300, tokens: 30_000, seed: 5, exponent: 1 };

function opts(outDir: string, sampleDraws?: number): PrepareOptions {
  return {
    synthetic: SYNTH,
    outDir,
    mode: "skipgram",
    window: 3,
    minCount: 2,
    sample: 1e-3,
    seed: 3,
    shardRows: 4000,
    ...(sampleDraws === undefined ? {} : { sampleDraws }),
  };
}

/** Every row of a batch as "inputs>targets" text, for comparing streams. */
function rows(b: ExampleBatch): string[] {
  const out: string[] = [];
  for (let r = 0; r < b.size; r++) {
    const i = Array.from(b.inputs.indices.subarray(b.inputs.offsets[r], b.inputs.offsets[r + 1]));
    const t = Array.from(b.targets.indices.subarray(b.targets.offsets[r], b.targets.offsets[r + 1]));
    out.push(`${i.join(",")}>${t.join(",")}`);
  }
  return out;
}

Deno.test("draws: draw 0 is the single-draw corpus byte for byte, draw k does not depend on n, draws differ", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const one = await prepareCorpus(opts(`${dir}/one`));
    const two = await prepareCorpus(opts(`${dir}/two`, 2));
    const three = await prepareCorpus(opts(`${dir}/three`, 3));
    assert.equal(one.draws, undefined);
    assert.equal(three.draws?.length, 3);
    assert.ok(one.shards.length > 1, "the test wants several shards per draw");
    assert.deepEqual(three.shards, one.shards);
    assert.equal(three.rows, one.rows);
    assert.equal(three.keptTokens, one.keptTokens);
    assert.deepEqual(three.draws![0].shards, three.shards);
    assert.equal(three.source.sampleDraws, 3);
    const bytes = (d: string, f: string) => Deno.readFile(`${dir}/${d}/${f}`);
    for (const s of one.shards) assert.deepEqual(await bytes("three", s.file), await bytes("one", s.file));
    assert.deepEqual(two.draws![1], three.draws![1]);
    for (const s of two.draws![1].shards) {
      assert.match(s.file, /^part-\d{5}\.draw01\.arrow$/);
      assert.deepEqual(await bytes("three", s.file), await bytes("two", s.file));
    }
    // independent draws: different kept tokens and different windows
    const kept = three.draws!.map((d) => d.keptTokens);
    assert.equal(new Set(kept).size, 3, `kept tokens per draw ${kept}`);
    assert.notDeepEqual(
      await bytes("three", three.draws![1].shards[0].file),
      await bytes("three", three.draws![2].shards[0].file),
    );
    assert.equal(three.maxTargetK, Math.max(one.maxTargetK, three.maxTargetK));
    assert.equal(shardFileName(12, 3, "parquet"), "part-00012.draw03.parquet");
    // a corpus prepared again into the same folder with fewer draws leaves no shard of the old draws
    await prepareCorpus(opts(`${dir}/three`, 1));
    const left = [...Deno.readDirSync(`${dir}/three`)].map((e) => e.name).filter((n) => n.includes("draw"));
    assert.deepEqual(left, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("draws: epoch e reads draw e mod n, shuffled per epoch, and a position inside epoch 1 resumes exactly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = await prepareCorpus(opts(`${dir}/c`, 3));
    const read = async (paths: string | string[], o: Parameters<typeof readExamples>[1]) => {
      const got: ExampleBatch[] = [];
      for await (const b of readExamples(paths, o)) got.push(b);
      return got;
    };
    // unshuffled: each epoch is its draw's shards in order
    const all = await read(`${dir}/c`, { batchSize: 50, epochs: 4 });
    for (let e = 0; e < 4; e++) {
      const draw = m.draws![e % 3];
      const alone = await read(draw.shards.map((s) => `${dir}/c/${s.file}`), { batchSize: 50 });
      const epochRows = all.filter((b) => b.epoch === e).flatMap(rows);
      assert.equal(epochRows.length, draw.rows, `epoch ${e}`);
      assert.deepEqual(epochRows, alone.flatMap(rows), `epoch ${e} is draw ${e % 3}`);
    }
    // shuffled: the same resumed from a position in the middle of epoch 1 (draw 1)
    const o = { batchSize: 64, epochs: 3, seed: 9, shuffleBuffer: 1000 };
    const full = await read(`${dir}/c`, o);
    const at = full.findIndex((b) => b.epoch === 1) + 7;
    assert.equal(full[at].epoch, 1);
    const start: ReaderPosition = JSON.parse(JSON.stringify(full[at].position));
    const rest = await read(`${dir}/c`, { ...o, start });
    assert.deepEqual(rest.flatMap(rows), full.slice(at + 1).flatMap(rows));
    assert.deepEqual(rest.map((b) => b.epoch), full.slice(at + 1).map((b) => b.epoch));
    // the position counts the files of its epoch's draw
    assert.equal(start.files, m.draws![1].shards.length);
    await assert.rejects(
      () => read(`${dir}/c`, { ...o, start: { ...start, files: start.files + 1 } }),
      (e) => e instanceof UsageError && /number of files/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("draws: the positions of draw 0's held-out windows are left out of the other draws", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // every word occurs once, so a window's centre names its position; keep probability ≈ 0.65 each
    const lines = Array.from(
      { length: 200 },
      (_, l) => Array.from({ length: 10 }, (_, i) => `w${l}x${i}`).join(" "),
    );
    await Deno.writeTextFile(`${dir}/u.txt`, lines.join("\n") + "\n");
    const prep = (holdOut: number, out: string) =>
      prepareCorpus({
        input: `${dir}/u.txt`,
        outDir: `${dir}/${out}`,
        mode: "skipgram",
        window: 2,
        minCount: 1,
        sample: 1e-4,
        seed: 1,
        sampleDraws: 3,
        holdOut,
      });
    const centres = async (files: string[]) => {
      const got: { centre: number; hash: number }[] = [];
      for await (const b of readExamples(files, { batchSize: 100 })) {
        for (let r = 0; r < b.size; r++) {
          const X = b.inputs, Y = b.targets;
          const hash = rowHash(
            X.indices,
            X.offsets[r],
            X.offsets[r + 1],
            Y.indices,
            Y.offsets[r],
            Y.offsets[r + 1],
          );
          got.push({ centre: X.indices[X.offsets[r]], hash });
        }
      }
      return got;
    };
    for (const holdOut of [0.2, 0]) {
      const m = await prep(holdOut, `h${holdOut}`);
      const draw0 = await centres(m.draws![0].shards.map((s) => `${dir}/h${holdOut}/${s.file}`));
      const heldCentres = new Set(draw0.filter((r) => r.hash < 0.2).map((r) => r.centre));
      assert.ok(heldCentres.size > 50, `held ${heldCentres.size}`);
      let again = 0;
      for (const k of [1, 2]) {
        const rows = await centres(m.draws![k].shards.map((s) => `${dir}/h${holdOut}/${s.file}`));
        again += rows.filter((r) => heldCentres.has(r.centre)).length;
      }
      if (holdOut > 0) {
        assert.equal(again, 0, "a held-out position was windowed again in another draw");
        assert.equal(m.source.heldOutRows, heldCentres.size);
        assert.ok((m.source.leftOutRows as number) > 0);
      } else assert.ok(again > 50, `without --hold-out the held-out positions come back (${again})`);
    }
    // the emitter's skip: no row for a skipped centre, the word still a context
    const cols = new ExampleColumns();
    new WindowEmitter({ mode: "skipgram", window: 1 }, new Sfc32(1)).emit(
      Int32Array.of(5, 6, 7),
      3,
      cols,
      Uint8Array.of(0, 1, 0),
    );
    assert.equal(cols.rows, 2);
    assert.deepEqual(Array.from(cols.inIdx.subarray(0, 2)), [5, 7]);
    assert.deepEqual(Array.from(cols.tIdx.subarray(0, 2)), [6, 6]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("draws: the manifest check refuses draws that do not add up or do not start with the corpus", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await prepareCorpus(opts(`${dir}/c`, 2));
    const path = `${dir}/c/manifest.json`;
    const good = JSON.parse(await Deno.readTextFile(path));
    const tamper = async (f: (m: typeof good) => void, re: RegExp) => {
      const m = structuredClone(good);
      f(m);
      await Deno.writeTextFile(path, JSON.stringify(m));
      await assert.rejects(
        () => readManifest(`${dir}/c`),
        (e) => e instanceof DataFormatError && re.test(e.message),
      );
    };
    await tamper((m) => m.draws[1].rows++, /draws\[1\]\.rows/);
    await tamper((m) => (m.draws[0] = m.draws[1]), /draws\[0\]/);
    await tamper((m) => (m.draws = [m.draws[0]]), /"draws" must be an array of at least 2/);
    await tamper((m) => (m.draws[1].shards[0].file = "part-99999.draw01.arrow"), /does not exist/);
    await Deno.writeTextFile(path, JSON.stringify(good));
    assert.equal((await readManifest(`${dir}/c`)).draws?.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("draws: options and the train config", async () => {
  const base = {
    input: "brown",
    outDir: "/tmp/x",
    mode: "skipgram" as const,
    window: 5,
    minCount: 5,
    seed: 1,
  };
  assert.throws(
    () => checkOptions({ ...base, sample: 0, sampleDraws: 2 }),
    /--sample-draws 2 needs --sample > 0/,
  );
  assert.throws(() => checkOptions({ ...base, sample: 1e-4, sampleDraws: 0 }), UsageError);
  assert.throws(() => checkOptions({ ...base, sample: 1e-4, sampleDraws: 2, holdOut: 0.9 }), /--hold-out/);
  checkOptions({ ...base, sample: 1e-4, sampleDraws: 4 });
  assert.equal(subsampleDraws(resolveConfig({})), 5); // one per epoch
  assert.equal(subsampleDraws(resolveConfig({ epochs: 15 })), 15);
  assert.equal(subsampleDraws(resolveConfig({ epochs: 50 })), 20);
  assert.equal(subsampleDraws(resolveConfig({ epochs: 15, sampleDraws: 3 })), 3);
  assert.equal(subsampleDraws(resolveConfig({ epochs: 15, sample: 0 })), 1);
  const a = await parseTrainArgs(["--sample-draws", "7"]);
  assert.equal(a.config.sampleDraws, 7);
  await assert.rejects(() => parseTrainArgs(["--sample-draws", "1.5"]), /--sample-draws/);
});

Deno.test("draws: the train job prepares one draw per epoch, says so, and reuses the corpus only with as many", async () => {
  const out = await Deno.makeTempDir();
  const lines: string[] = [];
  const io = { out: () => {}, err: (l: string) => lines.push(l), tty: false };
  const args = (extra: string[]) =>
    parseTrainArgs(withFlags([
      ...["--limit-tokens", "20000", "--dim", "8", "--epochs", "3", "--eval-dir", "none", "--formats", "vec"],
      ...["--out", out, "--progress", "none", "--backend", "js"],
    ], ...extra));
  try {
    await runTrainJob(await args([]), io);
    const m = await readManifest(`${out}/corpus`);
    assert.equal(m.draws?.length, 3);
    assert.ok(lines.some((l) => /3 subsampling draws, one per epoch/.test(l)), lines.join("\n"));
    assert.ok(lines.some((l) => /preparing brown .*3 subsampling draws/.test(l)), lines.join("\n"));
    lines.length = 0;
    await runTrainJob(await args(["--overwrite"]), io);
    assert.ok(lines.some((l) => /corpus: reusing/.test(l)), lines.join("\n"));
    lines.length = 0;
    // fewer epochs read draws 0, 1: the same data as a corpus of 2 draws
    await runTrainJob(await args(["--overwrite", "--epochs", "2"]), io);
    assert.ok(lines.some((l) => /corpus: reusing/.test(l)), lines.join("\n"));
    lines.length = 0;
    // another held-out fraction leaves other positions out of draws 1, 2
    await runTrainJob(await args(["--overwrite", "--validation", "0.05"]), io);
    assert.ok(lines.some((l) => /corpus: preparing .*other settings/.test(l)), lines.join("\n"));
    assert.equal((await readManifest(`${out}/corpus`)).source.holdOut, 0.05);
    lines.length = 0;
    // a resumed run keeps its draws (the checkpoint holds 3) whatever --epochs becomes
    await runTrainJob(
      await parseTrainArgs(["--resume", out, "--epochs", "5", "--eval-dir", "none", "--formats", "vec"]),
      io,
    );
    assert.ok(lines.some((l) => /corpus: reusing/.test(l)), lines.join("\n"));
    assert.ok(
      lines.some((l) => /3 subsampling draw\(s\) for 5 epochs: epoch e reads draw e mod 3/.test(l)),
      lines.join("\n"),
    );
    lines.length = 0;
    await runTrainJob(await args(["--overwrite", "--sample-draws", "1"]), io);
    assert.ok(lines.some((l) => /corpus: preparing .*other settings/.test(l)), lines.join("\n"));
    assert.ok(lines.some((l) => /1 subsampling draw\(s\) for 3 epochs/.test(l)), lines.join("\n"));
    assert.equal((await readManifest(`${out}/corpus`)).draws, undefined);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
