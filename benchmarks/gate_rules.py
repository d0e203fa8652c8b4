"""The gate's candidate rules side by side, offline, on recorded A/B sessions and on simulated ones
(benchmarks/gate_calibration.py --from-kept): which rule, which pairing, how many rounds, and a sequential
policy that stops decided cases early. The rule the gate uses is harness.gate.compare's ("new" here); the
others are what it was chosen against.

Rules (t = threshold, alpha = the false-alarm level; "BH": Benjamini-Hochberg over the session's cases)
    today             pairs of round medians, two-sided paired t, Holm, whole 1 - alpha interval above 1 + t
                      (compare_runs of files without blocks: PAIRED_BY_ROUND)
    new               block pairs, each round the median of its K block log ratios, rounds a random effect
                      (df R - 1), one-sided vs 1, BH, change above 1 + t (compare_runs as it is: PAIRED_BY_BLOCK)
    block-holm        block pairs (as new), today's rule (two-sided, Holm, whole interval above 1 + t): the
                      pairing alone
    block-vs-threshold  block pairs (as new), one-sided test of H0 ratio <= 1 + t, BH (rule (b) of issue 25)
    round-point       round pairs, one-sided vs 1, BH, change above 1 + t: the rule alone
    block-mean        as new, but each round stands for the mean of its K block log ratios (the balanced
                      random-effects estimate; not robust to a block hit by a neighbour's burst)
    block-pooled      block pairs, all R K block log ratios pooled as if independent (df R K - 1): what
                      ignoring the rounds' random effect would promise
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import stats

from harness.gate.ratios import bh_adjust, block_log_ratios, holm_adjust

RULES = ("today", "new", "block-holm", "block-vs-threshold", "round-point", "block-mean", "block-pooled")


def truncated(run, rounds: int):
    """The run as if it had stopped after its first ``rounds`` rounds (blocks kept where recorded)."""
    cases = []
    for case in run.cases:
        if not case.ok or case.round_count <= rounds:
            cases.append(case)
            continue
        lengths = {region: tuple(counts[:rounds]) for region, counts in case.round_lengths.items()}
        samples = {region: tuple(values[:sum(lengths[region])]) if region in lengths else values
                   for region, values in case.samples_ms.items()}
        blocks = case.block_lengths
        if blocks:
            per_round = len(blocks) // case.round_count
            blocks = blocks[:rounds * per_round]
        cases.append(replace(case, samples_ms=samples, round_lengths=lengths, block_lengths=blocks))
    return replace(run, cases=tuple(cases))


def without_blocks(run):
    """The run as files written before the blocks were recorded: what today's gate pairs round by round."""
    return replace(run, cases=tuple(replace(case, block_lengths=()) for case in run.cases))


def case_logs(a_run, b_run) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per case compared (ok in both): the (R, K) log block ratios and the R log ratios of round medians."""
    b_by_key = {case.key: case for case in b_run.cases}
    logs = []
    for base in a_run.cases:
        current = b_by_key.get(base.key)
        if current is None or not (base.ok and current.ok):
            continue
        region = base.primary_region
        blocks = block_log_ratios(base.samples_by_block(region), current.samples_by_block(region))
        rounds = np.log([np.median(c) / np.median(b) for b, c in
                         zip(base.samples_by_round(region), current.samples_by_round(region))])
        logs.append((blocks, rounds))
    return logs


def _one_sided_t(values_mean: float, error: float, df: int, null: float) -> float:
    """One-sided p of "above ``null``" (log scale)."""
    if error == 0:
        return 0.0 if values_mean > null else 1.0
    return float(stats.t.sf((values_mean - null) / error, df))


def flags_by_rule(block_logs: list[np.ndarray], round_logs: list[np.ndarray], threshold: float,
                  alpha: float) -> dict[str, list[bool]]:
    """Which cases each offline rule calls a regression ("today" and "new" as the gate computes them from the
    same numbers; the gate itself is checked against these in tests/gate/test_block_pairing.py)."""
    upper = math.log1p(threshold)
    block_stats, round_stats, pooled_stats, mean_stats = [], [], [], []
    for blocks in block_logs:
        rounds, per_round = blocks.shape
        medians = np.median(blocks, axis=1)
        block_stats.append((float(medians.mean()), float(medians.std(ddof=1) / math.sqrt(rounds)), rounds - 1))
        means = blocks.mean(axis=1)
        mean_stats.append((float(means.mean()), float(means.std(ddof=1) / math.sqrt(rounds)), rounds - 1))
        pooled_stats.append((float(blocks.mean()), float(blocks.std(ddof=1) / math.sqrt(blocks.size)),
                             blocks.size - 1))
    for logs in round_logs:
        round_stats.append((float(logs.mean()), float(logs.std(ddof=1) / math.sqrt(logs.size)), logs.size - 1))

    def point_rule(statistics):
        p_slower = [_one_sided_t(mean, error, df, 0.0) for mean, error, df in statistics]
        return [p < alpha and mean > upper for p, (mean, _, _) in zip(bh_adjust(p_slower), statistics)]

    def holm_interval_rule(statistics):
        p_two = [min(1.0, 2 * min(_one_sided_t(m, e, df, 0.0), 1 - _one_sided_t(m, e, df, 0.0)))
                 for m, e, df in statistics]
        lows = [m - float(stats.t.ppf(1 - alpha / 2, df)) * e for m, e, df in statistics]
        return [p < alpha and low > upper for p, low in zip(holm_adjust(p_two), lows)]

    p_beyond = [_one_sided_t(mean, error, df, upper) for mean, error, df in block_stats]
    return {
        "today": holm_interval_rule(round_stats),
        "new": point_rule(block_stats),
        "block-holm": holm_interval_rule(block_stats),
        "block-vs-threshold": [p < alpha for p in bh_adjust(p_beyond)],
        "round-point": point_rule(round_stats),
        "block-mean": point_rule(mean_stats),
        "block-pooled": point_rule(pooled_stats),
    }


def variance_components(block_logs: list[np.ndarray]) -> tuple[float, float]:
    """The balanced one-way random-effects estimates (between rounds sigma_u^2 >= 0, within sigma_e^2) of the
    log block ratios, the mean squares pooled over every given (R, K) table."""
    between_squares = within_squares = 0.0
    between_df = within_df = 0
    per_round = None
    for blocks in block_logs:
        rounds, per_round = blocks.shape
        means = blocks.mean(axis=1)
        between_squares += per_round * float(((means - means.mean()) ** 2).sum())
        within_squares += float(((blocks - means[:, None]) ** 2).sum())
        between_df += rounds - 1
        within_df += rounds * (per_round - 1)
    if not between_df or not within_df:
        return 0.0, 0.0
    between_mean_square, within_mean_square = between_squares / between_df, within_squares / within_df
    return max(0.0, (between_mean_square - within_mean_square) / per_round), within_mean_square


def simulated_session(rng: np.random.Generator, components: list[tuple[float, float]], rounds: int, blocks: int,
                      log_change: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One session's cases drawn from the random-effects model: y[r, k] = change + u_r + e_rk per case, with that
    case's (sigma_u^2, sigma_e^2). The round medians' log ratios are stood in for by the round means (the
    round-level rules see the same rounds, slightly less noisy than in real files)."""
    block_logs = []
    for between, within in components:
        u = rng.normal(0.0, math.sqrt(between), size=(rounds, 1))
        block_logs.append(log_change + u + rng.normal(0.0, math.sqrt(within), size=(rounds, blocks)))
    return block_logs, [logs.mean(axis=1) for logs in block_logs]


