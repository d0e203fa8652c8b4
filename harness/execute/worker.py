"""One round of a run in a fresh process: the cases of a suite, in a given order, each result one JSON line.

    python -m harness.execute.worker PLAN.json

PLAN.json: ``{"suite": PATH, "device": "cpu" | "cuda:0" | null, "keys": [case keys, in the order to run]}``,
or ``"keys": "stdin"``: the worker then takes its cases one at a time, a case key per line on its stdin, as
the parent hands them out (``rnnbench run --devices``: the next case goes to whichever worker is free), and
ends at an empty line or the end of stdin. For processes that take turns on one machine (``rnnbench ab``,
with a list of keys) ``"turns": {"blocks": K}``; ``"measure_peak": false`` when the parent measured the run's
peak already (rounds, ``--devices``). :class:`harness.execute.worker_client.WorkerPlan` writes it.
Every line the worker writes to stdout is one JSON document::

    {"type": "environment", "environment": {...}}      first: the interpreter, torch and machine it runs on,
                                                        with ``machine_state``: who else uses the machine
    {"type": "turn", "key": K, "phase": "prepare" | "block", "block": k | null}
                                                        with turns: waits for a line "go" on stdin before it
                                                        builds case K, and before each of its K timed blocks
    {"type": "result", "result": {...}}                 one per case, as soon as the case has finished
    {"type": "done"}                                    last, when every case ran

Anything else the process prints goes to stderr. A parent reads the lines as they come, so a round that
dies keeps every case it finished. Any Python interpreter with rnnbench importable can be the worker, which
is how ``rnnbench ab`` sets two torch builds (two virtualenvs, two checkouts) against each other on one machine.

A parent starts every worker through :func:`start_worker` (by way of :class:`harness.execute.worker_client.WorkerProcess`), which keeps the working folder off the worker's
``sys.path`` (``python -m`` would put it first), so what the interpreter command names (a virtualenv, ``env PYTHONPATH=...``) decides which
``harness`` it imports, not the folder the parent was started in. The environment message records where the
worker's ``harness`` and ``torch`` came from (``environment["code"]``, :func:`harness.measure.env.code_info`).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import site
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

# ``python -m`` (and ``-c``) put the working folder first on sys.path: a parent started inside a checkout would
# hand every worker that checkout's harness, whatever its interpreter command names. PYTHONSAFEPATH=1 keeps it
# off from Python 3.11 on; for older interpreters the worker is started through ``-c`` and drops the '' entry
# that ``-c`` put first. The working folder itself stays the parent's, so relative paths in the interpreter
# command (venv-a/bin/python, env PYTHONPATH=wt-a) and in the plan mean what the user meant.
_BOOTSTRAP = ("import sys\n"
              "if sys.path[:1] == ['']: del sys.path[0]\n"
              "import runpy\n"
              "runpy.run_module('harness.execute.worker', run_name='__main__', alter_sys=True)\n")


def harness_root() -> str:
    """The folder this process imported ``harness`` from (the one that holds the package)."""
    return str(Path(__file__).resolve().parents[2])  # harness/execute/worker.py -> the folder holding harness/


def worker_launch(interpreter: Sequence[str], plan_path: str, *, same_harness: bool,
                  environment: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a worker on ``plan_path``.

    ``same_harness``: the worker must run this process's harness (``run --rounds``, ``run --devices``): its root
    goes first on the worker's PYTHONPATH. Otherwise (``rnnbench ab``) the interpreter command alone decides.
    ``environment``: the worker's environment before these changes (default: this process's).
    """
    worker_environment = dict(os.environ if environment is None else environment)
    worker_environment["PYTHONSAFEPATH"] = "1"
    if same_harness:
        root = harness_root()
        # an installed harness is found by the same interpreter anyway; a site folder on PYTHONPATH would come
        # before the standard library
        if root not in {str(Path(folder).resolve()) for folder in _site_folders()}:
            inherited = worker_environment.get("PYTHONPATH")
            worker_environment["PYTHONPATH"] = os.pathsep.join([root, inherited] if inherited else [root])
    return [*interpreter, "-c", _BOOTSTRAP, str(plan_path)], worker_environment


def start_worker(interpreter: Sequence[str], plan_path: str, *, same_harness: bool,
                 environment: Mapping[str, str] | None = None, **popen) -> subprocess.Popen:
    """Start a worker (:func:`worker_launch`); ``popen``: the pipes, as for :class:`subprocess.Popen`.
    Raises OSError when the interpreter cannot be started."""
    command, worker_environment = worker_launch(interpreter, plan_path, same_harness=same_harness,
                                                environment=environment)
    return subprocess.Popen(command, env=worker_environment, text=True, encoding="utf-8", **popen)


