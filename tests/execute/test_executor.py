"""One way to run a case: the typed plan and options, the worker client and its environment rule, the executor's
endings, and the refusals that come before anything is created."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from harness.cli import main
from harness.execute.devices import parse_devices
from harness.errors import SuiteError
from harness.record.run_options import AbSide, RunOptions
from harness.execute.worker_client import WorkerFailed, WorkerPlan, check_worker_environment
from tests.synthetic_results import CPU_ENVIRONMENT
from tests.execute.test_rounds import KEYS
from tests.helpers import suite_file

# options as rnnbench wrote them before the typed record, key for key and in order
WRITTEN = [
    {"device": "cpu", "backends": [], "filters": []},
    {"device": "cuda:0", "backends": ["cudnn"], "filters": ["cell=lstm"], "shard": {"index": 1, "count": 4}},
    {"device": "cuda:0", "backends": [], "filters": [], "devices": [{"device": "cuda:0", "CUDA_VISIBLE_DEVICES": "0"},
                                                                    {"device": "cuda:1", "CUDA_VISIBLE_DEVICES": "3"}],
     "device_of_case": {"k1": "cuda:1 (worker 1)"}},
    {"device": "cpu", "backends": [], "filters": [], "nvtx": True},
    {"device": "cpu", "backends": [], "filters": [], "rounds": 2, "round_orders": [["k1", "k2"], ["k2", "k1"]],
     "planned_order": ["k1", "k2"]},
    {"device": None, "backends": [], "filters": [], "rounds": 5, "round_orders": [["k1"]] * 5, "planned_order": ["k1"],
     "interleaved": {"session": "abc", "side": "a", "blocks": 4}, "interpreter": "venv-a/bin/python"},
    {"device": "cpu", "backends": [], "filters": [], "rounds": 5, "round_orders": [["k1"]] * 5,
     "planned_order": ["k1"], "interleaved": {"session": "abc", "side": "b", "blocks": 2, "same_code_ok": True},
     "interpreter": "python"},
    {"interleaved": {"session": "s", "side": "a-again", "blocks": 4, "same_code_ok": True}},
    {"device": "cpu", "backends": [], "filters": [], "rounds": 3, "merged_from": [{"source": "a.json", "shard": None}],
     "merged_environment_differences": [{"source": "b.json", "label": "torch", "baseline": "1", "current": "2"}]},
    {"device": "cpu", "something_newer": {"x": 1}},
    {"interleaved": "not a mapping", "shard": "0/2"},
]


@pytest.mark.parametrize("document", WRITTEN)
def test_options_read_and_written_again_are_the_same_bytes(document):
    assert json.dumps(RunOptions.from_dict(document).to_dict()) == json.dumps(document)


def test_an_ab_side_is_recognised_through_one_property():
    side = RunOptions.from_dict(WRITTEN[6]).ab_side
    assert side == AbSide(session="abc", side="b", blocks=2, interpreter="python", same_code_ok=True)
    assert RunOptions.from_dict(WRITTEN[4]).ab_side is None
    assert RunOptions.from_dict(WRITTEN[-1]).ab_side is None  # malformed: kept as written, not an A/B


def test_a_worker_plan_is_the_plan_json_the_worker_reads():
    plan = WorkerPlan(suite="s.yaml", device="cpu", keys=None, measure_peak=False)
    assert plan.to_dict() == {"suite": "s.yaml", "device": "cpu", "keys": "stdin", "measure_peak": False}
    turns = WorkerPlan(suite="s.yaml", device=None, keys=("k1",), turns_blocks=3)
    assert turns.to_dict()["turns"] == {"blocks": 3} and WorkerPlan.from_dict(turns.to_dict()) == turns


def test_a_worker_in_another_environment_than_its_parent_is_refused():
    from harness.execute.worker import harness_root

    here = {"code": {"harness": {"path": f"{harness_root()}/harness"}}}
    parent = {**CPU_ENVIRONMENT, **here}
    check_worker_environment("round 0", parent, parent)
    other = {**parent, "torch": {**parent["torch"], "version": "0.0.1"}}
    with pytest.raises(WorkerFailed, match=r"round 0: runs in another environment .*torch: .* -> 0.0.1"):
        check_worker_environment("round 0", other, parent)
    with pytest.raises(WorkerFailed, match="imported harness from a place it does not report"):
        check_worker_environment("round 0", CPU_ENVIRONMENT, None)


SPEC = st.one_of(st.sampled_from(["cpu", "cuda", "all", "auto"]),
                 st.builds(lambda kind, index: f"{kind}:{index}", st.sampled_from(["cpu", "cuda", "auto"]),
                           st.integers(0, 3)))


@settings(max_examples=200, deadline=None)
@given(st.lists(SPEC, min_size=1, max_size=4), st.integers(0, 4))
def test_a_device_kind_is_never_changed(names, gpus):
    try:
        workers = parse_devices(",".join(names), lambda: gpus, visible="")
    except SuiteError:
        return
    expanded = [f"cuda:{i}" for i in range(gpus)] if names == ["all"] else names
    assert [w.requested.split(":")[0] for w in workers] == [n.split(":")[0] for n in expanded]
    assert [w.device.split(":")[0] for w in workers] == [n.split(":")[0] for n in expanded]


def test_cpu_with_an_index_is_refused_in_one_line():
    with pytest.raises(SuiteError, match="a CPU has no index"):
        parse_devices("cpu:0,cpu:1", lambda: 2, visible="")


@pytest.fixture
def suite(tmp_path):
    return suite_file(tmp_path)


def test_ab_refuses_before_creating_anything_when_one_file_is_there(suite, tmp_path):
    out = tmp_path / "ab"
    out.mkdir()
    (out / "b.json").write_text("{}")
    result = CliRunner().invoke(main, ["ab", str(suite), "--a", sys.executable, "--b", sys.executable,
                                       "-o", str(out), "--quiet"])
    assert result.exit_code == 2 and "b.json: exists" in result.output
    assert sorted(path.name for path in out.iterdir()) == ["b.json"]


@pytest.mark.parametrize("command, fragment", [("'x", "not a command line"), ("", "name an interpreter")])
def test_an_interpreter_command_that_cannot_be_one_is_one_line_and_exit_2(suite, tmp_path, command, fragment):
    result = CliRunner().invoke(main, ["ab", str(suite), "--a", command, "--b", sys.executable,
                                       "-o", str(tmp_path / "ab"), "--quiet"])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and fragment in result.output
    assert not (tmp_path / "ab").exists()


@pytest.mark.usefixtures("short_machine_window")
def test_devices_whose_workers_all_die_say_so_and_do_not_exit_as_interrupted(suite, tmp_path):
    from harness.errors import EXIT_FAILED
    from harness.execute.executor import execute, finish_run, open_writer
    from harness.execute.run_plan import plan_run
    from harness.report.run_text import run_ending_lines

    plan = plan_run(str(suite), devices="cpu,cpu", out=str(tmp_path / "r.json"))
    suite.unlink()  # the workers cannot open it: each dies before it takes a case
    writer = open_writer(plan)
    events = []
    outcome = execute(plan, writer, events.append)
    ending = finish_run(plan, writer, outcome)
    assert outcome.stopped_by == "workers" and ending.exit_code == EXIT_FAILED != 130
    assert ending.status == "interrupted" and len(ending.remaining) == len(KEYS)
    (line,) = run_ending_lines(plan, ending)
    assert "every --devices worker died" in line and "--resume" in line and "interrupted" not in line
    assert sum(type(event).__name__ == "WorkerLost" for event in events) == 2


@pytest.mark.usefixtures("short_machine_window")
def test_a_run_says_a_plain_line_per_case_when_stderr_is_not_a_terminal(tmp_path, monkeypatch):
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "set_num_threads", lambda count: None)  # the suite's threads: not for this process

    path = suite_file(tmp_path)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "  1/2 lstm/cudnn/" in result.stderr and "  2/2 gru/cudnn/" in result.stderr
    quiet = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "q.json"), "--quiet"])
    assert "1/2" not in quiet.stderr
    assert torch.get_num_threads() == threads
