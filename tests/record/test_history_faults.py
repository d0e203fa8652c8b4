"""rnnbench history against a damaged, read-only or full database, refused input and two adds at once: one
line and exit 2 naming the file, and the database exactly as it was (none created where nothing was added)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from harness.record.results_io import write_results
from tests.helpers import cli, one_line_refusal
from synthetic_results import synthetic_run


def results_file(folder: Path, seed: int, cases: int = 4, samples: int = 20) -> Path:
    run = synthetic_run(seed, n=samples)
    run = replace(run, cases=run.cases[:cases], started_utc=f"2026-01-{seed + 1:02d}T00:00:00+00:00")
    path = folder / f"run-{seed}.json"
    write_results(path, run)
    return path


def history_with_one_run(folder: Path, results_folder: Path | None = None) -> Path:
    database = folder / "h.sqlite"
    assert cli("history", "add", results_file(results_folder or folder, 0), "--db", database).exit_code == 0
    return database


def damage(database: Path, where) -> bytes:
    """Overwrite 4 bytes of the page header of the cases table's root page at offset ``where``."""
    with sqlite3.connect(database) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'cases'").fetchone()[0]
    content = bytearray(database.read_bytes())
    start = (root - 1) * page_size + where
    content[start:start + 4] = b"\xff\x00\xff\x00"
    database.write_bytes(bytes(content))
    return bytes(content)


def test_a_damaged_database_is_refused_by_every_command_and_left_as_it_was(tmp_path):
    database = history_with_one_run(tmp_path)
    content = damage(database, 5)
    for command in (("history", "add", results_file(tmp_path, 3)), ("history", "show", "--no-charts"),
                    ("history", "regressions")):
        one_line_refusal(cli(*command, "--db", database), database)
    assert database.read_bytes() == content


def test_a_damaged_value_is_one_line_when_read(tmp_path):
    """Bytes of a stored statistic overwritten: the file's structure is sound (the integrity check passes), and
    reading the value fails; the message names the file and stays short (SQLite quotes the whole value)."""
    database = history_with_one_run(tmp_path)
    content = bytearray(database.read_bytes())
    at = content.index(b'"median_ms"')
    content[at:at + 4] = b"\xff\xfe\xff\xfe"
    database.write_bytes(bytes(content))
    for command in (("history", "show", "--no-charts"), ("history", "regressions")):
        assert len(one_line_refusal(cli(*command, "--db", database), database, "cannot read")) < 400
    assert database.read_bytes() == bytes(content)


def test_a_damage_sqlite_reads_past_is_found_by_the_integrity_check(tmp_path):
    """SQLite answers queries on this file; only its integrity check sees the damage, and adding to it would
    make it worse."""
    database = history_with_one_run(tmp_path)
    content = damage(database, 5)
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
        db.execute("SELECT COUNT(*) FROM cases").fetchone()
    line = one_line_refusal(cli("history", "add", results_file(tmp_path, 3), "--db", database), database, "damaged")
    assert len(line) < 400
    assert database.read_bytes() == content


@contextmanager
def mounted(*arguments):
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    target = Path(arguments[-1])
    done = subprocess.run(["mount", *map(str, arguments)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount is not permitted here: {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_a_read_only_database_is_read_and_not_written(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    history_with_one_run(source)
    other = results_file(tmp_path, 1)
    view = tmp_path / "read-only"
    view.mkdir()
    before = (source / "h.sqlite").read_bytes()
    with mounted("-o", "bind,ro", source, view):
        database = view / "h.sqlite"
        assert cli("history", "show", "--no-charts", "--db", database).exit_code == 0
        one_line_refusal(cli("history", "add", other, "--db", database), database)
        one_line_refusal(cli("history", "add", other, "--db", view / "new.sqlite"), view / "new.sqlite")
    assert (source / "h.sqlite").read_bytes() == before
    assert sorted(p.name for p in source.iterdir()) == ["h.sqlite", "run-0.json"]


def fill(path: Path) -> None:
    """Write to ``path`` until its file system has no block left."""
    with open(path, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 512)
        except OSError:
            pass


def test_a_full_disk_leaves_the_database_as_it_was(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    big = results_file(tmp_path, 1, cases=20, samples=200)
    with mounted("-t", "tmpfs", "-o", "size=256k", "tmpfs", disk):
        database = history_with_one_run(disk, tmp_path)
        filler = disk / "filler"
        fill(filler)
        before = database.read_bytes()
        one_line_refusal(cli("history", "add", big, "--db", database), database)
        assert database.read_bytes() == before
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "h.sqlite"]
        filler.unlink()
        assert cli("history", "show", "--no-charts", "--db", database).exit_code == 0
        # a new database on a full disk: refused, and no file left behind
        fill(filler)
        one_line_refusal(cli("history", "add", big, "--db", disk / "new.sqlite"), disk / "new.sqlite")
        assert not (disk / "new.sqlite").exists() and not (disk / "new.sqlite-journal").exists()


def test_refused_input_creates_no_database(tmp_path):
    run = results_file(tmp_path, 0)
    database = tmp_path / "new.sqlite"
    one_line_refusal(cli("history", "add", run, run, "--db", database), "is also in")
    assert not database.exists()


def test_a_run_without_cases_is_refused(tmp_path):
    empty = tmp_path / "empty.json"
    write_results(empty, replace(synthetic_run(0), cases=()))
    one_line_refusal(cli("history", "add", empty, "--db", tmp_path / "new.sqlite"), "without cases")
    assert not (tmp_path / "new.sqlite").exists()
    database = history_with_one_run(tmp_path)
    one_line_refusal(cli("history", "add", empty, "--db", database), "without cases")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_two_adds_of_one_file_at_once_store_it_once(tmp_path):
    """Real processes, started together: whichever takes the write lock first adds the run; the other finds it
    there (the check runs inside the transaction), or waits for the lock: it never stores it twice."""
    database = history_with_one_run(tmp_path)
    run = results_file(tmp_path, 1)
    processes = [subprocess.Popen([sys.executable, "-m", "harness.cli", "history", "add", str(run), "--db",
                                   str(database)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
    outcomes = [(process.wait(timeout=300), process.stderr.read()) for process in processes]
    assert sorted(code for code, _ in outcomes) == [0, 2, 2], outcomes
    assert all("already in the history" in stderr for code, stderr in outcomes if code == 2), outcomes
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
