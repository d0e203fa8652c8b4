"""rnnbench ab: processes that take turns on one machine, block by block, and the paired gate over them."""

import io
import json
import math
import os
import sys
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from harness.gate.compare import compare_runs
from harness.gate.ratios import MIN_PAIRED_ROUNDS, paired_round_ratio
from harness.record.results import CaseResult, RunResults
from harness.execute.rounds import RoundFailed, run_interleaved_round
from harness.measure.timing import CaseTimeout, measure
from tests.helpers import QUICK_TIMING, cpu_settings, suite_file, tiny_case
from tests.synthetic_results import CPU_ENVIRONMENT, SUITE as SYNTHETIC_SUITE
from tests.helpers import make_case
from tests.execute.test_rounds import KEYS

# the rounds tests' suite, with enough iterations for a few blocks
TURNS_TIMING = {"min_iters": 4}

# A stand-in worker for the parent's scheduler: speaks the worker protocol, and logs when it computes.
FAKE_WORKER = """\
import json, sys, time
log, plan = sys.argv[1], json.load(open(sys.argv[-1]))
side = log.rsplit("-", 1)[-1]
def say(message):
    print(json.dumps(message), flush=True)
def compute(what):
    with open(log, "a") as handle:
        handle.write(f"{time.perf_counter()} start {what}\\n")
    time.sleep(0.02)
    with open(log, "a") as handle:
        handle.write(f"{time.perf_counter()} end {what}\\n")
say({"type": "environment", "environment": {"side": side}})
for key in plan["keys"]:
    say({"type": "turn", "key": key, "phase": "prepare", "block": None}); sys.stdin.readline()
    compute(key + " prepare")
    for block in range(plan["turns"]["blocks"]):
        say({"type": "turn", "key": key, "phase": "block", "block": block}); sys.stdin.readline()
        compute(f"{key} block {block}")
    say({"type": "result", "result": {"key": key}})
say({"type": "done"})
"""


def test_the_timed_loop_in_blocks_waits_for_its_turn_before_each_and_the_wait_is_not_its_time(monkeypatch):
    case = tiny_case()
    from harness.measure import timing as timing_module
    from harness.measure.runner import prepare_case

    prepared = prepare_case(case, cpu_settings())
    # The other side's turns pass on the loop's clock without sleeping: 100 s a wait, against a 50 s deadline
    # that the real warm-up and blocks never reach, however loaded the machine. Event-driven, not slept.
    waited_s = [0.0]
    loop_clock = SimpleNamespace(perf_counter=lambda: time.perf_counter() + waited_s[0],
                                 perf_counter_ns=time.perf_counter_ns)
    monkeypatch.setattr(timing_module, "time", loop_clock)
    waits = []

    def wait_turn(block, said_s=None):
        waits.append(block)
        waited_s[0] += 100.0
        return 100.0 if said_s is None else said_s

    timing = replace(QUICK_TIMING, min_iters=8, max_iters=1000, budget_s=0.02)
    measured = measure(prepared.work, prepared.clock, timing, deadline=loop_clock.perf_counter() + 50.0, blocks=4,
                       wait_turn=wait_turn)
    assert waits == [0, 1, 2, 3]
    assert len(measured.samples_ms["step"]) >= 8
    # each block's count is kept, so the gate can pair A's block k with B's block k of the same turn
    assert len(measured.block_lengths) == 4 and all(count >= 2 for count in measured.block_lengths)
    assert sum(measured.block_lengths) == len(measured.samples_ms["step"]) == len(measured.samples_ms["forward"])
    assert measure(prepared.work, prepared.clock, timing).block_lengths == ()  # one block: nothing to record
    assert measured.loop_s < 50.0  # the blocks' own time, not the 400 s of waiting
    with pytest.raises(CaseTimeout, match="after 1 timed iterations"):  # the same waits, said to be none
        measure(prepared.work, prepared.clock, timing, deadline=loop_clock.perf_counter() + 50.0, blocks=4,
                wait_turn=lambda block: wait_turn(block, said_s=0.0))


