"""The scale-out recipes: the GitHub Actions matrix (.github/workflows/gpu-shards.yml) and the Slurm job array
(scripts/slurm-shards.sh) both run scripts/shards.sh; here the workflow is checked against it, and the Slurm
recipe is submitted to a stand-in sbatch (there is no Slurm here) that runs its jobs, so the shards, the merge,
the comparison, the report and the history run for real on the CPU with a tiny suite."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from harness.spec.cases import expand_cases
from harness.cli import main
from harness.measure.env import collect_environment
from harness.record.results import CaseResult, RunResults
from harness.spec.shard import split
from harness.record.results_io import write_results
from harness.record.results_store import STORE, read_results
from harness.spec.suite import load_suite
from tests.helpers import suite_file

ROOT = Path(__file__).resolve().parent.parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "gpu-shards.yml"
SHARDS = ROOT / "scripts" / "shards.sh"
SLURM = ROOT / "scripts" / "slurm-shards.sh"
RECIPE_SUITE = dict(name="recipe", timing={"warmup_iters": 0, "min_iters": 12, "budget_s": 0.001},
                    telemetry={"enabled": False}, grid={"seq_len": [3, 4]})
# Runs each submitted job at once: array tasks side by side with SLURM_ARRAY_TASK_ID set, then a job that
# depends on them. Logs every command line to $FAKE_SBATCH_LOG.
FAKE_SBATCH = r"""
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["FAKE_SBATCH_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
option = lambda name: next((a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")), None)
wrap, array, output = option("wrap"), option("array"), option("output")
def job(task=None):  # as Slurm does: the job's output goes to its --output file, not to sbatch's
    environment = {**os.environ, **({"SLURM_ARRAY_TASK_ID": str(task)} if task is not None else {})}
    log = open(output.replace("%a", str(task)), "w")
    return subprocess.Popen(["bash", "-c", wrap], env=environment, stdout=log, stderr=subprocess.STDOUT)
if array:
    first, last = map(int, array.split("-"))
    for task in [job(i) for i in range(first, last + 1)]:
        task.wait()
    print("1001;cluster")
else:
    assert option("dependency") == "afterany:1001", args
    job().wait()
    print("1002")
"""


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_matrix_has_one_job_per_shard_and_a_gate_after_them(workflow):
    shards = int(workflow["env"]["SHARDS"])
    shard_job, gate_job = workflow["jobs"]["shard"], workflow["jobs"]["gate"]
    assert shard_job["strategy"]["matrix"]["shard"] == list(range(shards))
    assert shard_job["strategy"]["fail-fast"] is False
    assert gate_job["needs"] == "shard" and gate_job["if"].replace(" ", "") == "${{!cancelled()}}"
    runs = [step["run"] for step in shard_job["steps"] if "run" in step]
    assert 'scripts/shards.sh run "$SUITE" "${{ matrix.shard }}" "$SHARDS" "$OUT"' in runs
    gate_script = next(step["run"] for step in gate_job["steps"] if "shards.sh gate" in step.get("run", ""))
    assert 'scripts/shards.sh gate "$SUITE" "$SHARDS" "$OUT"' in gate_script
    upload = next(s for s in shard_job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    download = next(s for s in gate_job["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert upload["with"]["name"].replace("${{ matrix.shard }}", "*") == download["with"]["pattern"]
    assert upload["with"]["path"].rstrip("/") == download["with"]["path"].rstrip("/") == workflow["env"]["OUT"]
    for job in (shard_job, gate_job):
        for step in job["steps"]:
            if "run" in step:
                assert subprocess.run(["bash", "-n"], input=step["run"], text=True).returncode == 0, step["name"]
    suite = re.search(r"'(suites/[\w.-]+\.yaml)'", workflow["env"]["SUITE"]).group(1)
    assert CliRunner().invoke(main, ["validate", str(ROOT / suite), "--device", "cpu"]).exit_code == 0


def test_the_history_is_appended_on_main_and_kept_between_runs(workflow):
    steps = workflow["jobs"]["gate"]["steps"]
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore"))
    save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save"))
    assert restore["with"]["path"] == save["with"]["path"] == "history/history.sqlite"
    assert save["with"]["key"].startswith(restore["with"]["restore-keys"])
    gate_script = next(s["run"] for s in steps if "shards.sh gate" in s.get("run", ""))
    assert "HISTORY_DB=history/history.sqlite" in gate_script and "refs/heads/main" in gate_script


def test_the_scripts_are_executable_and_refuse_bad_arguments(tmp_path):
    for script in (SHARDS, SLURM):
        assert os.access(script, os.X_OK) and subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert subprocess.run([str(SHARDS), "dance"], capture_output=True).returncode == 2
    done = subprocess.run([str(SLURM), "suites/small.yaml", "0", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "N must be" in done.stderr


def fast_baseline_of_this_machine(suite: Path, folder: Path) -> None:
    """A baseline of this machine's environment (as `rnnbench run` records it) that is 100 times faster than any
    real run, where `baseline-path` looks for it: the gate must compare and find every case regressed."""
    environment = collect_environment(torch.device("cpu"))
    environment["math_precision"] = {"requested": "fp32"}
    opened = load_suite(str(suite))
    fast = tuple(0.001 * (1 + 0.01 * i) for i in range(20))
    cases = [CaseResult(case=case, status="ok", samples_ms={region: fast for region in ("forward", "backward", "step")})
             for case in expand_cases(opened, "cpu")]
    run = RunResults(environment=environment, suite=opened.to_dict(), cases=tuple(cases))
    write_results(STORE.baseline_path(environment, folder), run)


def test_the_slurm_array_runs_every_shard_then_the_gate(tmp_path):
    suite = suite_file(tmp_path, **RECIPE_SUITE)
    fake = tmp_path / "sbatch.py"
    fake.write_text(FAKE_SBATCH)
    fast_baseline_of_this_machine(suite, tmp_path / "baselines")
    out = tmp_path / "out"
    environment = {**os.environ, "SBATCH": f"{sys.executable} {fake}", "FAKE_SBATCH_LOG": str(tmp_path / "log"),
                   "RNNBENCH": f"{sys.executable} -m harness.cli", "PYTHONPATH": str(ROOT),
                   "BASELINES": str(tmp_path / "baselines"), "HISTORY_DB": str(tmp_path / "h" / "history.sqlite")}
    done = subprocess.run([str(SLURM), str(suite), "2", str(out)], capture_output=True, text=True, env=environment,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    submitted = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
    assert "--array=0-1" in submitted[0] and "--gres=gpu:1" in submitted[0]
    assert "--dependency=afterany:1001" in submitted[1]
    assert "job array 1001 (0-1), the gate as job 1002" in done.stdout
    shards = [read_results(out / f"shard-{index}-of-2.json") for index in range(2)]
    assert [run.options["shard"]["index"] for run in shards] == [0, 1]
    opened = load_suite(str(suite))
    expected = split(expand_cases(opened, "cpu"), 2, opened.timing)
    assert [[c.key for c in run.cases] for run in shards] == [[c.key for c in shard] for shard in expected]
    merged = read_results(out / "merged.json")
    assert merged.status == "complete" and len(merged.cases) == 4
    gate_log = (out / "gate.log").read_text()
    assert "4 regression" in gate_log, gate_log  # compared with the baseline (100x faster): every case slower
    assert (out / "compare.md").is_file() and (out / "report" / "report.html").is_file()
    assert list((out / "history").glob("*.png")) and (out / "history.txt").is_file()
    assert "4 series, 0 with steps" in (out / "history-regressions.txt").read_text()
