"""pytest-benchmark interop: the export of a results file, read by pytest-benchmark's own CLI, and the pytest
entry point (benchmarks/) timing suite cases through the ``benchmark`` fixture."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.record.export_pytest_benchmark import to_pytest_benchmark
from harness.record.results_io import write_results
from synthetic_results import case_result, grid_cases, synthetic_run, with_cases

ROOT = Path(__file__).resolve().parent.parent.parent
CASES = grid_cases()


def own_pytest_environment() -> dict:
    """This process's environment without what pytest-xdist and pytest set for their own workers: a pytest started
    from a test under ``-n 2`` saw ``PYTEST_XDIST_WORKER``, took itself for an xdist worker and pytest-benchmark
    disabled every benchmark (no JSON written)."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}


def test_export_converts_milliseconds_to_seconds():
    run = with_cases(synthetic_run(1), [case_result(CASES[0], (4.0, 1.0, 3.0, 2.0)),
                                        case_result(CASES[1], (), status="failed", reason="parity failed"),
                                        case_result(CASES[2], (), status="skipped", reason="no compiler")])
    export = to_pytest_benchmark(run)
    (bench,) = export.document["benchmarks"]
    stats = bench["stats"]
    assert stats["data"] == pytest.approx([0.004, 0.001, 0.003, 0.002])  # measured order kept
    assert stats["min"] == pytest.approx(0.001) and stats["max"] == pytest.approx(0.004)
    assert stats["median"] == pytest.approx(0.0025) and stats["mean"] == pytest.approx(0.0025)
    assert stats["total"] == pytest.approx(0.010) and stats["ops"] == pytest.approx(400.0)
    assert stats["rounds"] == 4 and stats["iterations"] == 1
    assert stats["q1"] == pytest.approx(0.0015) and stats["q3"] == pytest.approx(0.0035)
    assert bench["name"] == f"step[{CASES[0].key}]" and bench["param"] == CASES[0].key
    assert bench["params"]["hidden_size"] == CASES[0].hidden_size
    assert export.exported == 1
    assert [line.split(":")[0] for line in export.skipped_cases] == [CASES[1].key, CASES[2].key]
    assert set(export.document) == {"machine_info", "commit_info", "benchmarks", "datetime", "version"}


def test_export_of_another_region():
    run = with_cases(synthetic_run(1), [case_result(CASES[0], (10.0, 20.0))])
    (bench,) = to_pytest_benchmark(run, "forward").document["benchmarks"]
    assert bench["name"].startswith("forward[")
    assert bench["stats"]["median"] == pytest.approx(0.4 * 15.0 / 1e3)  # synthetic forward = 0.4 x step


def test_pytest_benchmark_cli_reads_the_export(tmp_path):
    storage = tmp_path / "storage" / "Linux-CPython-3.11-64bit"
    files = []
    for number, seed in ((1, 1), (2, 2)):
        results = tmp_path / f"run{seed}.json"
        write_results(results, synthetic_run(seed))
        target = storage / f"000{number}_run{seed}.json"
        result = CliRunner().invoke(main, ["export-pytest-benchmark", str(results), "-o", str(target)])
        assert result.exit_code == 0, result.output
        files.append(target)
    assert json.loads(files[0].read_text())["benchmarks"][0]["stats"]["rounds"] == 200

    listed = subprocess.run([sys.executable, "-m", "pytest_benchmark", "--storage", f"file://{tmp_path / 'storage'}",
                             "list"], capture_output=True, text=True, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [Path(line).name for line in listed.stdout.split()] == ["0001_run1.json", "0002_run2.json"]

    compared = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", *map(str, files),
                               "--columns=min,median,max", "--sort=name"], capture_output=True, text=True,
                              cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "Failed to load" not in compared.stdout + compared.stderr
    for run in ("0001_run1", "0002_run2"):  # each row names its source file
        assert re.search(re.escape(f"step[{CASES[0].key}] (") + rf"[^)]*{run}\)", compared.stdout)
    assert "(time in ms)" in compared.stdout  # seconds in the file, scaled back to ms for display


def test_export_of_a_file_without_ok_cases_is_an_error(tmp_path):
    results = tmp_path / "failed.json"
    write_results(results, with_cases(synthetic_run(1), [case_result(CASES[0], (), status="failed", reason="x")]))
    result = CliRunner().invoke(main, ["export-pytest-benchmark", str(results), "-o", str(tmp_path / "out.json")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].endswith("no ok case with samples to export")


# --- the pytest entry point -----------------------------------------------------------------------------

def run_pytest(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "benchmarks/test_rnn_benchmarks.py", "-p", "no:cacheprovider",
               "--rnnbench-suite", "benchmarks/tiny.yaml", "--rnnbench-device", "cpu",
               "--rnnbench-filter", "cell=lstm", "--rnnbench-backend", "cudnn", "--benchmark-min-rounds=3",
               "--benchmark-max-time=0.001", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300, env=own_pytest_environment())


def test_pytest_entry_point_times_cases_and_gates_with_compare_fail(tmp_path):
    key = "lstm/cudnn/forward_backward/B4-T8-I16-H16-L1/float32/cpu"
    storage = tmp_path / "storage"
    output = tmp_path / "bench.json"
    first = run_pytest(f"--benchmark-storage=file://{storage}", "--benchmark-autosave",
                       f"--benchmark-json={output}")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    (bench,) = json.loads(output.read_text())["benchmarks"]
    assert bench["name"] == f"test_case[{key}]"
    assert bench["extra_info"]["rnnbench_key"] == key
    assert bench["group"] == "lstm forward_backward B4-T8-I16-H16-L1 float32 cpu"
    assert bench["options"]["disable_gc"] is True
    assert bench["stats"]["rounds"] >= 3 and 0 < bench["stats"]["median"] < 1.0  # seconds
    (saved,) = storage.glob("*/0001_*.json")

    # The saved run, scaled to a median of 1 ns (no real step is that fast; "1000x faster" was not enough when a
    # loaded machine made the saved run itself 1000x slow): the next run is far slower and the gate fails it.
    document = json.loads(saved.read_text())
    for entry in document["benchmarks"]:
        factor = 1e-9 / entry["stats"]["median"]
        for name in ("min", "max", "mean", "median", "q1", "q3", "ld15iqr", "hd15iqr", "stddev", "iqr", "total"):
            entry["stats"][name] *= factor
    saved.write_text(json.dumps(document))
    gated = run_pytest(f"--benchmark-storage=file://{storage}", "--benchmark-compare=0001",
                       "--benchmark-compare-fail=median:10%")
    assert gated.returncode != 0, gated.stdout[-3000:] + gated.stderr[-3000:]
    assert "Performance has regressed" in gated.stdout + gated.stderr


def test_pytest_entry_point_rejects_a_bad_suite():
    done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_rnn_benchmarks.py", "-p",
                           "no:cacheprovider", "--rnnbench-suite", "no/such/suite.yaml", "--benchmark-disable"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, env=own_pytest_environment())
    assert done.returncode != 0
    assert "no such suite file" in done.stdout + done.stderr
