"""The answer first: the verdict of run and ab, the report's first section, honest names on a CPU, the
CPU case memory, table footnotes, and charts a person reads at a glance (nothing clipped, one unit)."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image
from report_builders import ENVIRONMENT, SUITE, BATCHES, law_ms, make_run, ok_result, sweep_run, with_results
from tests.helpers import make_case
from synthetic_results import gate_cases

from harness.gate.compare import compare_runs
from harness.report.compare_text import verdict_line
from harness.report.answer import ab_verdict_text, answer_text, capitalised, run_answer
from harness.report.compare_text import TERMINAL_WIDTH, render_text
from harness.report.context import context_line, torch_versions
from harness.report.html import report_html
from harness.report.markdown import report_markdown
from harness.report.names import display_backend, format_cudnn_version
from harness.report.plots import png_bytes, scaling_figure, speedup_figure, value_unit
from harness.report.scaling import entries_of, exponent_interval, scaling_chart
from harness.report.text import NOTE_WIDTH, summary_table
from harness.record.results import RunResults
from harness.gate.speedup import speedups_over_cudnn
from harness.record.results_store import read_results
from harness.measure.telemetry.host import peak_rss, reset_peak_rss

H100 = Path("/work/shared/gpu-runs/h100-2026-11-27")


# --- names ---------------------------------------------------------------------------------------------


def test_cudnn_on_a_cpu_is_shown_as_the_module_with_the_library_that_ran():
    assert display_backend("cudnn", "cpu", "lstm", "oneDNN v3.10.2") == "nn.LSTM (oneDNN)"
    assert display_backend("cudnn", "cpu", "gru", "ATen native (per-step matmuls, no vendor RNN kernel)") \
        == "nn.GRU (ATen)"
    assert display_backend("cudnn", "cpu") == "nn.LSTM/GRU"
    assert display_backend("cudnn", "cuda", "lstm", "cuDNN 9.19.0") == "cudnn"
    # every other key, a new backend's included, is itself
    assert display_backend("flashrnn_triton", "cpu", "lstm") == "flashrnn_triton"
    assert display_backend("compile@max-autotune", "cpu", "lstm") == "compile@max-autotune"


def test_cudnn_versions_are_formatted_as_versions():
    assert format_cudnn_version(92400) == "9.24.0"
    assert format_cudnn_version(91900) == "9.19.0"
    assert format_cudnn_version(8902) == "8.9.2"
    assert format_cudnn_version(None) is None and format_cudnn_version("9.1.0") == "9.1.0"


def test_a_cpu_run_names_no_cuda_and_the_library_that_ran():
    run = sweep_run()
    cases = [replace(r, backend={"kernel_library": "oneDNN v3.12.0"}) if r.case.backend == "cudnn" else r
             for r in run.cases]
    # a CUDA build of torch, run on the CPU
    environment = {**ENVIRONMENT, "torch": {"version": "2.14.1+cu130", "cuda": "13.0", "cudnn": 92400}}
    cpu = RunResults(environment=environment, suite=SUITE, cases=tuple(cases))
    line = torch_versions(cpu)
    assert line == "torch 2.14.1+cu130, oneDNN v3.12.0"
    assert "unused on a CPU" in report_html([("cpu", cpu, [])], [], [])


@pytest.mark.skipif(not H100.is_dir(), reason="the shared H100 results are not on this machine")
def test_a_gpu_run_formats_the_cudnn_version():
    run = read_results(H100 / "small-cuda.json")
    assert "CUDA 13.0, cuDNN 9.19.0" in context_line([run]) and "91900" not in context_line([run])


# --- the verdict ---------------------------------------------------------------------------------------


def expected_fastest(cell: str, shape: dict) -> set[str]:
    """The backends of least time under the sweep's power laws (a tie gives several)."""
    times = {b: round(law_ms(b, shape.get("batch", 16), shape.get("seq_len", 32), cell), 9)
             for b in ("cudnn", "eager", "compile")}
    best = min(times.values())
    return {b for b, t in times.items() if t == best}


