#!/usr/bin/env bash
# Everything a GPU owner needs to check, in under 8 minutes on one GPU (docs/engine.md, "GPU
# check"), from the project root or anywhere:
#   bash benchmarks/gpu_check.sh [OUT_DIR]      (default benchmarks/results/gpu_check)
#
# 1. the fast tests of the test files that hold the CUDA tests, those included (CUDA vs CPU and
#    bf16 vs fp32 evaluation parity, nrdfer predict on CUDA) -> pytest_gpu.txt
# 2. evaluation parity of the paper-size model (presets/paper.yaml: 112 px, widths 64-128-256,
#    M 2, N 4): CUDA fp32 and bf16 vs the CPU's fp32 (benchmarks/precision_parity.py)
#    -> precision_parity.json
# 3. a generated DFEW-layout set with 224-px frames, sharded at the paper's 128-px short side
# 4. paper-size training throughput in clips/s, the model alone (random uint8 clips made on the
#    GPU) -> train_speed_model.json
# 5. the same with the real training loader over part 3's shards (8 workers) -> train_speed.json;
#    target >= 2,000 clips/s on one H100-class GPU
# 6. nrdfer predict speed on 720p video, CPU and CUDA (benchmarks/predict_speed.py)
#    -> predict_speed.json
# Each part runs under its own time limit (445 s together) and a failed part does not stop the
# next. summary.txt says what ran on which machine with which packages, how each part ended and
# the headline figures; log.txt holds every part's output. Exit status: 0 when every part
# passed, 1 when one failed, 2 when the check could not start (missing packages; no CUDA device
# without GPU_CHECK_SMALL=1).
#
# Environment:
#   PYTHON            interpreter with torch (default .venv/bin/python when present, else
#                     python3); nrdfer runs from this checkout, whose root goes on PYTHONPATH
#   GPU_CHECK_WHEELS  folder of wheels (benchmarks/device_wheels.sh) installed first with
#                     pip --no-index --no-deps --target into a temporary folder on PYTHONPATH
#   GPU_CHECK_SMALL=1 tiny sizes (2-3 minutes on 2 cores, no GPU needed): tests the script
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${1:-benchmarks/results/gpu_check}"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PY="$PYTHON" DVC_NO_ANALYTICS=1 PYTHONHASHSEED=0 PYTHONUNBUFFERED=1
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
export OUT WORK
trap 'rm -rf "$WORK"' EXIT
SUMMARY="$OUT/summary.txt"
LOG="$OUT/log.txt"
rm -f "$OUT"/pytest_gpu.txt "$OUT"/precision_parity.json "$OUT"/train_speed.json \
  "$OUT"/train_speed_model.json "$OUT"/predict_speed.json
: >"$SUMMARY"
: >"$LOG"
say() { echo "$*" | tee -a "$SUMMARY"; }
refuse() {
  say "error: $*"
  exit 2
}
command -v timeout >/dev/null || refuse "the command timeout (GNU coreutils) is missing"
say "gpu_check $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, /dev/shm $(df -h /dev/shm 2>/dev/null |
  awk 'NR == 2 { print $2 }'), GPU_CHECK_SMALL=${GPU_CHECK_SMALL:-0}"

if [ -n "${GPU_CHECK_WHEELS:-}" ]; then
  compgen -G "$GPU_CHECK_WHEELS/*.whl" >/dev/null ||
    refuse "$GPU_CHECK_WHEELS holds no wheels: run bash benchmarks/device_wheels.sh"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" \
    "$GPU_CHECK_WHEELS"/*.whl >>"$LOG" 2>&1 ||
    refuse "pip could not install the wheels of $GPU_CHECK_WHEELS (see log.txt)"
  export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
  say "installed $(ls "$GPU_CHECK_WHEELS"/*.whl | wc -l) wheels of $GPU_CHECK_WHEELS"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# Every package the six parts import, so a missing one stops the check here, in seconds.
"$PY" - "$WORK/cuda" 2>>"$LOG" <<'PY' | tee -a "$SUMMARY" || refuse "$PY lacks packages the check needs (summary.txt, log.txt)"
import importlib
import platform
import sys

import torch

cuda = torch.cuda.is_available()
gpu = torch.cuda.get_device_name(0) if cuda else "none"
print(f"python {platform.python_version()} ({sys.executable}), torch {torch.__version__}, GPU: {gpu}")
found, missing = [], []
for name in ("numpy cv2 pandas pyarrow yaml pydantic pydantic_core webdataset av retinaface "
             "onnxruntime skimage PIL tqdm pytest nrdfer").split():
    try:
        found.append(f"{name} {getattr(importlib.import_module(name), '__version__', '')}".strip())
    except Exception as exc:  # noqa: BLE001 - any failure to import is reported the same way
        missing.append(f"{name} ({type(exc).__name__}: {exc})")
print("packages:", ", ".join(found))
if missing:
    print("missing:", "; ".join(missing))
    sys.exit(1)
open(sys.argv[1], "w").write("1" if cuda else "0")
PY
CUDA="$(cat "$WORK/cuda")"
if [ "${GPU_CHECK_SMALL:-0}" = 1 ]; then
  export CLIPS=60 STEPS=2 WARMUP=1 MAX_SECONDS=0 WORKERS=0 PROCS=2 VIDEO_SECONDS=2 PARITY_CLIPS=4 \
    CPU_BATCH=2
  SLACK=3 # time limits x 3: a busy 2-core machine is slower than the GPU machine's 16 cores
elif [ "$CUDA" = 1 ]; then
  PROCS="$(nproc)"
  [ "$PROCS" -gt 16 ] && PROCS=16
  export CLIPS=1000 STEPS=300 WARMUP=20 MAX_SECONDS=20 WORKERS=8 PROCS VIDEO_SECONDS=10 \
    PARITY_CLIPS=32 CPU_BATCH=8
  SLACK=1
