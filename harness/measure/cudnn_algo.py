"""Which cuDNN RNN algorithm PyTorch asks for, predicted from the shape, dtype and GPU: a prediction, never a
measurement. What really ran shows in the kernel names (:func:`algorithm_from_kernels`).

A transcription of ``get_algo``, ``use_rnn_persist_small_h``, ``use_persist_common_heuristics`` and
``use_persist_device_heuristics`` in ``aten/src/ATen/native/cudnn/RNN.cpp`` of pytorch/pytorch at commit
357b8267a5eb930eeb73ebd3bc18b841a7c1f03b (the version read for this module; another torch may differ).
PyTorch picks the algorithm separately for the forward and the backward (``get_algo(..., forward)``): the
small-hidden-size persistent algorithm has lower limits in the backward. Packed sequences and LSTMs with
projections always get the standard algorithm; rnnbench uses neither. cuDNN itself may still decline an
algorithm it was asked for; the kernel names settle it.
"""

from __future__ import annotations

from dataclasses import dataclass

STANDARD = "STANDARD"
PERSIST_STATIC = "PERSIST_STATIC"
PERSIST_STATIC_SMALL_H = "PERSIST_STATIC_SMALL_H"
SOURCE = ("prediction: PyTorch's get_algo heuristic, aten/src/ATen/native/cudnn/RNN.cpp at pytorch commit "
          "357b8267a5eb930eeb73ebd3bc18b841a7c1f03b")
SMALL_H_MIN_CUDNN = 8201  # CUDNN_VERSION >= 8201 (8.2.1) compiles the small-H branch in


@dataclass(frozen=True)
class GpuFacts:
    """What the heuristic reads of ``cudaDeviceProp`` and the cuDNN build."""

    major: int
    minor: int
    multiprocessor_count: int
    cudnn_version: int | None = None  # torch.backends.cudnn.version(), e.g. 90100; None: unknown (assume >= 8.2.1)


def use_rnn_persist_small_h(cell: str, hidden_size: int, gpu: GpuFacts, forward: bool) -> bool:
    if gpu.cudnn_version is not None and gpu.cudnn_version < SMALL_H_MIN_CUDNN:
        return False
    if gpu.major < 6:
        return False
    # LSTM and GRU only (rnnbench has no RELU/TANH RNNs): forward H <= 192, backward H <= 128
    return hidden_size <= (192 if forward else 128)


def use_persist_common_heuristics(hidden_size: int, input_size: int, num_layers: int, bidirectional: bool) -> bool:
    return (num_layers == 1 and hidden_size <= 1024 and not bidirectional and hidden_size % 128 == 0
            and input_size % 128 == 0)


def use_persist_device_heuristics(cell: str, batch: int, seq_len: int, gpu: GpuFacts) -> bool:
    if gpu.major == 7:
        if gpu.minor == 5:  # Turing excluded
            return False
        return (((batch % 16 == 0 and batch not in (80, 112)) or batch == 8)
                and ((seq_len >= 40 and batch <= 128) or (seq_len >= 20 and batch <= 96)
                     or (seq_len >= 10 and batch <= 32)))
    if gpu.major >= 8 and gpu.multiprocessor_count >= 98:  # the SM count excludes A30
        if gpu.minor == 6:  # sm_86 excluded
            return False
        if cell == "gru":  # persistent GRU excluded
            return False
        return batch % 8 == 0 and batch <= 128  # LSTM
    return False


def predict_algorithm(cell: str, dtype: str, batch: int, seq_len: int, input_size: int, hidden_size: int,
                      num_layers: int, bidirectional: bool, gpu: GpuFacts, forward: bool = True) -> str:
    """The ``cudnnRNNAlgo_t`` PyTorch's ``get_algo`` asks for (without its ``CUDNN_RNN_ALGO_`` prefix).

    ``input_size`` is the case's input width (the heuristic reads the input tensor's last dimension).
    """
    if dtype != "float64" and use_rnn_persist_small_h(cell, hidden_size, gpu, forward):
        return PERSIST_STATIC_SMALL_H
    if dtype == "float16" and use_persist_common_heuristics(hidden_size, input_size, num_layers, bidirectional) \
            and use_persist_device_heuristics(cell, batch, seq_len, gpu):
        return PERSIST_STATIC
    return STANDARD


def predict_for_case(case, gpu: GpuFacts) -> dict:
    """The forward and backward prediction for a case, labelled as a prediction."""
    shape = dict(cell=case.cell, dtype=case.dtype, batch=case.batch, seq_len=case.seq_len,
                 input_size=case.input_size, hidden_size=case.hidden_size, num_layers=case.num_layers,
                 bidirectional=case.bidirectional, gpu=gpu)
    prediction = {"forward": predict_algorithm(**shape, forward=True)}
    if case.mode == "forward_backward":
        prediction["backward"] = predict_algorithm(**shape, forward=False)
    prediction["source"] = SOURCE
    return prediction


def gpu_facts(device) -> GpuFacts:
    """The facts of a CUDA device, read through torch (on a machine with the GPU)."""
    import torch

    properties = torch.cuda.get_device_properties(device)
    return GpuFacts(major=properties.major, minor=properties.minor,
                    multiprocessor_count=properties.multi_processor_count,
                    cudnn_version=torch.backends.cudnn.version())


def algorithm_from_kernels(kernel_names) -> str | None:
    """What the kernel names show: 'persistent' when cuDNN's persistent kernels ran (RNN_blockPersist_*),
    'standard' when only its standard-algorithm cells ran, None when no cuDNN RNN kernel is in the trace."""
    names = list(kernel_names)
    if any("RNN_blockPersist" in name for name in names):
        return "persistent"
    standard = ("elemWiseRNNcell", "LSTM_elementWise", "GRU_elementWise", "RNN_elementWise", "GENERIC_elementWise")
    if any(marker in name for name in names for marker in standard):
        return "standard"
    return None
