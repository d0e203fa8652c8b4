"""A fake of nvidia-ml-py's ``pynvml``, put in its place by module name (RNNBENCH_NVML_MODULE or the
monitor's ``module=``), so the sampler process, the device mapping and the summaries run for real on a
machine without a GPU.

The scenario is JSON in the environment variable FAKE_NVML_SCENARIO, so a spawned sampler process sees
what the test configured; ``configure(**changes)`` sets it (and resets the in-process fake). Keys:

    devices        list of device dicts (see DEFAULT_DEVICE), NVML index = position; a device's
                   ``processes`` (compute) and ``graphics_processes`` are lists of {"pid", "used" (bytes)}
    init_error     an NVML error code nvmlInit raises (e.g. 12: library not found)
    missing        function or constant names the module lacks (AttributeError, as old bindings)
    errors         {function name: NVML error code} raised on every call
    flaky          {function name: n}: every n-th call raises NVML error 999 (Unknown)
    memory_v1_only true: nvmlDeviceGetMemoryInfo takes no ``version`` (bindings older than v2)
    energy_reset_file  a path; once a test writes a time.monotonic into it, the energy counter restarts
                   from 0 at that time (an event the test causes, not a wall-clock guess)

Energy is a function of time.monotonic (one clock for all processes): start + power x t, updated every
``energy_update_ms``, as the real counter is.
"""

from __future__ import annotations

import json
import math
import os
import time
from types import SimpleNamespace

SCENARIO_ENV = "FAKE_NVML_SCENARIO"

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM, NVML_CLOCK_MEM = 0, 1, 2
NVML_TEMPERATURE_GPU = 0
_MEMORY_V2 = 0x02000028  # nvmlMemory_v2, served by __getattr__ so a scenario can remove it

_STRINGS = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return _STRINGS.get(self.value, f"NVML Error with code {self.value}")


GiB = 2**30
DEFAULT_DEVICE = {
    "name": "Fake H100 80GB HBM3",
    "uuid": "GPU-11111111-2222-3333-4444-555555555555",
    "pci_bus_id": "00000000:3B:00.0",
    "memory_total": 80 * GiB,
    "memory_used": 10 * GiB,
    "memory_reserved": 512 * 2**20,
    "util_gpu": 97,
    "util_memory": 41,
    "power_mw": 350_000,
    "energy_start_mj": 5_000_000_000,
    "energy_update_ms": 20,
    "sm_clock": 1980,
    "sm_clock_max": 1980,
    "mem_clock": 2619,
    "mem_clock_max": 2619,
    "temperature": 61,
    "reasons": 0,
    "power_limit_mw": 700_000,
    "persistence": 1,
    "mig": 0,
    "processes": [],
}


def default_devices(count: int = 1) -> list[dict]:
    devices = []
    for index in range(count):
        devices.append({**DEFAULT_DEVICE, "name": f"Fake GPU {index}",
                        "uuid": f"GPU-{index:08x}-2222-3333-4444-555555555555",
                        "pci_bus_id": f"00000000:{0x10 + index:02X}:00.0"})
    return devices


def scenario() -> dict:
    data = json.loads(os.environ.get(SCENARIO_ENV) or "{}")
    data.setdefault("devices", [dict(DEFAULT_DEVICE)])
    return data


def configure(monkeypatch=None, **changes) -> dict:
    """Set the scenario for this process and the processes it spawns; returns it. With pytest's
    ``monkeypatch`` the environment variable is restored after the test."""
    if monkeypatch is not None:
        monkeypatch.setenv(SCENARIO_ENV, json.dumps(changes))
    else:
        os.environ[SCENARIO_ENV] = json.dumps(changes)
    _STATE.clear()
    return scenario()


MODULE = __name__  # the name to hand the monitor (RNNBENCH_NVML_MODULE), as this module was imported


_STATE: dict = {}


def calls() -> dict:
    return _STATE.setdefault("calls", {})


