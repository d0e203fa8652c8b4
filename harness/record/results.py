"""Case results and runs: immutable records that derive their statistics from the kept samples, with typed
views of the facts the reading side asks of them. Files are :mod:`harness.record.results_store`'s business.

A results file is one JSON document, :meth:`RunResults.to_dict`::

    {"schema": "rnnbench.results", "schema_version": 1, "status": "complete" | "interrupted",
     "started_utc": ..., "finished_utc": ..., "environment": {...}, "suite": {...}, "cases": [...]}

Statistics and derived figures are written for people and other tools; on reading, they are derived
again from the samples, which are the only source of truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from harness.spec.cases import Case
from harness.spec.frozen import freeze, thaw  # noqa: F401 - records are frozen; readers import thaw from here too
from harness.spec.flops import region_flops
from harness.record.stats import SampleStats, summarize_rounds

if TYPE_CHECKING:
    from harness.record.run_options import RunOptions
    from harness.record.machine_state import MachineState


def utc_now() -> str:
    """Now, as the UTC times results and the history record (started_utc, added_utc)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


SCHEMA = "rnnbench.results"
SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "skipped")




@dataclass(frozen=True)
class CaseResult:
    case: Case
    status: str
    reason: str | None = None
    samples_ms: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    warmup_ms: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    # The first call of the backend, apart from the steady state: includes compilation for compiled backends.
    first_iteration_ms: Mapping[str, float] = field(default_factory=dict)
    parity: Mapping | None = None
    backend: Mapping = field(default_factory=dict)
    memory: Mapping = field(default_factory=dict)
    telemetry: Mapping = field(default_factory=dict)
    build_s: float | None = None
    duration_s: float | None = None
    started_utc: str | None = None
    # torch's warnings raised while the case ran: first line of each, deduplicated, in order
    warnings: tuple[str, ...] = ()
    # where a step's time goes, from a short profiled pass after the timed loop (harness.measure.activity)
    activity: Mapping = field(default_factory=dict)
    # A case measured in rounds (fresh processes): samples_ms holds every round's samples one round after
    # the other, and this how many each round gave, per region. Empty: one round.
    round_lengths: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    # A timed loop cut into blocks that took turns with another process (rnnbench ab): how many samples each
    # block gave, every round's blocks one round after the other (the same for every region). Empty: no blocks.
    block_lengths: tuple[int, ...] = ()

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        for name in ("samples_ms", "warmup_ms", "first_iteration_ms", "parity", "backend", "memory", "telemetry",
                     "activity", "round_lengths"):
            object.__setattr__(self, name, freeze(getattr(self, name)))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "block_lengths", tuple(self.block_lengths))

    @property
    def key(self) -> str:
        return self.case.key

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def round_count(self) -> int:
        return max((len(lengths) for lengths in self.round_lengths.values()), default=1)

    def samples_by_round(self, region: str) -> list[tuple[float, ...]]:
        """The region's samples, one tuple per round, in the order the rounds ran."""
        samples = self.samples_ms.get(region, ())
        lengths = self.round_lengths.get(region)
        if not lengths:
            return [tuple(samples)]
        rounds, start = [], 0
        for length in lengths:
            rounds.append(tuple(samples[start:start + length]))
            start += length
        return [r for r in rounds if r]

    def samples_by_block(self, region: str) -> list[list[tuple[float, ...]]] | None:
        """The region's samples, per round a list of its blocks, in measured order; None when the loop was not
        cut into blocks or the counts do not add up to the round (a region the blocks do not cover)."""
        if not self.block_lengths:
            return None
        lengths = iter(self.block_lengths)
        rounds = []
        for samples in self.samples_by_round(region):
            blocks, start = [], 0
            while start < len(samples):
                length = next(lengths, None)
                if length is None or length <= 0:
                    return None
                blocks.append(tuple(samples[start:start + length]))
                start += length
            if start != len(samples):
                return None
            rounds.append(blocks)
        return rounds if next(lengths, None) is None else None

    @cached_property
    def stats(self) -> dict[str, SampleStats]:
        """Per region; for a case measured in rounds the median is the median of the round medians."""
        return {region: summarize_rounds(self.samples_by_round(region))
                for region, samples in self.samples_ms.items() if samples}

    @property
    def primary_region(self) -> str:
        return self.case.primary_region

    def median_ms(self, region: str | None = None) -> float | None:
        stats = self.stats.get(region or self.primary_region)
        return stats.median_ms if stats else None

    @cached_property
    def derived(self) -> dict[str, dict[str, float]]:
        """Per region: sequences/s, tokens/s and achieved FLOP/s at the median time."""
        figures = {}
        for region, stats in self.stats.items():
            seconds = stats.median_ms / 1e3
            if seconds <= 0:
                continue
            figures[region] = {
                "sequences_per_s": self.case.batch / seconds,
                # real tokens: padding of a variable-length batch is not counted
                "tokens_per_s": self.case.real_tokens / seconds,
                "flops": region_flops(self.case, region),
                "achieved_tflops": region_flops(self.case, region) / seconds / 1e12,
            }
        return figures

    @property
    def noisy_regions(self) -> list[str]:
        return [region for region, stats in self.stats.items() if stats.noisy]

    @property
    def compile_facts(self) -> CompileFacts | None:
        """What Dynamo did, for a compiled backend; None for the others."""
        facts = self.backend.get("compile")
        return CompileFacts.from_mapping(facts) if facts else None

    @property
    def ran_eagerly(self) -> bool:
        """A compiled backend whose model Dynamo could not compile: what was timed is eager PyTorch."""
        return bool(self.compile_facts and self.compile_facts.fell_back_to_eager)

    @property
    def kernel_library(self) -> str | None:
        """The library whose kernels ran (cudnn and compile_module backends), as read from the dispatch."""
        return self.backend.get("kernel_library")

    def telemetry_window(self, region: str | None = None) -> Mapping | None:
        """The NVML window of ``region`` (default: the primary region), if telemetry took one."""
        windows = self.telemetry.get("windows")
        return windows.get(region or self.primary_region) if windows else None

    @property
    def telemetry_unavailable_reason(self) -> str | None:
        """Why NVML measured nothing, where it was asked to and could not."""
        nvml = self.telemetry.get("nvml")
        return nvml.get("reason") if nvml and nvml.get("available") is False else None

    @property
    def peak_memory_bytes(self) -> float | None:
        """The case's own peak memory: the CUDA allocator's peak on a GPU; on a CPU how far the process's
        resident memory rose above its size just before the case was built (harness.measure.telemetry.host). None
        on a CPU where the peak could not be reset, and in files from before that was recorded."""
        if "peak_allocated_bytes" in self.memory:
            return self.memory["peak_allocated_bytes"]
        growth = self.memory.get("case_peak_rss_growth_bytes")
        return growth if growth is not None else None

    @property
    def process_peak_rss_bytes(self) -> float | None:
        """On a CPU, the whole process's peak resident memory over the case (torch itself included)."""
        return self.memory.get("peak_rss_bytes")

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "case": self.case.to_dict(),
            "status": self.status,
            "reason": self.reason,
            "started_utc": self.started_utc,
            "duration_s": self.duration_s,
            "build_s": self.build_s,
            "backend": thaw(self.backend),
            "parity": thaw(self.parity),
            "first_iteration_ms": thaw(self.first_iteration_ms),
            "warmup_ms": thaw(self.warmup_ms),
            "samples_ms": thaw(self.samples_ms),
            "stats": {region: stats.to_dict() for region, stats in self.stats.items()},
            "derived": self.derived,
            "memory": thaw(self.memory),
            "telemetry": thaw(self.telemetry),
            "activity": thaw(self.activity),
            "warnings": list(self.warnings),
            **({"round_lengths": thaw(self.round_lengths)} if self.round_lengths else {}),
            **({"block_lengths": list(self.block_lengths)} if self.block_lengths else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "CaseResult":
        return cls(
            case=Case.from_dict(data["case"]),
            status=data["status"],
            reason=data.get("reason"),
            samples_ms={region: tuple(samples) for region, samples in (data.get("samples_ms") or {}).items()},
            warmup_ms={region: tuple(samples) for region, samples in (data.get("warmup_ms") or {}).items()},
            first_iteration_ms=data.get("first_iteration_ms") or {},
            parity=data.get("parity"),
            backend=data.get("backend") or {},
            memory=data.get("memory") or {},
            telemetry=data.get("telemetry") or {},
            build_s=data.get("build_s"),
            duration_s=data.get("duration_s"),
            started_utc=data.get("started_utc"),
            warnings=tuple(data.get("warnings") or ()),
            activity=data.get("activity") or {},
            round_lengths={region: tuple(lengths) for region, lengths in (data.get("round_lengths") or {}).items()},
            block_lengths=tuple(data.get("block_lengths") or ()),
        )


@dataclass(frozen=True)
class RunResults:
    environment: Environment  # a plain mapping is taken too
    suite: Mapping
    cases: tuple[CaseResult, ...]
    status: str = "complete"
    started_utc: str | None = None
    finished_utc: str | None = None
    # how the run was asked for: device, --backend and --filter selections (what --resume repeats)
    options: Mapping = field(default_factory=dict)
    source: str | None = None  # the file it was read from

    def __post_init__(self):
        object.__setattr__(self, "environment", Environment(self.environment))
        object.__setattr__(self, "suite", freeze(self.suite))
        options = self.options.to_dict() if hasattr(self.options, "to_dict") else self.options  # a RunOptions
        object.__setattr__(self, "options", freeze(options))
        object.__setattr__(self, "cases", tuple(self.cases))

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for c in self.cases if c.status == status) for status in STATUSES}

    @cached_property
    def run_options(self) -> "RunOptions":
        """``options`` as the typed record (:class:`harness.record.run_options.RunOptions`): what readers ask."""
        from harness.record.run_options import RunOptions

        return RunOptions.from_dict(self.options)

    @cached_property
    def by_configuration(self) -> Mapping[tuple[str, str], tuple[CaseResult, ...]]:
        """The results of each configuration, by (mode, model key): its backends side by side, in file order.
        An index, so that finding a case's cudnn counterpart is a lookup, not a scan of every case."""
        groups: dict[tuple[str, str], list[CaseResult]] = {}
        for result in self.cases:
            groups.setdefault((result.case.mode, result.case.model_key), []).append(result)
        return MappingProxyType({key: tuple(results) for key, results in groups.items()})

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "status": self.status,
            "started_utc": self.started_utc,
            "finished_utc": self.finished_utc,
            "counts": self.counts(),
            "options": thaw(self.options),
            "environment": thaw(self.environment),
            "suite": thaw(self.suite),
            "cases": [case.to_dict() for case in self.cases],
        }


