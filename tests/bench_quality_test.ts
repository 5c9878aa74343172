// bench:quality (bench/quality.ts, quality_runs.ts, quality_plot.ts): the time marks, the text prefix, the
// plot's content, and the quick run end to end on a 3,000-sentence slice of Brown (table + SVG, one series
// per system, times increasing along each series, finite scores); two runs at once (each its own scratch
// folder, a killed run's removed) and --no-write (no plot written).
import assert from "node:assert/strict";
import { join } from "node:path";
import { qualityMarkdown } from "../bench/quality.ts";
import { type QualitySeries, qualitySvg } from "../bench/quality_plot.ts";
import { timeMarks, writePrefix } from "../bench/quality_runs.ts";
import { scratchFolder } from "../bench/report.ts";
import { ensureBrownText } from "../bench/peers_corpus.ts";
import { defaultEvalDir } from "../lib/eval/report.ts";

Deno.test("time marks double up to the cap", () => {
  assert.deepEqual(timeMarks(60, 4), [7.5, 15, 30, 60]);
  assert.deepEqual(timeMarks(3, 1), [3]);
});

Deno.test("writePrefix keeps whole lines up to the token budget (at least one line)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "t.txt"), "a b c\nd e\n\nf g h i\n");
    assert.equal(await writePrefix(join(dir, "t.txt"), join(dir, "p.txt"), 5), 5);
    assert.equal(await Deno.readTextFile(join(dir, "p.txt")), "a b c\nd e\n");
    assert.equal(await writePrefix(join(dir, "t.txt"), join(dir, "p.txt"), 1), 3);
    assert.equal(await Deno.readTextFile(join(dir, "p.txt")), "a b c\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** [label, x coordinates of its WordSim-353 polyline] for every series drawn with a line. */
function polylines(svg: string): number[][] {
  return [...svg.matchAll(/<polyline [^>]*points="([^"]+)"/g)].map((m) =>
    m[1].split(" ").map((xy) => Number(xy.split(",")[0]))
  );
}

Deno.test("the plot draws one line per series and panel, left to right, and lists every series", () => {
  const s: QualitySeries[] = [
    {
      label: "factorout factored spherical",
      kind: "factored",
      loss: "spherical",
      points: [{ seconds: 20, wordsim: 0.4, simlex: 0.15 }, { seconds: 2, wordsim: 0.2, simlex: 0.05 }],
    },
    {
      label: "factorout naive spherical",
      kind: "naive",
      loss: "spherical",
      points: [{ seconds: 1, wordsim: 0.01, simlex: NaN }, { seconds: 60, wordsim: 0.1, simlex: 0.02 }],
    },
    { label: "fastText -loss softmax", kind: "fasttext", loss: "softmax", points: [{ seconds: 50 }] },
  ];
  const svg = qualitySvg(s, { title: "T & <x>", subtitle: "sub" });
  assert.match(svg, /^<svg [^>]*viewBox/);
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.match(svg, /T &amp; &lt;x&gt;/);
  // series 1: both panels; series 2: WordSim only (its SimLex has one finite point); series 3: none
  const lines = polylines(svg);
  assert.equal(lines.length, 3);
  for (const xs of lines) for (let i = 1; i < xs.length; i++) assert.ok(xs[i] > xs[i - 1], "sorted by time");
  assert.match(svg, /stroke-dasharray="7,4"/, "the naive run is dashed");
  for (const x of s) assert.ok(svg.includes(`>${x.label}`), x.label);
  assert.match(svg, /fastText -loss softmax \(no score\)/);
  assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
});

Deno.test("the markdown has one summary row per system and every point", () => {
  const md = qualityMarkdown([
    {
      label: "factorout factored zloss",
      kind: "factored",
      loss: "zloss",
      command: "deno task train --loss zloss",
      note: "finished 5 epochs",
      points: [
        { seconds: 1, progress: "0.2 epochs", wordsim: 0.1, simlex: 0.05, analogy: 0.01 },
        {
          seconds: 9,
          progress: "5 epochs",
          wordsim: 0.3,
          simlex: 0.1,
          analogy: 0.02,
          coverage: { wordsim: 0.9 },
        },
      ],
    },
  ], { corpusName: "brown.txt", svgLink: "docs/q.svg", intro: "intro", notes: [] });
  assert.match(md, /!\[[^\]]+\]\(docs\/q\.svg\)/);
  assert.match(
    md,
    /\| factorout factored zloss \| 9 \| 5 epochs \| 0\.300 \(90%\) \| 0\.100 \| 0\.020 \| 0\.300 at 9 s \|/,
  );
  assert.equal(md.match(/\| factorout factored zloss \|/g)?.length, 3);
  assert.match(md, /`deno task train --loss zloss`/);
});

