#!/usr/bin/env bash
# Refresh the CI regression gate's baseline of this machine's GPU model: run the regression suite and write
# results/baselines/<gpu-model>.json (the name `rnnbench baseline-path` gives). Then review and commit it.
#
#   scripts/refresh-baseline.sh                 # suites/regression.yaml on cuda
#   SUITE=suites/other.yaml DEVICE=cuda:1 scripts/refresh-baseline.sh
#
# A baseline must be clean: if any case fails, nothing is written (the run's exit code is kept).
# Run it on an otherwise idle machine, with the code the baseline should stand for (normally main).
set -euo pipefail
cd "$(dirname "$0")/.."
rnnbench=${RNNBENCH:-rnnbench}
suite=${SUITE:-suites/regression.yaml}
device=${DEVICE:-cuda}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

"$rnnbench" run "$suite" --device "$device" --out "$scratch/baseline.json" --quiet
target=$("$rnnbench" baseline-path "$scratch/baseline.json")
mkdir -p "$(dirname "$target")"
cp "$scratch/baseline.json" "$target"
echo "baseline written: $target"
echo "check it, then commit it: git add '$target' && git commit -m 'Refresh the regression baseline'"
