/**
 * Training progress: one live line on a terminal, like fastText's
 * (`Progress:  42.1%  ex/sec:   81234  lr:  0.029000  loss:  5.123456  ETA:   0h 1m12s`), or JSON lines
 * (`{"event":"progress",…}`) for schedulers and log collectors when the output is not a terminal. Epochs are
 * counted from 1 in every line a job writes (`progress`, `epoch`, `backoff`, `best`): the `epoch` of a
 * progress line is the epoch in progress, the one whose `epoch` event comes at its end.
 *
 * @module
 */

import { roundTo } from "../core/finite.ts";

/**
 * One progress sample.
 *
 * @example
 * ```ts
 * import type { ProgressSample } from "./progress.ts";
 * const s: ProgressSample = { step: 10, epoch: 1, examples: 320, total: 1000, lr: 0.05, loss: 5.2, seconds: 1 };
 * ```
 */
export type ProgressSample = {
  step: number;
  /** the epoch in progress, counted from 1 as the `epoch` event counts it (the last one once the run is done) */
  epoch: number;
  /** examples done in this run */
  examples: number;
  /** examples planned for this run */
  total: number;
  lr: number;
  /** running mean loss per example */
  loss: number;
  /** seconds since the run (or the resume) started */
  seconds: number;
  /** examples done when this process started (non-zero after a resume) */
  startExamples?: number;
  /** seconds per stage so far (lib/train/stages.ts), read only when a JSON line is written */
  stages?: () => Record<string, number>;
};

/**
 * Where progress goes: `live` rewrites one terminal line, `json` prints a JSON line per interval, `none`
 * prints nothing.
 *
 * @example
 * ```ts
 * import { ProgressReporter } from "./progress.ts";
 * const p = new ProgressReporter("json", 5, (line) => console.log(line));
 * p.update({ step: 1, epoch: 1, examples: 10, total: 100, lr: 0.1, loss: 3, seconds: 0.5 }, true);
 * ```
 */
export class ProgressReporter {
  #last = -Infinity;
  #live = false;

  /**
   * A reporter writing to `write`.
   *
   * @param mode live | json | none
   * @param intervalSeconds seconds between lines (live: between redraws)
   * @param write the sink (live mode writes without newline)
   * @param sharesLog `write` ends in the same stream as the job's log (`job > log 2>&1`, a terminal):
   *   see {@link ProgressReporter.carriesEvents}. A function is asked each time: a best-effort `write` whose
   *   stream failed (lib/train/run.ts bestEffortOut) carries nothing any more, and says false from then on
   */
  constructor(
    readonly mode: "live" | "json" | "none",
    readonly intervalSeconds: number,
    readonly write: (text: string) => void,
    readonly sharesLog: boolean | (() => boolean) = false,
  ) {}

  /**
   * Whether the events {@link ProgressReporter.note} reports reach the log's own stream here, so that the
   * log leaves them out: each epoch's losses and each backoff show once in a job's merged output, not as a
   * JSON line from the log and again as the progress output's line.
   */
  get carriesEvents(): boolean {
    if (this.mode === "none") return false;
    return typeof this.sharesLog === "function" ? this.sharesLog() : this.sharesLog;
  }

  /** Reports a sample when the interval has passed (or when forced). */
  update(s: ProgressSample, force = false): void {
    if (this.mode === "none") return;
    if (!force && s.seconds - this.#last < this.intervalSeconds) return;
    this.#last = s.seconds;
    const done = s.total > 0 ? Math.min(1, s.examples / s.total) : 0;
    const rate = s.seconds > 0 ? (s.examples - (s.startExamples ?? 0)) / s.seconds : 0;
    const eta = rate > 0 ? Math.max(0, (s.total - s.examples) / rate) : NaN;
    if (this.mode === "json") {
      this.write(
        JSON.stringify({
          event: "progress",
          step: s.step,
          epoch: s.epoch,
          done: roundTo(done, 4),
          examples: s.examples,
          examplesPerSecond: Math.round(rate),
          lr: roundTo(s.lr, 6),
          loss: roundTo(s.loss, 6),
          etaSeconds: Number.isFinite(eta) ? Math.round(eta) : null,
          ...(s.stages ? { stageSeconds: s.stages() } : {}),
        }) + "\n",
      );
      return;
    }
    this.#live = true;
    this.write(
      `\rProgress: ${(100 * done).toFixed(1).padStart(5)}%  ex/sec: ${
        Math.round(rate).toString().padStart(7)
      }` +
        `  lr: ${s.lr.toFixed(6)}  loss: ${s.loss.toFixed(6)}  ETA: ${formatEta(eta)}`,
    );
  }

  /**
   * Reports an event once, outside the interval (an epoch's losses, a backoff): `json` writes the event as
   * a JSON line, `live` ends the live line and writes `text` on its own line.
   */
  note(event: Record<string, unknown>, text: string): void {
    if (this.mode === "none") return;
    if (this.mode === "json") {
      this.write(JSON.stringify(event) + "\n");
      return;
    }
    this.finish();
    this.write(text + "\n");
  }

  /** Ends the live line (a newline) if one was drawn. */
  finish(): void {
    if (this.#live) this.write("\n");
    this.#live = false;
  }
}

/**
 * The `epoch` event and its line: the epoch's training loss, and its validation loss against the best
 * epoch's (`best`, already updated when this epoch is `better`).
 *
 * @example
 * ```ts
 * import { epochNote } from "./progress.ts";
 * const n = epochNote({ epoch: 1, epochs: 2, step: 9, trainLoss: 2, validationLoss: 3, best: { epoch: 1, validationLoss: 3 }, better: true });
 * console.log(n.text); // "epoch 1/2: train loss 2.0000, validation loss 3.0000 (best so far)"
 * ```
 */
export function epochNote(o: {
  epoch: number;
  epochs: number;
  step: number;
  trainLoss: number;
  validationLoss?: number;
  best?: { epoch: number; validationLoss: number };
  better: boolean;
}): { event: Record<string, unknown>; text: string } {
  const val = o.validationLoss;
  return {
    event: {
      event: "epoch",
      epoch: o.epoch,
      step: o.step,
      trainLoss: o.trainLoss,
      ...(val === undefined ? {} : { validationLoss: val, bestEpoch: o.best?.epoch }),
    },
    text: `epoch ${o.epoch}/${o.epochs}: train loss ${fmt4(o.trainLoss)}` +
      (val === undefined ? "" : `, validation loss ${fmt4(val)}` +
        (o.better
          ? " (best so far)"
          : ` (epoch ${o.best!.epoch}'s ${fmt4(o.best!.validationLoss)} is lower)`)),
  };
}

/**
 * x with four decimals (or its name when not finite).
 *
 * @example
 * ```ts
 * import { fmt4 } from "./progress.ts";
 * console.log(fmt4(1 / 3)); // "0.3333"
 * ```
 */
export function fmt4(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : String(x);
}

/**
 * fastText-style ETA ("   0h 1m12s"); "?" when unknown.
 *
 * @example
 * ```ts
 * import { formatEta } from "./progress.ts";
 * formatEta(72); // "   0h 1m12s"
 * ```
 */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return "   ?h ?m ?s";
  const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return `${String(h).padStart(4)}h${String(m).padStart(2)}m${String(s % 60).padStart(2)}s`;
}
