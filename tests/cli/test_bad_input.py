"""Bad suites: one line naming the file, the line, the key and what is allowed; never a traceback."""

import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from click.testing import CliRunner
from hypothesis import strategies as st

from harness.cli import main
from harness.measure.env import check_device_supports
from harness.errors import SuiteError
from harness.spec.suite import AXES, TOP_KEYS, parse_suite

GRID = "grid: {batch: 2, seq_len: 3, input_size: 4, hidden_size: 5}\n"

BAD_SUITES = [
    # (suite text, fragments the one-line message must contain)
    ("name: t\ngrid: [unclosed\n", ["bad.yaml:", "malformed YAML"]),
    ("name: t\n\tgrid: {}\n", ["malformed YAML"]),
    ("", ["the suite is empty"]),
    ("- just\n- a list\n", ["must be a mapping, got a list"]),
    ("name: t\n" + GRID + "grdi: {}\n", ["bad.yaml:3", "grdi: unknown key (did you mean 'grid'?)"]),
    ("name: t\n", ["missing required key 'grid'"]),
    ("grid: {batch: 2}\n", ["missing required key 'name'"]),
    ("name: t\ngrid: {batch: 2, seq_len: 3, input_size: 4}\n", ["grid: missing required axis 'hidden_size'"]),
    ("name: t\ngrid:\n  batch: sixteen\n  seq_len: 3\n  input_size: 4\n  hidden_size: 5\n",
     ["bad.yaml:3", "grid.batch: must be an integer, got a string ('sixteen')"]),
    ("name: t\ngrid:\n  batch: 2\n  seq_len: 3\n  input_size: 4\n  hidden_size: [8, -1]\n",
     ["bad.yaml:6", "grid.hidden_size.1: must be positive, got -1"]),
    ("name: t\ngrid: {batch: 2.5, seq_len: 3, input_size: 4, hidden_size: 5}\n", ["must be an integer, got a number"]),
    ("name: t\ngrid: {batch: true, seq_len: 3, input_size: 4, hidden_size: 5}\n", ["must be an integer, got a boolean"]),
    ("name: t\ngrid: {batch: [], seq_len: 3, input_size: 4, hidden_size: 5}\n", ["must list at least one value"]),
    ("name: t\ngrid: {batch: [2, 2], seq_len: 3, input_size: 4, hidden_size: 5}\n", ["lists a value twice"]),
    ("name: t\ngrid: {cell: rnn, batch: 2, seq_len: 3, input_size: 4, hidden_size: 5}\n",
     ["grid.cell: unknown value 'rnn'", "allowed: lstm, gru"]),
    ("name: t\ngrid: {backend: cudnnn, batch: 2, seq_len: 3, input_size: 4, hidden_size: 5}\n",
     ["did you mean 'cudnn'?"]),
    ("name: t\ngrid: {mode: train, batch: 2, seq_len: 3, input_size: 4, hidden_size: 5}\n",
     ["allowed: forward, forward_backward, inference"]),
    ("name: t\ndtype: fp16\n" + GRID, ["dtype: unknown value 'fp16'", "allowed: float32, float16, bfloat16"]),
    ("name: t\nprecision: tf16\n" + GRID, ["precision: unknown value 'tf16'; allowed: fp32, tf32"]),
    ("name: t\ndevice: gpu\n" + GRID, ["unknown device 'gpu'; allowed: auto, cpu, cuda, cuda:N"]),
    ("name: t\nthreads: 0\n" + GRID, ["threads: must be positive, got 0"]),
    ("name: t\ntiming: {budget_s: 0}\n" + GRID, ["timing.budget_s: must be positive"]),
    ("name: t\ntiming: {min_iters: 10, max_iters: 5}\n" + GRID, ["max_iters: must be >= min_iters (10)"]),
    ("name: t\ntiming: {budget: 1}\n" + GRID, ["did you mean 'budget_s'?"]),
    ("name: t\nexclude:\n  - {cell: lstm}\n" + GRID, ["the grid is empty after exclusions"]),
    ("name: t\nexclude: {cell: lstm}\n" + GRID, ["exclude: must be a list of mappings"]),
    ("name: t\ninclude:\n  - {colour: red}\n" + GRID, ["include.0.colour: unknown key"]),
    ("name: !!python/object/apply:os.system ['echo pwned']\n" + GRID, ["malformed YAML"]),
    ("name: t\n" + GRID + "---\nname: u\n", ["malformed YAML"]),
]