@pytest.mark.usefixtures("short_machine_window")
def test_a_worker_taking_turns_asks_before_it_builds_and_before_each_block(tmp_path):
    from harness.execute.worker import run_plan

    suite = suite_file(tmp_path, timing=TURNS_TIMING)
    messages = []
    commands = io.StringIO("go\n" * 20)
    run_plan({"suite": str(suite), "device": "cpu", "keys": KEYS[:1], "turns": {"blocks": 3}}, messages.append,
             commands)
    kinds = [(m["type"], m.get("phase"), m.get("block")) for m in messages]
    assert kinds == [("environment", None, None), ("turn", "prepare", None), ("turn", "block", 0),
                     ("turn", "block", 1), ("turn", "block", 2), ("result", None, None), ("done", None, None)]
    result = CaseResult.from_dict(messages[-2]["result"])
    assert result.ok and len(result.samples_ms["step"]) >= 4
    # the sides start together: no peak is measured while another process may share the device
    assert "A/B" in messages[0]["environment"]["measured_peak"]["error"]
    assert result.telemetry.get("enabled") is False or not result.telemetry.get("samples")


def test_a_worker_told_anything_but_go_stops_with_one_line():
    from harness.execute.worker import Turns

    turns = Turns(2, lambda message: None, io.StringIO("stop\n"))
    with pytest.raises(SystemExit, match="expected 'go'"):
        turns.wait("key", "prepare")


def test_the_parent_lets_one_process_compute_at_a_time_and_alternates_the_blocks(tmp_path):
    fake = tmp_path / "fake_worker.py"
    fake.write_text(FAKE_WORKER)
    sides = {side: [sys.executable, str(fake), str(tmp_path / f"log-{side}")] for side in ("a", "b")}
    results = []
    run_interleaved_round(1, "unused.yaml", None, ["k1", "k2"], sides, blocks=3,
                          on_result=lambda side, document: results.append((side, document["key"])))
    events = []
    for side in sides:
        for line in (tmp_path / f"log-{side}").read_text().splitlines():
            stamp, kind, what = line.split(" ", 2)
            events.append((float(stamp), kind, side, what))
    events.sort()
    running = []
    for _, kind, side, what in events:
        if kind == "start":
            assert not running, f"{side} started {what} while {running} computed"
            running.append((side, what))
        else:
            running.remove((side, what))
    blocks = [(side, what) for _, kind, side, what in events if kind == "start" and "block" in what]
    # round 1 is odd: B goes first; then block by block the order flips
    assert [side for side, what in blocks if what.startswith("k1")] == ["b", "a", "a", "b", "b", "a"]
    assert sorted(results) == [("a", "k1"), ("a", "k2"), ("b", "k1"), ("b", "k2")]


def test_a_worker_that_dies_while_taking_turns_is_a_round_failed_with_its_last_line(tmp_path):
    suite = suite_file(tmp_path, timing=TURNS_TIMING)
    fake = tmp_path / "fake_worker.py"
    fake.write_text(FAKE_WORKER)  # side A: a worker that takes its turns (a real one only costs a torch import)
    with pytest.raises(RoundFailed, match=r"round 0 B: .*No module named"):
        run_interleaved_round(0, str(suite), None, KEYS, {"a": [sys.executable, str(fake), str(tmp_path / "log-a")],
                                                          "b": [sys.executable, "-S"]}, blocks=2)


def _round_samples(rng, median_ms, shifts, n=30):
    return [tuple(float(v) for v in median_ms * shift * np.exp(rng.normal(0, 0.01, n))) for shift in shifts]


def _run(case, rounds, side, session="s1"):
    lengths = {"step": tuple(len(r) for r in rounds)}
    samples = tuple(s for r in rounds for s in r)
    result = CaseResult(case=case, status="ok", samples_ms={"step": samples}, round_lengths=lengths)
    options = {"interleaved": {"session": session, "side": side, "blocks": 4}} if session else {}
    return RunResults(environment=dict(CPU_ENVIRONMENT), suite=dict(SYNTHETIC_SUITE), cases=(result,),
                      options=options)


