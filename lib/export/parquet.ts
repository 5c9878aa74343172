/**
 * Parquet embeddings, the same schema as the Arrow files (`word: utf8`,
 * `vector: fixed_size_list<float32>[d]`), written and read with parquet-wasm (Arrow IPC is the bridge
 * between apache-arrow tables and parquet-wasm tables). Compression: zstd.
 *
 * @module
 */

import * as arrow from "apache-arrow";
import * as pq from "parquet-wasm";
import { DataFormatError } from "../core/errors.ts";
import { arrowTableToEmbeddings, embeddingsToArrowTable } from "./arrow.ts";
import { type AtomicWriteOptions, writeFileAtomic } from "../core/atomic.ts";
import type { Embeddings } from "./embeddings.ts";

/**
 * Encodes embeddings as Parquet bytes.
 *
 * @example
 * ```ts
 * import { embeddingsToParquet } from "./parquet.ts";
 * const bytes = embeddingsToParquet({ words: ["a"], vectors: Float32Array.of(1, 2), d: 2 });
 * ```
 */
export function embeddingsToParquet(e: Embeddings): Uint8Array {
  const ipc = arrow.tableToIPC(embeddingsToArrowTable(e), "stream");
  const table = pq.Table.fromIPCStream(ipc);
  const props = new pq.WriterPropertiesBuilder().setCompression(pq.Compression.ZSTD).build();
  return pq.writeParquet(table, props);
}

/**
 * Writes embeddings as a Parquet file to `path`, atomically; `opts.digest` is given every byte written.
 *
 * @example
 * ```ts
 * import { writeParquetEmbeddings } from "./parquet.ts";
 * await writeParquetEmbeddings("/tmp/e.parquet", { words: ["a"], vectors: Float32Array.of(1, 2), d: 2 });
 * ```
 */
export async function writeParquetEmbeddings(
  path: string,
  e: Embeddings,
  opts: Pick<AtomicWriteOptions, "digest"> = {},
): Promise<void> {
  await writeFileAtomic(path, embeddingsToParquet(e), opts);
}

/**
 * Reads embeddings from a Parquet file (via parquet-wasm).
 *
 * @example
 * ```ts
 * import { readParquetEmbeddings, writeParquetEmbeddings } from "./parquet.ts";
 * await writeParquetEmbeddings("/tmp/r.parquet", { words: ["a"], vectors: Float32Array.of(1, 2), d: 2 });
 * const { words, vectors, d } = await readParquetEmbeddings("/tmp/r.parquet");
 * ```
 */
export async function readParquetEmbeddings(path: string): Promise<Embeddings> {
  const bytes = await Deno.readFile(path);
  let table: arrow.Table;
  try {
    table = arrow.tableFromIPC(pq.readParquet(bytes).intoIPCStream());
  } catch (e) {
    throw new DataFormatError(path, `not a readable Parquet file: ${(e as Error).message ?? e}`);
  }
  return arrowTableToEmbeddings(table, path);
}
