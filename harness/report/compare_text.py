"""Render a :class:`harness.gate.compare.Comparison` as ``rnnbench compare`` shows it: a terminal table and
Markdown (a pull-request comment or ``$GITHUB_STEP_SUMMARY``). It renders what ``harness.gate.compare`` computed;
it decides nothing."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from harness.gate.compare import SAME_CODE, Comparison, Pair, comparison_method, run_rounds
from harness.record.environment_diff import EnvironmentDifference
from harness.report.markdown import markdown_inline
from harness.report.text import format_ms
from harness.record.results import RunResults
from harness.gate.verdict import Verdict


def format_change(ratio: float | None) -> str:
    return "-" if ratio is None else f"{(ratio - 1) * 100:+.1f}%"


def format_interval(pair: Pair) -> str:
    if pair.ci_low is None or pair.ci_high is None:
        return "-"
    return f"[{format_change(pair.ci_low)}, {format_change(pair.ci_high)}]"


def format_p(p: float) -> str:
    if p >= 0.1:
        return f"{p:.2f}"
    if p >= 0.001:
        return f"{p:.3f}"
    return f"{p:.0e}"


def method_line(comparison: Comparison) -> str:
    metric = comparison.region or "each case's primary region (step; forward for forward-only modes)"
    return (f"metric: {metric}; threshold {comparison.threshold:.3g} ({comparison.threshold:.1%}); "
            f"alpha {comparison.alpha:g} with {comparison.rule.adjustment_words} over {len(comparison.pairs)} compared "
            f"cases; "
            f"{comparison_method(comparison)}")


def table_headers(comparison: Comparison) -> tuple[str, str]:
    """The interval's and the adjusted p's column headings: '95% CI', 'p (Holm)'."""
    return f"{comparison.interval_confidence:.0%} CI", f"p ({comparison.rule.adjustment})"


TERMINAL_WIDTH = 110  # long prose lines of the terminal output wrap here (tables do not)


def wrapped(text: str, indent: str = "    ") -> list[str]:
    """A long line of prose as lines of at most TERMINAL_WIDTH, the continuations indented."""
    return textwrap.wrap(text, TERMINAL_WIDTH, subsequent_indent=indent, break_on_hyphens=False,
                         break_long_words=False) or [text]


def verdict_line(comparison: Comparison) -> str:
    if comparison.failed:
        parts = []
        if comparison.regressions:
            parts.append(f"{len(comparison.regressions)} case(s) slower by more than {comparison.threshold:.1%}: "
                         + ", ".join(c.key for c in comparison.regressions))
        if comparison.broken:
            parts.append(f"{len(comparison.broken)} case(s) that ran in the baseline fail now: "
                         + ", ".join(n.key for n in comparison.broken))
        return "REGRESSION: " + "; ".join(parts) + _same_code_suffix(comparison)
    return (f"OK: no regression beyond {comparison.threshold:.1%} among {len(comparison.pairs)} compared cases"
            + _same_code_suffix(comparison))


def _same_code_suffix(comparison: Comparison) -> str:
    if not comparison.same_code:
        return ""
    return f" ({SAME_CODE}{', as asked' if comparison.same_code_intended else ''})"


def count_summary(comparison: Comparison) -> str:
    return ", ".join(verdict.count_text(count) for verdict, count in comparison.counts().items())


def _run_line(label: str, run: RunResults) -> str:
    environment = run.environment
    commit = environment.commit.get("id")
    facts = [f"suite {run.suite.get('name')}", str(environment.hardware_name or environment.device_type),
             f"torch {environment.torch_version}"]
    if commit:
        facts.append(f"commit {commit[:10]}{'+dirty' if environment.commit.get('dirty') else ''}")
    if run.started_utc:
        facts.append(str(run.started_utc))
    rounds = run_rounds(run)
    facts.append(f"{rounds} round{'s' if rounds != 1 else ''}")
    side = run.run_options.ab_side
    if side is not None and side.side:
        facts.append(f"side {str(side.side).upper()} of an A/B, {side.blocks} blocks a case and round")
    if run.status and run.status != "complete":
        facts.append(run.status.upper())
    return f"{label}: {run.source} ({', '.join(facts)})"


def code_line(label: str, run: RunResults) -> str | None:
    """Where a run's harness and torch were imported from (its commit and torch version are on its run line);
    None for files without that record."""
    environment = run.environment
    if environment.harness_path is None and environment.torch_path is None:
        return None
    parts = [f"harness {environment.rnnbench_version or '?'} from {environment.harness_path}",
             f"torch from {environment.torch_path}"]
    if environment.python_executable:
        parts.append(f"python {environment.python_executable}")
    return f"{label} code: {'; '.join(parts)}"


def code_lines(comparison: Comparison) -> list[str]:
    """Each side's code, and a note when an A/A was asked for (an A/A not asked for is a warning)."""
    lines = [line for line in (code_line("baseline", comparison.baseline), code_line("current ", comparison.current))
             if line]
    if comparison.same_code and comparison.same_code_intended:
        lines.append(f"note: {SAME_CODE}, as asked")
    return lines


