"""What plot, report and merge say and write at the edges: nothing to draw, charts too large to draw, a full
disk (a real small tmpfs), a suite name the fonts cannot draw, a results file that is only a journal; and the
index that finds a case's cudnn counterpart (against a plain scan, on generated runs)."""

import logging
import warnings
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.spec import limits
from harness.errors import ChartTooLarge, ResultsFileError
from harness.report.plots import MISSING_GLYPH, png_bytes, scaling_figure
from harness.report.render import speedup_chart, write_report
from harness.report.scaling import entries_of, scaling_chart
from harness.record.results import CaseResult
from harness.record.journal import ResultsWriter, release_lock
from harness.record.results_io import write_files, write_results
from harness.record.results_store import read_results
from harness.gate.speedup import cudnn_counterpart, cudnn_speedups, speedup_of
from tests.full_disk import fill, small_disk
from tests.report_builders import make_run, ok_result, sweep_run
from tests.helpers import make_case
from tests.helpers import rnnbench_here

PNG_END = b"IEND\xaeB`\x82"


def _one_line_error(done) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnbench: error:"), done.stderr
    return lines[0]


# --- nothing to draw ---------------------------------------------------------------------------------

def test_plot_of_a_results_file_without_cases_is_an_error_and_writes_nothing(tmp_path):
    empty = write_results(tmp_path / "empty.json", make_run([], source=str(tmp_path / "empty.json")))
    done = rnnbench_here("plot", empty, "-o", tmp_path / "charts")
    assert "holds no case" in _one_line_error(done) and str(empty) in done.stderr
    assert not (tmp_path / "charts").exists()


def test_plot_of_cases_that_sweep_no_axis_is_an_error(tmp_path):
    run = make_run([ok_result(make_case(backend), 2.0) for backend in ("cudnn", "eager")])
    path = write_results(tmp_path / "flat.json", run)
    done = rnnbench_here("plot", path, "-o", tmp_path / "charts")
    assert "no size axis is swept" in _one_line_error(done)
    assert not (tmp_path / "charts").exists()


# --- charts past the limits --------------------------------------------------------------------------

def _many_panels(panels: int):
    """A batch sweep at ``panels`` hidden sizes: one panel per hidden size on the batch chart."""
    return make_run([ok_result(make_case("eager", batch=batch, hidden_size=hidden), 1.0 + batch)
                     for hidden in range(1, panels + 1) for batch in (1, 2)])


def test_a_scaling_chart_at_the_panel_limit_is_drawn_and_one_past_it_is_refused():
    at_limit = scaling_chart(entries_of([_many_panels(limits.MAX_CHART_PANELS)]), "batch")
    assert len(at_limit.facets) == limits.MAX_CHART_PANELS
    scaling_figure(at_limit, "context")  # builds (drawing it would take a while)
    past = scaling_chart(entries_of([_many_panels(limits.MAX_CHART_PANELS + 1)]), "batch")
    with pytest.raises(ChartTooLarge, match=f"{limits.MAX_CHART_PANELS + 1} panels.*--filter"):
        scaling_figure(past, "context")


def test_a_speedup_chart_past_the_row_limit_is_refused_or_left_out():
    rows = limits.MAX_CHART_ROWS + 1
    run = make_run([ok_result(make_case(backend, hidden_size=hidden), 1.0) for hidden in range(1, rows + 1)
                    for backend in ("cudnn", "eager")])
    with pytest.raises(ChartTooLarge, match=f"{rows} rows"):
        speedup_chart(run, "x")
    left_out = speedup_chart(run, "x", leave_out_large=True)
    assert left_out.png == b"" and f"{rows} rows" in left_out.left_out


