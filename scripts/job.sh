#!/usr/bin/env bash
# Runs one factorout job as the Deno process itself, for schedulers (cron, systemd, Kubernetes, Airflow):
#
#   scripts/job.sh train|corpus|export|eval|refresh [flags]
#
# `npx deno task train` puts npm's deno launcher (node, spawnSync) and Deno's task runner between the
# scheduler and the job: a SIGTERM sent to the process the scheduler started ends the launcher with 143 and
# leaves the job running on its own. Here the job replaces this shell (exec), so SIGTERM/SIGINT/SIGHUP reach
# it (graceful stop: checkpoint, exit 9) and the scheduler sees the job's own exit code (docs/faults.md).
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-}"
case "$job" in
  train | corpus | export | eval | refresh) shift ;;
  *)
    echo "job.sh: give the job first: train, corpus, export, eval or refresh (got '${job}')" >&2
    exit 2
    ;;
esac
deno="node_modules/deno/deno"
if [ ! -x "$deno" ]; then
  echo "job.sh: $deno is missing: run 'npm install && npx deno install' in $(pwd) first" >&2
  exit 2
fi
if [ "$job" = train ] || [ "$job" = refresh ]; then bash scripts/ensure-system.sh; fi
exec "$deno" run -A "pipelines/$job.ts" "$@"
