"""Plain-text tables for the terminal."""

from __future__ import annotations

from harness.metrics import peak_memory_bytes
from harness.results import CaseResult, RunResults


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


def notes(result: CaseResult) -> str:
    parts = []
    if result.status != "ok":
        parts.append(result.reason or "")
    compile_facts = result.backend.get("compile")
    if compile_facts:
        if compile_facts.get("fell_back_to_eager"):
            reasons = "; ".join(compile_facts.get("break_reasons", ())) or "no graph"
            parts.append(f"NOT COMPILED, ran eagerly (Dynamo: {reasons})")
        elif compile_facts.get("graphs") is not None:
            parts.append(f"{compile_facts['graphs']} graph(s), {compile_facts.get('graph_breaks', 0)} break(s)")
    if result.ok and result.case.backend in ("cudnn", "compile_module") and "kernel_library" in result.backend:
        parts.append(result.backend["kernel_library"])
    noisy = result.noisy_regions
    if noisy:
        worst = max(result.stats[r].relative_iqr for r in noisy)
        parts.append(f"NOISY ({', '.join(noisy)}: IQR {worst:.0%} of median)")
    return "; ".join(p for p in parts if p)


def summary_table(run: RunResults) -> str:
    """One block per model configuration and mode, one row per backend."""
    lines = []
    header = ("backend", "status", "median ms [95% CI]", "fwd ms", "bwd ms", "seq/s", "GFLOP/s",
              "vs cudnn", "peak mem", "1st iter ms", "notes")

    def group_key(result: CaseResult):
        return (result.case.cell, result.case.mode, result.case.shape_label, result.case.dtype,
                result.case.device_type)

    groups: dict[tuple, list[CaseResult]] = {}
    for result in run.cases:  # in the order the suite ran them
        groups.setdefault(group_key(result), []).append(result)
    for (cell, mode, shape, dtype, device), group in groups.items():
        region = group[0].primary_region
        rows = [_row(run, result) for result in group]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[:-1])]
        lines.append(f"{cell} {mode} {shape} {dtype} {device}  (median of the {region})")
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[-1])
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
        lines.append("")
    counts = run.counts()
    lines.append(f"{len(run.cases)} cases: {counts['ok']} ok, {counts['failed']} failed, "
                 f"{counts['skipped']} skipped")
    return "\n".join(lines)


def _row(run: RunResults, result: CaseResult) -> tuple[str, ...]:
    stats = result.stats.get(result.primary_region)
    if stats:
        ci = (f" [{format_ms(stats.median_ci95_low_ms)}, {format_ms(stats.median_ci95_high_ms)}]"
              if stats.median_ci95_low_ms is not None else "")
        median = format_ms(stats.median_ms) + ci
    else:
        median = "-"
    derived = result.derived.get(result.primary_region, {})
    speedup = run.speedup_over_cudnn(result)
    first = result.first_iteration_ms
    first_total = first.get("step", first.get("forward")) if first else None
    return (
        result.case.backend,
        result.status,
        median,
        format_ms(result.median_ms("forward")) if "backward" in result.stats else "",
        format_ms(result.median_ms("backward")) if "backward" in result.stats else "",
        format_count(derived.get("sequences_per_s")),
        format_count(derived["achieved_tflops"] * 1e3) if derived else "-",
        f"{speedup:.2f}x" if speedup else "-",
        format_bytes(peak_memory_bytes(result)),
        format_ms(first_total),
        notes(result),
    )
