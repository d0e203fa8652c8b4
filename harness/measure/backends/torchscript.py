"""``torchscript``: the gate-level layer loop compiled by ``torch.jit.script``, with every step's input
projection done in one matmul up front, as PyTorch's fast TorchScript RNNs do."""

from __future__ import annotations

import time
import types
import warnings

import torch
from torch import nn

from harness.measure.backends import BuiltBackend, cells
from harness.measure.backends.gatelevel import GateLevelRNN
from harness.errors import BackendUnavailable


def build(name: str, reference: nn.RNNBase) -> BuiltBackend:
    script = getattr(getattr(torch, "jit", None), "script", None)
    if script is None:
        raise BackendUnavailable(f"TorchScript is not available in torch {torch.__version__}")
    layer_source = cells.lstm_layer if reference.mode == "LSTM" else cells.gru_layer
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            scripted = script(_fresh_copy(layer_source))
        except (NotImplementedError, AttributeError, ImportError) as exc:
            raise BackendUnavailable(f"TorchScript cannot script here: {exc}") from exc
    script_s = time.perf_counter() - started

    def layer(x, state, w_ih, w_hh, b_ih, b_hh, reverse):
        output, *final = scripted(x, *state, w_ih, w_hh, b_ih, b_hh, reverse)
        return output, tuple(final)

    model = GateLevelRNN(reference, layer)
    facts = {"implementation": "torch.jit.script of the gate-level layer loop, input projection up front",
             "kernel_library": "TorchScript graph executor (profiling, with fusion)",
             "script_s": round(script_s, 4)}
    if any(issubclass(w.category, DeprecationWarning) for w in caught):
        facts["note"] = f"torch.jit.script is deprecated in torch {torch.__version__}"
    return BuiltBackend(name=name, model=model, parameters=dict(model.named_parameters()), facts=facts)


def _fresh_copy(function: types.FunctionType) -> types.FunctionType:
    """A new function object with the same code, so every case gets its own TorchScript executor.

    torch.jit.script caches by function object; a shared executor specialises on the first shapes it
    sees and, across many cases with other shapes, runs out of re-specialisations and stops optimising.
    A fresh object also resolves the gate functions (cells.lstm_step, ...) anew.
    """
    copy = types.FunctionType(function.__code__, function.__globals__, function.__name__,
                              function.__defaults__, function.__closure__)
    copy.__qualname__ = function.__qualname__
    copy.__module__ = function.__module__
    return copy
