"""One case through the pipeline: reference -> backend -> parity -> timing -> CaseResult.

Nothing here prints. Whatever goes wrong in a case becomes that case's failed (or skipped) result with a
one-line reason, so one case cannot sink a run.
"""

from __future__ import annotations

import gc
import signal
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from harness.measure.activity import profile_activity
from harness.measure.backends import BuiltBackend, build_backend, unsupported_reason
from harness.spec.batches import Batch, as_called, make_batch
from harness.measure.backends.cudnn import REPACKED_WEIGHTS_WARNING, detect_kernel_library
from harness.spec.cases import Case
from harness.spec.dtypes import torch_dtype
from harness.errors import BackendUnavailable
from harness.measure.parity import ParityReport, comparable_tensors, compare, tolerance_for
from harness.measure.nvtx import clock_with_ranges
from harness.measure.quiet import messages_captured
from harness.record.results import CaseResult, utc_now
from harness.spec.suite import Telemetry, Timing, profile_iters_for
from harness.measure.telemetry.case import CaseTelemetry
from harness.measure.telemetry.host import current_rss_bytes, peak_rss, reset_peak_rss
from harness.measure.timing import CaseTimeout, Workload, clock_for, measure, run_iteration

RNN_CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU}
HARD_LIMIT_GRACE_S = 5.0


@dataclass(frozen=True)
class RunSettings:
    device: torch.device
    precision: str = "fp32"
    seed: int = 0
    timing: Timing = field(default_factory=Timing)
    telemetry: Telemetry = field(default_factory=Telemetry)
    nvtx: bool = False  # NVTX ranges around forward, backward and step (CUDA only; harness.measure.nvtx)
    # the user's backends the suite can name: (name, "package.module:build") pairs (harness.spec.custom_backends)
    backend_factories: tuple[tuple[str, str], ...] = ()


def make_reference(case: Case, settings: RunSettings) -> nn.RNNBase:
    """The case's nn.LSTM / nn.GRU, initialised on the CPU from the case seed (same weights on any device)."""
    torch.manual_seed(case.seed(settings.seed))
    options = {"num_layers": case.num_layers, "bidirectional": case.bidirectional}
    if case.batch_first:
        options["batch_first"] = True
    if case.proj_size:
        options["proj_size"] = case.proj_size
    module = RNN_CLASSES[case.cell](case.input_size, case.hidden_size, **options)
    return module.to(device=settings.device, dtype=torch_dtype(case.dtype))


def make_batch_for(case: Case, settings: RunSettings) -> Batch:
    return make_batch(case, case.seed(settings.seed) + 1, settings.device)


