"""scripts/gpu-check.sh: every part fits one device call, and it runs where the GPU machine has no `python`."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parents[1] / "scripts" / "gpu-check.sh"
DEVICE_CALL_BUDGET_S = 540  # a device call runs 600 s at most; the rest is its start and the transfers
PARTS = ("core", "profile", "variants", "scale", "flashrnn")


def _limits_by_part(text):
    """{part: [(name, seconds), ...]} of the time-limited commands, and those every part runs (key None)."""
    limits = {None: []}
    part = None
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        opened = re.match(r"\s*if part (\w+); then", code)
        if opened:
            part = opened.group(1)
            limits.setdefault(part, [])
            continue
        if code.strip() == "fi" and part is not None:
            part = None
            continue
        for match in re.finditer(r"\bstep ([\w-]+) (\d+)\b", code):
            limits[part].append((match.group(1), int(match.group(2))))
        for match in re.finditer(r"\btimeout (\d+)\b", code):
            limits[part].append((f"line {number}", int(match.group(1))))
    return limits


def test_each_part_fits_one_device_call():
    limits = _limits_by_part(SCRIPT.read_text())
    assert set(limits) == {None, *PARTS}
    common = sum(seconds for _, seconds in limits[None])
    for part in PARTS:
        total = common + sum(seconds for _, seconds in limits[part])
        assert total <= DEVICE_CALL_BUDGET_S, (part, total, limits[None] + limits[part])


def test_every_command_of_the_script_is_time_limited():
    text = SCRIPT.read_text().replace("\\\n", " ")  # one logical line per command
    body = text[text.index("\n}\n", text.index("step() {")):]  # after the step function's own `timeout "$limit"`
    for line in body.splitlines():
        if re.search(r"\$python\b|\bnvidia-smi\b", line.split("#", 1)[0]):
            assert re.search(r"\bstep [\w-]+ \d+|\btimeout \d+", line), line


def test_the_core_part_runs_the_gpu_checks_of_the_cuda_paths():
    names = dict(_limits_by_part(SCRIPT.read_text())["core"])
    assert {"pytest-gpu", "agreement", "small-cuda", "cudagraph", "tf32-max-autotune",
            "profiler-after-effect"} <= set(names)
    assert names["profiler-after-effect"] == 60


def test_python3_is_the_default_interpreter():
    text = SCRIPT.read_text()
    assert "python=${PYTHON:-python3}" in text
    commands = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    bare = [line for line in commands if re.search(r"(^|[\s;(])python\s", line)]
    assert not bare, bare  # every call goes through "$python"


def test_the_script_parses_and_stops_with_a_reason_without_a_gpu(tmp_path):
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the script would run its checks")
    completed = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                               env={**os.environ, "PYTHON": sys.executable}, timeout=120)
    assert completed.returncode == 2
    assert (tmp_path / "SUMMARY.txt").read_text() == "no CUDA GPU visible to torch; nothing to check\n"
