"""Scaling curves as data: which axes a set of results swept, the points of each line, its band and its
fitted scaling exponent. The drawing is in plots.py; nothing here imports matplotlib.

A *sweep* along an axis is a set of cases that differ only in that axis (same backend, cell, mode, other
sizes, dtype, device and results file). An axis is *swept* when at least one sweep has two or more values
on it. Each sweep is one line; ``by`` says which of its dimensions names the line, and the remaining
dimensions that vary (cell, mode, backend, file, the fixed sizes) become facets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from harness.errors import ReportError
from harness.record.metrics import METRICS, Metric, metric_spread
from harness.record.results import CaseResult, RunResults
from harness.record.results_store import file_labels
from harness.spec.suite import BACKENDS, CELLS, MODES, SIZE_AXES

AXIS_SYMBOLS = {"batch": "B", "seq_len": "T", "input_size": "I", "hidden_size": "H", "num_layers": "L"}
AXIS_LABELS = {
    "batch": "batch size (sequences)",
    "seq_len": "sequence length (time steps)",
    "input_size": "input size (features)",
    "hidden_size": "hidden size (units)",
    "num_layers": "layers",
}
AXIS_NAMES = {"batch": "batch size", "seq_len": "sequence length", "input_size": "input size",
              "hidden_size": "hidden size", "num_layers": "layers"}
LINE_DIMENSIONS = ("backend", "cell", "mode", "file")
FACET_ORDER = ("cell", "mode", "backend", "file", "dtype", "fixed")
LOG_SCALE_SPAN = 10.0  # an axis whose largest value is at least 10x its smallest is drawn on a log scale
METRIC_HINTS = {
    "peak_memory": "these results have no memory figures (CUDA allocator peak on a GPU, peak resident memory "
                   "on a CPU; files from before memory was recorded have none)",
    "energy_per_sequence": "energy is recorded on a GPU with NVML telemetry only",
}


@dataclass(frozen=True)
class Entry:
    """One case result and the results file (by label) it came from."""

    file: str
    run: RunResults
    result: CaseResult


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    low: float | None  # the band: metric at the 25th / 75th percentile of the samples
    high: float | None
    key: str


@dataclass(frozen=True)
class Missing:
    """A case of a sweep that gave no point: failed, skipped, or without this metric."""

    x: float
    key: str
    why: str


@dataclass(frozen=True)
class Curve:
    axis: str
    metric: str
    line: str  # the value of the ``by`` dimension: the legend entry
    dimensions: tuple[tuple[str, str], ...]  # every dimension of the sweep, the line's included
    points: tuple[Point, ...]
    missing: tuple[Missing, ...]
    exponent: float | None  # least-squares slope of log(y) on log(x)
    ran_eagerly: bool = False  # a compiled backend that fell back to eager PyTorch in some case
    # the 95 % interval of the slope (Student's t on the fit's standard error): half its width; None with
    # fewer than MIN_POINTS_FOR_EXPONENT points, where a slope is a line through two noisy points
    exponent_half_width: float | None = None

    @property
    def shown_exponent(self) -> tuple[float, float] | None:
        """(slope, half width of its 95 % interval) where the legend may state it, else None."""
        if self.exponent is None or self.exponent_half_width is None:
            return None
        return self.exponent, self.exponent_half_width

    def dimension(self, name: str) -> str:
        return dict(self.dimensions)[name]


@dataclass(frozen=True)
class Facet:
    title: str
    curves: tuple[Curve, ...]


@dataclass(frozen=True)
class ScalingChart:
    axis: str
    metric: Metric
    by: str
    facets: tuple[Facet, ...]
    constant: tuple[tuple[str, str], ...]  # the dimensions with one value across the chart (for the title)
    x_log: bool
    y_log: bool

    @property
    def curves(self) -> tuple[Curve, ...]:
        return tuple(curve for facet in self.facets for curve in facet.curves)


def entries_of(runs: Sequence[RunResults]) -> list[Entry]:
    labels = file_labels(runs)
    return [Entry(label, run, result) for label, run in zip(labels, runs) for result in run.cases]


def swept_axes(entries: Iterable[Entry]) -> list[str]:
    """The size axes along which at least one sweep has two or more values, in the suite's axis order.
    Cases of every status count: a sweep whose largest case failed was still swept."""
    entries = list(entries)
    return [axis for axis in SIZE_AXES if any(len(xs) > 1 for xs in _sweeps(entries, axis).values())]


def _sweeps(entries: Sequence[Entry], axis: str) -> dict[tuple, dict[float, list[Entry]]]:
    sweeps: dict[tuple, dict[float, list[Entry]]] = {}
    for entry in entries:
        x = getattr(entry.result.case, axis)
        sweeps.setdefault(_sweep_dimensions(entry, axis), {}).setdefault(x, []).append(entry)
    return sweeps


def _sweep_dimensions(entry: Entry, axis: str) -> tuple[tuple[str, str], ...]:
    case = entry.result.case
    fixed = " ".join(f"{AXIS_SYMBOLS[a]}{getattr(case, a)}" for a in SIZE_AXES if a != axis)
    if case.bidirectional:
        fixed += " bidirectional"
    fixed += case.shape_label[len(case.base_shape_label):]  # variants away from their defaults
    return (("backend", case.backend_label), ("cell", case.cell), ("mode", case.mode), ("file", entry.file),
            ("dtype", case.dtype), ("fixed", fixed))


def default_metric(entries: Iterable[Entry]) -> str:
    """The time that stands for every case: the step when every case has one (all train), else the forward."""
    regions = {entry.result.primary_region for entry in entries}
    return "step" if regions == {"step"} else "forward"


def scaling_chart(entries: Sequence[Entry], axis: str, metric_name: str | None = None,
                  by: str = "backend") -> ScalingChart:
    """The curves of ``metric`` along ``axis``, one per sweep, grouped into facets.

    Raises ReportError for an unknown axis, metric or ``by``, for an axis that no sweep varies, and for a
    metric that no case of these sweeps recorded."""
    entries = list(entries)
    metric = resolve_metric(metric_name or default_metric(entries))
    if by not in LINE_DIMENSIONS:
        raise ReportError(f"--by {by!r}: choose one of {', '.join(LINE_DIMENSIONS)}")
    swept = swept_axes(entries)
    if axis not in SIZE_AXES:
        raise ReportError(f"--x {axis!r}: unknown axis; axes: {', '.join(SIZE_AXES)} "
                          f"(swept in these results: {', '.join(swept) or 'none'})")
    if axis not in swept:
        values = sorted({getattr(e.result.case, axis) for e in entries})
        raise ReportError(f"--x {axis}: not swept in these results (only {axis}="
                          f"{', '.join(map(str, values))}); swept: {', '.join(swept) or 'none'}")
    curves = [_curve(axis, metric, by, dimensions, by_x)
              for dimensions, by_x in _sweeps(entries, axis).items() if len(by_x) > 1]
    if not any(curve.points for curve in curves):
        hint = METRIC_HINTS.get(metric.name)
        raise ReportError(f"--y {metric.name}: no case of the {axis} sweeps has a value for {metric.label} "
                          f"({metric.unit}){f'; {hint}' if hint else ''}")
    return _layout(axis, metric, by, curves)


def resolve_metric(name: str) -> Metric:
    if name not in METRICS:
        raise ReportError(f"--y {name!r}: unknown metric; metrics: {', '.join(METRICS)}")
    return METRICS[name]


def _curve(axis: str, metric: Metric, by: str, dimensions: tuple, by_x: dict[float, list[Entry]]) -> Curve:
    points, missing = [], []
    for x in sorted(by_x):
        for entry in by_x[x]:
            result = entry.result
            value = metric.value(result) if result.ok else None
            if value is None:
                why = (f"{result.status}: {result.reason or 'no reason given'}" if not result.ok
                       else f"no {metric.label}")
                missing.append(Missing(x, result.key, why))
                continue
            spread = metric_spread(metric, result)
            points.append(Point(x, value, *(spread or (None, None)), result.key))
    xs, ys = [p.x for p in points], [p.y for p in points]
    interval = exponent_interval(xs, ys)
    return Curve(axis=axis, metric=metric.name, line=dict(dimensions)[by], dimensions=dimensions,
                 points=tuple(points), missing=tuple(missing), exponent=fit_exponent(xs, ys),
                 ran_eagerly=any(e.result.ran_eagerly for entries in by_x.values() for e in entries),
                 exponent_half_width=interval[1] if interval else None)


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The slope of the least-squares line through (log x, log y): y ~ x^slope. None with fewer than two
    distinct positive x."""
    pairs = [(x, y) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len({x for x, _ in pairs}) < 2:
        return None
    log_x = np.log([x for x, _ in pairs])
    log_y = np.log([y for _, y in pairs])
    slope, _ = np.polyfit(log_x, log_y, 1)
    return float(slope)


MIN_POINTS_FOR_EXPONENT = 3  # two points always lie on a line: their slope says nothing about the scaling


def exponent_interval(xs: Sequence[float], ys: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """The least-squares slope of log y on log x and the half width of its ``confidence`` interval
    (Student's t with n - 2 degrees of freedom on the slope's standard error); None with fewer than
    MIN_POINTS_FOR_EXPONENT distinct positive x."""
    from scipy import stats

    pairs = [(x, y) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len({x for x, _ in pairs}) < MIN_POINTS_FOR_EXPONENT:
        return None
    fit = stats.linregress(np.log([x for x, _ in pairs]), np.log([y for _, y in pairs]))
    half_width = float(stats.t.ppf(0.5 + confidence / 2, len(pairs) - 2) * fit.stderr)
    return float(fit.slope), half_width


def spans_decade(values: Iterable[float]) -> bool:
    """The log-scale rule: all values positive and the largest at least LOG_SCALE_SPAN times the smallest."""
    values = [v for v in values if v is not None]
    return bool(values) and min(values) > 0 and max(values) / min(values) >= LOG_SCALE_SPAN


def _layout(axis: str, metric: Metric, by: str, curves: list[Curve]) -> ScalingChart:
    facet_dimensions = [d for d in FACET_ORDER if d != by]
    varying = [d for d in facet_dimensions if len({c.dimension(d) for c in curves}) > 1]
    constant = tuple((d, curves[0].dimension(d)) for d in facet_dimensions if d not in varying)
    facets: dict[tuple, list[Curve]] = {}
    for curve in curves:
        facets.setdefault(tuple(curve.dimension(d) for d in varying), []).append(curve)
    line_order = _line_order(by)
    built = []
    for values in sorted(facets, key=lambda v: tuple(_sort_key(d, x) for d, x in zip(varying, v))):
        members = sorted(facets[values], key=lambda c: line_order(c.line))
        title = " · ".join(values) if values else ""
        built.append(Facet(title, tuple(members)))
    xs = [p.x for c in curves for p in c.points] + [m.x for c in curves for m in c.missing]
    ys = [p.y for c in curves for p in c.points]
    return ScalingChart(axis=axis, metric=metric, by=by, facets=tuple(built), constant=constant,
                        x_log=spans_decade(xs), y_log=spans_decade(ys))


KNOWN_ORDER = {"backend": BACKENDS, "cell": CELLS, "mode": MODES}


def _line_order(by: str):
    known = KNOWN_ORDER.get(by, ())
    return lambda value: (known.index(value) if value in known else len(known), value)


def _sort_key(dimension: str, value: str):
    known = KNOWN_ORDER.get(dimension)
    if known and value in known:
        return (known.index(value), value)
    # the fixed sizes sort by their numbers, not as text ("H64" before "H128")
    numbers = tuple(int(''.join(ch for ch in part if ch.isdigit()) or 0) for part in value.split())
    return (math.inf, numbers, value) if dimension == "fixed" else (math.inf, (), value)