def test_plot_refuses_a_chart_too_large_and_report_leaves_it_out_saying_so(tmp_path):
    path = write_results(tmp_path / "wide.json", _many_panels(limits.MAX_CHART_PANELS + 1))
    done = rnnbench_here("plot", path, "--x", "batch", "-o", tmp_path / "charts")
    assert f"{limits.MAX_CHART_PANELS + 1} panels" in _one_line_error(done)
    report = rnnbench_here("report", path, "-o", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    assert "chart not drawn: wide-step-vs-batch.png" in report.stderr
    written = {p.name for p in (tmp_path / "report").iterdir()}
    assert "wide-step-vs-batch.png" not in written and "wide-step-vs-hidden_size.png" in written
    page = (tmp_path / "report" / "report.html").read_text()
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "Chart not drawn: step time (median) vs batch" in page and "Chart not drawn: `wide-step-vs-batch.png`" in summary
    assert page.count("<tr") > 2 * (limits.MAX_CHART_PANELS + 1)  # the tables keep every case


# --- a full disk -------------------------------------------------------------------------------------

def _whole_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG") and data.endswith(PNG_END)


def test_report_onto_a_full_disk_names_the_file_and_leaves_no_truncated_file(tmp_path):
    results = write_results(tmp_path / "sweep.json", sweep_run(source=str(tmp_path / "sweep.json")))
    with small_disk(tmp_path / "disk", size="4m") as disk:
        first = rnnbench_here("report", results, "-o", disk / "report")
        assert first.returncode == 0, first.stderr
        before = {p.name: p.read_bytes() for p in (disk / "report").iterdir()}
        fill(disk, leave_pages=8)  # room for part of a chart, not for all of them
        done = rnnbench_here("report", results, "-o", disk / "report")
        line = _one_line_error(done)
        assert str(disk / "report") in line and "No space left" in line
        after = {p.name: p.read_bytes() for p in (disk / "report").iterdir()}
    assert not [name for name in after if name.endswith(".tmp")]
    assert after.keys() == before.keys()
    for name, data in after.items():  # each file the old one or a whole new one, never a part
        assert _whole_png(data) if name.endswith(".png") else data == before[name], name


def test_write_files_refuses_a_file_where_the_folder_should_be(tmp_path):
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(ResultsFileError, match="taken: is a file"):
        write_files(tmp_path / "taken", {"a.png": b"x"})
    assert (tmp_path / "taken").read_text() == "mine"


# --- a suite name the fonts cannot draw --------------------------------------------------------------

EMOJI_NAME = "speed \U0001F680 run \u4e2d"


def test_a_suite_name_without_glyphs_draws_without_a_warning():
    run = replace(sweep_run(), suite={**sweep_run().suite, "name": EMOJI_NAME})
    figure = scaling_figure(scaling_chart(entries_of([run]), "batch"), f"suite {EMOJI_NAME}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert png_bytes(figure).startswith(b"\x89PNG")
    texts = [text.get_text() for text in figure.findobj(lambda artist: hasattr(artist, "get_text"))]
    assert any(f"speed {MISSING_GLYPH} run {MISSING_GLYPH}" in text for text in texts)
    assert not any("\U0001F680" in text for text in texts)


def test_plot_and_report_print_no_raw_warning_for_an_emoji_suite_name(tmp_path, caplog):
    run = sweep_run(source=str(tmp_path / "emoji.json"))
    path = write_results(tmp_path / "emoji.json", replace(run, suite={**run.suite, "name": EMOJI_NAME}))
    for command in (["plot", str(path), "--x", "batch"], ["report", str(path)]):
        # in this process: what a fresh one would print as a warning (Python's warnings, matplotlib's log
        # records) is caught here, every time it is raised, not only its first time
        caplog.clear()
        with warnings.catch_warnings(record=True) as raised:
            warnings.simplefilter("always")
            done = rnnbench_here(*command, "-o", tmp_path / command[0])
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr and "Glyph" not in done.stderr, done.stderr
        assert [str(warning.message) for warning in raised] == []
        assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []


# --- a results file that is only a journal -----------------------------------------------------------

def _killed_run_journal(tmp_path, **options):
    """What a killed run leaves: the journal of its finished cases, no results file."""
    run = sweep_run()
    path = tmp_path / "k0.json"
    writer = ResultsWriter(path, run.environment, {**run.suite, "source": "suites/mine.yaml"},
                           "2026-01-01T00:00:00+00:00", options=options)
    writer.append(run.cases[0])
    writer._journal.close()
    release_lock(writer._lock, path)
    return path, writer.journal_path


def test_merge_of_a_results_file_that_is_only_a_journal_says_how_to_finish_it(tmp_path):
    path, journal = _killed_run_journal(tmp_path)
    done = rnnbench_here("merge", path, "-o", tmp_path / "merged.json")
    line = _one_line_error(done)
    assert "no results file yet" in line and str(journal) in line
    assert f"rnnbench run suites/mine.yaml --resume {path}" in line
    merged = rnnbench_here("merge", journal, "-o", tmp_path / "merged.json")  # as the message says
    assert merged.returncode == 0, merged.stderr
    assert len(read_results(tmp_path / "merged.json").cases) == 1


def test_a_journal_of_a_run_in_rounds_says_it_cannot_be_resumed(tmp_path):
    path, _ = _killed_run_journal(tmp_path, rounds=3)
    with pytest.raises(ResultsFileError, match="cannot be resumed: run rnnbench run suites/mine.yaml again"):
        read_results(path)


def test_a_missing_results_file_without_a_journal_is_still_just_missing(tmp_path):
    with pytest.raises(ResultsFileError, match="no such results file"):
        read_results(tmp_path / "nothing.json")


# --- the cudnn counterpart by index ------------------------------------------------------------------

def _scanned_counterpart(run, result):
    """The definition, as a scan of every case (what the index replaced)."""
    for other in run.cases:
        if (other.ok and other.case.backend == "cudnn" and other.case.mode == result.case.mode
                and other.case.model_key == result.case.model_key):
            return other
    return None


CASES = st.builds(lambda backend, cell, mode, hidden, status: (make_case(backend, cell, mode, hidden_size=hidden), status),
                  st.sampled_from(["cudnn", "eager", "torchscript"]), st.sampled_from(["lstm", "gru"]),
                  st.sampled_from(["forward", "forward_backward"]), st.sampled_from([8, 16]),
                  st.sampled_from(["ok", "failed", "skipped"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(CASES, max_size=20, unique_by=lambda pair: pair[0].key))
def test_the_indexed_counterpart_is_the_scanned_one(pairs):
    results = [ok_result(case, 1.0, n=3) if status == "ok" else CaseResult(case=case, status=status, reason="r")
               for case, status in pairs]
    run = make_run(results)
    for result in run.cases:
        assert cudnn_counterpart(run, result) is _scanned_counterpart(run, result)
        has_cudnn = any(o.case.backend == "cudnn" and o.case.mode == result.case.mode
                        and o.case.model_key == result.case.model_key for o in run.cases)
        speedup = speedup_of(run, result)
        assert (speedup is None) == (result.case.backend == "cudnn" or not has_cudnn)
    assert [s.result.key for s in cudnn_speedups(run)] == [
        r.key for r in run.cases if speedup_of(run, r) is not None]


def test_a_report_computes_each_speedup_once(tmp_path, monkeypatch):
    import harness.gate.speedup as speedup_module

    calls = []
    real = speedup_module.speedup_of
    monkeypatch.setattr(speedup_module, "speedup_of", lambda run, result: calls.append(result.key) or real(run, result))
    run = sweep_run()
    write_report([run], tmp_path)
    assert sorted(calls) == sorted(r.key for r in run.cases)  # one each: not per chart, table and summary


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children,
                                                                                        max_size=4),
                    max_leaves=20)


@settings(max_examples=100, deadline=None)
@given(JSON)
def test_freeze_makes_read_only_copies_that_thaw_back(document):
    """freeze's fast paths (a list of numbers) keep what the plain recursion made: tuples and mapping proxies."""
    from types import MappingProxyType

    from harness.record.results import freeze, thaw

    frozen = freeze(document)
    assert thaw(frozen) == document

    def read_only(value):
        if isinstance(value, (dict, list)):
            return False
        if isinstance(value, MappingProxyType):
            return all(read_only(item) for item in value.values())
        if isinstance(value, tuple):
            return all(read_only(item) for item in value)
        return True

    assert read_only(frozen)
