"""Where a step's time goes: interval arithmetic on traces, and the real profiled pass on small cases."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.measure.activity import (ITERATION_RANGE, launch_bound_note, profile_activity, summarize_trace,
                              top_level_spans, union_length)
from harness.measure.runner import prepare_case, run_case
from tests.helpers import cpu_settings, tiny_case

intervals = st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)).map(sorted).map(tuple), max_size=30)


@given(intervals)
def test_union_length_counts_every_covered_point_once(spans):
    covered = set()
    for begin, end in spans:
        covered.update(range(begin, end))
    assert union_length(spans) == len(covered)


def test_union_length_ignores_empty_and_inverted_intervals():
    assert union_length([(5, 5), (9, 3)]) == 0
    assert union_length([]) == 0


def _event(cat, name, ts, dur, tid=1):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "tid": tid}


def _two_iteration_gpu_trace():
    return [
        _event("user_annotation", ITERATION_RANGE, 0, 100),
        _event("user_annotation", ITERATION_RANGE, 200, 100),
        # iteration 1: two overlapping kernels (10-40, 30-50) and a memset (60-70): busy 50 us
        _event("kernel", "k1", 10, 30, tid=7), _event("kernel", "k2", 30, 20, tid=8),
        _event("gpu_memset", "m", 60, 10, tid=7),
        # iteration 2: one kernel of 20 us
        _event("kernel", "k3", 250, 20, tid=7),
        # between iterations: neither counted nor attributed
        _event("kernel", "stray", 150, 30, tid=7),
        _event("cpu_op", "aten::lstm", 1, 90), _event("cpu_op", "aten::addmm", 2, 10),
        _event("cpu_op", "aten::mse_loss", 201, 5), _event("cpu_op", "aten::add", 210, 5),
    ]


def test_summarize_trace_takes_busy_time_kernels_and_operators_per_iteration():
    summary = summarize_trace(_two_iteration_gpu_trace(), on_gpu=True)
    assert summary["available"] and summary["iterations"] == 2
    assert summary["profiled_wall_ms"] == pytest.approx(0.1)
    assert summary["gpu_busy_ms"] == pytest.approx((0.05 + 0.02) / 2)  # median of two iterations
    assert summary["kernels_per_step"] == pytest.approx(1.5)
    assert summary["operators_per_step"] == pytest.approx(1.5)  # aten::addmm runs inside aten::lstm
    assert summary["gpu_idle_fraction"] == pytest.approx(1 - 0.035 / 0.1)


def test_idle_fraction_is_taken_against_the_timed_step_when_given():
    summary = summarize_trace(_two_iteration_gpu_trace(), on_gpu=True, timed_step_ms=0.07)
    assert summary["gpu_idle_fraction"] == pytest.approx(0.5)
    assert summary["idle_against"] == "timed median step"


def test_a_trace_without_iterations_is_reported_unavailable():
    summary = summarize_trace([_event("kernel", "k", 0, 1)], on_gpu=True)
    assert summary["available"] is False and ITERATION_RANGE in summary["reason"]


def test_top_level_spans_skip_nested_operators_per_thread():
    events = [_event("cpu_op", "outer", 0, 10, tid=1), _event("cpu_op", "inner", 2, 3, tid=1),
              _event("cpu_op", "other-thread", 4, 2, tid=2), _event("cpu_op", "next", 10, 1, tid=1)]
    assert top_level_spans(events) == [0, 10, 4]


def test_launch_bound_note_only_when_the_gpu_idles_most_of_the_step():
    assert launch_bound_note({"gpu_idle_fraction": 0.91}) == "launch-bound: GPU idle 91%"
    assert launch_bound_note({"gpu_idle_fraction": 0.2}) is None
    assert launch_bound_note({"gpu_busy_ms": None}) is None


def test_real_cpu_pass_counts_operators_and_says_why_gpu_figures_are_absent():
    settings = cpu_settings()
    counts = {}
    for backend in ("cudnn", "eager"):
        prepared = prepare_case(tiny_case(backend=backend, seq_len=6), settings)
        activity = profile_activity(prepared.work, prepared.clock, "cpu", iterations=2)
        assert activity["available"], activity
        assert activity["iterations"] == 2 and activity["profiled_wall_ms"] > 0
        assert activity["gpu_busy_ms"] is None and "CPU" in activity["absent"]["gpu_busy_ms"]
        counts[backend] = activity["operators_per_step"]
    # the gate-level backend dispatches operators for every time step; nn.LSTM dispatches one fused layer
    assert counts["eager"] > 2 * counts["cudnn"] > 0


def test_run_records_activity_from_a_pass_after_the_timed_loop():
    result = run_case(tiny_case(), cpu_settings())
    assert result.ok and result.activity["available"]
    assert result.activity["iterations"] == cpu_settings().timing.profile_iters
    from harness.record.results import CaseResult

    assert CaseResult.from_dict(result.to_dict()).activity == result.activity


@pytest.mark.gpu
def test_real_cuda_pass_measures_busy_time_launches_and_idle():
    from dataclasses import replace

    settings = cpu_settings(device=torch.device("cuda", 0))
    settings = replace(settings, timing=replace(settings.timing, profile_iters=3))
    idle = {}
    for backend in ("cudnn", "eager"):
        result = run_case(tiny_case(backend=backend, device_type="cuda", batch=8, seq_len=16, hidden_size=64),
                          settings)
        assert result.ok, result.reason
        activity = result.activity
        assert activity["available"], activity
        assert activity["kernels_per_step"] >= 1
        assert 0 < activity["gpu_busy_ms"] <= activity["profiled_wall_ms"]
        assert 0 <= activity["gpu_idle_fraction"] <= 1
        idle[backend] = activity["gpu_idle_fraction"]
    assert idle["eager"] > idle["cudnn"] - 0.05  # per-step launches leave the GPU waiting at least as long


def _first_sessions(monkeypatch, environment_value):
    """TEARDOWN_CUPTI as each profiler session of two cases starts, in this process as a fresh one finds it:
    the variable the user set (``environment_value``, None: unset) and nothing rnnbench set before (an earlier
    test's profiled pass sets it in this process; monkeypatch restores it after). The cases' statuses and the
    first case's fact, as a results file records them."""
    import os

    import torch.profiler.profiler as kineto

    monkeypatch.setenv("TEARDOWN_CUPTI", "unset by the test")  # so that monkeypatch restores what was there
    if environment_value is None:
        monkeypatch.delenv("TEARDOWN_CUPTI")
    else:
        monkeypatch.setenv("TEARDOWN_CUPTI", environment_value)
    seen = []
    prepare = kineto._KinetoProfile.prepare_trace

    def spy(self):
        seen.append(os.environ.get("TEARDOWN_CUPTI", "unset"))
        return prepare(self)

    monkeypatch.setattr(kineto._KinetoProfile, "prepare_trace", spy)
    first = run_case(tiny_case(), cpu_settings())
    second = run_case(tiny_case(backend="eager"), cpu_settings())
    return {"seen": seen, "statuses": [first.status, second.status],
            "fact": first.activity.get("profiler_teardown")}


def test_cupti_teardown_is_asked_for_before_the_first_profiler_session_of_a_process(monkeypatch):
    from harness.measure.activity import _cupti_teardown_is_safe

    if not _cupti_teardown_is_safe():
        pytest.skip("this torch's CUDA runtime is too old for CUPTI teardown")
    report = _first_sessions(monkeypatch, None)
    assert report["statuses"] == ["ok", "ok"]
    # every session, the first included, starts with the variable Kineto reads when the session ends
    assert report["seen"] == ["1", "1"]
    assert report["fact"] == "not needed: no CUPTI on a CPU"


def test_a_teardown_setting_of_the_user_is_kept(monkeypatch):
    report = _first_sessions(monkeypatch, "0")
    assert report["seen"] == ["0", "0"]


def test_the_teardown_fact_says_what_a_cuda_session_left_behind(monkeypatch):
    from harness.measure.activity import profiler_teardown_fact

    monkeypatch.setenv("TEARDOWN_CUPTI", "1")
    assert profiler_teardown_fact("cuda") == "TEARDOWN_CUPTI=1"
    monkeypatch.setenv("TEARDOWN_CUPTI", "0")
    assert profiler_teardown_fact("cuda").startswith("none (TEARDOWN_CUPTI=0): CUPTI stays attached")


@pytest.mark.gpu
def test_a_cuda_run_records_that_cupti_was_torn_down_after_its_pass():
    import os

    if os.environ.get("TEARDOWN_CUPTI", "1") != "1":
        pytest.skip("TEARDOWN_CUPTI set otherwise by the user")
    result = run_case(tiny_case(device_type="cuda"), cpu_settings(device=torch.device("cuda", 0)))
    assert result.ok, result.reason
    assert result.activity["profiler_teardown"] == "TEARDOWN_CUPTI=1"


def test_the_profiled_pass_runs_by_default_on_a_gpu_only_and_where_a_suite_asks():
    from harness.spec.suite import Timing, profile_iters_for

    assert profile_iters_for(Timing(), "cuda") == 5
    assert profile_iters_for(Timing(), "cpu") == 0
    assert profile_iters_for(Timing(profile_iters=2), "cpu") == 2
    assert profile_iters_for(Timing(profile_iters=0), "cuda") == 0


def test_a_cpu_run_with_the_default_timing_records_no_profiled_pass():
    from dataclasses import replace

    settings = cpu_settings()
    result = run_case(tiny_case(), replace(settings, timing=replace(settings.timing, profile_iters=None)))
    assert result.ok and result.activity == {}
