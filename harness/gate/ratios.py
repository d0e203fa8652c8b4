"""The ratio of two medians and how sure it is: the statistics of the regression gate, also behind the
charts' intervals and the speedups over cudnn. Pure numbers; no results, no verdicts.

batches   Timing samples drift within a run (clock boost, a neighbour's load), so consecutive samples are
          not independent. Each side's samples, in the order they were measured, are cut into
          ``MAX_BATCHES`` (10) consecutive batches of nearly equal size (one sample per batch when there
          are fewer samples). Drift within a run makes the batches differ, and so widens the interval
          and weakens the test below, instead of passing for a change.
ratio     median(other samples) / median(baseline samples): above 1 the other is slower.
interval  Block bootstrap of that ratio, at confidence 1 - alpha: each side is resampled by drawing its
          batches with replacement (``BOOTSTRAP_RESAMPLES`` times, fixed seed, so the same samples always
          give the same interval), the ratio of medians is taken of each pair of resamples, and the
          interval is the alpha/2 and 1 - alpha/2 quantiles of those ratios. None (shown "-") with
          fewer than ``MIN_BATCHES_FOR_INTERVAL`` batches on a side.
p         Two-sided Mann-Whitney U test (scipy, exact) of the batch medians (each batch summarised by its
          median): how likely a difference at least this clear is between two runs of the same code.
p (Holm)  The p-values of all compared cases adjusted by Holm-Bonferroni, so the chance of calling any
          case significant when nothing changed stays at alpha however many cases are compared.

A/B sides that recorded their blocks (``rnnbench ab``) are paired block by block instead
(:func:`paired_block_ratio`): one-sided p-values, adjusted by Benjamini-Hochberg (:func:`bh_adjust`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

MAX_BATCHES = 10
MIN_BATCHES_FOR_INTERVAL = 5
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
MAX_RESAMPLED_SAMPLES = 5_000
DEFAULT_ALPHA = 0.05
MIN_PAIRED_ROUNDS = 3


@dataclass(frozen=True)
class Ratio:
    value: float
    low: float | None = None  # the interval at confidence 1 - alpha; None: too few batches
    high: float | None = None

    @property
    def has_ci(self) -> bool:
        return self.low is not None and self.high is not None


def ratio_of_medians(baseline_ms: Sequence[float], other_ms: Sequence[float], *,
                     alpha: float = DEFAULT_ALPHA) -> Ratio:
    """median(other) / median(baseline), with its block-bootstrap interval at confidence 1 - alpha.

    The samples must be in the order they were measured: the interval resamples consecutive batches."""
    if len(baseline_ms) == 0 or len(other_ms) == 0:
        raise ValueError("a ratio of medians needs samples on both sides")
    base_median, other_median = float(np.median(baseline_ms)), float(np.median(other_ms))
    if base_median <= 0:
        raise ValueError("the baseline median must be positive")
    low, high = ratio_interval(baseline_ms, other_ms, alpha)
    return Ratio(other_median / base_median, low, high)


def batch_medians(samples: Sequence[float], max_batches: int = MAX_BATCHES) -> np.ndarray:
    """The medians of up to ``max_batches`` consecutive batches of the samples, in measured order."""
    return _row_medians(_batches(samples, max_batches))


def _row_medians(table: np.ndarray) -> np.ndarray:
    """The median of each row of a scratch array (sorted in place), NaNs left out: what
    np.nanmedian(table, axis=1) gives, bit for bit (the mean of the two middle values), without its
    row-by-row masked arrays, which made the bootstrap three times slower."""
    counts = np.count_nonzero(~np.isnan(table), axis=1)
    table.sort(axis=1)  # NaNs last
    rows = np.arange(table.shape[0])
    return (table[rows, (counts - 1) // 2] + table[rows, counts // 2]) / 2


def _batches(samples: Sequence[float], max_batches: int = MAX_BATCHES) -> np.ndarray:
    """The samples as a (batches, longest batch) array, NaN-padded: consecutive batches in measured order.

    Past ``MAX_RESAMPLED_SAMPLES`` an evenly spaced subset in measured order stands for them (drift kept),
    so the bootstrap costs the same for a million samples as for five thousand: compare stays linear."""
    values = np.asarray(samples, dtype=float)
    if values.size > MAX_RESAMPLED_SAMPLES:
        values = values[np.linspace(0, values.size - 1, MAX_RESAMPLED_SAMPLES).round().astype(int)]
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
        medians[start:stop] = _row_medians(batches[picks].reshape(stop - start, -1))
    return medians


def interval_method(alpha: float = DEFAULT_ALPHA, rounds: bool = False, paired: bool = False,
                    by_block: bool = False) -> str:
    """How the interval of a ratio is computed, in words, from the constants that compute it; ``rounds``:
    some cases were measured in rounds (fresh processes), which the two-level bootstrap resamples first;
    ``paired``: the two runs took turns (``rnnbench ab``) and are compared round by round; ``by_block``: they
    took turns and recorded their blocks, compared block by block (:func:`paired_block_ratio`)."""
    if by_block:
        return (f"{1 - 2 * alpha:.0%} interval, paired by block (the runs took turns, rnnbench ab): the change is the "
                f"geometric mean over the rounds of each round's median ratio of block medians, block k of B against "
                f"block k of A in the same round (the ms shown: each side's own geometric mean over the rounds of "
                f"its median block median), rounds a random effect: the interval a Student t interval of the rounds' log median "
                f"block ratios (rounds - 1 degrees of freedom), its ends the one-sided {1 - alpha:.0%} bounds; "
                f"p one-sided, of the direction the change points; none with fewer than {MIN_PAIRED_ROUNDS} rounds")
    if paired:
        return (f"{1 - alpha:.0%} interval, paired by round (the runs took turns, rnnbench ab): the change is the "
                f"geometric mean of the rounds' ratios of medians (the ms shown: each side's geometric mean of its "
                f"round medians), the interval a Student t interval of their logarithms, p the paired t-test's; "
                f"none with fewer than {MIN_PAIRED_ROUNDS} rounds")
    rounds_text = ("; cases measured in rounds: the median of round medians, interval and p from a two-level "
                   "bootstrap (rounds, then batches within them)") if rounds else ""
    return (f"{1 - alpha:.0%} interval, block bootstrap of the ratio of medians: each side's samples cut, in "
            f"measured order, into {MAX_BATCHES} consecutive batches, resampled whole ({BOOTSTRAP_RESAMPLES} "
            f"resamples, fixed seed; past {MAX_RESAMPLED_SAMPLES:,} samples an evenly spaced subset of them); "
            f"none with fewer than {MIN_BATCHES_FOR_INTERVAL} samples on a side{rounds_text}")


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


def median_of_round_medians(rounds: Sequence[Sequence[float]]) -> float:
    """A case measured in several rounds (fresh processes) stands for the median of its round medians."""
    return float(np.median([np.median(samples) for samples in rounds]))


def hierarchical_medians(rounds: Sequence[Sequence[float]], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Bootstrap of the median of round medians, both levels resampled: rounds drawn with replacement, then
    each drawn round's batches drawn with replacement (a fresh draw every time a round is drawn). Variation
    between processes widens the spread instead of passing for a change."""
    tables = [_batches(samples) for samples in rounds]
    count = len(tables)
    # for every round, resamples * count bootstrap medians: one per (resample, slot) that may draw it
    medians = np.stack([_bootstrap_medians(table, rng, resamples * count) for table in tables])
    drawn = rng.integers(0, count, size=(resamples, count))
    slot = np.arange(resamples * count).reshape(resamples, count)
    return np.median(medians[drawn, slot], axis=1)


