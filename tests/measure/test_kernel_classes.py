"""Kernel classes against kernel names from real GPU traces (tests/data/kernel_names.json, each with its
source), and cuDNN's algorithm prediction against the conditions of PyTorch's get_algo."""

import json
from pathlib import Path

import pytest

from harness.measure.cudnn_algo import (PERSIST_STATIC, PERSIST_STATIC_SMALL_H, STANDARD, GpuFacts, algorithm_from_kernels,
                                predict_algorithm, predict_for_case)
from harness.measure.kernel_classes import CLASSES, classify_kernel, classify_operator
from tests.helpers import tiny_case

KERNEL_NAMES = json.loads((Path(__file__).parent.parent / "data" / "kernel_names.json").read_text(encoding="utf-8"))
KERNELS = KERNEL_NAMES["kernels"]


@pytest.mark.parametrize("entry", KERNELS, ids=lambda e: e["name"][:60])
def test_every_recorded_kernel_name_gets_the_class_of_what_it_does(entry):
    assert classify_kernel(entry["name"], entry["category"]).name == entry["expected_class"]


def test_the_recorded_names_cover_every_class_and_say_where_they_come_from():
    assert {entry["expected_class"] for entry in KERNELS} == {kind.name for kind in CLASSES}
    for entry in KERNELS:
        source = entry["source"]
        assert ("repo" in source and "path" in source and len(source["commit"]) == 40) or "url" in source \
            or "index_id" in source, entry


def test_a_copy_or_memset_is_known_by_its_trace_category_whatever_its_name():
    assert classify_kernel("anything at all", "gpu_memset").name == "copy"
    assert classify_kernel("anything at all", "gpu_memcpy").name == "copy"
    assert classify_kernel("anything at all", "kernel").name == "other"


@pytest.mark.parametrize("operator, expected", [
    ("aten::mkldnn_rnn_layer", "rnn_library"), ("aten::mkldnn_rnn_layer_backward", "rnn_library"),
    ("aten::addmm", "gemm"), ("aten::mm", "gemm"), ("aten::sigmoid", "elementwise"),
    ("aten::tanh_backward", "elementwise"), ("aten::sum", "reduction"), ("aten::mse_loss", "reduction"),
    ("aten::copy_", "copy"), ("aten::cat", "copy"), ("aten::t", "other"), ("aten::empty", "other"),
    ("aten::lstm", "other"),
    ("autograd::engine::evaluate_function: MmBackward0", "other"), ("rnnbench.iteration", "other"),
])
def test_cpu_operators_are_classed_by_their_aten_name(operator, expected):
    assert classify_operator(operator).name == expected


def test_the_persistent_and_standard_algorithms_are_told_apart_by_their_kernels():
    persistent = [e["name"] for e in KERNELS if "RNN_blockPersist" in e["name"]]
    standard = [e["name"] for e in KERNELS if "elemWiseRNNcell" in e["name"] or "LSTM_elementWise" in e["name"]]
    gemms = [e["name"] for e in KERNELS if e["expected_class"] == "gemm"]
    assert persistent and standard
    assert algorithm_from_kernels(persistent[:1] + gemms) == "persistent"
    assert algorithm_from_kernels(standard + gemms) == "standard"
    assert algorithm_from_kernels(gemms) is None


# --- cuDNN algorithm: PyTorch's get_algo (aten/src/ATen/native/cudnn/RNN.cpp, pytorch commit 357b8267) ---

H100 = GpuFacts(major=9, minor=0, multiprocessor_count=132, cudnn_version=91000)
A100 = GpuFacts(major=8, minor=0, multiprocessor_count=108, cudnn_version=90100)
A30 = GpuFacts(major=8, minor=0, multiprocessor_count=56, cudnn_version=90100)
A40 = GpuFacts(major=8, minor=6, multiprocessor_count=84, cudnn_version=90100)
V100 = GpuFacts(major=7, minor=0, multiprocessor_count=80, cudnn_version=90100)
T4 = GpuFacts(major=7, minor=5, multiprocessor_count=40, cudnn_version=90100)


