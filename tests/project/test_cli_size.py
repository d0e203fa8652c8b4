"""The CLI stays a thin layer: cli.py and terminal.py together under 500 lines. What a command decides and
renders belongs to its stage (harness/execute/run_plan.py, harness/spec/, harness/report/), where it is tested
without a command line."""

from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent.parent / "harness"
MAX_CLI_LINES = 500


def test_the_cli_is_under_500_lines():
    lines = {name: len((HARNESS / name).read_text(encoding="utf-8").splitlines()) for name in ("cli.py", "terminal.py")}
    assert sum(lines.values()) < MAX_CLI_LINES, lines
