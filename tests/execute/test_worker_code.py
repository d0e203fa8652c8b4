"""Which code a worker runs: each side of an A/B its own interpreter command's, every --rounds and --devices
worker the parent's, whatever folder the command was started in; and what each results file says about it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness.gate.compare import SAME_CODE, compare_runs
from harness.record.results import RunResults
from harness.execute.rounds import RoundFailed, run_round
from tests.synthetic_results import CPU_ENVIRONMENT, SUITE as SYNTHETIC_SUITE, case_result
from tests.helpers import make_case, suite_file
from tests.execute.test_rounds import KEYS

PARENT_HARNESS = str(Path(harness.__file__).resolve().parent)

# Appended to the slowed tree's harness/measure/runner.py: every call of the model, timed ones included, sleeps first
# (a real slowdown of that tree's own code, many times the tiny case's step; parity is unaffected).
SLOWED_RUNNER = '''

_unslowed_build_backend = build_backend


def build_backend(name, reference):
    built = _unslowed_build_backend(name, reference)
    model = built.model

    def slowed(*args, **kwargs):
        time.sleep(0.004)
        return model(*args, **kwargs)

    return replace(built, model=slowed)
'''


def project_tree(folder: Path, marker: str) -> Path:
    """A copy of this project's harness package under ``folder``, its version marked with ``marker``."""
    shutil.copytree(Path(PARENT_HARNESS), folder / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    init = folder / "harness" / "__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{harness.__version__}"',
                                             f'__version__ = "{harness.__version__}+{marker}"'))
    return folder


def test_each_side_of_an_ab_started_inside_one_tree_runs_its_own_tree_and_the_slowed_one_is_caught(
        tmp_path, monkeypatch):
    from click.testing import CliRunner

    from harness.cli import main
    from harness.record.results_store import read_results

    tree_a = project_tree(tmp_path / "tree-a", "tree-a")
    tree_b = project_tree(tmp_path / "tree-b", "tree-b")
    with open(tree_b / "harness" / "measure" / "runner.py", "a", encoding="utf-8") as runner:
        runner.write(SLOWED_RUNNER)
    # 8 samples a block: each block's median, what the gate pairs, stands even when a burst of the loaded machine
    # hits a few of them (with 2 a block, one round hit that way sank the 3-round paired test under load 7)
    suite = suite_file(tmp_path, timing={"min_iters": 16}, grid={"cell": ["lstm"]})
    monkeypatch.chdir(tree_b)  # as the pull-request workflow does: cd head && rnnbench ab ...

    def side(tree):
        return f"env PYTHONPATH={shlex.quote(str(tree))} {shlex.quote(sys.executable)}"

    result = CliRunner().invoke(main, ["ab", str(suite), "--a", side(tree_a), "--b", side(tree_b), "--rounds", "3",
                                       "--blocks", "2", "-o", str(tmp_path / "ab"), "--quiet", "--markdown"])
    a, b = read_results(tmp_path / "ab" / "a.json"), read_results(tmp_path / "ab" / "b.json")
    assert (a.environment.rnnbench_version, b.environment.rnnbench_version) == (
        f"{harness.__version__}+tree-a", f"{harness.__version__}+tree-b"), result.output
    assert a.environment.harness_path == str((tree_a / "harness").resolve())
    assert b.environment.harness_path == str((tree_b / "harness").resolve())
    assert a.environment.torch_path == b.environment.torch_path and a.environment.python_executable
    assert SAME_CODE not in result.output
    header = result.output[result.output.index("baseline: "):]
    assert f"baseline code: harness {harness.__version__}+tree-a from {a.environment.harness_path}" in header
    assert f"current  code: harness {harness.__version__}+tree-b from {b.environment.harness_path}" in header
    assert f"from {b.environment.harness_path}" in (tmp_path / "ab" / "comparison.md").read_text()
    # a sleep many times the step in every call of B's model: caught however loaded the machine
    assert result.exit_code == 1 and "REGRESSION" in result.output, result.output


def test_a_round_imports_the_parents_harness_even_from_a_folder_that_holds_another(tmp_path, monkeypatch):
    decoy = project_tree(tmp_path / "decoy", "decoy")
    suite = suite_file(tmp_path)
    monkeypatch.chdir(decoy)
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the parent's harness reaches the worker all the same
    outcome = run_round(0, str(suite), None, KEYS[:1])
    assert outcome.complete
    assert outcome.environment["code"]["harness"]["path"] == PARENT_HARNESS
    assert outcome.environment["rnnbench_version"] == harness.__version__


def test_a_round_whose_worker_imports_another_harness_is_refused_before_a_case_runs(tmp_path):
    other = project_tree(tmp_path / "other", "other")
    suite = suite_file(tmp_path)
    received = []
    with pytest.raises(RoundFailed, match=f"imported harness from {other / 'harness'}, not from {PARENT_HARNESS}"):
        run_round(0, str(suite), None, KEYS, interpreter=["env", f"PYTHONPATH={other}", sys.executable],
                  on_result=received.append)
    assert received == []


