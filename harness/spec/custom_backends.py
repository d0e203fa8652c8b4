"""Backends the user brings: a suite's ``custom_backends: {name: "package.module:build"}``, and installed
packages' entry points in the group ``rnnbench.backends`` (name = the backend's name, value = its factory).

A factory is ``build(reference, case)``: it gets the case's reference ``nn.LSTM``/``nn.GRU`` (its weights to
copy) and the :class:`harness.spec.cases.Case`, and returns a module called like ``nn.LSTM``: ``model(x)`` returns
``(output, (h_n, c_n))`` for an LSTM, ``(output, h_n)`` for a GRU. :mod:`harness.measure.backends.custom` wraps it.

The factory is found by import name, never by file path, in this process and in every worker process
(``run --rounds``, ``--devices``, ``ab``). Workers start with ``PYTHONSAFEPATH=1``: the working folder is not
on their ``sys.path``, so a module found only there is refused here, with the fix, instead of failing in
every worker. Nothing here imports torch: suites load without it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.machinery
import os
import re
import sys
from functools import lru_cache
from pathlib import Path

from harness.errors import SuiteError

ENTRY_POINT_GROUP = "rnnbench.backends"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
SPEC_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
IMPORTABLE_HINT = ("it must be importable by name: installed (pip install -e .) or on PYTHONPATH; rnnbench's "
                   "worker processes start with PYTHONSAFEPATH=1, so the current folder is not on their sys.path "
                   "(PYTHONPATH=$PWD rnnbench ... puts it there)")


def name_problem(name, builtin: tuple[str, ...]) -> str | None:
    """Why ``name`` cannot name a backend, or None."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return (f"backend name {name!r} must be lower-case letters, digits and _ (a letter first, at most 40): "
                "it becomes part of every case key")
    if name in builtin:
        return f"backend name {name!r} is one of rnnbench's own backends; choose another"
    return None


def spec_problem(spec) -> str | None:
    """Why ``spec`` is not ``package.module:attribute``, or None."""
    if not isinstance(spec, str) or not SPEC_PATTERN.fullmatch(spec):
        return (f"must be 'package.module:function' (an import name, not a file path), got {spec!r}")
    return None


@lru_cache(maxsize=1)
def entry_point_backends() -> tuple[tuple[str, str], ...]:
    """(name, 'module:attribute') of every installed package's ``rnnbench.backends`` entry point, by name.

    Read from the packages' metadata only; nothing is imported until a case of that backend is opened."""
    from importlib.metadata import entry_points

    try:
        found = entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # Python 3.9's entry_points() takes no group
        found = entry_points().get(ENTRY_POINT_GROUP, ())
    return tuple(sorted({(point.name, point.value.replace(" ", "")) for point in found}))


def resolve(name: str, spec: str, where: str):
    """The factory ``spec`` names, imported; a :class:`SuiteError` (one line, beginning ``where``) when it
    cannot be imported as every worker would import it, is missing, or is not callable."""
    problem = spec_problem(spec)
    if problem:
        raise SuiteError(f"{where}: {problem}")
    module_name, _, attribute = spec.partition(":")
    top = module_name.split(".")[0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SuiteError(f"{where}: cannot import {module_name!r} for backend {name!r} "
                         f"({type(exc).__name__}: {_first_line(exc)}); {IMPORTABLE_HINT}") from None
    except Exception as exc:  # the user's module failed while importing: one line, not its traceback
        raise SuiteError(f"{where}: importing {module_name!r} for backend {name!r} raised "
                         f"{type(exc).__name__}: {_first_line(exc)}") from None
    if _found_only_in_working_folder(top):
        raise SuiteError(f"{where}: {module_name!r} (backend {name!r}) was found only in the current folder "
                         f"{os.getcwd()}; {IMPORTABLE_HINT}")
    factory = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            public = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
            close = difflib.get_close_matches(part, public, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SuiteError(f"{where}: module {module_name!r} has no {attribute!r}{hint} (backend {name!r})")
        factory = getattr(factory, part)
    if not callable(factory):
        raise SuiteError(f"{where}: {spec} is a {type(factory).__name__}, not a function "
                         f"build(reference, case) (backend {name!r})")
    return factory


def _found_only_in_working_folder(top: str) -> bool:
    """Whether the top-level package ``top`` is reachable only through the working folder on this process's
    sys.path ('' or its path, as ``python -m`` puts it there), which a worker started with PYTHONSAFEPATH=1 lacks.

    A PYTHONPATH entry naming the working folder, and the folder rnnbench itself was imported from (workers
    get it on their PYTHONPATH), stay reachable."""
    if top in sys.builtin_module_names or top not in sys.modules:
        return False
    here = os.path.realpath(os.getcwd())
    kept_roots = {os.path.realpath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    kept_roots.add(os.path.realpath(Path(__file__).resolve().parents[2]))  # the folder holding harness/
    reachable = [entry for entry in sys.path
                 if os.path.realpath(entry or ".") != here or os.path.realpath(entry or ".") in kept_roots]
    if len(reachable) == len(sys.path):
        return False
    return importlib.machinery.PathFinder.find_spec(top, reachable) is None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
