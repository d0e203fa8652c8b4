"""Profile files: what ``rnnbench profile`` writes and ``rnnbench report`` reads. One JSON document in the
family of results files (``schema``, ``schema_version``, ``environment``, ``suite``, ``cases`` keyed by the
case key), with a schema of its own, since a profile holds no timed samples::

    {"schema": "rnnbench.profile", "schema_version": 1, "status": "complete" | "interrupted",
     "started_utc": ..., "finished_utc": ..., "options": {"device", "backends", "filters", "steps", "nvtx",
     "trace"}, "environment": {...}, "suite": {...},
     "cases": [{"key", "case", "status", "reason", "backend", "parity", "unprofiled_step_samples_ms",
                "profile": {... harness.step_profile.analyze_steps ...}, "cudnn_algorithm", "profiler_teardown",
                "trace_file",
                "warnings", "duration_s"}]}

The README's "Profile file" section documents every field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness import limits
from harness.cases import Case
from harness.errors import ResultsFileError
from harness.results import STATUSES, Environment, RunResults, freeze

PROFILE_SCHEMA = "rnnbench.profile"
PROFILE_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ProfiledCase:
    case: Case
    status: str
    reason: str | None = None
    profile: Mapping = field(default_factory=dict)
    cudnn_algorithm: Mapping = field(default_factory=dict)
    backend: Mapping = field(default_factory=dict)
    trace_file: str | None = None

    def __post_init__(self):
        for name in ("profile", "cudnn_algorithm", "backend"):
            object.__setattr__(self, name, freeze(getattr(self, name)))

    @property
    def key(self) -> str:
        return self.case.key

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.profile.get("available"))


@dataclass(frozen=True)
class ProfileRun:
    environment: Environment
    suite: Mapping
    cases: tuple[ProfiledCase, ...]
    options: Mapping = field(default_factory=dict)
    status: str = "complete"
    source: str | None = None


def profile_document(environment: Mapping, suite: Mapping, options: Mapping, cases: Sequence[dict], status: str,
                     started_utc: str, finished_utc: str) -> dict:
    return {"schema": PROFILE_SCHEMA, "schema_version": PROFILE_SCHEMA_VERSION, "status": status,
            "started_utc": started_utc, "finished_utc": finished_utc, "options": dict(options),
            "environment": dict(environment), "suite": dict(suite), "cases": list(cases)}


def is_profile_document(document: Any) -> bool:
    return isinstance(document, dict) and document.get("schema") == PROFILE_SCHEMA


def profile_from_document(document: Any, source: str) -> ProfileRun:
    if not is_profile_document(document):
        raise ResultsFileError(f"{source}: not an rnnbench profile file (no \"schema\": \"{PROFILE_SCHEMA}\")")
    if document.get("schema_version") != PROFILE_SCHEMA_VERSION:
        raise ResultsFileError(f"{source}: profile schema version {document.get('schema_version')!r}; this "
                               f"rnnbench reads version {PROFILE_SCHEMA_VERSION}")
    cases_data = document.get("cases")
    if not isinstance(cases_data, list):
        raise ResultsFileError(f"{source}: 'cases' must be a list")
    cases, seen = [], set()
    for index, data in enumerate(cases_data):
        where = f"{source}: cases[{index}]"
        if not isinstance(data, dict) or not isinstance(data.get("case"), dict):
            raise ResultsFileError(f"{where}: must be a mapping with a 'case' mapping")
        if data.get("status") not in STATUSES:
            raise ResultsFileError(f"{where}: status {data.get('status')!r}; one of {', '.join(STATUSES)}")
        for name in ("profile", "cudnn_algorithm", "backend"):
            if data.get(name) is not None and not isinstance(data[name], dict):
                raise ResultsFileError(f"{where}: '{name}' must be a mapping")
        try:
            case = Case.from_dict(data["case"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsFileError(f"{where}: unreadable case ({exc})") from None
        if case.key in seen:
            raise ResultsFileError(f"{where}: case {case.key} appears twice")
        seen.add(case.key)
        _check_profile(data.get("profile") or {}, where)
        cases.append(ProfiledCase(case=case, status=data["status"], reason=data.get("reason"),
                                  profile=data.get("profile") or {}, cudnn_algorithm=data.get("cudnn_algorithm") or {},
                                  backend=data.get("backend") or {}, trace_file=data.get("trace_file")))
    return ProfileRun(environment=Environment(document.get("environment") or {}), suite=freeze(document.get("suite") or {}),
                      cases=tuple(cases), options=freeze(document.get("options") or {}),
                      status=document.get("status", "complete"), source=source)


def _check_profile(profile: Mapping, where: str) -> None:
    """The figures a chart or table reads: finite, non-negative numbers where present."""
    if not profile.get("available"):
        return
    for name in ("step_ms", "busy_ms", "idle_ms"):
        if not _non_negative(profile.get(name)):
            raise ResultsFileError(f"{where}: profile.{name} must be a non-negative number")
    classes = profile.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, dict) and isinstance(c.get("class"), str)
                                                and _non_negative(c.get("ms_per_step")) for c in classes):
        raise ResultsFileError(f"{where}: profile.classes must be a list of {{class, ms_per_step}}")


def _non_negative(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < float("inf")


def read_profile(path: str | Path) -> ProfileRun:
    path = Path(path)
    return profile_from_document(_load(path), str(path))


def read_results_and_profiles(paths: Sequence[str | Path]) -> tuple[list[RunResults], list[ProfileRun]]:
    """Results files (and journals) and profile files, told apart by their schema, each in the order given."""
    from harness.store import read_results_or_journal

    runs, profiles = [], []
    for path in paths:
        document = _load(Path(path), quiet=True)
        if is_profile_document(document):
            profiles.append(profile_from_document(document, str(path)))
        else:
            runs.append(read_results_or_journal(path))
    return runs, profiles


def _load(path: Path, quiet: bool = False) -> Any:
    """The JSON document at ``path``; with ``quiet``, None for text that is not one JSON document (a journal)."""
    from harness.store import _read_text

    text = _read_text(path, "profile file")
    try:
        return json.loads(text)
    except RecursionError:
        raise ResultsFileError(f"{path}: nested deeper than {limits.MAX_NESTING} levels") from None
    except json.JSONDecodeError as exc:
        if quiet:
            return None
        raise ResultsFileError(f"{path}: not valid JSON (truncated?): {exc.msg} at line {exc.lineno}") from None
