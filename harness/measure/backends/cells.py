"""Gate-level LSTM and GRU math: the one written-out copy every gate-level backend runs.

Weights follow ``nn.LSTM``/``nn.GRU``'s layout so the same tensors serve every backend:
LSTM stacks the gates i, f, g, o; GRU stacks r, z, n. ``x_proj`` is a step's input already multiplied
by ``weight_ih`` with ``bias_ih`` added, so a backend may project one step at a time (eager) or every
step in one matmul up front (TorchScript, compile).

The functions are TorchScript-compatible: the TorchScript backend scripts them as they are.
"""

from typing import List, Tuple

import torch
from torch import Tensor


def lstm_step(x_proj: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tuple[Tensor, Tensor]:
    gates = x_proj + torch.mm(h, w_hh.t()) + b_hh
    i, f, g, o = gates.chunk(4, 1)
    input_gate = torch.sigmoid(i)
    forget_gate = torch.sigmoid(f)
    candidate = torch.tanh(g)
    output_gate = torch.sigmoid(o)
    c = forget_gate * c + input_gate * candidate
    h = output_gate * torch.tanh(c)
    return h, c


def gru_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    h_proj = torch.mm(h, w_hh.t()) + b_hh
    x_r, x_z, x_n = x_proj.chunk(3, 1)
    h_r, h_z, h_n = h_proj.chunk(3, 1)
    reset_gate = torch.sigmoid(x_r + h_r)
    update_gate = torch.sigmoid(x_z + h_z)
    # PyTorch's placement: the reset gate scales (W_hn h + b_hn), after the hidden projection.
    candidate = torch.tanh(x_n + reset_gate * h_n)
    return (1.0 - update_gate) * candidate + update_gate * h


def project_inputs(x: Tensor, w_ih: Tensor, b_ih: Tensor) -> Tensor:
    """Every step's input projection in one matmul: (T, B, I) -> (T, B, G*H)."""
    steps, batch, width = x.shape
    return torch.addmm(b_ih, x.reshape(steps * batch, width), w_ih.t()).view(steps, batch, -1)


def lstm_layer(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
               reverse: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """One layer, one direction, input projection up front (the loop TorchScript compiles)."""
    x_proj = project_inputs(x, w_ih, b_ih)
    steps = x.size(0)
    outputs: List[Tensor] = []
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        h, c = lstm_step(x_proj[t], h, c, w_hh, b_hh)
        outputs.append(h)
    if reverse:
        outputs.reverse()
    return torch.stack(outputs), h, c


def gru_layer(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
              reverse: bool) -> Tuple[Tensor, Tensor]:
    x_proj = project_inputs(x, w_ih, b_ih)
    steps = x.size(0)
    outputs: List[Tensor] = []
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        h = gru_step(x_proj[t], h, w_hh, b_hh)
        outputs.append(h)
    if reverse:
        outputs.reverse()
    return torch.stack(outputs), h
