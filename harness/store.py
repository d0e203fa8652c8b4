"""The results store: where results files, journals, baselines and reports live, how they are written
(atomically; a journal line per finished case) and how they are read back into typed records.

Every file name the project decides is decided here:

    results/<suite>-<device>-<time>.json     a run's results file (``--out`` a folder or a .json file)
    <results>.journal                        the finished cases of a run still going (or killed)
    results/baselines/<gpu-model>.json       the CI baseline of a GPU model (cpu-<cpu-model>.json on a CPU)
    reports/                                 ``rnnbench plot`` and ``report``: charts, report.html, summary.md
    profiles/<suite>-<device>-<time>.profile.json   ``rnnbench profile`` (``-o`` a folder)
    <profile>.traces/<case>.pt.trace.json    its Chrome/Perfetto traces (``--trace``)
    results/history.sqlite                   ``rnnbench history``: the runs kept over time (charts: reports/history/)
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from harness import limits
from harness.errors import ResultsFileError
from harness.cases import REGIONS_BY_MODE
from harness.dtypes import DTYPES
from harness.results import SCHEMA, SCHEMA_VERSION, STATUSES, CaseResult, Environment, RunResults, thaw
from harness.suite import BACKENDS, CELLS, CHOICE_AXES, DEVICE_TYPES, MODES

RESULTS_DIR = Path("results")
BASELINES_DIR = RESULTS_DIR / "baselines"
REPORTS_DIR = Path("reports")
PROFILES_DIR = Path("profiles")
PROFILE_SUFFIX = ".profile.json"
REPORT_PAGE = "report.html"
REPORT_SUMMARY = "summary.md"
JOURNAL_SUFFIX = ".journal"
HISTORY_PATH = RESULTS_DIR / "history.sqlite"
HISTORY_CHARTS_DIR = REPORTS_DIR / "history"


# --------------------------------------------------------------------------------------------- paths

def slug(text: str, empty: str = "unknown") -> str:
    """A file-name-safe, lower-case form of ``text``: every run of other characters becomes one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or empty


def new_results_path(out: str | Path | None, suite_name: str, device_type: str, now: datetime | None = None) -> Path:
    """Where a new run writes: ``out`` when it is a .json file, else ``<suite>-<device>-<time>.json`` in
    ``out`` (default: results/)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    # slug: a suite's name is input, and must not steer the file elsewhere ('../x', '/etc/x')
    default_name = f"{slug(suite_name)[:80]}-{slug(device_type)}-{stamp}.json"
    if out is None:
        return RESULTS_DIR / default_name
    path = Path(out)
    return path if path.suffix.lower() == ".json" else path / default_name


def new_profile_path(out_dir: str | Path | None, suite_name: str, device_type: str,
                     now: datetime | None = None) -> Path:
    """Where ``rnnbench profile`` writes: ``<suite>-<device>-<time>.profile.json`` in ``out_dir`` (default:
    profiles/)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path(out_dir or PROFILES_DIR) / f"{slug(suite_name)[:80]}-{slug(device_type)}-{stamp}{PROFILE_SUFFIX}"


def trace_path_for(profile_path: str | Path, case_key: str) -> Path:
    """The Chrome trace of one case of a profile: ``<profile>.traces/<case key as a slug>.pt.trace.json``."""
    profile_path = Path(profile_path)
    folder = profile_path.with_name(profile_path.name.removesuffix(PROFILE_SUFFIX) + ".traces")
    return folder / f"{slug(case_key)}.pt.trace.json"


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
    def dump(stream):
        json.dump(document, stream, indent=1, allow_nan=False, default=_json_default)
        stream.write("\n")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _replace_atomically(path, dump)


def _replace_atomically(path: Path, write, binary: bool = False) -> Path:
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


