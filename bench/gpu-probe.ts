/**
 * Exits 0 when navigator.gpu finds an NVIDIA adapter (bench/gpu.sh tries loader settings with it before
 * the benchmark), 3 when the adapter is another one, 1 when there is none. Prints the adapter.
 *
 * Usage: deno run -A --no-config bench/gpu-probe.ts
 *
 * @module
 */

import { requestWebGpuDevice } from "../lib/output/webgpu/device.ts";

try {
  const ctx = await requestWebGpuDevice({ log: (l) => console.log(l) });
  const nvidia = /nvidia/i.test(ctx.description) || /^(4318|0x10de|nvidia)$/i.test(ctx.vendor);
  ctx.device.destroy();
  Deno.exit(nvidia ? 0 : 3);
} catch (e) {
  console.log(`probe: ${(e as Error).message.slice(0, 160)}`);
  Deno.exit(1);
}
