/**
 * Argument checks shared by the CPU backends. They cost O(1) per call (O(n) for the row lists) and
 * matter most for the `blas` backend, where a too-short array would make native code read or write
 * past its end instead of raising an error.
 *
 * Layout: a row-major r×c matrix with leading dimension ld needs `(r-1)·ld + c` elements (0 when r or
 * c is 0) and `ld ≥ max(1, c)`.
 *
 * @module
 */

/**
 * Throws a RangeError unless `a` can hold a row-major r×c matrix with leading dimension ld.
 *
 * @example
 * ```ts
 * import { checkMatrix } from "./check.ts";
 * checkMatrix("sgemm", "A", new Float32Array(6), 2, 3, 3); // fine
 * ```
 *
 * @param op the routine's name, for the message
 * @param arg the argument's name, for the message
 * @param a the array
 * @param rows rows of the (stored) matrix
 * @param cols columns of the (stored) matrix
 * @param ld leading dimension (elements between consecutive rows)
 */
export function checkMatrix(
  op: string,
  arg: string,
  a: Float32Array | Float64Array,
  rows: number,
  cols: number,
  ld: number,
): void {
  if (!Number.isInteger(ld) || ld < Math.max(1, cols)) {
    throw new RangeError(
      `${op}: leading dimension of ${arg} is ${ld}, must be an integer >= max(1, ${cols})`,
    );
  }
  const need = rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
  if (a.length < need) {
    throw new RangeError(
      `${op}: ${arg} has ${a.length} elements, a ${rows}x${cols} matrix with leading dimension ${ld} needs ${need}`,
    );
  }
}

/**
 * Throws a RangeError unless every value in `dims` is a non-negative integer.
 *
 * @example
 * ```ts
 * import { checkDims } from "./check.ts";
 * checkDims("sgemm", { M: 2, N: 3, K: 4 });
 * ```
 *
 * @param op the routine's name, for the message
 * @param dims named dimensions
 */
export function checkDims(op: string, dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(`${op}: ${k} must be a non-negative integer, got ${v}`);
    }
  }
}

function isDim(v: number): boolean {
  return Number.isInteger(v) && v >= 0;
}

/**
 * Throws a RangeError unless a vector has at least n elements.
 *
 * @example
 * ```ts
 * import { checkVector } from "./check.ts";
 * checkVector("sgemv", "x", new Float32Array(3), 3);
 * ```
 *
 * @param op the routine's name
 * @param arg the argument's name
 * @param v the vector
 * @param n the elements needed
 */
export function checkVector(op: string, arg: string, v: Float32Array | Float64Array, n: number): void {
  if (v.length < n) throw new RangeError(`${op}: ${arg} has ${v.length} elements, needs ${n}`);
}

/**
 * Checks a gather/scatter call: `n ≤ rows.length`, the dense side holds n rows of width d, and every
 * `rows[i]` indexes a row of the table (`0 ≤ rows[i] < table.length / d`).
 *
 * @example
 * ```ts
 * import { checkRows } from "./check.ts";
 * checkRows("gatherRows", new Float32Array(12), 4, Int32Array.of(0, 2), 2, new Float32Array(8), "out");
 * ```
 *
 * @param op the routine's name
 * @param table the D×d table (src of a gather, dst of a scatter)
 * @param d row width
 * @param rows row indices into the table
 * @param n how many of them are used
 * @param dense the n×d dense side
 * @param denseArg its name, for the message
 */
export function checkRows(
  op: string,
  table: Float32Array,
  d: number,
  rows: Int32Array,
  n: number,
  dense: Float32Array,
  denseArg: string,
): void {
  checkDims(op, { d, n });
  if (n > rows.length) throw new RangeError(`${op}: n = ${n} exceeds rows.length = ${rows.length}`);
  checkVector(op, denseArg, dense, n * d);
  const D = d === 0 ? 0 : Math.floor(table.length / d);
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    if (r < 0 || r >= D) {
      throw new RangeError(`${op}: rows[${i}] = ${r} is outside the table's rows [0, ${D})`);
    }
  }
}