def write_text(path: str | Path, text: str, inputs: Sequence[str | Path] = ()) -> Path:
    """Write text atomically; never over one of ``inputs`` or over rnnbench results."""
    path = refuse_overwriting(path, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _replace_atomically(path, lambda stream: stream.write(text))
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
            _replace_atomically(path, lambda stream, content=content: stream.write(content), binary=binary)
        except OSError as exc:
            raise ResultsFileError(f"{path}: cannot write: {exc.strerror or exc}"
                                   f"{f' ({len(paths)} files written before it)' if paths else ''}") from None
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------------- reading

def read_results(path: str | Path) -> RunResults:
    """Raises ResultsFileError, with one line saying what is wrong, for anything but a valid results file.

    A journal (an interrupted run's JSON Lines) is read as such whatever its name."""
    path = Path(path)
    journal = journal_path_for(path)
    if not path.exists() and journal.is_file():
        raise ResultsFileError(f"{path}: no results file yet, but its journal {journal} is there: the run did not "
                               f"finish. {_how_to_finish(journal, path)}, or read the cases it finished by "
                               f"naming {journal}")
    text = _read_text(path, "results file")
    try:
        document = json.loads(text)
    except RecursionError:
        raise ResultsFileError(f"{path}: nested deeper than {limits.MAX_NESTING} levels") from None
    except json.JSONDecodeError as exc:
        if _looks_like_journal(text):
            return _journal_from_text(path, text)
        raise ResultsFileError(f"{path}: not valid JSON (truncated?): {exc.msg} at line {exc.lineno}") from None
    except ValueError as exc:  # valid JSON that Python refuses to hold: an integer of thousands of digits
        raise ResultsFileError(f"{path}: {unreadable_json(exc)}") from None
    return results_from_document(document, str(path))


def _how_to_finish(journal: Path, results_path: Path) -> str:
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
    from harness.run_options import RunOptions

    if RunOptions.from_dict(options).round_count > 1:
        return f"A run in rounds cannot be resumed: run rnnbench run {source} again"
    return f"Finish it with: rnnbench run {source} --resume {results_path}"


def unreadable_json(exc: ValueError) -> str:
    """What is wrong with JSON text that json.loads refuses beyond its syntax, in a few words."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"not a readable JSON document ({first[:120]})"


def _read_text(path: Path, what: str) -> str:
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


def _looks_like_journal(text: str) -> bool:
    first = text.split("\n", 1)[0]
    try:
        header = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return isinstance(header, dict) and header.get("journal") is True


def results_from_document(document: Any, source: str) -> RunResults:
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ResultsFileError(f"{source}: not an rnnbench results file (no \"schema\": \"{SCHEMA}\")")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsFileError(f"{source}: results schema version {version!r}; this rnnbench reads "
                               f"version {SCHEMA_VERSION}")
    _check_document(document, source)
    try:
        cases = tuple(CaseResult.from_dict(case) for case in document["cases"])
        return RunResults(environment=document["environment"], suite=document["suite"], cases=cases,
                          status=document.get("status", "complete"), started_utc=document.get("started_utc"),
                          finished_utc=document.get("finished_utc"), options=document.get("options") or {},
                          source=source)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultsFileError(f"{source}: malformed results file: {type(exc).__name__}: {exc}") from None


# The one validation of a results file read back: what every reader may then take for granted.
# the same vocabulary a suite is checked against (harness.suite, harness.dtypes)
_CASE_VOCABULARY = {"cell": CELLS, "backend": BACKENDS, "mode": MODES, "dtype": DTYPES, "device_type": DEVICE_TYPES}
_CASE_SIZES = ("batch", "seq_len", "input_size", "hidden_size", "num_layers")


def _is_backend_name(value) -> bool:
    """One of rnnbench's backends, or a name a suite's custom_backends or an installed package's entry point
    may give one (harness.custom_backends): the readers show such a name as it is."""
    from harness.custom_backends import name_problem

    return value in BACKENDS or name_problem(value, ()) is None
# the variant fields a case records only away from their defaults (harness.cases.Case)
_CASE_VARIANTS = ("layout", "lengths", "proj_size", "compile_mode", "length_min_fraction")


def _check_variant_fields(case: Mapping, where: str, bad) -> None:
    for name in ("layout", "lengths", "compile_mode"):
        if name in case and case[name] not in CHOICE_AXES[name]:
            bad(f"{where}.{name}", f"must be one of {', '.join(CHOICE_AXES[name])}, got {_kind(case[name])}")
    proj = case.get("proj_size", 0)
    if isinstance(proj, bool) or not isinstance(proj, int) or not 0 <= proj <= limits.MAX_SIZE:
        bad(f"{where}.proj_size", f"must be a whole number from 0 to {limits.MAX_SIZE}, got {_kind(proj)}")
    fraction = case.get("length_min_fraction")
    varlen = case.get("lengths", "fixed") != "fixed"
    if varlen != (fraction is not None) or (varlen and (isinstance(fraction, bool) or not isinstance(
            fraction, (int, float)) or not 0 < fraction <= 1)):
        bad(f"{where}.length_min_fraction", "must be a number in (0, 1] for a variable-length case, else absent")
_CASE_MAPPINGS = ("parity", "backend", "memory", "telemetry", "activity")


def _check_machine_states(environment: dict, bad) -> None:
    """``environment.machine_state`` and ``machine_state_rounds`` (absent in older files) are records
    ``harness.machine_state.MachineState.from_dict`` reads."""
    from harness.machine_state import MachineState

    states = [("environment.machine_state", environment.get("machine_state"))]
    rounds = environment.get("machine_state_rounds")
    if rounds is not None:
        if not isinstance(rounds, list) or len(rounds) > limits.MAX_ROUNDS:
            bad("environment.machine_state_rounds", f"must be a list of at most {limits.MAX_ROUNDS} records")
        states += [(f"environment.machine_state_rounds[{index}]", state) for index, state in enumerate(rounds)]
    for where, state in states:
        if state is not None:
            try:
                MachineState.from_dict(state)
            except ValueError as exc:
                bad(where, str(exc))


def _check_document(document: dict, source: str) -> None:
    def bad(where: str, problem: str):
        raise ResultsFileError(f"{source}: {where}: {problem}")

    for section in ("environment", "suite"):
        if not isinstance(document.get(section), dict):
            bad(section, f"must be a mapping, got {_kind(document.get(section))}")
    _check_machine_states(document["environment"], bad)
    if document.get("options") is not None and not isinstance(document["options"], dict):
        bad("options", f"must be a mapping, got {_kind(document['options'])}")
    _check_facts(document, _RUN_FACTS, "", bad)
    _check_facts(document["suite"], _SUITE_FACTS, "suite", bad)
    if not isinstance(document["suite"].get("name"), str):
        bad("suite.name", f"must be text, got {_kind(document['suite'].get('name'))}")
    _check_environment(document["environment"], bad)
    _check_options(document.get("options") or {}, bad)
    if document.get("status", "complete") not in ("complete", "interrupted"):
        bad("status", f"must be complete or interrupted, got {_kind(document.get('status'))}")
    cases = document.get("cases")
    if not isinstance(cases, list):
        bad("cases", f"must be a list, got {_kind(cases)}")
    seen: set[str] = set()
    for index, entry in enumerate(cases):
        where = f"cases[{index}]"
        if not isinstance(entry, dict):
            bad(where, f"must be a mapping, got {_kind(entry)}")
        case = entry.get("case")
        if not isinstance(case, dict):
            bad(f"{where}.case", f"must be a mapping, got {_kind(case)}")
        for name, allowed in _CASE_VOCABULARY.items():
            value = case.get(name)
            if name == "backend" and _is_backend_name(value):
                continue
            if not isinstance(value, str) or value not in allowed:
                bad(f"{where}.case.{name}", f"must be one of {', '.join(allowed)}, got {_kind(value)}")
        for name in _CASE_SIZES:
            value = case.get(name)
            most = limits.MAX_LAYERS if name == "num_layers" else limits.MAX_SIZE
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                bad(f"{where}.case.{name}", f"must be a whole number from 1 to {most}, got {_kind(value)}")
        if not isinstance(case.get("bidirectional"), bool):
            bad(f"{where}.case.bidirectional", f"must be true or false, got {_kind(case.get('bidirectional'))}")
        _check_variant_fields(case, f"{where}.case", bad)
        if entry.get("status") not in STATUSES:
            bad(f"{where}.status", f"must be one of {', '.join(STATUSES)}, got {_kind(entry.get('status'))}")
        if entry.get("reason") is not None and not isinstance(entry["reason"], str):
            bad(f"{where}.reason", f"must be text, got {_kind(entry['reason'])}")
        regions_of_mode = REGIONS_BY_MODE[case["mode"]]
        for name in ("samples_ms", "warmup_ms", "first_iteration_ms", "round_lengths"):
            regions = entry.get(name)
            if isinstance(regions, dict):
                for region in regions:
                    if region not in regions_of_mode:
                        bad(f"{where}.{name}", f"region {_kind(region)} is not one of the {case['mode']} mode's "
                                               f"({', '.join(regions_of_mode)})")
        for name in ("samples_ms", "warmup_ms"):
            regions = entry.get(name)
            if regions is None:
                continue
            if not isinstance(regions, dict):
                bad(f"{where}.{name}", f"must be a mapping of region to samples, got {_kind(regions)}")
            for region, samples in regions.items():
                if not isinstance(samples, list):
                    bad(f"{where}.{name}.{region}", f"must be a list of times, got {_kind(samples)}")
                for position, sample in enumerate(samples):
                    if not _is_time(sample):
                        bad(f"{where}.{name}.{region}[{position}]",
                            f"must be a finite time above 0 and at most {limits.MAX_SAMPLE_MS:g} ms, got {_kind(sample)}")
        lengths = entry.get("round_lengths")
        if lengths is not None:
            if not isinstance(lengths, dict):
                bad(f"{where}.round_lengths", f"must be a mapping of region to counts, got {_kind(lengths)}")
            for region, counts in lengths.items():
                samples = (entry.get("samples_ms") or {}).get(region)
                if (not isinstance(counts, list) or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                                            for c in counts)
                        or not isinstance(samples, list) or sum(counts) != len(samples)):
                    bad(f"{where}.round_lengths.{region}", "must count the region's samples round by round")
        first = entry.get("first_iteration_ms")
        if first is not None and not (isinstance(first, dict) and all(v is None or _is_time(v) or v == 0
                                                                       for v in first.values())):
            bad(f"{where}.first_iteration_ms", "must map regions to times")
        for name in _CASE_MAPPINGS:
            if entry.get(name) is not None and not isinstance(entry[name], dict):
                bad(f"{where}.{name}", f"must be a mapping, got {_kind(entry[name])}")
        _check_facts(entry, _CASE_FACTS, where, bad)
        warnings = entry.get("warnings")
        if warnings is not None and not (isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)):
            bad(f"{where}.warnings", "must be a list of text")
        key = "/".join(str(case.get(f)) for f in ("cell", "backend", "mode", "batch", "seq_len", "input_size",
                                                   "hidden_size", "num_layers", "bidirectional", "dtype",
                                                   "device_type", *_CASE_VARIANTS))
        if key in seen:
            bad(where, "the same case appears twice in one file")
        seen.add(key)


# The facts of the free-form environment that readers use, and what each must be; other keys are free.
_ENVIRONMENT_SECTIONS = ("machine", "torch", "threads", "commit", "math_precision", "env_vars", "measured_peak",
                         "gpu_state")
_ENVIRONMENT_FACTS = (("machine", "node"), ("machine", "python_version"), ("machine", "cpu", "brand_raw"),
                      ("gpu", "name"), ("gpu", "driver"), ("gpu", "driver_version"), ("torch", "version"),
                      ("torch", "cuda"), ("torch", "cudnn"), ("torch", "onednn"), ("rnnbench_version",))
_DEVICE_SPELLING = re.compile(r"(cpu|cuda)(:[0-9]{1,4})?", re.ASCII)


@dataclass(frozen=True)
class _Kind:
    """What a recorded fact must be: in words, for the message, and as a test."""
    description: str
    accepts: Callable[[Any], bool]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_text = _Kind("text", lambda value: isinstance(value, str) and len(value) <= 4096)
_flag = _Kind("true or false", lambda value: isinstance(value, bool))
_number = _Kind("a finite number", _finite)
_positive = _Kind("a number above 0", lambda value: _finite(value) and value > 0)
_count = _Kind("a whole number", lambda value: _is_count(value, 1 << 62))
_mapping = _Kind("a mapping", lambda value: isinstance(value, dict))


def _list_of(kind: _Kind) -> _Kind:
    return _Kind(f"a list of {kind.description}",
                 lambda value: isinstance(value, list) and all(kind.accepts(item) for item in value))


# The facts of a results file (a path from the document, '*' for every value of a mapping) that readers use, and
# what each must be where it is recorded (absent, or null, is always allowed). Other keys are free.
_RUN_FACTS = {("started_utc",): _text, ("finished_utc",): _text}
_CASE_FACTS = {
    ("started_utc",): _text, ("duration_s",): _number, ("build_s",): _number,
    ("backend", "implementation"): _text, ("backend", "kernel_library"): _text,
    ("backend", "rnn_operators"): _list_of(_text), ("backend", "onednn_disabled"): _flag,
    ("backend", "weights_repacked_every_call"): _flag,
    ("backend", "compile"): _mapping, ("backend", "compile", "fell_back_to_eager"): _flag,
    ("backend", "compile", "graphs"): _count, ("backend", "compile", "graph_breaks"): _count,
    ("backend", "compile", "break_reasons"): _list_of(_text),
    ("backend", "cuda_graph"): _mapping, ("backend", "cuda_graph", "*"): _mapping,
    ("backend", "cuda_graph", "*", "capture_ms"): _number, ("backend", "cuda_graph", "*", "graph_pool_bytes"): _number,
    ("memory", "peak_allocated_bytes"): _number, ("memory", "peak_rss_bytes"): _number,
    ("telemetry", "nvml"): _mapping, ("telemetry", "nvml", "available"): _flag, ("telemetry", "nvml", "reason"): _text,
    ("telemetry", "windows"): _mapping, ("telemetry", "windows", "*"): _mapping,
    ("telemetry", "windows", "*", "energy_per_sequence_j"): _number,
    ("telemetry", "windows", "*", "energy_mean_power_w"): _number,
    ("telemetry", "windows", "*", "power_mean_w"): _number,
    ("telemetry", "windows", "*", "gpu_utilization_mean_pct"): _number,
    ("telemetry", "windows", "*", "duration_s"): _number,
    ("telemetry", "windows", "*", "low_confidence"): _flag,
    ("telemetry", "windows", "*", "throttled"): _mapping,
    ("telemetry", "windows", "*", "throttled", "thermal"): _flag,
    ("telemetry", "windows", "*", "throttled", "power"): _flag,
    ("telemetry", "windows", "*", "throttled", "any"): _flag,
    ("telemetry", "windows", "*", "throttled", "reasons"): _list_of(_text),
    ("activity", "gpu_idle_fraction"): _number, ("activity", "gpu_busy_ms_per_iteration"): _list_of(_number),
    ("activity", "gpu_busy_round_lengths"): _list_of(_count),
}

# what the reports and exports print of the suite a run recorded
_SUITE_FACTS = {("name",): _text, ("description",): _text, ("source",): _text, ("sha256",): _text, ("dtype",): _text,
                ("precision",): _text, ("timing",): _mapping, ("timing", "*"): _number}
# facts of the environment with one type: the commit (text, sliced by the reports) and the run's measured ceilings
# (harness.env.measured_peak), which the roofline and percent of peak divide by
_ENVIRONMENT_TYPED = {("commit", "id"): _text, ("commit", "branch"): _text, ("commit", "time"): _text,
                      ("collected_utc",): _text,
                      ("measured_peak", "matmul_tflops"): _positive, ("measured_peak", "bandwidth_gb_per_s"): _positive,
                      ("measured_peak", "dtype"): _text, ("measured_peak", "label"): _text}


def _check_facts(document: Mapping, facts: Mapping, where: str, bad) -> None:
    for path, kind in facts.items():
        for place, value in _at_path(document, path, where):
            if value is not None and not kind.accepts(value):
                bad(place, f"must be {kind.description}, got {_kind(value)}")


def _at_path(value, path: tuple, where: str):
    """(where, value) of each place ``path`` names in ``value``; none where a step is not a mapping."""
    if not path:
        yield where, value
        return
    if not isinstance(value, dict):
        return
    head, rest = path[0], path[1:]
    items = value.items() if head == "*" else ([(head, value[head])] if head in value else [])
    for key, item in items:
        yield from _at_path(item, rest, f"{where}.{key}" if where else str(key))


def _check_environment(environment: Mapping, bad) -> None:
    _check_facts(environment, _ENVIRONMENT_TYPED, "environment", bad)
    device = environment.get("device")
    if device is not None and not (isinstance(device, str) and _DEVICE_SPELLING.fullmatch(device)):
        bad("environment.device", f"must be cpu, cuda or cuda:N, got {_kind(device)}")
    for name in _ENVIRONMENT_SECTIONS + ("gpu",):
        if environment.get(name) is not None and not isinstance(environment[name], dict):
            bad(f"environment.{name}", f"must be a mapping, got {_kind(environment[name])}")
    cpu = (environment.get("machine") or {}).get("cpu")
    if cpu is not None and not isinstance(cpu, dict):
        bad("environment.machine.cpu", f"must be a mapping, got {_kind(cpu)}")
    for path in _ENVIRONMENT_FACTS:
        value: Any = environment
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        if value is not None and not _is_fact(value):
            bad("environment." + ".".join(path), f"must be a short text or number, got {_kind(value)}")
    threads = (environment.get("threads") or {}).get("intra_op")
    if threads is not None and not _is_count(threads, 1 << 20):
        bad("environment.threads.intra_op", f"must be a whole number, got {_kind(threads)}")
    dirty = (environment.get("commit") or {}).get("dirty")
    if dirty is not None and not isinstance(dirty, bool):
        bad("environment.commit.dirty", f"must be true or false, got {_kind(dirty)}")
    variables = environment.get("env_vars") or {}
    if not all(isinstance(value, (str, int, float)) or value is None for value in variables.values()):
        bad("environment.env_vars", "must map names to text")


def _check_options(options: Mapping, bad) -> None:
    """The recorded options a reader (merge, resume, compare, the reports) acts on."""
    def shard_ok(shard) -> bool:
        return (isinstance(shard, dict) and all(_is_count(shard.get(k), limits.MAX_CASES) for k in ("index", "count"))
                and shard["index"] < shard["count"])

    shard = options.get("shard")
    if shard is not None and not shard_ok(shard):
        bad("options.shard", f"must be {{index, count}} with 0 <= index < count <= {limits.MAX_CASES:,}")
    rounds = options.get("rounds")
    if rounds is not None and not (_is_count(rounds, limits.MAX_ROUNDS) and rounds >= 1):
        bad("options.rounds", f"must be a whole number from 1 to {limits.MAX_ROUNDS}, got {_kind(rounds)}")
    backends = options.get("backends")
    if backends is not None and not (isinstance(backends, list)
                                     and all(_is_backend_name(b) for b in backends)):
        bad("options.backends", f"must be a list of backends ({', '.join(BACKENDS)})")
    filters = options.get("filters")
    if filters is not None and not (isinstance(filters, list) and all(_is_short_text(f, 1000) for f in filters)):
        bad("options.filters", "must be a list of --filter texts")
    for name in ("device", "interpreter"):
        if options.get(name) is not None and not _is_short_text(options[name], 1000):
            bad(f"options.{name}", f"must be text, got {_kind(options[name])}")
    if options.get("nvtx") is not None and not isinstance(options["nvtx"], bool):
        bad("options.nvtx", f"must be true or false, got {_kind(options['nvtx'])}")
    for name in ("interleaved", "device_of_case"):
        if options.get(name) is not None and not isinstance(options[name], dict):
            bad(f"options.{name}", f"must be a mapping, got {_kind(options[name])}")
    interleaved = options.get("interleaved") or {}
    for name in ("session", "side"):
        if interleaved.get(name) is not None and not _is_short_text(interleaved[name], 100):
            bad(f"options.interleaved.{name}", f"must be text, got {_kind(interleaved[name])}")
    if interleaved.get("blocks") is not None and not _is_count(interleaved["blocks"], 1000):
        bad("options.interleaved.blocks", f"must be a whole number, got {_kind(interleaved['blocks'])}")
    for name in ("devices", "merged_from", "merged_environment_differences"):
        entries = options.get(name)
        if entries is not None and not (isinstance(entries, list) and len(entries) <= limits.MAX_CASES
                                        and all(isinstance(e, dict) for e in entries)):
            bad(f"options.{name}", f"must be a list of mappings, got {_kind(entries)}")
    for index, part in enumerate(options.get("merged_from") or ()):
        where = f"options.merged_from[{index}]"
        if part.get("status") not in ("complete", "interrupted"):
            bad(f"{where}.status", f"must be complete or interrupted, got {_kind(part.get('status'))}")
        if part.get("shard") is not None and not shard_ok(part["shard"]):
            bad(f"{where}.shard", f"must be {{index, count}} with 0 <= index < count <= {limits.MAX_CASES:,}")
        for name in ("source", "host", "device", "started_utc", "finished_utc"):
            if part.get(name) is not None and not _is_short_text(part[name], 4096):
                bad(f"{where}.{name}", f"must be text, got {_kind(part[name])}")
        if part.get("cases") is not None and not _is_count(part["cases"], limits.MAX_CASES):
            bad(f"{where}.cases", f"must be a whole number, got {_kind(part['cases'])}")
    for index, entry in enumerate(options.get("merged_environment_differences") or ()):
        if not all(value is None or _is_fact(value) for value in entry.values()):
            bad(f"options.merged_environment_differences[{index}]", "must map names to text")


def _is_count(value, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most


def _is_short_text(value, most: int) -> bool:
    return isinstance(value, str) and len(value) <= most


def _is_fact(value) -> bool:
    """A fact of the environment: text or a finite number (cuDNN records its version as one)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and abs(value) < 1 << 63 or _is_short_text(value, 4096)


def _is_time(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0 < value <= limits.MAX_SAMPLE_MS)


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)[:24]
    if isinstance(value, str):
        return repr(value[:40] + ("..." if len(value) > 40 else ""))
    return f"a {type(value).__name__}"


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
        from harness.run_options import RunOptions

        self.options = options if isinstance(options, RunOptions) else RunOptions.from_dict(options)
        self.started_utc = started_utc
        self.cases: list[CaseResult] = []
        self.round_documents: dict[str, list[dict]] = {}
        self.round_machine_states: dict[int, dict] = {}
        self.journal_error: str | None = None
        if self.path.is_dir():
            raise ResultsFileError(f"{self.path}: is a folder; --out takes a folder or a .json file name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _hold_lock(self.path)  # first: a run writing there now is named as such
        try:
            self.check_target(self.path, resuming=resuming, force=force)
            # Write the new journal beside the old one and swap it in only when complete, so that a journal
            # being resumed is never lost to a crash while it is copied.
            fresh_path = self.journal_path.with_name(self.journal_path.name + ".new")
            self._journal = os.fdopen(_create_new_file(fresh_path), "w", encoding="utf-8")
            self._write_line({"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "journal": True,
                              "started_utc": started_utc, "options": self.options.to_dict(),
                              "environment": thaw(environment), "suite": thaw(suite)})
            for case in previous_cases:
                self.append(case)
            os.replace(fresh_path, self.journal_path)
        except BaseException:
            _release_lock(self._lock, self.path)
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
        self._journal.write(json.dumps(finite_document(document), allow_nan=False, default=_json_default) + "\n")
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
        """Who else used the machine as a round's worker started (``harness.machine_state``), journaled at once;
        ``environment.machine_state_rounds`` of the results. None (a worker too old to read it), or a record this
        rnnbench cannot read (another version's, on one side of an A/B), is left out: the file must read back."""
        from harness.machine_state import MachineState

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
            from harness.rounds import merge_rounds

            position = {key: index for index, key in enumerate(self.options.planned_order or ())}
            merged = sorted(self.round_documents.items(), key=lambda item: position.get(item[0], len(position)))
            self.cases.extend(merge_rounds(documents) for _, documents in merged)
            self.round_documents = {}
        environment = with_round_machine_states(self.environment, self.round_machine_states)
        run = RunResults(environment=environment, suite=self.suite, cases=tuple(self.cases),
                         status=status, started_utc=self.started_utc, finished_utc=finished_utc,
                         options=self.options.to_dict(), source=str(self.path))
        try:
            write_results(self.path, run)
        except OSError as exc:
            rescue = Path(tempfile.gettempdir()) / f"rnnbench-rescued-{datetime.now():%Y%m%d-%H%M%S}-{self.path.name}"
            try:
                write_results(rescue, run)
            except OSError:
                raise ResultsFileError(f"cannot write {self.path} ({exc.strerror or exc}) nor a rescue copy; "
                                       f"the journal {self.journal_path} keeps what it could") from None
            raise ResultsFileError(f"cannot write {self.path} ({exc.strerror or exc}); the {len(self.cases)} "
                                   f"finished cases are in {rescue}") from None
        finally:
            try:
                self._journal.close()
            except OSError:
                pass
            _release_lock(self._lock, self.path)
        self.journal_path.unlink(missing_ok=True)
        return run


def with_round_machine_states(environment: Mapping, states: Mapping[int, Mapping]) -> Mapping:
    """The environment with each round's machine state (a list by round index, null for a round without one)."""
    if not states:
        return environment
    rounds = [states.get(index) for index in range(max(states) + 1)]
    return {**thaw(environment), "machine_state_rounds": rounds}


def _create_new_file(path: Path) -> int:
    """A new file at ``path``, never through a link planted there (the link is removed, its target kept)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(path, flags, 0o666)
    except FileExistsError:
        path.unlink()  # a stale file of a crashed run, or a link: unlink removes the name, not its target
        return os.open(path, flags, 0o666)


def _hold_lock(results_path: Path):
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


def _release_lock(descriptor: int, results_path: Path) -> None:
    import fcntl

    try:
        results_path.with_name(results_path.name + ".lock").unlink(missing_ok=True)
    except OSError:  # its folder is gone; the lock goes with the descriptor
        pass
    fcntl.flock(descriptor, fcntl.LOCK_UN)
    os.close(descriptor)


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
    return _journal_from_text(path, _read_text(path, "journal"))


def _journal_from_text(path: Path, text: str) -> RunResults:
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
        from harness.rounds import merge_rounds

        try:
            merged = [merge_rounds(documents).to_dict() for documents in rounds.values()]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ResultsFileError(f"{path}: malformed round in the journal: {type(exc).__name__}: {exc}") from None
        document["cases"] = document["cases"] + json.loads(json.dumps(finite_document(merged), default=_json_default))
    return results_from_document(document, str(path))
