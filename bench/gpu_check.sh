#!/usr/bin/env bash
# One short GPU run (under 5 minutes on one GPU): device crops vs OpenCV, fp16/TensorRT keypoints vs fp32 on the
# darkpose fixture's real-photo case, and persons/s for torch fp32/fp16/compiled and TensorRT at batch 1/8/32/64.
# On a machine without CUDA it runs the crop check on the CPU and prints what it skipped.
# Usage: bash bench/gpu_check.sh [--card NAME] [--batches 1,8,32,64] [--reps 10]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
exec timeout "${GPU_CHECK_TIMEOUT_S:-600}" "$PY" bench/gpu_check.py "$@"
