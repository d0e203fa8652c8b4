"""Ratios of medians with confidence intervals, as the charts and the report draw them: speedups over cudnn
within one results file, and the A-vs-B comparison of two results files.

The statistics are the regression gate's (:mod:`harness.compare`, behind ``rnnbench compare``), computed
there and only there: :func:`ratio_of_medians` takes its interval from ``harness.compare.ratio_interval``
(a block bootstrap that resamples consecutive batches of samples, since samples drift within a run), and
:func:`compare_runs` is ``harness.compare.compare_runs`` with the two files' results attached, so an
A-vs-B chart shows the verdicts ``rnnbench compare A B`` gives (A is the baseline, B the current run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from harness import compare as gate
from harness.compare import (DEFAULT_ALPHA, DEFAULT_THRESHOLD, IMPROVEMENT, NOISE, REGRESSION, SAMPLED_METRICS,
                             UNCHANGED, VERDICTS)
from harness.results import CaseResult, RunResults

__all__ = ["IMPROVEMENT", "NOISE", "REGRESSION", "UNCHANGED", "VERDICTS", "TIME_REGIONS",
           "VERDICT_WORDS", "Comparison", "Pair", "Ratio", "Speedup", "compare_runs",
           "geometric_mean", "geometric_mean_speedups", "ratio_of_medians", "speedups_over_cudnn", "verdict_rule"]

TIME_REGIONS = SAMPLED_METRICS  # the timed regions a ratio of medians can be taken of




@dataclass(frozen=True)
class Ratio:
    value: float
    low: float | None = None
    high: float | None = None

    @property
    def has_ci(self) -> bool:
        return self.low is not None and self.high is not None


def ratio_of_medians(baseline_ms: Sequence[float], other_ms: Sequence[float], *,
                     alpha: float = DEFAULT_ALPHA) -> Ratio:
    """median(other) / median(baseline), with the gate's interval at confidence 1 - alpha
    (``harness.compare.ratio_interval``; none when a side has too few samples for one).

    The samples must be in the order they were measured: the interval resamples consecutive batches."""
    if len(baseline_ms) == 0 or len(other_ms) == 0:
        raise ValueError("a ratio of medians needs samples on both sides")
    base_median, other_median = float(np.median(baseline_ms)), float(np.median(other_ms))
    if base_median <= 0:
        raise ValueError("the baseline median must be positive")
    low, high = gate.ratio_interval(baseline_ms, other_ms, alpha)
    return Ratio(other_median / base_median, low, high)


def geometric_mean(values: Iterable[float]) -> float | None:
    logs = [math.log(v) for v in values if v and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None


# --- speedup over cudnn, within one results file -----------------------------------------------------


@dataclass(frozen=True)
class Speedup:
    """One non-cudnn result against the cudnn result of the same model and mode.

    ``ratio`` is cudnn's median over this backend's median (> 1: faster than cudnn); None when either did
    not run, with ``reason`` saying why."""

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
        baseline = run.cudnn_counterpart(result)
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
            by_backend.setdefault(speedup.result.case.backend, []).append(speedup.ratio.value)
    return {backend: geometric_mean(values) for backend, values in by_backend.items()}


# --- A versus B: two results files, through the regression gate ---------------------------------------


# The report's words for the gate's verdicts (B against A).
VERDICT_WORDS = {REGRESSION: "slower", IMPROVEMENT: "faster", NOISE: "noise", UNCHANGED: "unchanged"}


def verdict_rule(threshold: float, alpha: float, compared: int) -> str:
    """One sentence on where the verdicts of an A-vs-B comparison come from and what they mean."""
    upper, lower = 1.0 + threshold, 1.0 / (1.0 + threshold)
    return (f"Verdicts are those of rnnbench compare A B (A the baseline, B the current run; threshold "
            f"{threshold:.1%}, alpha {alpha:g}): slower (a regression) or faster (an improvement) when the "
            f"change is significant after Holm-Bonferroni over the {compared} compared cases and the whole "
            f"interval lies beyond the band {lower:.3g}×–{upper:.3g}×; noise when the ratio is outside the band "
            f"but not significantly so, or its interval reaches back into the band; unchanged inside the band")


@dataclass(frozen=True)
class Pair:
    """One case the gate compared, with the results of both files. ``ratio`` is B's median over A's
    (> 1: B is slower) with the gate's interval; ``verdict`` is the gate's (regression, improvement, noise,
    unchanged)."""

    compared: gate.CaseComparison
    a: CaseResult
    b: CaseResult

    @property
    def key(self) -> str:
        return self.compared.key

    @property
    def region(self) -> str:
        return self.compared.region

    @property
    def ratio(self) -> Ratio:
        return Ratio(self.compared.ratio, self.compared.ci_low, self.compared.ci_high)

    @property
    def verdict(self) -> str:
        return self.compared.verdict


@dataclass(frozen=True)
class Comparison:
    """The gate's comparison of A (baseline) and B (current), as the report draws and lists it."""

    a_label: str
    b_label: str
    pairs: tuple[Pair, ...]
    gate: gate.Comparison | None  # None: no case in both files (the gate compares nothing)
    only_in_a: tuple[str, ...] = ()
    only_in_b: tuple[str, ...] = ()
    threshold: float = DEFAULT_THRESHOLD
    alpha: float = DEFAULT_ALPHA
    region: str | None = None  # None: each case's primary region

    @property
    def not_compared(self) -> tuple[gate.NotCompared, ...]:
        """Cases in both files that were not compared (failed, skipped, no samples), with the gate's reason;
        ``broken``: ok in A and failed in B, which fails the gate."""
        return self.gate.not_compared if self.gate else ()

    @property
    def blocking_differences(self) -> tuple[gate.EnvironmentDifference, ...]:
        """Environment differences for which ``rnnbench compare`` refuses to gate (see harness.compare)."""
        return self.gate.blocking_differences if self.gate else ()

    @property
    def warnings(self) -> tuple[str, ...]:
        """What rnnbench compare warns of for these files: an incomplete run, a noisy pair of runs."""
        if self.gate is None:
            return ()
        from harness.report.compare_text import noisy_pair_line

        return self.gate.warnings + ((noisy_pair_line(self.gate),) if self.gate.noisy_pair else ())

    @property
    def geomean(self) -> float | None:
        return geometric_mean(pair.ratio.value for pair in self.pairs)

    def geomean_by_backend(self) -> dict[str, float]:
        backends: dict[str, list[float]] = {}
        for pair in self.pairs:
            backends.setdefault(pair.a.case.backend, []).append(pair.ratio.value)
        return {backend: geometric_mean(values) for backend, values in backends.items()}

    def counts(self, pairs: Iterable[Pair] | None = None) -> dict[str, int]:
        """The number of pairs with each of the gate's verdicts."""
        pairs = self.pairs if pairs is None else tuple(pairs)
        return {verdict: sum(1 for p in pairs if p.verdict == verdict) for verdict in VERDICTS}


