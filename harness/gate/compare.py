"""Compare two results files case by case: is the current run slower than the baseline?

The one model of a comparison, read by every renderer: the terminal table and Markdown of ``rnnbench compare``
(``harness.report.compare_text``), the report's Markdown and HTML, and the A-vs-B chart. Nothing here prints;
``cli.py`` decides the exit code. ``compare_runs(baseline, current)`` returns an immutable :class:`Comparison`.

What is compared
    Cases are matched by their key (``Case.key``: cell, backend, mode, sizes, dtype, device type). For each
    case ok in both files, one timed region is compared (``--metric``: step, forward or backward; by default
    each case's primary region: the step of a training case, the forward otherwise), from its kept samples:
    the ratio of medians, its block-bootstrap interval and a Mann-Whitney p of batch medians, Holm-adjusted
    over all compared cases (:mod:`harness.gate.ratios`), and from them the verdict (:mod:`harness.gate.verdict`).
    The two sides of one ``rnnbench ab`` are paired instead: block by block where both recorded their blocks
    (one-sided tests, Benjamini-Hochberg: ``GateRule.ONE_SIDED_FDR``), else round by round.

Cases not compared are listed, never dropped: only in one file, failed or skipped in either file, or without
samples of the region. A case ok in the baseline that *fails* in the current run (parity, out of memory,
an exception) fails the gate like a regression (``Comparison.broken``).

Environments that differ (:mod:`harness.record.environment_diff`) are listed; ``Comparison.blocking_differences``
are those that make the comparison meaningless as a gate, and the CLI refuses unless ``--allow-env-mismatch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Iterable

import numpy as np

from harness.record.device_time import GPU_BUSY, with_gpu_busy_samples
from harness.record.environment_diff import EnvironmentDifference, environment_differences
from harness.errors import ComparisonError
from harness.record.metrics import METRICS, check_sampled_metric
from harness.spec.cases import Case
from harness.gate.ratios import (DEFAULT_ALPHA, Ratio, batch_medians, bh_adjust, geometric_mean, hierarchical_ratio,
                                 holm_adjust, geometric_mean_of_round_medians, interval_method, mann_whitney_p,
                                 paired_block_ratio, paired_round_ratio, ratio_interval, robust_spread)
from harness.record.results import CaseResult, Environment, RunResults
from harness.record.results_store import file_labels
from harness.gate.verdict import VERDICTS, GateRule, Verdict, classify

DEFAULT_THRESHOLD = 0.05
MIN_CASES_FOR_SPREAD = 5


class ComparisonMethod(Enum):
    """How the two sides of a case are compared, which decides what each side's time is (``Pair.baseline_ms``,
    ``Pair.current_ms``: ``side_statistic``) and how the change, its interval and p are computed (:mod:`ratios`).
    Decided once, by :func:`decide_method`."""

    PAIRED_BY_BLOCK = "paired by block"
    PAIRED_BY_ROUND = "paired by round"
    TWO_LEVEL_BOOTSTRAP = "two-level bootstrap"
    SINGLE_ROUND_BOOTSTRAP = "single-round bootstrap"

    @property
    def side_statistic(self) -> str:
        """What a side's time (``Pair.baseline_ms``, ``Pair.current_ms``) is under this method, in words."""
        return _SIDE_STATISTICS[self]

    @property
    def rule(self) -> GateRule:
        """The verdicts' definitions under this method (:mod:`harness.gate.verdict`)."""
        return GateRule.ONE_SIDED_FDR if self is ComparisonMethod.PAIRED_BY_BLOCK else GateRule.HOLM_INTERVAL


