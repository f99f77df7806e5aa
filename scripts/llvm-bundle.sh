#!/usr/bin/env bash
# Provides the static LLVM 23.1 that burn's `cuda`, `cpu` (CubeCL CPU JIT) and `rocm` backends
# link, on machines that cannot reach GitHub (where burn's build script downloads it from).
#
# burn depends on `cubecl-llvm`, whose build dependency `tracel-llvm-bundler` 23.1.0-4 looks for
# `<data dir>/tracel/tracel-llvm-23.1.0-4/` (`<data dir>` = $XDG_DATA_HOME, else ~/.local/share)
# and skips its download when that directory holds `.tracel-llvm-installed`. This script fills that
# directory with the static LLVM 23.1 build that PyPI carries (`mlc-llvm-static`, with the NVPTX
# and AMDGPU targets from `mlc-llvm-static-extra-targets`). With internet you do not need it: the
# bundler downloads its own copy. An existing bundle, downloaded or not, is left alone.
#
# Usage: scripts/llvm-bundle.sh            (then build, e.g. `cargo build --features cuda`)
# Environment:
#   XDG_DATA_HOME           where the bundler looks (export the same value when running cargo)
#   PROTTRANS_LLVM_WHEELS   where the wheels are unpacked (default: <data dir>/prottrans/mlc-llvm-23.1.1)
#   PYTHON                  python3 with the venv module (default: python3); llvm-config in the
#                           bundle is a Python script, so python3 is also needed at build time
set -euo pipefail

BUNDLE_VERSION="23.1.0-4"
WHEEL_VERSION="23.1.1.post0"
DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}"
BUNDLE="$DATA_DIR/tracel/tracel-llvm-$BUNDLE_VERSION"
WHEELS="${PROTTRANS_LLVM_WHEELS:-$DATA_DIR/prottrans/mlc-llvm-$WHEEL_VERSION}"
PYTHON="${PYTHON:-python3}"

if [ -f "$BUNDLE/.tracel-llvm-installed" ]; then
    echo "LLVM bundle already present: $BUNDLE"
    exit 0
fi
if [ -e "$BUNDLE" ]; then
    echo "error: $BUNDLE exists but has no .tracel-llvm-installed marker (an interrupted download?);" >&2
    echo "       remove it and run this script again" >&2
    exit 1
fi

if [ ! -x "$WHEELS/mlc_llvm_static/static/bin/llvm-config" ]; then
    echo "Installing mlc-llvm-static $WHEEL_VERSION (static LLVM 23.1, ~400 MB) into $WHEELS"
    # A throw-away venv gives a pip that Debian's externally-managed Python does not refuse.
    pip_venv="$(mktemp -d)"
    trap 'rm -rf "$pip_venv"' EXIT
    "$PYTHON" -m venv "$pip_venv"
    rm -rf "$WHEELS.partial"
    "$pip_venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --target "$WHEELS.partial" \
        "mlc-llvm-static==$WHEEL_VERSION" "mlc-llvm-static-extra-targets==$WHEEL_VERSION"
    rm -rf "$WHEELS"
    mv "$WHEELS.partial" "$WHEELS"
fi

mkdir -p "$DATA_DIR/tracel"
ln -sfn "$WHEELS/mlc_llvm_static/static" "$BUNDLE"
# The llvm-config in the wheel is a Python script; check it runs before marking the bundle done.
targets="$("$BUNDLE/bin/llvm-config" --targets-built)"
version="$("$BUNDLE/bin/llvm-config" --version)"
case "$targets" in
    *NVPTX*) ;;
    *) echo "error: $BUNDLE lacks the NVPTX target (found: $targets)" >&2; exit 1 ;;
esac
touch "$BUNDLE/.tracel-llvm-installed"
echo "LLVM $version ($targets) ready in $BUNDLE"
if [ -n "${XDG_DATA_HOME:-}" ]; then
    echo "Export XDG_DATA_HOME=$XDG_DATA_HOME when you run cargo."
fi
