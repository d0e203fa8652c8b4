"""The floating-point types a suite may ask for: the one list of their names, and torch's type of each."""

from __future__ import annotations

DTYPES = ("float32", "float16", "bfloat16")


def torch_dtype(name: str):
    """torch's dtype of ``name`` (one of DTYPES); torch is imported only here, so suites load without it."""
    import torch

    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; one of {', '.join(DTYPES)}")
    return getattr(torch, name)

# Bytes per element, for the roofline's memory-traffic model (harness.spec.flops.region_bytes).
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
