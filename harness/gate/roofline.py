"""The roofline of a run: each ok case's achieved FLOP/s against the peak measured at the start of the run
(``environment.measured_peak``, :mod:`harness.measure.peak`), and its arithmetic intensity (FLOPs over the compulsory
bytes of :func:`harness.spec.flops.region_bytes`). Reads results; measures nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from harness.spec.flops import region_bytes, region_flops
from harness.record.results import CaseResult, RunResults


@dataclass(frozen=True)
class Peak:
    matmul_tflops: float
    bandwidth_gb_per_s: float
    dtype: str
    label: str

    @classmethod
    def of(cls, environment: Mapping) -> "Peak | None":
        """The run's measured peak; None where the file has none (older files, a failed measurement)."""
        peak = environment.get("measured_peak") or {}
        if not peak.get("matmul_tflops") or not peak.get("bandwidth_gb_per_s"):
            return None
        return cls(peak["matmul_tflops"], peak["bandwidth_gb_per_s"], peak.get("dtype", "?"), peak.get("label", ""))

    @property
    def ridge_intensity(self) -> float:
        """FLOPs per byte where the bandwidth roof meets the compute roof."""
        return self.matmul_tflops * 1e12 / (self.bandwidth_gb_per_s * 1e9)


@dataclass(frozen=True)
class RooflinePoint:
    result: CaseResult
    region: str
    achieved_tflops: float            # rnnbench's FLOP model
    deepbench_tflops: float           # DeepBench's convention (recurrent GEMM only)
    intensity_flops_per_byte: float   # upper bound: compulsory bytes only
    percent_of_peak: float | None     # of the measured dense GEMM of the case's dtype


def percent_of_peak(run: RunResults, result: CaseResult) -> float | None:
    """The case's achieved FLOP/s (our model) as a percentage of the run's measured GEMM peak."""
    peak = Peak.of(run.environment)
    achieved = result.derived.get(result.primary_region, {}).get("achieved_tflops")
    if peak is None or achieved is None or peak.dtype != result.case.dtype:
        return None
    return 100.0 * achieved / peak.matmul_tflops


def roofline_points(run: RunResults) -> list[RooflinePoint]:
    points = []
    for result in run.cases:
        region = result.primary_region
        median_ms = result.median_ms(region)
        if not result.ok or not median_ms:
            continue
        seconds = median_ms / 1e3
        flops = region_flops(result.case, region)
        points.append(RooflinePoint(
            result=result, region=region, achieved_tflops=flops / seconds / 1e12,
            deepbench_tflops=region_flops(result.case, region, "deepbench") / seconds / 1e12,
            intensity_flops_per_byte=flops / region_bytes(result.case, region),
            percent_of_peak=percent_of_peak(run, result)))
    return points
