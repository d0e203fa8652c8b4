"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Mapping

from harness.activity import launch_bound_note
from harness.results import CaseResult, RunResults
from harness.roofline import percent_of_peak
from harness.speedup import UNRELIABLE_RULE, Speedup, speedup_of


def format_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_count(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def format_bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def eager_fallback_note(result: CaseResult) -> str:
    reasons = "; ".join(result.compile_facts.break_reasons) or "no graph"
    return f"NOT COMPILED, ran eagerly (Dynamo: {reasons})"


def notes(result: CaseResult) -> str:
    parts = []
    if result.status != "ok":
        parts.append(result.reason or "")
    compile_facts = result.compile_facts
    if compile_facts:
        if compile_facts.fell_back_to_eager:
            parts.append(eager_fallback_note(result))
        elif compile_facts.graphs is not None:
            parts.append(f"{compile_facts.graphs} graph(s), {compile_facts.graph_breaks} break(s)")
    if result.ok and result.case.backend in ("cudnn", "compile_module", "compile_rnn") \
            and result.kernel_library is not None:
        parts.append(result.kernel_library)
    if result.backend.get("onednn_disabled"):
        parts.append("oneDNN off (Inductor cannot compile its RNN op)")
    for mode, capture in (result.backend.get("cuda_graph") or {}).items():
        parts.append(f"CUDA graph ({mode}): captured in {format_ms(capture.get('capture_ms'))} ms, "
                     f"pool {format_bytes(capture.get('graph_pool_bytes'))}")
    if result.backend.get("weights_repacked_every_call"):
        parts.append("WEIGHTS RE-PACKED EVERY CALL (not one contiguous chunk): time inflated")
    launch_bound = launch_bound_note(result.activity)
    if launch_bound:
        parts.append(launch_bound)
    noisy = result.noisy_regions
    if noisy:
        worst = max(result.stats[r].relative_iqr for r in noisy)
        parts.append(f"NOISY ({', '.join(noisy)}: IQR {worst:.0%} of median)")
    window = result.telemetry_window()
    if window:
        throttled = window.get("throttled") or {}
        causes = [cause for cause in ("thermal", "power") if throttled.get(cause)]
        if causes or throttled.get("any"):
            parts.append(f"THROTTLED ({', '.join(causes) or ', '.join(throttled.get('reasons', ()))})")
        if window.get("low_confidence"):
            parts.append(f"telemetry LOW-CONFIDENCE (window {window.get('duration_s', 0):.2g} s)")
    return "; ".join(p for p in parts if p)


def _telemetry_cells(result: CaseResult) -> tuple[str, str, str]:
    """Energy per sequence, mean power (from the energy counter where there is one) and GPU utilization."""
    window = result.telemetry_window() or {}
    energy = window.get("energy_per_sequence_j")
    power = window.get("energy_mean_power_w", window.get("power_mean_w"))
    utilization = window.get("gpu_utilization_mean_pct")
    return (format_count(energy),
            f"{power:.0f}" if power is not None else "-",
            f"{utilization:.0f}%" if utilization is not None else "-")


TELEMETRY_HEADER = ("J/seq", "power W", "GPU util")


SUMMARY_HEADER = ("backend", "status", "median ms [95% CI]", "fwd ms", "bwd ms", "seq/s", "GFLOP/s",
                  "vs cudnn", "peak mem", "1st iter ms", "notes")


def configuration_groups(run: RunResults) -> dict[tuple, list[CaseResult]]:
    """(cell, mode, shape, dtype, device) -> its results, one per backend, in the order the suite ran them."""
    groups: dict[tuple, list[CaseResult]] = {}
    for result in run.cases:
        case = result.case
        groups.setdefault((case.cell, case.mode, case.shape_label, case.dtype, case.device_type), []).append(result)
    return groups


def summary_table(run: RunResults) -> str:
    """One block per model configuration and mode, one row per backend; first, where the run started on a busy
    machine, the line that says so."""
    busy = run.environment.machine_busy_line
    lines = [busy, ""] if busy else []
    speedups = speedups_by_key(run)
    for (cell, mode, shape, dtype, device), group in configuration_groups(run).items():
        region = group[0].primary_region
        rows = [summary_row(run, result, speedups) for result in group]
        header = SUMMARY_HEADER
        if any(result.telemetry_window() for result in group):  # NVML columns only where NVML measured
            header = SUMMARY_HEADER[:-1] + TELEMETRY_HEADER + SUMMARY_HEADER[-1:]
            rows = [row[:-1] + _telemetry_cells(result) + row[-1:] for row, result in zip(rows, group)]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[:-1])]
        lines.append(f"{cell} {mode} {shape} {dtype} {device}  (median of the {region})")
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[-1])
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
        lines.append("")
    unavailable: dict[str, int] = {}
    for result in run.cases:
        reason = result.telemetry_unavailable_reason
        if result.ok and reason:
            unavailable[reason] = unavailable.get(reason, 0) + 1
    for reason, count in unavailable.items():
        lines.append(f"telemetry: {reason} ({count} case{'s' if count != 1 else ''})")
    unreliable = sum(1 for speedup in speedups.values() if speedup.unreliable_why)
    if unreliable:
        lines.append(f"vs cudnn {UNRELIABLE} ({unreliable} case{'s' if unreliable != 1 else ''}): no speedup shown "
                     f"where the measurement cannot support one: {UNRELIABLE_RULE}")
    counts = run.counts()
    lines.append(f"{len(run.cases)} cases: {counts['ok']} ok, {counts['failed']} failed, "
                 f"{counts['skipped']} skipped")
    return "\n".join(lines)


