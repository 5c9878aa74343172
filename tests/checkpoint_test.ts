// lib/train/checkpoint.ts (checksum trailer, finite values, old files without a checksum, newest good
// checkpoint, stale temporaries), lib/core/atomic.ts replaceDir/removeStaleDirTemps, and
// lib/core/lock.ts --wait and lockRunFolder.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  linkFileAtomic,
  parseTempName,
  removeStaleDirTemps,
  replaceDir,
  writeFileAtomic,
} from "../lib/core/atomic.ts";
import { basename, join } from "node:path";
import { acquireLock, lockRunFolder, pidAlive } from "../lib/core/lock.ts";
import { DataFormatError } from "../lib/core/errors.ts";
import { EXIT, ExitError } from "../lib/core/exit_codes.ts";
import {
  checkpointName,
  listCheckpoints,
  pruneCheckpoints,
  readCheckpoint,
  readNewestGoodCheckpoint,
  removeCheckpointsAfter,
  removeStaleCheckpointTemps,
  writeCheckpoint,
} from "../lib/train/checkpoint.ts";

const sample = (step: number) => ({
  meta: { step, note: "x" },
  arrays: { a: Float32Array.of(1, 2, 3), b: Float64Array.of(0.5, -1) },
});

Deno.test("checkpoint: round trip with a checksum; every flipped byte is a checksum mismatch", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = `${dir}/c.fock`;
    await writeCheckpoint(p, sample(3));
    const back = await readCheckpoint(p);
    assert.deepEqual(back.arrays.a, Float32Array.of(1, 2, 3));
    assert.equal(back.unchecked, undefined);
    const good = await Deno.readFile(p);
    assert.equal(new TextDecoder().decode(good.subarray(good.length - 40, good.length - 32)), "FOCKSUM1");
    for (let i = 0; i < good.length - 40; i += 7) {
      const bad = good.slice();
      bad[i] ^= 0x10;
      await Deno.writeFile(p, bad);
      await assert.rejects(readCheckpoint(p), (e) => e instanceof DataFormatError, `byte ${i}`);
      if (i >= 8) await assert.rejects(readCheckpoint(p), /checksum mismatch/, `byte ${i}`);
    }
    await Deno.writeFile(p, good.subarray(0, good.length - 3)); // truncated
    await assert.rejects(readCheckpoint(p), /corrupt checkpoint/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["c.fock"], "no temporary left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint: a file without a checksum (older format) loads, marked unchecked; non-finite values are refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = `${dir}/c.fock`;
    await writeCheckpoint(p, sample(1));
    const bytes = await Deno.readFile(p);
    // rebuild the old layout: format 1, no trailer
    const n = new DataView(bytes.buffer).getUint32(8, true);
    const json = new TextDecoder().decode(bytes.subarray(12, 12 + n)).replace('"format":2', '"format":1');
    const old = bytes.slice(0, bytes.length - 40);
    old.set(new TextEncoder().encode(json), 12);
    await Deno.writeFile(p, old);
    const back = await readCheckpoint(p);
    assert.equal(back.unchecked, true);
    assert.deepEqual(back.arrays.b, Float64Array.of(0.5, -1));
    // a NaN in an old (unchecked) file is still refused by the finite check
    const start = Math.ceil((12 + n) / 8) * 8;
    new DataView(old.buffer).setFloat32(start + 4, NaN, true);
    await Deno.writeFile(p, old);
    await assert.rejects(readCheckpoint(p), /array 'a'\[1\] is NaN \(not finite\)/);
    // format 2 without its trailer: truncated
    const two = bytes.slice(0, bytes.length - 40);
    await Deno.writeFile(p, two);
    await assert.rejects(readCheckpoint(p), /checksum trailer is missing/);
    // a checksum that matches but an Infinity inside (written by a buggy writer): refused
    await writeCheckpoint(p, { meta: {}, arrays: { a: Float32Array.of(1, Infinity) } }).catch(() => {});
    const inf = await Deno.readFile(p);
    const body = inf.subarray(0, inf.length - 40);
    inf.set(createHash("sha256").update(body).digest(), inf.length - 32);
    await Deno.writeFile(p, inf);
    await assert.rejects(readCheckpoint(p), /not finite/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint: the newest good one is found past newer corrupt ones; stale temporaries of dead pids go", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const s of [10, 20, 30]) await writeCheckpoint(`${dir}/${checkpointName(s)}`, sample(s));
    const [, p20, p30] = await listCheckpoints(dir);
    const b = await Deno.readFile(p30);
    await Deno.writeFile(p30, b.subarray(0, 50));
    const r = await readNewestGoodCheckpoint(dir);
    assert.equal(r.path, p20);
    assert.equal(r.checkpoint.meta.step, 20);
    assert.equal(r.skipped.length, 1);
    assert.match(r.skipped[0].reason, /ckpt-000000000030\.fock/);
    for (const p of await listCheckpoints(dir)) await Deno.writeFile(p, new Uint8Array(3));
    await assert.rejects(readNewestGoodCheckpoint(dir), /no good checkpoint: all 3 are corrupt or truncated/);
    await assert.rejects(readNewestGoodCheckpoint(`${dir}/none`), Deno.errors.NotFound);
    // temporaries: the old fixed name, a dead pid's, and a live one's (ours)
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    const names = [
      "ckpt-000000000001.fock.tmp",
      `ckpt-000000000002.fock.${dead.pid}-0000abcd.tmp`,
      `ckpt-000000000003.fock.${Deno.pid}-0000abcd.tmp`,
    ];
    for (const n of names) await Deno.writeTextFile(`${dir}/${n}`, "x");
    assert.deepEqual((await removeStaleCheckpointTemps(dir)).sort(), names.slice(0, 2).sort());
    await Deno.stat(`${dir}/${names[2]}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("linkFileAtomic: the second name replaces the old file whole; a missing source leaves it and says false", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeFileAtomic(`${dir}/ckpt.fock`, "new state");
    await writeFileAtomic(`${dir}/best.fock`, "old best");
    assert.equal(await linkFileAtomic(`${dir}/ckpt.fock`, `${dir}/best.fock`), true);
    assert.equal(await Deno.readTextFile(`${dir}/best.fock`), "new state");
    assert.equal((await Deno.stat(`${dir}/best.fock`)).ino, (await Deno.stat(`${dir}/ckpt.fock`)).ino);
    // the source pruned later: the second name keeps the bytes
    await Deno.remove(`${dir}/ckpt.fock`);
    assert.equal(await Deno.readTextFile(`${dir}/best.fock`), "new state");
    // no source: false, the old file untouched, no temporary left
    assert.equal(await linkFileAtomic(`${dir}/gone.fock`, `${dir}/best.fock`), false);
    assert.equal(await Deno.readTextFile(`${dir}/best.fock`), "new state");
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["best.fock"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replaceDir keeps the old folder until the new one is complete; removeStaleDirTemps repairs a kill between renames", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/corpus`;
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/manifest.json`, "old");
    await assert.rejects(
      replaceDir(dir, async (tmp) => {
        await Deno.writeTextFile(`${tmp}/manifest.json`, "half");
        throw new Error("fill failed");
      }),
      /fill failed/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/manifest.json`), "old");
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["corpus"]);
    const n = await replaceDir(dir, async (tmp) => {
      await Deno.writeTextFile(`${tmp}/manifest.json`, "new");
      return 7;
    });
    assert.equal(n, 7);
    assert.equal(await Deno.readTextFile(`${dir}/manifest.json`), "new");
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["corpus"]);
    // a kill between the renames: corpus missing, the old one aside, the new one complete under its temp
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    await Deno.rename(dir, `${root}/corpus.${dead.pid}-0000beef.old.tmp`);
    await Deno.mkdir(`${root}/corpus.${dead.pid}-0000cafe.tmp`);
    const done = await removeStaleDirTemps(root, pidAlive);
    assert.equal(done.length, 2, done.join());
    assert.equal(await Deno.readTextFile(`${dir}/manifest.json`), "new");
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["corpus"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lock: --wait waits for a live holder to finish; lockRunFolder refuses with exit 3 naming the holder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await lockRunFolder(dir, "train");
    const t0 = performance.now();
    await assert.rejects(
      lockRunFolder(dir, "export", { waitSeconds: 0.3, log: () => {} }),
      (e) =>
        e instanceof ExitError && e.code === EXIT.locked &&
        new RegExp(`run\\.lock is held by pid ${Deno.pid} on .* since \\d{4}-.*\\(train\\)`).test(e.message),
    );
    assert.ok(performance.now() - t0 >= 250, "waited");
    const lines: string[] = [];
    setTimeout(() => first.release(), 300);
    const second = await acquireLock(`${dir}/run.lock`, "refresh", (l) => lines.push(l), { waitSeconds: 10 });
    assert.match(lines[0], /waiting up to 10 s/);
    assert.equal(second.info.command, "refresh");
    await second.release();
    await assert.rejects(Deno.stat(`${dir}/run.lock`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lock: pidAlive counts a killed process that its parent has not reaped yet (a zombie) as gone", async () => {
  // a parent that forks a child which exits at once, and never reaps it
  const script = "import os, signal, sys, time\n" +
    "signal.signal(signal.SIGCHLD, signal.SIG_DFL)\n" +
    "pid = os.fork()\n" +
    "if pid == 0: os._exit(0)\n" +
    "print(pid, flush=True); time.sleep(5)\n";
  const child = new Deno.Command("python3", { args: ["-c", script], stdout: "piped" }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  const zombie = Number(new TextDecoder().decode(value).trim());
  try {
    let state = "";
    for (let i = 0; i < 100 && state !== "Z"; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const stat = await Deno.readTextFile(`/proc/${zombie}/stat`);
      state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    }
    assert.equal(state, "Z", "the child is a zombie, still listed in /proc");
    assert.equal(pidAlive(zombie), false);
    assert.equal(pidAlive(child.pid), true);
    assert.equal(pidAlive(Deno.pid), true);
  } finally {
    reader.releaseLock();
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
});

Deno.test("lock: a lock file is never seen empty; a second taker is refused naming the holder", async () => {
  // a second job that reads the lock while the first is creating it must find the holder, not an empty
  // file ("unreadable lock file"): the lock is made whole under a temporary name and linked into place
  const dir = await Deno.makeTempDir(), path = `${dir}/run.lock`;
  try {
    let empty = 0, refusedWithoutHolder = 0;
    for (let i = 0; i < 200; i++) {
      let done = false;
      // (the second taker below may win the race; then this one is refused, naming it)
      const taking = acquireLock(path, "train", () => {}).catch((e) => {
        if (!/held by pid/.test((e as Error).message)) refusedWithoutHolder++;
        return null;
      }).finally(() => done = true);
      while (!done) {
        try {
          if ((await Deno.readTextFile(path)) === "") empty++;
        } catch { /* not there yet */ }
        try {
          await (await acquireLock(path, "export", () => {})).release();
        } catch (e) {
          if (!/held by pid/.test((e as Error).message)) refusedWithoutHolder++;
        }
      }
      await (await taking)?.release();
    }
    assert.equal(empty, 0, "a reader saw the lock file empty");
    assert.equal(refusedWithoutHolder, 0, "a second taker was refused without the holder's name");
    const left = [];
    for await (const e of Deno.readDir(dir)) left.push(e.name);
    assert.deepEqual(left.filter((n) => n !== "run.lock.guard"), [], "temporary files left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint: pruning keeps the protected one; a rollback removes the ones after its step", async () => {
  const dir = await Deno.makeTempDir();
  for (const step of [0, 5, 10, 15, 20]) await Deno.writeTextFile(`${dir}/${checkpointName(step)}`, "x");
  await Deno.writeTextFile(`${dir}/best.fock`, "x");
  await pruneCheckpoints(dir, 2, `${dir}/${checkpointName(5)}`);
  const names = async () => (await listCheckpoints(dir)).map((p) => p.slice(dir.length + 1));
  assert.deepEqual(await names(), [checkpointName(5), checkpointName(15), checkpointName(20)]);
  const gone = await removeCheckpointsAfter(dir, 15);
  assert.deepEqual(gone, [`${dir}/${checkpointName(20)}`]);
  assert.deepEqual(await names(), [checkpointName(5), checkpointName(15)]);
  assert.deepEqual(await removeCheckpointsAfter(dir, 15), []);
  await Deno.stat(`${dir}/best.fock`); // never a ckpt-* name: left alone
  await Deno.remove(dir, { recursive: true });
});

Deno.test("checkpoint: pruning can keep one pruned file as a spare, which the next write overwrites in place", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const big = { meta: { step: 1 }, arrays: { x: new Float32Array(5000).fill(1) } };
    for (const step of [1, 2, 3]) {
      await writeCheckpoint(join(dir, checkpointName(step)), { ...big, meta: { step } });
    }
    await linkFileAtomic(join(dir, checkpointName(2)), join(dir, "best.fock"));
    const oldest = await Deno.stat(join(dir, checkpointName(1)));
    const spare = await pruneCheckpoints(dir, 1, undefined, { spare: true });
    // the oldest is the spare; the other pruned one (linked to best.fock) is removed, best.fock kept
    assert.ok(spare && parseTempName(basename(spare))?.base === checkpointName(1), spare);
    assert.equal((await Deno.stat(spare)).ino, oldest.ino);
    assert.deepEqual((await listCheckpoints(dir)).map((p) => basename(p)), [checkpointName(3)]);
    assert.equal((await readCheckpoint(join(dir, "best.fock"))).meta.step, 2);
    // a smaller checkpoint written over it: the same file, cut to its length, read back whole
    const small = { meta: { step: 4 }, arrays: { x: Float32Array.of(1, 2, 3) } };
    await writeCheckpoint(join(dir, checkpointName(4)), small, { reuse: spare });
    const written = await Deno.stat(join(dir, checkpointName(4)));
    assert.equal(written.ino, oldest.ino, "the spare's inode");
    assert.ok(written.size < oldest.size);
    assert.deepEqual((await readCheckpoint(join(dir, checkpointName(4)))).arrays.x, small.arrays.x);
    assert.equal(await Deno.stat(spare).then(() => true, () => false), false, "the spare's name is gone");
    // a spare that is gone: a new file, as without one
    await writeCheckpoint(join(dir, checkpointName(5)), small, { reuse: join(dir, "gone.123-00000000.tmp") });
    assert.equal((await readCheckpoint(join(dir, checkpointName(5)))).meta.step, 4);
    // without opts.spare, pruning removes them all
    assert.equal(await pruneCheckpoints(dir, 1), undefined);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "best.fock",
      checkpointName(5),
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic: flush() starts the fsync of what is written so far; the file is whole, once or twice called", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = join(dir, "f.txt");
    await writeFileAtomic(p, async (write, flush) => {
      await write("a".repeat(1 << 20));
      flush();
      flush(); // a second call starts no second fsync
      await write("b");
    });
    const text = await Deno.readTextFile(p);
    assert.equal(text.length, (1 << 20) + 1);
    assert.ok(text.endsWith("ab"));
    // a function that fails after flush(): the destination untouched, no temporary file left
    await assert.rejects(
      writeFileAtomic(p, async (write, flush) => {
        await write("x");
        flush();
        throw new Error("failed after flush");
      }),
      /failed after flush/,
    );
    assert.equal((await Deno.readTextFile(p)).length, (1 << 20) + 1);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["f.txt"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