def worker_harness_mismatch(environment: Mapping | None) -> str | None:
    """Why a worker that must run this process's harness does not (a sentence), or None when it does.

    A worker that does not say where its harness came from (an rnnbench older than this one) is a mismatch."""
    from harness.record.results import Environment

    path = Environment(environment if isinstance(environment, Mapping) else {}).harness_path
    here = str(Path(__file__).resolve().parents[1])  # the harness package this process imported
    if path == here:
        return None
    return (f"the worker imported harness from {path or 'a place it does not report'}, not from {here} as this "
            f"process did; its numbers would not be this rnnbench's")


def _site_folders() -> list[str]:
    folders = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    user = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    return folders + ([user] if isinstance(user, str) else [])


def run_plan(plan: dict, emit, commands=sys.stdin) -> None:
    from harness.measure.env import collect_environment, measured_peak
    from harness.record.machine_state import collect_machine_state
    from harness.measure.runner import run_case
    from harness.execute.session import apply_process_settings, open_suite

    opened = open_suite(plan["suite"], plan.get("device"), sets=plan.get("sets") or ())
    flags = apply_process_settings(opened.suite)
    environment = collect_environment(opened.device)
    environment["math_precision"] = flags
    # its parent (the rnnbench that started it) and the parent's other workers (an A/B's other side) are ours
    environment["machine_state"] = collect_machine_state(environment, family_root=os.getppid()).to_dict()
    if plan.get("turns"):  # the sides start together: a peak measured now would share the device with the other's
        environment["measured_peak"] = {"error": "not measured in an A/B (its processes share the device)"}
    elif plan.get("measure_peak") is False:  # the parent measured the run's peak; the results keep that one
        environment["measured_peak"] = {"error": "measured once, by the parent process"}
    else:
        environment["measured_peak"] = measured_peak(opened.device, opened.suite.dtype)
    emit({"type": "environment", "environment": environment})
    by_key = {case.key: case for case in opened.cases}
    keys = _keys_from(commands) if plan["keys"] == "stdin" else plan["keys"]
    missing = [] if plan["keys"] == "stdin" else [key for key in keys if key not in by_key]
    if missing:
        raise SystemExit(f"rnnbench worker: {len(missing)} case(s) of the plan are not in the suite here, "
                         f"e.g. {missing[0]}")
    settings = opened.settings()
    turns = None
    if plan.get("turns"):
        from dataclasses import replace

        from harness.spec.suite import Telemetry

        turns = Turns(int(plan["turns"]["blocks"]), emit, commands)
        # An NVML window would span the other processes' turns: an A/B measures time only.
        settings = replace(settings, telemetry=Telemetry(enabled=False))
    gc.freeze()  # as rnnbench run does: the runner's collections then skip the libraries' objects
    for key in keys:
        if key not in by_key:
            raise SystemExit(f"rnnbench worker: case {key} is not in the suite here")
        emit({"type": "result", "result": run_case(by_key[key], settings, turns=turns).to_dict()})
    emit({"type": "done"})


class Turns:
    """The worker's side of taking turns: say on stdout what it is about to do, wait for "go" on stdin.

    The case's hard time limit (an interval timer) is paused while waiting, and ``wait`` returns the
    seconds waited so the timed loop's deadline moves on by as much: the other process's turns are not
    this case's time.
    """

    def __init__(self, blocks: int, emit, commands):
        if blocks < 1:
            raise SystemExit(f"rnnbench worker: turns need at least one block, got {blocks}")
        self.blocks, self._emit, self._commands = blocks, emit, commands

    def wait(self, key: str, phase: str, block: int | None = None) -> float:
        timer = signal.setitimer(signal.ITIMER_REAL, 0) if hasattr(signal, "setitimer") else (0.0, 0.0)
        started = time.perf_counter()
        self._emit({"type": "turn", "key": key, "phase": phase, "block": block})
        line = self._commands.readline()
        if line.strip() != "go":
            raise SystemExit(f"rnnbench worker: expected 'go' on stdin, got {line.strip()[:40]!r}")
        if timer[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, timer[0])
        return time.perf_counter() - started


def _keys_from(stream):
    for line in stream:
        key = line.strip()
        if not key:
            return
        yield key


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m harness.execute.worker PLAN.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as handle:
        plan = json.load(handle)
    out = sys.stdout
    # Everything else that prints (torch, libraries) goes to stderr, so stdout carries only the protocol.
    sys.stdout = sys.stderr

    from harness.record.results_io import finite_document

    def emit(document: dict) -> None:
        out.write(json.dumps(finite_document(document), allow_nan=False, default=str) + "\n")
        out.flush()

    try:
        run_plan(plan, emit)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
