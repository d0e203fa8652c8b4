import json

import pytest

from harness.errors import ResultsFileError
from harness.record.results import CaseResult, RunResults
from harness.gate.speedup import speedup_over_cudnn
from harness.record.journal import ResultsWriter, read_journal
from harness.record.results_io import write_results
from harness.record.results_store import read_results
from tests.helpers import tiny_case


def _result(backend="cudnn", samples=(2.0, 1.0, 3.0, 2.5, 1.5, 2.2), status="ok", **extra):
    return CaseResult(case=tiny_case(backend=backend), status=status,
                      samples_ms={"forward": tuple(s / 2 for s in samples), "backward": tuple(s / 2 for s in samples),
                                  "step": tuple(samples)} if status == "ok" else {}, **extra)


def _run(*cases):
    return RunResults(environment={"machine": {"node": "x"}}, suite={"name": "t"}, cases=cases,
                      started_utc="2026-01-01T00:00:00+00:00", finished_utc="2026-01-01T00:01:00+00:00")


def test_case_result_round_trips_through_json(tmp_path):
    original = _run(_result(), _result("eager", status="failed", reason="parity failed: output"),
                    _result("torchscript", status="skipped", reason="no TorchScript"))
    path = write_results(tmp_path / "r.json", original)
    loaded = read_results(path)
    assert [c.to_dict() for c in loaded.cases] == [c.to_dict() for c in original.cases]
    assert loaded.counts() == {"ok": 1, "failed": 1, "skipped": 1}
    document = json.loads(path.read_text())
    assert document["schema"] == "rnnbench.results" and document["schema_version"] == 1
    assert document["cases"][0]["stats"]["step"]["median_ms"] == pytest.approx(2.1)


def test_statistics_are_derived_from_the_samples_not_trusted_from_the_file(tmp_path):
    path = write_results(tmp_path / "r.json", _run(_result()))
    document = json.loads(path.read_text())
    document["cases"][0]["stats"]["step"]["median_ms"] = 999.0
    path.write_text(json.dumps(document))
    assert read_results(path).cases[0].median_ms() == pytest.approx(2.1)


def test_records_cannot_be_changed():
    result = _result()
    with pytest.raises(AttributeError):
        result.status = "failed"
    with pytest.raises(TypeError):
        result.samples_ms["step"] = (1.0,)


def test_speedup_is_measured_against_the_cudnn_case_of_the_same_model():
    cudnn, eager = _result("cudnn", samples=(2.0,) * 6), _result("eager", samples=(4.0,) * 6)
    run = _run(cudnn, eager)
    assert speedup_over_cudnn(run, eager) == pytest.approx(0.5)
    assert speedup_over_cudnn(run, cudnn) == pytest.approx(1.0)


def test_missing_results_file(tmp_path):
    with pytest.raises(ResultsFileError, match="no such results file"):
        read_results(tmp_path / "nope.json")


def test_writer_journals_each_case_then_writes_the_file_atomically(tmp_path):
    path = tmp_path / "out" / "r.json"
    writer = ResultsWriter(path, {"machine": {}}, {"name": "t"}, started_utc="t0")
    writer.append(_result())
    writer.append(_result("eager"))
    assert not path.exists()
    partial = read_journal(writer.journal_path)
    assert [c.case.backend for c in partial.cases] == ["cudnn", "eager"] and partial.status == "interrupted"
    run = writer.finish("complete", finished_utc="t1")
    assert not writer.journal_path.exists()
    assert read_results(path).counts()["ok"] == 2 and run.status == "complete"
    assert not list(path.parent.glob("*.tmp"))


def test_a_journal_cut_off_mid_line_keeps_every_finished_case(tmp_path):
    writer = ResultsWriter(tmp_path / "r.json", {}, {"name": "t"}, started_utc="t0")
    writer.append(_result())
    with open(writer.journal_path, "a") as stream:
        stream.write('{"case_result": {"key": "half a li')
    assert len(read_journal(writer.journal_path).cases) == 1
