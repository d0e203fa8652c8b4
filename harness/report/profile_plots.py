"""The chart of a profile file: one stacked horizontal bar per case and backend, the time of a step by kernel
class (operator class on a CPU) plus idle, so that a person sees at a glance that eager is mostly idle and
cuDNN mostly one kernel. Reads profile files; never measures."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from harness.kernel_classes import CLASSES, IDLE, class_label
from harness.profile_file import ProfiledCase, ProfileRun
from harness.report.context import context_line
from harness.report.plots import _new_figure
from harness.report.text import format_ms
from harness.suite import BACKENDS

BAR_HEIGHT = 0.7
IDLE_HATCH = "///"


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
        idle = entry.profile.get("idle_fraction")
        note = f" {format_ms(entry.profile['step_ms'])} ms" + (f" · idle {idle:.0%}" if idle is not None else "")
        ax.text(left, y, note, va="center", ha="left", fontsize=8.5, color="0.25")
        labels.append(f"{entry.case.backend}\n{configuration}")
        positions.append(y)
        y += 1.0
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, widest * 1.22)
    ax.set_xlabel("time per step [ms]" + (" (bar: the unprofiled step)" if device_type == "cuda" else
                                          " (bar: the profiled step; the profiler slows CPU operators)"), fontsize=9.5)
    ax.grid(True, axis="x", alpha=0.3)
    handles = [Patch(facecolor=kind.color, edgecolor="white", hatch=IDLE_HATCH if kind is IDLE else None,
                     label=class_label(kind.name, device_type))
               for kind in CLASSES + (IDLE,) if kind.name in used]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1 - 0.25 / max(len(entries), 1)),
              ncol=3, frameon=False, fontsize=8.5)
    what = "kernel class" if device_type == "cuda" else "operator class (self time)"
    figure.suptitle(f"Where a step's time goes, by {what}\n{context_line([run])}", fontsize=11)
    return figure
