"""``cudnn``: ``nn.LSTM``/``nn.GRU`` themselves. On CUDA that is cuDNN; on the CPU it is ATen's own
kernel (oneDNN for LSTM where PyTorch's dispatcher picks it). Which library ran is read from the
operators a profiled forward actually dispatched, never assumed."""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from harness.measure.backends import BuiltBackend
from harness.measure.quiet import native_stderr_silenced


# What PyTorch warns when cuDNN must re-pack a module's weights on every call (their time is then inflated).
REPACKED_WEIGHTS_WARNING = "not part of single contiguous chunk of memory"


def build(name: str, reference: nn.RNNBase) -> BuiltBackend:
    model = user_built_copy(reference)
    return BuiltBackend(name=name, model=model, parameters=dict(model.named_parameters()),
                        facts={"implementation": f"torch.nn.{reference.mode}"})


def user_built_copy(reference: nn.RNNBase) -> nn.RNNBase:
    """A new ``nn.LSTM``/``nn.GRU`` with the reference's weights, laid out as ``nn.LSTM(...).to(device)``.

    ``copy.deepcopy`` copies each parameter on its own: on CUDA the copy's weights are then no longer one
    contiguous buffer and cuDNN re-packs them on every call ("RNN module weights are not part of single
    contiguous chunk of memory"), which inflated every cuDNN time. Built on the CPU and moved with ``.to()``,
    the module is flattened by ``RNNBase._apply`` exactly as a user's module is.
    """
    options = {"num_layers": reference.num_layers, "bias": reference.bias, "batch_first": reference.batch_first,
               "dropout": reference.dropout, "bidirectional": reference.bidirectional}
    if reference.proj_size:
        options["proj_size"] = reference.proj_size
    module = type(reference)(reference.input_size, reference.hidden_size, **options)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            parameter.copy_(reference.get_parameter(name))
    weight = next(reference.parameters())
    return module.to(device=weight.device, dtype=weight.dtype)


def weights_in_one_buffer(module: nn.RNNBase) -> bool:
    """Whether every weight of the module lies in one storage, as cuDNN needs to run without re-packing."""
    storages = {parameter.untyped_storage().data_ptr() for parameter in module.parameters()}
    return len(storages) == 1


def detect_kernel_library(model, x: Tensor, grad: bool = False) -> dict:
    """Run one forward under the profiler and name the RNN library from the operators that ran.

    ``grad``: record autograd as the timed calls do (a compiled model would otherwise compile again for
    no_grad, and that graph would be the one inspected and counted)."""
    try:
        with torch.set_grad_enabled(grad), native_stderr_silenced(), \
                torch.autograd.profiler.profile(use_kineto=False) as profile:
            model(x)
        operators = sorted({event.name for event in profile.function_events})
    except Exception as exc:  # the profiler is a nicety here; never fail a case over it
        return {"kernel_library": f"unknown (profiler failed: {type(exc).__name__})"}
    return {"kernel_library": library_from_operators(operators),
            "rnn_operators": [op for op in operators if re.search(r"rnn|lstm|gru", op)]}


def library_from_operators(operators: list[str]) -> str:
    names = " ".join(operators)
    if "cudnn_rnn" in names:
        return f"cuDNN {_cudnn_version()}"
    if "miopen_rnn" in names:
        return "MIOpen"
    if "mkldnn_rnn" in names:
        return f"oneDNN {_onednn_version()}"
    return "ATen native (per-step matmuls, no vendor RNN kernel)"


def _cudnn_version() -> str:
    version = torch.backends.cudnn.version()
    if not version:
        return "(version unknown)"
    major, minor, patch = version // 10000, (version % 10000) // 100, version % 100
    if version < 10000:  # cuDNN 8 and older encode as major*1000 + minor*100 + patch
        major, minor, patch = version // 1000, (version % 1000) // 100, version % 100
    return f"{major}.{minor}.{patch}"


def _onednn_version() -> str:
    match = re.search(r"DNN v([\d.]+)", torch.__config__.show())
    return f"v{match.group(1)}" if match else "(version unknown)"
