// `deno task train` end to end (pipelines/train.ts as a child process on a small slice of Brown): the
// default pipeline ends with embedding files that load back; a run killed with SIGKILL after its first
// checkpoint and resumed ends with the same weights as an uninterrupted run (identical on js, within
// tolerance on blas); every CLI error gets its code from the shared table (lib/core/exit_codes.ts: 2 bad flag,
// 4 unusable checkpoint, 5 bad data, 6 diverged) and a message naming the flag.
import assert from "node:assert/strict";
import { readEmbeddings } from "../lib/export/read.ts";
import { readCheckpoint } from "../lib/train/checkpoint.ts";
import { helpText, parseTrainArgs } from "../lib/train/cli.ts";
import { adoptRunFields, resolveConfig, resumeDifferences } from "../lib/train/config.ts";
import { UsageError } from "../lib/core/errors.ts";
import { EXIT } from "../lib/core/exit_codes.ts";
import { withFlags } from "./child.ts";

const script = new URL("../pipelines/train.ts", import.meta.url).pathname;
const dec = new TextDecoder();

function train(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { OPENBLAS_NUM_THREADS: "1" },
  }).spawn();
}

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await train(args).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function latestCheckpoint(dir: string): string {
  const names = [...Deno.readDirSync(`${dir}/checkpoints`)].map((e) => e.name).filter((n) =>
    n.endsWith(".fock")
  ).sort();
  return `${dir}/checkpoints/${names[names.length - 1]}`;
}

// a small slice, few steps, checkpoints often, quick to evaluate
const SMALL = [
  "--limit-tokens",
  "12000",
  "--epochs",
  "2",
  "--dim",
  "16",
  "--batch",
  "16",
  "--formats",
  "vec,bin,arrow,parquet",
];

Deno.test("train CLI: a small-slice default run publishes embeddings that load back and prints a JSON summary", async () => {
  const out = await Deno.makeTempDir();
  const r = await run([...SMALL, "--out", out]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const summary = lines[lines.length - 1];
  assert.equal(summary.event, "summary");
  assert.ok(lines.some((l) => l.event === "progress"), "progress JSON lines");
  assert.match(r.stderr, /backend (blas|js)/);
  assert.equal(summary.output, "factored");
  assert.ok(Number.isFinite(summary.training.trainLoss));
  assert.ok(Number.isFinite(summary.metrics.wordsim353), "wordsim353 evaluated");
  // every set evaluated has its coverage, the analogy set's included; summary.json holds the same line
  assert.deepEqual(Object.keys(summary.metrics.coverage).sort(), ["analogy", "simlex999", "wordsim353"]);
  assert.ok(summary.metrics.coverage.analogy >= 0 && summary.metrics.coverage.analogy <= 1);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(`${out}/summary.json`)).metrics, summary.metrics);
  // --keep-best publishes the epoch with the lowest validation loss: compare with that epoch's checkpoint
  const kept = summary.embeddings.epoch;
  const ckpt = await readCheckpoint(
    kept !== undefined && kept < 2 ? `${out}/checkpoints/best.fock` : latestCheckpoint(out),
  );
  const E = ckpt.arrays["model.E"] as Float32Array;
  for (const f of summary.embeddings.files.filter((p: string) => !p.endsWith("manifest.json"))) {
    const e = await readEmbeddings(f);
    assert.equal(e.d, 16, f);
    assert.equal(e.words.length, summary.vocabularySize, f);
    assert.equal(e.vectors.length, E.length, f);
    for (let i = 0; i < E.length; i += 97) {
      assert.ok(Math.abs(e.vectors[i] - E[i]) <= 1e-6 * (1 + Math.abs(E[i])), `${f}[${i}]`);
    }
  }
  const latest = await Deno.realPath(`${out}/embeddings/latest`);
  assert.equal(latest, await Deno.realPath(summary.embeddings.dir));
  // a second run (--overwrite: the folder holds a run) reuses the prepared corpus
  const again = await run(withFlags(
    SMALL,
    "--overwrite",
    "--out",
    out,
    "--epochs",
    "1",
    "--eval-dir",
    "none",
    "--formats",
    "vec",
  ));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /corpus: reusing/);
  await Deno.remove(out, { recursive: true });
});

