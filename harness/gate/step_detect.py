"""Steps in a series of run medians: a piecewise-constant fit, then the steps that stand out of the noise.

The approach is airspeed velocity's (asv, ``asv/step_detect.py``, BSD-3-Clause; after Friedrich et al.,
"Complexity Penalized M-Estimation: Fast Computation", JCGS 17 (2008), and Yao, "Estimating the number of
change-points via Schwarz criterion", Stat. Prob. Lett. 6 (1988)); this is a small re-implementation, not
a copy, with these differences: the Potts problem is solved exactly (asv approximates it for long series)
over at most ``MAX_POINTS`` latest points, points are unweighted, and the AR(1) noise term asv fits when it
chooses gamma is left out.

1. For a penalty gamma, the fit minimises ``gamma * (number of segments) + sum |y_i - mu(segment of i)|``
   (L1: each segment's value is its median, robust to single outliers), by dynamic programming.
2. Gamma is chosen by a Schwarz-like criterion evaluated along the solutions for a range of gammas:
   ``beta * segments + ln(sigma_0 + sum |y - fit|)`` with ``beta = 4 ln(n) / n``, asv's default, and
   ``sigma_0`` a noise floor that keeps a perfect fit from winning.
3. A step between two neighbouring segments counts when it is larger than both the noise (each segment's mean
   absolute deviation from its median) and ``threshold`` times the value before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

MAX_POINTS = 300  # the exact fit is O(n^2) in memory and time; older points are left out


@dataclass(frozen=True)
class Segment:
    start: int  # first index, inclusive
    stop: int  # last index, exclusive
    value: float  # the median of the segment's points
    noise: float  # their mean absolute deviation from it


@dataclass(frozen=True)
class Step:
    before: Segment
    after: Segment

    @property
    def index(self) -> int:
        """The first point after the step."""
        return self.after.start

    @property
    def change(self) -> float:
        """Relative change: +0.10 is 10 % slower after the step (for times)."""
        return self.after.value / self.before.value - 1.0 if self.before.value else math.inf

    @property
    def regression(self) -> bool:
        return self.after.value > self.before.value


def _deviation_table(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """medians[l, r] and L1 deviations[l, r] of y[l:r+1], for l <= r."""
    n = len(y)
    medians = np.zeros((n, n))
    deviations = np.zeros((n, n))
    for left in range(n):
        for right in range(left, n):
            window = y[left:right + 1]
            median = float(np.median(window))
            medians[left, right] = median
            deviations[left, right] = float(np.abs(window - median).sum())
    return medians, deviations


def _potts(deviations: np.ndarray, gamma: float) -> list[int]:
    """Exclusive right ends of the segments minimising gamma * segments + total deviation."""
    n = deviations.shape[0]
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    start_of = [0] * (n + 1)
    for right in range(1, n + 1):
        costs = best[:right] + gamma + deviations[np.arange(right), right - 1]
        left = int(np.argmin(costs))
        best[right], start_of[right] = costs[left], left
    ends, right = [], n
    while right > 0:
        ends.append(right)
        right = start_of[right]
    return ends[::-1]


def fit_segments(values: Sequence[float]) -> list[Segment]:
    """The piecewise-constant fit of ``values`` (oldest first), gamma chosen as asv chooses it."""
    y = np.asarray(values, dtype=float)[-MAX_POINTS:]
    offset = len(values) - len(y)
    n = len(y)
    if n == 0:
        return []
    medians, deviations = _deviation_table(y)
    if n < 3:
        ends = [n]
    else:
        beta = 4.0 * math.log(n) / n
        gamma_0 = deviations[0, n - 1] or 1.0
        best_objective, ends = math.inf, [n]
        for exponent in np.linspace(math.log(0.1 / n), 0.0, 40):
            candidate = _potts(deviations, gamma_0 * math.exp(exponent))
            starts = [0] + candidate[:-1]
            levels = [medians[s, e - 1] for s, e in zip(starts, candidate)]
            residual = sum(deviations[s, e - 1] for s, e in zip(starts, candidate))
            if len(levels) > 1:
                floor = 0.1 * min(abs(b - a) for a, b in zip(levels, levels[1:]))
            else:
                floor = 0.001 * abs(levels[0])
            objective = beta * len(candidate) + math.log(max(floor, 1e-300) + residual)
            if objective < best_objective - 1e-12:
                best_objective, ends = objective, candidate
    segments, start = [], 0
    for end in ends:
        segments.append(Segment(start + offset, end + offset, float(medians[start, end - 1]),
                                float(deviations[start, end - 1] / (end - start))))
        start = end
    return segments


def _stands_out(before: Segment, after: Segment, threshold: float) -> bool:
    return abs(after.value - before.value) > max(before.noise, after.noise, threshold * abs(before.value))


def significant_steps(segments: Sequence[Segment], threshold: float, min_size: int = 2) -> list[Step]:
    """Steps between neighbouring segments larger than the noise of either and than ``threshold`` (relative).

    A segment shorter than ``min_size`` between two that agree is an outlier, not two steps (asv's
    ``min_size``); at the end of the series it stands: the latest run has nothing after it to contradict it.
    """
    kept = list(segments)
    index = 1
    while index < len(kept) - 1:
        if (kept[index].stop - kept[index].start < min_size
                and not _stands_out(kept[index - 1], kept[index + 1], threshold)):
            del kept[index]
        else:
            index += 1
    return [Step(before, after) for before, after in zip(kept, kept[1:]) if _stands_out(before, after, threshold)]
