/**
 * A worker of the gemm pool (pool.ts; a node:worker_threads worker, so that the pool can unref it and a
 * process that forgets close() still exits): binds OpenBLAS's cblas calls itself, then waits on the shared
 * control block and runs its part of each operation (pool_ops.ts runPart). On OP_RECEIVE it returns to
 * its event loop to take the shared buffers and kernel modules posted to it (a kernel module is imported
 * here and its `createKernel(init)` called once; pool_ops.ts PoolKernel). OpenBLAS runs on one thread during pool
 * operations (the pool sets it), so the parts run side by side.
 *
 * @module
 */

import { parentPort } from "node:worker_threads";
import { SYMBOLS } from "./blas.ts";
import {
  claimParts,
  CTL_ASLEEP,
  CTL_DONE,
  CTL_ERR,
  CTL_HOLD,
  CTL_OP,
  CTL_SEQ,
  HOLD_MAX_IDLE_MS,
  type KernelSpec,
  OP_EXIT,
  OP_RECEIVE,
  PART_TIME_SLOTS,
  type PartSymbols,
  seqTag,
  type SharedViews,
} from "./pool_ops.ts";

type Init = {
  path: string;
  ctl: SharedArrayBuffer;
  par: SharedArrayBuffer;
  spin: number;
  bufs: SharedArrayBuffer[];
  kernels: KernelSpec[];
  /** the part times of every thread (pool.ts partTimes), and this worker's row */
  times: SharedArrayBuffer | null;
  thread: number;
};
type Receive = { bufs: SharedArrayBuffer[]; kernels?: KernelSpec[] };

let sym: PartSymbols | null = null;
let ctl: Int32Array, par: Float64Array, spin = 0, seen = 0;
const views: SharedViews = { f32: [], f64: [], i32: [], kernels: [] };

function done(): void {
  Atomics.add(ctl, CTL_DONE, 1);
  Atomics.notify(ctl, CTL_DONE);
}

/** Runs parts until told to receive buffers. */
function loop(): void {
  for (;;) {
    let s = Atomics.load(ctl, CTL_SEQ);
    for (let i = 0; s === seen && i < spin; i++) s = Atomics.load(ctl, CTL_SEQ);
    // held (pool.ts hold): keep polling for the next operation of the step, up to HOLD_MAX_IDLE_MS
    if (s === seen && Atomics.load(ctl, CTL_HOLD) === 1) {
      const t0 = performance.now();
      for (let i = 1; s === seen; i++) {
        s = Atomics.load(ctl, CTL_SEQ);
        if (
          (i & 1023) === 0 && (Atomics.load(ctl, CTL_HOLD) !== 1 || performance.now() - t0 > HOLD_MAX_IDLE_MS)
        ) {
          break;
        }
      }
    }
    if (s === seen) {
      Atomics.add(ctl, CTL_ASLEEP, 1);
      Atomics.wait(ctl, CTL_SEQ, seen);
      Atomics.sub(ctl, CTL_ASLEEP, 1);
      s = Atomics.load(ctl, CTL_SEQ);
      if (s === seen) continue;
    }
    seen = s;
    const op = Atomics.load(ctl, CTL_OP);
    if (op === OP_RECEIVE) return; // the buffers arrive as a message; done() is sent after them
    if (op === OP_EXIT) {
      // a worker blocked in Atomics.wait does not see terminate(): it returns to its event loop first
      done();
      return;
    }
    claimParts(sym!, views, ctl, par, seqTag(s));
  }
}

parentPort!.on("message", async (m: Init | Receive) => {
  if ("path" in m) {
    const lib = Deno.dlopen(m.path, {
      cblas_sgemm: SYMBOLS.cblas_sgemm,
      cblas_dgemm: SYMBOLS.cblas_dgemm,
      cblas_strsm: SYMBOLS.cblas_strsm,
      cblas_saxpy: SYMBOLS.cblas_saxpy,
      cblas_sdot: SYMBOLS.cblas_sdot,
      cblas_ssyr2k: SYMBOLS.cblas_ssyr2k,
      cblas_somatcopy: SYMBOLS.cblas_somatcopy,
      cblas_dgemv: SYMBOLS.cblas_dgemv,
      cblas_dsyrk: SYMBOLS.cblas_dsyrk,
    });
    sym = lib.symbols as unknown as PartSymbols;
    ctl = new Int32Array(m.ctl);
    par = new Float64Array(m.par);
    spin = m.spin;
    seen = Atomics.load(ctl, CTL_SEQ);
    if (m.times) views.times = new Float64Array(m.times, m.thread * PART_TIME_SLOTS * 8, PART_TIME_SLOTS);
  }
  for (const b of m.bufs) {
    views.f32.push(new Float32Array(b));
    views.f64.push(b.byteLength % 8 === 0 ? new Float64Array(b) : null);
    views.i32.push(new Int32Array(b));
  }
  for (const k of m.kernels ?? []) {
    try {
      const mod = await import(k.url);
      views.kernels[k.id] = mod.createKernel(k.init);
    } catch (e) {
      // the caller, blocked until done(), sees the flag and throws; the reason goes to stderr
      console.error(`factorout pool worker: kernel ${k.url}: ${(e as Error).message}`);
      Atomics.store(ctl, CTL_ERR, 1);
    }
  }
  // the operation now is the OP_RECEIVE (or start) that the caller waits on until done(): the next one is
  // after it, even when the OP_RECEIVE was read with the sequence number of an operation before it (one the
  // caller ran alone while this worker was between its loads), which would otherwise be taken again
  seen = Atomics.load(ctl, CTL_SEQ);
  done();
  loop();
});
