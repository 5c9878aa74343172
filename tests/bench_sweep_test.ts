// bench/sweep.ts: the epoch the best-epoch rule would keep (the lowest held-out loss, the earliest on a tie)
// and the grid's size as documented in docs/training-defaults.md; the mean of the last k epochs' rows
// (--average, iterate averaging measured); the command's flags: --help, one-line refusals (exit 2), and an
// empty selection refused before --write could replace the recorded table with an empty one.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCommand } from "./child.ts";
import { keptEpoch, selectCases, sweepGrid, tailMean } from "../bench/sweep.ts";

const SWEEP = new URL("../bench/sweep.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

Deno.test("sweep: the kept epoch is the one with the lowest held-out loss, the earliest on a tie", () => {
  // CBOW's recipe at dim 200: the loss is lowest after epoch 2 and rises after it
  const cbow = [8.496, 8.262, 8.271, 8.298].map((v, i) => ({ epoch: i + 1, validationLoss: v }));
  assert.equal(keptEpoch(cbow)?.epoch, 2);
  assert.equal(keptEpoch([{ epoch: 1, validationLoss: 1 }, { epoch: 2, validationLoss: 1 }])?.epoch, 1);
  assert.equal(keptEpoch([{ epoch: 1 }, { epoch: 2, validationLoss: 5 }])?.epoch, 2);
  assert.equal(keptEpoch([{ epoch: 1 }]), undefined);
});

Deno.test("sweep: the grid has the recipes (quick) and the documented 57 runs", () => {
  assert.equal(sweepGrid(true).length, 5);
  assert.equal(sweepGrid(false).length, 57);
});

Deno.test("sweep: --average's mean of the last k snapshots, plain and of the unit rows", () => {
  const snaps = [Float32Array.of(9, 9, 9, 9), Float32Array.of(3, 4, 0, 0), Float32Array.of(1, 0, 0, 2)];
  assert.deepEqual([...tailMean(snaps, 2, 2, false)], [2, 2, 0, 1]);
  assert.deepEqual([...tailMean(snaps, 1, 2, false)], [1, 0, 0, 2]);
  // unit rows: (0.6, 0.8) and (1, 0) average to (0.8, 0.4); a zero row stays zero, (0, 1) halves
  const u = tailMean(snaps, 2, 2, true);
  for (const [i, v] of [0.8, 0.4, 0, 0.5].entries()) assert.ok(Math.abs(u[i] - v) < 1e-6, `${i}: ${u[i]}`);
  assert.equal(tailMean(snaps, 3, 2, false)[0], Math.fround(13 / 3));
  assert.throws(() => tailMean(snaps, 4, 2, false), /k must be 1\.\.3/);
});

Deno.test("sweep: selectCases refuses an empty selection and a --set that is not a JSON object", () => {
  assert.deepEqual(selectCases({ quick: true, only: "zloss" }).map((c) => c.name), ["skipgram zloss recipe"]);
  assert.throws(
    () => selectCases({ quick: false, only: "nomatch-xyz" }),
    /--only 'nomatch-xyz' matches none of the 57 runs/,
  );
  assert.throws(() => selectCases({ quick: false, set: ["{bad"] }), /--set must be a JSON object/);
  assert.throws(() => selectCases({ quick: false, set: ["[1]"] }), /--set must be a JSON object/);
  assert.deepEqual(selectCases({ quick: false, set: ['{"lr":0.1}'] })[0].set, { lr: 0.1 });
  assert.throws(() => selectCases({ quick: true, only: "" }), /--only needs a part/);
});

Deno.test("bench:sweep: --help, one-line refusals with exit 2, and no write of an empty sweep", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "docs"));
    const doc = "# t\n<!-- sweep:begin -->\nthe recorded table\n<!-- sweep:end -->\n";
    await Deno.writeTextFile(join(dir, "docs/training-defaults.md"), doc);
    const sweep = async (...args: string[]) => {
      const r = await runCommand(Deno.execPath(), ["run", "-A", "--config", CONFIG, SWEEP, ...args], {
        cwd: dir,
      });
      return { code: r.code, out: r.stdout, err: r.stderr.trim() };
    };
    const help = await sweep("--help");
    assert.equal(help.code, 0, help.err);
    assert.match(help.out, /^usage: npx deno task bench:sweep/);
    assert.match(help.out, /--only <value>/);
    for (
      const [args, why] of [
        [["--dim", "abc"], /^bench:sweep: --dim must be a positive integer, got "abc"$/],
        [["--epochs", "-1"], /^bench:sweep: --epochs must be a positive integer, got "-1"$/],
        [["--set", "{bad"], /^bench:sweep: --set must be a JSON object of train settings, got '\{bad'/],
        [["--bogus"], /^bench:sweep: .*--bogus/],
        [
          ["--only", "nomatch-xyz", "--write"],
          /^bench:sweep: --only 'nomatch-xyz' matches none of the 57 runs/,
        ],
      ] as [string[], RegExp][]
    ) {
      const r = await sweep(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.equal(r.err.split("\n").length, 1, `one line, no stack: ${r.err}`);
      assert.match(r.err, why);
    }
    assert.equal(await Deno.readTextFile(join(dir, "docs/training-defaults.md")), doc, "the table is kept");
    assert.equal(await Deno.stat(join(dir, "runs")).then(() => true, () => false), false, "no runs/ written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
