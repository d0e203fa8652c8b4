"""Ratios of medians with the regression gate's intervals, speedups over cudnn, and A-vs-B: the gate's
comparison with both files' results in each pair, as the charts and the report read it."""

import numpy as np
import pytest
from report_builders import even_samples, failed_result, make_run, ok_result, sweep_run, with_results
from tests.helpers import make_case
from synthetic_results import DRIFTING, TIGHT, gate_cases, samples

from harness.gate.compare import DEFAULT_THRESHOLD, compare_runs
from harness.errors import ComparisonError
from harness.gate.ratios import (BOOTSTRAP_RESAMPLES, DEFAULT_ALPHA, MAX_BATCHES, MIN_BATCHES_FOR_INTERVAL, Ratio,
                            geometric_mean, interval_method, ratio_interval, ratio_of_medians)
from harness.gate.speedup import cudnn_counterpart, geometric_mean_speedups, speedup_over_cudnn, speedups_over_cudnn
from harness.gate.verdict import IMPROVEMENT, NOISE, REGRESSION, UNCHANGED


def compare_files(a, b, **options):
    """A against B as the report compares them: no error for files without a case in common."""
    return compare_runs(a, b, allow_nothing_in_common=True, **options)


def single_sample_bootstrap(a, b, draws=4000):
    """The percentile bootstrap over single samples the charts used before (blind to drift within a run)."""
    rng = np.random.default_rng(0)
    a, b = np.asarray(a), np.asarray(b)
    ratios = (np.median(b[rng.integers(0, b.size, (draws, b.size))], axis=1)
              / np.median(a[rng.integers(0, a.size, (draws, a.size))], axis=1))
    return np.percentile(ratios, [2.5, 97.5])


# --- one ratio -----------------------------------------------------------------------------------------


def test_ratio_of_medians_is_other_over_baseline_with_the_gates_interval():
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(0, 0.2, 51), rng.lognormal(0.1, 0.2, 51)
    ratio = ratio_of_medians(a, b)
    assert ratio.value == np.median(b) / np.median(a)
    assert (ratio.low, ratio.high) == ratio_interval(a, b, DEFAULT_ALPHA)
    assert ratio.low < ratio.value < ratio.high
    assert ratio_of_medians(a, b) == ratio  # fixed seed: the same every time
    wider = ratio_of_medians(a, b, alpha=0.01)
    assert (wider.low, wider.high) == ratio_interval(a, b, 0.01)
    assert wider.low < ratio.low and wider.high > ratio.high


def test_ratio_of_even_samples():
    ratio = ratio_of_medians(even_samples(2.0), even_samples(3.0))
    assert ratio.value == pytest.approx(1.5)
    assert ratio.low < 1.5 < ratio.high


def test_the_interval_sees_drift_within_a_run():
    """The same samples, once in a drifting measured order and once shuffled: the same ratio, but the
    interval of the drifting order is wider (whole batches are resampled, as in the gate)."""
    rng = np.random.default_rng(11)
    a = samples(rng, 1.0, drift=0.5)
    b = samples(rng, 1.2, drift=0.5)
    drifting = ratio_of_medians(a, b)
    shuffled = ratio_of_medians(rng.permutation(a), rng.permutation(b))
    assert drifting.value == shuffled.value
    assert np.log(drifting.high / drifting.low) > 2 * np.log(shuffled.high / shuffled.low)


def test_too_few_samples_give_a_ratio_without_interval_by_the_gates_rule():
    short = list(even_samples(1.0, n=MIN_BATCHES_FOR_INTERVAL - 1))
    assert ratio_of_medians(short, even_samples(2.0)) == Ratio(2.0)
    assert ratio_interval(short, even_samples(2.0), DEFAULT_ALPHA) == (None, None)
    enough = list(even_samples(1.0, n=MIN_BATCHES_FOR_INTERVAL))
    assert ratio_of_medians(enough, even_samples(2.0)).has_ci


def test_the_caption_describes_the_gates_block_bootstrap():
    method = interval_method()
    assert method.startswith(f"{1 - DEFAULT_ALPHA:.0%} interval, block bootstrap of the ratio of medians")
    assert f"{MAX_BATCHES} consecutive batches" in method
    assert f"{BOOTSTRAP_RESAMPLES} resamples" in method
    assert f"fewer than {MIN_BATCHES_FOR_INTERVAL} samples" in method


def test_geometric_mean():
    assert geometric_mean([2.0, 0.5]) == pytest.approx(1.0)
    assert geometric_mean([1.0, 4.0]) == pytest.approx(2.0)
    assert geometric_mean([]) is None


# --- speedups over cudnn -------------------------------------------------------------------------------


def test_speedups_equal_the_results_own_speedup_over_cudnn_with_the_gates_interval():
    run = sweep_run()
    speedups = speedups_over_cudnn(run)
    assert len(speedups) == 2 * 2 * 8  # eager and compile, 2 cells, 8 shapes
    for speedup in speedups:
        assert speedup.ratio.value == pytest.approx(speedup_over_cudnn(run, speedup.result))
        assert speedup.region == "step"
        cudnn = cudnn_counterpart(run, speedup.result)
        assert (speedup.ratio.low, speedup.ratio.high) == ratio_interval(
            speedup.result.samples_ms["step"], cudnn.samples_ms["step"], DEFAULT_ALPHA)
    geomeans = geometric_mean_speedups(speedups)
    assert set(geomeans) == {"eager", "compile"}