def test_paired_rounds_see_a_real_slowdown_through_drift_that_hides_it_from_unpaired_rounds():
    rng = np.random.default_rng(0)
    drift = [1.0, 1.25, 0.85, 1.15, 0.9]  # the machine's speed, round by round, the same for both sides
    case = make_case()
    a = _round_samples(rng, 2.0, drift)
    b = _round_samples(rng, 2.0 * 1.2, drift)
    paired = compare_runs(_run(case, a, "a"), _run(case, b, "b"))
    assert paired.pairs[0].verdict == "regression"
    assert paired.pairs[0].ratio == pytest.approx(1.2, rel=0.02)
    # the change shown is exactly the ratio of the two ms shown
    assert paired.pairs[0].ratio == pytest.approx(paired.pairs[0].current_ms / paired.pairs[0].baseline_ms)
    unpaired = compare_runs(_run(case, a, "a", session=None), _run(case, b, "b", session=None))
    assert unpaired.pairs[0].verdict != "regression"
    same = compare_runs(_run(case, a, "a"), _run(case, _round_samples(rng, 2.0, drift), "b"))
    assert same.pairs[0].verdict == "unchanged"


def test_two_runs_of_different_sessions_or_the_same_side_are_not_paired():
    from harness.gate.compare import took_turns

    case = make_case()
    rounds = _round_samples(np.random.default_rng(1), 1.0, [1, 1, 1])
    assert took_turns(_run(case, rounds, "a"), _run(case, rounds, "b"))
    assert not took_turns(_run(case, rounds, "a"), _run(case, rounds, "b", session="s2"))
    assert not took_turns(_run(case, rounds, "a"), _run(case, rounds, "a"))


def test_the_paired_interval_and_p_are_the_paired_t_tests_of_the_log_round_medians():
    from scipy import stats

    rng = np.random.default_rng(2)
    base = [list(rng.normal(10, 0.2, 25)) for _ in range(6)]
    other = [list(np.asarray(r) * 1.07 * np.exp(rng.normal(0, 0.03))) for r in base]
    ratio, p = paired_round_ratio(base, other, alpha=0.05)
    logs_b = np.log([np.median(r) for r in base])
    logs_o = np.log([np.median(r) for r in other])
    assert p == pytest.approx(stats.ttest_rel(logs_o, logs_b).pvalue)
    interval = stats.t.interval(0.95, 5, loc=np.mean(logs_o - logs_b), scale=stats.sem(logs_o - logs_b))
    assert (ratio.low, ratio.high) == pytest.approx(tuple(math.exp(v) for v in interval))
    assert ratio.value == pytest.approx(math.exp(np.mean(logs_o - logs_b)))


def test_too_few_rounds_give_no_paired_interval_and_identical_sides_are_unchanged():
    rounds = [[1.0, 1.1], [1.2, 1.3]]
    assert MIN_PAIRED_ROUNDS == 3
    ratio, p = paired_round_ratio(rounds, rounds)
    assert not ratio.has_ci and p == 1.0
    same, p_same = paired_round_ratio(rounds * 2, rounds * 2)
    assert same.value == 1.0 and p_same == 1.0
    with pytest.raises(ValueError):
        paired_round_ratio(rounds, rounds * 2)


