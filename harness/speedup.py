"""Speedups over cudnn within one run: every other backend against the cudnn case of the same model and mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from harness.ratios import Ratio, geometric_mean, ratio_of_medians
from harness.results import CaseResult, RunResults


def cudnn_counterpart(run: RunResults, result: CaseResult) -> CaseResult | None:
    """The ok cudnn result of the same model and mode, which other backends are measured against."""
    for other in run.cases:
        if (other.ok and other.case.backend == "cudnn" and other.case.mode == result.case.mode
                and other.case.model_key == result.case.model_key):
            return other
    return None


def speedup_over_cudnn(run: RunResults, result: CaseResult) -> float | None:
    """cudnn's median over this backend's median, in the case's primary region (> 1: faster)."""
    baseline = cudnn_counterpart(run, result)
    mine, theirs = result.median_ms(), baseline.median_ms() if baseline else None
    if not mine or not theirs:
        return None
    return theirs / mine


@dataclass(frozen=True)
class Speedup:
    """One non-cudnn result against the cudnn result of the same model and mode.

    ``ratio`` is cudnn's median over this backend's median (> 1: faster than cudnn) with its interval; None
    when either did not run, with ``reason`` saying why."""

    result: CaseResult
    region: str
    ratio: Ratio | None
    reason: str | None = None


def speedups_over_cudnn(run: RunResults) -> list[Speedup]:
    """Every non-cudnn case of ``run`` whose configuration has a cudnn case, in the primary region."""
    speedups = []
    for result in run.cases:
        if result.case.backend == "cudnn":
            continue
        region = result.primary_region
        has_cudnn = any(other.case.backend == "cudnn" and other.case.mode == result.case.mode
                        and other.case.model_key == result.case.model_key for other in run.cases)
        if not has_cudnn:
            continue
        baseline = cudnn_counterpart(run, result)
        if not result.ok:
            speedups.append(Speedup(result, region, None, f"{result.status}: {result.reason or 'no reason given'}"))
        elif baseline is None:
            speedups.append(Speedup(result, region, None, "cudnn did not run"))
        elif not result.samples_ms.get(region) or not baseline.samples_ms.get(region):
            speedups.append(Speedup(result, region, None, f"no {region} samples"))
        else:
            speedups.append(Speedup(result, region, ratio_of_medians(result.samples_ms[region],
                                                                     baseline.samples_ms[region])))
    return speedups


def geometric_mean_speedups(speedups: Iterable[Speedup]) -> dict[str, float]:
    """Per backend, the geometric mean of its speedups over cudnn (the cases that ran on both)."""
    by_backend: dict[str, list[float]] = {}
    for speedup in speedups:
        if speedup.ratio is not None:
            by_backend.setdefault(speedup.result.case.backend_label, []).append(speedup.ratio.value)
    return {backend: geometric_mean(values) for backend, values in by_backend.items()}
