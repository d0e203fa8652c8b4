"""Pure functions: slice NVML samples to a timed window and summarise the window.

A sample is a dict with ``t`` (time.monotonic, seconds; system-wide on Linux, so the sampler process
and the timing process share it) and any of the metrics ``SampleReader`` reads. Metrics a sample lacks
are skipped; a metric no sample has is absent from the summary.

What NVML can and cannot resolve (the honesty rules):
  * Utilization is the fraction of NVML's own sample period (1/6 s to 1 s, by product; NVML does not
    say which) in which a kernel ran. A window shorter than that period is flagged low-confidence.
  * Power (``nvmlDeviceGetPowerUsage``) is itself an average over up to a second on recent GPUs; the
    energy counter is the better figure and ``energy_mean_power_w`` is derived from it.
  * The energy counter updates every few tens of ms: a window spanning fewer than
    ``MIN_ENERGY_UPDATES`` updates is flagged, as is one in which the counter did not move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean
from typing import Any, Mapping, Sequence

from harness.measure.telemetry.nvml import POWER_REASONS, THERMAL_REASONS, THROTTLE_REASONS, reason_names

# NVML documents its utilization sample period as between 1 s and 1/6 s depending on the product and
# exposes no way to ask; 1 s is the safe assumption.
UTILIZATION_PERIOD_S = 1.0
# "Every few tens of ms": the energy counter's update interval, taken on the slow side.
ENERGY_UPDATE_S = 0.05
MIN_ENERGY_UPDATES = 10
MIN_SAMPLES = 5


@dataclass(frozen=True)
class WindowMeasurement:
    """What NVML saw during one timed window (one region of one case). Immutable; ``to_dict`` for JSON."""

    region: str
    duration_s: float
    samples: int
    period_ms: float
    iterations: int | None = None
    batch: int | None = None
    memory_used_peak_bytes: int | None = None
    memory_used_mean_bytes: float | None = None
    memory_total_bytes: int | None = None
    memory_api: str | None = None
    gpu_utilization_mean_pct: float | None = None
    memory_utilization_mean_pct: float | None = None
    power_mean_w: float | None = None
    power_max_w: float | None = None
    energy_j: float | None = None
    energy_span_s: float | None = None
    energy_mean_power_w: float | None = None
    sm_clock_min_mhz: float | None = None
    sm_clock_mean_mhz: float | None = None
    mem_clock_min_mhz: float | None = None
    temperature_max_c: float | None = None
    throttled: Mapping[str, Any] | None = None
    low_confidence: bool = False
    low_confidence_why: tuple[str, ...] = ()
    absent: Mapping[str, str] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)

    @property
    def energy_per_iteration_j(self) -> float | None:
        if self.energy_j is None or not self.iterations:
            return None
        return self.energy_j / self.iterations

    @property
    def energy_per_sequence_j(self) -> float | None:
        per_iteration = self.energy_per_iteration_j
        if per_iteration is None or not self.batch:
            return None
        return per_iteration / self.batch

    def to_dict(self) -> dict:
        document: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "low_confidence_why":
                value = list(value)
            elif name in ("throttled", "absent", "notes"):
                if not value and name != "throttled":
                    continue
                value = dict(value)
            document[name] = value
        document["energy_per_iteration_j"] = self.energy_per_iteration_j
        document["energy_per_sequence_j"] = self.energy_per_sequence_j
        return {key: value for key, value in document.items() if value is not None}


def slice_window(samples: Sequence[Mapping], begin: float, end: float) -> list[Mapping]:
    """The samples taken inside [begin, end], in time order."""
    return sorted((s for s in samples if begin <= s["t"] <= end), key=lambda s: s["t"])


def energy_delta(samples: Sequence[Mapping], begin: float, end: float) -> tuple[float | None, float | None, str | None]:
    """(joules, seconds the counter readings span, why absent) over [begin, end].

    The first reading at or after ``begin`` and the first at or after ``end`` (the sampler takes one
    as each window opens and closes) bracket the window; without a reading after ``end`` the last one
    inside it is used. A counter that went backwards (driver reloaded, counter reset) gives no figure.
    """
    readings = sorted(((s["t"], s["energy_mj"]) for s in samples if "energy_mj" in s and s["t"] >= begin),
                      key=lambda r: r[0])
    if not readings:
        return None, None, "no energy counter reading in the window"
    first = readings[0]
    after = [r for r in readings if r[0] >= end]
    inside = [r for r in readings if r[0] <= end]
    last = after[0] if after else inside[-1]
    if last[0] <= first[0]:
        return None, None, "only one energy counter reading in the window"
    if last[1] < first[1]:
        return None, None, (f"energy counter went backwards ({first[1]} -> {last[1]} mJ): the driver "
                            f"reset it during the window")
    return (last[1] - first[1]) / 1000.0, last[0] - first[0], None


def summarize_window(samples: Sequence[Mapping], begin: float, end: float, *, region: str,
                     period_s: float, iterations: int | None = None, batch: int | None = None,
                     absent: Mapping[str, str] | None = None, notes: Mapping[str, str] | None = None,
                     memory_api: str | None = None,
                     utilization_period_s: float = UTILIZATION_PERIOD_S,
                     energy_update_s: float = ENERGY_UPDATE_S) -> WindowMeasurement:
    inside = slice_window(samples, begin, end)
    duration = end - begin
    absent = dict(absent or {})
    why: list[str] = []

    def values(key: str) -> list[float]:
        return [s[key] for s in inside if key in s]

    def mean(key: str) -> float | None:
        found = values(key)
        return fmean(found) if found else None

    memory = values("memory_used_bytes")
    total = values("memory_total_bytes")
    power = values("power_mw")
    sm_clock = values("sm_clock_mhz")
    mem_clock = values("mem_clock_mhz")
    temperature = values("temperature_c")
    reasons = values("clock_event_reasons")

    energy_j, energy_span, energy_why = energy_delta(samples, begin, end)
    if energy_why and "energy" not in absent:
        absent["energy"] = energy_why
    throttled = None
    if reasons:
        mask = 0
        for value in reasons:
            mask |= int(value)
        throttled = {"thermal": bool(mask & THERMAL_REASONS), "power": bool(mask & POWER_REASONS),
                     "any": bool(mask & THROTTLE_REASONS), "reasons": reason_names(mask)}

    if duration < utilization_period_s:
        why.append(f"window {duration:.3g} s is shorter than NVML's utilization sample period (assumed "
                   f"{utilization_period_s:g} s): utilization there partly describes time outside the "
                   f"window; raise timing.budget_s")
    if energy_span is not None:
        if energy_span < MIN_ENERGY_UPDATES * energy_update_s:
            why.append(f"energy spans {energy_span:.3g} s, under {MIN_ENERGY_UPDATES} updates of the energy "
                       f"counter (~{energy_update_s * 1e3:g} ms each)")
        if energy_j == 0:
            why.append("the energy counter did not move during the window")
    if len(inside) < MIN_SAMPLES:
        why.append(f"{len(inside)} sample(s) in the window (fewer than {MIN_SAMPLES})")

    return WindowMeasurement(
        region=region,
        duration_s=duration,
        samples=len(inside),
        period_ms=period_s * 1e3,
        iterations=iterations,
        batch=batch,
        memory_used_peak_bytes=int(max(memory)) if memory else None,
        memory_used_mean_bytes=fmean(memory) if memory else None,
        memory_total_bytes=int(max(total)) if total else None,
        memory_api=memory_api if memory else None,
        gpu_utilization_mean_pct=mean("gpu_utilization_pct"),
        memory_utilization_mean_pct=mean("memory_utilization_pct"),
        power_mean_w=fmean(power) / 1e3 if power else None,
        power_max_w=max(power) / 1e3 if power else None,
        energy_j=energy_j,
        energy_span_s=energy_span,
        energy_mean_power_w=energy_j / energy_span if energy_j is not None and energy_span else None,
        sm_clock_min_mhz=min(sm_clock) if sm_clock else None,
        sm_clock_mean_mhz=fmean(sm_clock) if sm_clock else None,
        mem_clock_min_mhz=min(mem_clock) if mem_clock else None,
        temperature_max_c=max(temperature) if temperature else None,
        throttled=throttled,
        low_confidence=bool(why),
        low_confidence_why=tuple(why),
        absent=absent,
        notes=dict(notes or {}),
    )
