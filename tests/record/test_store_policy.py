"""One path policy for every file rnnbench writes, and one validation of every results file it reads."""

import copy
import functools
import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ResultsFileError
from harness.record.journal import ResultsWriter, journal_path_for, read_journal
from harness.record.results_io import refuse_overwriting, write_results, write_text
from harness.record.results_store import STORE, read_results
from tests.synthetic_results import case_result, synthetic_run
from tests.helpers import make_case


def _document(run):
    return json.loads(json.dumps(run.to_dict(), default=list))


@functools.cache
def _synthetic_document():
    return _document(synthetic_run(1))


@pytest.fixture
def results_file(tmp_path):
    path = tmp_path / "run.json"
    write_results(path, synthetic_run(1))
    return path


@pytest.mark.parametrize("name", ["../../escape", "/etc/passwd", "a/b", "..", "C:\\\\x"])
def test_a_suite_name_never_steers_the_results_file_elsewhere(tmp_path, name):
    path = STORE.new_results_path(tmp_path, name, "cpu")
    assert path.parent == tmp_path and "/" not in path.name and ".." not in path.name


def test_upper_case_json_is_a_file_not_a_folder(tmp_path):
    assert STORE.new_results_path(tmp_path / "X.JSON", "s", "cpu") == tmp_path / "X.JSON"


def test_results_files_get_ordinary_permissions(results_file):
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(results_file.stat().st_mode) == 0o666 & ~mask


def _writer(path, **options):
    return ResultsWriter(path, {"device": "cpu"}, {"name": "s"}, started_utc="now", **options)


def test_an_existing_results_file_is_not_replaced_without_force(results_file):
    before = results_file.read_bytes()
    with pytest.raises(ResultsFileError, match="exists .*--force"):
        _writer(results_file)
    assert results_file.read_bytes() == before
    _writer(results_file, force=True).finish("complete", "later")
    assert read_results(results_file).cases == ()


def test_an_interrupted_runs_journal_is_not_replaced_by_a_new_run(tmp_path):
    path = tmp_path / "run.json"
    first = _writer(path)
    first.append(case_result(make_case(), (1.0, 2.0, 3.0)))
    first._journal.close()  # killed: the journal stays, the lock goes with the process
    from harness.record.journal import release_lock
    release_lock(first._lock, path)
    with pytest.raises(ResultsFileError, match="interrupted run's journal.*--resume"):
        _writer(path)
    assert len(read_journal(journal_path_for(path)).cases) == 1


def test_a_second_writer_of_the_same_file_is_refused(tmp_path):
    path = tmp_path / "run.json"
    first = _writer(path)
    with pytest.raises(ResultsFileError, match="another rnnbench run is writing"):
        _writer(path, force=True)
    first.finish("complete", "later")
    _writer(path, force=True).finish("complete", "later")


def test_a_link_planted_where_the_journal_is_made_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / "run.json"
    (tmp_path / "run.json.journal.new").symlink_to(victim)
    _writer(path).finish("complete", "later")
    assert victim.read_text() == "precious"


def test_a_results_folder_that_vanishes_keeps_every_case_in_a_rescue_file(tmp_path):
    import shutil

    folder = tmp_path / "out"
    writer = _writer(folder / "run.json")
    writer.append(case_result(make_case(), (1.0, 2.0, 3.0)))
    shutil.rmtree(folder)
    folder.write_text("a file now stands where the folder was")
    with pytest.raises(ResultsFileError, match=r"1 finished cases are in .*rnnbench-rescued") as caught:
        writer.finish("complete", "later")
    rescued = str(caught.value).rsplit(" are in ", 1)[1]
    assert len(read_results(rescued).cases) == 1
    os.unlink(rescued)


def test_outputs_never_replace_inputs_or_results(tmp_path, results_file):
    with pytest.raises(ResultsFileError, match="also an input"):
        write_text(results_file, "# report", inputs=(results_file,))
    with pytest.raises(ResultsFileError, match="holds rnnbench results"):
        write_text(results_file, "# report")
    with pytest.raises(ResultsFileError, match="is a folder"):
        refuse_overwriting(tmp_path)
    assert write_text(tmp_path / "notes.md", "ok").read_text() == "ok"


