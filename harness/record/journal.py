"""The journal of a run still going (or killed): ``<results>.journal``, JSON Lines, one line per finished case
(or case of a round), flushed to disk as it finishes, and ``<results>.lock`` while a run writes. The
:class:`ResultsWriter` keeps them and writes the results file at the end; :func:`read_journal` reads one back as
the interrupted run it stands for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

from harness.spec import limits
from harness.errors import ResultsFileError
from harness.record.results import SCHEMA, SCHEMA_VERSION, CaseResult, RunResults, thaw
from harness.record.results_io import (create_new_file, finite_document, json_default, read_text, unreadable_json,
                                        unwritten_error, write_or_rescue, write_results)
from harness.record.results_schema import results_from_document

JOURNAL_SUFFIX = ".journal"


def journal_path_for(results_path: str | Path) -> Path:
    results_path = Path(results_path)
    return results_path.with_name(results_path.name + JOURNAL_SUFFIX)


def results_path_of(path: str | Path) -> Path:
    """The results file that ``path`` (a results file or its journal) belongs to."""
    path = Path(path)
    return path.with_name(path.name[: -len(JOURNAL_SUFFIX)]) if path.name.endswith(JOURNAL_SUFFIX) else path


def how_to_finish(journal: Path, results_path: Path) -> str:
    """What finishes the run a journal belongs to, from its first line: resume it (with the suite it ran),
    or, for a run in rounds, run it again."""
    try:
        with open(journal, encoding="utf-8") as handle:
            header = json.loads(handle.readline(1 << 20))
    except (OSError, ValueError, RecursionError):
        header = None
    header = header if isinstance(header, dict) else {}
    options = header.get("options") if isinstance(header.get("options"), dict) else {}
    suite = header.get("suite") if isinstance(header.get("suite"), dict) else {}
    source = suite.get("source") if isinstance(suite.get("source"), str) and suite.get("source") else "SUITE"
    from harness.record.run_options import RunOptions

    if RunOptions.from_dict(options).round_count > 1:
        return f"A run in rounds cannot be resumed: run rnnbench run {source} again"
    return f"Finish it with: rnnbench run {source} --resume {results_path}"


def looks_like_journal(text: str) -> bool:
    first = text.split("\n", 1)[0]
    try:
        header = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return isinstance(header, dict) and header.get("journal") is True


class ResultsWriter:
    """Keeps every finished case on disk at once, then writes the results file atomically.

    Each case is appended to ``<results>.journal`` (JSON Lines) and flushed to disk as it finishes, so a
    crash or a kill loses at most the case that was running; ``finish`` writes the results file by
    temporary file and rename and removes the journal. While it writes, ``<results>.lock`` is held, so a
    second run with the same ``--out`` is refused instead of mixing its cases in. Without ``force`` it
    refuses to replace an existing results file, or the journal of an interrupted run it is not resuming.
    """

    def __init__(self, path: str | Path, environment: Mapping, suite: Mapping, started_utc: str,
                 previous_cases: tuple[CaseResult, ...] = (), options: Mapping | None = None, *,
                 resuming: bool = False, force: bool = False):
        self.path = Path(path)
        self.journal_path = journal_path_for(self.path)
        self.environment = environment
        self.suite = suite
        from harness.record.run_options import RunOptions

        self.options = options if isinstance(options, RunOptions) else RunOptions.from_dict(options)
        self.started_utc = started_utc
        self.cases: list[CaseResult] = []
        self.round_documents: dict[str, list[dict]] = {}
        self.round_machine_states: dict[int, dict] = {}
        self.journal_error: str | None = None
        if self.path.is_dir():
            raise ResultsFileError(f"{self.path}: is a folder; --out takes a folder or a .json file name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = hold_lock(self.path)  # first: a run writing there now is named as such
        try:
            self.check_target(self.path, resuming=resuming, force=force)
            # Write the new journal beside the old one and swap it in only when complete, so that a journal
            # being resumed is never lost to a crash while it is copied.
            fresh_path = self.journal_path.with_name(self.journal_path.name + ".new")
            self._journal = os.fdopen(create_new_file(fresh_path), "w", encoding="utf-8")
            self._write_line({"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "journal": True,
                              "started_utc": started_utc, "options": self.options.to_dict(),
                              "environment": thaw(environment), "suite": thaw(suite)})
            for case in previous_cases:
                self.append(case)
            os.replace(fresh_path, self.journal_path)
        except BaseException:
            release_lock(self._lock, self.path)
            raise

    @staticmethod
    def check_target(path: str | Path, *, resuming: bool = False, force: bool = False) -> None:
        """Raises ResultsFileError where a writer at ``path`` would be refused (a folder; without ``force``, a
        finished run's results or an interrupted run's journal), so a command can check all its files before
        it creates any (``rnnbench ab``'s two)."""
        path = Path(path)
        journal = journal_path_for(path)
        if path.is_dir():
            raise ResultsFileError(f"{path}: is a folder; --out takes a folder or a .json file name")
        if not resuming and not force:
            if journal.exists():
                raise ResultsFileError(f"{journal}: an interrupted run's journal is there; continue it "
                                       f"with --resume {path}, or add --force to start over")
            if path.exists():
                raise ResultsFileError(f"{path}: exists (a finished run's results); write elsewhere "
                                       f"or add --force to replace it")

    def _write_line(self, document: dict) -> None:
        self._journal.write(json.dumps(finite_document(document), allow_nan=False, default=json_default) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def append(self, result: CaseResult) -> None:
        """Keep the case; a journal that cannot be written (a full disk) raises ResultsFileError, and the
        cases stay in memory for ``finish``."""
        self.cases.append(result)
        try:
            self._write_line({"case_result": result.to_dict()})
        except OSError as exc:
            self.journal_error = f"{self.journal_path}: {exc.strerror or exc}"
            raise ResultsFileError(f"cannot write the journal {self.journal_error}") from None

    def append_round(self, round_index: int, document: dict) -> None:
        """One case's result of one round (a worker's result document); the rounds of a case are merged
        into one result by ``finish``. Journal lines carry the round, so a killed run keeps every round."""
        self.round_documents.setdefault(document["key"], []).append(document)
        try:
            self._write_line({"case_result": document, "round": round_index})
        except OSError as exc:
            self.journal_error = f"{self.journal_path}: {exc.strerror or exc}"
            raise ResultsFileError(f"cannot write the journal {self.journal_error}") from None

    def record_device_of_case(self, key: str, where: str) -> None:
        """Which ``--devices`` worker ran a case (``options.device_of_case`` of the results)."""
        self.options = self.options.with_device_of_case(key, where)

    def record_round_machine_state(self, round_index: int, state: Mapping | None) -> None:
        """Who else used the machine as a round's worker started (``harness.record.machine_state``), journaled at once;
        ``environment.machine_state_rounds`` of the results. None (a worker too old to read it), or a record this
        rnnbench cannot read (another version's, on one side of an A/B), is left out: the file must read back."""
        from harness.record.machine_state import MachineState

        try:
            MachineState.from_dict(state)
        except ValueError:
            return
        self.round_machine_states[round_index] = thaw(state)
        try:
            self._write_line({"round_machine_state": self.round_machine_states[round_index], "round": round_index})
        except OSError as exc:
            self.journal_error = f"{self.journal_path}: {exc.strerror or exc}"
            raise ResultsFileError(f"cannot write the journal {self.journal_error}") from None

    def finish(self, status: str, finished_utc: str) -> RunResults:
        """Write the results file. If it cannot be written, the finished cases go to a rescue file in the
        temporary folder and ResultsFileError names it: a finished result is never lost."""
        if self.round_documents:
            from harness.record.merge import merge_rounds  # not at the top: merge -> plan -> resume reads results files

            position = {key: index for index, key in enumerate(self.options.planned_order or ())}
            merged = sorted(self.round_documents.items(), key=lambda item: position.get(item[0], len(position)))
            self.cases.extend(merge_rounds(documents) for _, documents in merged)
            self.round_documents = {}
        environment = with_round_machine_states(self.environment, self.round_machine_states)
        run = RunResults(environment=environment, suite=self.suite, cases=tuple(self.cases),
                         status=status, started_utc=self.started_utc, finished_utc=finished_utc,
                         options=self.options.to_dict(), source=str(self.path))
        try:
            failed = write_or_rescue(self.path, lambda path: write_results(path, run))
            if failed is not None:
                raise unwritten_error(self.path, *failed, self.journal_path,
                                      kept=f"the {len(self.cases)} finished cases are")
        finally:
            try:
                self._journal.close()
            except OSError:
                pass
            release_lock(self._lock, self.path)
        self.journal_path.unlink(missing_ok=True)
        return run


def with_round_machine_states(environment: Mapping, states: Mapping[int, Mapping]) -> Mapping:
    """The environment with each round's machine state (a list by round index, null for a round without one)."""
    if not states:
        return environment
    rounds = [states.get(index) for index in range(max(states) + 1)]
    return {**thaw(environment), "machine_state_rounds": rounds}


def hold_lock(results_path: Path):
    """An exclusive lock on ``<results>.lock`` for as long as a run writes ``results_path``."""
    import fcntl

    lock_path = results_path.with_name(results_path.name + ".lock")
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise ResultsFileError(f"{results_path}: another rnnbench run is writing it (it holds {lock_path.name}); "
                               f"wait for it or give another --out") from None
    return descriptor


def release_lock(descriptor: int, results_path: Path) -> None:
    import fcntl

    try:
        results_path.with_name(results_path.name + ".lock").unlink(missing_ok=True)
    except OSError:  # its folder is gone; the lock goes with the descriptor
        pass
    fcntl.flock(descriptor, fcntl.LOCK_UN)
    os.close(descriptor)


def read_journal(path: str | Path) -> RunResults:
    """A journal left by a run that was killed before it could write its results file.

    A last line cut off mid-write is ignored: every line before it is a finished case.
    """
    path = Path(path)
    return journal_from_text(path, read_text(path, "journal"))


def journal_from_text(path: Path, text: str) -> RunResults:
    lines = text.splitlines()
    documents = []
    for number, line in enumerate(lines, start=1):
        try:
            documents.append(json.loads(line))
        except RecursionError:
            raise ResultsFileError(f"{path}:{number}: nested deeper than {limits.MAX_NESTING} levels") from None
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ResultsFileError(f"{path}:{number}: journal line is not valid JSON") from None
        except ValueError as exc:
            raise ResultsFileError(f"{path}:{number}: {unreadable_json(exc)}") from None
    if not documents or not isinstance(documents[0], dict) or not documents[0].get("journal"):
        raise ResultsFileError(f"{path}: not an rnnbench journal")
    header = documents[0]
    document = {"schema": header.get("schema"), "schema_version": header.get("schema_version"),
                "status": "interrupted", "started_utc": header.get("started_utc"),
                "options": header.get("options"), "environment": header.get("environment"), "suite": header.get("suite"),
                "cases": [d["case_result"] for d in documents[1:] if isinstance(d, dict) and "case_result" in d
                          and "round" not in d]}
    rounds: dict[str, list[dict]] = {}
    for line in documents[1:]:
        if isinstance(line, dict) and "round" in line and isinstance(line.get("case_result"), dict):
            rounds.setdefault(str(line["case_result"].get("key")), []).append(line["case_result"])
    machine_states = {line["round"]: line["round_machine_state"] for line in documents[1:]
                      if isinstance(line, dict) and isinstance(line.get("round"), int)
                      and not isinstance(line.get("round"), bool) and 0 <= line["round"] < limits.MAX_ROUNDS
                      and isinstance(line.get("round_machine_state"), dict)}
    if isinstance(document["environment"], dict):
        document["environment"] = with_round_machine_states(document["environment"], machine_states)
    if rounds:
        from harness.record.merge import merge_rounds

        try:
            merged = [merge_rounds(documents).to_dict() for documents in rounds.values()]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ResultsFileError(f"{path}: malformed round in the journal: {type(exc).__name__}: {exc}") from None
        document["cases"] = document["cases"] + json.loads(json.dumps(finite_document(merged), default=json_default))
    return results_from_document(document, str(path))
