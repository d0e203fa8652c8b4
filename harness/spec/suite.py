"""Load a YAML suite and validate it into immutable objects.

YAML is read as data only (``yaml.safe_load``); nothing in a suite can construct an object.
Every problem becomes a :class:`SuiteError` with one line naming the file, the key, the YAML line
where there is one, and what is allowed.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from harness.spec import limits
from harness.spec.backend_names import BACKENDS, FLASHRNN_BACKENDS  # noqa: F401 (the suite's axis values)
from harness.spec.dtypes import DTYPES
from harness.errors import SuiteError

CELLS = ("lstm", "gru")
# The backends torch.compile builds, which a suite's compile_mode applies to (ignored by the others).
COMPILE_BACKENDS = ("compile", "compile_module", "compile_rnn")
MODES = ("forward", "forward_backward", "inference")
# The kinds of device a case runs on (a suite's device: auto, cpu, cuda or cuda:N).
DEVICE_TYPES = ("cpu", "cuda")
PRECISIONS = ("fp32", "tf32")
LAYOUTS = ("seq_first", "batch_first")
# fixed: every sequence seq_len long; padded: variable lengths, the batch run to the longest and the output
# masked; packed: variable lengths through pack_padded_sequence
LENGTHS = ("fixed", "padded", "packed")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
LENGTH_DISTRIBUTIONS = ("uniform",)

# The grid's axes, in the order cases are expanded and keys are written.
CHOICE_AXES = {"cell": CELLS, "backend": BACKENDS, "mode": MODES, "layout": LAYOUTS, "lengths": LENGTHS,
               "compile_mode": COMPILE_MODES}
SIZE_AXES = ("batch", "seq_len", "input_size", "hidden_size", "num_layers")
BOOL_AXES = ("bidirectional",)
# Axes whose default value leaves a case's key and record exactly as they were before the axis existed.
VARIANT_AXES = ("layout", "lengths", "proj_size", "compile_mode")
AXES = ("cell", "backend", "mode", *SIZE_AXES, *BOOL_AXES, *VARIANT_AXES)
AXIS_DEFAULTS: dict[str, tuple] = {
    "cell": ("lstm",),
    "backend": ("cudnn",),
    "mode": ("forward_backward",),
    "num_layers": (1,),
    "bidirectional": (False,),
    "layout": ("seq_first",),
    "lengths": ("fixed",),
    "proj_size": (0,),
    "compile_mode": ("default",),
}
REQUIRED_AXES = ("batch", "seq_len", "input_size", "hidden_size")

TOP_KEYS = ("name", "description", "device", "dtype", "precision", "seed", "threads", "timing", "telemetry",
            "grid", "exclude", "include", "variable_lengths", "custom_backends")
VARIABLE_LENGTHS_KEYS = ("distribution", "min_fraction")
TIMING_KEYS = ("warmup_iters", "min_iters", "max_iters", "budget_s", "case_timeout_s", "profile_iters", "rounds")
TELEMETRY_KEYS = ("enabled", "nvml_period_ms")


@dataclass(frozen=True)
class Timing:
    """How long each case is measured. The loop runs until both min_iters and budget_s are met."""

    warmup_iters: int = 3
    min_iters: int = 10
    max_iters: int = 10_000
    budget_s: float = 1.0
    case_timeout_s: float = 600.0
    # iterations of the profiled pass after the timed loop (GPU busy/idle, launches per step); 0 skips it;
    # None (not given): profile_iters_for() decides by device
    profile_iters: int | None = None
    # each case measured in this many rounds, each round a fresh worker process with the cases shuffled
    rounds: int = 1


# The profiled pass by default: on a GPU it gives what the timed loop cannot (busy/idle, launches, the
# gpu_busy gate's samples); on a CPU only operators per step, at 26-33 % of a run's time (the profiler records
# and exports every operator), so there it runs only when the suite asks (`rnnbench profile` breaks a CPU step down).
DEFAULT_PROFILE_ITERS = {"cuda": 5, "cpu": 0}


def profile_iters_for(timing: Timing, device_type: str) -> int:
    """The iterations of the profiled pass on ``device_type``: the suite's ``profile_iters`` where it gives one,
    else ``DEFAULT_PROFILE_ITERS``."""
    if timing.profile_iters is not None:
        return timing.profile_iters
    return DEFAULT_PROFILE_ITERS.get(device_type, 0)


@dataclass(frozen=True)
class Telemetry:
    """Sampling of the GPU (NVML) while timing; ignored on the CPU."""

    enabled: bool = True
    # NVML averages utilization over 1/6 s to 1 s and power over up to 1 s; sampling faster adds load, not data
    nvml_period_ms: float = 100.0


@dataclass(frozen=True)
class VariableLengths:
    """How the lengths of a variable-length batch are drawn (cases with ``lengths: padded | packed``):
    each sequence's length uniform on [ceil(min_fraction * seq_len), seq_len], one sequence at seq_len,
    seeded from the configuration (:func:`harness.spec.cases.sequence_lengths`)."""

    distribution: str = "uniform"
    min_fraction: float = 0.5


@dataclass(frozen=True)
class Suite:
    name: str
    source: str
    device: str = "auto"
    dtype: str = "float32"
    precision: str = "fp32"
    seed: int = 0
    # torch's intra-op CPU threads for the run; None leaves torch's default (one per core)
    threads: int | None = None
    description: str = ""
    timing: Timing = field(default_factory=Timing)
    telemetry: Telemetry = field(default_factory=Telemetry)
    # axis -> allowed values, as (axis, values) pairs so the object stays hashable and immutable
    grid: tuple[tuple[str, tuple], ...] = ()
    exclude: tuple[tuple[tuple[str, tuple], ...], ...] = ()
    include: tuple[tuple[tuple[str, tuple], ...], ...] = ()
    sha256: str = ""
    variable_lengths: VariableLengths = field(default_factory=VariableLengths)
    # the suite's own backends: (name, "package.module:build") pairs (harness.spec.custom_backends)
    custom_backends: tuple[tuple[str, str], ...] = ()

    def backend_factories(self) -> dict[str, str]:
        """Every backend outside rnnbench's own this suite can name: installed packages' entry points
        (group ``rnnbench.backends``), then the suite's ``custom_backends``, which win over an entry point
        of the same name."""
        from harness.spec.custom_backends import entry_point_backends

        from harness.spec.custom_backends import name_problem

        installed = {name: spec for name, spec in entry_point_backends() if name_problem(name, BACKENDS) is None}
        return {**installed, **dict(self.custom_backends)}

    def grid_values(self, axis: str) -> tuple:
        return dict(self.grid)[axis]

    def axis_values_anywhere(self, axis: str) -> set:
        """The values ``axis`` takes in the grid or in any include entry."""
        values = set(dict(self.grid).get(axis, ()))
        for entry in self.include:
            values.update(dict(entry).get(axis, ()))
        return values

    def to_dict(self) -> dict[str, Any]:
        """The suite as loaded, with defaults filled in: what a results file records."""

        def entries(rows):
            return [{axis: list(values) for axis, values in row} for row in rows]

        # A variant axis left at its default is not written, so a suite without variants records as before.
        grid = {axis: list(values) for axis, values in self.grid
                if axis not in VARIANT_AXES or values != AXIS_DEFAULTS[axis]}
        extra = {}
        if any(lengths != "fixed" for lengths in self.axis_values_anywhere("lengths")):
            extra["variable_lengths"] = vars(self.variable_lengths).copy()
        if self.custom_backends:
            extra["custom_backends"] = dict(self.custom_backends)
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "sha256": self.sha256,
            "device": self.device,
            "dtype": self.dtype,
            "precision": self.precision,
            "seed": self.seed,
            "threads": self.threads,
            "timing": vars(self.timing).copy(),
            "telemetry": vars(self.telemetry).copy(),
            "grid": grid,
            "exclude": entries(self.exclude),
            "include": entries(self.include),
            **extra,
        }


def grid_points(suite: Suite) -> list[dict[str, Any]]:
    """The grid's product, less the excluded points, plus the included ones, in order (duplicates kept):
    each point maps every axis to one value."""
    grid = dict(suite.grid)
    points = [dict(zip(AXES, values)) for values in itertools.product(*(grid[a] for a in AXES))]
    points = [p for p in points if not any(_matches(p, dict(entry)) for entry in suite.exclude)]
    for entry in suite.include:
        extra_grid = {**grid, **dict(entry)}
        points.extend(dict(zip(AXES, values)) for values in itertools.product(*(extra_grid[a] for a in AXES)))
    return points


def _matches(point: dict, entry: dict) -> bool:
    return all(point[axis] in values for axis, values in entry.items())


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > limits.MAX_SUITE_BYTES:
            raise SuiteError(f"{path}: suite file larger than {limits.MAX_SUITE_BYTES >> 20} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(f"{path}: no such suite file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read suite: {exc}") from None
    return parse_suite(text, source=str(path))


def parse_suite(text: str, source: str = "<suite>") -> Suite:
    try:
        nodes = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_nesting(nodes, source)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except RecursionError:
        raise SuiteError(f"{source}: nested deeper than {limits.MAX_NESTING} levels") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SuiteError(f"{source}{where}: malformed YAML: {problem}") from None
    suite = _Checker(source, nodes).suite(data)
    return replace(suite, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


# What a results file records of its suite that is not the suite's own content (Suite.to_dict).
RECORD_ONLY_KEYS = ("source", "sha256")


def suite_from_record(record: Mapping, source: str) -> Suite:
    """The suite a results file recorded (``Suite.to_dict``), validated as a suite file would be, so that
    its cases can be expanded again; raises SuiteError naming what is wrong. The recorded ``threads`` is
    left out: it was checked against the cores of the machine that ran it, and decides no case."""
    from harness.spec.frozen import thaw  # a record read back is frozen (read-only mappings, tuples)

    data = {key: thaw(value) for key, value in record.items() if key not in RECORD_ONLY_KEYS + ("threads",)}
    return replace(check_suite_mapping(data, source), sha256=str(record.get("sha256") or ""))


def check_suite_mapping(data: Mapping, source: str) -> Suite:
    """A suite given as the mapping a suite file holds (not read from YAML text: no line numbers), validated as
    a file is; raises SuiteError naming what is wrong."""
    return _Checker(source, None).suite(data)


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (plain YAML keeps the last, silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key; the checker refuses it with a better message
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_nesting(root: yaml.Node | None, source: str) -> None:
    """Refuse documents nested deeper than the limit, iteratively (the composer already recursed once)."""
    stack = [(root, 1)] if root is not None else []
    visited: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if depth > limits.MAX_NESTING:
            raise SuiteError(f"{source}: nested deeper than {limits.MAX_NESTING} levels")
        if id(node) in visited:  # an alias points at a node already checked
            continue
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((child, depth + 1) for pair in node.value for child in pair)


class _Checker:
    """Validates the parsed mapping, turning every problem into a one-line SuiteError."""

    def __init__(self, source: str, root_node: yaml.Node | None):
        self.source = source
        self.root_node = root_node
        self.choices = dict(CHOICE_AXES)

    def custom_backends(self, value) -> tuple[tuple[str, str], ...]:
        """``custom_backends: {name: "package.module:build"}``; their names (and installed packages' entry
        points) become values of the backend axis. Whether they import is checked when the suite is opened."""
        from harness.spec.custom_backends import entry_point_backends, name_problem, spec_problem

        path = ("custom_backends",)
        value = self.mapping(value, path)
        pairs = []
        for name, spec in value.items():
            problem = name_problem(name, BACKENDS) or spec_problem(spec)
            if problem:
                self.fail(path + (name,), problem)
            pairs.append((name, spec))
        installed = {name for name, _ in entry_point_backends() if name_problem(name, BACKENDS) is None}
        extra = sorted(installed | dict(pairs).keys())
        self.choices["backend"] = (*BACKENDS, *extra)
        return tuple(pairs)

    def fail(self, path: tuple, message: str):
        line = _line_of(self.root_node, path)
        where = f"{self.source}:{line}" if line else self.source
        key = ".".join(_display_key(p) for p in path)
        raise SuiteError(f"{where}: {key + ': ' if key else ''}{message}")

    def keys(self, mapping: Mapping, allowed: tuple, path: tuple):
        for key in mapping:
            if not isinstance(key, str) or key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(path + (key,), f"unknown key{hint}; allowed: {', '.join(allowed)}")

    def mapping(self, value, path: tuple) -> Mapping:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {_describe(value)}")
        return value

    def suite(self, data) -> Suite:
        if data is None:
            self.fail((), "the suite is empty; it needs at least 'name' and 'grid'")
        data = self.mapping(data, ())
        self.keys(data, TOP_KEYS, ())
        for required in ("name", "grid"):
            if required not in data:
                self.fail((), f"missing required key '{required}'")
        custom_backends = self.custom_backends(data.get("custom_backends", {}))
        name = self.string(data["name"], ("name",))
        if not name.strip():
            self.fail(("name",), "must not be empty")
        if len(name) > limits.MAX_NAME_CHARS:
            self.fail(("name",), f"longer than {limits.MAX_NAME_CHARS} characters ({len(name)})")
        if not name.isprintable():
            self.fail(("name",), "must be printable characters only (no control characters, tabs or newlines)")
        grid = self.grid(data["grid"])
        exclude = self.entries(data.get("exclude", []), ("exclude",))
        include = self.entries(data.get("include", []), ("include",))
        self.bounded_case_count(grid, include)
        suite = Suite(
            name=name,
            source=self.source,
            description=self.string(data.get("description", ""), ("description",)),
            device=self.device(data.get("device", "auto")),
            dtype=self.choice(data.get("dtype", "float32"), DTYPES, ("dtype",)),
            precision=self.choice(data.get("precision", "fp32"), PRECISIONS, ("precision",)),
            seed=self.integer(data.get("seed", 0), ("seed",), minimum=0, maximum=limits.MAX_SEED),
            threads=None if data.get("threads") is None else self.integer(
                data["threads"], ("threads",), maximum=limits.max_threads(),
                too_many="the cores this process may use"),
            timing=self.timing(data.get("timing", {})),
            telemetry=self.telemetry(data.get("telemetry", {})),
            grid=grid,
            exclude=exclude,
            include=include,
            variable_lengths=self.variable_lengths(data.get("variable_lengths", {})),
            custom_backends=custom_backends,
        )
        if not grid_points(suite):
            self.fail(("exclude",), "the grid is empty after exclusions; nothing would run")
        return suite

    def string(self, value, path: tuple) -> str:
        if not isinstance(value, str):
            self.fail(path, f"must be a string, got {_describe(value)}")
        return value

    def choice(self, value, allowed: tuple, path: tuple) -> str:
        if not isinstance(value, str) or value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.fail(path, f"unknown value {value!r}{hint}; allowed: {', '.join(allowed)}")
        return value

    def integer(self, value, path: tuple, minimum: int = 1, maximum: int | None = None,
                too_many: str | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be an integer, got {_describe(value)}")
        if value < minimum:
            qualifier = "positive" if minimum == 1 else f">= {minimum}"
            self.fail(path, f"must be {qualifier}, got {value}")
        if maximum is not None and value > maximum:
            what = f" ({too_many})" if too_many else ""
            self.fail(path, f"must be at most {maximum:,}{what}, got {_short(value)}")
        return value

    def number(self, value, path: tuple, maximum: float | None = None, minimum: float = 0.0) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(path, f"must be a number, got {_describe(value)}")
        if value <= minimum:
            self.fail(path, f"must be {'positive' if minimum == 0 else f'above {minimum:g}'}, got {_short(value)}")
        if maximum is not None and value > maximum:
            self.fail(path, f"must be at most {maximum:g}, got {_short(value)}")
        return float(value)

    def bounded_case_count(self, grid, include) -> None:
        """Count the cases before expanding them: anchors can make a small file name millions."""
        if len(include) > limits.MAX_INCLUDE_ENTRIES:
            self.fail(("include",), f"more than {limits.MAX_INCLUDE_ENTRIES:,} entries ({len(include):,})")
        sizes = dict((axis, len(values)) for axis, values in grid)
        count = math.prod(sizes.values())
        for entry in include:
            count += math.prod({**sizes, **{axis: len(values) for axis, values in entry}}.values())
            if count > limits.MAX_CASES:
                break
        if count > limits.MAX_CASES:
            self.fail(("grid",), f"names more than {limits.MAX_CASES:,} cases (grid product plus include "
                                 f"entries); split the suite")

    def boolean(self, value, path: tuple) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, got {_describe(value)}")
        return value

    def device(self, value) -> str:
        value = self.string(value, ("device",))
        if value in ("auto", "cpu", "cuda"):
            return value
        prefix, _, index = value.partition(":")
        if prefix == "cuda" and index.isdigit():
            return value
        self.fail(("device",), f"unknown device {value!r}; allowed: auto, cpu, cuda, cuda:N")

    def timing(self, value) -> Timing:
        path = ("timing",)
        value = self.mapping(value, path)
        self.keys(value, TIMING_KEYS, path)
        defaults = Timing()
        timing = Timing(
            warmup_iters=self.integer(value.get("warmup_iters", defaults.warmup_iters),
                                      path + ("warmup_iters",), minimum=0, maximum=limits.MAX_WARMUP_ITERS),
            min_iters=self.integer(value.get("min_iters", defaults.min_iters), path + ("min_iters",),
                                   maximum=limits.MAX_ITERS),
            max_iters=self.integer(value.get("max_iters", defaults.max_iters), path + ("max_iters",),
                                   maximum=limits.MAX_ITERS),
            budget_s=self.number(value.get("budget_s", defaults.budget_s), path + ("budget_s",),
                                 maximum=limits.MAX_BUDGET_S),
            case_timeout_s=self.number(value.get("case_timeout_s", defaults.case_timeout_s),
                                       path + ("case_timeout_s",), maximum=limits.MAX_CASE_TIMEOUT_S),
            profile_iters=(self.integer(value["profile_iters"], path + ("profile_iters",), minimum=0,
                                        maximum=limits.MAX_PROFILE_ITERS)
                           if value.get("profile_iters") is not None else defaults.profile_iters),
            rounds=self.integer(value.get("rounds", defaults.rounds), path + ("rounds",), maximum=limits.MAX_ROUNDS),
        )
        if timing.max_iters < timing.min_iters:
            self.fail(path + ("max_iters",),
                      f"must be >= min_iters ({timing.min_iters}), got {timing.max_iters}")
        return timing

    def telemetry(self, value) -> Telemetry:
        path = ("telemetry",)
        value = self.mapping(value, path)
        self.keys(value, TELEMETRY_KEYS, path)
        defaults = Telemetry()
        return Telemetry(
            enabled=self.boolean(value.get("enabled", defaults.enabled), path + ("enabled",)),
            nvml_period_ms=self.number(value.get("nvml_period_ms", defaults.nvml_period_ms),
                                       path + ("nvml_period_ms",), minimum=limits.MIN_NVML_PERIOD_MS - 1e-9,
                                       maximum=limits.MAX_NVML_PERIOD_MS),
        )

    def variable_lengths(self, value) -> VariableLengths:
        path = ("variable_lengths",)
        value = self.mapping(value, path)
        self.keys(value, VARIABLE_LENGTHS_KEYS, path)
        defaults = VariableLengths()
        fraction = self.number(value.get("min_fraction", defaults.min_fraction), path + ("min_fraction",),
                               maximum=1.0)
        return VariableLengths(
            distribution=self.choice(value.get("distribution", defaults.distribution), LENGTH_DISTRIBUTIONS,
                                     path + ("distribution",)),
            min_fraction=fraction)

    def axis_values(self, axis: str, value, path: tuple) -> tuple:
        values = value if isinstance(value, list) else [value]
        if not values:
            self.fail(path, "must list at least one value")
        checked = []
        for index, item in enumerate(values):
            item_path = path + (index,) if isinstance(value, list) else path
            if axis in self.choices:
                checked.append(self.choice(item, self.choices[axis], item_path))
            elif axis in BOOL_AXES:
                checked.append(self.boolean(item, item_path))
            elif axis == "proj_size":  # 0: no projection
                checked.append(self.integer(item, item_path, minimum=0, maximum=limits.MAX_SIZE))
            else:
                checked.append(self.integer(item, item_path, maximum=limits.MAX_LAYERS if axis == "num_layers"
                                            else limits.MAX_SIZE))
        if len(set(checked)) != len(checked):
            self.fail(path, f"lists a value twice: {checked}")
        return tuple(checked)

    def grid(self, value) -> tuple[tuple[str, tuple], ...]:
        path = ("grid",)
        value = self.mapping(value, path)
        self.keys(value, AXES, path)
        for axis in REQUIRED_AXES:
            if axis not in value:
                self.fail(path, f"missing required axis '{axis}'")
        return tuple(
            (axis, self.axis_values(axis, value[axis], path + (axis,)) if axis in value
             else AXIS_DEFAULTS[axis])
            for axis in AXES
        )

    def entries(self, value, path: tuple):
        if not isinstance(value, list):
            self.fail(path, f"must be a list of mappings, got {_describe(value)}")
        rows = []
        for index, entry in enumerate(value):
            entry_path = path + (index,)
            entry = self.mapping(entry, entry_path)
            if not entry:
                self.fail(entry_path, "must name at least one axis")
            self.keys(entry, AXES, entry_path)
            rows.append(tuple((axis, self.axis_values(axis, entry[axis], entry_path + (axis,)))
                              for axis in AXES if axis in entry))
        return tuple(rows)


def _display_key(part) -> str:
    text = str(part)
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def _short(value) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"


def _describe(value) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _line_of(node: yaml.Node | None, path: tuple) -> int | None:
    """The 1-based YAML line of the deepest part of ``path`` that exists in the node tree."""
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    if line is None and node is not None and path == ():
        return None
    return line
