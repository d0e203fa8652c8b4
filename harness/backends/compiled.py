"""``torch.compile`` backends.

``compile``: the gate-level step compiled once (``fullgraph=True``) and called from a Python time loop,
with every step's input projection in one matmul up front. Compile time does not grow with seq_len: the
loop is not unrolled into one graph.

``compile_module``: ``torch.compile`` of ``nn.LSTM``/``nn.GRU`` itself. Dynamo declines RNN modules and
runs them eagerly; the graph and graph-break counts recorded for every compiled case make that visible
instead of reporting an eager number as a compiled one.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.backends import BuiltBackend, cells
from harness.backends.cudnn import user_built_copy
from harness.backends.gatelevel import GateLevelRNN, run_steps
from harness.errors import BackendUnavailable


def build(name: str, reference: nn.RNNBase) -> BuiltBackend:
    if not hasattr(torch, "compile"):
        raise BackendUnavailable(f"torch.compile is not available in torch {torch.__version__}")
    # Start every compiled case cold: caches from earlier cases would count against Dynamo's recompile
    # limit (past it, Dynamo silently runs eagerly) and would hide this case's compile time.
    torch.compiler.reset()
    counters = _dynamo_counters()
    if counters is not None:
        counters.clear()
    if name == "compile":
        model = GateLevelRNN(reference, _compiled_layer(reference.mode))
        parameters = dict(model.named_parameters())
        facts = {"implementation": "torch.compile (inductor) of one gate-level time step, fullgraph; "
                                   "Python time loop; input projection up front",
                 "kernel_library": "Inductor-generated kernels"}
    else:
        module = user_built_copy(reference)
        model = torch.compile(module, dynamic=False)
        parameters = dict(module.named_parameters())
        facts = {"implementation": f"torch.compile (inductor) of torch.nn.{reference.mode}"}
    return BuiltBackend(name=name, model=model, parameters=parameters, facts=facts,
                        runtime_facts=compile_facts)


def _compiled_layer(mode: str):
    step = torch.compile(cells.lstm_step if mode == "LSTM" else cells.gru_step, dynamic=False, fullgraph=True)

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
