"""Math precision for float32 matmuls and RNNs, set explicitly so every backend runs under the same rule.

PyTorch's defaults differ by library (cuDNN RNNs may use TF32 while cuBLAS matmuls do not), which would
hand the cudnn backend an unfair edge; so both are always set from the suite, and read back to record.
"""

from __future__ import annotations

import torch


def apply_math_precision(precision: str) -> dict:
    """``precision`` is 'fp32' (IEEE float32) or 'tf32'. Returns the flags as PyTorch reports them after."""
    use_tf32 = precision == "tf32"
    backends = torch.backends
    if hasattr(backends, "fp32_precision"):  # torch >= 2.9; mixing with the legacy flags is an error there
        value = "tf32" if use_tf32 else "ieee"
        backends.cuda.matmul.fp32_precision = value
        backends.cudnn.fp32_precision = value
        backends.cudnn.rnn.fp32_precision = value
        backends.cudnn.conv.fp32_precision = value
        backends.mkldnn.fp32_precision = "ieee"  # TF32 is a GPU format; keep the CPU at IEEE float32
        return {
            "requested": precision,
            "api": "fp32_precision",
            "cuda_matmul": backends.cuda.matmul.fp32_precision,
            "cudnn_rnn": backends.cudnn.rnn.fp32_precision,
            "cudnn_conv": backends.cudnn.conv.fp32_precision,
            "mkldnn": backends.mkldnn.fp32_precision,
        }
    backends.cuda.matmul.allow_tf32 = use_tf32
    backends.cudnn.allow_tf32 = use_tf32
    return {
        "requested": precision,
        "api": "allow_tf32",
        "cuda_matmul_allow_tf32": backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
