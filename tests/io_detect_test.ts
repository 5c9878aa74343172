// lib/io/detect.ts and the text reader of lib/io/text.ts: files told by content (shards by magic bytes
// whatever their names, binary by a NUL byte), folders classified as a whole, invalid UTF-8 lines
// dropped and located, long lines cut at a space into bounded pieces, UTF-16 text named as such.
import assert from "node:assert/strict";
import * as arrow from "apache-arrow";
import { classifyInputs, kindOfHead, sniffFile } from "../lib/io/detect.ts";
import { DataFormatError } from "../lib/core/errors.ts";
import { firstInvalidUtf8, newTextStats, readLineChunks, resolveTextInputs } from "../lib/io/text.ts";
import { shardKind } from "../lib/io/sources.ts";

const enc = new TextEncoder();
const bytes = (...parts: (string | number[])[]) =>
  Uint8Array.from(parts.flatMap((p) => typeof p === "string" ? [...enc.encode(p)] : p));

function arrowStream(): Uint8Array {
  const t = arrow.tableFromArrays({ x: Int32Array.of(1, 2) });
  return arrow.tableToIPC(t, "stream");
}

Deno.test("detect: kinds by magic bytes and NUL bytes, not by name", async () => {
  assert.equal(kindOfHead(bytes("PAR1xxxx")).kind, "parquet");
  assert.equal(kindOfHead(bytes("ARROW1\0\0")).kind, "arrow");
  assert.equal(kindOfHead(arrowStream()).kind, "arrow");
  assert.equal(kindOfHead(bytes([0x1f, 0x8b, 8, 0])).kind, "gzip");
  assert.deepEqual(kindOfHead(bytes("abc", [0], "def")), { kind: "binary", nulAt: 3 });
  assert.equal(kindOfHead(bytes("héllo\n")).kind, "text");
  assert.equal(kindOfHead(new Uint8Array(0)).kind, "empty");
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/data.txt`, arrowStream()); // an Arrow stream named .txt
  assert.equal((await sniffFile(`${dir}/data.txt`)).kind, "arrow");
  assert.equal(await shardKind(`${dir}/data.txt`), "arrow");
  await Deno.writeTextFile(`${dir}/x.parquet`, "just text\n"); // text named .parquet
  await assert.rejects(() => shardKind(`${dir}/x.parquet`), /x\.parquet: not an Arrow IPC or Parquet shard/);
});

Deno.test("detect: UTF-16 text (a byte-order mark, or a NUL in every other byte) is named as such, with the conversion", async () => {
  const text = "the cat sat on the mat\nthe dog ran\n";
  const le = [...text].flatMap((c) => [c.charCodeAt(0), 0]),
    be = [...text].flatMap((c) => [0, c.charCodeAt(0)]);
  assert.equal(kindOfHead(Uint8Array.from([0xff, 0xfe, ...le])).utf16, true);
  assert.equal(kindOfHead(Uint8Array.from([0xfe, 0xff, ...be])).utf16, true);
  assert.equal(kindOfHead(Uint8Array.from(le)).utf16, true);
  assert.equal(kindOfHead(Uint8Array.from(be)).utf16, true);
  // binary with NUL bytes elsewhere is not UTF-16
  assert.equal(kindOfHead(bytes("abc", [0], "defghijklmnopqrstuvwxyz", [0, 0, 0])).utf16, undefined);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/notes.txt`;
    await Deno.writeFile(path, Uint8Array.from([0xff, 0xfe, ...le]));
    await assert.rejects(
      () => classifyInputs([path]),
      (e: Error) =>
        e instanceof DataFormatError &&
        e.message === `${path}: UTF-16 text (byte 3 is 0x00), not UTF-8: convert it first, e.g. ` +
            `iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8.txt`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("detect: text whose lines end in a carriage return alone is refused with the conversion (it was one long line); CRLF is text", async () => {
  assert.equal(kindOfHead(bytes("the cat sat\rthe dog ran\r")).crLines, true);
  assert.equal(kindOfHead(bytes("the cat sat\r\nthe dog ran\r\n")).crLines, undefined);
  assert.equal(kindOfHead(bytes("the cat sat\nthe dog ran\n")).crLines, undefined);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.txt`, "a dog sat\n");
    await Deno.writeTextFile(`${dir}/mac.txt`, "the cat sat on the mat\rthe dog ran\r");
    await assert.rejects(
      () => classifyInputs([dir]),
      (e: Error) =>
        e instanceof DataFormatError &&
        e.message.startsWith(`${dir}/mac.txt: its lines end in a carriage return alone (classic Mac OS)`) &&
        e.message.includes("tr '\\r' '\\n'"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("detect: a folder is all shards or all text; extras beside shards are skipped; mixtures refused", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/b-part`, arrowStream());
  await Deno.writeFile(`${dir}/a.arrow`, arrowStream());
  for (const n of ["manifest.json", "vocab.tsv", "_SUCCESS", "part-7.arrow.tmp"]) {
    await Deno.writeTextFile(`${dir}/${n}`, "x\n");
  }
  await Deno.writeTextFile(`${dir}/.hidden`, "x\n");
  const c = await classifyInputs([dir]);
  assert.equal(c.kind, "shards");
  if (c.kind !== "shards") return;
  assert.deepEqual(c.files.map((f) => f.path), [`${dir}/a.arrow`, `${dir}/b-part`]);
  assert.deepEqual(c.unfinished, [`${dir}/part-7.arrow.tmp`]);
  assert.equal(c.ignored.length, 3);
  await assert.rejects(() => resolveTextInputs(dir), /is an Arrow\/Parquet shard, not text/);
  await Deno.writeTextFile(`${dir}/notes.md`, "hello\n");
  await assert.rejects(
    () => classifyInputs([dir]),
    (e) =>
      e instanceof DataFormatError &&
      /notes\.md: is text but .*a\.arrow is an Arrow IPC shard/.test(e.message),
  );
  const t = await Deno.makeTempDir();
  await Deno.writeTextFile(`${t}/a.txt`, "a b c\n");
  await Deno.writeFile(`${t}/b.gz`, bytes([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]));
  const ct = await classifyInputs([t]);
  assert.deepEqual(ct.files.map((f) => f.kind), ["text", "gzip"]);
  await Deno.writeFile(`${t}/c.bin`, bytes("ab", [0, 1, 2]));
  await assert.rejects(() => classifyInputs([t]), /c\.bin: not a text file: byte 2 is 0x00/);
});

Deno.test("text: firstInvalidUtf8 follows the UTF-8 definition", () => {
  const ok = [bytes("plain"), bytes("é ü 中 😀"), bytes([0xef, 0xbf, 0xbd])];
  for (const b of ok) assert.equal(firstInvalidUtf8(b, 0, b.length), -1);
  const bad: [number[], number][] = [
    [[0x61, 0xe9, 0x61], 1], // Latin-1
    [[0xc0, 0xaf], 0], // overlong
    [[0xed, 0xa0, 0x80], 0], // surrogate
    [[0xf4, 0x90, 0x80, 0x80], 0], // > U+10FFFF
    [[0x61, 0xe4, 0xb8], 1], // truncated at the end
    [[0x80], 0], // lone continuation
  ];
  for (const [b, at] of bad) assert.equal(firstInvalidUtf8(Uint8Array.from(b), 0, b.length), at, String(b));
});

async function readAll(path: string, maxLine?: number) {
  const stats = newTextStats();
  const lines: string[] = [];
  for await (const c of readLineChunks({ path, kind: "text", bytes: 0 }, stats, maxLine)) {
    lines.push(...c.lines);
  }
  return { lines, stats };
}

Deno.test("text: a NUL past the sniffed head stops reading at its offset; invalid lines are dropped whole", async () => {
  const dir = await Deno.makeTempDir();
  const head = "ok line\n".repeat(20_000); // 160,000 bytes, several read chunks
  await Deno.writeFile(`${dir}/nul.txt`, bytes(head, "ab", [0], "\n"));
  await assert.rejects(() => readAll(`${dir}/nul.txt`), /nul\.txt: not a text file: byte 160002 is 0x00/);
  await Deno.writeFile(`${dir}/l1.txt`, bytes(head, "caf", [0xe9], " ok\n", "na", [0xef], "ve\nlast"));
  const { lines, stats } = await readAll(`${dir}/l1.txt`);
  assert.equal(lines.length, 20_001);
  assert.equal(lines.at(-1), "last");
  assert.ok(!lines.some((l) => l.includes("\uFFFD") || l.startsWith("caf")));
  assert.deepEqual([stats.lines, stats.invalidLines, stats.firstInvalid], [
    20_003,
    2,
    `${dir}/l1.txt:160003`,
  ]);
});

Deno.test("text: a long line is cut at its last space before the bound, each piece a line", async () => {
  const dir = await Deno.makeTempDir();
  const words = Array.from({ length: 3000 }, (_, i) => `w${i}`);
  await Deno.writeTextFile(`${dir}/long.txt`, words.join(" ") + "\nshort line\n");
  const { lines, stats } = await readAll(`${dir}/long.txt`, 100);
  assert.ok(lines.every((l) => enc.encode(l).length <= 100));
  assert.deepEqual(lines.slice(0, -1).join(" ").split(" "), words, "no word lost or split");
  assert.equal(lines.at(-1), "short line");
  assert.equal(stats.lines, 2);
  assert.ok(stats.cutLines >= words.join(" ").length / 100 - 1);
  assert.equal(stats.cutInWord, 0);
  // no space at all: cut at a character boundary, and counted
  await Deno.writeTextFile(`${dir}/nospace.txt`, "é".repeat(300));
  const r = await readAll(`${dir}/nospace.txt`, 101);
  assert.equal(r.lines.join(""), "é".repeat(300));
  assert.ok(r.stats.cutInWord > 0);
});
