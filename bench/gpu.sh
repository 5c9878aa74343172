#!/usr/bin/env bash
# bench/gpu.sh — the unattended GPU benchmark (issue 6) for a bare x86-64 Linux machine with an NVIDIA
# H100/H200 and NO network. Everything it needs travels in .gpu/ (built here by bench/gpu-prepare.sh):
# the Deno binary (xz), the Vulkan loader (libvulkan1 .deb) and OpenBLAS (.debs) for the naive CPU column.
#
#   bash bench/gpu.sh                 # full table; fails loudly unless the adapter is the NVIDIA GPU
#   GPU_QUICK=1 bash bench/gpu.sh     # tiny table on any adapter (llvmpipe here): checks the script
#
# It prints (and writes to GPU_TABLE) the layer table of bench/gpu.ts (trimmed to the two headline
# configurations unless GPU_CONFIGS says otherwise) and then the whole model: `deno task train` on a synthetic
# corpus with --backend webgpu vs --backend blas (GPU_TRAIN_S seconds each, default 25; GPU_TRAIN_BATCH 256;
# GPU_TRAIN_THREADS min(8, cores)). The whole run takes ≤ ~4 minutes on an H200 machine with 16 cores.
#
# Environment: GPU_LOG (default $GPU_WORK/gpu.log) gets everything printed; GPU_TABLE (default
# $GPU_WORK/gpu-table.md) the table alone; GPU_WORK (default /tmp/factorout-gpu) is the scratch prefix
# where OpenBLAS is unpacked. The Vulkan loader and glvnd (libGLX_nvidia.so.0, NVIDIA's Vulkan ICD, needs
# libGLdispatch) go into / with ldconfig when they are missing and the script runs as root, as the device
# notes prescribe for these machines; elsewhere (and with GPU_QUICK=1) into the private prefix.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=${GPU_QUICK:-0}
WORK=${GPU_WORK:-/tmp/factorout-gpu}
mkdir -p "$WORK"
LOG=${GPU_LOG:-$WORK/gpu.log}
TABLE=${GPU_TABLE:-$WORK/gpu-table.md}
say() { echo "[gpu.sh $(date -u +%H:%M:%S)] $*"; }
die() {
  say "FAIL: $*"
  exit 3
}

