// lib/core/stop.ts: a signal inside a deferred section only sets the flag; outside it runs the exit cleanups
// and exits 9 once; a second signal never exits; cleanups registered and forgotten; a signal during held
// renames (holdingStop, replaceDir's swap) stops after them.
import assert from "node:assert/strict";
import { publishOneWord } from "./publish_fixture.ts";
import { EXIT } from "../lib/core/exit_codes.ts";
import { atExit, holdingStop, removeAtExit, StopController, StoppedError } from "../lib/core/stop.ts";
import { replaceDir } from "../lib/core/atomic.ts";
import { lockRunFolder } from "../lib/core/lock.ts";
import { publishEmbeddings } from "../lib/export/publish.ts";

function controller() {
  const lines: string[] = [], exits: number[] = [];
  const stop = new StopController("job", (l) => lines.push(l), (c) => exits.push(c));
  return { stop, lines, exits };
}

Deno.test("stop: a signal during a deferred section sets the flag; a second one is noted and does not exit", async () => {
  const { stop, lines, exits } = controller();
  let sawAbort = false;
  await stop.deferred(async () => {
    stop.receive("SIGTERM");
    stop.receive("SIGINT");
    await Promise.resolve();
    sawAbort = stop.abort.aborted;
  });
  assert.ok(sawAbort);
  assert.equal(stop.signal, "SIGTERM");
  assert.deepEqual(exits, []);
  assert.match(lines[0], /^job: SIGTERM: finishing the step in progress, then writing a checkpoint/);
  assert.match(lines[1], /^job: SIGINT while stopping: not stopping in the middle of a write/);
  assert.ok(stop.abort.reason instanceof StoppedError);
  assert.equal((stop.abort.reason as StoppedError).code, EXIT.stopped);
});

Deno.test("stop: a signal outside a deferred section removes registered temporaries and exits 9 with one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tmp = `${dir}/x.tmp`, kept = `${dir}/kept.tmp`;
    await Deno.mkdir(tmp);
    await Deno.writeTextFile(`${tmp}/a`, "a");
    await Deno.writeTextFile(kept, "k");
    const forgetTmp = removeAtExit(tmp);
    const forgetKept = removeAtExit(kept);
    forgetKept(); // renamed into place meanwhile: no longer a temporary
    let ran = 0;
    const forgetCount = atExit(() => ran++);
    const { stop, lines, exits } = controller();
    stop.note = "nothing partial left";
    stop.receive("SIGHUP");
    assert.deepEqual(exits, [EXIT.stopped]);
    assert.deepEqual(lines, ["job: stopped by SIGHUP; nothing partial left"]);
    await assert.rejects(Deno.stat(tmp), Deno.errors.NotFound);
    assert.equal(await Deno.readTextFile(kept), "k");
    assert.equal(ran, 1);
    stop.receive("SIGTERM"); // a second signal: no second exit, cleanups not run again
    assert.deepEqual(exits, [EXIT.stopped]);
    assert.equal(ran, 1);
    forgetTmp();
    forgetCount();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stop: install and dispose add and remove the signal listeners", () => {
  const { stop } = controller();
  stop.install();
  stop.dispose();
  stop.dispose(); // twice is harmless
});

