"""Render a :class:`harness.compare.Comparison`: a terminal table and Markdown (a pull-request comment or
``$GITHUB_STEP_SUMMARY``). It renders what ``harness.compare`` computed; it decides nothing."""

from __future__ import annotations

from harness.compare import (IMPROVEMENT, NOISE, REGRESSION, UNCHANGED, VERDICTS, CaseComparison, Comparison,
                             EnvironmentDifference, interval_method)
from harness.report.text import format_ms

VERDICT_LABELS = {REGRESSION: "REGRESSION", IMPROVEMENT: "improvement", NOISE: "noise", UNCHANGED: "unchanged"}
COUNT_LABELS = {REGRESSION: "regressions", IMPROVEMENT: "improvements", NOISE: "noise", UNCHANGED: "unchanged"}
VERDICT_ICONS = {REGRESSION: ":x:", IMPROVEMENT: ":rocket:", NOISE: ":grey_question:", UNCHANGED: ":white_check_mark:"}


def format_change(ratio: float | None) -> str:
    return "-" if ratio is None else f"{(ratio - 1) * 100:+.1f}%"


def format_interval(case: CaseComparison) -> str:
    if case.ci_low is None or case.ci_high is None:
        return "-"
    return f"[{format_change(case.ci_low)}, {format_change(case.ci_high)}]"


def format_p(p: float) -> str:
    if p >= 0.1:
        return f"{p:.2f}"
    if p >= 0.001:
        return f"{p:.3f}"
    return f"{p:.0e}"


def method_line(comparison: Comparison) -> str:
    metric = comparison.metric or "each case's primary region (step; forward for forward-only modes)"
    return (f"metric: {metric}; threshold {comparison.threshold:.3g} ({comparison.threshold:.1%}); "
            f"alpha {comparison.alpha:g} with Holm-Bonferroni over {len(comparison.cases)} compared cases; "
            f"{interval_method(comparison.alpha)}")


def verdict_line(comparison: Comparison) -> str:
    if comparison.failed:
        parts = []
        if comparison.regressions:
            parts.append(f"{len(comparison.regressions)} case(s) slower by more than {comparison.threshold:.1%}: "
                         + ", ".join(c.key for c in comparison.regressions))
        if comparison.broken:
            parts.append(f"{len(comparison.broken)} case(s) that ran in the baseline fail now: "
                         + ", ".join(n.key for n in comparison.broken))
        return "REGRESSION: " + "; ".join(parts)
    return f"OK: no regression beyond {comparison.threshold:.1%} among {len(comparison.cases)} compared cases"


def count_summary(comparison: Comparison) -> str:
    counts = comparison.counts()
    return ", ".join(f"{counts[v]} {COUNT_LABELS[v] if counts[v] != 1 else VERDICT_LABELS[v].lower()}"
                     for v in VERDICTS)


def noisy_pair_line(comparison: Comparison) -> str | None:
    if not comparison.noisy_pair:
        return None
    return (f"the two runs scatter: the cases' changes spread by about {comparison.ratio_spread:.0%} (robust "
            f"standard deviation), more than the {comparison.threshold:.1%} threshold; run-to-run noise of the "
            f"machine this large passes for regressions and improvements: compare runs from a quiet machine, "
            f"or raise --threshold above it")


def _ordered(comparison: Comparison) -> list[CaseComparison]:
    rank = {verdict: i for i, verdict in enumerate(VERDICTS)}
    return sorted(comparison.cases, key=lambda c: rank[c.verdict])  # stable: file order within a verdict


def _run_line(label: str, summary) -> str:
    facts = [f"suite {summary.get('suite')}", str(summary.get("device")), f"torch {summary.get('torch')}"]
    if summary.get("commit"):
        facts.append(f"commit {summary['commit']}")
    if summary.get("started_utc"):
        facts.append(str(summary["started_utc"]))
    if summary.get("status") and summary["status"] != "complete":
        facts.append(str(summary["status"]).upper())
    return f"{label}: {summary.get('source')} ({', '.join(facts)})"


def environment_lines(differences: tuple[EnvironmentDifference, ...]) -> list[str]:
    width = max((len(d.label) for d in differences), default=0)
    return [f"  {'!' if d.blocking else ' '} {d.label.ljust(width)}  {d.baseline or 'unknown'}  ->  "
            f"{d.current or 'unknown'}" for d in differences]


def render_environment_refusal(comparison: Comparison) -> str:
    """What the CLI prints before refusing to compare runs of different environments."""
    lines = ["ENVIRONMENTS DIFFER: the timings of these runs are not comparable as a regression gate",
             *environment_lines(comparison.blocking_differences)]
    return "\n".join(lines)


