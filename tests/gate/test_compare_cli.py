"""`rnnbench compare`: exit codes a CI can trust, output, and unusable input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.record.results_io import write_results
from synthetic_results import GPU_ENVIRONMENT, grid_cases, synthetic_run, with_cases

CASES = grid_cases()
SLOW = CASES[3].key


def invoke(*args):
    return CliRunner().invoke(main, ["compare", *map(str, args)])


@pytest.fixture
def files(tmp_path):
    def write(name, run):
        path = tmp_path / name
        write_results(path, run)
        return path
    return write


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("rnnbench: error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[-1]


def test_no_shift_exits_0(files):
    result = invoke(files("a.json", synthetic_run(1)), files("b.json", synthetic_run(2)))
    assert result.exit_code == 0, result.output
    assert "OK: no regression" in result.stdout
    assert "20 compared: 0 regressions, 0 improvements, 0 noise, 20 unchanged" in result.stdout


def test_self_compare_exits_0(files):
    path = files("a.json", synthetic_run(1))
    assert invoke(path, path).exit_code == 0


def test_noise_sized_shift_exits_0(files):
    shifted = synthetic_run(2, shifts={case.key: 1.02 for case in CASES})
    assert invoke(files("a.json", synthetic_run(1)), files("b.json", shifted)).exit_code == 0


def test_regression_exits_1_and_names_the_case(files, tmp_path):
    markdown = tmp_path / "summary" / "compare.md"
    result = invoke(files("a.json", synthetic_run(1)), files("b.json", synthetic_run(2, shifts={SLOW: 1.2})),
                    "--markdown", markdown)
    assert result.exit_code == 1, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("REGRESSION") and SLOW in last
    text = markdown.read_text()
    assert text.startswith("## rnnbench compare: :x: regression") and SLOW in text


def test_improvement_exits_0(files):
    result = invoke(files("a.json", synthetic_run(1)), files("b.json", synthetic_run(2, shifts={SLOW: 0.8})))
    assert result.exit_code == 0
    assert "improvement" in result.stdout


def test_a_large_threshold_lets_the_slowdown_pass(files):
    args = (files("a.json", synthetic_run(1)), files("b.json", synthetic_run(2, shifts={SLOW: 1.2})))
    assert invoke(*args, "--threshold", "30%").exit_code == 0
    assert invoke(*args, "--threshold", "0.1").exit_code == 1


def test_cases_only_in_one_file_are_listed(files):
    baseline = synthetic_run(1)
    current = synthetic_run(2)
    result = invoke(files("a.json", with_cases(baseline, baseline.cases[1:])),
                    files("b.json", with_cases(current, current.cases[:-1])))
    assert result.exit_code == 0
    assert f"only in the baseline (1):\n  {CASES[-1].key}" in result.stdout
    assert f"only in the current run (1):\n  {CASES[0].key}" in result.stdout


def test_environment_mismatch_is_refused_unless_allowed(files, tmp_path):
    other = {**GPU_ENVIRONMENT, "gpu": {**GPU_ENVIRONMENT["gpu"], "driver": "550.54.15"},
             "torch": {**GPU_ENVIRONMENT["torch"], "version": "2.12.0+cu128"}}
    baseline = files("a.json", synthetic_run(1, cases=grid_cases("cuda"), environment=GPU_ENVIRONMENT))
    current = files("b.json", synthetic_run(2, cases=grid_cases("cuda"), environment=other))
    markdown = tmp_path / "refused.md"
    refused = invoke(baseline, current, "--markdown", markdown)
    assert_one_line_error(refused, "different environments", "GPU driver", "torch", "--allow-env-mismatch")
    assert "ENVIRONMENTS DIFFER" in refused.stderr and "570.124.06  ->  550.54.15" in refused.stderr
    assert "not compared" in markdown.read_text()

    allowed = invoke(baseline, current, "--allow-env-mismatch")
    assert allowed.exit_code == 0, allowed.output
    assert "ENVIRONMENTS DIFFER (compared anyway" in allowed.stdout


def test_different_gpu_model_is_refused(files):
    other = {**GPU_ENVIRONMENT, "gpu": {**GPU_ENVIRONMENT["gpu"], "name": "NVIDIA A100-SXM4-80GB"}}
    result = invoke(files("a.json", synthetic_run(1, cases=grid_cases("cuda"), environment=GPU_ENVIRONMENT)),
                    files("b.json", synthetic_run(1, cases=grid_cases("cuda"), environment=other)))
    assert_one_line_error(result, "GPU model")


# --- unusable input: exit 2, one line, no traceback ----------------------------------------------------

def test_missing_file(files, tmp_path):
    assert_one_line_error(invoke(tmp_path / "nope.json", files("b.json", synthetic_run(1))), "no such results file")


def test_truncated_file(files, tmp_path):
    good = files("a.json", synthetic_run(1))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(good.read_text()[:5000])
    assert_one_line_error(invoke(good, truncated), "truncated.json", "not valid JSON")


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="something.else"), "not an rnnbench results file"),
    (lambda d: d.update(schema_version=99), "schema version 99"),
    (lambda d: d.pop("environment"), "environment: must be a mapping, got null"),
    (lambda d: d["cases"][0].pop("case"), "cases[0].case: must be a mapping, got null"),
])
def test_wrong_schema(files, tmp_path, mutate, message):
    good = files("a.json", synthetic_run(1))
    document = json.loads(good.read_text())
    mutate(document)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    assert_one_line_error(invoke(good, bad), message)


def test_not_json_object(files, tmp_path):
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2, 3]")
    assert_one_line_error(invoke(files("a.json", synthetic_run(1)), bad), "not an rnnbench results file")


def test_nothing_in_common(files):
    gpu = synthetic_run(1, cases=grid_cases("cuda"), environment=GPU_ENVIRONMENT)
    assert_one_line_error(invoke(files("a.json", synthetic_run(1)), files("b.json", gpu)), "no case in common")


@pytest.mark.parametrize("option, value, message", [
    ("--threshold", "5", "write 5% for a percentage"),
    ("--threshold", "five", "not a number"),
    ("--alpha", "0", "must be above 0"),
    ("--alpha", "1.5%", None),
    ("--alpha", "150%", "must be below 1"),
    ("--metric", "tokens_per_s", "choose one of step, forward, backward"),
])
def test_bad_options(files, option, value, message):
    path = files("a.json", synthetic_run(1))
    result = invoke(path, path, option, value)
    if message is None:
        assert result.exit_code == 0  # 1.5 % is a valid alpha
    else:
        assert_one_line_error(result, message)


def test_real_process_prints_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness.cli", "compare", str(tmp_path / "a.json"),
                           str(tmp_path / "b.json")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"rnnbench: error: {tmp_path / 'a.json'}: no such results file"]


def test_slow_down_script_makes_a_regression_the_gate_names(files, tmp_path):
    """scripts/slow-down-case.py: the known regression used to check the gate on a real pair of runs."""
    current = files("b.json", synthetic_run(2))
    slowed = tmp_path / "slowed.json"
    done = subprocess.run([sys.executable, "scripts/slow-down-case.py", str(current), str(slowed),
                           "--case", SLOW, "--factor", "1.2"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"x1.2: {SLOW}"
    result = invoke(files("a.json", synthetic_run(1)), slowed)
    assert result.exit_code == 1 and SLOW in result.stdout.strip().splitlines()[-1]
