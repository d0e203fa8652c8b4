"""A real `rnnbench run` interrupted mid-run keeps every finished case, and --resume finishes the rest."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from harness.record.results_store import read_results
from tests.helpers import rnnbench_here, short_machine_window, suite_file

# The runs that are signalled or killed, and the one that holds the lock, are real processes; the resumes and
# the run refused the lock run in this process (the lock is another process's all the same).
pytestmark = pytest.mark.usefixtures("short_machine_window")


def interruptible_suite(folder, budget_s=0.1, seq_lens=(3,)):
    """Eight cases (for each of ``seq_lens``) of at least ``budget_s`` each: a run that can be stopped between
    them."""
    return suite_file(folder, name="interruptible", timing={"warmup_iters": 0, "min_iters": 1, "budget_s": budget_s},
                      grid={"backend": ["cudnn", "eager"], "batch": [2, 3], "seq_len": list(seq_lens)})


TOTAL_CASES = 8


def start_run(suite, *args):
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--quiet", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_finished_cases(journal, count, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= 1 + count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{journal} did not reach {count} cases")


@pytest.fixture
def suite(tmp_path):
    return interruptible_suite(tmp_path)


def resume_here(suite, results, *args):
    """A resume in this process: no signal is sent to it."""
    return rnnbench_here("run", suite, "--quiet", "--resume", results, *args)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_saves_finished_cases_and_resumes(tmp_path, sig):
    # The signal must land before the run's last case: 6 cases of 0.2 s are left once 2 are in, slack enough
    # for this process to be scheduled late on a loaded machine (6 of 0.1 s left 0.6 s).
    suite = interruptible_suite(tmp_path, budget_s=0.2)
    results = tmp_path / "r.json"
    process = start_run(suite, "--out", results)
    wait_for_finished_cases(results.with_name("r.json.journal"), 2)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    interrupted = read_results(results)
    assert interrupted.status == "interrupted"
    assert 2 <= len(interrupted.cases) < TOTAL_CASES
    assert all(case.ok for case in interrupted.cases)
    assert not results.with_name("r.json.journal").exists()

    done = resume_here(suite, results)
    assert done.returncode == 0, done.stderr
    finished = read_results(results)
    assert finished.status == "complete"
    assert len(finished.cases) == TOTAL_CASES == len({case.key for case in finished.cases})
    before = {case.key: case.started_utc for case in interrupted.cases}
    assert all(case.started_utc == before[case.key] for case in finished.cases if case.key in before)


def test_a_killed_run_resumes_from_its_journal_and_stays_interrupted_until_the_plan_is_done(suite, tmp_path):
    results = tmp_path / "r.json"
    process = start_run(suite, "--out", results)
    journal = results.with_name("r.json.journal")
    wait_for_finished_cases(journal, 1)
    process.kill()
    process.communicate(timeout=60)
    assert not results.exists() and journal.exists()
    # a resume with a narrower selection runs part of the plan: the run stays interrupted
    narrower = resume_here(suite, results, "--filter", "cell=gru", "--backend", "cudnn")
    assert narrower.returncode == 130, narrower.stderr
    assert "planned cases not run" in narrower.stderr
    partial = read_results(results)
    assert partial.status == "interrupted" and len(partial.cases) < TOTAL_CASES
    assert list(partial.options["backends"]) == [] and list(partial.options["filters"]) == []  # the plan
    done = resume_here(suite, results)
    assert done.returncode == 0, done.stderr
    assert read_results(results).status == "complete"
    assert len(read_results(results).cases) == TOTAL_CASES
    assert not journal.exists()


@pytest.fixture(scope="module")
def cudnn_run(tmp_path_factory):
    """A finished run of the suite's cudnn cases, made once; each test resumes a copy of it."""
    folder = tmp_path_factory.mktemp("cudnn-run")
    suite = interruptible_suite(folder)
    results = folder / "r.json"
    with short_machine_window():
        done = rnnbench_here("run", suite, "--quiet", "--out", results, "--backend", "cudnn")
    assert done.returncode == 0, done.stderr
    return results


@pytest.fixture
def finished_run(cudnn_run, tmp_path):
    results = tmp_path / "r.json"
    shutil.copyfile(cudnn_run, results)
    return results


def test_resume_refuses_a_changed_suite(suite, finished_run):
    interruptible_suite(suite.parent, budget_s=0.2)
    done = resume_here(suite, finished_run)
    assert done.returncode == 2
    assert "the suite has changed" in done.stderr and "Traceback" not in done.stderr


def test_resume_refuses_a_changed_environment(suite, finished_run):
    document = json.loads(finished_run.read_text())
    document["environment"]["torch"]["version"] = "1.0.0"
    finished_run.write_text(json.dumps(document))
    done = resume_here(suite, finished_run)
    assert done.returncode == 2
    assert "the environment has changed" in done.stderr and "torch: 1.0.0 ->" in done.stderr


def test_resume_repeats_the_runs_selection(suite, finished_run):
    done = resume_here(suite, finished_run)
    assert done.returncode == 0, done.stderr
    assert {case.case.backend for case in read_results(finished_run).cases} == {"cudnn"}


def test_a_second_run_on_the_same_out_is_refused_while_the_first_writes(suite, tmp_path):
    # 31 cases of 0.25 s left once the first is in the journal: the first run is still running when it is stopped
    interruptible_suite(suite.parent, budget_s=0.25, seq_lens=(3, 4, 5, 6))
    results = tmp_path / "r.json"
    process = start_run(suite, "--out", results)
    wait_for_finished_cases(results.with_name("r.json.journal"), 1)
    # Stopped, the first run still holds its lock and cannot finish while the second starts (torch's import
    # alone outlasted its cases on a loaded machine): the order is made, not hoped for.
    process.send_signal(signal.SIGSTOP)
    try:
        second = rnnbench_here("run", suite, "--quiet", "--out", results, "--force")
    finally:
        process.send_signal(signal.SIGINT)  # delivered when it continues
        process.send_signal(signal.SIGCONT)
    process.communicate(timeout=300)
    assert second.returncode == 2 and "another rnnbench run is writing" in second.stderr
    assert process.returncode == 130 and read_results(results).cases  # the first run's cases are all its own
