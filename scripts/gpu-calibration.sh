#!/usr/bin/env bash
# The regression gate's calibration on a GPU (docs/gate.md#calibration), for a GPU session of its own: SESSIONS
# interleaved sessions of suites/regression.yaml (sides A, A again, A slowed by 20 %, taking turns, 5 rounds
# each), counting false regressions (A against A again) and detections (A against A slowed). A session takes
# about 3-5 minutes on the H100 VM; the 20 sessions of the target need several such calls.
#
#   SESSIONS=2 scripts/gpu-calibration.sh [OUT_DIR]      (default: $OUT, else ./gpu-calibration-out)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-calibration-out}}"
mkdir -p "$out/sessions"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python}
if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA GPU visible to torch; nothing to calibrate" | tee "$out/SUMMARY.txt"
  exit 2
fi
"$python" benchmarks/gate_calibration.py suites/regression.yaml --mode ab --pairs "${SESSIONS:-2}" --rounds 5 \
  --keep "$out/sessions" --json "$out/calibration.json" 2>&1 | tee "$out/SUMMARY.txt"