def _check(name: str) -> dict:
    data = _STATE.get("scenario")
    if data is None:
        data = _STATE["scenario"] = scenario()
    counts = calls()
    counts[name] = counts.get(name, 0) + 1
    if name in data.get("errors", {}):
        raise NVMLError(data["errors"][name])
    every = data.get("flaky", {}).get(name)
    if every and counts[name] % every == 0:
        raise NVMLError(NVML_ERROR_UNKNOWN)
    return data


def _device(data: dict, handle) -> dict:
    if not isinstance(handle, int) or not 0 <= handle < len(data["devices"]):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return data["devices"][handle]


def _nvmlInit():
    data = _check("nvmlInit")
    if data.get("init_error"):
        raise NVMLError(data["init_error"])
    _STATE["initialised"] = True


def _nvmlShutdown():
    _check("nvmlShutdown")
    _STATE["initialised"] = False


def _initialised(name: str) -> dict:
    data = _check(name)
    if not _STATE.get("initialised"):
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return data


def _nvmlSystemGetDriverVersion():
    _initialised("nvmlSystemGetDriverVersion")
    return "550.54.15"


def _nvmlSystemGetNVMLVersion():
    _initialised("nvmlSystemGetNVMLVersion")
    return "12.550.54.15"


def _nvmlSystemGetCudaDriverVersion():
    _initialised("nvmlSystemGetCudaDriverVersion")
    return 12040


def _nvmlDeviceGetCount():
    return len(_initialised("nvmlDeviceGetCount")["devices"])


def _nvmlDeviceGetHandleByIndex(index):
    data = _initialised("nvmlDeviceGetHandleByIndex")
    _device(data, index)
    return index


def _nvmlDeviceGetHandleByUUID(uuid):
    data = _initialised("nvmlDeviceGetHandleByUUID")
    uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
    for index, device in enumerate(data["devices"]):
        if device["uuid"] == uuid:
            return index
    raise NVMLError(NVML_ERROR_NOT_FOUND)


def _nvmlDeviceGetHandleByPciBusId(bus_id):
    data = _initialised("nvmlDeviceGetHandleByPciBusId")
    bus_id = bus_id.decode() if isinstance(bus_id, bytes) else bus_id

    def normal(text):  # NVML accepts a 4- or 8-digit domain
        domain, _, rest = text.upper().partition(":")
        return f"{int(domain, 16):08X}:{rest}"

    for index, device in enumerate(data["devices"]):
        if normal(device["pci_bus_id"]) == normal(bus_id):
            return index
    raise NVMLError(NVML_ERROR_NOT_FOUND)


def _nvmlDeviceGetName(handle):
    return _device(_initialised("nvmlDeviceGetName"), handle)["name"]


def _nvmlDeviceGetUUID(handle):
    return _device(_initialised("nvmlDeviceGetUUID"), handle)["uuid"]


def _nvmlDeviceGetIndex(handle):
    _device(_initialised("nvmlDeviceGetIndex"), handle)
    return handle


def _nvmlDeviceGetPciInfo(handle):
    return SimpleNamespace(busId=_device(_initialised("nvmlDeviceGetPciInfo"), handle)["pci_bus_id"])


def _memory(handle, version=None):
    data = _initialised("nvmlDeviceGetMemoryInfo")
    device = _device(data, handle)
    total, used, reserved = device["memory_total"], device["memory_used"], device["memory_reserved"]
    if version is not None:
        if "nvmlDeviceGetMemoryInfo_v2" in data.get("missing", ()):
            raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
        return SimpleNamespace(version=version, total=total, reserved=reserved, used=used,
                               free=total - used - reserved)
    return SimpleNamespace(total=total, used=used + reserved, free=total - used - reserved)


def _memory_v1_only(handle):
    return _memory(handle)


def _nvmlDeviceGetUtilizationRates(handle):
    device = _device(_initialised("nvmlDeviceGetUtilizationRates"), handle)
    return SimpleNamespace(gpu=device["util_gpu"], memory=device["util_memory"])


