#!/usr/bin/env bash
# Installs the Debian packages one command needs, when they are missing and we are root:
#
#   scripts/ensure-system.sh COMMAND [-- ARGS…]   COMMAND: train, refresh, test, bench, bench:peers,
#                                bench:quality, bench:sweep, or all (`deno task setup`: every package below);
#                                ARGS: the job's own arguments (scripts/job.sh, which `deno task train` runs,
#                                passes them), read only for the backend they ask for
#
#   libopenblas0-pthread         the "blas" backend, opened through Deno.dlopen: train, refresh, test, bench*
#   libvulkan1, mesa-vulkan-drivers  a software WebGPU adapter (llvmpipe): test (the "webgpu" backend tests),
#                                bench (`--backend webgpu`), and a job whose ARGS ask for `--backend webgpu`
#                                (`--backend=webgpu`, or a `--config FILE` holding "backend": "webgpu" that
#                                no --backend flag overrides): `deno task train --backend webgpu`
#   python3-sqlglot              test (the Spark dialect of sql/spark/*.sql in tests/io_duckdb_spark_test.ts)
#   fasttext, time               the peer and its clock (/usr/bin/time -v): bench:peers, bench:quality, test
#                                (tests/bench_quality_test.ts runs the fastText curves when it is there)
#
# A package is *needed* (the command cannot run without it: bench:peers' fastText and GNU time) or *wanted*
# (the command runs without it: train, refresh and bench:sweep fall back to the js backend, a test skips, a
# bench section fails alone (bench/main.ts), a bench:quality curve is left out). Under CI=true the backends
# (OpenBLAS, the WebGPU adapter) are needed:
# CI fails on a missing backend instead of skipping (.ci/run).
#
# It is a fast no-op when everything is present. What cannot be installed (not root, no apt-get, or apt-get
# fails: an offline machine) is named on one line `<command>: …` with the command that installs it: a needed
# package ends here with exit 2 (lib/core/exit_codes.ts: "install the backend"), a wanted one is a warning
# and the command goes on. FACTOROUT_SYSTEM_ROOT (tests only) is prepended to the absolute paths checked.
#
# SIGTERM, SIGINT or SIGHUP ends it with 143, 130 or 129 (128 + the signal, as a shell reports it) after one
# line `<command>: stopped by SIG… while installing … | while checking …; … rerun the command`, and the task's
# command (or scripts/job.sh's job) never starts. apt-get, when running, is stopped too: it runs in the
# background and is waited for, so that the signal is handled at once, not when apt-get ends, and apt-get
# is never left running on its own (tests/ensure_system_test.ts).
set -euo pipefail
who="${1:-}"
# a stop signal: apt-get (when running) is stopped and waited for, one line says so, exit 128 + the signal
aptlog="" running=0 child="" installing=""
stop() {
  trap '' TERM INT HUP
  # a signal between apt-get's start and `child=$!` still finds it: $!
  local pid=$child
  [ -z "$pid" ] && [ "$running" = 1 ] && pid=$!
  # a background command ignores SIGINT (no job control): apt-get is asked to stop with SIGTERM
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  [ -z "$aptlog" ] || rm -f "$aptlog"
  if [ -n "$installing" ]; then
    echo "$who: stopped by SIG$1 while installing the Debian packages $installing (apt-get was stopped" \
      "too; should apt-get later say dpkg was interrupted, run 'sudo dpkg --configure -a'); nothing else" \
      "ran: rerun the command" >&2
  else
    echo "$who: stopped by SIG$1 while checking its Debian packages; nothing was installed and nothing" \
      "else ran: rerun the command" >&2
  fi
  exit "$2"
}
trap 'stop TERM 143' TERM
trap 'stop INT 130' INT
trap 'stop HUP 129' HUP
[ $# -gt 0 ] && shift
[ "${1:-}" = -- ] && shift
# the job's arguments: does it ask for the WebGPU backend (a flag, else its --config file; flags win)?
backend="" config=""
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="${2:-}"; [ $# -lt 2 ] || shift ;;
    --backend=*) backend="${1#--backend=}" ;;
    --config) config="${2:-}"; [ $# -lt 2 ] || shift ;;
    --config=*) config="${1#--config=}" ;;
  esac
  shift
done
if [ -z "$backend" ] && [ -n "$config" ] && [ -f "$config" ] && [ -r "$config" ]; then
  text=$(<"$config") || text=""
  re='"backend"[[:space:]]*:[[:space:]]*"([^"]*)"'
  [[ $text =~ $re ]] && backend="${BASH_REMATCH[1]}"
fi
root="${FACTOROUT_SYSTEM_ROOT:-}"
ci=false
[ "${CI:-}" = true ] && ci=true