def resampled_session(rng: np.random.Generator, aa_rounds: list[tuple[np.ndarray, np.ndarray]], rounds: int,
                      log_change: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One session's cases drawn from recorded A/A rounds, heavy tails and all: per case, ``rounds`` rounds drawn
    with replacement from that case's kept A/A rounds (``aa_rounds``: its (rounds, K) log block ratios and its
    log ratios of round medians, every kept session's stacked), each with a random sign (A and A again are
    exchangeable), plus ``log_change``."""
    block_logs, round_logs = [], []
    for blocks, round_values in aa_rounds:
        picks = rng.integers(0, blocks.shape[0], rounds)
        signs = rng.choice([-1.0, 1.0], rounds)
        block_logs.append(log_change + signs[:, None] * blocks[picks])
        round_logs.append(log_change + signs * round_values[picks])
    return block_logs, round_logs


def sequential_flags(block_logs: list[np.ndarray], threshold: float, alpha: float, looks: list[int],
                     per_look_alpha: float, *, beyond_threshold: bool = True) -> tuple[list[bool], int]:
    """The sequential policy: at each look (a number of rounds), the cases still running are tested with the new
    rule at ``per_look_alpha`` (BH over all the session's cases, the stopped ones counted with p = 1); a case is decided and stops when it is called a
    regression, or when its one-sided upper bound at 1 - alpha lies below 1 + t (clearly within the threshold: a
    stop that can only lower the false-alarm rate). What is left at the last look is decided there. Returns the
    flags and the case-rounds spent. ``beyond_threshold=False``: significance alone calls a regression (what the
    per-look level is calibrated on, so that the promise holds whatever a case's noise is against the threshold)."""
    upper = math.log1p(threshold) if beyond_threshold else -math.inf
    running = list(range(len(block_logs)))
    flagged = [False] * len(block_logs)
    spent = [looks[-1]] * len(block_logs)
    for look in looks:
        values = np.median(np.stack([block_logs[index][:look] for index in running]), axis=2)  # (cases, look)
        means = values.mean(axis=1)
        errors = values.std(axis=1, ddof=1) / math.sqrt(look)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_slower = np.where(errors > 0, stats.t.sf(means / errors, look - 1), (means <= 0).astype(float))
        # BH over every case of the session, the stopped ones with p = 1: a family the stops (which pick the
        # cases with the higher estimates) cannot shrink; BH is monotone, so this keeps its level per look
        p_slower = bh_adjust(list(p_slower) + [1.0] * (len(block_logs) - len(running)))[:len(running)]
        bounds = means + float(stats.t.ppf(1 - alpha, look - 1)) * errors
        still = []
        for index, p, mean, bound in zip(running, p_slower, means, bounds):
            if p < per_look_alpha and mean > upper:
                flagged[index], spent[index] = True, look
            elif bound < math.log1p(threshold):
                spent[index] = look
            else:
                still.append(index)
        running = still
        if not running:
            break
    return flagged, sum(spent)


def pocock_alpha(components: list[tuple[float, float]], blocks: int, threshold: float, alpha: float,
                 looks: list[int], sessions: int = 2000, seed: int = 0) -> float:
    """The per-look level at which the sequential policy, on sessions simulated with no change, calls any case
    significantly slower (threshold or not) in at most ``alpha`` of them: a Pocock-style constant boundary,
    found by simulation (bisection between Bonferroni's alpha / looks and alpha)."""
    rng = np.random.default_rng(seed)
    nulls = [simulated_session(rng, components, looks[-1], blocks, 0.0)[0] for _ in range(sessions)]
    low, high = alpha / len(looks), alpha
    for _ in range(12):
        middle = (low + high) / 2
        rate = np.mean([any(sequential_flags(logs, threshold, alpha, looks, middle, beyond_threshold=False)[0])
                        for logs in nulls])
        low, high = (middle, high) if rate <= alpha else (low, middle)
    return low
