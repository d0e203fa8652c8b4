"""pytest entry point: time a suite's cases through pytest-benchmark's ``benchmark`` fixture.

For teams that already gate with pytest-benchmark. ``benchmarks/conftest.py`` loads this module, so::

    pytest benchmarks/ --rnnbench-suite suites/regression.yaml --benchmark-autosave
    pytest benchmarks/ --rnnbench-suite suites/regression.yaml --benchmark-compare --benchmark-compare-fail=median:10%

Each case of the suite (``--rnnbench-suite`` or $RNNBENCH_SUITE; default ``benchmarks/tiny.yaml``, a few
milliseconds a case on a CPU) becomes one test, parametrized by its case key. The model, inputs and reference
weights are built as ``rnnbench run`` builds them, parity with the reference is checked before anything is
timed (a wrong result fails the test), the suite's ``warmup_iters`` iterations run outside the fixture, and
the timed callable is one iteration of the case's mode -- forward, MSE loss and backward for a training case
(``harness.measure.timing.run_iteration``) -- which synchronises the device before it returns, so the fixture's wall
clock measures the GPU's work, not the launch. How many rounds are timed is pytest-benchmark's to decide
(``--benchmark-min-rounds``, ``--benchmark-max-time``); the garbage collector is off while timing, as in
``rnnbench run``.

Note: ``rnnbench run`` times each region with CUDA events; this route times whole iterations with the host
clock after a synchronisation, so the two are close but not the same figure. Compare like with like.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

DEFAULT_SUITE = Path(__file__).resolve().parents[2] / "benchmarks" / "tiny.yaml"
SUITE_ENV = "RNNBENCH_SUITE"


def pytest_addoption(parser):
    group = parser.getgroup("rnnbench", "rnnbench suite cases through pytest-benchmark")
    group.addoption("--rnnbench-suite", default=None, metavar="SUITE",
                    help=f"Suite whose cases to time (default: ${SUITE_ENV}, else benchmarks/tiny.yaml).")
    group.addoption("--rnnbench-device", default=None, metavar="DEVICE",
                    help="Override the suite's device: auto, cpu, cuda, cuda:N.")
    group.addoption("--rnnbench-backend", action="append", default=[], metavar="NAME",
                    help="Only these backends (repeatable).")
    group.addoption("--rnnbench-filter", action="append", default=[], metavar="AXIS=V[,V]|GLOB",
                    help="Only matching cases, as rnnbench run --filter (repeatable).")


def suite_path(config) -> str:
    return config.getoption("--rnnbench-suite") or os.environ.get(SUITE_ENV) or str(DEFAULT_SUITE)


class _Selection:
    """The suite, device and cases of this session, opened once as ``rnnbench run`` opens them."""

    def __init__(self, config):
        from harness.errors import RnnbenchError
        from harness.execute.session import open_suite

        path = suite_path(config)
        try:
            self.opened = open_suite(path, config.getoption("--rnnbench-device"), "--rnnbench-device")
            self.cases = self.opened.select(config.getoption("--rnnbench-backend"),
                                            config.getoption("--rnnbench-filter"),
                                            "--rnnbench-backend/--rnnbench-filter")
        except RnnbenchError as exc:
            raise pytest.UsageError(f"rnnbench: {exc}") from None


def _selection(config) -> _Selection:
    selection = getattr(config, "_rnnbench_selection", None)
    if selection is None:
        selection = config._rnnbench_selection = _Selection(config)
    return selection


def pytest_generate_tests(metafunc):
    if "rnnbench_case" in metafunc.fixturenames:
        cases = _selection(metafunc.config).cases
        metafunc.parametrize("rnnbench_case", cases, ids=[case.key for case in cases])


@pytest.fixture(scope="session")
def rnnbench_settings(request):
    from harness.execute.session import apply_process_settings

    opened = _selection(request.config).opened
    apply_process_settings(opened.suite)
    return opened.settings()


@pytest.fixture
def rnnbench_target(rnnbench_case, rnnbench_settings):
    """A warmed-up callable that runs one iteration of the case and returns after the device is done."""
    import torch

    from harness.errors import BackendUnavailable
    from harness.measure.runner import prepare_case
    from harness.measure.timing import run_iteration

    case, settings = rnnbench_case, rnnbench_settings
    try:
        prepared = prepare_case(case, settings)
    except BackendUnavailable as exc:
        pytest.skip(f"{case.backend}: {exc}")
    if not prepared.parity.passed:
        pytest.fail(f"{case.key}: {prepared.parity.reason}", pytrace=False)
    work, clock = prepared.work, prepared.clock
    for _ in range(settings.timing.warmup_iters):
        run_iteration(work, clock)

    def one_iteration() -> None:
        run_iteration(work, clock)  # ends with clock.synchronize(): torch.cuda.synchronize on a GPU

    yield one_iteration
    del prepared
    gc.collect()
    if settings.device.type == "cuda":
        torch.cuda.empty_cache()


def describe(benchmark, case, settings) -> None:
    """Group the backends of one configuration together and record what was timed."""
    benchmark.group = f"{case.cell} {case.mode} {case.shape_label} {case.dtype} {case.device_type}"
    benchmark.extra_info.update({
        "rnnbench_key": case.key,
        "timed": "one iteration of the case's mode, then a device synchronisation",
        "device": str(settings.device),
        "precision": settings.precision,
    })
