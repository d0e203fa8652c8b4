"""A speedup over cudnn is printed only when the measurement supports it: the rule of harness.gate.speedup, at its
boundary, and how the terminal table, the Markdown summary, the HTML page and the chart show an unreliable one."""

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import same_color
from report_builders import even_samples, make_run, ok_result
from tests.helpers import make_case

from harness.spec.cases import Case
from harness.gate.ratios import MIN_BATCHES_FOR_INTERVAL, Ratio
from harness.report.context import context_line
from harness.report.html import report_html
from harness.report.markdown import UNRELIABLE_MARK, report_markdown
from harness.report.plots import UNRELIABLE_COLOUR, speedup_detail, speedup_figure
from harness.report.text import SUMMARY_HEADER, UNRELIABLE, summary_row, summary_table
from harness.record.results import CaseResult
from harness.gate.speedup import (MAX_INTERVAL_SPAN, MAX_RELATIVE_IQR, UNRELIABLE_RULE, geometric_mean_speedups,
                             speedup_of, speedup_over_cudnn, speedups_over_cudnn, unreliable_why)
from harness.record.results_store import read_results

H100 = Path("/work/shared/gpu-runs/h100-2026-11-27")
VS_CUDNN = SUMMARY_HEADER.index("vs cudnn")


# --- the rule -----------------------------------------------------------------------------------------


def test_an_interval_spanning_exactly_the_limit_is_reliable_and_a_wider_one_is_not():
    assert unreliable_why(Ratio(1.2, 1.0, MAX_INTERVAL_SPAN), {"eager": 0.1, "cudnn": 0.1}) is None
    why = unreliable_why(Ratio(1.2, 1.0, MAX_INTERVAL_SPAN * 1.001), {"eager": 0.1, "cudnn": 0.1})
    assert why == "interval 1x-1.5x spans a factor 1.5"


def test_an_iqr_of_exactly_the_limit_is_reliable_and_a_wider_one_on_either_side_is_not():
    tight = Ratio(1.0, 0.9, 1.1)
    assert unreliable_why(tight, {"eager": MAX_RELATIVE_IQR, "cudnn": MAX_RELATIVE_IQR}) is None
    assert unreliable_why(tight, {"eager": 0.1, "cudnn": 5.52}) == "cudnn IQR 552% of median"
    assert unreliable_why(tight, {"eager": MAX_RELATIVE_IQR + 0.001, "cudnn": 0.1}) == "eager IQR 50% of median"


def test_a_ratio_without_an_interval_is_unreliable_and_every_reason_is_given():
    assert f"fewer than {MIN_BATCHES_FOR_INTERVAL} samples" in unreliable_why(Ratio(2.0), {"eager": 0.0})
    why = unreliable_why(Ratio(1.0, 0.5, 2.0), {"compile_module": 0.6, "cudnn": 0.7})
    assert why == "compile_module IQR 60% of median; cudnn IQR 70% of median; interval 0.5x-2x spans a factor 4"


# --- a run with a wide and a tight pair -----------------------------------------------------------------


