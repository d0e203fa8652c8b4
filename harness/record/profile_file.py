"""Profile files: what ``rnnbench profile`` writes and ``rnnbench report`` reads. One JSON document in the
family of results files (``schema``, ``schema_version``, ``environment``, ``suite``, ``cases`` keyed by the
case key), with a schema of its own, since a profile holds no timed samples::

    {"schema": "rnnbench.profile", "schema_version": 1, "status": "complete" | "interrupted",
     "started_utc": ..., "finished_utc": ..., "options": {"device", "backends", "filters", "steps", "nvtx",
     "trace"}, "environment": {...}, "suite": {...},
     "cases": [{"key", "case", "status", "reason", "backend", "parity", "unprofiled_step_samples_ms",
                "profile": {... harness.measure.step_profile.analyze_steps ...}, "cudnn_algorithm", "profiler_teardown",
                "trace_file",
                "warnings", "duration_s"}]}

docs/results-format.md#profile-file documents every field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.spec import limits
from harness.spec.cases import Case
from harness.errors import ResultsFileError
from harness.record.results import STATUSES, Environment, RunResults, freeze

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
    """A profile file (or a profile's journal), read and checked by ``ResultsStore.load``."""
    from harness.record.results_store import STORE

    loaded = STORE.load(path)
    if not isinstance(loaded, ProfileRun):
        raise ResultsFileError(f"{path}: not an rnnbench profile file (no \"schema\": \"{PROFILE_SCHEMA}\")")
    return loaded


def read_results_and_profiles(paths: Sequence[str | Path]) -> tuple[list[RunResults], list[ProfileRun]]:
    """Results files (a run's journal where one is there, ``ResultsStore.load_latest``) and profile files, told
    apart by their schema, each in the order given."""
    from harness.record.results_store import STORE

    runs, profiles = [], []
    for path in paths:
        loaded = STORE.load_latest(path)
        (profiles if isinstance(loaded, ProfileRun) else runs).append(loaded)
    return runs, profiles


# ----------------------------------------------------------------------------------------- writing

class ProfileWriter:
    """Keeps every profiled case on disk as it finishes, then writes the profile file atomically, as
    ``harness.record.journal.ResultsWriter`` does for a run.

    Opening it checks the output before any case is profiled: the folder is created (or refused: a file
    where the folder should be, no permission), and ``<profile>.journal`` is created there, so a path that
    cannot be written fails at once, not after the last case. Each record is a line of the journal (JSON
    Lines, flushed to disk); ``finish`` writes the profile file and removes the journal. If the profile
    file cannot be written (a full disk), the document goes to a rescue file in the temporary folder, and
    the error names it; if that fails too, the journal keeps what it could and the error names it.
    ``rnnbench report`` reads a profile journal as an interrupted profile.
    """

    def __init__(self, path: str | Path, environment: Mapping, suite: Mapping, options: Mapping, started_utc: str):
        from harness.record.journal import journal_path_for
        from harness.record.results_io import create_new_file

        self.path = Path(path)
        self.journal_path = journal_path_for(self.path)
        self.header = {"environment": dict(environment), "suite": dict(suite), "options": dict(options),
                       "started_utc": started_utc}
        self.records: list[dict] = []
        self.journal_error: str | None = None
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise ResultsFileError(f"{folder}: is a file; -o names the folder for the profile file")
        for existing in (self.path, self.journal_path):
            if existing.exists():
                raise ResultsFileError(f"{existing}: exists; wait a second or name another -o folder")
        self._journal = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._journal = open(create_new_file(self.journal_path), "w", encoding="utf-8")
            self._write_line({"schema": PROFILE_SCHEMA, "schema_version": PROFILE_SCHEMA_VERSION, "journal": True,
                              **self.header})
        except OSError as exc:
            if self._journal is not None:  # created, but not even its first line fits (a full disk)
                try:
                    self._journal.close()
                except OSError:
                    pass
                self.journal_path.unlink(missing_ok=True)
            where = Path(exc.filename) if exc.filename else self.journal_path
            raise ResultsFileError(f"{where}: cannot write the profile there: {exc.strerror or exc}") from None

    def _write_line(self, document: dict) -> None:
        from harness.record.results_io import finite_document, json_default

        self._journal.write(json.dumps(finite_document(document), allow_nan=False, default=json_default) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def append(self, record: dict) -> None:
        """Keep one profiled case; a journal that cannot be written (a full disk) raises ResultsFileError
        naming it, and the records stay in memory for ``finish``."""
        self.records.append(record)
        try:
            self._write_line({"case": record})
        except OSError as exc:
            self.journal_error = f"{self.journal_path}: {exc.strerror or exc}"
            raise ResultsFileError(f"cannot write the journal {self.journal_error}") from None

    def discard(self) -> None:
        """Close and remove the journal of a profile that is given up before any case ran."""
        self._journal.close()
        self.journal_path.unlink(missing_ok=True)

    def document(self, status: str, finished_utc: str) -> dict:
        from harness.record.results_io import finite_document

        header = self.header
        return finite_document(profile_document(header["environment"], header["suite"], header["options"],
                                                self.records, status, header["started_utc"], finished_utc))

    def finish(self, status: str, finished_utc: str) -> dict:
        """Write the profile file (atomically) and remove the journal; returns the document written."""
        from harness.record.results_io import unwritten_error, write_json_atomically, write_or_rescue

        document = self.document(status, finished_utc)
        try:
            self._journal.close()
        except OSError:
            pass
        failed = write_or_rescue(self.path, lambda path: write_json_atomically(path, document))
        if failed is not None:
            if failed[1] is not None:
                self.journal_path.unlink(missing_ok=True)
            count = len(self.records)
            raise unwritten_error(self.path, *failed, self.journal_path,
                                  kept=f"the {count} profiled case{'s are' if count != 1 else ' is'}",
                                  journal_note=" (rnnbench report reads it)")
        self.journal_path.unlink(missing_ok=True)
        return document


def profile_journal_document(path: Path, text: str) -> dict | None:
    """The profile document a profile journal stands for (status interrupted), None when ``text`` is no
    profile journal. A last line cut off mid-write is ignored: every line before it is a finished case."""
    try:
        header = json.loads(text.split("\n", 1)[0])
    except (ValueError, RecursionError):
        return None
    if not (isinstance(header, dict) and header.get("journal") is True and header.get("schema") == PROFILE_SCHEMA):
        return None
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            entry = json.loads(line)
        except RecursionError:
            raise ResultsFileError(f"{path}:{number}: nested deeper than {limits.MAX_NESTING} levels") from None
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ResultsFileError(f"{path}:{number}: journal line is not valid JSON") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("case"), dict):
            raise ResultsFileError(f"{path}:{number}: not a profiled case")
        records.append(entry["case"])
    return {**profile_document(header.get("environment") or {}, header.get("suite") or {}, header.get("options") or {},
                               records, "interrupted", header.get("started_utc"), None),
            "schema_version": header.get("schema_version")}
