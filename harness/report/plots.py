"""Charts: scaling curves (scaling.py), speedups over cudnn (harness.gate.speedup), A versus B (harness.gate.compare).

Each ``*_figure`` function returns a matplotlib Figure (built on the Agg canvas, no pyplot, no global
state), so tests can read back what was drawn; :func:`png_bytes` renders one the same way every time.
"""

from __future__ import annotations

import functools
import io
import math
import textwrap
import warnings
from typing import Sequence

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.ft2font import FT2Font
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from harness.gate.compare import Comparison, comparison_method
from harness.errors import ChartTooLarge
from harness.spec.limits import MAX_CHART_PANELS, MAX_CHART_ROWS
from harness.gate.ratios import Ratio, interval_method
from harness.report.names import baseline_name, result_backend_name
from harness.report.scaling import AXIS_LABELS, AXIS_NAMES, AXIS_SYMBOLS, MIN_POINTS_FOR_EXPONENT, ScalingChart
from harness.report.text import format_count
from harness.gate.speedup import UNRELIABLE_RULE, Speedup, SpeedupMean, geometric_mean_speedups
from harness.spec.suite import BACKENDS, CELLS, COMPILE_MODES, SIZE_AXES
from harness.gate.verdict import VERDICTS, Verdict, band

DPI = 110
PALETTE = ("#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
BAND_ALPHA = 0.18
FAILED_MARKER = "x"
UNRELIABLE_COLOUR = "0.6"  # a speedup too uncertain to show as a number: grey, hollow, dashed whiskers


# --- styles -----------------------------------------------------------------------------------------


def line_style(dimension: str, value: str, order: Sequence[str] = ()) -> dict:
    """The same backend (or cell) gets the same colour and marker in every chart."""
    known = {"backend": BACKENDS, "cell": CELLS}.get(dimension) or tuple(order)
    base, _, compile_mode = value.partition("@") if dimension == "backend" else (value, "", "")
    index = known.index(base) if base in known else len(known)
    # a compile mode other than the default: its backend's colour, another marker
    shift = COMPILE_MODES.index(compile_mode) + 3 if compile_mode in COMPILE_MODES else 0
    return {"color": PALETTE[index % len(PALETTE)], "marker": MARKERS[(index + shift) % len(MARKERS)]}


def _value_formatter(unit: str):
    if unit in ("ms", "B", "KiB", "MiB", "GiB"):
        return FuncFormatter(lambda v, _: f"{v:g}")
    if unit.endswith("/s") and unit != "TFLOP/s":
        return FuncFormatter(lambda v, _: format_count(v))
    return FuncFormatter(lambda v, _: f"{v:.3g}")


def _ratio_formatter():
    return FuncFormatter(lambda v, _: f"{v:.3g}×")


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def check_chart_size(what: str, panels: int = 1, rows: int = 0) -> None:
    """Refuse a chart past the limits (harness.spec.limits): unreadable as one image, and minutes to draw."""
    if panels > MAX_CHART_PANELS:
        raise ChartTooLarge(f"{what}: {panels} panels, more than the {MAX_CHART_PANELS} one chart draws; "
                            f"narrow the cases with --filter")
    if rows > MAX_CHART_ROWS:
        raise ChartTooLarge(f"{what}: {rows} rows of cases, more than the {MAX_CHART_ROWS} one chart draws; "
                            f"narrow the cases with --filter")


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG, byte-identical for identical figures: no software name, no timestamp.

    A character no font of the text has (an emoji in a suite name) is drawn as MISSING_GLYPH, so that
    matplotlib has nothing to warn about on the user's terminal; any such warning left is dropped."""
    _replace_missing_glyphs(figure)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


MISSING_GLYPH = "?"


def _replace_missing_glyphs(figure: Figure) -> None:
    for text in figure.findobj(Text):
        content = text.get_text()
        if not content or content.isascii() or "$" in content:  # ASCII: always there; $: mathtext's own fonts
            continue
        covered = _covered_characters(text.get_fontproperties())
        replaced = "".join(ch if ord(ch) in covered or ch in "\n\t" else MISSING_GLYPH for ch in content)
        if replaced != content:
            text.set_text(replaced)


@functools.lru_cache(maxsize=None)
def _charmap(font_path: str) -> frozenset[int]:
    return frozenset(FT2Font(font_path).get_charmap())


def _covered_characters(properties) -> frozenset[int]:
    """The code points that the fonts matplotlib picks for ``properties`` (with their fallbacks) can draw."""
    paths = font_manager.fontManager._find_fonts_by_props(properties)
    return frozenset().union(*(_charmap(str(path)) for path in paths))


# --- scaling curves ---------------------------------------------------------------------------------


def scaling_figure(chart: ScalingChart, context: str, curve_display_names: dict[str, str] | None = None,
                   metric_label: str | None = None) -> Figure:
    """One facet per cell/mode/... with one line per ``chart.by`` value: the medians as points and line,
    the interquartile range as a band, and the fitted exponent in the legend."""
    count = len(chart.facets)
    check_chart_size(f"{chart.metric.label} vs {chart.axis}", panels=count)
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    lines = len({c.line for c in chart.curves})
    legend_rows = lines + 1 if any(len(c.line) + (15 if c.ran_eagerly else 0) > 18 for c in chart.curves) \
        else math.ceil((lines + 1) / 2)
    width = 5.4 * columns
    figure = _new_figure(width, (3.6 + 0.28 * legend_rows) * rows + 1.3)
    grid = figure.subplots(rows, columns, sharey=True, squeeze=False)
    metric = chart.metric
    curve_display_names = curve_display_names or {}
    symbol = AXIS_SYMBOLS[chart.axis]
    x_values = sorted({p.x for c in chart.curves for p in c.points} | {m.x for c in chart.curves for m in c.missing})
    line_values = list(dict.fromkeys(c.line for c in chart.curves))
    curve_names = dict(curve_display_names) if chart.by == "backend" else {}
    unit, scale = value_unit(metric.unit, [p.y for c in chart.curves for p in c.points])
    for ax, facet in zip(grid.flat, chart.facets):
        for curve in facet.curves:
            style = line_style(chart.by, curve.line, line_values)
            xs = [p.x for p in curve.points]
            label = curve_names.get(curve.line, curve.line) + (" (NOT compiled)" if curve.ran_eagerly else "")
            shown = curve.shown_exponent
            if shown is not None:
                label += rf"  $\propto {symbol}^{{{shown[0]:.2f}}}$ ±{shown[1]:.2f}"
            ax.plot(xs, [p.y / scale for p in curve.points], label=label, linewidth=1.8, markersize=5, **style)
            banded = [p for p in curve.points if p.low is not None]
            if len(banded) > 1:
                ax.fill_between([p.x for p in banded], [p.low / scale for p in banded],
                                [p.high / scale for p in banded], color=style["color"], alpha=BAND_ALPHA,
                                linewidth=0)
            _draw_missing(ax, [m.x for m in curve.missing], style["color"], vertical=False)
        if any(c.missing for c in facet.curves):
            ax.plot([], [], linestyle="none", marker=FAILED_MARKER, color="0.3", label="failed / skipped / no value")
        if facet.title:
            ax.set_title(facet.title, fontsize=11)
        ax.set_xlabel(AXIS_LABELS[chart.axis] + (", log scale" if chart.x_log else ""), fontsize=10)
        _set_x_axis(ax, x_values, chart.x_log)
        ax.grid(True, which="major", alpha=0.3)
        longest = max(len(c.line) + (15 if c.ran_eagerly else 0) for c in facet.curves)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1 if longest > 18 else 2, frameon=False,
                  fontsize=9.5, handlelength=2.2, columnspacing=1.5)
    for ax in grid.flat[count:]:
        ax.set_visible(False)
    for ax in grid[:, 0]:
        ax.set_ylabel(f"{metric_label or metric.label} [{unit}]" + (", log scale" if chart.y_log else ""),
                      fontsize=10)
    first = grid.flat[0]
    if chart.y_log:
        first.set_yscale("log")
        first.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        first.yaxis.set_minor_locator(NullLocator())
    first.yaxis.set_major_formatter(_value_formatter(unit))
    constant = dict(chart.constant)
    facts = [constant[d] for d in ("cell", "mode", "backend") if d in constant]
    if "fixed" in constant:
        facts.append(f"{constant['fixed']} fixed")
    label = metric_label or metric.label
    title = f"{label[0].upper()}{label[1:]} vs {AXIS_NAMES[chart.axis]}"
    _titles(figure, f"{title}{' · ' + ' · '.join(facts) if facts else ''}", context, width)
    figure.supxlabel(scaling_caption(chart), fontsize=8.5, color="0.3")
    return figure