_SIDE_STATISTICS = {
    # the runs took turns block by block and recorded the blocks: block k of A against block k of B, rounds a
    # random effect (ratios.paired_block_ratio); the change is that paired estimate, not the ratio of these two
    ComparisonMethod.PAIRED_BY_BLOCK: "geometric mean over rounds of the median block median",
    # the runs took turns (rnnbench ab): the change is the geometric mean of the rounds' ratios of medians
    ComparisonMethod.PAIRED_BY_ROUND: "geometric mean of round medians",
    # rounds in fresh processes: the interval and the test resample rounds, then batches within them
    ComparisonMethod.TWO_LEVEL_BOOTSTRAP: "median of round medians",
    # one round each: the block bootstrap of the ratio of medians, Mann-Whitney on batch medians
    ComparisonMethod.SINGLE_ROUND_BOOTSTRAP: "median of samples",
}


def decide_method(sides_took_turns: bool, baseline_rounds: int, current_rounds: int,
                  blocks_line_up: bool = False) -> ComparisonMethod:
    """How two sides measured in ``baseline_rounds`` and ``current_rounds`` rounds are compared: paired by block
    when they took turns (``rnnbench ab``) in as many rounds and both recorded as many blocks in each
    (``blocks_line_up``), paired by round when they took turns in as many rounds (files written before the blocks
    were recorded), else the two-level bootstrap when either measured in rounds, else the single-round block
    bootstrap."""
    if sides_took_turns and baseline_rounds == current_rounds:
        return ComparisonMethod.PAIRED_BY_BLOCK if blocks_line_up else ComparisonMethod.PAIRED_BY_ROUND
    if baseline_rounds > 1 or current_rounds > 1:
        return ComparisonMethod.TWO_LEVEL_BOOTSTRAP
    return ComparisonMethod.SINGLE_ROUND_BOOTSTRAP


@dataclass(frozen=True)
class Pair:
    """One case ok in both files, compared on one region: both results and the statistics of the change."""

    baseline: CaseResult
    current: CaseResult
    region: str
    method: ComparisonMethod      # how this pair was compared; method.side_statistic: what the two times are
    baseline_ms: float            # the baseline's time of the region, by method.side_statistic
    current_ms: float             # the current run's, likewise
    ratio: float                  # the change, current / baseline (by the method; paired by block: the paired
                                  # estimate, not current_ms / baseline_ms); > 1: slower
    ci_low: float | None          # interval of the ratio at method.rule.interval_confidence(alpha); None: too few
    ci_high: float | None         # batches or rounds
    # the p the verdict tests, by method.rule: PAIRED_BY_BLOCK: one-sided, of the direction the ratio points
    # (slower above 1, faster below); otherwise two-sided (Mann-Whitney U on batch medians, paired t on rounds,
    # or the two-level bootstrap's)
    p_value: float
    p_adjusted: float             # over all compared cases: Benjamini-Hochberg (one-sided rule) or Holm-Bonferroni
    verdict: Verdict

    @property
    def key(self) -> str:
        return self.baseline.key

    @property
    def case(self) -> Case:
        return self.baseline.case

    @property
    def interval(self) -> Ratio:
        return Ratio(self.ratio, self.ci_low, self.ci_high)


@dataclass(frozen=True)
class NotCompared:
    """A case in both files that could not be compared (failed, skipped, or no samples of the region)."""

    key: str
    reason: str
    broken: bool  # ok in the baseline, failed now: fails the gate


