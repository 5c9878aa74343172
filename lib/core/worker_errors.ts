/**
 * Errors that cross threads: a worker posts {@link sendableError}, the thread that started it throws
 * {@link rebuiltError}, the same class with the same one-line message and fields, so the error keeps its
 * exit code (lib/core/exit_codes.ts). Used by the corpus reader's worker and the checkpoint writer's.
 *
 * @module
 */

import {
  BackendUnavailableError,
  DataFormatError,
  DivergenceError,
  IoError,
  SingularMatrixError,
  SingularUpdateError,
  UsageError,
} from "./errors.ts";

/**
 * An error as it crosses threads: its class, message, stack and own plain fields.
 *
 * @example
 * ```ts
 * import { sendableError } from "./worker_errors.ts";
 * console.log(sendableError(new RangeError("x")).kind); // "RangeError"
 * ```
 */
export type SentError = { kind: string; message: string; stack?: string; fields: Record<string, unknown> };

// The classes an error is rebuilt as, by name: ours, then Deno's OS errors (their class decides exit codes).
const OURS: Record<string, { prototype: Error }> = {
  DataFormatError,
  UsageError,
  IoError,
  DivergenceError,
  SingularUpdateError,
  SingularMatrixError,
  BackendUnavailableError,
  RangeError,
  TypeError,
};

/**
 * `e` as plain data for postMessage (see {@link rebuiltError}).
 *
 * @example
 * ```ts
 * import { rebuiltError, sendableError } from "./worker_errors.ts";
 * import { UsageError } from "../core/errors.ts";
 * console.log(rebuiltError(sendableError(new UsageError("bad"))) instanceof UsageError); // true
 * ```
 */
export function sendableError(e: unknown): SentError {
  if (!(e instanceof Error)) return { kind: "Error", message: String(e), fields: {} };
  let kind = Object.keys(OURS).find((k) => e.constructor === OURS[k].prototype.constructor);
  kind ??= Object.keys(Deno.errors).find((k) =>
    e instanceof (Deno.errors as unknown as Record<string, ErrorConstructor>)[k]
  );
  const fields: Record<string, unknown> = { name: e.name };
  for (const [k, v] of Object.entries(e)) {
    if (v === null || ["string", "number", "boolean"].includes(typeof v)) fields[k] = v;
  }
  return { kind: kind ?? "Error", message: e.message, ...(e.stack ? { stack: e.stack } : {}), fields };
}

/**
 * The error {@link sendableError} describes, of the same class (when known) with the same message and
 * fields; its stack is the worker's, marked `in <where>`.
 *
 * @example
 * ```ts
 * import { rebuiltError } from "./worker_errors.ts";
 * console.log(rebuiltError({ kind: "NotFound", message: "gone", fields: {} }) instanceof Deno.errors.NotFound); // true
 * ```
 */
export function rebuiltError(s: SentError, where = "the worker"): Error {
  const cls = OURS[s.kind] ?? (Deno.errors as unknown as Record<string, { prototype: Error }>)[s.kind];
  const e = new Error(s.message);
  if (cls) Object.setPrototypeOf(e, cls.prototype);
  Object.assign(e, s.fields);
  if (s.stack) e.stack = `${s.stack}\n    (in ${where})`;
  return e;
}
