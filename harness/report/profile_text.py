"""The terminal tables of ``rnnbench profile``: per case, the step's figures, the time by kernel class and
the largest kernels (GPU) or operators (CPU)."""

from __future__ import annotations

from typing import Sequence

from harness.measure.kernel_classes import class_label
from harness.record.profile_file import ProfiledCase, ProfileRun
from harness.report.text import format_ms

GROUPS_SHOWN = 10
# A profiled step this many times the unprofiled one is mostly the profiler's own work: flagged in words.
DISTORTION_RATIO = 2.0


def profiler_distortion(profile) -> float | None:
    """The profiled step over the unprofiled one (None when either is missing)."""
    profiled, unprofiled = profile.get("profiled_step_ms"), profile.get("unprofiled_step_ms")
    if not profiled or not unprofiled or unprofiled <= 0:
        return None
    return profiled / unprofiled


def distortion_note(profile, times: str = "x") -> str | None:
    """'profiled step 375 ms is 354x the unprofiled 1.06 ms: ...' where the profiler distorts the step more
    than ``DISTORTION_RATIO`` times, else None."""
    ratio = profiler_distortion(profile)
    if ratio is None or ratio <= DISTORTION_RATIO:
        return None
    head = (f"profiled step {format_ms(profile['profiled_step_ms'])} ms is {format_ratio(ratio, times)} the unprofiled "
            f"{format_ms(profile['unprofiled_step_ms'])} ms: ")
    if profile.get("device_type") == "cuda":
        return head + ("the profiler slowed the host; kernel times hold, the gaps between them in the trace "
                       "are the profiler's")
    return head + "the profiler's overhead dominates; the breakdown shows shares, not times"


def format_ratio(ratio: float, times: str = "x") -> str:
    """354x, 2.4x (``times``: the sign; the terminal's tables keep to ASCII, the charts use U+00D7)."""
    return f"{ratio:.0f}{times}" if ratio >= 10 else f"{ratio:.1f}{times}"


def _share(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "    ") -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [indent + "  ".join(str(h).ljust(w) for h, w in zip(header, widths)).rstrip()]
    for row in rows:
        lines.append(indent + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return lines


def case_lines(entry: ProfiledCase) -> list[str]:
    lines = [f"{entry.key}  {entry.status}" + (f": {entry.reason}" if entry.reason else "")]
    profile = entry.profile
    if entry.status != "ok":
        return lines
    if not profile.get("available"):
        lines.append(f"  no profile: {profile.get('reason', 'unknown')}")
        return lines
    on_gpu = profile.get("device_type") == "cuda"
    basis = "unprofiled" if profile.get("step_basis", "").startswith("unprofiled") else "profiled"
    if on_gpu:
        lines.append(
            f"  step {format_ms(profile['step_ms'])} ms ({basis}; profiled {format_ms(profile.get('profiled_step_ms'))})"
            f" | GPU busy {format_ms(profile['busy_ms'])} ms | GPU idle {_share(profile.get('idle_fraction'))}"
            f" | {profile.get('launches_per_step', 0):g} kernels+copies/step{_launch_calls(profile)}"
            f" | CPU dispatch {format_ms(profile.get('cpu_dispatch_ms'))} ms"
            f" (launch calls {format_ms(profile.get('launch_api_ms'))} ms) | {profile['steps']} steps")
    else:
        lines.append(
            f"  step {format_ms(profile['step_ms'])} ms (profiled; unprofiled {format_ms(profile.get('unprofiled_step_ms'))})"
            f" | in operators {format_ms(profile['busy_ms'])} ms | outside operators {_share(profile.get('idle_fraction'))}"
            f" | {profile.get('operators_per_step', 0):g} top-level operators/step | {profile['steps']} steps")
    distortion = distortion_note(profile)
    if distortion:
        lines.append(f"  DISTORTED: {distortion}")
    algorithm = entry.cudnn_algorithm
    if algorithm.get("forward"):
        predicted = ", ".join(f"{phase} {algorithm[phase]}" for phase in ("forward", "backward") if phase in algorithm)
        lines.append(f"  cuDNN algorithm (PREDICTION, PyTorch's heuristic): {predicted}; kernels show: "
                     f"{algorithm.get('seen_in_kernels') or 'no cuDNN RNN kernel'}")
    classes = [c for c in profile["classes"] if c["ms_per_step"] > 0]
    lines.append("  by class:")
    lines.extend(_table(("class", "ms/step", "share"),
                        [(class_label(c["class"], profile.get("device_type", "")), format_ms(c["ms_per_step"]), _share(c.get("share"))) for c in classes]))
    groups = list(profile.get("groups", ()))[:GROUPS_SHOWN]
    if groups:
        lines.append(f"  largest {'kernels' if on_gpu else 'operators (self time)'}:")
        lines.extend(_table(("name", "class", "calls/step", "ms/step", "mean us", "share"),
                            [(_short(g["name"]), g["class"], f"{g['calls_per_step']:g}", format_ms(g["ms_per_step"]),
                              f"{g['mean_us']:.3g}", _share(g.get("share"))) for g in groups]))
    return lines


def _short(name: str, width: int = 70) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


def profile_text(run: ProfileRun) -> str:
    lines = []
    for entry in run.cases:
        lines.extend(case_lines(entry))
        lines.append("")
    counts = {status: sum(1 for c in run.cases if c.status == status) for status in ("ok", "failed", "skipped")}
    lines.append(f"{len(run.cases)} case{'' if len(run.cases) == 1 else 's'} profiled: {counts['ok']} ok, {counts['failed']} failed, "
                 f"{counts['skipped']} skipped")
    return "\n".join(lines)


def _launch_calls(profile: dict) -> str:
    """' from 12 launch calls (2 graph launches)': the host's calls, which a replayed CUDA graph makes few of."""
    calls = profile.get("launch_calls_per_step")
    if calls is None:  # a profile file from before the calls were counted
        return ""
    graphs = profile.get("graph_launches_per_step") or 0
    return f" from {calls:g} launch calls" + (f" ({graphs:g} graph launches)" if graphs else "")
