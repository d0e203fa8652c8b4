#!/usr/bin/env bash
# Run a suite as a Slurm job array, one shard per task on one GPU each, then merge, compare and report in a job
# that starts when every task has ended (afterany: a failed shard still leaves the others to merge).
#
#   scripts/slurm-shards.sh SUITE N [DIR] [sbatch options...]      (on a login node, from the checkout)
#
# submits  sbatch --array=0-(N-1) ... scripts/shards.sh run SUITE $SLURM_ARRAY_TASK_ID N DIR
# then     sbatch --dependency=afterany:<array job> ... scripts/shards.sh gate SUITE N DIR
# The environment (RNNBENCH, THRESHOLD, BASELINES, HISTORY_DB; see scripts/shards.sh) is passed on to the jobs.
# SBATCH names another sbatch (tests use a stand-in).
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 SUITE N [DIR] [sbatch options...]" >&2; exit 2; }
suite=$1 count=$2
dir=${3:-results/slurm-$(date +%Y%m%d-%H%M%S)}
shift $(( $# >= 3 ? 3 : 2 ))
[[ $count =~ ^[1-9][0-9]*$ ]] || { echo "$0: N must be a whole number above 0, got '$count'" >&2; exit 2; }
read -r -a sbatch <<< "${SBATCH:-sbatch}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$dir"

array=$("${sbatch[@]}" --parsable --export=ALL --job-name=rnnbench-shard --array="0-$((count - 1))" --gres=gpu:1 \
  --output="$dir/shard-%a.log" "$@" \
  --wrap="'$here/shards.sh' run '$suite' \"\$SLURM_ARRAY_TASK_ID\" $count '$dir'")
array=${array%%;*}  # --parsable prints "jobid[;cluster]"
gate=$("${sbatch[@]}" --parsable --export=ALL --job-name=rnnbench-gate --dependency="afterany:$array" \
  --output="$dir/gate.log" "$@" --wrap="'$here/shards.sh' gate '$suite' $count '$dir'")
echo "submitted shards as job array ${array} (0-$((count - 1))), the gate as job ${gate%%;*}; results in $dir"
