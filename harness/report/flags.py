"""The facts about a results file that a report must not let a reader miss: failed and skipped cases,
noisy measurements, speedups too uncertain to show, compiled backends that ran eagerly. Shared by the HTML page
and the Markdown summary."""

from __future__ import annotations

from dataclasses import dataclass

from harness.report.text import eager_fallback_note
from harness.record.results import CaseResult, RunResults
from typing import Iterable

from harness.gate.speedup import Speedup
from harness.record.stats import NOISY_RELATIVE_IQR


@dataclass(frozen=True)
class Flagged:
    key: str
    what: str  # failed, skipped, noisy, not compiled, unreliable speedup
    detail: str


def problems(run: RunResults) -> list[Flagged]:
    """Failed and skipped cases, with their reasons."""
    return [Flagged(r.key, r.status, r.reason or "no reason given") for r in run.cases if not r.ok]


def noisy(run: RunResults) -> list[Flagged]:
    """Ok cases with a region whose interquartile range exceeds NOISY_RELATIVE_IQR of its median."""
    flagged = []
    for result in run.cases:
        regions = result.noisy_regions if result.ok else []
        if regions:
            worst = max(result.stats[r].relative_iqr for r in regions)
            flagged.append(Flagged(result.key, "noisy", f"{', '.join(regions)}: IQR {worst:.0%} of the median"))
    return flagged


def unreliable_speedups(speedups: Iterable[Speedup]) -> list[Flagged]:
    """Speedups over cudnn that are not shown as numbers nor counted in geometric means
    (harness.gate.speedup.UNRELIABLE_RULE), with what made each unreliable."""
    return [Flagged(s.result.key, "unreliable speedup", s.unreliable_why) for s in speedups if s.unreliable_why]


def eager_fallbacks(run: RunResults) -> list[Flagged]:
    """Compiled backends that Dynamo could not compile: their times are eager PyTorch's."""
    flagged = []
    for result in run.cases:
        if result.ok and result.ran_eagerly:
            flagged.append(Flagged(result.key, "not compiled", eager_fallback_note(result)))
    return flagged


def is_noisy(result: CaseResult) -> bool:
    return result.ok and bool(result.noisy_regions)


NOISY_RULE = f"interquartile range above {NOISY_RELATIVE_IQR:.0%} of the median"
