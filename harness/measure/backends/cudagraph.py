"""``cudagraph``: the cuDNN training step of ``nn.LSTM``/``nn.GRU`` captured into CUDA graphs and replayed, as a
production loop on small shapes does (MLPerf's RNN-T did). GPU only.

Written against PyTorch's documented CUDA-graph API (``torch.cuda.CUDAGraph``, ``torch.cuda.graph``, the
"whole network capture" recipe of the CUDA semantics notes): the module is built as a user builds it and
its weights flattened into one buffer (``flatten_parameters``) before capture; a few iterations warm up on
a side stream (cuDNN picks its algorithms and the allocator its blocks outside the capture); then two
graphs are captured into one private memory pool, the forward (``model(x)``) and the loss-and-backward
(``mse_loss(output, target).backward()``), so that the harness's regions (forward, backward, step) keep
their meaning. Input, target, output and every gradient are static: the case's input and target tensors
are the ones captured, and the gradients are those the captured backward allocated (it overwrites them on
each replay, so they are not cleared between iterations).

A graph is captured once per mode, on the first iteration of that mode (the parity iteration, then the
timed mode when it differs). ``capture_ms`` (warm-up plus capture, synchronised) is reported apart, as
compile time is for the compiled backends, and ``graph_pool_bytes``: how much the caching allocator's
reserved memory grew during the captures (each measured from the emptied cache the capture starts from),
which is the graphs' private pool. The capture runs with the case's device current and on a capture
stream of that device, so a case on ``cuda:1`` captures on ``cuda:1`` whatever device is current.
"""

from __future__ import annotations

import gc
import time

import torch
import torch.nn.functional as F
from torch import nn

from harness.measure.backends import BuiltBackend
from harness.measure.backends.cudnn import user_built_copy
from harness.errors import BackendUnavailable

WARMUP_ITERS = 3


def build(name: str, reference: nn.RNNBase) -> BuiltBackend:
    device = next(reference.parameters()).device
    if device.type != "cuda":
        raise BackendUnavailable("CUDA graphs need a CUDA device; this case runs on the "
                                 f"{device.type.upper()}")
    module = user_built_copy(reference)
    module.flatten_parameters()
    graphs = CapturedSteps(module, device)
    facts = {"implementation": f"torch.nn.{reference.mode}, forward and loss+backward captured as CUDA graphs "
                               "(torch.cuda.graph), replayed",
             "kernel_library": "cuDNN (captured)"}
    return BuiltBackend(name=name, model=module, parameters=dict(module.named_parameters()), facts=facts,
                        runtime_facts=graphs.facts, graphs=graphs)


class CapturedStep:
    """The graphs of one mode and the static tensors they read and write."""

    def __init__(self, forward_graph, backward_graph, outputs):
        self.forward_graph = forward_graph
        self.backward_graph = backward_graph
        self.outputs = outputs  # (output, state), rewritten by every forward replay

    def replay_forward(self) -> None:
        self.forward_graph.replay()

    def replay_backward(self) -> None:
        self.backward_graph.replay()


class CapturedSteps:
    """Captures on first use per mode (``captured(work)``); ``work.model`` may wrap the module (masking of
    a padded variable-length batch), and the wrapper is captured with it."""

    def __init__(self, module: nn.RNNBase, device: torch.device):
        self.module = module
        self.device = device
        self.steps: dict[str, CapturedStep] = {}
        self.captures: dict[str, dict] = {}

    def captured(self, work) -> CapturedStep:
        step = self.steps.get(work.mode)
        if step is None:
            step = self.steps[work.mode] = self._capture(work)
        return step

    def _capture(self, work) -> CapturedStep:
        # torch.cuda.graph synchronises, empties the cache and begins the capture on the *current* device, and
        # captures its stream: on any other device than the current one, the model's kernels would go to a
        # stream that is not capturing. So the whole capture runs with the case's device current, on a
        # capture stream of that device.
        with torch.cuda.device(self.device):
            return self._capture_on_device(work)

    def _capture_on_device(self, work) -> CapturedStep:
        parameters = list(self.module.parameters())
        with_grad = work.mode != "inference"
        torch.cuda.synchronize(self.device)
        started = time.perf_counter()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.set_grad_enabled(with_grad):
            for _ in range(WARMUP_ITERS):
                for parameter in parameters:
                    parameter.grad = None
                output, _ = work.model(work.x)
                if work.mode == "forward_backward":
                    F.mse_loss(output, work.target).backward()
        torch.cuda.current_stream(self.device).wait_stream(side)
        for parameter in parameters:
            parameter.grad = None
        capture_stream = torch.cuda.Stream(self.device)
        pool = torch.cuda.graph_pool_handle()
        pool_bytes = 0
        forward_graph = torch.cuda.CUDAGraph()
        reserved_before = _reserved_after_emptying_the_cache(self.device)
        with torch.set_grad_enabled(with_grad), torch.cuda.graph(forward_graph, pool=pool, stream=capture_stream):
            outputs = work.model(work.x)
        pool_bytes += torch.cuda.memory_reserved(self.device) - reserved_before
        backward_graph = None
        if work.mode == "forward_backward":
            backward_graph = torch.cuda.CUDAGraph()
            reserved_before = _reserved_after_emptying_the_cache(self.device)
            with torch.cuda.graph(backward_graph, pool=pool, stream=capture_stream):
                F.mse_loss(outputs[0], work.target).backward()
            pool_bytes += torch.cuda.memory_reserved(self.device) - reserved_before
        torch.cuda.synchronize(self.device)
        self.captures[work.mode] = {
            "capture_ms": round((time.perf_counter() - started) * 1e3, 3),
            "warmup_iters": WARMUP_ITERS,
            "graphs": 1 + (backward_graph is not None),
            "graph_pool_bytes": pool_bytes,
        }
        return CapturedStep(forward_graph, backward_graph, outputs)

    def facts(self) -> dict:
        return {"cuda_graph": {mode: dict(capture) for mode, capture in self.captures.items()}}


def _reserved_after_emptying_the_cache(device: torch.device) -> int:
    """The caching allocator's reserved bytes as the capture starts from them: ``torch.cuda.graph`` collects
    garbage and empties the cache before it begins capturing, so a reading taken before that would count
    the freed blocks against the graphs' pool (which then came out negative)."""
    torch.cuda.synchronize(device)
    gc.collect()
    torch.cuda.empty_cache()
    return torch.cuda.memory_reserved(device)