async function killAndResume(
  backend: "js" | "blas",
  compare: (a: Float32Array, b: Float32Array, name: string) => void,
  extra: string[] = [],
) {
  const common = withFlags(
    SMALL,
    ...extra,
    "--backend",
    backend,
    "--checkpoint-every",
    "10",
    "--keep-checkpoints",
    "2",
    "--eval-dir",
    "none",
    "--formats",
    "vec",
  );
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  const full = await run([...common, "--out", a]);
  assert.equal(full.code, 0, full.stderr);
  // the same run, killed with SIGKILL as soon as its first checkpoint after the start is complete (the
  // run's start, ckpt-0, the state a rollback in epoch 1 returns to, is written just before it)
  const child = train([...common, "--out", b]);
  let killed = false;
  for (let i = 0; i < 6000 && !killed; i++) {
    await new Promise((r) => setTimeout(r, 5));
    try {
      const names = [...Deno.readDirSync(`${b}/checkpoints`)].map((e) => e.name);
      if (names.some((n) => n.endsWith(".fock") && n !== "ckpt-000000000000.fock")) {
        child.kill("SIGKILL");
        killed = true;
      }
    } catch { /* not yet created */ }
  }
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.ok(killed, "the child wrote no checkpoint");
  assert.equal(status.signal, "SIGKILL", "the child finished before it could be killed");
  await assert.rejects(() => Deno.stat(`${b}/summary.json`));
  const resumed = await run(["--resume", b, "--eval-dir", "none", "--formats", "vec"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  const from = Number(resumed.stderr.match(/resume: .*ckpt-\d+\.fock at step (\d+)/)?.[1]);
  const ca = await readCheckpoint(latestCheckpoint(a)),
    cb = await readCheckpoint(latestCheckpoint(b));
  assert.equal(ca.meta.step, cb.meta.step);
  assert.ok(from > 0 && from < (cb.meta.step as number) / 2, `resumed at step ${from} of ${cb.meta.step}`);
  const names = Object.keys(ca.arrays).filter((n) => n.startsWith("model.") || n.startsWith("output."));
  assert.deepEqual(
    names.sort(),
    Object.keys(cb.arrays).filter((n) => n.startsWith("model.") || n.startsWith("output.")).sort(),
  );
  for (const n of names) compare(ca.arrays[n] as Float32Array, cb.arrays[n] as Float32Array, n);
  // summary.json describes the run, not the resume: its steps, examples and epochs are the uninterrupted
  // run's; this job's own in thisInvocation
  const summaryOf = async (dir: string) => JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
  const sa = await summaryOf(a), sb = await summaryOf(b);
  for (const k of ["steps", "examples", "epochsDone"]) assert.equal(sb.training[k], sa.training[k], k);
  assert.equal(sb.training.thisInvocation.steps, sb.training.steps - from);
  assert.equal(sb.thisInvocation.resumedFrom, resumed.stderr.match(/resume: (\S+) at step/)?.[1]);
  assert.equal(sa.thisInvocation.resumedFrom, undefined);
  if (backend === "js") {
    assert.equal(sb.training.trainLoss, sa.training.trainLoss, "the last epoch's train loss");
    // the finished run resumed: no step, and still the run's figures and its last epoch's train loss
    const again = await run(["--resume", a]);
    assert.equal(again.code, 0, again.stderr);
    const s2 = await summaryOf(a);
    assert.equal(s2.training.thisInvocation.steps, 0);
    for (const k of ["steps", "examples", "epochsDone", "trainLoss"]) {
      assert.equal(s2.training[k], sa.training[k], k);
    }
    assert.ok(Number.isFinite(s2.training.seconds) && s2.training.seconds > 0);
  }
  await Deno.remove(a, { recursive: true });
  await Deno.remove(b, { recursive: true });
}

Deno.test("train CLI: SIGKILL after the first checkpoint, then --resume, gives identical weights (js backend)", async () => {
  await killAndResume("js", (x, y, name) => {
    assert.equal(x.length, y.length, name);
    for (let i = 0; i < x.length; i++) {
      if (!Object.is(x[i], y[i])) assert.fail(`${name}[${i}]: ${x[i]} ≠ ${y[i]}`);
    }
  });
});

function withinTolerance(x: Float32Array, y: Float32Array, name: string) {
  assert.equal(x.length, y.length, name);
  let scale = 0, diff = 0;
  for (let i = 0; i < x.length; i++) {
    scale = Math.max(scale, Math.abs(x[i]));
    diff = Math.max(diff, Math.abs(x[i] - y[i]));
  }
  assert.ok(diff <= 1e-4 * Math.max(scale, 1e-3), `${name}: max diff ${diff} vs max ${scale}`);
}

Deno.test("train CLI: SIGKILL then --resume matches the uninterrupted run within tolerance (blas backend)", async () => {
  await killAndResume("blas", withinTolerance);
});

Deno.test("train CLI: SIGKILL then --resume matches within tolerance (blas, dim 64: float32 products, pending accumulator at each checkpoint)", async () => {
  // d = 65 takes the float32-products path on blas; at lr 0.001 every step does (at the default 0.004 this
  // small slice's first steps are strong and run in float64), so each checkpoint (every 10 steps) holds
  // pending float32 increments that exportState must settle (checked: without that the E rows differ by
  // up to 0.014 after the resume; with it the runs are bit-identical here)
  await killAndResume("blas", withinTolerance, ["--dim", "64", "--lr", "0.001"]);
});

Deno.test("train CLI: errors exit with the shared codes and name the flag", async () => {
  const tmp = await Deno.makeTempDir();
  await Deno.writeTextFile(`${tmp}/empty.txt`, "");
  await Deno.writeTextFile(`${tmp}/garbage.fock`, "not a checkpoint at all");
  const cases: [string[], number, RegExp][] = [
    [["--bogus"], EXIT.usage, /Unknown option '--bogus'/],
    [["--dim", "abc"], EXIT.usage, /--dim must be an integer ≥ 1/],
    [
      ["--data", "/nonexistent/corpus.txt", "--out", `${tmp}/d`],
      EXIT.badData,
      /--data \/nonexistent\/corpus\.txt: no such file or folder/,
    ],
    [["--data", `${tmp}/empty.txt`, "--out", `${tmp}/e`], EXIT.badData, /.*empty\.txt: empty corpus/],
    [
      ["--resume", `${tmp}/nope`],
      EXIT.noCheckpoint,
      /--resume .*nope: no such checkpoint file or run folder/,
    ],
    [
      ["--resume", `${tmp}/garbage.fock`],
      EXIT.noCheckpoint,
      /--resume .*garbage\.fock: unusable checkpoint: .*not a factorout checkpoint/,
    ],
  ];
  for (const [args, code, re] of cases) {
    const r = await run(args);
    assert.equal(r.code, code, `${args}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.match(lines[lines.length - 1], new RegExp(`^train: ${re.source}`), r.stderr);
  }
  await Deno.remove(tmp, { recursive: true });
  // a checkpoint resumed under another model configuration
  const out = await Deno.makeTempDir();
  const ok = await run(
    withFlags(SMALL, "--epochs", "1", "--out", out, "--eval-dir", "none", "--formats", "vec"),
  );
  assert.equal(ok.code, 0, ok.stderr);
  const bad = await run(["--resume", out, "--dim", "32", "--loss", "taylor"]);
  assert.equal(bad.code, EXIT.noCheckpoint, bad.stderr);
  assert.match(
    bad.stderr,
    /cannot resume .*ckpt-\d+\.fock: it was trained with another configuration \(--dim: 16 ≠ 32; --loss: "spherical" ≠ "taylor"\)/,
  );
  // divergence: a huge learning rate stops with exit code 6 and names the step; the checkpoint it resumed
  // from is left as it was and still loads
  const ck = latestCheckpoint(out);
  const before = await Deno.readFile(ck);
  const div = await run([
    "--resume",
    out,
    "--lr",
    "1e6",
    "--lr-min",
    "1e6",
    "--epochs",
    "3",
    "--eval-dir",
    "none",
  ]);
  assert.equal(div.code, EXIT.diverged, div.stderr);
  assert.match(div.stderr, /training diverged at step \d+ .*Lower --lr/);
  assert.ok(div.stderr.includes(ck), div.stderr);
  assert.deepEqual(await Deno.readFile(ck), before);
  assert.equal((await readCheckpoint(ck)).meta.kind, "factorout-trainer");
  const none = await run(["--resume", `${out}/corpus`]);
  assert.equal(none.code, EXIT.noCheckpoint, none.stderr);
  assert.match(none.stderr, /--resume .*corpus: no checkpoint/);
  await Deno.remove(out, { recursive: true });
});

Deno.test("train CLI arguments: every bad value and config file is a UsageError naming it", async () => {
  const bad: [string[], RegExp][] = [
    [["--mode", "glove"], /--mode must be one of cbow\|skipgram, got 'glove'/],
    [["--hidden", "512,x"], /--hidden must be a comma-separated list of positive integers/],
    [["--lr=-1"], /--lr must be a number > 0/],
    [["--lr", "-1"], /--lr must be a number > 0, got '-1'/],
    [["--dim", "-5"], /--dim must be an integer ≥ 1.*, got '-5'/],
    [["--epochs", "-2"], /--epochs must be an integer ≥ 1, got '-2'/],
    [["--lr", "0"], /--lr must be a number > 0/],
    [["--lr", "0.01", "--lr-min", "0.1"], /--lr-min \(0.1\) must not exceed --lr/],
    [["--dim", "100000"], /--dim must be an integer ≥ 1 and ≤ 8192, got '100000'/],
    [
      ["--hidden", "100000"],
      /--hidden must be a list of positive integers ≤ 8192 like 512,256, got '100000'/,
    ],
    [["--dim", "0x10"], /--dim must be an integer ≥ 1 and ≤ 8192, got '0x10'/],
    [["--lr", "Infinity"], /--lr must be a number > 0, got 'Infinity'/],
    [["--wait", "1e400"], /--wait must be a number of seconds ≥ 0, got '1e400'/],
    [["--wait", "0x10"], /--wait must be a number of seconds ≥ 0, got '0x10'/],
    [["--validation", "0.9"], /--validation must be a number ≥ 0 and ≤ 0.5/],
    [["--loss", "softmax"], /--loss must be one of squared\|spherical\|taylor\|zloss/],
    [["--backend", "cuda"], /--backend must be one of js\|blas\|webgpu\|auto/],
    [["--formats", "csv"], /--formats: unknown format "csv"/],
    [["--progress", "loud"], /--progress must be one of/],
    [["--threads=-2"], /--threads must be an integer/],
    [["--epochs", "1.5"], /--epochs must be an integer ≥ 1/],
    [["--resume", ""], /--resume needs/],
    [["--config", "/nonexistent.json"], /--config \/nonexistent\.json: cannot read it/],
    [["positional"], /Unexpected argument 'positional'/],
  ];
  for (const [args, re] of bad) {
    await assert.rejects(
      () => parseTrainArgs(args),
      (e) => e instanceof UsageError && re.test(e.message),
      args.join(" "),
    );
  }
  // decimals in every form a number is written in; the constant schedule never reads --lr-min
  const ok = await parseTrainArgs([
    "--dim",
    " 16 ",
    "--lr",
    "1e-3",
    "--lr-min",
    ".5",
    "--schedule",
    "constant",
  ]);
  assert.deepEqual([ok.config.dim, ok.config.lr, ok.config.lrMin], [16, 0.001, 0.5]);
  assert.equal((await parseTrainArgs(["--wait", "2.5"])).waitSeconds, 2.5);
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify({ dim: 24, dimension: 3 }));
  await assert.rejects(
    () => parseTrainArgs(["--config", `${dir}/c.json`]),
    /c\.json: unknown setting 'dimension'/,
  );
  await Deno.writeTextFile(`${dir}/c.json`, "{ not json");
  await assert.rejects(() => parseTrainArgs(["--config", `${dir}/c.json`]), /c\.json: not valid JSON/);
  // a key written twice: JSON.parse would keep the last value without a word
  await Deno.writeTextFile(`${dir}/c.json`, '{"dim": 24, "hidden": {"a": 1}, "lr": 0.1, "dim": 48}');
  await assert.rejects(
    () => parseTrainArgs(["--config", `${dir}/c.json`]),
    /c\.json: the setting 'dim' is written twice; keep one/,
  );
  await Deno.writeTextFile(`${dir}/c.json`, '{"lr": 0.1, "l\\u0072": 0.2}'); // the same key, escaped
  await assert.rejects(() => parseTrainArgs(["--config", `${dir}/c.json`]), /'lr' is written twice/);
  await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify({ dim: 24, loss: "taylor", hidden: [8] }));
  const a = await parseTrainArgs(["--config", `${dir}/c.json`, "--dim", "12"]);
  assert.equal(a.config.dim, 12, "flags override the config file");
  assert.equal(a.config.loss, "taylor");
  assert.deepEqual(a.config.hidden, [8]);
  assert.ok(a.explicit.has("loss") && a.explicit.has("dim") && !a.explicit.has("lr"));
  await Deno.remove(dir, { recursive: true });
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  for (
    const flag of [
      "--data",
      "--mode",
      "--dim",
      "--hidden",
      "--loss",
      "--epochs",
      "--batch",
      "--lr",
      "--min-count",
      "--window",
      "--out",
      "--resume",
      "--checkpoint-every",
      "--config",
      "--seed",
      "--backend",
      "--output",
      "--validation",
      "--limit-tokens",
      "--threads",
      "--formats",
      "--eval-dir",
    ]
  ) {
    assert.match(help.stdout, new RegExp(`${flag} .*\\(default: `), flag);
  }
  assert.match(
    help.stdout,
    /Exit codes.*:\n {2}0 {2}done\n {2}1 {2}internal error\n {2}2 {2}bad flag or value\n {2}3 {2}locked.*\n {2}4 {2}no usable checkpoint.*\n {2}5 {2}bad data.*\n {2}6 {2}diverged.*\n {2}7 {2}export failed.*\n {2}8 {2}operating-system I\/O error.*\n {2}9 {2}stopped by a signal/,
  );
});

Deno.test("train CLI arguments: --export-output alone, true or false, a config field a checkpoint keeps", async () => {
  const plain = await parseTrainArgs([]);
  assert.equal(plain.config.exportOutput, false);
  assert.ok(!plain.explicit.has("exportOutput"));
  const cases: [string[], boolean][] = [
    [["--export-output"], true],
    [["--export-output", "--dim", "12"], true],
    [["--dim", "12", "--export-output"], true],
    [["--export-output", "true"], true],
    [["--export-output=true"], true],
    [["--export-output", "false"], false],
    [["--export-output=false"], false],
    [["--export-output", "no"], false],
  ];
  for (const [args, want] of cases) {
    const a = await parseTrainArgs(args);
    assert.equal(a.config.exportOutput, want, args.join(" "));
    assert.ok(a.explicit.has("exportOutput"), args.join(" "));
    if (args.includes("--dim")) assert.equal(a.config.dim, 12);
  }
  await assert.rejects(
    () => parseTrainArgs(["--export-output", "maybe"]),
    (e) =>
      e instanceof UsageError &&
      /^--export-output must be true or false \(also 1 or yes, 0 or no\), got 'maybe'$/.test(e.message),
  );
  // a checkpoint keeps it (JSON), one written before it existed resumes without output rows, as it did
  const given = (await parseTrainArgs(["--export-output"])).config;
  assert.deepEqual(resolveConfig(JSON.parse(JSON.stringify(given))), given);
  const { exportOutput: _x, ...before } = given;
  assert.equal(resolveConfig(before).exportOutput, false);
  const adopted = resolveConfig({});
  adoptRunFields(adopted, given);
  assert.equal(adopted.exportOutput, true);
  assert.match(
    helpText(),
    /--export-output \[<value>\] +also publish the output rows of W.*\(default: false\)/,
  );
});

Deno.test("train CLI arguments: a --config value of the wrong type is one line naming the file, the key and what it expects; lists also as comma-separated strings", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/c.json`;
  const parse = async (settings: unknown) => {
    await Deno.writeTextFile(file, JSON.stringify(settings));
    return await parseTrainArgs(["--config", file]);
  };
  try {
    const lists = await parse({ formats: "vec, bin", hidden: "8,4", exportOutput: true });
    assert.deepEqual(lists.config.formats, ["vec", "bin"]);
    assert.deepEqual(lists.config.hidden, [8, 4]);
    assert.equal(lists.config.exportOutput, true);
    assert.ok(lists.explicit.has("formats") && lists.explicit.has("exportOutput"));
    assert.deepEqual((await parse({ formats: ["arrow"], hidden: [] })).config.formats, ["arrow"]);
    const bad: [unknown, RegExp][] = [
      [{ dim: "50" }, /'dim' must be an integer ≥ 1 and ≤ 8192 \(a JSON number\), got the string "50"$/],
      [{ lr: null }, /'lr' must be a number > 0 \(a JSON number\), got null$/],
      [
        { keepBest: "true" },
        /'keepBest' must be true or false \(JSON true or false\), got the string "true"$/,
      ],
      [{ exportOutput: 1 }, /'exportOutput' must be true or false \(JSON true or false\), got the number 1$/],
      [{ mode: 5 }, /'mode' must be one of cbow\|skipgram \(a JSON string\), got the number 5$/],
      [
        { formats: "vec,csv" },
        /'formats' must be a list like vec,bin of one or more of vec,bin,arrow,parquet \(an array, or a comma-separated string\), got the string "vec,csv"$/,
      ],
      [{ formats: [] }, /'formats' must be a list .*, got the array \[\]$/],
      [{ formats: { vec: true } }, /'formats' must be a list .*, got the object \{"vec":true\}$/],
      [
        { hidden: "8,x" },
        /'hidden' must be a list of positive integers ≤ 8192 like 512,256 .*, got the string "8,x"$/,
      ],
      [{ hidden: [8, "4"] }, /'hidden' must be a list of positive integers .*, got the array \[8,"4"\]$/],
      [{ epochs: 2.5 }, /'epochs' must be an integer ≥ 1 \(a JSON number\), got the number 2\.5$/],
      [{ data: "" }, /'data' must be a non-empty string \(a JSON string\), got the string ""$/],
      [{ evalDir: false }, /'evalDir' must be a non-empty string \(a JSON string\), got the boolean false$/],
    ];
    for (const [settings, re] of bad) {
      await assert.rejects(() => parse(settings), (e) => {
        assert.ok(e instanceof UsageError, String(e));
        assert.ok(!e.message.includes("\n"), e.message);
        assert.ok(e.message.startsWith(`--config ${file}: `), e.message);
        assert.match(e.message, re);
        return true;
      }, JSON.stringify(settings));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train CLI arguments: a --config key that is a name of Object.prototype (constructor, toString, __proto__) is an unknown setting, not a crash; resolveConfig refuses it too", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/c.json`;
  try {
    for (const key of ["constructor", "toString", "hasOwnProperty", "__proto__"]) {
      await Deno.writeTextFile(file, `{${JSON.stringify(key)}: 1}`);
      await assert.rejects(() => parseTrainArgs(["--config", file]), (e) => {
        assert.ok(e instanceof UsageError, `${key}: ${e}`);
        assert.ok(
          e.message.startsWith(`--config ${file}: unknown setting '${key}'; known: data, `),
          e.message,
        );
        return true;
      });
      assert.throws(
        () => resolveConfig(JSON.parse(`{${JSON.stringify(key)}: 1}`)),
        (e) => e instanceof UsageError && e.message.startsWith(`configuration: unknown setting '${key}'`),
        key,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train CLI arguments: a --config number too large for a double (1e400, Infinity to JSON.parse) is shown as written, not as null", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/c.json`;
  try {
    await Deno.writeTextFile(file, '{"dim": 1e400}');
    await assert.rejects(
      () => parseTrainArgs(["--config", file]),
      /'dim' must be an integer ≥ 1 and ≤ 8192 \(a JSON number\), got the number Infinity$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train CLI: --export-output is kept by the run's checkpoints: a resume publishes the output rows again, --export-output false stops it, the printed export command carries it", async () => {
  const out = await Deno.makeTempDir();
  const latestFiles = async () =>
    (await Array.fromAsync(Deno.readDir(`${out}/embeddings/latest`))).map((e) => e.name).sort();
  try {
    const first = await run(
      withFlags(
        SMALL,
        "--epochs",
        "1",
        "--out",
        out,
        "--eval-dir",
        "none",
        "--formats",
        "vec",
        "--export-output",
      ),
    );
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(await latestFiles(), ["input.vec", "manifest.json", "output.vec"]);
    // the printed resume command (--resume <out>) finds what the run asked for published (latest holds it)
    const resumed = await run(["--resume", out]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /holds this run's vectors already/);
    assert.deepEqual(await latestFiles(), ["input.vec", "manifest.json", "output.vec"]);
    // the export command a failed publication prints carries --output-rows (a full disk at its first write;
    // latest's output.vec cut short, so that it is published again)
    await Deno.truncate(`${out}/embeddings/latest/output.vec`, 10);
    const full = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, "--resume", out],
      stdout: "piped",
      stderr: "piped",
      env: { OPENBLAS_NUM_THREADS: "1", FACTOROUT_FAULT_ENOSPC_AFTER_BYTES: "0" },
    }).output();
    const line = dec.decode(full.stderr).trimEnd().split("\n").at(-1)!;
    assert.equal(full.code, EXIT.io, line);
    assert.ok(
      line.endsWith(`rerun npx deno task export --checkpoint ${out} --formats vec --output-rows`),
      line,
    );
    // turned off on a resume (either spelling), and kept off by the next one
    for (const off of [["--export-output", "false"], ["--export-output=false"], []]) {
      const r = await run(["--resume", out, ...off]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await latestFiles(), ["input.vec", "manifest.json"], off.join(" "));
    }
    const ck = await readCheckpoint(latestCheckpoint(out));
    assert.equal((ck.meta.config as { exportOutput: boolean }).exportOutput, false);
    // --keep-versions 1: two versions were published (the first run's and the one without output rows);
    // the older goes, listed in summary.json, also when this resume publishes nothing itself
    const versions = () => [...Deno.readDirSync(`${out}/embeddings/versions`)].map((e) => e.name).sort();
    const dated = (v: string) =>
      JSON.parse(Deno.readTextFileSync(`${out}/embeddings/versions/${v}/manifest.json`)).date as string;
    // in publication order (two in one second may not sort by name)
    const before = versions().sort((a, b) => dated(a) < dated(b) ? -1 : dated(a) > dated(b) ? 1 : 0);
    assert.equal(before.length, 2);
    const kept = await run(["--resume", out, "--keep-versions", "1"]);
    assert.equal(kept.code, 0, kept.stderr);
    const summary = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
    assert.equal(summary.embeddings.version, before[1]);
    assert.deepEqual(versions(), [before[1]]);
    assert.deepEqual(summary.embeddings.removedVersions, [before[0]]);
    assert.match(kept.stderr, /embeddings: removed 1 old version\(s\) of .* \(--keep-versions 1\)/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train CLI arguments: --threads, --formats and --eval-dir are config fields a checkpoint keeps; a resume with another --threads says what it costs", async () => {
  const given = await parseTrainArgs(["--threads", "1", "--formats", "vec,bin", "--eval-dir", "none"]);
  assert.equal(given.config.threads, 1);
  assert.deepEqual(given.config.formats, ["vec", "bin"]);
  assert.equal(given.config.evalDir, "none");
  for (const k of ["threads", "formats", "evalDir"] as const) assert.ok(given.explicit.has(k), k);
  const plain = await parseTrainArgs([]);
  assert.equal(plain.config.threads, 0);
  assert.deepEqual(plain.config.formats, ["vec", "bin", "arrow", "parquet"]);
  assert.equal(plain.config.evalDir, undefined, "unset: $FACTOROUT_EVAL_DIR, else ../shared/eval");
  assert.ok(!["threads", "formats", "evalDir"].some((k) => plain.explicit.has(k as "threads")));
  // a checkpoint's config (JSON) resolves back to them; one written before they existed to the defaults
  assert.deepEqual(resolveConfig(JSON.parse(JSON.stringify(given.config))), given.config);
  const { threads: _t, formats: _f, evalDir: _e, ...before } = given.config;
  const old = resolveConfig(before);
  assert.deepEqual([old.threads, old.formats, old.evalDir], [
    0,
    ["vec", "bin", "arrow", "parquet"],
    undefined,
  ]);
  // the values a resume goes on with become its trainer's, so its own checkpoints keep them
  const adopted = resolveConfig({});
  adoptRunFields(adopted, given.config);
  assert.deepEqual([adopted.threads, adopted.formats, adopted.evalDir], [1, ["vec", "bin"], "none"]);
  // another thread count rounds float32 sums otherwise: one line (not on js, which has one thread)
  const blas = (threads: number) => resolveConfig({ backend: "blas", threads });
  assert.deepEqual(resumeDifferences(blas(1), blas(1), 1), []);
  const changed = resumeDifferences(blas(1), blas(2), 1);
  assert.equal(changed.length, 1, changed.join("\n"));
  assert.match(
    changed[0],
    /^threads: 1 → 2: the result matches an uninterrupted run only up to float32 rounding/,
  );
  const js = (threads: number) => resolveConfig({ backend: "js", threads });
  assert.deepEqual(resumeDifferences(js(1), js(2), 1), []);
  // so does another backend (blas's sgemm and js's loops sum in another order): the same one line
  const other = resumeDifferences(blas(1), js(1), 1);
  assert.equal(other.length, 1, other.join("\n"));
  assert.match(
    other[0],
    /^backend: blas → js: the result matches an uninterrupted run only up to float32 rounding/,
  );
  await assert.rejects(
    () => parseTrainArgs(["--formats", ","]),
    (e) =>
      e instanceof UsageError && /--formats must name at least one of vec,bin,arrow,parquet/.test(e.message),
  );
  assert.throws(() => resolveConfig({ formats: ["vec", "csv"] }), /--formats: unknown format "csv"/);
});

Deno.test("train CLI: --backend webgpu without an adapter exits 2 before the corpus is prepared", async () => {
  const tmp = await Deno.makeTempDir();
  await Deno.writeTextFile(`${tmp}/text.txt`, "the cat sat on the mat\n".repeat(50));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--data", `${tmp}/text.txt`, "--out", `${tmp}/run`, "--backend", "webgpu"],
    stdout: "piped",
    stderr: "piped",
    // the Vulkan loader finds no driver: no adapter, as on a machine without mesa-vulkan-drivers
    env: { VK_DRIVER_FILES: "/nonexistent/icd.json", DENO_WEBGPU_BACKEND: "vulkan" },
  }).output();
  const err = dec.decode(out.stderr).trim();
  assert.equal(out.code, EXIT.usage, err);
  assert.match(err.split("\n").pop()!, /requestAdapter\(\) returned null.*npx deno task setup/);
  // said before any work: no corpus prepared, no run folder made
  assert.ok(!(await Deno.stat(`${tmp}/run`).then(() => true, () => false)), "the run folder was made");
  assert.doesNotMatch(err, /corpus|vocabulary/i);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("train CLI: --backend webgpu with --hidden or --output naive (a model it cannot run) exits 2 before any work; a resume says so too", async () => {
  const tmp = await Deno.makeTempDir();
  const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
  try {
    await Deno.writeTextFile(`${tmp}/text.txt`, "the cat sat on the mat\n".repeat(50));
    await Deno.writeTextFile(`${tmp}/hidden.json`, JSON.stringify({ hidden: [8, 4] }));
    const cases: [string[], RegExp][] = [
      [
        ["--hidden", "8"],
        /^train: --backend webgpu .* does not support hidden layers yet \(--hidden 8\); drop --hidden/,
      ],
      [["--config", `${tmp}/hidden.json`], /does not support hidden layers yet \(--hidden 8,4\)/],
      [
        ["--output", "naive"],
        /^train: --backend webgpu .* factored output layer only \(--output naive\); use --output factored/,
      ],
    ];
    for (const [flags, re] of cases) {
      const r = await run([
        ...["--data", `${tmp}/text.txt`, "--out", `${tmp}/run`, "--backend", "webgpu", ...flags],
      ]);
      // one line, exit 2: before the adapter is asked for, the corpus prepared into --out/corpus, the folder made
      assert.equal(r.code, EXIT.usage, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr.trim(), re);
      assert.ok(!(await exists(`${tmp}/run`)), `${flags.join(" ")}: the run folder was made`);
    }
    // a resume on webgpu of a run with hidden layers: exit 2 naming --hidden (not "unusable checkpoint")
    const out = `${tmp}/js`;
    const ok = await run([
      ...["--data", `${tmp}/text.txt`, "--out", out, "--backend", "js", "--hidden", "4", "--dim", "4"],
      ...["--epochs", "1", "--min-count", "1", "--eval-dir", "none", "--formats", "vec"],
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const before = [...Deno.readDirSync(`${out}/checkpoints`)].map((e) => e.name).sort();
    const r = await run(["--resume", out, "--backend", "webgpu", "--epochs", "2"]);
    assert.equal(r.code, EXIT.usage, r.stderr);
    assert.match(
      r.stderr.trim().split("\n").pop()!,
      /^train: --backend webgpu .* hidden layers yet \(--hidden 4\)/,
    );
    assert.deepEqual([...Deno.readDirSync(`${out}/checkpoints`)].map((e) => e.name).sort(), before);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
