"""The sampler process, the monitor's windows and the per-case glue, run for real against the fake NVML
module (the child process imports it by name), and the CPU's peak-RSS reading."""

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from harness.spec.suite import Telemetry
from harness.measure.telemetry import host
from harness.measure.telemetry.case import CaseTelemetry, close_monitors
from harness.measure.telemetry.nvml import MODULE_ENV_VAR, DeviceSpec
from harness.measure.telemetry.sampler import MonitorUnavailable, NvmlMonitor
from tests import fake_nvml

FAKE = fake_nvml.MODULE
CPU = torch.device("cpu")


@pytest.fixture
def scenario(monkeypatch):
    def configure(**changes):
        fake_nvml.configure(monkeypatch, **changes)

    configure()
    yield configure
    close_monitors()
    fake_nvml._STATE.clear()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def sampler_children():
    return [p for p in multiprocessing.active_children() if p.name == "rnnbench-nvml-sampler"]


def test_window_over_a_second_measures_every_metric_and_the_process_stops_cleanly(scenario):
    monitor = NvmlMonitor(DeviceSpec(index=0), period_s=0.02, module=FAKE).start()
    assert monitor.available, monitor.reason
    pid = monitor.pid
    assert alive(pid)
    assert monitor.info["device"]["uuid"] == fake_nvml.DEFAULT_DEVICE["uuid"]
    assert monitor.info["system"]["driver"] == "550.54.15"
    begin = monitor.begin_window("step")
    time.sleep(1.1)
    window = monitor.end_window("step", iterations=110, batch=8)
    assert 1.1 <= window.duration_s < 1.5
    assert 0.5 * 1.1 / 0.02 <= window.samples <= 1.1 / 0.02 + 2  # a 2-core CPU may skip a few ticks
    assert window.memory_used_peak_bytes == fake_nvml.DEFAULT_DEVICE["memory_used"]
    assert window.gpu_utilization_mean_pct == 97 and window.power_mean_w == 350
    assert window.energy_j == pytest.approx(350 * window.energy_span_s, rel=0.05)
    assert window.energy_span_s == pytest.approx(window.duration_s, abs=0.05)
    assert window.energy_per_sequence_j == pytest.approx(window.energy_j / 110 / 8)
    assert window.sm_clock_min_mhz == 1980 and window.temperature_max_c == 61
    assert window.throttled["any"] is False
    assert not window.low_confidence, window.low_confidence_why
    assert begin <= time.monotonic()
    monitor.close()
    assert not monitor.available
    assert not alive(pid)
    assert sampler_children() == []
    monitor.close()  # twice is fine


def test_short_window_is_flagged_low_confidence(scenario):
    with NvmlMonitor(DeviceSpec(index=0), period_s=0.02, module=FAKE) as monitor:
        monitor.begin_window("forward")
        time.sleep(0.1)
        window = monitor.end_window("forward", iterations=3, batch=1)
    assert window.low_confidence
    assert any("utilization sample period" in why for why in window.low_confidence_why)
    assert sampler_children() == []


def test_windows_one_at_a_time_and_by_name(scenario):
    with NvmlMonitor(DeviceSpec(index=0), period_s=0.02, module=FAKE) as monitor:
        monitor.begin_window("a")
        with pytest.raises(RuntimeError, match="still open"):
            monitor.begin_window("b")
        with pytest.raises(RuntimeError, match="not open"):
            monitor.end_window("b")
        monitor.end_window("a")


def test_nvml_init_failure_leaves_the_monitor_unavailable_with_the_reason_and_no_process(scenario):
    scenario(init_error=fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED)
    monitor = NvmlMonitor(DeviceSpec(index=0), module=FAKE).start()
    assert not monitor.available
    assert monitor.reason == "Driver Not Loaded (NVML error 9)"
    assert sampler_children() == []
    with pytest.raises(MonitorUnavailable, match="Driver Not Loaded"):
        monitor.begin_window("step")