Deno.test("stop: a folder that file-system calls already in flight recreate is removed all the same", async () => {
  // the corpus job's race (tests/faults_jobs_test.ts): SIGTERM while an async mkdir of its temporary folder
  // was running on another thread left the folder behind after the cleanup had removed it
  const root = await Deno.makeTempDir({ prefix: "factorout-stop-" });
  try {
    let leftBehind = 0;
    for (let round = 0; round < 20; round++) {
      const tmp = `${root}/corpus.${round}.tmp`;
      Deno.mkdirSync(tmp);
      const { stop, exits } = controller();
      const forget = removeAtExit(tmp);
      const inFlight = Array.from({ length: 64 }, (_, i) => Deno.mkdir(`${tmp}/d${i}`, { recursive: true }));
      stop.receive("SIGTERM"); // synchronously, while the mkdirs run on other threads
      assert.deepEqual(exits, [EXIT.stopped]);
      await Promise.allSettled(inFlight);
      forget();
      try {
        Deno.statSync(tmp);
        leftBehind++;
        Deno.removeSync(tmp, { recursive: true });
      } catch { /* removed, as it must be */ }
    }
    assert.equal(leftBehind, 0, `${leftBehind} of 20 folders were left behind`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("stop: a signal while renames are held stops the job after them, with the note in force then", async () => {
  const { stop, lines, exits } = controller();
  stop.note = "the old result stays";
  const order: string[] = [];
  await holdingStop(async () => {
    await holdingStop(async () => {
      stop.receive("SIGTERM");
      await Promise.resolve();
      order.push("inner rename");
    });
    assert.deepEqual(exits, [], "not while an outer section still holds");
    order.push("outer rename");
    stop.note = "the new result is in place";
  });
  assert.deepEqual(order, ["inner rename", "outer rename"]);
  assert.deepEqual(exits, [EXIT.stopped]);
  assert.deepEqual(lines, ["job: stopped by SIGTERM; the new result is in place"]);
  // a later section does not stop again
  await holdingStop(() => Promise.resolve());
  assert.deepEqual(exits, [EXIT.stopped]);
});

Deno.test("stop: replaceDir under a signal during its swap: the new folder is in place, committed ran, the old one is gone", async () => {
  const root = await Deno.makeTempDir({ prefix: "factorout-stop-swap-" });
  try {
    const dir = `${root}/corpus`;
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/manifest.json`, "old");
    const { stop, lines, exits } = controller();
    stop.note = "the unfinished corpus was removed";
    let exitsAtCommit: number[] = [];
    await replaceDir(dir, async (tmp) => {
      await Deno.writeTextFile(`${tmp}/manifest.json`, "new");
    }, {
      committed: () => {
        // the signal comes while the swap's section still holds it (a timer fired "during the renames"
        // landed after them on a fast machine): it must wait for the section's end and its note
        stop.receive("SIGTERM");
        exitsAtCommit = [...exits];
        stop.note = "the new corpus is complete";
      },
    });
    assert.deepEqual(exitsAtCommit, [], "no stop before the swap is complete");
    assert.deepEqual(exits, [EXIT.stopped]);
    assert.deepEqual(lines, ["job: stopped by SIGTERM; the new corpus is complete"]);
    assert.equal(await Deno.readTextFile(`${dir}/manifest.json`), "new");
    assert.deepEqual(
      [...Deno.readDirSync(root)].map((e) => e.name),
      ["corpus"],
      "no temporary or old folder",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("stop: a signal at any turn of the event loop while the run folder's lock is taken or released removes it", async () => {
  const root = await Deno.makeTempDir({ prefix: "factorout-stop-lock-" });
  try {
    // the signal after `turns` turns of the event loop: in the lock's creation, just after it (before the
    // job has it), while it is held, and inside its release
    for (let turns = 0; turns < 24; turns++) {
      const dir = `${root}/run-${turns}`;
      const { stop, exits } = controller();
      const taking = lockRunFolder(dir, "test");
      let lock: Awaited<typeof taking> | undefined;
      taking.then((l) => (lock = l), () => {});
      let releasing: Promise<void> | undefined;
      for (let t = 0; t < turns; t++) {
        await new Promise((r) => setTimeout(r, 0));
        if (lock && !releasing && t >= turns / 2) releasing = lock.release();
      }
      stop.receive("SIGTERM");
      const left = await Deno.stat(`${dir}/run.lock`).then(() => true, () => false);
      assert.deepEqual(exits, [EXIT.stopped]);
      assert.equal(
        left,
        false,
        `lock left after a stop ${turns} turn(s) in (taken: ${!!lock}, releasing: ${!!releasing})`,
      );
      await taking.catch(() => {});
      await releasing;
      await (lock as { release(): Promise<void> } | undefined)?.release();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("stop: a signal at any turn of the event loop while a version is published leaves no unfinished version folder", async () => {
  const root = await Deno.makeTempDir({ prefix: "factorout-stop-publish-" });
  // what the folder holds when the process would end (the stub exit): the job goes on after it, and a
  // look taken later races with its writes
  const atExit = (out: string) => {
    let unfinished: string[] = [];
    try {
      unfinished = [...Deno.readDirSync(`${out}/versions`)].map((e) => e.name).filter((v) =>
        v.endsWith(".tmp")
      );
    } catch { /* no versions/ yet */ }
    let latest: "none" | "complete" | "dangling" = "none";
    try {
      Deno.readLinkSync(`${out}/latest`);
      latest = "dangling";
      Deno.statSync(`${out}/latest/manifest.json`);
      latest = "complete";
    } catch { /* as far as it got */ }
    return { unfinished, latest };
  };
  try {
    const words = Array.from({ length: 50 }, (_, i) => `w${i}`);
    const input = new Float32Array(words.length * 4).map((_, i) => i / 7);
    // every turn up to the renames, then the first turns again (where the folder is made) several times
    for (let k = 0; k < 48; k++) {
      const turns = k < 16 ? k : k % 6;
      const out = `${root}/emb-${k}`;
      const exits: number[] = [];
      let seen: ReturnType<typeof atExit> | undefined;
      const stop = new StopController("job", () => {}, (c) => {
        exits.push(c);
        seen = atExit(out);
      });
      // the job goes on after the stub exit: its later writes into the removed folder fail, as they may
      const publishing = publishEmbeddings({
        outRoot: out,
        words,
        input,
        d: 4,
        formats: ["vec", "bin"],
        manifest: {},
      }).catch(() => undefined);
      for (let t = 0; t < turns; t++) await new Promise((r) => setTimeout(r, 0));
      stop.receive("SIGTERM");
      const why = `a stop ${turns} turn(s) into publishing`;
      // held (the mkdir of the version's folder, or the renames that publish it): it ends after them
      if (exits.length === 0) await publishing;
      assert.deepEqual(exits, [EXIT.stopped], why);
      assert.deepEqual(seen?.unfinished, [], `${why} left an unfinished version`);
      assert.notEqual(seen?.latest, "dangling", `${why} left latest pointing at nothing`);
      await publishing;
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("stop: a signal while a job writes what goes with its publication (committed) stops it only after that", async () => {
  const out = await Deno.makeTempDir({ prefix: "factorout-stop-committed-" });
  try {
    const { stop, lines, exits } = controller();
    stop.note = "the unfinished version was removed";
    const words = ["a", "b", "c"], input = Float32Array.of(1, 0, 0, 1, 1, 1);
    let exitsInside: number[] = [];
    const r = await publishEmbeddings({
      outRoot: out,
      words,
      input,
      d: 2,
      formats: ["vec"],
      manifest: {},
      committed: async (p) => {
        stop.receive("SIGTERM");
        await Deno.writeTextFile(`${out}/summary.json`, p.version);
        exitsInside = [...exits];
        stop.note = `${p.versionDir} is published`;
      },
    });
    assert.deepEqual(exitsInside, [], "held while committed runs");
    assert.deepEqual(exits, [EXIT.stopped]);
    assert.deepEqual(lines, [`job: stopped by SIGTERM; ${r.versionDir} is published`]);
    assert.equal(await Deno.readTextFile(`${out}/summary.json`), r.version);
    // latest that cannot be moved (a file in its place): the new version is removed, nothing half-published
    await Deno.remove(`${out}/latest`);
    await Deno.writeTextFile(`${out}/latest`, "not a link");
    await assert.rejects(
      publishEmbeddings({ outRoot: out, words, input, d: 2, formats: ["vec"], manifest: {} }),
      /is not a symlink/,
    );
    assert.deepEqual([...Deno.readDirSync(`${out}/versions`)].map((e) => e.name), [r.version]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("publish: a directory sync that fails after latest moved keeps the version latest points at (no dangling latest)", async () => {
  const out = await Deno.makeTempDir({ prefix: "factorout-publish-sync-" });
  const orig = Deno.open;
  try {
    const version = (v: string) =>
      publishEmbeddings({
        outRoot: out,
        words: ["a"],
        input: Float32Array.of(1),
        d: 1,
        manifest: {},
        version: v,
      });
    await version("v1");
    // the last fsync of a publication is the one of the root, after latest was renamed to the new version
    (Deno as { open: typeof Deno.open }).open = (path, o) =>
      String(path) === out
        ? Promise.reject(new Deno.errors.PermissionDenied("injected fsync failure"))
        : orig(path, o);
    await assert.rejects(
      version("v2"),
      /injected fsync failure/,
    );
    (Deno as { open: typeof Deno.open }).open = orig;
    // latest was already moved: the version it points at must still be there, complete
    assert.equal(await Deno.readLink(`${out}/latest`), "versions/v2");
    assert.ok((await Deno.stat(`${out}/latest/manifest.json`)).isFile, "latest points at a removed version");
  } finally {
    (Deno as { open: typeof Deno.open }).open = orig;
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("publish: a signal while making the version's folder, whose name turns out taken, leaves that folder alone", async () => {
  const out = await Deno.makeTempDir({ prefix: "factorout-publish-mkdir-" });
  const orig = Deno.mkdir;
  try {
    const { stop, exits } = controller();
    // the version's temporary folder carries this pid and a random part: the name is taken only by a freak
    // collision, which the mkdir finds (AlreadyExists) while the signal comes
    let taken = "";
    (Deno as { mkdir: typeof Deno.mkdir }).mkdir = async (path, o) => {
      if (/\/versions\/v1\.\d+-[0-9a-f]{8}\.tmp$/.test(String(path))) {
        taken = String(path);
        await orig(path, o);
        await Deno.writeTextFile(`${path}/input.vec`, "theirs");
        stop.receive("SIGTERM");
        throw new Deno.errors.AlreadyExists(`mkdir '${path}'`);
      }
      return orig(path, o);
    };
    await assert.rejects(
      publishOneWord(out, "v1"),
      /v1\.\d+-[0-9a-f]{8}\.tmp exists/,
    );
    (Deno as { mkdir: typeof Deno.mkdir }).mkdir = orig;
    assert.deepEqual(exits, [EXIT.stopped]);
    assert.equal(await Deno.readTextFile(`${taken}/input.vec`), "theirs", "removed another job's folder");
  } finally {
    (Deno as { mkdir: typeof Deno.mkdir }).mkdir = orig;
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train: summary.json that cannot be written after the publication says the embeddings are published", async () => {
  const { parseTrainArgs } = await import("../lib/train/cli.ts");
  const { runTrainJob } = await import("../lib/train/run.ts");
  const out = await Deno.makeTempDir({ prefix: "factorout-train-summary-" });
  try {
    // summary.json's place holds a non-empty folder: its atomic write (a rename over it) fails
    await Deno.mkdir(`${out}/summary.json/x`, { recursive: true });
    const lines: string[] = [];
    const args = await parseTrainArgs([
      ...["--limit-tokens", "5000", "--dim", "4", "--epochs", "1", "--eval-dir", "none", "--formats", "vec"],
      ...["--out", out, "--progress", "none", "--backend", "js"],
    ]);
    const err = await runTrainJob(args, { out: () => {}, err: (l) => lines.push(l), tty: false }).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(err, "the job succeeded without its summary.json");
    const latest = await Deno.readLink(`${out}/embeddings/latest`);
    assert.ok((await Deno.stat(`${out}/embeddings/${latest}/manifest.json`)).isFile);
    // the line tells what is true: published (latest points at it), only summary.json is missing
    assert.match(err.message, /summary\.json/, err.message);
    assert.ok(err.message.includes(`${out}/embeddings/${latest}`), err.message);
    assert.doesNotMatch(err.message, /publishing the embeddings .* failed/, err.message);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train: old checkpoints that cannot be put back after a failed --overwrite run: the lock is released and the job's own error stays", async () => {
  const { parseTrainArgs } = await import("../lib/train/cli.ts");
  const { runTrainJob } = await import("../lib/train/run.ts");
  const out = await Deno.makeTempDir({ prefix: "factorout-train-putback-" });
  const orig = Deno.rename;
  try {
    await Deno.mkdir(`${out}/checkpoints`);
    await Deno.writeTextFile(`${out}/checkpoints/ckpt-000000000010.fock`, "old");
    await Deno.writeFile(`${out}/blob.bin`, new Uint8Array(100)); // not text: the run fails on its data
    // putting the old checkpoints back fails (the rename from checkpoints.<pid>-<r>.old.tmp)
    (Deno as { rename: typeof Deno.rename }).rename = (from, to) =>
      /\.old\.tmp$/.test(String(from)) && String(to).endsWith("/checkpoints")
        ? Promise.reject(new Error("injected rename failure"))
        : orig(from, to);
    const lines: string[] = [];
    const args = await parseTrainArgs([
      ...["--data", `${out}/blob.bin`, "--overwrite", "--dim", "4", "--epochs", "1", "--eval-dir", "none"],
      ...["--out", out, "--progress", "none", "--backend", "js"],
    ]);
    const err = await runTrainJob(args, { out: () => {}, err: (l) => lines.push(l), tty: false }).then(
      () => undefined,
      (e: Error) => e,
    );
    (Deno as { rename: typeof Deno.rename }).rename = orig;
    assert.ok(err, "the run succeeded on a binary file");
    assert.match(err.message, /blob\.bin/, `the job's own error: ${err.message}`);
    await Deno.stat(`${out}/run.lock`).then(() => assert.fail("run.lock left behind"), () => {});
    // the old checkpoints are still aside, and the log says where (the next train job puts them back)
    const aside = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.endsWith(".old.tmp"));
    assert.equal(aside.length, 1, lines.join("\n"));
    assert.equal(await Deno.readTextFile(`${out}/${aside[0]}/ckpt-000000000010.fock`), "old");
    assert.ok(lines.some((l) => l.includes(aside[0]) && /injected rename failure/.test(l)), lines.join("\n"));
  } finally {
    (Deno as { rename: typeof Deno.rename }).rename = orig;
    await Deno.remove(out, { recursive: true });
  }
});
