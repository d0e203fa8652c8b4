"""The A/B gate paired block by block (issue 25): block k of B against block k of A, rounds a random effect,
one-sided tests, Benjamini-Hochberg, a regression when significantly slower and beyond the threshold."""

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from harness.gate.compare import ComparisonMethod, compare_runs, comparison_method, decide_method
from harness.gate.ratios import bh_adjust, holm_adjust, paired_block_ratio
from harness.gate.verdict import GateRule, classify, verdict_rule
from harness.report.compare_text import render_text
from tests.synthetic_results import ab_runs, grid_cases

CASES = grid_cases()[:12]
ALPHA = 0.05


def _blocks(logs: np.ndarray):
    """An (R, K) table of log ratios as the two sides' blocks (one sample each): A all 1 ms, B exp(log)."""
    return ([[(1.0,)] * logs.shape[1] for _ in logs], [[(float(v),) for v in row] for row in np.exp(logs)])


def _simulated_logs(rng, rounds, blocks, change, between_sd, within_sd):
    return math.log(change) + rng.normal(0, between_sd, (rounds, 1)) + rng.normal(0, within_sd, (rounds, blocks))


def _binomial_interval(successes, trials, confidence=0.999):
    return stats.binomtest(successes, trials).proportion_ci(confidence)


def test_the_block_pairing_is_the_t_test_of_the_rounds_median_log_block_ratios():
    rng = np.random.default_rng(3)
    logs = _simulated_logs(rng, 6, 4, 1.07, 0.02, 0.03)
    logs[2, 1] += 0.7  # one block hit by a burst on B's side: the round's median hardly moves
    pairing = paired_block_ratio(*_blocks(logs), alpha=ALPHA)
    means = np.median(logs, axis=1)
    assert pairing.ratio.value == pytest.approx(math.exp(means.mean()))
    assert pairing.ratio.value < 1.1
    assert pairing.p_slower == pytest.approx(stats.ttest_1samp(means, 0.0, alternative="greater").pvalue)
    assert pairing.p_faster == pytest.approx(stats.ttest_1samp(means, 0.0, alternative="less").pvalue)
    # the interval's ends are the one-sided 95 % bounds: the two-sided 90 % interval
    low, high = stats.t.interval(1 - 2 * ALPHA, 5, loc=means.mean(), scale=stats.sem(means))
    assert (pairing.ratio.low, pairing.ratio.high) == pytest.approx((math.exp(low), math.exp(high)))
    assert (pairing.rounds, pairing.blocks, pairing.df) == (6, 4, 5)
    # the variance components (ANOVA): within = the blocks' scatter in their round, between = (MSB - MSW) / K
    within = logs.var(axis=1, ddof=1).mean()
    assert pairing.within_round_var == pytest.approx(within)
    assert pairing.between_round_var == pytest.approx(max(0.0, (4 * logs.mean(axis=1).var(ddof=1) - within) / 4))


def test_too_few_rounds_and_blocks_that_do_not_line_up():
    logs = np.zeros((2, 4))
    pairing = paired_block_ratio(*_blocks(logs))
    assert not pairing.ratio.has_ci and pairing.p_slower == pairing.p_faster == 1.0
    same = paired_block_ratio(*_blocks(np.zeros((4, 3))))
    assert same.ratio.value == 1.0 and same.p_slower == same.p_faster == 1.0
    base, other = _blocks(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="as many rounds"):
        paired_block_ratio(base, other[:2])
    with pytest.raises(ValueError, match="as many blocks"):
        paired_block_ratio(base, [row[:3] for row in other])


def test_benjamini_hochberg_is_step_up_monotone_and_never_stricter_than_holm():
    assert bh_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert bh_adjust([0.5]) == [0.5]
    assert bh_adjust([0.9, 0.8]) == pytest.approx([0.9, 0.9])
    p = list(np.random.default_rng(0).uniform(0, 0.2, 30))
    assert all(b <= h + 1e-12 for b, h in zip(bh_adjust(p), holm_adjust(p)))
    order = np.argsort(p)
    assert all(np.diff(np.asarray(bh_adjust(p))[order]) >= -1e-12)


