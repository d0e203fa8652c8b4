"""--set KEY=VALUE: parsed as YAML scalars into the mapping a suite file holds, checked by the suite's own
validator (the same messages as a file), over a suite file or over the defaults alone."""

import hashlib

import pytest
import yaml

from harness.errors import SuiteError, UsageError
from harness.spec.overrides import AD_HOC_SUITE, load_suite_with_sets, parse_sets
from harness.spec.suite import Timing, parse_suite, suite_from_record


def test_values_are_yaml_scalars_and_an_axis_takes_a_list():
    assert parse_sets(["hidden_size=64,128", "timing.budget_s=0.5", "bidirectional=true,false", "cell=lstm",
                       "name=my run"]) == (
        ("hidden_size", (64, 128)), ("timing.budget_s", (0.5,)), ("bidirectional", (True, False)),
        ("cell", ("lstm",)), ("name", ("my run",)))


@pytest.mark.parametrize("text, problem", [
    ("hidden_size", "expected KEY=VALUE"),
    ("=64", "expected KEY=VALUE"),
    ("hidden_size=", "expected KEY=VALUE"),
    ("hidden_size=64,", "is not a single value"),
    ("timing.budget_s=[1]", "is not a single value"),
    ("seed={a: 1}", "is not a single value"),
    ("device=cpu,cuda", "device takes one value"),
    ("hiden_size=64", "unknown key 'hiden_size' (did you mean 'hidden_size'?)"),
    ("timing.budget=1", "unknown key 'timing.budget' (did you mean 'timing.budget_s'?)"),
])
def test_a_malformed_or_unknown_set_is_a_one_line_usage_error(text, problem):
    with pytest.raises(UsageError) as raised:
        parse_sets([text])
    message = str(raised.value)
    assert message.startswith(f"--set {text!r}: ") and problem in message and "\n" not in message


def test_a_key_set_twice_is_refused():
    with pytest.raises(UsageError, match="hidden_size is set twice"):
        parse_sets(["hidden_size=64", "hidden_size=128"])


def test_without_a_file_the_suite_is_the_defaults_and_the_keys_given():
    sets = ["cell=lstm,gru", "hidden_size=64,128", "backend=cudnn,torchscript", "device=cpu", "timing.budget_s=0.2"]
    suite = load_suite_with_sets(None, sets)
    grid = dict(suite.grid)
    assert (suite.name, suite.device) == (AD_HOC_SUITE["name"], "cpu")
    assert grid["cell"] == ("lstm", "gru") and grid["hidden_size"] == (64, 128)
    assert grid["backend"] == ("cudnn", "torchscript")
    assert grid["batch"] == (AD_HOC_SUITE["grid"]["batch"],)
    assert suite.timing.budget_s == 0.2 and suite.timing.min_iters == Timing().min_iters
    assert suite.source == " ".join(f"--set {text}" for text in sets)
    recorded = {key: value for key, value in suite.to_dict().items() if key not in ("source", "sha256")}
    assert suite_from_record(suite.to_dict(), "a results file").to_dict() == {**recorded, "source": "a results file",
                                                                              "sha256": suite.sha256}
    assert len(suite.sha256) == 64


def test_the_sha256_is_that_of_the_suite_as_yaml():
    suite = load_suite_with_sets(None, ["hidden_size=32"])
    text = yaml.safe_dump({**AD_HOC_SUITE, "grid": {**AD_HOC_SUITE["grid"], "hidden_size": 32}}, sort_keys=False)
    assert suite.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_a_set_overrides_the_axes_and_keys_of_a_suite_file_and_keeps_the_rest():
    base = load_suite_with_sets("suites/small.yaml")
    suite = load_suite_with_sets("suites/small.yaml", ["hidden_size=32", "seed=7"])
    assert dict(suite.grid)["hidden_size"] == (32,) and suite.seed == 7
    assert dict(suite.grid)["backend"] == dict(base.grid)["backend"]
    assert (suite.name, suite.timing, suite.threads) == (base.name, base.timing, base.threads)
    assert suite.source == "suites/small.yaml --set hidden_size=32 --set seed=7"
    assert suite.sha256 != base.sha256


def test_a_value_refused_in_a_file_is_refused_with_the_same_message(tmp_path):
    with pytest.raises(SuiteError) as in_file:
        parse_suite("name: x\ngrid: {batch: 2, seq_len: 3, input_size: 4, hidden_size: 0}\n", source="x.yaml")
    with pytest.raises(SuiteError) as on_line:
        load_suite_with_sets(None, ["hidden_size=0"])
    assert str(in_file.value).split(": ", 1)[-1] == str(on_line.value).split(": ", 1)[-1] \
        == "grid.hidden_size: must be positive, got 0"
    with pytest.raises(SuiteError, match="cell.1: unknown value 'gruu' \\(did you mean 'gru'\\?\\)"):
        load_suite_with_sets(None, ["cell=lstm,gruu"])


def test_a_suite_file_with_a_mistake_keeps_its_line_under_a_set(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ngrid:\n  batch: 2\n  seq_len: 3\n  input_size: 4\n  hidden_size: -1\n")
    with pytest.raises(SuiteError, match=f"{path}:6: grid.hidden_size: must be positive"):
        load_suite_with_sets(str(path), ["seed=1"])


def test_no_file_and_no_set_is_a_usage_error():
    with pytest.raises(UsageError, match="give a SUITE file, or --set"):
        load_suite_with_sets(None, [])