else
  refuse "no CUDA device: the full check needs one (GPU_CHECK_SMALL=1 runs tiny sizes on a CPU)"
fi
SKIP_CPU=""
[ "$CUDA" = 1 ] && SKIP_CPU="--skip-cpu" # on a GPU machine only the CUDA figures are wanted
export SKIP_CPU

cuda_tests() {
  mapfile -t files < <(grep -rlE '^\s*@pytest\.mark\.gpu' tests --include='test_*.py' | sort)
  "$PY" -m pytest -q -m "gpu or not slow" -p no:cacheprovider "${files[@]}" \
    >"$OUT/pytest_gpu.txt" 2>&1
}
parity() {
  "$PY" benchmarks/precision_parity.py --clips "$PARITY_CLIPS" --out "$OUT/precision_parity.json"
}
make_shards() {
  set -e
  "$PY" stages/synth.py --out "$WORK/raw" --set "synth.dfew_clips=$CLIPS" \
    --set synth.afew_clips=0 --set synth.dfew_frame_size=224 --set "synth.workers=$PROCS"
  "$PY" stages/ingest.py --kind dfew --root "$WORK/raw/DFEW" --out "$WORK/dfew.parquet"
  "$PY" stages/folds.py --manifest "$WORK/dfew.parquet" --out "$WORK/folds.json"
  "$PY" stages/shards.py --manifest "$WORK/dfew.parquet" --folds "$WORK/folds.json" \
    --root "$WORK/raw/DFEW" --out "$WORK/shards" --set shards.short_side=128 \
    --set "shards.workers=$PROCS"
  rm -rf "$WORK/raw"
}
train_model() {
  "$PY" benchmarks/train_speed.py $SKIP_CPU --cpu-batch "$CPU_BATCH" --steps "$STEPS" \
    --warmup "$WARMUP" --max-seconds "$MAX_SECONDS" --out "$OUT/train_speed_model.json"
}
train_loader() {
  "$PY" benchmarks/train_speed.py $SKIP_CPU --cpu-batch "$CPU_BATCH" --shards "$WORK/shards" \
    --workers "$WORKERS" --steps "$STEPS" --warmup "$WARMUP" --max-seconds "$MAX_SECONDS" --out "$OUT/train_speed.json"
}
predict() {
  "$PY" benchmarks/predict_speed.py --seconds "$VIDEO_SECONDS" --out "$OUT/predict_speed.json"
}
export -f cuda_tests parity make_shards train_model train_loader predict

FAILED=0
part() { # part N LIMIT_SECONDS FUNCTION TITLE
  local n=$1 limit=$(($2 * SLACK)) fn=$3 title=$4 start=$SECONDS rc
  say "== $n/6 $title"
  echo "== $n/6 $fn, $(date -u +%H:%M:%S)" >>"$LOG"
  timeout -k 10 "$limit" bash -c "$fn" >>"$LOG" 2>&1
  rc=$?
  if [ "$rc" = 0 ]; then
    say "   ok, $((SECONDS - start)) s"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    say "   TIMED OUT after its $limit s (log.txt)"
    FAILED=1
  else
    say "   FAILED (exit status $rc) after $((SECONDS - start)) s (log.txt)"
    FAILED=1
  fi
}
part 1 50 cuda_tests "the CUDA tests and the fast tests beside them"
[ -f "$OUT/pytest_gpu.txt" ] && tail -n 3 "$OUT/pytest_gpu.txt" | sed 's/^/   /' | tee -a "$SUMMARY"
part 2 45 parity "evaluation parity of the paper-size model, $PARITY_CLIPS clips"
part 3 90 make_shards "$CLIPS generated DFEW-layout clips, 224 px, sharded at 128 px"
part 4 60 train_model "paper-size training throughput, the model alone"
if [ -f "$WORK/shards/index.json" ]; then
  part 5 90 train_loader "paper-size training throughput with the real loader"
else
  say "== 5/6 paper-size training throughput with the real loader"
  say "   not run: part 3 wrote no shards"
  FAILED=1
fi
part 6 110 predict "nrdfer predict speed (720p, ${VIDEO_SECONDS} s video)"

say "== figures"
"$PY" - "$OUT" <<'PY' 2>>"$LOG" | tee -a "$SUMMARY"
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
if (out / "precision_parity.json").exists():
    for name, r in json.loads((out / "precision_parity.json").read_text())["runs"].items():
        print(f"parity, {name} vs cpu_fp32: logits rel. error {r['logits_rel_error']:.2e}, "
              f"max prob diff {r['max_prob_diff']:.2e}, same class {r['same_prediction']:.3f}")
for name, what in (("train_speed_model.json", "model alone"), ("train_speed.json", "real loader")):
    if (out / name).exists():
        for run in json.loads((out / name).read_text())["runs"]:
            print(f"training, {what}: {run['clips_per_s']:.1f} clips/s on {run['device']} "
                  f"(batch {run['batch']}, {run['precision']}, {run['steps']} steps)")
if (out / "predict_speed.json").exists():
    for run in json.loads((out / "predict_speed.json").read_text())["runs"]:
        per_min = run["seconds_per_minute"]
        print(f"predict, {run['device']} {run['backend']} detect every {run['detect_every']}: "
              f"{per_min['total']:.1f} s per minute of 720p (model {per_min['model']:.1f} s, "
              f"x{run['realtime_factor']:.2f} real time)")
PY
if [ "$FAILED" = 0 ]; then say "all parts passed; results in $OUT"; else say "some parts FAILED; results in $OUT"; fi
exit "$FAILED"
