/**
 * The checkpoint writer's worker (checkpoint_writer.ts): writes each request with writeCheckpoint, lowers
 * the in-flight counter, and answers with its id (and error).
 *
 * @module
 */

import { writeCheckpoint } from "./checkpoint.ts";
import { sendableError } from "../core/worker_errors.ts";
import type { WriteReply, WriteRequest } from "./checkpoint_writer.ts";

const scope = self as unknown as {
  postMessage(m: WriteReply): void;
  onmessage: (ev: MessageEvent<WriteRequest>) => void;
};

scope.onmessage = async (ev) => {
  const m = ev.data;
  let reply: WriteReply = { id: m.id };
  try {
    await writeCheckpoint(m.path, { meta: m.meta, arrays: m.arrays }, m.reuse ? { reuse: m.reuse } : {});
  } catch (e) {
    reply = { id: m.id, error: sendableError(e) };
  }
  // lowered before the answer: the training thread reads it between steps, the answer at a turn
  Atomics.sub(m.flight, 0, 1);
  scope.postMessage(reply);
};
