#!/usr/bin/env bash
# Runs one factorout job as the Deno process itself, for schedulers (cron, systemd, Kubernetes, Airflow), and
# for `deno task train` (deno.json), so that the Debian packages the job's own flags ask for are installed
# first (scripts/ensure-system.sh sees them: `--backend webgpu` brings the WebGPU ones):
#
#   scripts/job.sh train|corpus|export|eval|refresh [flags]
#
# `npx deno task train` puts npm's deno launcher (node, spawnSync) and Deno's task runner between the
# scheduler and the job: a SIGTERM sent to the process the scheduler started ends the launcher with 143 and
# leaves the job running on its own. Here the job replaces this shell (exec), so SIGTERM/SIGINT/SIGHUP reach
# it (graceful stop: checkpoint, exit 9) and the scheduler sees the job's own exit code (docs/faults.md).
#
# The job runs in the caller's folder: relative paths (`--out relout`, `--vectors plus.vec`, train's default
# runs/latest) mean what they mean where the scheduler or the shell started it, as with `deno run`. The
# repository is found from this script's own path; Deno is given its deno.json by absolute path.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
job="${1:-}"
case "$job" in
  train | corpus | export | eval | refresh) shift ;;
  *)
    echo "job.sh: give the job first: train, corpus, export, eval or refresh (got '${job}')" >&2
    exit 2
    ;;
esac
deno="$repo/node_modules/deno/deno"
if [ ! -x "$deno" ]; then
  # a Deno of its own on PATH (`deno task train` run by it), unless that is a launcher script (npm's, which
  # would stand between the signal and the job)
  other=$(command -v deno 2>/dev/null || true) magic=""
  [ -z "$other" ] || IFS= read -r -n 2 magic <"$other" 2>/dev/null || true
  if [ -z "$other" ] || [ "$magic" = "#!" ]; then
    echo "job.sh: $deno is missing: run 'npm install && npx deno install' in $repo first" >&2
    exit 2
  fi
  deno=$other
fi
if [ "$job" = train ] || [ "$job" = refresh ]; then
  # the Debian packages the job uses (with its arguments: `--backend webgpu` brings the WebGPU ones), in
  # the background and waited for: a SIGTERM to this shell (a scheduler stopping the job) is handled at
  # once and passed on to the installer, which stops apt-get and says so (one line); this shell then ends
  # with 143 (130 for SIGINT, 129 for SIGHUP). Without it, this shell ended and left both running.
  installer=""
  relay() {
    trap '' TERM INT HUP
    # a signal between the start and `installer=$!` still finds it: $!; a background command ignores
    # SIGINT (no job control): the installer is stopped with SIGTERM
    local pid=${installer:-${!:-}}
    if [ -n "$pid" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
    exit "$1"
  }
  trap 'relay 143' TERM
  trap 'relay 130' INT
  trap 'relay 129' HUP
  bash "$repo/scripts/ensure-system.sh" "$job" -- "$@" &
  installer=$!
  rc=0
  wait "$installer" || rc=$?
  trap - TERM INT HUP
  [ "$rc" = 0 ] || exit "$rc"
fi
# Large arrays on transparent huge pages: glibc's malloc advises the kernel (MADV_HUGEPAGE) for the memory it
# maps, where the runtime's typed arrays live. A first write to new memory then faults 2 MiB at a time, not
# 4 KiB; on a VM that hands freed memory back to its host each 4 KiB fault is the host's work too, and the
# job's state copies, checkpoint reads and exports ran up to 40x slower than into memory already written
# (BENCHMARKS.md, "State copies into arrays already written"). A caller's own glibc.malloc.hugetlb is kept.
case ":${GLIBC_TUNABLES:-}:" in
  *:glibc.malloc.hugetlb=*) ;;
  *) export GLIBC_TUNABLES="glibc.malloc.hugetlb=1${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}" ;;
esac
exec "$deno" run -A --config "$repo/deno.json" "$repo/pipelines/$job.ts" "$@"
