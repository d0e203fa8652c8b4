"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Mapping, Sequence

from harness.measure.activity import launch_bound_note
from harness.report.names import baseline_name, result_backend_name
from harness.record.results import CaseResult, RunResults
from harness.gate.roofline import percent_of_peak
from harness.gate.speedup import UNRELIABLE_RULE, Speedup, cudnn_speedups, speedup_of


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
    return "; ".join(note_parts(result))


def note_parts(result: CaseResult) -> list[str]:
    """The notes of one result, each a short fact (a table shows the long ones as footnotes)."""
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
        parts.append(f"NOISY (IQR {worst:.0%} of median)")  # which regions: the report's flag list
    window = result.telemetry_window()
    if window:
        throttled = window.get("throttled") or {}
        causes = [cause for cause in ("thermal", "power") if throttled.get(cause)]
        if causes or throttled.get("any"):
            parts.append(f"THROTTLED ({', '.join(causes) or ', '.join(throttled.get('reasons', ()))})")
        if window.get("low_confidence"):
            parts.append(f"telemetry LOW-CONFIDENCE (window {window.get('duration_s', 0):.2g} s)")
    return [p for p in parts if p]


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
VS_COLUMN, MEMORY_COLUMN = SUMMARY_HEADER.index("vs cudnn"), SUMMARY_HEADER.index("peak mem")
PROCESS_RSS_HEADER = "process RSS"
NOTE_WIDTH = 40  # a note longer than this goes to a footnote under the table: [1]

STEP_FOOTNOTE = ("fwd, bwd and the median are each the median of their own region's samples; in every iteration "
                 "the step is exactly forward + backward (the backward region holds the loss and the backward "
                 "pass, timed from the same marks), but a median of sums is not the sum of the medians")
MEMORY_FOOTNOTES = {
    "cuda": "peak mem: the peak of torch's CUDA caching allocator over the warm-up and timed loop (allocated "
            "bytes; the reserved pool is in the results file)",
    "cpu": "case peak: how far the process's resident memory (RSS) rose above its size just before the case "
           "was built, at its peak over the warm-up and timed loop (model, inputs and the step's own "
           "allocations); process RSS: the whole process's peak, torch itself included",
}


def summary_header(group: Sequence[CaseResult]) -> tuple[str, ...]:
    """SUMMARY_HEADER for one configuration's block, in the names of its device: 'vs nn.LSTM (oneDNN)'
    and 'case peak' (with a process RSS column) on a CPU."""
    header = list(SUMMARY_HEADER)
    header[VS_COLUMN] = f"vs {baseline_name(group)}"
    if any(result.case.device_type == "cpu" for result in group):
        header[MEMORY_COLUMN] = "case peak"
        header.insert(MEMORY_COLUMN + 1, PROCESS_RSS_HEADER)
    return tuple(header)


class Footnotes:
    """Long notes of a table, numbered once each: the cell keeps '[1]', the text goes under the table."""

    def __init__(self):
        self.numbers: dict[str, int] = {}

    def cell(self, parts: Sequence[str]) -> str:
        shown = []
        for part in parts:
            if len(part) <= NOTE_WIDTH:
                shown.append(part)
            else:
                number = self.numbers.setdefault(part, len(self.numbers) + 1)
                shown.append(f"[{number}]")
        return "; ".join(shown)

    def lines(self) -> list[str]:
        return [f"[{number}] {text}" for text, number in self.numbers.items()]


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
    devices = set()
    for (cell, mode, shape, dtype, device), group in configuration_groups(run).items():
        region = group[0].primary_region
        devices.add(device)
        footnotes = Footnotes()
        header, rows = summary_block(run, group, speedups, footnotes)
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[:-1])]
        lines.append(f"{cell} {mode} {shape} {dtype} {device}  (median of the {region})")
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[-1])
        for row in rows:
            lines.append("  " + ("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1]).rstrip())
        lines += [f"  {line}" for line in footnotes.lines()]
        lines.append("")
    if any(r.ok and "backward" in r.stats for r in run.cases):
        lines.append(f"fwd ms + bwd ms != median: {STEP_FOOTNOTE}")
    for device in sorted(devices):
        if device in MEMORY_FOOTNOTES and any(r.ok and r.memory for r in run.cases):
            lines.append(MEMORY_FOOTNOTES[device])
    unavailable: dict[str, int] = {}
    for result in run.cases:
        reason = result.telemetry_unavailable_reason
        if result.ok and reason:
            unavailable[reason] = unavailable.get(reason, 0) + 1
    for reason, count in unavailable.items():
        lines.append(f"telemetry: {reason} ({count} case{'s' if count != 1 else ''})")
    unreliable = sum(1 for speedup in speedups.values() if speedup.unreliable_why)
    if unreliable:
        lines.append(f"vs {baseline_name(run.cases)} {UNRELIABLE} ({unreliable} case{'s' if unreliable != 1 else ''}): "
                     f"no speedup shown "
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
    return f"vs {result_backend_name(speedup.baseline)} UNRELIABLE ({why})" if why else ""


def speedups_by_key(run: RunResults) -> dict[str, Speedup]:
    """Every speedup over cudnn of ``run`` by case key: computed once for a table (each is a bootstrap)."""
    return {speedup.result.key: speedup for speedup in cudnn_speedups(run)}


def summary_block(run: RunResults, group: Sequence[CaseResult], speedups: Mapping[str, Speedup],
                  footnotes: Footnotes) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The header and rows of one configuration's table: backends by their shown names, long notes moved
    to ``footnotes``, the NVML columns where NVML measured, a process RSS column on a CPU."""
    header = summary_header(group)
    rows = []
    for result in group:
        *cells, note_parts = summary_row_parts(run, result, speedups)
        cells[0] = result_backend_name(result)
        if PROCESS_RSS_HEADER in header:
            cells.insert(MEMORY_COLUMN + 1, format_bytes(result.process_peak_rss_bytes))
        rows.append((*cells, footnotes.cell(note_parts)))
    if any(result.telemetry_window() for result in group):  # NVML columns only where NVML measured
        header = header[:-1] + TELEMETRY_HEADER + header[-1:]
        rows = [row[:-1] + _telemetry_cells(result) + row[-1:] for row, result in zip(rows, group)]
    return header, rows


def summary_row(run: RunResults, result: CaseResult, speedups: Mapping[str, Speedup] | None = None) -> tuple[str, ...]:
    """The cells of one result's row under SUMMARY_HEADER; ``speedups``: speedups_by_key(run), where the
    caller has it."""
    *cells, note_parts = summary_row_parts(run, result, speedups)
    return (*cells, "; ".join(note_parts))


def summary_row_parts(run: RunResults, result: CaseResult,
                      speedups: Mapping[str, Speedup] | None = None) -> tuple:
    """summary_row's cells, with the notes as a list of their parts (last)."""
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
        _memory_cell(result),
        format_ms(first_total),
        [part for part in (*note_parts(result), unreliable_note(speedup),
                           f"{peak_share:.2g}% of measured peak" if peak_share else "") if part],
    )


def _memory_cell(result: CaseResult) -> str:
    """The case's own peak memory: the CUDA allocator's peak, or on a CPU the rise of the RSS ('+12.3 MiB')."""
    value = result.peak_memory_bytes
    if value is None:
        return "-"
    return f"+{format_bytes(value)}" if result.case.device_type == "cpu" else format_bytes(value)