def test_device_the_case_runs_on_is_found_through_reordered_visible_devices(scenario):
    scenario(devices=fake_nvml.default_devices(3))
    spec = DeviceSpec(index=1, cuda_visible_devices="2,1,0", cuda_device_order="PCI_BUS_ID")
    with NvmlMonitor(spec, module=FAKE) as monitor:
        assert monitor.info["device"]["nvml_index"] == 1
        assert monitor.info["device"]["found_by"] == "CUDA_VISIBLE_DEVICES entry 1 -> NVML index 1"
    spec = DeviceSpec(index=0, uuid="00000002-2222-3333-4444-555555555555")
    with NvmlMonitor(spec, module=FAKE) as monitor:
        assert monitor.info["device"]["nvml_index"] == 2


def test_missing_energy_function_and_unsupported_power_are_absent_with_reasons(scenario):
    scenario(missing=["nvmlDeviceGetTotalEnergyConsumption"],
             errors={"nvmlDeviceGetPowerUsage": fake_nvml.NVML_ERROR_NOT_SUPPORTED})
    with NvmlMonitor(DeviceSpec(index=0), period_s=0.02, module=FAKE) as monitor:
        monitor.begin_window("step")
        time.sleep(0.2)
        document = monitor.end_window("step", iterations=10, batch=2).to_dict()
    assert "energy_j" not in document and "energy_per_sequence_j" not in document
    assert "power_mean_w" not in document
    assert "update nvidia-ml-py" in document["absent"]["energy"]
    assert document["absent"]["power"] == "Not Supported (NVML error 3)"
    assert document["gpu_utilization_mean_pct"] == 97


def test_energy_counter_reset_during_a_window_gives_no_energy(scenario, tmp_path):
    # The reset happens after the window's first sample because the test causes it then: begin_window
    # returns once the sampler has read the counter's start, and end_window reads its end.
    reset_file = tmp_path / "energy-reset"
    scenario(energy_reset_file=str(reset_file))
    with NvmlMonitor(DeviceSpec(index=0), period_s=0.02, module=FAKE) as monitor:
        monitor.begin_window("step")
        partial = tmp_path / "energy-reset.partial"
        partial.write_text(repr(time.monotonic()))
        partial.replace(reset_file)
        window = monitor.end_window("step", iterations=10, batch=2)
    assert window.energy_j is None
    assert "went backwards" in window.absent["energy"]


def test_v1_memory_fallback_is_noted_in_the_window(scenario):
    scenario(missing=["nvmlDeviceGetMemoryInfo_v2"])
    with NvmlMonitor(DeviceSpec(index=0), period_s=0.02, module=FAKE) as monitor:
        monitor.begin_window("step")
        time.sleep(0.05)
        document = monitor.end_window("step").to_dict()
    assert document["memory_api"] == "v1"
    assert "reserved memory as used" in document["notes"]["memory"]


def test_sampler_that_dies_mid_window_is_reported_not_raised_into_the_case(scenario, monkeypatch):
    monkeypatch.setenv(MODULE_ENV_VAR, FAKE)
    telemetry = CaseTelemetry(CPU, Telemetry(enabled=True, nvml_period_ms=20.0), "step")
    assert telemetry.monitor is not None, telemetry.reason
    pid = telemetry.monitor.pid
    with telemetry.window():
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    document = telemetry.to_dict(iterations=5, batch=2)
    assert document["nvml"]["available"] is False
    assert document["nvml"]["reason"].startswith("NVML unavailable: the sampler process")
    assert sampler_children() == []


def test_case_telemetry_on_the_cpu_says_nvml_is_unavailable_and_starts_nothing(scenario, monkeypatch):
    monkeypatch.delenv(MODULE_ENV_VAR, raising=False)
    telemetry = CaseTelemetry(CPU, Telemetry(), "step")
    with telemetry.window():
        pass
    assert telemetry.to_dict(10, 2) == {"nvml": {"available": False,
                                                "reason": "NVML unavailable: the case runs on the CPU"}}
    off = CaseTelemetry(CPU, Telemetry(enabled=False), "step")
    assert off.to_dict()["nvml"]["reason"].startswith("telemetry off")
    assert sampler_children() == []


