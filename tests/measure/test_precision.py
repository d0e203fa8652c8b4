"""The math precision leaves PyTorch's two sets of precision flags agreeing, for every value a suite may ask."""

import itertools

import pytest
import torch

from harness.measure.precision import PrecisionMismatch, apply_math_precision, check_math_precision, read_math_precision
from harness.spec.suite import PRECISIONS

NEW_API_FLAGS = ("fp32_precision", "cuda.matmul.fp32_precision", "cudnn.fp32_precision", "cudnn.rnn.fp32_precision",
                 "cudnn.conv.fp32_precision", "mkldnn.fp32_precision", "mkldnn.matmul.fp32_precision",
                 "mkldnn.conv.fp32_precision", "mkldnn.rnn.fp32_precision")
needs_new_api = pytest.mark.skipif(not hasattr(torch.backends, "fp32_precision"), reason="torch < 2.9")


def _flag_owner(path):
    owner = torch.backends
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    return owner, name


@pytest.fixture(autouse=True)
def restored_precision():
    """The process-wide flags as they were before the test, set back the way they are set (legacy, then new)."""
    legacy_matmul, legacy_cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    new = {}
    if hasattr(torch.backends, "fp32_precision"):
        new = {path: getattr(*_flag_owner(path)) for path in NEW_API_FLAGS}
    yield
    torch.set_float32_matmul_precision(legacy_matmul)
    torch.backends.cudnn.allow_tf32 = legacy_cudnn
    for path, value in new.items():
        setattr(*_flag_owner(path), value)
    assert torch.get_float32_matmul_precision() == legacy_matmul


@pytest.mark.parametrize("before, precision", list(itertools.product(PRECISIONS, PRECISIONS)))
def test_both_apis_agree_with_the_precision_asked(before, precision):
    apply_math_precision(before)
    flags = apply_math_precision(precision)
    tf32 = precision == "tf32"
    # what Inductor's max-autotune and torch's own getters read: each raises on a mix of the two APIs
    assert torch.get_float32_matmul_precision() == ("high" if tf32 else "highest")
    assert torch.backends.cuda.matmul.allow_tf32 is tf32
    assert torch.backends.cudnn.allow_tf32 is tf32
    assert flags == read_math_precision(precision)
    assert flags["float32_matmul_precision"] == torch.get_float32_matmul_precision()


@needs_new_api
@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_gpu_library_gets_the_same_precision_and_the_cpu_stays_ieee(precision):
    flags = apply_math_precision(precision)
    value = "tf32" if precision == "tf32" else "ieee"
    backends = torch.backends
    assert (backends.cuda.matmul.fp32_precision, backends.cudnn.rnn.fp32_precision,
            backends.cudnn.conv.fp32_precision) == (value, value, value)
    assert backends.mkldnn.matmul.fp32_precision == "ieee" and backends.mkldnn.fp32_precision == "ieee"
    assert (flags["cuda_matmul"], flags["cudnn_rnn"], flags["cudnn_conv"], flags["mkldnn"]) == (value, value, value,
                                                                                               "ieee")


def test_torch_before_the_fp32_precision_api_gets_the_legacy_flags(monkeypatch):
    monkeypatch.setattr("harness.measure.precision._has_fp32_precision", lambda: False)
    flags = apply_math_precision("tf32")
    assert flags == {"requested": "tf32", "api": "allow_tf32", "float32_matmul_precision": "high",
                     "cuda_matmul_allow_tf32": True, "cudnn_allow_tf32": True}


@needs_new_api
def test_a_precision_torch_does_not_report_back_stops_the_run():
    apply_math_precision("fp32")
    torch.backends.cudnn.rnn.fp32_precision = "tf32"  # what another library's import might do
    flags = read_math_precision("fp32")
    assert flags["cudnn_rnn"] == "tf32" and flags["cudnn_allow_tf32"].startswith("error: PyTorch is checking")
    with pytest.raises(PrecisionMismatch, match="cudnn_allow_tf32='error: .*cudnn_rnn='tf32' .expected 'ieee'."):
        check_math_precision(flags)


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown math precision 'tf16'"):
        apply_math_precision("tf16")
