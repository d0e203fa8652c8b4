"""What kind of work a GPU kernel (or a CPU operator) does, from its name: the classes of ``rnnbench profile``.

GPU kernels are classified by patterns on the names CUPTI reports (the ``name`` of ``kernel``, ``gpu_memcpy``
and ``gpu_memset`` events of a torch.profiler trace). The patterns were checked against kernel names from real
GPU traces and profiler listings, kept with their sources in ``tests/data/kernel_names.json``
(``tests/measure/test_kernel_classes.py``); refresh that file from a GPU with ``scripts/gpu-check.sh``.

CPU operators (aten operators in a CPU trace) are classified by their operator names into the same classes,
where the class means the same kind of work (the RNN library: oneDNN's fused RNN instead of cuDNN's).

The first rule that matches decides, in the order of :data:`KERNEL_RULES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class KernelClass:
    name: str
    label: str
    color: str  # one colour per class in every chart


RNN_LIBRARY = KernelClass("rnn_library", "cuDNN RNN / oneDNN RNN", "#1f77b4")
GEMM = KernelClass("gemm", "GEMM", "#ff7f0e")
ELEMENTWISE = KernelClass("elementwise", "element-wise / fused", "#2ca02c")
REDUCTION = KernelClass("reduction", "reduction", "#9467bd")
COPY = KernelClass("copy", "copy / memset", "#8c564b")
TRITON = KernelClass("triton", "Triton-generated", "#e377c2")
OTHER = KernelClass("other", "other", "#bcbd22")
IDLE = KernelClass("idle", "idle", "#d9d9d9")
IDLE_LABELS = {"cuda": "GPU idle (waits on the host)", "cpu": "outside operators (Python, autograd engine, profiler)"}


def class_label(name: str, device_type: str) -> str:
    """How a class is named in tables and charts; idle means something else on each device."""
    if name == IDLE.name:
        return IDLE_LABELS.get(device_type, IDLE.label)
    return CLASS_BY_NAME[name].label if name in CLASS_BY_NAME else name

CLASSES = (RNN_LIBRARY, GEMM, ELEMENTWISE, REDUCTION, COPY, TRITON, OTHER)
CLASS_BY_NAME = {kind.name: kind for kind in CLASSES + (IDLE,)}

# Trace categories of device activity that are not kernels: every one is a copy or a memset.
COPY_CATEGORIES = ("gpu_memcpy", "gpu_memset")

# (class, pattern) in the order they are tried. Inductor names its kernels triton_<kind>_fused_...; older
# Triton kernels are named triton__0d1d2d...; both come first so that a fused reduction counts as Triton.
KERNEL_RULES: tuple[tuple[KernelClass, re.Pattern], ...] = (
    (TRITON, re.compile(r"^triton_")),
    (COPY, re.compile(r"^Memcpy |^Memset |direct_copy_kernel|CatArrayBatchedCopy|copy_kernel")),
    # cuDNN's RNN kernels: persistent (RNN_blockPersist_fp_LSTM, ..._bp_GRU), the standard algorithm's cells
    # (elemWiseRNNcell, LSTM_elementWise_fp, RNN_elementWise_bp1, GENERIC_elementWise_bp2) and its dropout
    # state set-up (cudnn::detail::initstates)
    (RNN_LIBRARY, re.compile(r"RNN_blockPersist|elemWiseRNNcell|(?:LSTM|GRU|RNN|GENERIC)_elementWise_"
                             r"|cudnn::detail::initstates")),
    # cuBLAS/cuBLASLt (sm90_xmma_gemm_*, ampere_sgemm_*, nvjet_*, gemv2T_kernel, its split-K reduction and
    # epilogue), CUTLASS (also inside cuDNN: cutlass__5x_cudnn::Kernel), cuDNN's implicit-GEMM kernels
    (GEMM, re.compile(r"gemm|gemv|nvjet|cutlass|splitKreduce|cublasLt|epilogue::impl", re.IGNORECASE)),
    (REDUCTION, re.compile(r"reduce_kernel|DeviceReduce|DeviceSegmentedReduce|reduction", re.IGNORECASE)),
    # ATen's element-wise launchers (vectorized_/unrolled_/elementwise_kernel) and its fused RNN cells
    (ELEMENTWISE, re.compile(r"elementwise|pointwise|_cell_forward|_cell_backward|fused", re.IGNORECASE)),
)

# CPU: aten operator names (without the "aten::" prefix), checked in this order.
OPERATOR_RULES: tuple[tuple[KernelClass, re.Pattern], ...] = (
    (RNN_LIBRARY, re.compile(r"^(mkldnn_rnn|_cudnn_rnn|miopen_rnn|_thnn_fused_(lstm|gru)_cell)")),
    (GEMM, re.compile(r"^(addmm|mm|bmm|baddbmm|matmul|linear|addmv|mv|dot|_?mkldnn_linear)")),
    # operators that move or fill memory; views (t, view, select, ...) and allocations (empty) are other
    (COPY, re.compile(r"^(copy_|_copy_from|_to_copy|to|clone|contiguous|zero_|zeros|zeros_like|new_zeros|fill_|"
                      r"cat|_cat|stack|index_select)$")),
    (REDUCTION, re.compile(r"^(sum|mean|mse_loss|mse_loss_backward|norm|amax|max|min|prod)")),
    (ELEMENTWISE, re.compile(r"^(add|sub|mul|div|sigmoid|tanh|relu|neg|rsub|ones_like|fill|threshold|exp|"
                             r"sigmoid_backward|tanh_backward|addcmul|lerp|where|pow)")),
)


def classify_kernel(name: str, category: str = "kernel") -> KernelClass:
    """The class of a device activity named ``name`` (trace category ``kernel``, ``gpu_memcpy``, ``gpu_memset``)."""
    if category in COPY_CATEGORIES:
        return COPY
    for kind, pattern in KERNEL_RULES:
        if pattern.search(name):
            return kind
    return OTHER


def classify_operator(name: str) -> KernelClass:
    """The class of a CPU operator (``aten::addmm`` -> GEMM). Non-aten names (Python functions) are other."""
    if not name.startswith("aten::"):
        return OTHER
    bare = name[len("aten::"):]
    for kind, pattern in OPERATOR_RULES:
        if pattern.search(bare):
            return kind
    return OTHER
