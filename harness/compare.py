"""Compare two results files case by case: is the current run slower than the baseline?

Pure functions; nothing here prints (``harness.report.compare_text`` renders, ``cli.py`` decides the exit
code). ``compare_runs(baseline, current)`` returns an immutable :class:`Comparison`.

What is compared
    Cases are matched by their key (``Case.key``: cell, backend, mode, sizes, dtype, device type). For each
    case ok in both files, one timed region is compared (``--metric``: step, forward or backward; by default
    each case's primary region: the step of a training case, the forward otherwise), from its kept samples.

The statistics of one case
    batches   Timing samples drift within a run (clock boost, a neighbour's load), so consecutive samples are
              not independent. Each side's samples, in the order they were measured, are cut into
              ``MAX_BATCHES`` (10) consecutive batches of nearly equal size (one sample per batch when there
              are fewer samples). Drift within a run makes the batches differ, and so widens the interval
              and weakens the test below, instead of passing for a change.
    ratio     median(current samples) / median(baseline samples): above 1 the current run is slower.
    interval  Block bootstrap of that ratio, at confidence 1 - alpha: each side is resampled by drawing its
              batches with replacement (``BOOTSTRAP_RESAMPLES`` times, fixed seed, so the same files always
              give the same interval), the ratio of medians is taken of each pair of resamples, and the
              interval is the alpha/2 and 1 - alpha/2 quantiles of those ratios. None (shown "-") with
              fewer than ``MIN_BATCHES_FOR_INTERVAL`` batches on a side.
    p         Two-sided Mann-Whitney U test (scipy, exact) of the batch medians (each batch summarised by its
              median): how likely a difference at least this clear is between two runs of the same code.
    p (Holm)  The p-values of all compared cases adjusted by Holm-Bonferroni, so the chance of calling any
              case significant when nothing changed stays at alpha however many cases are compared.

Verdicts (time metrics, lower is better; t = threshold, band = [1/(1+t), 1+t])
    regression   Holm-adjusted p < alpha AND the whole interval above 1+t: the current run is slower, and
                 slower by more than the threshold, with confidence.
    improvement  Holm-adjusted p < alpha AND the whole interval below 1/(1+t): faster by more than the
                 threshold, with confidence.
    unchanged    neither, and the ratio is inside the band: any change is smaller than the threshold.
    noise        neither, and the ratio is outside the band: a change of threshold size was measured but
                 cannot be told from noise (not significant after Holm, or the interval reaches back into
                 the band). Reported, never fails the gate; more samples (a larger budget_s) or a quieter
                 machine decide it.

Cases not compared are listed, never dropped: only in one file, failed or skipped in either file, or without
samples of the region. A case ok in the baseline that *fails* in the current run (parity, out of memory,
an exception) fails the gate like a regression (``Comparison.broken``).

Environments: a different device type, GPU model, GPU driver, CPU model (CPU runs), torch, CUDA, cuDNN or
oneDNN version, or math precision makes the comparison meaningless as a gate; ``Comparison.blocking_differences``
lists them and the CLI refuses unless ``--allow-env-mismatch``. A field that one file does not record (an
older file without the GPU driver) is shown as unknown and does not block.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats

from harness.cases import Case
from harness.errors import RnnbenchError
from harness.metrics import METRICS
from harness.results import CaseResult, RunResults, freeze

MAX_BATCHES = 10
MIN_BATCHES_FOR_INTERVAL = 5
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.05

REGRESSION, IMPROVEMENT, UNCHANGED, NOISE = "regression", "improvement", "unchanged", "noise"
VERDICTS = (REGRESSION, IMPROVEMENT, NOISE, UNCHANGED)  # also the order a report lists them in

# Metrics that can be compared: the ones measured as timed samples.
SAMPLED_METRICS = tuple(name for name, metric in METRICS.items() if metric.region)


class ComparisonError(RnnbenchError):
    """Two results files that cannot be compared: nothing in common, a bad option, different environments."""


# --------------------------------------------------------------------------------------------- records

@dataclass(frozen=True)
class CaseComparison:
    """One case matched in both files and compared on one region."""

    case: Case
    region: str
    baseline_n: int
    current_n: int
    batches: tuple[int, int]
    baseline_median_ms: float
    current_median_ms: float
    ratio: float                  # current / baseline median; > 1: slower
    ci_low: float | None          # interval of the ratio at confidence 1 - alpha; None: too few batches
    ci_high: float | None
    p_value: float                # two-sided Mann-Whitney U on the batch medians
    p_adjusted: float             # Holm-Bonferroni over all compared cases
    verdict: str

    @property
    def key(self) -> str:
        return self.case.key

    @property
    def change(self) -> float:
        """Relative change of the median: +0.20 is 20 % slower."""
        return self.ratio - 1.0


@dataclass(frozen=True)
class NotCompared:
    """A case in both files that could not be compared (failed, skipped, or no samples of the region)."""

    key: str
    baseline_status: str
    current_status: str
    reason: str
    broken: bool  # ok in the baseline, failed now: fails the gate


@dataclass(frozen=True)
class EnvironmentDifference:
    label: str
    baseline: str | None
    current: str | None
    blocking: bool  # a difference that makes timings incomparable (refused unless allowed)


@dataclass(frozen=True)
class Comparison:
    baseline_source: str | None
    current_source: str | None
    metric: str | None              # None: each case's primary region
    threshold: float
    alpha: float
    cases: tuple[CaseComparison, ...]
    only_in_baseline: tuple[str, ...]
    only_in_current: tuple[str, ...]
    not_compared: tuple[NotCompared, ...]
    environment: tuple[EnvironmentDifference, ...]
    baseline_summary: Mapping = field(default_factory=dict)
    current_summary: Mapping = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "baseline_summary", freeze(self.baseline_summary))
        object.__setattr__(self, "current_summary", freeze(self.current_summary))

    def with_verdict(self, verdict: str) -> tuple[CaseComparison, ...]:
        return tuple(c for c in self.cases if c.verdict == verdict)

    @property
    def regressions(self) -> tuple[CaseComparison, ...]:
        return self.with_verdict(REGRESSION)

    @property
    def improvements(self) -> tuple[CaseComparison, ...]:
        return self.with_verdict(IMPROVEMENT)

    @property
    def broken(self) -> tuple[NotCompared, ...]:
        return tuple(n for n in self.not_compared if n.broken)

    @property
    def failed(self) -> bool:
        """What fails the gate: a regression, or a case that ran in the baseline and fails now."""
        return bool(self.regressions or self.broken)

    @property
    def blocking_differences(self) -> tuple[EnvironmentDifference, ...]:
        return tuple(d for d in self.environment if d.blocking)

    @property
    def geometric_mean_ratio(self) -> float | None:
        """All compared cases together; a shift of every case alike points at the machine, not the code."""
        if not self.cases:
            return None
        return float(math.exp(sum(math.log(c.ratio) for c in self.cases) / len(self.cases)))

    @property
    def ratio_spread(self) -> float | None:
        """How much the cases' ratios scatter: 1.4826 x the median absolute deviation of their logarithms
        (about one standard deviation, robust to the few cases that really changed), as a fraction. Much
        larger than the threshold, it says the runs themselves differ (a noisy or busy machine): a gate on
        such a pair mostly measures the machine."""
        if len(self.cases) < 5:
            return None
        logs = np.log([c.ratio for c in self.cases])
        return float(math.expm1(1.4826 * np.median(np.abs(logs - np.median(logs)))))

    @property
    def noisy_pair(self) -> bool:
        spread = self.ratio_spread
        return spread is not None and spread > self.threshold

    def counts(self) -> dict[str, int]:
        return {verdict: len(self.with_verdict(verdict)) for verdict in VERDICTS}


# ------------------------------------------------------------------------------------------ options

def parse_fraction(text: str | float, option: str, *, allow_zero: bool = True, upper: float | None = None) -> float:
    """'5%' or '0.05' -> 0.05. A bare number must be below 1 (a bare 5 is ambiguous: 5 % or 500 %?)."""
    raw = str(text).strip()
    percent = raw.endswith("%")
    number = raw[:-1].strip() if percent else raw
    try:
        value = float(number)
    except ValueError:
        raise ComparisonError(f"{option} {text!r}: not a number; write e.g. 5% or 0.05") from None
    if not math.isfinite(value):
        raise ComparisonError(f"{option} {text!r}: must be a finite number")
    if percent:
        value /= 100.0
    elif value >= 1:
        raise ComparisonError(f"{option} {text!r}: a bare number must be a fraction below 1; "
                              f"write {value:g}% for a percentage")
    if value < 0 or (value == 0 and not allow_zero):
        raise ComparisonError(f"{option} {text!r}: must be {'at least' if allow_zero else 'above'} 0")
    if upper is not None and value >= upper:
        raise ComparisonError(f"{option} {text!r}: must be below {upper:g}")
    return value


def check_metric(name: str | None) -> str | None:
    if name is None or name in SAMPLED_METRICS:
        return name
    raise ComparisonError(f"--metric {name!r}: cannot be compared; choose one of {', '.join(SAMPLED_METRICS)} "
                          f"(the timed regions)")


# ---------------------------------------------------------------------------------------- statistics

def batch_medians(samples: Sequence[float], max_batches: int = MAX_BATCHES) -> np.ndarray:
    """The medians of up to ``max_batches`` consecutive batches of the samples, in measured order."""
    return np.nanmedian(_batches(samples, max_batches), axis=1)


def _batches(samples: Sequence[float], max_batches: int = MAX_BATCHES) -> np.ndarray:
    """The samples as a (batches, longest batch) array, NaN-padded: consecutive batches in measured order."""
    values = np.asarray(samples, dtype=float)
    parts = np.array_split(values, min(max_batches, values.size))
    table = np.full((len(parts), max(part.size for part in parts)), np.nan)
    for row, part in enumerate(parts):
        table[row, :part.size] = part
    return table


def _bootstrap_medians(batches: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Medians of ``resamples`` resamples made of the batches drawn with replacement (a block bootstrap)."""
    count = batches.shape[0]
    medians = np.empty(resamples)
    chunk = max(1, 4_000_000 // batches.size)  # bounds the memory of one gather
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        picks = rng.integers(0, count, size=(stop - start, count))
        medians[start:stop] = np.nanmedian(batches[picks].reshape(stop - start, -1), axis=1)
    return medians


def interval_method(alpha: float = DEFAULT_ALPHA) -> str:
    """How the gate's interval of a ratio is computed, in words, from the constants that compute it."""
    return (f"{1 - alpha:.0%} interval, block bootstrap of the ratio of medians: each side's samples cut, in "
            f"measured order, into {MAX_BATCHES} consecutive batches, resampled whole ({BOOTSTRAP_RESAMPLES} "
            f"resamples, fixed seed); none with fewer than {MIN_BATCHES_FOR_INTERVAL} samples on a side")


def ratio_interval(baseline_samples: Sequence[float], current_samples: Sequence[float], alpha: float, *,
                   resamples: int = BOOTSTRAP_RESAMPLES,
                   seed: int = BOOTSTRAP_SEED) -> tuple[float | None, float | None]:
    """Block-bootstrap interval of median(current) / median(baseline) at confidence 1 - alpha."""
    baseline, current = _batches(baseline_samples), _batches(current_samples)
    if min(baseline.shape[0], current.shape[0]) < MIN_BATCHES_FOR_INTERVAL:
        return None, None
    rng = np.random.default_rng(seed)
    ratios = _bootstrap_medians(current, rng, resamples) / _bootstrap_medians(baseline, rng, resamples)
    low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def mann_whitney_p(baseline_batches: np.ndarray, current_batches: np.ndarray) -> float:
    if np.array_equal(np.sort(baseline_batches), np.sort(current_batches)):
        return 1.0  # identical sets (a file compared with itself); scipy would also say so, less directly
    result = scipy_stats.mannwhitneyu(current_batches, baseline_batches, alternative="two-sided", method="exact")
    return float(min(1.0, result.pvalue))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down; monotone; capped at 1), in the input order."""
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    adjusted = [1.0] * count
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (count - position) * p_values[index]))
        adjusted[index] = running
    return adjusted


def classify(ratio: float, ci_low: float | None, ci_high: float | None, p_adjusted: float, *,
             threshold: float, alpha: float, lower_is_better: bool = True) -> str:
    """The verdict of one case; see the module docstring for the definitions."""
    upper, lower = 1.0 + threshold, 1.0 / (1.0 + threshold)
    significant = p_adjusted < alpha
    slower_beyond = ci_low is not None and ci_low > upper
    faster_beyond = ci_high is not None and ci_high < lower
    if significant and (slower_beyond or faster_beyond):
        worse = slower_beyond if lower_is_better else faster_beyond
        return REGRESSION if worse else IMPROVEMENT
    return UNCHANGED if lower <= ratio <= upper else NOISE


# ------------------------------------------------------------------------------------------ compare

def compare_runs(baseline: RunResults, current: RunResults, *, metric: str | None = None,
                 threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Match the two runs' cases by key and compare each; raises ComparisonError when none is in both."""
    metric = check_metric(metric)
    if not 0 < alpha < 1:
        raise ComparisonError(f"alpha {alpha!r}: must be between 0 and 1")
    if threshold < 0:
        raise ComparisonError(f"threshold {threshold!r}: must be at least 0")
    lower_is_better = METRICS[metric].lower_is_better if metric else True
    base_by_key = {r.key: r for r in baseline.cases}
    current_by_key = {r.key: r for r in current.cases}
    common = [key for key in base_by_key if key in current_by_key]
    if not common:
        raise ComparisonError(f"no case in common between {baseline.source or 'the baseline'} "
                              f"({len(base_by_key)} cases) and {current.source or 'the current run'} "
                              f"({len(current_by_key)} cases): different suites or devices?")

    measured: list[tuple[CaseResult, CaseResult, str]] = []
    not_compared: list[NotCompared] = []
    for key in common:
        base, cur = base_by_key[key], current_by_key[key]
        region = metric or base.primary_region
        reason = _why_not_compared(base, cur, region)
        if reason:
            not_compared.append(NotCompared(key=key, baseline_status=base.status, current_status=cur.status,
                                            reason=reason, broken=base.ok and cur.status == "failed"))
        else:
            measured.append((base, cur, region))

    raw = []
    for base, cur, region in measured:
        base_samples, cur_samples = base.samples_ms[region], cur.samples_ms[region]
        base_batches, cur_batches = batch_medians(base_samples), batch_medians(cur_samples)
        ci_low, ci_high = ratio_interval(base_samples, cur_samples, alpha)
        raw.append(dict(case=base.case, region=region, baseline_n=len(base_samples), current_n=len(cur_samples),
                        batches=(len(base_batches), len(cur_batches)),
                        baseline_median_ms=float(np.median(base_samples)),
                        current_median_ms=float(np.median(cur_samples)),
                        ci_low=ci_low, ci_high=ci_high, p_value=mann_whitney_p(base_batches, cur_batches)))
    adjusted = holm_adjust([entry["p_value"] for entry in raw])
    cases = []
    for entry, p_adjusted in zip(raw, adjusted):
        ratio = entry["current_median_ms"] / entry["baseline_median_ms"]
        verdict = classify(ratio, entry["ci_low"], entry["ci_high"], p_adjusted, threshold=threshold,
                           alpha=alpha, lower_is_better=lower_is_better)
        cases.append(CaseComparison(**entry, ratio=ratio, p_adjusted=p_adjusted, verdict=verdict))

    warnings = []
    for label, run in (("baseline", baseline), ("current", current)):
        if run.status != "complete":
            warnings.append(f"the {label} run is {run.status}: only its finished cases are compared")
    return Comparison(
        baseline_source=baseline.source, current_source=current.source, metric=metric,
        threshold=threshold, alpha=alpha, cases=tuple(cases),
        only_in_baseline=tuple(k for k in base_by_key if k not in current_by_key),
        only_in_current=tuple(k for k in current_by_key if k not in base_by_key),
        not_compared=tuple(not_compared),
        environment=environment_differences(baseline, current),
        baseline_summary=run_summary(baseline), current_summary=run_summary(current),
        warnings=tuple(warnings),
    )


