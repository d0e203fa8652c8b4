"""Every way a command ends is an exit code and at most one line on stderr."""

import errno
import subprocess
import sys

import pytest
from click.testing import CliRunner

import harness.execute.session
from harness.cli import main
from tests.helpers import suite_file


def _validate_raising(monkeypatch, exc):
    def open_suite(*args, **kwargs):
        raise exc

    monkeypatch.setattr(harness.execute.session, "open_suite", open_suite)
    return CliRunner().invoke(main, ["validate", "suites/small.yaml"])


@pytest.mark.parametrize("exc, code, fragment", [
    (KeyboardInterrupt(), 130, "rnnbench: interrupted"),
    (OSError(errno.ENOSPC, "No space left on device", "out.json"), 2, "out.json: No space left on device"),
    (RecursionError("maximum recursion depth exceeded"), 2, "nested too deeply"),
    (TypeError("a bug\nwith two lines"), 3, "internal error: TypeError: a bug (set RNNBENCH_DEBUG=1"),
])
def test_each_kind_of_ending_has_its_code_and_one_line(monkeypatch, exc, code, fragment):
    result = _validate_raising(monkeypatch, exc)
    assert result.exit_code == code
    assert fragment in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_usage_errors_are_one_line_that_points_at_help():
    result = CliRunner().invoke(main, ["list", "suites/small.yaml", "--no-such-option"])
    assert result.exit_code == 2
    assert result.output.strip() == "rnnbench: error: No such option: --no-such-option (see: rnnbench list --help)" \
        or result.output.strip().startswith("rnnbench: error: No such option")
    assert len(result.output.strip().splitlines()) == 1


def test_a_closed_stdout_ends_quietly_with_the_command_s_own_code(tmp_path):
    # 10,000 cases: far more output than a pipe buffers, so the writer meets the closed pipe
    suite = suite_file(tmp_path, "many.yaml", name="many",
                       grid={"cell": ["lstm"], "batch": list(range(1, 101)), "hidden_size": list(range(1, 101))})
    done = subprocess.run(f"{sys.executable} -m harness.cli list {suite} | head -n 1; "
                          "echo \"status ${PIPESTATUS[0]}\"", shell=True, executable="/bin/bash",
                          capture_output=True, text=True)
    assert done.stdout.strip().endswith("status 0"), done
    assert "Error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
