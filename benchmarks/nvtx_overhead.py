"""What the NVTX ranges of ``--nvtx`` (forward, backward, step) cost in the timed loop.

Each configuration is built and parity-checked as ``rnnbench run`` builds it, then timed in interleaved
rounds, ABBA, with the harness's clock (A) and with the same clock opening and closing the NVTX ranges at its
marks (B, harness/measure/nvtx.py). Prints per configuration the median over rounds of median(B) / median(A) and the
range of the per-round ratios. ``--nvtx`` stays off by default until this shows no cost on a GPU.

On a CPU the ranges are off in ``rnnbench`` (nothing for nsys to see); ``--device cpu`` here still calls the
real ``torch.cuda.nvtx`` functions, which without a tool attached measures their Python and dispatch cost only.
Run under ``nsys profile`` on a GPU for the cost with a collector attached.

    PYTHONPATH=. python benchmarks/nvtx_overhead.py [--device cuda|cpu] [--rounds 6] [--seconds 0.5] [--threads N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch

from harness.spec.cases import Case
from harness.measure.nvtx import NvtxClock
from harness.measure.runner import RunSettings, prepare_case
from harness.measure.timing import run_iteration

CONFIGURATIONS = {  # name: (backend, batch, seq_len, input_size, hidden_size) on a GPU, and on a CPU
    "launch-bound eager": {"cuda": ("eager", 8, 50, 64, 64), "cpu": ("eager", 8, 50, 64, 64)},
    "cudnn": {"cuda": ("cudnn", 64, 50, 256, 256), "cpu": ("cudnn", 16, 25, 128, 128)},
}


def step_median_ms(work, clock, seconds: float) -> float:
    samples = []
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds or len(samples) < 10:
            samples.append(run_iteration(work, clock)["step"])
    finally:
        gc.enable()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = RunSettings(device=device)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} ABBA rounds of "
          f"{args.seconds} s a side")
    print("configuration            plain ms   nvtx ms   nvtx/plain   per-round range")
    for name, shapes in CONFIGURATIONS.items():
        backend, batch, seq_len, input_size, hidden_size = shapes[device.type]
        case = Case(cell="lstm", backend=backend, mode="forward_backward", batch=batch, seq_len=seq_len,
                    input_size=input_size, hidden_size=hidden_size, num_layers=1, bidirectional=False,
                    dtype="float32", device_type=device.type)
        prepared = prepare_case(case, settings)
        if not prepared.parity.passed:
            print(f"{name}: parity failed ({prepared.parity.reason}); skipped")
            continue
        clocks = {"plain": prepared.clock, "nvtx": NvtxClock(prepared.clock, case.mode)}
        for _ in range(5):
            run_iteration(prepared.work, clocks["nvtx"])
        plain, ranged, ratios = [], [], []
        for index in range(args.rounds):
            order = ("plain", "nvtx") if index % 2 == 0 else ("nvtx", "plain")
            medians = {side: step_median_ms(prepared.work, clocks[side], args.seconds) for side in order}
            plain.append(medians["plain"])
            ranged.append(medians["nvtx"])
            ratios.append(medians["nvtx"] / medians["plain"])
        print(f"{name:<24} {statistics.median(plain):>8.4g}   {statistics.median(ranged):>7.4g}   "
              f"{statistics.median(ratios):>10.4f}   {min(ratios):.4f}-{max(ratios):.4f}")


if __name__ == "__main__":
    main()