def compare_runs(a: RunResults, b: RunResults, region: str | None = None, a_label: str = "A", b_label: str = "B",
                 *, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA) -> Comparison:
    """``harness.compare.compare_runs(a, b)`` (A the baseline, B the current run) on ``region`` (each case's
    primary region when None), with each compared case's two results attached for the charts. Unlike the
    gate, two files without a case in common are no error: every case is then listed as only in one."""
    if region is not None and region not in TIME_REGIONS:
        raise ValueError(f"region must be one of {TIME_REGIONS}, got {region!r}")
    a_keys = tuple(dict.fromkeys(r.key for r in a.cases))
    b_keys = tuple(dict.fromkeys(r.key for r in b.cases))
    if not set(a_keys) & set(b_keys):
        return Comparison(a_label, b_label, (), None, a_keys, b_keys, threshold, alpha, region)
    compared = gate.compare_runs(a, b, metric=region, threshold=threshold, alpha=alpha)
    a_results = {r.key: r for r in a.cases}
    b_results = {r.key: r for r in b.cases}
    pairs = tuple(Pair(c, a_results[c.key], b_results[c.key]) for c in compared.cases)
    return Comparison(a_label, b_label, pairs, compared, compared.only_in_baseline, compared.only_in_current,
                      compared.threshold, compared.alpha, compared.metric)
