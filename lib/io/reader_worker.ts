/**
 * The worker of lib/io/worker_reader.ts: runs readExamples and posts its batches on `port` (arrays
 * transferred), counting them in sync[POSTED], never more than `ahead` beyond sync[TAKEN].
 *
 * @module
 */

import { readExamples, type ReadOptions } from "./read.ts";
import { type FromWorker, GROUP, POSTED, sendableError, TAKEN, type TimedBatch } from "./worker_reader.ts";

type Start = { paths: string[]; opts: ReadOptions; ahead: number; sync: Int32Array; port: MessagePort };

async function run({ paths, opts, ahead, sync, port }: Start): Promise<void> {
  const clock = { read: 0, shuffle: 0 };
  const post = (m: FromWorker, transfer: Transferable[] = []) => {
    port.postMessage(m, transfer);
    Atomics.add(sync, POSTED, 1);
    Atomics.notify(sync, POSTED);
  };
  // batches go in groups of GROUP per message: each message costs both threads a lock and, on a busy
  // machine, a reschedule
  let sent = 0, group: TimedBatch[] = [], transfer = new Set<ArrayBuffer>();
  const flush = () => {
    post({ type: "batches", batches: group }, [...transfer]);
    sent += group.length;
    group = [];
    transfer = new Set();
  };
  try {
    for await (const b of readExamples(paths, { ...opts, clock })) {
      for (let t = Atomics.load(sync, TAKEN); sent - t >= ahead; t = Atomics.load(sync, TAKEN)) {
        await Atomics.waitAsync(sync, TAKEN, t).value;
      }
      const arrays = [
        b.inputs.offsets,
        b.inputs.indices,
        b.inputs.values,
        b.targets.offsets,
        b.targets.indices,
      ];
      for (const a of [...arrays, b.targets.values]) transfer.add(a.buffer as ArrayBuffer);
      group.push({ ...b, times: { ...clock } });
      if (group.length >= GROUP) flush();
    }
    if (group.length) flush();
    post({ type: "end" });
  } catch (e) {
    post({ type: "error", error: sendableError(e) });
  }
}

(self as unknown as { onmessage: (ev: MessageEvent<Start>) => void }).onmessage = (ev) => {
  run(ev.data);
};
