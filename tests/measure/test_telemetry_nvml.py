"""NVML reading, error tolerance and device mapping, against the fake NVML module (in this process)."""

import pytest

from harness.measure.telemetry import nvml as N
from tests import fake_nvml
from tests.fake_nvml import GiB


@pytest.fixture
def fake(monkeypatch):
    """Configure the fake's scenario; returns the initialised fake module."""

    def configure(**scenario):
        fake_nvml.configure(monkeypatch, **scenario)
        N.init(fake_nvml)
        return fake_nvml

    yield configure
    fake_nvml._STATE.clear()


def read_one(fake_module, handle=0, reads=1):
    reader = N.SampleReader(fake_module, handle)
    sample = None
    for _ in range(reads):
        sample = reader.read()
    return reader, sample


def test_one_sample_has_every_metric(fake):
    nvml = fake()
    reader, sample = read_one(nvml)
    device = fake_nvml.DEFAULT_DEVICE
    assert sample["memory_used_bytes"] == device["memory_used"]  # v2: reserved memory is not "used"
    assert sample["memory_reserved_bytes"] == device["memory_reserved"]
    assert sample["memory_total_bytes"] == 80 * GiB
    assert sample["gpu_utilization_pct"] == 97 and sample["memory_utilization_pct"] == 41
    assert sample["power_mw"] == 350_000
    assert sample["energy_mj"] >= device["energy_start_mj"]
    assert sample["sm_clock_mhz"] == 1980 and sample["mem_clock_mhz"] == 2619
    assert sample["temperature_c"] == 61
    assert sample["clock_event_reasons"] == 0
    assert isinstance(sample["t"], float)
    assert reader.absent == {} and reader.memory_api == "v2"


def test_v2_memory_api_absent_falls_back_to_v1_and_says_reserved_counts_as_used(fake):
    nvml = fake(missing=["nvmlDeviceGetMemoryInfo_v2"])
    reader, sample = read_one(nvml, reads=2)
    device = fake_nvml.DEFAULT_DEVICE
    assert sample["memory_used_bytes"] == device["memory_used"] + device["memory_reserved"]
    assert "memory_reserved_bytes" not in sample
    assert reader.memory_api == "v1"
    assert "reserved memory as used" in reader.notes["memory"]
    assert "memory" not in reader.absent


def test_bindings_without_the_v2_memory_api_fall_back_to_v1(fake):
    reader, sample = read_one(fake(memory_v1_only=True))  # nvmlDeviceGetMemoryInfo takes no version
    assert reader.memory_api == "v1" and "memory_used_bytes" in sample
    assert "not in these bindings" in reader.notes["memory"]


def test_bindings_without_the_v2_constant_use_its_abi_value(fake):
    reader, sample = read_one(fake(missing=["nvmlMemory_v2"]))
    assert reader.memory_api == "v2" and "memory_reserved_bytes" in sample


def test_missing_function_in_old_bindings_is_absent_with_a_reason_and_the_rest_goes_on(fake):
    nvml = fake(missing=["nvmlDeviceGetTotalEnergyConsumption"])
    reader, sample = read_one(nvml, reads=3)
    assert "energy_mj" not in sample
    assert "update nvidia-ml-py" in reader.absent["energy"]
    assert sample["power_mw"] == 350_000
    assert fake_nvml.calls().get("nvmlDeviceGetTotalEnergyConsumption") is None


def test_not_supported_is_absent_and_not_asked_again(fake):
    nvml = fake(errors={"nvmlDeviceGetPowerUsage": fake_nvml.NVML_ERROR_NOT_SUPPORTED,
                        "nvmlDeviceGetUtilizationRates": fake_nvml.NVML_ERROR_NO_PERMISSION})
    reader, sample = read_one(nvml, reads=4)
    assert reader.absent["power"] == "Not Supported (NVML error 3)"
    assert "Insufficient Permissions" in reader.absent["utilization"]
    assert "power_mw" not in sample and "gpu_utilization_pct" not in sample
    assert fake_nvml.calls()["nvmlDeviceGetPowerUsage"] == 1
    assert sample["energy_mj"] > 0


