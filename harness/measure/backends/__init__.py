"""Backends: each builds a runnable model from the case's reference ``nn.LSTM``/``nn.GRU``.

Every backend copies the reference's weights, so all backends of one case compute the same function
and their outputs and gradients can be compared name by name before anything is timed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import Tensor, nn

from harness.spec.cases import Case
from harness.spec.suite import BACKENDS, COMPILE_MODES, FLASHRNN_BACKENDS

# Head dimensions FlashRNN's fused Triton kernel takes: a power of two (tl.dot needs 16 or more) up to the 64
# of its README (it keeps the four D x D recurrent blocks on chip).
FLASHRNN_TRITON_HEAD_DIMS = (16, 32, 64)
# Backends that run the gate-level cells of harness/measure/backends/cells.py rather than nn.LSTM/nn.GRU.
GATE_LEVEL_BACKENDS = ("eager", "torchscript", "compile")


@dataclass
class BuiltBackend:
    name: str
    # model(x) returns what nn.LSTM / nn.GRU return: (output, (h_n, c_n)) or (output, h_n)
    model: Callable[[Tensor], tuple]
    parameters: dict[str, nn.Parameter]
    facts: dict = field(default_factory=dict)
    # facts only known once the model has run (e.g. how many graphs torch.compile made)
    runtime_facts: Callable[[], dict] = dict
    # set by a backend that replays CUDA graphs of the model instead of calling it (harness.measure.timing.Workload)
    graphs: object | None = None


def unsupported_reason(case: Case) -> str | None:
    """Why this backend cannot run this case's variant here, or None. Such a case is skipped with the reason,
    never run some other way."""
    if case.proj_size:
        if case.cell != "lstm":
            return "proj_size is an nn.LSTM option; nn.GRU has no projection"
        if case.proj_size >= case.hidden_size:
            return f"proj_size ({case.proj_size}) must be smaller than hidden_size ({case.hidden_size}), as nn.LSTM requires"
        if case.backend in GATE_LEVEL_BACKENDS:
            return "the gate-level cells implement no LSTM projection (proj_size); the nn.LSTM backends run it"
    if case.lengths == "packed":
        if case.backend in GATE_LEVEL_BACKENDS:
            return ("the gate-level cells take padded tensors; packed sequences (PackedSequence) run through "
                    "nn.LSTM/nn.GRU only")
        if case.backend == "cudagraph":
            return "packed sequences are not captured: pack_padded_sequence sorts and sizes the batch on the host"
    if case.compile_mode == "reduce-overhead" and case.device_type != "cuda":
        return ("compile mode reduce-overhead is torch.compile with CUDA graphs; on a CPU Inductor has none "
                "to use and would run mode 'default' under this name")
    if case.backend in FLASHRNN_BACKENDS:
        return _flashrnn_reason(case)
    return None


def _flashrnn_reason(case: Case) -> str | None:
    """What FlashRNN's kernels cannot do (harness.measure.backends.flashrnn). Layers and directions are stacked, as
    the gate-level backends stack them; padded batches run like every backend's, to the longest, masked."""
    import importlib.util
    import os

    if importlib.util.find_spec("flashrnn") is None:
        return ("flashrnn is not installed: pip install 'rnnbench[flashrnn]' (a machine without network "
                "installs its wheel: pip download --no-deps flashrnn)")
    if case.proj_size:
        return "FlashRNN has no LSTM projection (proj_size)"
    if case.lengths == "packed":
        return "FlashRNN takes padded tensors; packed sequences (PackedSequence) run through nn.LSTM/nn.GRU only"
    if case.backend == "flashrnn_triton":
        if case.cell != "lstm":
            return "FlashRNN's fused Triton kernel implements LSTM (and sLSTM), not GRU"
        if case.hidden_size not in FLASHRNN_TRITON_HEAD_DIMS:
            return (f"FlashRNN's fused Triton kernel takes a head dimension of 16, 32 or 64 (a power of two, at "
                    f"most 64: its README's limit); one head of hidden_size {case.hidden_size} is not one")
        if case.device_type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            return ("FlashRNN's Triton kernel needs a CUDA GPU (on a CPU only under TRITON_INTERPRET=1, Triton's "
                    "interpreter: a correctness check, not a speed)")
    if case.backend == "flashrnn_cuda_fused" and case.cell != "lstm":
        return ("FlashRNN runs GRU's cuda_fused as its alternating kernel (3 recurrent gates do not tile by 8): "
                "that is flashrnn_cuda")
    if case.backend in ("flashrnn_cuda", "flashrnn_cuda_fused") and case.device_type != "cuda":
        return "FlashRNN's CUDA kernels need a CUDA GPU (compute capability 8.0 or later)"
    return None


def build_backend(name: str, reference: nn.RNNBase) -> BuiltBackend:
    """``name`` is a case's backend label: the backend, and for compile backends ``@mode`` where the torch.compile
    mode is not the default. Raises BackendUnavailable when this environment cannot run the backend."""
    backend, _, compile_mode = name.partition("@")
    compile_mode = compile_mode or "default"
    if compile_mode not in COMPILE_MODES:
        raise ValueError(f"unknown torch.compile mode {compile_mode!r}; known: {', '.join(COMPILE_MODES)}")
    if backend == "cudnn":
        from harness.measure.backends import cudnn as module
    elif backend == "eager":
        from harness.measure.backends import eager as module
    elif backend == "torchscript":
        from harness.measure.backends import torchscript as module
    elif backend in ("compile", "compile_module", "compile_rnn"):
        from harness.measure.backends import compiled
        return compiled.build(backend, reference, compile_mode)
    elif backend == "cudagraph":
        from harness.measure.backends import cudagraph as module
    elif backend in FLASHRNN_BACKENDS:
        from harness.measure.backends import flashrnn as module
    else:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    return module.build(backend, reference)
