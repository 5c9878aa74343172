#!/usr/bin/env bash
# Installs the Debian libraries factorout loads at run time, when they are missing and we are root:
#   libopenblas0-pthread  (the "blas" backend, opened through Deno.dlopen)
#   mesa-vulkan-drivers, libvulkan1  (a software WebGPU adapter, llvmpipe, for the "webgpu" backend tests)
#   fasttext  (the peer in bench:peers)
#   python3-sqlglot  (checks the Spark dialect of sql/spark/*.sql in tests/io_duckdb_spark_test.ts)
# It is a fast no-op when everything is present. Not root and something missing: it says what to install.
set -euo pipefail
need=()
# the loader's cache read once: `ldconfig -p | grep -q` can kill ldconfig with SIGPIPE, a miss under pipefail
cache=$(ldconfig -p 2>/dev/null || true)
[[ $cache == *libopenblas.so.0* ]] || need+=(libopenblas0-pthread)
[[ $cache == *libvulkan.so.1* ]] || need+=(libvulkan1)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
command -v fasttext >/dev/null 2>&1 || need+=(fasttext)
/usr/bin/python3 -c 'import sqlglot' >/dev/null 2>&1 || need+=(python3-sqlglot)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-system: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "ensure-system: missing Debian packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
fi
