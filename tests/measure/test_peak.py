"""The measured peak's warm-up (the device kept busy before the timed batch) and the SM clock it records."""

import pytest
import torch

from harness.measure.peak import WARMUP_S, measure_peak, warm_up
from harness.measure.telemetry.nvml import DeviceSpec, SmClockReader
from tests import fake_nvml


class SteppingClock:
    """A clock that advances by ``step`` seconds each time it is read."""

    def __init__(self, step):
        self.now, self.step = 0.0, step

    def __call__(self):
        value = self.now
        self.now += self.step
        return value


def test_warm_up_repeats_the_work_synchronised_until_the_time_has_passed():
    events = []
    iterations, seconds = warm_up(lambda: events.append("work"), lambda: events.append("sync"), 0.3,
                                  clock=SteppingClock(0.125))
    assert (iterations, seconds) == (3, 0.375)  # 0.125 and 0.25 are short of 0.3
    assert events == ["work", "sync"] * 3


def test_warm_up_runs_at_least_once():
    calls = []
    assert warm_up(lambda: calls.append(1), lambda: None, 0.0, clock=SteppingClock(0.0)) == (1, 0.0)
    assert warm_up(lambda: calls.append(1), lambda: None, 0.3, clock=SteppingClock(5.0)) == (1, 5.0)
    assert len(calls) == 2


class FakeClockReader:
    reason, found_by = None, "uuid GPU-fake"

    def __init__(self, readings):
        self.readings = list(readings)
        self.closed = False

    def read(self):
        return self.readings.pop(0)

    def max_mhz(self):
        return 1980

    def close(self):
        self.closed = True


def test_the_peak_records_its_warm_up_and_the_clocks_seen():
    reader = FakeClockReader([345, 1980, 1755])
    peak = measure_peak(torch.device("cpu"), "float32", clock_reader=reader)
    assert reader.closed and not reader.readings  # idle, during the products, during the copies
    assert peak["clocks"] == {"sm_clock_mhz_before_warmup": 345, "sm_clock_mhz_during_matmul": 1980,
                              "sm_clock_mhz_during_copy": 1755, "sm_clock_max_mhz": 1980,
                              "source": "NVML (uuid GPU-fake)"}
    warmup = peak["warmup"]
    assert warmup["min_s"] == WARMUP_S["cpu"]
    assert warmup["matmul_iters"] >= 1 and warmup["copy_iters"] >= 1
    assert warmup["matmul_s"] >= WARMUP_S["cpu"] and warmup["copy_s"] >= WARMUP_S["cpu"]
    assert "back-to-back" in peak["matmul"] and "warm-up" in peak["copy"]


def test_a_cpu_peak_says_why_it_has_no_clocks():
    peak = measure_peak(torch.device("cpu"), "float32")
    assert peak["clocks"] == {"absent": "the peak is measured on the CPU; NVML reads GPU clocks"}


def test_a_clock_that_stops_reading_is_absent_with_the_reason():
    reader = FakeClockReader([345, 1980, None])
    reader.reason = "SM clock: Not Supported (NVML error 3)"
    clocks = measure_peak(torch.device("cpu"), "float32", clock_reader=reader)["clocks"]
    assert clocks["sm_clock_mhz_during_matmul"] == 1980
    assert clocks["absent"] == {"sm_clock_mhz_during_copy": "SM clock: Not Supported (NVML error 3)"}


@pytest.fixture
def fake(monkeypatch):
    def configure(**scenario):
        fake_nvml.configure(monkeypatch, **scenario)

    yield configure
    fake_nvml._STATE.clear()


def test_the_sm_clock_reader_reads_nvml(fake):
    fake()
    reader = SmClockReader.open(DeviceSpec(index=0), fake_nvml.MODULE)
    assert reader.reason is None and reader.found_by.startswith("torch index 0")
    assert reader.read() == fake_nvml.DEFAULT_DEVICE["sm_clock"] and reader.max_mhz() == 1980
    reader.close()
    assert fake_nvml.calls()["nvmlShutdown"] == 1 and reader.read() is None


@pytest.mark.parametrize("scenario, reason", [
    (dict(init_error=12), "NVML unavailable: NVML Shared Library Not Found"),
    (dict(errors={"nvmlDeviceGetClockInfo": 3}), "SM clock: Not Supported (NVML error 3)"),
])
def test_the_sm_clock_reader_gives_the_reason_it_cannot_read(fake, scenario, reason):
    fake(**scenario)
    reader = SmClockReader.open(DeviceSpec(index=0), fake_nvml.MODULE)
    assert reader.read() is None and reader.reason.startswith(reason)
    reader.close()


@pytest.mark.gpu
def test_a_gpu_peak_is_timed_on_warm_clocks():
    peak = measure_peak(torch.device("cuda"), "float32")
    assert peak["warmup"]["matmul_s"] >= WARMUP_S["cuda"] and "CUDA events" in peak["matmul"]
    clocks = peak["clocks"]
    if "sm_clock_mhz_during_matmul" not in clocks:
        pytest.skip(f"no SM clock here: {clocks['absent']}")
    # an idle GPU's SMs run at a fraction of their maximum (an H200's at 345 of 1980 MHz)
    assert clocks["sm_clock_mhz_during_matmul"] >= 0.5 * clocks["sm_clock_max_mhz"], clocks