def scaling_caption(chart: ScalingChart) -> str:
    """The chart's one caption line; the method in full is scaling_detail (the HTML's caption)."""
    band = "IQR" if chart.metric.region or any(p.low is not None for c in chart.curves for p in c.points) else "none"
    exponent = (rf" · $\propto {AXIS_SYMBOLS[chart.axis]}^k$ ±: log-log slope, 95% interval"
                if any(c.shown_exponent for c in chart.curves) else "")
    points = "median per case" if chart.metric.region or band == "IQR" else "value per case"
    return f"points: {points} · band: {band}{exponent}"


def scaling_detail(chart: ScalingChart) -> str:
    metric = chart.metric
    band = "the interquartile range of the samples" if metric.region or any(
        p.low is not None for c in chart.curves for p in c.points) else "none (not from timed samples)"
    points = ("the median per case" if metric.region else f"{metric.label} at each case's median time"
              if band.startswith("the inter") else "the value per case")
    return (f"Points: {points}; band: {band}. The exponent k in the legend is the least-squares slope of log "
            f"{metric.label} on log {chart.axis}, with the half width of its 95% interval (Student's t on the "
            f"fit's standard error); shown only for lines of {MIN_POINTS_FOR_EXPONENT} or more points, since two "
            f"points always lie on a line.")