main() {
say "start $(date -u +%FT%TZ) on $(hostname) ($(uname -srm)); quick=$QUICK; repo $ROOT"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
else
  say "nvidia-smi not found"
fi
nproc 2>/dev/null | sed 's/^/cpus: /'

# --- 1. Deno (bench/host-env.sh) ---
# shellcheck source=bench/host-env.sh
. "$ROOT/bench/host-env.sh"
find_deno

# --- 2. the Vulkan loader and glvnd (libGLX_nvidia.so.0, NVIDIA's Vulkan ICD, needs glvnd's libraries) ---
LIBDIR=$PREFIX/usr/lib/x86_64-linux-gnu
GL_DEBS="libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2"
# glvnd (libGLdispatch) is needed by NVIDIA's ICD only: a quick run on llvmpipe takes the system loader alone
if ldc_has libvulkan.so.1 && { ldc_has libGLdispatch.so.0 || [ "$QUICK" = 1 ]; }; then
  say "Vulkan loader: system ($(ldc_path libvulkan.so.1)); glvnd: $(ldc_path libGLdispatch.so.0 || true)"
elif [ "$(id -u)" = 0 ] && [ "$QUICK" != 1 ]; then
  # as the device notes prescribe on these machines: these seven small packages go into /, then ldconfig
  for p in $GL_DEBS; do
    deb=$(ls .gpu/${p}_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || die "no .gpu/${p}_*.deb (run bench/gpu-prepare.sh)"
    if command -v dpkg-deb >/dev/null 2>&1; then dpkg-deb -x "$deb" / || die "dpkg-deb -x $deb /"; else PREFIX=/ unpack_deb "$deb"; fi
  done
  ldconfig
  LDCONFIG_CACHE=$(ldconfig -p 2>/dev/null || true)
  say "Vulkan loader and glvnd unpacked into / ($GL_DEBS); $(ldc_path libvulkan.so.1)"
else
  for p in $GL_DEBS; do
    deb=$(ls .gpu/${p}_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] && { unpack_deb "$deb" || die "could not unpack $deb"; }
  done
  [ -f "$LIBDIR/libvulkan.so.1" ] || die "no system libvulkan.so.1 and no .gpu/libvulkan1_*.deb"
  export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "Vulkan loader: $LIBDIR/libvulkan.so.1 (private prefix)"
fi

# --- 3. NVIDIA's ICD ---
ICD=""
say "looking for NVIDIA's Vulkan ICD json:"
for f in ${VK_DRIVER_FILES:-} /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
  /etc/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then
    echo "  found $f: $(tr -d '\n ' <"$f" | head -c 200)"
    [ -z "$ICD" ] && ICD=$f
  fi
done
if [ -z "$ICD" ]; then
  lib=$(ldc_path libGLX_nvidia.so.0)
  [ -z "$lib" ] && lib=$(find /usr /lib /opt -maxdepth 6 -name 'libGLX_nvidia.so.0' 2>/dev/null | head -1)
  if [ -n "$lib" ]; then
    ICD=$WORK/nvidia_icd.json
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$lib" >"$ICD"
    say "no ICD json found; wrote $ICD naming $lib"
  fi
fi
[ -n "$ICD" ] || [ "$QUICK" = 1 ] || die "no NVIDIA Vulkan ICD (nvidia_icd.json or libGLX_nvidia.so.0) on this machine"
EGLV=""
for f in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json; do
  [ -f "$f" ] && { EGLV=$f; break; }
done
NVLIB=$(find /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64 -maxdepth 1 -name 'libGLX_nvidia.so.0' -printf '%h\n' 2>/dev/null | head -1)
grep -E 'libGLX_nvidia|libGLdispatch|libvulkan' <<<"$LDCONFIG_CACHE" | sed 's/^/  ldconfig: /' | head -8 || true

# --- 4. OpenBLAS for the naive CPU column (bench/host-env.sh) ---
find_openblas

# --- 5. the table ---
export DENO_DIR=$WORK/deno-dir DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 XDG_RUNTIME_DIR=$WORK/xdg
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export VK_LOADER_DEBUG=${VK_LOADER_DEBUG:-error,warn}
# find loader settings under which navigator.gpu sees the NVIDIA GPU (each probe takes about a second)
if [ "$QUICK" != 1 ]; then
  found=0
  base_ld=${LD_LIBRARY_PATH:-}
  for try in 1 2 3 4; do
    unset VK_DRIVER_FILES VK_ICD_FILENAMES __EGL_VENDOR_LIBRARY_FILENAMES
    export LD_LIBRARY_PATH=$base_ld
    case $try in
      1) export VK_DRIVER_FILES=$ICD ;;
      2) export VK_DRIVER_FILES=$ICD ${EGLV:+__EGL_VENDOR_LIBRARY_FILENAMES=$EGLV} ;;
      3) export VK_DRIVER_FILES=$ICD ${EGLV:+__EGL_VENDOR_LIBRARY_FILENAMES=$EGLV}
         [ -n "$NVLIB" ] && export LD_LIBRARY_PATH="$NVLIB${base_ld:+:$base_ld}" ;;
      4) export VK_ICD_FILENAMES=$ICD ;;
    esac
    say "probe $try: VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-} EGL=${__EGL_VENDOR_LIBRARY_FILENAMES:-} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    if "$DENO" run -A --no-config --no-check bench/gpu-probe.ts; then found=1; break; fi
  done
  [ $found = 1 ] || die "navigator.gpu found no NVIDIA adapter under any loader setting tried (see the loader messages above)"
fi
say "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_LOADER_DEBUG=$VK_LOADER_DEBUG"
args=(--out "$TABLE")
if [ "$QUICK" = 1 ]; then
  args+=(--quick)
  # a short check of the script (< 2 minutes on llvmpipe): one configuration, one whole-model-ish row
  export GPU_CONFIGS=${GPU_CONFIGS:-5000/48/64} GPU_CPU=${GPU_CPU:-5000/48/64}
  export GPU_MB_SWEEP=${GPU_MB_SWEEP-} GPU_MODEL_MS=${GPU_MODEL_MS-64}
else
  args+=(--require-nvidia)
  # the whole run must fit in ~4 minutes: the layer table's two headline configurations, one block-size
  # point, the whole-model-ish rows at m = 128; the time left goes to the trainer runs below
  export GPU_CONFIGS=${GPU_CONFIGS:-793471/300/128,200000/256/128}
  export GPU_CPU=${GPU_CPU:-793471/300/128,200000/256/128}
  export GPU_MB_SWEEP=${GPU_MB_SWEEP-32}
  export GPU_MODEL_MS=${GPU_MODEL_MS-128}
  export GPU_BUDGET_S=${GPU_BUDGET_S:-100}
