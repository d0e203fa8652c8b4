"""The one validation of a results document read back (a results file, or the document a journal stands for):
what every reader may then take for granted, each problem one line naming where it is. Raises ResultsFileError.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from harness.spec import limits
from harness.spec.cases import REGIONS_BY_MODE
from harness.spec.dtypes import DTYPES
from harness.errors import ResultsFileError
from harness.record.results import SCHEMA, SCHEMA_VERSION, STATUSES, CaseResult, RunResults
from harness.spec.suite import BACKENDS, CELLS, CHOICE_AXES, DEVICE_TYPES, MODES


def results_from_document(document: Any, source: str) -> RunResults:
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ResultsFileError(f"{source}: not an rnnbench results file (no \"schema\": \"{SCHEMA}\")")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsFileError(f"{source}: results schema version {version!r}; this rnnbench reads "
                               f"version {SCHEMA_VERSION}")
    check_document(document, source)
    try:
        cases = tuple(CaseResult.from_dict(case) for case in document["cases"])
        return RunResults(environment=document["environment"], suite=document["suite"], cases=cases,
                          status=document.get("status", "complete"), started_utc=document.get("started_utc"),
                          finished_utc=document.get("finished_utc"), options=document.get("options") or {},
                          source=source)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultsFileError(f"{source}: malformed results file: {type(exc).__name__}: {exc}") from None


# The one validation of a results file read back: what every reader may then take for granted.
# the same vocabulary a suite is checked against (harness.spec.suite, harness.spec.dtypes)
_CASE_VOCABULARY = {"cell": CELLS, "backend": BACKENDS, "mode": MODES, "dtype": DTYPES, "device_type": DEVICE_TYPES}
_CASE_SIZES = ("batch", "seq_len", "input_size", "hidden_size", "num_layers")


def _is_backend_name(value) -> bool:
    """One of rnnbench's backends, or a name a suite's custom_backends or an installed package's entry point
    may give one (harness.spec.custom_backends): the readers show such a name as it is."""
    from harness.spec.custom_backends import name_problem

    return value in BACKENDS or name_problem(value, ()) is None
# the variant fields a case records only away from their defaults (harness.spec.cases.Case)
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
    ``harness.record.machine_state.MachineState.from_dict`` reads."""
    from harness.record.machine_state import MachineState

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


def check_document(document: dict, source: str) -> None:
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
        blocks = entry.get("block_lengths")
        if blocks is not None:
            timed = [samples for samples in (entry.get("samples_ms") or {}).values() if isinstance(samples, list)]
            if (not isinstance(blocks, list) or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0
                                                        for c in blocks)
                    or any(sum(blocks) != len(samples) for samples in timed)):
                bad(f"{where}.block_lengths", "must count the timed samples block by block (positive counts that "
                                              "add up to every region's samples)")
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
    ("memory", "case_peak_rss_growth_bytes"): _number, ("memory", "rss_before_case_bytes"): _number,
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
# (harness.measure.env.measured_peak), which the roofline and percent of peak divide by
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

