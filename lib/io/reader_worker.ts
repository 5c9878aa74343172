/**
 * The worker of lib/io/worker_reader.ts: runs readExamples and posts its batches on `port` in groups (each
 * group's arrays packed into one transferred buffer, packGroup), counting the messages in sync[POSTED],
 * never more than `ahead` batches beyond sync[TAKEN].
 *
 * @module
 */

import { readExamples, type ReadOptions } from "./read.ts";
import { type FromWorker, packGroup, POSTED, TAKEN, type TimedBatch } from "./worker_reader.ts";
import { sendableError } from "../core/worker_errors.ts";

type Start = {
  paths: string[];
  opts: ReadOptions;
  group: number;
  ahead: number;
  sync: Int32Array;
  port: MessagePort;
};

async function run({ paths, opts, group: perGroup, ahead, sync, port }: Start): Promise<void> {
  const clock = { read: 0, shuffle: 0 };
  const post = (m: FromWorker, transfer: Transferable[] = []) => {
    port.postMessage(m, transfer);
    Atomics.add(sync, POSTED, 1);
    Atomics.notify(sync, POSTED);
  };
  // batches go in groups of perGroup per message (worker_reader.ts groupBatches): each message costs both
  // threads a lock and, on a busy machine, a reschedule; and each transferred object costs the receiver,
  // hence one buffer per group
  let sent = 0, group: TimedBatch[] = [];
  const flush = () => {
    const packed = packGroup(group);
    post({ type: "batches", group: packed }, [packed.buf]);
    sent += group.length;
    group = [];
  };
  try {
    for await (const b of readExamples(paths, { ...opts, clock })) {
      for (let t = Atomics.load(sync, TAKEN); sent - t >= ahead; t = Atomics.load(sync, TAKEN)) {
        await Atomics.waitAsync(sync, TAKEN, t).value;
      }
      group.push({ ...b, times: { ...clock } });
      if (group.length >= perGroup) flush();
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
