"""FlashRNN's kernels as backends: parity with nn.LSTM/nn.GRU on the reference's weights, the skip reasons of
the one unsupported-reason table, the Triton kernel under Triton's interpreter, and the GPU kernels."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.measure.backends import flashrnn as flashrnn_backend
from harness.measure.backends import unsupported_reason
from harness.measure.runner import run_case
from harness.execute.session import open_suite
from tests.helpers import cpu_settings, tiny_case

ROOT = Path(__file__).resolve().parent.parents[1]
needs_flashrnn = pytest.mark.skipif(importlib.util.find_spec("flashrnn") is None,
                                    reason="flashrnn is not installed (pip install -e '.[test]')")


@needs_flashrnn
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("variant", [{}, {"num_layers": 2, "bidirectional": True},
                                     {"layout": "batch_first", "lengths": "padded", "length_min_fraction": 0.5}],
                         ids=["one-layer", "stacked-bidirectional", "batch_first-padded"])
def test_flashrnn_vanilla_passes_parity_on_the_reference_weights(cell, variant):
    result = run_case(tiny_case(cell=cell, backend="flashrnn_vanilla", **variant), cpu_settings())
    assert result.status == "ok", result.reason
    assert result.parity["passed"] and result.parity["max_scaled_error"] < 1e-5
    layers = variant.get("num_layers", 1) * (2 if variant.get("bidirectional") else 1)
    assert result.parity["tensors_compared"] == (3 if cell == "lstm" else 2) + 4 * layers
    facts = result.backend["flashrnn"]
    assert facts["version"] == flashrnn_backend.installed_version()
    assert facts["kernel_requested"] == "vanilla" and list(facts["kernel_ran"]) == ["vanilla"]
    assert set(result.samples_ms) == {"forward", "backward", "step"}
    assert "forward" in result.first_iteration_ms  # the first call, reported apart from the samples


def _textbook_gru_order(function, w_hh, b_ih, b_hh):
    # nn.GRU's own order (r, z, n) handed to FlashRNN as it is, with the biases summed: the reset gate then
    # sits on the wrong gate and b_hn outside it
    size = w_hh.shape[1]
    if function == "lstm":
        w = w_hh.view(4, size, size)
        return torch.stack((w[1], w[0], w[2], w[3])).unsqueeze(1), (b_ih + b_hh).view(4, 1, size)
    summed = (b_ih + b_hh).view(3, size)
    return w_hh.view(3, 1, size, size), torch.cat((summed, torch.zeros_like(summed[:1]))).unsqueeze(1)


@needs_flashrnn
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_parity_fails_when_the_weights_are_mapped_in_the_wrong_gate_order(monkeypatch, cell):
    monkeypatch.setattr(flashrnn_backend, "flashrnn_weights", _textbook_gru_order)
    result = run_case(tiny_case(cell=cell, backend="flashrnn_vanilla"), cpu_settings())
    assert result.status == "failed" and result.reason.startswith("parity failed"), result.reason
    assert not result.samples_ms


@needs_flashrnn
@pytest.mark.parametrize("overrides, fragment", [
    ({"backend": "flashrnn_vanilla", "proj_size": 3}, "no LSTM projection"),
    ({"backend": "flashrnn_vanilla", "lengths": "packed", "length_min_fraction": 0.5}, "packed sequences"),
    ({"backend": "flashrnn_triton", "cell": "gru", "hidden_size": 16}, "not GRU"),
    ({"backend": "flashrnn_triton", "hidden_size": 48}, "16, 32 or 64"),
    ({"backend": "flashrnn_triton", "hidden_size": 128}, "16, 32 or 64"),
    ({"backend": "flashrnn_cuda_fused", "cell": "gru"}, "that is flashrnn_cuda"),
    ({"backend": "flashrnn_cuda"}, "need a CUDA GPU"),
    ({"backend": "flashrnn_cuda_fused"}, "need a CUDA GPU"),
])
def test_what_a_flashrnn_kernel_cannot_run_is_skipped_with_its_reason(monkeypatch, overrides, fragment):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    reason = unsupported_reason(tiny_case(**overrides))
    assert reason and fragment in reason, reason
    result = run_case(tiny_case(**overrides), cpu_settings())
    assert result.status == "skipped" and result.reason == reason


def test_the_triton_kernel_on_a_cpu_needs_the_interpreter(monkeypatch):
    if importlib.util.find_spec("flashrnn") is None:
        pytest.skip("flashrnn is not installed")
    case = tiny_case(backend="flashrnn_triton", hidden_size=16)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert "TRITON_INTERPRET=1" in unsupported_reason(case)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert unsupported_reason(case) is None


def test_without_flashrnn_installed_its_backends_are_skipped_with_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flashrnn" else real(name, *a))
    result = run_case(tiny_case(backend="flashrnn_vanilla"), cpu_settings())
    assert result.status == "skipped"
    assert "flashrnn is not installed" in result.reason and "rnnbench[flashrnn]" in result.reason


def test_a_kernel_build_that_prints_on_descriptor_one_does_not_reach_it(capfd):
    # torch's extension build prints nvcc's output on descriptor 1, a worker's results protocol
    class Printing(torch.nn.Module):
        def forward(self, x):
            os.write(1, b"[1/3] nvcc -c flashrnn_fused_forward.cu\n")
            os.write(2, b"ptxas info: 128 registers\n")
            return x, x

    calls = flashrnn_backend._CudaKernelCalls(Printing(), torch.device("cpu"))
    x = torch.ones(2)
    assert calls._call(x)[0] is x
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert calls.seen == {True}


def test_a_kernel_build_that_fails_keeps_the_build_log_s_error_line():
    class Failing(torch.nn.Module):
        def forward(self, x):
            os.write(1, b"flashrnn.cu(12): error: identifier \"wmma\" is undefined\n")
            raise RuntimeError("Error building extension 'flashrnn_fused'")

    calls = flashrnn_backend._CudaKernelCalls(Failing(), torch.device("cpu"))
    with pytest.raises(RuntimeError, match=r"Error building extension .* \(build log: flashrnn.cu\(12\): error"):
        calls._call(torch.ones(2))


def test_no_kernel_tiling_for_a_shape_is_a_skip_not_a_failure():
    class NoTiling(torch.nn.Module):
        def forward(self, x):
            raise ValueError("No working solution of constraints for CUDA module")

    from harness.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="no kernel tiling"):
        flashrnn_backend._CudaKernelCalls(NoTiling(), torch.device("cpu"))._call(torch.ones(2))


# Its own process: triton reads TRITON_INTERPRET as the kernels are defined. One timed step, no warm-up and no
# profiled pass: parity and the backend's facts are what is checked, and each interpreted step takes ~0.35 s.
_INTERPRETED = """
import json, sys
from dataclasses import replace
from tests.helpers import QUICK_TIMING, cpu_settings, tiny_case
from harness.measure.runner import run_case
timing = replace(QUICK_TIMING, warmup_iters=0, min_iters=1, max_iters=1, profile_iters=0)
result = run_case(tiny_case(backend="flashrnn_triton", batch=2, seq_len=3, input_size=5, hidden_size=16,
                            mode=sys.argv[1]), cpu_settings(timing=timing))
