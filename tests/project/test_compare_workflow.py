"""The GPU regression workflow: it parses, it calls commands that exist, and its compare step's shell does what
it says (no baseline: warn and pass; no regression: pass; a regression: fail), with the summary written."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.record.results_io import write_results
from synthetic_results import grid_cases, synthetic_run

ROOT = Path(__file__).resolve().parent.parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "gpu-regression.yml"
REFRESH = ROOT / "scripts" / "refresh-baseline.sh"
# a command, or a group's command ("history add"): the words after `rnnbench` that name one
COMMAND = re.compile(r"(?:^|[\s\"'$(])rnnbench\s+([a-z][a-z-]*(?:\s+(?:add|show|regressions))?)")


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow) -> list[dict]:
    return workflow["jobs"]["regression"]["steps"]


def step(workflow, name: str) -> dict:
    (found,) = [s for s in steps(workflow) if s.get("name") == name]
    return found


def test_workflow_parses_and_runs_on_a_self_hosted_gpu_runner(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"pull_request", "push", "workflow_dispatch"} <= set(triggers)
    assert set(triggers["workflow_dispatch"]["inputs"]) >= {"refresh_baseline", "allow_env_mismatch"}
    job = workflow["jobs"]["regression"]
    assert {"self-hosted", "gpu"} <= set(job["runs-on"])
    uses = [s["uses"].split("@")[0] for s in job["steps"] if "uses" in s]
    assert uses.count("actions/checkout") == 1 and "actions/upload-artifact" in uses


def test_every_rnnbench_command_the_workflow_and_refresh_script_call_exists(workflow):
    scripts = [s["run"] for s in steps(workflow) if "run" in s] + [REFRESH.read_text()]
    called = {match for script in scripts for match in COMMAND.findall(script)}
    assert {"run", "compare", "baseline-path", "export-pytest-benchmark", "validate", "env"} <= called
    for command in sorted(called):
        result = CliRunner().invoke(main, [*command.split(), "--help"])
        assert result.exit_code == 0, f"rnnbench {command}: {result.output}"


def test_every_option_the_workflow_passes_to_rnnbench_exists(workflow):
    """Options on an `rnnbench CMD` line, and those the compare step collects in its options array."""
    lines = [line for s in steps(workflow) if "run" in s for line in s["run"].splitlines()]
    lines += REFRESH.read_text().splitlines()
    passed: dict[str, set[str]] = {}
    for line in lines:
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line))
        if re.match(r"\s*options\+?=", line):
            passed.setdefault("compare", set()).update(flags)
        for command in COMMAND.findall(line):
            passed.setdefault(command, set()).update(flags)
    assert passed.get("report", set()) >= {"--threshold"}  # the charts' verdicts use the gate's threshold
    for command, flags in sorted(passed.items()):
        help_text = CliRunner().invoke(main, [*command.split(), "--help"]).output
        for flag in sorted(flags):
            assert flag in help_text, f"rnnbench {command} has no option {flag}"


def test_runs_on_main_are_appended_to_a_history_kept_between_runs(workflow):
    names = [s.get("name") for s in steps(workflow)]
    restore, append, save = (step(workflow, name) for name in (
        "Restore the history", "Append this run to the history (main)", "Save the history"))
    assert names.index(restore["name"]) < names.index(append["name"]) < names.index(save["name"])
    for history_step in (restore, append, save):
        assert "refs/heads/main" in history_step["if"]
    assert restore["with"]["path"] == save["with"]["path"] == "history/history.sqlite"
    called = set(COMMAND.findall(append["run"]))
    assert {"history add", "history regressions", "history show"} <= called


def test_the_suites_and_scripts_it_names_exist(workflow):
    text = WORKFLOW.read_text()
    for suite in set(re.findall(r"suites/[\w.-]+\.yaml", text)):
        assert (ROOT / suite).is_file(), suite
        result = CliRunner().invoke(main, ["validate", str(ROOT / suite), "--device", "cpu"])
        assert result.exit_code == 0, result.output
    assert REFRESH.stat().st_mode & stat.S_IXUSR
    assert subprocess.run(["bash", "-n", str(REFRESH)]).returncode == 0
    for s in steps(workflow):
        if "run" in s and s.get("shell", "bash") == "bash":
            assert subprocess.run(["bash", "-n"], input=s["run"], text=True).returncode == 0, s["name"]


def test_results_and_report_are_uploaded_always(workflow):
    upload = step(workflow, "Upload results and report")
    assert upload["if"].replace(" ", "") == "${{always()}}"
    assert upload["with"]["path"].rstrip("/") == "ci-results"


def _compare_step_script(workflow) -> str:
    script = step(workflow, "Compare with the baseline")["run"]
    # What GitHub substitutes on a push (no workflow_dispatch inputs).
    script = script.replace("${{ inputs.threshold || '5%' }}", "5%").replace("${{ inputs.allow_env_mismatch }}", "")
    assert "${{" not in script
    return "set -eo pipefail\n" + script


def _run_step(script: str, workdir: Path) -> tuple[subprocess.CompletedProcess, str]:
    summary = workdir / "summary.md"
    summary.write_text("")
    environment = {**os.environ, "OUT": "ci-results", "GITHUB_STEP_SUMMARY": str(summary),
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", script], cwd=workdir, env=environment, capture_output=True, text=True,
                          timeout=300)
    return done, summary.read_text()


def test_compare_step_passes_without_baseline_then_gates(workflow, tmp_path):
    script = _compare_step_script(workflow)
    (tmp_path / "ci-results").mkdir()
    write_results(tmp_path / "ci-results" / "current.json", synthetic_run(2))

    done, summary = _run_step(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "::warning::No baseline" in done.stdout and "no baseline" in summary

    baseline = tmp_path / "results" / "baselines" / "cpu-amd-epyc.json"
    baseline.parent.mkdir(parents=True)
    write_results(baseline, synthetic_run(1))
    done, summary = _run_step(script, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary.startswith("## rnnbench compare: :white_check_mark: no regression")

    slow = grid_cases()[5].key
    write_results(tmp_path / "ci-results" / "current.json", synthetic_run(2, shifts={slow: 1.25}))
    done, summary = _run_step(script, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "::error::performance regression" in done.stdout
    assert summary.startswith("## rnnbench compare: :x: regression") and slow in summary
    assert (tmp_path / "ci-results" / "compare.txt").read_text().strip().splitlines()[-1].startswith("REGRESSION")


def test_pull_requests_are_gated_by_base_and_head_taking_turns(workflow):
    """The calibrated gate (docs/gate.md#calibration): rnnbench ab of the base against the head, paired rounds."""
    jobs = workflow["jobs"]
    assert "pull_request" in jobs["ab"]["if"] and "pull_request" in jobs["regression"]["if"]
    assert {"self-hosted", "gpu"} <= set(jobs["ab"]["runs-on"])
    ab_steps = jobs["ab"]["steps"]
    checkouts = [s for s in ab_steps if s.get("uses", "").startswith("actions/checkout")]
    assert [c["with"]["path"] for c in checkouts] == ["head", "base"]
    assert "base.sha" in checkouts[1]["with"]["ref"]
    scripts = [s["run"] for s in ab_steps if "run" in s]
    for script in scripts:
        assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    joined = "\n".join(scripts).replace("\\\n", " ")
    called = set(COMMAND.findall(joined))
    assert {"ab", "report", "env"} <= called
    for line in joined.splitlines():
        for command in COMMAND.findall(line):
            help_text = CliRunner().invoke(main, [*command.split(), "--help"]).output
            for flag in set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line)):
                assert flag in help_text, f"rnnbench {command} has no option {flag}"
    assert "venv-base/bin/python" in joined and "venv-head/bin/python" in joined
