"""What differs between the environments of two runs, and which differences make their timings incomparable.

A different device type, GPU model, GPU driver, CPU model (CPU runs), torch, CUDA, cuDNN or oneDNN version, or
math precision makes a comparison meaningless as a gate (``blocking``). A field that one file does not record
(an older file without the GPU driver) is shown as unknown and does not block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.record.results import RunResults


@dataclass(frozen=True)
class EnvironmentDifference:
    label: str
    baseline: str | None
    current: str | None
    blocking: bool  # a difference that makes timings incomparable (refused unless allowed)


# label, how to read it from a run, when a difference blocks: always, on CPU runs only, or never
_FIELDS = (
    ("device type", lambda run: run.environment.device_type, "always"),
    ("GPU model", lambda run: run.environment.gpu_name, "always"),
    ("GPU driver", lambda run: run.environment.gpu_driver, "always"),
    ("CPU model", lambda run: run.environment.cpu_model, "cpu"),
    ("torch", lambda run: run.environment.torch_version, "always"),
    ("CUDA", lambda run: run.environment.cuda_version, "always"),
    ("cuDNN", lambda run: run.environment.cudnn_version, "always"),
    ("oneDNN", lambda run: run.environment.onednn_version, "cpu"),
    ("math precision", lambda run: run.suite.get("precision"), "always"),
    ("torch threads", lambda run: run.environment.intra_op_threads, "never"),
    ("host", lambda run: run.environment.host, "never"),
    ("Python", lambda run: run.environment.python_version, "never"),
    ("suite file (sha256)", lambda run: _short(run.suite.get("sha256")), "never"),
    ("rnnbench", lambda run: run.environment.rnnbench_version, "never"),
)


def environment_differences(baseline: RunResults, current: RunResults) -> tuple[EnvironmentDifference, ...]:
    """Every field that differs. ``blocking``: the timings cannot be compared as a gate."""
    on_cpu = baseline.environment.device_type == "cpu" and current.environment.device_type == "cpu"
    differences = []
    for label, read, blocks in _FIELDS:
        left, right = _text(read(baseline)), _text(read(current))
        if left == right:
            continue
        known = left is not None and right is not None
        blocking = blocks == "always" or (blocks == "cpu" and on_cpu)
        # A GPU field of a CPU run is absent on purpose; it is the device type that differs.
        differences.append(EnvironmentDifference(label, left, right, blocking and known))
    return tuple(differences)


def comparable_facts(run: RunResults) -> dict[str, str | None]:
    """The facts of one run that another run must share for their timings to be comparable (the blocking
    fields above, for this run's device type): an environment fingerprint."""
    on_cpu = run.environment.device_type == "cpu"
    return {label: _text(read(run)) for label, read, blocks in _FIELDS
            if blocks == "always" or (blocks == "cpu" and on_cpu)}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _short(value: Any) -> str | None:
    return str(value)[:12] if value else None
