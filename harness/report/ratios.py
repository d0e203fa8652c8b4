"""Ratios of medians with confidence intervals: speedups over cudnn within one results file, and the
A-vs-B comparison of two results files (matched case by case on ``Case.key``).

The one ratio computation is :func:`ratio_of_medians`: the ratio of the two medians, with a percentile
bootstrap interval from the kept samples (fixed seed, so the same results always give the same interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy import stats as scipy_stats

from harness.results import CaseResult, RunResults

CONFIDENCE = 0.95
RESAMPLES = 4000
SEED = 0
MIN_SAMPLES_FOR_CI = 5  # below this a bootstrap interval says more about the resampling than the data

CI_METHOD = (f"{CONFIDENCE:.0%} interval, percentile bootstrap of the ratio of medians (kept samples, "
             f"{RESAMPLES} resamples, fixed seed)")


@dataclass(frozen=True)
class Ratio:
    value: float
    low: float | None = None
    high: float | None = None

    @property
    def has_ci(self) -> bool:
        return self.low is not None and self.high is not None


def ratio_of_medians(baseline_ms: Sequence[float], other_ms: Sequence[float], *, confidence: float = CONFIDENCE,
                     resamples: int = RESAMPLES, seed: int = SEED) -> Ratio:
    """median(other) / median(baseline), with a bootstrap confidence interval when both sides have
    at least MIN_SAMPLES_FOR_CI samples.

    The two sides are resampled independently. Each resample's median is drawn from its exact bootstrap
    distribution (the distribution of the middle order statistic of n draws with replacement), which gives
    the same interval as resampling the samples themselves, in O(n + resamples) instead of O(n * resamples).
    """
    baseline = np.sort(np.asarray(baseline_ms, dtype=float))
    other = np.sort(np.asarray(other_ms, dtype=float))
    if baseline.size == 0 or other.size == 0:
        raise ValueError("a ratio of medians needs samples on both sides")
    base_median, other_median = float(np.median(baseline)), float(np.median(other))
    if base_median <= 0:
        raise ValueError("the baseline median must be positive")
    value = other_median / base_median
    if min(baseline.size, other.size) < MIN_SAMPLES_FOR_CI:
        return Ratio(value)
    rng = np.random.default_rng(seed)
    base_draws = _bootstrap_medians(baseline, rng.random(resamples))
    other_draws = _bootstrap_medians(other, rng.random(resamples))
    ratios = other_draws / base_draws
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return Ratio(value, float(low), float(high))


def _bootstrap_medians(ordered: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Medians of bootstrap resamples of ``ordered`` (sorted), by inverse transform of their distribution.

    The k-th order statistic of a resample of n is <= x_(j) exactly when at least k of the n draws fall
    among the j smallest values: P = P(Binomial(n, j/n) >= k). For even n the median is the mean of the two
    middle order statistics, drawn with the same uniform (they move together).
    """
    n = ordered.size
    j = np.arange(1, n + 1)

    def order_statistic(k: int) -> np.ndarray:
        cdf = scipy_stats.binom.sf(k - 1, n, j / n)
        cdf[-1] = 1.0
        return ordered[np.minimum(np.searchsorted(cdf, uniforms, side="left"), n - 1)]

    if n % 2:
        return order_statistic(n // 2 + 1)
    return (order_statistic(n // 2) + order_statistic(n // 2 + 1)) / 2


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


# --- A versus B: two results files --------------------------------------------------------------------

SLOWER, FASTER, UNCHANGED = "slower", "faster", "unchanged"
TIME_REGIONS = ("forward", "backward", "step")


@dataclass(frozen=True)
class Pair:
    """One case present in both files. ``ratio`` is B's median over A's (> 1: B is slower)."""

    key: str
    a: CaseResult
    b: CaseResult
    region: str
    ratio: Ratio
    verdict: str


@dataclass(frozen=True)
class Comparison:
    a_label: str
    b_label: str
    region: str | None  # None: each case's primary region
    pairs: tuple[Pair, ...]
    only_in_a: tuple[str, ...] = ()
    only_in_b: tuple[str, ...] = ()
    not_compared: tuple[tuple[str, str], ...] = field(default=())  # (key, why) for cases in both files

    @property
    def geomean(self) -> float | None:
        return geometric_mean(pair.ratio.value for pair in self.pairs)

    def geomean_by_backend(self) -> dict[str, float]:
        backends: dict[str, list[float]] = {}
        for pair in self.pairs:
            backends.setdefault(pair.a.case.backend, []).append(pair.ratio.value)
        return {backend: geometric_mean(values) for backend, values in backends.items()}

    def counts(self, pairs: Iterable[Pair] | None = None) -> dict[str, int]:
        pairs = self.pairs if pairs is None else tuple(pairs)
        return {verdict: sum(1 for p in pairs if p.verdict == verdict) for verdict in (SLOWER, FASTER, UNCHANGED)}


def verdict(ratio: Ratio) -> str:
    """B slower than A when the whole interval of B/A lies above 1, faster when below, else unchanged
    (also when there are too few samples for an interval)."""
    if not ratio.has_ci:
        return UNCHANGED
    if ratio.low > 1:
        return SLOWER
    if ratio.high < 1:
        return FASTER
    return UNCHANGED


def compare_runs(a: RunResults, b: RunResults, region: str | None = None, a_label: str = "A",
                 b_label: str = "B") -> Comparison:
    """Match the cases of ``a`` and ``b`` on their key and compute B/A of the median in ``region`` (each
    case's primary region when None). Only cases present in both, ok in both, are compared; the rest are
    listed: only in A, only in B, or in both but not comparable (with why)."""
    if region is not None and region not in TIME_REGIONS:
        raise ValueError(f"region must be one of {TIME_REGIONS}, got {region!r}")
    a_cases = _by_key(a.cases)
    b_cases = _by_key(b.cases)
    pairs, not_compared = [], []
    for key, a_result in a_cases.items():
        b_result = b_cases.get(key)
        if b_result is None:
            continue
        used = region or a_result.primary_region
        why = _not_comparable(a_result, b_result, used)
        if why:
            not_compared.append((key, why))
            continue
        ratio = ratio_of_medians(a_result.samples_ms[used], b_result.samples_ms[used])
        pairs.append(Pair(key, a_result, b_result, used, ratio, verdict(ratio)))
    return Comparison(
        a_label=a_label, b_label=b_label, region=region, pairs=tuple(pairs),
        only_in_a=tuple(key for key in a_cases if key not in b_cases),
        only_in_b=tuple(key for key in b_cases if key not in a_cases),
        not_compared=tuple(not_compared))


def _by_key(results: Iterable[CaseResult]) -> dict[str, CaseResult]:
    cases: dict[str, CaseResult] = {}
    for result in results:
        cases.setdefault(result.key, result)
    return cases


def _not_comparable(a: CaseResult, b: CaseResult, region: str) -> str | None:
    problems = [f"{side} {r.status}: {r.reason or 'no reason given'}" for side, r in (("A", a), ("B", b))
                if not r.ok]
    if problems:
        return "; ".join(problems)
    missing = [side for side, r in (("A", a), ("B", b)) if not r.samples_ms.get(region)]
    if missing:
        return f"no {region} samples in {' and '.join(missing)}"
    return None
