"""Backends: each builds a runnable model from the case's reference ``nn.LSTM``/``nn.GRU``.

Every backend copies the reference's weights, so all backends of one case compute the same function
and their outputs and gradients can be compared name by name before anything is timed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import Tensor, nn

from harness.suite import BACKENDS


@dataclass
class BuiltBackend:
    name: str
    # model(x) returns what nn.LSTM / nn.GRU return: (output, (h_n, c_n)) or (output, h_n)
    model: Callable[[Tensor], tuple]
    parameters: dict[str, nn.Parameter]
    facts: dict = field(default_factory=dict)
    # facts only known once the model has run (e.g. how many graphs torch.compile made)
    runtime_facts: Callable[[], dict] = dict


def build_backend(name: str, reference: nn.RNNBase) -> BuiltBackend:
    """Raises BackendUnavailable when this environment cannot run the backend."""
    if name == "cudnn":
        from harness.backends import cudnn as module
    elif name == "eager":
        from harness.backends import eager as module
    elif name == "torchscript":
        from harness.backends import torchscript as module
    elif name in ("compile", "compile_module"):
        from harness.backends import compiled as module
    else:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    return module.build(name, reference)
