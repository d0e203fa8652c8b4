"""Opening a run: suite -> device -> cases -> selection, and the process-wide settings a suite asks for.

The one way ``rnnbench run``, ``list``, ``validate`` and the pytest entry point start, so that none of them
can drift from the others (the pytest entry point once ignored the suite's ``threads``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import torch

from harness.spec.cases import Case, expand_cases, select_cases
from harness.measure.env import check_device_supports, resolve_device
from harness.errors import SuiteError
from harness.measure.precision import apply_math_precision
from harness.measure.runner import RunSettings
from harness.spec.suite import BACKENDS, Suite, load_suite


@dataclass(frozen=True)
class OpenedSuite:
    path: str
    suite: Suite
    device: torch.device
    cases: tuple[Case, ...]

    def select(self, backends=(), filters=(), option_names: str = "--backend/--filter") -> tuple[Case, ...]:
        """The cases that match; none matching is an error that names the selection options."""
        known = (*BACKENDS, *sorted(self.suite.backend_factories()))
        for backend in backends:
            if backend not in known:
                close = difflib.get_close_matches(backend, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise SuiteError(f"unknown backend {backend!r}{hint}; known: {', '.join(known)}")
        selected = select_cases(list(self.cases), backends, filters)
        if not selected:
            raise SuiteError(f"{self.path}: no case matches the {option_names} selection "
                             f"({len(self.cases)} cases in the suite)")
        return tuple(selected)

    def settings(self) -> RunSettings:
        return RunSettings(device=self.device, precision=self.suite.precision, seed=self.suite.seed,
                           timing=self.suite.timing, telemetry=self.suite.telemetry,
                           backend_factories=tuple(sorted(self.suite.backend_factories().items())))


def open_suite(suite_path: str, device_option: str | None = None,
               device_option_name: str = "--device") -> OpenedSuite:
    """Load and validate the suite, resolve its device (or the override) on this machine, expand its cases."""
    suite = load_suite(suite_path)
    requested = device_option if device_option is not None else suite.device
    try:
        device = resolve_device(requested)
        check_device_supports(device, suite.dtype)
    except ValueError as exc:
        where = device_option_name if device_option is not None else f"{suite_path}: device"
        raise SuiteError(f"{where}: {exc}") from None
    cases = tuple(expand_cases(suite, device.type))
    _check_backend_factories(suite_path, suite, cases)
    return OpenedSuite(path=suite_path, suite=suite, device=device, cases=cases)


def _check_backend_factories(suite_path: str, suite: Suite, cases) -> None:
    """Import the factory of every user's backend the cases name, as each worker will: a bad import path is
    one line now, not a failed case per case (harness.spec.custom_backends.resolve)."""
    from harness.spec.custom_backends import resolve

    factories = suite.backend_factories()
    for name in sorted({case.backend for case in cases} & factories.keys()):
        where = (f"{suite_path}: custom_backends.{name}" if name in dict(suite.custom_backends)
                 else f"{suite_path}: backend {name} (entry point of group rnnbench.backends)")
        resolve(name, factories[name], where)


def apply_process_settings(suite: Suite) -> dict:
    """Set what the suite asks of the whole process (math precision, CPU threads); returns the precision flags
    as PyTorch reports them afterwards, for the results' environment."""
    flags = apply_math_precision(suite.precision)
    if suite.threads:
        torch.set_num_threads(suite.threads)
    return flags


def resolve_device_option(text: str, option: str = "--device") -> torch.device:
    """A device option (``rnnbench env``, ``baseline-path``) resolved on this machine; SuiteError naming the
    option when it cannot be."""
    try:
        return resolve_device(text)
    except ValueError as exc:
        raise SuiteError(f"{option}: {exc}") from None