def value_unit(unit: str, values: Sequence[float]) -> tuple[str, float]:
    """The unit a chart's axis shows and what its values are divided by: bytes in one unit for the whole
    chart, chosen from the largest value (KiB, MiB or GiB), so that ticks read 200, 400, 600 MiB."""
    if unit != "bytes":
        return unit, 1.0
    largest = max((abs(v) for v in values), default=0)
    for name, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if largest >= scale:
            return name, float(scale)
    return "B", 1.0


def _titles(figure: Figure, title: str, context: str, width: float) -> None:
    """The title and, below it, the context, each wrapped to the figure's width: never cut (a one-configuration
    chart's title, 'step time (median) vs batch size · gru · forward_backward · T20 I32 H48 L1', outgrew a
    5.4-inch figure)."""
    fits = max(40, int(width * 11))

    def wrapped(text: str) -> list[str]:
        if not text:
            return []
        balanced = min(fits, math.ceil(len(text) / math.ceil(len(text) / fits)) + 8)  # no one-word last line
        return textwrap.wrap(text, balanced, break_on_hyphens=False)

    figure.suptitle("\n".join([*wrapped(title), *wrapped(context)]), fontsize=11)


def _set_x_axis(ax, values: Sequence[float], log: bool) -> None:
    if log:
        ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(values))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if values:
        low, high = min(values), max(values)
        pad = (high / low) ** 0.05 if log and low > 0 else None
        if pad:
            ax.set_xlim(low / pad, high * pad)


def _draw_missing(ax, positions: Sequence[float], color: str, vertical: bool) -> None:
    """A cross on the edge of the plot where a case gave no value (failed, skipped)."""
    if not positions:
        return
    if vertical:  # positions on the y axis, cross at the left edge
        transform = blended_transform_factory(ax.transAxes, ax.transData)
        ax.plot([0.015] * len(positions), positions, linestyle="none", marker=FAILED_MARKER, color=color,
                markersize=7, transform=transform, clip_on=False)
    else:  # positions on the x axis, cross at the bottom edge
        transform = blended_transform_factory(ax.transData, ax.transAxes)
        ax.plot(positions, [0.03] * len(positions), linestyle="none", marker=FAILED_MARKER, color=color,
                markersize=7, transform=transform, clip_on=False)


# --- speedup over cudnn -----------------------------------------------------------------------------


