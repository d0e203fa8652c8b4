"""The real NVML path on a real GPU (skipped without CUDA; run by scripts/gpu-check.sh on a GPU machine)."""

import time

import pytest
import torch

from harness.measure.env import collect_environment
from harness.measure.runner import run_case
from harness.spec.suite import Telemetry, Timing
from harness.measure.telemetry import nvml as N
from harness.measure.telemetry.case import close_monitors, device_spec
from harness.measure.telemetry.sampler import NvmlMonitor
from tests.helpers import cpu_settings, tiny_case

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda:0")


def test_real_sample_values_are_plausible():
    pynvml = N.load_nvml("pynvml")
    N.init(pynvml)
    try:
        handle, found_by = N.resolve_handle(pynvml, device_spec(CUDA))
        assert found_by.startswith("uuid"), found_by  # torch gives the UUID on any recent CUDA
        torch.zeros(1, device=CUDA)  # a context, so memory is in use
        reader = N.SampleReader(pynvml, handle)
        sample = reader.read()
    finally:
        N.shutdown(pynvml)
    # memory, power and energy are what the issue needs; anything else may be unsupported on a product
    assert not {"memory", "power", "energy"} & set(reader.absent), reader.absent
    assert 0 < sample["memory_used_bytes"] <= sample["memory_total_bytes"]
    assert sample["memory_total_bytes"] >= 0.9 * torch.cuda.get_device_properties(0).total_memory
    assert 10 < sample["power_mw"] / 1e3 < 2000
    assert sample["energy_mj"] > 0
    if "utilization" not in reader.absent:
        assert 0 <= sample["gpu_utilization_pct"] <= 100
    if "sm_clock" not in reader.absent:
        assert 100 < sample["sm_clock_mhz"] < 4000
    if "temperature" not in reader.absent:
        assert 5 < sample["temperature_c"] < 110


def test_real_window_over_a_matmul_loop_has_energy_and_utilization():
    a = torch.randn(4096, 4096, device=CUDA)
    with NvmlMonitor(device_spec(CUDA), period_s=0.02, module="pynvml") as monitor:
        assert monitor.available, monitor.reason
        torch.cuda.synchronize()
        monitor.begin_window("step")
        iterations = 0
        started = time.perf_counter()
        while time.perf_counter() - started < 1.5:
            for _ in range(10):
                a = (a @ a).clamp_(-1, 1)
            torch.cuda.synchronize()
            iterations += 1
        window = monitor.end_window("step", iterations=iterations, batch=1)
    assert window.samples > 20
    assert window.energy_j > 0 and window.energy_per_iteration_j > 0
    assert window.gpu_utilization_mean_pct > 0
    assert window.power_mean_w > 0 and window.memory_used_peak_bytes > 0
    assert window.sm_clock_min_mhz > 0
    assert not window.low_confidence, window.low_confidence_why


def test_a_gpu_case_carries_allocator_peaks_and_an_nvml_window():
    settings = cpu_settings(device=CUDA, timing=Timing(warmup_iters=2, min_iters=10, budget_s=1.2),
                            telemetry=Telemetry(nvml_period_ms=20.0))
    try:
        result = run_case(tiny_case(device_type="cuda", batch=64, seq_len=64, input_size=256, hidden_size=256),
                          settings)
    finally:
        close_monitors()
    assert result.ok, result.reason
    assert result.memory["peak_allocated_bytes"] > 0
    assert result.memory["peak_reserved_bytes"] >= result.memory["peak_allocated_bytes"]
    assert result.telemetry["nvml"]["available"] is True, result.telemetry
    step = result.telemetry["windows"]["step"]
    assert step["energy_per_sequence_j"] > 0 and step["gpu_utilization_mean_pct"] > 0


def test_environment_records_the_driver_and_the_gpu_state():
    environment = collect_environment(CUDA)
    assert environment["gpu"]["driver"]
    assert environment["gpu"]["uuid"].startswith(("GPU-", "MIG-"))
    state = environment["gpu_state"]
    assert state["available"] is True
    assert state["gpus"][0]["power_limit_w"] > 0
    assert "processes" in state["gpus"][0]