def environment_lines(differences: tuple[EnvironmentDifference, ...]) -> list[str]:
    width = max((len(d.label) for d in differences), default=0)
    return [f"  {'!' if d.blocking else ' '} {d.label.ljust(width)}  {d.baseline or 'unknown'}  ->  "
            f"{d.current or 'unknown'}" for d in differences]


def render_environment_refusal(comparison: Comparison) -> str:
    """What the CLI prints before refusing to compare runs of different environments."""
    lines = ["ENVIRONMENTS DIFFER: the timings of these runs are not comparable as a regression gate",
             *environment_lines(comparison.blocking_differences)]
    return "\n".join(lines)


def render_text(comparison: Comparison, *, verdict: bool = True) -> str:
    lines = [_run_line("baseline", comparison.baseline), _run_line("current ", comparison.current),
             *code_lines(comparison), *wrapped(method_line(comparison))]
    if comparison.environment:
        blocking = comparison.blocking_differences
        title = ("ENVIRONMENTS DIFFER (compared anyway, --allow-env-mismatch); '!' marks what makes timings "
                 "incomparable:" if blocking else "environment differences (not blocking):")
        lines += ["", title, *environment_lines(comparison.environment)]
    for warning in comparison.warnings:
        lines.append(f"warning: {warning}")
    lines.append("")
    header = ("case", "region", "baseline ms", "current ms", "change", *table_headers(comparison), "verdict")
    rows = [(p.key, p.region, format_ms(p.baseline_ms), format_ms(p.current_ms),
             format_change(p.ratio), format_interval(p), format_p(p.p_adjusted), p.verdict.label)
            for p in comparison.ordered()]
    if rows:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        lines.append("")
    summary = count_summary(comparison)
    geomean = comparison.geomean
    lines.append(f"{len(comparison.pairs)} compared: {summary}"
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
    if verdict:  # rnnbench ab says it once, in its closing verdict (harness.report.answer.ab_verdict_text)
        lines.append(verdict_line(comparison))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- Markdown

def _md(text: str) -> str:
    return markdown_inline(text)


def _md_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _md_case_rows(pairs: list[Pair]) -> list[tuple[str, ...]]:
    return [(f"{p.verdict.icon} {p.verdict.label}", f"`{p.key}`", p.region,
             format_ms(p.baseline_ms), format_ms(p.current_ms), format_change(p.ratio),
             format_interval(p), format_p(p.p_adjusted)) for p in pairs]


def _md_environment(differences: tuple[EnvironmentDifference, ...]) -> list[str]:
    return _md_table(("", "field", "baseline", "current"),
                     [(":warning:" if d.blocking else "", d.label, d.baseline or "unknown", d.current or "unknown")
                      for d in differences])


def render_markdown(comparison: Comparison) -> str:
    status = ":x: regression" if comparison.failed else ":white_check_mark: no regression"
    lines = [f"## rnnbench compare: {status}", "", f"**{_md(verdict_line(comparison))}**", ""]
    lines += [f"- {_md(_run_line('baseline', comparison.baseline))}",
              f"- {_md(_run_line('current', comparison.current))}",
              *(f"- {_md(' '.join(line.split()))}" for line in code_lines(comparison)),
              f"- {_md(method_line(comparison))}", ""]
    if comparison.blocking_differences:
        lines += ["> [!WARNING]", "> **The environments differ** and were compared anyway "
                  "(`--allow-env-mismatch`): treat these verdicts with suspicion.", ""]
    if comparison.environment:
        lines += _md_environment(comparison.environment) + [""]
    notes = comparison.warnings
    lines += [f"> :warning: {_md(note)}" for note in notes] + ([""] if notes else [])
    header = ("verdict", "case", "region", "baseline ms", "current ms", "change", *table_headers(comparison))
    ordered = comparison.ordered()
    flagged = [p for p in ordered if p.verdict != Verdict.UNCHANGED]
    unchanged = [p for p in ordered if p.verdict == Verdict.UNCHANGED]
    lines.append(count_summary(comparison) + f" of {len(comparison.pairs)} compared"
                 + (f"; geometric mean change {format_change(comparison.geomean)}"
                    if comparison.pairs else "") + ".")
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
             f"- {_md(_run_line('baseline', comparison.baseline))}",
             f"- {_md(_run_line('current', comparison.current))}", ""]
    lines += _md_environment(comparison.environment)
    return "\n".join(lines) + "\n"