@dataclass(frozen=True)
class Comparison:
    baseline: RunResults
    current: RunResults
    region: str | None              # None: each case's primary region
    threshold: float
    alpha: float
    pairs: tuple[Pair, ...]
    only_in_baseline: tuple[str, ...]
    only_in_current: tuple[str, ...]
    not_compared: tuple[NotCompared, ...]
    environment: tuple[EnvironmentDifference, ...]
    warnings: tuple[str, ...]       # incomplete runs, a pair of runs that scatter
    baseline_label: str = "A"       # the files' short names in a report
    current_label: str = "B"
    same_code: bool | None = None   # both ran the same harness and torch files (same_code()); None: cannot tell
    same_code_intended: bool = False  # an A/A asked for (rnnbench ab --same-code-ok, the gate calibration)
    # how the comparison is described (comparison_method): its pairs' method where every case ran as many rounds
    method: ComparisonMethod = ComparisonMethod.SINGLE_ROUND_BOOTSTRAP

    @property
    def rule(self) -> GateRule:
        """The verdicts' definitions, as the renderers describe them: those of ``method``."""
        return self.method.rule

    @property
    def interval_confidence(self) -> float:
        return self.rule.interval_confidence(self.alpha)

    def with_verdict(self, verdict: Verdict) -> tuple[Pair, ...]:
        return tuple(p for p in self.pairs if p.verdict == verdict)

    @property
    def regressions(self) -> tuple[Pair, ...]:
        return self.with_verdict(Verdict.REGRESSION)

    @property
    def improvements(self) -> tuple[Pair, ...]:
        return self.with_verdict(Verdict.IMPROVEMENT)

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
    def geomean(self) -> float | None:
        """All compared cases together; a shift of every case alike points at the machine, not the code."""
        return geometric_mean(p.ratio for p in self.pairs)

    def geomean_by_backend(self) -> dict[str, float]:
        backends: dict[str, list[float]] = {}
        for pair in self.pairs:
            backends.setdefault(pair.case.backend_label, []).append(pair.ratio)
        return {backend: geometric_mean(values) for backend, values in backends.items()}

    @property
    def ratio_spread(self) -> float | None:
        """How much the cases' ratios scatter (:func:`harness.gate.ratios.robust_spread`). Much larger than the
        threshold, it says the runs themselves differ (a noisy or busy machine): a gate on such a pair mostly
        measures the machine."""
        if len(self.pairs) < MIN_CASES_FOR_SPREAD:
            return None
        return robust_spread([p.ratio for p in self.pairs])

    @property
    def noisy_pair(self) -> bool:
        spread = self.ratio_spread
        return spread is not None and spread > self.threshold

    def counts(self, pairs: Iterable[Pair] | None = None) -> dict[Verdict, int]:
        """The number of pairs (default: all) with each verdict, in rank order."""
        pairs = self.pairs if pairs is None else tuple(pairs)
        return {verdict: sum(1 for p in pairs if p.verdict == verdict) for verdict in VERDICTS}

    def ordered(self) -> list[Pair]:
        """The pairs by verdict rank, in file order within a verdict."""
        return sorted(self.pairs, key=lambda p: p.verdict.rank)

    def changed(self) -> list[Pair]:
        """The pairs not unchanged, by verdict rank and the largest change first."""
        return sorted((p for p in self.pairs if p.verdict != Verdict.UNCHANGED),
                      key=lambda p: (p.verdict.rank, -abs(math.log(p.ratio))))


