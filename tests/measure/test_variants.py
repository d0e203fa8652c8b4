"""The variant axes (layout, variable lengths, proj_size, compile_mode) and the compile_rnn and cudagraph
backends: keys that leave existing results comparable, parity for every value, skips with the reason."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.measure.backends import build_backend, cudagraph
from harness.spec.cases import Case, expand_cases, select_cases, sequence_lengths
from harness.errors import SuiteError
from harness.spec.flops import deepbench_forward_flops, forward_flops, region_bytes, region_flops
from harness.record.results import CaseResult
from harness.measure.runner import run_case
from harness.spec.suite import load_suite, parse_suite
from harness.measure.timing import Workload
from tests.helpers import cpu_settings, tiny_case

H100_KEYS = Path(__file__).parent.parent / "data" / "h100-2026-11-27-case-keys.json"
H100_DIR = Path("/work/shared/gpu-runs/h100-2026-11-27")
SUITES = Path(__file__).parent.parent.parent / "suites"
OLD_AXES = {"cell", "backend", "mode", "batch", "seq_len", "input_size", "hidden_size", "num_layers", "bidirectional"}


def test_cases_of_real_h100_results_keep_their_keys_and_records():
    rows = json.loads(H100_KEYS.read_text())["cases"]
    assert len(rows) == 51
    for row in rows:
        case = Case.from_dict(row["case"])
        assert case.key == row["key"]
        assert case.to_dict() == row["case"]  # no new fields written for a case at the default values


@pytest.mark.skipif(not H100_DIR.is_dir(), reason="the shared H100 results are not on this machine")
def test_real_h100_results_files_read_back_with_the_same_keys():
    for path in sorted(H100_DIR.glob("*.json")):
        for data in json.loads(path.read_text())["cases"]:
            result = CaseResult.from_dict(data)
            assert result.key == data["key"] and result.to_dict()["case"] == data["case"]


def test_shipped_suites_record_no_variant_axes_at_their_defaults():
    for path in SUITES.glob("*.yaml"):
        recorded = load_suite(path).to_dict()
        if path.name.startswith("variants"):
            continue
        assert set(recorded["grid"]) <= OLD_AXES and "variable_lengths" not in recorded, path


VARIANTS_YAML = """
name: v
variable_lengths: {min_fraction: 0.25}
grid:
  backend: [cudnn, compile]
  batch: 4
  seq_len: 8
  input_size: 5
  hidden_size: 6
  layout: [seq_first, batch_first]
  lengths: [fixed, packed]
  proj_size: [0, 3]
  compile_mode: [default, max-autotune]
