"""Where a step's time goes: a short profiled pass after the timed loop, never during it.

``torch.profiler`` records a few more iterations of the case (one warm-up iteration of the profiler, then
``iterations`` recorded ones), each inside a ``rnnbench.iteration`` range. From its Chrome trace, per
iteration:

- wall time: the range, which ends after the iteration's device synchronisation (longer than the timed
  step: the profiler adds host work to every operator);
- on a GPU: busy time, the union of the intervals of kernels, copies and memsets (all streams) that started
  within the iteration (overlapping kernels count once; :func:`device_busy` defines it); kernels launched; idle fraction, 1 - busy / the timed loop's
  median step (the profiler slows the host, not the kernels, so the timed step is the fair denominator);
- operators dispatched at the top level (not counting the operators they call), on any device.

Figures are medians over the recorded iterations. What the result's ``activity`` holds::

    {"available": true, "source": "...", "iterations": 5, "profiled_wall_ms": 1.71,
     "idle_against": "timed median step", "gpu_busy_ms": 0.14, "gpu_idle_fraction": 0.91,
     "kernels_per_step": 412, "operators_per_step": 38, "pass_s": 0.4,
     "gpu_busy_ms_per_iteration": [0.14, 0.139, ...]}

or ``{"available": false, "reason": "..."}``. On a CPU ``gpu_busy_ms``, ``gpu_idle_fraction`` and
``kernels_per_step`` are null, with the reason in ``absent``. ``profiler_teardown`` says whether CUPTI was
detached after the pass (:func:`arrange_cupti_teardown`), so that later cases were timed without it.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from typing import TYPE_CHECKING, Iterable, Sequence

from harness.measure.quiet import native_stderr_silenced

if TYPE_CHECKING:  # reading results (the table's note) must not need torch
    from harness.measure.timing import Workload

ITERATION_RANGE = "rnnbench.iteration"
CUPTI_TEARDOWN_VARIABLE = "TEARDOWN_CUPTI"
# Below this CUDA runtime, CUPTI teardown crashes on re-initialisation in a process that uses CUDA graphs
# (torch.profiler turns teardown off there itself when Inductor's CUDA graphs are on); the cudagraph backend
# captures graphs without telling torch.profiler, so rnnbench does not ask for teardown there either.
CUPTI_TEARDOWN_MIN_CUDA = (12, 6)
DEVICE_BUSY_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
# An idle fraction at or above this marks a case launch-bound: the GPU waits on the host most of the step.
LAUNCH_BOUND_IDLE_FRACTION = 0.5


def profile_activity(work: Workload, clock, device_type: str, iterations: int,
                     timed_step_ms: float | None = None) -> dict:
    """Profile ``iterations`` iterations of ``work`` (after one profiler warm-up iteration) and summarise them.

    ``timed_step_ms`` (the timed loop's median) is what the idle fraction is taken against: the profiler's own
    host overhead lengthens the profiled iterations, not the kernels. A profiler that cannot run here gives
    ``{"available": False, "reason": ...}``; it never fails the case.
    """
    started = time.perf_counter()
    try:
        events = _record_trace(work, clock, device_type, iterations)
    except Exception as exc:  # the profiler is a diagnostic; the timed figures stand without it
        return {"available": False, "reason": f"profiler failed: {type(exc).__name__}: {exc}".splitlines()[0],
                "profiler_teardown": profiler_teardown_fact(device_type)}
    summary = summarize_trace(events, on_gpu=device_type == "cuda", timed_step_ms=timed_step_ms)
    summary["profiler_teardown"] = profiler_teardown_fact(device_type)
    summary["pass_s"] = round(time.perf_counter() - started, 3)
    return summary


def _record_trace(work: Workload, clock, device_type: str, iterations: int) -> list[dict]:
    return record_trace(work, clock, device_type, active=iterations)


def arrange_cupti_teardown() -> None:
    """Ask Kineto to detach CUPTI when a profiler session ends (``TEARDOWN_CUPTI=1``), unless the user set the
    variable or the CUDA runtime is too old for it (``CUPTI_TEARDOWN_MIN_CUDA``).

    Why: Kineto otherwise keeps CUPTI subscribed after the session (pytorch#144455; PR #146604 reports 10-20 %
    slower steps afterwards), and the profiled pass runs right after each case's timed loop in the same process,
    so every later case would be timed with CUPTI attached: a bias that grows with the case's order and hits
    launch-bound cases most. Tearing down is chosen over moving the passes after all timed loops or into a
    process of their own, which would build (and compile) every case a second time or keep every case's model
    in memory, and would hold back each case's result until the run's end. Kineto reads the variable when a
    session ends; it is set before the first session starts, in the process that profiles (run, worker, pytest).
    """
    if CUPTI_TEARDOWN_VARIABLE in os.environ or not _cupti_teardown_is_safe():
        return
    os.environ[CUPTI_TEARDOWN_VARIABLE] = "1"


def _cupti_teardown_is_safe() -> bool:
    import torch

    version = getattr(torch.version, "cuda", None)
    if not version:
        return True  # a CPU build: nothing to tear down, nothing to crash
    try:
        return tuple(int(part) for part in version.split(".")[:2]) >= CUPTI_TEARDOWN_MIN_CUDA
    except ValueError:
        return False


def profiler_teardown_fact(device_type: str) -> str:
    """What happened to CUPTI after a profiler session that just ended, as a results file records it."""
    if device_type != "cuda":
        return "not needed: no CUPTI on a CPU"
    value = os.environ.get(CUPTI_TEARDOWN_VARIABLE)
    if value == "1":
        return f"{CUPTI_TEARDOWN_VARIABLE}=1"
    import torch

    if value is None and not _cupti_teardown_is_safe():
        why = f"CUDA {torch.version.cuda} is older than {'.'.join(map(str, CUPTI_TEARDOWN_MIN_CUDA))}"
    else:
        why = f"{CUPTI_TEARDOWN_VARIABLE}={value}" if value is not None else f"{CUPTI_TEARDOWN_VARIABLE} unset"
    return f"none ({why}): CUPTI stays attached; later cases of this process are timed with it"


def record_trace(work: Workload, clock, device_type: str, active: int, wait: int = 0, warmup: int = 1,
                 keep_path: str | None = None) -> list[dict]:
    """Run ``wait + warmup + active`` iterations under torch.profiler with that schedule, each iteration in an
    ``ITERATION_RANGE`` range; returns the Chrome trace's events (of the active iterations). ``keep_path``:
    also keep the Chrome trace there (it opens in ui.perfetto.dev). CUPTI is torn down after the session
    where it can be (:func:`arrange_cupti_teardown`)."""
    arrange_cupti_teardown()
    from torch.profiler import ProfilerActivity, profile, record_function, schedule

    from harness.measure.timing import run_iteration

    activities = [ProfilerActivity.CPU]
    if device_type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    # The profiler's first recorded iteration pays for its own start-up (tens of times a normal one here):
    # at least one warm-up step of the schedule absorbs it.
    plan = schedule(wait=wait, warmup=warmup, active=active, repeat=1)
    with native_stderr_silenced(), profile(activities=activities, schedule=plan) as profiler:
        for _ in range(wait + warmup + active):
            with record_function(ITERATION_RANGE):
                run_iteration(work, clock)
            profiler.step()
    if keep_path is not None:
        path = keep_path
    else:
        descriptor, path = tempfile.mkstemp(prefix="rnnbench-trace-", suffix=".json")
        os.close(descriptor)
    try:
        profiler.export_chrome_trace(path)
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("traceEvents", [])
    finally:
        if keep_path is None:
            os.unlink(path)


def summarize_trace(events: Sequence[dict], on_gpu: bool, timed_step_ms: float | None = None) -> dict:
    """Per-iteration figures from Chrome trace events (``ts`` and ``dur`` in microseconds), as medians.

    The idle fraction is 1 - busy / ``timed_step_ms`` when given, else 1 - busy / the profiled wall time.
    """
    complete = complete_events(events)
    iterations = iteration_windows(complete)
    if not iterations:
        return {"available": False, "reason": f"the trace holds no '{ITERATION_RANGE}' range"}
    device = device_events(complete)
    operators = top_level_spans([e for e in complete if e.get("cat") == "cpu_op"])

    walls, busy, kernels, dispatched = [], [], [], []
    for begin, end in iterations:
        walls.append((end - begin) / 1e3)
        busy.append(device_busy(device, started_within=(begin, end))["busy_us"] / 1e3)
        kernels.append(sum(1 for e in device if begin <= float(e["ts"]) < end and e.get("cat") == "kernel"))
        dispatched.append(sum(1 for start in operators if begin <= start < end))

    profiled_wall_ms = statistics.median(walls)
    step_ms = timed_step_ms if timed_step_ms else profiled_wall_ms
    summary = {"available": True,
               "source": f"torch.profiler, {len(iterations)} iterations after the timed loop",
               "iterations": len(iterations),
               "profiled_wall_ms": round(profiled_wall_ms, 4),
               "idle_against": "timed median step" if timed_step_ms else "profiled wall time",
               "operators_per_step": statistics.median(dispatched)}
    if on_gpu:
        busy_ms = statistics.median(busy)
        summary.update(gpu_busy_ms=round(busy_ms, 4),
                       gpu_idle_fraction=round(min(1.0, max(0.0, 1 - busy_ms / step_ms)), 4) if step_ms > 0 else None,
                       kernels_per_step=statistics.median(kernels),
                       # every iteration's busy time, in order: the samples `compare --metric gpu_busy` gates on
                       gpu_busy_ms_per_iteration=[round(value, 6) for value in busy])
    else:
        summary.update(gpu_busy_ms=None, gpu_idle_fraction=None, kernels_per_step=None,
                       absent={"gpu_busy_ms": "the case runs on the CPU"})
    return summary


def complete_events(events: Sequence[dict]) -> list[dict]:
    """The trace's complete events ("ph": "X") that have a start and a duration."""
    return [event for event in events if event.get("ph") == "X" and "ts" in event and "dur" in event]


def iteration_windows(complete: Sequence[dict]) -> list[tuple[float, float]]:
    """(start, end) in microseconds of every ``ITERATION_RANGE`` range, in order."""
    return sorted((float(event["ts"]), float(event["ts"]) + float(event["dur"])) for event in complete
                  if event.get("name") == ITERATION_RANGE and event.get("cat") == "user_annotation")


def device_events(complete: Sequence[dict]) -> list[dict]:
    """The trace's device activity that counts as busy: kernels, copies and memsets (``DEVICE_BUSY_CATEGORIES``),
    on every stream and every device the trace holds."""
    return [event for event in complete if event.get("cat") in DEVICE_BUSY_CATEGORIES]


def device_busy(device: Sequence[dict], started_within: tuple[float, float] | None = None) -> dict:
    """rnnbench's GPU busy time (the one definition :func:`summarize_trace` and ``harness.measure.step_profile`` use),
    in microseconds::

        {"events": n, "busy_us": ..., "span_us": ..., "idle_in_span_us": ...}

    - events: :func:`device_events`, all streams merged (a copy on one stream under a kernel on another
      counts once); with ``started_within=(begin, end)`` only those that start in [begin, end), each with its
      whole duration (not clipped). A step's window is its ``rnnbench.iteration`` host range, which ends after
      the step's device synchronisation, so what starts in it is what the step launched;
    - busy_us: the union of their intervals;
    - span_us: from the first one's start to the last one's end; idle_in_span_us = span - busy.

    A step's idle time is taken against the step (``step - busy``), not the span: the GPU idles before its
    first kernel too. HolisticTraceAnalysis' temporal breakdown (per rank: one trace, all its streams) is
    ``idle_in_span_us`` over the whole trace with ``include_last_profiler_step=True``; by default it drops the
    events launched in the last ``ProfilerStep`` and its span is that of the others (tests/measure/test_hta_agreement.py).
    """
    if started_within is not None:
        begin, end = started_within
        device = [e for e in device if begin <= float(e["ts"]) < end]
    intervals = [(float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in device]
    busy = union_length(intervals)
    span = (max(e for _, e in intervals) - min(b for b, _ in intervals)) if intervals else 0.0
    return {"events": len(intervals), "busy_us": busy, "span_us": span, "idle_in_span_us": span - busy}


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length covered by the intervals; overlaps count once, empty or inverted intervals not at all."""
    total = 0.0
    covered_until = float("-inf")
    for begin, end in sorted(intervals):
        if end <= begin:
            continue
        if begin > covered_until:
            total += end - begin
            covered_until = end
        elif end > covered_until:
            total += end - covered_until
            covered_until = end
    return total


def top_level_spans(operators: Sequence[dict]) -> list[float]:
    """Start times of the operators that no other operator on the same thread encloses."""
    return [begin for begin, _ in top_level_intervals(operators)]


def top_level_intervals(operators: Sequence[dict]) -> list[tuple[float, float]]:
    """(start, end) of the operators that no other operator on the same thread encloses, thread by thread."""
    spans = []
    open_until: dict = {}
    for event in sorted(operators, key=lambda e: (e.get("tid"), float(e["ts"]), -float(e["dur"]))):
        begin, end = float(event["ts"]), float(event["ts"]) + float(event["dur"])
        thread = event.get("tid")
        if begin >= open_until.get(thread, float("-inf")):
            spans.append((begin, end))
            open_until[thread] = end
    return spans


def launch_bound_note(activity: dict) -> str | None:
    """'launch-bound: GPU idle 91 %' for a case whose GPU waited on the host most of the step."""
    idle = activity.get("gpu_idle_fraction")
    if idle is None or idle < LAUNCH_BOUND_IDLE_FRACTION:
        return None
    return f"launch-bound: GPU idle {idle:.0%}"
