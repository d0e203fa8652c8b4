"""The CUDA path for real: run by scripts/gpu-check.sh on a GPU machine, skipped elsewhere."""

import pytest
import torch

from harness.measure.precision import apply_math_precision
from harness.measure.runner import run_case
from tests.helpers import cpu_settings, tiny_case

pytestmark = pytest.mark.gpu


def _cuda_settings(precision="fp32"):
    apply_math_precision(precision)
    return cpu_settings(device=torch.device("cuda", 0), precision=precision)


@pytest.mark.parametrize("backend", ["cudnn", "eager", "torchscript", "compile", "compile_module"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_every_backend_passes_parity_on_cuda(backend, cell):
    case = tiny_case(cell=cell, backend=backend, device_type="cuda", batch=8, seq_len=6, input_size=16,
                     hidden_size=32, num_layers=2, bidirectional=True)
    result = run_case(case, _cuda_settings())
    assert result.status == "ok", result.reason
    assert result.memory["peak_allocated_bytes"] > 0


def test_the_cudnn_backend_really_runs_cudnn():
    result = run_case(tiny_case(device_type="cuda"), _cuda_settings())
    assert result.backend["kernel_library"].startswith("cuDNN"), result.backend


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precisions_pass_parity_within_their_tolerance(dtype):
    case = tiny_case(backend="eager", device_type="cuda", dtype=dtype, batch=8, seq_len=8, hidden_size=64)
    result = run_case(case, _cuda_settings())
    assert result.status == "ok", result.reason


def test_tf32_is_applied_to_both_cudnn_and_matmul():
    flags = apply_math_precision("tf32")
    assert flags["cuda_matmul_allow_tf32"] is True and flags["cudnn_allow_tf32"] is True
    assert torch.get_float32_matmul_precision() == "high"  # what Inductor's max-autotune reads
    result = run_case(tiny_case(backend="eager", device_type="cuda", hidden_size=64), _cuda_settings("tf32"))
    assert result.status == "ok", result.reason
    flags = apply_math_precision("fp32")
    assert flags["cuda_matmul_allow_tf32"] is False and flags["cudnn_allow_tf32"] is False
    assert torch.get_float32_matmul_precision() == "highest"

