"""Ratios of medians with bootstrap intervals, speedups over cudnn, and A-vs-B matching on the case key."""

import numpy as np
import pytest
from report_builders import even_samples, failed_result, make_case, make_run, ok_result, sweep_run, with_results

from harness.report.ratios import (FASTER, MIN_SAMPLES_FOR_CI, SLOWER, UNCHANGED, Ratio, compare_runs,
                                   geometric_mean, geometric_mean_speedups, ratio_of_medians,
                                   speedups_over_cudnn, verdict)


def test_ratio_of_medians_is_other_over_baseline_with_an_interval_around_it():
    ratio = ratio_of_medians(even_samples(2.0), even_samples(3.0))
    assert ratio.value == pytest.approx(1.5)
    assert ratio.low < 1.5 < ratio.high


def test_the_interval_is_the_same_every_time():
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(0, 0.2, 51), rng.lognormal(0.1, 0.2, 51)
    assert ratio_of_medians(a, b) == ratio_of_medians(a, b)


@pytest.mark.parametrize("n", [7, 8, 40, 301])
def test_the_interval_matches_a_plain_bootstrap(n):
    rng = np.random.default_rng(n)
    a, b = rng.lognormal(0, 0.1, n), rng.lognormal(0.05, 0.1, n)
    ratio = ratio_of_medians(a, b)
    draws = 20000
    plain = (np.median(b[rng.integers(0, n, (draws, n))], axis=1)
             / np.median(a[rng.integers(0, n, (draws, n))], axis=1))
    low, high = np.percentile(plain, [2.5, 97.5])
    width = high - low
    assert ratio.low == pytest.approx(low, abs=0.15 * width)
    assert ratio.high == pytest.approx(high, abs=0.15 * width)


def test_too_few_samples_give_a_ratio_without_interval():
    ratio = ratio_of_medians([1.0] * (MIN_SAMPLES_FOR_CI - 1), even_samples(2.0))
    assert ratio == Ratio(2.0)
    assert verdict(ratio) == UNCHANGED


def test_verdict_needs_the_whole_interval_beyond_one():
    assert verdict(Ratio(1.2, 1.1, 1.3)) == SLOWER
    assert verdict(Ratio(0.8, 0.7, 0.9)) == FASTER
    assert verdict(Ratio(1.2, 0.95, 1.4)) == UNCHANGED


def test_geometric_mean():
    assert geometric_mean([2.0, 0.5]) == pytest.approx(1.0)
    assert geometric_mean([1.0, 4.0]) == pytest.approx(2.0)
    assert geometric_mean([]) is None


def test_speedups_equal_the_results_own_speedup_over_cudnn():
    run = sweep_run()
    speedups = speedups_over_cudnn(run)
    assert len(speedups) == 2 * 2 * 8  # eager and compile, 2 cells, 8 shapes
    for speedup in speedups:
        assert speedup.ratio.value == pytest.approx(run.speedup_over_cudnn(speedup.result))
        assert speedup.region == "step"
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


def test_a_versus_b_compares_matching_cases_only():
    shared = [make_case(b, hidden_size=h) for b in ("cudnn", "eager") for h in (64, 128)]
    only_a = make_case("compile")
    only_b = make_case("cudnn", hidden_size=512)
    a = make_run([ok_result(c, 1.0) for c in shared] + [ok_result(only_a, 1.0)], source="/r/a.json")
    b = make_run([ok_result(c, 2.0 if c.backend == "eager" else 1.0) for c in shared] + [ok_result(only_b, 9.0)],
                 source="/r/b.json")
    comparison = compare_runs(a, b)
    assert [p.key for p in comparison.pairs] == [c.key for c in shared]
    assert comparison.only_in_a == (only_a.key,)
    assert comparison.only_in_b == (only_b.key,)
    for pair in comparison.pairs:
        expected = pair.b.median_ms("step") / pair.a.median_ms("step")
        assert pair.ratio.value == pytest.approx(expected)
        assert pair.verdict == (SLOWER if pair.a.case.backend == "eager" else UNCHANGED)
    assert comparison.geomean == pytest.approx(2 ** 0.5)
    assert comparison.geomean_by_backend() == pytest.approx({"cudnn": 1.0, "eager": 2.0})
    assert comparison.counts() == {SLOWER: 2, FASTER: 0, UNCHANGED: 2}


def test_a_case_that_failed_on_one_side_is_listed_not_compared():
    run = sweep_run(backends=("cudnn",), cells=("lstm",))
    broken = run.cases[1]
    b = with_results(run, [failed_result(broken.case, "CUDA error: illegal address") if r is broken else r
                           for r in run.cases])
    comparison = compare_runs(run, b)
    assert broken.key not in {p.key for p in comparison.pairs}
    assert comparison.not_compared == ((broken.key, "B failed: CUDA error: illegal address"),)
    assert len(comparison.pairs) == len(run.cases) - 1


def test_a_versus_b_in_another_region():
    case = make_case("cudnn")
    a = make_run([ok_result(case, 1.0)])
    b = make_run([ok_result(case, 0.5)])
    pair = compare_runs(a, b, region="forward").pairs[0]
    assert pair.region == "forward"
    assert pair.ratio.value == pytest.approx(0.5)
    assert pair.verdict == FASTER
    with pytest.raises(ValueError):
        compare_runs(a, b, region="throughput")
