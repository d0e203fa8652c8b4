"""One round of a run in a fresh process: the cases of a suite, in a given order, each result one JSON line.

    python -m harness.worker PLAN.json

PLAN.json: ``{"suite": PATH, "device": "cpu" | "cuda:0" | null, "keys": [case keys, in the order to run]}``,
or ``"keys": "stdin"``: the worker then takes its cases one at a time, a case key per line on its stdin, as
the parent hands them out (``rnnbench run --devices``: the next case goes to whichever worker is free), and
ends at an empty line or the end of stdin.
Every line the worker writes to stdout is one JSON document::

    {"type": "environment", "environment": {...}}      first: the interpreter, torch and machine it runs on
    {"type": "result", "result": {...}}                 one per case, as soon as the case has finished
    {"type": "done"}                                    last, when every case ran

Anything else the process prints goes to stderr. A parent reads the lines as they come, so a round that
dies keeps every case it finished. Any Python interpreter with rnnbench importable can be the worker, which
is how ``rnnbench ab`` sets two torch builds (two virtualenvs) against each other on one machine.
"""

from __future__ import annotations

import gc
import json
import sys


def run_plan(plan: dict, emit) -> None:
    from harness.env import collect_environment
    from harness.runner import run_case
    from harness.session import apply_process_settings, open_suite

    opened = open_suite(plan["suite"], plan.get("device"))
    flags = apply_process_settings(opened.suite)
    environment = collect_environment(opened.device)
    environment["math_precision"] = flags
    emit({"type": "environment", "environment": environment})
    by_key = {case.key: case for case in opened.cases}
    keys = _keys_from(sys.stdin) if plan["keys"] == "stdin" else plan["keys"]
    missing = [] if plan["keys"] == "stdin" else [key for key in keys if key not in by_key]
    if missing:
        raise SystemExit(f"rnnbench worker: {len(missing)} case(s) of the plan are not in the suite here, "
                         f"e.g. {missing[0]}")
    settings = opened.settings()
    gc.freeze()  # as rnnbench run does: the runner's collections then skip the libraries' objects
    for key in keys:
        if key not in by_key:
            raise SystemExit(f"rnnbench worker: case {key} is not in the suite here")
        emit({"type": "result", "result": run_case(by_key[key], settings).to_dict()})
    emit({"type": "done"})


def _keys_from(stream):
    for line in stream:
        key = line.strip()
        if not key:
            return
        yield key


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m harness.worker PLAN.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as handle:
        plan = json.load(handle)
    out = sys.stdout
    # Everything else that prints (torch, libraries) goes to stderr, so stdout carries only the protocol.
    sys.stdout = sys.stderr

    from harness.store import finite_document

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
