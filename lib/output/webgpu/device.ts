/**
 * WebGPU adapter and device selection through Deno's built-in `navigator.gpu` (no flag needed).
 *
 * The device is requested with the adapter's own limits for storage bindings, buffer size, storage
 * buffers per stage and workgroup storage, so that V can be split into as few bindings as possible.
 * When no adapter exists the error names the cause and the fix.
 *
 * @module
 */

import { BackendUnavailableError } from "../../core/errors.ts";
import { DENO_TASK } from "../../core/exit_codes.ts";

/**
 * Options of {@link requestWebGpuDevice}.
 *
 * @example
 * ```ts
 * import type { WebGpuDeviceOptions } from "./device.ts";
 * const o: WebGpuDeviceOptions = { powerPreference: "high-performance", log: console.error };
 * ```
 */
export type WebGpuDeviceOptions = {
  /** Passed to requestAdapter (default "high-performance"). */
  powerPreference?: GPUPowerPreference;
  /** Where the chosen adapter is logged (default console.error). */
  log?: (line: string) => void;
  /** The GPU object to use instead of `navigator.gpu` (tests inject a fake one). */
  gpu?: GPU | null;
};

/**
 * A device with what is known about its adapter.
 *
 * @example
 * ```ts
 * import { requestWebGpuDevice } from "./device.ts";
 * const g = await requestWebGpuDevice();
 * console.log(g.description, g.isFallback, g.limits.maxStorageBufferBindingSize);
 * g.device.destroy();
 * ```
 */
export type WebGpuContext = {
  /** The device, created with the adapter's limits. */
  device: GPUDevice;
  /** The device's limits (what was granted). */
  limits: GPUSupportedLimits;
  /** Adapter vendor (a name or a PCI id). */
  vendor: string;
  /** Adapter description ("llvmpipe (LLVM 15…)", "NVIDIA H100 80GB HBM3"…). */
  description: string;
  /** True for a software/fallback adapter (llvmpipe). */
  isFallback: boolean;
  /** Validation/out-of-memory errors the device reported asynchronously (each is also logged). */
  errors: string[];
};

const FIX =
  "install the Vulkan loader and a driver (Debian: apt-get install libvulkan1 mesa-vulkan-drivers " +
  `for the software adapter llvmpipe, which \`${DENO_TASK} setup\` does, and \`${DENO_TASK} train --backend ` +
  "webgpu` as root; on an NVIDIA machine point the loader at NVIDIA's ICD with " +
  "VK_DRIVER_FILES=/usr/share/vulkan/icd.d/nvidia_icd.json or wherever nvidia_icd.json lives); " +
  "Deno needs no flag for WebGPU";

/**
 * On Linux, WebGPU through Vulkan only (`DENO_WEBGPU_BACKEND=vulkan`, read when Deno creates its WebGPU
 * instance, so before the first adapter request; a value the user set wins). With every backend wgpu also
 * loads EGL for its GL backend, which no adapter of ours uses, and glvnd's teardown at process exit raced a
 * thread's exit: "double free or corruption" and SIGABRT after all tests had passed (gdb:
 * `__glDispatchDestroyTable` from libEGL's destructor; tests/layers_state_test.ts, about 1 exit in 30).
 *
 * @example
 * ```ts
 * import { preferVulkanOnLinux } from "./device.ts";
 * preferVulkanOnLinux();
 * ```
 */
export function preferVulkanOnLinux(): void {
  if (Deno.build.os !== "linux") return;
  if (!Deno.env.get("DENO_WEBGPU_BACKEND")) Deno.env.set("DENO_WEBGPU_BACKEND", "vulkan");
}

/**
 * Requests a high-performance adapter (no device): what {@link requestWebGpuDevice} does first. Throws
 * {@link BackendUnavailableError} naming the cause and the fix when `navigator.gpu` is missing or no
 * adapter is found, so that a job asked for `--backend webgpu` can say so before it prepares a corpus.
 *
 * @example
 * ```ts
 * import { requestWebGpuAdapter } from "./device.ts";
 * const adapter = await requestWebGpuAdapter();
 * console.log(adapter.limits.maxStorageBufferBindingSize > 0); // true
 * ```
 */
export async function requestWebGpuAdapter(
  opts: Pick<WebGpuDeviceOptions, "gpu" | "powerPreference"> = {},
): Promise<GPUAdapter> {
  preferVulkanOnLinux();
  const gpu = opts.gpu !== undefined
    ? opts.gpu
    : (globalThis.navigator as Navigator | undefined)?.gpu as GPU | undefined;
  if (!gpu || typeof gpu.requestAdapter !== "function") {
    throw new BackendUnavailableError(
      "webgpu",
      `navigator.gpu is missing in this runtime (Deno ${Deno.version.deno}); run under Deno ≥ 2 and ${FIX}`,
    );
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? "high-performance" });
  } catch (e) {
    throw new BackendUnavailableError("webgpu", `requestAdapter() failed (${(e as Error).message}); ${FIX}`);
  }
  if (!adapter) {
    throw new BackendUnavailableError(
      "webgpu",
      "navigator.gpu.requestAdapter() returned null: no Vulkan/Metal/DX12 adapter was found " +
        `(usually the Vulkan loader libvulkan.so.1 or its ICD json is missing); ${FIX}`,
    );
  }
  return adapter;
}

/**
 * Requests a high-performance adapter and a device with the adapter's maximum storage-binding, buffer and
 * workgroup-storage limits, and logs the adapter (vendor, description, fallback or not). Throws
 * {@link BackendUnavailableError} naming the cause and the fix when `navigator.gpu` is missing or no
 * adapter is found.
 *
 * @example
 * ```ts
 * import { requestWebGpuDevice } from "./device.ts";
 * const { device, description } = await requestWebGpuDevice({ log: () => {} });
 * console.log(description);
 * device.destroy();
 * ```
 */
export async function requestWebGpuDevice(opts: WebGpuDeviceOptions = {}): Promise<WebGpuContext> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const adapter = await requestWebGpuAdapter(opts);
  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxBufferSize: a.maxBufferSize,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
  };
  // timestamp queries (when the adapter has them) let Runner.profile() time each kernel
  const requiredFeatures: GPUFeatureName[] = adapter.features.has("timestamp-query")
    ? ["timestamp-query"]
    : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  // deno-lint-ignore no-explicit-any
  const info: any = (adapter as any).info ?? {};
  const vendor = String(info.vendor ?? "");
  const description = String(info.description || info.device || "unknown adapter");
  const isFallback = Boolean(
    info.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  );
  log(
    `webgpu: adapter "${description}" (vendor ${vendor || "?"}${isFallback ? ", software/fallback" : ""}); ` +
      `maxStorageBufferBindingSize ${device.limits.maxStorageBufferBindingSize} B, ` +
      `maxBufferSize ${device.limits.maxBufferSize} B, workgroup storage ${device.limits.maxComputeWorkgroupStorageSize} B`,
  );
  const errors: string[] = [];
  // a failed validation makes the GPU skip work silently: log every such error loudly and keep it
  device.addEventListener("uncapturederror", (ev) => {
    const msg = (ev as GPUUncapturedErrorEvent).error?.message ?? String(ev);
    errors.push(msg);
    log(`webgpu: DEVICE ERROR: ${msg}`);
  });
  device.lost.then((info) => {
    if (info.reason !== "destroyed") {
      errors.push(`device lost: ${info.message}`);
      log(`webgpu: DEVICE LOST: ${info.reason} ${info.message}`);
    }
  });
  return { device, limits: device.limits, vendor, description, isFallback, errors };
}
