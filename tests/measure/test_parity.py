"""Every backend agrees with cudnn on outputs and gradients, and parity catches a deliberately broken gate."""

import pytest
import torch

from harness.measure.backends import build_backend, cells
from harness.measure.runner import run_case
from tests.helpers import cpu_settings, tiny_case

GATE_LEVEL = ["eager", "torchscript", "compile"]
ALL = ["cudnn", *GATE_LEVEL, "compile_module"]


def _marks(backend):
    return [pytest.mark.compile] if backend.startswith("compile") else []


def _params(backends, cells_=("lstm", "gru")):
    return [pytest.param(b, c, marks=_marks(b), id=f"{c}-{b}") for b in backends for c in cells_]


@pytest.mark.parametrize("backend, cell", _params(ALL))
def test_backend_passes_parity_and_is_timed(backend, cell):
    result = run_case(tiny_case(cell=cell, backend=backend, num_layers=2, bidirectional=True), cpu_settings())
    assert result.status == "ok", result.reason
    assert result.parity["passed"] and result.parity["max_scaled_error"] < 1e-5
    # output, h_n (and c_n), and a gradient for each of the 2 layers x 2 directions x 4 parameters
    assert result.parity["tensors_compared"] == (3 if cell == "lstm" else 2) + 16
    assert set(result.samples_ms) == {"forward", "backward", "step"}


def _swap_lstm_input_and_forget(x_proj, h, c, w_hh, b_hh):
    gates = x_proj + torch.mm(h, w_hh.t()) + b_hh
    i, f, g, o = gates.chunk(4, 1)
    c = torch.sigmoid(i) * c + torch.sigmoid(f) * torch.tanh(g)  # forget and input gates swapped
    return torch.sigmoid(o) * torch.tanh(c), c


def _gru_reset_gate_before_projection(x_proj, h, w_hh, b_hh):
    # The textbook placement r * (W_hn h) without b_hn inside: PyTorch puts the reset gate after adding b_hn.
    x_r, x_z, x_n = x_proj.chunk(3, 1)
    w_r, w_z, w_n = w_hh.chunk(3, 0)
    b_r, b_z, b_n = b_hh.chunk(3, 0)
    r = torch.sigmoid(x_r + h @ w_r.t() + b_r)
    z = torch.sigmoid(x_z + h @ w_z.t() + b_z)
    n = torch.tanh(x_n + (r * h) @ w_n.t() + b_n)
    return (1 - z) * n + z * h


@pytest.mark.parametrize("backend, cell", _params(GATE_LEVEL))
def test_parity_fails_when_the_gate_math_is_wrong(monkeypatch, backend, cell):
    if cell == "lstm":
        monkeypatch.setattr(cells, "lstm_step", _swap_lstm_input_and_forget)
    else:
        monkeypatch.setattr(cells, "gru_step", _gru_reset_gate_before_projection)
    result = run_case(tiny_case(cell=cell, backend=backend), cpu_settings())
    assert result.status == "failed"
    assert result.reason.startswith("parity failed")
    assert not result.parity["passed"] and result.parity["max_scaled_error"] > 1e-2
    assert not result.samples_ms, "a case that fails parity must not be timed"


@pytest.mark.parametrize("backend", [pytest.param(b, marks=_marks(b)) for b in ("cudnn", "compile_module")])
def test_parity_fails_when_a_module_backend_computes_something_else(backend):
    def build_with_a_corrupted_weight(name, reference):
        built = build_backend(name, reference)
        with torch.no_grad():
            built.parameters["weight_hh_l0"][0, 0] += 0.5
        return built

    result = run_case(tiny_case(backend=backend), cpu_settings(), build=build_with_a_corrupted_weight)
    assert result.status == "failed" and result.reason.startswith("parity failed")
    assert not result.parity["passed"] and result.parity["max_scaled_error"] > 1e-3


def test_inference_parity_compares_outputs_only():
    result = run_case(tiny_case(backend="eager", mode="inference"), cpu_settings())
    assert result.status == "ok"
    assert result.parity["tensors_compared"] == 3
    assert set(result.samples_ms) == {"forward"}


def test_non_finite_output_fails_the_case():
    def build_nan(name, reference):
        built = build_backend(name, reference)
        with torch.no_grad():
            built.parameters["bias_ih_l0"][0] = float("nan")
        return built

    result = run_case(tiny_case(backend="eager"), cpu_settings(), build=build_nan)
    assert result.status == "failed" and "non-finite" in result.reason