def compare_runs(baseline: RunResults, current: RunResults, *, metric: str | None = None,
                 threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
                 labels: tuple[str, str] | None = None, allow_nothing_in_common: bool = False) -> Comparison:
    """Match the two runs' cases by key and compare each. Raises ComparisonError when none is in both,
    unless ``allow_nothing_in_common`` (a report lists every case as only in one file then)."""
    metric = check_sampled_metric(metric)
    if metric == GPU_BUSY:  # device time: the profiled pass's per-iteration busy times as the samples
        baseline, current = with_gpu_busy_samples(baseline), with_gpu_busy_samples(current)
    if not 0 < alpha < 1:
        raise ComparisonError(f"alpha {alpha!r}: must be between 0 and 1")
    if threshold < 0:
        raise ComparisonError(f"threshold {threshold!r}: must be at least 0")
    lower_is_better = METRICS[metric].lower_is_better if metric else True
    base_by_key = {r.key: r for r in baseline.cases}
    current_by_key = {r.key: r for r in current.cases}
    common = [key for key in base_by_key if key in current_by_key]
    if not common and not allow_nothing_in_common:
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
            not_compared.append(NotCompared(key=key, reason=reason, broken=base.ok and cur.status == "failed"))
        else:
            measured.append((base, cur, region))

    if metric == GPU_BUSY and not measured and not allow_nothing_in_common:
        raise ComparisonError("--metric gpu_busy: no case has GPU busy samples in both files (they come from the "
                              "profiled pass of a GPU run with timing.profile_iters > 0, recorded since rnnbench "
                              "profile landed); compare the step instead")
    raw = []
    sides_took_turns = took_turns(baseline, current)
    for base, cur, region in measured:
        method = decide_method(sides_took_turns, base.round_count, cur.round_count,
                               blocks_line_up(base, cur, region))
        raw.append(dict(baseline=base, current=cur, region=region, method=method,
                        **_compared(method, base, cur, region, alpha)))
    pairs = []
    for entry, p_adjusted in zip(raw, adjusted_p_values(raw)):
        ratio = entry.pop("ratio", None) or entry["current_ms"] / entry["baseline_ms"]
        entry.pop("p_slower", None), entry.pop("p_faster", None)
        verdict = classify(ratio, entry["ci_low"], entry["ci_high"], p_adjusted, threshold=threshold,
                           alpha=alpha, lower_is_better=lower_is_better, rule=entry["method"].rule)
        pairs.append(Pair(**entry, ratio=ratio, p_adjusted=p_adjusted, verdict=verdict))

    warnings = [f"the {label} run is {run.status}: only its finished cases are compared"
                for label, run in (("baseline", baseline), ("current", current)) if run.status != "complete"]
    for label, run in (("baseline", baseline), ("current", current)):
        busy = run.environment.machine_busy_line
        if busy:
            warnings.append(f"the {label} run: {busy}; its timings measure the other work too: compare runs from a "
                            f"quiet machine")
    single = [label for label, run in (("baseline", baseline), ("current", current)) if run_rounds(run) == 1]
    if single and pairs:
        warnings.append(
            f"the {' and the '.join(single)} run{'s' if len(single) > 1 else ''} had one round: the interval sees the "
            f"variation within one process only, and runs of unchanged code in two processes can differ by more; "
            f"measure with rounds (timing.rounds, --rounds) to gate")
    spread = robust_spread([p.ratio for p in pairs]) if len(pairs) >= MIN_CASES_FOR_SPREAD else None
    if spread is not None and spread > threshold:
        warnings.append(
            f"the two runs scatter: the cases' changes spread by about {spread:.0%} (robust standard deviation), "
            f"more than the {threshold:.1%} threshold; run-to-run noise of the machine this large passes for "
            f"regressions and improvements: compare runs from a quiet machine, or raise --threshold above it")
    code_is_shared, intended = same_code(baseline, current), same_code_intended(baseline, current)
    if code_is_shared and not intended:
        warnings.insert(0, same_code_warning(baseline.environment,
                                              sides_took_turns=sides_took_turns))
    baseline_label, current_label = labels or file_labels([baseline, current])
    return Comparison(
        baseline=baseline, current=current, region=metric, threshold=threshold, alpha=alpha, pairs=tuple(pairs),
        only_in_baseline=tuple(k for k in base_by_key if k not in current_by_key),
        only_in_current=tuple(k for k in current_by_key if k not in base_by_key),
        not_compared=tuple(not_compared), environment=environment_differences(baseline, current),
        warnings=tuple(warnings), baseline_label=baseline_label, current_label=current_label,
        same_code=code_is_shared, same_code_intended=intended,
        # the whole comparison, as if every case ran the most rounds any did: what comparison_method describes
        method=decide_method(sides_took_turns, *[max(run_rounds(baseline), run_rounds(current))] * 2,
                             bool(pairs) and all(p.method is ComparisonMethod.PAIRED_BY_BLOCK for p in pairs)),
    )


