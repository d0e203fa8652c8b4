"""The user's own recurrent module as a backend: named in a suite (custom_backends) or offered by an installed
package (entry points of group rnnbench.backends), found by import name here and in every worker process."""

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.spec import custom_backends
from harness.cli import main
from harness.errors import SuiteError
from harness.measure.runner import run_case
from harness.execute.session import open_suite
from harness.spec.suite import parse_suite
from tests.helpers import cli, suite_file

ROOT = Path(__file__).resolve().parent.parents[1]

USER_MODULE = '''
import torch
from torch import nn


class Wrapped(nn.Module):
    """What a user writes: their module around the weights (here an nn.LSTM/nn.GRU under self.rnn)."""

    def __init__(self, reference):
        super().__init__()
        self.rnn = type(reference)(reference.input_size, reference.hidden_size, num_layers=reference.num_layers,
                                   bidirectional=reference.bidirectional, batch_first=reference.batch_first)
        self.rnn.load_state_dict(reference.state_dict())
        self.rnn.to(next(reference.parameters()).device)

    def forward(self, x):
        return self.rnn(x)


def build(reference, case):
    return Wrapped(reference)


def output_only(reference, case):
    class OutputOnly(Wrapped):
        def forward(self, x):
            return self.rnn(x)[0]
    return OutputOnly(reference)


def wrong_state_shape(reference, case):
    class WrongState(Wrapped):
        def forward(self, x):
            output, (h, c) = self.rnn(x)
            return output, (h[0], c)
    return WrongState(reference)


def renamed_parameters(reference, case):
    class Renamed(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return Wrapped(reference)(x)
    return Renamed()


def raises(reference, case):
    raise RuntimeError("my kernel wants a GPU\\nand a second line")


def declines(reference, case):
    raise NotImplementedError("my kernel has no GRU")


def perturbed(reference, case):
    model = Wrapped(reference)
    with torch.no_grad():
        model.rnn.weight_hh_l0.add_(0.5)
    return model


NOT_A_FUNCTION = 3
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """my_rnn.py in a folder on sys.path and PYTHONPATH (as a user puts it there for the workers)."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "my_rnn_backend.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), str(ROOT),
                                                                  os.environ.get("PYTHONPATH")])))
    sys.modules.pop("my_rnn_backend", None)
    yield folder
    sys.modules.pop("my_rnn_backend", None)


def _suite(tmp_path, backends, factories, cell="lstm"):
    return str(suite_file(tmp_path, name="custom", threads=None, custom_backends=factories,
                          timing={"max_iters": 5}, grid={"cell": [cell], "backend": backends, "hidden_size": [5]}))


def _run(tmp_path, backend, spec, cell="lstm"):
    opened = open_suite(_suite(tmp_path, [backend], {backend: spec}, cell))
    (case,) = opened.cases
    return run_case(case, opened.settings())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_user_s_module_is_a_backend_with_parity_and_timing(tmp_path, user_module, cell):
    result = _run(tmp_path, "mine", "my_rnn_backend:build", cell)
    assert result.status == "ok", result.reason
    assert result.case.key.startswith(f"{cell}/mine/forward_backward/")
    assert result.parity["passed"] and result.parity["max_scaled_error"] < 1e-6
    assert result.parity["tensors_compared"] == (3 if cell == "lstm" else 2) + 4  # gradients by nn.LSTM's names
    assert set(result.samples_ms) == {"forward", "backward", "step"}
    assert result.backend["custom"]["factory"] == "my_rnn_backend:build"
    assert result.backend["custom"]["module_file"] == str(user_module / "my_rnn_backend.py")
    assert result.backend["kernel_library"]  # read from the operators it dispatched, as for cudnn


def test_a_user_s_module_that_computes_something_else_fails_parity(tmp_path, user_module):
    result = _run(tmp_path, "mine", "my_rnn_backend:perturbed")
    assert result.status == "failed" and result.reason.startswith("parity failed"), result.reason
    assert not result.samples_ms


@pytest.mark.parametrize("factory, status, fragment", [
    ("output_only", "failed", "model(x) must return (output, (h_n, c_n)) as nn.LSTM does; it returned a tensor"),
    ("wrong_state_shape", "failed", "h_n of shape (1, 2, 5); h_n is a tensor of shape (2, 5)"),
    ("renamed_parameters", "failed", "the module's parameters are: w"),
    ("raises", "failed", "build(reference, case) raised RuntimeError: my kernel wants a GPU"),
    ("declines", "skipped", "mine: my kernel has no GRU"),
])
def test_a_misbehaving_user_backend_gets_one_line_naming_it(tmp_path, user_module, factory, status, fragment):
    result = _run(tmp_path, "mine", f"my_rnn_backend:{factory}")
    assert result.status == status
    assert fragment in result.reason, result.reason
    assert "\n" not in result.reason and "second line" not in result.reason
    if status == "failed":
        assert f"custom backend 'mine' (my_rnn_backend:{factory})" in result.reason


@pytest.mark.parametrize("factories, fragment", [
    ({"mine": "my_rnn_backend.py"}, "must be 'package.module:function' (an import name, not a file path)"),
    ({"cudnn": "my_rnn_backend:build"}, "is one of rnnbench's own backends"),
    ({"My-RNN": "my_rnn_backend:build"}, "lower-case letters, digits and _"),
])
def test_a_bad_custom_backends_entry_is_refused_where_it_is_written(tmp_path, factories, fragment):
    with pytest.raises(SuiteError, match="custom_backends") as raised:
        parse_suite(open(_suite(tmp_path, ["cudnn"], factories)).read(), source="suite.yaml")
    assert fragment in str(raised.value)


def test_the_backend_axis_takes_only_declared_names(tmp_path):
    with pytest.raises(SuiteError, match=r"unknown value 'mien' \(did you mean 'mine'\?\)"):
        parse_suite(open(_suite(tmp_path, ["mien"], {"mine": "my_rnn_backend:build"})).read())


@pytest.mark.parametrize("spec, fragment", [
    ("no_such_package.rnn:build", "cannot import 'no_such_package.rnn' for backend 'mine' (ModuleNotFoundError"),
    ("my_rnn_backend:biuld", "has no 'biuld' (did you mean 'build'?)"),
    ("my_rnn_backend:NOT_A_FUNCTION", "is a int, not a function build(reference, case)"),
])
def test_a_factory_that_cannot_be_found_is_one_line_and_exit_2_at_validation(tmp_path, user_module, spec, fragment):
    result = CliRunner().invoke(main, ["validate", _suite(tmp_path, ["cudnn", "mine"], {"mine": spec})])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    if "cannot import" in fragment:
        assert "PYTHONSAFEPATH=1" in result.output and "PYTHONPATH" in result.output


def test_a_module_found_only_in_the_current_folder_is_refused_with_the_fix(tmp_path, monkeypatch):
    # python -m puts the working folder on sys.path; the workers (PYTHONSAFEPATH=1) do not have it
    (tmp_path / "cwd_only_rnn.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    sys.modules.pop("cwd_only_rnn", None)
    try:
        with pytest.raises(SuiteError, match="found only in the current folder") as raised:
            open_suite(_suite(tmp_path, ["mine"], {"mine": "cwd_only_rnn:build"}))
        assert "PYTHONPATH=$PWD" in str(raised.value)
        monkeypatch.setenv("PYTHONPATH", str(tmp_path))
        assert open_suite(_suite(tmp_path, ["mine"], {"mine": "cwd_only_rnn:build"})).cases
    finally:
        sys.modules.pop("cwd_only_rnn", None)


def test_backend_and_filter_selections_know_the_user_s_backends(tmp_path, user_module):
    suite = _suite(tmp_path, ["cudnn", "mine"], {"mine": "my_rnn_backend:build"})
    listed = CliRunner().invoke(main, ["list", suite, "--filter", "backend=mine"])
    assert listed.exit_code == 0 and "lstm/mine/" in listed.output and "/cudnn/" not in listed.output
    typo = CliRunner().invoke(main, ["list", suite, "--backend", "mnie"])
    assert typo.exit_code == 2 and "did you mean 'mine'" in typo.output


def _entry_point_distribution(folder: Path):
    info = folder / "my_rnn_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-rnn-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rnnbench.backends]\nplugged = my_rnn_backend:build\n")


def test_an_installed_package_offers_a_backend_through_an_entry_point(tmp_path, user_module):
    _entry_point_distribution(user_module)
    custom_backends.entry_point_backends.cache_clear()
    try:
        assert ("plugged", "my_rnn_backend:build") in custom_backends.entry_point_backends()
        opened = open_suite(_suite(tmp_path, ["cudnn", "plugged"], {}))
        (case,) = [case for case in opened.cases if case.backend == "plugged"]
        result = run_case(case, opened.settings())
        assert result.status == "ok", result.reason
        assert result.backend["custom"]["factory"] == "my_rnn_backend:build"
    finally:
        custom_backends.entry_point_backends.cache_clear()


@pytest.mark.usefixtures("short_machine_window")
def test_worker_processes_import_the_user_s_module_and_its_results_compare(tmp_path, user_module, monkeypatch):
    # --rounds 2: each round a fresh worker, started with PYTHONSAFEPATH=1, from a folder without the module (the
    # workers are what is tested; their parent runs in this process, the module on its sys.path as on PYTHONPATH)
    suite = _suite(tmp_path, ["cudnn", "mine"], {"mine": "my_rnn_backend:build"})
    out = tmp_path / "rounds.json"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONSAFEPATH", "1")
    done = cli("run", suite, "--rounds", "2", "--out", out, "--quiet")
    assert done.exit_code == 0, done.stderr[-2000:]
    cases = {record["case"]["backend"]: record for record in json.loads(out.read_text())["cases"]}
    assert cases["mine"]["status"] == "ok" and cases["mine"]["parity"]["passed"]
    assert len(cases["mine"]["samples_ms"]["step"]) >= 6  # both rounds' samples
    compared = CliRunner().invoke(main, ["compare", str(out), str(out)])
    assert compared.exit_code == 0, compared.output
    assert "mine" in compared.output
