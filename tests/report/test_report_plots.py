"""What the charts draw, read back from the matplotlib figures: points, axes, scales, titles, legends."""

import numpy as np
import pytest
from matplotlib.colors import same_color
from report_builders import BATCHES, sweep_run, with_results
from tests.helpers import make_case
from synthetic_results import DRIFTING, TIGHT, gate_cases

from harness.gate.compare import compare_runs
from harness.gate.ratios import DEFAULT_ALPHA, ratio_interval
from harness.report.context import context_line
from harness.report.plots import FAILED_MARKER, comparison_detail, comparison_figure, png_bytes, scaling_figure, speedup_figure
from harness.report.scaling import entries_of, scaling_chart
from harness.gate.speedup import speedups_over_cudnn
from harness.gate.verdict import IMPROVEMENT, NOISE, REGRESSION, UNCHANGED, Verdict


def draw_curves(run, axis="batch", **options):
    figure = scaling_figure(scaling_chart(entries_of([run]), axis, **options), context_line([run]))
    figure.canvas.draw()
    return figure


def data_lines(ax):
    """The lines that carry data: {legend name: (xs, ys)}."""
    return {line.get_label().split()[0]: (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.get_lines() if not line.get_label().startswith("_") and len(line.get_xdata())}


def test_the_curves_drawn_are_the_medians_of_the_results():
    run = sweep_run()
    medians = {(r.case.cell, r.case.backend, r.case.batch): r.median_ms("step") for r in run.cases
               if r.case.seq_len == 32}
    figure = draw_curves(run)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["lstm", "gru"]
    for ax in axes:
        cell = ax.get_title()
        lines = data_lines(ax)
        assert set(lines) == {"cudnn", "eager", "compile"}
        for backend, (xs, ys) in lines.items():
            assert xs == list(BATCHES)
            assert ys == [medians[(cell, backend, b)] for b in BATCHES]


def test_the_axes_name_the_swept_axis_and_the_units_on_log_scales():
    figure = draw_curves(sweep_run())
    ax = figure.axes[0]
    assert ax.get_xlabel() == "batch size (sequences), log scale"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "[ms]" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(b) for b in BATCHES]


def test_the_title_names_suite_device_and_dtype():
    title = draw_curves(sweep_run()).get_suptitle()
    for fact in ("suite synthetic", "Test CPU 9000", "float32", "fp32", "torch 2.13.0+cpu", "batch size"):
        assert fact in title


def test_the_legends_show_the_exponents_and_stay_off_the_data():
    figure = draw_curves(sweep_run())
    for ax in figure.axes:
        legend = ax.get_legend()
        texts = [t.get_text() for t in legend.get_texts()]
        assert any(text.startswith("eager") and "^{0.90}" in text for text in texts)
        assert legend.get_window_extent().y1 <= ax.get_window_extent().y0  # below the plot, not on it


def test_a_results_file_with_failed_cases_still_plots_the_rest():
    failed = make_case("eager", "lstm", batch=64)
    run = sweep_run(failed_keys={failed.key})
    ax = draw_curves(run).axes[0]
    xs, ys = data_lines(ax)["eager"]
    assert xs == [1, 4, 16, 256]
    crosses = [line for line in ax.get_lines() if line.get_marker() == FAILED_MARKER and len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in crosses] == [[64]]


def test_the_speedup_chart_draws_every_backend_over_cudnn():
    run = sweep_run()
    speedups = speedups_over_cudnn(run)
    figure = speedup_figure(speedups, context_line([run]))
    drawn = {}
    for ax in figure.axes:
        for container in ax.containers:
            drawn.setdefault((ax.get_title(), container.get_label()), []).extend(container.lines[0].get_xdata())
    for cell in ("lstm", "gru"):
        for backend in ("eager", "compile"):
            expected = [s.ratio.value for s in speedups if s.result.case.cell == cell and s.result.case.backend == backend]
            assert drawn[(f"{cell} · forward_backward", backend)] == pytest.approx(expected)
    assert figure.axes[0].get_xscale() == "log"
    # a CPU run: cudnn is nn.LSTM / nn.GRU themselves (harness.report.names)
    assert "Speedup over nn.LSTM / nn.GRU" in figure.get_suptitle() and "suite synthetic" in figure.get_suptitle()


