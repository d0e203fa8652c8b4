"""Speedups over cudnn within one run: every other backend against the cudnn case of the same model and mode.

reliable  A speedup is shown as a number only when the measurement supports one. It is *unreliable*, shown
          as "unreliable" with the reason and left out of every geometric mean, when

          - its interval (harness.gate.ratios: block bootstrap, or the two-level bootstrap of cases measured in
            rounds) spans more than a factor ``MAX_INTERVAL_SPAN`` (high / low > 1.5): the data cannot tell
            1.2x from 1.8x; or
          - either side's interquartile range exceeds ``MAX_RELATIVE_IQR`` (50 %) of its median: the times
            scatter so widely (a busy machine, a neighbour's load) that their median stands for no typical
            step; or
          - there is no interval (fewer than ``MIN_BATCHES_FOR_INTERVAL`` samples on a side): how sure the
            ratio is cannot be said.

          Noisy (IQR above 10 %, harness.record.stats) is a weaker flag: a noisy case still gets its number. On a
          quiet GPU (an H100, 2026-11-27) the widest interval spanned a factor 1.36 and the widest IQR was
          30 % of the median; on a busy two-core VM the IQRs reached 552 %.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Iterable, Mapping

from harness.gate.ratios import (DEFAULT_ALPHA, MIN_BATCHES_FOR_INTERVAL, Ratio, geometric_mean, hierarchical_ratio,
                            ratio_of_medians)
from harness.record.results import CaseResult, RunResults

MAX_INTERVAL_SPAN = 1.5
MAX_RELATIVE_IQR = 0.5

UNRELIABLE_RULE = (f"{1 - DEFAULT_ALPHA:.0%} interval of the ratio spanning more than a factor {MAX_INTERVAL_SPAN:g} "
                   f"(high / low), either side's interquartile range above {MAX_RELATIVE_IQR:.0%} of its median, "
                   f"or no interval (fewer than {MIN_BATCHES_FOR_INTERVAL} samples on a side)")


UNRELIABLE_RULE_SHORT = (f"its interval spans more than a factor {MAX_INTERVAL_SPAN:g}, a side's IQR is above "
                         f"{MAX_RELATIVE_IQR:.0%} of its median, or too few samples for an interval")


def unreliable_why(ratio: Ratio, relative_iqrs: Mapping[str, float]) -> str | None:
    """Why ``ratio`` is too uncertain to print (module docstring), None when it is not.

    ``relative_iqrs``: each side's interquartile range over its median, by the side's name."""
    reasons = [f"{side} IQR {iqr:.0%} of median" for side, iqr in relative_iqrs.items() if iqr > MAX_RELATIVE_IQR]
    if not ratio.has_ci:
        reasons.append(f"no interval (fewer than {MIN_BATCHES_FOR_INTERVAL} samples on a side)")
    elif ratio.high / ratio.low > MAX_INTERVAL_SPAN:
        reasons.append(f"interval {ratio.low:.3g}x-{ratio.high:.3g}x spans a factor {ratio.high / ratio.low:.3g}")
    return "; ".join(reasons) or None


def cudnn_counterpart(run: RunResults, result: CaseResult) -> CaseResult | None:
    """The ok cudnn result of the same model and mode, which other backends are measured against."""
    return next((other for other in _configuration(run, result) if other.ok and other.case.backend == "cudnn"), None)


def _configuration(run: RunResults, result: CaseResult) -> tuple[CaseResult, ...]:
    """The results of ``run`` with the same model and mode as ``result``."""
    return run.by_configuration.get((result.case.mode, result.case.model_key), ())


def speedup_over_cudnn(run: RunResults, result: CaseResult) -> float | None:
    """cudnn's median over this backend's median, in the case's primary region (> 1: faster)."""
    baseline = cudnn_counterpart(run, result)
    mine, theirs = result.median_ms(), baseline.median_ms() if baseline else None
    if not mine or not theirs:
        return None
    return theirs / mine


