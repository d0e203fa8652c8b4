"""The independent agreement check (benchmarks/agreement.py): independent of the harness, and able to fail."""

import ast
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

import harness.measure.backends.cudnn

SCRIPT = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "agreement.py"
USER_SIDE = ("set_user_precision", "user_module", "user_inputs", "user_step_times_ms")
TINY = dict(name="tiny", cell="lstm", batch=4, seq_len=12, input_size=32, hidden_size=32)


@pytest.fixture(scope="module")
def agreement():
    spec = importlib.util.spec_from_file_location("agreement", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["agreement"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)  # the checks below run with one thread, as a CPU gate should
    del sys.modules["agreement"]


def test_the_user_side_shares_no_code_with_the_harness():
    tree = ast.parse(SCRIPT.read_text())
    top_level_imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not any("harness" in ast.unparse(node) for node in top_level_imports)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for name in USER_SIDE:
        assert "harness" not in ast.unparse(functions[name]), name


def test_the_user_side_times_forward_loss_and_backward(agreement):
    config = agreement.Config(**TINY)
    module = agreement.user_module(config, torch.device("cpu"))
    x, target = agreement.user_inputs(config, torch.device("cpu"))
    times = agreement.user_step_times_ms(module, x, target, seconds=0.01, warmup=1, min_iters=4)
    assert len(times) >= 4 and all(t > 0 for t in times)
    assert all(p.grad is not None for p in module.parameters())


def test_a_harness_that_does_extra_work_per_step_is_caught(agreement, monkeypatch, tmp_path):
    real_build = harness.measure.backends.cudnn.build

    def build_with_extra_forwards(name, reference):
        built = real_build(name, reference)
        model = built.model

        def slower(x):
            for _ in range(4):
                model(x)
            return model(x)

        built.model = slower
        return built

    monkeypatch.setattr(harness.measure.backends.cudnn, "build", build_with_extra_forwards)
    row = agreement.check_config(agreement.Config(**TINY), torch.device("cpu"), rounds=2, seconds=0.05,
                                 precision="fp32", threads=1, tolerance=0.05, workdir=tmp_path)
    assert row["ratio"] > 1.3 and row["verdict"] == "DISAGREE", row


def test_a_quick_run_reports_every_figure(agreement, tmp_path):
    row = agreement.check_config(agreement.Config(**TINY), torch.device("cpu"), rounds=2, seconds=0.05,
                                 precision="fp32", threads=1, tolerance=0.05, workdir=tmp_path)
    assert row["verdict"] in ("agree", "DISAGREE", "inconclusive")
    assert len(row["ratios"]) == 2 and row["user_median_ms"] > 0 and row["harness_median_ms"] > 0
    assert row["harness_warnings"] == []