def test_transient_errors_are_noted_and_the_metric_recovers(fake):
    nvml = fake(flaky={"nvmlDeviceGetTemperature": 2})  # every second call fails
    reader = N.SampleReader(nvml, 0)
    got = [("temperature_c" in reader.read()) for _ in range(6)]
    assert got == [True, False, True, False, True, False]
    assert "temperature" not in reader.absent
    assert "Unknown Error" in reader.notes["temperature"]


def test_a_metric_failing_every_time_is_given_up_after_several_tries(fake):
    nvml = fake(errors={"nvmlDeviceGetClockInfo": fake_nvml.NVML_ERROR_UNKNOWN})
    reader = N.SampleReader(nvml, 0)
    for _ in range(N.MAX_CONSECUTIVE_ERRORS + 2):
        reader.read()
    assert "reads in a row failed" in reader.absent["sm_clock"]
    assert fake_nvml.calls()["nvmlDeviceGetClockInfo"] == 2 * N.MAX_CONSECUTIVE_ERRORS  # SM and memory


def test_clock_event_reasons_fall_back_to_the_throttle_reasons_name(fake):
    nvml = fake(missing=["nvmlDeviceGetCurrentClocksEventReasons"])
    reader, sample = read_one(nvml)
    assert sample["clock_event_reasons"] == 0 and "clock_event_reasons" not in reader.absent
    # new bindings on an old driver: the new function exists but the library lacks it
    nvml = fake(errors={"nvmlDeviceGetCurrentClocksEventReasons": fake_nvml.NVML_ERROR_FUNCTION_NOT_FOUND})
    reader, sample = read_one(nvml, reads=2)
    assert sample["clock_event_reasons"] == 0
    assert fake_nvml.calls()["nvmlDeviceGetCurrentClocksThrottleReasons"] == 2


