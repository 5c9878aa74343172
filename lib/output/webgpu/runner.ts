/**
 * A small dispatch helper over one GPUDevice: compiled pipelines cached by name, per-dispatch uniform
 * buffers rewritten only when their bytes change, bind groups cached until the buffers they name are
 * replaced, storage-buffer allocation and read-back. No global state: each layer owns its Runner.
 *
 * @module
 */

/** Usage of every storage buffer the layers allocate. */
const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/**
 * Pipelines, uniforms, bind groups and buffers of one layer on one device.
 *
 * @example
 * ```ts
 * import { requestWebGpuDevice } from "./device.ts";
 * import { Runner } from "./runner.ts";
 * const { device } = await requestWebGpuDevice({ log: () => {} });
 * const r = new Runner(device);
 * const buf = r.storage("x", 16);
 * r.write(buf, new Float32Array([1, 2, 3, 4]));
 * console.log(await r.read(buf, 0, 16));
 * r.destroy();
 * device.destroy();
 * ```
 */
export class Runner {
  /** The device. */
  readonly device: GPUDevice;
  /** Compute dispatches recorded so far (the layers' diagnostics report them per step). */
  dispatches = 0;
  /** Waits on the GPU so far: buffer maps and {@link Runner.finish} (each costs ~11 ms in Deno). */
  readbacks = 0;
  #pipelines = new Map<string, GPUComputePipeline>();
  #uniforms = new Map<string, { buf: GPUBuffer; bytes: Uint8Array }>();
  #groups = new Map<string, GPUBindGroup>();
  #owned = new Set<GPUBuffer>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #prof: { set: GPUQuerySet; labels: string[]; cap: number; totals: Map<string, [number, number]> } | null =
    null;

  /** @param device the device every buffer and pipeline lives on */
  constructor(device: GPUDevice) {
    this.device = device;
  }

  /** A compute pipeline compiled from `code` (entry point `main`), cached under `name`. */
  pipeline(name: string, code: () => string): GPUComputePipeline {
    let p = this.#pipelines.get(name);
    if (!p) {
      const module = this.device.createShaderModule({ label: name, code: code() });
      p = this.device.createComputePipeline({
        label: name,
        layout: "auto",
        compute: { module, entryPoint: "main" },
      });
      this.#pipelines.set(name, p);
    }
    return p;
  }

