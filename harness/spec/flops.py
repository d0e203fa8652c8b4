"""The FLOP model: the one place that says how much arithmetic (and, for the roofline, how much memory
traffic) a case does.

Ours. Forward, per layer and direction: 2 * N * G * H * (I_layer + R) multiply-adds counted as two FLOPs,
with N the real tokens (B * T for fixed lengths; the sum of the sequence lengths for variable lengths,
padded or packed: padding is not useful work), G gates (4 for LSTM, 3 for GRU), R the recurrent width
(proj_size when the LSTM has a projection, else H) and I_layer the layer's input width (input_size for
the first layer, directions * R after it). A projection adds 2 * N * H * R. Element-wise gate math is
left out: it is O(N*G*H), small next to the matmuls. Backward is counted as twice the forward
(gradients for inputs and for weights).

DeepBench's convention (Baidu DeepBench, rnn_bench): the recurrent GEMM only, 2 * G * H^2 * B * T per
pass (H * R with a projection), per layer and direction, real tokens for N = B * T; backward twice the
forward as above. It leaves out the input GEMM, so it is smaller than ours.

Memory traffic (roofline only): the compulsory bytes of a forward, each tensor read or written once:
weights, the input, every layer's output and the final states. A real kernel moves at least this much,
so the arithmetic intensity it gives is an upper bound. Backward: twice the forward.
"""

from __future__ import annotations

from harness.spec.cases import Case
from harness.spec.dtypes import DTYPE_BYTES

GATES = {"lstm": 4, "gru": 3}
BACKWARD_TO_FORWARD = 2.0
CONVENTIONS = ("rnnbench", "deepbench")


def _layers(case: Case):
    """(input width, recurrent width) per layer and direction."""
    recurrent = case.output_size
    for layer in range(case.num_layers):
        layer_input = case.input_size if layer == 0 else case.directions * recurrent
        for _ in range(case.directions):
            yield layer_input, recurrent


def forward_flops(case: Case) -> float:
    gates, hidden, tokens = GATES[case.cell], case.hidden_size, float(case.real_tokens)
    total = 0.0
    for layer_input, recurrent in _layers(case):
        total += 2.0 * tokens * gates * hidden * (layer_input + recurrent)
        if case.proj_size:
            total += 2.0 * tokens * hidden * recurrent
    return total


def deepbench_forward_flops(case: Case) -> float:
    """DeepBench's convention: the recurrent GEMM only, 2 * G * H * R * N per layer and direction."""
    gates, hidden, tokens = GATES[case.cell], case.hidden_size, float(case.real_tokens)
    return sum(2.0 * gates * hidden * recurrent * tokens for _, recurrent in _layers(case))


def region_flops(case: Case, region: str, convention: str = "rnnbench") -> float:
    """FLOPs of one timed region: 'forward', 'backward' or 'step' (forward + backward)."""
    forward = deepbench_forward_flops(case) if convention == "deepbench" else forward_flops(case)
    return _by_region(forward, region)


def region_bytes(case: Case, region: str) -> float:
    """Compulsory memory traffic of one timed region, in bytes (see the module's docstring)."""
    element = DTYPE_BYTES[case.dtype]
    gates, hidden, tokens = GATES[case.cell], case.hidden_size, float(case.real_tokens)
    elements = tokens * case.input_size  # the input
    for layer_input, recurrent in _layers(case):
        elements += gates * hidden * (layer_input + recurrent) + 2 * gates * hidden  # weights and biases
        elements += hidden * recurrent if case.proj_size else 0
        elements += tokens * recurrent + case.batch * (recurrent + hidden)  # outputs, final states
    return _by_region(elements * element, region)


def _by_region(forward: float, region: str) -> float:
    return {"forward": forward,
            "backward": BACKWARD_TO_FORWARD * forward,
            "step": (1.0 + BACKWARD_TO_FORWARD) * forward}[region]
