#!/usr/bin/env bash
# The regression gate's calibration on a GPU (docs/gate.md#calibration), in parts that each fit one 10-minute call
# of a lent GPU: SESSIONS interleaved sessions of suites/regression.yaml, as `rnnbench ab` runs them (4 blocks a
# case, paired by block), with the sides A, A again and one per SLOWDOWNS (A slowed by really doing more work per
# step: benchmarks/calibration_shim), each ROUNDS rounds. A against A again counts false regressions, A against
# each slowed side counts detections. Every finished session's files are kept under OUT_DIR/sessions, numbered from
# FIRST_SESSION, so that sessions from several calls (or machines) are tallied together at the end:
#
#   FIRST_SESSION=0 SESSIONS=1 scripts/gpu-calibration.sh [OUT_DIR]    (default: $OUT, else ./gpu-calibration-out)
#   python benchmarks/gate_calibration.py suites/regression.yaml --from-kept OUT_DIR/sessions --simulate 300
#
# Defaults and why:
#   SLOWDOWNS=0.10          the gate's target (docs/gate.md#calibration-2026-12-02); 0.05,0.10,0.20 for the
#                           whole curve, at 5/3 the time of the default
#   ROUNDS=8                the rounds the CPU calibration chose; --from-kept also tallies the first 3 .. 8
#   BACKENDS=cudnn          the cudnn cases only (6 of the suite's 12): one side's round of the whole suite took
#                           56 s on the H100 (compile_module builds for 8 s, torchscript and eager warm up for
#                           6-12 s a case) against about 10 s for the cudnn cases (shared/gpu-runs reg-a.json), so
#                           a session of the whole suite does not fit a call. BACKENDS="" takes every backend.
#   LIMIT_S=540             the session stops there (a call is 600 s), keeping the sessions that finished
# Estimated, not measured: 3 sides x 8 rounds x (10 s of cudnn cases + a worker's start) = 5-7 minutes a session.
# The first call should run one session and read its "session K: N s" line before asking for more.
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
selection=()
for backend in ${BACKENDS-cudnn}; do selection+=(--backend "$backend"); done
timeout --signal=INT --kill-after=30 "${LIMIT_S:-540}" "$python" benchmarks/gate_calibration.py suites/regression.yaml --mode ab \
  --pairs "${SESSIONS:-1}" --first-session "${FIRST_SESSION:-0}" --rounds "${ROUNDS:-8}" \
  --slowdowns "${SLOWDOWNS:-0.10}" "${selection[@]}" --keep "$out/sessions" --json "$out/calibration.json" \
  2>&1 | tee "$out/SUMMARY.txt"
status=${PIPESTATUS[0]}
ls "$out/sessions" | sed 's/-.*//' | sort -u | sed 's/^/kept: /' | tee -a "$out/SUMMARY.txt"
exit "$status"
