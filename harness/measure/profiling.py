"""``rnnbench profile``, one case: built and parity-checked as ``run`` builds it, warmed up, timed a few
iterations without the profiler (the step the GPU's idle time is taken against), then profiled with
torch.profiler over a wait/warmup/active schedule and broken down by :mod:`harness.measure.step_profile`.

Nothing here prints. A case that cannot run becomes a record with its status and a one-line reason.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from harness.measure.activity import profiler_teardown_fact, record_trace
from harness.measure.backends.cudnn import detect_kernel_library
from harness.spec.cases import Case
from harness.measure.cudnn_algo import gpu_facts, predict_for_case
from harness.errors import BackendUnavailable
from harness.measure.nvtx import clock_with_ranges
from harness.measure.quiet import messages_captured
from harness.measure.runner import RunSettings, prepare_case
from harness.measure.step_profile import analyze_steps
from harness.measure.timing import run_iteration

DEFAULT_STEPS = 10
PROFILER_WAIT_STEPS = 1    # schedule: steps run but not recorded (after the case's own warm-up) ...
PROFILER_WARMUP_STEPS = 1  # ... recorded and thrown away (the profiler's start-up lands here) ...
MIN_UNPROFILED_ITERS = 5   # ... after at least this many iterations timed without the profiler


@dataclass(frozen=True)
class ProfileSettings:
    steps: int = DEFAULT_STEPS
    nvtx: bool = False


def profile_case(case: Case, settings: RunSettings, options: ProfileSettings = ProfileSettings(),
                 trace_path: str | None = None) -> dict:
    """The case's profile record (the entry of ``cases`` in a profile file)."""
    started = time.perf_counter()
    record = {"key": case.key, "case": case.to_dict(), "status": "ok", "reason": None}
    messages: list[str] = []
    try:
        with messages_captured() as messages:
            record.update(_profile(case, settings, options, trace_path))
    except BackendUnavailable as exc:
        record.update(status="skipped", reason=str(exc))
    except Exception as exc:  # one case must not sink the others; its reason is kept
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        record.update(status="failed", reason=f"{type(exc).__name__}: {text}".rstrip(": "))
    finally:
        if settings.device.type == "cuda":
            torch.cuda.empty_cache()
    record["warnings"] = list(dict.fromkeys(messages))
    record["duration_s"] = round(time.perf_counter() - started, 3)
    return record


def _profile(case: Case, settings: RunSettings, options: ProfileSettings, trace_path: str | None) -> dict:
    device = settings.device
    prepared = prepare_case(case, settings)
    facts = dict(prepared.backend.facts)
    result: dict = {"parity": prepared.parity.to_dict()}
    if not prepared.parity.passed:
        facts.update(prepared.backend.runtime_facts())
        return {**result, "backend": facts, "status": "failed", "reason": prepared.parity.reason}
    if case.backend in ("cudnn", "compile_module"):
        facts.update(detect_kernel_library(prepared.backend.model, prepared.work.x))
    work = prepared.work
    for _ in range(settings.timing.warmup_iters):
        run_iteration(work, prepared.clock)
    region = case.primary_region
    unprofiled = [run_iteration(work, prepared.clock)[region]
                  for _ in range(max(MIN_UNPROFILED_ITERS, options.steps))]
    clock = clock_with_ranges(prepared.clock, device.type, case.mode, options.nvtx)
    events = record_trace(work, clock, device.type, active=options.steps, wait=PROFILER_WAIT_STEPS,
                          warmup=PROFILER_WARMUP_STEPS, keep_path=trace_path)
    facts.update(prepared.backend.runtime_facts())
    result.update(backend=facts,
                  unprofiled_step_samples_ms=[round(value, 6) for value in unprofiled],
                  profile=analyze_steps(events, device.type, unprofiled_step_ms=statistics.median(unprofiled)),
                  cudnn_algorithm=_cudnn_algorithm(case, device),
                  # whether CUPTI left with the session: the next case's unprofiled iterations run without it
                  profiler_teardown=profiler_teardown_fact(device.type),
                  trace_file=trace_path)
    seen = result["profile"].get("cudnn_algorithm_seen")
    if result["cudnn_algorithm"].get("forward") is not None:
        result["cudnn_algorithm"]["seen_in_kernels"] = seen
    return result


def _cudnn_algorithm(case: Case, device: torch.device) -> dict:
    if case.backend not in ("cudnn", "compile_module"):
        return {"absent": "not a cuDNN backend"}
    if device.type != "cuda":
        return {"absent": "the case runs on the CPU: no cuDNN"}
    return predict_for_case(case, gpu_facts(device))