def test_reason_names():
    assert N.reason_names(0) == []
    assert N.reason_names(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert N.reason_names(0x1000) == ["other(0x1000)"]


# --- device mapping ----------------------------------------------------------------------------------

def three_gpus(fake):
    return fake(devices=fake_nvml.default_devices(3))


def test_mapping_by_uuid_as_torch_gives_it(fake):
    nvml = three_gpus(fake)
    handle, how = N.resolve_handle(nvml, N.DeviceSpec(index=0, uuid="00000002-2222-3333-4444-555555555555",
                                                      cuda_visible_devices="2"))
    assert handle == 2 and how.startswith("uuid GPU-00000002")


def test_mapping_by_pci_bus_id_when_uuid_fails(fake):
    nvml = three_gpus(fake)
    handle, how = N.resolve_handle(nvml, N.DeviceSpec(index=0, uuid="deadbeef-0000-0000-0000-000000000000",
                                                      pci_bus_id="0000:11:00.0"))
    assert handle == 1 and "pci" in how


def test_mapping_through_reordered_cuda_visible_devices(fake):
    nvml = three_gpus(fake)
    spec = N.DeviceSpec(index=0, cuda_visible_devices="2,0", cuda_device_order="PCI_BUS_ID")
    assert N.resolve_handle(nvml, spec) == (2, "CUDA_VISIBLE_DEVICES entry 0 -> NVML index 2")
    handle, _ = N.resolve_handle(nvml, N.DeviceSpec(index=1, cuda_visible_devices="2,0"))
    assert handle == 0


def test_mapping_through_cuda_visible_devices_uuids_and_prefixes(fake):
    nvml = three_gpus(fake)
    full = fake_nvml.default_devices(3)[1]["uuid"]
    assert N.resolve_handle(nvml, N.DeviceSpec(index=1, cuda_visible_devices=f"GPU-00000002,{full}"))[0] == 1
    assert N.resolve_handle(nvml, N.DeviceSpec(index=0, cuda_visible_devices="GPU-00000002"))[0] == 2
    with pytest.raises(N.NvmlUnavailable, match="3 devices match"):
        N.resolve_handle(nvml, N.DeviceSpec(index=0, cuda_visible_devices="GPU-0000"))


def test_mapping_without_anything_uses_the_index_and_says_it_assumed(fake):
    nvml = three_gpus(fake)
    handle, how = N.resolve_handle(nvml, N.DeviceSpec(index=1))
    assert handle == 1 and "assumed" in how
    with pytest.raises(N.NvmlUnavailable, match="not in CUDA_VISIBLE_DEVICES"):
        N.resolve_handle(nvml, N.DeviceSpec(index=2, cuda_visible_devices="0,1"))
    with pytest.raises(N.NvmlUnavailable, match="NVML index 7"):
        N.resolve_handle(nvml, N.DeviceSpec(index=7))


def test_parse_visible_devices_as_cuda_does():
    assert N.parse_visible_devices(None) is None
    assert N.parse_visible_devices("") == []
    assert N.parse_visible_devices("1, 0") == ["1", "0"]
    assert N.parse_visible_devices("1,-1,0") == ["1"]  # an invalid entry hides the rest
    assert N.parse_visible_devices("GPU-ab,MIG-cd,2") == ["GPU-ab", "MIG-cd", "2"]


# --- availability, GPU state -------------------------------------------------------------------------

def test_init_failure_is_nvml_unavailable_with_the_nvml_text(monkeypatch):
    fake_nvml.configure(monkeypatch, init_error=fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED)
    with pytest.raises(N.NvmlUnavailable, match="Driver Not Loaded"):
        N.init(fake_nvml)


def test_a_module_that_cannot_be_imported_is_nvml_unavailable():
    with pytest.raises(N.NvmlUnavailable, match="nvidia-ml-py"):
        N.load_nvml("no_such_nvml_module_here")


def test_real_pynvml_without_a_driver_says_why():
    pynvml = N.load_nvml("pynvml")
    try:
        N.init(pynvml)
    except N.NvmlUnavailable as exc:
        assert str(exc)  # e.g. "NVML Shared Library Not Found (NVML error 12)"
    else:  # a machine with a driver
        N.shutdown(pynvml)


def test_gpu_state_lists_clocks_power_modes_and_processes(fake):
    device = {**fake_nvml.DEFAULT_DEVICE, "processes": [{"pid": 4242, "used": GiB}], "reasons": 0x1}
    nvml = fake(devices=[device], errors={"nvmlDeviceGetMigMode": fake_nvml.NVML_ERROR_NOT_SUPPORTED})
    state = N.gpu_state(nvml, 0)
    assert state["sm_clock_mhz"] == 1980 and state["sm_clock_max_mhz"] == 1980
    assert state["mem_clock_mhz"] == 2619 and state["power_limit_w"] == 700.0
    assert state["power_draw_w"] == 350.0 and state["persistence_mode"] is True
    assert state["temperature_c"] == 61 and state["clock_event_reasons"] == ["gpu_idle"]
    assert state["processes"] == [{"pid": 4242, "kinds": ["compute"], "used_memory_bytes": GiB}]
    assert "mig_mode" not in state and state["absent"]["mig_mode"] == "Not Supported"
    assert state["uuid"] == device["uuid"] and state["nvml_index"] == 0
    assert N.system_info(nvml) == {"driver": "550.54.15", "nvml_version": "12.550.54.15",
                                   "cuda_driver_version": 12040}


@pytest.mark.parametrize("name", ["..bad", "a b", "pkg..mod", "9lives"])
def test_a_nvml_module_variable_that_names_no_module_leaves_nvml_unavailable_with_the_reason(monkeypatch, name):
    from harness.measure.telemetry.nvml import MODULE_ENV_VAR, NvmlUnavailable, load_nvml

    monkeypatch.setenv(MODULE_ENV_VAR, name)
    with pytest.raises(NvmlUnavailable, match="not a module name"):
        load_nvml()


@pytest.mark.usefixtures("short_machine_window")
def test_rnnbench_env_with_a_nvml_module_variable_that_names_no_module_says_why_and_exits_0(monkeypatch):
    from tests.helpers import rnnbench_here

    monkeypatch.setenv("RNNBENCH_NVML_MODULE", "..bad")
    done = rnnbench_here("env")
    assert done.returncode == 0, done.stderr
    assert "not a module name" in done.stdout and "internal error" not in done.stderr
