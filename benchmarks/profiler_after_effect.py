"""Whether a profiled pass leaves anything behind: a case timed after one, against the same case timed without.

``rnnbench run`` runs each case's profiled pass (``timing.profile_iters``) right after its timed loop, in the
same process as every later case; Kineto may keep CUPTI subscribed after the session (pytorch#144455) unless it
is torn down (``TEARDOWN_CUPTI=1``, which rnnbench sets: harness/measure/activity.py). This times, in fresh processes,
the step of a case before and after a profiled pass of it (``profile_activity``, as ``rnnbench run`` calls it),
and the same before and after with no pass between (control: what the process drifts by itself):

    ratio  = median step after / median step before, per process
    effect = median ratio of the arm / median ratio of the control - 1

Arms: ``control`` (no pass), ``teardown`` (the pass as rnnbench runs it: TEARDOWN_CUPTI=1 unless set),
``kept`` (the pass with TEARDOWN_CUPTI=0: CUPTI stays attached, what a torch without teardown does), in
rotating order, ``--rounds`` processes each. Target on a GPU: ``teardown`` within 1 % of the control; ``kept``
shows what the teardown saves. On a CPU there is no CUPTI: every arm should read 0 within the noise.

    PYTHONPATH=. python benchmarks/profiler_after_effect.py [--device cuda|cpu] [--backend eager] [--rounds 5]
        [--seconds 0.5] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARMS = ("control", "teardown", "kept")
SHAPE = {"batch": 8, "seq_len": 50, "input_size": 64, "hidden_size": 64}  # launch-bound on a GPU: hits it most
PROFILE_ITERS = 5  # as the suites' default


def child(arm: str, device_name: str, backend: str, seconds: float) -> dict:
    """One process: time the case, profile it (or not), time it again."""
    import torch

    from harness.measure.activity import profile_activity
    from harness.spec.cases import Case
    from harness.measure.runner import RunSettings, prepare_case
    from harness.measure.timing import run_iteration

    device = torch.device(device_name)
    case = Case(cell="lstm", backend=backend, mode="forward_backward", num_layers=1, bidirectional=False,
                dtype="float32", device_type=device.type, **SHAPE)
    prepared = prepare_case(case, RunSettings(device=device))
    region = case.primary_region
    for _ in range(10):
        run_iteration(prepared.work, prepared.clock)

    def step_median_ms() -> float:
        samples = []
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            while time.perf_counter() - started < seconds or len(samples) < 20:
                samples.append(run_iteration(prepared.work, prepared.clock)[region])
        finally:
            gc.enable()
        return statistics.median(samples)

    before_ms = step_median_ms()
    pass_facts = {}
    if arm != "control":
        activity = profile_activity(prepared.work, prepared.clock, device.type, PROFILE_ITERS)
        pass_facts = {"pass_available": activity.get("available"), "profiler_teardown": activity.get("profiler_teardown"),
                      "pass_s": activity.get("pass_s")}
        for _ in range(10):  # as the next case's build, parity and warm-up would, before its timed loop
            run_iteration(prepared.work, prepared.clock)
    after_ms = step_median_ms()
    return {"arm": arm, "before_ms": before_ms, "after_ms": after_ms, "ratio": after_ms / before_ms, **pass_facts}


def run_child(arm: str, args) -> dict:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                               environment.get("PYTHONPATH")]))
    if arm == "kept":
        environment["TEARDOWN_CUPTI"] = "0"
    done = subprocess.run([sys.executable, __file__, "--child", arm, "--device", args.device, "--backend",
                           args.backend, "--seconds", str(args.seconds)], capture_output=True, text=True,
                          env=environment, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"profiler_after_effect: the {arm} process failed: "
                         f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda or cpu  [default: cuda when there is one]")
    parser.add_argument("--backend", default="eager")
    parser.add_argument("--rounds", type=int, default=5, help="processes per arm")
    parser.add_argument("--seconds", type=float, default=0.5, help="timed seconds before and after, per process")
    parser.add_argument("--json", default=None, help="also write the figures there")
    parser.add_argument("--child", choices=ARMS, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.child:
        print(json.dumps(child(args.child, args.device, args.backend, args.seconds)))
        return

    started = time.perf_counter()
    processes = {arm: [] for arm in ARMS}
    for round_index in range(args.rounds):
        shift = round_index % len(ARMS)  # rotate the order, so no arm always runs first (or on a cooler GPU)
        for arm in ARMS[shift:] + ARMS[:shift]:
            processes[arm].append(run_child(arm, args))
    control = statistics.median(p["ratio"] for p in processes["control"])
    arms = {}
    for arm, done in processes.items():
        ratios = [p["ratio"] for p in done]
        median = statistics.median(ratios)
        arms[arm] = {"median_ratio": median, "effect": median / control - 1, "ratios": ratios,
                     "before_ms_median": statistics.median(p["before_ms"] for p in done),
                     "profiler_teardown": sorted({str(p.get("profiler_teardown")) for p in done if arm != "control"})}
    import torch

    figures = {"device": args.device, "backend": args.backend, "shape": SHAPE, "rounds": args.rounds,
               "seconds": args.seconds, "torch": torch.__version__, "cuda": torch.version.cuda,
               "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
               "arms": arms, "wall_s": round(time.perf_counter() - started, 1)}
    print(f"{args.backend} LSTM B{SHAPE['batch']} T{SHAPE['seq_len']} H{SHAPE['hidden_size']} on {args.device} "
          f"({figures['gpu'] or 'CPU'}), torch {torch.__version__}, {args.rounds} processes per arm, "
          f"{args.seconds:g} s timed before and after")
    print("arm        step before   after/before (median, range)   effect vs control   CUPTI after the pass")
    for arm, row in arms.items():
        print(f"{arm:<10} {row['before_ms_median']:>8.3f} ms   {row['median_ratio']:.4f} "
              f"({min(row['ratios']):.4f}-{max(row['ratios']):.4f})        {row['effect']:+.2%}            "
              f"{', '.join(row['profiler_teardown']) or '-'}")
    spread = max(statistics.median(abs(r - row["median_ratio"]) for r in row["ratios"]) for row in arms.values())
    print(f"target: teardown within 1 % of control (typical scatter of a ratio here: {spread:.2%}); "
          f"{figures['wall_s']:.0f} s in all")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
