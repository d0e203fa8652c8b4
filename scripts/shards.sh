#!/usr/bin/env bash
# The commands of a sharded run, in one place: the GitHub Actions matrix (.github/workflows/gpu-shards.yml) and
# the Slurm job array (scripts/slurm-shards.sh) both call this script, and tests/project/test_recipes.py runs it.
#
#   scripts/shards.sh run  SUITE I N DIR [rnnbench run options...]   shard I of N (I from 0) -> DIR/shard-I-of-N.json
#   scripts/shards.sh gate SUITE N DIR                                 merge DIR/shard-*-of-N.json -> DIR/merged.json,
#                                                                      compare with the baseline, report, history
#
# Environment: RNNBENCH (the command, default: rnnbench), THRESHOLD (default 5%), BASELINES (the baselines'
# folder, default results/baselines), HISTORY_DB (if set: the merged run is added to this history database and
# its step detection printed).
#
# Exit codes: run: 0 (a failed case is reported by the gate, not here), 2 bad input, 130 interrupted.
# gate: those of `rnnbench compare` (0 no regression or no baseline, 1 a regression, 2 unusable input).
set -euo pipefail

read -r -a rnnbench <<< "${RNNBENCH:-rnnbench}"
threshold=${THRESHOLD:-5%}
usage="usage: $0 run SUITE I N DIR [options] | $0 gate SUITE N DIR"

case "${1:-}" in
  run)
    [ $# -ge 5 ] || { echo "$usage" >&2; exit 2; }
    suite=$2 index=$3 count=$4 dir=$5
    shift 5
    mkdir -p "$dir"
    # exit 1 (a case failed) goes on: the gate reports a case that ran in the baseline and fails now
    "${rnnbench[@]}" run "$suite" --shard "$index/$count" --out "$dir/shard-$index-of-$count.json" --quiet "$@" \
      || [ $? -eq 1 ]
    ;;
  gate)
    [ $# -eq 4 ] || { echo "$usage" >&2; exit 2; }
    suite=$2 count=$3 dir=$4
    shopt -s nullglob
    shards=("$dir"/shard-*-of-"$count".json)
    [ ${#shards[@]} -gt 0 ] || { echo "rnnbench: no shard of $count in $dir" >&2; exit 2; }
    "${rnnbench[@]}" merge "${shards[@]}" -o "$dir/merged.json" --force
    baseline=$("${rnnbench[@]}" baseline-path "$dir/merged.json" --dir "${BASELINES:-results/baselines}")
    status=0
    files=("$dir/merged.json")
    if [ -f "$baseline" ]; then
      files=("$baseline" "$dir/merged.json")
      "${rnnbench[@]}" compare "$baseline" "$dir/merged.json" --threshold "$threshold" \
        --markdown "$dir/compare.md" > "$dir/compare.txt" || status=$?
      cat "$dir/compare.txt"
    else
      echo "rnnbench: no baseline for this GPU model at $baseline: nothing compared (suite $suite)" >&2
    fi
    "${rnnbench[@]}" report "${files[@]}" -o "$dir/report" --threshold "$threshold" \
      || echo "rnnbench: the report could not be written (the gate's verdict stands)" >&2
    # The history is for people (trend charts, steps over many runs); the gate above decides the exit code.
    if [ -n "${HISTORY_DB:-}" ] && mkdir -p "$(dirname "$HISTORY_DB")" \
        && "${rnnbench[@]}" history add "$dir/merged.json" --db "$HISTORY_DB"; then
      "${rnnbench[@]}" history show --db "$HISTORY_DB" -o "$dir/history" > "$dir/history.txt" || true
      "${rnnbench[@]}" history regressions --db "$HISTORY_DB" --threshold "$threshold" \
        > "$dir/history-regressions.txt" || echo "rnnbench: the history's latest step is a regression" >&2
      tail -n 1 "$dir/history-regressions.txt"
    fi
    exit "$status"
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
