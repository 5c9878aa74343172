/**
 * A dense hidden layer y = act(A x + b) with plain-SGD updates, for minibatches.
 *
 * Layout: A is out×in row-major, b has out entries; a batch X is m×ldx (first `in` columns used),
 * Y is m×ldy (first `out` columns).
 *
 * @module
 */

import type { LinAlgBackend } from "../linalg/backend.ts";
import type { Arr } from "./embedding_bag.ts";

/**
 * The hidden layers' activation functions.
 *
 * @example
 * ```ts
 * import type { Activation } from "./dense.ts";
 * const a: Activation = "relu";
 * ```
 */
export type Activation = "relu" | "tanh";

/**
 * A fully connected layer with an activation. `forward` keeps nothing: `backward` is given the same X
 * and the Y that forward wrote (activations are differentiated from their outputs). With a backend `la`
 * and float32 arrays the three products run as sgemm calls; otherwise (and as the reference the tests
 * compare against) as plain loops.
 *
 * @example
 * ```ts
 * import { DenseLayer } from "./dense.ts";
 * const layer = new DenseLayer(3, 2, "tanh", new Float32Array(6).fill(0.1), new Float32Array(2));
 * const X = Float32Array.of(1, 2, 3), Y = new Float32Array(2), gX = new Float32Array(3);
 * layer.forward(X, 1, Y);
 * layer.backward(X, Y, Float32Array.of(1, -1), 1, 0.01, gX);
 * ```
 */
export class DenseLayer {
  /** gradient w.r.t. the pre-activation, m×out (grown on demand). */
  #gz: Float64Array = new Float64Array(0);
  #gz32: Float32Array = new Float32Array(0);

  /**
   * A layer over the given (kept, not copied) weights.
   *
   * @param inSize input width
   * @param outSize output width
   * @param activation relu or tanh
   * @param A out×in weights (kept)
   * @param b out biases (kept)
   */
  constructor(
    readonly inSize: number,
    readonly outSize: number,
    readonly activation: Activation,
    readonly A: Arr,
    readonly b: Arr,
    readonly la?: LinAlgBackend,
  ) {
    if (A.length !== inSize * outSize || b.length !== outSize) {
      throw new RangeError(`DenseLayer ${inSize}→${outSize}: A has ${A.length}, b has ${b.length} elements`);
    }
  }

  /** Y (m×ldy) ← act(X Aᵀ + b), X m×ldx. */
  forward(X: Arr, m: number, Y: Arr, ldx = this.inSize, ldy = this.outSize): void {
    const n = this.inSize, p = this.outSize, A = this.A, b = this.b, relu = this.activation === "relu";
    if (this.la && X instanceof Float32Array && Y instanceof Float32Array && A instanceof Float32Array) {
      this.la.sgemm(false, true, m, p, n, 1, X, ldx, A, n, 0, Y, ldy);
      for (let i = 0; i < m; i++) {
        const y = i * ldy;
        for (let o = 0; o < p; o++) {
          const z = Y[y + o] + b[o];
          Y[y + o] = relu ? (z > 0 ? z : 0) : Math.tanh(z);
        }
      }
      return;
    }
    for (let i = 0; i < m; i++) {
      const x = i * ldx, y = i * ldy;
      for (let o = 0; o < p; o++) {
        let z = b[o];
        const a = o * n;
        for (let j = 0; j < n; j++) z += A[a + j] * X[x + j];
        Y[y + o] = relu ? (z > 0 ? z : 0) : Math.tanh(z);
      }
    }
  }

  /**
   * Given ∂L/∂Y (m×ldg), writes ∂L/∂X into gradX (m×ldx, when not null) from the weights before the
   * update, then A -= lr·gZᵀX and b -= lr·Σ gZ.
   */
  backward(
    X: Arr,
    Y: Arr,
    gradY: Arr,
    m: number,
    lr: number,
    gradX: Arr | null,
    ldx = this.inSize,
    ldy = this.outSize,
    ldg = this.outSize,
  ): void {
    const n = this.inSize, p = this.outSize, A = this.A, b = this.b, relu = this.activation === "relu";
    if (
      this.la && X instanceof Float32Array && A instanceof Float32Array &&
      (!gradX || gradX instanceof Float32Array)
    ) {
      this.#backwardBlas(this.la, X, Y, gradY, m, lr, gradX, ldx, ldy, ldg);
      return;
    }
    if (this.#gz.length < m * p) this.#gz = new Float64Array(m * p);
    const gz = this.#gz;
    for (let i = 0; i < m; i++) {
      for (let o = 0; o < p; o++) {
        const y = Y[i * ldy + o], g = gradY[i * ldg + o];
        gz[i * p + o] = relu ? (y > 0 ? g : 0) : g * (1 - y * y);
      }
    }
    if (gradX) {
      for (let i = 0; i < m; i++) {
        const x = i * ldx;
        gradX.fill(0, x, x + n);
        for (let o = 0; o < p; o++) {
          const g = gz[i * p + o];
          if (g === 0) continue;
          const a = o * n;
          for (let j = 0; j < n; j++) gradX[x + j] += g * A[a + j];
        }
      }
    }
    for (let i = 0; i < m; i++) {
      const x = i * ldx;
      for (let o = 0; o < p; o++) {
        const g = lr * gz[i * p + o];
        if (g === 0) continue;
        const a = o * n;
        for (let j = 0; j < n; j++) A[a + j] -= g * X[x + j];
        b[o] -= g;
      }
    }
  }

  /** backward with sgemm: gZ (m×out) → gradX = gZ·A, A −= lr·gZᵀX, b −= lr·Σ gZ. */
  #backwardBlas(
    la: LinAlgBackend,
    X: Float32Array,
    Y: Arr,
    gradY: Arr,
    m: number,
    lr: number,
    gradX: Float32Array | null,
    ldx: number,
    ldy: number,
    ldg: number,
  ): void {
    const n = this.inSize,
      p = this.outSize,
      A = this.A as Float32Array,
      b = this.b,
      relu = this.activation === "relu";
    if (this.#gz32.length < m * p) this.#gz32 = new Float32Array(m * p);
    const gz = this.#gz32;
    for (let i = 0; i < m; i++) {
      for (let o = 0; o < p; o++) {
        const y = Y[i * ldy + o], g = gradY[i * ldg + o];
        gz[i * p + o] = relu ? (y > 0 ? g : 0) : g * (1 - y * y);
      }
    }
    if (gradX) la.sgemm(false, false, m, n, p, 1, gz, p, A, n, 0, gradX, ldx);
    la.sgemm(true, false, p, n, m, -lr, gz, p, X, ldx, 1, A, n);
    for (let o = 0; o < p; o++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += gz[i * p + o];
      b[o] -= lr * s;
    }
  }
}
