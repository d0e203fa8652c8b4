"""Statistics of a list of timing samples: the numbers a case result derives from what was measured."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy import special

NOISY_RELATIVE_IQR = 0.10
CONFIDENCE = 0.95


@dataclass(frozen=True)
class SampleStats:
    n: int
    median_ms: float
    mean_ms: float
    stdev_ms: float
    min_ms: float
    max_ms: float
    p5_ms: float
    p25_ms: float
    p75_ms: float
    p95_ms: float
    iqr_ms: float
    relative_iqr: float
    # Distribution-free 95 % confidence interval of the median (binomial order statistics);
    # None when there are too few samples for one (n < 6).
    median_ci95_low_ms: float | None
    median_ci95_high_ms: float | None
    noisy: bool

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(samples_ms: Sequence[float]) -> SampleStats:
    values = np.asarray(samples_ms, dtype=float)
    if values.size == 0:
        raise ValueError("no samples to summarize")
    p5, p25, median, p75, p95 = np.percentile(values, [5, 25, 50, 75, 95])
    iqr = p75 - p25
    relative_iqr = float(iqr / median) if median > 0 else float("inf")
    low, high = median_confidence_interval(values)
    return SampleStats(
        n=int(values.size),
        median_ms=float(median),
        mean_ms=float(values.mean()),
        stdev_ms=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        min_ms=float(values.min()),
        max_ms=float(values.max()),
        p5_ms=float(p5),
        p25_ms=float(p25),
        p75_ms=float(p75),
        p95_ms=float(p95),
        iqr_ms=float(iqr),
        relative_iqr=relative_iqr,
        median_ci95_low_ms=low,
        median_ci95_high_ms=high,
        noisy=relative_iqr > NOISY_RELATIVE_IQR,
    )


ROUNDS_BOOTSTRAP_RESAMPLES = 400


def summarize_rounds(rounds: Sequence[Sequence[float]]) -> SampleStats:
    """Statistics of a case measured in several rounds (each a fresh process): the median is the median of
    the round medians, its interval comes from resampling rounds and then samples within them, the spread
    figures are of all samples pooled, and the case is noisy when either the samples or the round medians
    scatter by more than 10 %."""
    if len(rounds) == 1:
        return summarize(rounds[0])
    pooled = summarize([value for samples in rounds for value in samples])
    round_medians = np.array([np.median(samples) for samples in rounds])
    median = float(np.median(round_medians))
    rng = np.random.default_rng(0)
    resamples, count = ROUNDS_BOOTSTRAP_RESAMPLES, len(rounds)
    # per round, one bootstrap median for every (resample, slot) that may draw it; then rounds are drawn
    medians = np.stack([np.median(np.asarray(samples)[rng.integers(0, len(samples), size=(resamples * count,
                                                                                             min(len(samples), 2000)))],
                                  axis=1) for samples in rounds])
    drawn = rng.integers(0, count, size=(resamples, count))
    draws = np.median(medians[drawn, np.arange(resamples * count).reshape(resamples, count)], axis=1)
    low, high = np.quantile(draws, [(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2])
    between = float((round_medians.max() - round_medians.min()) / median) if median > 0 else float("inf")
    return SampleStats(**{**pooled.to_dict(), "median_ms": median, "median_ci95_low_ms": float(low),
                          "median_ci95_high_ms": float(high),
                          "noisy": pooled.noisy or between > NOISY_RELATIVE_IQR})


def median_confidence_interval(values, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Order-statistic interval [x_(l), x_(n-l+1)] with P(l <= Binomial(n, 1/2) <= n-l) >= confidence."""
    ordered = np.sort(np.asarray(values, dtype=float))
    n = ordered.size
    alpha = 1.0 - confidence
    # ppf gives the smallest l with P(B <= l) >= alpha/2, so P(B <= l-1) < alpha/2: rank l (1-based) is safe.
    lower_rank = int(_binomial_half_ppf(alpha / 2, n))
    if lower_rank < 1:
        return None, None
    return float(ordered[lower_rank - 1]), float(ordered[n - lower_rank])


def _binomial_half_ppf(q: float, n: int) -> float:
    """scipy.stats.binom.ppf(q, n, 0.5) for 0 < q < 1, computed as scipy computes it, from scipy.special:
    scipy.stats takes half a second to import, and every run and every reader would pay it."""
    guess = np.ceil(special.bdtrik(q, n, 0.5))
    below = max(guess - 1, 0)
    return below if special.bdtr(below, n, 0.5) >= q else guess