def test_case_telemetry_with_the_fake_shares_one_sampler_per_run(scenario, monkeypatch):
    monkeypatch.setenv(MODULE_ENV_VAR, FAKE)
    first = CaseTelemetry(CPU, Telemetry(nvml_period_ms=10.0), "forward")
    second = CaseTelemetry(CPU, Telemetry(nvml_period_ms=10.0), "forward")
    assert first.monitor is second.monitor
    with first.window():
        time.sleep(0.05)
    document = first.to_dict(iterations=4, batch=3)
    assert document["nvml"]["available"] is True
    assert document["nvml"]["device"]["name"] == fake_nvml.DEFAULT_DEVICE["name"]
    assert document["nvml"]["period_ms"] == 10.0
    window = document["windows"]["forward"]
    assert window["iterations"] == 4 and window["batch"] == 3
    assert window["energy_per_sequence_j"] == pytest.approx(window["energy_j"] / 12)
    close_monitors()
    assert sampler_children() == []


# --- host memory ------------------------------------------------------------------------------------

def test_peak_rss_of_a_case_is_reset_before_it():
    big = bytearray(64 * 2**20)  # raise the lifetime peak first
    big[::4096] = b"x" * len(big[::4096])
    del big
    reset = host.reset_peak_rss()
    if not reset["reset"]:
        pytest.skip(f"this kernel refuses to reset the peak: {reset['why']}")
    small = host.peak_rss(reset)
    assert small["source"].startswith("VmHWM after clear_refs")
    buffer = bytearray(32 * 2**20)
    buffer[::4096] = b"y" * len(buffer[::4096])
    grown = host.peak_rss(reset)
    assert grown["peak_rss_bytes"] >= small["rss_before_bytes"] + 30 * 2**20
    del buffer


def test_peak_rss_falls_back_to_the_lifetime_peak_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(host, "CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    reset = host.reset_peak_rss()
    assert reset["reset"] is False
    memory = host.peak_rss(reset)
    assert memory["source"] == "getrusage ru_maxrss"
    assert memory["peak_rss_bytes"] > 10 * 2**20
    assert "lifetime peak" in memory["note"]


def test_status_parsing_reads_kib(monkeypatch, tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  1234 kB\nVmRSS:\t  1000 kB\n")
    monkeypatch.setattr(host, "STATUS", Path(status))
    assert host._status_kib("VmHWM") == 1234 * 1024
    assert host._status_kib("VmSwap") is None


def test_a_reply_left_unread_by_an_interrupted_exchange_is_dropped(scenario):
    with NvmlMonitor(DeviceSpec(index=0), period_s=0.02, module=FAKE) as monitor:
        monitor._send(("end", -1))  # as if end_window had been cut short before reading its reply
        monitor.begin_window("step")
        time.sleep(0.05)
        window = monitor.end_window("step")
        assert window.samples >= 1 and monitor.available


def test_the_sampler_process_lowers_its_priority_and_keeps_to_one_core_when_there_are_cores_to_spare():
    import json
    import os
    import subprocess
    import sys

    code = ("import json, os; from harness.measure.telemetry.sampler import stay_out_of_the_way; "
            "p = stay_out_of_the_way(); print(json.dumps([p, os.nice(0), sorted(os.sched_getaffinity(0))]))")
    placement, niceness, cores = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                                           text=True, check=True).stdout)
    # 19 is the lowest priority there is: under `nice -n 10 pytest` the sampler reaches it, not 20
    assert niceness == min(os.nice(0) + 10, 19) and placement["nice"] == niceness
    if len(os.sched_getaffinity(0)) >= 4:
        assert cores == [placement["cpu"]]
    else:
        assert "cpu" not in placement and cores == sorted(os.sched_getaffinity(0))