def environment_refusal_error(comparison: Comparison, option: str):
    """The one-line error of a comparison refused for its environments (``compare`` without ``option``)."""
    from harness.errors import ComparisonError

    return ComparisonError(f"refusing to compare runs of different environments "
                           f"({', '.join(d.label for d in comparison.blocking_differences)}); refresh the baseline "
                           f"on this machine or pass {option}")


@dataclass(frozen=True)
class FilesCompared:
    """What ``rnnbench compare`` says: ``text`` (on stdout, or on stderr with a ``refusal`` to raise after it)."""

    text: str
    failed: bool = False
    refusal: Exception | None = None


def compare_files(baseline_path, current_path, *, metric, threshold: float, alpha: float, markdown_path=None,
                  allow_env_mismatch: bool = False) -> FilesCompared:
    """The gate over two results files, its Markdown written first (a file that cannot be written must not
    follow a printed verdict); different environments are refused unless ``allow_env_mismatch``."""
    from harness.gate.compare import compare_runs
    from harness.record.results_io import write_text
    from harness.record.results_store import read_results

    baseline, current = read_results(baseline_path), read_results(current_path)
    comparison = compare_runs(baseline, current, metric=metric, threshold=threshold, alpha=alpha)
    refused = bool(comparison.blocking_differences) and not allow_env_mismatch
    if markdown_path:
        markdown = (render_markdown_refusal(comparison, "--allow-env-mismatch") if refused
                    else render_markdown(comparison))
        write_text(markdown_path, markdown, inputs=(baseline_path, current_path))
    if refused:
        return FilesCompared(render_environment_refusal(comparison),
                             refusal=environment_refusal_error(comparison, "--allow-env-mismatch"))
    return FilesCompared(render_text(comparison), failed=comparison.failed)


def ab_comparison_lines(runs, threshold: float, alpha: float, markdown_path=None) -> tuple[list[str], bool]:
    """The end of ``rnnbench ab``: the gate of B against A (its Markdown written to ``markdown_path`` first) and
    the verdict; with whether B regressed."""
    from harness.gate.compare import compare_runs
    from harness.record.results_io import write_text
    from harness.report.answer import ab_verdict_text

    comparison = compare_runs(runs["a"], runs["b"], threshold=threshold, alpha=alpha, labels=("A", "B"))
    if markdown_path is not None:
        write_text(markdown_path, render_markdown(comparison))
    return [render_text(comparison, verdict=False), ab_verdict_text(comparison)], comparison.failed
