"""``torch.compile`` backends, each in the suite's torch.compile ``compile_mode`` (default,
reduce-overhead: CUDA graphs, max-autotune).

``compile``: the gate-level step compiled once (``fullgraph=True``) and called from a Python time loop,
with every step's input projection in one matmul up front. Compile time does not grow with seq_len: the
loop is not unrolled into one graph.

``compile_module``: ``torch.compile`` of ``nn.LSTM``/``nn.GRU`` itself. Dynamo declines RNN modules and
runs them eagerly; the graph and graph-break counts recorded for every compiled case make that visible
instead of reporting an eager number as a compiled one.

``compile_rnn``: the same with ``torch._dynamo.config.allow_rnn = True`` (set around every call, since Dynamo
reads it whenever it traces: a recompilation without it would decline the module), so Dynamo traces the
module instead of declining it. On the CPU, oneDNN is switched off around the calls: with it, torch
2.14's Inductor fails on the ``aten.mkldnn_rnn_layer`` its LSTM decomposition emits ("expected Tensor()
for op: torch.ops.aten.mkldnn_rnn_layer.default"); the result says so (``backend.onednn_disabled``).
"""

from __future__ import annotations

from contextlib import ExitStack

import torch
from torch import nn

from harness.measure.backends import BuiltBackend, cells
from harness.measure.backends.cudnn import user_built_copy
from harness.measure.backends.gatelevel import GateLevelRNN, run_steps
from harness.errors import BackendUnavailable


def build(name: str, reference: nn.RNNBase, compile_mode: str = "default") -> BuiltBackend:
    if not hasattr(torch, "compile"):
        raise BackendUnavailable(f"torch.compile is not available in torch {torch.__version__}")
    if name == "compile_rnn" and not has_allow_rnn():
        raise BackendUnavailable(f"torch {torch.__version__} has no torch._dynamo.config.allow_rnn")
    # Start every compiled case cold: caches from earlier cases would count against Dynamo's recompile
    # limit (past it, Dynamo silently runs eagerly) and would hide this case's compile time.
    torch.compiler.reset()
    counters = _dynamo_counters()
    if counters is not None:
        counters.clear()
    options = {"dynamic": False, "mode": compile_mode}
    mode_fact = {"compile_mode": compile_mode}
    if name == "compile":
        model = GateLevelRNN(reference, _compiled_layer(reference.mode, options))
        parameters = dict(model.named_parameters())
        facts = {"implementation": "torch.compile (inductor) of one gate-level time step, fullgraph; "
                                   "Python time loop; input projection up front",
                 "kernel_library": "Inductor-generated kernels", **mode_fact}
    elif name == "compile_module":
        module = user_built_copy(reference)
        model = torch.compile(module, **options)
        parameters = dict(module.named_parameters())
        facts = {"implementation": f"torch.compile (inductor) of torch.nn.{reference.mode}", **mode_fact}
    else:
        module = user_built_copy(reference)
        onednn_off = next(module.parameters()).device.type == "cpu"
        model = _AllowRnnCall(torch.compile(module, **options), onednn_off)
        parameters = dict(module.named_parameters())
        facts = {"implementation": f"torch.compile (inductor) of torch.nn.{reference.mode} with "
                                   "torch._dynamo.config.allow_rnn = True", **mode_fact}
        if onednn_off:
            facts["onednn_disabled"] = True
            facts["note"] = ("oneDNN off around the calls: with it torch's Inductor fails on "
                             "aten.mkldnn_rnn_layer on a CPU")
    return BuiltBackend(name=name, model=model, parameters=parameters, facts=facts,
                        runtime_facts=compile_facts)


def has_allow_rnn() -> bool:
    """Whether the installed torch has Dynamo's switch for tracing RNN modules."""
    try:
        import torch._dynamo.config as dynamo_config
    except ImportError:
        return False
    return hasattr(dynamo_config, "allow_rnn")


class _AllowRnnCall:
    """The compiled module called with Dynamo allowed to trace RNN modules (and, on a CPU, oneDNN off)."""

    def __init__(self, compiled, onednn_off: bool):
        self.compiled = compiled
        self.onednn_off = onednn_off

    def __call__(self, x):
        with ExitStack() as stack:
            stack.enter_context(torch._dynamo.config.patch(allow_rnn=True))
            if self.onednn_off:
                stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
            return self.compiled(x)


def _compiled_layer(mode: str, options: dict):
    step = torch.compile(cells.lstm_step if mode == "LSTM" else cells.gru_step, fullgraph=True, **options)

    def layer(x, state, w_ih, w_hh, b_ih, b_hh, reverse):
        x_proj = cells.project_inputs(x, w_ih, b_ih)
        return run_steps(lambda x_t, *hidden: step(x_t, *hidden, w_hh, b_hh), x_proj, state, reverse)

    return layer


def _dynamo_counters():
    # Dynamo keeps its graph and graph-break tallies here; there is no public API for them yet.
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return None
    return counters


def compile_facts() -> dict:
    """Graphs Dynamo produced and the graph breaks it took since this case's compile started."""
    counters = _dynamo_counters()
    if counters is None:
        return {"compile": {"counts_available": False}}
    graphs = int(counters["stats"].get("unique_graphs", 0))
    breaks = counters["graph_break"]
    reasons = sorted({str(reason).strip().splitlines()[0] for reason in breaks})
    return {"compile": {
        "graphs": graphs,
        "graph_breaks": int(sum(breaks.values())),
        "break_reasons": reasons,
        "fell_back_to_eager": graphs == 0,
    }}
