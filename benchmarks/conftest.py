"""Loads rnnbench's pytest-benchmark entry point (options --rnnbench-suite, ...; fixtures rnnbench_case,
rnnbench_target) for the benchmarks in this folder. See harness/execute/pytest_plugin.py."""

from harness.execute.pytest_plugin import (pytest_addoption, pytest_generate_tests, rnnbench_settings,  # noqa: F401
                                   rnnbench_target)
