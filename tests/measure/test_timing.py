import time

import pytest
import torch

from harness.measure.runner import make_inputs, make_reference
from harness.spec.suite import Timing
from harness.measure.timing import FORWARD_END, START, CaseTimeout, CpuClock, Workload, measure, run_iteration
from tests.helpers import cpu_settings, tiny_case


def _work(mode="forward_backward"):
    case = tiny_case(mode=mode)
    model = make_reference(case, cpu_settings())
    x, target = make_inputs(case, cpu_settings())
    return Workload(model, x, target, mode, tuple(model.parameters()))


@pytest.mark.parametrize("mode, regions", [("inference", {"forward"}), ("forward", {"forward"}),
                                           ("forward_backward", {"forward", "backward", "step"})])
def test_regions_by_mode(mode, regions):
    times = run_iteration(_work(mode), CpuClock())
    assert set(times) == regions
    assert all(value > 0 for value in times.values())


def test_step_is_forward_plus_backward_of_the_same_iteration():
    times = run_iteration(_work(), CpuClock())
    assert times["step"] == pytest.approx(times["forward"] + times["backward"], rel=1e-9)


def test_only_the_backward_mode_leaves_gradients():
    work = _work("forward")
    run_iteration(work, CpuClock())
    assert all(p.grad is None for p in work.parameters)
    work = _work("forward_backward")
    run_iteration(work, CpuClock())
    assert all(p.grad is not None for p in work.parameters)


def test_inference_builds_no_graph():
    kept = []
    run_iteration(_work("inference"), CpuClock(), keep=kept)
    output, _ = kept[0]
    assert output.grad_fn is None


def test_measure_meets_min_iters_and_keeps_warmup_apart():
    measured = measure(_work(), CpuClock(), Timing(warmup_iters=2, min_iters=7, max_iters=100, budget_s=1e-6))
    assert len(measured.samples_ms["step"]) == 7
    assert len(measured.warmup_ms["step"]) == 2


def test_measure_runs_until_the_budget_but_stops_at_max_iters():
    measured = measure(_work(), CpuClock(), Timing(warmup_iters=0, min_iters=1, max_iters=10_000, budget_s=0.2))
    assert measured.loop_s >= 0.2
    measured = measure(_work(), CpuClock(), Timing(warmup_iters=0, min_iters=1, max_iters=4, budget_s=60))
    assert len(measured.samples_ms["forward"]) == 4


def test_measure_stops_at_the_deadline():
    with pytest.raises(CaseTimeout):
        measure(_work(), CpuClock(), Timing(warmup_iters=0, min_iters=10**6, max_iters=10**6, budget_s=60),
                deadline=time.perf_counter() + 0.05)


def test_cpu_clock_measures_real_time():
    clock = CpuClock()
    clock.mark(START)
    time.sleep(0.02)
    clock.mark(FORWARD_END)
    assert clock.elapsed_ms(START, FORWARD_END) == pytest.approx(20, abs=15)


@pytest.mark.gpu
def test_cuda_events_time_the_gpu_work():
    from harness.measure.timing import CudaClock

    clock = CudaClock(torch.device("cuda"))
    a = torch.randn(4096, 4096, device="cuda")
    clock.mark(START)
    for _ in range(10):
        a = a @ a
        a = a / a.norm()
    clock.mark(FORWARD_END)
    clock.synchronize()
    assert clock.elapsed_ms(START, FORWARD_END) > 0.1