@dataclass(frozen=True)
class Speedup:
    """One result against a baseline of the same model and mode: the cudnn result (speedups over cudnn), or
    any other (harness.report.answer sets each backend against the fastest).

    ``ratio`` is cudnn's median over this backend's median (> 1: faster than cudnn) with its interval; None
    when either did not run, with ``reason`` saying why. ``baseline``: the cudnn result, where it ran."""

    result: CaseResult
    region: str
    ratio: Ratio | None
    reason: str | None = None
    baseline: CaseResult | None = None

    @property
    def unreliable_why(self) -> str | None:
        """Why the ratio is too uncertain to show as a number (the module's rule); None when it is shown."""
        if self.ratio is None or self.baseline is None:
            return None
        mine, theirs = self.result.case.backend_label, self.baseline.case.backend_label
        return unreliable_why(self.ratio, {mine: self.result.stats[self.region].relative_iqr,
                                           theirs if theirs != mine else f"{theirs} (baseline)":
                                               self.baseline.stats[self.region].relative_iqr})

    @property
    def reliable(self) -> bool:
        """A ratio the measurement supports: shown as a number and counted in geometric means."""
        return self.ratio is not None and self.unreliable_why is None


def speedup_of(run: RunResults, result: CaseResult) -> Speedup | None:
    """The speedup of one non-cudnn case over cudnn in its primary region; None for a cudnn case or a
    configuration without a cudnn case."""
    if result.case.backend == "cudnn" or not any(other.case.backend == "cudnn"
                                                 for other in _configuration(run, result)):
        return None
    region = result.primary_region
    baseline = cudnn_counterpart(run, result)
    if not result.ok:
        return Speedup(result, region, None, f"{result.status}: {result.reason or 'no reason given'}")
    if baseline is None:
        return Speedup(result, region, None, "cudnn did not run")
    return speedup_between(result, baseline, region)


def speedup_between(result: CaseResult, baseline: CaseResult, region: str) -> Speedup:
    """``baseline``'s median over ``result``'s in ``region``, with its interval (> 1: ``result`` is faster):
    the one way two cases of a run are set against each other, whichever the baseline."""
    if not result.samples_ms.get(region) or not baseline.samples_ms.get(region):
        return Speedup(result, region, None, f"no {region} samples", baseline)
    if result.round_count > 1 or baseline.round_count > 1:
        # the median of round medians, as result.median_ms(), with the interval that resamples rounds first
        ratio, _ = hierarchical_ratio(result.samples_by_round(region), baseline.samples_by_round(region))
    else:
        ratio = ratio_of_medians(result.samples_ms[region], baseline.samples_ms[region])
    return Speedup(result, region, ratio, baseline=baseline)


def speedups_over_cudnn(run: RunResults) -> list[Speedup]:
    """Every non-cudnn case of ``run`` whose configuration has a cudnn case, in the primary region."""
    return [speedup for speedup in (speedup_of(run, result) for result in run.cases) if speedup is not None]


@dataclass(frozen=True)
class SpeedupMean:
    """A backend's geometric mean speedup over cudnn, of its reliable ratios only."""

    backend: str
    value: float | None  # None: no reliable ratio
    counted: int
    unreliable: int  # ratios left out: too uncertain (UNRELIABLE_RULE)

    def left_out_text(self) -> str:
        """'' when every ratio counted, else e.g. '2 unreliable left out' (the reason is UNRELIABLE_RULE)."""
        return f"{self.unreliable} unreliable left out" if self.unreliable else ""


def geometric_mean_speedups(speedups: Iterable[Speedup]) -> dict[str, SpeedupMean]:
    """Per backend, the geometric mean of its reliable speedups over cudnn (the cases that ran on both),
    with how many ratios were left out as unreliable."""
    reliable: dict[str, list[float]] = {}
    unreliable: dict[str, int] = {}
    for speedup in speedups:
        if speedup.ratio is None:
            continue
        backend = speedup.result.case.backend_label
        reliable.setdefault(backend, [])
        if speedup.reliable:
            reliable[backend].append(speedup.ratio.value)
        else:
            unreliable[backend] = unreliable.get(backend, 0) + 1
    return {backend: SpeedupMean(backend, geometric_mean(values), len(values), unreliable.get(backend, 0))
            for backend, values in reliable.items()}


_COMPUTED: dict[int, tuple] = {}


def cudnn_speedups(run: RunResults) -> tuple[Speedup, ...]:
    """:func:`speedups_over_cudnn` of ``run``, computed once per run: each speedup is a bootstrap, and the
    chart, the tables and the summary all show them."""
    known = _COMPUTED.get(id(run))
    if known is not None and known[0]() is run:
        return known[1]
    speedups = tuple(speedups_over_cudnn(run))
    key = id(run)
    _COMPUTED[key] = (weakref.ref(run, lambda _, key=key: _COMPUTED.pop(key, None)), speedups)
    return speedups