print(json.dumps(result.to_dict()))
"""


@needs_flashrnn
@pytest.mark.parametrize("mode", ["forward_backward"])
def test_the_triton_kernel_passes_parity_under_triton_s_interpreter(mode):
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not importable (torch's CUDA wheel brings it)")
    environment = {**os.environ, "TRITON_INTERPRET": "1",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _INTERPRETED, mode], capture_output=True, text=True, cwd=ROOT,
                          env=environment, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "ok", result["reason"]
    assert result["parity"]["passed"] and result["parity"]["max_scaled_error"] < 1e-5
    assert result["backend"]["triton_interpreter"] is True
    assert "interpreter" in result["backend"]["note"]


@pytest.mark.parametrize("suite", ["flashrnn", "flashrnn-fp32", "flashrnn-cpu"])
def test_the_flashrnn_suites_validate(suite):
    opened = open_suite(str(ROOT / "suites" / f"{suite}.yaml"), "cpu")
    backends = {case.backend for case in opened.cases}
    assert {"cudnn", "flashrnn_triton", "flashrnn_cuda", "flashrnn_cuda_fused"} <= backends
    assert any(case.backend == "flashrnn_vanilla" for case in opened.cases)


def test_the_gpu_suite_sweeps_the_paper_s_head_dimensions_at_one_head_and_the_fastrnns_point():
    opened = open_suite(str(ROOT / "suites" / "flashrnn.yaml"), "cpu")
    sweep = {case.hidden_size for case in opened.cases if case.batch == 16 and case.seq_len == 1024}
    assert sweep == {16, 32, 64, 128, 256, 768}
    assert all(case.input_size == case.hidden_size for case in opened.cases)
    assert any((case.batch, case.seq_len, case.hidden_size) == (64, 100, 512) for case in opened.cases)
    assert opened.suite.dtype == "bfloat16"
    assert open_suite(str(ROOT / "suites" / "flashrnn-fp32.yaml"), "cpu").suite.precision == "tf32"


@pytest.mark.gpu
@needs_flashrnn
@pytest.mark.parametrize("backend, cell", [("flashrnn_triton", "lstm"), ("flashrnn_cuda_fused", "lstm"),
                                           ("flashrnn_cuda", "lstm"), ("flashrnn_cuda", "gru")])
@pytest.mark.parametrize("dtype, precision", [("float32", "tf32"), ("bfloat16", "fp32")])
def test_the_gpu_kernels_pass_parity_with_cudnn(backend, cell, dtype, precision):
    case = tiny_case(backend=backend, cell=cell, batch=16, seq_len=8, input_size=64, hidden_size=64, dtype=dtype,
                     device_type="cuda")
    result = run_case(case, cpu_settings(device=torch.device("cuda"), precision=precision))
    assert result.status == "ok", result.reason
    assert result.parity["passed"]
    assert list(result.backend["flashrnn"]["kernel_ran"]) == [flashrnn_backend.KERNELS[backend]]
    # the first call compiled (Triton autotuning, nvcc): it is kept apart from the timed samples
    assert result.first_iteration_ms["step"] > max(result.samples_ms["step"])
