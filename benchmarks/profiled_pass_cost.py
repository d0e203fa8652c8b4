"""What the profiled pass after the timed loop (``timing.profile_iters``) adds to a run's wall time.

Runs the cases of a suite as ``rnnbench run`` does (one process, the suite's settings), with the suite's
``profile_iters`` (default 5), and prints per case the case's whole duration and the profiled pass's own
duration (``activity.pass_s``: the profiler's start, its warm-up iteration and the recorded ones, the trace's
export and parsing), and the pass's share of the run. The first case of a process pays the profiler's start-up.

    PYTHONPATH=. python benchmarks/profiled_pass_cost.py [SUITE] [--device cuda|cpu] [--backend B ...]
"""

from __future__ import annotations

import argparse
import gc

from harness.runner import run_case
from harness.session import apply_process_settings, open_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", default="suites/small.yaml")
    parser.add_argument("--device", default=None)
    parser.add_argument("--backend", action="append", default=None)
    args = parser.parse_args()
    opened = open_suite(args.suite, args.device)
    backends = args.backend or ["cudnn", "eager", "torchscript"]
    cases = opened.select(backends, ())
    apply_process_settings(opened.suite)
    settings = opened.settings()
    gc.freeze()
    total_case_s = total_pass_s = 0.0
    print(f"{len(cases)} cases of {args.suite} on {opened.device}, profile_iters {settings.timing.profile_iters}")
    print("case                                                            case s   pass s   share")
    for case in cases:
        result = run_case(case, settings)
        pass_s = (result.activity or {}).get("pass_s")
        if not result.ok or pass_s is None:
            print(f"{case.key:<62} {result.status}: {result.reason or 'no profiled pass'}")
            continue
        total_case_s += result.duration_s
        total_pass_s += pass_s
        print(f"{case.key:<62} {result.duration_s:>6.2f}   {pass_s:>6.3f}   {pass_s / result.duration_s:>5.1%}")
    if total_case_s:
        print(f"total: cases {total_case_s:.1f} s, profiled passes {total_pass_s:.2f} s "
              f"({total_pass_s / total_case_s:.1%} of the run's case time)")


if __name__ == "__main__":
    main()
