"""Expand a suite's grid into cases. The case key (a case's identity) is defined here and only here."""

from __future__ import annotations

import fnmatch
import re
import zlib
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Sequence

from harness.errors import SuiteError
from harness.suite import AXES, BOOL_AXES, CHOICE_AXES, SIZE_AXES, Suite, grid_points

# The timed regions of each mode, in the order they are measured; the last stands for the whole case.
REGIONS_BY_MODE = {
    "inference": ("forward",),
    "forward": ("forward",),
    "forward_backward": ("forward", "backward", "step"),
}


@dataclass(frozen=True, order=True)
class Case:
    cell: str
    backend: str
    mode: str
    batch: int
    seq_len: int
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    dtype: str
    device_type: str

    @property
    def shape_label(self) -> str:
        return (f"B{self.batch}-T{self.seq_len}-I{self.input_size}-H{self.hidden_size}"
                f"-L{self.num_layers}{'-bi' if self.bidirectional else ''}")

    @property
    def key(self) -> str:
        """A case's identity across runs, machines and results files."""
        return "/".join((self.cell, self.backend, self.mode, self.shape_label, self.dtype, self.device_type))

    @property
    def model_key(self) -> str:
        """What every backend of one configuration shares: weights and inputs are seeded from it."""
        return "/".join((self.cell, self.shape_label, self.dtype, self.device_type))

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def primary_region(self) -> str:
        """The region that stands for the whole case: the step when there is one, else the forward."""
        return REGIONS_BY_MODE[self.mode][-1]

    @property
    def needs_grad(self) -> bool:
        return self.mode != "inference"

    def seed(self, suite_seed: int) -> int:
        # Independent of the backend so that all backends of one configuration get the same weights and
        # inputs; crc32 (unlike hash()) is stable across processes.
        return (zlib.crc32(self.model_key.encode()) + suite_seed) % (2**31)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Case":
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def expand_cases(suite: Suite, device_type: str) -> list[Case]:
    """A case per point of the suite's grid (:func:`harness.suite.grid_points`); duplicate keys dropped, order kept."""
    cases: dict[str, Case] = {}
    for point in grid_points(suite):
        case = Case(**point, dtype=suite.dtype, device_type=device_type)
        cases.setdefault(case.key, case)
    return list(cases.values())


def parse_filter(text: str) -> tuple[str, tuple] | str:
    """``axis=v1,v2`` becomes (axis, values); anything else is a glob on the case key."""
    axis, sep, raw = text.partition("=")
    if not sep:
        return text
    axis = axis.strip()
    if axis not in AXES and axis != "dtype":
        raise SuiteError(f"--filter {text!r}: unknown axis '{axis}'; axes: {', '.join(AXES)}")
    values = []
    for item in raw.split(","):
        item = item.strip()
        if axis in SIZE_AXES:
            if not re.fullmatch(r"[0-9]{1,9}", item):
                raise SuiteError(f"--filter {text!r}: '{axis}' takes whole numbers, got {item!r}")
            values.append(int(item))
        elif axis in BOOL_AXES:
            if item.lower() not in ("true", "false"):
                raise SuiteError(f"--filter {text!r}: '{axis}' takes true or false, got {item!r}")
            values.append(item.lower() == "true")
        else:
            allowed = CHOICE_AXES.get(axis)
            if allowed and item not in allowed:
                raise SuiteError(f"--filter {text!r}: unknown {axis} {item!r}; allowed: {', '.join(allowed)}")
            values.append(item)
    return axis, tuple(values)


def select_cases(cases: Sequence[Case], backends: Iterable[str] = (), filters: Iterable[str] = ()) -> list[Case]:
    """Keep the cases on one of ``backends`` (all when empty) that pass every filter."""
    backends = tuple(backends)
    parsed = [parse_filter(f) for f in filters]
    selected = []
    for case in cases:
        if backends and case.backend not in backends:
            continue
        if all(_passes(case, f) for f in parsed):
            selected.append(case)
    return selected


def _passes(case: Case, parsed: tuple[str, tuple] | str) -> bool:
    if isinstance(parsed, str):
        pattern = parsed if any(ch in parsed for ch in "*?[") else f"*{parsed}*"
        return fnmatch.fnmatchcase(case.key, pattern)
    axis, values = parsed
    return getattr(case, axis) in values