Deno.test({
  name: "deno task bench:quality --quick: a table and an SVG with one series per system",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const brown = join(dir, "brown.txt");
      await ensureBrownText(brown);
      const corpus = join(dir, "small.txt");
      await writePrefix(brown, corpus, 60000);
      const fasttext =
        (await new Deno.Command("sh", { args: ["-c", "command -v fasttext"] }).output()).code === 0;
      const md = join(dir, "B.md"), svg = join(dir, "img", "q.svg");
      // a small --lr: this slice's vocabulary is small, where the default step may be refused
      const args = [
        "run",
        "-A",
        "bench/quality.ts",
        "--quick",
        "--corpus",
        corpus,
        "--out",
        md,
        "--svg",
        svg,
        "--work",
        join(dir, "work"),
        "--losses",
        "spherical",
        "--train-args=--lr 0.001",
        "--fasttext",
        fasttext ? "softmax,ns,hs" : "none",
      ];
      const t0 = performance.now();
      const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
        .output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, err.slice(-3000));
      console.log(
        `quick run: ${((performance.now() - t0) / 1000).toFixed(1)} s (fastText ${
          fasttext ? "on" : "absent"
        })`,
      );
      const text = await Deno.readTextFile(md);
      const picture = await Deno.readTextFile(svg);
      const systems = ["factorout factored spherical", "factorout naive spherical"];
      if (fasttext) systems.push("fastText -loss softmax", "fastText -loss ns", "fastText -loss hs");
      assert.match(text, /<!-- bench:quality:start -->[\s\S]*<!-- bench:quality:end -->/);
      assert.match(text, /!\[[^\]]*\]\(img\/q\.svg\)/, "the block links the plot relative to the markdown");
      // every-point table: rows "| system | s | progress | WS | SimLex | analogy |"
      const every = text.slice(text.indexOf("<details>"), text.indexOf("</details>"));
      for (const name of systems) {
        const summary = text.split("\n").filter((l) => l.startsWith(`| ${name} |`));
        assert.equal(summary.length >= 2, true, `${name}: a summary row and its points`);
        const rows = every.split("\n").filter((l) => l.startsWith(`| ${name} |`)).map((l) => l.split(" | "));
        if (name === "fastText -loss softmax" && rows.length === 0) {
          // its speed probe may see no progress line on a loaded machine: then the row says why
          assert.match(summary[0], /failed: no fastText progress line/);
          continue;
        }
        assert.ok(rows.length >= 1, `${name}: at least one point`);
        const secs = rows.map((r) => Number(r[1]));
        for (let i = 0; i < secs.length; i++) {
          assert.ok(Number.isFinite(secs[i]) && secs[i] > 0, `${name}: seconds ${secs[i]}`);
          if (i > 0) assert.ok(secs[i] >= secs[i - 1], `${name}: time goes forward`);
        }
        if (name !== "fastText -loss softmax") {
          // a prefix of a 60k-token slice has almost no WordSim pair: softmax may have no score
          for (const r of rows) {
            const ws = Number(r[3].split(" ")[0]), sl = Number(r[4].split(" ")[0]);
            assert.ok(Number.isFinite(ws) && Math.abs(ws) <= 1, `${name}: WordSim-353 ${r[3]}`);
            assert.ok(Number.isFinite(sl) && Math.abs(sl) <= 1, `${name}: SimLex-999 ${r[4]}`);
          }
        }
        assert.ok(picture.includes(`>${name}`), `${name} in the legend`);
      }
      assert.equal([...picture.matchAll(/<line x1="0" y1="\d+" x2="30"/g)].length, systems.length, "legend");
      for (const xs of polylines(picture)) {
        for (let i = 1; i < xs.length; i++) assert.ok(xs[i] > xs[i - 1], "lines run left to right");
      }
      assert.doesNotMatch(picture, /NaN|undefined|Infinity/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bench:quality: two runs at once, each in its own scratch folder; --no-write writes no plot",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      // a tiny text of WordSim-353's words (so that every point has a score), in a folder of its own: the
      // runs' relative defaults (docs/quality-brown.svg, .bench-tmp/quality) land there
      const words = [
        ...new Set(
          (await Deno.readTextFile(join(defaultEvalDir(), "wordsim353.tsv"))).split("\n")
            .flatMap((l) => l.split("\t").slice(0, 2)).map((w) => w.trim().toLowerCase())
            .filter((w) => /^[a-z]+$/.test(w)),
        ),
      ];
      let seed = 7;
      const pick = () => words[(seed = (seed * 48271) % 2147483647) % words.length];
      const lines = Array.from({ length: 2000 }, () => Array.from({ length: 10 }, pick).join(" "));
      await Deno.writeTextFile(join(dir, "small.txt"), lines.join("\n") + "\n");
      // what a killed run left: its pid is no longer running
      const gone = new Deno.Command("true").spawn();
      await gone.status;
      await Deno.mkdir(join(dir, ".bench-tmp", `quality.${gone.pid}-0a1b2c3d.tmp`), { recursive: true });
      const run = (cap: number, epochs: number) =>
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--config",
            new URL("../deno.json", import.meta.url).pathname,
            new URL("../bench/quality.ts", import.meta.url).pathname,
            ...["--quick", "--no-write", "--corpus", "small.txt", "--losses", "spherical", "--outputs"],
            ...["factored", "--fasttext", "none", "--points", "1", "--dim", "8", "--min-count", "1"],
            ...["--cap-seconds", String(cap), `--train-args=--lr 0.001 --epochs ${epochs}`],
          ],
          cwd: dir,
          stdout: "piped",
          stderr: "piped",
        }).output();
      const [a, b] = await Promise.all([run(1, 1), run(4, 100)]); // the first ends while the second trains
      for (const o of [a, b]) {
        const err = new TextDecoder().decode(o.stderr);
        assert.equal(o.code, 0, err.slice(-2000));
        assert.match(
          new TextDecoder().decode(o.stdout),
          /<!-- bench:quality:start -->/,
          "the block is printed",
        );
        assert.match(err, /--no-write: docs\/quality-brown\.svg not written/);
      }
      assert.deepEqual(await Array.fromAsync(Deno.readDir(join(dir, ".bench-tmp"))), [], "no scratch left");
      const left = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
      assert.deepEqual(left, [".bench-tmp", "small.txt"], "nothing else written (no docs/quality-brown.svg)");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("scratchFolder: unique per run; a dead run's removed, a live or kept one stays", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const work = join(dir, "b", "quality");
    const live = join(dir, "b", `quality.${Deno.pid}-00000001.tmp`);
    await Deno.mkdir(live, { recursive: true });
    const a = await scratchFolder(work), b = await scratchFolder(work);
    assert.notEqual(a.path, b.path);
    assert.equal(await a.done(false), undefined);
    const kept = await b.done(true);
    assert.equal(kept, b.path.replace(/\.tmp$/, ""));
    const lines: string[] = [];
    const c = await scratchFolder(work, (l) => lines.push(l));
    await c.done(false);
    const names = (await Array.fromAsync(Deno.readDir(join(dir, "b")))).map((e) => e.name).sort();
    assert.deepEqual(names, [kept!.split("/").pop()!, live.split("/").pop()!].sort());
    assert.deepEqual(lines, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
