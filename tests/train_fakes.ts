/**
 * Test-only helpers for the trainer tests: an in-memory reader over a fixed list of examples with an exact
 * resume position, a float64 textbook head (dense W, the loss's dense() over all D outputs), a small
 * synthetic corpus with structure, and output layers that fail on chosen steps (for the backoff tests).
 *
 * @module
 */

import type { Arr } from "../lib/model/embedding_bag.ts";
import type { ModelHead } from "../lib/model/model.ts";
import type { SphericalFamilyLoss } from "../lib/losses/loss.ts";
import { SingularUpdateError } from "../lib/core/errors.ts";
import { createOutputLayer } from "../lib/output/create.ts";
import { resolveConfig, type TrainConfig } from "../lib/train/config.ts";
import type { CreateHead, OpenReader, ReaderBatch, Vocabulary } from "../lib/train/trainer.ts";
import type { SparseBatch } from "../lib/core/types.ts";

/** V words `w0` … `w{V-1}` with counts falling from 100 (to 1 from word 99 on): the vocabulary of {@link ringCorpus}. */
export function ringVocab(V: number): Vocabulary {
  return {
    words: Array.from({ length: V }, (_, i) => `w${i}`),
    counts: Array.from({ length: V }, (_, i) => Math.max(1, 100 - i)), // counts are ≥ 0 (Trainer.create)
  };
}

/** The trainer tests' small js configuration (dim 8, batch 16, 3 epochs, 10% held out, seed 5) with `over`. */
export function smallConfig(over: Partial<TrainConfig> = {}): TrainConfig {
  return resolveConfig({
    dim: 8,
    batch: 16,
    epochs: 3,
    lr: 0.003,
    lrMin: 0.0001,
    validation: 0.1,
    backend: "js",
    seed: 5,
    ...over,
  });
}

export type Example = { input: number[]; target: number[]; value: number[] };

/** CSR of the examples [s, e). */
export function toBatch(ex: Example[], s: number, e: number): { inputs: SparseBatch; targets: SparseBatch } {
  const mk = (pick: (x: Example) => [number[], number[]]) => {
    const offsets = new Int32Array(e - s + 1), idx: number[] = [], val: number[] = [];
    for (let i = s; i < e; i++) {
      const [a, b] = pick(ex[i]);
      idx.push(...a);
      val.push(...b);
      offsets[i - s + 1] = idx.length;
    }
    return { offsets, indices: Int32Array.from(idx), values: Float32Array.from(val) };
  };
  return { inputs: mk((x) => [x.input, x.input.map(() => 1)]), targets: mk((x) => [x.target, x.value]) };
}

/**
 * `reader`, raising a stop request (`stop.abort()`) while its `n`-th batch is used, as a signal handler would:
 * the trainer stops after that batch's step.
 */
export function stoppingReader(reader: OpenReader, n: number, stop: AbortController): OpenReader {
  return (paths, opts) =>
    (async function* () {
      let k = 0;
      for await (const b of reader(paths, opts)) {
        if (++k === n) stop.abort();
        yield b;
      }
    })();
}

/** A reader over `ex` (ignores paths), in order each epoch rotated by the epoch number; position = {epoch, next}. */
export function memoryReader(ex: Example[]): OpenReader {
  return async function* (_paths, opts): AsyncGenerator<ReaderBatch> {
    const pos = (opts.position ?? { epoch: 0, next: 0 }) as { epoch: number; next: number };
    for (let epoch = pos.epoch; epoch < opts.epochs; epoch++) {
      const rot = (epoch * 7) % ex.length;
      const order = [...ex.slice(rot), ...ex.slice(0, rot)];
      for (let s = epoch === pos.epoch ? pos.next : 0; s < order.length; s += opts.batchSize) {
        const e = Math.min(order.length, s + opts.batchSize);
        const { inputs, targets } = toBatch(order, s, e);
        const last = e >= order.length;
        yield {
          inputs,
          targets,
          epoch,
          size: e - s,
          position: last ? { epoch: epoch + 1, next: 0 } : { epoch, next: e },
        };
      }
    }
  };
}

/** cbow examples over V words: the context of word c is 4 words drawn from c±1, c±2, c±3 (mod V). */
export function ringCorpus(V: number, n: number, seed = 1): Example[] {
  let x = seed;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296;
  const out: Example[] = [];
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rnd() * V);
    const ctx = [1, 2, 3, 4].map(() => (c + V + (rnd() < 0.5 ? -1 : 1) * (1 + Math.floor(rnd() * 3))) % V);
    out.push({ input: ctx, target: [c], value: [1] });
  }
  return out;
}

