"""The figures a person can ask of a case result, by name: one place for their labels, units and
direction, shared by the summary table, the charts and the comparator."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

from harness.errors import ComparisonError
from harness.record.results import CaseResult


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    value: Callable[[CaseResult], float | None]
    lower_is_better: bool
    region: str | None = None  # the timed region whose samples the metric comes from, if any


def _median(region: str):
    return lambda result: result.median_ms(region)


def _derived(key: str):
    def value(result: CaseResult):
        return result.derived.get(result.primary_region, {}).get(key)
    return value


def _peak_memory_bytes(result: CaseResult) -> float | None:
    return result.peak_memory_bytes


def _energy_per_sequence_j(result: CaseResult) -> float | None:
    window = result.telemetry_window()
    return window.get("energy_per_sequence_j") if window else None


def _gpu_busy_ms(result: CaseResult) -> float | None:
    samples = result.activity.get("gpu_busy_ms_per_iteration")
    return float(statistics.median(samples)) if samples else None


METRICS = {metric.name: metric for metric in (
    Metric("step", "step time (median)", "ms", _median("step"), True, "step"),
    Metric("forward", "forward time (median)", "ms", _median("forward"), True, "forward"),
    Metric("backward", "backward time (median)", "ms", _median("backward"), True, "backward"),
    Metric("sequences_per_s", "throughput", "sequences/s", _derived("sequences_per_s"), False),
    Metric("tokens_per_s", "throughput", "tokens/s", _derived("tokens_per_s"), False),
    Metric("achieved_tflops", "achieved compute", "TFLOP/s", _derived("achieved_tflops"), False),
    Metric("peak_memory", "peak memory", "bytes", _peak_memory_bytes, True),
    Metric("energy_per_sequence", "energy per sequence", "J", _energy_per_sequence_j, True),
    # samples of the profiled pass after the timed loop, one per iteration (harness.record.device_time)
    Metric("gpu_busy", "GPU busy time per step (median)", "ms", _gpu_busy_ms, True, "gpu_busy"),
)}


# The metrics measured as timed samples: the ones two runs can be compared on, case by case.
SAMPLED_METRICS = tuple(name for name, metric in METRICS.items() if metric.region)


def check_sampled_metric(name: str | None) -> str | None:
    if name is None or name in SAMPLED_METRICS:
        return name
    raise ComparisonError(f"--metric {name!r}: cannot be compared; choose one of {', '.join(SAMPLED_METRICS)} "
                          f"(the timed regions, and the GPU's busy time per step)")


# Rates computed from the median time of the primary region (the _derived metrics above).
RATE_METRICS = ("sequences_per_s", "tokens_per_s", "achieved_tflops")


def metric_spread(metric: Metric, result: CaseResult) -> tuple[float, float] | None:
    """The metric at the 25th and 75th percentile of the timed samples it comes from, as (low, high);
    None for a figure not computed from timed samples (memory, energy) or without samples."""
    if metric.region:
        stats = result.stats.get(metric.region)
        return (stats.p25_ms, stats.p75_ms) if stats else None
    if metric.name not in RATE_METRICS:
        return None
    stats = result.stats.get(result.primary_region)
    value = metric.value(result)
    if not stats or value is None or stats.p25_ms <= 0:
        return None
    # a rate at the median time: the faster samples (25th percentile of time) give the higher rate
    return value * stats.median_ms / stats.p75_ms, value * stats.median_ms / stats.p25_ms
