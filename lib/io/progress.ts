/**
 * Progress of the corpus job: a plain object per update, rendered as one live line on a terminal or as
 * JSON lines otherwise (for logs and other programs).
 *
 * @module
 */

/** One progress update of {@link prepareCorpus}. *
 * @example
 * ```ts
 * import type { PrepareProgress } from "./progress.ts";
 * const onProgress = (p: PrepareProgress) => console.error(p.phase, p.tokens, p.tokensPerS);
 * ```
 */
export type PrepareProgress = {
  /** "count": first pass (vocabulary); "windows": second pass (shards); "done" */
  phase: "count" | "windows" | "done";
  /** input bytes read in this pass, and in total (0 for synthetic input) */
  bytes: number;
  totalBytes: number;
  /** tokens read in this pass, and the expected total when known (synthetic, limitTokens, or pass 2) */
  tokens: number;
  totalTokens: number;
  /** rows written and shards closed (pass 2) */
  rows: number;
  shards: number;
  /** seconds since the pass started, tokens per second, seconds left (NaN when unknown) */
  elapsedS: number;
  tokensPerS: number;
  etaS: number;
};

/**
 * Progress of one step of an engine that runs the corpus job as a few large queries (`--engine duckdb`):
 * the step's name and, while the engine reports it, the share of its input rows processed.
 *
 * @example
 * ```ts
 * import type { EngineStepProgress } from "./progress.ts";
 * const onStepProgress = (p: EngineStepProgress) => console.error(p.step, p.percent);
 * ```
 */
export type EngineStepProgress = {
  /** the engine, e.g. "duckdb" */
  engine: string;
  /** what the step does, e.g. "tokenising" */
  step: string;
  /** percent of the step's input rows processed; NaN while the engine reports none */
  percent: number;
  /** input rows processed and to process in this step (0 when unknown) */
  rows: number;
  totalRows: number;
  /** seconds since the step started, and since the job started */
  stepS: number;
  elapsedS: number;
};

/**
 * Formats an engine step's progress for people: `duckdb  tokenising  43.1%  rows 12.3M/28.6M  0:00:12`.
 *
 * @example
 * ```ts
 * import { formatStepProgress } from "./progress.ts";
 * console.log(formatStepProgress({ engine: "duckdb", step: "counting words", percent: 50, rows: 5e6,
 *   totalRows: 1e7, stepS: 3, elapsedS: 40 }));
 * ```
 */
export function formatStepProgress(p: EngineStepProgress): string {
  const pct = Number.isFinite(p.percent) ? `${p.percent.toFixed(1).padStart(5)}%` : "    ?%";
  const rows = p.totalRows > 0 ? ` rows ${human(p.rows)}/${human(p.totalRows)}` : "";
  return `${p.engine} ${p.step} ${pct}${rows} step ${clock(p.stepS)} total ${clock(p.elapsedS)}`;
}

/**
 * Formats progress for people: `windows  43.1%  12.3M tokens  1.52M tok/s  rows 98.1M  shards 12  ETA 0:42`.
 *
 * @example
 * ```ts
 * import { formatProgress } from "./progress.ts";
 * console.log(formatProgress({ phase: "count", bytes: 5e6, totalBytes: 1e7, tokens: 1e6, totalTokens: 0,
 *   rows: 0, shards: 0, elapsedS: 1, tokensPerS: 1e6, etaS: 1 }));
 * ```
 */
export function formatProgress(p: PrepareProgress): string {
  const frac = p.totalBytes > 0 ? p.bytes / p.totalBytes : p.totalTokens > 0 ? p.tokens / p.totalTokens : NaN;
  const pct = Number.isFinite(frac) ? `${(100 * Math.min(1, frac)).toFixed(1).padStart(5)}%` : "    ?%";
  const eta = Number.isFinite(p.etaS) ? ` ETA ${clock(p.etaS)}` : "";
  const bytes = p.totalBytes > 0 ? ` ${human(p.bytes)}B/${human(p.totalBytes)}B` : "";
  const rows = p.phase === "count" ? "" : ` rows ${human(p.rows)} shards ${p.shards}`;
  return `${p.phase.padEnd(7)} ${pct}${bytes} ${human(p.tokens)} tokens ${
    human(p.tokensPerS)
  } tok/s${rows}${eta}`;
}

function human(x: number): string {
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)}G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return `${Math.round(x)}`;
}

function clock(s: number): string {
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
}

/**
 * A progress sink writing to stderr: a live `\r` line when stderr is a terminal, one JSON object per
 * line otherwise. `update` takes the built-in engine's progress, `step` an engine step's
 * ({@link EngineStepProgress}). Call `.end()` to finish the live line.
 *
 * @example
 * ```ts
 * import { progressReporter } from "./progress.ts";
 * const rep = progressReporter();
 * // await prepareCorpus({ ..., onProgress: rep.update });
 * rep.end();
 * ```
 */
export function progressReporter(
  opts: { tty?: boolean; write?: (s: string) => void } = {},
): {
  update: (p: PrepareProgress) => void;
  step: (p: EngineStepProgress) => void;
  end: () => void;
} {
  const tty = opts.tty ?? Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  const write = opts.write ?? ((s: string) => {
    const b = enc.encode(s);
    let o = 0;
    while (o < b.length) o += Deno.stderr.writeSync(b.subarray(o));
  });
  let live = false;
  return {
    update(p) {
      if (tty) {
        write(`\r\x1b[2K${formatProgress(p)}`);
        live = true;
        if (p.phase === "done") {
          write("\n");
          live = false;
        }
      } else {
        write(JSON.stringify({ progress: p.phase, ...round(p) }) + "\n");
      }
    },
    step(p) {
      if (tty) {
        write(`\r\x1b[2K${formatStepProgress(p)}`);
        live = true;
      } else {
        const { engine, step, ...rest } = p;
        write(JSON.stringify({ progress: engine, step, ...round(rest) }) + "\n");
      }
    },
    end() {
      if (live) write("\n");
      live = false;
    },
  };
}

function round(p: Record<string, number | string>): Record<string, number | string> {
  const o: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(p)) {
    if (k === "phase") continue;
    o[k] = typeof v === "number" ? (Number.isFinite(v) ? Math.round(v * 1000) / 1000 : -1) : v;
  }
  return o;
}