@pytest.mark.parametrize("text, fragments", BAD_SUITES, ids=[f"bad{i}" for i in range(len(BAD_SUITES))])
def test_bad_suite_gives_one_line_naming_what_is_wrong(text, fragments):
    with pytest.raises(SuiteError) as info:
        parse_suite(text, source="bad.yaml")
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("text, fragments", BAD_SUITES[:6] + BAD_SUITES[-4:-2],
                         ids=[f"cli{i}" for i in range(8)])
def test_validate_command_exits_2_without_a_traceback(tmp_path, text, fragments):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    done = CliRunner().invoke(main, ["validate", str(path)])
    assert done.exit_code == 2
    assert done.exception is None or isinstance(done.exception, SystemExit)  # no traceback
    assert len(done.stderr.strip().splitlines()) == 1
    assert all(fragment.replace("bad.yaml", str(path)) in done.stderr for fragment in fragments)


def test_validate_in_a_real_process_exits_2_with_one_line(tmp_path):
    text, fragments = BAD_SUITES[4]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "validate", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert all(fragment.replace("bad.yaml", str(path)) in done.stderr for fragment in fragments)


def test_validate_accepts_a_good_suite(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text("name: t\ndevice: cpu\n" + GRID)
    done = CliRunner().invoke(main, ["validate", str(path)])
    assert done.exit_code == 0 and "ok: suite 't', 1 cases on cpu" in done.stdout


def test_a_dtype_the_device_cannot_run_is_refused(monkeypatch):
    import torch

    class Unsupported(torch.nn.LSTM):
        def forward(self, *args, **kwargs):
            raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\'')

    monkeypatch.setattr(torch.nn, "LSTM", Unsupported)
    with pytest.raises(ValueError, match="dtype float16 cannot run on cpu .*not implemented for 'Half'"):
        check_device_supports(torch.device("cpu"), "float16")


# Property: whatever mapping a suite file holds, the loader returns a Suite or raises SuiteError.
names = st.sampled_from([*TOP_KEYS, *AXES, "timing", "warmup_iters", "budget_s", "x"]) | st.text(max_size=8)
scalars = (st.none() | st.booleans() | st.integers(min_value=-3, max_value=300) | st.floats(allow_nan=True)
           | st.sampled_from(["lstm", "gru", "cudnn", "eager", "cpu", "auto", "float32", "tf32", "fp32"])
           | st.text(max_size=6))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(names, inner, max_size=5), max_leaves=15)
near_valid = st.fixed_dictionaries({"name": st.text(max_size=5) | st.integers(),
                                    "grid": st.dictionaries(st.sampled_from(AXES) | names, values, max_size=10)},
                                   optional={"dtype": values, "timing": values, "exclude": values,
                                             "include": values, "device": values, "precision": values})


# 150 mappings a run (3.4 s for 300 on the 2-core machine, two thirds of it drawing them): each run draws new
# ones (no fixed seed), so the runs of CI together keep trying more than one run's worth
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.dictionaries(names, values, max_size=8), near_valid))
def test_random_mappings_load_or_raise_suite_error(mapping):
    text = yaml.safe_dump(mapping)
    try:
        parse_suite(text)
    except SuiteError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_loads_or_raises_suite_error(text):
    try:
        parse_suite(text)
    except SuiteError:
        pass
