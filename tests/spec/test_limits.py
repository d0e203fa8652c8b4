"""The limits table: each limit refused with one line naming it, before any memory or time is spent."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.spec import limits
from harness.errors import SuiteError
from harness.spec.suite import load_suite, parse_suite

GRID = "grid: {batch: [1], seq_len: [2], input_size: [3], hidden_size: [4]}\n"


def _refused(text: str, match: str):
    with pytest.raises(SuiteError, match=match):
        parse_suite(text, source="s.yaml")


def test_anchors_that_multiply_cases_are_counted_before_expanding():
    text = ("name: boom\ngrid:\n  batch: &a [1,2,3,4,5,6,7,8,9,10]\n  seq_len: *a\n  input_size: *a\n"
            "  hidden_size: *a\n  num_layers: *a\n")
    _refused(text, "more than 10,000 cases")
    entries = "".join("  - *e\n" for _ in range(200))
    _refused("name: x\n" + GRID + "include:\n  - &e {batch: [1,2,3,4,5,6,7,8,9,10], seq_len: [1,2,3,4,5,6,7,8,9,10]}\n"
             + entries, "more than 10,000 cases")


def test_deep_nesting_is_one_line():
    _refused("name: deep\ngrid: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 100 levels")


def test_a_key_given_twice_is_refused_with_its_line():
    _refused("name: a\n" + GRID + "name: b\n", r"s.yaml:3: .*key 'name' given twice")


@pytest.mark.parametrize("name, match", [("'" + "x" * 300 + "'", "longer than 100"),
                                         ('"a\\tb"', "printable"), ('"a\\u0085b"', "printable")])
def test_suite_names_are_short_and_printable(name, match):
    _refused(f"name: {name}\n" + GRID, match)


@pytest.mark.parametrize("line, match", [
    ("threads: 1000000000", "at most .* cores"), ("threads: 9223372036854775808", "at most"),
    ("seed: 4294967296", "at most"), ("timing: {case_timeout_s: 1.0e+300}", "at most 86400"),
    ("timing: {budget_s: 99999.0}", "at most 3600"), ("timing: {max_iters: 100000000000}", "at most"),
    ("telemetry: {nvml_period_ms: 0.01}", "above 1"),
])
def test_numbers_beyond_the_table_are_refused(line, match):
    _refused(f"name: t\n{line}\n" + GRID, match)


def test_sizes_beyond_the_table_are_refused():
    _refused("name: t\ngrid: {batch: [1], seq_len: [2], input_size: [3], hidden_size: [2000000]}\n", "at most")
    _refused("name: t\ngrid: {batch: [1], seq_len: [2], input_size: [3], hidden_size: [4], num_layers: [65]}\n",
             "at most 64")


def test_a_huge_suite_file_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("name: t\n" + GRID + "#" * (limits.MAX_SUITE_BYTES + 1))
    with pytest.raises(SuiteError, match="larger than 1 MiB"):
        load_suite(path)


def test_the_machine_s_cores_are_accepted():
    suite = parse_suite(f"name: t\nthreads: {limits.max_threads()}\n" + GRID)
    assert suite.threads == limits.max_threads()


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="[]{}:&*ab,- \n'\"!", max_size=200))
def test_any_text_is_a_suite_or_one_suite_error(text):
    try:
        parse_suite("name: t\n" + GRID + text)
    except SuiteError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("device", ["tpu", "cuda:-1", "CPU", "cuda:0:1", "cuda:\u0661", "", "cpu:0", " cpu"])
def test_unusual_device_strings_are_one_line_in_every_command(device):
    from click.testing import CliRunner

    from harness.cli import main

    for args in (["validate", "suites/small.yaml", "--device", device], ["env", "--device", device]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "unknown device" in result.output and "Traceback" not in result.output


def test_non_ascii_digits_in_a_filter_and_misspelt_backends_are_one_line():
    from click.testing import CliRunner

    from harness.cli import main

    result = CliRunner().invoke(main, ["list", "suites/small.yaml", "--filter", "hidden_size=\u00b2"])
    assert result.exit_code == 2 and "whole numbers" in result.output
    result = CliRunner().invoke(main, ["list", "suites/small.yaml", "--backend", "cudnnn"])
    assert result.exit_code == 2 and "did you mean 'cudnn'" in result.output


def test_the_docs_list_every_limit_as_the_table_says():
    from pathlib import Path

    refusals = (Path(__file__).resolve().parent.parent.parent / "docs" / "refusals.md").read_text()
    for what, limit, why in limits.LIMITS:
        assert f"| {what} | {limit} | {why} |" in refusals, what
