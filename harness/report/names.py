"""How a backend, a library version and a device are *shown*: one place for the names a reader sees.

The backend key ``cudnn`` means "``nn.LSTM``/``nn.GRU`` themselves". On a GPU that is cuDNN; on a CPU
no cuDNN runs: ATen dispatches oneDNN (LSTM, where it can) or its own per-step kernels. So on a CPU the
key is *shown* as ``nn.LSTM`` (or ``nn.GRU``) with the library that ran, ``nn.LSTM (oneDNN)``; results
files keep the key ``cudnn`` (it names the same backend on every device, so files compare across them).
Keys this module does not know (a new backend) are shown as themselves.
"""

from __future__ import annotations

import re
from typing import Iterable

MODULE_CLASSES = {"lstm": "LSTM", "gru": "GRU"}
NATIVE_BACKEND = "cudnn"  # the key of nn.LSTM/nn.GRU themselves

BACKEND_NAMES_NOTE = ("On a CPU the backend cudnn (its key in results files and on the command line) is shown "
                      "as nn.LSTM / nn.GRU with the library that ran: no cuDNN runs on a CPU.")


def short_library(kernel_library: str | None) -> str | None:
    """'oneDNN v3.10.2' -> 'oneDNN'; 'ATen native (per-step matmuls, ...)' -> 'ATen'; 'cuDNN 9.19.0' ->
    'cuDNN': the library's name without its version or explanation."""
    if not kernel_library:
        return None
    for name in ("oneDNN", "cuDNN", "MIOpen", "ATen"):
        if kernel_library.startswith(name):
            return name
    return None


def display_backend(key: str, device_type: str | None, cell: str | None = None,
                    kernel_library: str | None = None) -> str:
    """The name a reader sees for backend ``key`` (a backend label, ``compile@max-autotune`` included).

    ``cudnn`` on a CPU is ``nn.LSTM`` / ``nn.GRU`` (by ``cell``; ``nn.LSTM/GRU`` when unknown), with the
    short name of ``kernel_library`` when given: ``nn.LSTM (oneDNN)``. Every other key is itself."""
    if key != NATIVE_BACKEND or device_type != "cpu":
        return key
    module = f"nn.{MODULE_CLASSES[cell]}" if cell in MODULE_CLASSES else "nn.LSTM/GRU"
    library = short_library(kernel_library)
    return f"{module} ({library})" if library else module


def result_backend_name(result) -> str:
    """display_backend of one case result: its cell, device and the library its dispatch showed."""
    case = result.case
    return display_backend(case.backend_label, case.device_type, case.cell, result.kernel_library)


def baseline_name(results: Iterable) -> str:
    """What the speedups of these results are measured against (the ``cudnn`` cases), as shown:
    'cudnn' on a GPU, 'nn.LSTM (oneDNN)' on a CPU; several distinct names joined with ' / '."""
    names = [result_backend_name(r) for r in results if r.case.backend == NATIVE_BACKEND]
    distinct = list(dict.fromkeys(names))
    if not distinct:
        return NATIVE_BACKEND
    if len(distinct) > 2:  # many cells and libraries: the short form
        return display_backend(NATIVE_BACKEND, "cpu") if all(n != NATIVE_BACKEND for n in distinct) else "cudnn"
    return " / ".join(distinct)


def format_cudnn_version(value) -> str | None:
    """torch.backends.cudnn.version()'s integer as a version: 92400 -> '9.24.0', 8902 -> '8.9.2'.
    Text (an already formatted version) is kept; None stays None."""
    if value in (None, ""):
        return None
    try:
        version = int(value)
    except (TypeError, ValueError):
        return str(value)
    if version < 10000:  # cuDNN 8 and older: major*1000 + minor*100 + patch
        return f"{version // 1000}.{(version % 1000) // 100}.{version % 100}"
    return f"{version // 10000}.{(version % 10000) // 100}.{version % 100}"


def cpu_libraries(results: Iterable) -> list[str]:
    """The RNN kernel libraries the ``cudnn`` (nn.LSTM / nn.GRU) cases of a CPU run dispatched, each once,
    with their versions where known: ['oneDNN v3.10.2', 'ATen native']."""
    found = []
    for result in results:
        # profile files' cases carry no kernel library: they name none
        library = getattr(result, "kernel_library", None) if result.case.backend == NATIVE_BACKEND else None
        if library and short_library(library):
            found.append(re.sub(r"\s*\(.*\)$", "", library))
    return list(dict.fromkeys(found))