def speedup_figure(speedups: Sequence[Speedup], context: str) -> Figure:
    """Per configuration (row) and backend (marker): cudnn's median over the backend's, with its CI.
    One facet per cell and mode; > 1 means faster than cudnn."""
    facets = _group(speedups, lambda s: (s.result.case.cell, s.result.case.mode))
    rows, row_labels = _row_labels([s.result.case for s in speedups])
    check_chart_size("speedup over cudnn", panels=len(facets), rows=len(rows))
    backends = _ordered_backends(s.result.case.backend_label for s in speedups)
    geomeans = geometric_mean_speedups(speedups)
    columns = min(max(len(facets), 1), 3)
    facet_rows = math.ceil(max(len(facets), 1) / columns)
    width = max(4.8 * columns, 7.5)
    eager = {s.result.case.backend_label for s in speedups if s.result.ran_eagerly}
    names = {s.result.case.backend_label: result_backend_name(s.result) for s in speedups}
    baseline = baseline_name([s.baseline for s in speedups if s.baseline is not None])
    handles = [Line2D([], [], linestyle="none", **line_style("backend", b),
                      label=_geomean_label(names[b], geomeans.get(b)) + (" (NOT compiled: ran eagerly)" if b in eager
                                                                         else ""))
               for b in backends]
    unreliable = any(s.unreliable_why for s in speedups)
    if unreliable:
        handles.append(Line2D([], [], linestyle="none", marker="o", color=UNRELIABLE_COLOUR, markerfacecolor="white",
                              label="unreliable: not in the geomean"))
    if any(s.ratio is None for s in speedups):
        handles.append(Line2D([], [], linestyle="none", marker=FAILED_MARKER, color="0.3",
                              label="failed / skipped"))
    longest = max((len(h.get_label()) for h in handles), default=0)
    legend_columns = min(len(handles), 1 if longest > 45 else 2 if longest > 32 else 3)
    region = _region_time(speedups)
    caption = speedup_caption(speedups)
    # backends with compile modes make long legend entries, one per line: room for them below the plots
    legend_lines = len(backends) + 1 if any("@" in b for b in backends) else 0
    if unreliable and not legend_lines:  # room for the longer legend
        legend_lines = max(0, math.ceil(len(handles) / legend_columns) - 4)
    figure = _new_figure(width, facet_rows * (0.3 * len(rows) + 1.2) + 1.6 + 0.25 * legend_lines)
    grid = figure.subplots(facet_rows, columns, sharey=True, sharex=True, squeeze=False)
    for ax in grid.flat[len(facets):]:
        ax.set_visible(False)
    offsets = _offsets(len(backends))
    for ax, ((cell, mode), members) in zip(grid.flat, facets.items()):
        _shade_rows(ax, len(rows))
        for backend, offset in zip(backends, offsets):
            style = line_style("backend", backend)
            ok = [s for s in members if s.result.case.backend_label == backend and s.reliable]
            if ok:
                ax.errorbar([s.ratio.value for s in ok], [rows[_shape(s.result.case)] + offset for s in ok],
                            xerr=_xerr([s.ratio for s in ok]), linestyle="none", color=style["color"],
                            marker=style["marker"], markersize=5, capsize=2, elinewidth=1, label=backend)
            uncertain = [s for s in members if s.result.case.backend_label == backend and s.unreliable_why]
            if uncertain:
                drawn = ax.errorbar([s.ratio.value for s in uncertain],
                                    [rows[_shape(s.result.case)] + offset for s in uncertain],
                                    xerr=_xerr([s.ratio for s in uncertain]), linestyle="none",
                                    color=UNRELIABLE_COLOUR, marker=style["marker"], markerfacecolor="white",
                                    markersize=5, capsize=2, elinewidth=1, label=f"{backend} (unreliable)")
                for whiskers in drawn.lines[2]:
                    whiskers.set_linestyle("--")
            failed = [rows[_shape(s.result.case)] + offset for s in members
                      if s.result.case.backend_label == backend and s.ratio is None]
            _draw_missing(ax, failed, style["color"], vertical=True)
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_title(f"{cell} · {mode}", fontsize=11)
        facet_baseline = baseline_name([s.baseline for s in members if s.baseline is not None])
        ax.set_xlabel(f"speedup over {facet_baseline} (× faster), log scale", fontsize=10)
        ax.grid(True, axis="x", which="major", alpha=0.3)
    first = grid.flat[0]
    first.set_yticks(range(len(rows)), row_labels)
    first.set_ylim(len(rows) - 0.5, -0.5)
    # an unreliable ratio's point stays in the range, its (wide) interval does not squash the others
    _finish_ratio_axes(grid, [s.ratio if s.reliable else Ratio(s.ratio.value) for s in speedups
                              if s.ratio is not None])
    _caption_legend(figure, handles, caption, columns=legend_columns)
    _titles(figure, f"Speedup over {baseline} per case (median {region})", context, width)
    return figure