def _nvmlDeviceGetPowerUsage(handle):
    return _device(_initialised("nvmlDeviceGetPowerUsage"), handle)["power_mw"]


def _energy_reset_at(data):
    path = data.get("energy_reset_file")
    if path is None:
        return None
    try:
        with open(path) as file:
            return float(file.read())
    except (FileNotFoundError, ValueError):  # not reset yet, or the test is still writing it
        return None


def _nvmlDeviceGetTotalEnergyConsumption(handle):
    data = _initialised("nvmlDeviceGetTotalEnergyConsumption")
    device = _device(data, handle)
    step = device["energy_update_ms"] / 1e3
    now = time.monotonic()
    updated = math.floor(now / step) * step
    reset_at = _energy_reset_at(data)
    if reset_at is not None and now >= reset_at:
        return int(device["power_mw"] * max(0.0, updated - reset_at))  # mW x s = mJ, from 0 at the reset
    return int(device["energy_start_mj"] + device["power_mw"] * updated)


def _nvmlDeviceGetClockInfo(handle, clock):
    device = _device(_initialised("nvmlDeviceGetClockInfo"), handle)
    if clock == NVML_CLOCK_SM:
        return device["sm_clock"]
    if clock == NVML_CLOCK_MEM:
        return device["mem_clock"]
    raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)


def _nvmlDeviceGetMaxClockInfo(handle, clock):
    device = _device(_initialised("nvmlDeviceGetMaxClockInfo"), handle)
    return device["sm_clock_max"] if clock == NVML_CLOCK_SM else device["mem_clock_max"]


def _nvmlDeviceGetTemperature(handle, sensor):
    return _device(_initialised("nvmlDeviceGetTemperature"), handle)["temperature"]


def _nvmlDeviceGetCurrentClocksEventReasons(handle):
    return _device(_initialised("nvmlDeviceGetCurrentClocksEventReasons"), handle)["reasons"]


def _nvmlDeviceGetCurrentClocksThrottleReasons(handle):
    return _device(_initialised("nvmlDeviceGetCurrentClocksThrottleReasons"), handle)["reasons"]


def _nvmlDeviceGetEnforcedPowerLimit(handle):
    return _device(_initialised("nvmlDeviceGetEnforcedPowerLimit"), handle)["power_limit_mw"]


def _nvmlDeviceGetPersistenceMode(handle):
    return _device(_initialised("nvmlDeviceGetPersistenceMode"), handle)["persistence"]


def _nvmlDeviceGetMigMode(handle):
    mode = _device(_initialised("nvmlDeviceGetMigMode"), handle)["mig"]
    return [mode, mode]


def _nvmlDeviceGetComputeRunningProcesses(handle):
    device = _device(_initialised("nvmlDeviceGetComputeRunningProcesses"), handle)
    return [SimpleNamespace(pid=p["pid"], usedGpuMemory=p.get("used")) for p in device["processes"]]


def _nvmlDeviceGetGraphicsRunningProcesses(handle):
    device = _device(_initialised("nvmlDeviceGetGraphicsRunningProcesses"), handle)
    return [SimpleNamespace(pid=p["pid"], usedGpuMemory=p.get("used")) for p in device.get("graphics_processes", ())]


def __getattr__(name: str):
    """Module attributes, less what the scenario says is missing (as in older bindings)."""
    data = _STATE.get("scenario") or scenario()
    if name in data.get("missing", ()):
        raise AttributeError(f"module 'fake_nvml' has no attribute '{name}'")
    if name == "nvmlMemory_v2":
        return _MEMORY_V2
    if name == "nvmlDeviceGetMemoryInfo":
        return _memory_v1_only if data.get("memory_v1_only") else _memory
    function = globals().get(f"_{name}")
    if function is None or not name.startswith("nvml"):
        raise AttributeError(f"module 'fake_nvml' has no attribute '{name}'")
    return function