def render_text(comparison: Comparison) -> str:
    lines = [_run_line("baseline", comparison.baseline_summary), _run_line("current ", comparison.current_summary),
             method_line(comparison)]
    if comparison.environment:
        blocking = comparison.blocking_differences
        title = ("ENVIRONMENTS DIFFER (compared anyway, --allow-env-mismatch); '!' marks what makes timings "
                 "incomparable:" if blocking else "environment differences (not blocking):")
        lines += ["", title, *environment_lines(comparison.environment)]
    for warning in comparison.warnings + ((noisy_pair_line(comparison),) if comparison.noisy_pair else ()):
        lines.append(f"warning: {warning}")
    lines.append("")
    header = ("case", "region", "baseline ms", "current ms", "change", f"{1 - comparison.alpha:.0%} CI",
              "p (Holm)", "verdict")
    rows = [(c.key, c.region, format_ms(c.baseline_median_ms), format_ms(c.current_median_ms),
             format_change(c.ratio), format_interval(c), format_p(c.p_adjusted), VERDICT_LABELS[c.verdict])
            for c in _ordered(comparison)]
    if rows:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        lines.append("")
    summary = count_summary(comparison)
    geomean = comparison.geometric_mean_ratio
    lines.append(f"{len(comparison.cases)} compared: {summary}"
                 + (f"; all compared cases together (geometric mean): {format_change(geomean)}" if geomean else ""))
    if comparison.not_compared:
        lines.append(f"not compared ({len(comparison.not_compared)}):")
        lines += [f"  {'BROKEN ' if n.broken else ''}{n.key}: {n.reason}" for n in comparison.not_compared]
    if comparison.only_in_baseline:
        lines.append(f"only in the baseline ({len(comparison.only_in_baseline)}):")
        lines += [f"  {key}" for key in comparison.only_in_baseline]
    if comparison.only_in_current:
        lines.append(f"only in the current run ({len(comparison.only_in_current)}):")
        lines += [f"  {key}" for key in comparison.only_in_current]
    lines.append(verdict_line(comparison))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- Markdown

def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


def _md_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _md_case_rows(cases: list[CaseComparison]) -> list[tuple[str, ...]]:
    return [(f"{VERDICT_ICONS[c.verdict]} {VERDICT_LABELS[c.verdict]}", f"`{c.key}`", c.region,
             format_ms(c.baseline_median_ms), format_ms(c.current_median_ms), format_change(c.ratio),
             format_interval(c), format_p(c.p_adjusted)) for c in cases]


def _md_environment(differences: tuple[EnvironmentDifference, ...]) -> list[str]:
    return _md_table(("", "field", "baseline", "current"),
                     [(":warning:" if d.blocking else "", d.label, d.baseline or "unknown", d.current or "unknown")
                      for d in differences])


def render_markdown(comparison: Comparison) -> str:
    status = ":x: regression" if comparison.failed else ":white_check_mark: no regression"
    lines = [f"## rnnbench compare: {status}", "", f"**{_md(verdict_line(comparison))}**", ""]
    lines += [f"- {_md(_run_line('baseline', comparison.baseline_summary))}",
              f"- {_md(_run_line('current', comparison.current_summary))}",
              f"- {_md(method_line(comparison))}", ""]
    if comparison.blocking_differences:
        lines += ["> [!WARNING]", "> **The environments differ** and were compared anyway "
                  "(`--allow-env-mismatch`): treat these verdicts with suspicion.", ""]
    if comparison.environment:
        lines += _md_environment(comparison.environment) + [""]
    notes = comparison.warnings + ((noisy_pair_line(comparison),) if comparison.noisy_pair else ())
    lines += [f"> :warning: {_md(note)}" for note in notes] + ([""] if notes else [])
    header = ("verdict", "case", "region", "baseline ms", "current ms", "change", f"{1 - comparison.alpha:.0%} CI",
              "p (Holm)")
    ordered = _ordered(comparison)
    flagged = [c for c in ordered if c.verdict != UNCHANGED]
    unchanged = [c for c in ordered if c.verdict == UNCHANGED]
    lines.append(count_summary(comparison) + f" of {len(comparison.cases)} compared"
                 + (f"; geometric mean change {format_change(comparison.geometric_mean_ratio)}"
                    if comparison.cases else "") + ".")
    lines.append("")
    if flagged:
        lines += _md_table(header, _md_case_rows(flagged)) + [""]
    if unchanged:
        lines += [f"<details><summary>{len(unchanged)} unchanged case(s)</summary>", ""]
        lines += _md_table(header, _md_case_rows(unchanged)) + ["", "</details>", ""]
    if comparison.not_compared:
        lines += [f"**Not compared ({len(comparison.not_compared)})**", ""]
        lines += [f"- {':x: **broken** ' if n.broken else ''}`{n.key}`: {_md(n.reason)}"
                  for n in comparison.not_compared] + [""]
    for title, keys in (("Only in the baseline", comparison.only_in_baseline),
                        ("Only in the current run", comparison.only_in_current)):
        if keys:
            lines += [f"**{title} ({len(keys)})**", ""] + [f"- `{key}`" for key in keys] + [""]
    return "\n".join(lines).rstrip() + "\n"


def render_markdown_refusal(comparison: Comparison, option: str) -> str:
    lines = ["## rnnbench compare: :warning: not compared", "",
             f"**The environments differ; the comparison was refused.** Refresh the baseline on this machine, "
             f"or pass `{option}` to compare anyway.", "",
             f"- {_md(_run_line('baseline', comparison.baseline_summary))}",
             f"- {_md(_run_line('current', comparison.current_summary))}", ""]
    lines += _md_environment(comparison.environment)
    return "\n".join(lines) + "\n"