  /** The uniform buffer named `key`, holding `data` (written only when the bytes changed). */
  uniform(key: string, data: ArrayBuffer): GPUBuffer {
    const bytes = new Uint8Array(data);
    let u = this.#uniforms.get(key);
    if (!u || u.bytes.length !== bytes.length) {
      u?.buf.destroy();
      const buf = this.device.createBuffer({
        label: key,
        size: Math.max(16, Math.ceil(bytes.length / 16) * 16),
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      u = { buf, bytes: new Uint8Array(bytes.length) };
      u.bytes.fill(0xff);
      this.#uniforms.set(key, u);
      this.#groups.clear();
    }
    let same = true;
    for (let i = 0; i < bytes.length; i++) {
      if (u.bytes[i] !== bytes[i]) {
        same = false;
        break;
      }
    }
    if (!same) {
      u.bytes.set(bytes);
      this.device.queue.writeBuffer(u.buf, 0, bytes);
    }
    return u.buf;
  }

  /** A storage buffer of `bytes` bytes (rounded up to 16), owned by this runner. */
  storage(label: string, bytes: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (size > this.device.limits.maxBufferSize) {
      throw new RangeError(
        `webgpu: buffer "${label}" needs ${size} bytes, over this adapter's maxBufferSize ` +
          `${this.device.limits.maxBufferSize}; use smaller D·d or m`,
      );
    }
    const buf = this.device.createBuffer({ label, size, usage: STORAGE });
    this.#owned.add(buf);
    return buf;
  }

  /** Frees a buffer made by {@link Runner.storage} and forgets every bind group (they may name it). */
  release(buf: GPUBuffer): void {
    if (this.#owned.delete(buf)) buf.destroy();
    this.#groups.clear();
  }

  /** Forgets every cached bind group (call after replacing buffers). */
  resetGroups(): void {
    this.#groups.clear();
  }

  /** Writes a typed array into `buf` at byte `offset` (4-byte aligned lengths are padded). */
  write(buf: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (bytes.length % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
      padded.set(bytes);
      this.device.queue.writeBuffer(buf, offset, padded);
    } else {
      // in slices of ≤ 64 MiB, so that the queue's staging copy of a large V stays small
      const SLICE = 64 * 1024 * 1024;
      for (let at = 0; at < bytes.length; at += SLICE) {
        const part = bytes.subarray(at, Math.min(bytes.length, at + SLICE));
        this.device.queue.writeBuffer(buf, offset + at, part as Uint8Array<ArrayBuffer>);
      }
    }
  }

  /** A bind group for `pipeline` over `resources` (binding i = resources[i]), cached under `key`. */
  group(key: string, pipeline: GPUComputePipeline, resources: GPUBuffer[]): GPUBindGroup {
    let g = this.#groups.get(key);
    if (!g) {
      g = this.device.createBindGroup({
        label: key,
        layout: pipeline.getBindGroupLayout(0),
        entries: resources.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      this.#groups.set(key, g);
    }
    return g;
  }

  /** Records a dispatch into the current command encoder (opened on demand). */
  dispatch(pipeline: GPUComputePipeline, group: GPUBindGroup, x: number, y = 1, z = 1): void {
    if (x <= 0 || y <= 0 || z <= 0) return;
    this.dispatches++;
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new RangeError(`webgpu: dispatch ${pipeline.label} of ${x}×${y}×${z} workgroups exceeds ${max}`);
    }
    const prof = this.#prof;
    if (prof && prof.labels.length < prof.cap) {
      // profiling: one pass per dispatch, with GPU timestamps at its start and end
      this.#pass?.end();
      this.#encoder ??= this.device.createCommandEncoder();
      const k = prof.labels.length;
      prof.labels.push(pipeline.label);
      const pass = this.#encoder.beginComputePass({
        timestampWrites: {
          querySet: prof.set,
          beginningOfPassWriteIndex: 2 * k,
          endOfPassWriteIndex: 2 * k + 1,
        },
      });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(x, y, z);
      pass.end();
      this.#pass = null;
      return;
    }
    if (!this.#pass) {
      this.#encoder ??= this.device.createCommandEncoder();
      this.#pass = this.#encoder.beginComputePass();
    }
    this.#pass.setPipeline(pipeline);
    this.#pass.setBindGroup(0, group);
    this.#pass.dispatchWorkgroups(x, y, z);
  }

  /**
   * Starts timing every dispatch (up to `cap` ≤ 2048 of them: a query set holds at most 4096 timestamps)
   * with GPU timestamp queries, each in its own pass.
   * Returns false when the device lacks the "timestamp-query" feature.
   */
  profileStart(cap = 2048): boolean {
    if (!this.device.features.has("timestamp-query")) return false;
    this.submit();
    const set = this.device.createQuerySet({ type: "timestamp", count: 2 * cap });
    this.#prof = { set, labels: [], cap, totals: new Map() };
    return true;
  }

  /** Ends timing: per pipeline label, [total GPU ns, dispatch count], from the timestamps recorded. */
  async profileStop(): Promise<Map<string, [number, number]>> {
    const prof = this.#prof;
    if (!prof) return new Map();
    this.#prof = null;
    const n = prof.labels.length;
    const totals = new Map<string, [number, number]>();
    if (n > 0) {
      const resolved = this.device.createBuffer({
        size: 16 * n,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      this.submit();
      this.#encoder = this.device.createCommandEncoder();
      this.#encoder.resolveQuerySet(prof.set, 0, 2 * n, resolved, 0);
      const t = new BigUint64Array(await this.read(resolved, 0, 16 * n));
      for (let k = 0; k < n; k++) {
        const ns = Number(t[2 * k + 1] - t[2 * k]);
        const cur = totals.get(prof.labels[k]) ?? [0, 0];
        totals.set(prof.labels[k], [cur[0] + (ns > 0 ? ns : 0), cur[1] + 1]);
      }
      resolved.destroy();
    }
    prof.set.destroy();
    return totals;
  }

  /** Records a buffer-to-buffer copy (closing the open compute pass). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes <= 0) return;
    this.#pass?.end();
    this.#pass = null;
    this.#encoder ??= this.device.createCommandEncoder();
    this.#encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Submits what was recorded (no wait). */
  submit(): void {
    this.#pass?.end();
    this.#pass = null;
    if (this.#encoder) {
      this.device.queue.submit([this.#encoder.finish()]);
      this.#encoder = null;
    }
  }

  /** Submits, then reads `bytes` bytes of `buf` from byte `offset` back to the host (one map). */
  async read(buf: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    const [out] = await this.readMany([[buf, offset, bytes]]);
    return out;
  }

  /** Submits, then reads several ranges back with one staging buffer and one map. */
  async readMany(ranges: [GPUBuffer, number, number][]): Promise<ArrayBuffer[]> {
    let total = 0;
    const at: number[] = [];
    for (const [, , bytes] of ranges) {
      at.push(total);
      total += Math.ceil(bytes / 4) * 4;
    }
    const staging = this.device.createBuffer({
      size: Math.max(16, total),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    ranges.forEach(([buf, offset, bytes], k) =>
      this.copy(buf, offset, staging, at[k], Math.ceil(bytes / 4) * 4)
    );
    this.submit();
    this.readbacks++;
    await staging.mapAsync(GPUMapMode.READ);
    const mapped = staging.getMappedRange();
    const out = ranges.map(([, , bytes], k) => mapped.slice(at[k], at[k] + bytes));
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Waits for all submitted work. */
  async finish(): Promise<void> {
    this.submit();
    this.readbacks++;
    await this.device.queue.onSubmittedWorkDone();
  }

  /** Frees every buffer this runner owns. */
  destroy(): void {
    this.submit();
    for (const b of this.#owned) b.destroy();
    this.#owned.clear();
    for (const u of this.#uniforms.values()) u.buf.destroy();
    this.#uniforms.clear();
    this.#groups.clear();
  }
}
