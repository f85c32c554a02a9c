#!/usr/bin/env bash
# Everything a GPU owner needs to check, in about 10 minutes on one GPU (run from the project root
# after `make venv`):
#   bash benchmarks/gpu_check.sh [OUT_DIR]      (default benchmarks/results/gpu_check)
#
# 1. the CUDA tests (pytest -m gpu: CUDA vs CPU and bf16 vs fp32 evaluation parity, predict on CUDA)
# 2. paper-size training throughput (presets/paper.yaml: 112 px, widths 64-128-256, M 2, N 4) in
#    clips/s with the real loader: a generated DFEW-layout set with 224 px frames, sharded at the
#    paper's 128 px short side, read by nrdfer.data.shards.train_loader with 8 workers;
#    target >= 2,000 clips/s on one H100-class GPU
# 3. nrdfer predict speed on 720p video, CPU and CUDA (benchmarks/predict_speed.py)
# Results: OUT_DIR/{pytest_gpu.txt,train_speed.json,predict_speed.json,summary.txt}. Without a
# GPU it still runs (the CUDA parts report that they did not run), so the script itself is tested
# on any machine with GPU_CHECK_SMALL=1 (tiny sizes, seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/results/gpu_check}"
PY="${PYTHON:-.venv/bin/python}"
SMALL="${GPU_CHECK_SMALL:-0}"
export DVC_NO_ANALYTICS=1 PYTHONHASHSEED=0
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
if [ "$SMALL" = 1 ]; then CLIPS=20 STEPS=2 WORKERS=0 SECONDS_VIDEO=2; else CLIPS=600 STEPS=40 WORKERS=8 SECONDS_VIDEO=20; fi
"$PY" - <<'PY' > "$OUT/summary.txt"
import platform, torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"torch {torch.__version__}, python {platform.python_version()}, GPU: {gpu}")
PY

echo "== 1/3 CUDA tests" | tee -a "$OUT/summary.txt"
"$PY" -m pytest -q -m gpu -p no:cacheprovider tests > "$OUT/pytest_gpu.txt" 2>&1 || true
tail -n 3 "$OUT/pytest_gpu.txt" | tee -a "$OUT/summary.txt"

echo "== 2/3 paper-size training throughput with the real loader" | tee -a "$OUT/summary.txt"
SET=(--set "synth.dfew_clips=$CLIPS" --set synth.afew_clips=0 --set synth.dfew_frame_size=224)
"$PY" stages/synth.py --out "$WORK/raw" "${SET[@]}" > "$WORK/synth.log" 2>&1
"$PY" stages/ingest.py --kind dfew --root "$WORK/raw/DFEW" --out "$WORK/dfew.parquet" > /dev/null
"$PY" stages/folds.py --manifest "$WORK/dfew.parquet" --out "$WORK/folds.json" > /dev/null
"$PY" stages/shards.py --manifest "$WORK/dfew.parquet" --folds "$WORK/folds.json" \
  --root "$WORK/raw/DFEW" --out "$WORK/shards" --set shards.short_side=128 > /dev/null
"$PY" benchmarks/train_speed.py --shards "$WORK/shards" --workers "$WORKERS" --steps "$STEPS" \
  --out "$OUT/train_speed.json" | tee -a "$OUT/summary.txt"

echo "== 3/3 nrdfer predict speed (720p)" | tee -a "$OUT/summary.txt"
"$PY" benchmarks/predict_speed.py --seconds "$SECONDS_VIDEO" --out "$OUT/predict_speed.json" \
  > "$WORK/predict.log" 2>&1 && tail -n 4 "$WORK/predict.log" | tee -a "$OUT/summary.txt"
echo "results in $OUT"
