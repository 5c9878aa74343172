#!/usr/bin/env bash
# bench/threads.sh — thread scaling of the factored layer (issue 18): the factored step at threads 1, 2, 4,
# 8, 16 for D = 793,471, d = 300 and D = 200,000, d = 256 (m = 128), with the sgemm peak at each thread
# count, as a markdown table. For a bare machine without network: Deno and OpenBLAS are found as
# bench/gpu.sh finds them (bench/host-env.sh; run bench/gpu-prepare.sh where there is network and carry
# .gpu/). About 1-2 minutes on a 16-core host.
#
#   bash bench/threads.sh [TABLE.md]              # full; the table also goes to stdout
#   THREADS_QUICK=1 bash bench/threads.sh [FILE]  # tiny layers, threads 1 and 2 (< 1 min): checks the script
#
# Environment: THREADS_LIST (e.g. "1,2,4") overrides the thread counts; THREADS_MODES (default
# split,openblas; add independent for t one-thread processes at once) the paths; THREADS_WORK (default
# /tmp/factorout-threads) is the scratch prefix.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=${THREADS_QUICK:-0}
WORK=${THREADS_WORK:-/tmp/factorout-threads}
TABLE=${1:-$WORK/threads-table.md}
mkdir -p "$WORK"
say() { echo "[threads.sh $(date -u +%H:%M:%S)] $*" >&2; }
die() {
  say "FAIL: $*"
  exit 3
}
# shellcheck source=bench/host-env.sh
. "$ROOT/bench/host-env.sh"
find_deno
find_openblas
export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
say "start on $(hostname), $(nproc 2>/dev/null) cpus; quick=$QUICK; table → $TABLE"
args=(--out "$TABLE")
[ "$QUICK" = 1 ] && args+=(--quick)
[ -n "${THREADS_LIST:-}" ] && args+=(--threads "$THREADS_LIST")
[ -n "${THREADS_MODES:-}" ] && args+=(--modes "$THREADS_MODES")
"$DENO" run -A --no-config --no-check bench/threads.ts "${args[@]}"
rc=$?
say "bench/threads.ts exited with $rc"
exit $rc
