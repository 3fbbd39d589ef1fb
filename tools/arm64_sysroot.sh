#!/bin/sh
# An emulated 64-bit ARM (aarch64) userland for the ARM64 checks (tests/test_arm64.py,
# benchmarks/arm64.py), in build/arm64/ (one step, safe to re-run):
#   sysroot/  Debian's arm64 packages of the C library, libstdc++ and python3.11 (with their
#             dependencies), fetched with `apt-get download` through a private apt state under
#             apt/ and unpacked with dpkg-deb — the machine's own apt sources, state and
#             architectures are never read for this or changed.
#   site/     PyPI's manylinux aarch64 cp311 wheels of numpy, onnxruntime, click, pillow and
#             constriction, unpacked; the same versions as the interpreter $PYTHON has, so the
#             emulated runtime and the host's run the same library releases.
#   ort/lib/  the wheel's libonnxruntime.so for cross-compiling examples/cpp.
# Run the CLI there with qemu-aarch64-static (Debian: qemu-user-static):
#   qemu-aarch64-static -cpu cortex-a76 -L build/arm64/sysroot build/arm64/sysroot/usr/bin/python3.11 -m edgeae info BUNDLE
#   (PYTHONPATH=build/arm64/site:. ; see benchmarks/arm64.py)
# Environment: PYTHON (default python3), ARM64_DIR (default build/arm64), DEBIAN_MIRROR
# (default http://deb.debian.org/debian), ARM64_SUITE (default bookworm: python3.11).
# Exits non-zero, saying why, when the mirror or PyPI is unavailable.
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
DIR=${ARM64_DIR:-$HERE/build/arm64}
PY=${PYTHON:-python3}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${ARM64_SUITE:-bookworm}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# the interpreter and the libraries the runtime's wheels link against
ROOTS="python3.11-minimal libpython3.11-stdlib libstdc++6 libgcc-s1 libc6 zlib1g"
WHEELS="numpy onnxruntime click pillow constriction"

say() { echo "arm64_sysroot: $*" >&2; }

# 1. versions: the same as the host interpreter's
PINS=$("$PY" - "$WHEELS" <<'PYEOF'
import sys
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in sys.argv[1].split()))
PYEOF
) || { say "$PY lacks one of: $WHEELS (pip install them, or set PYTHON)"; exit 1; }
STAMP="$DIR/.ready"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SUITE $PINS" ]; then
  say "ready: $DIR ($SUITE; $PINS)"
  exit 0
fi

# 2. the Debian arm64 userland
command -v apt-get >/dev/null && command -v apt-cache >/dev/null && command -v dpkg-deb >/dev/null \
  || { say "apt-get, apt-cache and dpkg-deb are needed for the arm64 userland (Debian/Ubuntu)"; exit 1; }
[ -f "$KEYRING" ] || { say "$KEYRING is missing (apt-get install debian-archive-keyring)"; exit 1; }
APT="$DIR/apt"
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/etc/sources.list.d" \
  "$APT/etc/preferences.d" "$APT/state" "$APT/debs"
echo "deb [arch=arm64 signed-by=$KEYRING] $MIRROR $SUITE main" > "$APT/etc/sources.list"
: > "$APT/state/status"
set -- -o Dir::Etc="$APT/etc" -o Dir::Etc::sourcelist="$APT/etc/sources.list" \
  -o Dir::Etc::sourceparts="$APT/etc/sources.list.d" -o Dir::Etc::preferencesparts="$APT/etc/preferences.d" \
  -o Dir::State="$APT/state" -o Dir::State::Lists="$APT/lists" -o Dir::State::status="$APT/state/status" \
  -o Dir::Cache="$APT" -o Dir::Cache::archives="$APT/archives" -o Debug::NoLocking=1 \
  -o APT::Architecture=arm64 -o APT::Architectures=arm64 \
  -o APT::Get::List-Cleanup=0 -o Acquire::Retries=2