def test_a_failed_backend_has_no_speedup_but_a_reason_and_a_failed_cudnn_leaves_none():
    eager = make_case("eager")
    run = make_run([ok_result(make_case("cudnn"), 1.0), failed_result(eager),
                    failed_result(make_case("cudnn", hidden_size=128), "cudnn broke"),
                    ok_result(make_case("eager", hidden_size=128), 2.0),
                    ok_result(make_case("eager", hidden_size=256), 2.0)])  # no cudnn at 256: left out
    speedups = {s.result.key: s for s in speedups_over_cudnn(run)}
    assert set(speedups) == {eager.key, make_case("eager", hidden_size=128).key}
    assert speedups[eager.key].ratio is None and "out of memory" in speedups[eager.key].reason
    assert speedups[make_case("eager", hidden_size=128).key].reason == "cudnn did not run"


# --- A versus B: the gate's comparison -----------------------------------------------------------------


def test_a_versus_b_matches_cases_on_their_key_only():
    shared = [make_case(b, hidden_size=h) for b in ("cudnn", "eager") for h in (64, 128)]
    only_a = make_case("compile")
    only_b = make_case("cudnn", hidden_size=512)
    a = make_run([ok_result(c, 1.0) for c in shared] + [ok_result(only_a, 1.0)], source="/r/a.json")
    # B lists its cases in another order: matching is by key, not by position
    b = make_run([ok_result(only_b, 9.0)] + [ok_result(c, 2.0 if c.backend == "eager" else 1.0)
                                             for c in reversed(shared)], source="/r/b.json")
    comparison = compare_files(a, b)
    assert [p.key for p in comparison.pairs] == [c.key for c in shared]
    assert comparison.only_in_baseline == (only_a.key,)
    assert comparison.only_in_current == (only_b.key,)
    for pair in comparison.pairs:
        assert pair.baseline.key == pair.current.key == pair.key
        expected = np.median(pair.current.samples_ms["step"]) / np.median(pair.baseline.samples_ms["step"])
        assert pair.ratio == pytest.approx(expected)
        assert pair.verdict == (REGRESSION if pair.case.backend == "eager" else UNCHANGED)
    assert comparison.geomean == pytest.approx(2 ** 0.5)
    assert comparison.geomean_by_backend() == pytest.approx({"cudnn": 1.0, "eager": 2.0})
    assert comparison.counts() == {REGRESSION: 2, IMPROVEMENT: 0, NOISE: 0, UNCHANGED: 2}


def test_a_versus_b_is_the_gates_comparison():
    a, b = gate_cases()
    comparison = compare_files(a, b)
    expected = compare_runs(a, b)
    assert (comparison.threshold, comparison.alpha) == (DEFAULT_THRESHOLD, DEFAULT_ALPHA)
    assert comparison.pairs == expected.pairs
    for pair in comparison.pairs:
        assert pair.ratio == pytest.approx(np.median(pair.current.samples_ms["step"])
                                           / np.median(pair.baseline.samples_ms["step"]))
        assert (pair.ci_low, pair.ci_high) == ratio_interval(pair.baseline.samples_ms["step"],
                                                             pair.current.samples_ms["step"], DEFAULT_ALPHA)
    verdicts = {p.key: p.verdict for p in comparison.pairs}
    assert verdicts[TIGHT.key] == REGRESSION
    assert verdicts[DRIFTING.key] == NOISE
    assert comparison.counts() == {REGRESSION: 1, IMPROVEMENT: 0, NOISE: 1, UNCHANGED: 18}


def test_the_drifting_case_is_noise_where_a_single_sample_bootstrap_said_slower():
    a, b = gate_cases()
    pair = {p.key: p for p in compare_files(a, b).pairs}[DRIFTING.key]
    assert pair.ratio > 1 + DEFAULT_THRESHOLD  # a change of threshold size was measured ...
    assert pair.verdict == NOISE  # ... that the gate cannot tell from the drift
    low, _ = single_sample_bootstrap(pair.baseline.samples_ms["step"], pair.current.samples_ms["step"])
    assert low > 1 + DEFAULT_THRESHOLD  # the old chart's interval: wholly above the band, coloured red


def test_threshold_and_alpha_are_the_gates():
    a, b = gate_cases()
    loose = compare_files(a, b, threshold=0.25)
    assert loose.threshold == 0.25
    assert {p.key: p.verdict for p in loose.pairs}[TIGHT.key] == UNCHANGED
    assert loose.pairs == compare_runs(a, b, threshold=0.25).pairs


def test_a_case_that_failed_on_one_side_is_listed_not_compared():
    run = sweep_run(backends=("cudnn",), cells=("lstm",))
    broken = run.cases[1]
    b = with_results(run, [failed_result(broken.case, "CUDA error: illegal address") if r is broken else r
                           for r in run.cases])
    comparison = compare_files(run, b)
    assert broken.key not in {p.key for p in comparison.pairs}
    [listed] = comparison.not_compared
    assert listed.key == broken.key and listed.broken
    assert "CUDA error: illegal address" in listed.reason
    assert len(comparison.pairs) == len(run.cases) - 1


def test_files_without_a_case_in_common_list_every_case():
    a = make_run([ok_result(make_case("cudnn"), 1.0)], source="/r/a.json")
    b = make_run([ok_result(make_case("eager"), 1.0)], source="/r/b.json")
    comparison = compare_files(a, b)
    assert comparison.pairs == () and comparison.geomean is None
    assert comparison.only_in_baseline == (make_case("cudnn").key,)
    assert comparison.only_in_current == (make_case("eager").key,)


def test_a_versus_b_in_another_region():
    case = make_case("cudnn")
    a = make_run([ok_result(case, 1.0)])
    b = make_run([ok_result(case, 0.5)])
    pair = compare_files(a, b, metric="forward").pairs[0]
    assert pair.region == "forward"
    assert pair.ratio == pytest.approx(0.5)
    assert pair.verdict == IMPROVEMENT
    with pytest.raises(ComparisonError):
        compare_files(a, b, metric="throughput")
