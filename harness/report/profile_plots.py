"""The chart of a profile file: one stacked horizontal bar per case and backend, the time of a step by kernel
class (operator class on a CPU) plus idle, so that a person sees at a glance that eager is mostly idle and
cuDNN mostly one kernel. Reads profile files; never measures."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.measure.kernel_classes import CLASSES, IDLE, class_label
from harness.record.profile_file import ProfiledCase, ProfileRun
from harness.report.context import context_line
from harness.report.plots import _new_figure
from harness.report.profile_text import DISTORTION_RATIO, format_ratio, profiler_distortion
from harness.report.text import format_ms
from harness.spec.suite import BACKENDS

BAR_HEIGHT = 0.7
IDLE_HATCH = "///"
UNPROFILED_MARK = "unprofiled step"


def _configuration(case) -> str:
    shape = f"B{case.batch} T{case.seq_len} I{case.input_size} H{case.hidden_size} L{case.num_layers}"
    return f"{case.cell} {case.mode} {shape}{' bi' if case.bidirectional else ''} {case.dtype}"


def ordered_cases(run: ProfileRun) -> list[ProfiledCase]:
    """The profiled cases, by configuration (as the suite listed them), then in backend order."""
    entries = [entry for entry in run.cases if entry.ok]
    first_seen = {}
    for entry in entries:
        first_seen.setdefault(_configuration(entry.case), len(first_seen))
    order = {name: index for index, name in enumerate(BACKENDS)}
    return sorted(entries, key=lambda e: (first_seen[_configuration(e.case)], order.get(e.case.backend, 99)))


def profile_figure(run: ProfileRun) -> Figure:
    """Stacked bars; raises ValueError when no case was profiled."""
    entries = ordered_cases(run)
    if not entries:
        raise ValueError("no profiled case to draw")
    device_type = entries[0].profile.get("device_type", "")
    figure = _new_figure(10.5, 1.9 + 0.42 * len(entries) + 0.3 * len({_configuration(e.case) for e in entries}))
    ax = figure.subplots()
    labels, positions = [], []
    y, previous = 0.0, None
    used = set()
    widest = 0.0
    any_distorted = False
    for entry in entries:
        configuration = _configuration(entry.case)
        if previous is not None and configuration != previous:
            y += 0.5  # a gap between configurations
        previous = configuration
        ms = {c["class"]: c["ms_per_step"] for c in entry.profile["classes"]}
        left = 0.0
        for kind in CLASSES + (IDLE,):
            width = ms.get(kind.name, 0.0)
            if width <= 0:
                continue
            used.add(kind.name)
            ax.barh(y, width, left=left, height=BAR_HEIGHT, color=kind.color, edgecolor="white", linewidth=0.5,
                    hatch=IDLE_HATCH if kind is IDLE else None)
            left += width
        widest = max(widest, left)
        note, distorted = _bar_note(entry.profile, device_type)
        any_distorted = any_distorted or distorted
        unprofiled = entry.profile.get("unprofiled_step_ms")
        if device_type != "cuda" and unprofiled:
            # the unprofiled step, drawn on the bar of the profiled one: where the step would end unprofiled
            ax.plot([unprofiled, unprofiled], [y - BAR_HEIGHT / 2, y + BAR_HEIGHT / 2], color="black",
                    linewidth=1.6, solid_capstyle="butt")
            used.add(UNPROFILED_MARK)
        ax.text(left, y, note, va="center", ha="left", fontsize=8.5, color="firebrick" if distorted else "0.25")
        labels.append(f"{entry.case.backend}\n{configuration}")
        positions.append(y)
        y += 1.0
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, widest * 1.55)  # room for the note at the longest bar's end
    ax.set_xlabel("time per step [ms]" + (" (bar: the unprofiled step)" if device_type == "cuda" else
                                          " (bar: the profiled step; the profiler slows CPU operators)"), fontsize=9.5)
    ax.grid(True, axis="x", alpha=0.3)
    handles = [Patch(facecolor=kind.color, edgecolor="white", hatch=IDLE_HATCH if kind is IDLE else None,
                     label=class_label(kind.name, device_type))
               for kind in CLASSES + (IDLE,) if kind.name in used]
    if UNPROFILED_MARK in used:
        handles.append(Line2D([], [], color="black", linewidth=1.6, label="the step unprofiled"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1 - 0.25 / max(len(entries), 1)),
              ncol=3, frameon=False, fontsize=8.5)
    what = "kernel class" if device_type == "cuda" else "operator class (self time)"
    title = f"Where a step's time goes, by {what}\n{context_line([run])}"
    if any_distorted:
        title += (f"\nred: the profiled step is over {DISTORTION_RATIO:g}× the unprofiled one; the profiler's "
                  f"overhead dominates it" + (": the bars show shares, not times" if device_type != "cuda" else ""))
    figure.suptitle(title, fontsize=11)
    return figure


def _bar_note(profile, device_type: str) -> tuple[str, bool]:
    """The text at a bar's end, and whether the profiler distorted its step (``DISTORTION_RATIO``)."""
    idle = profile.get("idle_fraction")
    ratio = profiler_distortion(profile)
    distorted = ratio is not None and ratio > DISTORTION_RATIO
    if device_type == "cuda":
        note = f" {format_ms(profile['step_ms'])} ms" + (f" · idle {idle:.0%}" if idle is not None else "")
        if profile.get("profiled_step_ms") is not None and ratio is not None:
            note += f" · profiled {format_ms(profile['profiled_step_ms'])} ms"
    else:
        note = f" {format_ms(profile['step_ms'])} ms profiled"
        if profile.get("unprofiled_step_ms"):
            note += f" · unprofiled {format_ms(profile['unprofiled_step_ms'])} ms"
    if distorted:
        note += f" ({format_ratio(ratio, '×')})"
    return note, distorted