def speedup_caption(speedups: Sequence[Speedup]) -> str:
    """The chart's one caption line; the method in full is speedup_detail (the HTML's caption)."""
    baseline = baseline_name([s.baseline for s in speedups if s.baseline is not None])
    unreliable = " · grey, hollow: unreliable, not in the geomean" if any(s.unreliable_why for s in speedups) else ""
    return f"point: {baseline} median / backend median · whiskers: 95% interval{unreliable}"


def speedup_detail(speedups: Sequence[Speedup]) -> str:
    region = _region_time(speedups)
    baseline = baseline_name([s.baseline for s in speedups if s.baseline is not None])
    text = (f"Each point is {baseline}'s median {region} over the backend's (right of the black line: faster than "
            f"{baseline}). Whiskers: {interval_method()}; whiskers longer than the plot are cut at its edge.")
    if any(s.unreliable_why for s in speedups):
        text += f" Grey, hollow, dashed: unreliable, left out of the geometric means: {UNRELIABLE_RULE}."
    return text


def _geomean_label(backend: str, mean: SpeedupMean | None) -> str:
    if mean is None:
        return f"{backend}: no ratio"
    value = f"geomean {mean.value:.2f}×" if mean.value is not None else "no reliable ratio"
    return f"{backend}: {value}" + (f" ({mean.left_out_text()})" if mean.unreliable else "")


def _region_time(speedups: Sequence[Speedup]) -> str:
    regions = sorted({s.region for s in speedups})
    return " / ".join(regions) + " time"


# --- A versus B -------------------------------------------------------------------------------------


def _verdict_style(verdict: Verdict) -> dict:
    return {"color": verdict.colour, "marker": "o", "markeredgecolor": verdict.colour,
            "markerfacecolor": "white" if verdict.hollow else verdict.colour}


