"""Device time as samples: the GPU busy time of every profiled iteration (``activity.gpu_busy_ms_per_iteration``,
from the short profiled pass after the timed loop) seen as a timed region named ``gpu_busy``, so that the
regression gate (``rnnbench compare --metric gpu_busy``) compares it with the same statistics as a timed region.

Busy time is the union of the kernels' intervals: the host's jitter (Python, the launch queue, a neighbour on
the CPU) does not enter it, so a launch-bound backend's kernels can be gated even where its step time is noise.
"""

from __future__ import annotations

from dataclasses import replace

from harness.record.results import CaseResult, RunResults

GPU_BUSY = "gpu_busy"


def gpu_busy_samples(result: CaseResult) -> tuple[float, ...]:
    return tuple(result.activity.get("gpu_busy_ms_per_iteration") or ())


def with_gpu_busy_samples(run: RunResults) -> RunResults:
    """The run with each case's samples replaced by its per-iteration GPU busy times (none where the case
    recorded none: a CPU run, ``profile_iters: 0``, a file written before they were recorded)."""
    cases = []
    for result in run.cases:
        samples = gpu_busy_samples(result)
        lengths = result.activity.get("gpu_busy_round_lengths")
        cases.append(replace(result, samples_ms={GPU_BUSY: samples} if samples else {},
                             round_lengths={GPU_BUSY: tuple(lengths)} if samples and lengths else {}))
    return replace(run, cases=tuple(cases))
