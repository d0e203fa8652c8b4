"""`rnnbench plot` and `rnnbench report` as a user meets them: files written, pages' contents, errors."""

import base64
import re
import subprocess
import sys
from dataclasses import replace

import pytest
from click.testing import CliRunner
from report_builders import failed_result, ok_result, sweep_run, with_results

from harness.cli import main
from harness.gate.compare import compare_runs
from harness.report.render import write_report
from harness.record.results_io import write_results
from harness.record.results_store import read_results
from harness.gate.verdict import REGRESSION
from tests.helpers import cli, suite_file


def rnnbench(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def results_file(tmp_path_factory):
    """A sweep with one failed case, one skipped case, one compile fallback and one noisy case."""
    tmp_path = tmp_path_factory.mktemp("results")
    run = sweep_run(backends=("cudnn", "eager", "compile"))
    results = list(run.cases)
    results[3] = failed_result(results[3].case, "out of memory: tried to allocate 1 TiB")
    results[4] = failed_result(results[4].case, "backend unavailable: no CUDA", status="skipped")
    fallback = next(i for i, r in enumerate(results) if r.case.backend == "compile" and r.ok)
    results[fallback] = replace(results[fallback], backend={"compile": {
        "fell_back_to_eager": True, "graphs": 0, "graph_breaks": 1, "break_reasons": ["Attempted to wrap LSTM"]}})
    noisy = next(i for i, r in enumerate(results) if r.case.backend == "eager" and r.ok)
    results[noisy] = ok_result(results[noisy].case, 5.0, spread=0.5)
    path = tmp_path / "sweep.json"
    write_results(path, with_results(run, results, source=str(path)))
    return path


@pytest.fixture(scope="module")
def report(results_file, tmp_path_factory):
    """`rnnbench report` of the results file, once for the tests that read what it wrote."""
    out = tmp_path_factory.mktemp("report")
    code, output = rnnbench("report", results_file, "-o", out)
    return out, code, output


@pytest.fixture(scope="module")
def slower_file(results_file):
    """The results file again, with every ok eager case 30 % slower, and without its last case (only in A)."""
    before = read_results(results_file)
    slower = [ok_result(r.case, r.median_ms() * 1.3) if r.ok and r.case.backend == "eager" else r
              for r in before.cases[:-1]]
    after_path = results_file.with_name("after.json")
    write_results(after_path, with_results(before, slower, source=str(after_path)))
    return after_path


@pytest.fixture(scope="module")
def comparison_report(results_file, slower_file, tmp_path_factory):
    """`rnnbench report` of the results file (A) and the slower one (B), at the default threshold (5 %)."""
    out = tmp_path_factory.mktemp("comparison-report")
    code, output = rnnbench("report", results_file, slower_file, "-o", out)
    return out, code, output


def test_report_writes_curves_speedup_html_and_markdown(report):
    out, code, output = report
    assert code == 0, output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["report.html", "summary.md", "sweep-speedup-over-cudnn.png", "sweep-step-vs-batch.png",
                     "sweep-step-vs-seq_len.png"]
    assert output.splitlines() == [str(out / n) for n in ("sweep-step-vs-batch.png", "sweep-step-vs-seq_len.png",
                                                          "sweep-speedup-over-cudnn.png", "report.html", "summary.md")]


def test_the_html_page_is_self_contained_and_flags_what_went_wrong(report):
    out, _, _ = report
    page = (out / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    assert base64.b64decode(images[0]) == (out / "sweep-step-vs-batch.png").read_bytes()
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # nothing outside the page
    for text in ("out of memory: tried to allocate 1 TiB", "backend unavailable: no CUDA",
                 "NOT COMPILED, ran eagerly", "Attempted to wrap LSTM", "Noisy measurements (1)",
                 "Test CPU 9000", "2.13.0+cpu", "0123456789ab", "fp32"):
        assert text in page, text


def test_the_markdown_summary_is_a_compact_table_with_flags(report):
    out, _, _ = report
    summary = (out / "summary.md").read_text()
    assert "| configuration | nn.LSTM/GRU | eager | compile |" in summary  # a CPU run: cudnn is nn.LSTM / nn.GRU
    assert "**48 cases: 46 ok, 1 failed, 1 skipped**" in summary
    assert "✗ failed" in summary and "⊘ skipped" in summary and "†" in summary and "⚠" in summary
    assert "out of memory: tried to allocate 1 TiB" in summary
    assert "<img" not in summary


def test_report_of_two_files_adds_the_comparison(comparison_report):
    out, code, output = comparison_report
    assert code == 0, output
    assert (out / "compare-after-vs-sweep.png").exists()
    summary = (out / "summary.md").read_text()
    assert "### `after` (B) vs `sweep` (A)" in summary
    assert "| eager | 1.300× |" in summary
    page = (out / "report.html").read_text()
    assert "after (B) vs sweep (A)" in page


def test_the_comparison_in_the_report_is_the_gates_and_lists_what_it_did_not_compare(results_file, slower_file,
                                                                                    comparison_report, tmp_path):
    out, code, output = comparison_report
    assert code == 0, output
    before = read_results(results_file)
    gate = compare_runs(before, read_results(slower_file))
    counts = gate.counts()
    eager = {r.key for r in before.cases[:-1] if r.ok and r.case.backend == "eager"}
    assert {c.key for c in gate.regressions} < eager
    [scattered] = [c for c in gate.pairs if c.key in eager and c.verdict != REGRESSION]
    assert scattered.verdict == "noise"  # the fixture's noisy case (samples spread +-50 %): not confirmed
    summary = (out / "summary.md").read_text()
    page = (out / "report.html").read_text()
    assert (f"**{counts['regression']} slower**, **{counts['improvement']} faster**, {counts['noise']} noise, "
            f"{counts['unchanged']} unchanged") in summary
    assert f"{counts['regression']} slower, {counts['improvement']} faster, {counts['noise']} noise" in page
    for case in gate.regressions:
        assert f"| 🔴 `{case.key}` |" in summary
    only_in_a = before.cases[-1].key
    assert f"- `{only_in_a}`: only in A" in summary
    assert f"<code>{only_in_a}</code></td><td>only in A" in page
    for listed in gate.not_compared:  # the failed and skipped cases of both files
        assert f"`{listed.key}`" in summary and listed.key in page
    again = tmp_path / "again"
    rnnbench("report", results_file, slower_file, "-o", again)
    for path in out.iterdir():
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name


def test_report_takes_the_gates_threshold_so_its_verdicts_match_compare(results_file, slower_file,
                                                                       comparison_report, tmp_path):
    after_path = slower_file
    default_out, code, output = comparison_report  # the default --threshold: 5%
    assert code == 0, output
    loose_out = tmp_path / "50"
    code, output = rnnbench("report", results_file, after_path, "-o", loose_out, "--threshold", "50%")
    assert code == 0, output
    for out, fraction in ((default_out, 0.05), (loose_out, 0.5)):
        counts = compare_runs(read_results(results_file), read_results(after_path), threshold=fraction).counts()
        assert f"**{counts['regression']} slower**" in (out / "summary.md").read_text()
    assert "**0 slower**" in (loose_out / "summary.md").read_text()
    assert "**0 slower**" not in (default_out / "summary.md").read_text()
    code, output = rnnbench("report", results_file, after_path, "-o", tmp_path / "bad", "--threshold", "5")
    assert code == 2 and "--threshold '5'" in output


def test_files_without_a_case_in_common_are_reported_with_every_case_listed(results_file, tmp_path):
    run = read_results(results_file)
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    write_results(first, with_results(run, run.cases[:10], source=str(first)))
    write_results(second, with_results(run, run.cases[10:20], source=str(second)))
    code, output = rnnbench("report", first, second, "-o", tmp_path / "r")
    assert code == 0, output
    assert not (tmp_path / "r" / "compare-second-vs-first.png").exists()
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "No case ran in both files." in summary
    for result in run.cases[:20]:
        assert f"`{result.key}`: only in {'A' if result in run.cases[:10] else 'B'}" in summary


def test_the_same_results_give_byte_identical_reports(results_file, report, tmp_path):
    first, _, output = report
    second = write_report([read_results(results_file)], tmp_path / "two")
    assert [line.split("/")[-1] for line in output.splitlines()] == [p.name for p in second]
    for path in second:
        assert (first / path.name).read_bytes() == path.read_bytes(), path.name


def test_plot_draws_one_axis_and_metric_on_request(results_file, tmp_path):
    code, output = rnnbench("plot", results_file, "--x", "seq_len", "--y", "tokens_per_s", "-o", tmp_path)
    assert code == 0, output
    assert output.strip() == str(tmp_path / "sweep-tokens_per_s-vs-seq_len.png")


def test_plot_with_a_filter(results_file, tmp_path):
    code, output = rnnbench("plot", results_file, "--filter", "cell=gru", "--by", "cell", "-o", tmp_path)
    assert code == 0, output
    assert len(output.split()) == 2


@pytest.mark.parametrize("args, message", [
    (["--y", "watts"], "--y 'watts': unknown metric"),
    (["--x", "depth"], "--x 'depth': unknown axis"),
    (["--x", "hidden_size"], "--x hidden_size: not swept"),
    (["--y", "energy_per_sequence"], "no case of the batch sweeps has a value for energy per sequence"),
    (["--by", "gpu"], "--by 'gpu'"),
    (["--chart", "compare"], "needs two or more results files"),
])
def test_bad_requests_are_one_line_and_exit_2(results_file, tmp_path, args, message):
    code, output = rnnbench("plot", results_file, *args, "-o", tmp_path / "charts")
    assert code == 2
    assert output.count("\n") == 1 and output.startswith("rnnbench: error: ") and message in output
    assert not (tmp_path / "charts").exists() or not any((tmp_path / "charts").iterdir())


def test_a_missing_or_broken_results_file_is_one_line_and_exit_2(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "rnnbench.results", "schema_version": 1, "cases": [')
    for path in (tmp_path / "missing.json", broken):
        code, output = rnnbench("report", path, "-o", tmp_path / "r")
        assert code == 2 and output.count("\n") == 1, output


@pytest.mark.usefixtures("short_machine_window")
def test_a_real_tiny_run_reports_headless(tmp_path):
    """End to end, with no display: run a tiny sweep (in this process), then report it in a real process that
    has no display and asks matplotlib for an interactive backend."""
    suite = suite_file(tmp_path, "tiny.yaml", timing={"min_iters": 5},
                       grid={"cell": ["lstm"], "backend": ["cudnn", "eager"], "batch": [1, 4]})
    # no DISPLAY, and an interactive backend asked for: the reporter must not need one (it never uses pyplot)
    env = {"PATH": "/usr/bin:/bin", "MPLBACKEND": "TkAgg", "HOME": str(tmp_path)}
    results = tmp_path / "tiny.json"
    done = cli("run", suite, "--out", results, "--quiet")  # its threads: 1 are undone after the test (conftest)
    assert done.exit_code == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(results), "-o", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "report.html", "summary.md", "tiny-roofline.png", "tiny-speedup-over-cudnn.png", "tiny-step-vs-batch.png"]
