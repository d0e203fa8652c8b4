"""How much spread does each thing a timing harness does add to a small, launch-bound step?

A user-built ``nn.LSTM`` (no harness code) is timed, forward + MSE loss + backward, under variants that each
add one thing a harness might do, in interleaved rounds so that machine drift hits every variant alike:

    bare          one clock pair per iteration, synchronised per iteration, garbage collector on
    gc_off        the same with Python's garbage collector paused (what rnnbench's timed loop does)
    three_marks   a mark after the forward too, to time forward and backward apart (what rnnbench does)
    fresh_events  a new CUDA event per mark, created inside the timed region (what rnnbench did before);
                  GPU only
    no_sync       synchronised once per 10 iterations, each timed as a tenth (throughput, not latency)

Per variant: the median step, its ratio to ``bare`` and the IQR as a share of the median (median over
rounds). The telemetry sampler's share is measured by benchmarks/telemetry_overhead.py.

    PYTHONPATH=. python benchmarks/noise_sources.py [--device cuda|cpu] [--rounds 5] [--seconds 0.5]
        [--shape 8,50,64,64] [--threads N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class Clock:
    def __init__(self, device: torch.device, fresh_events: bool = False):
        self.on_gpu = device.type == "cuda"
        self.fresh = fresh_events
        self.events = [torch.cuda.Event(enable_timing=True) for _ in range(3)] if self.on_gpu else None
        self.times = [0.0, 0.0, 0.0]

    def mark(self, slot: int) -> None:
        if not self.on_gpu:
            self.times[slot] = time.perf_counter()
            return
        if self.fresh:
            self.events[slot] = torch.cuda.Event(enable_timing=True)
        self.events[slot].record()

    def elapsed_ms(self, start: int, end: int) -> float:
        if self.on_gpu:
            return self.events[start].elapsed_time(self.events[end])
        return (self.times[end] - self.times[start]) * 1e3

    def sync(self) -> None:
        if self.on_gpu:
            torch.cuda.synchronize()


def step_times_ms(variant: str, module, x, target, seconds: float) -> list[float]:
    clock = Clock(x.device, fresh_events=variant == "fresh_events")
    gc_paused = variant == "gc_off"
    if gc_paused:
        gc.collect()
        gc.disable()
    times: list[float] = []
    began = time.perf_counter()
    try:
        while len(times) < 10 or time.perf_counter() - began < seconds:
            if variant == "no_sync":
                clock.mark(0)
                for _ in range(10):
                    module.zero_grad(set_to_none=True)
                    output, _ = module(x)
                    F.mse_loss(output, target).backward()
                clock.mark(2)
                clock.sync()
                times.append(clock.elapsed_ms(0, 2) / 10)
                continue
            module.zero_grad(set_to_none=True)
            clock.mark(0)
            output, _ = module(x)
            if variant in ("three_marks", "fresh_events"):
                clock.mark(1)
            F.mse_loss(output, target).backward()
            clock.mark(2)
            clock.sync()
            times.append(clock.elapsed_ms(0, 2))
    finally:
        if gc_paused:
            gc.enable()
    return times


def relative_iqr(times: list[float]) -> float:
    q1, _, q3 = statistics.quantiles(times, n=4)
    return (q3 - q1) / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--shape", default="8,50,64,64", help="B,T,I,H of an LSTM")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    batch, seq_len, input_size, hidden_size = (int(v) for v in args.shape.split(","))
    torch.manual_seed(0)
    module = nn.LSTM(input_size, hidden_size).to(device)
    x = torch.randn(seq_len, batch, input_size, device=device)
    target = torch.randn(seq_len, batch, hidden_size, device=device)
    variants = ["bare", "gc_off", "three_marks", "no_sync"]
    if device.type == "cuda":
        variants.insert(3, "fresh_events")
    for _ in range(5):  # warm-up
        step_times_ms("bare", module, x, target, 0.0)
    medians = {v: [] for v in variants}
    iqrs = {v: [] for v in variants}
    for round_index in range(args.rounds):
        order = variants if round_index % 2 == 0 else variants[::-1]
        for variant in order:
            times = step_times_ms(variant, module, x, target, args.seconds)
            medians[variant].append(statistics.median(times))
            iqrs[variant].append(relative_iqr(times))
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{hardware}, torch {torch.__version__}, {torch.get_num_threads()} threads, LSTM B{batch} T{seq_len} "
          f"I{input_size} H{hidden_size}, {args.rounds} interleaved rounds of {args.seconds:g} s")
    print(f"{'variant':14} {'median ms':>9} {'vs bare':>8} {'IQR':>6}")
    bare = statistics.median(medians["bare"])
    for variant in variants:
        median = statistics.median(medians[variant])
        print(f"{variant:14} {median:9.4f} {median / bare:8.3f} {statistics.median(iqrs[variant]):6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
