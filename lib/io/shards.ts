/**
 * A corpus made of shards without `manifest.json` (written by Spark, DuckDB, pyarrow, or left by a
 * killed corpus job): every shard is read once and checked whole (schema, offsets, ids, weights), and
 * the manifest the folder lacks is built in memory (never written into the input folder). The shards
 * must agree on their schema (corpus columns and types, and factorout's `factorout.mode` /
 * `factorout.vocab_size` metadata when present). The vocabulary is `vocab.tsv` beside the shards when
 * there is one, else the ids themselves as words ("0", "1", …, counted in the shards).
 *
 * @module
 */

import type * as arrow from "apache-arrow";
import { DataFormatError } from "../core/errors.ts";
import type { ClassifiedInputs } from "./detect.ts";
import { type CorpusManifest, writeManifest } from "./manifest.ts";
import { COLUMNS } from "./schema.ts";
import { openShard, ParquetDecoders } from "./sources.ts";
import { readVocab, type Vocabulary, writeVocab } from "./vocab.ts";
import { DENO_TASK } from "../core/exit_codes.ts";

/** Largest id accepted when the ids are the words (no vocab.tsv): beyond it, ask for a vocabulary. */
export const MAX_ID_WORDS = 10_000_000;

/**
 * Refuses shards that do not say they are complete (`deno task train --data-complete`): a folder
 * without `manifest.json` must hold the `_SUCCESS` marker that Spark (Hadoop's output committer) writes
 * when a job has finished; a single shard file cannot say so. Throws a {@link DataFormatError} (exit 5).
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a shard folder written by Spark (spark-out/, with _SUCCESS)
 * import { requireComplete } from "./shards.ts";
 * await requireComplete("spark-out"); // throws unless spark-out/_SUCCESS or manifest.json exists
 * ```
 */
export async function requireComplete(dir: string): Promise<void> {
  const isFile = (p: string) => Deno.stat(p).then((s) => s.isFile, () => false);
  const d = dir.replace(/\/+$/, "");
  if (!(await Deno.stat(d)).isDirectory) {
    throw new DataFormatError(
      d,
      "is a single shard and --data-complete asks for a finished job's folder (manifest.json or _SUCCESS)",
    );
  }
  if ((await isFile(`${d}/manifest.json`)) || (await isFile(`${d}/_SUCCESS`))) return;
  throw new DataFormatError(
    d,
    "has neither manifest.json nor _SUCCESS: the job that wrote these shards did not finish (or is still " +
      "running); rerun it, or drop --data-complete to train on the shards found",
  );
}

/** A scanned shard corpus: the manifest it lacked, its vocabulary, and where that came from. */
export type ShardCorpus = {
  /** the folder (or the single file) */
  dir: string;
  manifest: CorpusManifest;
  vocab: Vocabulary;
  /** the vocab.tsv read, or "" when ids are the words */
  vocabFile: string;
};

/** The corpus columns' names and types, and factorout's metadata: what shards of one corpus share. */
function schemaKey(s: arrow.Schema): string {
  const cols = Object.values(COLUMNS).map((n) => {
    const f = s.fields.find((x) => x.name === n);
    return f ? `${n}: ${f.type}` : "";
  }).filter((x) => x);
  for (const k of ["factorout.mode", "factorout.vocab_size"]) {
    const v = s.metadata.get(k);
    if (v !== undefined) cols.push(`${k}=${v}`);
  }
  return cols.join(", ");
}

/**
 * Reads every shard of `c` (from {@link classifyInputs}) once, checks it whole and that all shards share
 * one schema, and returns the manifest and vocabulary. `dir` is the folder given (or the single file);
 * `vocab.tsv` is looked up in it (beside the file for a single file). `log` gets one line saying how.
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a folder of shards written elsewhere (here spark-out/)
 * import { classifyInputs } from "./detect.ts";
 * import { scanShards } from "./shards.ts";
 * const c = await classifyInputs(["spark-out"]);
 * if (c.kind === "shards") console.log((await scanShards("spark-out", c, console.error)).manifest.rows);
 * ```
 */
