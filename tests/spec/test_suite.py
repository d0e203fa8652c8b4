from pathlib import Path

import pytest

from harness.spec.cases import expand_cases, select_cases
from harness.errors import SuiteError
from harness.spec.suite import Timing, load_suite, parse_suite

SUITES = sorted((Path(__file__).parent.parent.parent / "suites").glob("*.yaml"))

MINIMAL = """
name: t
grid: {batch: 2, seq_len: 3, input_size: 4, hidden_size: 5}
"""


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_every_shipped_suite_loads_and_expands(path):
    suite = load_suite(path)
    cases = expand_cases(suite, "cpu")
    assert cases
    assert len({case.key for case in cases}) == len(cases)


def test_minimal_suite_takes_the_documented_defaults():
    suite = parse_suite(MINIMAL)
    assert (suite.device, suite.dtype, suite.precision, suite.seed) == ("auto", "float32", "fp32", 0)
    assert suite.timing == Timing()
    [case] = expand_cases(suite, "cpu")
    assert case.key == "lstm/cudnn/forward_backward/B2-T3-I4-H5-L1/float32/cpu"


def test_grid_is_the_product_less_exclusions_plus_inclusions():
    suite = parse_suite("""
name: t
grid:
  cell: [lstm, gru]
  backend: [cudnn, eager]
  batch: [1, 2]
  seq_len: 3
  input_size: 4
  hidden_size: 5
exclude:
  - {cell: gru, backend: eager}
include:
  - {backend: eager, cell: gru, batch: 64}
""")
    keys = {case.key for case in expand_cases(suite, "cpu")}
    assert len(keys) == 2 * 2 * 2 - 2 + 1
    assert not any(k.startswith("gru/eager/") and "B64" not in k for k in keys)
    assert "gru/eager/forward_backward/B64-T3-I4-H5-L1/float32/cpu" in keys


def test_suite_objects_are_immutable():
    suite = parse_suite(MINIMAL)
    with pytest.raises(AttributeError):
        suite.name = "other"
    with pytest.raises(AttributeError):
        suite.timing.budget_s = 9


def test_to_dict_records_the_suite_as_loaded():
    suite = parse_suite(MINIMAL, source="x.yaml")
    data = suite.to_dict()
    assert data["grid"]["batch"] == [2] and data["grid"]["cell"] == ["lstm"]
    assert data["source"] == "x.yaml" and len(data["sha256"]) == 64


@pytest.mark.parametrize("text, fragment", [
    ("name: t\ngrid: {batch: 0, seq_len: 3, input_size: 4, hidden_size: 5}", "grid.batch: must be positive"),
    ("name: t\ngrid: {bacth: 1, seq_len: 3, input_size: 4, hidden_size: 5}", "did you mean 'batch'"),
    ("name: t\ngrid: {batch: 1, seq_len: 3, input_size: 4, hidden_size: 5, cell: rnn}", "unknown value 'rnn'"),
    ("name: t\ndtype: float64\ngrid: {batch: 1, seq_len: 3, input_size: 4, hidden_size: 5}", "allowed: float32"),
])
def test_bad_values_name_the_key(text, fragment):
    with pytest.raises(SuiteError, match=fragment):
        parse_suite(text)


def test_select_by_backend_axis_filter_and_glob():
    suite = parse_suite("""
name: t
grid: {cell: [lstm, gru], backend: [cudnn, eager], batch: [1, 2], seq_len: 3, input_size: 4, hidden_size: 5}
""")
    cases = expand_cases(suite, "cpu")
    assert {c.backend for c in select_cases(cases, backends=["eager"])} == {"eager"}
    assert {c.batch for c in select_cases(cases, filters=["batch=2"])} == {2}
    assert {c.cell for c in select_cases(cases, filters=["gru/*"])} == {"gru"}
    assert len(select_cases(cases, filters=["cell=lstm", "backend=cudnn,eager", "batch=1"])) == 2
    with pytest.raises(SuiteError, match="unknown axis"):
        select_cases(cases, filters=["colour=red"])


def test_profile_iters_left_out_is_the_device_default_and_given_is_checked():
    assert parse_suite(MINIMAL).timing.profile_iters is None
    given = parse_suite(MINIMAL.replace("grid:", "timing: {profile_iters: 3}\ngrid:", 1))
    assert given.timing.profile_iters == 3
    with pytest.raises(SuiteError, match="profile_iters"):
        parse_suite(MINIMAL.replace("grid:", "timing: {profile_iters: -1}\ngrid:", 1))
