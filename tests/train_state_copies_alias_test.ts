// The trainer's state copies refill the arrays of the copy before them (lib/core/reuse.ts, `#spare`): a copy
// whose arrays were taken while something still needed them would train on, restore or write another
// state. These runs hold every use of a copy to a snapshot of the state made when the copy was: each rollback
// (a NaN step before the first epoch end, in later epochs, and in a second train() on the same trainer),
// the kept best epoch, and every checkpoint file (the periodic ones, the epoch ends', best.fock, the run
// start's state written out first), with and without a folder, written behind the steps or waited for, with
// hard links and without (best.fock then written from the copy), for the factored and the naive layer with a
// hidden layer. And an onCheckpoint that calls the trainer (saveCheckpoint, embeddings) while a copy is
// written behind the steps does not change what best.fock is written from.
import assert from "node:assert/strict";
import { join } from "node:path";
import { readCheckpoint } from "../lib/train/checkpoint.ts";
import type { TrainConfig } from "../lib/train/config.ts";
import { BEST_CHECKPOINT, Trainer } from "../lib/train/trainer.ts";
import type { CreateHead, OpenReader } from "../lib/train/types.ts";
import {
  type Flaky,
  flakyHeads,
  memoryReader,
  ringCorpus,
  ringVocab,
  smallConfig,
  stoppingReader,
} from "./train_fakes.ts";

const V = 40;
const vocab = ringVocab(V);
const corpus = ringCorpus(V, 600);
const rows = corpus.length;
type Arrays = Record<string, Float32Array | Float64Array>;

const events = (lines: string[], name: string) =>
  lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((e) => e.event === name);

/** The model's and the output layer's arrays of a checkpoint, copied. */
function snapshot(a: Arrays): Arrays {
  return Object.fromEntries(
    Object.entries(a).filter(([k]) => k.startsWith("model.") || k.startsWith("output.")).map((
      [k, x],
    ) => [k, x.slice()]),
  );
}

function sameArrays(got: Arrays, want: Arrays | undefined, what: string): void {
  assert.ok(want, `${what}: no state of that step was copied`);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: arrays`);
  for (const k of Object.keys(want)) {
    const a: Float32Array | Float64Array = got[k], b: Float32Array | Float64Array = want![k];
    assert.equal(a.constructor, b.constructor, `${what}: ${k}'s type`);
    assert.equal(a.length, b.length, `${what}: ${k}'s length`);
    for (let i = 0; i < a.length; i++) {
      if (!Object.is(a[i], b[i])) {
        assert.fail(`${what}: ${k}[${i}] is ${a[i]}, the state of its step ${b[i]}`);
      }
    }
  }
}

/** The memory reader, turning the event loop before each batch (a write behind the steps goes on meanwhile). */
function turning(inner: OpenReader): OpenReader {
  return async function* (paths, opts) {
    for await (const b of inner(paths, opts)) {
      await new Promise((r) => setTimeout(r, 0));
      yield b;
    }
  };
}

/** Runs `body` with hard links refused (Deno.link fails, as on a file system without them). */
async function withoutLinks<T>(on: boolean, body: () => Promise<T>): Promise<T> {
  if (!on) return await body();
  const d = Deno as unknown as { link: typeof Deno.link };
  const link = d.link;
  d.link = () => Promise.reject(new Error("no hard links on this file system"));
  try {
    return await body();
  } finally {
    d.link = link;
  }
}

type Mode = {
  name: string;
  config: Partial<TrainConfig>;
  folder: boolean;
  writeBehind?: boolean;
  noLinks?: boolean;
};

const modes: Mode[] = [
  { name: "factored, no checkpoint folder", config: {}, folder: false },
  {
    name: "naive with a hidden layer, no checkpoint folder",
    config: { output: "naive", hidden: [6] },
    folder: false,
  },
  { name: "factored, checkpoints written behind the steps", config: {}, folder: true, writeBehind: true },
  { name: "factored, checkpoints waited for", config: {}, folder: true, writeBehind: false },
  {
    name: "factored, written behind the steps, no hard links",
    config: {},
    folder: true,
    writeBehind: true,
    noLinks: true,
  },
  {
    name: "naive with a hidden layer, written behind the steps",
    config: { output: "naive", hidden: [6] },
    folder: true,
    writeBehind: true,
  },
];

