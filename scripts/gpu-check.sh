#!/usr/bin/env bash
# One call on a GPU machine with PyTorch installed and no network: the GPU-marked tests, the small suite
# on CUDA, the independent agreement check (a user's own nn.LSTM timed with bare CUDA events, alternated
# with the harness), the noise-source and telemetry overhead checks, the profile checks (kernel names of real
# traces, rnnbench profile, NVTX and profiled-pass cost) and the variants suite (CUDA graphs, compile modes,
# compile_rnn, layouts, variable lengths, projections, roofline).
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
step pytest-gpu 240 "$python" -m pytest -m gpu -q -p no:cacheprovider tests
step small-cuda 180 "$python" -m harness.cli run suites/small.yaml --device cuda --out "$out/small-cuda.json" --quiet
step agreement 180 "$python" benchmarks/agreement.py --device cuda --rounds 5 --seconds 0.5 --json "$out/agreement.json"
step noise-sources 60 "$python" benchmarks/noise_sources.py --device cuda --rounds 3 --seconds 0.3
if [ -f benchmarks/telemetry_overhead.py ]; then
  step telemetry-overhead 90 "$python" benchmarks/telemetry_overhead.py --device cuda
fi
# rnnbench profile (issue 14): kernel names of real traces (to refresh tests/data/kernel_names.json), the profile
# command on CUDA with its chart, the cost of --nvtx, and of the profiled pass (run with profile_iters 0 vs 5)
step kernel-names 120 "$python" scripts/record-kernel-names.py "$out/kernel-names.json"
step profile-small 180 "$python" -m harness.cli profile suites/small.yaml --device cuda --backend cudnn --backend eager \
  --steps 5 --trace -o "$out/profile" --quiet
step nvtx-overhead 120 "$python" benchmarks/nvtx_overhead.py --device cuda --rounds 6 --seconds 0.5
step profiled-pass-cost 240 "$python" benchmarks/profiled_pass_cost.py --device cuda
if [ -d "$out/profile" ]; then
  step profile-report 60 "$python" -m harness.cli report "$out"/profile/*.profile.json -o "$out/profile-report"
fi
if "$python" -m harness.cli report --help > /dev/null 2>&1 && [ -f "$out/small-cuda.json" ]; then
  step report 60 "$python" -m harness.cli report "$out/small-cuda.json" -o "$out/report"
fi
# issue 15: cudagraph, compile modes, compile_rnn, layout, variable lengths, proj_size, roofline (never run yet)
if [ -f suites/variants.yaml ]; then
  step variants-cuda 420 "$python" -m harness.cli run suites/variants.yaml --device cuda --out "$out/variants-cuda.json" --quiet
  [ -f "$out/variants-cuda.json" ] && step variants-report 60 "$python" -m harness.cli report "$out/variants-cuda.json" -o "$out/variants-report"
fi
# --devices: one worker per visible GPU (with one GPU, one worker; the pinning is the point); --shard + merge
step devices-all 120 "$python" -m harness.cli run suites/small.yaml --devices all --backend cudnn \
  --out "$out/devices-all.json" --quiet
step shards-merge 180 bash -c "for i in 0 1; do $python -m harness.cli run suites/small.yaml --device cuda \
  --backend cudnn --shard \$i/2 --out \"$out/shard-\$i.json\" --quiet || exit; done; \
  $python -m harness.cli merge '$out/shard-0.json' '$out/shard-1.json' -o '$out/shards-merged.json'"
cat "$summary"
