"""The results store: the folders rnnbench keeps its files in, the name of every file it writes, and the one
way to read any of them back (:meth:`ResultsStore.load`).

Every file name the project decides is decided here (and a journal's beside its results, :mod:`harness.record.journal`):

    results/<suite>-<device>-<time>.json     a run's results file (``--out`` a folder or a .json file)
    <results>.journal                        the finished cases of a run still going (or killed)
    results/baselines/<gpu-model>.json       the CI baseline of a GPU model (cpu-<cpu-model>.json on a CPU)
    reports/                                 ``rnnbench plot`` and ``report``: charts, report.html, summary.md
    profiles/<suite>-<device>-<time>.profile.json   ``rnnbench profile`` (``-o`` a folder)
    <profile>.traces/<case>.pt.trace.json    its Chrome/Perfetto traces (``--trace``)
    results/history.sqlite                   ``rnnbench history``: the runs kept over time (charts: reports/history/)

The folders are relative to the store's ``root`` (the working directory for :data:`STORE`, the one the CLI
uses). How files are written is :mod:`harness.record.results_io`'s; what a results document must hold,
:mod:`harness.record.results_schema`'s; the journal and the lock of a run being written, :mod:`harness.record.journal`'s.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from harness.spec import limits
from harness.errors import ResultsFileError
from harness.record.journal import (JOURNAL_SUFFIX, how_to_finish, journal_from_text, journal_path_for, looks_like_journal,
                             read_journal, results_path_of)
from harness.record.results import Environment, RunResults
from harness.record.results_io import read_text, unreadable_json
from harness.record.results_schema import results_from_document

if TYPE_CHECKING:
    from harness.record.profile_file import ProfileRun

PROFILE_SUFFIX = ".profile.json"


@dataclass(frozen=True)
class ResultsStore:
    """rnnbench's folders under ``root`` and the names of the files in them; ``load`` reads any of them back."""

    root: Path = Path(".")
    report_page: ClassVar[str] = "report.html"
    report_summary: ClassVar[str] = "summary.md"
    profile_suffix: ClassVar[str] = PROFILE_SUFFIX
    journal_suffix: ClassVar[str] = JOURNAL_SUFFIX

    # ------------------------------------------------------------------------------------- folders
    @property
    def results_dir(self) -> Path:
        return Path(self.root) / "results"

    @property
    def baselines_dir(self) -> Path:
        return self.results_dir / "baselines"

    @property
    def reports_dir(self) -> Path:
        return Path(self.root) / "reports"

    @property
    def profiles_dir(self) -> Path:
        return Path(self.root) / "profiles"

    @property
    def history_path(self) -> Path:
        return self.results_dir / "history.sqlite"

    @property
    def history_charts_dir(self) -> Path:
        return self.reports_dir / "history"

    # --------------------------------------------------------------------------------------- names
    def new_results_path(self, out: str | Path | None, suite_name: str, device_type: str,
                         now: datetime | None = None) -> Path:
        """Where a new run writes: ``out`` when it is a .json file, else ``<suite>-<device>-<time>.json`` in
        ``out`` (default: the results folder)."""
        default_name = f"{_file_stem(suite_name, device_type, now)}.json"
        if out is None:
            return self.results_dir / default_name
        path = Path(out)
        return path if path.suffix.lower() == ".json" else path / default_name

    def new_profile_path(self, out_dir: str | Path | None, suite_name: str, device_type: str,
                         now: datetime | None = None) -> Path:
        """Where ``rnnbench profile`` writes: ``<suite>-<device>-<time>.profile.json`` in ``out_dir`` (default:
        the profiles folder)."""
        return Path(out_dir or self.profiles_dir) / f"{_file_stem(suite_name, device_type, now)}{PROFILE_SUFFIX}"

    @staticmethod
    def trace_path(profile_path: str | Path, case_key: str) -> Path:
        return trace_path_for(profile_path, case_key)

    @staticmethod
    def journal_path(results_path: str | Path) -> Path:
        """``<results>.journal``: the finished cases of a run writing ``results_path`` (or a profile)."""
        return journal_path_for(results_path)

    @staticmethod
    def results_path_of(path: str | Path) -> Path:
        return results_path_of(path)

    def baseline_path(self, environment: Mapping, directory: str | Path | None = None) -> Path:
        """The CI baseline of the machine ``environment`` describes: ``<baselines>/<baseline_key>.json``."""
        return Path(directory or self.baselines_dir) / f"{baseline_key(environment)}.json"

    # ------------------------------------------------------------------------------------- reading
    def load(self, path: str | Path) -> RunResults | ProfileRun:
        """Any file rnnbench writes and reads back, told apart by what it holds, read and checked: a results
        file or a run's journal (a :class:`RunResults`; a journal's is the interrupted run), a profile file or a
        profile's journal (a :class:`harness.record.profile_file.ProfileRun`). Raises ResultsFileError, one line saying
        what is wrong, for anything else."""
        from harness.record.profile_file import is_profile_document, profile_from_document, profile_journal_document

        path = Path(path)
        is_journal = path.name.endswith(JOURNAL_SUFFIX)
        text = read_text(path, "journal") if is_journal else _results_text(path)
        profile = profile_journal_document(path, text)  # a profile that was killed, or could not be written
        if profile is not None:
            return profile_from_document(profile, str(path))
        if is_journal:
            return journal_from_text(path, text)
        document = _json_document(path, text)
        if document is _A_JOURNAL:
            return journal_from_text(path, text)
        if is_profile_document(document):
            return profile_from_document(document, str(path))
        return results_from_document(document, str(path))

    def load_latest(self, path: str | Path) -> RunResults | ProfileRun:
        """What a run or a profile left behind at ``path``: its journal when one is there beside it (it did not
        finish), else ``load(path)``."""
        path = Path(path)
        journal = journal_path_for(path)
        return self.load(journal if not path.name.endswith(JOURNAL_SUFFIX) and journal.exists() else path)


