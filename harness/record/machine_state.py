"""Is the machine busy? What else uses the cores and the GPU a run measures on, read as the run starts (and as
each round's worker and each A/B side starts), with a verdict a person can act on.

A benchmark on a busy machine measures the neighbours. Read here, once per process, never while timing:

- the load average against the cores this process may use (``os.sched_getaffinity``);
- the CPU each other process used over a short window (two readings of ``/proc/<pid>/stat``, their
  ``utime + stime`` difference): the busiest are named;
- the CPU frequency governor of those cores, where ``/sys`` shows it;
- torch's intra-op threads against the cores left idle;
- the GPU's other processes, clocks and throttle reasons, from the NVML state ``harness.measure.env`` records.

The verdict (:attr:`MachineState.busy`, with :attr:`MachineState.reasons`) follows one rule:

1. *CPU*: the processes that are not ours used more than ``BUSY_OTHERS_CORES`` (half a core) of the cores we
   may use over the window, or one of them more than ``BUSY_PROCESS_SHARE`` (a quarter of a core).
2. *threads* (CPU runs): torch's intra-op threads exceed the idle cores (the cores we may use, less one for each
   core the others keep more than half busy; at least 1): OpenMP's threads then wait on each other. The
   suggested fix is ``threads:`` of the idle cores (1 on a 2-core machine) in the suite.
3. *GPU* (CUDA runs): a process other than ours has a context on the run's GPU.

Only notes, never "busy": a governor other than ``performance``, a GPU that throttles (power, thermal) as the
run starts, processes on a GPU a CPU run does not use, and a load average above the cores when the sampled
window found nothing: the load average is a one-minute mean, and still counts a job that just ended.

"Ours" is this process, and for a worker of ``rnnbench run --rounds`` or ``rnnbench ab`` its parent and the
parent's other children (the other side of an A/B). Where ``/proc`` cannot be read (not Linux) the verdict
stands on what could be read, and :attr:`MachineState.unreadable` says what was not. Nothing here prints.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

BUSY_OTHERS_CORES = 0.5    # others together, in cores (1.0 = one core all the time)
BUSY_PROCESS_SHARE = 0.25  # one other process, in cores
SAMPLE_WINDOW_S = 0.5      # between the two readings of /proc: long enough to see a process that runs in bursts
LISTED_PROCESSES = 8       # the busiest others kept in the record
LISTED_MIN_SHARE = 0.01    # below 1 % of a core a process is not listed (its time still counts in the sum)
NAMED_IN_REASON = 3
THROTTLE_NAMES = ("sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown",
                  "hw_power_brake_slowdown")  # harness.measure.telemetry.nvml.THROTTLE_REASONS, by name
PROC = "/proc"
CPUFREQ = "/sys/devices/system/cpu/cpu{}/cpufreq/scaling_governor"


@dataclass(frozen=True)
class ProcessLoad:
    """Another process and the CPU it used over the window: ``core_share`` 1.0 is one core all the time."""

    pid: int
    name: str
    core_share: float

    def to_dict(self) -> dict:
        return {"pid": self.pid, "name": self.name, "core_share": self.core_share}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ProcessLoad":
        return cls(pid=_integer(data, "pid"), name=_string(data.get("name", "?"), "name"),
                   core_share=_number(data, "core_share"))

    @property
    def label(self) -> str:
        return f"pid {self.pid} ({self.name}) {self.core_share:.0%} of a core"


@dataclass(frozen=True)
class GpuReading:
    """One GPU as NVML saw it at the start: ``in_use`` when it is the run's GPU. ``other_pids``: listed processes
    that are not ours; ``unlisted_allowance`` 1 when this process has a CUDA context on it but is not listed under
    its own pid (another pid namespace, as in a container), so one listed process may be this one."""

    index: int | None = None
    name: str | None = None
    in_use: bool = False
    other_pids: tuple[int, ...] = ()
    unlisted_allowance: int = 0
    sm_clock_mhz: int | None = None
    sm_clock_max_mhz: int | None = None
    throttle_reasons: tuple[str, ...] = ()

    @property
    def others(self) -> int:
        return max(0, len(self.other_pids) - self.unlisted_allowance)

    @property
    def label(self) -> str:
        return f"GPU {'?' if self.index is None else self.index} ({self.name or '?'})"

    def to_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "in_use": self.in_use, "other_pids": list(self.other_pids),
                "unlisted_allowance": self.unlisted_allowance, "sm_clock_mhz": self.sm_clock_mhz,
                "sm_clock_max_mhz": self.sm_clock_max_mhz, "throttle_reasons": list(self.throttle_reasons)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "GpuReading":
        return cls(index=_optional_integer(data, "index"), name=_optional_string(data, "name"),
                   in_use=bool(data.get("in_use")),
                   other_pids=tuple(_whole(pid, "other_pids") for pid in _sequence(data, "other_pids")),
                   unlisted_allowance=_optional_integer(data, "unlisted_allowance") or 0,
                   sm_clock_mhz=_optional_integer(data, "sm_clock_mhz"),
                   sm_clock_max_mhz=_optional_integer(data, "sm_clock_max_mhz"),
                   throttle_reasons=tuple(_string(r, "throttle_reasons") for r in _sequence(data, "throttle_reasons")))


@dataclass(frozen=True)
class MachineState:
    """What else ran on the machine as a process of the run started: the readings; the verdict is derived."""

    allowed_cores: int
    online_cores: int | None = None
    device_type: str = "cpu"
    load_average: tuple[float, float, float] | None = None
    window_s: float | None = None          # None: other processes could not be sampled
    others_cores: float | None = None      # CPU the others used over the window, in cores, on cores we may use
    busiest: tuple[ProcessLoad, ...] = ()
    governors: Mapping[str, int] = field(default_factory=dict)  # governor -> how many of our cores run it
    torch_threads: int | None = None
    gpus: tuple[GpuReading, ...] = ()
    unreadable: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "governors", MappingProxyType(dict(self.governors)))  # read-only copy
        object.__setattr__(self, "busiest", tuple(self.busiest))
        object.__setattr__(self, "gpus", tuple(self.gpus))
        object.__setattr__(self, "unreadable", tuple(self.unreadable))

    # --- the verdict ---------------------------------------------------------------------------------

    @property
    def idle_cores(self) -> int:
        """The cores we may use, less one for each core the others keep more than half busy."""
        taken = math.ceil(self.others_cores - BUSY_OTHERS_CORES) if (self.others_cores or 0) > BUSY_OTHERS_CORES else 0
        return max(0, self.allowed_cores - taken)

    @property
    def oversubscribed(self) -> bool:
        return (self.device_type == "cpu" and self.torch_threads is not None
                and self.torch_threads > max(1, self.idle_cores))

    @property
    def suggested_threads(self) -> int | None:
        """``threads:`` for the suite where torch's threads exceed the idle cores; None where they do not."""
        return max(1, self.idle_cores) if self.oversubscribed else None

    @property
    def reasons(self) -> tuple[str, ...]:
        reasons = []
        named = self.busiest[:NAMED_IN_REASON]
        top = max((p.core_share for p in self.busiest), default=0.0)
        if self.others_cores is not None and (self.others_cores > BUSY_OTHERS_CORES or top > BUSY_PROCESS_SHARE):
            busiest = f"; busiest: {', '.join(p.label for p in named)}" if named else ""
            reasons.append(f"other processes used {self.others_cores:.2f} of the {_cores(self.allowed_cores)} this "
                           f"process may use over {self.window_s:.2g} s{busiest}")
        if self.oversubscribed:
            reasons.append(f"torch runs {self.torch_threads} threads on {_cores(self.idle_cores)} left idle: "
                           f"the threads oversubscribe and wait on each other; set 'threads: "
                           f"{self.suggested_threads}' in the suite")
        for gpu in self.gpus:
            if gpu.in_use and gpu.others:
                maybe = (" (this process is not listed under its own pid, so one of them may be this one)"
                         if gpu.unlisted_allowance else "")
                reasons.append(f"{gpu.others} other process(es) on {gpu.label}: pids "
                               f"{', '.join(map(str, gpu.other_pids))}{maybe}")
        return tuple(reasons)

    @property
    def busy(self) -> bool:
        return bool(self.reasons)

    @property
    def notes(self) -> tuple[str, ...]:
        notes = []
        slow = [f"{governor} on {count} of {_cores(self.allowed_cores)}" for governor, count in self.governors.items()
                if governor != "performance"]
        if slow:
            notes.append(f"CPU frequency governor {', '.join(slow)}: the clocks follow the load; 'performance' "
                         f"holds them steady")
        if self.load_average is not None and self.others_cores is not None and not self.busy:
            load_on_ours = max(0.0, self.load_average[0] - 1) * self.allowed_cores / (self.online_cores or self.allowed_cores)
            if load_on_ours > BUSY_OTHERS_CORES:
                notes.append(f"load average {self.load_average[0]:.2f} (1 min) with nothing else running in the "
                             f"{self.window_s:.2g} s sampled: a job that just ended, or one that comes and goes")
        for gpu in self.gpus:
            if gpu.throttle_reasons:
                notes.append(f"{gpu.label} throttles as the run starts: {', '.join(gpu.throttle_reasons)}")
            if not gpu.in_use and gpu.others:
                notes.append(f"{gpu.others} process(es) on {gpu.label}, which this run does not use")
        return tuple(notes)

    def summary(self) -> str:
        """One line: 'BUSY: reason; reason' or 'quiet', with the load average and the cores."""
        load = f"load {self.load_average[0]:.2f} on {_cores(self.allowed_cores)}" if self.load_average else \
            f"{_cores(self.allowed_cores)}"
        if self.busy:
            return f"BUSY ({load}): " + "; ".join(self.reasons)
        sampled = "not sampled" if self.others_cores is None else f"others {self.others_cores:.2f} cores"
        return f"quiet ({load}, {sampled})"

    # --- the record ------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The readings, and the verdict for people and other tools (a reader derives it again)."""
        return {
            "allowed_cores": self.allowed_cores, "online_cores": self.online_cores, "device_type": self.device_type,
            "load_average": list(self.load_average) if self.load_average is not None else None,
            "window_s": self.window_s,
            "others_cores": self.others_cores,
            "busiest": [p.to_dict() for p in self.busiest], "governors": dict(self.governors),
            "torch_threads": self.torch_threads, "gpus": [g.to_dict() for g in self.gpus],
            "unreadable": list(self.unreadable),
            "busy": self.busy, "reasons": list(self.reasons), "notes": list(self.notes),
            "idle_cores": self.idle_cores, "suggested_threads": self.suggested_threads,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "MachineState":
        """The record as written; ValueError (with what is wrong) where it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError(f"must be a mapping, got a {type(data).__name__}")
        load = data.get("load_average")
        if load is not None:
            values = tuple(_finite(value, "load_average") for value in _sequence(data, "load_average"))
            if len(values) != 3:
                raise ValueError("load_average: must be three numbers (1, 5 and 15 minutes)")
            load = values
        governors = data.get("governors") or {}
        if not isinstance(governors, Mapping):
            raise ValueError("governors: must be a mapping")
        allowed = _integer(data, "allowed_cores")
        if allowed < 1:
            raise ValueError("allowed_cores: must be at least 1")
        return cls(
            allowed_cores=allowed, online_cores=_optional_integer(data, "online_cores"),
            device_type=_string(data.get("device_type", "cpu"), "device_type"), load_average=load,
            window_s=_optional_number(data, "window_s"), others_cores=_optional_number(data, "others_cores"),
            busiest=tuple(ProcessLoad.from_dict(_mapping(p, "busiest")) for p in _sequence(data, "busiest")),
            governors={_string(k, "governors"): _whole(v, "governors") for k, v in governors.items()},
            torch_threads=_optional_integer(data, "torch_threads"),
            gpus=tuple(GpuReading.from_dict(_mapping(g, "gpus")) for g in _sequence(data, "gpus")),
            unreadable=tuple(_string(u, "unreadable") for u in _sequence(data, "unreadable")),
        )


def busy_line(labelled: Sequence[tuple[str, MachineState]]) -> str | None:
    """One line for a header where any of the states (labelled 'the run', 'round 2', ...) was busy: where,
    and the first busy one's reasons; None when every state was quiet."""
    busy = [(where, state) for where, state in labelled if state.busy]
    if not busy:
        return None
    where = ", ".join(w for w, _ in busy) + (f" ({len(busy)} of {len(labelled)})" if len(labelled) > 1 else "")
    first = f"; at {busy[0][0]}" if len(busy) > 1 else ""
    return f"machine BUSY at the start of {where}{first}: " + "; ".join(busy[0][1].reasons)


# --- reading the machine ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CpuSampling:
    """The first reading of every process's CPU time, taken when a command starts (:func:`start_sampling`), so
    that the window runs while the command imports torch and opens its suite instead of after them: what the
    window measures is the CPU of the *other* processes, which this process's own work does not enter.
    :func:`collect_machine_state` takes the second reading, no sooner than ``SAMPLE_WINDOW_S`` after this one."""

    snapshot: Mapping[int, _Stat] | None  # None: /proc not readable here
    started: float  # time.monotonic() of the reading


def start_sampling() -> CpuSampling:
    """Take the window's first reading now (a few milliseconds: one read of each /proc/<pid>/stat)."""
    return CpuSampling(snapshot=_proc_snapshot(), started=time.monotonic())


def collect_machine_state(environment: Mapping, *, family_root: int | None = None,
                          window_s: float = SAMPLE_WINDOW_S, sampling: CpuSampling | None = None) -> MachineState:
    """Read the machine now. ``environment``: the one :func:`harness.measure.env.collect_environment` just gave (its
    device, torch's threads and the NVML state). ``family_root``: a process whose descendants are ours too (a
    worker passes its parent: the rnnbench that started it and the other side of an A/B). ``sampling``: the
    window's first reading, taken as the command started (:func:`start_sampling`); without it the window starts
    now. Either way it lasts at least ``window_s``: what is left of it is waited for here."""
    unreadable: list[str] = []
    allowed = _allowed_cpus()
    try:
        load: tuple[float, float, float] | None = tuple(os.getloadavg())  # type: ignore[assignment]
    except (AttributeError, OSError):
        load = None
        unreadable.append("load average: not on this system")
    device_type = str(environment.get("device") or "cpu").split(":")[0]
    threads = (environment.get("threads") or {}).get("intra_op")
    sampling = sampling if sampling is not None else start_sampling()
    first = sampling.snapshot
    others_cores, busiest, ours = None, (), {os.getpid()}
    if first is None:
        unreadable.append(f"processes: {PROC} not readable here")
    else:
        left_s = window_s - (time.monotonic() - sampling.started)
        if left_s > 0:
            time.sleep(left_s)
        second = _proc_snapshot() or {}
        elapsed = time.monotonic() - sampling.started
        if family_root is not None:
            ours |= _descendants(second, family_root) | {family_root}
        others_cores, busiest = _others(first, second, elapsed, ours, set(allowed))
        window_s = round(elapsed, 3)
    governors = _governors(allowed)
    if not governors:
        unreadable.append("CPU frequency governor: not exposed (no cpufreq, as in many VMs)")
    return MachineState(
        allowed_cores=len(allowed), online_cores=os.cpu_count(), device_type=device_type,
        load_average=tuple(round(value, 2) for value in load) if load else None,
        window_s=window_s if others_cores is not None else None, others_cores=others_cores, busiest=busiest,
        governors=governors, torch_threads=int(threads) if isinstance(threads, int) else None,
        gpus=gpu_readings(environment.get("gpu_state"), device_type, ours, _cuda_initialised()),
        unreadable=tuple(unreadable))


def gpu_readings(gpu_state: Mapping | None, device_type: str, ours: Iterable[int],
                 cuda_initialised: bool) -> tuple[GpuReading, ...]:
    """The GPUs of ``harness.measure.env.nvml_environment``'s state, with the processes on each that are not ours."""
    if not gpu_state or not gpu_state.get("available"):
        return ()
    readings = []
    for gpu in gpu_state.get("gpus") or ():
        listed = [int(p["pid"]) for p in gpu.get("processes") or ()]
        others = tuple(pid for pid in listed if pid not in set(ours))
        in_use = device_type == "cuda" and gpu.get("found_by") is not None
        ours_listed = len(others) < len(listed)
        reasons = gpu.get("clock_event_reasons") or ()
        readings.append(GpuReading(
            index=gpu.get("nvml_index"), name=gpu.get("name"), in_use=in_use, other_pids=others,
            unlisted_allowance=1 if in_use and cuda_initialised and not ours_listed else 0,
            sm_clock_mhz=gpu.get("sm_clock_mhz"), sm_clock_max_mhz=gpu.get("sm_clock_max_mhz"),
            throttle_reasons=tuple(r for r in reasons if r in THROTTLE_NAMES)))
    return tuple(readings)


def _cuda_initialised() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def _allowed_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class _Stat:
    name: str
    ppid: int
    ticks: int       # utime + stime, in clock ticks
    start: int       # start time after boot, in ticks: tells a reused pid from the same process


def _proc_snapshot() -> dict[int, _Stat] | None:
    """Every process's CPU time now, from /proc/<pid>/stat; None without a readable /proc."""
    try:
        entries = os.listdir(PROC)
    except OSError:
        return None
    snapshot = {}
    for entry in entries:
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
                snapshot[int(entry)] = stat
    return snapshot or None


def read_stat(pid: int) -> _Stat | None:
    """One process's /proc/<pid>/stat; None when it has gone (or cannot be read)."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
        # the name sits in parentheses and may itself hold spaces and parentheses: split after the last ')'
        close = text.rindex(")")
        fields = text[close + 2:].split()
        return _Stat(name=text[text.index("(") + 1:close], ppid=int(fields[1]),
                     ticks=int(fields[11]) + int(fields[12]), start=int(fields[19]))
    except (OSError, ValueError, IndexError):
        return None


def clock_ticks_per_s() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 100


def _descendants(snapshot: Mapping[int, _Stat], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, stat in snapshot.items():
        children.setdefault(stat.ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _others(first: Mapping[int, _Stat], second: Mapping[int, _Stat], elapsed_s: float, ours: set[int],
            allowed: set[int]) -> tuple[float, tuple[ProcessLoad, ...]]:
    """The CPU the processes that are not ours used between the two snapshots, in cores, on cores we may use,
    and the busiest of them."""
    per_s = clock_ticks_per_s() * max(elapsed_s, 1e-3)
    loads = []
    for pid, now in second.items():
        if pid in ours:
            continue
        before = first.get(pid)
        used = now.ticks - (before.ticks if before is not None and before.start == now.start else 0)
        if used > 0:
            loads.append(ProcessLoad(pid=pid, name=now.name, core_share=round(used / per_s, 4)))
    loads.sort(key=lambda load: (-load.core_share, load.pid))
    counted = [load for load in loads if load.core_share < LISTED_MIN_SHARE or _may_share_our_cores(load.pid, allowed)]
    listed = tuple(load for load in counted if load.core_share >= LISTED_MIN_SHARE)[:LISTED_PROCESSES]
    return round(sum(load.core_share for load in counted), 4), listed


def _may_share_our_cores(pid: int, allowed: set[int]) -> bool:
    """Whether the process may run on a core we may use (pinned elsewhere, it does not compete)."""
    try:
        return bool(os.sched_getaffinity(pid) & allowed)
    except (AttributeError, OSError):
        return True


def _governors(cpus: Sequence[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for cpu in cpus:
        try:
            with open(CPUFREQ.format(cpu), encoding="ascii") as handle:
                governor = handle.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if governor:
            counts[governor] = counts.get(governor, 0) + 1
    return counts


def _cores(count: int) -> str:
    return f"{count} core{'s' if count != 1 else ''}"


# --- reading the record back: every value checked, so a reader may take the record for granted ---------------

def _mapping(value: Any, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must hold mappings, got a {type(value).__name__}")
    return value


def _sequence(data: Mapping, key: str) -> Sequence:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{key}: must be a list, got a {type(value).__name__}")
    return value


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: must be whole numbers, got {value!r:.40}")
    return value


def _integer(data: Mapping, key: str) -> int:
    return _whole(data.get(key), key)


def _optional_integer(data: Mapping, key: str) -> int | None:
    return None if data.get(key) is None else _integer(data, key)


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: must be numbers of 0 or more, got {value!r:.40}")
    return float(value)


def _number(data: Mapping, key: str) -> float:
    return _finite(data.get(key), key)


def _optional_number(data: Mapping, key: str) -> float | None:
    return None if data.get(key) is None else _number(data, key)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: must be text, got a {type(value).__name__}")
    return value


def _optional_string(data: Mapping, key: str) -> str | None:
    return None if data.get(key) is None else _string(data[key], key)
