#!/usr/bin/env bash
# Builds .gpu/ (ignored by git) for bench/gpu.sh on a machine without network: the Deno binary
# (xz-compressed, from node_modules/@deno/linux-x64-glibc), pipelines/train.ts and pipelines/corpus.ts bundled
# (`deno bundle`: train.js, corpus.js, parquet_wasm_bg.wasm), the Vulkan loader (libvulkan1) with glvnd (NVIDIA's
# Vulkan ICD lives in libGLX_nvidia.so.0, which needs libGLdispatch/libGLX) and OpenBLAS
# (libopenblas0-pthread + libgfortran5 + libquadmath0) as Debian packages from `apt-get download`.
# Run once here, from anywhere:  bash bench/gpu-prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DENO_BIN=${DENO_BIN:-node_modules/@deno/linux-x64-glibc/deno}
if [ ! -x "$DENO_BIN" ]; then
  echo "gpu-prepare: no Deno binary at $DENO_BIN (run npm install, or set DENO_BIN)" >&2
  exit 1
fi
mkdir -p .gpu
if [ ! -s .gpu/deno.xz ] || [ "$DENO_BIN" -nt .gpu/deno.xz ]; then
  echo "gpu-prepare: compressing $DENO_BIN ($(du -h "$DENO_BIN" | cut -f1)) …"
  xz -T2 -6 -c "$DENO_BIN" >.gpu/deno.xz.tmp
  mv .gpu/deno.xz.tmp .gpu/deno.xz
fi
"$DENO_BIN" --version | head -1 >.gpu/deno.version
# the trainer and the corpus builder as single files (their npm dependencies inside; the device machine has
# no node_modules and no network) for bench/gpu.sh's whole-model rows; parquet-wasm's node build reads its
# .wasm from __dirname: the wasm goes beside them and __dirname is defined as the bundle's folder
for entry in train corpus; do
  # (the output must end in .js: the bundler picks the module format from the extension)
  "$DENO_BIN" bundle --quiet --platform deno -o .gpu/$entry.tmp.js pipelines/$entry.ts
  { echo 'const __dirname = import.meta.dirname;'; cat .gpu/$entry.tmp.js; } >.gpu/$entry.js
  rm .gpu/$entry.tmp.js
done
cp "$(dirname "$(readlink -f node_modules/parquet-wasm/package.json)")/node/parquet_wasm_bg.wasm" .gpu/
rm -f .gpu/*.deb
(cd .gpu && apt-get download -oAPT::Architecture=amd64 libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2 \
  libopenblas0-pthread libgfortran5 libquadmath0 2>&1 |
  grep -v "^W: Download is performed unsandboxed" || true)
for p in libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2 libopenblas0-pthread libgfortran5 libquadmath0; do
  ls .gpu/${p}_*.deb >/dev/null 2>&1 || { echo "gpu-prepare: apt-get download $p failed" >&2; exit 1; }
done
total=$(du -sb .gpu | cut -f1)
echo "gpu-prepare: .gpu/ holds $((total / 1024 / 1024)) MiB:"
ls -la .gpu
if [ "$total" -gt $((56 * 1024 * 1024)) ]; then
  echo "gpu-prepare: .gpu/ is over 56 MiB; the device tool carries at most 64 MiB with the tree" >&2
  exit 1
fi
