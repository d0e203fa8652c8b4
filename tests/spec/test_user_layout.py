"""Backends run nn.LSTM / nn.GRU as a user's code does: weights laid out as ``nn.LSTM(...).to(device)``."""

import copy
import warnings

import pytest
import torch
from torch import nn

from harness.measure.backends import build_backend
from harness.measure.backends.cudnn import REPACKED_WEIGHTS_WARNING, user_built_copy, weights_in_one_buffer
from harness.measure.runner import make_reference, run_case
from tests.helpers import cpu_settings, tiny_case


@pytest.mark.parametrize("options", [dict(), dict(num_layers=2, bidirectional=True), dict(proj_size=3)])
def test_user_built_copy_has_the_weights_and_shape_but_its_own_storage(options):
    torch.manual_seed(0)
    reference = nn.LSTM(5, 6, **options)
    copied = user_built_copy(reference)
    assert type(copied) is nn.LSTM and copied.proj_size == reference.proj_size
    assert [n for n, _ in copied.named_parameters()] == [n for n, _ in reference.named_parameters()]
    for (_, mine), (_, theirs) in zip(copied.named_parameters(), reference.named_parameters()):
        assert torch.equal(mine, theirs) and mine.data_ptr() != theirs.data_ptr()


def test_user_built_copy_keeps_the_dtype():
    reference = nn.GRU(4, 8).to(dtype=torch.bfloat16)
    assert next(user_built_copy(reference).parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("backend", ["cudnn", "compile_module"])
def test_module_backends_share_the_storage_layout_of_a_user_built_module(backend):
    """On a GPU a user's module holds every weight in one buffer; on a CPU one buffer per weight. The
    backend's module must look like the user's on whichever device runs this."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    case = tiny_case(backend=backend, device_type=device.type, num_layers=2)
    settings = cpu_settings(device=device)
    built = build_backend(backend, make_reference(case, settings))
    user = nn.LSTM(case.input_size, case.hidden_size, num_layers=2).to(device)
    module = built.model._orig_mod if hasattr(built.model, "_orig_mod") else built.model
    assert weights_in_one_buffer(module) == weights_in_one_buffer(user)


@pytest.mark.gpu
def test_on_cuda_the_cudnn_module_is_one_buffer_and_a_deepcopy_would_not_be():
    reference = nn.LSTM(16, 32, num_layers=2).to("cuda")
    assert weights_in_one_buffer(user_built_copy(reference))
    assert not weights_in_one_buffer(copy.deepcopy(reference))  # the defect this guards against is real


@pytest.mark.gpu
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_cudnn_case_on_cuda_never_repacks_its_weights(cell):
    case = tiny_case(cell=cell, device_type="cuda", batch=8, seq_len=16, input_size=32, hidden_size=64,
                     num_layers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = run_case(case, cpu_settings(device=torch.device("cuda", 0)))
    assert result.ok, result.reason
    assert not any(REPACKED_WEIGHTS_WARNING in message for message in result.warnings), result.warnings
    assert "weights_repacked_every_call" not in result.backend
