"""What ``rnnbench plot`` and ``rnnbench report`` write: which charts for which results, under which file
names. Reads results files, draws, writes; never measures. Same results in, same bytes out."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from harness.spec.cases import select_cases
from harness.gate.compare import DEFAULT_THRESHOLD, Comparison, compare_runs
from harness.errors import ChartTooLarge, ReportError
from harness.record.metrics import SAMPLED_METRICS
from harness.gate.ratios import DEFAULT_ALPHA
from harness.gate.speedup import cudnn_speedups
from harness.report.context import context_line
from harness.report.scaling import LINE_DIMENSIONS, entries_of, resolve_metric, scaling_chart, swept_axes
from harness.record.results import RunResults
from harness.record.results_io import write_files
from harness.record.results_store import STORE, file_labels, slug
from harness.spec.suite import SIZE_AXES

CHARTS = ("curves", "speedup", "compare", "roofline")


@dataclass(frozen=True)
class Chart:
    """A rendered chart: its file name, a one-line title (the image's alt text) and the PNG; or, in a report,
    a chart left out (past harness.spec.limits' chart limits), with ``left_out`` saying why and no PNG."""

    name: str
    title: str
    png: bytes
    left_out: str | None = None
    detail: str = ""  # the method behind the chart in full, for the HTML caption (the PNG has one short line)


def _drawn(name: str, title: str, draw, leave_out_large: bool, detail=lambda: "") -> Chart:
    """The chart ``draw()`` makes, as PNG; with ``leave_out_large``, one too large to draw (ChartTooLarge)
    becomes a left-out chart that says why, instead of an error."""
    from harness.report.plots import png_bytes

    try:
        return Chart(name, title, png_bytes(draw()), detail=detail())
    except ChartTooLarge as exc:
        if not leave_out_large:
            raise
        return Chart(name, title, b"", left_out=str(exc))


def filter_runs(runs: Sequence[RunResults], filters: Sequence[str]) -> list[RunResults]:
    """Only the cases that pass every --filter (axis=values or a glob on the key), as ``rnnbench run``."""
    if not filters:
        return list(runs)
    kept = []
    for run in runs:
        chosen = {case.key for case in select_cases([r.case for r in run.cases], (), filters)}
        kept.append(replace(run, cases=tuple(r for r in run.cases if r.key in chosen)))
    if not any(run.cases for run in kept):
        raise ReportError(f"no case of {', '.join(run.source or '?' for run in runs)} matches "
                          f"--filter {' '.join(filters)}")
    return kept


def filter_profiles(profiles: Sequence, filters: Sequence[str]) -> list:
    """Only the profiled cases that pass every --filter, as for results files."""
    if not filters:
        return list(profiles)
    kept = []
    for profile in profiles:
        chosen = {case.key for case in select_cases([entry.case for entry in profile.cases], (), filters)}
        kept.append(replace(profile, cases=tuple(entry for entry in profile.cases if entry.key in chosen)))
    return kept


def curve_charts(runs: Sequence[RunResults], axes: Sequence[str] | None = None, metric: str | None = None,
                 by: str = "backend", prefix: str | None = None, *, leave_out_large: bool = False) -> list[Chart]:
    """Scaling curves of ``metric`` along each of ``axes`` (default: every axis the results swept)."""
    from harness.report.answer import display_names
    from harness.report.plots import scaling_detail, scaling_figure

    entries = entries_of(runs)
    names: dict[str, str] = {}
    for run in runs:
        names.update(display_names(run))
    if metric is not None:
        resolve_metric(metric)
    if by not in LINE_DIMENSIONS:
        raise ReportError(f"--by {by!r}: choose one of {', '.join(LINE_DIMENSIONS)}")
    if axes is None:
        axes = swept_axes(entries)
    prefix = prefix or _file_slug("+".join(file_labels(runs)))
    charts = []
    for axis in axes:
        chart = scaling_chart(entries, axis, metric, by)
        name = f"{prefix}-{chart.metric.name}-vs-{axis}{'' if by == 'backend' else f'-by-{by}'}.png"
        label = memory_label(chart.metric.name, runs)
        charts.append(_drawn(name, f"{label or chart.metric.label} vs {axis}",
                             lambda chart=chart, label=label: scaling_figure(chart, context_line(runs), names, label),
                             leave_out_large, lambda chart=chart: scaling_detail(chart)))
    return charts


def memory_label(metric: str, runs: Sequence[RunResults]) -> str | None:
    """What a peak-memory chart shows, by device: the CUDA allocator's peak, or on a CPU the case's rise of
    the process's resident memory (harness.measure.telemetry.host); None for other metrics."""
    if metric != "peak_memory":
        return None
    devices = {result.case.device_type for run in runs for result in run.cases}
    if devices == {"cpu"}:
        return "case peak memory (RSS rise)"
    if "cpu" not in devices:
        return "peak allocated memory"
    return None


def speedup_chart(run: RunResults, prefix: str, *, leave_out_large: bool = False) -> Chart | None:
    """The speedup of every backend over cudnn; None when the results have no cudnn to compare with."""
    from harness.report.names import baseline_name
    from harness.report.plots import speedup_detail, speedup_figure

    speedups = list(cudnn_speedups(run))
    if not speedups:
        return None
    baseline = baseline_name([s.baseline for s in speedups if s.baseline is not None])
    return _drawn(f"{prefix}-speedup-over-cudnn.png", f"speedup over {baseline} per case",
                  lambda: speedup_figure(speedups, context_line([run])), leave_out_large,
                  lambda: speedup_detail(speedups))


def roofline_chart(run: RunResults, prefix: str) -> Chart | None:
    """Achieved FLOP/s against arithmetic intensity under the run's measured ceilings; None when the run
    recorded no measured peak (files from before it) or no case ran."""
    from harness.report.plots import png_bytes
    from harness.report.roofline import roofline_figure
    from harness.gate.roofline import Peak, roofline_points

    peak, points = Peak.of(run.environment), roofline_points(run)
    if peak is None or not points:
        return None
    return Chart(f"{prefix}-roofline.png", "roofline: achieved FLOP/s against arithmetic intensity",
                 png_bytes(roofline_figure(points, peak, context_line([run]))))


def comparisons(runs: Sequence[RunResults], region: str | None = None, *, threshold: float = DEFAULT_THRESHOLD,
                alpha: float = DEFAULT_ALPHA) -> list[Comparison]:
    """Each results file after the first against the first (A: the first file, B: the other), by the
    regression gate: the verdicts ``rnnbench compare A B --threshold T --alpha ALPHA`` gives."""
    if region is not None and region not in SAMPLED_METRICS:
        raise ReportError(f"--y {region!r}: an A-vs-B chart compares a timed region: {', '.join(SAMPLED_METRICS)}")
    labels = file_labels(runs)
    return [compare_runs(runs[0], run, metric=region, threshold=threshold, alpha=alpha, labels=(labels[0], label),
                         allow_nothing_in_common=True)
            for run, label in zip(runs[1:], labels[1:])]


def comparison_chart(comparison: Comparison, *, leave_out_large: bool = False) -> Chart:
    from harness.report.plots import comparison_detail, comparison_figure

    a, b = comparison.baseline_label, comparison.current_label
    if not comparison.pairs:
        raise ReportError(f"{b} vs {a}: no case ran in both files "
                          f"({len(comparison.only_in_baseline)} only in A, {len(comparison.only_in_current)} only "
                          f"in B, {len(comparison.not_compared)} failed, skipped or without samples in one)")
    name = f"compare-{_file_slug(b)}-vs-{_file_slug(a)}.png"
    return _drawn(name, f"{b} vs {a}", lambda: comparison_figure(
        comparison, context_line([comparison.baseline]), context_line([comparison.current])), leave_out_large,
                  lambda: comparison_detail(comparison))


def plot(runs: Sequence[RunResults], chart: str = "curves", x: str | None = None, metric: str | None = None,
         by: str = "backend", *, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA) -> list[Chart]:
    """The charts ``rnnbench plot`` draws; ``threshold`` and ``alpha`` are the gate's, for ``chart="compare"``."""
    if chart not in CHARTS:
        raise ReportError(f"--chart {chart!r}: choose one of {', '.join(CHARTS)}")
    if x is not None and x not in SIZE_AXES:
        raise ReportError(f"--x {x!r}: unknown axis; axes: {', '.join(SIZE_AXES)}")
    if chart == "curves":
        if not any(run.cases for run in runs):
            raise ReportError(f"nothing to draw: {', '.join(run.source or '?' for run in runs)} "
                              f"{'holds' if len(runs) == 1 else 'hold'} no case")
        charts = curve_charts(runs, [x] if x else None, metric, by)
        if not charts:
            raise ReportError("no scaling curve to draw: no size axis is swept in these results (each sweep has "
                              "one value); --chart speedup or compare draw cases side by side")
        return charts
    if chart == "speedup":
        charts = [speedup_chart(run, _file_slug(label)) for run, label in zip(runs, file_labels(runs))]
        if not any(charts):
            raise ReportError("no speedup over cudnn to draw: no backend ran beside a cudnn case")
        return [c for c in charts if c]
    if chart == "roofline":
        charts = [roofline_chart(run, _file_slug(label)) for run, label in zip(runs, file_labels(runs))]
        if not any(charts):
            raise ReportError("no roofline to draw: no results file recorded a measured peak with a case that ran")
        return [c for c in charts if c]
    if len(runs) < 2:
        raise ReportError("--chart compare needs two or more results files: A (the first) and B")
    return [comparison_chart(c) for c in comparisons(runs, metric, threshold=threshold, alpha=alpha)]


def write_charts(charts: Sequence[Chart], out_dir: str | Path) -> list[Path]:
    return write_files(out_dir, {chart.name: chart.png for chart in charts})


def _file_slug(label: str) -> str:
    return slug(label, empty="results")


def profile_chart(profile, label: str) -> Chart | None:
    """The stacked bars of a profile file (harness.report.profile_plots); None when no case was profiled."""
    from harness.report.plots import png_bytes
    from harness.report.profile_plots import ordered_cases, profile_figure

    if not ordered_cases(profile):
        return None
    return Chart(f"{_file_slug(label)}-step-breakdown.png", f"where a step's time goes: {label}",
                 png_bytes(profile_figure(profile)))


def write_report(runs: Sequence[RunResults], out_dir: str | Path, *, threshold: float = DEFAULT_THRESHOLD,
                 alpha: float = DEFAULT_ALPHA, profiles: Sequence = (), left_out: list | None = None) -> list[Path]:
    """Every chart, the HTML page (charts embedded) and the Markdown summary; returns the paths written.
    ``threshold`` and ``alpha``: the regression gate's, for the A-vs-B comparisons (stated in the report).
    ``profiles``: profile files (``rnnbench profile``), drawn as stacked bars per case and backend.
    A chart past the chart limits (harness.spec.limits) is not drawn: the page and the summary say so, and so
    does ``left_out``, when given, which receives each such Chart."""
    from harness.report.html import report_html
    from harness.report.markdown import report_markdown

    profile_charts = [chart for chart in (profile_chart(profile, label) for profile, label in
                                          zip(profiles, _profile_labels(profiles))) if chart]
    if not runs:
        from harness.report.html import profiles_only_html

        return write_files(out_dir, {**{chart.name: chart.png for chart in profile_charts},
                                     STORE.report_page: profiles_only_html(profile_charts)})

    labels = file_labels(runs)
    sections = []
    for run, label in zip(runs, labels):
        charts = []
        entries = entries_of([run])
        if swept_axes(entries):
            charts.extend(curve_charts([run], prefix=_file_slug(label), leave_out_large=True))
        speedup = speedup_chart(run, _file_slug(label), leave_out_large=True)
        if speedup:
            charts.append(speedup)
        roofline = roofline_chart(run, _file_slug(label))
        if roofline:
            charts.append(roofline)
        sections.append((label, run, charts))
    compared = comparisons(runs, threshold=threshold, alpha=alpha)
    comparison_charts = [comparison_chart(c, leave_out_large=True) for c in compared if c.pairs]
    charts = [c for _, _, charts in sections for c in charts] + comparison_charts
    charts += profile_charts
    if left_out is not None:
        left_out.extend(chart for chart in charts if chart.left_out)
    return write_files(out_dir, {**{chart.name: chart.png for chart in charts if not chart.left_out},
                                 STORE.report_page: report_html(sections, compared, comparison_charts, profile_charts),
                                 STORE.report_summary: report_markdown(sections, compared)})


def _profile_labels(profiles) -> list[str]:
    return [Path(p.source).name.removesuffix(".json") if p.source else f"profile-{i}"
            for i, p in enumerate(profiles, start=1)]


def write_report_of_files(paths: Sequence[str], filters: Sequence[str], out_dir: str | Path | None, *,
                          threshold: float, alpha: float, left_out: list | None = None) -> list[Path]:
    """``rnnbench report``: results and profile files (told apart by their schema) read, filtered, reported
    into ``out_dir`` (default: reports/)."""
    from harness.record.profile_file import read_results_and_profiles

    runs, profiles = read_results_and_profiles(paths)
    runs, profiles = filter_runs(runs, filters) if runs else runs, filter_profiles(profiles, filters)
    return write_report(runs, out_dir or STORE.reports_dir, threshold=threshold, alpha=alpha, profiles=profiles,
                        left_out=left_out)


def plot_files(paths: Sequence[str], filters: Sequence[str], out_dir: str | Path | None, *, chart: str, x, metric,
               by: str, threshold: float, alpha: float) -> list[Path]:
    """``rnnbench plot``: results files read, filtered, charted and written into ``out_dir`` (default: reports/)."""
    from harness.record.results_store import read_runs

    charts = plot(filter_runs(read_runs(paths), filters), chart, x, metric, by, threshold=threshold, alpha=alpha)
    return write_charts(charts, out_dir or STORE.reports_dir)
