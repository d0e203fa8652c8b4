"""Writing rnnbench's files safely, and reading their text: every write goes to a temporary file beside the
target, flushed to disk, then renamed over it (a reader sees the old file or the whole new one); nothing here
decides a file's name (:mod:`harness.record.results_store`) or checks what a document holds
(:mod:`harness.record.results_schema`)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

from harness.spec import limits
from harness.errors import ResultsFileError
from harness.record.results import SCHEMA, RunResults

def write_json_atomically(path: str | Path, document: dict) -> Path:
    """Write to a temporary file in the same folder, flush it to disk, then rename over ``path``."""
    def dump(stream):
        json.dump(document, stream, indent=1, allow_nan=False, default=json_default)
        stream.write("\n")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return replace_atomically(path, dump)


def write_or_rescue(path: str | Path, write: Callable[[Path], object]) -> tuple[str, Path | None] | None:
    """``write(path)``; where that fails (a full disk), the same write to a rescue file in the temporary folder,
    so a finished document is never lost. None when ``path`` was written, else why it was not and the rescue
    file (None when that failed too)."""
    try:
        write(Path(path))
        return None
    except OSError as exc:
        why = str(exc.strerror or exc)
    rescue = Path(tempfile.gettempdir()) / f"rnnbench-rescued-{datetime.now():%Y%m%d-%H%M%S}-{Path(path).name}"
    try:
        write(rescue)
    except OSError:
        return why, None
    return why, rescue


def unwritten_error(path: Path, why: str, rescue: Path | None, journal_path: Path, kept: str,
                    journal_note: str = "") -> ResultsFileError:
    """The one-line error of a file that :func:`write_or_rescue` could not write: where its ``kept`` content
    ("the 3 finished cases") went instead, the rescue file or, when that failed too, the journal."""
    if rescue is None:
        return ResultsFileError(f"cannot write {path} ({why}) nor a rescue copy; the journal {journal_path} keeps "
                                f"what it could{journal_note}")
    return ResultsFileError(f"cannot write {path} ({why}); {kept} in {rescue}")


def replace_atomically(path: Path, write, binary: bool = False) -> Path:
    """``write(stream)`` into a temporary file beside ``path``, flushed to disk, then renamed over ``path``:
    a reader sees the old file or the whole new one, never a part (a full disk leaves no truncated file)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600; a results file is shared like any other
        with (os.fdopen(handle, "wb") if binary else os.fdopen(handle, "w", encoding="utf-8")) as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def refuse_overwriting(output: str | Path, inputs: Sequence[str | Path] = (), force: bool = False) -> Path:
    """The path to write, once it is known not to be one of ``inputs`` and (without ``force``) not an existing
    results file or journal: an output option never destroys what a command reads or a run recorded."""
    output = Path(output)
    for source in inputs:
        try:
            same = output.exists() and os.path.samefile(output, source)
        except OSError:
            same = False
        if same:
            raise ResultsFileError(f"{output}: is also an input of this command; write elsewhere")
    if output.is_dir():
        raise ResultsFileError(f"{output}: is a folder; name a file")
    if not force and _is_rnnbench_record(output):
        raise ResultsFileError(f"{output}: exists and holds rnnbench results; write elsewhere or add --force")
    return output


def _is_rnnbench_record(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return f'"schema": "{SCHEMA}"'.encode() in head or b'"journal": true' in head


def json_default(value):
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


def write_text(path: str | Path, text: str, inputs: Sequence[str | Path] = ()) -> Path:
    """Write text atomically; never over one of ``inputs`` or over rnnbench results."""
    path = refuse_overwriting(path, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return replace_atomically(path, lambda stream: stream.write(text))
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot write: {exc.strerror or exc}") from None


def write_files(out_dir: str | Path, files: Mapping[str, bytes | str]) -> list[Path]:
    """Each named file (bytes, or text as UTF-8) into ``out_dir``, created if missing; the paths, in order.
    Each is written atomically (a full disk leaves the old file or none, never a truncated one); an error
    names the file."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ResultsFileError(f"{out}: is a file; -o names the folder to write into")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsFileError(f"{exc.filename or out}: cannot create the folder: {exc.strerror or exc}") from None
    paths = []
    for name, content in files.items():
        path = out / name
        binary = isinstance(content, bytes)
        try:
            replace_atomically(path, lambda stream, content=content: stream.write(content), binary=binary)
        except OSError as exc:
            raise ResultsFileError(f"{path}: cannot write: {exc.strerror or exc}"
                                   f"{f' ({len(paths)} files written before it)' if paths else ''}") from None
        paths.append(path)
    return paths


def unreadable_json(exc: ValueError) -> str:
    """What is wrong with JSON text that json.loads refuses beyond its syntax, in a few words."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"not a readable JSON document ({first[:120]})"


def read_text(path: Path, what: str) -> str:
    try:
        if path.is_file() and path.stat().st_size > limits.MAX_RESULTS_BYTES:
            raise ResultsFileError(f"{path}: {what} larger than {limits.MAX_RESULTS_BYTES >> 20} MiB")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise ResultsFileError(f"{path}: is a folder, not a {what}") from None
    except UnicodeDecodeError:
        raise ResultsFileError(f"{path}: not a {what} (not UTF-8 text)") from None
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None


def create_new_file(path: Path) -> int:
    """A new file at ``path``, never through a link planted there (the link is removed, its target kept)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(path, flags, 0o666)
    except FileExistsError:
        path.unlink()  # a stale file of a crashed run, or a link: unlink removes the name, not its target
        return os.open(path, flags, 0o666)