# the loader's cache read once: `ldconfig -p | grep -q` can kill ldconfig with SIGPIPE, a miss under pipefail
cache=$(ldconfig -p 2>/dev/null || true)
# present PACKAGE: whether the package's file is there
present() {
  case "$1" in
    libopenblas0-pthread) [[ $cache == *libopenblas.so.0* ]] ;;
    libvulkan1) [[ $cache == *libvulkan.so.1* ]] ;;
    mesa-vulkan-drivers) compgen -G "$root/usr/share/vulkan/icd.d/lvp_icd*.json" >/dev/null ;;
    python3-sqlglot) "$root/usr/bin/python3" -c 'import sqlglot' >/dev/null 2>&1 ;;
    fasttext) command -v fasttext >/dev/null 2>&1 ;;
    time) [ -x "$root/usr/bin/time" ] ;;
  esac
}

blas=libopenblas0-pthread
gpu=(libvulkan1 mesa-vulkan-drivers)
needed=()
wanted=()
case "$who" in
  train | refresh | bench:sweep) wanted=("$blas") ;;
  bench) wanted=("$blas" "${gpu[@]}") ;;
  bench:quality) wanted=("$blas" fasttext time) ;;
  bench:peers) needed=(fasttext time) wanted=("$blas") ;;
  test) wanted=("$blas" "${gpu[@]}" python3-sqlglot fasttext time) ;;
  all) wanted=("$blas" "${gpu[@]}" python3-sqlglot fasttext time) ;;
  *)
    echo "ensure-system: give the command whose packages to install: train, refresh, test, bench," \
      "bench:peers, bench:quality, bench:sweep or all (got '${who}')" >&2
    exit 2
    ;;
esac
if [ "$backend" = webgpu ]; then
  for p in "${gpu[@]}"; do [[ " ${wanted[*]} " == *" $p "* ]] || wanted+=("$p"); done
fi
if $ci && [ "$who" != all ]; then
  # CI: a backend that the command may load is needed
  rest=()
  for p in "${wanted[@]}"; do
    case "$p" in
      "$blas" | libvulkan1 | mesa-vulkan-drivers) needed+=("$p") ;;
      *) rest+=("$p") ;;
    esac
  done
  wanted=(${rest[@]+"${rest[@]}"})
fi

missing=()
for p in ${needed[@]+"${needed[@]}"} ${wanted[@]+"${wanted[@]}"}; do present "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

why=""
if [ "$(id -u)" != 0 ]; then
  why="not root"
elif ! command -v apt-get >/dev/null 2>&1; then
  why="no apt-get here"
else
  echo "$who: installing the Debian packages ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # apt-get runs in the background and is waited for: bash runs a trap only once a foreground command has
  # ended, so a SIGTERM (a scheduler stopping the job) would wait for the whole install, and without the
  # trap the script ended at once and left apt-get running on its own
  installing="${missing[*]}"
  # apt-get's output, for the line naming why an install failed (none when no temporary file can be made)
  aptlog=$(mktemp "${TMPDIR:-/tmp}/ensure-system.XXXXXX" 2>/dev/null) || aptlog=""
  # apt ARGS…: apt-get ARGS in the background, waited for; its output in $log
  apt() {
    local rc=0
    running=1
    apt-get "$@" >"${aptlog:-/dev/null}" 2>&1 &
    child=$!
    wait "$child" || rc=$?
    running=0 child=""
    log=""
    [ -z "$aptlog" ] || log=$(<"$aptlog")
    return "$rc"
  }
  # an update that fails (offline) may still leave a usable package list: the install says
  apt update -qq || true
  # one package at a time: one that cannot be installed does not keep the others (a backend) out
  for p in "${missing[@]}"; do
    if ! apt install -y -qq --no-install-recommends "$p"; then
      last="${log%"${log##*[![:space:]]}"}"
      why="apt-get install failed: ${last##*$'\n'}"
    fi
  done
  installing=""
  [ -z "$aptlog" ] || rm -f "$aptlog"
  aptlog=""
  # what apt-get installed is in the loader's cache only now
  cache=$(ldconfig -p 2>/dev/null || true)
fi

still=()
for p in "${missing[@]}"; do present "$p" || still+=("$p"); done
if [ ${#still[@]} -eq 0 ]; then exit 0; fi
lacking=()
for p in "${still[@]}"; do
  for n in ${needed[@]+"${needed[@]}"}; do [ "$p" = "$n" ] && lacking+=("$p"); done
done
if [ ${#lacking[@]} -gt 0 ]; then
  echo "$who: missing Debian packages ${still[*]} (${why:-installed, but not found}): install them with" \
    "'sudo apt-get install ${still[*]}' (or run as root on a machine that reaches its apt mirror)" >&2
  exit 2
fi
echo "$who: warning: missing Debian packages ${still[*]} (${why:-installed, but not found}); going on without" \
  "them (a js fallback, a skipped test or curve); install them with 'sudo apt-get install ${still[*]}'" >&2