def warnings_lines(run: RunResults) -> list[str]:
    """torch's warnings, each once, with how many cases raised it: shown under the table, never inside it."""
    raised_by: dict[str, int] = {}
    for result in run.cases:
        for message in result.warnings:
            raised_by[message] = raised_by.get(message, 0) + 1
    if not raised_by:
        return []
    lines = [f"torch warnings during the run ({len(raised_by)}; kept with each case in the results file):"]
    for message, count in raised_by.items():
        lines.append(f"  [{count} case{'s' if count != 1 else ''}] {message}")
    return lines


UNRELIABLE = "unreliable"


def speedup_cell(speedup: Speedup | None) -> str:
    """The 'vs cudnn' cell: the ratio, "unreliable" where the measurement cannot support one (the reason is
    in the notes), "-" where there is none."""
    if speedup is None or speedup.ratio is None:
        return "-"
    return f"{speedup.ratio.value:.2f}x" if speedup.reliable else UNRELIABLE


def unreliable_note(speedup: Speedup | None) -> str:
    why = speedup.unreliable_why if speedup else None
    return f"vs cudnn UNRELIABLE ({why})" if why else ""


def speedups_by_key(run: RunResults) -> dict[str, Speedup]:
    """Every speedup over cudnn of ``run`` by case key: computed once for a table (each is a bootstrap)."""
    return {speedup.result.key: speedup for speedup in run.cudnn_speedups}


def summary_row(run: RunResults, result: CaseResult, speedups: Mapping[str, Speedup] | None = None) -> tuple[str, ...]:
    """The cells of one result's row under SUMMARY_HEADER; ``speedups``: speedups_by_key(run), where the
    caller has it."""
    stats = result.stats.get(result.primary_region)
    if stats:
        ci = (f" [{format_ms(stats.median_ci95_low_ms)}, {format_ms(stats.median_ci95_high_ms)}]"
              if stats.median_ci95_low_ms is not None else "")
        median = format_ms(stats.median_ms) + ci
    else:
        median = "-"
    derived = result.derived.get(result.primary_region, {})
    speedup = speedups.get(result.key) if speedups is not None else speedup_of(run, result)
    first = result.first_iteration_ms
    first_total = first.get("step", first.get("forward")) if first else None
    peak_share = percent_of_peak(run, result)
    return (
        result.case.backend_label,
        result.status,
        median,
        format_ms(result.median_ms("forward")) if "backward" in result.stats else "",
        format_ms(result.median_ms("backward")) if "backward" in result.stats else "",
        format_count(derived.get("sequences_per_s")),
        format_count(derived["achieved_tflops"] * 1e3) if derived else "-",
        "1.00x" if result.case.backend == "cudnn" and result.median_ms() else speedup_cell(speedup),
        format_bytes(result.peak_memory_bytes),
        format_ms(first_total),
        "; ".join(part for part in (notes(result), unreliable_note(speedup),
                                    f"{peak_share:.2g}% of measured peak" if peak_share else "") if part),
    )
