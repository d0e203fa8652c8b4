"""Where the time of one step goes, kernel by kernel (GPU) or operator by operator (CPU): the analysis behind
``rnnbench profile``. Pure: trace events in, a record out (no torch), so it is tested on recorded traces.

Input: the Chrome trace events of torch.profiler's active steps, each step inside an ``rnnbench.iteration``
range (:func:`harness.measure.activity.record_trace`). Per step, then averaged (mean) over the steps, so that a
step's parts add up to the step:

GPU (``device_type == "cuda"``)
    - groups: kernels, copies and memsets that started within the step, by name: calls per step, time per
      step, mean time per call, share of the step;
    - classes (:mod:`harness.measure.kernel_classes`): the groups' time summed per class;
    - busy: the union of their intervals (overlaps once); idle = step - busy;
    - launches per step: kernels, copies and memsets started within the step (a replayed CUDA graph's
      kernels each count: CUPTI reports them one by one);
    - launch calls per step: the host's calls that put work on the device (``cudaLaunchKernel``,
      ``cudaMemcpyAsync``, ... and ``cudaGraphLaunch``, one call for a whole graph), and of them the graph
      launches; a captured step makes few calls for many kernels;
    - CPU dispatch: the union of the top-level operators' intervals on the host (the time the host spent in
      aten operators, which enqueue the kernels), and the time in the CUDA launch calls themselves.
    The step is the *unprofiled* step when given (median of iterations timed without the profiler: the
    profiler slows the host, not the kernels), else the profiled one.
CPU
    - groups: aten operators by name with their *self* time (their time minus the operators they call), so
      that the groups add up to the time in operators;
    - busy: the union of the top-level operators' intervals; idle: the step's time outside every operator
      (Python, the autograd engine's bookkeeping, the profiler's own cost);
    - the step is the profiled one (the profiler slows the operators too, so shares stay consistent).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Sequence

from harness.measure.activity import (DEVICE_BUSY_CATEGORIES, ITERATION_RANGE, complete_events, iteration_windows,
                              top_level_intervals, union_length)
from harness.measure.cudnn_algo import algorithm_from_kernels
from harness.measure.kernel_classes import CLASSES, IDLE, classify_kernel, classify_operator

# Host-side CUDA calls that put work on the device: their time is the launch cost the CPU pays.
GRAPH_LAUNCH_CALLS = ("cudaGraphLaunch", "cuGraphLaunch")  # one call replays a whole captured graph
LAUNCH_CALLS = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx",
                "cudaMemcpyAsync", "cudaMemsetAsync", "cudaLaunchCooperativeKernel") + GRAPH_LAUNCH_CALLS
HOST_RUNTIME_CATEGORIES = ("cuda_runtime", "cuda_driver")
GROUPS_KEPT = 40  # the largest groups; the rest are summed in groups_left_out


def analyze_steps(events: Sequence[dict], device_type: str, unprofiled_step_ms: float | None = None) -> dict:
    """The step breakdown of a trace (see the module's description); ``{"available": False, "reason": ...}``
    when the trace has no step ranges."""
    complete = complete_events(events)
    windows = iteration_windows(complete)
    if not windows:
        return {"available": False, "reason": f"the trace holds no '{ITERATION_RANGE}' range"}
    on_gpu = device_type == "cuda"
    operators = [e for e in complete if e.get("cat") == "cpu_op"]
    top_level = top_level_intervals(operators)

    walls, busy, host_in_operators, launches, launch_api, top_counts = [], [], [], [], [], []
    launch_calls, graph_launches = [], []
    group_ms: dict[str, float] = defaultdict(float)
    group_calls: dict[str, int] = defaultdict(int)
    group_class: dict[str, str] = {}
    if on_gpu:
        device = [e for e in complete if e.get("cat") in DEVICE_BUSY_CATEGORIES]
        runtime = [e for e in complete if e.get("cat") in HOST_RUNTIME_CATEGORIES and e.get("name") in LAUNCH_CALLS]
    for begin, end in windows:
        walls.append((end - begin) / 1e3)
        inside_ops = [(b, e) for b, e in top_level if begin <= b < end]
        host_in_operators.append(union_length(inside_ops) / 1e3)
        top_counts.append(len(inside_ops))
        if on_gpu:
            started = [e for e in device if begin <= float(e["ts"]) < end]
            busy.append(union_length((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in started) / 1e3)
            launches.append(len(started))
            calls = [e for e in runtime if begin <= float(e["ts"]) < end]
            launch_api.append(sum(float(e["dur"]) for e in calls) / 1e3)
            launch_calls.append(len(calls))
            graph_launches.append(sum(1 for e in calls if e["name"] in GRAPH_LAUNCH_CALLS))
            for e in started:
                name = e.get("name", "?")
                group_ms[name] += float(e["dur"]) / 1e3
                group_calls[name] += 1
                group_class.setdefault(name, classify_kernel(name, e.get("cat", "kernel")).name)
        else:
            busy.append(host_in_operators[-1])
            for name, self_ms in _self_times([e for e in operators if begin <= float(e["ts"]) < end]):
                group_ms[name] += self_ms
                group_calls[name] += 1
                group_class.setdefault(name, classify_operator(name).name)

    steps = len(windows)
    # Means over the steps, not medians: the groups are totals per step, and a step's parts must add up to
    # the step (a stalled step counts in full everywhere); the median step is given beside them.
    profiled_step_ms = statistics.fmean(walls)
    if on_gpu and unprofiled_step_ms:
        step_ms, basis = unprofiled_step_ms, "unprofiled step (median of iterations timed without the profiler)"
    else:
        step_ms, basis = profiled_step_ms, "profiled step (the profiler slows CPU operators too)"
    busy_ms = statistics.fmean(busy)
    idle_ms = max(0.0, step_ms - busy_ms)

    groups = sorted(({"name": name, "class": group_class[name], "calls_per_step": group_calls[name] / steps,
                      "ms_per_step": group_ms[name] / steps, "mean_us": 1e3 * group_ms[name] / group_calls[name],
                      "share": group_ms[name] / steps / step_ms if step_ms > 0 else None}
                     for name in group_ms), key=lambda g: (-g["ms_per_step"], g["name"]))
    class_ms = defaultdict(float)
    for group in groups:
        class_ms[group["class"]] += group["ms_per_step"]
    classes = [{"class": kind.name, "ms_per_step": class_ms.get(kind.name, 0.0),
                "share": class_ms.get(kind.name, 0.0) / step_ms if step_ms > 0 else None} for kind in CLASSES]
    classes.append({"class": IDLE.name, "ms_per_step": idle_ms, "share": idle_ms / step_ms if step_ms > 0 else None})
    kept, left_out = groups[:GROUPS_KEPT], groups[GROUPS_KEPT:]

    record = {
        "available": True,
        "device_type": device_type,
        "steps": steps,
        "step_ms": step_ms,
        "step_basis": basis,
        "profiled_step_ms": profiled_step_ms,
        "profiled_step_median_ms": statistics.median(walls),
        "unprofiled_step_ms": unprofiled_step_ms,
        "busy_ms": busy_ms,
        "busy_meaning": ("GPU busy: union of kernel, copy and memset intervals" if on_gpu else
                         "in operators: union of the top-level aten operators' intervals"),
        "busy_ms_per_step": [round(value, 6) for value in busy],
        "idle_ms": idle_ms,
        "idle_fraction": idle_ms / step_ms if step_ms > 0 else None,
        "operators_per_step": statistics.fmean(top_counts),
        "launches_per_step": statistics.fmean(launches) if on_gpu else None,
        "launch_calls_per_step": statistics.fmean(launch_calls) if on_gpu else None,
        "graph_launches_per_step": statistics.fmean(graph_launches) if on_gpu else None,
        "cpu_dispatch_ms": statistics.fmean(host_in_operators) if on_gpu else None,
        "launch_api_ms": statistics.fmean(launch_api) if on_gpu else None,
        "classes": classes,
        "groups": kept,
        "groups_left_out": {"count": len(left_out), "ms_per_step": sum(g["ms_per_step"] for g in left_out)},
    }
    if on_gpu:
        record["cudnn_algorithm_seen"] = algorithm_from_kernels(group_ms)
    else:
        record["absent"] = {"launches_per_step": "the case runs on the CPU: no kernel launches",
                            "launch_calls_per_step": "the case runs on the CPU: no kernel launches",
                            "cpu_dispatch_ms": "on the CPU the operators compute where they are dispatched"}
    return record


def _self_times(operators: Sequence[dict]) -> list[tuple[str, float]]:
    """(name, self ms) of every operator: its duration less that of the operators directly inside it (same
    thread)."""
    result = []
    by_thread: dict = defaultdict(list)
    for event in operators:
        by_thread[event.get("tid")].append(event)
    for events in by_thread.values():
        stack: list[list] = []  # [end, name, duration, children's duration]
        for event in sorted(events, key=lambda e: (float(e["ts"]), -float(e["dur"]))):
            begin, duration = float(event["ts"]), float(event["dur"])
            while stack and begin >= stack[-1][0]:
                _close(stack, result)
            if stack:
                stack[-1][3] += duration
            stack.append([begin + duration, event.get("name", "?"), duration, 0.0])
        while stack:
            _close(stack, result)
    return result


def _close(stack: list, result: list) -> None:
    _, name, duration, children = stack.pop()
    result.append((name, max(0.0, duration - children) / 1e3))
