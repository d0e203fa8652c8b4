"""History as text and trend charts: one chart per case, one line per environment fingerprint, the fitted
piecewise-constant levels (harness.gate.step_detect) drawn over the run medians and their 95 % intervals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from harness.record.history import Series
from harness.gate.step_detect import Segment, Step, fit_segments, significant_steps
from harness.record.results_store import slug

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class SeriesSteps:
    series: Series
    segments: tuple[Segment, ...]
    steps: tuple[Step, ...]

    @property
    def latest_step_regresses(self) -> bool:
        return bool(self.steps) and self.steps[-1].regression


def detect(series: Series, threshold: float) -> SeriesSteps:
    segments = fit_segments([point.median_ms for point in series.points])
    return SeriesSteps(series, tuple(segments), tuple(significant_steps(segments, threshold)))


def _commit(point) -> str:
    return (point.commit or "?")[:8]


def series_lines(series: Series) -> list[str]:
    lines = [f"{series.key}  [{series.region}; {series.environment_label}; fingerprint {series.fingerprint}]",
             f"  {'run':>5}  {'started (UTC)':<25}  {'commit':<8}  {'median ms':>10}  {'95% CI':<21}  {'n':>6}"]
    for point in series.points:
        interval = (f"[{point.ci_low_ms:.4g}, {point.ci_high_ms:.4g}]"
                    if point.ci_low_ms is not None and point.ci_high_ms is not None else "-")
        lines.append(f"  {point.run_id:>5}  {point.started_utc or '?':<25}  {_commit(point):<8}  "
                     f"{point.median_ms:>10.4g}  {interval:<21}  {point.n:>6}")
    return lines


def step_lines(found: SeriesSteps) -> list[str]:
    points = found.series.points
    lines = []
    for step in found.steps:
        before, after = points[step.before.stop - 1], points[step.after.start]
        kind = "REGRESSION" if step.regression else "improvement"
        lines.append(f"  {kind}: {step.change:+.1%} ({step.before.value:.4g} -> {step.after.value:.4g} ms; noise "
                     f"{max(step.before.noise, step.after.noise):.3g} ms) between run {before.run_id} "
                     f"(commit {_commit(before)}) and run {after.run_id} (commit {_commit(after)})")
    return lines


def trend_figure(key: str, found: Sequence[SeriesSteps]) -> Figure:
    """One case: each fingerprint's medians in run order, their intervals, the fitted levels, the steps."""
    # matplotlib here, not at the top: `history add` and `history regressions` draw nothing (0.5 s of their start)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from harness.report.plots import MARKERS, PALETTE

    figure = Figure(figsize=(8, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    runs = sorted({(p.started_utc or "", p.run_id) for f in found for p in f.series.points})
    position = {run_id: index for index, (_, run_id) in enumerate(runs)}
    commit_of = {p.run_id: _commit(p) for f in found for p in f.series.points}
    for index, item in enumerate(found):
        colour, marker = PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)]
        points = item.series.points
        xs = [position[p.run_id] for p in points]
        ys = [p.median_ms for p in points]
        low = [p.median_ms - p.ci_low_ms if p.ci_low_ms is not None else 0.0 for p in points]
        high = [p.ci_high_ms - p.median_ms if p.ci_high_ms is not None else 0.0 for p in points]
        label = item.series.facts.get("GPU model") or item.series.facts.get("CPU model") or item.series.fingerprint
        label = f"{label}, torch {item.series.facts.get('torch')}"
        axes.errorbar(xs, ys, yerr=[low, high], fmt=marker, color=colour, ms=4, lw=0.8, capsize=2,
                      label=f"{label} (median, 95% CI)")
        for number, segment in enumerate(item.segments):
            span = [xs[segment.start] - 0.4, xs[segment.stop - 1] + 0.4]
            axes.plot(span, [segment.value] * 2, color=colour, lw=2, alpha=0.6,
                      label="fitted level (piecewise constant)" if number == 0 and index == 0 else None)
        for step in item.steps:
            x = (xs[step.before.stop - 1] + xs[step.after.start]) / 2
            axes.axvline(x, color="#d62728" if step.regression else "#2ca02c", ls="--", lw=1)
            axes.annotate(f"{step.change:+.0%}", (x, max(step.before.value, step.after.value)),
                          textcoords="offset points", xytext=(3, 4), fontsize=8,
                          color="#d62728" if step.regression else "#2ca02c")
    ticks = list(range(len(runs)))
    stride = max(1, len(ticks) // 12)
    axes.set_xticks(ticks[::stride], [commit_of[run_id] for _, run_id in runs][::stride], rotation=45,
                    fontsize=7, ha="right")
    axes.set_xlabel("run (commit), oldest first")
    region = found[0].series.region if found else "step"
    axes.set_ylabel(f"{region} median (ms)")
    axes.set_title(key, fontsize=9)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    return figure


def trend_charts(found: Sequence[SeriesSteps]) -> dict[str, bytes]:
    """File name -> PNG, one per case (and region)."""
    from harness.report.plots import png_bytes

    by_case: dict[tuple[str, str], list[SeriesSteps]] = {}
    for item in found:
        by_case.setdefault((item.series.key, item.series.region), []).append(item)
    return {f"history-{slug(key)}-{region}.png": png_bytes(trend_figure(key, items))
            for (key, region), items in by_case.items()}


def regressions_lines(found: Sequence[SeriesSteps]) -> list[str]:
    """``rnnbench history regressions``: each series with steps and its steps, then a count line."""
    lines = []
    for item in found:
        if item.steps:
            lines.append(f"{item.series.key}  [{item.series.region}; {item.series.environment_label}]")
            lines.extend(step_lines(item))
    regressed = [item for item in found if item.latest_step_regresses]
    stepped = sum(1 for item in found if item.steps)
    lines.append(f"{len(found)} series, {stepped} with steps; latest step a regression in {len(regressed)}"
                 + (": " + ", ".join(item.series.key for item in regressed) if regressed else ""))
    return lines


def stored_steps(db_path, case_glob: str | None, region: str | None, threshold: float) -> list[SeriesSteps]:
    """Every series of the history at ``db_path`` (default: results/history.sqlite) whose case matches
    ``case_glob``, with its fitted steps; HistoryError when there is none."""
    from harness.record.history import History, HistoryError
    from harness.record.results_store import STORE

    with History(db_path or STORE.history_path, create=False) as store:
        found = [detect(series, threshold) for series in store.series(case_glob, region)]
    if not found:
        raise HistoryError(f"no ok case{' matches ' + case_glob if case_glob else ''} in the history")
    return found


def series_steps(db_path, case_glob: str | None, metric: str | None, threshold: float) -> list[SeriesSteps]:
    """:func:`stored_steps` for ``rnnbench history``'s options: ``--metric`` one of the timed regions."""
    from harness.errors import UsageError
    from harness.spec.cases import REGIONS_BY_MODE

    regions = sorted({region for regions in REGIONS_BY_MODE.values() for region in regions})
    if metric is not None and metric not in regions:
        raise UsageError(f"--metric {metric!r}: use one of {', '.join(regions)}")
    return stored_steps(db_path, case_glob, metric, threshold)


def show_history(db_path, case_glob, metric, threshold: float, *, charts: bool = True, out_dir=None) -> list[str]:
    """``rnnbench history show``: each series and its steps, then the trend charts written (default folder:
    reports/history), as the lines to print."""
    from harness.record.results_io import write_files
    from harness.record.results_store import STORE

    found = series_steps(db_path, case_glob, metric, threshold)
    lines = [line for item in found for line in series_lines(item.series) + step_lines(item)]
    if charts:
        lines += [str(path) for path in write_files(out_dir or STORE.history_charts_dir, trend_charts(found))]
    return lines


def add_to_history(results_paths, db_path) -> list[str]:
    """``rnnbench history add``: every file read and checked before the database is opened (or created), then
    each run added; the lines saying so."""
    from harness.record.results import utc_now
    from harness.record.history import History, prepare_runs
    from harness.record.results_store import STORE, read_runs

    runs = read_runs(results_paths)
    prepare_runs(runs)
    with History(db_path or STORE.history_path, create=True) as store:
        lines = [f"{run.source}: added as run {run_id} ({len(run.cases)} cases)"
                 for run, run_id in zip(runs, store.add(runs, added_utc=utc_now()))]
        return lines + [f"{store.path}: {store.run_count()} runs"]