def adjusted_p_values(raw: list[dict]) -> list[float]:
    """Each compared case's adjusted p, by its method's rule: Holm over the two-sided p-values of the cases
    compared so; Benjamini-Hochberg over the one-sided p-values of the cases paired by block, the "slower" and
    the "faster" p-values each over all of them, a case getting that of the direction its ratio points."""
    adjusted = [1.0] * len(raw)
    holm = [i for i, entry in enumerate(raw) if entry["method"].rule is GateRule.HOLM_INTERVAL]
    for i, p in zip(holm, holm_adjust([raw[i]["p_value"] for i in holm])):
        adjusted[i] = p
    one_sided = [i for i in range(len(raw)) if i not in set(holm)]
    slower = bh_adjust([raw[i]["p_slower"] for i in one_sided])
    faster = bh_adjust([raw[i]["p_faster"] for i in one_sided])
    for i, p_slower, p_faster in zip(one_sided, slower, faster):
        adjusted[i] = p_slower if raw[i]["p_slower"] <= raw[i]["p_faster"] else p_faster
    return adjusted


def blocks_line_up(base: CaseResult, cur: CaseResult, region: str) -> bool:
    """Whether the two sides recorded their timed blocks, as many in every round, so that block k of one can be
    paired with block k of the other."""
    base_blocks, cur_blocks = base.samples_by_block(region), cur.samples_by_block(region)
    if base_blocks is None or cur_blocks is None or len(base_blocks) != len(cur_blocks):
        return False
    return len({len(blocks) for blocks in (*base_blocks, *cur_blocks)}) == 1


def _compared(method: ComparisonMethod, base: CaseResult, cur: CaseResult, region: str, alpha: float) -> dict:
    """Each side's time, the interval of the change and its p, by ``method`` (and the change itself, where it is
    not the ratio of the two times)."""
    if method is ComparisonMethod.PAIRED_BY_BLOCK:
        # block k of A ran next to block k of B: the machine's drift within a round cancels too
        base_blocks, cur_blocks = base.samples_by_block(region), cur.samples_by_block(region)
        pairing = paired_block_ratio(base_blocks, cur_blocks, alpha)
        return dict(baseline_ms=_typical_block_median(base_blocks),
                    current_ms=_typical_block_median(cur_blocks), ci_low=pairing.ratio.low,
                    ci_high=pairing.ratio.high, p_value=min(pairing.p_slower, pairing.p_faster),
                    p_slower=pairing.p_slower, p_faster=pairing.p_faster, ratio=pairing.ratio.value)
    if method is ComparisonMethod.PAIRED_BY_ROUND:
        # compared round by round, the machine's drift cancels
        base_rounds, cur_rounds = base.samples_by_round(region), cur.samples_by_round(region)
        ratio, p_value = paired_round_ratio(base_rounds, cur_rounds, alpha)
        return dict(baseline_ms=geometric_mean_of_round_medians(base_rounds),
                    current_ms=geometric_mean_of_round_medians(cur_rounds),
                    ci_low=ratio.low, ci_high=ratio.high, p_value=p_value, ratio=ratio.value)
    if method is ComparisonMethod.TWO_LEVEL_BOOTSTRAP:
        ratio, p_value = hierarchical_ratio(base.samples_by_round(region), cur.samples_by_round(region), alpha)
        return dict(baseline_ms=base.median_ms(region), current_ms=cur.median_ms(region), ci_low=ratio.low,
                    ci_high=ratio.high, p_value=p_value)
    base_samples, cur_samples = base.samples_ms[region], cur.samples_ms[region]
    ci_low, ci_high = ratio_interval(base_samples, cur_samples, alpha)
    return dict(baseline_ms=float(np.median(base_samples)), current_ms=float(np.median(cur_samples)),
                ci_low=ci_low, ci_high=ci_high,
                p_value=mann_whitney_p(batch_medians(base_samples), batch_medians(cur_samples)))


