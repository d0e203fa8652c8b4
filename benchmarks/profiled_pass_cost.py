"""What the profiled pass after the timed loop (``timing.profile_iters``) adds to a run's wall time.

Runs the cases of a suite as ``rnnbench run`` does (one process, the suite's settings), with the suite's
``profile_iters`` (by default 5 on a GPU, none on a CPU: harness.spec.suite.DEFAULT_PROFILE_ITERS) or
``--profile-iters``, and prints per case the case's whole duration and the profiled pass's own duration
(``activity.pass_s``: the profiler's start, its warm-up iteration and the recorded ones, the trace's export and
parsing), and the pass's share of the run (cases without a pass count with 0 s). The first case of a process
pays the profiler's start-up.

    PYTHONPATH=. python benchmarks/profiled_pass_cost.py [SUITE] [--device cuda|cpu] [--backend B ...]
        [--profile-iters N]
"""

from __future__ import annotations

import argparse
import gc
import time
from dataclasses import replace

from harness.measure.runner import run_case
from harness.execute.session import apply_process_settings, open_suite
from harness.spec.suite import profile_iters_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", default="suites/small.yaml")
    parser.add_argument("--device", default=None)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--profile-iters", type=int, default=None, help="instead of the suite's (or the default)")
    args = parser.parse_args()
    opened = open_suite(args.suite, args.device)
    backends = args.backend or ["cudnn", "eager", "torchscript"]
    cases = opened.select(backends, ())
    apply_process_settings(opened.suite)
    settings = opened.settings()
    if args.profile_iters is not None:
        settings = replace(settings, timing=replace(settings.timing, profile_iters=args.profile_iters))
    gc.freeze()
    total_case_s = total_pass_s = 0.0
    iterations = profile_iters_for(settings.timing, opened.device.type)
    given = "--profile-iters" if args.profile_iters is not None else (
        "the suite's" if opened.suite.timing.profile_iters is not None else "the default on this device")
    print(f"{len(cases)} cases of {args.suite} on {opened.device}, profile_iters {iterations} ({given})")
    print("case                                                            case s   pass s   share")
    started = time.perf_counter()
    for case in cases:
        result = run_case(case, settings)
        if not result.ok:
            print(f"{case.key:<62} {result.status}: {result.reason}")
            continue
        pass_s = (result.activity or {}).get("pass_s") or 0.0
        total_case_s += result.duration_s
        total_pass_s += pass_s
        print(f"{case.key:<62} {result.duration_s:>6.2f}   {pass_s:>6.3f}   {pass_s / result.duration_s:>5.1%}")
    wall_s = time.perf_counter() - started
    if total_case_s:
        print(f"total: cases {total_case_s:.1f} s, profiled passes {total_pass_s:.2f} s "
              f"({total_pass_s / total_case_s:.1%} of the run's case time, {total_pass_s / wall_s:.1%} of its "
              f"wall time {wall_s:.1f} s)")


if __name__ == "__main__":
    main()