def comparison_figure(comparison: Comparison, context_a: str, context_b: str) -> Figure:
    """Per case, B's median over A's with its CI, coloured by the verdict of the regression gate
    (``rnnbench compare A B``); one facet per backend with its geometric mean. Only the cases the gate
    compared are drawn; the caption counts the others."""
    pairs = comparison.pairs
    facets = _group(pairs, lambda p: p.case.backend_label, order=BACKENDS)
    rows, row_labels = _row_labels([p.case for p in pairs], with_cell_and_mode=True)
    check_chart_size(f"{comparison.current_label} vs {comparison.baseline_label}", panels=len(facets),
                     rows=len(rows))
    columns = min(max(len(facets), 1), 4 if len(rows) > 10 else 3)
    facet_rows = math.ceil(max(len(facets), 1) / columns)
    width = max(3.5 * columns + 2.4, 7.5)
    figure = _new_figure(width, facet_rows * (0.3 * len(rows) + 1.4) + 3.0)
    grid = figure.subplots(facet_rows, columns, sharey=True, sharex=True, squeeze=False)
    for ax in grid.flat[len(facets):]:
        ax.set_visible(False)
    threshold = comparison.threshold
    edges = band(threshold)
    for ax, (backend, members) in zip(grid.flat, facets.items()):
        _shade_rows(ax, len(rows))
        for verdict in VERDICTS:
            chosen = [p for p in members if p.verdict == verdict]
            if chosen:
                ax.errorbar([p.ratio for p in chosen], [rows[_row_key(p.case)] for p in chosen],
                            xerr=_xerr([p.interval for p in chosen]), linestyle="none", markersize=5, capsize=2,
                            elinewidth=1, label=verdict.value, **_verdict_style(verdict))
        ax.axvline(1.0, color="black", linewidth=1)
        for edge in edges:
            ax.axvline(edge, color="0.45", linewidth=0.9, linestyle=":")
        geomean = comparison.geomean_by_backend().get(backend)
        if geomean:
            ax.axvline(geomean, color="0.25", linewidth=1, linestyle="--")
        counts = comparison.counts(members)
        eager = (" (NOT compiled: ran eagerly)" if any(p.baseline.ran_eagerly or p.current.ran_eagerly for p in members)
                 else "")
        tally = " · ".join(f"{counts[v]} {v.word}" for v in VERDICTS if v != Verdict.UNCHANGED)
        ax.set_title(f"{backend}{eager}: geomean {geomean:.3g}×\n{tally}", fontsize=10.5)
        ax.set_xlabel("B / A, log scale", fontsize=10)
        ax.grid(True, axis="x", which="major", alpha=0.3)
    first = grid.flat[0]
    if rows:
        first.set_yticks(range(len(rows)), row_labels)
        first.set_ylim(len(rows) - 0.5, -0.5)
    _finish_ratio_axes(grid, [p.interval for p in pairs])
    handles = [Line2D([], [], linestyle="none", label=verdict.legend(threshold, comparison.rule), **_verdict_style(verdict))
               for verdict in VERDICTS]
    handles.append(Line2D([], [], color="0.45", linewidth=0.9, linestyle=":",
                          label=f"threshold band {edges[0]:.3g}×–{edges[1]:.3g}× (±{threshold:.1%})"))
    handles.append(Line2D([], [], color="0.25", linestyle="--", label="geometric mean"))
    overall = comparison.geomean
    counts = comparison.counts()
    region = comparison.region or "/".join(sorted({p.region for p in pairs})) or "step"
    a, b = comparison.baseline_label, comparison.current_label
    tally = ", ".join(f"{counts[v]} {v.word}" for v in VERDICTS)
    figure.suptitle(f"{b} (B) vs {a} (A): median {region} time, B / A (> 1: B slower)\noverall geomean "
                    f"{overall:.3g}× · {tally} of {len(pairs)} compared cases"
                    if overall else f"{b} (B) vs {a} (A): no matched case", fontsize=12)
    left_out = []
    if comparison.only_in_baseline:
        left_out.append(f"{len(comparison.only_in_baseline)} only in A")
    if comparison.only_in_current:
        left_out.append(f"{len(comparison.only_in_current)} only in B")
    broken = sum(1 for n in comparison.not_compared if n.broken)
    if len(comparison.not_compared) > broken:
        left_out.append(f"{len(comparison.not_compared) - broken} failed, skipped or without samples in A or B")
    if broken:
        left_out.append(f"{broken} BROKEN: ran in A, fails in B (fails the gate)")
    lines = [*_wrap(f"A: {context_a}", width), *_wrap(f"B: {context_b}", width),
             f"colours: verdicts of rnnbench compare A B (threshold {threshold:.1%}, alpha {comparison.alpha:g}, "
             f"{comparison.rule.adjustment}) · whiskers: {comparison.interval_confidence:.0%} interval"]
    for warning in comparison.warnings:
        lines += _wrap(f"warning: {warning}", width)
    if comparison.blocking_differences:
        lines += _wrap("environments differ (" + ", ".join(d.label for d in comparison.blocking_differences)
                       + "): rnnbench compare refuses to gate these files without --allow-env-mismatch", width)
    if left_out:
        lines += _wrap(f"not drawn: {', '.join(left_out)} (listed in the report)", width)
    _caption_legend(figure, handles, "\n".join(lines), columns=2)
    return figure


def comparison_detail(comparison: Comparison) -> str:
    return (f"Colours: the verdicts of rnnbench compare A B (A the baseline): threshold {comparison.threshold:.1%}, "
            f"alpha {comparison.alpha:g} after {comparison.rule.adjustment_words} over the {len(comparison.pairs)} compared cases. "
            f"Whiskers: {comparison_method(comparison)}; whiskers longer than the plot are cut at its edge.")


# --- shared helpers ---------------------------------------------------------------------------------


def _group(items, key, order: Sequence[str] = ()):
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    if order:
        return {k: groups[k] for k in sorted(groups, key=lambda k: (order.index(k) if k in order else len(order), k))}
    return groups


def _shape(case) -> tuple:
    # the variants away from their defaults (-P32, -bf, -packed-u0.25) keep their own rows
    return tuple(getattr(case, axis) for axis in SIZE_AXES) + (case.bidirectional,
                                                                case.shape_label[len(case.base_shape_label):])


def _ordered_backends(labels) -> list[str]:
    """Backend labels (with their compile modes) in the order of BACKENDS, each once."""
    labels = set(labels)
    return sorted(labels, key=lambda b: (BACKENDS.index(b.partition("@")[0]) if b.partition("@")[0] in BACKENDS
                                         else len(BACKENDS), b))


def _row_key(case) -> tuple:
    return (case.cell, case.mode) + _shape(case)


