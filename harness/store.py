"""The results store: where results files, journals, baselines and reports live, how they are written
(atomically; a journal line per finished case) and how they are read back into typed records.

Every file name the project decides is decided here:

    results/<suite>-<device>-<time>.json     a run's results file (``--out`` a folder or a .json file)
    <results>.journal                        the finished cases of a run still going (or killed)
    results/baselines/<gpu-model>.json       the CI baseline of a GPU model (cpu-<cpu-model>.json on a CPU)
    reports/                                 ``rnnbench plot`` and ``report``: charts, report.html, summary.md
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from harness.errors import ResultsFileError
from harness.results import SCHEMA, SCHEMA_VERSION, CaseResult, Environment, RunResults, thaw

RESULTS_DIR = Path("results")
BASELINES_DIR = RESULTS_DIR / "baselines"
REPORTS_DIR = Path("reports")
REPORT_PAGE = "report.html"
REPORT_SUMMARY = "summary.md"
JOURNAL_SUFFIX = ".journal"


# --------------------------------------------------------------------------------------------- paths

def slug(text: str, empty: str = "unknown") -> str:
    """A file-name-safe, lower-case form of ``text``: every run of other characters becomes one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or empty


def new_results_path(out: str | Path | None, suite_name: str, device_type: str, now: datetime | None = None) -> Path:
    """Where a new run writes: ``out`` when it is a .json file, else ``<suite>-<device>-<time>.json`` in
    ``out`` (default: results/)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    default_name = f"{suite_name}-{device_type}-{stamp}.json"
    if out is None:
        return RESULTS_DIR / default_name
    path = Path(out)
    return path if path.suffix == ".json" else path / default_name


def journal_path_for(results_path: str | Path) -> Path:
    results_path = Path(results_path)
    return results_path.with_name(results_path.name + JOURNAL_SUFFIX)


def results_path_of(path: str | Path) -> Path:
    """The results file that ``path`` (a results file or its journal) belongs to."""
    path = Path(path)
    return path.with_name(path.name[: -len(JOURNAL_SUFFIX)]) if path.name.endswith(JOURNAL_SUFFIX) else path


def baseline_key(environment: Mapping) -> str:
    """The file name (without .json) of a machine's baseline: its GPU model ("nvidia-h100-80gb-hbm3"), or
    "cpu-" and its CPU model for a CPU run."""
    environment = Environment(environment)
    if environment.gpu_name:
        return slug(environment.gpu_name)
    return "cpu-" + slug(str(environment.cpu_model or "unknown"))


def baseline_path(environment: Mapping, directory: str | Path = BASELINES_DIR) -> Path:
    return Path(directory) / f"{baseline_key(environment)}.json"


def file_labels(runs: Sequence[RunResults]) -> list[str]:
    """A short, unique name per results file: its file name without .json (numbered when two agree)."""
    labels = []
    for index, run in enumerate(runs, start=1):
        stem = results_path_of(run.source).name.removesuffix(".json") if run.source else "results"
        label = stem if stem not in labels else f"{stem}-{index}"
        labels.append(label)
    return labels


# ----------------------------------------------------------------------------------------- writing

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


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_files(out_dir: str | Path, files: Mapping[str, bytes | str]) -> list[Path]:
    """Each named file (bytes, or text as UTF-8) into ``out_dir``, created if missing; the paths, in order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in files.items():
        path = out / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------------- reading

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


def read_runs(paths: Sequence[str | Path]) -> list[RunResults]:
    """Results files, or the journal of a run that was killed where one is named."""
    return [read_journal(path) if str(path).endswith(JOURNAL_SUFFIX) else read_results(path) for path in paths]


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