def make_inputs(case: Case, settings: RunSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Input (T, B, I) (batch_first: (B, T, I)) and an MSE target shaped like the output."""
    batch = make_batch_for(case, settings)
    return batch.x, batch.target


@dataclass
class PreparedCase:
    """A case ready to time: the backend built from the reference, parity checked, the workload of its mode.

    ``parity`` may have failed; the caller decides what that means (a failed result, a failed test).
    """

    case: Case
    backend: BuiltBackend
    work: Workload
    clock: object
    parity: ParityReport
    build_s: float
    first_iteration_ms: dict[str, float]


def prepare_case(case: Case, settings: RunSettings,
                 build: Callable[[str, nn.RNNBase], BuiltBackend] | None = None) -> PreparedCase:
    """Reference -> backend -> one parity iteration against the reference -> the workload to time.

    The one way every command (``run``, the pytest entry point) gets a case ready. Raises
    BackendUnavailable when the backend cannot run here.
    """
    build = build or build_backend
    reason = unsupported_reason(case)
    if reason:
        raise BackendUnavailable(reason)
    device = settings.device
    clock = clock_for(device)
    reference = make_reference(case, settings)
    batch = make_batch_for(case, settings)
    x, target = batch.x, batch.target
    # Parity always checks gradients too, unless the case is inference (no autograd at all).
    parity_mode = "inference" if case.mode == "inference" else "forward_backward"

    expected = _outputs_and_grads(as_called(reference, case, batch), dict(reference.named_parameters()), x, target,
                                  parity_mode, clock)
    build_started = time.perf_counter()
    factories = dict(settings.backend_factories)
    if case.backend in factories:
        from harness.measure.backends import custom

        backend = custom.build(case.backend, factories[case.backend], reference, case)
    else:
        backend = build(case.backend_label, reference)
    build_s = round(time.perf_counter() - build_started, 4)
    del reference
    if batch.mask is not None:
        backend = replace(backend, model=as_called(backend.model, case, batch))

    kept: list = []
    parity_work = Workload(backend.model, x, target, parity_mode, tuple(backend.parameters.values()),
                           graphs=backend.graphs)
    first_iteration_ms = run_iteration(parity_work, clock, keep=kept)
    output, state = kept.pop()
    actual = comparable_tensors(output, state, backend.parameters)
    del output, state
    parity = compare(expected, actual, tolerance_for(case.dtype, settings.precision, device.type),
                     is_reference=case.backend == "cudnn")
    work = Workload(backend.model, x, target, case.mode, tuple(backend.parameters.values()), graphs=backend.graphs)
    return PreparedCase(case=case, backend=backend, work=work, clock=clock, parity=parity, build_s=build_s,
                        first_iteration_ms=first_iteration_ms)


def run_case(case: Case, settings: RunSettings, *,
             build: Callable[[str, nn.RNNBase], BuiltBackend] | None = None, turns=None) -> CaseResult:
    """``build`` replaces the backend builder (tests inject faults through it).

    torch's warnings and log lines raised while the case runs are kept with the result (``warnings``),
    never printed in the middle of a run.

    ``turns`` (``rnnbench ab``: processes that take turns on one machine) has ``blocks`` and
    ``wait(key, phase, block)``: the case waits for its turn before it is built and before each of its
    timed blocks, so no other measured process computes meanwhile.
    """
    if turns is not None:
        turns.wait(case.key, "prepare")
    started_utc = utc_now()
    started = time.perf_counter()
    deadline = started + settings.timing.case_timeout_s
    messages: list[str] = []

    def finished(status: str, reason: str | None = None, **fields) -> CaseResult:
        return CaseResult(case=case, status=status, reason=reason, started_utc=started_utc,
                          duration_s=round(time.perf_counter() - started, 3), **fields)

    try:
        with messages_captured() as messages, _hard_time_limit(settings.timing.case_timeout_s):
            result = _measure_case(case, settings, build, deadline, finished, turns)
    except BackendUnavailable as exc:
        result = finished("skipped", str(exc))
    except CaseTimeout as exc:
        result = finished("failed", f"time limit of {settings.timing.case_timeout_s:g} s exceeded: {exc}")
    except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
        result = finished("failed", f"out of memory: {_first_line(exc)}")
    except Exception as exc:  # one case must not sink the run; the reason is kept with the case
        if _is_out_of_memory(exc):
            result = finished("failed", f"out of memory: {_first_line(exc)}")
        else:
            result = finished("failed", f"{type(exc).__name__}: {_first_line(exc)}")
    finally:
        _release_memory(settings.device)
    backend_facts = dict(result.backend)
    if any(REPACKED_WEIGHTS_WARNING in message for message in messages):
        backend_facts["weights_repacked_every_call"] = True
    return replace(result, warnings=tuple(messages), backend=backend_facts)


def _measure_case(case: Case, settings: RunSettings, build, deadline: float, finished, turns=None) -> CaseResult:
    device = settings.device
    rss_before_case = _rss_before_case(device)
    prepared = prepare_case(case, settings, build)
    backend, work = prepared.backend, prepared.work
    facts = dict(backend.facts)
    common = {"parity": prepared.parity.to_dict(), "build_s": prepared.build_s,
              "first_iteration_ms": prepared.first_iteration_ms}
    if not prepared.parity.passed:
        facts.update(backend.runtime_facts())
        return finished("failed", prepared.parity.reason, backend=facts, **common)
    if case.backend in ("cudnn", "compile_module", "compile_rnn") or case.backend in dict(settings.backend_factories):
        # which library a user's module dispatched to is read as cudnn's is (an nn.LSTM inside it shows)
        facts.update(detect_kernel_library(backend.model, work.x, grad=case.backend == "compile_rnn" and case.needs_grad))
        if case.backend == "compile_rnn":
            facts["vendor_rnn_kernel_ran"] = bool(facts.get("rnn_operators"))

    # One NVML window over the whole timed loop: the step in forward_backward mode (forward and
    # backward alternate within milliseconds, below what NVML resolves), else the forward.
    region = case.primary_region
    telemetry = CaseTelemetry(device, settings.telemetry, region)
    memory_before = _reset_peak_memory(device)
    interleaved = {} if turns is None else {"blocks": turns.blocks,
                                            "wait_turn": lambda block: turns.wait(case.key, "block", block)}
    clock = clock_with_ranges(prepared.clock, device.type, case.mode, settings.nvtx)
    measured = measure(work, clock, settings.timing, deadline, around_loop=telemetry.window, **interleaved)
    memory = _peak_memory(device, memory_before, rss_before_case)
    facts.update(backend.runtime_facts())
    activity = {}
    profile_iters = profile_iters_for(settings.timing, device.type)
    if profile_iters:
        step_samples = measured.samples_ms.get(region) or ()
        activity = profile_activity(work, prepared.clock, device.type, profile_iters,
                                    timed_step_ms=statistics.median(step_samples) if step_samples else None)
    return finished("ok", backend=facts, warmup_ms=measured.warmup_ms, samples_ms=measured.samples_ms,
                    block_lengths=measured.block_lengths,
                    memory=memory, activity=activity,
                    telemetry=telemetry.to_dict(iterations=len(measured.samples_ms.get(region, ())),
                                                batch=case.batch), **common)


def _outputs_and_grads(model, parameters: dict, x, target, mode: str, clock) -> dict:
    kept: list = []
    run_iteration(Workload(model, x, target, mode, tuple(parameters.values())), clock, keep=kept)
    output, state = kept.pop()
    return comparable_tensors(output, state, parameters)


def _reset_peak_memory(device: torch.device) -> dict:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return {"allocated_bytes": torch.cuda.memory_allocated(device)}
    gc.collect()
    return {"rss": reset_peak_rss()}


def _rss_before_case(device: torch.device) -> int | None:
    """CPU: the process's resident memory before the case is built, what the case's own peak is measured from."""
    if device.type == "cuda":
        return None
    gc.collect()
    return current_rss_bytes()


def _peak_memory(device: torch.device, before: dict, rss_before_case: int | None = None) -> dict:
    """CUDA: the caching allocator's peaks since the reset. CPU: the process's peak resident memory and
    its rise over the RSS before the case was built (harness.measure.telemetry.host)."""
    if device.type == "cuda":
        return {
            "source": "torch.cuda allocator",
            "peak_allocated_bytes": torch.cuda.max_memory_allocated(device),
            "peak_reserved_bytes": torch.cuda.max_memory_reserved(device),
            "allocated_before_bytes": before["allocated_bytes"],
        }

    return peak_rss(before["rss"], rss_before_case)


@contextmanager
def _hard_time_limit(seconds: float):
    """Stop a case that hangs outside the timed loop (a compile that never ends, say).

    The timed loop checks its deadline itself; this alarm, a little later, interrupts anything else that
    runs Python code. It needs the main thread (signals); elsewhere only the timed loop's check applies.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise CaseTimeout("the case was still running at its hard time limit")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds + HARD_LIMIT_GRACE_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _release_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _is_out_of_memory(exc: Exception) -> bool:
    text = str(exc)
    return "out of memory" in text.lower() or "can't allocate memory" in text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
