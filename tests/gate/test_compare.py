"""The comparator's statistics and verdicts on synthetic result pairs with known shifts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.execute.run_plan import parse_fraction
from harness.gate.compare import compare_runs
from harness.errors import ComparisonError
from harness.gate.ratios import batch_medians, holm_adjust, ratio_interval
from harness.record.results_store import baseline_key
from harness.gate.verdict import IMPROVEMENT, NOISE, REGRESSION, UNCHANGED, classify
from synthetic_results import GPU_ENVIRONMENT, case_result, grid_cases, synthetic_run, with_cases
from tests.helpers import make_case

CASES = grid_cases()
SLOW = CASES[3].key
FAST = CASES[7].key


# --- statistics ----------------------------------------------------------------------------------------

def test_interval_of_an_exact_scale_shift_contains_it():
    rng = np.random.default_rng(1)
    base = rng.lognormal(0.0, 0.05, 200)
    low, high = ratio_interval(base, base * 1.2, 0.05)
    assert low < 1.2 < high
    assert low > 1.1 and high < 1.3


def test_interval_is_reproducible_and_needs_five_batches():
    rng = np.random.default_rng(2)
    base, current = rng.lognormal(0.0, 0.1, 50), rng.lognormal(0.0, 0.1, 50)
    assert ratio_interval(base, current, 0.05) == ratio_interval(base, current, 0.05)  # fixed seed
    assert ratio_interval(base[:4], current[:4], 0.05) == (None, None)
    assert None not in ratio_interval(base[:5], current[:5], 0.05)


def test_interval_resamples_whole_batches():
    """A step change half-way through each run: resampling single samples would give a tight interval
    around the ratio; resampling batches sees that the halves differ and gives a wide one."""
    steady = np.ones(200)
    stepped = np.concatenate([np.full(100, 1.0), np.full(100, 1.3)])
    low, high = ratio_interval(steady, stepped * np.random.default_rng(3).lognormal(0, 0.01, 200), 0.05)
    assert low < 1.02 and high > 1.28


def test_interval_contains_the_ratio_of_medians_on_contended_samples():
    """A run slowed by a neighbour in some batches only (as on a shared machine): the point estimate and
    the interval are of the same statistic, so the interval holds it."""
    rng = np.random.default_rng(4)
    base = rng.lognormal(0.0, 0.03, 18) * 1.2
    contended = base.copy()
    contended[2:8] *= rng.uniform(2, 8, 6)
    contended[-2:] *= 700
    low, high = ratio_interval(base, contended, 0.05)
    ratio = np.median(contended) / np.median(base)
    assert low <= ratio <= high
    assert low < 1.05  # too erratic to call a regression


def test_batch_medians_keep_the_measured_order():
    values = list(range(100))
    medians = batch_medians(values)
    assert len(medians) == 10 and list(medians) == sorted(medians)
    assert len(batch_medians([1.0, 2.0, 3.0])) == 3  # fewer samples than batches: one sample a batch


def test_the_medians_of_batches_and_resamples_are_numpys_nanmedian_bit_for_bit():
    from harness.gate.ratios import _batches, _row_medians

    rng = np.random.default_rng(6)
    for size in (1, 2, 9, 10, 11, 57, 200, 203):  # whole batches, and NaN-padded ones of unequal length
        table = _batches(rng.lognormal(0.0, 0.3, size))
        resamples = table[rng.integers(0, table.shape[0], size=(40, table.shape[0]))].reshape(40, -1)
        assert np.array_equal(_row_medians(resamples.copy()), np.nanmedian(resamples, axis=1))
        assert np.array_equal(_row_medians(table.copy()), np.nanmedian(table, axis=1))


def test_holm_adjustment():
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5]) == [0.5]
    assert holm_adjust([0.6, 0.6]) == [1.0, 1.0]


def test_p_value_is_scipys_exact_mann_whitney():
    comparison = compare_runs(synthetic_run(1), synthetic_run(2))
    first = comparison.pairs[0]
    base = batch_medians(synthetic_run(1).cases[0].samples_ms["step"])
    current = batch_medians(synthetic_run(2).cases[0].samples_ms["step"])
    assert first.p_value == pytest.approx(scipy_stats.mannwhitneyu(current, base, method="exact").pvalue)


@pytest.mark.parametrize("ratio, low, high, p, expected", [
    (1.20, 1.15, 1.25, 0.001, REGRESSION),
    (1.20, 1.03, 1.40, 0.001, NOISE),        # significant, but the interval reaches back below 1 + t
    (1.20, 1.15, 1.25, 0.20, NOISE),         # clear of the threshold, but not significant after Holm
    (1.03, 1.02, 1.04, 0.0001, UNCHANGED),   # significant, smaller than the threshold
    (0.80, 0.75, 0.85, 0.001, IMPROVEMENT),
    (0.98, None, None, 1.0, UNCHANGED),      # too few batches for an interval
    (1.30, None, None, 0.001, NOISE),
])
def test_verdict_definitions(ratio, low, high, p, expected):
    assert classify(ratio, low, high, p, threshold=0.05, alpha=0.05) == expected


# --- verdicts on synthetic pairs ----------------------------------------------------------------------

def test_no_shift_is_unchanged():
    comparison = compare_runs(synthetic_run(1), synthetic_run(2))
    assert comparison.counts() == {REGRESSION: 0, IMPROVEMENT: 0, NOISE: 0, UNCHANGED: 20}
    assert not comparison.failed


def test_noise_sized_shift_of_every_case_is_not_a_regression():
    shifted = synthetic_run(2, shifts={case.key: 1.02 for case in CASES})
    comparison = compare_runs(synthetic_run(1), shifted)
    assert not comparison.regressions and not comparison.failed
    assert comparison.geomean == pytest.approx(1.02, abs=0.005)


def test_twenty_percent_on_one_case_is_that_regression():
    comparison = compare_runs(synthetic_run(1), synthetic_run(2, shifts={SLOW: 1.2}))
    assert [c.key for c in comparison.regressions] == [SLOW]
    slow = comparison.regressions[0]
    assert slow.ratio == pytest.approx(1.2, abs=0.02)
    assert slow.ci_low > 1.05 and slow.p_adjusted < 0.05
    assert comparison.failed
    assert comparison.counts()[UNCHANGED] == 19


def test_faster_case_is_an_improvement_and_passes():
    comparison = compare_runs(synthetic_run(1), synthetic_run(2, shifts={FAST: 0.8}))
    assert [c.key for c in comparison.improvements] == [FAST]
    assert not comparison.failed


def test_self_comparison_is_unchanged():
    run = synthetic_run(1)
    comparison = compare_runs(run, run)
    assert all(c.verdict == UNCHANGED and c.ratio == 1.0 and c.p_value == 1.0 for c in comparison.pairs)
    assert not comparison.environment and not comparison.failed


def test_drift_within_a_run_widens_the_interval_instead_of_failing():
    """The same code measured while the machine slows down during each run: no regression."""
    steady = compare_runs(synthetic_run(1), synthetic_run(2))
    drifting = compare_runs(synthetic_run(1, drift=0.15), synthetic_run(2, drift=0.15))
    width = lambda c: np.log(c.ci_high / c.ci_low)  # noqa: E731
    assert np.median([width(c) for c in drifting.pairs]) > 2 * np.median([width(c) for c in steady.pairs])
    assert not drifting.failed


def test_holm_correction_across_many_cases():
    """Significant alone (p = 0.004), not once 20 cases are compared (Holm: 20 x 0.004 = 0.08)."""
    base_values = tuple(float(v) for v in range(10, 20))
    shifted = tuple(v + 5 for v in base_values)
    target = make_case(hidden_size=256)
    alone = compare_runs(with_cases(synthetic_run(1), [case_result(target, base_values)]),
                         with_cases(synthetic_run(1), [case_result(target, shifted)]), threshold=0.0)
    assert alone.pairs[0].p_value == pytest.approx(0.0039, abs=1e-4)
    assert alone.pairs[0].ci_low > 1.0
    assert alone.pairs[0].verdict == REGRESSION

    others = list(synthetic_run(1).cases[:19])
    many = compare_runs(with_cases(synthetic_run(1), others + [case_result(target, base_values)]),
                        with_cases(synthetic_run(1), others + [case_result(target, shifted)]), threshold=0.0)
    compared = {c.key: c for c in many.pairs}[target.key]
    assert compared.p_value == pytest.approx(alone.pairs[0].p_value)
    assert compared.p_adjusted == pytest.approx(20 * compared.p_value)
    assert compared.verdict == NOISE and not many.failed


# --- what is not compared ------------------------------------------------------------------------------

def test_cases_only_in_one_file_are_listed():
    baseline = with_cases(synthetic_run(1), synthetic_run(1).cases[:18])
    current = with_cases(synthetic_run(2), synthetic_run(2).cases[2:])
    comparison = compare_runs(baseline, current)
    assert comparison.only_in_baseline == (CASES[0].key, CASES[1].key)
    assert comparison.only_in_current == (CASES[18].key, CASES[19].key)
    assert len(comparison.pairs) == 16 and not comparison.failed


def test_a_case_that_fails_now_fails_the_gate_and_a_skipped_one_does_not():
    current = synthetic_run(2)
    results = list(current.cases)
    results[0] = case_result(CASES[0], (), status="failed", reason="out of memory: CUDA")
    results[1] = case_result(CASES[1], (), status="skipped", reason="torch.compile unavailable")
    comparison = compare_runs(synthetic_run(1), with_cases(current, results))
    assert [n.key for n in comparison.broken] == [CASES[0].key]
    assert {n.key for n in comparison.not_compared} == {CASES[0].key, CASES[1].key}
    assert "out of memory" in comparison.not_compared[0].reason
    assert comparison.failed and not comparison.regressions


def test_a_region_the_mode_does_not_have_is_listed():
    inference = make_case(mode="inference")
    run = with_cases(synthetic_run(1), [case_result(inference, (1.0,) * 20), *synthetic_run(1).cases[:2]])
    comparison = compare_runs(run, run, metric="step")
    assert [n.key for n in comparison.not_compared] == [inference.key]
    assert "no step samples" in comparison.not_compared[0].reason
    default = compare_runs(run, run)  # each case's primary region: the forward of the inference case
    assert {c.key: c.region for c in default.pairs}[inference.key] == "forward"


def test_nothing_in_common_is_an_error():
    gpu_run = synthetic_run(2, cases=grid_cases("cuda"), environment=GPU_ENVIRONMENT)
    with pytest.raises(ComparisonError, match="no case in common"):
        compare_runs(synthetic_run(1), gpu_run)


# --- environments -------------------------------------------------------------------------------------

def test_environment_differences_block_or_inform():
    baseline = synthetic_run(1, cases=grid_cases("cuda"), environment=GPU_ENVIRONMENT)
    other = {**GPU_ENVIRONMENT, "gpu": {**GPU_ENVIRONMENT["gpu"], "name": "NVIDIA A100-SXM4-80GB",
                                         "driver": "550.54.15"},
             "torch": {**GPU_ENVIRONMENT["torch"], "cudnn": 90100},
             "machine": {**GPU_ENVIRONMENT["machine"], "node": "other-box"}}
    comparison = compare_runs(baseline, synthetic_run(2, cases=grid_cases("cuda"), environment=other))
    blocking = {d.label for d in comparison.blocking_differences}
    assert blocking == {"GPU model", "GPU driver", "cuDNN"}
    assert {d.label for d in comparison.environment} - blocking == {"host"}


def test_a_field_one_file_lacks_is_unknown_not_blocking():
    old = {**GPU_ENVIRONMENT, "gpu": {k: v for k, v in GPU_ENVIRONMENT["gpu"].items() if k != "driver"}}
    comparison = compare_runs(synthetic_run(1, cases=grid_cases("cuda"), environment=old),
                              synthetic_run(2, cases=grid_cases("cuda"), environment=GPU_ENVIRONMENT))
    (difference,) = comparison.environment
    assert difference.label == "GPU driver" and difference.baseline is None and not difference.blocking


# --- options and baselines ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [("5%", 0.05), ("0.05", 0.05), (" 12.5 % ", 0.125), ("0", 0.0),
                                         ("150%", 1.5)])
def test_parse_fraction(text, value):
    assert parse_fraction(text, "--threshold") == pytest.approx(value)


@pytest.mark.parametrize("text", ["5", "abc", "-1%", "nan", "inf%", ""])
def test_parse_fraction_rejects(text):
    with pytest.raises(ComparisonError):
        parse_fraction(text, "--threshold")


def test_baseline_key_is_the_gpu_model_or_the_cpu():
    assert baseline_key(GPU_ENVIRONMENT) == "nvidia-h100-80gb-hbm3"
    assert baseline_key({"gpu": None, "machine": {"cpu": {"brand_raw": "AMD EPYC 7R13 Processor"}}}) \
        == "cpu-amd-epyc-7r13-processor"


def test_a_pair_whose_cases_scatter_is_flagged_as_noisy():
    """Every case moved by its own random amount (a busy machine between the runs): the report says so."""
    rng = np.random.default_rng(7)
    scattered = {case.key: float(np.exp(rng.normal(0.0, 0.25))) for case in CASES}
    noisy = compare_runs(synthetic_run(1), synthetic_run(2, shifts=scattered))
    assert noisy.noisy_pair and noisy.ratio_spread > 0.1
    one_slow = compare_runs(synthetic_run(1), synthetic_run(2, shifts={SLOW: 1.2}))
    assert not one_slow.noisy_pair and one_slow.ratio_spread < 0.01
