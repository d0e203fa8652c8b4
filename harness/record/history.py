"""History: runs kept in an embedded SQLite database (stdlib ``sqlite3``), so a series of runs (the last fifty
commits on ``main``, say) can be charted and searched for the step where a case got slower.

One row per run, with its environment fingerprint (the facts that make timings comparable:
:func:`harness.record.environment_diff.comparable_facts` — device type, GPU model, driver, torch, CUDA, cuDNN,
precision, and CPU model and oneDNN on a CPU), commit and time; one row per case with its statistics per
region and every kept sample (little-endian float64, zlib-compressed, exact). A series is one case's median of
one region over the runs of one fingerprint, oldest first: timings of different environments are never
joined into one series.

Adding is all or nothing (one transaction), and a run whose cases are already there (the same file again, or a
merged file and one of its shards) is refused. Nothing here prints.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import sqlite3
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
import numpy as np

from harness.record.environment_diff import comparable_facts
from harness.errors import RnnbenchError
from harness.record.results import CaseResult, RunResults

APPLICATION_ID = 0x524E4842  # "RNHB": marks the file as an rnnbench history
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,          -- sha256 (16 hex) of the comparable facts
    facts TEXT NOT NULL,                -- the comparable facts, JSON: {"GPU model": ..., "torch": ..., ...}
    gpu_model TEXT, gpu_driver TEXT, torch TEXT, cuda TEXT, cudnn TEXT, precision TEXT, device TEXT,
    host TEXT,
    commit_id TEXT, commit_dirty INTEGER, commit_time TEXT,
    started_utc TEXT, finished_utc TEXT, added_utc TEXT NOT NULL,
    suite TEXT, suite_sha256 TEXT, status TEXT NOT NULL, source TEXT
);
CREATE TABLE cases (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    identity TEXT NOT NULL UNIQUE,      -- case, when it ran, its samples: the same measurement is stored once
    status TEXT NOT NULL, reason TEXT,
    primary_region TEXT NOT NULL,
    stats TEXT NOT NULL,                -- JSON: region -> n, median_ms, mean_ms, ..., median_ci95_*_ms, noisy
    sample_layout TEXT NOT NULL,        -- JSON: [[region, count], ...] and round_lengths
    samples BLOB,                       -- zlib of the regions' samples, float64 little-endian, in layout order
    PRIMARY KEY (run_id, key)
);
CREATE INDEX cases_by_key ON cases(key);
"""


class HistoryError(RnnbenchError):
    """A history database that cannot be used (corrupt, not rnnbench's) or a run that cannot be added."""


@dataclass(frozen=True)
class Point:
    run_id: int
    started_utc: str | None
    commit: str | None
    median_ms: float
    ci_low_ms: float | None
    ci_high_ms: float | None
    n: int


@dataclass(frozen=True)
class Series:
    key: str
    region: str
    fingerprint: str
    facts: dict
    points: tuple[Point, ...]

    @property
    def environment_label(self) -> str:
        return ", ".join(f"{label} {value}" for label, value in self.facts.items() if value is not None)


def fingerprint_of(facts: dict) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def pack_samples(result: CaseResult) -> tuple[str, bytes]:
    regions = [(region, len(samples)) for region, samples in result.samples_ms.items()]
    values = np.concatenate([np.asarray(result.samples_ms[r], dtype="<f8") for r, _ in regions]) if regions else \
        np.zeros(0, dtype="<f8")
    layout = {"regions": regions, "round_lengths": {r: list(v) for r, v in result.round_lengths.items()}}
    return json.dumps(layout), zlib.compress(values.astype("<f8").tobytes(), 9)


def unpack_samples(layout_text: str, blob: bytes | None) -> dict[str, tuple[float, ...]]:
    layout = json.loads(layout_text)
    values = np.frombuffer(zlib.decompress(blob), dtype="<f8") if blob else np.zeros(0)
    samples, start = {}, 0
    for region, count in layout["regions"]:
        samples[region] = tuple(float(v) for v in values[start:start + count])
        start += count
    return samples