def busy_samples(median_ms: float, stalled: float, n: int = 200, seed: int = 0) -> tuple[float, ...]:
    """Samples of a step of ``median_ms`` on a busy machine: a share ``stalled`` of them (in runs of ten,
    as a neighbour's load comes and goes) took ten times as long."""
    rng = np.random.default_rng(seed)
    blocks = rng.permutation(np.arange(n // 10) < round(stalled * n / 10))
    slow = np.repeat(blocks, 10)
    return tuple(float(v) for v in median_ms * np.where(slow, 10.0, 1.0) * np.exp(rng.normal(0, 0.03, n)))


def step_result(case: Case, step_ms) -> CaseResult:
    return CaseResult(case=case, status="ok", samples_ms={"step": tuple(step_ms)})


def busy_run():
    """At hidden size 64, compile_module (eager nn.LSTM, as cudnn) and cudnn measured on a busy machine: the
    medians fall on different sides of the stalls, ten times apart. At 128, a tight 2x speedup."""
    wide_cudnn = step_result(make_case("cudnn"), busy_samples(1.0, stalled=0.55, seed=1))
    wide = step_result(make_case("compile_module"), busy_samples(1.0, stalled=0.45, seed=2))
    tight_cudnn = ok_result(make_case("cudnn", hidden_size=128), 2.0)
    tight = ok_result(make_case("compile_module", hidden_size=128), 1.0)
    return make_run([wide_cudnn, wide, tight_cudnn, tight]), wide, tight


def test_a_wide_pair_is_unreliable_and_left_out_of_the_geometric_mean():
    run, wide, tight = busy_run()
    speedups = {s.result.key: s for s in speedups_over_cudnn(run)}
    assert speedups[wide.key].ratio.value > 5  # what was printed before: a large speedup of the same code
    assert not speedups[wide.key].reliable
    assert "compile_module IQR" in speedups[wide.key].unreliable_why
    assert "cudnn IQR" in speedups[wide.key].unreliable_why
    assert speedups[tight.key].reliable and speedups[tight.key].unreliable_why is None
    mean = geometric_mean_speedups(speedups.values())["compile_module"]
    assert mean.value == pytest.approx(2.0) and mean.counted == 1 and mean.unreliable == 1
    assert mean.left_out_text() == "1 unreliable left out"


def test_only_unreliable_ratios_give_no_geometric_mean():
    run, wide, _ = busy_run()
    only_wide = make_run([r for r in run.cases if r.case.hidden_size == 64])
    mean = geometric_mean_speedups(speedups_over_cudnn(only_wide))["compile_module"]
    assert mean.value is None and mean.counted == 0 and mean.unreliable == 1


def test_the_text_table_shows_unreliable_with_its_reason_instead_of_the_ratio():
    run, wide, tight = busy_run()
    wide_row, tight_row = summary_row(run, wide), summary_row(run, tight)
    assert wide_row[VS_CUDNN] == UNRELIABLE
    assert f"vs nn.LSTM UNRELIABLE ({speedup_of(run, wide).unreliable_why})" in wide_row[-1]
    assert tight_row[VS_CUDNN] == "2.00x" and "UNRELIABLE" not in tight_row[-1]
    table = summary_table(run)
    assert f"{speedup_of(run, wide).ratio.value:.2f}x" not in table
    # a CPU run: cudnn is shown as nn.LSTM (harness.report.names)
    assert f"vs nn.LSTM unreliable (1 case): no speedup shown where the measurement cannot support one: " \
           f"{UNRELIABLE_RULE}" in table


def test_the_markdown_summary_shows_unreliable_and_leaves_it_out_of_the_geomean():
    run, wide, tight = busy_run()
    summary = report_markdown([("busy", run, [])], [])
    assert "**compile_module** 2.00× (1 unreliable left out ‡)" in summary
    assert f"‡ 1 unreliable speedup left out of the geometric means and not shown: {UNRELIABLE_RULE}" in summary
    assert f"(unreliable {UNRELIABLE_MARK})" in summary and "(2.00×)" in summary
    assert f"({speedup_of(run, wide).ratio.value:.2f}×)" not in summary
    assert "Speedups over cudnn too uncertain to show (1)" in summary
    assert f"- ‡ `{wide.key}`: {speedup_of(run, wide).unreliable_why}" in summary


def test_the_markdown_summary_of_only_unreliable_ratios_says_there_is_no_reliable_one():
    run, _, _ = busy_run()
    only_wide = make_run([r for r in run.cases if r.case.hidden_size == 64])
    summary = report_markdown([("busy", only_wide, [])], [])
    assert "**compile_module** no reliable ratio (1 unreliable left out ‡)" in summary


def test_the_html_page_lists_the_unreliable_speedup_with_its_reason():
    run, wide, _ = busy_run()
    page = report_html([("busy", run, [])], [], [])
    assert "Speedups over cudnn too uncertain to show (1)" in page
    assert f"<td><code>{wide.key}</code></td><td>unreliable speedup</td>" in page
    assert f"<td class=num>{UNRELIABLE}</td>" in page and "<td class=num>2.00x</td>" in page


def test_the_chart_draws_an_unreliable_speedup_grey_and_hollow_and_says_so():
    run, wide, tight = busy_run()
    speedups = speedups_over_cudnn(run)
    figure = speedup_figure(speedups, context_line([run]))
    containers = {container.get_label(): container for ax in figure.axes for container in ax.containers}
    assert set(containers) == {"compile_module", "compile_module (unreliable)"}
    assert list(containers["compile_module"].lines[0].get_xdata()) == pytest.approx([2.0])
    grey = containers["compile_module (unreliable)"].lines[0]
    assert list(grey.get_xdata()) == pytest.approx([speedup_of(run, wide).ratio.value])
    assert same_color(grey.get_color(), UNRELIABLE_COLOUR) and same_color(grey.get_markerfacecolor(), "white")
    legend = figure.legends[0]
    labels = [text.get_text() for text in legend.get_texts()]
    assert "compile_module: geomean 2.00× (1 unreliable left out)" in labels
    assert "unreliable: not in the geomean" in labels
    caption = legend.get_title().get_text()
    assert "\n" not in caption and "grey, hollow: unreliable, not in the geomean" in caption  # one short line
    detail = speedup_detail(speedups)  # the rule in full: the HTML's caption
    assert "Grey, hollow, dashed: unreliable, left out of the geometric means" in detail and UNRELIABLE_RULE in detail


def test_a_chart_of_tight_speedups_draws_no_unreliable_point_nor_legend_entry():
    run, _, tight = busy_run()
    tight_only = make_run([r for r in run.cases if r.case.hidden_size == 128])
    figure = speedup_figure(speedups_over_cudnn(tight_only), context_line([tight_only]))
    assert [c.get_label() for ax in figure.axes for c in ax.containers] == ["compile_module"]
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == ["compile_module: geomean 2.00×"]
    assert "unreliable" not in figure.legends[0].get_title().get_text()


# --- real results of a quiet GPU ------------------------------------------------------------------------


@pytest.mark.skipif(not H100.is_dir(), reason="the shared H100 results are not on this machine")
def test_a_quiet_gpu_still_gets_its_numbers():
    """Every speedup of the H100 files (2026-11-27) passes the rule: widest interval a factor 1.36, widest
    IQR 30 % of the median."""
    for name in ("small-cuda.json", "reg-a.json", "reg-b.json", "deep.json"):
        run = read_results(H100 / name)
        speedups = speedups_over_cudnn(run)
        assert speedups and all(s.reliable for s in speedups), [(s.result.key, s.unreliable_why) for s in speedups]
        assert UNRELIABLE not in summary_table(run) and UNRELIABLE_MARK not in report_markdown([(name, run, [])], [])


def test_a_case_measured_in_rounds_gets_the_median_of_round_medians_and_the_rounds_interval():
    def in_rounds(case, medians):
        samples = [v for median in medians for v in even_samples(median, 21, 0.02)]
        return CaseResult(case=case, status="ok", samples_ms={"step": tuple(samples)},
                          round_lengths={"step": (21,) * len(medians)})

    cudnn = in_rounds(make_case("cudnn"), [2.0, 2.1, 1.9])
    eager = in_rounds(make_case("eager"), [1.0, 1.05, 0.98])
    run = make_run([cudnn, eager])
    speedup = speedup_of(run, eager)
    assert speedup.ratio.value == pytest.approx(speedup_over_cudnn(run, eager)) == pytest.approx(2.0)
    assert speedup.ratio.has_ci and speedup.reliable
    # one round of three 40 % slower: each round is tight, the rounds are not, and the interval says so
    scattered = in_rounds(make_case("eager"), [1.0, 1.4, 0.98])
    speedup = speedup_of(make_run([cudnn, scattered]), scattered)
    assert speedup.ratio.value == pytest.approx(2.0) and "spans a factor" in speedup.unreliable_why


def test_the_chart_makes_room_for_the_rule_and_the_longer_legend():
    """Four backends, all unreliable, compile_module not compiled (the busy VM's small.yaml): the legend and
    its caption stay below the plots and inside the figure."""
    fell_back = {"compile": {"fell_back_to_eager": True, "graphs": 0, "graph_breaks": 1,
                             "break_reasons": ["Attempted to wrap RNN, GRU, or LSTM"]}}
    results = []
    for seed, (cell, hidden) in enumerate((c, h) for c in ("lstm", "gru") for h in (64, 128)):
        results.append(step_result(make_case("cudnn", cell, hidden_size=hidden), busy_samples(1.0, 0.55, seed=seed)))
        for offset, backend in enumerate(("eager", "torchscript", "compile", "compile_module")):
            case = make_case(backend, cell, hidden_size=hidden)
            results.append(CaseResult(case=case, status="ok", backend=fell_back if backend == "compile_module" else {},
                                      samples_ms={"step": busy_samples(3.0, 0.45, seed=10 * seed + offset + 1)}))
    run = make_run(results)
    speedups = speedups_over_cudnn(run)
    assert len(speedups) == 16 and not any(s.reliable for s in speedups)
    figure = speedup_figure(speedups, context_line([run]))
    figure.canvas.draw()
    legend = figure.legends[0].get_window_extent()
    lowest_plot = min(ax.get_tightbbox().y0 for ax in figure.axes if ax.get_visible())
    assert 0 <= legend.y0 and legend.y1 <= lowest_plot
