// The shared exit-code table (lib/core/exit_codes.ts): the error → code mapping every command uses, and the
// `--help` lines built from it; operating-system errors worded as one line naming the path (lib/core/os_errors.ts);
// the one parseArgs wrapper (negative values reach the flag's own check).
import assert from "node:assert/strict";
import { publishOneWord } from "./publish_fixture.ts";
import { join } from "node:path";
import {
  debugFromEnv,
  debugWanted,
  EXIT,
  exitCodeFor,
  exitCodesHelp,
  ExitError,
  exportFailure,
  reportError,
} from "../lib/core/exit_codes.ts";
import { closestFlag, parseArgsStrict, parseFlags, refusePublishIntoRun } from "../lib/core/cli.ts";
import { describeOsError, osErrno, withPath } from "../lib/core/os_errors.ts";
import { StoppedError } from "../lib/core/stop.ts";
import { pipeline, runScript } from "./child.ts";
import {
  BackendUnavailableError,
  DataFormatError,
  DivergenceError,
  IoError,
  SingularUpdateError,
  UsageError,
} from "../lib/core/errors.ts";

Deno.test("exit codes: one table, errors mapped to it", () => {
  assert.deepEqual(Object.values(EXIT), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "codes are distinct and dense");
  assert.equal(exitCodeFor(new UsageError("--x")), EXIT.usage);
  // `--backend blas` without OpenBLAS is the job's setup, not a bug: exit 2 and its line, no "internal error"
  const blas = new BackendUnavailableError(
    "blas",
    "could not load OpenBLAS; apt-get install libopenblas0-pthread",
  );
  assert.equal(exitCodeFor(blas), EXIT.usage);
  assert.equal(exitCodeFor(new DataFormatError("a.txt", "row 1")), EXIT.badData);
  assert.equal(exitCodeFor(new Deno.errors.NotFound("a.txt")), EXIT.badData);
  assert.equal(exitCodeFor(new DivergenceError(3, "NaN")), EXIT.diverged);
  assert.equal(exitCodeFor(new SingularUpdateError("singular")), EXIT.diverged);
  assert.equal(exitCodeFor(new ExitError(EXIT.noCheckpoint, "none")), 4);
  assert.equal(exitCodeFor(new TypeError("bug")), EXIT.internal);
  assert.equal(exitCodeFor("a string"), EXIT.internal);
  const enospc = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
  assert.equal(exitCodeFor(enospc), EXIT.io);
  assert.equal(exitCodeFor(new Deno.errors.PermissionDenied("x")), EXIT.io);
  assert.equal(exitCodeFor(new Deno.errors.NotADirectory("x")), EXIT.io);
  assert.equal(
    exitCodeFor(new IoError("cannot write", "a", "EROFS", "read-only file system", "fix")),
    EXIT.io,
  );
  assert.equal(
    exitCodeFor(new IoError("cannot open", "a", "ENOENT", "missing", "fix", { reading: true })),
    EXIT.badData,
    "a missing input is bad data",
  );
  assert.equal(exitCodeFor(new IoError("cannot write", "a", "ENOENT", "missing", "fix")), EXIT.io);
  assert.equal(exitCodeFor(new Error("ENOSPC in a message is not an OS error")), EXIT.internal);
  assert.equal(exitCodeFor(new StoppedError("stopped by SIGTERM")), 9);
});

Deno.test("exit codes: --help lines list 0, 1, 2 and the asked codes in order, once each", () => {
  const lines = exitCodesHelp("diverged", "badData", "badData").split("\n");
  assert.match(lines[0], /^Exit codes/);
  assert.deepEqual(lines.slice(1).map((l) => Number(l.trim().split(/\s+/)[0])), [0, 1, 2, 5, 6, 8]);
  assert.match(lines[4], /bad data/);
  assert.match(lines[5], /diverged/);
});

