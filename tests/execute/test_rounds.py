"""Rounds in fresh worker processes: seeded orders, results streamed as cases finish, failures said."""

from dataclasses import replace
import os
import sys
from pathlib import Path

import pytest

from harness.execute.rounds import RoundFailed, round_order, run_round
from tests.helpers import suite_file

KEYS = ["lstm/cudnn/forward_backward/B2-T3-I4-H4-L1/float32/cpu",
        "gru/cudnn/forward_backward/B2-T3-I4-H4-L1/float32/cpu"]


def test_round_orders_are_seeded_shuffles_that_differ_between_rounds():
    keys = [f"case{i}" for i in range(20)]
    assert round_order(keys, seed=0, round_index=1) == round_order(keys, seed=0, round_index=1)
    assert sorted(round_order(keys, 0, 1)) == sorted(keys)
    orders = {tuple(round_order(keys, 0, index)) for index in range(5)}
    assert len(orders) == 5
    assert round_order(keys, 1, 0) != round_order(keys, 0, 0)


def test_a_round_runs_in_a_fresh_process_in_the_given_order_and_streams_results(tmp_path):
    suite = suite_file(tmp_path)
    received = []
    outcome = run_round(3, str(suite), None, list(reversed(KEYS)), on_result=received.append)
    assert outcome.complete and outcome.index == 3
    assert [result["key"] for result in received] == list(reversed(KEYS))
    assert all(result["status"] == "ok" for result in received)
    assert outcome.environment["torch"]["version"]


def test_a_worker_that_dies_keeps_what_it_finished_and_says_why(tmp_path):
    suite = suite_file(tmp_path)
    received = []
    with pytest.raises(RoundFailed, match=r"0 of 2 cases.*not in the suite"):
        run_round(0, str(suite), None, [KEYS[0], KEYS[0].replace("B2", "B9")], on_result=received.append)
    assert received == []  # the plan is checked before any case runs


def test_an_interpreter_that_cannot_start_is_one_line(tmp_path):
    with pytest.raises(RoundFailed, match="cannot start"):
        run_round(0, str(tmp_path / "s.yaml"), None, KEYS, interpreter=[str(tmp_path / "no-python")])


def test_a_worker_without_rnnbench_importable_fails_with_its_last_stderr_line(tmp_path):
    suite = suite_file(tmp_path)
    with pytest.raises(RoundFailed, match="No module named"):
        run_round(0, str(suite), None, KEYS, interpreter=[sys.executable, "-S"])


def test_the_gate_sees_what_varies_between_processes_where_one_round_cannot():
    import numpy as np

    from harness.gate.ratios import hierarchical_ratio, ratio_interval

    rng = np.random.default_rng(3)

    def rounds(shift_sd, scale=1.0):
        return [list(scale * (1 + rng.normal(0, shift_sd)) * (10 + rng.normal(0, 0.05, 200))) for _ in range(6)]

    one_round_alarms = two_level_alarms = 0
    for _ in range(20):  # unchanged code; each process shifts the times by ~8 %
        base, current = rounds(0.08), rounds(0.08)
        low, high = ratio_interval(base[0], current[0], 0.05)
        one_round_alarms += not (low <= 1 <= high)
        interval, p = hierarchical_ratio(base, current, resamples=500)
        two_level_alarms += p < 0.05
    assert one_round_alarms >= 15 and two_level_alarms <= 2
    slowed, p_slow = hierarchical_ratio(rounds(0.01), rounds(0.01, scale=1.3))
    assert slowed.low > 1.2 and p_slow < 0.01


def test_merge_rounds_keeps_every_sample_and_the_median_of_round_medians():
    from harness.record.merge import merge_rounds
    from tests.synthetic_results import case_result
    from tests.helpers import make_case

    rounds = [case_result(make_case(), times).to_dict() for times in ((1.0, 1.1, 1.2), (2.0, 2.1, 2.2), (3.0, 3.2))]
    merged = merge_rounds(rounds)
    assert merged.round_count == 3 and merged.samples_by_round("step")[1] == (2.0, 2.1, 2.2)
    assert merged.median_ms("step") == 2.1
    assert len(merged.samples_ms["step"]) == 8
    failed = dict(rounds[1], status="failed", reason="boom")
    assert merge_rounds([rounds[0], failed]).reason == "round 1: boom"


def test_merged_rounds_keep_their_blocks_only_when_every_round_had_them():
    from harness.record.merge import merge_rounds
    from tests.helpers import make_case
    from tests.synthetic_results import case_result

    first = dict(case_result(make_case(), (1.0, 1.1, 1.2)).to_dict(), block_lengths=[1, 2])
    second = dict(case_result(make_case(), (2.0, 2.1)).to_dict(), block_lengths=[1, 1])
    merged = merge_rounds([first, second])
    assert merged.block_lengths == (1, 2, 1, 1)
    assert merged.samples_by_block("step") == [[(1.0,), (1.1, 1.2)], [(2.0,), (2.1,)]]
    without = case_result(make_case(), (2.0, 2.1)).to_dict()
    assert merge_rounds([first, without]).block_lengths == ()
    assert merge_rounds([first, without]).samples_by_block("step") is None
    # counts that do not add up to a round are no blocks at all, not blocks that straddle two rounds
    assert replace(merged, block_lengths=(2, 2, 1)).samples_by_block("step") is None
    assert replace(merged, block_lengths=(1, 2, 1, 1, 1)).samples_by_block("step") is None  # one too many


