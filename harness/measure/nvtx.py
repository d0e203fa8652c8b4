"""NVTX ranges around the timed regions (forward, backward, step), so that ``nsys profile rnnbench run ...``
shows them on its timeline. Opt-in (``--nvtx``): a range push and pop are host calls inside the timed regions,
and their cost on a GPU is not yet measured (``benchmarks/nvtx_overhead.py``, run by ``scripts/gpu-check.sh``).
On a CPU there is nothing to annotate for nsys, and :func:`clock_with_ranges` returns the clock unchanged.

The ranges ride on the clock's marks, so the timed loop itself (``harness.measure.timing``) is the same with or
without them: START opens ``step`` (training) and ``forward``; FORWARD_END closes ``forward`` and, in
training, opens ``backward``; BACKWARD_END closes ``backward`` and ``step``.
"""

from __future__ import annotations

from harness.measure.timing import BACKWARD_END, FORWARD_END, START

FORWARD, BACKWARD, STEP = "rnnbench.forward", "rnnbench.backward", "rnnbench.step"


class NvtxClock:
    """A clock that also opens and closes NVTX ranges at its marks (after recording the mark's event)."""

    def __init__(self, clock, mode: str, push=None, pop=None):
        if push is None or pop is None:
            import torch

            push, pop = torch.cuda.nvtx.range_push, torch.cuda.nvtx.range_pop
        self._clock, self._push, self._pop = clock, push, pop
        self._training = mode == "forward_backward"

    def mark(self, slot: int) -> None:
        self._clock.mark(slot)
        if slot == START:
            if self._training:
                self._push(STEP)
            self._push(FORWARD)
        elif slot == FORWARD_END:
            self._pop()
            if self._training:
                self._push(BACKWARD)
        elif slot == BACKWARD_END:
            self._pop()
            self._pop()

    def elapsed_ms(self, start: int, end: int) -> float:
        return self._clock.elapsed_ms(start, end)

    def synchronize(self) -> None:
        self._clock.synchronize()


def clock_with_ranges(clock, device_type: str, mode: str, enabled: bool):
    """``clock`` with NVTX ranges at its marks when ``enabled`` and on CUDA; else ``clock`` itself."""
    if not enabled or device_type != "cuda":
        return clock
    return NvtxClock(clock, mode)
