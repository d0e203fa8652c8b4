"""``rnnbench env`` as text: the environment, one ``path.to.fact: value`` line each, then the GPU's state."""

from __future__ import annotations

from typing import Iterator, Mapping


def environment_lines(environment: Mapping) -> Iterator[str]:
    """Every fact of the environment (``gpu_state`` aside), then the GPU's state (NVML)."""
    facts = dict(environment)
    gpu_state = facts.pop("gpu_state", None)
    yield from _flatten(facts)
    if gpu_state is not None:
        yield from gpu_state_lines(gpu_state)


def gpu_state_lines(state: Mapping) -> Iterator[str]:
    """The GPU's state (NVML) for ``rnnbench env``: one line per GPU fact, a WARNING per intruder."""
    if not state.get("available"):
        yield f"gpu_state: {state.get('reason', 'NVML unavailable')}"
        return
    yield (f"gpu_state: driver {state.get('driver', '?')}, NVML {state.get('nvml_version', '?')}, "
           f"{len(state.get('gpus', []))} GPU(s)")
    for gpu in state.get("gpus", []):
        where = f"gpu_state.{gpu.get('nvml_index', '?')}"
        yield f"{where}: {gpu.get('name', '?')} {gpu.get('uuid', '')}".rstrip()
        if gpu.get("found_by"):
            yield f"{where}.found_by: {gpu['found_by']}"

        def pair(now, top, unit, top_label="max"):
            if gpu.get(now) is None:
                return "absent"
            return f"{gpu[now]:g} {unit}" + (f" ({top_label} {gpu[top]:g} {unit})" if gpu.get(top) is not None else "")

        yield f"{where}.sm_clock: {pair('sm_clock_mhz', 'sm_clock_max_mhz', 'MHz')}"
        yield f"{where}.mem_clock: {pair('mem_clock_mhz', 'mem_clock_max_mhz', 'MHz')}"
        yield f"{where}.power: {pair('power_draw_w', 'power_limit_w', 'W', 'limit')}"
        for key, label in (("persistence_mode", "persistence_mode"), ("mig_mode", "mig_mode"),
                           ("temperature_c", "temperature_c"), ("clock_event_reasons", "clock_event_reasons")):
            value = gpu.get(key, "absent")
            yield f"{where}.{label}: {', '.join(value) or 'none' if isinstance(value, list) else value}"
        processes = gpu.get("processes")
        if processes is None:
            yield f"{where}.processes: absent"
        else:
            listed = ", ".join(f"pid {p['pid']} ({_mib(p.get('used_memory_bytes'))})" for p in processes)
            yield f"{where}.processes: {listed or 'none'}"
        for key, reason in (gpu.get("absent") or {}).items():
            yield f"{where}.{key}: absent ({reason})"
    for warning in state.get("warnings", []):
        yield f"WARNING: {warning}"


def _mib(value) -> str:
    return "memory unknown" if value is None else f"{value / 2**20:.0f} MiB"


def _flatten(value, prefix: str = ""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield f"{prefix}: {value}"