def _typical_block_median(rounds_of_blocks) -> float:
    """A side's own time when paired by block, summarised as the change is: per round the median of its block
    medians (a block hit by a neighbour's burst does not move it), then the geometric mean over the rounds. The
    ratio of the two sides' values is near the paired change, not exactly it (a median of ratios is not a ratio
    of medians); a plain mean over every block let one burst-hit block of a loaded machine show B +32 % slower
    beside a change of -5 %."""
    return float(np.exp(np.mean([np.median([np.log(np.median(block)) for block in blocks])
                                 for blocks in rounds_of_blocks])))


SAME_CODE = "A and B run the same code: an A/A comparison"


def same_code(baseline: RunResults, current: RunResults) -> bool | None:
    """Whether the two runs ran the same code: their harness and torch imported from the same folders and, for
    runs that did not take turns (they may lie days apart, the checkout changed in between), the same clean
    commit and the same torch build. False: they differ; None: a file does not say (older files), or runs of
    one folder at different times without a clean commit to tell them apart."""
    environments = (baseline.environment, current.environment)
    folders = same_folders(*environments)
    if folders is not True:
        return folders
    if took_turns(baseline, current):
        return True  # the two sides ran at the same time: the same folders are the same files
    commits = [environment.commit.get("id") for environment in environments]
    if None in commits or any(environment.commit.get("dirty") is not False for environment in environments):
        return None
    builds = [(environment.torch_version, environment.torch.get("git_version")) for environment in environments]
    return commits[0] == commits[1] and builds[0] == builds[1]


def same_folders(baseline: Environment, current: Environment) -> bool | None:
    """Whether two processes imported harness and torch from the same folders; None when either does not say."""
    folders = [(environment.harness_path, environment.torch_path) for environment in (baseline, current)]
    if any(None in pair for pair in folders):
        return None
    return folders[0] == folders[1]


def same_code_intended(baseline: RunResults, current: RunResults) -> bool:
    """Whether both sides of an A/B were told that running the same code is the point (``ab --same-code-ok``)."""
    return all(run.run_options.ab_side is not None and run.run_options.ab_side.same_code_ok
               for run in (baseline, current))


def same_code_warning(environment: Environment, *, sides_took_turns: bool) -> str:
    """The warning of an A/A that was not asked for: what both sides imported (``environment``: either's), and
    for an A/B how to name two trees."""
    where = f"harness from {environment.harness_path} and torch from {environment.torch_path}"
    if not sides_took_turns:
        return (f"{SAME_CODE}: both runs imported {where} at commit {str(environment.commit.get('id'))[:10]}, so "
                f"no change of code was measured")
    return (f"{SAME_CODE}: both sides imported {where}, so no change of code was measured; to gate two trees, "
            f"give each side an interpreter command that imports its own (--a 'env PYTHONPATH=base python', "
            f"--a venv-base/bin/python), or pass --same-code-ok to rnnbench ab when an A/A is what you want")


def took_turns(baseline: RunResults, current: RunResults) -> bool:
    """Whether the two runs are the two sides of one ``rnnbench ab`` (they took turns, round by round)."""
    sides = [run.run_options.ab_side for run in (baseline, current)]
    return None not in sides and bool(sides[0].session) and sides[0].session == sides[1].session \
        and sides[0].side != sides[1].side


def comparison_method(comparison) -> str:
    """How this comparison's intervals and p-values were computed (``Comparison.method``), in words (for every
    renderer)."""
    return interval_method(comparison.alpha, rounds=comparison.method is ComparisonMethod.TWO_LEVEL_BOOTSTRAP,
                           paired=comparison.method is ComparisonMethod.PAIRED_BY_ROUND,
                           by_block=comparison.method is ComparisonMethod.PAIRED_BY_BLOCK)


def run_rounds(run: RunResults) -> int:
    """How many rounds (fresh processes) a run measured its cases in: the most any ok case had."""
    return max((result.round_count for result in run.cases if result.ok), default=1)


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
