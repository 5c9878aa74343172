#!/usr/bin/env bash
# Builds .gpu/ (ignored by git) for bench/gpu.sh on a machine without network: the Deno binary
# (xz-compressed, from node_modules/@deno/linux-x64-glibc), the npm packages the trainer imports
# (npm.tar.xz), the Vulkan loader (libvulkan1) with glvnd (NVIDIA's
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
# the npm packages the trainer and the corpus builder import (the device machine has no node_modules and no
# network; bench/host-env.sh find_npm_packages unpacks them): the sources run as they are, since their
# workers (the reader, the BLAS pool, the Parquet decoder) are loaded from files beside them
rm -f .gpu/train.js .gpu/corpus.js .gpu/parquet_wasm_bg.wasm
pkgs=(apache-arrow parquet-wasm flatbuffers tslib json-with-bigint)
paths=()
for p in "${pkgs[@]}"; do
  [ -e "node_modules/$p" ] || { echo "gpu-prepare: node_modules/$p missing (run npm install)" >&2; exit 1; }
  paths+=("$p")
  for d in node_modules/.deno/$p@* node_modules/.deno/node_modules/$p; do [ -e "$d" ] && paths+=("${d#node_modules/}"); done
done
tar -C node_modules -cf - "${paths[@]}" | xz -T2 -6 >.gpu/npm.tar.xz.tmp
mv .gpu/npm.tar.xz.tmp .gpu/npm.tar.xz
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
