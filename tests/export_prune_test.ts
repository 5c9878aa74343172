// --keep-versions (lib/export/prune.ts): the newest N complete versions and latest's are kept, nothing else
// under versions/ is touched; export and refresh prune after publishing and list what they removed.

import assert from "node:assert/strict";
import { publishOneWord } from "./publish_fixture.ts";
import { join } from "node:path";
import { EXIT } from "../lib/core/exit_codes.ts";
import { pointLatest, publishEmbeddings } from "../lib/export/publish.ts";
import { pruneVersions, removeOldVersions } from "../lib/export/prune.ts";
import { writeWord2VecText } from "../lib/export/word2vec.ts";

const names = (root: string) => [...Deno.readDirSync(join(root, "versions"))].map((e) => e.name).sort();

/** Publishes version `name` dated `day` (2026-01-<day>) into `root`. */
async function publish(root: string, name: string, day: number): Promise<void> {
  await publishEmbeddings({
    outRoot: root,
    words: ["a"],
    input: Float32Array.of(day),
    d: 1,
    formats: ["vec"],
    manifest: {},
    version: name,
    now: new Date(Date.UTC(2026, 0, day)),
  });
}

Deno.test("pruneVersions keeps the newest N by date and latest's version; other folders are never touched", async () => {
  const root = await Deno.makeTempDir({ prefix: "factorout-prune-" });
  try {
    assert.deepEqual(await pruneVersions(root, 1), [], "nothing published: nothing to do");
    // names out of date order: the manifest's date decides, not the name
    for (const [name, day] of [["d", 1], ["c", 2], ["b", 3], ["a", 4]] as const) {
      await publish(root, name, day);
    }
    await Deno.mkdir(join(root, "versions", "mine")); // a user's folder: no manifest
    await Deno.mkdir(join(root, "versions", "x.123-abcd.tmp")); // a temporary: the stale-temp cleanup's
    await Deno.mkdir(join(root, "versions", "other")); // a manifest.json that is not a factorout version's
    await Deno.writeTextFile(join(root, "versions", "other", "manifest.json"), '{"format":"not ours"}');
    assert.deepEqual(await pruneVersions(root, 2), ["d", "c"]);
    assert.deepEqual(names(root), ["a", "b", "mine", "other", "x.123-abcd.tmp"]);
    assert.equal(Deno.readTextFileSync(join(root, "latest", "input.vec")), "1 1\na 4\n");
    // latest pointed back at an older version: kept, in place of the oldest of the newest
    await publish(root, "e", 5);
    await pointLatest(root, "b");
    assert.deepEqual(await pruneVersions(root, 2), ["a"]);
    assert.deepEqual(names(root), ["b", "e", "mine", "other", "x.123-abcd.tmp"]);
    assert.deepEqual(await pruneVersions(root, 1), ["e"], "keep 1: latest's alone");
    assert.equal(Deno.readTextFileSync(join(root, "latest", "input.vec")), "1 1\na 3\n");
    await assert.rejects(pruneVersions(root, 0), RangeError);
    // a failure is a warning line, not the job's error (here versions/ is no folder: it cannot be read)
    const odd = join(root, "odd");
    await Deno.mkdir(odd);
    await Deno.writeTextFile(join(odd, "versions"), "");
    const lines: string[] = [];
    assert.deepEqual(await removeOldVersions(odd, 1, (l) => lines.push(l)), []);
    assert.match(lines.join("\n"), /^warning: old versions of .*odd not removed \(--keep-versions 1\): /);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno task export --keep-versions N: the oldest beyond N removed after publishing, listed in the published event", async () => {
  const dir = await Deno.makeTempDir({ prefix: "factorout-prune-cli-" });
  try {
    const vec = join(dir, "v.vec"), root = join(dir, "pub");
    await writeWord2VecText(vec, { words: ["a", "b"], vectors: Float32Array.of(1, 2), d: 1 });
    const run = async (...extra: string[]) => {
      const o = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../pipelines/export.ts", import.meta.url).pathname,
          ...["--vectors", vec, "--out", root, "--formats", "vec", ...extra],
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(o.stdout), stderr = new TextDecoder().decode(o.stderr);
      return {
        code: o.code,
        stderr,
        event: o.code === 0 ? JSON.parse(stdout.trim().split("\n").at(-1)!) : null,
      };
    };
    const first = await run(), second = await run(), third = await run("--keep-versions", "2");
    for (const r of [first, second, third]) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(third.event.removedVersions, [first.event.version]);
    assert.match(third.stderr, /export: removed 1 old version\(s\) of .* \(--keep-versions 2\)/);
    assert.deepEqual(names(root), [second.event.version, third.event.version].sort());
    assert.equal(first.event.removedVersions, undefined, "without the flag: nothing removed, nothing listed");
    const bad = await run("--keep-versions", "0");
    assert.equal(bad.code, EXIT.usage, bad.stderr);
    assert.match(bad.stderr, /--keep-versions/);
    assert.deepEqual(names(root).length, 2, "a refused run removes nothing");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("publishers racing into one root with --keep-versions 1: latest never points at nothing, no version removed before it is latest", async () => {
  // several processes publish and prune (keep 1) into one root as fast as they can, while this process
  // watches latest: before the publication root's lock, a pruner that listed versions/ between another
  // publisher's rename and its move of latest removed that new version, and latest then pointed at nothing
  const dir = await Deno.makeTempDir({ prefix: "factorout-prune-race-" });
  const root = join(dir, "pub");
  const lib = (p: string) => new URL(`../lib/export/${p}`, import.meta.url).href;
  const script = join(dir, "publisher.ts");
  await Deno.writeTextFile(
    script,
    `import { publishEmbeddings } from ${JSON.stringify(lib("publish.ts"))};
import { removeOldVersions } from ${JSON.stringify(lib("prune.ts"))};
const [root, n] = Deno.args;
for (let i = 0; i < Number(n); i++) {
  await publishEmbeddings({ outRoot: root, words: ["a"], input: Float32Array.of(i), d: 1, formats: ["vec"], manifest: {} });
  await removeOldVersions(root, 1, (l) => { if (l.startsWith("warning")) console.error(l); });
}
`,
  );
  const config = new URL("../deno.json", import.meta.url).pathname;
  const children = Array.from({ length: 4 }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", config, script, root, "40"],
      stdout: "piped",
      stderr: "piped",
    }).output());
  let running = true, broken = 0, checks = 0;
  const all = Promise.all(children).finally(() => (running = false));
  try {
    const latest = join(root, "latest");
    while (running) {
      checks++;
      let target: string | undefined;
      try {
        target = Deno.readLinkSync(latest);
      } catch { /* nothing published yet */ }
      if (
        target !== undefined &&
        !(await Deno.stat(join(root, target, "manifest.json")).then(() => true, () => false))
      ) {
        // the link may have moved on meanwhile: broken only if it still names the same missing version
        if (Deno.readLinkSync(latest) === target) broken++;
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    const outs = await all;
    for (const o of outs) assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    assert.equal(broken, 0, `latest pointed at a removed version ${broken} time(s) in ${checks} checks`);
    assert.ok(await Deno.stat(join(root, "latest", "input.vec")), "latest resolves at the end");
    const left = names(root).filter((n) => !n.endsWith(".tmp"));
    assert.deepEqual(left, [Deno.readLinkSync(join(root, "latest")).replace(/^versions\//, "")], "keep 1");
  } finally {
    await all.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a publisher's committed callback may prune its own root: the publication lock is let go before it (train --keep-versions waited 60 s for itself)", async () => {
  // publishEmbeddings calls `committed` under <root>/publish.lock; train's committed prunes (removeOldVersions ->
  // pruneVersions -> lockPublication) the same root: the process waits 60 s for itself, then warns
  const root = await Deno.makeTempDir();
  try {
    const pub = (version: string, committed?: () => Promise<void>) =>
      publishOneWord(root, version, { ...(committed ? { committed } : {}) });
    await pub("v1");
    let removed: string[] = [];
    const t0 = performance.now();
    await pub("v2", async () => {
      // what lib/train/run.ts's committed does with --keep-versions 1
      removed = await Promise.race([
        pruneVersions(root, 1),
        new Promise<string[]>((_, no) => setTimeout(() => no(new Error("pruneVersions waited 5 s")), 5000)),
      ]);
    }).catch((e) => assert.fail(`${(e as Error).message} (after ${Math.round(performance.now() - t0)} ms)`));
    assert.deepEqual(removed, ["v1"]);
  } finally {
    // the pruning left waiting (60 s, 10 ms polls) would keep the test alive: end it with the module
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});
