"""A suite from the command line: ``--set KEY=VALUE[,VALUE...]`` overrides the keys and axes of a suite file,
or, without a file, builds a suite from :data:`AD_HOC_SUITE` and the keys given.

Either way the result is the mapping a suite file would hold, checked by the suite's own validator
(:mod:`harness.spec.suite`), so a value refused in a file is refused here with the same message. Values are
YAML scalars (``64`` an integer, ``0.5`` a float, ``true`` a boolean, anything else a string); a grid axis
takes a comma-separated list, every other key one value.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
from dataclasses import replace
from typing import Sequence

import yaml

from harness.errors import UsageError
from harness.spec.suite import (AXES, TELEMETRY_KEYS, TIMING_KEYS, VARIABLE_LENGTHS_KEYS, RECORD_ONLY_KEYS, Suite,
                                check_suite_mapping, load_suite)

# The suite ``rnnbench run --set ...`` builds on when no SUITE file is given: the sizes of suites/small.yaml,
# every other key at the suite file's own default (docs/suites.md#a-suite-from-the-command-line).
AD_HOC_SUITE = {"name": "adhoc", "grid": {"batch": 16, "seq_len": 32, "input_size": 64, "hidden_size": 64}}
SCALAR_KEYS = ("name", "description", "device", "dtype", "precision", "seed", "threads")
SECTIONS = {"timing": TIMING_KEYS, "telemetry": TELEMETRY_KEYS, "variable_lengths": VARIABLE_LENGTHS_KEYS}
SETTABLE_KEYS = (*AXES, *SCALAR_KEYS, *(f"{section}.{key}" for section, keys in SECTIONS.items() for key in keys))


def parse_sets(texts: Sequence[str]) -> tuple[tuple[str, tuple], ...]:
    """``("cell=lstm,gru", "timing.budget_s=0.2")`` -> ``(("cell", ("lstm", "gru")), ("timing.budget_s", (0.2,)))``;
    UsageError naming the ``--set`` that is malformed, unknown, repeated, or given a list it cannot take."""
    parsed: dict[str, tuple] = {}
    for text in texts:
        key, equals, raw = text.partition("=")
        key = key.strip()
        if not equals or not key or not raw.strip():
            raise UsageError(f"--set {text!r}: expected KEY=VALUE[,VALUE...], e.g. --set hidden_size=64,128")
        if key not in SETTABLE_KEYS:
            close = difflib.get_close_matches(key, SETTABLE_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(f"--set {text!r}: unknown key {key!r}{hint}; keys: {', '.join(SETTABLE_KEYS)}")
        if key in parsed:
            raise UsageError(f"--set {text!r}: {key} is set twice; give its values in one --set {key}=A,B")
        values = tuple(_scalar(item, text) for item in raw.split(","))
        if len(values) > 1 and key not in AXES:
            raise UsageError(f"--set {text!r}: {key} takes one value (only grid axes take a list)")
        parsed[key] = values
    return tuple(parsed.items())


def _scalar(item: str, text: str):
    try:
        value = yaml.safe_load(item) if item.strip() else None
    except yaml.YAMLError:
        value = None
    if not isinstance(value, (str, int, float, bool)):
        raise UsageError(f"--set {text!r}: {item.strip()!r} is not a single value (a number, true/false or a name)")
    return value


def with_sets(data: dict, sets: tuple[tuple[str, tuple], ...]) -> dict:
    """A copy of the suite mapping ``data`` with the parsed ``sets`` in place: axes into ``grid``, dotted keys
    into their section, the rest at the top."""
    data = copy.deepcopy(data)
    for key, values in sets:
        if key in AXES:  # one value as a file would write it, so that its messages read the same
            data.setdefault("grid", {})[key] = list(values) if len(values) > 1 else values[0]
        elif "." in key:
            section, sub = key.split(".", 1)
            data.setdefault(section, {})[sub] = values[0]
        else:
            data[key] = values[0]
    return data


def load_suite_with_sets(suite_path: str | None, set_texts: Sequence[str] = ()) -> Suite:
    """The suite file at ``suite_path`` (checked first on its own, so its mistakes keep their YAML lines) with
    ``set_texts`` applied, or without a file :data:`AD_HOC_SUITE` with them. The result's ``source`` says how it
    was made (``suites/small.yaml --set hidden_size=64``) and its ``sha256`` is that of the suite as YAML."""
    sets = parse_sets(set_texts)
    if suite_path is None and not sets:
        raise UsageError("give a SUITE file, or --set KEY=VALUE ... to build a suite without one")
    if suite_path is not None:
        base = load_suite(suite_path)
        if not sets:
            return base
        data = {key: value for key, value in base.to_dict().items() if key not in RECORD_ONLY_KEYS}
    else:
        data = AD_HOC_SUITE
    data = with_sets(data, sets)
    source = " ".join([*([str(suite_path)] if suite_path is not None else []), *(f"--set {t}" for t in set_texts)])
    suite = check_suite_mapping(data, source)
    text = yaml.safe_dump(data, sort_keys=False)
    return replace(suite, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