for (const mode of modes) {
  Deno.test(`state copies: rollbacks, the kept best epoch and the checkpoint files are the states of their steps (${mode.name})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "state-alias-" });
    try {
      await withoutLinks(!!mode.noLinks, async () => {
        const lines: string[] = [];
        // 38-step epochs: NaN steps at steps 5 and 4 (epoch 1: back to the run's start, twice), 40 (back to
        // step 38) and 93 (epoch 3: back to step 76); epochs from the third on validate worse (epoch 2 is kept)
        const plan: Flaky = {
          calls: 0,
          etas: [],
          created: 0,
          nan: (c) => [5, 9, 49, 104, 234].includes(c),
          evalBias: () => events(lines, "epoch").length % 5 >= 2 ? 1 : 0,
        };
        // the latest copy of each step's state (made when the trainer copied or wrote it)
        const snaps = new Map<number, Arrays>();
        // each restore's parameters and output layer state, with the copies made until then
        const restores: { got: Arrays; latest: Map<number, Arrays> }[] = [];
        let t: Trainer | undefined = undefined;
        const flaky = flakyHeads(plan);
        const createHead: CreateHead = async (opts) => {
          const layer = await flaky(opts);
          if (t && opts.state) {
            // a restore: the model's parameters are set before the output layer is made
            const got: Arrays = { "model.E": t.model.bag.E.slice() };
            t.model.layers.forEach((l, i) => {
              got[`model.A.${i}`] = l.A.slice();
              got[`model.b.${i}`] = l.b.slice();
            });
            for (const [k, a] of Object.entries(opts.state.arrays)) got[`output.${k}`] = a.slice();
            restores.push({ got, latest: new Map(snaps) });
          }
          return layer;
        };
        t = await Trainer.create({
          config: smallConfig({
            epochs: 5,
            schedule: "constant",
            lrMin: 0.003,
            keepBest: true,
            ...mode.config,
          }),
          vocab,
          openReader: mode.writeBehind ? turning(memoryReader(corpus)) : memoryReader(corpus),
          createHead,
          log: (l) => lines.push(l),
          writeBehind: mode.writeBehind ?? false,
        });
        const toCheckpoint = t.toCheckpoint.bind(t);
        t.toCheckpoint = async (o) => {
          const c = await toCheckpoint(o);
          snaps.set(c.meta.step as number, snapshot(c.arrays));
          return c;
        };
        const folder = join(dir, "ckpt");
        const opts = {
          paths: ["mem"],
          rows,
          ...(mode.folder ? { checkpointDir: folder, checkpointEvery: 3, keepCheckpoints: 1000 } : {}),
        };
        // every checkpoint file of a run's folder holds the state its step had when it was copied
        const checkFolder = async (sub: string) => {
          const names = [...Deno.readDirSync(join(dir, sub))].map((e) => e.name).filter((n) =>
            n.endsWith(".fock")
          );
          assert.ok(names.includes(BEST_CHECKPOINT) && names.length > 20, names.join(" "));
          for (const n of names) {
            const c = await readCheckpoint(join(dir, sub, n));
            sameArrays(snapshot(c.arrays), snaps.get(c.meta.step as number), `${sub}/${n}`);
          }
        };
        const s = await t.train(opts);
        assert.equal(s.keptEpoch, 2, "epoch 2 kept");
        if (mode.folder) await checkFolder("ckpt");
        // a second run on the same trainer (a NaN at its step 92: back to the second run's start)
        const first = await t.embeddings({ output: true });
        const firstE = first.input.slice();
        const s2 = await t.train({ ...opts, ...(mode.folder ? { checkpointDir: join(dir, "ckpt2") } : {}) });
        assert.equal(s2.keptEpoch, 2, "epoch 2 kept again");
        if (mode.folder) await checkFolder("ckpt2");
        // the rollbacks' and the kept epochs' steps, in the order of the restores
        const order = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
          .filter((e) => e.event === "best" || (e.event === "backoff" && e.rolledBackTo !== undefined))
          .map((e) => e.event === "best" ? e.step as number : e.rolledBackTo as number);
        assert.deepEqual(order, [0, 0, 38, 76, 76, 76, 152], lines.join("\n"));
        assert.equal(restores.length, order.length, "one output layer made per restore");
        restores.forEach((r, i) =>
          sameArrays(r.got, r.latest.get(order[i]), `restore ${i + 1} (to step ${order[i]})`)
        );
        // the caller's vectors of the first run are not written into by the second
        assert.deepEqual(first.input, firstE);
        const final = await t.embeddings({ output: true });
        assert.deepEqual(final.input, snaps.get(t.step)!["model.E"], "the trainer's E: the kept epoch's");
        t.close();
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

for (const call of ["saveCheckpoint", "embeddings"] as const) {
  Deno.test(`state copies: an onCheckpoint that calls the trainer's ${call}() while a copy is written behind the steps leaves best.fock the best epoch's state (no hard links)`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "state-alias-" });
    try {
      await withoutLinks(true, async () => {
        const lines: string[] = [];
        const t: Trainer = await Trainer.create({
          config: smallConfig({ epochs: 3, keepBest: true }),
          vocab,
          openReader: turning(memoryReader(corpus)),
          // epochs 2 and 3 validate worse: epoch 1's state is best.fock, written behind the steps
          createHead: flakyHeads({
            calls: 0,
            etas: [],
            created: 0,
            evalBias: () => events(lines, "epoch").length >= 1 ? 1 : 0,
          }),
          log: (l) => lines.push(l),
          writeBehind: true,
        });
        const folder = join(dir, "ckpt");
        const s = await t.train({
          paths: ["mem"],
          rows,
          checkpointDir: folder,
          // a caller's own use of a checkpoint: a copy beside it, or the vectors of the moment
          onCheckpoint: async () => {
            if (call === "saveCheckpoint") await t.saveCheckpoint(join(dir, "side"));
            else await t.embeddings();
          },
        });
        assert.equal(s.keptEpoch, 1);
        const best = await readCheckpoint(join(folder, BEST_CHECKPOINT));
        const epoch1 = await readCheckpoint(
          join(folder, `ckpt-${String(best.meta.step).padStart(12, "0")}.fock`),
        );
        sameArrays(
          snapshot(best.arrays),
          snapshot(epoch1.arrays),
          "best.fock against its epoch's checkpoint",
        );
        sameArrays(
          { "model.E": (await t.embeddings()).input },
          { "model.E": epoch1.arrays["model.E"] },
          "the kept E",
        );
        t.close();
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

for (const writeBehind of [true, false]) {
  Deno.test(`state copies: a stop before the first epoch end and no checkpoint before it writes the run's start from its copy, then the stop's state into that copy's arrays; resumed, a rollback to the start ends as the uninterrupted run (${writeBehind ? "behind the steps" : "waited for"})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "state-alias-" });
    try {
      const config = smallConfig({ epochs: 3, schedule: "constant", lrMin: 0.003, keepBest: false });
      const plan = (nan: number): Flaky => ({ calls: 0, etas: [], created: 0, nan: (c) => c === nan });
      const opts = { paths: ["mem"], rows };
      // the uninterrupted run: step 20 is not finite, back to the run's start
      const a = await Trainer.create({
        config,
        vocab,
        openReader: memoryReader(corpus),
        createHead: flakyHeads(plan(20)),
        log: () => {},
        writeBehind,
      });
      const start = snapshot((await a.toCheckpoint()).arrays);
      await a.train({ ...opts, checkpointDir: join(dir, "a") });
      const ea = await a.embeddings({ output: true });
      a.close();
      // stopped after step 12, no checkpoint before: ckpt-0 (the start, from its in-memory copy) and ckpt-12
      const ac = new AbortController();
      const b = await Trainer.create({
        config,
        vocab,
        openReader: stoppingReader(turning(memoryReader(corpus)), 12, ac),
        createHead: flakyHeads(plan(-1)),
        log: () => {},
        writeBehind,
      });
      assert.equal(
        (await b.train({ ...opts, checkpointDir: join(dir, "b"), stop: ac.signal })).stopped,
        true,
      );
      const stopped = snapshot((await b.toCheckpoint()).arrays);
      b.close();
      const ckpt0 = await readCheckpoint(join(dir, "b", "ckpt-000000000000.fock"));
      const ckpt12 = await readCheckpoint(join(dir, "b", "ckpt-000000000012.fock"));
      sameArrays(snapshot(ckpt0.arrays), start, "ckpt-0: the run's start");
      sameArrays(snapshot(ckpt12.arrays), stopped, "ckpt-12: the stop's state");
      // resumed: its 8th step is step 20, back to ckpt-0
      const lines: string[] = [];
      const c = await Trainer.fromCheckpoint(join(dir, "b", "ckpt-000000000012.fock"), {
        openReader: memoryReader(corpus),
        createHead: flakyHeads(plan(8)),
        log: (l) => lines.push(l),
        writeBehind,
      });
      await c.train({ ...opts, checkpointDir: join(dir, "b"), resume: true });
      assert.equal(events(lines, "backoff")[0]?.rolledBackTo, 0, lines.join("\n"));
      const ec = await c.embeddings({ output: true });
      sameArrays(
        { E: ec.input, W: ec.output! },
        { E: ea.input, W: ea.output! },
        "resumed against uninterrupted",
      );
      c.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
