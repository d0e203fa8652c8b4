"""The FLOP model: the one place that says how much arithmetic a case does.

Forward, per layer and direction: 2 * B * T * G * H * (I_layer + H) multiply-adds counted as two FLOPs,
with G gates (4 for LSTM, 3 for GRU) and I_layer the layer's input width (input_size for the first
layer, directions * H after it). Element-wise gate math is left out: it is O(B*T*G*H), small next to
the matmuls. Backward is counted as twice the forward (gradients for inputs and for weights).
"""

from __future__ import annotations

from harness.cases import Case

GATES = {"lstm": 4, "gru": 3}
BACKWARD_TO_FORWARD = 2.0


def forward_flops(case: Case) -> float:
    gates = GATES[case.cell]
    total = 0.0
    for layer in range(case.num_layers):
        layer_input = case.input_size if layer == 0 else case.directions * case.hidden_size
        total += case.directions * 2.0 * case.batch * case.seq_len * gates * case.hidden_size * (
            layer_input + case.hidden_size)
    return total


def region_flops(case: Case, region: str) -> float:
    """FLOPs of one timed region: 'forward', 'backward' or 'step' (forward + backward)."""
    forward = forward_flops(case)
    return {"forward": forward,
            "backward": BACKWARD_TO_FORWARD * forward,
            "step": (1.0 + BACKWARD_TO_FORWARD) * forward}[region]
