"""The data behind the scaling curves: swept axes, points, bands, fitted exponents, the log-scale rule."""

from dataclasses import replace

import pytest
from report_builders import BATCHES, EXPONENT, SEQ_LENS, law_ms, make_run, ok_result, sweep_run, with_results
from tests.helpers import make_case

from harness.errors import ReportError
from harness.record.metrics import METRICS, metric_spread
from harness.report.scaling import (default_metric, entries_of, fit_exponent, scaling_chart, spans_decade,
                                    swept_axes)


def test_swept_axes_are_exactly_the_axes_a_sweep_varies():
    assert swept_axes(entries_of([sweep_run()])) == ["batch", "seq_len"]


def test_an_axis_is_still_swept_when_its_largest_cases_failed():
    failed = {make_case(b, c, batch=256).key for b in ("cudnn", "eager", "compile") for c in ("lstm", "gru")}
    assert swept_axes(entries_of([sweep_run(failed_keys=failed)])) == ["batch", "seq_len"]


def test_a_grid_with_one_value_per_axis_sweeps_nothing():
    run = make_run([ok_result(make_case(b), 1.0) for b in ("cudnn", "eager")])
    assert swept_axes(entries_of([run])) == []


def test_plotted_points_are_the_medians_of_the_results():
    run = sweep_run()
    chart = scaling_chart(entries_of([run]), "batch")
    by_key = {r.key: r for r in run.cases}
    assert chart.metric.name == "step"
    assert len(chart.curves) == 6  # 3 backends x 2 cells
    for curve in chart.curves:
        assert [p.x for p in curve.points] == list(BATCHES)
        for point in curve.points:
            result = by_key[point.key]
            assert point.y == result.median_ms("step")
            assert point.x == result.case.batch
            assert point.y == pytest.approx(law_ms(curve.line, result.case.batch, cell=result.case.cell))


def test_the_seq_len_curve_includes_the_base_case_and_only_its_sweep():
    chart = scaling_chart(entries_of([sweep_run()]), "seq_len")
    for curve in chart.curves:
        assert [p.x for p in curve.points] == sorted([*SEQ_LENS, 32])
        assert {p.key.split("/")[3] for p in curve.points} == {f"B16-T{t}-I64-H64-L1" for t in (8, 16, 32, 64)}


def test_the_fitted_exponent_recovers_a_known_power_law():
    chart = scaling_chart(entries_of([sweep_run()]), "batch")
    for curve in chart.curves:
        assert curve.exponent == pytest.approx(EXPONENT[curve.line], abs=1e-9)
    seq_chart = scaling_chart(entries_of([sweep_run()]), "seq_len")
    assert all(c.exponent == pytest.approx(1.0, abs=1e-9) for c in seq_chart.curves)


def test_fit_exponent_on_plain_numbers():
    xs = [2, 8, 32, 128]
    assert fit_exponent(xs, [3 * x ** -0.5 for x in xs]) == pytest.approx(-0.5)
    assert fit_exponent([4], [1.0]) is None
    assert fit_exponent([4, 4], [1.0, 2.0]) is None
    assert fit_exponent([0, 1, 2], [5, 1, 2]) == pytest.approx(1.0)  # x = 0 has no logarithm: left out


def test_lines_are_backends_and_facets_are_cells_by_default():
    chart = scaling_chart(entries_of([sweep_run()]), "batch")
    assert [f.title for f in chart.facets] == ["lstm", "gru"]
    assert [c.line for c in chart.facets[0].curves] == ["cudnn", "eager", "compile"]
    assert dict(chart.constant)["mode"] == "forward_backward"
    assert dict(chart.constant)["fixed"] == "T32 I64 H64 L1"


def test_by_cell_makes_cells_the_lines_and_backends_the_facets():
    chart = scaling_chart(entries_of([sweep_run()]), "batch", by="cell")
    assert [f.title for f in chart.facets] == ["cudnn", "eager", "compile"]
    assert all([c.line for c in f.curves] == ["lstm", "gru"] for f in chart.facets)


