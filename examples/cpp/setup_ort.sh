#!/bin/sh
# Set up ONNX Runtime for the C++ example in examples/cpp/ort/ (one step, safe to re-run):
#   lib/      the shared library of the installed `onnxruntime` Python wheel
#             (onnxruntime/capi/libonnxruntime.so.*), linked as libonnxruntime.so(.1)
#   include/  the C/C++ API headers of Debian's libonnxruntime-dev (trixie suite; its 1.21
#             headers work with newer libraries because ONNX Runtime's C API only appends),
#             fetched with `apt-get download` through a private apt state under ort/apt/ —
#             the machine's own apt sources and state are never read for this or changed.
# Environment: PYTHON (the interpreter with onnxruntime; default python3), ORT_DIR (default
# examples/cpp/ort), DEBIAN_MIRROR (default http://deb.debian.org/debian).
# Exits non-zero, saying why, when the wheel or the mirror is unavailable.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ORT=${ORT_DIR:-$HERE/ort}
PY=${PYTHON:-python3}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "setup_ort: $*" >&2; }

# 1. the library, from the wheel
CAPI=$("$PY" -c 'import os, onnxruntime; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))' 2>/dev/null) \
  || { say "no onnxruntime in $PY; pip install onnxruntime (or set PYTHON)"; exit 1; }
LIB=$(ls "$CAPI"/libonnxruntime.so.* 2>/dev/null | head -n 1)
[ -n "$LIB" ] || { say "no libonnxruntime.so.* in $CAPI"; exit 1; }
mkdir -p "$ORT/lib"
ln -sf "$LIB" "$ORT/lib/libonnxruntime.so.1"
ln -sf "$LIB" "$ORT/lib/libonnxruntime.so"

# 2. the headers, from Debian trixie's libonnxruntime-dev
if [ -f "$ORT/include/onnxruntime_cxx_api.h" ]; then
  say "ready: $ORT (library $(basename "$LIB"))"
  exit 0
fi
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
  || { say "apt-get and dpkg-deb are needed to fetch the headers (Debian/Ubuntu)"; exit 1; }
APT="$ORT/apt"
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/etc/sources.list.d" \
  "$APT/etc/preferences.d" "$APT/state" "$APT/debs"
echo "deb [signed-by=$KEYRING] $MIRROR trixie main" > "$APT/etc/sources.list"
: > "$APT/state/status"
set -- -o Dir::Etc="$APT/etc" -o Dir::Etc::sourcelist="$APT/etc/sources.list" \
  -o Dir::Etc::sourceparts="$APT/etc/sources.list.d" -o Dir::Etc::preferencesparts="$APT/etc/preferences.d" \
  -o Dir::State="$APT/state" -o Dir::State::Lists="$APT/lists" -o Dir::State::status="$APT/state/status" \
  -o Dir::Cache="$APT" -o Dir::Cache::archives="$APT/archives" -o Debug::NoLocking=1 \
  -o APT::Get::List-Cleanup=0 -o Acquire::Retries=2
if ! timeout 600 apt-get "$@" -qq update >"$APT/update.log" 2>&1; then
  say "cannot read $MIRROR trixie (see $APT/update.log); the C++ example tests will skip"
  exit 1
fi
if ! (cd "$APT/debs" && timeout 600 apt-get "$@" -qq download libonnxruntime-dev >"$APT/download.log" 2>&1); then
  say "cannot download libonnxruntime-dev from $MIRROR trixie (see $APT/download.log)"
  exit 1
fi
DEB=$(ls "$APT"/debs/libonnxruntime-dev_*.deb | head -n 1)
rm -rf "$APT/root" && dpkg-deb -x "$DEB" "$APT/root"
HDR=$(dirname "$(find "$APT/root" -name onnxruntime_cxx_api.h | head -n 1)")
[ -f "$HDR/onnxruntime_cxx_api.h" ] || { say "$DEB holds no onnxruntime_cxx_api.h"; exit 1; }
rm -rf "$ORT/include" && cp -r "$HDR" "$ORT/include"
say "ready: $ORT (headers of $(basename "$DEB"), library $(basename "$LIB"))"
