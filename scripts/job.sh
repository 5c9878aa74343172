#!/usr/bin/env bash
# Runs one factorout job as the Deno process itself, for schedulers (cron, systemd, Kubernetes, Airflow):
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
  echo "job.sh: $deno is missing: run 'npm install && npx deno install' in $repo first" >&2
  exit 2
fi
if [ "$job" = train ] || [ "$job" = refresh ]; then bash "$repo/scripts/ensure-system.sh" "$job"; fi
exec "$deno" run -A --config "$repo/deno.json" "$repo/pipelines/$job.ts" "$@"