def test_by_file_draws_one_line_per_results_file():
    a, b = sweep_run(source="/r/a.json"), sweep_run(source="/r/b.json")
    chart = scaling_chart(entries_of([a, b]), "batch", by="file")
    assert {c.line for c in chart.curves} == {"a", "b"}
    assert len(chart.facets) == 6  # cell x backend


def test_failed_cases_leave_the_rest_of_the_curve():
    failed = make_case("eager", "lstm", batch=64)
    chart = scaling_chart(entries_of([sweep_run(failed_keys={failed.key})]), "batch")
    eager = next(c for c in chart.facets[0].curves if c.line == "eager")
    assert [p.x for p in eager.points] == [1, 4, 16, 256]
    assert [(m.x, m.key) for m in eager.missing] == [(64, failed.key)]
    assert "out of memory" in eager.missing[0].why
    assert eager.exponent == pytest.approx(EXPONENT["eager"], abs=1e-9)


def test_log_scale_rule_is_one_decade():
    assert spans_decade([1, 10])
    assert not spans_decade([1, 9.99])
    assert not spans_decade([0, 100])
    assert not spans_decade([])
    chart = scaling_chart(entries_of([sweep_run()]), "batch")
    assert chart.x_log and chart.y_log
    narrow = make_run([ok_result(make_case(b, hidden_size=h), h / 64) for b in ("cudnn", "eager") for h in (64, 128)])
    narrow_chart = scaling_chart(entries_of([narrow]), "hidden_size")
    assert not narrow_chart.x_log and not narrow_chart.y_log


def test_band_is_the_interquartile_range_and_rates_invert_it():
    run = sweep_run()
    result = run.cases[2]
    stats = result.stats["step"]
    assert metric_spread(METRICS["step"], result) == (stats.p25_ms, stats.p75_ms)
    low, high = metric_spread(METRICS["sequences_per_s"], result)
    value = METRICS["sequences_per_s"].value(result)
    assert low < value < high
    assert low == pytest.approx(result.case.batch / (stats.p75_ms / 1e3))
    assert metric_spread(METRICS["peak_memory"], result) is None
    point = scaling_chart(entries_of([run]), "batch", "sequences_per_s").curves[0].points[2]
    assert (point.low, point.high) == pytest.approx(metric_spread(METRICS["sequences_per_s"], run.cases[2]))


def test_default_metric_is_the_step_unless_a_case_does_not_train():
    run = sweep_run()
    assert default_metric(entries_of([run])) == "step"
    forward_only = ok_result(make_case("cudnn", mode="forward", batch=2), 1.0)
    assert default_metric(entries_of([with_results(run, [*run.cases, forward_only])])) == "forward"


@pytest.mark.parametrize("axis, metric, by, message", [
    ("depth", None, "backend", "unknown axis"),
    ("hidden_size", None, "backend", "not swept in these results (only hidden_size=64); swept: batch, seq_len"),
    ("batch", "watts", "backend", "unknown metric"),
    ("batch", None, "colour", "--by 'colour'"),
    ("batch", "peak_memory", "backend", "no case of the batch sweeps has a value for peak memory"),
    ("batch", "energy_per_sequence", "backend", "NVML"),
])
def test_bad_requests_are_one_line_errors(axis, metric, by, message):
    with pytest.raises(ReportError) as error:
        scaling_chart(entries_of([sweep_run()]), axis, metric, by)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_metric_recorded_by_some_cases_draws_those():
    run = sweep_run()
    results = list(run.cases)
    # a CPU case: its own memory is the RSS rise; the process's RSS (torch itself included) is not drawn
    results[0] = replace(results[0], memory={"peak_rss_bytes": 700 * 2 ** 20, "case_peak_rss_growth_bytes": 2 ** 20})
    results[1] = replace(results[1], memory={"peak_rss_bytes": 700 * 2 ** 20})  # an older file: no case figure
    chart = scaling_chart(entries_of([with_results(run, results)]), "batch", "peak_memory")
    assert [(p.x, p.y) for c in chart.curves for p in c.points] == [(1, 2 ** 20)]
    assert all(p.low is None for c in chart.curves for p in c.points)  # memory has no band
