"""rnnbench profile's output: checked before any case is profiled, every profiled case kept in a journal as it
finishes, a rescue copy where the profile file cannot be written, and the file named in every disk error.
A real subprocess where the command is killed (a real SIGKILL); the other profiles in this process (the rescue
folder: tempfile's, as the next test sets it); a real full disk (a small tmpfs)."""

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness.errors import ResultsFileError
from harness.record.profile_file import ProfileWriter, read_results_and_profiles
from tests.full_disk import PAGE_BYTES, fill, small_disk
from tests.helpers import rnnbench_here
from tests.measure.test_profile import profile_suite

pytestmark = pytest.mark.usefixtures("short_machine_window")

PROFILING = "rnnbench: profiling"
_RECORD = {"key": "k", "case": {"cell": "lstm", "backend": "cudnn", "mode": "forward", "batch": 1, "seq_len": 1,
                                "input_size": 1, "hidden_size": 1, "num_layers": 1, "bidirectional": False,
                                "dtype": "float32", "device_type": "cpu"},
           "status": "skipped", "reason": "made up"}


def _profile_here(tmp_path, *args):
    """A profile of a tiny suite, in this process."""
    return rnnbench_here("profile", profile_suite(tmp_path), "--quiet", "--steps", "2", *args)


def _one_error_line(done) -> str:
    errors = [line for line in done.stderr.splitlines() if line.startswith("rnnbench: error:")]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return errors[0]


@pytest.mark.parametrize("out", ["a-file", "a-file/below"])
def test_an_output_folder_that_is_a_file_is_refused_before_any_case_is_profiled(tmp_path, out):
    (tmp_path / "a-file").write_text("not a folder")
    done = _profile_here(tmp_path, "-o", tmp_path / out, "--trace")
    assert done.returncode == 2
    assert str(tmp_path / "a-file") in _one_error_line(done)
    assert PROFILING not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_a_full_disk_before_the_first_case_is_refused_at_once_naming_the_journal(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        fill(disk)
        done = _profile_here(tmp_path, "-o", disk / "profiles")
        line = _one_error_line(done)
        assert done.returncode == 2 and PROFILING not in done.stderr
        assert str(disk / "profiles") in line and ".profile.json.journal" in line and "No space left" in line
        assert not list((disk / "profiles").glob("*.journal"))


def test_a_disk_that_fills_while_profiling_keeps_the_finished_cases_in_a_rescue_file(tmp_path, monkeypatch):
    rescue_folder = tmp_path / "tmp"
    rescue_folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue_folder))
    with small_disk(tmp_path / "disk") as disk:
        (disk / "profiles").mkdir()
        fill(disk, leave_pages=1)  # room for the journal's first line (about 2 KB), not for a case (about 8 KB)
        done = _profile_here(tmp_path, "-o", disk / "profiles")
    assert done.returncode == 2, done.stderr
    line = _one_error_line(done)
    [rescue] = rescue_folder.glob("rnnbench-rescued-*.profile.json")
    assert f"profiled case is in {rescue}" in line and str(disk / "profiles") in line
    [profile] = read_results_and_profiles([rescue])[1]
    assert profile.status == "interrupted" and [entry.case.backend for entry in profile.cases] == ["cudnn"]
    assert profile.cases[0].ok


def test_when_not_even_a_rescue_copy_fits_the_error_names_the_journal(tmp_path, monkeypatch):
    """The temporary folder on the full disk too (tempfile.tempdir: gettempdir would skip a full TMPDIR)."""
    with small_disk(tmp_path / "disk") as disk:
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        writer = ProfileWriter(disk / "p.profile.json", {"device": "cpu"}, {"name": "s"}, {"steps": 2}, "t0")
        fill(disk, leave_pages=1)
        with pytest.raises(ResultsFileError, match="cannot write the journal .*p.profile.json.journal"):
            writer.append({**_RECORD, "reason": "x" * 3 * PAGE_BYTES})
        with pytest.raises(ResultsFileError) as refused:
            writer.finish("interrupted", "t1")
        assert "nor a rescue copy" in str(refused.value) and str(writer.journal_path) in str(refused.value)
        [profile] = read_results_and_profiles([writer.journal_path])[1]  # the header made it: an empty profile
        assert profile.status == "interrupted" and profile.cases == ()


def test_a_killed_profile_leaves_a_journal_that_report_reads(tmp_path):
    """SIGKILL once the first case is in the journal: the journal keeps it, and report draws it."""

    suite = profile_suite(tmp_path, backends=("cudnn", "eager", "torchscript"))
    out = tmp_path / "profiles"
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "profile", str(suite), "--quiet", "--steps", "2",
                                "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:  # the command names its journal before the first case
            if "journal: " in line:
                journal = Path(line.rsplit("journal: ", 1)[1].strip())
                break
        else:
            pytest.fail("the profile never named its journal")
        while not _has_a_case(journal):  # each case is one flushed line: wait for the first
            assert process.poll() is None, "the profile finished before it could be killed"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    [profile] = read_results_and_profiles([journal])[1]
    assert profile.status == "interrupted" and profile.cases and profile.cases[0].case.backend == "cudnn"
    report = rnnbench_here("report", journal, "-o", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    assert list((tmp_path / "report").glob("*-step-breakdown.png"))


def _has_a_case(journal: Path) -> bool:
    lines = journal.read_text().splitlines() if journal.exists() else []
    try:
        return len(lines) >= 2 and "case" in json.loads(lines[1])
    except ValueError:  # the line is being written
        return False


def test_a_journal_cut_off_mid_line_keeps_every_line_before(tmp_path):
    writer = ProfileWriter(tmp_path / "p.profile.json", {"device": "cpu"}, {"name": "s"}, {"steps": 2},
                           "2026-01-01T00:00:00+00:00")
    record = _RECORD
    writer.append(record)
    with open(writer.journal_path, "a") as handle:
        handle.write(json.dumps({"case": record})[:20])
    [profile] = read_results_and_profiles([writer.journal_path])[1]
    assert [entry.status for entry in profile.cases] == ["skipped"] and profile.status == "interrupted"
    writer.finish("complete", "2026-01-01T00:01:00+00:00")
    assert not writer.journal_path.exists()
    [profile] = read_results_and_profiles([writer.path])[1]
    assert profile.status == "complete" and len(profile.cases) == 1