@dataclass(frozen=True)
class CompileFacts:
    fell_back_to_eager: bool
    graphs: int | None
    graph_breaks: int
    break_reasons: tuple[str, ...]

    @classmethod
    def from_mapping(cls, facts: Mapping) -> "CompileFacts":
        return cls(fell_back_to_eager=bool(facts.get("fell_back_to_eager")), graphs=facts.get("graphs"),
                   graph_breaks=facts.get("graph_breaks", 0), break_reasons=tuple(facts.get("break_reasons", ())))


def _fact(*path: str) -> property:
    """A fact of the environment at ``path``; None where the file does not record it."""
    return property(lambda self: self._at(*path))


def _section(name: str) -> property:
    """A part of the environment (e.g. torch's versions); empty where the file does not record it."""
    return property(lambda self: self._at(name) or {})


class Environment(Mapping):
    """The environment a run recorded (``harness.measure.env.collect_environment``): read-only, as written, with
    typed properties for the facts the reading side asks. A fact the file does not record is None."""

    def __init__(self, facts: Mapping | None = None):
        self._facts = freeze(dict(facts or {}))

    def __getitem__(self, key: str) -> Any:
        return self._facts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)

    def __repr__(self) -> str:
        return f"Environment({dict(self._facts)!r})"

    def _at(self, *path: str) -> Any:
        value: Any = self._facts
        for name in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(name)
        return value

    device = _fact("device")  # "cuda:0", "cpu"
    gpu_name = _fact("gpu", "name")
    cpu_model = _fact("machine", "cpu", "brand_raw")
    host = _fact("machine", "node")
    python_version = _fact("machine", "python_version")
    torch_version = _fact("torch", "version")
    cuda_version = _fact("torch", "cuda")
    cudnn_version = _fact("torch", "cudnn")
    onednn_version = _fact("torch", "onednn")
    intra_op_threads = _fact("threads", "intra_op")
    rnnbench_version = _fact("rnnbench_version")
    gpu = _fact("gpu")  # None on a CPU run
    machine, torch, threads, commit = _section("machine"), _section("torch"), _section("threads"), _section("commit")
    math_precision, env_vars = _section("math_precision"), _section("env_vars")
    # where the process's code came from (harness.measure.env.code_info); files before it: None
    harness_path = _fact("code", "harness", "path")
    torch_path = _fact("code", "torch", "path")
    python_executable = _fact("code", "python")

    @property
    def device_type(self) -> str | None:
        return str(self.device).split(":")[0] if self.device else None

    @property
    def gpu_driver(self) -> str | None:
        driver = self._at("gpu", "driver")
        return driver if driver is not None else self._at("gpu", "driver_version")  # older files

    @property
    def machine_states(self) -> tuple[tuple[str, "MachineState"], ...]:
        """Who else used the machine as the measuring processes started (``harness.record.machine_state``), labelled
        for a header: each round's worker where the run had rounds (an A/B side's file: that side's), else the
        run's one process. Empty in files older than the record."""
        from harness.record.machine_state import MachineState

        rounds = self._at("machine_state_rounds")
        if rounds:
            return tuple((f"round {index + 1}", MachineState.from_dict(state)) for index, state in enumerate(rounds)
                         if state is not None)
        state = self._at("machine_state")
        return (("the run", MachineState.from_dict(state)),) if state is not None else ()

    @property
    def machine_busy_line(self) -> str | None:
        """'machine BUSY at the start of ...: reasons' where any measuring process started on a busy machine."""
        from harness.record.machine_state import busy_line

        return busy_line(self.machine_states)

    @property
    def hardware_name(self) -> str | None:
        """What the run ran on: the GPU's model, else the CPU's."""
        return self.gpu_name or self.cpu_model