def test_sides_with_blocks_are_paired_by_block_and_files_without_them_by_round():
    a, b = ab_runs(1, CASES[:3], changes={CASES[0].key: 1.2})
    by_block = compare_runs(a, b)
    assert {p.method for p in by_block.pairs} == {ComparisonMethod.PAIRED_BY_BLOCK}
    assert by_block.method is ComparisonMethod.PAIRED_BY_BLOCK and by_block.rule is GateRule.ONE_SIDED_FDR
    assert by_block.pairs[0].verdict == "regression"
    # the ms shown are each side's median block median, geometric mean over rounds: near the paired change
    pair = by_block.pairs[0]
    assert pair.ratio == pytest.approx(pair.current_ms / pair.baseline_ms, rel=0.02)
    assert pair.method.side_statistic == "geometric mean over rounds of the median block median"
    # one block of B hit by a burst (10x): the shown times stay beside the change, as the change itself does
    hit = b.cases[1]
    first = hit.block_lengths[0]
    burst = {region: tuple(v * 10 for v in samples[:first]) + samples[first:] for region, samples in hit.samples_ms.items()}
    bursty = compare_runs(a, replace(b, cases=(b.cases[0], replace(hit, samples_ms=burst), *b.cases[2:])))
    shown = bursty.pairs[1]
    assert shown.ratio == pytest.approx(by_block.pairs[1].ratio, rel=0.05)
    assert shown.current_ms / shown.baseline_ms == pytest.approx(shown.ratio, rel=0.05)
    old = [replace(run, cases=tuple(replace(c, block_lengths=()) for c in run.cases)) for run in (a, b)]
    by_round = compare_runs(*old)
    assert by_round.method is ComparisonMethod.PAIRED_BY_ROUND and by_round.rule is GateRule.HOLM_INTERVAL
    assert decide_method(True, 6, 6, blocks_line_up=True) is ComparisonMethod.PAIRED_BY_BLOCK
    assert decide_method(True, 6, 6) is ComparisonMethod.PAIRED_BY_ROUND
    assert decide_method(False, 6, 6, blocks_line_up=True) is ComparisonMethod.TWO_LEVEL_BOOTSTRAP
    # one side with blocks, the other without: paired by round
    mixed = compare_runs(a, old[1])
    assert {p.method for p in mixed.pairs} == {ComparisonMethod.PAIRED_BY_ROUND}


def test_the_texts_describe_the_one_sided_rule_they_apply():
    a, b = ab_runs(2, CASES[:4], changes={CASES[0].key: 1.2})
    comparison = compare_runs(a, b)
    text = render_text(comparison)
    assert "paired by block" in text and "Benjamini-Hochberg" in text and "Holm" not in text
    assert "90% CI" in text and "p (BH)" in text
    assert "one-sided" in comparison_method(comparison)
    rule = verdict_rule(0.05, ALPHA, 4, GateRule.ONE_SIDED_FDR)
    assert "Benjamini-Hochberg" in rule and "one-sided" in rule and "Holm" not in rule
    assert "Holm" in verdict_rule(0.05, ALPHA, 4)


@pytest.mark.parametrize("ratio, p_adjusted, expected", [
    (1.08, 0.01, "regression"),      # significantly slower, beyond the threshold
    (1.04, 0.001, "unchanged"),      # significantly slower, but within the threshold
    (1.08, 0.20, "noise"),           # beyond the threshold, not significant
    (0.90, 0.01, "improvement"),
])
def test_the_one_sided_rule_needs_significance_and_the_change_beyond_the_band(ratio, p_adjusted, expected):
    # the interval plays no part in the one-sided rule (Holm's rule would call the first noise: its CI reaches 1.02)
    verdict = classify(ratio, 1.02, 1.2, p_adjusted, threshold=0.05, alpha=ALPHA, rule=GateRule.ONE_SIDED_FDR)
    assert verdict == expected


# Variance components like the CPU VM's A/A sessions (docs/gate.md#the-paired-block-model), in log units.
BETWEEN_SD, WITHIN_SD = 0.015, 0.02


def test_with_a_real_between_round_variance_the_false_alarm_rate_is_alpha_and_pooling_the_blocks_is_not():
    """One case, no change, 2000 simulated sessions: the one-sided test with R - 1 df says "slower" in alpha of
    them (within the binomial interval); pooling the 24 blocks as if independent (df 23) says it far more often."""
    rng = np.random.default_rng(11)
    sessions, slower, pooled = 2000, 0, 0
    for _ in range(sessions):
        logs = _simulated_logs(rng, 6, 4, 1.0, BETWEEN_SD, WITHIN_SD)
        slower += paired_block_ratio(*_blocks(logs), alpha=ALPHA).p_slower < ALPHA
        pooled += stats.ttest_1samp(logs.ravel(), 0.0, alternative="greater").pvalue < ALPHA
    low, high = _binomial_interval(slower, sessions)
    assert low <= ALPHA <= high
    assert _binomial_interval(pooled, sessions)[0] > 2 * ALPHA


