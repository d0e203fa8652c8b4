"""``rnnbench --help``, ``list`` and ``validate`` of a CPU float32 suite, and ``history add``, start without
importing torch (the ~2 s of most of a command's start on a small machine; benchmarks/cli_startup.py times it). Structural: a fresh
process's sys.modules, not a clock. 'auto' and other dtypes ask torch, as docs/suites.md says."""

import subprocess
import sys
from pathlib import Path

import pytest

from harness.record.results_io import write_results
from synthetic_results import synthetic_run

ROOT = Path(__file__).resolve().parent.parent.parent
PROBE = """
import sys
from harness.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(f"exit={code} torch={'torch' in sys.modules} matplotlib={'matplotlib' in sys.modules}", file=sys.stderr)
"""


def heavy_imports(*args) -> set[str]:
    """Which of torch and matplotlib ``rnnbench ARGS`` imported in a fresh process (it must exit 0)."""
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("exit=0 "), result.stderr
    return {word.split("=")[0] for word in last.split()[1:] if word.endswith("=True")}


def torch_imported(*args) -> bool:
    return "torch" in heavy_imports(*args)


@pytest.mark.parametrize("args", [
    ("--help",),
    ("list", "--help"),
    ("list", "suites/regression-cpu.yaml"),
    ("validate", "suites/regression-cpu.yaml"),
    ("validate", "suites/small.yaml", "--device", "cpu"),
    ("list", "--set", "device=cpu", "--set", "hidden_size=64,128"),
], ids=" ".join)
def test_these_start_without_torch(args):
    assert not torch_imported(*args)


def test_history_add_of_a_results_file_starts_without_torch_or_matplotlib(tmp_path):
    """It reads results files and writes SQLite (it once imported torch to read the clock, 1.5 s a call, and
    matplotlib with the module that draws the trend charts, 0.5 s)."""
    results = tmp_path / "run.json"
    write_results(results, synthetic_run(0))
    assert heavy_imports("history", "add", str(results), "--db", str(tmp_path / "history.sqlite")) == set()


def test_a_suite_on_device_auto_asks_torch_whether_there_is_a_gpu():
    assert torch_imported("validate", "suites/small.yaml")