def _row_labels(cases, with_cell_and_mode: bool = False) -> tuple[dict, list[str]]:
    """Row positions keyed by shape (or by cell, mode and shape), in the order the cases first appear in
    the results (the suite's order, which keeps each sweep together), and their labels."""
    if not with_cell_and_mode:
        keys = list(dict.fromkeys(_shape(c) for c in cases))
        return {key: row for row, key in enumerate(keys)}, [_shape_label(key) for key in keys]
    shapes = list(dict.fromkeys(_shape(c) for c in cases))
    keys = sorted(dict.fromkeys(_row_key(c) for c in cases),
                  key=lambda k: (CELLS.index(k[0]) if k[0] in CELLS else len(CELLS), k[0], k[1], shapes.index(k[2:])))
    vary_cell = len({k[0] for k in keys}) > 1
    vary_mode = len({k[1] for k in keys}) > 1
    labels = [" ".join(([key[0]] if vary_cell else []) + ([key[1]] if vary_mode else []) + [_shape_label(key[2:])])
              for key in keys]
    return {key: row for row, key in enumerate(keys)}, labels


def _shape_label(shape: tuple) -> str:
    *sizes, bidirectional, variant = shape
    text = "-".join(f"{AXIS_SYMBOLS[a]}{v}" for a, v in zip(SIZE_AXES, sizes))
    return text + ("-bi" if bidirectional else "") + variant


def _offsets(count: int) -> list[float]:
    if count <= 1:
        return [0.0]
    spread = min(0.6, 0.15 * (count - 1))
    return [-spread / 2 + spread * i / (count - 1) for i in range(count)]


def _wrap(text: str, figure_width: float) -> list[str]:
    """A caption line broken into as few lines as fit a figure ``figure_width`` inches wide (at the caption's
    font size), of about equal length."""
    fits = max(60, int(figure_width * 14))
    lines = math.ceil(len(text) / fits)
    return textwrap.wrap(text, width=min(fits, math.ceil(len(text) / lines) + 12), break_on_hyphens=False)


def _caption_legend(figure: Figure, handles, caption: str, columns: int) -> None:
    """The legend below the plots with the caption as its title: constrained layout keeps both clear of the
    data and of each other."""
    legend = figure.legend(handles=handles, loc="outside lower center", ncol=columns, frameon=False,
                           fontsize=9.5, title=caption, title_fontsize=8.5)
    legend.get_title().set_color("0.3")
    legend.get_title().set_multialignment("center")


def _shade_rows(ax, count: int) -> None:
    for row in range(0, count, 2):
        ax.axhspan(row - 0.5, row + 0.5, color="0.95", zorder=0, linewidth=0)


def _xerr(ratios) -> list[list[float]]:
    lows = [r.value - r.low if r.has_ci else 0.0 for r in ratios]
    highs = [r.high - r.value if r.has_ci else 0.0 for r in ratios]
    return [lows, highs]


WHISKER_REACH = 2.0  # the x range reaches at most this factor beyond the points; longer whiskers are cut


def ratio_limits(ratios) -> tuple[float, float]:
    """The x range of a ratio chart: every point and 1, plus the intervals up to WHISKER_REACH beyond them,
    so that one very uncertain case (a handful of samples) does not squash every other point onto 1."""
    values = [r.value for r in ratios] + [1.0]
    low, high = min(values), max(values)
    lows = [r.low for r in ratios if r.has_ci] or [low]
    highs = [r.high for r in ratios if r.has_ci] or [high]
    low = min(max(min(lows + [low]), low / WHISKER_REACH), 0.8)  # never narrower than 0.8x to 1.25x
    high = max(min(max(highs + [high]), high * WHISKER_REACH), 1.25)
    pad = (high / low) ** 0.04
    return low / pad, high * pad


def _finish_ratio_axes(grid, ratios) -> None:
    """Shared log x axes of ratios, after the data is drawn: the range of ratio_limits, ticks as dense as
    the range allows, tick labels on every facet (one above an empty cell of the grid would have none)."""
    first = grid.flat[0]
    first.set_xscale("log")
    low, high = ratio_limits(ratios)
    first.set_xlim(low, high)
    decades = math.log10(high / low)
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1.2 else (1.0, 2.0, 5.0) if decades < 2.2 else (1.0,)
    first.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    first.xaxis.set_minor_locator(NullLocator())
    first.xaxis.set_major_formatter(_ratio_formatter())
    for ax in grid.flat:
        ax.tick_params(axis="x", labelbottom=True)
        ax.tick_params(axis="y", labelsize=8.5)
