"""How often does the gate cry wolf, and how often does it catch a real slowdown?

K back-to-back pairs of `rnnbench run SUITE --rounds R` of unchanged code are compared with the gate's
default settings: every REGRESSION among them is a false alarm. Then pairs whose second run really does more
work per step (benchmarks/calibration_shim: +5, +10, +20 % through extra kernels, not scaled samples) count
the cases the gate flags. Prints a table (and --json) with the measured slowdowns, rates and wall time.

    PYTHONPATH=. python benchmarks/gate_calibration.py SUITE [--pairs 20] [--injected-pairs 5]
        [--rounds 3] [--slowdowns 0.05,0.10,0.20] [--threshold 5%] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def run_once(suite: str, out: Path, rounds: int, slowdown: float) -> None:
    environment = dict(os.environ)
    if slowdown:
        environment["PYTHONPATH"] = os.pathsep.join([str(HERE / "calibration_shim"), str(REPO),
                                                     environment.get("PYTHONPATH", "")])
        environment["RNNBENCH_INJECT_SLOWDOWN"] = str(slowdown)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", suite, "--rounds", str(rounds), "--quiet",
                           "--force", "--out", str(out)], env=environment, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"rnnbench run failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")


def compare(baseline: Path, current: Path, threshold: float) -> list:
    from harness.compare import compare_runs
    from harness.store import read_results

    return list(compare_runs(read_results(baseline), read_results(current), threshold=threshold).pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--injected-pairs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slowdowns", default="0.05,0.10,0.20")
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rnnbench-calibration-") as folder:
        folder = Path(folder)
        plan = [(0.0, args.pairs)] + [(float(s), args.injected_pairs) for s in args.slowdowns.split(",") if s]
        for slowdown, pairs in plan:
            flagged = cases = 0
            ratios = []
            for index in range(pairs):
                a, b = folder / f"a-{slowdown}-{index}.json", folder / f"b-{slowdown}-{index}.json"
                run_once(args.suite, a, args.rounds, 0.0)
                run_once(args.suite, b, args.rounds, slowdown)
                pairs_compared = compare(a, b, args.threshold)
                flagged += sum(p.verdict == "regression" for p in pairs_compared)
                cases += len(pairs_compared)
                ratios += [p.ratio for p in pairs_compared]
                print(f"slowdown {slowdown:.0%} pair {index + 1}/{pairs}: "
                      f"{sum(p.verdict == 'regression' for p in pairs_compared)} of {len(pairs_compared)} flagged; "
                      f"median change {statistics.median(p.ratio for p in pairs_compared) - 1:+.1%}", flush=True)
            rows.append({"injected": slowdown, "pairs": pairs, "cases": cases, "flagged": flagged,
                         "measured_median_change": statistics.median(ratios) - 1 if ratios else None})
    minutes = (time.perf_counter() - started) / 60
    print(f"\n{'injected':>8} {'pairs':>5} {'cases':>5} {'flagged':>7} {'rate':>6} {'measured change':>15}")
    for row in rows:
        rate = row["flagged"] / row["cases"] if row["cases"] else 0
        print(f"{row['injected']:8.0%} {row['pairs']:5d} {row['cases']:5d} {row['flagged']:7d} {rate:6.1%} "
              f"{row['measured_median_change']:+15.1%}")
    print(f"{args.rounds} rounds per run, threshold {args.threshold:.0%}; {minutes:.1f} min in all")
    if args.json:
        Path(args.json).write_text(json.dumps({"suite": args.suite, "rounds": args.rounds, "threshold": args.threshold,
                                               "minutes": minutes, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
