"""What differs between the environments of two runs, and which differences make their timings incomparable.

A different device type, GPU model, GPU driver, CPU model (CPU runs), torch, CUDA, cuDNN or oneDNN version, or
math precision makes a comparison meaningless as a gate (``blocking``). A field that one file does not record
(an older file without the GPU driver) is shown as unknown and does not block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.results import RunResults


@dataclass(frozen=True)
class EnvironmentDifference:
    label: str
    baseline: str | None
    current: str | None
    blocking: bool  # a difference that makes timings incomparable (refused unless allowed)


def environment_differences(baseline: RunResults, current: RunResults) -> tuple[EnvironmentDifference, ...]:
    """Every field that differs. ``blocking``: the timings cannot be compared as a gate."""
    a, b = baseline.environment, current.environment
    on_cpu = a.device_type == "cpu" and b.device_type == "cpu"
    fields = (
        # label, baseline value, current value, blocks the comparison
        ("device type", a.device_type, b.device_type, True),
        ("GPU model", a.gpu_name, b.gpu_name, True),
        ("GPU driver", a.gpu_driver, b.gpu_driver, True),
        ("CPU model", a.cpu_model, b.cpu_model, on_cpu),
        ("torch", a.torch_version, b.torch_version, True),
        ("CUDA", a.cuda_version, b.cuda_version, True),
        ("cuDNN", a.cudnn_version, b.cudnn_version, True),
        ("oneDNN", a.onednn_version, b.onednn_version, on_cpu),
        ("math precision", baseline.suite.get("precision"), current.suite.get("precision"), True),
        ("torch threads", a.intra_op_threads, b.intra_op_threads, False),
        ("host", a.host, b.host, False),
        ("Python", a.python_version, b.python_version, False),
        ("suite file (sha256)", _short(baseline.suite.get("sha256")), _short(current.suite.get("sha256")), False),
        ("rnnbench", a.rnnbench_version, b.rnnbench_version, False),
    )
    differences = []
    for label, left, right, blocking in fields:
        left, right = _text(left), _text(right)
        if left == right:
            continue
        known = left is not None and right is not None
        # A GPU field of a CPU run is absent on purpose; it is the device type that differs.
        differences.append(EnvironmentDifference(label, left, right, blocking and known))
    return tuple(differences)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _short(value: Any) -> str | None:
    return str(value)[:12] if value else None