/**
 * Checks one side of a row-indexed call (dotRows, axpyRows) on entries `first … first + n − 1`:
 * `first + n ≤ rows.length`, `ld ≥ d`, and each of those `rows[k]` names a row whose d elements lie in
 * the matrix (`0 ≤ rows[k]` and `rows[k]·ld + d ≤ M.length`).
 *
 * @example
 * ```ts
 * import { checkIndexedRows } from "./check.ts";
 * checkIndexedRows("dotRows", "A", new Float32Array(12), 4, Int32Array.of(0, 2), 2, 3);
 * ```
 *
 * @param op the routine's name
 * @param arg the matrix's name, for the message
 * @param M the row-major matrix
 * @param ld its leading dimension
 * @param rows row indices into M
 * @param n how many of them are used
 * @param d elements used per row
 * @param first the first entry used (default 0)
 */
export function checkIndexedRows(
  op: string,
  arg: string,
  M: Float32Array,
  ld: number,
  rows: Int32Array,
  n: number,
  d: number,
  first = 0,
): void {
  // (called per example in the factored step: no object literal for checkDims here)
  if (!isDim(n) || !isDim(d) || !isDim(first) || !isDim(ld)) {
    checkDims(op, { n, d, first, [`ld of ${arg}`]: ld });
  }
  if (ld < d) throw new RangeError(`${op}: leading dimension of ${arg} (${ld}) is smaller than d = ${d}`);
  if (first + n > rows.length) {
    throw new RangeError(
      `${op}: entries ${first} … ${first + n - 1} exceed the ${arg} row list's length ${rows.length}`,
    );
  }
  const R = d === 0 ? Infinity : Math.floor((M.length - d) / ld) + 1;
  for (let k = first; k < first + n; k++) {
    const r = rows[k];
    if (r < 0 || r >= R) {
      throw new RangeError(
        `${op}: ${arg} row ${r} (entry ${k}) is outside ${arg}'s rows [0, ${Math.max(0, R)})`,
      );
    }
  }
}

/**
 * Threshold under which an LU pivot counts as zero: n · ε · max|A|. Both backends use it, so they
 * reject the same matrices as singular.
 *
 * @example
 * ```ts
 * import { pivotTolerance } from "./check.ts";
 * const tol = pivotTolerance(Float64Array.of(1, 0, 0, 1), 2); // ≈ 4.4e-16
 * ```
 *
 * @param A the n×n matrix before factorisation
 * @param n its order
 * @returns the tolerance (0 for an all-zero matrix, which is then singular)
 */
export function pivotTolerance(A: Float64Array, n: number): number {
  let max = 0;
  for (let i = 0; i < n * n; i++) {
    const v = Math.abs(A[i]);
    if (v > max) max = v;
    else if (v !== v) return NaN;
  }
  return n * 2.220446049250313e-16 * max;
}

/**
 * Checks a square-matrix argument of dinvert/dsolve: n a non-negative integer, A holding n·n entries.
 *
 * @example
 * ```ts
 * import { checkSquare } from "./check.ts";
 * checkSquare("dinvert", Float64Array.of(1, 0, 0, 1), 2);
 * ```
 *
 * @param op the routine's name
 * @param A the matrix
 * @param n its order
 */
export function checkSquare(op: string, A: Float64Array, n: number): void {
  checkDims(op, { n });
  checkVector(op, "A", A, n * n);
}

/**
 * Checks the dimensions and array sizes of a gemm call (see LinAlgBackend.sgemm).
 *
 * @example
 * ```ts
 * import { checkGemm } from "./check.ts";
 * const A = new Float32Array(4), B = new Float32Array(4), C = new Float32Array(4);
 * checkGemm("sgemm", false, false, 2, 2, 2, A, 2, B, 2, C, 2);
 * ```
 */
export function checkGemm(
  op: string,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  A: Float32Array | Float64Array,
  lda: number,
  B: Float32Array | Float64Array,
  ldb: number,
  C: Float32Array | Float64Array,
  ldc: number,
): void {
  checkDims(op, { M, N, K });
  if (transA) checkMatrix(op, "A", A, K, M, lda);
  else checkMatrix(op, "A", A, M, K, lda);
  if (transB) checkMatrix(op, "B", B, N, K, ldb);
  else checkMatrix(op, "B", B, K, N, ldb);
  checkMatrix(op, "C", C, M, N, ldc);
}

