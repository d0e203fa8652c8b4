"""Does the harness measure what an independent timer measures?

For a few cases, the harness's median step time (forward + MSE loss + backward) is set beside
``torch.utils.benchmark.Timer`` timing the same module on the same inputs. The two run interleaved, a few
rounds each, in one process, so that drift of a shared machine hits both alike; the figure that counts is
the median over rounds of harness median / Timer median. Exit status 1 when a case disagrees by more than
the tolerance (5 % by default), 2 when the rounds scatter too much to tell (inconclusive).

Rounds alternate which of the two goes first, so that a machine speeding up or slowing down over a round
does not favour one of them.

    python benchmarks/timer_agreement.py [--device cpu|cuda] [--rounds 7] [--seconds 1.0] [--threads N]
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


def measure_pair(work: Workload, device: torch.device, seconds: float, harness_first: bool) -> tuple[float, float]:
    """(harness median, Timer median) of one round."""
    if harness_first:
        harness_ms = harness_median_ms(work, device, seconds)
        return harness_ms, timer_median_ms(work, seconds)
    timer_ms = timer_median_ms(work, seconds)
    return harness_median_ms(work, device, seconds), timer_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=None, help="torch's CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    apply_math_precision("fp32")
    settings = RunSettings(device=device)
    worst, noisiest = 0.0, 0.0
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s each")
    print(f"{'case':58} {'harness ms':>10} {'Timer ms':>9} {'ratio':>6} {'IQR':>6}  per-round ratios")
    for template in CASES:
        case = Case(**{**template.to_dict(), "device_type": device.type})
        reference = make_reference(case, settings)
        built = build_backend(case.backend, reference)
        x, target = make_inputs(case, settings)
        work = Workload(built.model, x, target, case.mode, tuple(built.parameters.values()))
        pairs = [measure_pair(work, device, args.seconds, harness_first=round_index % 2 == 0)
                 for round_index in range(args.rounds)]
        ratios = [h / t for h, t in pairs]
        ratio = statistics.median(ratios)
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratio, ratio, ratio]
        worst = max(worst, abs(ratio - 1))
        noisiest = max(noisiest, quartiles[2] - quartiles[0])
        print(f"{case.key:58} {statistics.median(h for h, _ in pairs):10.3f} "
              f"{statistics.median(t for _, t in pairs):9.3f} {ratio:6.3f} {quartiles[2] - quartiles[0]:6.3f}  "
              + " ".join(f"{r:.3f}" for r in ratios))
    if worst <= args.tolerance:
        print(f"largest disagreement {worst:.1%} (tolerance {args.tolerance:.0%}): agree")
        return 0
    if noisiest > 2 * args.tolerance:
        # Rounds that scatter both ways by more than twice the tolerance measure the machine, not the harness.
        print(f"largest disagreement {worst:.1%} (tolerance {args.tolerance:.0%}), but the per-round ratios "
              f"scatter by up to {noisiest:.1%} (IQR): INCONCLUSIVE, the machine is too noisy to tell; "
              f"rerun on a quiet machine{' or with --threads 1' if torch.get_num_threads() > 1 else ''}")
        return 2
    print(f"largest disagreement {worst:.1%} (tolerance {args.tolerance:.0%}): DISAGREE")
    return 1


if __name__ == "__main__":
    sys.exit(main())
