"""Math precision for float32 matmuls and RNNs, set explicitly so every backend runs under the same rule.

PyTorch's defaults differ by library (cuDNN RNNs may use TF32 while cuBLAS matmuls do not), which would
hand the cudnn backend an unfair edge; so both are always set from the suite, and read back to record.

PyTorch keeps two sets of flags: the legacy ones (``torch.set_float32_matmul_precision``,
``torch.backends.cudnn.allow_tf32``) and, from 2.9, ``fp32_precision`` per backend and operator. Its
getters raise on a mix ("mix of the legacy and new APIs") when the two disagree, and Inductor's
max-autotune reads the legacy ``torch.get_float32_matmul_precision()``; so the legacy flags are set
first, then every ``fp32_precision`` the harness relies on, to the same value, and all are read back and
checked to agree.
"""

from __future__ import annotations

import torch

from harness.errors import RnnbenchError

# The legacy name of each precision (torch.set_float32_matmul_precision) and the fp32_precision value.
LEGACY_MATMUL = {"fp32": "highest", "tf32": "high"}
FP32_PRECISION = {"fp32": "ieee", "tf32": "tf32"}


class PrecisionMismatch(RnnbenchError):
    """PyTorch reports another precision than the one set; the run must not go on under it."""


def apply_math_precision(precision: str) -> dict:
    """``precision`` is 'fp32' (IEEE float32) or 'tf32'. Returns the flags as PyTorch reports them after."""
    if precision not in LEGACY_MATMUL:
        raise ValueError(f"unknown math precision {precision!r}; allowed: {', '.join(LEGACY_MATMUL)}")
    use_tf32 = precision == "tf32"
    backends = torch.backends
    torch.set_float32_matmul_precision(LEGACY_MATMUL[precision])  # also sets cuda and mkldnn matmul (>= 2.9)
    backends.cudnn.allow_tf32 = use_tf32
    if _has_fp32_precision():
        value = FP32_PRECISION[precision]
        backends.cuda.matmul.fp32_precision = value
        backends.cudnn.fp32_precision = value
        backends.cudnn.rnn.fp32_precision = value
        backends.cudnn.conv.fp32_precision = value
        # TF32 is a GPU format; keep the CPU at IEEE float32 ("high" above set oneDNN's matmul to tf32)
        backends.mkldnn.fp32_precision = "ieee"
        backends.mkldnn.matmul.fp32_precision = "ieee"
    flags = read_math_precision(precision)
    check_math_precision(flags)
    return flags


def read_math_precision(requested: str) -> dict:
    """Every flag PyTorch reports for float32 math, through both APIs. A legacy getter raises when the two
    APIs disagree; that flag then reads ``"error: <torch's message>"``."""
    backends = torch.backends
    readers = {
        "float32_matmul_precision": torch.get_float32_matmul_precision,
        "cuda_matmul_allow_tf32": lambda: backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": lambda: backends.cudnn.allow_tf32,
    }
    if _has_fp32_precision():
        readers.update({
            "cuda_matmul": lambda: backends.cuda.matmul.fp32_precision,
            "cudnn_rnn": lambda: backends.cudnn.rnn.fp32_precision,
            "cudnn_conv": lambda: backends.cudnn.conv.fp32_precision,
            "mkldnn": lambda: backends.mkldnn.matmul.fp32_precision,
        })
    flags = {"requested": requested, "api": "fp32_precision" if _has_fp32_precision() else "allow_tf32"}
    for key, read in readers.items():
        try:
            flags[key] = read()
        except RuntimeError as exc:
            flags[key] = "error: " + (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
    return flags


def check_math_precision(flags: dict) -> None:
    """Raise PrecisionMismatch unless every flag says what ``flags['requested']`` asks."""
    precision = flags["requested"]
    use_tf32 = precision == "tf32"
    expected = {"float32_matmul_precision": LEGACY_MATMUL[precision], "cuda_matmul_allow_tf32": use_tf32,
                "cudnn_allow_tf32": use_tf32}
    if flags["api"] == "fp32_precision":
        value = FP32_PRECISION[precision]
        expected.update({"cuda_matmul": value, "cudnn_rnn": value, "cudnn_conv": value, "mkldnn": "ieee"})
    wrong = [f"{key}={flags[key]!r} (expected {want!r})" for key, want in expected.items() if flags[key] != want]
    if wrong:
        raise PrecisionMismatch(f"math precision {precision}: torch {torch.__version__} reports " + ", ".join(wrong))


def _has_fp32_precision() -> bool:
    return hasattr(torch.backends, "fp32_precision")  # torch >= 2.9
