"""The machine's measured peak, once per run, for the roofline: a short dense GEMM of the suite's dtype (under
the suite's math precision, already set) and a device-to-device copy for memory bandwidth.

The best of a few timed repetitions after a warm-up. On a CPU the same measurement runs on the CPU, with
the suite's threads, and is labelled so; its small GEMM understates what a CPU's largest GEMMs reach.
Recorded in the results' ``environment.measured_peak``; nothing here prints.
"""

from __future__ import annotations

import time

import torch

from harness.dtypes import DTYPE_BYTES, torch_dtype

# (GEMM size n for n x n x n, bytes copied) per device type: about a second on an H100 all told, a few
# tens of milliseconds on a CPU (it runs at the start of every `rnnbench run`).
SIZES = {"cuda": (8192, 1 << 30), "cpu": (512, 32 << 20)}
REPEATS = 5


def measure_peak(device: torch.device, dtype: str) -> dict:
    n, copy_bytes = SIZES["cuda" if device.type == "cuda" else "cpu"]
    gemm_s = _gemm_seconds(n, torch_dtype(dtype), device)
    copy_s = _copy_seconds(copy_bytes // DTYPE_BYTES[dtype], torch_dtype(dtype), device)
    return {
        "device": str(device),
        "label": "GPU" if device.type == "cuda" else "CPU",
        "dtype": dtype,
        "matmul_tflops": 2.0 * n ** 3 / gemm_s / 1e12,
        "matmul": f"torch.mm {n}x{n} @ {n}x{n} {dtype}, best of {REPEATS}",
        # a copy reads and writes every byte
        "bandwidth_gb_per_s": 2.0 * copy_bytes / copy_s / 1e9,
        "copy": f"Tensor.copy_ of {copy_bytes >> 20} MiB on the device, best of {REPEATS}",
    }


def _gemm_seconds(n: int, dtype, device: torch.device) -> float:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return _best_seconds(lambda: torch.mm(a, b), device)


def _copy_seconds(elements: int, dtype, device: torch.device) -> float:
    source = torch.empty(elements, dtype=dtype, device=device)
    target = torch.empty_like(source)
    return _best_seconds(lambda: target.copy_(source), device)


def _best_seconds(work, device: torch.device) -> float:
    work()  # warm-up: library handles, allocator blocks
    _synchronize(device)
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        work()
        _synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