def _predict(gpu=H100, forward=True, **shape):
    fields = dict(cell="lstm", dtype="float16", batch=64, seq_len=100, input_size=512, hidden_size=512, num_layers=1,
                  bidirectional=False)
    fields.update(shape)
    return predict_algorithm(**fields, gpu=gpu, forward=forward)


def test_small_hidden_sizes_take_the_small_h_persistent_kernel_in_any_non_double_dtype():
    # use_rnn_persist_small_h: LSTM/GRU forward H <= 192, backward H <= 128; sm >= 6; cuDNN >= 8.2.1
    for dtype in ("float32", "float16", "bfloat16"):
        assert _predict(dtype=dtype, hidden_size=192) == PERSIST_STATIC_SMALL_H
    assert _predict(hidden_size=193, dtype="float32") == STANDARD
    assert _predict(hidden_size=192, forward=False, dtype="float32") == STANDARD
    assert _predict(hidden_size=128, forward=False, dtype="float32") == PERSIST_STATIC_SMALL_H
    assert _predict(hidden_size=64, dtype="float32", gpu=GpuFacts(5, 2, 24, 90100)) == STANDARD
    assert _predict(hidden_size=64, dtype="float32", gpu=GpuFacts(8, 0, 108, 8200)) == STANDARD


def test_persist_static_needs_half_precision_and_the_common_shape_conditions():
    assert _predict() == PERSIST_STATIC  # fp16, one layer, H and I multiples of 128, B 64 on an H100
    assert _predict(dtype="bfloat16") == STANDARD  # getCudnnDataType: only CUDNN_DATA_HALF
    assert _predict(dtype="float32") == STANDARD
    assert _predict(num_layers=2) == STANDARD
    assert _predict(bidirectional=True) == STANDARD
    assert _predict(hidden_size=1152) == STANDARD  # H <= 1024
    assert _predict(hidden_size=1024) == PERSIST_STATIC
    assert _predict(hidden_size=520) == STANDARD   # H % 128
    assert _predict(input_size=100) == STANDARD    # I % 128


def test_persist_static_device_conditions_follow_the_source():
    # sm >= 8 with >= 98 SMs, not sm_86: LSTM with batch % 8 == 0 and <= 128; never GRU
    assert _predict(gpu=A100, batch=128) == PERSIST_STATIC
    assert _predict(gpu=A100, batch=136) == STANDARD
    assert _predict(gpu=A100, batch=60) == STANDARD
    assert _predict(gpu=A100, cell="gru") == STANDARD
    assert _predict(gpu=A30) == STANDARD
    assert _predict(gpu=A40) == STANDARD
    assert _predict(gpu=T4) == STANDARD
    # Volta: batch % 16 (not 80, 112) or 8, with seq_len/batch bands
    assert _predict(gpu=V100, batch=64, seq_len=40) == PERSIST_STATIC
    assert _predict(gpu=V100, batch=80, seq_len=40) == STANDARD
    assert _predict(gpu=V100, batch=8, seq_len=10) == PERSIST_STATIC
    assert _predict(gpu=V100, batch=64, seq_len=25) == PERSIST_STATIC   # seq >= 20 and batch <= 96
    assert _predict(gpu=V100, batch=128, seq_len=25) == STANDARD
    assert _predict(gpu=V100, batch=32, seq_len=10) == PERSIST_STATIC
    assert _predict(gpu=V100, batch=48, seq_len=10) == STANDARD
    assert _predict(gpu=V100, cell="gru", batch=64, seq_len=40) == PERSIST_STATIC  # Volta has no GRU exclusion


def test_a_case_gets_a_forward_and_a_backward_prediction_labelled_as_one():
    case = tiny_case(hidden_size=160, dtype="float32", device_type="cuda")
    prediction = predict_for_case(case, H100)
    assert prediction["forward"] == PERSIST_STATIC_SMALL_H and prediction["backward"] == STANDARD
    assert prediction["source"].startswith("prediction")
    assert "backward" not in predict_for_case(tiny_case(mode="inference", device_type="cuda"), H100)
