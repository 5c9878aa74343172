/**
 * Reads embeddings from any of the exported formats, chosen by the file's extension:
 * `.vec`/`.txt` word2vec text, `.bin` word2vec binary, `.arrow`/`.ipc`/`.feather` Arrow IPC, `.parquet`.
 *
 * @module
 */

import { commaList } from "../core/cli.ts";
import { DataFormatError, UsageError } from "../core/errors.ts";
import { describeOsError } from "../core/os_errors.ts";
import { readArrowEmbeddings } from "./arrow.ts";
import type { Embeddings } from "./embeddings.ts";
import { readParquetEmbeddings } from "./parquet.ts";
import { readWord2VecBinary, readWord2VecText } from "./word2vec.ts";

/**
 * The embedding file formats factorout writes.
 *
 * @example
 * ```ts
 * import type { EmbeddingFormat } from "./read.ts";
 * const f: EmbeddingFormat = "parquet";
 * ```
 */
export type EmbeddingFormat = "vec" | "bin" | "arrow" | "parquet";

/** Every {@link EmbeddingFormat}, in the order they are written. */
export const EMBEDDING_FORMATS: readonly EmbeddingFormat[] = ["vec", "bin", "arrow", "parquet"];

/**
 * The formats a job publishes, from `--formats` (`vec,bin`) or a list (a `--config` file's): each one
 * known, at least one, each once (`vec,vec` is `vec`: the version would list input.vec twice). The one
 * parser of `--formats` for every job (train's config, export, refresh); throws a {@link UsageError}
 * naming `flag` and the unknown format.
 *
 * @example
 * ```ts
 * import { parseFormats } from "./read.ts";
 * console.log(parseFormats("vec, parquet,vec")); // ["vec", "parquet"]
 * ```
 */
export function parseFormats(value: string | readonly unknown[], flag = "--formats"): EmbeddingFormat[] {
  const items: unknown[] = typeof value === "string" ? commaList(value) : [...value];
  const out: EmbeddingFormat[] = [];
  for (const x of items) {
    if (!(EMBEDDING_FORMATS as readonly unknown[]).includes(x)) {
      throw new UsageError(
        `${flag}: unknown format ${JSON.stringify(String(x))}; accepted: ${EMBEDDING_FORMATS.join(",")}`,
      );
    }
    if (!out.includes(x as EmbeddingFormat)) out.push(x as EmbeddingFormat);
  }
  if (out.length === 0) {
    throw new UsageError(`${flag} must name at least one of ${EMBEDDING_FORMATS.join(",")}`);
  }
  return out;
}

/**
 * The format of an embedding file from its extension; throws {@link UsageError} for an unknown one.
 *
 * @example
 * ```ts
 * import { formatOfPath } from "./read.ts";
 * formatOfPath("out/latest/input.parquet"); // "parquet"
 * ```
 */
export function formatOfPath(path: string): EmbeddingFormat {
  const ext = path.toLowerCase().match(/\.([a-z0-9]+)$/)?.[1] ?? "";
  switch (ext) {
    case "vec":
    case "txt":
      return "vec";
    case "bin":
      return "bin";
    case "arrow":
    case "ipc":
    case "feather":
      return "arrow";
    case "parquet":
      return "parquet";
  }
  throw new UsageError(
    `cannot tell the format of ${path} from its extension: use .vec/.txt, .bin, .arrow/.ipc/.feather or .parquet`,
  );
}

/**
 * Reads an embedding file in any supported format (see {@link formatOfPath}). Refuses
 * ({@link DataFormatError}, exit 5) a file without a row (a `0 5` header, an empty table): there is
 * nothing to evaluate or publish; and a word on two rows. A file that cannot be read (missing, a folder,
 * no permission) is an IoError "cannot open <path>: …" (lib/core/os_errors.ts; missing: exit 5).
 *
 * @example
 * ```ts
 * import { readEmbeddings } from "./read.ts";
 * import { writeWord2VecText } from "./word2vec.ts";
 * await writeWord2VecText("/tmp/any.vec", { words: ["a"], vectors: Float32Array.of(1, 2), d: 2 });
 * const { words, vectors, d } = await readEmbeddings("/tmp/any.vec");
 * ```
 */
export async function readEmbeddings(path: string): Promise<Embeddings> {
  const read = (): Promise<Embeddings> => {
    switch (formatOfPath(path)) {
      case "vec":
        return readWord2VecText(path);
      case "bin":
        return readWord2VecBinary(path);
      case "arrow":
        return readArrowEmbeddings(path);
      case "parquet":
        return readParquetEmbeddings(path);
    }
  };
  let e: Embeddings;
  try {
    e = await read();
  } catch (err) {
    // a missing file, a folder, no permission: one line naming the file (an IoError from below as it is)
    throw describeOsError(err, undefined, path, { reading: true }) ?? err;
  }
  if (e.words.length === 0) {
    throw new DataFormatError(path, `holds no vectors (0 rows): nothing to evaluate or publish`);
  }
  // a word twice has two vectors: lookups would take one silently, and a republished file would keep both
  const seen = new Map<string, number>();
  e.words.forEach((w, i) => {
    const first = seen.get(w);
    if (first !== undefined) {
      throw new DataFormatError(path, `row ${i + 1}: word ${JSON.stringify(w)} repeats row ${first + 1}`);
    }
    seen.set(w, i);
  });
  return e;
}
