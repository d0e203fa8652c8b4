"""The results store: its folders under a root, the names of new files, and ``load`` of each kind of file rnnbench
writes (results file, a run's journal, profile file, a profile's journal), each checked; anything else refused
in one line."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from harness.errors import ResultsFileError
from harness.record.journal import ResultsWriter
from harness.record.profile_file import ProfileRun, ProfileWriter
from harness.record.results import RunResults
from harness.record.results_io import write_results
from harness.record.results_store import STORE, ResultsStore, read_results
from tests.synthetic_results import CPU_ENVIRONMENT, SUITE, synthetic_run

NOW = datetime(2026, 1, 2, 3, 4, 5)
_PROFILED = {"key": "k", "case": {"cell": "lstm", "backend": "cudnn", "mode": "forward", "batch": 1, "seq_len": 1,
                                  "input_size": 1, "hidden_size": 1, "num_layers": 1, "bidirectional": False,
                                  "dtype": "float32", "device_type": "cpu"},
             "status": "skipped", "reason": "made up"}


def test_the_default_store_keeps_the_folders_the_cli_has_always_used():
    assert STORE.results_dir == Path("results") and STORE.baselines_dir == Path("results/baselines")
    assert STORE.reports_dir == Path("reports") and STORE.profiles_dir == Path("profiles")
    assert STORE.history_path == Path("results/history.sqlite")
    assert STORE.history_charts_dir == Path("reports/history")


def test_a_store_names_every_file_under_its_root(tmp_path):
    store = ResultsStore(root=tmp_path)
    results = store.new_results_path(None, "My Suite/../x", "cuda", now=NOW)
    assert results == tmp_path / "results" / "my-suite-x-cuda-20260102-030405.json"  # a name never steers the path
    assert store.new_results_path(tmp_path / "out", "s", "cpu", now=NOW) == tmp_path / "out" / "s-cpu-20260102-030405.json"
    assert store.new_results_path("given.JSON", "s", "cpu") == Path("given.JSON")
    profile = store.new_profile_path(None, "s", "cpu", now=NOW)
    assert profile == tmp_path / "profiles" / "s-cpu-20260102-030405.profile.json"
    assert store.trace_path(profile, "lstm/cudnn") == tmp_path / "profiles" / "s-cpu-20260102-030405.traces" / \
        "lstm-cudnn.pt.trace.json"
    assert store.journal_path(results) == results.with_name(results.name + ".journal")
    assert store.results_path_of(store.journal_path(results)) == results == store.results_path_of(results)
    cpu = store.baseline_path(CPU_ENVIRONMENT)
    assert cpu.parent == tmp_path / "results" / "baselines" and cpu.name.startswith("cpu-") and cpu.suffix == ".json"
    gpu = {**CPU_ENVIRONMENT, "gpu": {"name": "NVIDIA H100 80GB HBM3"}}
    assert store.baseline_path(gpu, tmp_path / "elsewhere") == tmp_path / "elsewhere" / "nvidia-h100-80gb-hbm3.json"


def test_load_reads_a_results_file_and_a_runs_journal(tmp_path):
    run = synthetic_run(1)
    write_results(tmp_path / "done.json", run)
    loaded = STORE.load(tmp_path / "done.json")
    assert isinstance(loaded, RunResults) and loaded.status == "complete"
    assert [case.key for case in loaded.cases] == [case.key for case in run.cases]

    writer = ResultsWriter(tmp_path / "killed.json", CPU_ENVIRONMENT, SUITE, "t0")
    writer.append(run.cases[0])
    journal = STORE.journal_path(tmp_path / "killed.json")
    for path in (journal, tmp_path / "killed.json"):  # named, or found beside the results file it stands for
        interrupted = STORE.load(journal) if path == journal else STORE.load_latest(path)
        assert isinstance(interrupted, RunResults) and interrupted.status == "interrupted"
        assert [case.key for case in interrupted.cases] == [run.cases[0].key]
    with pytest.raises(ResultsFileError, match="no results file yet, but its journal"):
        STORE.load(tmp_path / "killed.json")
    writer.finish("complete", "t1")


def test_load_reads_a_profile_file_and_a_profiles_journal(tmp_path):
    writer = ProfileWriter(tmp_path / "p.profile.json", {"device": "cpu"}, {"name": "s"}, {"steps": 2}, "t0")
    writer.append(_PROFILED)
    interrupted = STORE.load(writer.journal_path)
    assert isinstance(interrupted, ProfileRun) and interrupted.status == "interrupted"
    [case] = interrupted.cases
    assert case.case.cell == "lstm" and case.status == "skipped" and case.reason == "made up"
    writer.finish("complete", "t1")
    finished = STORE.load(tmp_path / "p.profile.json")
    assert isinstance(finished, ProfileRun) and finished.status == "complete" and len(finished.cases) == 1


BAD_RESULTS_FILES = [
    ("", "not valid JSON"),
    ('{"schema": "rnnbench.results", "schema_version": 1, "cases": [', "not valid JSON"),
    ('{"hello": 1}', "not an rnnbench results file"),
    ('{"schema": "something.else"}', "not an rnnbench results file"),
    ('{"schema": "rnnbench.results", "schema_version": 99, "cases": []}', "schema version 99"),
    ('{"schema": "rnnbench.results", "schema_version": 1, "cases": [{"status": "ok"}]}', "must be a mapping"),
]
# read_results reads results files only; the store's load reads a profile file too, and refuses its version 9
READERS = [(read, content, problem) for read in (read_results, STORE.load) for content, problem in BAD_RESULTS_FILES]
READERS.append((STORE.load, '{"schema": "rnnbench.profile", "schema_version": 9}', "profile schema version 9"))


@pytest.mark.parametrize("read, content, problem", READERS)
def test_a_bad_file_is_refused_by_each_reader_in_one_line_that_names_it(tmp_path, read, content, problem):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(ResultsFileError, match=problem) as refused:
        read(path)
    assert "\n" not in str(refused.value) and str(path) in str(refused.value)


def test_load_checks_a_results_file_against_the_schema(tmp_path):
    document = json.loads(json.dumps(synthetic_run(2).to_dict()))
    document["cases"][0]["case"]["batch"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ResultsFileError, match=r"cases\[0\]\.case\.batch: must be a whole number"):
        STORE.load(path)


def test_the_cases_own_memory_is_checked_like_the_other_memory_facts(tmp_path):
    """A forged growth (text where a number belongs) is refused when read, not a crash of the reports."""
    document = json.loads(json.dumps(synthetic_run(3).to_dict()))
    document["cases"][0]["memory"] = {"case_peak_rss_growth_bytes": "rnn"}
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ResultsFileError, match=r"cases\[0\]\.memory\.case_peak_rss_growth_bytes: must be a finite"):
        STORE.load(path)
