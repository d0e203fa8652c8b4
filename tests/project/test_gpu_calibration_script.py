"""scripts/gpu-calibration.sh: a session fits one device call, its sides are the ones the gate is calibrated for,
and the selection it passes reaches the session's plan."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu-calibration.sh"
DEVICE_CALL_BUDGET_S = 540  # a device call runs 600 s at most; the rest is its start and the transfers


def test_the_script_parses_and_stops_itself_inside_one_device_call():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    text = SCRIPT.read_text()
    (limit,) = re.findall(r'timeout .*"\$\{LIMIT_S:-(\d+)\}"', text)
    kill_after = sum(int(s) for s in re.findall(r"--kill-after=(\d+)", text))
    assert int(limit) + kill_after <= DEVICE_CALL_BUDGET_S + 30
    # the sessions are kept as they finish and numbered, so that several calls add up
    assert '--keep "$out/sessions"' in text and '--first-session "${FIRST_SESSION:-0}"' in text


def test_the_default_session_is_the_gates_ten_percent_at_the_calibrated_rounds_on_the_cudnn_cases():
    text = SCRIPT.read_text()
    assert '--slowdowns "${SLOWDOWNS:-0.10}"' in text and '--rounds "${ROUNDS:-8}"' in text
    assert "${BACKENDS-cudnn}" in text
    rounds_cpu = re.search(r"rounds:\s*(\d+)", (ROOT / "suites" / "regression-cpu.yaml").read_text())
    assert rounds_cpu and int(rounds_cpu.group(1)) == 8  # the rounds the CPU calibration chose


def test_a_sessions_plan_has_a_a_again_and_a_slowed_side_over_the_selected_cases_only(tmp_path):
    from benchmarks.gate_calibration import session_plan

    plan = session_plan(str(ROOT / "suites" / "regression-cpu.yaml"), rounds=8, blocks=4, slowdowns=[0.05, 0.1],
                        seed=3, folder=tmp_path, backends=("cudnn",), filters=("cell=lstm",))
    assert set(plan.sides) == {"a", "a-again", "slowed-0.05", "slowed-0.1"}
    assert plan.cases and {(case.backend, case.cell) for case in plan.cases} == {("cudnn", "lstm")}
    assert plan.rounds == 8 and plan.blocks == 4
    assert "RNNBENCH_INJECT_SLOWDOWN=0.1" in " ".join(plan.interpreters["slowed-0.1"])
    assert plan.interpreters["a"] == plan.interpreters["a-again"]
    everything = session_plan(str(ROOT / "suites" / "regression-cpu.yaml"), rounds=8, blocks=4, slowdowns=[0.1],
                              seed=3, folder=tmp_path / "all")
    assert len(everything.cases) > len(plan.cases)
