"""Time forward, backward and the full training step of a model, one iteration at a time.

Regions of one iteration (``mode``):
    inference         forward under ``torch.no_grad()``                      -> forward
    forward           forward with autograd recording (graph discarded)     -> forward
    forward_backward  forward, then MSE loss against a target and backward  -> forward, backward, step
``step`` is measured from the same marks as the other two: step = forward + backward of that iteration.

CUDA: CUDA events are recorded around each region on the current stream and read after a device
synchronisation at the end of the iteration. CPU: ``time.perf_counter_ns`` (CPU kernels have returned
when the call returns). Gradients are cleared outside the timed regions.
"""

from __future__ import annotations

import gc
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.spec.suite import Timing

class CaseTimeout(Exception):
    """A case ran past its time limit."""


# The marks of one iteration. Each clock holds one slot per mark and reuses them every iteration.
START, FORWARD_END, BACKWARD_END = range(3)


class CpuClock:
    def __init__(self):
        self._ns = [0, 0, 0]

    def mark(self, slot: int) -> None:
        self._ns[slot] = time.perf_counter_ns()

    def elapsed_ms(self, start: int, end: int) -> float:
        return (self._ns[end] - self._ns[start]) / 1e6

    def synchronize(self) -> None:
        pass


class CudaClock:
    """Three CUDA events, created and recorded once when the clock is made, then re-recorded every iteration.

    ``torch.cuda.Event`` creates its CUDA event lazily, on the first ``record``; an event made per mark would
    put a ``cudaEventCreate`` (and a Python allocation) inside the timed region of every iteration.
    """

    def __init__(self, device: torch.device):
        self.device = device
        # The stream the device's work is queued on, whichever device is current (cuda:1 runs on its own).
        self._stream = torch.cuda.current_stream(device)
        with torch.cuda.device(device):
            self._events = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
            for event in self._events:
                event.record(self._stream)
        torch.cuda.synchronize(device)

    def mark(self, slot: int) -> None:
        self._events[slot].record(self._stream)

    def elapsed_ms(self, start: int, end: int) -> float:
        return self._events[start].elapsed_time(self._events[end])

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)


def clock_for(device: torch.device) -> CpuClock | CudaClock:
    return CudaClock(device) if device.type == "cuda" else CpuClock()


@dataclass(frozen=True)
class Workload:
    """What one iteration runs: ``model(x)`` returns (output, state) as nn.LSTM / nn.GRU do."""

    model: Callable[[Tensor], tuple]
    x: Tensor
    target: Tensor
    mode: str
    parameters: Sequence[Tensor]
    # A backend that replays captured CUDA graphs (harness.measure.backends.cudagraph) instead of calling the model:
    # graphs.captured(work) captures once per mode and returns what replays the forward and the backward.
    graphs: object | None = None


def run_iteration(work: Workload, clock, keep: list | None = None) -> dict[str, float]:
    """One timed iteration; returns milliseconds per region. ``keep`` receives (output, state).

    Between the first and the last mark there is nothing but the model, the loss and the backward: the
    clock's events already exist, and the result dict is built after the synchronisation.
    """
    if work.graphs is not None:
        return _replayed_iteration(work, clock, keep)
    for parameter in work.parameters:
        parameter.grad = None
    if work.mode == "inference":
        with torch.no_grad():
            clock.mark(START)
            output, state = work.model(work.x)
            clock.mark(FORWARD_END)
    else:
        clock.mark(START)
        output, state = work.model(work.x)
        clock.mark(FORWARD_END)
    if work.mode == "forward_backward":
        F.mse_loss(output, work.target).backward()
        clock.mark(BACKWARD_END)
    clock.synchronize()
    if keep is not None:
        keep.append((output, state))
    return _region_ms(work.mode, clock)


def _replayed_iteration(work: Workload, clock, keep: list | None) -> dict[str, float]:
    """The same regions from captured graphs: the forward graph, then the loss-and-backward graph (which
    overwrites the gradients it captured, so none are cleared)."""
    step = work.graphs.captured(work)
    clock.mark(START)
    step.replay_forward()
    clock.mark(FORWARD_END)
    if work.mode == "forward_backward":
        step.replay_backward()
        clock.mark(BACKWARD_END)
    clock.synchronize()
    if keep is not None:
        keep.append(step.outputs)
    return _region_ms(work.mode, clock)


def _region_ms(mode: str, clock) -> dict[str, float]:
    """Milliseconds per region from the clock's marks of an iteration that has synchronised."""
    forward_ms = clock.elapsed_ms(START, FORWARD_END)
    if mode != "forward_backward":
        return {"forward": forward_ms}
    return {"forward": forward_ms,
            "backward": clock.elapsed_ms(FORWARD_END, BACKWARD_END),
            "step": clock.elapsed_ms(START, BACKWARD_END)}


@dataclass(frozen=True)
class Measured:
    samples_ms: dict[str, tuple[float, ...]]
    warmup_ms: dict[str, tuple[float, ...]]
    loop_s: float
    # the timed samples of each block, in order, when the loop was cut into blocks (rnnbench ab); () otherwise
    block_lengths: tuple[int, ...] = ()


def measure(work: Workload, clock, timing: Timing, deadline: float = float("inf"),
            around_loop: Callable[[], ContextManager] | None = None, *, blocks: int = 1,
            wait_turn: Callable[[int], float] | None = None) -> Measured:
    """Warm up, then iterate until both ``min_iters`` and ``budget_s`` are met (or ``max_iters``).

    Every sample is kept. Python's garbage collector is paused inside the timed loop, as ``timeit``
    does, so a collection of unrelated objects does not land in one iteration. ``around_loop`` (the
    telemetry window) is entered just before the timed loop and left just after its last iteration
    has synchronised, outside every timed region.

    ``blocks`` > 1 cuts the loop into that many blocks, each with its share of ``min_iters`` and
    ``budget_s``; ``wait_turn(block)`` is called before each, outside every timed region, and returns the
    seconds it waited (another process measured meanwhile: ``rnnbench ab``), which do not count
    against ``deadline``. ``loop_s`` counts the blocks' own time only.
    """
    warmup = [run_iteration(work, clock) for _ in range(timing.warmup_iters)]
    if time.perf_counter() > deadline:
        raise CaseTimeout("time limit reached during warm-up")
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    samples: list[dict[str, float]] = []
    min_per_block = -(-timing.min_iters // blocks)
    max_per_block = max(1, timing.max_iters // blocks)
    loop_s = 0.0
    block_lengths: list[int] = []
    try:
        with around_loop() if around_loop is not None else nullcontext():
            for block in range(blocks):
                if wait_turn is not None:
                    deadline += wait_turn(block)
                started, count = time.perf_counter(), 0
                while True:
                    samples.append(run_iteration(work, clock))
                    now = time.perf_counter()
                    count += 1
                    if count >= max_per_block or (count >= min_per_block and now - started >= timing.budget_s / blocks):
                        break
                    if now > deadline:
                        raise CaseTimeout(f"time limit reached after {len(samples)} timed iterations")
                loop_s += time.perf_counter() - started
                block_lengths.append(count)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Measured(samples_ms=_by_region(samples), warmup_ms=_by_region(warmup), loop_s=loop_s,
                    block_lengths=tuple(block_lengths) if blocks > 1 else ())


def _by_region(iterations: list[dict[str, float]]) -> dict[str, tuple[float, ...]]:
    if not iterations:
        return {}
    return {region: tuple(it[region] for it in iterations) for region in iterations[0]}
