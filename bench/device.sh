#!/usr/bin/env bash
# bench/device.sh — the one prepared run on a lent GPU machine (issues 14 and 18), in this order:
#   1. bench/gpu.sh            the WebGPU layer table and the whole model, --backend webgpu vs blas (issue 14)
#   2. bench/threads.sh        the factored layer at OpenBLAS threads 1…16 (issue 18)
#   3. bench/trainer_threads.sh the whole trainer at threads 1…16 (issue 18)
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
if [ "$QUICK" = 1 ]; then
  part gpu 240 env GPU_QUICK=1 GPU_WORK=/tmp/factorout-gpu GPU_TABLE="$OUTDIR/gpu-table.md" bash bench/gpu.sh
  part threads 120 env THREADS_QUICK=1 bash bench/threads.sh "$OUTDIR/threads.md"
  part trainer 120 env QUICK=1 TRAINER_TABLE="$OUTDIR/trainer-threads.md" bash bench/trainer_threads.sh
else
  part gpu 270 env GPU_WORK=/tmp/factorout-gpu GPU_TABLE="$OUTDIR/gpu-table.md" bash bench/gpu.sh
  part threads 140 bash bench/threads.sh "$OUTDIR/threads.md"
  part trainer 140 env TRAINER_TABLE="$OUTDIR/trainer-threads.md" bash bench/trainer_threads.sh
fi
say "done; files in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