def test_the_verdict_names_the_fastest_per_configuration_and_counts_the_ties_as_too_close():
    run = sweep_run()
    answer = run_answer(run)
    shapes = [dict(batch=b) for b in BATCHES] + [dict(seq_len=t) for t in (8, 16, 64)]
    expected = [(cell, expected_fastest(cell, shape)) for cell in ("lstm", "gru") for shape in shapes]
    assert len(answer.configurations) == len(expected)
    for configuration, (cell, fastest) in zip(answer.configurations, expected):
        assert configuration.label.startswith(cell)
        # the synthetic run is a CPU run: cudnn is shown as nn.LSTM / nn.GRU
        shown = {"cudnn": display_backend("cudnn", "cpu", cell)}.get(next(iter(fastest)), next(iter(fastest)))
        if len(fastest) == 1:
            assert configuration.fastest_name == shown and configuration.unclear_why is None
        else:  # an exact tie: its interval reaches 1
            assert configuration.unclear_why and "within the interval" in configuration.unclear_why
        slower = [b.times_slower for b in configuration.behind]
        assert slower == sorted(slower) and all(s >= 1 for s in slower)
    wins = answer.wins()
    assert sum(wins.values()) == len(expected)
    text = answer_text(run)
    assert text.splitlines()[-1].startswith("On a CPU the backend cudnn")
    assert f"fastest per configuration: nn.LSTM {wins['nn.LSTM']} of {len(expected)}" in text
    assert "speedup over nn.LSTM / nn.GRU, geometric mean (> 1: faster): eager " in text


def test_the_verdict_says_which_compiled_backend_ran_eagerly_where_it_names_it():
    """A compile_module that Dynamo could not compile timed eager PyTorch: named fastest or slower without a word,
    it reads as torch.compile's result."""
    eager_fallback = {"compile": {"fell_back_to_eager": True, "graphs": 0, "graph_breaks": 1,
                                  "break_reasons": ["Attempted to wrap RNN, GRU, or LSTM"]}}
    compiled = {"compile": {"fell_back_to_eager": False, "graphs": 2, "graph_breaks": 0, "break_reasons": []}}
    run = make_run([ok_result(make_case("cudnn"), 2.0), ok_result(make_case("compile_module"), 1.0,
                                                                  backend_facts=eager_fallback),
                    ok_result(make_case("compile"), 3.0, backend_facts=compiled),
                    ok_result(make_case("cudnn", "gru"), 1.0), ok_result(make_case("compile_module", "gru"), 2.0,
                                                                      backend_facts=eager_fallback)])
    lstm, gru = answer_text(run).splitlines()[1:3]
    assert lstm.split(": ", 1)[1].startswith("compile_module (NOT compiled: ran eagerly) fastest, 1.00 ms")
    assert "compile 3.00×" in lstm and "compile (NOT" not in lstm and "nn.LSTM" in lstm
    assert "compile_module (NOT compiled: ran eagerly) 2.00×" in gru
    assert "fastest per configuration: compile_module (NOT compiled: ran eagerly) 1 of 2" in answer_text(run)
    # its geometric mean speedup is eager PyTorch's too; a backend that ran eagerly in some cases says how many
    geomeans = next(line for line in answer_text(run).splitlines() if line.startswith("speedup over"))
    assert "compile_module (NOT compiled: ran eagerly) 1.00×" in geomeans and "compile 0.67×" in geomeans
    mixed = with_results(run, [*run.cases, ok_result(make_case("compile_module", batch=32), 1.0, backend_facts=compiled),
                               ok_result(make_case("cudnn", batch=32), 1.0)])
    mixed_geomeans = next(line for line in answer_text(mixed).splitlines() if line.startswith("speedup over"))
    assert "compile_module (NOT compiled in 2 of 3) " in mixed_geomeans
    assert "compile_module (NOT compiled: ran eagerly)" in report_markdown([("run", run, [])], [])
    assert "compile_module (NOT compiled: ran eagerly)" in report_html([("run", run, [])], [], [])