def test_devices_workers_import_the_parents_harness_even_from_a_folder_that_holds_another(tmp_path, monkeypatch):
    from harness.execute.devices import parse_devices, run_on_devices

    decoy = project_tree(tmp_path / "decoy", "decoy")
    suite = suite_file(tmp_path)
    monkeypatch.chdir(decoy)
    environments, results = [], []
    left = run_on_devices(str(suite), KEYS[:1], parse_devices("cpu", lambda: 0, visible=""),
                          on_environment=lambda index, environment: environments.append(environment),
                          on_result=lambda index, document: results.append(document["key"]),
                          on_lost=lambda index, key, reason: pytest.fail(reason))
    assert left == [] and results == KEYS[:1]
    assert [environment["code"]["harness"]["path"] for environment in environments] == [PARENT_HARNESS]


def test_the_launch_keeps_the_working_folder_off_sys_path_on_interpreters_that_ignore_pythonsafepath(tmp_path):
    """Python 3.10 ignores PYTHONSAFEPATH: the worker's bootstrap drops the folder ``-c`` put first itself."""
    from harness.execute.worker import worker_launch

    decoy = project_tree(tmp_path / "decoy", "decoy")
    suite = suite_file(tmp_path)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"suite": str(suite), "device": "cpu", "keys": [], "turns": {"blocks": 1}}))
    command, environment = worker_launch([sys.executable], str(plan), same_harness=True)
    assert environment["PYTHONSAFEPATH"] == "1"
    assert environment["PYTHONPATH"].split(os.pathsep)[0] == str(Path(PARENT_HARNESS).parent)
    del environment["PYTHONSAFEPATH"]
    done = subprocess.run(command, env=environment, cwd=decoy, capture_output=True, text=True, timeout=300)
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    assert messages[0]["environment"]["code"]["harness"]["path"] == PARENT_HARNESS, done.stderr
    assert messages[-1] == {"type": "done"}


def test_an_ab_side_gets_no_harness_from_the_parent():
    from harness.execute.worker import worker_launch

    _, environment = worker_launch(["python"], "plan.json", same_harness=False, environment={"PYTHONPATH": "wt-a"})
    assert environment == {"PYTHONPATH": "wt-a", "PYTHONSAFEPATH": "1"}


def _side(side: str, code: dict | None, session: str | None = "s1", same_code_ok: bool = False,
          commit: dict | None = None) -> RunResults:
    environment = dict(CPU_ENVIRONMENT)
    if code is not None:
        environment["code"] = code
    if commit is not None:
        environment["commit"] = commit
    interleaved = {"session": session, "side": side, "blocks": 2, **({"same_code_ok": True} if same_code_ok else {})}
    return RunResults(environment=environment, suite=dict(SYNTHETIC_SUITE),
                      cases=(case_result(make_case(), (1.0, 1.01, 0.99, 1.0)),),
                      options={"interleaved": interleaved} if session else {})


CODE_A = {"python": "/venv/bin/python", "harness": {"path": "/base/harness"}, "torch": {"path": "/venv/torch"}}
CODE_B = {"python": "/venv/bin/python", "harness": {"path": "/head/harness"}, "torch": {"path": "/venv/torch"}}


def test_an_ab_whose_sides_import_the_same_files_is_called_an_a_a_comparison_unless_asked_for():
    from harness.report.compare_text import render_markdown, render_text

    accidental = compare_runs(_side("a", CODE_A), _side("b", CODE_A), labels=("A", "B"))
    assert accidental.same_code and not accidental.same_code_intended
    assert accidental.warnings[0].startswith(f"{SAME_CODE}: both sides imported harness from /base/harness")
    text = render_text(accidental)
    assert f"warning: {SAME_CODE}" in text and text.splitlines()[-1].endswith(f"({SAME_CODE})")
    assert SAME_CODE in render_markdown(accidental)
    asked = compare_runs(_side("a", CODE_A, same_code_ok=True), _side("b", CODE_A, same_code_ok=True))
    assert asked.same_code and asked.same_code_intended and not any(SAME_CODE in w for w in asked.warnings)
    assert f"note: {SAME_CODE}, as asked" in render_text(asked)
    two_trees = compare_runs(_side("a", CODE_A), _side("b", CODE_B))
    assert two_trees.same_code is False and SAME_CODE not in render_text(two_trees)
    assert "baseline code: harness" in render_text(two_trees) and "from /head/harness" in render_text(two_trees)


def test_files_without_the_code_record_or_runs_apart_in_time_are_not_called_the_same_code():
    from harness.report.compare_text import render_text

    old = compare_runs(_side("a", None), _side("b", None))
    assert old.same_code is None and "code:" not in render_text(old)
    clean = {"id": "abc123", "dirty": False}
    # two runs of one folder at different times: the same code only at one clean commit
    assert compare_runs(_side("a", CODE_A, None, commit=clean), _side("b", CODE_A, None, commit=clean)).same_code
    moved = compare_runs(_side("a", CODE_A, None, commit=clean),
                         _side("b", CODE_A, None, commit={"id": "def456", "dirty": False}))
    assert moved.same_code is False
    dirty = compare_runs(_side("a", CODE_A, None, commit=clean),
                         _side("b", CODE_A, None, commit={"id": "abc123", "dirty": True}))
    assert dirty.same_code is None and not any(SAME_CODE in w for w in dirty.warnings)
