"""NVML, read through nvidia-ml-py (imported as ``pynvml``), tolerant of everything it may lack.

Nothing here imports torch: this module runs inside the sampler process, which must start fast and
must not touch the GPU's CUDA context. The NVML module is passed in (``load_nvml(name)``), so tests put
a fake module in its place and exercise exactly this code.

A metric the driver, the GPU or the bindings cannot give (``NVMLError`` NotSupported / FunctionNotFound
/ NoPermission, or ``AttributeError`` on bindings too old to have the function) is *absent*, with the
reason, and is not asked for again; it never stops the other metrics or the run.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

DEFAULT_MODULE = "pynvml"
MODULE_ENV_VAR = "RNNBENCH_NVML_MODULE"  # a test hook: import this module in place of pynvml

# NVML's return codes (nvml.h); the bindings' exception classes carry them as ``.value``.
ERROR_NOT_SUPPORTED = 3
ERROR_NO_PERMISSION = 4
ERROR_DRIVER_NOT_LOADED = 9
ERROR_LIBRARY_NOT_FOUND = 12
ERROR_FUNCTION_NOT_FOUND = 13
ERROR_GPU_IS_LOST = 15
# A metric that fails with one of these will not start working later in the run.
PERMANENT_ERRORS = {ERROR_NOT_SUPPORTED, ERROR_NO_PERMISSION, ERROR_FUNCTION_NOT_FOUND,
                    ERROR_LIBRARY_NOT_FOUND, ERROR_DRIVER_NOT_LOADED, ERROR_GPU_IS_LOST}
# Transient errors in a row before a metric is given up for the run.
MAX_CONSECUTIVE_ERRORS = 5

# nvml.h enums (stable ABI); used when the bindings do not name them.
CLOCK_SM, CLOCK_MEM = 1, 2
TEMPERATURE_GPU = 0
MEMORY_V2 = 0x02000028  # nvmlMemory_v2: sizeof(nvmlMemory_v2_t) | 2 << 24

# Clock event ("throttle") reasons, nvmlClocksEventReason* bit masks.
EVENT_REASONS = {
    0x001: "gpu_idle",
    0x002: "applications_clocks_setting",
    0x004: "sw_power_cap",
    0x008: "hw_slowdown",
    0x010: "sync_boost",
    0x020: "sw_thermal_slowdown",
    0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
THERMAL_REASONS = 0x020 | 0x040
POWER_REASONS = 0x004 | 0x080
# HW slowdown is engaged by temperature, the external power brake or power draw: it is a throttle, of
# a cause NVML does not tell apart, and it is listed by name.
THROTTLE_REASONS = THERMAL_REASONS | POWER_REASONS | 0x008


class NvmlUnavailable(Exception):
    """NVML cannot be used at all here; the message is the reason, fit for a results file."""


def load_nvml(name: str | None = None):
    """Import the NVML bindings (``pynvml`` from nvidia-ml-py, or the module named by the test hook)."""
    name = name or os.environ.get(MODULE_ENV_VAR) or DEFAULT_MODULE
    if not all(part.isidentifier() for part in name.split(".")):  # '..bad', 'a b': not a module name at all
        raise NvmlUnavailable(f"cannot import {name!r}: not a module name ({MODULE_ENV_VAR} names one, e.g. pynvml)")
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise NvmlUnavailable(f"cannot import {name} (install nvidia-ml-py): {exc}") from None


def error_code(nvml, exc: BaseException) -> int | None:
    if isinstance(exc, nvml_error_class(nvml)):
        return getattr(exc, "value", None)
    return None


def nvml_error_class(nvml) -> type:
    return getattr(nvml, "NVMLError", _NoSuchError)


class _NoSuchError(Exception):
    pass


def describe_error(nvml, exc: BaseException) -> str:
    code = error_code(nvml, exc)
    text = str(exc).strip() or type(exc).__name__
    return f"{text} (NVML error {code})" if code is not None else f"{type(exc).__name__}: {text}"


def init(nvml) -> None:
    """``nvmlInit``, with any failure turned into NvmlUnavailable and a reason a person can act on."""
    try:
        nvml.nvmlInit()
    except AttributeError as exc:
        raise NvmlUnavailable(f"{getattr(nvml, '__name__', 'the NVML module')} has no nvmlInit: {exc}") from None
    except Exception as exc:  # NVMLError, or OSError from a broken library
        raise NvmlUnavailable(describe_error(nvml, exc)) from None


def shutdown(nvml) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- Which NVML device is the one torch runs on --------------------------------------------------

@dataclass(frozen=True)
class DeviceSpec:
    """What the parent (which has torch) knows of the CUDA device, for the sampler to find it in NVML.

    ``index`` is torch's index (0..visible-1), not NVML's: CUDA_VISIBLE_DEVICES renumbers and reorders
    the devices torch sees, and CUDA's default order (fastest first) need not be NVML's (PCI bus order).
    """

    index: int
    uuid: str | None = None  # as torch gives it: 36 hex-and-dash characters, maybe with a GPU-/MIG- prefix
    pci_bus_id: str | None = None  # "dddd:bb:dd.0"
    cuda_visible_devices: str | None = None
    cuda_device_order: str | None = None


def resolve_handle(nvml, spec: DeviceSpec) -> tuple[Any, str]:
    """NVML's handle of the device ``spec`` names, and how it was found (for the results).

    In order of trust: the GPU's UUID (exact, whatever the visible-device order); the PCI bus id; the
    CUDA_VISIBLE_DEVICES entry at torch's index (an NVML index, or a UUID or a unique UUID prefix);
    torch's index itself, which is NVML's only when nothing renumbers devices and CUDA enumerates in
    PCI bus order.
    """
    errors: list[str] = []
    if spec.uuid:
        bare = spec.uuid
        for prefix in ("GPU-", "MIG-"):
            if bare.startswith(prefix):
                bare = bare[len(prefix):]
        candidates = [spec.uuid] if spec.uuid.startswith(("GPU-", "MIG-")) else [f"GPU-{bare}", f"MIG-{bare}"]
        for uuid in candidates:
            try:
                return nvml.nvmlDeviceGetHandleByUUID(uuid), f"uuid {uuid}"
            except Exception as exc:
                errors.append(f"uuid {uuid}: {describe_error(nvml, exc)}")
    if spec.pci_bus_id:
        try:
            return nvml.nvmlDeviceGetHandleByPciBusId(spec.pci_bus_id), f"pci bus id {spec.pci_bus_id}"
        except Exception as exc:
            errors.append(f"pci bus id {spec.pci_bus_id}: {describe_error(nvml, exc)}")
    visible = parse_visible_devices(spec.cuda_visible_devices)
    if visible is not None:
        if spec.index >= len(visible):
            raise NvmlUnavailable(f"torch device {spec.index} is not in CUDA_VISIBLE_DEVICES="
                                  f"{spec.cuda_visible_devices!r}")
        entry = visible[spec.index]
        if entry.isdigit():
            handle = _handle_by_index(nvml, int(entry), errors)
            return handle, f"CUDA_VISIBLE_DEVICES entry {spec.index} -> NVML index {entry}{_order_note(spec)}"
        return _handle_by_uuid_prefix(nvml, entry, errors), f"CUDA_VISIBLE_DEVICES entry {spec.index} -> {entry}"
    handle = _handle_by_index(nvml, spec.index, errors)
    return handle, f"torch index {spec.index} = NVML index {spec.index}{_order_note(spec)}"


def _order_note(spec: DeviceSpec) -> str:
    if (spec.cuda_device_order or "").upper() == "PCI_BUS_ID":
        return ""
    return " (assumed: CUDA_DEVICE_ORDER is not PCI_BUS_ID, so the order may differ on a mixed machine)"


def parse_visible_devices(value: str | None) -> list[str] | None:
    """CUDA_VISIBLE_DEVICES as CUDA reads it: a comma list, cut at the first invalid entry; None if unset."""
    if value is None:
        return None
    entries = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            break
        if not (entry.isdigit() or entry.startswith(("GPU-", "MIG-"))):
            break  # an invalid entry (a negative index, say) hides it and every later device
        entries.append(entry)
    return entries


def _handle_by_index(nvml, index: int, errors: list[str]):
    try:
        return nvml.nvmlDeviceGetHandleByIndex(index)
    except Exception as exc:
        errors.append(f"NVML index {index}: {describe_error(nvml, exc)}")
        raise NvmlUnavailable("cannot find the GPU in NVML: " + "; ".join(errors)) from None


def _handle_by_uuid_prefix(nvml, prefix: str, errors: list[str]):
    """CUDA accepts any unique prefix of a UUID in CUDA_VISIBLE_DEVICES; NVML wants the whole UUID."""
    try:
        return nvml.nvmlDeviceGetHandleByUUID(prefix)
    except Exception as exc:
        errors.append(f"uuid {prefix}: {describe_error(nvml, exc)}")
    matches = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            if _text(nvml.nvmlDeviceGetUUID(handle)).startswith(prefix):
                matches.append(handle)
    except Exception as exc:
        errors.append(f"listing devices: {describe_error(nvml, exc)}")
    if len(matches) == 1:
        return matches[0]
    errors.append(f"{len(matches)} devices match UUID prefix {prefix}")
    raise NvmlUnavailable("cannot find the GPU in NVML: " + "; ".join(errors))


def device_identity(nvml, handle) -> dict:
    """Name, UUID, NVML index and PCI bus id of a handle; what cannot be read is left out."""
    identity = {}
    for key, read in (("name", lambda: _text(nvml.nvmlDeviceGetName(handle))),
                      ("uuid", lambda: _text(nvml.nvmlDeviceGetUUID(handle))),
                      ("nvml_index", lambda: int(nvml.nvmlDeviceGetIndex(handle))),
                      ("pci_bus_id", lambda: _text(nvml.nvmlDeviceGetPciInfo(handle).busId))):
        try:
            identity[key] = read()
        except Exception:
            pass
    return identity


# --- One sample -----------------------------------------------------------------------------------

class SampleReader:
    """Reads one sample of every metric the device gives; remembers, with reasons, what it cannot."""

    METRICS = ("memory", "utilization", "power", "energy", "sm_clock", "mem_clock", "temperature",
               "clock_event_reasons")

    def __init__(self, nvml, handle, clock: Callable[[], float] = time.monotonic):
        self.nvml = nvml
        self.handle = handle
        self.clock = clock
        self.absent: dict[str, str] = {}
        self.notes: dict[str, str] = {}
        self._errors_in_a_row: dict[str, int] = {}
        self._readers = {
            "memory": self._memory,
            "utilization": self._utilization,
            "power": lambda: {"power_mw": float(nvml.nvmlDeviceGetPowerUsage(handle))},
            "energy": lambda: {"energy_mj": int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))},
            "sm_clock": lambda: {"sm_clock_mhz": float(nvml.nvmlDeviceGetClockInfo(
                handle, getattr(nvml, "NVML_CLOCK_SM", CLOCK_SM)))},
            "mem_clock": lambda: {"mem_clock_mhz": float(nvml.nvmlDeviceGetClockInfo(
                handle, getattr(nvml, "NVML_CLOCK_MEM", CLOCK_MEM)))},
            "temperature": lambda: {"temperature_c": float(nvml.nvmlDeviceGetTemperature(
                handle, getattr(nvml, "NVML_TEMPERATURE_GPU", TEMPERATURE_GPU)))},
            "clock_event_reasons": self._event_reasons,
        }
        self._memory_v2 = True
        self._event_reasons_fn = None

    def read(self) -> dict:
        """One sample: ``t`` (time.monotonic at the middle of the reads) and each metric it could read."""
        sample: dict[str, Any] = {}
        before = self.clock()
        for name, reader in self._readers.items():
            if name in self.absent:
                continue
            try:
                sample.update(reader())
                self._errors_in_a_row[name] = 0
            except AttributeError as exc:
                self.absent[name] = f"not in these NVML bindings ({exc}); update nvidia-ml-py"
            except nvml_error_class(self.nvml) as exc:
                code = error_code(self.nvml, exc)
                if code in PERMANENT_ERRORS:
                    self.absent[name] = describe_error(self.nvml, exc)
                else:
                    count = self._errors_in_a_row.get(name, 0) + 1
                    self._errors_in_a_row[name] = count
                    self.notes[name] = f"{count} failed read(s) in a row, last: {describe_error(self.nvml, exc)}"
                    if count >= MAX_CONSECUTIVE_ERRORS:
                        self.absent[name] = (f"{count} reads in a row failed; last: "
                                             f"{describe_error(self.nvml, exc)}")
        sample["t"] = (before + self.clock()) / 2
        return sample

    def _memory(self) -> dict:
        nvml, handle = self.nvml, self.handle
        if self._memory_v2:
            try:
                info = nvml.nvmlDeviceGetMemoryInfo(handle, version=getattr(nvml, "nvmlMemory_v2", MEMORY_V2))
                memory = {"memory_used_bytes": int(info.used), "memory_total_bytes": int(info.total)}
                reserved = getattr(info, "reserved", None)
                if reserved is not None:
                    memory["memory_reserved_bytes"] = int(reserved)
                return memory
            except (TypeError, AttributeError) as exc:
                self._fall_back_to_v1(f"v2 memory API not in these bindings ({exc})")
            except nvml_error_class(nvml) as exc:
                if error_code(nvml, exc) not in (ERROR_FUNCTION_NOT_FOUND, ERROR_NOT_SUPPORTED):
                    raise
                self._fall_back_to_v1(f"v2 memory API: {describe_error(nvml, exc)}")
        info = nvml.nvmlDeviceGetMemoryInfo(handle)
        return {"memory_used_bytes": int(info.used), "memory_total_bytes": int(info.total)}

    def _fall_back_to_v1(self, why: str) -> None:
        self._memory_v2 = False
        self.notes["memory"] = (f"{why}; used memory read with the v1 API, which counts the driver's "
                                f"reserved memory as used")

    @property
    def memory_api(self) -> str:
        return "v2" if self._memory_v2 else "v1"

    def _utilization(self) -> dict:
        rates = self.nvml.nvmlDeviceGetUtilizationRates(self.handle)
        return {"gpu_utilization_pct": float(rates.gpu), "memory_utilization_pct": float(rates.memory)}

    def _event_reasons(self) -> dict:
        if self._event_reasons_fn is None:
            function = getattr(self.nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            if function is None:  # bindings older than the rename (driver 535)
                function = self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons
            self._event_reasons_fn = function
        try:
            return {"clock_event_reasons": int(self._event_reasons_fn(self.handle))}
        except nvml_error_class(self.nvml) as exc:
            legacy = getattr(self.nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None)
            if error_code(self.nvml, exc) != ERROR_FUNCTION_NOT_FOUND or legacy in (None, self._event_reasons_fn):
                raise
            self._event_reasons_fn = legacy  # new bindings, old driver
            return {"clock_event_reasons": int(legacy(self.handle))}


def reason_names(mask: int) -> list[str]:
    names = [name for bit, name in EVENT_REASONS.items() if mask & bit]
    unknown = mask & ~sum(EVENT_REASONS)
    if unknown:
        names.append(f"other(0x{unknown:x})")
    return names


# --- The SM clock on demand (the measured peak records the clock its products ran at) ---------------

class SmClockReader:
    """Reads one GPU's SM clock when asked. ``open`` never raises: where NVML, the GPU or the clock cannot
    be read, ``reason`` says why and ``read`` returns None."""

    def __init__(self, nvml=None, handle=None, found_by: str | None = None, reason: str | None = None):
        self.nvml, self.handle, self.found_by, self.reason = nvml, handle, found_by, reason

    @classmethod
    def open(cls, spec: DeviceSpec, module: str | None = None) -> "SmClockReader":
        try:
            nvml = load_nvml(module)
            init(nvml)
        except NvmlUnavailable as exc:
            return cls(reason=f"NVML unavailable: {exc}")
        try:
            handle, found_by = resolve_handle(nvml, spec)
        except Exception as exc:  # NvmlUnavailable, or a broken binding
            shutdown(nvml)
            return cls(reason=f"NVML unavailable: {exc}")
        return cls(nvml, handle, found_by)

    def read(self) -> int | None:
        if self.nvml is None:
            return None
        try:
            return int(self.nvml.nvmlDeviceGetClockInfo(self.handle, getattr(self.nvml, "NVML_CLOCK_SM", CLOCK_SM)))
        except Exception as exc:  # NVMLError (NotSupported on some virtual GPUs) or AttributeError
            self.reason = f"SM clock: {describe_error(self.nvml, exc)}"
            self.close()
            return None

    def max_mhz(self) -> int | None:
        if self.nvml is None:
            return None
        try:
            return int(self.nvml.nvmlDeviceGetMaxClockInfo(self.handle, getattr(self.nvml, "NVML_CLOCK_SM", CLOCK_SM)))
        except Exception:
            return None

    def close(self) -> None:
        if self.nvml is not None:
            shutdown(self.nvml)
            self.nvml = None


# --- The GPU's state, once (for ``rnnbench env`` and the results' environment) ----------------------

def _try(fn: Callable[[], Any], absent: dict, key: str):
    try:
        return fn()
    except Exception as exc:  # NVMLError or AttributeError: the item is absent, with its reason
        absent[key] = str(exc).strip() or type(exc).__name__
        return None


def system_info(nvml) -> dict:
    absent: dict[str, str] = {}
    info = {
        "driver": _try(lambda: _text(nvml.nvmlSystemGetDriverVersion()), absent, "driver"),
        "nvml_version": _try(lambda: _text(nvml.nvmlSystemGetNVMLVersion()), absent, "nvml_version"),
        "cuda_driver_version": _try(lambda: int(nvml.nvmlSystemGetCudaDriverVersion()), absent,
                                    "cuda_driver_version"),
    }
    info = {key: value for key, value in info.items() if value is not None}
    if absent:
        info["absent"] = absent
    return info


def gpu_state(nvml, handle) -> dict:
    """Clocks, power, modes, temperature and the processes already on one GPU."""
    absent: dict[str, str] = {}
    state: dict[str, Any] = dict(device_identity(nvml, handle))
    sm, mem = getattr(nvml, "NVML_CLOCK_SM", CLOCK_SM), getattr(nvml, "NVML_CLOCK_MEM", CLOCK_MEM)
    items = {
        "sm_clock_mhz": lambda: int(nvml.nvmlDeviceGetClockInfo(handle, sm)),
        "sm_clock_max_mhz": lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, sm)),
        "mem_clock_mhz": lambda: int(nvml.nvmlDeviceGetClockInfo(handle, mem)),
        "mem_clock_max_mhz": lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, mem)),
        "power_draw_w": lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000,
        "power_limit_w": lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000,
        "persistence_mode": lambda: bool(nvml.nvmlDeviceGetPersistenceMode(handle)),
        "mig_mode": lambda: bool(nvml.nvmlDeviceGetMigMode(handle)[0]),
        "temperature_c": lambda: int(nvml.nvmlDeviceGetTemperature(
            handle, getattr(nvml, "NVML_TEMPERATURE_GPU", TEMPERATURE_GPU))),
        "clock_event_reasons": lambda: reason_names(int(_event_reasons_function(nvml)(handle))),
    }
    for key, read in items.items():
        value = _try(read, absent, key)
        if value is not None:
            state[key] = value
    processes = _try(lambda: _processes(nvml, handle), absent, "processes")
    if processes is not None:
        state["processes"] = processes
    if absent:
        state["absent"] = absent
    return state


def _event_reasons_function(nvml):
    function = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    return function or nvml.nvmlDeviceGetCurrentClocksThrottleReasons


def _processes(nvml, handle) -> list[dict]:
    found: dict[int, dict] = {}
    for kind, name in (("compute", "nvmlDeviceGetComputeRunningProcesses"),
                       ("graphics", "nvmlDeviceGetGraphicsRunningProcesses")):
        function = getattr(nvml, name, None)
        if function is None:
            continue
        for process in function(handle):
            pid = int(process.pid)
            used = getattr(process, "usedGpuMemory", None)
            entry = found.setdefault(pid, {"pid": pid, "kinds": [], "used_memory_bytes": used})
            entry["kinds"].append(kind)
    return sorted(found.values(), key=lambda p: p["pid"])


def all_gpu_states(nvml) -> list[dict]:
    states = []
    for index in range(nvml.nvmlDeviceGetCount()):
        states.append(gpu_state(nvml, nvml.nvmlDeviceGetHandleByIndex(index)))
    return states