fi
say "running: deno run -A --no-config --no-check bench/gpu.ts ${args[*]} (type-checked where it was prepared)"
"$DENO" run -A --no-config --no-check bench/gpu.ts "${args[@]}"
rc=$?
say "bench/gpu.ts exited with $rc; table in $TABLE, log in $LOG"
whole_model || { [ "$rc" = 0 ] && rc=5; }
return $rc
}

# --- 6. the whole model: `deno task train` with --backend webgpu vs --backend blas, same corpus and flags ---
# A synthetic Zipf corpus like the baseline's (docs/webgpu.md), made here; each run is stopped by SIGINT after
# GPU_TRAIN_S seconds and its examples/s is the last progress line's. Appended to the table file.
whole_model() {
  local secs=${GPU_TRAIN_S:-25} vocab=200000 tokens=2500000 dim=300 batch=${GPU_TRAIN_BATCH:-256}
  local threads=${GPU_TRAIN_THREADS:-$(($(nproc) < 8 ? $(nproc) : 8))}
  if [ "$QUICK" = 1 ]; then secs=${GPU_TRAIN_S:-10} vocab=5000 tokens=100000 dim=48 batch=${GPU_TRAIN_BATCH:-64}; fi
  # the sources, with the npm packages from node_modules or .gpu/npm.tar.xz (bench/host-env.sh)
  local train=(pipelines/train.ts) corpus=(pipelines/corpus.ts) cfg=()
  find_npm_packages || return 1
  say "whole model: running ${train[*]} and ${corpus[*]}"
  local data=$WORK/zipf-$vocab-$tokens
  if [ ! -f "$data/manifest.json" ]; then
    say "whole model: making the synthetic corpus ($tokens tokens, vocabulary $vocab) in $data"
    rm -rf "$data"
    "$DENO" run -A ${cfg[@]+"${cfg[@]}"} --no-check "${corpus[@]}" --synthetic --synthetic-vocab $vocab \
      --synthetic-tokens $tokens --min-count 1 --sample 1e-4 --seed 1 --out "$data" >"$WORK/corpus.log" 2>&1 ||
      { say "whole model: corpus failed (see $WORK/corpus.log)"; tail -5 "$WORK/corpus.log"; return 1; }
  fi
  local flags="--data $data --dim $dim --epochs 1 --batch $batch --formats vec --eval-dir none --progress json"
  local rows="" blas_rate=""
  for backend in blas webgpu; do
    local extra="" out=$WORK/train-$backend
    [ $backend = blas ] && extra="--threads $threads"
    rm -rf "$out"
    say "whole model: deno task train $flags --backend $backend $extra (stopped after $secs s)"
    timeout -s INT -k 30 $((secs + 90)) "$DENO" run -A ${cfg[@]+"${cfg[@]}"} --no-check "${train[@]}" $flags \
      --backend $backend $extra --out "$out" >"$WORK/train-$backend.log" 2>&1 &
    local pid=$!
    # the clock starts at the first progress line (after start-up: reading the corpus, creating the layers)
    for _ in $(seq 1 60); do grep -q '"event":"progress"' "$WORK/train-$backend.log" 2>/dev/null && break; sleep 1; done
    sleep "$secs"
    kill -INT $pid 2>/dev/null
    wait $pid
    grep -E '^(train|step path|output layer|webgpu)' "$WORK/train-$backend.log" | head -6 | sed 's/^/  /'
    local rate
    rate=$(grep '"event":"progress"' "$WORK/train-$backend.log" | tail -1 | sed -n 's/.*"examplesPerSecond":\([0-9]*\).*/\1/p')
    say "whole model: --backend $backend: ${rate:-no progress line} examples/s"
    [ $backend = blas ] && blas_rate=$rate
    local ratio="–"
    [ $backend = webgpu ] && [ -n "$rate" ] && [ -n "$blas_rate" ] && [ "$blas_rate" -gt 0 ] &&
      ratio=$(awk -v a="$rate" -v b="$blas_rate" 'BEGIN { printf "%.2f×", a / b }')
    rows+="| \`--backend $backend $extra\` | ${rate:-–} | $ratio |"$'\n'
  done
  {
    echo
    echo "Whole model, \`deno task train\` (synthetic Zipf corpus: $tokens tokens, vocabulary $vocab, subsampling 1e-4;"
    echo "\`$flags\` minus the path; skip-gram, spherical loss, factored head; $(nproc) CPU cores; each run stopped"
    echo "$secs s after its first progress line; examples/s from the last one):"
    echo
    echo "| flags | examples/s | webgpu / blas |"
    echo "|---|---|---|"
    printf '%s' "$rows"
  } >>"$TABLE"
  [ -n "$blas_rate" ]
}

main 2>&1 | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