@pytest.mark.parametrize("sample, fragment", [
    (float("inf"), "finite time"), (1e308, "finite time"), (0.0, "finite time"), (-1.0, "finite time"),
    ("12", "finite time"), (None, "finite time"), ([1.0], "finite time"), (True, "finite time"),
])
def test_samples_must_be_finite_positive_times(tmp_path, sample, fragment):
    document = _document(synthetic_run(1))
    document["cases"][0]["samples_ms"]["step"][2] = sample
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ResultsFileError, match=fragment):
        read_results(path)


@pytest.mark.parametrize("edit, fragment", [
    (lambda d: d.update(environment="gpu"), "environment: must be a mapping"),
    (lambda d: d.update(suite=[1]), "suite: must be a mapping"),
    (lambda d: d["cases"][0]["case"].update(batch="8"), "case.batch"),
    (lambda d: d["cases"][0]["case"].update(cell=None), "case.cell"),
    (lambda d: d["cases"][0].update(status="great"), "status"),
    (lambda d: d["cases"].append(d["cases"][0]), "appears twice"),
    (lambda d: d.update(status="done"), "status"),
])
def test_malformed_fields_are_one_line(tmp_path, edit, fragment):
    document = _document(synthetic_run(1))
    edit(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ResultsFileError, match=fragment):
        read_results(path)


def test_deep_nesting_non_utf8_and_journals_under_any_name_are_handled(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ResultsFileError):
        read_results(deep)
    latin = tmp_path / "latin.journal"
    latin.write_bytes(b'{"journal": true}\n\xff\xfe')
    with pytest.raises(ResultsFileError, match="not UTF-8"):
        read_journal(latin)
    path = tmp_path / "run.json"
    writer = _writer(path)
    writer.append(case_result(make_case(), (1.0, 2.0, 3.0)))
    renamed = tmp_path / "renamed.json"
    renamed.write_bytes(journal_path_for(path).read_bytes())
    assert read_results(renamed).status == "interrupted"


@settings(max_examples=40, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children,
                                                                                      max_size=3), max_leaves=12))
def test_any_value_in_place_of_a_case_is_a_results_file_error(value):
    document = copy.deepcopy(_synthetic_document())  # a copy: 3 ms where building it again took 30
    document["cases"][0] = value
    from harness.record.results_schema import results_from_document
    try:
        results_from_document(document, "x.json")
    except ResultsFileError as exc:
        assert "\n" not in str(exc)


def test_a_killed_run_in_rounds_keeps_every_round_and_reads_back_merged(tmp_path):
    path = tmp_path / "run.json"
    writer = _writer(path)
    for index, times in enumerate(((1.0, 1.1, 1.2), (2.0, 2.1, 2.2))):
        writer.append_round(index, case_result(make_case(), times).to_dict())
    writer._journal.close()  # killed before finish
    (case,) = read_journal(journal_path_for(path)).cases
    assert case.round_count == 2 and case.median_ms("step") == pytest.approx(1.6)


@pytest.mark.parametrize("counts, error", [([150, 50], None), ([150, 51], "block_lengths"),
                                           ([200, 0], "block_lengths"), ("200", "block_lengths"),
                                           ([True, 199], "block_lengths")])
def test_block_counts_that_do_not_add_up_to_the_samples_are_a_results_file_error(counts, error):
    from harness.record.results_schema import results_from_document

    document = _document(synthetic_run(1))
    document["cases"][0]["block_lengths"] = counts
    if error is None:
        case = results_from_document(document, "x.json").cases[0]
        assert case.samples_by_block(case.primary_region) == [[case.samples_ms["step"][:150],
                                                                case.samples_ms["step"][150:]]]
        return
    with pytest.raises(ResultsFileError, match=error):
        results_from_document(document, "x.json")
