"""A multi-layer, optionally bidirectional RNN built from gate-level layers.

Its parameters have exactly the names and shapes of ``nn.LSTM``/``nn.GRU``'s, so weights copy over from
the reference module and gradients compare with it name by name. Its forward returns what
``nn.LSTM``/``nn.GRU`` return: ``(output, (h_n, c_n))`` or ``(output, h_n)``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

# layer(x, state, w_ih, w_hh, b_ih, b_hh, reverse) -> (output of every step, final state)
Layer = Callable[[Tensor, tuple, Tensor, Tensor, Tensor, Tensor, bool], tuple[Tensor, tuple]]


class GateLevelRNN(nn.Module):
    def __init__(self, reference: nn.RNNBase, layer: Layer):
        super().__init__()
        if reference.mode not in ("LSTM", "GRU") or not reference.bias or reference.proj_size:
            raise ValueError("GateLevelRNN copies an nn.LSTM (without projection) or nn.GRU with biases")
        self.is_lstm = reference.mode == "LSTM"
        # batch_first: the time loop runs over (T, B, I) views of the (B, T, I) input, as cuDNN transposes too
        self.batch_first = reference.batch_first
        self.num_layers = reference.num_layers
        self.directions = 2 if reference.bidirectional else 1
        self.hidden_size = reference.hidden_size
        self.layer = layer
        for name, parameter in reference.named_parameters():
            self.register_parameter(name, nn.Parameter(parameter.detach().clone()))

    def forward(self, x: Tensor):
        if self.batch_first:
            x = x.transpose(0, 1)
        batch = x.size(1)
        layer_input = x
        finals: list[tuple] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                zeros = x.new_zeros(batch, self.hidden_size)
                state = (zeros, zeros) if self.is_lstm else (zeros,)
                output, state = self.layer(
                    layer_input, state,
                    getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix),
                    getattr(self, "bias_ih" + suffix), getattr(self, "bias_hh" + suffix),
                    direction == 1)
                outputs.append(output)
                finals.append(state)
            layer_input = outputs[0] if self.directions == 1 else torch.cat(outputs, dim=2)
        h_n = torch.stack([state[0] for state in finals])
        output = layer_input.transpose(0, 1) if self.batch_first else layer_input
        if self.is_lstm:
            return output, (h_n, torch.stack([state[1] for state in finals]))
        return output, h_n


def run_steps(step: Callable, inputs: Tensor, state: tuple, reverse: bool) -> tuple[Tensor, tuple]:
    """The time loop in Python: ``state = step(inputs[t], *state)``; the output is each step's h."""
    steps = inputs.size(0)
    outputs: list[Tensor | None] = [None] * steps
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        new_state = step(inputs[t], *state)
        state = (new_state,) if isinstance(new_state, Tensor) else tuple(new_state)
        outputs[t] = state[0]
    return torch.stack(outputs), state
