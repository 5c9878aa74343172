/**
 * Worker script of {@link ParquetDecoders}: opens a Parquet file (reading only the byte ranges it needs,
 * through a `Blob` whose `slice` reads the file) and decodes row groups with parquet-wasm off the main
 * thread, answering each with the row group as Arrow IPC stream bytes (transferred, not copied).
 *
 * Messages in: `{ id, type: "open", path }` → `{ id, groupRows: number[], meta: [key, value][] }`;
 * `{ id, type: "read", path, group, rows }` → `{ id, ipc: Uint8Array }`; errors → `{ id, error }`.
 * A WebAssembly trap (parquet-wasm panics on some corrupt data) kills the worker; the main thread
 * reports it for the pending request.
 *
 * @module
 */

import * as pq from "parquet-wasm";

type Open = {
  file: Deno.FsFile;
  pf: pq.ParquetFile;
  path: string;
  groupRows: number[];
  /** the Arrow schema's metadata (row groups read alone come without it) */
  meta: [string, string][];
};
let current: Open | null = null;

function fileBlob(file: Deno.FsFile, size: number): Blob {
  return {
    size,
    type: "",
    slice(start = 0, end = size): Blob {
      const s = Math.max(0, start < 0 ? size + start : start), e = Math.min(size, end < 0 ? size + end : end);
      const buf = new Uint8Array(Math.max(0, e - s));
      file.seekSync(s, Deno.SeekMode.Start);
      let o = 0;
      while (o < buf.length) {
        const n = file.readSync(buf.subarray(o));
        if (n === null || n === 0) break;
        o += n;
      }
      return new Blob([buf.subarray(0, o)]);
    },
  } as unknown as Blob;
}

function closeCurrent(): void {
  if (!current) return;
  try {
    current.pf.free();
  } catch { /* already freed */ }
  try {
    current.file.close();
  } catch { /* already closed */ }
  current = null;
}

async function openFile(path: string): Promise<Open> {
  if (current?.path === path) return current;
  closeCurrent();
  const file = Deno.openSync(path);
  try {
    const size = file.statSync().size;
    if (size < 12) throw new Error(`${size} bytes is too short for a Parquet file`);
    const blob = fileBlob(file, size);
    const tail = new TextDecoder().decode(new Uint8Array(await blob.slice(size - 4, size).arrayBuffer()));
    if (tail !== "PAR1") throw new Error("no closing PAR1 magic (truncated file?)");
    const pf = await pq.ParquetFile.fromFile(blob);
    const md = pf.metadata();
    const groupRows: number[] = [];
    for (let g = 0; g < md.numRowGroups(); g++) groupRows.push(md.rowGroup(g).numRows());
    const sm = pf.schema().metadata() as unknown;
    const meta = sm instanceof Map ? [...sm.entries()] : Object.entries((sm ?? {}) as Record<string, string>);
    current = { file, pf, path, groupRows, meta: meta.map(([k, v]) => [String(k), String(v)]) };
    return current;
  } catch (e) {
    file.close();
    throw e;
  }
}

const scope = self as unknown as {
  postMessage(m: unknown, t?: Transferable[]): void;
  onmessage: ((ev: MessageEvent) => void) | null;
};
const post = scope.postMessage.bind(scope);

async function handle(
  m: { id: number; type: "open" | "read" | "close"; path?: string; group?: number; rows?: number },
) {
  try {
    if (m.type === "open") {
      const f = await openFile(m.path!);
      post({ id: m.id, groupRows: f.groupRows, meta: f.meta });
    } else if (m.type === "read") {
      const f = await openFile(m.path!);
      const t = await f.pf.read({ rowGroups: [m.group!], batchSize: Math.max(1, m.rows!) });
      const ipc = t.intoIPCStream();
      post({ id: m.id, ipc }, [ipc.buffer as ArrayBuffer]);
    } else {
      closeCurrent();
      post({ id: m.id });
    }
  } catch (e) {
    // the errno travels too, so that the reader can tell an unreadable file from a corrupt one
    const code = (e as { code?: unknown })?.code;
    post({
      id: m.id,
      error: e instanceof Error ? e.message : String(e),
      ...(typeof code === "string" ? { code } : {}),
    });
  }
}

// one request at a time: a file is never closed or switched while a read of it is in flight
let chain: Promise<void> = Promise.resolve();
let inFlight = -1;
scope.onmessage = (ev: MessageEvent) => {
  chain = chain.then(async () => {
    inFlight = ev.data.id;
    await handle(ev.data);
    inFlight = -1;
  });
};

// A WebAssembly trap inside parquet-wasm's async code escapes `handle`: answer the request in flight
// with one line instead of letting the runtime print a WASM stack, then end this worker (its WASM
// instance is unusable after a trap; the pool starts a fresh one).
const onFatal = (ev: Event, what: unknown) => {
  ev.preventDefault();
  const msg = what instanceof Error ? `${what.name}: ${what.message}` : String(what);
  post({ id: inFlight, error: `the Parquet decoder failed (${msg}): corrupt data`, fatal: true });
  closeCurrent();
  (self as unknown as { close(): void }).close();
};
self.addEventListener("error", (ev) => onFatal(ev, (ev as ErrorEvent).error ?? (ev as ErrorEvent).message));
self.addEventListener("unhandledrejection", (ev) => onFatal(ev, (ev as PromiseRejectionEvent).reason));