if ! timeout 600 apt-get "$@" -qq update >"$APT/update.log" 2>&1; then
  say "cannot read $MIRROR $SUITE (see $APT/update.log); the ARM64 checks will skip"
  exit 1
fi
# every package the roots depend on (virtual names, shown as <name>, are provided by real ones),
# less the package tools and perl that maintainer scripts need (nothing here runs those)
PKGS=$(apt-cache "$@" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances $ROOTS | grep -v '^ ' | grep -v '^<' | sed 's/:arm64$//' \
  | grep -Ev '^(dpkg|install-info|tar|perl.*|libperl.*|mailcap|mime-support)$' | sort -u)
rm -f "$APT"/debs/*.deb
if ! (cd "$APT/debs" && timeout 600 apt-get "$@" -qq download $PKGS >"$APT/download.log" 2>&1); then
  say "cannot download the arm64 packages from $MIRROR $SUITE (see $APT/download.log)"
  exit 1
fi
rm -rf "$DIR/sysroot" && mkdir -p "$DIR/sysroot"
for deb in "$APT"/debs/*.deb; do dpkg-deb -x "$deb" "$DIR/sysroot"; done
[ -x "$DIR/sysroot/usr/bin/python3.11" ] || { say "no python3.11 in the $SUITE arm64 packages"; exit 1; }

# 3. the runtime's wheels for aarch64 CPython 3.11, unpacked (pure-Python ones are any-platform)
rm -rf "$DIR/wheels" "$DIR/site" && mkdir -p "$DIR/wheels" "$DIR/site"
PLATFORMS=$(for v in $(seq 36 -1 17); do printf ' --platform manylinux_2_%s_aarch64' "$v"; done)
_wheels() {  # pip download of aarch64 cp311 wheels: _wheels LOG PIN...
  log=$1; shift
  # shellcheck disable=SC2086
  timeout 900 "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --implementation cp --abi cp311 --abi abi3 --abi none $PLATFORMS --platform any \
    -d "$DIR/wheels" "$@" >"$log" 2>&1
}
NEEDED=$(echo "$PINS" | tr ' ' '\n' | grep -v '^constriction==')
# shellcheck disable=SC2086
_wheels "$DIR/pip.log" $NEEDED || { say "cannot download the aarch64 wheels of $NEEDED (see $DIR/pip.log)"; exit 1; }
# constriction (the .eae range coder) publishes no Linux aarch64 wheel and no source; without
# it the emulated runtime encodes and decodes, and .eae streams come from the C codec
: > "$DIR/missing"
CPIN=$(echo "$PINS" | tr ' ' '\n' | grep '^constriction==')
_wheels "$DIR/pip-constriction.log" "$CPIN" || { echo "$CPIN" >> "$DIR/missing"; say "no aarch64 wheel of $CPIN on PyPI"; }
"$PY" - "$DIR/wheels" "$DIR/site" <<'PYEOF'
import sys, zipfile
from pathlib import Path
for whl in sorted(Path(sys.argv[1]).glob("*.whl")):
    with zipfile.ZipFile(whl) as z:
        z.extractall(sys.argv[2])
        for info in z.infolist():  # keep the executable bits of the shared libraries
            mode = info.external_attr >> 16
            if mode:
                (Path(sys.argv[2]) / info.filename).chmod(mode & 0o777)
PYEOF

# 4. the C/C++ library for examples/cpp
LIB=$(ls "$DIR"/site/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n 1)
[ -n "$LIB" ] || { say "no libonnxruntime.so.* in the aarch64 onnxruntime wheel"; exit 1; }
mkdir -p "$DIR/ort/lib"
ln -sf "$LIB" "$DIR/ort/lib/libonnxruntime.so.1"
ln -sf "$LIB" "$DIR/ort/lib/libonnxruntime.so"
echo "$SUITE $PINS" > "$STAMP"
say "ready: $DIR ($SUITE; $PINS)"
