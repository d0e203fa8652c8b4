"""Telemetry for one case: the run's NVML monitor (one sampler process per run and device) and the
window around the case's timed loop.

What a case result's ``telemetry`` holds::

    {"nvml": {"available": true, "device": {name, uuid, nvml_index, pci_bus_id, found_by},
              "period_ms": 20.0},
     "windows": {"step": {duration_s, samples, memory_used_peak_bytes, ..., energy_per_sequence_j,
                          throttled: {thermal, power, any, reasons}, low_confidence, low_confidence_why,
                          absent: {metric: reason}, notes: {metric: note}}}}

or, where NVML cannot be used, ``{"nvml": {"available": false, "reason": "NVML unavailable: <why>"}}``.

The window covers the whole timed loop, which is one region: ``step`` in forward_backward mode (each
iteration is a forward then a backward, milliseconds apart, far below what NVML resolves, so forward and
backward get no windows of their own), ``forward`` in the forward and inference modes.
"""

from __future__ import annotations

import atexit
import os
from contextlib import contextmanager
from dataclasses import replace

from harness.measure.telemetry.nvml import DEFAULT_MODULE, MODULE_ENV_VAR, DeviceSpec
from harness.measure.telemetry.sampler import MonitorUnavailable, NvmlMonitor
from harness.measure.telemetry.window import WindowMeasurement

UNAVAILABLE = "NVML unavailable"

# One monitor (sampler process) per (device, period, module) for the life of the run; a failure to
# start is remembered too, so a machine without NVML does not try again for every case.
_MONITORS: dict[tuple, NvmlMonitor] = {}


def nvml_module() -> str:
    return os.environ.get(MODULE_ENV_VAR) or DEFAULT_MODULE


def device_spec(device) -> DeviceSpec:
    """What torch knows of a CUDA device that lets NVML find the same GPU."""
    index = device.index if device.index is not None else 0
    uuid = pci_bus_id = None
    if device.type == "cuda":
        import torch

        properties = torch.cuda.get_device_properties(index)
        raw_uuid = getattr(properties, "uuid", None)
        uuid = str(raw_uuid) if raw_uuid is not None else None
        bus = getattr(properties, "pci_bus_id", None)
        if bus is not None:
            pci_bus_id = (f"{getattr(properties, 'pci_domain_id', 0):08x}:{bus:02x}:"
                          f"{getattr(properties, 'pci_device_id', 0):02x}.0")
    return DeviceSpec(index=index, uuid=uuid, pci_bus_id=pci_bus_id,
                      cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
                      cuda_device_order=os.environ.get("CUDA_DEVICE_ORDER"))


def monitor_for(device, period_s: float, module: str | None = None) -> NvmlMonitor:
    """The run's monitor for ``device`` (started on first use; check ``available`` / ``reason``)."""
    module = module or nvml_module()
    key = (str(device), period_s, module)
    monitor = _MONITORS.get(key)
    if monitor is None or (monitor.reason is None and not monitor.available):
        monitor = NvmlMonitor(device_spec(device), period_s=period_s, module=module)
        _MONITORS[key] = monitor
        monitor.start()
    return monitor


def close_monitors() -> None:
    """Stop every sampler process this run started (also called at exit)."""
    while _MONITORS:
        _, monitor = _MONITORS.popitem()
        monitor.close()


atexit.register(close_monitors)


class CaseTelemetry:
    """NVML over one case's timed loop. ``window()`` goes around the loop; ``to_dict`` after it."""

    def __init__(self, device, settings, region: str):
        self.region = region
        self.monitor: NvmlMonitor | None = None
        self.reason: str | None = None
        self.measurement: WindowMeasurement | None = None
        module = nvml_module()
        if not settings.enabled:
            self.reason = "telemetry off (the suite sets telemetry.enabled: false)"
        elif device.type != "cuda" and module == DEFAULT_MODULE:
            self.reason = f"{UNAVAILABLE}: the case runs on the CPU"
        else:
            monitor = monitor_for(device, settings.nvml_period_ms / 1e3, module)
            if monitor.available:
                self.monitor = monitor
            else:
                self.reason = f"{UNAVAILABLE}: {monitor.reason}"

    @contextmanager
    def window(self):
        """Around the timed loop. A telemetry failure is recorded, never raised into the case."""
        began = False
        if self.monitor is not None:
            try:
                self.monitor.begin_window(self.region)
                began = True
            except MonitorUnavailable as exc:
                self.reason = f"{UNAVAILABLE}: {exc}"
        try:
            yield self
        finally:
            if began:
                try:
                    self.measurement = self.monitor.end_window(self.region)
                except MonitorUnavailable as exc:
                    self.reason = f"{UNAVAILABLE}: {exc}"

    def to_dict(self, iterations: int | None = None, batch: int | None = None) -> dict:
        if self.measurement is None:
            return {"nvml": {"available": False, "reason": self.reason or f"{UNAVAILABLE}: no window was taken"}}
        measurement = replace(self.measurement, iterations=iterations, batch=batch)
        nvml = {"available": True, "module": self.monitor.info.get("module"),
                "device": self.monitor.info.get("device", {}), "period_ms": self.monitor.period_s * 1e3,
                "placement": self.monitor.info.get("placement", {})}
        return {"nvml": nvml, "windows": {self.region: measurement.to_dict()}}
