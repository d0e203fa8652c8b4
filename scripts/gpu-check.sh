#!/usr/bin/env bash
# The GPU checks, in parts that each fit one device call (10 minutes at most; a task has about 15 minutes of
# device time in all, so a session runs `core` and, time allowing, one more part). Each part's step time
# limits, the common steps included, add up to at most 540 s (tests/project/test_gpu_check_script.py checks it),
# which leaves a 600 s device call time for its start and the transfers:
#
#   core      the GPU-marked tests, the small suite on CUDA and its report, the independent agreement check
#             (a user's own nn.LSTM timed with bare CUDA events, alternated with the harness), the CUDA-graph
#             cases of suites/variants.yaml, its tf32 max-autotune case, the profiler's after-effect
#   profile   kernel names of real traces (refreshes tests/data/kernel_names.json), rnnbench profile and its
#             chart, the cost of --nvtx and of the profiled pass, noise sources, telemetry overhead
#   variants  suites/variants.yaml (CUDA graphs, compile modes, compile_rnn, layouts, variable lengths,
#             projections, roofline) and its report
#   scale     --devices all, --shard + merge on CUDA, and one interleaved A/B session of the gate
#             (scripts/gpu-calibration.sh runs more)
#   flashrnn  FlashRNN's GPU kernels (needs flashrnn installed: the machine has no network, so it travels as a
#             wheel, pip install --no-deps flashrnn-*.whl einops-*.whl ninja-*.whl): the GPU-marked flashrnn
#             tests, then suites/flashrnn.yaml's LSTM at head dimension 64 and the fastrnns point against cuDNN
#             (flashrnn_cuda_fused compiles with nvcc, a minute or more per shape), and its report
#
#   PARTS="core profile" scripts/gpu-check.sh [OUT_DIR]     (default PARTS=core; OUT_DIR: $OUT, else ./gpu-check-out)
#   PYTHON=python3.12 scripts/gpu-check.sh                  (default python3: GPU machines often have no `python`)
#
# Everything lands in OUT_DIR as it goes: one log per step, the results files, SUMMARY.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-check-out}}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
summary="$out/SUMMARY.txt"
: > "$summary"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.txt, note the exit status
  local name=$1 limit=$2; shift 2
  local started=$SECONDS
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - started)) s" | tee -a "$summary"
}

if ! timeout 20 "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA GPU visible to torch; nothing to check" | tee -a "$summary"
  exit 2
fi
timeout 10 nvidia-smi > "$out/nvidia-smi.txt" 2>&1
part() { [[ " ${PARTS:-core} " == *" $1 "* || " ${PARTS:-core} " == *" all "* ]]; }

step env 30 "$python" -m harness.cli env
if part core; then
  step pytest-gpu 120 "$python" -m pytest -m gpu -q -p no:cacheprovider tests
  step small-cuda 110 "$python" -m harness.cli run suites/small.yaml --device cuda --out "$out/small-cuda.json" --quiet
  [ -f "$out/small-cuda.json" ] && step report 20 "$python" -m harness.cli report "$out/small-cuda.json" -o "$out/report"
  step agreement 60 "$python" benchmarks/agreement.py --device cuda --rounds 3 --seconds 0.3 --json "$out/agreement.json"
  # CUDA graphs at the launch-bound and the medium size (layouts, padded lengths; packed ones are skipped)
  step cudagraph 50 "$python" -m harness.cli run suites/variants.yaml --device cuda --backend cudagraph \
    --filter hidden_size=64,512 --out "$out/cudagraph.json" --quiet
  # the one compile@max-autotune case, under the suite's tf32: Inductor's autotuning reads the precision
  step tf32-max-autotune 60 "$python" -m harness.cli run suites/variants.yaml --device cuda --backend compile \
    --filter compile_mode=max-autotune --out "$out/tf32-max-autotune.json" --quiet
  [ -f benchmarks/profiler_after_effect.py ] && step profiler-after-effect 60 "$python" benchmarks/profiler_after_effect.py --device cuda --rounds 2 --seconds 0.3 --json "$out/profiler-after-effect.json"
fi
if part profile; then
  step kernel-names 60 "$python" scripts/record-kernel-names.py "$out/kernel-names.json"
  step profile-small 120 "$python" -m harness.cli profile suites/small.yaml --device cuda --backend cudnn --backend eager \
    --steps 5 --trace -o "$out/profile" --quiet
  [ -d "$out/profile" ] && step profile-report 20 "$python" -m harness.cli report "$out"/profile/*.profile.json -o "$out/profile-report"
  step nvtx-overhead 80 "$python" benchmarks/nvtx_overhead.py --device cuda --rounds 4 --seconds 0.4
  step profiled-pass-cost 90 "$python" benchmarks/profiled_pass_cost.py --device cuda
  step noise-sources 45 "$python" benchmarks/noise_sources.py --device cuda --rounds 3 --seconds 0.3
  step telemetry-overhead 60 "$python" benchmarks/telemetry_overhead.py --device cuda --reps 4 --seconds 0.4
fi
if part variants; then
  step variants-cuda 420 "$python" -m harness.cli run suites/variants.yaml --device cuda --out "$out/variants-cuda.json" --quiet
  [ -f "$out/variants-cuda.json" ] && step variants-report 60 "$python" -m harness.cli report "$out/variants-cuda.json" -o "$out/variants-report"
fi
if part scale; then
  # --devices: one worker per visible GPU (with one GPU, one worker; the pinning is the point); --shard + merge
  step devices-all 90 "$python" -m harness.cli run suites/small.yaml --devices all --backend cudnn \
    --out "$out/devices-all.json" --quiet
  step shards-merge 150 bash -c "for i in 0 1; do $python -m harness.cli run suites/small.yaml --device cuda \
    --backend cudnn --shard \$i/2 --out \"$out/shard-\$i.json\" --quiet || exit; done; \
    $python -m harness.cli merge '$out/shard-0.json' '$out/shard-1.json' -o '$out/shards-merged.json'"
  step ab-session 240 "$python" benchmarks/gate_calibration.py suites/regression.yaml --mode ab --pairs 1 --rounds 5 \
    --keep "$out/ab-session" --json "$out/ab-session.json"
fi
if part flashrnn; then
  step pytest-flashrnn 150 "$python" -m pytest -m gpu -q -p no:cacheprovider tests/measure/test_flashrnn.py
  step flashrnn-cuda 240 "$python" -m harness.cli run suites/flashrnn.yaml --device cuda --filter cell=lstm \
    --filter hidden_size=64,512 --backend cudnn --backend flashrnn_triton --backend flashrnn_cuda_fused \
    --out "$out/flashrnn-cuda.json" --quiet
  [ -f "$out/flashrnn-cuda.json" ] && step flashrnn-report 20 "$python" -m harness.cli report "$out/flashrnn-cuda.json" -o "$out/flashrnn-report"
fi
cat "$summary"
