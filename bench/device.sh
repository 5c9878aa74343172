#!/usr/bin/env bash
# bench/device.sh — the one prepared run on a lent GPU machine's 16-core host (issue 18), in this order:
#   1. bench/threads.sh         the factored layer at threads 1…16, the split and OpenBLAS's threading side by
#                               side at every count above one
#   2. bench/trainer_threads.sh the whole trainer at threads 1…16
#   3. bench/gpu.sh             only with DEVICE_GPU=1: the WebGPU layer table and the whole model, --backend
#                               webgpu vs blas (issue 14, closed)
# Each part has its own time limit and runs even when an earlier one failed; each writes its table and its
# log into OUTDIR (the device tool's $OUT: at most 8 files come back). The machine has no network: run
# bench/gpu-prepare.sh here first and carry .gpu/ (Deno, the Vulkan loader, OpenBLAS, and the npm packages
# the trainer reads shards with, .gpu/npm.tar.xz; bench/host-env.sh unpacks them).
#
#   bash bench/device.sh [OUTDIR]                 # on the device machine (about 8 minutes at most)
#   DEVICE_QUICK=1 bash bench/device.sh /tmp/dev  # every part in its quick mode: checks the script here
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${1:-${OUT:-/tmp/factorout-device}}
mkdir -p "$OUTDIR"
QUICK=${DEVICE_QUICK:-0}
say() { echo "[device.sh $(date -u +%H:%M:%S)] $*"; }

# part NAME LIMIT_S CMD…: runs CMD with its output in OUTDIR/NAME.log, killed after LIMIT_S seconds
part() {
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  say "== $name: $* (limit ${limit} s)"
  timeout -k 10 "$limit" "$@" >"$OUTDIR/$name.log" 2>&1
  rc=$?
  say "== $name: exit $rc after $(($(date +%s) - start)) s"
  tail -n 25 "$OUTDIR/$name.log" | cut -c1-300
}

say "start on $(hostname): $(nproc) cpus, $(free -g 2>/dev/null | awk '/Mem:/ {print $2 " GiB"}'); quick=$QUICK"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
GPU=${DEVICE_GPU:-0}
if [ "$QUICK" = 1 ]; then
  part threads 120 env THREADS_QUICK=1 bash bench/threads.sh "$OUTDIR/threads.md"
  part trainer 120 env QUICK=1 TRAINER_TABLE="$OUTDIR/trainer-threads.md" bash bench/trainer_threads.sh
  [ "$GPU" = 1 ] && part gpu 240 env GPU_QUICK=1 GPU_WORK=/tmp/factorout-gpu GPU_TABLE="$OUTDIR/gpu-table.md" bash bench/gpu.sh
else
  # 18 layer children and 5 peaks (about twice the 140 s the split-only table took on 2026-12-04)
  part threads 270 bash bench/threads.sh "$OUTDIR/threads.md"
  part trainer 230 env TRAINER_TABLE="$OUTDIR/trainer-threads.md" bash bench/trainer_threads.sh
  [ "$GPU" = 1 ] && part gpu 270 env GPU_WORK=/tmp/factorout-gpu GPU_TABLE="$OUTDIR/gpu-table.md" bash bench/gpu.sh
fi
say "done; files in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
