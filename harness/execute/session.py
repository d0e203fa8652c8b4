"""Opening a run: suite -> device -> cases -> selection, and the process-wide settings a suite asks for.

The one way ``rnnbench run``, ``list``, ``validate`` and the pytest entry point start, so that none of them
can drift from the others (the pytest entry point once ignored the suite's ``threads``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Sequence

from harness.spec.cases import Case, expand_cases, select_cases
from harness.errors import SuiteError
from harness.spec.overrides import load_suite_with_sets
from harness.spec.suite import BACKENDS, Suite


@dataclass(frozen=True)
class OpenedSuite:
    path: str  # the suite's source: its file, or how --set made it
    suite: Suite
    device_name: str  # the resolved device: "cpu", "cuda:0"
    cases: tuple[Case, ...]

    @property
    def device(self):
        """The resolved device as torch's ``torch.device`` (imports torch: list and validate of a CPU suite
        never ask for it)."""
        import torch

        return torch.device(self.device_name)

    def known_backends(self) -> tuple[str, ...]:
        """Every backend name this suite's cases may take: rnnbench's own, then the user's."""
        return (*BACKENDS, *sorted(self.suite.backend_factories()))

    def select(self, backends=(), filters=(), option_names: str = "--backend/--filter") -> tuple[Case, ...]:
        """The cases that match; none matching is an error that names the selection options."""
        known = self.known_backends()
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

    def settings(self):
        """The harness.measure.runner.RunSettings of this suite's cases."""
        from harness.measure.runner import RunSettings

        return RunSettings(device=self.device, precision=self.suite.precision, seed=self.suite.seed,
                           timing=self.suite.timing, telemetry=self.suite.telemetry,
                           backend_factories=tuple(sorted(self.suite.backend_factories().items())))


def open_suite(suite_path: str | None, device_option: str | None = None, device_option_name: str = "--device",
               sets: Sequence[str] = ()) -> OpenedSuite:
    """Load and validate the suite (with its ``--set`` overrides, or built from them alone), resolve its device
    (or the override) on this machine, expand its cases."""
    suite = load_suite_with_sets(suite_path, sets)
    requested = device_option if device_option is not None else suite.device
    try:
        device_name = resolve_checked_device(requested, suite.dtype)
    except ValueError as exc:
        where = device_option_name if device_option is not None else f"{suite.source}: device"
        raise SuiteError(f"{where}: {exc}") from None
    cases = tuple(expand_cases(suite, device_name.partition(":")[0]))
    _check_backend_factories(suite.source, suite, cases)
    return OpenedSuite(path=suite.source, suite=suite, device_name=device_name, cases=cases)


def resolve_checked_device(requested: str, dtype: str) -> str:
    """The device ``requested`` names on this machine, checked to run an RNN step in ``dtype``; ValueError
    when it cannot. float32 on the CPU is the one answer known without torch (torch runs its RNNs in float32
    on every CPU it supports), so ``list`` and ``validate`` of such a suite start without importing it; 'auto'
    (is there a CUDA GPU?), a GPU and the other dtypes ask torch."""
    if requested == "cpu" and dtype == "float32":
        return "cpu"
    from harness.measure.env import check_device_supports, resolve_device

    device = resolve_device(requested)
    check_device_supports(device, dtype)
    return str(device)


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
    import torch

    from harness.measure.precision import apply_math_precision

    flags = apply_math_precision(suite.precision)
    if suite.threads:
        torch.set_num_threads(suite.threads)
    return flags


def resolve_device_option(text: str, option: str = "--device"):
    """A device option (``rnnbench env``, ``baseline-path``) resolved on this machine as a ``torch.device``;
    SuiteError naming the option when it cannot be."""
    from harness.measure.env import resolve_device

    try:
        return resolve_device(text)
    except ValueError as exc:
        raise SuiteError(f"{option}: {exc}") from None


def machine_environment(device_option: str) -> dict:
    """``rnnbench env``: this machine's environment for the device the option names, with who else uses it."""
    from harness.measure.env import collect_environment
    from harness.record.machine_state import collect_machine_state

    environment = collect_environment(resolve_device_option(device_option))
    environment["machine_state"] = collect_machine_state(environment).to_dict()
    return environment


def baseline_environment(results_path: str | None, device_option: str) -> dict:
    """What names a machine's baseline (``rnnbench baseline-path``): the environment a results file recorded,
    else this machine's CPU and the GPU the device option names."""
    if results_path:
        from harness.record.results_store import read_results

        return read_results(results_path).environment
    from harness.measure.env import gpu_info, machine_info

    device = resolve_device_option(device_option)
    return {"machine": machine_info(), "gpu": gpu_info(device) if device.type == "cuda" else None}
