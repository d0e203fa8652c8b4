"""Every case of an rnnbench suite, timed by pytest-benchmark's ``benchmark`` fixture.

    pytest benchmarks/ --rnnbench-suite suites/regression.yaml --benchmark-autosave
    pytest benchmarks/ --rnnbench-suite suites/regression.yaml --benchmark-compare --benchmark-compare-fail=median:10%

Not part of the project's default test run (testpaths = ["tests"]).
"""

import pytest

from harness.execute.pytest_plugin import describe


@pytest.mark.benchmark(disable_gc=True, warmup=False)  # warm-up runs in rnnbench_target, outside the timer
def test_case(benchmark, rnnbench_case, rnnbench_settings, rnnbench_target):
    describe(benchmark, rnnbench_case, rnnbench_settings)
    benchmark(rnnbench_target)
