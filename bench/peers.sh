#!/usr/bin/env bash
# deno task bench:peers — fastText (cbow/skipgram -loss ns, cbow -loss softmax time-boxed) against factorout
# on the same Brown text, then fastText cbow -loss softmax (time-boxed) against factorout on a synthetic
# 200,000-word Zipf text (--no-synthetic skips it); writes the <!-- bench:peers --> block of BENCHMARKS.md.
# Flags: bench/peers.ts --help.
# Needs fasttext and GNU time (/usr/bin/time -v): `scripts/ensure-system.sh bench:peers` installs them (the task
# runs it first); run directly, this says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/time ] || { echo "bench:peers: /usr/bin/time missing: sudo apt-get install time" >&2; exit 2; }
command -v fasttext >/dev/null 2>&1 || { echo "bench:peers: fasttext missing: sudo apt-get install fasttext" >&2; exit 2; }
command -v timeout >/dev/null 2>&1 || { echo "bench:peers: timeout (coreutils) missing" >&2; exit 2; }
exec deno run -A bench/peers.ts "$@"