export async function scanShards(
  dir: string,
  c: Extract<ClassifiedInputs, { kind: "shards" }>,
  log: (line: string) => void,
): Promise<ShardCorpus> {
  const t0 = performance.now();
  const isFile = !(await Deno.stat(dir)).isDirectory;
  const folder = isFile ? (dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/")) || "/" : ".") : dir;
  const vocabPath = `${folder.replace(/\/$/, "")}/vocab.tsv`;
  let vocab: Vocabulary | null = null;
  if (await Deno.stat(vocabPath).then((s) => s.isFile, () => false)) vocab = await readVocab(vocabPath);
  const V = vocab ? vocab.words.length : 0;
  const pool = new ParquetDecoders(2);
  let counts = new Float64Array(vocab ? 0 : 1024);
  let maxId = -1, rows = 0, maxInputK = 0, maxTargetK = 0;
  let key = "", keyFile = "", mode = "", vocabMeta = "";
  const shards: CorpusManifest["shards"] = [];
  const count = (ids: Int32Array, from: number, to: number, file: string) => {
    for (let i = from; i < to; i++) {
      const id = ids[i];
      if (id > maxId) {
        if (id >= MAX_ID_WORDS) {
          throw new DataFormatError(
            file,
            `id ${id} and no vocab.tsv beside the shards: ids as words would make ${id + 1} words; ` +
              `put the vocabulary (word<TAB>count per id) in ${vocabPath}`,
          );
        }
        maxId = id;
        if (id >= counts.length) {
          const n = new Float64Array(Math.max(id + 1, counts.length * 2));
          n.set(counts);
          counts = n;
        }
      }
      counts[id]++;
    }
  };
  try {
    for (const [i, f] of c.files.entries()) {
      const cur = await openShard({ path: f.path, shard: i }, V, 0, pool);
      let fileRows = 0;
      try {
        for (let b = await cur.next(); b; b = await cur.next()) {
          const k = schemaKey(b.schema);
          if (!key) {
            key = k;
            keyFile = f.path;
            mode = b.schema.metadata.get("factorout.mode") ?? "";
            vocabMeta = b.schema.metadata.get("factorout.vocab_size") ?? "";
          } else if (k !== key) {
            throw new DataFormatError(
              f.path,
              `shard ${i} has another schema than ${keyFile} (${k} vs ${key}): ` +
                "shards of different corpora cannot be trained together",
            );
          }
          const d = b.data;
          for (let r = 0; r < d.rows; r++) {
            maxInputK = Math.max(maxInputK, d.inOff[r + 1] - d.inOff[r]);
            maxTargetK = Math.max(maxTargetK, d.tOff[r + 1] - d.tOff[r]);
          }
          if (!vocab) {
            count(d.inIdx, d.inOff[0], d.inOff[d.rows], f.path);
            count(d.tIdx, d.tOff[0], d.tOff[d.rows], f.path);
          }
          fileRows += d.rows;
        }
      } finally {
        cur.close();
      }
      rows += fileRows;
      const rel = isFile
        ? f.path.slice(f.path.lastIndexOf("/") + 1)
        : f.path.slice(dir.replace(/\/$/, "").length + 1);
      shards.push({ file: rel, rows: fileRows, bytes: f.bytes });
    }
  } finally {
    pool.close();
  }
  if (vocabMeta && vocab && Number(vocabMeta) !== V) {
    throw new DataFormatError(
      vocabPath,
      `has ${V} words but the shards say factorout.vocab_size = ${vocabMeta}: the vocabulary is not theirs`,
    );
  }
  if (!vocab) {
    // factorout's shards say their vocabulary size: ids that never occur are words too
    const n = Math.max(maxId + 1, Math.min(Number(vocabMeta) || 0, MAX_ID_WORDS));
    if (n > counts.length) {
      const grown = new Float64Array(n);
      grown.set(counts);
      counts = grown;
    }
    vocab = {
      words: Array.from({ length: n }, (_, i) => String(i)),
      counts: Array.from(counts.subarray(0, n)),
    };
  }
  const how = `${c.files.length} shard(s) found by content, ${rows} rows, read and checked in ${
    ((performance.now() - t0) / 1000).toFixed(1)
  } s`;
  const vocabLine = V
    ? `from ${vocabPath} (${V} words)`
    : `none (no ${vocabPath}): the ids are the words ("0" … "${vocab.words.length - 1}")`;
  log(`data: ${dir} has no manifest.json: ${how}; vocabulary ${vocabLine}`);
  if (c.unfinished.length) {
    log(
      `data: ignored ${c.unfinished.length} unfinished shard(s) (${c.unfinished[0]}…): ` +
        `if a corpus job was killed here, the folder is incomplete; rerun ${DENO_TASK} corpus`,
    );
  }
  const kinds = new Set(c.files.map((f) => f.kind));
  const manifest: CorpusManifest = {
    format: "factorout-corpus",
    version: 1,
    mode: mode === "cbow" || mode === "skipgram" ? mode : "external",
    fileFormat: kinds.has("parquet") ? "parquet" : "arrow",
    rows,
    vocabSize: vocab.words.length,
    maxInputK,
    maxTargetK,
    tokens: 0,
    keptTokens: 0,
    vocabFile: V ? "vocab.tsv" : "",
    shards,
    source: { scanned: dir, vocabulary: V ? vocabPath : "ids" },
    created: new Date().toISOString(),
  };
  return { dir, manifest, vocab, vocabFile: V ? vocabPath : "" };
}

/**
 * `deno task corpus --input <shards>`: makes a complete corpus folder from shards without a manifest
 * (checked by {@link scanShards}): copies them into `outDir` as `part-NNNNN.<ext>` (each through a
 * `.tmp` file and a rename), writes `vocab.tsv` (the one beside them, or the ids as words) and
 * `manifest.json` last. Returns the manifest. `outDir` is a new, empty folder: the corpus job's temporary
 * one, swapped in over `--out` when complete (pipelines/corpus.ts `intoCorpusFolder`, as for text), so
 * that a stop, a full disk or a bad shard leaves the previous corpus as it was.
 *
 * @example
 * ```ts ignore
 * // not run by `deno test --doc`: needs a folder of shards written elsewhere (here spark-out/)
 * import { classifyInputs } from "./detect.ts";
 * import { importShards } from "./shards.ts";
 * const c = await classifyInputs(["spark-out"]);
 * if (c.kind === "shards") await importShards("spark-out", c, "data/corpus", console.error);
 * ```
 */
export async function importShards(
  dir: string,
  c: Extract<ClassifiedInputs, { kind: "shards" }>,
  outDir: string,
  log: (line: string) => void,
): Promise<CorpusManifest> {
  const s = await scanShards(dir, c, log);
  const out = outDir.replace(/\/$/, "");
  await Deno.mkdir(out, { recursive: true });
  const shards: CorpusManifest["shards"] = [];
  for (const [i, f] of c.files.entries()) {
    const name = `part-${String(i).padStart(5, "0")}.${f.kind}`;
    await Deno.copyFile(f.path, `${out}/${name}.tmp`);
    await Deno.rename(`${out}/${name}.tmp`, `${out}/${name}`);
    shards.push({ ...s.manifest.shards[i], file: name });
  }
  await writeVocab(`${out}/vocab.tsv`, s.vocab);
  const manifest: CorpusManifest = { ...s.manifest, vocabFile: "vocab.tsv", shards };
  await writeManifest(out, manifest);
  return manifest;
}
