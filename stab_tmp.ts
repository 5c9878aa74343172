// usage: deno run -A /tmp/m/stab.ts TREE ; times stabilize() at D=14206 d=257 after 300 steps (m=64)
const tree = Deno.args[0];
const { createBackend, FactoredOutputLayer, createLoss } = await import("./mod.ts");
const D = 14206, d = 257, m = 64;
const la = await createBackend("blas", { log: () => {} });
const init = new Float32Array(D * d);
let s = 12345;
const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5);
for (let i = 0; i < init.length; i++) init[i] = 0.02 * rnd();
const layer = FactoredOutputLayer.fromInit(D, d, init, createLoss("spherical"), la, { stabilizeEvery: 0 });
const H = new Float32Array(m * d);
for (let i = 0; i < H.length; i++) H[i] = rnd() / 16;
const idx = new Int32Array(m * 7);
for (let i = 0; i < idx.length; i++) idx[i] = Math.floor((rnd() + 0.5) * D) % D;
const Y = { offsets: new Int32Array(m + 1).map((_, i) => 7 * i), indices: idx, values: new Float32Array(m * 7).fill(1) };
for (let i = 0; i < 300; i++) await layer.step(H, Y, 1e-3);
const times: number[] = [];
for (let r = 0; r < 60; r++) {
  const t0 = performance.now();
  layer.stabilize();
  times.push(performance.now() - t0);
  for (let i = 0; i < 5; i++) await layer.step(H, Y, 1e-3);
}
times.sort((a, b) => a - b);
console.log(`${tree}: stabilize median ${times[30].toFixed(2)} ms, p10 ${times[6].toFixed(2)}, p90 ${times[54].toFixed(2)}`);
layer.close?.();
