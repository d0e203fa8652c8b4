#!/usr/bin/env bash
# One call on a GPU machine with PyTorch installed and no network: the GPU-marked tests, the small suite
# on CUDA, the independent agreement check (a user's own nn.LSTM timed with bare CUDA events, alternated
# with the harness), the noise-source and telemetry overhead checks, in about 7 minutes.
#
#   scripts/gpu-check.sh [OUT_DIR]      (default: $OUT, else ./gpu-check-out)
#
# Everything lands in OUT_DIR: one log per step, small-cuda.json (the results file), SUMMARY.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-check-out}}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python}
summary="$out/SUMMARY.txt"
: > "$summary"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.txt, note the exit status
  local name=$1 limit=$2; shift 2
  local started=$SECONDS
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - started)) s" | tee -a "$summary"
}

if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA GPU visible to torch; nothing to check" | tee -a "$summary"
  exit 2
fi
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
step env 60 "$python" -m harness.cli env
step pytest-gpu 120 "$python" -m pytest -m gpu -q -p no:cacheprovider tests
step small-cuda 180 "$python" -m harness.cli run suites/small.yaml --device cuda --out "$out/small-cuda.json" --quiet
step agreement 180 "$python" benchmarks/agreement.py --device cuda --rounds 5 --seconds 0.5 --json "$out/agreement.json"
step noise-sources 60 "$python" benchmarks/noise_sources.py --device cuda --rounds 3 --seconds 0.3
if [ -f benchmarks/telemetry_overhead.py ]; then
  step telemetry-overhead 90 "$python" benchmarks/telemetry_overhead.py --device cuda
fi
if "$python" -m harness.cli report --help > /dev/null 2>&1 && [ -f "$out/small-cuda.json" ]; then
  step report 60 "$python" -m harness.cli report "$out/small-cuda.json" -o "$out/report"
fi
# --devices: one worker per visible GPU (with one GPU, one worker; the pinning is the point); --shard + merge
step devices-all 120 "$python" -m harness.cli run suites/small.yaml --devices all --backend cudnn \
  --out "$out/devices-all.json" --quiet
step shards-merge 180 bash -c "for i in 0 1; do $python -m harness.cli run suites/small.yaml --device cuda \
  --backend cudnn --shard \$i/2 --out \"$out/shard-\$i.json\" --quiet || exit; done; \
  $python -m harness.cli merge '$out/shard-0.json' '$out/shard-1.json' -o '$out/shards-merged.json'"
cat "$summary"
