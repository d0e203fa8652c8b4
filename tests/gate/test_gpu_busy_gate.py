"""compare --metric gpu_busy: the gate on the GPU's busy time per step, from the profiled pass's samples;
and NVTX ranges that ride on the clock's marks."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from harness.gate.compare import compare_runs
from harness.errors import ComparisonError
from harness.measure.nvtx import BACKWARD, FORWARD, STEP, NvtxClock, clock_with_ranges
from harness.record.results import RunResults
from harness.record.merge import merge_rounds
from harness.measure.runner import run_case
from harness.measure.timing import CpuClock, Workload, run_iteration
from harness.gate.verdict import Verdict
from tests.helpers import cpu_settings, tiny_case
from tests.synthetic_results import GPU_ENVIRONMENT, SUITE, case_result
from tests.helpers import make_case


def _gpu_run(busy_by_case: dict, seed: int, noisy_step: bool = False) -> RunResults:
    rng = np.random.default_rng(seed)
    results = []
    for hidden, busy_ms in busy_by_case.items():
        case = make_case(hidden_size=hidden, device_type="cuda", backend="eager")
        # a launch-bound case: the step is host time, scattered by the host's jitter; the kernels are steady
        step = tuple(rng.normal(10.0, 3.0 if noisy_step else 0.1, 50).clip(1.0))
        busy = [float(v) for v in rng.normal(busy_ms, busy_ms * 0.01, 30)]
        results.append(replace(case_result(case, step), activity={"available": True, "gpu_busy_ms": busy_ms,
                                                                    "gpu_busy_ms_per_iteration": busy}))
    return RunResults(environment=GPU_ENVIRONMENT, suite=SUITE, cases=tuple(results))


def test_gpu_busy_gates_the_kernels_of_a_launch_bound_case():
    baseline = _gpu_run({64: 1.0, 128: 2.0}, seed=1, noisy_step=True)
    current = _gpu_run({64: 1.3, 128: 2.0}, seed=2, noisy_step=True)
    comparison = compare_runs(baseline, current, metric="gpu_busy")
    verdicts = {pair.case.hidden_size: pair.verdict for pair in comparison.pairs}
    assert verdicts == {64: Verdict.REGRESSION, 128: Verdict.UNCHANGED}
    assert comparison.pairs[0].region == "gpu_busy"
    assert comparison.pairs[0].ratio == pytest.approx(1.3, rel=0.02)


def test_cases_without_busy_samples_are_listed_not_compared_and_none_at_all_is_refused():
    baseline = _gpu_run({64: 1.0, 128: 2.0}, seed=1)
    old_case = replace(baseline.cases[0], activity={"available": True, "gpu_busy_ms": 1.0})  # written before
    mixed = replace(baseline, cases=(old_case, baseline.cases[1]))
    comparison = compare_runs(mixed, baseline, metric="gpu_busy")
    assert [pair.case.hidden_size for pair in comparison.pairs] == [128]
    assert "no gpu_busy samples in the baseline" in comparison.not_compared[0].reason
    old_file = replace(baseline, cases=(old_case,))
    with pytest.raises(ComparisonError, match="no case has GPU busy samples in both files"):
        compare_runs(old_file, baseline, metric="gpu_busy")


def test_rounds_keep_every_rounds_busy_samples_for_the_two_level_gate():
    first, second = (_gpu_run({64: busy}, seed=seed).cases[0] for busy, seed in ((1.0, 1), (1.1, 2)))
    merged = merge_rounds([first.to_dict(), second.to_dict()])
    assert len(merged.activity["gpu_busy_ms_per_iteration"]) == 60
    assert tuple(merged.activity["gpu_busy_round_lengths"]) == (30, 30)
    run = RunResults(environment=GPU_ENVIRONMENT, suite=SUITE, cases=(merged,))
    comparison = compare_runs(run, run, metric="gpu_busy")
    assert comparison.pairs[0].verdict == Verdict.UNCHANGED and comparison.pairs[0].ratio == 1.0


@pytest.mark.parametrize("mode, expected", [
    ("forward_backward", [("push", STEP), ("push", FORWARD), ("pop",), ("push", BACKWARD), ("pop",), ("pop",)]),
    ("forward", [("push", FORWARD), ("pop",)]),
    ("inference", [("push", FORWARD), ("pop",)]),
])
def test_nvtx_ranges_open_and_close_at_the_marks_of_each_mode(mode, expected):
    calls = []
    clock = NvtxClock(CpuClock(), mode, push=lambda name: calls.append(("push", name)),
                      pop=lambda: calls.append(("pop",)))
    model = torch.nn.LSTM(3, 4)
    work = Workload(model, torch.randn(2, 1, 3), torch.randn(2, 1, 4), mode, tuple(model.parameters()))
    times = run_iteration(work, clock)
    assert calls == expected and times["forward"] > 0


def test_nvtx_is_a_no_op_on_a_cpu_and_a_run_with_it_measures_as_usual():
    clock = CpuClock()
    assert clock_with_ranges(clock, "cpu", "forward_backward", enabled=True) is clock
    result = run_case(tiny_case(), cpu_settings(nvtx=True))
    assert result.ok and result.samples_ms["step"]
