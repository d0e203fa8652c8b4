"""The roofline chart and table of one run: arithmetic intensity (FLOPs per compulsory byte) against achieved
FLOP/s, under the two ceilings measured at the start of the run (dense GEMM of the run's dtype, device copy
bandwidth). Our FLOP model for the points; DeepBench's convention beside it in the table."""

from __future__ import annotations

import math
import textwrap

from typing import TYPE_CHECKING

from harness.record.results import RunResults
from harness.gate.roofline import Peak, RooflinePoint, roofline_points

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def roofline_figure(points: list[RooflinePoint], peak: Peak, context: str) -> "Figure":
    # matplotlib only here: the Markdown summary (roofline_table) is also written by commands that draw nothing
    from matplotlib.lines import Line2D

    from harness.report.plots import _new_figure, line_style

    figure = _new_figure(10.5, 6.0)
    ax = figure.subplots()
    intensities = [p.intensity_flops_per_byte for p in points]
    low = min(intensities + [peak.ridge_intensity]) / 4
    high = max(intensities + [peak.ridge_intensity]) * 4
    roof_x = [low, peak.ridge_intensity, high]
    roof_y = [low * peak.bandwidth_gb_per_s * 1e9 / 1e12, peak.matmul_tflops, peak.matmul_tflops]
    ax.plot(roof_x, roof_y, color="black", linewidth=1.6)
    where = f" on the {peak.label}" if peak.label else ""
    ax.text(high, peak.matmul_tflops * 1.08, f"GEMM {peak.dtype} measured{where}: {peak.matmul_tflops:.3g} TFLOP/s",
            ha="right", va="bottom", fontsize=8.5)
    ax.text(low * 1.15, roof_y[0] * 1.3, f"copy measured{where}: {peak.bandwidth_gb_per_s:.3g} GB/s",
            ha="left", va="bottom", fontsize=8.5)
    backends = []
    labelled: dict[float, list[str]] = {}  # per intensity, the shapes already labelled there
    for point in points:
        backend = point.result.case.backend_label
        if backend not in backends:
            backends.append(backend)
        style = line_style("backend", backend)
        ax.scatter(point.intensity_flops_per_byte, point.achieved_tflops, s=36, zorder=3,
                   edgecolor="black", linewidth=0.4, color=style["color"], marker=style["marker"])
        # one label per shape (the legend tells the backends apart); shapes at one intensity (layouts,
        # length modes) stack their labels downwards
        column = labelled.setdefault(round(math.log10(point.intensity_flops_per_byte), 2), [])
        label = _point_label(point)
        if label in column:
            continue
        column.append(label)
        ax.annotate(label, (point.intensity_flops_per_byte, point.achieved_tflops), textcoords="offset points",
                    xytext=(6, 2 - 9 * (len(column) - 1)), fontsize=6.5, color="#444444",
                    arrowprops={"arrowstyle": "-", "color": "#bbbbbb", "linewidth": 0.5} if len(column) > 1 else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs per compulsory byte; an upper bound)")
    ax.set_ylabel("achieved TFLOP/s (rnnbench FLOP model, median)")
    ax.grid(True, which="major", alpha=0.3)
    handles = [Line2D([], [], linestyle="none", markeredgecolor="black", markeredgewidth=0.4,
                      markerfacecolor=line_style("backend", b)["color"], marker=line_style("backend", b)["marker"],
                      label=b) for b in backends]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("\n".join(textwrap.wrap(f"Roofline (ceilings measured by the run itself): {context}", 110)),
                 fontsize=9.5)
    return figure


def _point_label(point: RooflinePoint) -> str:
    case = point.result.case
    return f"{case.cell} {case.shape_label}"


def roofline_table(run: RunResults) -> list[str]:
    """Markdown rows: per case, achieved TFLOP/s by both conventions, % of measured peak, intensity."""
    peak = Peak.of(run.environment)
    points = roofline_points(run)
    if peak is None or not points:
        return []
    lines = [f"Roofline (peak measured at the start of the run on the {peak.label or 'device'}: GEMM "
             f"{peak.dtype} {peak.matmul_tflops:.3g} TFLOP/s, copy {peak.bandwidth_gb_per_s:.3g} GB/s). "
             "rnnbench's FLOP model counts both GEMMs; DeepBench's counts the recurrent GEMM only "
             "(2·G·H²·B·T per pass); both count real tokens only.", "",
             "| case | TFLOP/s (rnnbench) | TFLOP/s (DeepBench) | % of measured peak | FLOP/byte |",
             "| --- | --- | --- | --- | --- |"]
    for point in points:
        share = f"{point.percent_of_peak:.3g} %" if point.percent_of_peak is not None else "-"
        lines.append(f"| `{point.result.key}` | {point.achieved_tflops:.3g} | {point.deepbench_tflops:.3g} | "
                     f"{share} | {point.intensity_flops_per_byte:.3g} |")
    return lines + [""]
