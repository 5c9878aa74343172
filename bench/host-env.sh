# bench/host-env.sh — sourced by bench/gpu.sh, bench/threads.sh and bench/trainer_threads.sh: finds the Deno binary,
# OpenBLAS and the npm packages on a machine without network, from what bench/gpu-prepare.sh packed into .gpu/ (or the system's).
# Needs: ROOT (the repository), WORK (a scratch prefix), say() and die(). Sets: PREFIX, LIBDIR, DENO, and
# FACTOROUT_OPENBLAS / LD_LIBRARY_PATH when OpenBLAS comes from .gpu/. Functions: unpack_deb, find_deno,
# find_openblas.

PREFIX=$WORK/prefix
LIBDIR=$PREFIX/usr/lib/x86_64-linux-gnu
mkdir -p "$PREFIX"

# unpack a .deb into $PREFIX without touching / (dpkg-deb, else ar+tar, else python3)
unpack_deb() {
  local deb=$1
  if command -v dpkg-deb >/dev/null 2>&1; then
    dpkg-deb -x "$deb" "$PREFIX" && return 0
  fi
  python3 - "$deb" "$PREFIX" <<'PY'
import io, lzma, sys, tarfile
deb, dest = sys.argv[1], sys.argv[2]
data = open(deb, "rb").read()
assert data[:8] == b"!<arch>\n", "not an ar archive"
at = 8
while at < len(data):
    name = data[at:at + 16].decode().strip().rstrip("/")
    size = int(data[at + 48:at + 58].decode().strip())
    body = data[at + 60:at + 60 + size]
    at += 60 + size + (size & 1)
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body), mode="r:*").extractall(dest)
PY
}

# the Deno binary: .gpu/deno.xz, else the npm one, else deno on PATH
find_deno() {
  DENO=""
  if [ -s .gpu/deno.xz ]; then
    if [ ! -x "$WORK/deno" ] || [ .gpu/deno.xz -nt "$WORK/deno" ]; then
      say "unpacking .gpu/deno.xz"
      if command -v xz >/dev/null 2>&1; then
        xz -dc .gpu/deno.xz >"$WORK/deno.tmp"
      else
        python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' .gpu/deno.xz >"$WORK/deno.tmp"
      fi && chmod +x "$WORK/deno.tmp" && mv "$WORK/deno.tmp" "$WORK/deno"
    fi
    DENO=$WORK/deno
  elif [ -x node_modules/@deno/linux-x64-glibc/deno ]; then
    DENO=$ROOT/node_modules/@deno/linux-x64-glibc/deno
  elif command -v deno >/dev/null 2>&1; then
    DENO=$(command -v deno)
  fi
  [ -n "$DENO" ] && "$DENO" --version >/dev/null 2>&1 || die "no working Deno binary (run bench/gpu-prepare.sh here and carry .gpu/)"
  say "deno: $DENO ($("$DENO" --version | head -1))"
}

# Whether the dynamic loader's cache has the library $1 (e.g. libvulkan.so.1), and its path. The cache is
# read once into a variable: `ldconfig -p | grep -q` lets grep exit at the first match, ldconfig then dies of
# SIGPIPE, and under pipefail the found library reads as missing (it did: bench/gpu.sh fell back to .gpu/).
LDCONFIG_CACHE=$(ldconfig -p 2>/dev/null || true)
ldc_has() { [[ $LDCONFIG_CACHE == *$'\t'"$1 "* ]]; }
ldc_path() { awk -v n="$1" '$1 == n { print $NF; exit }' <<<"$LDCONFIG_CACHE"; }

# OpenBLAS: the system's, else .gpu/'s libopenblas0-pthread (FACTOROUT_OPENBLAS and LD_LIBRARY_PATH set)
find_openblas() {
  if ldc_has libopenblas.so.0; then
    say "OpenBLAS: system"
  else
    ok=1
    for p in libopenblas0-pthread libgfortran5 libquadmath0; do
      deb=$(ls .gpu/${p}_*.deb 2>/dev/null | head -1)
      if [ -n "$deb" ]; then unpack_deb "$deb" || ok=0; else ok=0; fi
    done
    if [ $ok = 1 ] && [ -f "$LIBDIR/openblas-pthread/libopenblas.so.0" ]; then
      export FACTOROUT_OPENBLAS=$LIBDIR/openblas-pthread/libopenblas.so.0
      export LD_LIBRARY_PATH="$LIBDIR/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      say "OpenBLAS: $FACTOROUT_OPENBLAS"
    else
      say "OpenBLAS: not available (the naive CPU column will say so)"
    fi
  fi
}

# npm packages: the trainer reads shards with apache-arrow and parquet-wasm. A machine without network and
# without node_modules gets them from .gpu/npm.tar.xz (bench/gpu-prepare.sh), used as they are: Deno's
# default mode ("auto") would try to install everything package.json lists, so this copy's deno.json is set
# to nodeModulesDir "manual" (logged). The sources run as they are (their workers need the files).
find_npm_packages() {
  [ -e node_modules/apache-arrow ] && { say "npm packages: node_modules"; return 0; }
  [ -s .gpu/npm.tar.xz ] || { say "npm packages: none (no node_modules, no .gpu/npm.tar.xz): the trainer cannot run"; return 1; }
  mkdir -p node_modules && xz -dc .gpu/npm.tar.xz | tar -x -C node_modules || return 1
  sed -i 's/"nodeModulesDir": "auto"/"nodeModulesDir": "manual"/' deno.json
  say "npm packages: .gpu/npm.tar.xz unpacked into node_modules; deno.json nodeModulesDir set to manual (this copy)"
}