"""


def test_variant_axes_enter_the_key_only_away_from_their_defaults():
    cases = expand_cases(parse_suite(VARIANTS_YAML), "cpu")
    keys = {case.key for case in cases}
    assert "lstm/cudnn/forward_backward/B4-T8-I5-H6-L1/float32/cpu" in keys
    assert "lstm/cudnn/forward_backward/B4-T8-I5-H6-L1-P3-bf-packed-u0.25/float32/cpu" in keys
    assert "lstm/compile@max-autotune/forward_backward/B4-T8-I5-H6-L1-bf/float32/cpu" in keys
    # compile_mode applies to compile backends only: no cudnn copies per mode
    assert len(cases) == 8 + 16
    assert not any("cudnn@" in key for key in keys)
    assert len(select_cases(cases, (), ["layout=batch_first", "proj_size=3"])) == 6


def test_variant_fields_round_trip_and_share_weights_across_layout_and_lengths():
    case = tiny_case(layout="batch_first", lengths="padded", length_min_fraction=0.5, proj_size=2)
    assert Case.from_dict(case.to_dict()) == case
    plain = tiny_case(proj_size=2)
    assert case.seed(7) == plain.seed(7) and case.model_key != plain.model_key
    assert tiny_case().seed(7) != plain.seed(7)


@pytest.mark.parametrize("text, message", [
    ("layout: [sideways]", "unknown value 'sideways'"),
    ("lengths: ragged", "unknown value 'ragged'"),
    ("proj_size: -1", "must be >= 0"),
    ("compile_mode: fast", "unknown value 'fast'"),
])
def test_bad_variant_values_are_refused_in_one_line(text, message):
    with pytest.raises(SuiteError, match=message):
        parse_suite(f"name: x\ngrid: {{batch: 1, seq_len: 1, input_size: 1, hidden_size: 2, {text}}}\n")


def test_bad_length_distribution_is_refused():
    base = "name: x\ngrid: {batch: 1, seq_len: 1, input_size: 1, hidden_size: 2}\n"
    with pytest.raises(SuiteError, match="min_fraction: must be at most 1"):
        parse_suite(base + "variable_lengths: {min_fraction: 1.5}\n")
    with pytest.raises(SuiteError, match="unknown value 'zipf'"):
        parse_suite(base + "variable_lengths: {distribution: zipf}\n")


def test_lengths_are_seeded_bounded_and_the_longest_is_seq_len():
    lengths = sequence_lengths(64, 40, 0.25, "lstm/B64")
    assert lengths == sequence_lengths(64, 40, 0.25, "lstm/B64")
    assert lengths[0] == 40 and min(lengths) >= 10 and max(lengths) == 40
    assert len(set(lengths)) > 10
    assert lengths != sequence_lengths(64, 40, 0.25, "gru/B64")


def test_flops_and_throughput_count_real_tokens_only():
    fixed = tiny_case(batch=8, seq_len=10)
    varlen = tiny_case(batch=8, seq_len=10, lengths="packed", length_min_fraction=0.3)
    tokens = sum(varlen.sequence_lengths)
    assert tokens < 80 and varlen.real_tokens == tokens
    assert forward_flops(varlen) == pytest.approx(forward_flops(fixed) * tokens / 80)
    result = CaseResult(case=varlen, status="ok", samples_ms={"forward": (2.0,) * 3, "backward": (2.0,) * 3,
                                                              "step": (4.0,) * 3})
    assert result.derived["step"]["tokens_per_s"] == pytest.approx(tokens / 4e-3)


def test_flop_models_with_projection_and_deepbench_convention():
    case = tiny_case(batch=2, seq_len=3, input_size=4, hidden_size=6, proj_size=5)
    tokens = 6
    assert forward_flops(case) == 2 * tokens * 4 * 6 * (4 + 5) + 2 * tokens * 6 * 5
    plain = tiny_case(batch=2, seq_len=3, input_size=4, hidden_size=6)
    assert deepbench_forward_flops(plain) == 2 * 4 * 6 * 6 * tokens  # 2*G*H^2*B*T
    assert region_flops(plain, "step", "deepbench") == 3 * deepbench_forward_flops(plain)
    assert 0 < region_bytes(plain, "forward") < region_bytes(plain, "step")


@pytest.mark.parametrize("backend", ["cudnn", "eager"])
@pytest.mark.parametrize("variant", [
    dict(layout="batch_first"),
    dict(lengths="padded", length_min_fraction=0.3, num_layers=2, bidirectional=True),
    dict(lengths="packed", length_min_fraction=0.3, layout="batch_first", cell="gru"),
    dict(proj_size=3, num_layers=2),
], ids=["batch_first", "padded-bi", "packed-gru-bf", "proj"])
def test_every_variant_is_parity_checked_or_skipped_with_the_reason(backend, variant):
    result = run_case(tiny_case(backend=backend, batch=4, seq_len=5, **variant), cpu_settings())
    if backend == "eager" and (variant.get("lengths") == "packed" or variant.get("proj_size")):
        assert result.status == "skipped"
        assert "gate-level cells" in result.reason
        return
    assert result.status == "ok", result.reason
    assert result.parity["passed"] and result.parity["tensors_compared"] > 3


def test_parity_catches_a_backend_that_ignores_the_layout():
    def seq_first_copy(name, reference):
        reference.batch_first = False  # the user's module forgot batch_first=True
        return build_backend(name, reference)

    result = run_case(tiny_case(layout="batch_first", batch=4), cpu_settings(), build=seq_first_copy)
    assert result.status == "failed" and result.reason.startswith("parity failed")


def test_padded_and_packed_agree_on_real_tokens_and_packed_pads_with_zeros():
    from harness.spec.batches import as_called
    from harness.measure.runner import make_batch_for, make_reference

    settings = cpu_settings()
    outputs = {}
    for lengths in ("padded", "packed"):
        case = tiny_case(batch=5, seq_len=7, lengths=lengths, length_min_fraction=0.2)
        batch = make_batch_for(case, settings)
        outputs[lengths] = as_called(make_reference(case, settings), case, batch)(batch.x)[0]
    mask = batch.mask.bool().expand_as(outputs["packed"])
    torch.testing.assert_close(outputs["padded"][mask], outputs["packed"][mask])
    assert (outputs["packed"][~mask] == 0).all() and (~mask).any()


@pytest.mark.parametrize("case, reason", [
    (tiny_case(cell="gru", proj_size=2), "nn.GRU has no projection"),
    (tiny_case(proj_size=6), "must be smaller than hidden_size"),
    (tiny_case(backend="cudagraph"), "CUDA graphs need a CUDA device"),
    (tiny_case(backend="cudagraph", lengths="packed", length_min_fraction=0.5), "packed sequences are not captured"),
    (tiny_case(backend="compile", compile_mode="reduce-overhead"), "reduce-overhead is torch.compile with CUDA graphs"),
])
def test_what_a_backend_cannot_do_is_skipped_with_the_reason(case, reason):
    result = run_case(case, cpu_settings())
    assert result.status == "skipped" and reason in result.reason


@pytest.mark.compile
def test_compile_rnn_traces_nn_lstm_and_records_its_graphs():
    from harness.measure.backends.compiled import has_allow_rnn

    if not has_allow_rnn():
        pytest.skip("this torch has no torch._dynamo.config.allow_rnn")
    case = tiny_case(backend="compile_rnn", batch=2, seq_len=2, input_size=3, hidden_size=4)
    result = run_case(case, cpu_settings())
    assert result.status == "ok", result.reason
    assert result.parity["passed"]
    compiled = result.compile_facts
    assert compiled.graphs >= 1 and not compiled.fell_back_to_eager and compiled.graph_breaks == 0
    assert result.backend["vendor_rnn_kernel_ran"] is False  # Dynamo traced it into cell-level operations
    assert result.backend["onednn_disabled"] is True
    assert result.first_iteration_ms["step"] > 10 * result.median_ms()  # compile time is kept apart


@pytest.mark.gpu
@pytest.mark.parametrize("variant", [{}, dict(layout="batch_first", lengths="padded", length_min_fraction=0.5),
                                     dict(proj_size=8, mode="inference")])
def test_cudagraph_replays_the_training_step_with_parity_on_a_gpu(variant):
    case = tiny_case(backend="cudagraph", device_type="cuda", batch=8, seq_len=16, input_size=32, hidden_size=32,
                     **variant)
    result = run_case(case, cpu_settings(device=torch.device("cuda")))
    assert result.status == "ok", result.reason
    assert result.parity["passed"]
    captures = result.backend["cuda_graph"]
    mode = "inference" if case.mode == "inference" else "forward_backward"
    assert captures[mode]["capture_ms"] > 0 and captures[mode]["graph_pool_bytes"] >= 0
    assert captures[mode]["graphs"] == (1 if mode == "inference" else 2)
    assert set(result.samples_ms) == ({"forward"} if mode == "inference" else {"forward", "backward", "step"})


@pytest.mark.gpu
@pytest.mark.compile
@pytest.mark.parametrize("backend, compile_mode", [("compile", "reduce-overhead"), ("compile_rnn", "default")])
def test_compile_modes_and_compile_rnn_on_a_gpu(backend, compile_mode):
    case = tiny_case(backend=backend, compile_mode=compile_mode, device_type="cuda", batch=4, seq_len=3,
                     input_size=8, hidden_size=8)
    result = run_case(case, cpu_settings(device=torch.device("cuda")))
    assert result.status == "ok", result.reason
    assert result.backend["compile_mode"] == compile_mode
    if backend == "compile_rnn":
        assert "vendor_rnn_kernel_ran" in result.backend and "onednn_disabled" not in result.backend


@pytest.mark.gpu
@pytest.mark.parametrize("index", [0, pytest.param(1, marks=pytest.mark.skipif(
    torch.cuda.device_count() < 2, reason="needs a second GPU: a case on a device that is not the current one"))])
def test_cudagraph_captures_the_work_on_the_case_device(index):
    """The graph itself does the work (a replay on new input gives the module's output for that input), on
    the case's device even where another is current: captured elsewhere, the kernels ran once, eagerly,
    during capture, parity passed on their output and every replay timed an empty graph."""
    device = torch.device("cuda", index)
    with torch.cuda.device(0):
        result = run_case(tiny_case(backend="cudagraph", device_type="cuda", batch=4, seq_len=5, input_size=8,
                                    hidden_size=8), cpu_settings(device=device))
        assert result.status == "ok", result.reason
        assert result.parity["passed"] and result.backend["cuda_graph"]["forward_backward"]["graph_pool_bytes"] > 0
        backend = cudagraph.build("cudagraph", nn.LSTM(8, 8).to(device))
        x, target = torch.randn(5, 4, 8, device=device), torch.randn(5, 4, 8, device=device)
        step = backend.graphs.captured(Workload(backend.model, x, target, "forward_backward",
                                                tuple(backend.parameters.values()), graphs=backend.graphs))
        x.copy_(torch.randn_like(x))
        step.replay_forward()
        torch.cuda.synchronize(device)
        with torch.no_grad():
            expected, _ = backend.model(x)
        torch.testing.assert_close(step.outputs[0], expected)
