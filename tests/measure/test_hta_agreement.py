"""rnnbench's GPU busy/idle arithmetic against an independent tool, HolisticTraceAnalysis (HTA), on a real trace
of a GPU (tests/data/hta: two ProfilerSteps, kernels on 5 streams, NCCL, copies, memsets).

HTA's temporal breakdown is per rank (one trace, every stream of it merged): the union of the GPU events'
intervals (busy), over the span from the first event's start to the last one's end (HTA's "kernel_time"),
idle = span - busy. By default HTA first drops the GPU events launched in the last ProfilerStep (it keeps
those whose launching runtime call started before that step began), so its span is one step's here;
``include_last_profiler_step=True`` keeps them all. rnnbench takes a step's events as those that *start* in the
step's host range and its idle against the step, not the span (harness.measure.activity.device_busy); with the span as
the window the two agree to the microsecond.

The HTA figures (HolisticTraceAnalysis 0.5.0, in a venv of its own; HTA is not a test dependency) came from:

    from hta.trace_analysis import TraceAnalysis
    for last in (False, True):
        TraceAnalysis(trace_dir=FOLDER_WITH_THE_TRACE, include_last_profiler_step=last)
            .get_temporal_breakdown(visualize=False)   # idle_time(us), compute_time(us), kernel_time(us)
"""

import gzip
import json
from pathlib import Path

import pytest

from harness.measure.activity import ITERATION_RANGE, complete_events, device_busy, device_events
from harness.measure.step_profile import analyze_steps

TRACE = Path(__file__).parent.parent / "data" / "hta" / "trace_filter_sampled_rank-0.json.gz"

# HTA default (the last ProfilerStep's events dropped): rank 0
HTA_DEFAULT_SPAN_US = 600_058.0     # kernel_time(us)
HTA_DEFAULT_IDLE_US = 321_378.0     # idle_time(us)
HTA_DEFAULT_COMPUTE_US = 106_252.0  # compute_time(us): computation kernels only (no NCCL, copies, memsets)
# HTA include_last_profiler_step=True: rank 0
HTA_ALL_SPAN_US = 1_222_847.0
HTA_ALL_IDLE_US = 675_191.0


@pytest.fixture(scope="module")
def events():
    with gzip.open(TRACE, "rt", encoding="utf-8") as handle:
        return json.load(handle)["traceEvents"]


def _profiler_steps(complete):
    return sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in complete
                  if e.get("cat") == "user_annotation" and e.get("name", "").startswith("ProfilerStep#"))


def test_over_the_whole_trace_busy_and_idle_are_htas_with_every_step_kept(events):
    busy = device_busy(device_events(complete_events(events)))
    assert busy["events"] == 1154 + 40 + 10
    assert busy["span_us"] == pytest.approx(HTA_ALL_SPAN_US, abs=1)
    assert busy["idle_in_span_us"] == pytest.approx(HTA_ALL_IDLE_US, abs=1)
    assert busy["busy_us"] == pytest.approx(HTA_ALL_SPAN_US - HTA_ALL_IDLE_US, abs=1)  # 547.7 ms


def test_the_first_steps_events_are_what_hta_keeps_by_default(events):
    complete = complete_events(events)
    first, _ = _profiler_steps(complete)
    busy = device_busy(device_events(complete), started_within=first)
    # the events that start in the step's host range are the ones its host launched (HTA goes by launch)
    assert busy["span_us"] == pytest.approx(HTA_DEFAULT_SPAN_US, abs=1)
    assert busy["idle_in_span_us"] == pytest.approx(HTA_DEFAULT_IDLE_US, abs=1)
    assert busy["busy_us"] == pytest.approx(HTA_DEFAULT_SPAN_US - HTA_DEFAULT_IDLE_US, abs=1)  # 278.7 ms
    assert busy["busy_us"] >= HTA_DEFAULT_COMPUTE_US  # busy holds HTA's compute and its non-compute


def test_the_step_breakdown_takes_the_same_busy_time_and_its_idle_against_the_step(events):
    # the trace's steps are torch.profiler's ProfilerStep ranges; rnnbench's carry its own name
    renamed = [{**e, "name": ITERATION_RANGE} if e.get("name", "").startswith("ProfilerStep#") else e for e in events]
    profile = analyze_steps(renamed, "cuda")
    first_ms = (HTA_DEFAULT_SPAN_US - HTA_DEFAULT_IDLE_US) / 1e3
    assert profile["steps"] == 2 and profile["busy_ms_per_step"][0] == pytest.approx(first_ms, abs=1e-3)
    assert sum(profile["busy_ms_per_step"]) == pytest.approx((HTA_ALL_SPAN_US - HTA_ALL_IDLE_US) / 1e3, abs=1e-3)
    assert profile["launches_per_step"] == 602
    # idle against the (profiled) step, 607.3 ms for the first: longer than HTA's span, which starts at the
    # step's first GPU event and ends at its last
    steps = _profiler_steps(complete_events(events))
    mean_step_ms = sum(end - begin for begin, end in steps) / len(steps) / 1e3
    assert profile["idle_ms"] == pytest.approx(mean_step_ms - profile["busy_ms"], abs=1e-6)