def test_ab_takes_turns_writes_paired_files_and_says_so(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main
    from harness.record.results_store import read_results

    suite = suite_file(tmp_path, timing=TURNS_TIMING, grid={"cell": ["gru"]})
    result = CliRunner().invoke(main, ["ab", str(suite), "--a", sys.executable, "--b", sys.executable,
                                       "--rounds", "3", "--blocks", "2", "-o", str(tmp_path / "ab"), "--quiet"])
    assert result.exit_code in (0, 1), result.output
    a, b = read_results(tmp_path / "ab" / "a.json"), read_results(tmp_path / "ab" / "b.json")
    assert a.options["interleaved"]["session"] == b.options["interleaved"]["session"]
    assert (a.options["interleaved"]["side"], b.options["interleaved"]["side"]) == ("a", "b")
    assert a.cases[0].round_count == 3 and all(length >= 4 for length in a.cases[0].round_lengths["step"])
    for side in (a, b):  # 2 blocks in each of the 3 rounds, every round's blocks adding up to that round
        blocks = side.cases[0].samples_by_block("step")
        assert [len(round_blocks) for round_blocks in blocks] == [2, 2, 2]
        assert [sum(len(block) for block in round_blocks) for round_blocks in blocks] == list(
            side.cases[0].round_lengths["step"])
        assert [s for round_blocks in blocks for block in round_blocks for s in block] == list(
            side.cases[0].samples_ms["step"])
    # each side's file keeps that side's machine state per round; its parent (this process) is not a neighbour
    for side in (a, b):
        states = side.environment.machine_states
        assert [where for where, _ in states] == ["round 1", "round 2", "round 3"]
        assert all(os.getpid() not in [p.pid for p in state.busiest] for _, state in states)
    assert "paired by block" in result.output and "side B of an A/B, 2 blocks" in result.output
    # one interpreter, one PYTHONPATH for both sides: ab says on the terminal and in the header that it is an A/A
    assert "rnnbench: WARNING: A and B run the same code: an A/A comparison" in result.output
    assert "warning: A and B run the same code: an A/A comparison" in result.output
    assert a.environment.harness_path == b.environment.harness_path
    json.loads((tmp_path / "ab" / "a.json").read_text())  # a finished, well-formed file


def test_a_worker_that_does_not_take_turns_is_refused_before_its_numbers_count(tmp_path):
    fake = tmp_path / "old_worker.py"
    fake.write_text('import json\nprint(json.dumps({"type": "environment", "environment": {}}))\n'
                    'print(json.dumps({"type": "result", "result": {"key": "k1"}}))\nprint(json.dumps({"type": "done"}))\n')
    with pytest.raises(RoundFailed, match="does not take turns"):
        run_interleaved_round(0, "unused.yaml", None, ["k1"], {"a": [sys.executable, str(fake)],
                                                              "b": [sys.executable, str(fake)]}, blocks=2)


def test_ab_with_an_interpreter_that_cannot_start_is_one_line_and_exit_2(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main

    suite = suite_file(tmp_path, timing=TURNS_TIMING)
    result = CliRunner().invoke(main, ["ab", str(suite), "--a", str(tmp_path / "no-python"), "--b", sys.executable,
                                       "--rounds", "3", "-o", str(tmp_path / "ab"), "--quiet"])
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert "cannot start" in last and "nothing was measured" in last and "Traceback" not in result.output


def test_the_comparison_method_is_named_once_and_says_what_each_sides_time_is():
    from harness.gate.compare import ComparisonMethod, comparison_method

    rng = np.random.default_rng(2)
    case = make_case()
    a, b = _round_samples(rng, 2.0, [1, 1.1, 0.9]), _round_samples(rng, 2.2, [1, 1.1, 0.9])
    paired = compare_runs(_run(case, a, "a"), _run(case, b, "b"))
    rounds = compare_runs(_run(case, a, "a", session=None), _run(case, b, "b", session=None))
    single = compare_runs(_run(case, a[:1], "a", session=None), _run(case, b[:1], "b", session=None))
    uneven = compare_runs(_run(case, a, "a"), _run(case, b[:2], "b"))  # took turns, but not as many rounds
    assert [c.pairs[0].method for c in (paired, rounds, single, uneven)] == [
        ComparisonMethod.PAIRED_BY_ROUND, ComparisonMethod.TWO_LEVEL_BOOTSTRAP,
        ComparisonMethod.SINGLE_ROUND_BOOTSTRAP, ComparisonMethod.TWO_LEVEL_BOOTSTRAP]
    assert [c.method for c in (paired, rounds, single)] == [p.pairs[0].method for p in (paired, rounds, single)]
    assert "paired by round" in comparison_method(paired) and "two-level" in comparison_method(rounds)
    assert "two-level" not in comparison_method(single)
    pair = paired.pairs[0]
    assert pair.method.side_statistic == "geometric mean of round medians"
    medians = [float(np.median(r)) for r in a]
    assert pair.baseline_ms == pytest.approx(float(np.exp(np.mean(np.log(medians)))))
    assert rounds.pairs[0].baseline_ms == pytest.approx(float(np.median(medians)))
    assert rounds.pairs[0].method.side_statistic == "median of round medians"
    assert single.pairs[0].baseline_ms == pytest.approx(float(np.median(a[0])))
    assert single.pairs[0].method.side_statistic == "median of samples"
