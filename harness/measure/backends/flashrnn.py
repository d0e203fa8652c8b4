"""FlashRNN's kernels (Pöppel, Beck, Hochreiter, arXiv 2412.07752; ``pip install flashrnn``) on the case's
``nn.LSTM``/``nn.GRU`` weights, one backend per kernel variant:

``flashrnn_vanilla``     ``backend="vanilla"``: its PyTorch time loop (runs anywhere)
``flashrnn_triton``      ``backend="triton_fused"``: one fused Triton kernel per sequence (LSTM only; head
                         dimension a power of two, 16 to 64; on a CPU only under ``TRITON_INTERPRET=1``,
                         Triton's interpreter: a correctness check whose times are not the kernel's)
``flashrnn_cuda``        ``backend="cuda"``: CUDA, alternating a recurrent matmul and a pointwise kernel
``flashrnn_cuda_fused``  ``backend="cuda_fused"``: one CUDA kernel with ``wmma`` and the recurrent matrix
                         cached in registers and shared memory (LSTM only: FlashRNN runs GRU's as ``cuda``)

FlashRNN computes ``g_t = R s_{t-1} + Wx_t + b`` per head and leaves the input projection to the caller. Here
one head spans the whole hidden state (N = 1, head dimension = hidden size): a standard LSTM/GRU. Every
step's input projection is one matmul up front, inside the timed forward, so the work matches ``nn.LSTM``'s.
Layers and directions are stacked as the gate-level backends stack them (:class:`GateLevelRNN`, which keeps
``nn.LSTM``'s parameter names, so gradients compare with the reference name by name); the reverse direction
runs FlashRNN on the time-flipped projection and flips its output back (two copies ``nn.LSTM`` does not make).

Weights in FlashRNN's layout (``R``: [G, N, D, D], ``b``: [G, N, D], ``Wx``: [B, T, G, N, D]):
LSTM gates i, f, g, o in ``nn.LSTM``'s order, ``b = b_ih + b_hh``. GRU: ``Wx`` holds r, z, n of the input;
``R`` the hidden projection in FlashRNN's order n, r, z; ``b`` is [b_hn, b_ir + b_hr, b_iz + b_hz, b_in],
so that the reset gate scales ``W_hn h + b_hn`` as in ``nn.GRU``. Parity checks all of it on every case.

The first call compiles (Triton autotuning; nvcc for the CUDA kernels, after FlashRNN's own random wait of up
to 10 s): it is the case's parity iteration, reported as ``first_iteration_ms``, never in the median. The
CUDA build is verbose on file descriptor 1, which in a worker carries the results protocol: the calls that may
compile run with descriptors 1 and 2 pointed at a log file, whose last line is kept if the build fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version

import torch
from torch import Tensor, nn

from harness.measure.backends import BuiltBackend
from harness.measure.backends.gatelevel import GateLevelRNN
from harness.errors import BackendUnavailable

KERNELS = {"flashrnn_vanilla": "vanilla", "flashrnn_triton": "triton_fused", "flashrnn_cuda": "cuda",
           "flashrnn_cuda_fused": "cuda_fused"}
DESCRIPTIONS = {
    "vanilla": "FlashRNN's PyTorch time loop",
    "triton_fused": "FlashRNN's fused Triton kernel",
    "cuda": "FlashRNN's alternating CUDA kernels (recurrent matmul, then pointwise)",
    "cuda_fused": "FlashRNN's fused CUDA kernel (wmma, recurrent matrix cached in registers/SRAM)",
}
DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def installed_version() -> str | None:
    try:
        return version("flashrnn")
    except PackageNotFoundError:
        return None


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def build(name: str, reference: nn.RNNBase) -> BuiltBackend:
    kernel = KERNELS[name]
    flashrnn_version = installed_version()
    try:
        from flashrnn import FlashRNNConfig, flashrnn
    except Exception as exc:  # not installed, or its import fails here (a missing dependency)
        raise BackendUnavailable(f"flashrnn cannot be imported ({type(exc).__name__}: {_first_line(exc)}); "
                                 "pip install 'rnnbench[flashrnn]'") from None
    device = next(reference.parameters()).device
    dtype = next(reference.parameters()).dtype
    if dtype not in DTYPE_NAMES:
        raise BackendUnavailable(f"FlashRNN's kernels take float32, float16 or bfloat16, not {dtype}")
    if kernel.startswith("cuda"):
        _check_cuda_toolchain(device)
    state = _KernelState(kernel)
    function = "lstm" if reference.mode == "LSTM" else "gru"

    def layer(x, hidden, w_ih, w_hh, b_ih, b_hh, reverse):
        return _flashrnn_layer(flashrnn, FlashRNNConfig, state, function, DTYPE_NAMES[dtype],
                               x, hidden, w_ih, w_hh, b_ih, b_hh, reverse)

    module = GateLevelRNN(reference, layer)
    model = _CudaKernelCalls(module, device) if kernel.startswith("cuda") else module
    facts = {"implementation": f"{DESCRIPTIONS[kernel]} (flashrnn {flashrnn_version}), one head of the whole "
                               "hidden size; input projection in one matmul up front",
             "kernel_library": f"FlashRNN {flashrnn_version} {kernel}",
             "flashrnn": {"version": flashrnn_version, "kernel_requested": kernel, "head_dim": reference.hidden_size,
                          "num_heads": 1}}
    if kernel == "triton_fused" and dtype == torch.float32 and device.type == "cuda":
        facts["note"] = "Triton's tl.dot multiplies float32 in TF32 by default: the recurrent matmuls are TF32"
    if kernel == "triton_fused" and device.type != "cuda":
        facts["triton_interpreter"] = True
        facts["note"] = ("TRITON_INTERPRET=1: Triton's interpreter ran the kernel on the CPU; a correctness check, "
                         "its times are the interpreter's, not the kernel's")
    if kernel.startswith("cuda"):
        facts["compile"] = ("compiled with nvcc in the first call (first_iteration_ms), after FlashRNN's random "
                            "wait of up to 10 s; cached by torch in TORCH_EXTENSIONS_DIR for later processes")

    def runtime_facts() -> dict:
        return {"flashrnn": {**facts["flashrnn"], "kernel_ran": sorted(state.variants_ran)}}

    return BuiltBackend(name=name, model=model, parameters=dict(module.named_parameters()), facts=facts,
                        runtime_facts=runtime_facts)


class _KernelState:
    """The FlashRNN configuration of each (batch, head dimension) the layers met, built once (FlashRNN's
    ``flashrnn()`` would build one per call), and the kernel variants those configurations resolved to."""

    def __init__(self, kernel: str):
        self.kernel = kernel
        self.configs: dict[tuple, object] = {}
        self.variants_ran: set[str] = set()

    def config(self, config_class, function: str, dtype: str, batch: int, hidden: int):
        key = (batch, hidden)
        config = self.configs.get(key)
        if config is None:
            config = config_class(backend=self.kernel, function=function, dtype=dtype, dtype_w=dtype, dtype_r=dtype,
                                  dtype_b=dtype, head_dim=hidden, num_heads=1, batch_size=batch)
            if config.backend != self.kernel:
                raise BackendUnavailable(f"FlashRNN runs {function} with its {config.backend} kernel when asked "
                                         f"for {self.kernel}; that is another backend's number")
            self.configs[key] = config
            self.variants_ran.add(config.backend)
        return config


def _flashrnn_layer(flashrnn, config_class, state: _KernelState, function: str, dtype: str, x: Tensor,
                    hidden: tuple, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, reverse: bool):
    steps, batch, width = x.shape
    size = w_hh.shape[1]
    gates = w_ih.shape[0] // size
    # every step's input projection in one matmul; the biases go to FlashRNN's b
    wx = torch.mm(x.reshape(steps * batch, width), w_ih.t()).view(steps, batch, gates, 1, size)
    if reverse:
        wx = wx.flip(0)
    recurrent, bias = flashrnn_weights(function, w_hh, b_ih, b_hh)
    initial = torch.stack(hidden).view(len(hidden), batch, 1, 1, size)
    config = state.config(config_class, function, dtype, batch, size)
    states, last = flashrnn(wx.transpose(0, 1), recurrent, bias, states=initial, function=function, config=config)
    # states: [S, B, T, N, D]; last: [S, B, 1, N, D]; the first state is h
    output = states[0].reshape(batch, steps, size).transpose(0, 1)
    if reverse:
        output = output.flip(0)
    return output, tuple(last[index].reshape(batch, size) for index in range(len(hidden)))


def flashrnn_weights(function: str, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
    """nn.LSTM/nn.GRU's recurrent weight and biases in FlashRNN's layout for one head: ``R`` [G, 1, D, D]
    (``R[g, 0, d, p]`` maps the previous state's p to gate g's d) and ``b`` [G_b, 1, D]. Differentiable, so
    the gradients reach the nn.LSTM-named parameters."""
    size = w_hh.shape[1]
    if function == "lstm":
        return w_hh.view(4, 1, size, size), (b_ih + b_hh).view(4, 1, size)
    # FlashRNN's GRU: recurrent gates n, r, z; biases [n of the hidden projection, r, z, n of the input]
    w_r, w_z, w_n = w_hh.view(3, size, size)
    (bi_r, bi_z, bi_n), (bh_r, bh_z, bh_n) = b_ih.view(3, size), b_hh.view(3, size)
    return (torch.stack((w_n, w_r, w_z)).unsqueeze(1),
            torch.stack((bh_n, bi_r + bh_r, bi_z + bh_z, bi_n)).unsqueeze(1))


class _CudaKernelCalls:
    """The model with the case's GPU current (FlashRNN's CUDA kernels read the current device's properties
    and launch there), and the calls that may compile (the first with and the first without autograd) run
    with file descriptors 1 and 2 pointed at a log file: torch's extension build prints the nvcc and ninja
    output there, and descriptor 1 of a worker carries its results protocol."""

    def __init__(self, module: nn.Module, device: torch.device):
        self.module = module
        self.device = device
        self.seen: set[bool] = set()

    def __call__(self, x):
        with torch.cuda.device(self.device):
            return self._call(x)

    def _call(self, x):
        grad = torch.is_grad_enabled()
        if grad in self.seen:
            return self.module(x)
        with tempfile.TemporaryFile(mode="w+b") as log:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            saved = [os.dup(1), os.dup(2)]
            try:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                try:
                    result = self.module(x)
                finally:
                    for stream in (sys.stdout, sys.stderr):
                        stream.flush()
                    os.dup2(saved[0], 1)
                    os.dup2(saved[1], 2)
            except (BackendUnavailable, MemoryError, torch.cuda.OutOfMemoryError):
                raise
            except Exception as exc:
                log.seek(0)
                raise _with_build_log(exc, log.read().decode(errors="replace")) from None
            finally:
                for fd in saved:
                    os.close(fd)
        self.seen.add(grad)
        return result


def _with_build_log(exc: Exception, log: str) -> Exception:
    """The exception a failed first call becomes: no tiling of FlashRNN's kernel for this shape is a skip;
    anything else keeps its message, with the build log's last error line."""
    if isinstance(exc, ValueError) and "solution of constraints" in str(exc):
        return BackendUnavailable(f"FlashRNN finds no kernel tiling for this shape on this GPU ({_first_line(exc)})")
    errors = [line.strip() for line in log.splitlines() if "error" in line.lower()]
    detail = f" (build log: {errors[-1][:200]})" if errors else ""
    return RuntimeError(f"{type(exc).__name__}: {_first_line(exc)}{detail}")


def _check_cuda_toolchain(device: torch.device) -> None:
    """What FlashRNN's CUDA kernels need before their first call compiles them: a GPU of compute capability
    8.0 or later, nvcc and ninja."""
    if device.type != "cuda":
        raise BackendUnavailable("FlashRNN's CUDA kernels need a CUDA GPU")
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        raise BackendUnavailable(f"FlashRNN's CUDA kernels need compute capability 8.0 or later; this GPU has "
                                 f"{major}.{minor}")
    from torch.utils import cpp_extension

    home = cpp_extension.CUDA_HOME
    nvcc = os.path.join(home, "bin", "nvcc") if home else None
    if not (nvcc and os.path.exists(nvcc)) and not shutil.which("nvcc"):
        raise BackendUnavailable(f"FlashRNN compiles its CUDA kernels with nvcc on first use; no nvcc found "
                                 f"(CUDA_HOME={home})")
    if not cpp_extension.is_ninja_available():
        raise BackendUnavailable("FlashRNN builds its CUDA kernels with torch's extension builder, which needs "
                                 "ninja on PATH (pip install ninja)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