STORE = ResultsStore()


def _file_stem(suite_name: str, device_type: str, now: datetime | None) -> str:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    # slug: a suite's name is input, and must not steer the file elsewhere ('../x', '/etc/x')
    return f"{slug(suite_name)[:80]}-{slug(device_type)}-{stamp}"


def slug(text: str, empty: str = "unknown") -> str:
    """A file-name-safe, lower-case form of ``text``: every run of other characters becomes one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or empty


def trace_path_for(profile_path: str | Path, case_key: str) -> Path:
    """The Chrome trace of one case of a profile: ``<profile>.traces/<case key as a slug>.pt.trace.json``."""
    profile_path = Path(profile_path)
    folder = profile_path.with_name(profile_path.name.removesuffix(PROFILE_SUFFIX) + ".traces")
    return folder / f"{slug(case_key)}.pt.trace.json"


def baseline_key(environment: Mapping) -> str:
    """The file name (without .json) of a machine's baseline: its GPU model ("nvidia-h100-80gb-hbm3"), or
    "cpu-" and its CPU model for a CPU run."""
    environment = Environment(environment)
    if environment.gpu_name:
        return slug(environment.gpu_name)
    return "cpu-" + slug(str(environment.cpu_model or "unknown"))


def file_labels(runs: Sequence[RunResults]) -> list[str]:
    """A short, unique name per results file: its file name without .json (numbered when two agree)."""
    labels = []
    for index, run in enumerate(runs, start=1):
        stem = results_path_of(run.source).name.removesuffix(".json") if run.source else "results"
        label = stem if stem not in labels else f"{stem}-{index}"
        labels.append(label)
    return labels


# ----------------------------------------------------------------------------------------- reading

def read_results(path: str | Path) -> RunResults:
    """Raises ResultsFileError, with one line saying what is wrong, for anything but a valid results file.

    A journal (an interrupted run's JSON Lines) is read as such whatever its name."""
    path = Path(path)
    text = _results_text(path)
    document = _json_document(path, text)
    if document is _A_JOURNAL:
        return journal_from_text(path, text)
    return results_from_document(document, str(path))


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


_A_JOURNAL = object()  # what _json_document returns for JSON Lines that start as a journal


def _results_text(path: Path) -> str:
    journal = journal_path_for(path)
    if not path.exists() and journal.is_file():
        raise ResultsFileError(f"{path}: no results file yet, but its journal {journal} is there: the run did not "
                               f"finish. {how_to_finish(journal, path)}, or read the cases it finished by "
                               f"naming {journal}")
    return read_text(path, "results file")


def _json_document(path: Path, text: str) -> Any:
    """The one JSON document ``text`` holds, or ``_A_JOURNAL`` for a journal's lines."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ResultsFileError(f"{path}: nested deeper than {limits.MAX_NESTING} levels") from None
    except json.JSONDecodeError as exc:
        if looks_like_journal(text):
            return _A_JOURNAL
        raise ResultsFileError(f"{path}: not valid JSON (truncated?): {exc.msg} at line {exc.lineno}") from None
    except ValueError as exc:  # valid JSON that Python refuses to hold: an integer of thousands of digits
        raise ResultsFileError(f"{path}: {unreadable_json(exc)}") from None
