"""Rounds in fresh worker processes: seeded orders, results streamed as cases finish, failures said."""

import sys

import pytest

from harness.rounds import RoundFailed, round_order, run_round

SUITE = """\
name: rounds-test
device: cpu
threads: 1
timing: {warmup_iters: 1, min_iters: 3, budget_s: 0.01, profile_iters: 0}
grid:
  cell: [lstm, gru]
  backend: [cudnn]
  batch: [2]
  seq_len: [3]
  input_size: [4]
  hidden_size: [4]
"""
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
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    received = []
    outcome = run_round(3, str(suite), None, list(reversed(KEYS)), on_result=received.append)
    assert outcome.complete and outcome.index == 3
    assert [result["key"] for result in received] == list(reversed(KEYS))
    assert all(result["status"] == "ok" for result in received)
    assert outcome.environment["torch"]["version"]


def test_a_worker_that_dies_keeps_what_it_finished_and_says_why(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    received = []
    with pytest.raises(RoundFailed, match=r"0 of 2 cases.*not in the suite"):
        run_round(0, str(suite), None, [KEYS[0], KEYS[0].replace("B2", "B9")], on_result=received.append)
    assert received == []  # the plan is checked before any case runs


def test_an_interpreter_that_cannot_start_is_one_line(tmp_path):
    with pytest.raises(RoundFailed, match="cannot start"):
        run_round(0, str(tmp_path / "s.yaml"), None, KEYS, interpreter=[str(tmp_path / "no-python")])


def test_a_worker_without_rnnbench_importable_fails_with_its_last_stderr_line(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    with pytest.raises(RoundFailed, match="No module named"):
        run_round(0, str(suite), None, KEYS, interpreter=[sys.executable, "-S"])
