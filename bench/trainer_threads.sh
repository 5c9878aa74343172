#!/usr/bin/env bash
# bench/trainer_threads.sh — the whole trainer against OpenBLAS threads (issue 18, item 4), for the GPU
# machine's 16-core host (no network: Deno and OpenBLAS from .gpu/, see bench/gpu-prepare.sh and
# bench/host-env.sh) or any machine: bench/trainer.ts at threads 1,2,4,8,16 (d = 256, skip-gram on a
# synthetic Zipf corpus of 500k tokens, one epoch per thread count, the output layer alone beside each),
# about 2 minutes on that host. Writes a markdown table (TRAINER_TABLE, default $WORK/trainer-threads.md).
#
#   bash bench/trainer_threads.sh            # the full table
#   QUICK=1 bash bench/trainer_threads.sh    # a tiny corpus at threads 1,2: checks the script (< 1 min)
#   TRAINER_EPOCHS=5 bash bench/trainer_threads.sh   # five epochs per thread count (the default run)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=${QUICK:-0}
WORK=${TRAINER_WORK:-/tmp/factorout-trainer-threads}
PREFIX=$WORK/prefix
mkdir -p "$PREFIX"
TABLE=${TRAINER_TABLE:-$WORK/trainer-threads.md}
say() { echo "[trainer_threads.sh $(date -u +%H:%M:%S)] $*" >&2; }
die() {
  say "FAIL: $*"
  exit 3
}
. bench/host-env.sh
find_deno
find_openblas "the trainer needs it: --backend blas"
find_npm_packages || die "the trainer needs the npm packages (node_modules or .gpu/npm.tar.xz)"
# the trainer reads shards with npm packages (apache-arrow, parquet-wasm): node_modules, or .gpu/npm.tar.xz
# unpacked by find_npm_packages; --cached-only fails at once, naming the package, where neither has them
export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
say "cpus: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
if [ "$QUICK" = 1 ]; then
  args=(--quick --threads 1,2)
else
  # TRAINER_EPOCHS=5: the job's default run, whose epoch ends before the last are written behind the steps
  args=(--threads 1,2,4,8,16 --dim 256 --tokens 500000 --vocab 200000 --layer-seconds 2 --epochs "${TRAINER_EPOCHS:-1}")
fi
say "running: deno run -A bench/trainer.ts ${args[*]} --out $TABLE"
"$DENO" run -A --cached-only bench/trainer.ts "${args[@]}" --out "$TABLE" || die "bench/trainer.ts failed"
{
  echo
  echo "Command: \`$([ "$QUICK" = 1 ] && echo "QUICK=1 ")bash bench/trainer_threads.sh\`; $(date -u +%F), $(nproc) cpus, $("$DENO" --version | head -1)."
} >>"$TABLE"
cat "$TABLE"
