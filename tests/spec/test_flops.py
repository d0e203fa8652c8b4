from harness.spec.flops import forward_flops, region_flops
from tests.helpers import tiny_case


def test_single_layer_lstm_follows_the_stated_formula():
    case = tiny_case(batch=8, seq_len=10, input_size=32, hidden_size=64)
    assert forward_flops(case) == 2 * 8 * 10 * 4 * 64 * (32 + 64)


def test_gru_has_three_gates():
    lstm, gru = tiny_case(), tiny_case(cell="gru")
    assert forward_flops(gru) * 4 == forward_flops(lstm) * 3


def test_deeper_and_bidirectional_layers_take_the_wider_input():
    case = tiny_case(batch=2, seq_len=3, input_size=4, hidden_size=5, num_layers=2, bidirectional=True)
    per_direction = lambda width: 2 * 2 * 3 * 4 * 5 * (width + 5)
    assert forward_flops(case) == 2 * per_direction(4) + 2 * per_direction(2 * 5)


def test_backward_is_twice_forward_and_step_is_both():
    case = tiny_case()
    forward = region_flops(case, "forward")
    assert region_flops(case, "backward") == 2 * forward
    assert region_flops(case, "step") == 3 * forward
