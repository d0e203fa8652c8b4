import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.record.stats import median_confidence_interval, summarize


def test_summary_matches_numpy():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 3.5]
    stats = summarize(samples)
    assert stats.n == 7
    assert stats.median_ms == np.median(samples)
    assert stats.mean_ms == pytest.approx(np.mean(samples))
    assert (stats.min_ms, stats.max_ms) == (1.0, 10.0)
    assert stats.iqr_ms == pytest.approx(np.percentile(samples, 75) - np.percentile(samples, 25))
    assert stats.p95_ms == pytest.approx(np.percentile(samples, 95))


def test_median_ci_uses_the_textbook_order_statistics():
    # For n = 100 the distribution-free 95 % interval of the median is (x_(40), x_(61)).
    samples = np.arange(1, 101, dtype=float)
    assert median_confidence_interval(samples) == (40.0, 61.0)


def test_too_few_samples_give_no_interval():
    assert median_confidence_interval([1.0, 2.0, 3.0, 4.0, 5.0]) == (None, None)
    assert median_confidence_interval([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) == (1.0, 6.0)


def test_noisy_flag_follows_relative_iqr():
    assert not summarize([10.0, 10.1, 9.9, 10.0, 10.05]).noisy
    assert summarize([8.0, 10.0, 12.0, 9.0, 11.0]).noisy


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0.001, max_value=1e4), min_size=6, max_size=300))
def test_interval_brackets_the_median(samples):
    stats = summarize(samples)
    assert stats.median_ci95_low_ms <= stats.median_ms <= stats.median_ci95_high_ms
    assert stats.min_ms <= stats.p5_ms <= stats.p25_ms <= stats.median_ms <= stats.p75_ms <= stats.p95_ms
