"""The machine's measured peak, once per run, for the roofline: a dense GEMM of the suite's dtype (under the
suite's math precision, already set) and a device-to-device copy for memory bandwidth.

A GPU idles its clocks (an H200's SMs at 345 MHz) and raises them only under sustained load, so a few
products timed at the start of a run measure the ramp, not the peak, and overstate every "% of measured
peak". So each measurement first keeps the device busy for at least :data:`WARMUP_S` of wall time (the
operation repeated, synchronised, until that much has passed), then times one batch of back-to-back
operations: with CUDA events on a GPU, with ``perf_counter`` and a synchronisation on the CPU. The SM clock
(NVML, through :mod:`harness.measure.telemetry.nvml`) is read before the warm-up and while each batch runs, and
recorded with the peak, or absent with the reason.

On a CPU the same measurement runs on the CPU, with the suite's threads, and is labelled so; its small GEMM
understates what a CPU's largest GEMMs reach. Recorded in the results' ``environment.measured_peak``;
nothing here prints.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

import torch

from harness.spec.dtypes import DTYPE_BYTES, torch_dtype

# (GEMM size n for n x n x n, bytes copied) per device type.
SIZES = {"cuda": (8192, 1 << 30), "cpu": (512, 32 << 20)}
# Wall time each measurement keeps the device busy before its timed batch. A CPU's clock ramps within
# milliseconds; the CPU's is short because the peak is measured at the start of every `rnnbench run`.
WARMUP_S = {"cuda": 0.3, "cpu": 0.05}
# Operations in the timed batch: an 8192^3 float32 product takes ~2-20 ms on a recent GPU, a 1 GiB copy
# ~0.5 ms, so a GPU's batches take well under a second.
BATCH = {"cuda": 20, "cpu": 5}


def measure_peak(device: torch.device, dtype: str, clock_reader=None) -> dict:
    """``clock_reader``: what reads the SM clock (``read()``, ``max_mhz()``, ``close()``, ``reason``,
    ``found_by``); by default NVML's for the GPU, none on a CPU."""
    kind = "cuda" if device.type == "cuda" else "cpu"
    n, copy_bytes = SIZES[kind]
    reader = clock_reader or _sm_clock_reader(device)
    try:
        with torch.cuda.device(device) if kind == "cuda" else contextlib.nullcontext():
            idle_mhz = reader.read()
            gemm = _measured_matmul(n, torch_dtype(dtype), device, reader)
            copy = _measured_copy(copy_bytes // DTYPE_BYTES[dtype], torch_dtype(dtype), device, reader)
        max_mhz = reader.max_mhz()
    finally:
        reader.close()
    timer = "CUDA events" if kind == "cuda" else "perf_counter, synchronised"
    read = {"sm_clock_mhz_before_warmup": idle_mhz, "sm_clock_mhz_during_matmul": gemm.sm_clock_mhz,
            "sm_clock_mhz_during_copy": copy.sm_clock_mhz, "sm_clock_max_mhz": max_mhz}
    clocks: dict = {key: value for key, value in read.items() if value is not None}
    if clocks:
        clocks["source"] = f"NVML ({reader.found_by})" if reader.found_by else "NVML"
    missing = [key for key, value in read.items() if value is None]
    why = reader.reason or "could not be read"
    if len(missing) == len(read):
        clocks = {"absent": why}
    elif missing:
        clocks["absent"] = {key: why for key in missing}
    return {
        "device": str(device),
        "label": "GPU" if kind == "cuda" else "CPU",
        "dtype": dtype,
        "matmul_tflops": 2.0 * n ** 3 / gemm.seconds / 1e12,
        "matmul": (f"torch.mm {n}x{n} @ {n}x{n} {dtype}, mean of {gemm.count} back-to-back ({timer}) after "
                   f"{gemm.warmup_s:.2f} s of warm-up"),
        # a copy reads and writes every byte
        "bandwidth_gb_per_s": 2.0 * copy_bytes / copy.seconds / 1e9,
        "copy": (f"Tensor.copy_ of {copy_bytes >> 20} MiB on the device, mean of {copy.count} back-to-back "
                 f"({timer}) after {copy.warmup_s:.2f} s of warm-up"),
        "warmup": {"min_s": WARMUP_S[kind], "matmul_s": round(gemm.warmup_s, 4), "matmul_iters": gemm.warmup_iters,
                   "copy_s": round(copy.warmup_s, 4), "copy_iters": copy.warmup_iters},
        "clocks": clocks,
    }


@dataclass(frozen=True)
class Measured:
    seconds: float  # per operation, over the timed batch
    count: int  # operations in the batch
    warmup_s: float
    warmup_iters: int
    sm_clock_mhz: int | None  # read while the batch ran


def warm_up(work: Callable[[], object], synchronize: Callable[[], None], min_seconds: float,
            clock: Callable[[], float] = time.perf_counter) -> tuple[int, float]:
    """Run ``work`` then ``synchronize`` until ``clock`` says ``min_seconds`` have passed (at least once), so
    that the device has been busy that long; returns (iterations, seconds)."""
    started = clock()
    iterations = 0
    while True:
        work()
        synchronize()
        iterations += 1
        elapsed = clock() - started
        if elapsed >= min_seconds:
            return iterations, elapsed


def _measured_matmul(n: int, dtype, device: torch.device, reader) -> Measured:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    product = torch.empty(n, n, device=device, dtype=dtype)
    return _measured(lambda: torch.mm(a, b, out=product), device, reader)


def _measured_copy(elements: int, dtype, device: torch.device, reader) -> Measured:
    source = torch.empty(elements, dtype=dtype, device=device)
    target = torch.empty_like(source)
    return _measured(lambda: target.copy_(source), device, reader)


def _measured(work, device: torch.device, reader) -> Measured:
    kind = "cuda" if device.type == "cuda" else "cpu"
    iterations, warmup_s = warm_up(work, lambda: _synchronize(device), WARMUP_S[kind])
    count = BATCH[kind]
    if kind == "cuda":
        stream = torch.cuda.current_stream(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(stream)
        for _ in range(count):
            work()
        end.record(stream)
        sm_clock_mhz = reader.read()  # while the batch runs: the host is far ahead of the device
        end.synchronize()
        seconds = start.elapsed_time(end) / 1e3 / count
    else:
        started = time.perf_counter()
        for _ in range(count):
            work()
        seconds = (time.perf_counter() - started) / count
        sm_clock_mhz = reader.read()
    return Measured(seconds, count, warmup_s, iterations, sm_clock_mhz)


class _NoClock:
    reason = "the peak is measured on the CPU; NVML reads GPU clocks"
    found_by = None

    def read(self):
        return None

    def max_mhz(self):
        return None

    def close(self):
        pass


def _sm_clock_reader(device: torch.device):
    if device.type != "cuda":
        return _NoClock()
    from harness.measure.telemetry.case import device_spec, nvml_module
    from harness.measure.telemetry.nvml import SmClockReader

    return SmClockReader.open(device_spec(device), nvml_module())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
