"""Case results (immutable records that derive their statistics from the kept samples) and the
versioned results file that the reporter and the comparator read.

A results file is one JSON document::

    {"schema": "rnnbench.results", "schema_version": 1, "status": "complete" | "interrupted",
     "started_utc": ..., "finished_utc": ..., "environment": {...}, "suite": {...}, "cases": [...]}

Statistics and derived figures are written for people and other tools; on reading, they are derived
again from the samples, which are the only source of truth.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from harness.cases import Case
from harness.errors import ResultsFileError
from harness.flops import region_flops
from harness.stats import SampleStats, summarize
from harness.timing import REGIONS_BY_MODE

SCHEMA = "rnnbench.results"
SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "skipped")


def freeze(value: Any) -> Any:
    """Read-only copies of nested dicts and lists, so a record cannot be changed after it is made."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


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
    # where a step's time goes, from a short profiled pass after the timed loop (harness.activity)
    activity: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        for name in ("samples_ms", "warmup_ms", "first_iteration_ms", "parity", "backend", "memory", "telemetry",
                     "activity"):
            object.__setattr__(self, name, freeze(getattr(self, name)))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    @property
    def key(self) -> str:
        return self.case.key

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @cached_property
    def stats(self) -> dict[str, SampleStats]:
        return {region: summarize(samples) for region, samples in self.samples_ms.items() if samples}

    @property
    def primary_region(self) -> str:
        """The region that stands for the whole case: the step when there is one, else the forward."""
        return REGIONS_BY_MODE[self.case.mode][-1]

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
                "tokens_per_s": self.case.batch * self.case.seq_len / seconds,
                "flops": region_flops(self.case, region),
                "achieved_tflops": region_flops(self.case, region) / seconds / 1e12,
            }
        return figures

    @property
    def noisy_regions(self) -> list[str]:
        return [region for region, stats in self.stats.items() if stats.noisy]

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
        )


@dataclass(frozen=True)
class RunResults:
    environment: Mapping
    suite: Mapping
    cases: tuple[CaseResult, ...]
    status: str = "complete"
    started_utc: str | None = None
    finished_utc: str | None = None
    # how the run was asked for: device, --backend and --filter selections (what --resume repeats)
    options: Mapping = field(default_factory=dict)
    source: str | None = None  # the file it was read from

    def __post_init__(self):
        object.__setattr__(self, "environment", freeze(self.environment))
        object.__setattr__(self, "suite", freeze(self.suite))
        object.__setattr__(self, "options", freeze(self.options))
        object.__setattr__(self, "cases", tuple(self.cases))

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for c in self.cases if c.status == status) for status in STATUSES}

    def cudnn_counterpart(self, result: CaseResult) -> CaseResult | None:
        """The ok cudnn result of the same model and mode, which other backends are measured against."""
        for other in self.cases:
            if (other.ok and other.case.backend == "cudnn" and other.case.mode == result.case.mode
                    and other.case.model_key == result.case.model_key):
                return other
        return None

    def speedup_over_cudnn(self, result: CaseResult) -> float | None:
        """cudnn's median over this backend's median, in the case's primary region (> 1: faster)."""
        baseline = self.cudnn_counterpart(result)
        mine, theirs = result.median_ms(), baseline.median_ms() if baseline else None
        if not mine or not theirs:
            return None
        return theirs / mine

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


def write_json_atomically(path: str | Path, document: dict) -> Path:
    """Write to a temporary file in the same folder, flush it to disk, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=1, allow_nan=False, default=_json_default)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _json_default(value):
    if isinstance(value, MappingProxyType):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_results(path: str | Path, run: RunResults) -> Path:
    return write_json_atomically(path, finite_document(run.to_dict()))


def finite_document(value):
    """JSON has no NaN or infinity: such a figure is written as null (absent), never as a fake number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_document(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_document(item) for item in value]
    return value