def test_the_comparison_chart_draws_matched_cases_coloured_by_verdict():
    a = sweep_run(backends=("cudnn", "eager"), cells=("lstm",), source="/r/before.json")
    slowed = a.cases[1]
    b = with_results(a, [r if r is not slowed else r.__class__(case=r.case, status="ok", samples_ms={
        region: tuple(v * 1.5 for v in samples) for region, samples in r.samples_ms.items()}) for r in a.cases[:-1]],
        source="/r/after.json")
    comparison = compare_runs(a, b, labels=("before", "after"))
    figure = comparison_figure(comparison, context_line([a]), context_line([b]))
    points = {}
    for ax in figure.axes:
        for container in ax.containers:
            line = container.lines[0]
            points.setdefault(container.get_label(), []).extend(line.get_xdata())
            assert line.get_color() == Verdict(container.get_label()).colour
    assert sum(len(v) for v in points.values()) == len(comparison.pairs) == len(a.cases) - 1
    assert points[REGRESSION] == pytest.approx([1.5])
    assert points[UNCHANGED] == pytest.approx([1.0] * (len(a.cases) - 2))
    assert "after (B) vs before (A)" in figure.get_suptitle()


def drawn_points(figure):
    """Every point of the comparison chart: {(facet title's backend, y row): (verdict, x, data line, whisker)}."""
    points = {}
    for ax in figure.axes:
        for container in ax.containers:
            line, _, (whiskers,) = container.lines
            for x, y, segment in zip(line.get_xdata(), line.get_ydata(), whiskers.get_segments()):
                points[(ax.get_title().split(":")[0], y)] = (container.get_label(), x, line, segment)
    return points


def test_the_comparison_chart_shows_the_gates_verdicts_ratios_and_intervals():
    a, b = gate_cases()
    comparison = compare_runs(a, b)
    figure = comparison_figure(comparison, context_line([a]), context_line([b]))
    points = drawn_points(figure)
    assert len(points) == len(comparison.pairs) == 20
    by_x = {}
    for verdict, x, line, segment in points.values():
        by_x.setdefault(x, []).append((verdict, line, segment))
    for pair in comparison.pairs:
        a_samples, b_samples = pair.baseline.samples_ms["step"], pair.current.samples_ms["step"]
        x = np.median(b_samples) / np.median(a_samples)  # the plotted ratio: median(B) / median(A)
        [(verdict, line, segment)] = by_x[x]
        assert verdict == pair.verdict
        low, high = ratio_interval(a_samples, b_samples, DEFAULT_ALPHA)  # the whisker: the gate's interval
        assert [point[0] for point in segment] == pytest.approx([low, high], rel=1e-12)
        assert line.get_color() == Verdict(verdict).colour


def verdict_of_key(figure, comparison, key):
    pair = next(p for p in comparison.pairs if p.key == key)
    for verdict, x, line, _ in drawn_points(figure).values():
        if x == pair.ratio:
            return verdict, line
    raise AssertionError(f"{key} not drawn")


def test_a_tight_twenty_percent_slowdown_is_red_and_a_case_the_gate_calls_noise_is_not():
    a, b = gate_cases()
    comparison = compare_runs(a, b)
    figure = comparison_figure(comparison, context_line([a]), context_line([b]))
    verdict, line = verdict_of_key(figure, comparison, TIGHT.key)
    assert verdict == REGRESSION
    assert same_color(line.get_color(), "#d62728") and same_color(line.get_markerfacecolor(), "#d62728")
    verdict, line = verdict_of_key(figure, comparison, DRIFTING.key)
    assert verdict == NOISE  # a 20 % change, measured while both runs drifted by 50 %
    assert not same_color(line.get_color(), "#d62728")  # not red ...
    assert same_color(line.get_color(), UNCHANGED.colour)  # ... grey, like unchanged ...
    assert same_color(line.get_markerfacecolor(), "white")  # ... but hollow
    title = figure.get_suptitle()
    assert "1 slower, 0 faster, 1 noise, 18 unchanged of 20 compared cases" in title
    caption = figure.legends[0].get_title().get_text()
    assert "verdicts of rnnbench compare A B" in caption and "threshold 5.0%" in caption
    detail = comparison_detail(comparison)  # the method in full: the HTML's caption
    assert "block bootstrap" in detail and "percentile bootstrap" not in detail
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert any(label.startswith("noise (hollow)") for label in labels)
    assert any(label.startswith("slower (regression)") for label in labels)


def test_an_improvement_is_green():
    a, b = gate_cases()
    faster = with_results(b, [r.__class__(case=r.case, status="ok", samples_ms={
        region: tuple(v * 0.75 for v in samples) for region, samples in r.samples_ms.items()})
        if r.key == TIGHT.key else r for r in b.cases])
    comparison = compare_runs(a, faster)
    verdict, line = verdict_of_key(comparison_figure(comparison, "A", "B"), comparison, TIGHT.key)
    assert verdict == IMPROVEMENT
    assert same_color(line.get_color(), "#2ca02c")


def test_the_same_results_give_the_same_png_bytes():
    run = sweep_run()
    first = png_bytes(draw_curves(run))
    second = png_bytes(draw_curves(sweep_run()))
    assert first == second
    assert first.startswith(b"\x89PNG")
    assert b"Software" not in first and b"matplotlib" not in first.lower()
