"""``cudnn``: ``nn.LSTM``/``nn.GRU`` themselves. On CUDA that is cuDNN; on the CPU it is ATen's own
kernel (oneDNN for LSTM where PyTorch's dispatcher picks it). Which library ran is read from the
operators a profiled forward actually dispatched, never assumed."""

from __future__ import annotations

import copy
import os
import re
import sys
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from harness.backends import BuiltBackend


def build(name: str, reference: nn.RNNBase) -> BuiltBackend:
    model = copy.deepcopy(reference)
    return BuiltBackend(name=name, model=model, parameters=dict(model.named_parameters()),
                        facts={"implementation": f"torch.nn.{reference.mode}"})


def detect_kernel_library(model, x: Tensor) -> dict:
    """Run one forward under the profiler and name the RNN library from the operators that ran."""
    try:
        with torch.no_grad(), _native_stderr_silenced(), \
                torch.autograd.profiler.profile(use_kineto=False) as profile:
            model(x)
        operators = sorted({event.name for event in profile.function_events})
    except Exception as exc:  # the profiler is a nicety here; never fail a case over it
        return {"kernel_library": f"unknown (profiler failed: {type(exc).__name__})"}
    return {"kernel_library": library_from_operators(operators),
            "rnn_operators": [op for op in operators if re.search(r"rnn|lstm|gru", op)]}


@contextmanager
def _native_stderr_silenced():
    """Some torch builds log profiler start/stop lines from C++ straight to file descriptor 2; keep them
    off the user's terminal by pointing descriptor 2 at /dev/null while the profiler runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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
