#!/usr/bin/env bash
# The GPU check as the GPU machine runs it (docs/engine.md, "GPU check"), tried on a machine
# without a GPU: a clean virtual environment holding only the packages of the machine's image
# that nrdfer uses, plus the wheels of benchmarks/device_wheels.sh installed with
# pip --no-index --no-deps --target, runs `GPU_CHECK_SMALL=1 benchmarks/gpu_check.sh` end to end.
# Not part of make test or make demo (it installs packages: a few minutes the first time).
#   bash benchmarks/device_env_check.sh [WORK_DIR]
# WORK_DIR (default: a temporary folder, removed afterwards) holds venv/ (kept and reused while
# its package list is unchanged), wheels/ and out/ (the check's results).
# PYTHON (default python3) makes the venv; the wheels are downloaded for its Python version, so
# only pydantic-core's wheel differs from the GPU machine's set (its build is per version).
# TORCH_SPEC (default torch==2.13.0, the project's pin) picks torch.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
# The GPU machine's image (its kinds page lists it) less what nrdfer never imports.
IMAGE_PACKAGES=(numpy opencv-python-headless pandas pyarrow pyyaml scikit-image scikit-learn
  matplotlib onnx onnxruntime tqdm pillow pytest)
# What the wheels bring (import names): the clean venv must not have any of them already, nor
# dvc / dvclive, which the check must not need.
CARRIED=(pydantic pydantic_core annotated_types typing_inspection webdataset braceexpand av retinaface)
ABSENT=(dvc dvclive)
if [ -n "${1:-}" ]; then
  WORK="$1"
  mkdir -p "$WORK"
else
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
fi
WORK="$(cd "$WORK" && pwd)"
VENV="$WORK/venv"
start=$SECONDS

stamp="$TORCH_SPEC ${IMAGE_PACKAGES[*]}"
if [ "$(cat "$VENV/.device-env" 2>/dev/null)" != "$stamp" ]; then
  echo "== clean venv: $TORCH_SPEC + ${IMAGE_PACKAGES[*]}"
  rm -rf "$VENV"
  "$BASE_PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
  "$VENV/bin/python" -m pip install -q "${IMAGE_PACKAGES[@]}"
  echo "$stamp" >"$VENV/.device-env"
fi
PY="$VENV/bin/python"
for name in "${CARRIED[@]}" "${ABSENT[@]}" nrdfer; do
  if "$PY" -I -c "import $name" 2>/dev/null; then
    echo "error: the clean venv $VENV imports $name already: delete it and run again" >&2
    exit 1
  fi
done

PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
echo "== wheels for Python $PYVER"
PYTHON="$PY" bash benchmarks/device_wheels.sh "$WORK/wheels" "$PYVER"

echo "== GPU_CHECK_SMALL=1 benchmarks/gpu_check.sh with $PY and the wheels"
status=0
PYTHON="$PY" GPU_CHECK_WHEELS="$WORK/wheels" GPU_CHECK_SMALL=1 PYTHONPATH="" \
  bash benchmarks/gpu_check.sh "$WORK/out" || status=$?
for name in summary.txt log.txt pytest_gpu.txt precision_parity.json train_speed_model.json \
  train_speed.json predict_speed.json; do
  [ -s "$WORK/out/$name" ] || {
    echo "error: gpu_check.sh wrote no $name" >&2
    status=1
  }
done
for name in "${ABSENT[@]}"; do
  if grep -q "No module named '$name" "$WORK/out/log.txt"; then
    echo "error: a part of the check imports $name (log.txt)" >&2
    status=1
  fi
done
if [ "$status" = 0 ]; then
  echo "device env check passed in $((SECONDS - start)) s"
else
  tail -n 30 "$WORK/out/log.txt" >&2 || true
  echo "device env check FAILED (the end of its log.txt above)" >&2
fi
exit "$status"
