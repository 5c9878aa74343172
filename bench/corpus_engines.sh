#!/usr/bin/env bash
# The corpus job on both engines on one synthetic text (BENCHMARKS.md, "Corpus engines"):
#   bash bench/corpus_engines.sh [TOKENS] [VOCAB] [MEMORY_LIMIT] [WORK_DIR]
# defaults: 300,000,000 tokens, a 5,000,000-word Zipf vocabulary, --memory-limit 2GB, runs/corpus-engines.
# Writes the text once (deno task corpus --synthetic-text), then times `deno task corpus` on it with the
# built-in engine and with --engine duckdb (same flags, Parquet shards) under /usr/bin/time -v, and
# prints one JSON line per engine: seconds, peak RSS, rows, vocabulary, tokens. Needs disk for the text
# (about 8 bytes a token), both corpora and DuckDB's spill folder. ENGINES="duckdb" runs one engine only.
set -euo pipefail
DENO=${DENO:-$(command -v deno || echo npx deno)}
TOKENS=${1:-300000000}
VOCAB=${2:-5000000}
MEM=${3:-2GB}
WORK=${4:-runs/corpus-engines}
FLAGS=(--mode skipgram --window 5 --min-count 5 --format parquet)
mkdir -p "$WORK"
TEXT="$WORK/zipf-$TOKENS-$VOCAB.txt"
if [ ! -s "$TEXT" ]; then
  $DENO run -A pipelines/corpus.ts --synthetic --synthetic-tokens "$TOKENS" --synthetic-vocab "$VOCAB" \
    --synthetic-text "$TEXT" >&2
fi
run() { # name, extra flags...
  local name=$1
  shift
  local out="$WORK/out-$name" log="$WORK/time-$name.txt"
  rm -rf "$out"
  /usr/bin/time -v -o "$log" $DENO run -A pipelines/corpus.ts --input "$TEXT" --out "$out" "${FLAGS[@]}" "$@" \
    >"$WORK/stdout-$name.json" 2>"$WORK/stderr-$name.txt"
  local wall rss cpu
  wall=$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')
  # CPU seconds (user + system): on a shared machine a steadier measure than the wall clock
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$log")
  echo "{\"engine\":\"$name\",\"tokens\":$TOKENS,\"vocab\":$VOCAB,\"wall\":\"$wall\",\"cpuSeconds\":$cpu,\"peakRssMB\":$((rss / 1024)),\"flags\":\"$*\",\"result\":$(tail -1 "$WORK/stdout-$name.json")}"
}
for engine in ${ENGINES:-builtin duckdb}; do
  if [ "$engine" = duckdb ]; then run duckdb --engine duckdb --memory-limit "$MEM" --spill-dir "$WORK/spill"
  else run builtin; fi
done