def read_results(path: str | Path) -> RunResults:
    """Raises ResultsFileError, with one line saying what is wrong, for anything but a valid results file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: no such results file") from None
    except IsADirectoryError:
        raise ResultsFileError(f"{path}: is a folder, not a results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{path}: cannot read: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsFileError(f"{path}: not valid JSON (truncated?): {exc.msg} at line {exc.lineno}") from None
    return results_from_document(document, str(path))


def results_from_document(document: Any, source: str) -> RunResults:
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ResultsFileError(f"{source}: not an rnnbench results file (no \"schema\": \"{SCHEMA}\")")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsFileError(f"{source}: results schema version {version!r}; this rnnbench reads "
                               f"version {SCHEMA_VERSION}")
    try:
        cases = tuple(CaseResult.from_dict(case) for case in document["cases"])
        return RunResults(environment=document["environment"], suite=document["suite"], cases=cases,
                          status=document.get("status", "complete"), started_utc=document.get("started_utc"),
                          finished_utc=document.get("finished_utc"), options=document.get("options") or {},
                          source=source)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultsFileError(f"{source}: malformed results file: {type(exc).__name__}: {exc}") from None


JOURNAL_SUFFIX = ".journal"


def journal_path_for(results_path: str | Path) -> Path:
    results_path = Path(results_path)
    return results_path.with_name(results_path.name + JOURNAL_SUFFIX)


class ResultsWriter:
    """Keeps every finished case on disk at once, then writes the results file atomically.

    Each case is appended to ``<results>.journal`` (JSON Lines) and flushed to disk as it finishes, so a
    crash or a kill loses at most the case that was running; ``finish`` writes the results file by
    temporary file and rename and removes the journal.
    """

    def __init__(self, path: str | Path, environment: Mapping, suite: Mapping, started_utc: str,
                 previous_cases: tuple[CaseResult, ...] = (), options: Mapping | None = None):
        self.path = Path(path)
        self.journal_path = journal_path_for(self.path)
        self.environment = environment
        self.suite = suite
        self.options = options or {}
        self.started_utc = started_utc
        self.cases: list[CaseResult] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write the new journal beside the old one and swap it in only when complete, so that a journal
        # being resumed is never lost to a crash while it is copied.
        fresh_path = self.journal_path.with_name(self.journal_path.name + ".new")
        self._journal = open(fresh_path, "w", encoding="utf-8")
        self._write_line({"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "journal": True,
                          "started_utc": started_utc, "options": thaw(self.options),
                          "environment": thaw(environment), "suite": thaw(suite)})
        for case in previous_cases:
            self.append(case)
        os.replace(fresh_path, self.journal_path)

    def _write_line(self, document: dict) -> None:
        self._journal.write(json.dumps(finite_document(document), allow_nan=False, default=_json_default) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def append(self, result: CaseResult) -> None:
        self.cases.append(result)
        self._write_line({"case_result": result.to_dict()})

    def finish(self, status: str, finished_utc: str) -> RunResults:
        run = RunResults(environment=self.environment, suite=self.suite, cases=tuple(self.cases),
                         status=status, started_utc=self.started_utc, finished_utc=finished_utc,
                         options=self.options, source=str(self.path))
        write_results(self.path, run)
        self._journal.close()
        self.journal_path.unlink(missing_ok=True)
        return run


def read_results_or_journal(path: str | Path) -> RunResults:
    """What a run left behind: its journal when one is there (the run did not finish), else its results."""
    path = Path(path)
    if path.name.endswith(JOURNAL_SUFFIX):
        return read_journal(path)
    journal = journal_path_for(path)
    if journal.exists():
        return read_journal(journal)
    return read_results(path)


def read_journal(path: str | Path) -> RunResults:
    """A journal left by a run that was killed before it could write its results file.

    A last line cut off mid-write is ignored: every line before it is a finished case.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read journal: {exc}") from None
    documents = []
    for number, line in enumerate(lines, start=1):
        try:
            documents.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ResultsFileError(f"{path}:{number}: journal line is not valid JSON") from None
    if not documents or not isinstance(documents[0], dict) or not documents[0].get("journal"):
        raise ResultsFileError(f"{path}: not an rnnbench journal")
    header = documents[0]
    document = {"schema": header.get("schema"), "schema_version": header.get("schema_version"),
                "status": "interrupted", "started_utc": header.get("started_utc"),
                "options": header.get("options"), "environment": header.get("environment"), "suite": header.get("suite"),
                "cases": [d["case_result"] for d in documents[1:] if isinstance(d, dict) and "case_result" in d]}
    return results_from_document(document, str(path))
