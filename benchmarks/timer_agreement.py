"""Does the harness measure what an independent timer measures?

For a few cases, the harness's median step time (forward + MSE loss + backward) is set beside
``torch.utils.benchmark.Timer`` timing the same module on the same inputs. The two run interleaved, a few
rounds each, in one process, so that drift of a shared machine hits both alike; the figure that counts is
the median over rounds of harness median / Timer median. Exit status 1 when a case disagrees by more than
the tolerance (5 % by default).

    python benchmarks/timer_agreement.py [--device cpu|cuda] [--rounds 5] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

from harness.backends import build_backend
from harness.cases import Case
from harness.env import resolve_device
from harness.precision import apply_math_precision
from harness.runner import RunSettings, make_inputs, make_reference
from harness.stats import summarize
from harness.suite import Timing
from harness.timing import Workload, clock_for, measure

CASES = [
    Case("lstm", "cudnn", "forward_backward", 16, 32, 128, 128, 1, False, "float32", "cpu"),
    Case("gru", "cudnn", "forward_backward", 16, 32, 128, 128, 1, False, "float32", "cpu"),
    Case("lstm", "eager", "forward_backward", 16, 32, 128, 128, 1, False, "float32", "cpu"),
]


def harness_median_ms(work: Workload, device: torch.device, seconds: float) -> float:
    timing = Timing(warmup_iters=3, min_iters=10, max_iters=100_000, budget_s=seconds)
    return summarize(measure(work, clock_for(device), timing).samples_ms["step"]).median_ms


def timer_median_ms(work: Workload, seconds: float) -> float:
    def step():
        for parameter in work.parameters:
            parameter.grad = None
        output, _ = work.model(work.x)
        F.mse_loss(output, work.target).backward()

    timer = Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads(),
                  label="independent check")
    return timer.blocked_autorange(min_run_time=seconds).median * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()
    device = resolve_device(args.device)
    apply_math_precision("fp32")
    settings = RunSettings(device=device)
    worst = 0.0
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s each")
    print(f"{'case':58} {'harness ms':>10} {'Timer ms':>9} {'ratio':>6}  per-round ratios")
    for template in CASES:
        case = Case(**{**template.to_dict(), "device_type": device.type})
        reference = make_reference(case, settings)
        built = build_backend(case.backend, reference)
        x, target = make_inputs(case, settings)
        work = Workload(built.model, x, target, case.mode, tuple(built.parameters.values()))
        pairs = [(harness_median_ms(work, device, args.seconds), timer_median_ms(work, args.seconds))
                 for _ in range(args.rounds)]
        ratios = [h / t for h, t in pairs]
        ratio = statistics.median(ratios)
        worst = max(worst, abs(ratio - 1))
        print(f"{case.key:58} {statistics.median(h for h, _ in pairs):10.3f} "
              f"{statistics.median(t for _, t in pairs):9.3f} {ratio:6.3f}  "
              + " ".join(f"{r:.3f}" for r in ratios))
    verdict = "agree" if worst <= args.tolerance else "DISAGREE"
    print(f"largest disagreement {worst:.1%} (tolerance {args.tolerance:.0%}): {verdict}")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