/** The textbook output layer in float64: o = W h over all D, the loss's dense(). */
export class DenseHead64 implements ModelHead {
  constructor(
    readonly D: number,
    readonly d: number,
    readonly W: Float64Array,
    readonly loss: SphericalFamilyLoss,
  ) {}

  #run(H: Arr, Y: SparseBatch, eta: number): { loss: number; gradH: Float64Array } {
    const { D, d, W } = this, m = Y.offsets.length - 1;
    const gradH = new Float64Array(m * d), o = new Float64Array(D), dO = new Float64Array(D);
    const grads: Float64Array[] = [];
    let L = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < D; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += W[j * d + k] * H[i * d + k];
        o[j] = s;
      }
      // merge repeated targets
      const acc = new Map<number, number>();
      for (let k = Y.offsets[i]; k < Y.offsets[i + 1]; k++) {
        acc.set(Y.indices[k], (acc.get(Y.indices[k]) ?? 0) + Y.values[k]);
      }
      const idx = Int32Array.from(acc.keys()), y = Float64Array.from(acc.values());
      L += this.loss.dense(o, idx, y, idx.length, dO);
      for (let j = 0; j < D; j++) for (let k = 0; k < d; k++) gradH[i * d + k] += dO[j] * W[j * d + k];
      grads.push(Float64Array.from(dO));
    }
    if (eta > 0) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < D; j++) {
          for (let k = 0; k < d; k++) W[j * d + k] -= eta * grads[i][j] * H[i * d + k];
        }
      }
    }
    return { loss: L, gradH };
  }

  evaluate(H: Arr, Y: SparseBatch) {
    return Promise.resolve(this.#run(H, Y, 0));
  }

  step(H: Arr, Y: SparseBatch, eta: number) {
    return Promise.resolve(this.#run(H, Y, eta));
  }
}

/** Asserts |a − b| ≤ tol. */
export function assertClose(a: number, b: number, tol: number, what = ""): void {
  if (!(Math.abs(a - b) <= tol)) {
    throw new Error(`${what}: ${a} vs ${b} differ by ${Math.abs(a - b)} > ${tol}`);
  }
}

/** What {@link flakyHeads} injects: on which calls of `step` (1-based, over every head it made) and how. */
export type Flaky = {
  /** step calls refused with SingularUpdateError before the layer changes (like the guard) */
  refuse?: (call: number) => boolean;
  /** step calls whose loss comes back NaN after the layer has stepped (its state changed) */
  nan?: (call: number) => boolean;
  /** added to the validation (evaluate) loss per example, given the number of epochs logged so far */
  evalBias?: () => number;
  /** the qDrift that diagnostics({ full: true }) reports instead of the real one (undefined: the real one) */
  drift?: () => number | undefined;
  /** refresh() calls */
  refreshes?: number;
  /** calls so far, and the eta of each */
  calls: number;
  etas: number[];
  /** heads created (a rollback creates one) */
  created: number;
};

/** A CreateHead making real (js) output layers whose steps fail as `plan` says. */
export function flakyHeads(plan: Flaky): CreateHead {
  return async (opts) => {
    const layer = await createOutputLayer({ ...opts, log: () => {} });
    plan.created++;
    const step = layer.step.bind(layer), evaluate = layer.evaluate.bind(layer);
    layer.step = async (H, Y, eta) => {
      const call = ++plan.calls;
      plan.etas.push(eta);
      if (plan.refuse?.(call)) throw new SingularUpdateError(`step ${call}: injected refusal`);
      const r = await step(H, Y, eta);
      return plan.nan?.(call) ? { ...r, loss: NaN } : r;
    };
    const diagnostics = layer.diagnostics.bind(layer), refresh = layer.refresh?.bind(layer);
    layer.diagnostics = async (o) => {
      const r = await diagnostics(o);
      const q = o?.full ? plan.drift?.() : undefined;
      return q === undefined ? r : { ...r, qDrift: q };
    };
    if (refresh) {
      layer.refresh = () => {
        plan.refreshes = (plan.refreshes ?? 0) + 1;
        refresh();
      };
    }
    layer.evaluate = async (H, Y) => {
      const r = await evaluate(H, Y);
      return plan.evalBias ? { ...r, loss: r.loss + plan.evalBias() * (Y.offsets.length - 1) } : r;
    };
    return layer;
  };
}