def test_an_unreliable_ratio_is_marked_and_gets_no_number():
    rng = np.random.default_rng(0)
    steady = make_case("cudnn")
    busy = make_case("eager")
    stalls = np.repeat(rng.permutation(np.arange(20) < 8), 10)
    samples = tuple(float(v) for v in 2.0 * np.where(stalls, 10.0, 1.0))
    run = make_run([ok_result(steady, 1.0, n=201), replace(ok_result(busy, 2.0), samples_ms={
        "forward": samples, "backward": samples, "step": samples})])
    configuration = run_answer(run).configurations[0]
    assert not configuration.behind[0].reliable
    line = answer_text(run).splitlines()[1]
    assert "eager unreliable" in line and "too close to call" in line and not re.search(r"eager \d", line)


def test_the_ab_verdict_starts_with_the_gate():
    a, b = gate_cases()
    comparison = compare_runs(a, b)
    lines = ab_verdict_text(comparison).splitlines()
    assert lines[0].startswith("verdict: REGRESSION") and "fastest per configuration" in lines[-1]


def test_ab_says_its_verdict_once():
    from harness.report.compare_text import ab_comparison_lines

    a, b = gate_cases()
    lines, failed = ab_comparison_lines({"a": a, "b": b}, threshold=0.05, alpha=0.05)
    text = "\n".join(lines)
    verdict = verdict_line(compare_runs(a, b, labels=("A", "B")))
    assert failed and text.count(verdict) == 1 and f"verdict: {verdict}" in text
    assert text.count(" compared: ") == 1  # the counts once, above the verdict


def test_the_compare_header_is_wrapped():
    a, b = gate_cases()
    text = render_text(compare_runs(a, b))
    method = [line for line in text.splitlines() if line.startswith("metric:")]
    assert method and all(len(line) <= TERMINAL_WIDTH for line in text.splitlines()[:6] if not line.startswith(
        ("baseline", "current")))


# --- the report leads with the answer ------------------------------------------------------------------


def test_the_html_page_leads_with_the_answer_then_charts_then_detail():
    run = sweep_run()
    chart = type("Chart", (), {"name": "x.png", "title": "a chart", "png": b"png", "detail": "the method"})()
    page = report_html([("sweep", run, [chart])], [], [])
    answer = page.index("<h2 id=answer>")
    assert answer < page.index("Fastest per configuration") < page.index("geometric mean") < page.index("<figure>")
    assert page.index("<figure>") < page.index("Summary tables") < page.index("<h3>Environment</h3>")
    assert "the method" in page  # the chart's method text, in the HTML caption


def test_a_two_file_report_puts_the_a_vs_b_verdict_first():
    a, b = gate_cases()
    comparison = compare_runs(a, b, labels=("a", "b"))
    page = report_html([("a", a, []), ("b", b, [])], [comparison], [])
    assert page.index("b (B) vs a (A):</strong>") < page.index("Fastest per configuration") \
        < page.index("<h2 id=\"a\">")


def test_the_markdown_states_the_fastest_and_the_geomeans_from_the_same_model():
    run = sweep_run()
    summary = report_markdown([("sweep", run, [])], [])
    assert f"**{capitalised(run_answer(run).overall_line())}**" in summary
    assert "Speedup over nn.LSTM / nn.GRU, geometric mean" in summary


# --- the table -----------------------------------------------------------------------------------------


def test_long_notes_go_to_footnotes_and_the_step_median_is_explained():
    run = sweep_run(backends=("cudnn", "eager"), cells=("lstm",))
    long_note = "ATen native (per-step matmuls, no vendor RNN kernel)"
    cases = [replace(r, backend={"kernel_library": long_note}) if r.case.backend == "cudnn" else r
             for r in run.cases]
    table = summary_table(with_results(run, cases))
    rows = [line for line in table.splitlines() if line.startswith("  nn.LSTM (ATen)")]
    assert rows and all(long_note not in row and "[1]" in row for row in rows)
    assert f"  [1] {long_note}" in table and len(long_note) > NOTE_WIDTH
    assert "a median of sums is not the sum of the medians" in table
    assert "vs nn.LSTM (ATen)" in table and "case peak" in table and "process RSS" in table


