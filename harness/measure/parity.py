"""Parity before timing: a backend's outputs and gradients against the cudnn backend's, same inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

# Largest allowed error of a tensor, scaled by the reference tensor's largest magnitude. fp32 loses a few
# ulps per step; TF32 keeps 10 mantissa bits; float16 11, bfloat16 8, and errors add up over the steps.
TOLERANCE = {"float32": 1e-4, "tf32": 2e-2, "float16": 1e-2, "bfloat16": 5e-2}


def tolerance_for(dtype: str, precision: str, device_type: str) -> float:
    if dtype == "float32" and precision == "tf32" and device_type == "cuda":
        return TOLERANCE["tf32"]
    return TOLERANCE[dtype]


@dataclass(frozen=True)
class ParityReport:
    passed: bool
    tolerance: float
    max_scaled_error: float
    max_abs_error: float
    worst_tensor: str
    tensors_compared: int
    non_finite: tuple[str, ...] = ()
    reference: bool = False  # the cudnn backend compared with its own reference run

    @property
    def reason(self) -> str:
        if self.non_finite:
            return f"non-finite values (NaN/Inf) in {', '.join(self.non_finite)}"
        return (f"parity failed: {self.worst_tensor} differs from cudnn by {self.max_scaled_error:.3g} "
                f"of its magnitude (max abs error {self.max_abs_error:.3g}; tolerance {self.tolerance:g})")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["non_finite"] = list(self.non_finite)
        return data


def comparable_tensors(output: Tensor, state, parameters: dict[str, Tensor]) -> dict[str, Tensor]:
    """What parity compares: the output, the final states, and every parameter's gradient."""
    states = state if isinstance(state, tuple) else (state,)
    tensors = {"output": output.detach()}
    tensors.update(zip(("h_n", "c_n"), (s.detach() for s in states)))
    for name, parameter in parameters.items():
        if parameter.grad is not None:
            tensors[f"grad of {name}"] = parameter.grad.detach().clone()
    return tensors


def compare(reference: dict[str, Tensor], candidate: dict[str, Tensor], tolerance: float,
            is_reference: bool = False) -> ParityReport:
    missing = sorted(set(reference) ^ set(candidate))
    if missing:
        raise ValueError(f"parity: tensors present on one side only: {', '.join(missing)}")
    non_finite = tuple(name for name in reference
                       if not (torch.isfinite(candidate[name]).all() and torch.isfinite(reference[name]).all()))
    worst_name, worst_scaled, worst_abs = "", 0.0, 0.0
    for name, expected in reference.items():
        if name in non_finite:
            continue
        expected64 = expected.double()
        abs_error = (candidate[name].double() - expected64).abs().max().item() if expected.numel() else 0.0
        scale = max(expected64.abs().max().item() if expected.numel() else 0.0, 1e-12)
        scaled = abs_error / scale
        if scaled >= worst_scaled:
            worst_name, worst_scaled, worst_abs = name, scaled, abs_error
    return ParityReport(passed=not non_finite and worst_scaled <= tolerance, tolerance=tolerance,
                        max_scaled_error=worst_scaled, max_abs_error=worst_abs, worst_tensor=worst_name,
                        tensors_compared=len(reference), non_finite=non_finite, reference=is_reference)