@pytest.mark.usefixtures("short_machine_window")
def test_a_run_in_rounds_writes_one_result_per_case_and_compare_says_how_many_rounds(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main
    from harness.record.results_store import read_results

    suite = suite_file(tmp_path)
    path = tmp_path / "a.json"
    result = CliRunner().invoke(main, ["run", str(suite), "--rounds", "2", "--quiet", "--out", str(path)])
    assert result.exit_code == 0, result.output
    paths = [path, path]
    run = read_results(path)
    assert [case.key for case in run.cases] == KEYS and all(case.round_count == 2 for case in run.cases)
    assert run.options["rounds"] == 2 and len(run.options["round_orders"]) == 2
    # each round's worker read the machine as it started; its parent (this process) is not its neighbour
    assert [where for where, _ in run.environment.machine_states] == ["round 1", "round 2"]
    assert all(os.getpid() not in [p.pid for p in state.busiest] for _, state in run.environment.machine_states)
    result = CliRunner().invoke(main, ["compare", *map(str, paths)])
    assert result.exit_code == 0, result.output  # a file against itself: every case unchanged
    assert "2 rounds)" in result.output and "two-level bootstrap" in result.output
    assert "had one round" not in result.output


def test_ab_alternates_two_interpreters_and_gates_b_against_a(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main
    from harness.record.results_store import read_results

    suite = suite_file(tmp_path, grid={"cell": ["lstm"]})
    result = CliRunner().invoke(main, ["ab", str(suite), "--a", sys.executable, "--b", sys.executable,
                                       "--rounds", "2", "-o", str(tmp_path / "ab"), "--quiet", "--markdown",
                                       "--same-code-ok"])
    assert result.exit_code in (0, 1), result.output
    a, b = read_results(tmp_path / "ab" / "a.json"), read_results(tmp_path / "ab" / "b.json")
    assert a.options["interpreter"] == sys.executable and a.cases[0].round_count == 2 == b.cases[0].round_count
    assert (tmp_path / "ab" / "comparison.md").exists() and "2 rounds, side A of an A/B" in result.output
    # an A/A asked for: recorded in both files, said as a note, not warned about
    assert a.options["interleaved"]["same_code_ok"] is True is b.options["interleaved"]["same_code_ok"]
    # asked for, the A/A is a note, not a warning (a busy machine may still warn: that is another line)
    assert "WARNING: A and B run the same code" not in result.output
    assert "note: A and B run the same code: an A/A comparison" in result.output


def _calibration_shim(monkeypatch, fraction: str | None):
    """benchmarks/calibration_shim/sitecustomize.py loaded in this process as Python loads it at a start with its
    folder on PYTHONPATH and RNNBENCH_INJECT_SLOWDOWN=``fraction`` (None: unset); what it patches is restored
    after the test."""
    import importlib.util

    import harness.measure.runner as runner

    monkeypatch.setenv("RNNBENCH_INJECT_SLOWDOWN", "set by the test")  # so that monkeypatch restores what was there
    if fraction is None:
        monkeypatch.delenv("RNNBENCH_INJECT_SLOWDOWN")
    else:
        monkeypatch.setenv("RNNBENCH_INJECT_SLOWDOWN", fraction)
    monkeypatch.setattr(runner, "build_backend", runner.build_backend)  # the shim replaces it; put back after
    path = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "calibration_shim" / "sitecustomize.py"
    spec = importlib.util.spec_from_file_location("calibration_sitecustomize", path)
    shim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shim)
    return shim


def test_the_calibration_shim_really_runs_more_of_the_model_per_step(monkeypatch):
    import torch

    import harness.measure.runner as r
    from tests.helpers import cpu_settings, tiny_case

    _calibration_shim(monkeypatch, "0.2")
    case = tiny_case(seq_len=10)
    built = r.build_backend("cudnn", r.make_reference(case, cpu_settings()))
    x = torch.randn(10, 3, 5)
    for _ in range(3):
        built.model(x)  # the third call measures how much to add (untimed: warm-up)
    lengths, forward = [], torch.nn.LSTM.forward
    monkeypatch.setattr(torch.nn.LSTM, "forward",
                        lambda self, x, *a: (lengths.append((x.size(0), torch.is_grad_enabled())), forward(self, x, *a))[1])
    built.model(x)
    sized = built.injected_extra_steps
    *extra, step = lengths
    assert step == (10, True)  # then the step's own forward, with gradients
    assert extra and all(not grad for _, grad in extra)  # no-grad forwards over part of the sequence first
    # exactly the time steps the sizing chose, in chunks of at most the sequence; how many it chose depends on
    # the measured step/forward ratio (the machine's load), so its arithmetic is checked apart, below
    assert len(sized) == 1 and sum(n for n, _ in extra) == sized[0] >= 1
    assert all(n <= 10 for n, _ in extra)


def test_the_calibration_shims_sizing_is_the_fraction_of_a_step_in_forward_time_steps(monkeypatch):
    import harness.measure.runner as runner

    unpatched = runner.build_backend
    shim = _calibration_shim(monkeypatch, None)
    assert runner.build_backend is unpatched  # without RNNBENCH_INJECT_SLOWDOWN it patches nothing
    # a step of three forwards' time: +20 % of it is 0.6 forwards, 6 of 10 time steps
    assert shim.extra_forward_steps(0.2, step_s=3e-3, forward_s=1e-3, seq_len=10) == 6
    assert shim.extra_forward_steps(0.1, step_s=2e-3, forward_s=1e-3, seq_len=50) == 10
    assert shim.extra_forward_steps(0.01, step_s=1e-3, forward_s=1e-3, seq_len=10) == 1  # never nothing
