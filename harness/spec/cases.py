"""Expand a suite's grid into cases. The case key (a case's identity) is defined here and only here."""

from __future__ import annotations

import fnmatch
import math
import random
import re
import zlib
from dataclasses import MISSING, asdict, dataclass, fields
from functools import lru_cache
from typing import Iterable, Sequence

from harness.errors import SuiteError
from harness.spec.suite import AXES, BOOL_AXES, CHOICE_AXES, COMPILE_BACKENDS, SIZE_AXES, Suite, grid_points

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
    # Variant axes. At their defaults a case's key and record are exactly those of a case from before
    # the axes existed (results files and baselines keep comparing).
    layout: str = "seq_first"            # seq_first (T, B, I) | batch_first (B, T, I)
    lengths: str = "fixed"               # fixed | padded | packed
    proj_size: int = 0                   # LSTM projection size (nn.LSTM proj_size); 0: none
    compile_mode: str = "default"        # torch.compile mode of the compile backends
    length_min_fraction: float | None = None  # uniform lengths on [ceil(f*T), T] (padded, packed)

    @property
    def base_shape_label(self) -> str:
        return (f"B{self.batch}-T{self.seq_len}-I{self.input_size}-H{self.hidden_size}"
                f"-L{self.num_layers}{'-bi' if self.bidirectional else ''}")

    @property
    def shape_label(self) -> str:
        """The sizes, then the variants that differ from the defaults: -P<proj>, -bf, -padded-u<f>, -packed-u<f>."""
        label = self.base_shape_label
        if self.proj_size:
            label += f"-P{self.proj_size}"
        if self.layout == "batch_first":
            label += "-bf"
        if self.varlen:
            label += f"-{self.lengths}-u{self.length_min_fraction:g}"
        return label

    @property
    def backend_label(self) -> str:
        """The backend, with its torch.compile mode where that is not the default: ``compile@max-autotune``."""
        return self.backend if self.compile_mode == "default" else f"{self.backend}@{self.compile_mode}"

    @property
    def key(self) -> str:
        """A case's identity across runs, machines and results files."""
        return "/".join((self.cell, self.backend_label, self.mode, self.shape_label, self.dtype, self.device_type))

    @property
    def model_key(self) -> str:
        """One configuration, whose backends are compared with each other (and with cudnn)."""
        return "/".join((self.cell, self.shape_label, self.dtype, self.device_type))

    @property
    def weights_key(self) -> str:
        """What the weights and inputs are seeded from: the same for every layout and length mode of a
        configuration (a padded and a packed case run the same weights on the same sequences)."""
        label = self.base_shape_label + (f"-P{self.proj_size}" if self.proj_size else "")
        return "/".join((self.cell, label, self.dtype, self.device_type))

    @property
    def varlen(self) -> bool:
        return self.lengths != "fixed"

    @property
    def batch_first(self) -> bool:
        return self.layout == "batch_first"

    @property
    def output_size(self) -> int:
        """Width of one direction's output: proj_size when there is a projection, else hidden_size."""
        return self.proj_size or self.hidden_size

    @property
    def sequence_lengths(self) -> tuple[int, ...]:
        """Each sequence's real length (all seq_len for fixed-length cases)."""
        if not self.varlen:
            return (self.seq_len,) * self.batch
        return sequence_lengths(self.batch, self.seq_len, self.length_min_fraction, self.weights_key)

    @property
    def real_tokens(self) -> int:
        """Tokens that are not padding: what throughput and the FLOP model count."""
        return sum(self.sequence_lengths) if self.varlen else self.batch * self.seq_len

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
        return (zlib.crc32(self.weights_key.encode()) + suite_seed) % (2**31)

    def to_dict(self) -> dict:
        """Every field; the variant fields only where they differ from their defaults (older records stay
        as they were)."""
        data = asdict(self)
        for f in fields(self):
            if f.default is not MISSING and data[f.name] == f.default:
                del data[f.name]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Case":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.default is MISSING or f.name in data})


@lru_cache(maxsize=1024)
def sequence_lengths(batch: int, seq_len: int, min_fraction: float, seed_text: str) -> tuple[int, ...]:
    """Lengths drawn uniformly on [ceil(min_fraction * seq_len), seq_len], the first sequence at seq_len (so
    the padded batch is seq_len long), from a generator seeded by ``seed_text`` (crc32): the same lengths on
    every machine and for every backend, layout and length mode of a configuration."""
    shortest = max(1, math.ceil(min_fraction * seq_len))
    generator = random.Random(zlib.crc32(f"lengths/{seed_text}".encode()))
    return (seq_len, *(generator.randint(shortest, seq_len) for _ in range(batch - 1)))


def expand_cases(suite: Suite, device_type: str) -> list[Case]:
    """A case per point of the suite's grid (:func:`harness.spec.suite.grid_points`); duplicate keys dropped, order kept.

    compile_mode applies to the compile backends only: for the others it is set back to its default, so
    a grid of modes does not make copies of the cudnn case.
    """
    cases: dict[str, Case] = {}
    for point in grid_points(suite):
        if point["backend"] not in COMPILE_BACKENDS:
            point = {**point, "compile_mode": "default"}
        fraction = suite.variable_lengths.min_fraction if point["lengths"] != "fixed" else None
        case = Case(**point, dtype=suite.dtype, device_type=device_type, length_min_fraction=fraction)
        cases.setdefault(case.key, case)
    return list(cases.values())


def parse_filter(text: str, backends: Iterable[str] = ()) -> tuple[str, tuple] | str:
    """``axis=v1,v2`` becomes (axis, values); anything else is a glob on the case key. ``backends``: names of
    the user's backends (harness.spec.custom_backends) a ``backend=`` filter may name besides rnnbench's own."""
    axis, sep, raw = text.partition("=")
    if not sep:
        return text
    axis = axis.strip()
    if axis not in AXES and axis != "dtype":
        raise SuiteError(f"--filter {text!r}: unknown axis '{axis}'; axes: {', '.join(AXES)}")
    values = []
    for item in raw.split(","):
        item = item.strip()
        if axis in SIZE_AXES or axis == "proj_size":
            if not re.fullmatch(r"[0-9]{1,9}", item):
                raise SuiteError(f"--filter {text!r}: '{axis}' takes whole numbers, got {item!r}")
            values.append(int(item))
        elif axis in BOOL_AXES:
            if item.lower() not in ("true", "false"):
                raise SuiteError(f"--filter {text!r}: '{axis}' takes true or false, got {item!r}")
            values.append(item.lower() == "true")
        else:
            allowed = CHOICE_AXES.get(axis)
            if axis == "backend":
                allowed = (*allowed, *sorted(set(backends) - set(allowed)))
            if allowed and item not in allowed:
                raise SuiteError(f"--filter {text!r}: unknown {axis} {item!r}; allowed: {', '.join(allowed)}")
            values.append(item)
    return axis, tuple(values)


def select_cases(cases: Sequence[Case], backends: Iterable[str] = (), filters: Iterable[str] = ()) -> list[Case]:
    """Keep the cases on one of ``backends`` (all when empty) that pass every filter."""
    backends = tuple(backends)
    parsed = [parse_filter(f, {case.backend for case in cases}) for f in filters]
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