def hierarchical_ratio(baseline_rounds: Sequence[Sequence[float]], other_rounds: Sequence[Sequence[float]],
                       alpha: float = DEFAULT_ALPHA, *, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[Ratio, float]:
    """The ratio of the medians of round medians, its interval at confidence 1 - alpha, and a two-sided p
    (twice the share of bootstrap ratios on the far side of 1: p < alpha exactly when the interval
    excludes 1), from the two-level bootstrap of ``hierarchical_medians``."""
    value = median_of_round_medians(other_rounds) / median_of_round_medians(baseline_rounds)
    rng = np.random.default_rng(seed)
    ratios = hierarchical_medians(other_rounds, rng, resamples) / hierarchical_medians(baseline_rounds, rng, resamples)
    low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    tail = min(float(np.mean(ratios <= 1.0)), float(np.mean(ratios >= 1.0)))
    return Ratio(value, float(low), float(high)), min(1.0, max(2 * tail, 1.0 / resamples))


def geometric_mean_of_round_medians(rounds: Sequence[Sequence[float]]) -> float:
    """What a paired comparison shows for each side: the ratio of two of these is its change exactly."""
    return float(np.exp(np.mean(np.log([np.median(samples) for samples in rounds]))))


def paired_round_ratio(baseline_rounds: Sequence[Sequence[float]], other_rounds: Sequence[Sequence[float]],
                       alpha: float = DEFAULT_ALPHA) -> tuple[Ratio, float]:
    """Rounds measured in turns (``rnnbench ab``): round r of one side ran interleaved, block by block, with
    round r of the other, so the ratio of the two round medians cancels what the machine did meanwhile.

    The ratio is the geometric mean of the R rounds' ratios; the interval a Student t interval of their
    logarithms (R - 1 degrees of freedom: with a handful of rounds a bootstrap's interval is too narrow);
    p the paired t-test's, two-sided. Fewer than ``MIN_PAIRED_ROUNDS`` rounds give no interval and p = 1.
    """
    if len(baseline_rounds) != len(other_rounds):
        raise ValueError("paired rounds need as many rounds on both sides")
    logs = np.log([np.median(other) / np.median(base) for base, other in zip(baseline_rounds, other_rounds)])
    mean = float(np.mean(logs))
    if logs.size < MIN_PAIRED_ROUNDS:
        return Ratio(math.exp(mean)), 1.0
    spread = float(np.std(logs, ddof=1))
    if spread == 0.0:  # the same samples on both sides, or a ratio that never varied
        return Ratio(math.exp(mean), math.exp(mean), math.exp(mean)), 1.0 if mean == 0.0 else 1.0 / BOOTSTRAP_RESAMPLES
    from scipy import stats as scipy_stats

    error = spread / math.sqrt(logs.size)
    quantile = float(scipy_stats.t.ppf(1 - alpha / 2, logs.size - 1))
    p_value = float(2 * scipy_stats.t.sf(abs(mean) / error, logs.size - 1))
    return Ratio(math.exp(mean), math.exp(mean - quantile * error), math.exp(mean + quantile * error)), p_value


@dataclass(frozen=True)
class BlockPairing:
    """What :func:`paired_block_ratio` found: the change with its interval, the one-sided p-values of "slower"
    and "faster" (against a ratio of 1), and the model's variance components (of the log ratio)."""

    ratio: Ratio
    p_slower: float              # one-sided: how likely an estimate this far above 1 is when B is not slower
    p_faster: float              # its mirror
    rounds: int
    blocks: int                  # per round
    between_round_var: float     # sigma_u^2 of the log block ratios, (MSB - MSW) / K (ANOVA), at least 0
    within_round_var: float      # sigma_e^2 = MSW, the blocks' scatter within their round
    df: int                      # degrees of freedom of the interval and the tests: rounds - 1


def block_log_ratios(baseline_blocks: Sequence[Sequence[Sequence[float]]],
                     other_blocks: Sequence[Sequence[Sequence[float]]]) -> np.ndarray:
    """log(median of B's block k / median of A's block k) of round r, as an (R, K) array: the two blocks of one
    index ran next to each other in time. Raises ValueError when the sides' rounds or blocks do not line up."""
    if len(baseline_blocks) != len(other_blocks):
        raise ValueError("paired blocks need as many rounds on both sides")
    counts = {len(blocks) for blocks in (*baseline_blocks, *other_blocks)}
    if len(counts) != 1 or 0 in counts:
        raise ValueError("paired blocks need as many blocks in every round on both sides")
    return np.log([[np.median(other) / np.median(base) for base, other in zip(base_round, other_round)]
                   for base_round, other_round in zip(baseline_blocks, other_blocks)])


def paired_block_ratio(baseline_blocks: Sequence[Sequence[Sequence[float]]],
                       other_blocks: Sequence[Sequence[Sequence[float]]],
                       alpha: float = DEFAULT_ALPHA) -> BlockPairing:
    """Sides that took turns block by block (``rnnbench ab``), compared at the level the design alternates.

    y[r, k] = log(median B block k / median A block k) of round r: the two blocks ran next to each other, so the
    machine's drift within the round cancels. Rounds (fresh processes: their own memory layout, their own ratio)
    are a random effect, u_r ~ N(0, sigma_u^2), and blocks within a round scatter around their round's value. Each
    round stands for the **median** of its K block ratios (one block hit by a neighbour's burst does not move it:
    on the CPU VM's kept sessions the median caught more than the mean, docs/gate.md#paired-by-block), and the
    change is exp of the mean of the R round values, its interval a Student t interval of them with R - 1 degrees
    of freedom: the rounds are independent, so that is exact whatever the rounds' own variance is (pooling the R K
    blocks as if independent is not: sigma_u^2 > 0 on the kept A/A sessions).

    The interval is the two-sided 1 - 2 alpha one (its ends are the one-sided 1 - alpha bounds the one-sided tests
    use); p_slower and p_faster are one-sided t-tests against 1. ``between_round_var`` and ``within_round_var``
    are the balanced one-way ANOVA estimates of the y's components, for the calibration. Fewer than
    ``MIN_PAIRED_ROUNDS`` rounds give no interval and p-values of 1."""
    logs = block_log_ratios(baseline_blocks, other_blocks)
    rounds, blocks = logs.shape
    round_values = np.median(logs, axis=1)
    mean = float(round_values.mean())
    within = float(logs.var(axis=1, ddof=1).mean()) if blocks > 1 else 0.0
    if rounds < MIN_PAIRED_ROUNDS:
        return BlockPairing(Ratio(math.exp(mean)), 1.0, 1.0, rounds, blocks, 0.0, within, max(rounds - 1, 0))
    between = max(0.0, float(logs.mean(axis=1).var(ddof=1)) - within / blocks)
    error = float(round_values.std(ddof=1)) / math.sqrt(rounds)
    df = rounds - 1
    if error == 0.0:  # the same samples on both sides, or a ratio that never varied
        tiny = 1.0 / BOOTSTRAP_RESAMPLES
        p_slower, p_faster = (1.0, 1.0) if mean == 0.0 else ((tiny, 1.0) if mean > 0 else (1.0, tiny))
        return BlockPairing(Ratio(math.exp(mean), math.exp(mean), math.exp(mean)), p_slower, p_faster, rounds,
                            blocks, between, within, df)
    from scipy import stats as scipy_stats

    quantile = float(scipy_stats.t.ppf(1 - alpha, df))
    statistic = mean / error
    ratio = Ratio(math.exp(mean), math.exp(mean - quantile * error), math.exp(mean + quantile * error))
    return BlockPairing(ratio, float(scipy_stats.t.sf(statistic, df)), float(scipy_stats.t.cdf(statistic, df)),
                        rounds, blocks, between, within, df)


def mann_whitney_p(baseline_batches: np.ndarray, current_batches: np.ndarray) -> float:
    from scipy import stats as scipy_stats  # half a second to import; only a comparison needs it

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


def bh_adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (step-up; monotone; capped at 1), in the input order: the cases
    with adjusted p < q are a set whose expected share of false discoveries is at most q (independent or
    positively dependent tests), and when nothing changed at all, the chance of any discovery is at most q."""
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i], reverse=True)
    adjusted = [1.0] * count
    running = 1.0
    for position, index in enumerate(order):
        running = min(running, count * p_values[index] / (count - position))
        adjusted[index] = min(1.0, running)
    return adjusted


def geometric_mean(values: Iterable[float]) -> float | None:
    logs = [math.log(v) for v in values if v and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None


def robust_spread(ratios: Sequence[float]) -> float:
    """How much ratios scatter: 1.4826 x the median absolute deviation of their logarithms (about one
    standard deviation, robust to the few that really changed), as a fraction."""
    logs = np.log(ratios)
    return float(math.expm1(1.4826 * np.median(np.abs(logs - np.median(logs)))))
