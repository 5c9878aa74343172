# bench/host-env.sh — sourced (not run) by the scripts for the bare GPU machine (bench/gpu.sh,
# bench/trainer_threads.sh): Deno and OpenBLAS from .gpu/ (built by bench/gpu-prepare.sh) when the machine
# has none. The caller sets ROOT, WORK, PREFIX (a private unpack prefix under WORK) and defines say and die.

# unpack_deb DEB: a .deb into $PREFIX without touching / (dpkg-deb, else python3)
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


# find_deno: sets DENO (.gpu/deno.xz unpacked into $WORK, else node_modules' binary, else deno on PATH)
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

# find_openblas WHY: OpenBLAS from the system, else from .gpu's .debs (exports FACTOROUT_OPENBLAS and
# LD_LIBRARY_PATH); says WHY goes missing when neither is there
find_openblas() {
  LIBDIR=$PREFIX/usr/lib/x86_64-linux-gnu
  if ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0 '; then
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
      say "OpenBLAS: not available ($1)"
    fi
  fi
}