/**
 * Checks a gemv call (A M×N, x and y of the lengths op(A) implies).
 *
 * @example
 * ```ts
 * import { checkGemv } from "./check.ts";
 * checkGemv("sgemv", false, 2, 3, new Float32Array(6), 3, new Float32Array(3), new Float32Array(2));
 * ```
 */
export function checkGemv(
  op: string,
  trans: boolean,
  M: number,
  N: number,
  A: Float32Array | Float64Array,
  lda: number,
  x: Float32Array | Float64Array,
  y: Float32Array | Float64Array,
): void {
  checkDims(op, { M, N });
  checkMatrix(op, "A", A, M, N, lda);
  checkVector(op, "x", x, trans ? M : N);
  checkVector(op, "y", y, trans ? N : M);
}

/**
 * Checks a ger call: A M×N (lda), x of length M, y of length N.
 *
 * @example
 * ```ts
 * import { checkGer } from "./check.ts";
 * checkGer("sger", 2, 3, new Float32Array(2), new Float32Array(3), new Float32Array(6), 3);
 * ```
 *
 * @param op the routine's name, for the message
 * @param M rows of A
 * @param N columns of A
 * @param x the column vector
 * @param y the row vector
 * @param A the matrix
 * @param lda its leading dimension
 */
export function checkGer(
  op: string,
  M: number,
  N: number,
  x: Float32Array | Float64Array,
  y: Float32Array | Float64Array,
  A: Float32Array | Float64Array,
  lda: number,
): void {
  checkDims(op, { M, N });
  checkMatrix(op, "A", A, M, N, lda);
  checkVector(op, "x", x, M);
  checkVector(op, "y", y, N);
}

/**
 * Checks a syr2k call (op(A), op(B) N×K; C N×N).
 *
 * @example
 * ```ts
 * import { checkSyr2k } from "./check.ts";
 * const A = new Float64Array(6), B = new Float64Array(6), C = new Float64Array(4);
 * checkSyr2k("dsyr2k", false, 2, 3, A, 3, B, 3, C, 2);
 * ```
 */
export function checkSyr2k(
  op: string,
  trans: boolean,
  N: number,
  K: number,
  A: Float32Array | Float64Array,
  lda: number,
  B: Float32Array | Float64Array,
  ldb: number,
  C: Float32Array | Float64Array,
  ldc: number,
): void {
  checkDims(op, { N, K });
  if (trans) {
    checkMatrix(op, "A", A, K, N, lda);
    checkMatrix(op, "B", B, K, N, ldb);
  } else {
    checkMatrix(op, "A", A, N, K, lda);
    checkMatrix(op, "B", B, N, K, ldb);
  }
  checkMatrix(op, "C", C, N, N, ldc);
}

/**
 * Copies the lower triangle of the N×N matrix C onto its upper triangle.
 *
 * @example
 * ```ts
 * import { mirrorLower } from "./check.ts";
 * const C = Float64Array.of(1, 0, 2, 3);
 * mirrorLower(C, 2, 2); // C = [1, 2, 2, 3]
 * ```
 */
export function mirrorLower(C: Float32Array | Float64Array, N: number, ldc: number): void {
  for (let i = 0; i < N; i++) {
    const ri = i * ldc;
    for (let j = 0; j < i; j++) C[j * ldc + i] = C[ri + j];
  }
}

/**
 * Argument check of strsm: dimensions, and L (N×N, ldl) and B (N×K, ldb) long enough.
 *
 * @example
 * ```ts
 * import { checkTrsm } from "./check.ts";
 * checkTrsm("strsm", 2, 3, new Float32Array(4), 2, new Float32Array(6), 3);
 * ```
 *
 * @param op the routine's name, for the message
 * @param N order of L, rows of B
 * @param K columns of B
 * @param L the triangular matrix
 * @param ldl its leading dimension
 * @param B the right-hand sides
 * @param ldb their leading dimension
 */
export function checkTrsm(
  op: string,
  N: number,
  K: number,
  L: Float32Array | Float64Array,
  ldl: number,
  B: Float32Array | Float64Array,
  ldb: number,
): void {
  checkDims(op, { N, K });
  checkMatrix(op, "L", L, N, N, ldl);
  checkMatrix(op, "B", B, N, K, ldb);
}