def test_the_power_to_say_slower_is_the_noncentral_t_s():
    """A +1 % change, one case, no between-round variance: the share of sessions whose one-sided test says "slower"
    is what the noncentral t distribution of the round values gives (the stated power), within its binomial
    interval. A round's value is the median of 4 normal block ratios, the mean of the middle two: its variance is
    0.2985 sigma_e^2 (order statistics of 4 normals), against the mean's 0.25."""
    rng = np.random.default_rng(12)
    rounds, blocks, sessions = 6, 4, 1500
    change = 1.01
    error = math.sqrt(0.2985 * WITHIN_SD ** 2 / rounds)
    power = stats.nct.sf(stats.t.ppf(1 - ALPHA, rounds - 1), rounds - 1, math.log(change) / error)
    assert 0.3 < power < 0.95  # a power the test can tell from 0 and from 1
    said = sum(paired_block_ratio(*_blocks(_simulated_logs(rng, rounds, blocks, change, 0.0, WITHIN_SD)),
                                  alpha=ALPHA).p_slower < ALPHA for _ in range(sessions))
    low, high = _binomial_interval(said, sessions)
    assert low <= power <= high


def test_the_gate_over_simulated_sessions_keeps_its_false_alarm_rate_and_catches_ten_percent():
    """The gate itself (compare_runs of A/B files with blocks) over seeded sessions of 12 cases: with no change, the
    sessions with any case called significantly slower (threshold aside) stay within alpha (BH under the complete
    null: at most alpha), and none raises a regression; with every case +10 %, at least 90 % of cases are caught
    (the noncentral t's power there is above 99.9 %: binomial room)."""
    sessions = 60
    significant = regressions = caught = cases = 0
    for seed in range(sessions):
        a, b = ab_runs(seed, CASES, rounds=6, blocks=4, between_round_sd=BETWEEN_SD / math.sqrt(2),
                       within_round_sd=WITHIN_SD / math.sqrt(2))
        comparison = compare_runs(a, b)
        significant += any(p.p_adjusted < ALPHA and p.ratio > 1 for p in comparison.pairs)
        regressions += len(comparison.regressions)
        slowed = compare_runs(*ab_runs(1000 + seed, CASES, changes={c.key: 1.10 for c in CASES},
                                       between_round_sd=BETWEEN_SD / math.sqrt(2),
                                       within_round_sd=WITHIN_SD / math.sqrt(2)))
        caught += len(slowed.regressions)
        cases += len(slowed.pairs)
    assert _binomial_interval(significant, sessions)[0] <= ALPHA
    assert regressions == 0
    assert _binomial_interval(caught, cases)[1] >= 0.90 and caught / cases >= 0.90


def test_the_calibration_tallies_kept_sessions_per_injected_change_rule_and_rounds(tmp_path, capsys):
    """benchmarks/gate_calibration.py --from-kept on kept files: a row per injected change, rule and rounds used,
    the gate itself agreeing with the offline rules, and the +20 % side flagged where the A/A side is not."""
    import json

    from benchmarks import gate_calibration
    from harness.record.results_io import write_results

    cases = CASES[:4]
    for session in range(2):
        a, again = ab_runs(10 + session, cases, rounds=4, session=f"s{session}")
        _, slowed = ab_runs(20 + session, cases, rounds=4, changes={c.key: 1.2 for c in cases}, session=f"s{session}")
        for side, run in (("a", a), ("a-again", again), ("slowed-0.2", slowed)):
            write_results(tmp_path / f"session{session}-{side}.json", run)
    out = tmp_path / "tally.json"
    assert gate_calibration.main(["unused.yaml", "--from-kept", str(tmp_path), "--json", str(out),
                                  "--pocock-sessions", "100"]) == 0
    report = json.loads(out.read_text())
    assert report["sessions"] == ["session0", "session1"] and report["gate_mismatched"] == 0
    rows = {(row["injected"], row["rule"], row["rounds"]): row for row in report["rows"]}
    assert set(rows) == {(injected, rule, rounds) for injected in (0.0, 0.2) for rule in gate_calibration_rules()
                         for rounds in (3, 4)}
    assert rows[(0.0, "new", 4)]["flagged"] == 0 and rows[(0.2, "new", 4)]["flagged"] == 8
    assert all(row["cases"] == 8 and row["sessions"] == 2 for row in rows.values())
    assert {row["rule"] for row in report["sequential"]} == {"sequential-bonferroni", "sequential-pocock"}
    assert "kept sessions" in capsys.readouterr().out


def gate_calibration_rules():
    from benchmarks.gate_rules import RULES

    return RULES
