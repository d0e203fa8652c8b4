"""``eager``: the readable reference. Each step projects its own input, then runs the gate math."""

from __future__ import annotations

from torch import nn

from harness.measure.backends import BuiltBackend, cells
from harness.measure.backends.gatelevel import GateLevelRNN, run_steps


def eager_layer(x, state, w_ih, w_hh, b_ih, b_hh, reverse):
    step = cells.lstm_step if len(state) == 2 else cells.gru_step

    def one_step(x_t, *hidden):
        x_proj = x_t @ w_ih.t() + b_ih
        return step(x_proj, *hidden, w_hh, b_hh)

    return run_steps(one_step, x, state, reverse)


def build(name: str, reference: nn.RNNBase) -> BuiltBackend:
    model = GateLevelRNN(reference, eager_layer)
    return BuiltBackend(
        name=name, model=model, parameters=dict(model.named_parameters()),
        facts={"implementation": "gate-level cells in Python, one step at a time, per-step input projection",
               "kernel_library": "ATen operators dispatched one by one"})