def test_a_cpu_case_memory_is_its_rise_over_the_process_before_it():
    result = ok_result(make_case("cudnn"), 1.0)
    memory = {"peak_rss_bytes": 700 * 2**20, "rss_before_case_bytes": 690 * 2**20,
              "case_peak_rss_growth_bytes": 10 * 2**20}
    shown = replace(result, memory=memory)
    assert shown.peak_memory_bytes == 10 * 2**20 and shown.process_peak_rss_bytes == 700 * 2**20
    table = summary_table(make_run([shown]))
    assert "+10.0 MiB" in table and "700.0 MiB" in table


def test_the_host_reader_gives_the_case_rise_only_where_the_peak_was_reset():
    reset = reset_peak_rss()
    memory = peak_rss(reset, rss_before_case_bytes=1)
    if reset.get("reset"):
        assert memory["case_peak_rss_growth_bytes"] == memory["peak_rss_bytes"] - 1
    else:
        assert "case_peak_rss_growth_bytes" not in memory
    assert "case_peak_rss_growth_bytes" not in peak_rss({"reset": False, "why": "refused"}, 1)


# --- charts --------------------------------------------------------------------------------------------


def ink_at_the_edges(png: bytes) -> int:
    pixels = image.imread(io.BytesIO(png))[:, :, :3]
    edges = np.concatenate([pixels[:2].reshape(-1, 3), pixels[-2:].reshape(-1, 3),
                            pixels[:, :2].reshape(-1, 3), pixels[:, -2:].reshape(-1, 3)])
    return int((edges.min(axis=1) < 0.9).sum())


def test_a_long_context_is_wrapped_not_clipped():
    run = sweep_run(cells=("lstm",))
    context = context_line([run]) + " · " + "a very long CPU model name with many words " * 4
    figure = speedup_figure(speedups_over_cudnn(run), context)
    assert ink_at_the_edges(png_bytes(figure)) == 0


def test_a_one_configuration_charts_long_title_is_wrapped_not_clipped():
    run = sweep_run(cells=("gru",))
    one_configuration = with_results(run, [r for r in run.cases if r.case.seq_len == 32])
    figure = scaling_figure(scaling_chart(entries_of([one_configuration]), "batch"), context_line([one_configuration]))
    assert "forward_backward" in figure._suptitle.get_text()  # the configuration is in the title
    assert ink_at_the_edges(png_bytes(figure)) == 0


def test_exponents_need_three_points_and_come_with_their_interval():
    assert exponent_interval([1, 2], [1.0, 2.0]) is None
    slope, half_width = exponent_interval([1, 2, 4, 8], [3 * x ** 0.5 for x in (1, 2, 4, 8)])
    assert slope == pytest.approx(0.5) and half_width == pytest.approx(0.0, abs=1e-9)
    slope, half_width = exponent_interval([1, 2, 4], [1.0, 2.5, 3.5])
    assert half_width > 0.5  # three noisy points: a wide interval, stated
    run = sweep_run()
    two_points = with_results(run, [r for r in run.cases if r.case.batch in (1, 4) and r.case.seq_len == 32])
    chart = scaling_chart(entries_of([two_points]), "batch")
    labels = [t.get_text() for ax in scaling_figure(chart, "ctx").axes for t in ax.get_legend().get_texts()]
    assert labels and not any("propto" in label for label in labels)


def test_a_memory_axis_uses_one_unit_chosen_from_the_largest_value():
    assert value_unit("bytes", [600 * 2**20, 1.1 * 2**30]) == ("GiB", 2**30)
    assert value_unit("bytes", [3 * 2**20, 900 * 2**20]) == ("MiB", 2**20)
    assert value_unit("ms", [1.0]) == ("ms", 1.0)
    run = sweep_run(cells=("lstm",))
    cases = [replace(r, memory={"peak_rss_bytes": 800 * 2**20, "case_peak_rss_growth_bytes": r.case.batch * 2**20})
             for r in run.cases]
    chart = scaling_chart(entries_of([with_results(run, cases)]), "batch", "peak_memory")
    ax = scaling_figure(chart, "ctx").axes[0]
    assert "[MiB]" in ax.get_ylabel()
    assert max(max(line.get_ydata()) for line in ax.get_lines() if len(line.get_ydata())) == pytest.approx(256)