Deno.test("os errors: Deno's errors become one line `<what> <path>: <cause>; <fix>`, paths attached", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/file`, "x");
    // Deno's own message names the path: taken from it
    const e1 = await Deno.mkdir(`${dir}/file/sub`).catch((e) => e);
    assert.equal(osErrno(e1), "ENOTDIR");
    assert.equal(
      describeOsError(e1)?.message,
      `cannot create folder ${dir}/file/sub: a part of the path is a regular file, not a folder; choose a path under a folder`,
    );
    const e2 = await Deno.readFile(`${dir}/none`).catch((e) => e);
    assert.equal(describeOsError(e2)?.reading, true);
    assert.equal(exitCodeFor(describeOsError(e2)), EXIT.badData);
    // a failed write on an open file names nothing: withPath attaches what and where
    const enospc = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
    await assert.rejects(
      withPath("cannot write checkpoint", "runs/x/ckpt-12.fock", () => Promise.reject(enospc)),
      (e) =>
        e instanceof IoError && e.errno === "ENOSPC" && e.cause === enospc &&
        e.message ===
          "cannot write checkpoint runs/x/ckpt-12.fock: no space left on device; free space on its disk or choose another output folder",
    );
    // not an OS error: passes through unchanged
    const bug = new TypeError("bug");
    await assert.rejects(withPath("cannot write", "a", () => Promise.reject(bug)), (e) => e === bug);
    assert.equal(describeOsError(bug), undefined);
    // an unknown errno keeps Deno's words
    const odd = Object.assign(new Error("Stale file handle (os error 116): open '/n/x'"), { code: "ESTALE" });
    assert.equal(
      describeOsError(odd)?.message,
      "cannot open /n/x: stale file handle; check the path and its disk",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("os errors: reportError prints one line, the stack only with debug; internal errors say --debug", () => {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    const enospc = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
    const io = describeOsError(enospc, "cannot write shard", "d/part-00000.arrow")!;
    assert.equal(reportError("corpus", io, { debug: false }), EXIT.io);
    assert.deepEqual(lines, [
      "corpus: cannot write shard d/part-00000.arrow: no space left on device; free space on its disk or choose another output folder",
    ]);
    lines.length = 0;
    assert.equal(reportError("eval", new TypeError("x is undefined"), { debug: false }), EXIT.internal);
    assert.deepEqual(lines, [
      "eval: internal error: x is undefined (rerun with --debug for the stack trace)",
    ]);
    lines.length = 0;
    const blas = new BackendUnavailableError(
      "blas",
      "could not load OpenBLAS; apt-get install libopenblas0-pthread",
    );
    assert.equal(reportError("train", blas, { debug: false }), EXIT.usage);
    assert.deepEqual(lines, [
      'train: backend "blas" unavailable: could not load OpenBLAS; apt-get install libopenblas0-pthread',
    ]);
    lines.length = 0;
    reportError("eval", io, { debug: true });
    assert.ok(lines.length > 2 && /^\s+at /m.test(lines.join("\n")), "stack with debug");
    assert.match(lines[lines.length - 1], /^eval: cannot write shard d\/part-00000\.arrow: no space/);
  } finally {
    console.error = orig;
  }
  assert.equal(debugWanted(["--debug"]), true);
  assert.equal(debugWanted(["--lr", "1"]), /^(1|true|yes|on)$/i.test(Deno.env.get("FACTOROUT_DEBUG") ?? ""));
  // a publication that failed after the checkpoint: 8 for a full disk (as in export), 7 otherwise
  const full = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
  assert.equal(exportFailure(full, (w) => w).code, EXIT.io);
  assert.equal(exportFailure(new Error("boom"), (w) => w).code, EXIT.exportFailed);
});

Deno.test("CLI values: a negative number after a flag is its value, parse errors are one usage line", () => {
  const opts = {
    lr: { type: "string" as const },
    dim: { type: "string" as const },
    x: { type: "boolean" as const },
  };
  assert.deepEqual({ ...parseArgsStrict(["--lr", "-1", "--dim", "-5"], opts) }, { lr: "-1", dim: "-5" });
  assert.deepEqual({ ...parseArgsStrict(["--lr", "-.5"], opts) }, { lr: "-.5" });
  assert.deepEqual({ ...parseArgsStrict(["--lr", "-1e-3"], opts) }, { lr: "-1e-3" });
  assert.throws(
    () => parseArgsStrict(["--lr", "--dim", "3"], opts),
    (e) => e instanceof UsageError && /^--lr needs a value/.test(e.message),
  );
  assert.throws(() => parseArgsStrict(["--lr"], opts), /--lr needs a value/);
  assert.throws(() => parseArgsStrict(["--bogus"], opts), /Unknown option '--bogus'; see --help/);
  assert.throws(
    () => parseArgsStrict(["pos"], opts),
    (e) => e instanceof UsageError && !e.message.includes("\n"),
  );
  // every command accepts --debug
  assert.equal(parseFlags(["--debug"], { k: { type: "string", help: "k" } }).debug, true);
});

Deno.test("CLI values: an unknown flag names the known one it most likely meant (a unique prefix, or edit distance <= 2), else none", async () => {
  const known = ["epochs", "eval-dir", "export-output", "lr", "lr-min", "out", "min-count", "debug"];
  for (
    const [typed, want] of [
      ["epoch", "epochs"], // a unique prefix
      ["exp", "export-output"],
      ["epcohs", "epochs"], // two edits
      ["min_count", "min-count"],
      ["lr-mn", "lr-min"],
      ["ot", "out"], // one edit on a short name
      ["e", undefined], // the prefix of three flags, and one letter is no flag's typo
      ["lrr", "lr"],
      ["bogus", undefined], // nothing close
      ["x", undefined], // two edits make any short flag another: none
      ["outt-dir", undefined], // three edits
    ] as [string, string | undefined][]
  ) assert.equal(closestFlag(typed, known), want, typed);
  // a tie between two flags suggests neither
  assert.equal(closestFlag("lr-x", ["lr-a", "lr-b"]), undefined);
  // through the one parseArgs wrapper: still one line ending "; see --help"
  const flags = {
    epochs: { type: "string" as const, help: "e" },
    out: { type: "string" as const, help: "o" },
  };
  for (const args of [["--epoch", "3"], ["--epoch=3"], ["--epochz"]]) {
    assert.throws(
      () => parseFlags(args, flags),
      (e) =>
        e instanceof UsageError &&
        /^Unknown option '--epoch.?' \(did you mean --epochs\?\); see --help$/.test(e.message),
      args.join(" "),
    );
  }
  assert.throws(
    () => parseFlags(["--bogus"], flags),
    (e) => e instanceof UsageError && e.message === "Unknown option '--bogus'; see --help",
  );
  // every command: one line, exit 2 (train's flag table, as a child process)
  const r = await runScript(pipeline("train"), ["--epoch", "3"]);
  assert.equal(r.code, EXIT.usage, r.stderr);
  assert.equal(r.stderr.trim(), "train: Unknown option '--epoch' (did you mean --epochs?); see --help");
});

Deno.test("CLI values: a flag that takes one value, given twice, is refused naming it; repeatable and boolean flags are not", () => {
  const flags = {
    vectors: { type: "string" as const, help: "v" },
    out: { type: "string" as const, help: "o" },
    data: { type: "string" as const, help: "d", multiple: true },
    eval: { type: "boolean" as const, help: "e" },
    "export-output": { type: "string" as const, help: "x", bare: "true" },
  };
  // parseArgs kept the last silently: --vectors A --vectors B evaluated B
  for (
    const [args, re] of [
      [["--vectors", "A", "--vectors", "B"], /^--vectors is given twice \("A", then "B"\); give it once$/],
      [["--out=x", "--vectors", "A", "--out", "-1"], /^--out is given twice \("x", then "-1"\)/],
      [["--export-output", "--export-output", "false"], /^--export-output is given twice/],
    ] as [string[], RegExp][]
  ) {
    assert.throws(
      () => parseFlags(args, flags),
      (e) => e instanceof UsageError && re.test(e.message),
      args.join(" "),
    );
  }
  assert.deepEqual(parseFlags(["--data", "a", "--data", "b", "--eval", "--eval"], flags).data, ["a", "b"]);
  assert.equal(parseFlags(["--vectors", "A", "--out", "B"], flags).vectors, "A");
});

Deno.test("exportFailure: a publication root's lock held by another job stays exit 3 (locked), not 7", async () => {
  const { exportFailure, ExitError } = await import("../lib/core/exit_codes.ts");
  const held = exportFailure(
    new ExitError(EXIT.locked, "r/publish.lock is held"),
    (why) => `publishing failed (${why})`,
  );
  assert.equal(held.code, EXIT.locked);
  assert.equal(held.message, "publishing failed (r/publish.lock is held)");
  assert.equal(exportFailure(new Error("boom"), (why) => why).code, EXIT.exportFailed);
});

Deno.test("refusePublishIntoRun: --out inside a published version, latest or versions/ is refused; a root of its own is not", async () => {
  const root = await Deno.makeTempDir({ prefix: "factorout-publish-into-" });
  try {
    const pub = join(root, "run", "embeddings");
    const { versionDir } = await publishOneWord(pub, "v1");
    for (
      const [out, re] of [
        [join(pub, "latest"), /inside the published version v1 of the publication root .*embeddings/],
        [versionDir, /inside the published version v1/],
        [join(pub, "latest", "sub", "deeper"), /inside the published version v1/],
        [join(pub, "versions"), /is the versions\/ folder of the publication root/],
        [join(pub, "versions", "new"), /inside the published version new/],
      ]
    ) {
      await assert.rejects(
        refusePublishIntoRun(out as string),
        (e) =>
          e instanceof UsageError && (re as RegExp).test(e.message) && e.message.includes("never changed"),
        out as string,
      );
    }
    // with a run too, the run's own folders as before
    await assert.rejects(
      refusePublishIntoRun(join(root, "run", "checkpoints"), join(root, "run"), "--from"),
      /inside the checkpoints\/ folder/,
    );
    await refusePublishIntoRun(pub, join(root, "run"), "--from");
    await refusePublishIntoRun(pub);
    await refusePublishIntoRun(join(root, "other", "versions")); // no publication there
    // another run's folder or one of its working folders (checkpoints/, run.lock or summary.json make a
    // run): its embeddings/ or a root of its own instead
    for (const [name, marker] of [["r1", "checkpoints/"], ["r2", "run.lock"], ["r3", "summary.json"]]) {
      const other = join(root, name);
      await Deno.mkdir(join(other, "checkpoints"), { recursive: true });
      if (marker !== "checkpoints/") {
        await Deno.remove(join(other, "checkpoints"));
        await Deno.writeTextFile(join(other, marker), "{}");
      }
      for (
        const [out, re] of [[other, /is the run folder/], [
          join(other, "corpus", "x"),
          /inside the corpus\/ folder/,
        ]]
      ) {
        await assert.rejects(
          refusePublishIntoRun(out as string, join(root, "run"), "--from"),
          (e) =>
            e instanceof UsageError && (re as RegExp).test(e.message) &&
            e.message.includes(
              `publish that run's embeddings into ${
                join(other, "embeddings")
              }, or give --out a publication root of its own`,
            ),
          `${out} (${marker})`,
        );
      }
      await refusePublishIntoRun(join(other, "embeddings")); // that run's own publication root
    }
    await assert.rejects(
      refusePublishIntoRun(join(root, "r1", "checkpoints")),
      /inside the checkpoints\/ folder of the run/,
    );
    await refusePublishIntoRun(join(root, "plain")); // a folder that holds no run
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("FACTOROUT_DEBUG: 1/true/yes/on give the stack, 0/false/no/off/empty do not, another value is exit 2 in every command", async () => {
  const prev = Deno.env.get("FACTOROUT_DEBUG");
  try {
    for (const v of ["1", "true", "YES", "on", " On "]) {
      Deno.env.set("FACTOROUT_DEBUG", v);
      assert.equal(debugFromEnv(), true, v);
      assert.equal(debugWanted([]), true, v);
    }
    for (const v of ["", "0", "false", "No", "off"]) {
      Deno.env.set("FACTOROUT_DEBUG", v);
      assert.equal(debugFromEnv(), false, v);
    }
    for (const v of ["maybe", "2", "debug"]) {
      Deno.env.set("FACTOROUT_DEBUG", v);
      assert.throws(
        () => debugFromEnv(),
        (e: Error) => e instanceof UsageError && e.message.includes(`'${v}'`),
      );
      assert.equal(debugWanted([]), false, v); // the error being reported is printed without a stack
      // every command checks it with its flags (parseFlags)
      assert.throws(
        () => parseFlags([], {}),
        (e: Error) =>
          e instanceof UsageError && /^FACTOROUT_DEBUG must be 1, true, yes or on/.test(e.message),
      );
    }
  } finally {
    if (prev === undefined) Deno.env.delete("FACTOROUT_DEBUG");
    else Deno.env.set("FACTOROUT_DEBUG", prev);
  }
  // a job: `yes` prints the stack (it was silently ignored), `maybe` exits 2 naming the variable before any work
  const missing = "/nonexistent/h14/x.vec";
  // --neighbours: something to evaluate also where ../shared/eval is missing (nothing is exit 2)
  const yes = await runScript(pipeline("eval"), ["--vectors", missing, "--neighbours", "a"], {
    FACTOROUT_DEBUG: "yes",
  });
  assert.equal(yes.code, EXIT.badData, yes.stderr);
  assert.match(yes.stderr, /^\s+at /m, "stack with FACTOROUT_DEBUG=yes");
  const off = await runScript(pipeline("eval"), ["--vectors", missing, "--neighbours", "a"], {
    FACTOROUT_DEBUG: "off",
  });
  assert.equal(off.code, EXIT.badData, off.stderr);
  assert.doesNotMatch(off.stderr, /^\s+at /m);
  for (const job of ["eval", "corpus", "train", "export", "refresh"]) {
    const r = await runScript(pipeline(job), ["--help"], { FACTOROUT_DEBUG: "maybe" });
    assert.equal(r.code, EXIT.usage, `${job}: ${r.stderr}`);
    assert.equal(
      r.stderr.trim(),
      `${job}: FACTOROUT_DEBUG must be 1, true, yes or on (or 0, false, no, off, unset), got 'maybe'`,
    );
  }
});

Deno.test("every command: -h is --help (the one HELP_FLAG of lib/core/cli.ts); its usage line is `npx deno task <job>`", async () => {
  for (const job of ["eval", "corpus", "train", "export", "refresh"]) {
    const long = await runScript(pipeline(job), ["--help"]);
    const short = await runScript(pipeline(job), ["-h"]);
    assert.equal(short.code, EXIT.ok, `${job} -h: ${short.stderr}`);
    assert.equal(short.stdout, long.stdout, `${job}: -h prints the --help text`);
    assert.match(short.stdout, /^\s+--help, -h\s+show this help/m, job);
    // the command as the README runs it: no `deno` is on PATH (lib/core/exit_codes.ts DENO_TASK)
    assert.match(long.stdout, new RegExp(`^usage: npx deno task ${job} `), job);
    assert.doesNotMatch(long.stdout, /(?<!npx )deno task/, job);
  }
});