class History:
    """An open history database. Use as a context manager, or call ``close``.

    Every SQLite error (a damaged file, a read-only file or folder, a full disk, a lock held too long) is a
    HistoryError naming the file; a failed add leaves the database as it was (the transaction is rolled back),
    and a database this call created is removed again when nothing could be added to it.
    """

    def __init__(self, path: str | Path, *, create: bool):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise HistoryError(f"{self.path}: no history database; add runs with: rnnbench history add RESULTS")
        if self.path.is_dir():
            raise HistoryError(f"{self.path}: is a folder, not a history database")
        self._created = not self.path.exists()
        self._db = None
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit: every transaction is begun and ended here, explicitly
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._check_or_create(create)
        except (sqlite3.Error, OSError) as exc:
            self._abandon()
            raise HistoryError(f"{self.path}: not a usable rnnbench history database ({_reason(exc)}); "
                               f"nothing was changed") from None
        except BaseException:
            self._abandon()
            raise

    def _check_or_create(self, create: bool) -> None:
        application_id = self._db.execute("PRAGMA application_id").fetchone()[0]
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if application_id == APPLICATION_ID:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION or not {"runs", "cases"} <= tables:
                raise HistoryError(f"{self.path}: history schema version {version}; this rnnbench reads "
                                   f"version {SCHEMA_VERSION}")
            problems = [str(row[0]) for row in self._db.execute("PRAGMA integrity_check").fetchmany(2)]
            if problems != ["ok"]:
                raise HistoryError(f"{self.path}: the history database is damaged (integrity check: "
                                   f"{_short(' '.join(problems).replace('*** in database main ***', ''))}); nothing "
                                   f"was changed; restore it from a copy or name another --db")
            return
        if tables or application_id != 0:
            raise HistoryError(f"{self.path}: an SQLite database, but not an rnnbench history; name another file")
        if not create:
            raise HistoryError(f"{self.path}: an empty database, not an rnnbench history")
        with self._transaction():
            if self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                raise HistoryError(f"{self.path}: another process is creating this history; try again")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self):
        """BEGIN IMMEDIATE (the write lock first, so what is checked inside stays true until COMMIT), then
        COMMIT, or ROLLBACK on any error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite rolled back itself (a full disk, an I/O error)
            raise

    @contextmanager
    def _errors(self, doing: str):
        try:
            yield
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot {doing} ({_reason(exc)}); the database was left as it "
                               f"was") from None

    def _abandon(self) -> None:
        """Close, and remove the file if this object created it and it holds no run."""
        if self._db is not None:
            try:
                empty = not self._created or self._db.execute(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0] == 0 or \
                    self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
            except sqlite3.Error:
                empty = True
            self._db.close()
            self._db = None
        else:
            empty = True
        if self._created and empty:
            for leftover in (self.path, self.path.with_name(self.path.name + "-journal")):
                try:
                    leftover.unlink(missing_ok=True)
                except OSError:
                    pass

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------------------------------- adding

    def add(self, runs: Sequence[RunResults], added_utc: str) -> list[int]:
        """Store ``runs`` in one transaction; returns their ids. Refuses (adding none) what
        :func:`prepare_runs` refuses, and a run whose cases are already stored (checked under the write lock,
        so two processes adding the same file cannot both succeed)."""
        prepared = prepare_runs(runs)
        ids = []
        try:
            with self._errors("add to the history"), self._transaction():
                for run, rows in prepared:
                    self._refuse_stored([row[1] for row in rows], run.source)
                for run, rows in prepared:
                    run_id = self._insert_run(run, added_utc)
                    self._db.executemany("INSERT INTO cases (run_id, key, identity, status, reason, primary_region,"
                                         " stats, sample_layout, samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                         [(run_id, *row) for row in rows])
                    ids.append(run_id)
        except BaseException:
            self._abandon()
            raise
        self._created = False
        return ids

    @staticmethod
    def _case_row(run: RunResults, case: CaseResult) -> tuple:
        # The measurement itself, not the file's header: a merged file names the first shard's host and
        # environment for every case, and must still be recognised as holding the other shards' cases.
        identity = hashlib.sha256(json.dumps(
            [case.key, case.started_utc or run.started_utc, case.reason,
             {region: list(samples) for region, samples in case.samples_ms.items()}]).encode()).hexdigest()
        layout, blob = pack_samples(case)
        stats = {region: stats.to_dict() for region, stats in case.stats.items()}
        return (case.key, identity, case.status, case.reason, case.primary_region, json.dumps(stats), layout, blob)

    def _refuse_stored(self, identities: list[str], source) -> None:
        for start in range(0, len(identities), 500):
            chunk = identities[start:start + 500]
            found = self._db.execute(
                f"SELECT cases.key, runs.source, runs.id FROM cases JOIN runs ON runs.id = cases.run_id "
                f"WHERE identity IN ({','.join('?' * len(chunk))}) LIMIT 1", chunk).fetchone()
            if found:
                raise HistoryError(f"{source}: already in the history (case {found[0]} was added as run "
                                   f"{found[2]} from {found[1]}); nothing added")

    def _insert_run(self, run: RunResults, added_utc: str) -> int:
        environment, commit = run.environment, run.environment.commit
        facts = comparable_facts(run)
        cursor = self._db.execute(
            "INSERT INTO runs (fingerprint, facts, gpu_model, gpu_driver, torch, cuda, cudnn, precision, device,"
            " host, commit_id, commit_dirty, commit_time, started_utc, finished_utc, added_utc, suite,"
            " suite_sha256, status, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (fingerprint_of(facts), json.dumps(facts), environment.gpu_name, _text(environment.gpu_driver),
             _text(environment.torch_version), _text(environment.cuda_version), _text(environment.cudnn_version),
             _text(run.suite.get("precision")), _text(environment.device), environment.host,
             _text(commit.get("id")), None if commit.get("dirty") is None else int(bool(commit.get("dirty"))),
             _text(commit.get("time")), run.started_utc, run.finished_utc, added_utc,
             _text(run.suite.get("name")), _text(run.suite.get("sha256")), run.status,
             str(Path(run.source).resolve()) if run.source else None))
        return cursor.lastrowid

    # ------------------------------------------------------------------------------------------ reading

    def run_count(self) -> int:
        with self._errors("read the history"):
            return self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def series(self, case_glob: str | None = None, region: str | None = None) -> list[Series]:
        """Per case and fingerprint, the ok runs' medians of ``region`` (default: each case's primary region),
        oldest first (by the time the run started, then the order added)."""
        with self._errors("read the history"):
            rows = self._db.execute(
                "SELECT cases.key, cases.primary_region, cases.stats, runs.id, runs.started_utc, runs.commit_id,"
                " runs.fingerprint, runs.facts FROM cases JOIN runs ON runs.id = cases.run_id"
                " WHERE cases.status = 'ok' ORDER BY runs.started_utc, runs.id").fetchall()
        grouped: dict[tuple[str, str], list] = {}
        facts_of: dict[str, dict] = {}
        regions: dict[tuple[str, str], str] = {}
        for key, primary, stats_text, run_id, started, commit, fingerprint, facts in rows:
            if case_glob and not fnmatch.fnmatchcase(key, case_glob):
                continue
            wanted = region or primary
            stats = json.loads(stats_text).get(wanted)
            if not stats:
                continue
            facts_of[fingerprint] = json.loads(facts)
            regions[(key, fingerprint)] = wanted
            grouped.setdefault((key, fingerprint), []).append(Point(
                run_id, started, commit, stats["median_ms"], stats.get("median_ci95_low_ms"),
                stats.get("median_ci95_high_ms"), stats["n"]))
        return [Series(key, regions[(key, fingerprint)], fingerprint, facts_of[fingerprint], tuple(points))
                for (key, fingerprint), points in sorted(grouped.items())]

    def samples(self, run_id: int, key: str) -> dict[str, tuple[float, ...]]:
        with self._errors("read the history"):
            row = self._db.execute("SELECT sample_layout, samples FROM cases WHERE run_id = ? AND key = ?",
                                   (run_id, key)).fetchone()
        if row is None:
            raise HistoryError(f"{self.path}: no case {key} in run {run_id}")
        return unpack_samples(*row)


def prepare_runs(runs: Sequence[RunResults]) -> list[tuple[RunResults, list[tuple]]]:
    """Each run with its case rows, once every run is known to be addable; before any database is opened, so a
    refusal creates nothing. Refuses a run without cases (it would add a row every time and mean nothing), a
    case named twice, and a merged file whose parts came from different environments."""
    prepared, seen = [], {}
    for run in runs:
        if not run.cases:
            raise HistoryError(f"{run.source}: a run without cases; there is nothing to keep; nothing added")
        if run.run_options.merged_environment_differences:
            raise HistoryError(f"{run.source}: merged from runs of different environments "
                               f"(--allow-env-mismatch); a history series holds one environment: add the parts "
                               f"instead; nothing added")
        rows = [History._case_row(run, case) for case in run.cases]
        for row in rows:
            if row[1] in seen:
                raise HistoryError(f"{run.source}: case {row[0]} is also in {seen[row[1]]}; nothing added")
            seen[row[1]] = run.source
        prepared.append((run, rows))
    return prepared


def _reason(exc: BaseException) -> str:
    return _short(str(getattr(exc, "strerror", None) or exc)) or type(exc).__name__


def _short(text: str, most: int = 160) -> str:
    """One line of at most ``most`` characters (SQLite quotes whole damaged values in its messages)."""
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most - 3] + "..."


def _text(value) -> str | None:
    return None if value is None else str(value)

