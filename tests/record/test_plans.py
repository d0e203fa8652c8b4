"""The plan a results file records decides what may be merged with it and how it is continued: shards of
other plans (another shard count, another selection, another seed) are refused, a merged file is complete only
when every planned case is there, and a run in rounds is never resumed as an ordinary run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from harness.record.journal import journal_path_for
from harness.record.results_store import read_results, read_results_or_journal
from tests.helpers import cli, one_line_refusal, short_machine_window, suite_file

pytestmark = pytest.mark.usefixtures("short_machine_window")

PLANNED = dict(name="planned", timing={"warmup_iters": 0, "min_iters": 2, "max_iters": 3, "budget_s": 0.001},
               grid={"batch": [2, 3]})  # four cases


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real runs of the 4-case suite: shards 0/2 and 1/2, shard 1/3, shard 1/2 of the LSTM cases only, and
    shard 1/2 of the suite with another seed."""
    folder = tmp_path_factory.mktemp("plans")
    suite = suite_file(folder, **PLANNED)
    other_seed = suite_file(folder, "seeded.yaml", seed=7, **PLANNED)
    made = {}
    with short_machine_window():
        for name, path, extra in (("0of2", suite, ["--shard", "0/2"]), ("1of2", suite, ["--shard", "1/2"]),
                                  ("1of3", suite, ["--shard", "1/3"]),
                                  ("lstm1of2", suite, ["--shard", "1/2", "--filter", "cell=lstm"]),
                                  ("seed1of2", other_seed, ["--shard", "1/2"])):
            out = folder / f"{name}.json"
            done = cli("run", path, "--out", out, "--quiet", *extra)
            assert done.exit_code == 0, done.output
            made[name] = out
    made["suite"] = suite
    return made


def test_shards_of_one_plan_merge_complete(runs, tmp_path):
    done = cli("merge", runs["1of2"], runs["0of2"], "-o", tmp_path / "m.json")
    assert done.exit_code == 0, done.output
    merged = read_results(tmp_path / "m.json")
    assert merged.status == "complete" and len(merged.cases) == 4


@pytest.mark.parametrize("other, words", [("1of3", ["shard count", "2", "3"]),
                                          ("lstm1of2", ["--filter", "cell=lstm"]),
                                          ("seed1of2", ["different suite", "seed"])])
def test_shards_of_another_plan_are_refused_naming_the_field_and_files(runs, tmp_path, other, words):
    out = tmp_path / "m.json"
    line = one_line_refusal(cli("merge", runs["0of2"], runs[other], "-o", out), *words)
    assert str(runs["0of2"]) in line and str(runs[other]) in line
    assert not out.exists()


def test_a_merge_missing_planned_cases_is_interrupted_and_resume_runs_them(runs, tmp_path):
    part = tmp_path / "part.json"
    done = cli("merge", runs["0of2"], "-o", part)
    assert done.exit_code == 0 and "missing" in done.stderr
    merged = read_results(part)
    assert merged.status == "interrupted" and len(merged.cases) == 2
    resumed = cli("run", runs["suite"], "--quiet", "--resume", part)
    assert resumed.exit_code == 0, resumed.output
    after = read_results(part)
    assert after.status == "complete" and len(after.cases) == 4
    assert [entry["source"] for entry in after.options["merged_from"]] == [str(runs["0of2"])]  # kept on resume


def test_a_partial_merge_merged_with_the_missing_shard_is_complete(runs, tmp_path):
    assert cli("merge", runs["0of2"], "-o", tmp_path / "part.json").exit_code == 0
    done = cli("merge", tmp_path / "part.json", runs["1of2"], "-o", tmp_path / "all.json")
    assert done.exit_code == 0, done.output
    merged = read_results(tmp_path / "all.json")
    assert merged.status == "complete" and len(merged.cases) == 4
    assert [entry["shard"]["index"] for entry in merged.options["merged_from"]] == [0, 1]


def test_a_case_outside_the_recorded_plan_is_refused(runs, tmp_path):
    document = json.loads(runs["0of2"].read_text())
    document["options"]["filters"] = ["hidden_size=99"]  # a selection none of its cases is in
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    one_line_refusal(cli("merge", forged, "-o", tmp_path / "m.json"), "not in the plan")


def test_resume_refuses_another_rounds_or_nvtx(runs, tmp_path):
    done = cli("run", runs["suite"], "--quiet", "--resume", runs["0of2"], "--rounds", "2")
    one_line_refusal(done, "one round", "--rounds")


def wait_for_lines(path, count, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended before writing {count} lines: {process.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines")


def test_an_interrupted_run_in_rounds_is_not_resumed_as_one_round(runs, tmp_path):
    """A real run --rounds 3, interrupted after its first result: resuming it without --rounds (the suite sets
    no timing.rounds) must not mark it complete with cases of one round."""
    results = tmp_path / "ri.json"
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(runs["suite"]), "--quiet",
                                "--rounds", "3", "--out", str(results)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(journal_path_for(results), 2, process)  # the header and one round's case
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=300) == 130
    finally:
        if process.poll() is None:
            process.kill()
    before = read_results_or_journal(results)
    assert before.status == "interrupted" and before.options["rounds"] == 3
    for extra in ([], ["--rounds", "1"]):
        done = cli("run", runs["suite"], "--quiet", "--resume", results, *extra)
        one_line_refusal(done, "rounds cannot be resumed", "--rounds 3")
        after = read_results_or_journal(results)
        assert after.status == "interrupted" and after.options["rounds"] == 3
        assert after.options["round_orders"] == before.options["round_orders"]