def _why_not_compared(base: CaseResult, cur: CaseResult, region: str) -> str | None:
    if not base.ok or not cur.ok:
        parts = []
        for label, result in (("baseline", base), ("current", cur)):
            if not result.ok:
                parts.append(f"{result.status} in {label}" + (f" ({result.reason})" if result.reason else ""))
        return "; ".join(parts)
    for label, result in (("baseline", base), ("current", cur)):
        samples = result.samples_ms.get(region) or ()
        if not samples:
            return f"no {region} samples in the {label} (mode {result.case.mode})"
        if min(samples) <= 0:
            return f"non-positive {region} samples in the {label}"
    return None


# ------------------------------------------------------------------------------------- environments

def _get(mapping: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(name)
    return mapping


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def device_type(environment: Mapping) -> str | None:
    device = _get(environment, "device")
    return str(device).split(":")[0] if device else None


def gpu_driver(environment: Mapping) -> Any:
    gpu = _get(environment, "gpu") or {}
    return gpu.get("driver") if gpu.get("driver") is not None else gpu.get("driver_version")


def environment_differences(baseline: RunResults, current: RunResults) -> tuple[EnvironmentDifference, ...]:
    """Every field that differs. ``blocking``: the timings cannot be compared as a gate."""
    a, b = baseline.environment, current.environment
    on_cpu = device_type(a) == "cpu" and device_type(b) == "cpu"
    fields = (
        # label, baseline value, current value, blocks the comparison
        ("device type", device_type(a), device_type(b), True),
        ("GPU model", _get(a, "gpu", "name"), _get(b, "gpu", "name"), True),
        ("GPU driver", gpu_driver(a), gpu_driver(b), True),
        ("CPU model", _get(a, "machine", "cpu", "brand_raw"), _get(b, "machine", "cpu", "brand_raw"), on_cpu),
        ("torch", _get(a, "torch", "version"), _get(b, "torch", "version"), True),
        ("CUDA", _get(a, "torch", "cuda"), _get(b, "torch", "cuda"), True),
        ("cuDNN", _get(a, "torch", "cudnn"), _get(b, "torch", "cudnn"), True),
        ("oneDNN", _get(a, "torch", "onednn"), _get(b, "torch", "onednn"), on_cpu),
        ("math precision", _get(baseline.suite, "precision"), _get(current.suite, "precision"), True),
        ("torch threads", _get(a, "threads", "intra_op"), _get(b, "threads", "intra_op"), False),
        ("host", _get(a, "machine", "node"), _get(b, "machine", "node"), False),
        ("Python", _get(a, "machine", "python_version"), _get(b, "machine", "python_version"), False),
        ("suite file (sha256)", _short(_get(baseline.suite, "sha256")), _short(_get(current.suite, "sha256")), False),
        ("rnnbench", _get(a, "rnnbench_version"), _get(b, "rnnbench_version"), False),
    )
    differences = []
    for label, left, right, blocking in fields:
        left, right = _text(left), _text(right)
        if left == right:
            continue
        known = left is not None and right is not None
        # A GPU field of a CPU run is absent on purpose; it is the device type that differs.
        differences.append(EnvironmentDifference(label, left, right, blocking and known))
    return tuple(differences)


def _short(value: Any) -> str | None:
    return str(value)[:12] if value else None


def run_summary(run: RunResults) -> dict:
    """A few facts of one run for the report's header."""
    environment = run.environment
    gpu = _get(environment, "gpu", "name")
    commit = _get(environment, "commit", "id")
    return {
        "source": run.source,
        "suite": _get(run.suite, "name"),
        "device": gpu or _get(environment, "machine", "cpu", "brand_raw") or device_type(environment),
        "torch": _get(environment, "torch", "version"),
        "commit": (commit[:10] + ("+dirty" if _get(environment, "commit", "dirty") else "")) if commit else None,
        "started_utc": run.started_utc,
        "status": run.status,
        "cases": len(run.cases),
    }


# ----------------------------------------------------------------------------------------- baselines

BASELINE_DIR = "results/baselines"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def baseline_key(environment: Mapping) -> str:
    """The file name (without .json) of a machine's baseline under results/baselines/: its GPU model
    ("nvidia-h100-80gb-hbm3"), or "cpu-" and its CPU model for a CPU run. The one place for this rule."""
    gpu = _get(environment, "gpu", "name")
    if gpu:
        return slug(gpu)
    return "cpu-" + slug(str(_get(environment, "machine", "cpu", "brand_raw") or "unknown"))
