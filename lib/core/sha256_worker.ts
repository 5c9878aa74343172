/**
 * The worker of lib/core/sha256_off_thread.ts: the SHA-256 of the pieces posted, in order. A piece is a
 * range of the shared ring; once hashed its slot is posted back as free. `end` posts the digest and starts
 * a new hash.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { FromSha256Worker, ToSha256Worker } from "./sha256_off_thread.ts";

let hash = createHash("sha256");
let ring: Uint8Array | undefined;
const scope = self as unknown as {
  postMessage(m: FromSha256Worker): void;
  onmessage: (e: MessageEvent<ToSha256Worker>) => void;
};
const reply = (m: FromSha256Worker) => scope.postMessage(m);

scope.onmessage = (e) => {
  const m = e.data;
  if (m.kind === "ring") ring = new Uint8Array(m.ring);
  else if (m.kind === "piece") {
    hash.update(ring!.subarray(m.at, m.at + m.length));
    reply({ kind: "free", slot: m.slot });
  } else {
    reply({ kind: "digest", digest: new Uint8Array(hash.digest()) });
    hash = createHash("sha256");
  }
};
