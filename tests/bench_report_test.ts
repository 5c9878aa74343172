// bench/report.ts writeBlocks: BENCHMARKS.md's blocks are replaced read-modify-write under `<file>.lock`
// (lib/core/lock.ts): benches writing different blocks at the same moment all keep theirs (the second
// rename put back the file it had read before the first one wrote, and a block was lost), in one process
// and across processes, and the lock file is gone afterwards.
import assert from "node:assert/strict";
import { join } from "node:path";
import { replaceBlock, writeBlocks } from "../bench/report.ts";
import { runCommand } from "./child.ts";

const block = (name: string, body: string) =>
  `<!-- bench:${name}:start -->\n${body}\n<!-- bench:${name}:end -->`;

async function inTemp(f: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "bench_report_" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writeBlocks: a block is replaced in place, a new one appended, the header written once", async () => {
  await inTemp(async (dir) => {
    const md = join(dir, "B.md");
    await writeBlocks(md, [["a", block("a", "one")], ["b", block("b", "two")]]);
    await writeBlocks(md, [["a", block("a", "three")]]);
    const text = await Deno.readTextFile(md);
    assert.match(text, /^# factorout benchmarks\n/);
    assert.ok(text.indexOf("three") < text.indexOf("two"), text);
    assert.doesNotMatch(text, /one/);
    assert.equal(text, replaceBlock(text, "a", block("a", "three")));
  });
});

Deno.test("writeBlocks: eight writers of different blocks at once in one process: every block lands", async () => {
  await inTemp(async (dir) => {
    const md = join(dir, "BENCHMARKS.md");
    await writeBlocks(md, [["first", block("first", "kept")]]);
    const names = Array.from({ length: 8 }, (_, i) => `s${i}`);
    await Promise.all(names.map((n) => writeBlocks(md, [[n, block(n, `body of ${n}`)]])));
    const text = await Deno.readTextFile(md);
    for (const n of ["first", ...names]) assert.match(text, new RegExp(`<!-- bench:${n}:end -->`), n);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).filter((n) => /\.lock$/.test(n)),
      [],
    );
  });
});

Deno.test("writeBlocks: two processes writing their blocks at the same time: every block of both lands", async () => {
  await inTemp(async (dir) => {
    const md = join(dir, "BENCHMARKS.md"), report = new URL("../bench/report.ts", import.meta.url).href;
    const script = join(dir, "writer.ts");
    // each waits for the go file, then writes its 12 blocks one after the other
    await Deno.writeTextFile(
      script,
      `import { writeBlocks } from ${JSON.stringify(report)};\n` +
        `const [md, who, go] = Deno.args;\n` +
        `while (!(await Deno.stat(go).then(() => true, () => false))) await new Promise((r) => setTimeout(r, 5));\n` +
        `for (let i = 0; i < 12; i++) {\n` +
        `  const n = who + i;\n` +
        "  await writeBlocks(md, [[n, `<!-- bench:${n}:start -->\\n${n}\\n<!-- bench:${n}:end -->`]]);\n" +
        `}\n`,
    );
    const go = join(dir, "go");
    const writers = ["p", "q"].map((who) =>
      runCommand(Deno.execPath(), ["run", "-A", "--no-check", script, md, who, go])
    );
    await new Promise((r) => setTimeout(r, 800));
    await Deno.writeTextFile(go, "");
    for (const r of await Promise.all(writers)) assert.equal(r.code, 0, r.stderr);
    const text = await Deno.readTextFile(md);
    const missing = ["p", "q"].flatMap((w) => Array.from({ length: 12 }, (_, i) => `${w}${i}`))
      .filter((n) => !text.includes(`<!-- bench:${n}:end -->`));
    assert.deepEqual(missing, [], text);
    assert.equal(await Deno.stat(`${md}.lock`).then(() => true, () => false), false);
  });
});
