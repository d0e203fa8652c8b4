"""The builders the tests share: one case builder, one suite file builder, and settings that run in milliseconds on
a CPU. Synthetic results live beside them, each module for its own job: ``tests/synthetic_results.py`` (runs from a
seeded RNG, for the comparator) and ``tests/report_builders.py`` (runs on known formulas, for the reporter)."""

from __future__ import annotations

import copy
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

import torch
import yaml

from harness.spec.cases import Case
from harness.measure.runner import RunSettings
from harness.spec.suite import Timing

QUICK_TIMING = Timing(warmup_iters=1, min_iters=3, max_iters=5, budget_s=0.01, case_timeout_s=120, profile_iters=1)

# A case of a results file, as the synthetic runs build them (never run: its size only names it)
CASE_FIELDS = dict(cell="lstm", backend="cudnn", mode="forward_backward", batch=16, seq_len=32, input_size=64,
                   hidden_size=64, num_layers=1, bidirectional=False, dtype="float32", device_type="cpu")
# A case that runs in milliseconds on a CPU
TINY_SHAPE = dict(batch=3, seq_len=4, input_size=5, hidden_size=6)


def make_case(backend: str = "cudnn", cell: str = "lstm", mode: str = "forward_backward", **fields) -> Case:
    """A case: B16-T32-I64-H64, one layer, float32 on the CPU, unless ``fields`` (any field of Case) say otherwise."""
    return Case(**{**CASE_FIELDS, "backend": backend, "cell": cell, "mode": mode, **fields})


def tiny_case(**fields) -> Case:
    """A case small enough to run in every test (:data:`TINY_SHAPE`)."""
    return make_case(**{**TINY_SHAPE, **fields})


def cpu_settings(**overrides) -> RunSettings:
    fields = dict(device=torch.device("cpu"), precision="fp32", seed=0, timing=QUICK_TIMING)
    fields.update(overrides)
    return RunSettings(**fields)


# A valid suite of two tiny CPU cases that run in well under a second: what most tests that run a suite need.
SUITE_DEFAULTS = {
    "name": "tiny",
    "device": "cpu",
    "threads": 1,
    "timing": {"warmup_iters": 1, "min_iters": 3, "budget_s": 0.01, "profile_iters": 0},
    "grid": {"cell": ["lstm", "gru"], "backend": ["cudnn"], "batch": [2], "seq_len": [3], "input_size": [4],
             "hidden_size": [4]},
}


def suite_document(**overrides) -> dict:
    """:data:`SUITE_DEFAULTS` with ``overrides``: a mapping given for ``timing``, ``grid`` (or any mapping key)
    updates the default's keys; any other value replaces it; None leaves the key out."""
    document = copy.deepcopy(SUITE_DEFAULTS)
    for key, value in overrides.items():
        if value is None:
            document.pop(key, None)
        elif isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
            document[key] = {k: v for k, v in document[key].items() if v is not None}
        else:
            document[key] = value
    return document


def suite_file(tmp_path: Path, filename: str = "suite.yaml", **overrides) -> Path:
    """Write :func:`suite_document` (``overrides`` as there) as YAML into ``tmp_path``; its path."""
    path = Path(tmp_path) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(suite_document(**overrides), sort_keys=False))
    return path


def cli(*args):
    """``rnnbench ARGS`` in this process (click's runner): its result, with stdout and stderr apart. An exception
    other than the command's exit fails the test where it happened."""
    from click.testing import CliRunner

    from harness.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def one_line_refusal(done, *words) -> str:
    """Assert that ``done`` (a :func:`cli` result) refused with exit 2 in one line of stderr holding ``words``;
    that line."""
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert str(word) in lines[0], lines[0]
    return lines[0]


def rnnbench_here(*args):
    """:func:`cli`, its result shaped as a finished subprocess's (returncode, stdout, stderr), for tests that
    read like the ones that start ``python -m harness.cli``."""
    import subprocess

    result = cli(*args)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


# The busy-machine window (harness.record.machine_state) a run, profile or env in this process reads the machine
# over: torch is imported already, so the whole window (0.5 s) is slept. 50 ms still samples /proc twice.
SHORT_MACHINE_WINDOW_S = 0.05


@contextmanager
def short_machine_window():
    """Commands run in this process read the machine over :data:`SHORT_MACHINE_WINDOW_S`, for tests of what a
    run does, not of the busy-machine verdict (a shorter window sees the neighbours more coarsely). Where a
    module-scoped fixture runs commands; a test asks for the ``short_machine_window`` fixture (tests/conftest.py)."""
    from harness.record import machine_state

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(machine_state, "collect_machine_state",
                      partial(machine_state.collect_machine_state, window_s=SHORT_MACHINE_WINDOW_S))
        yield
