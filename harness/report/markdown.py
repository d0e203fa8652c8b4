"""A Markdown summary that reads well as a pull-request comment or a CI step summary
(``$GITHUB_STEP_SUMMARY``): a headline, the speedups over cudnn, one compact table (configuration x
backend: median and speedup, flags), failures and comparisons. Long lists fold into <details>."""

from __future__ import annotations

from typing import Sequence

from harness.gate.compare import Comparison
from harness.report import context
from harness.report.flags import NOISY_RULE, eager_fallbacks, noisy, problems, unreliable_speedups
from harness.report.answer import capitalised, display_names as run_answer_names, ordered_geomeans, run_answer
from harness.report.roofline import roofline_table
from harness.report.text import configuration_groups, format_ms, speedups_by_key
from harness.record.results import CaseResult, RunResults
from harness.gate.speedup import UNRELIABLE_RULE, Speedup
from harness.spec.suite import BACKENDS, CELLS
from harness.gate.verdict import VERDICTS, Verdict, changed_cases_title, verdict_rule

FOLD_ROWS = 12  # longer tables and lists go into a <details> block
NOISY_MARK, EAGER_MARK, FAILED_MARK, SKIPPED_MARK, UNRELIABLE_MARK = "⚠", "†", "✗", "⊘", "‡"


def report_markdown(sections: Sequence[tuple[str, RunResults, Sequence]], comparisons: Sequence[Comparison]) -> str:
    lines: list[str] = []
    for label, run, charts in sections:
        lines += _run_summary(label, run, charts)
    for comparison in comparisons:
        lines += _comparison_summary(comparison)
    return "\n".join(lines).rstrip() + "\n"


def _run_summary(label: str, run: RunResults, charts) -> list[str]:
    counts = run.counts()
    status = "" if run.status == "complete" else f" · **run {run.status}: not every case ran**"
    lines = [f"### rnnbench `{label}`: suite `{run.suite.get('name', '?')}`", "",
             f"{context.device_name(run)} · {context.dtype_and_precision(run)} · {context.torch_versions(run)} · "
             f"commit {context.commit(run)}", "",
             *([f"> :warning: **{markdown_inline(run.environment.machine_busy_line)}**: its timings measure the "
                f"other work too.", ""] if run.environment.machine_busy_line else []),
             f"**{len(run.cases)} cases: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped**"
             f"{status}", ""]
    speedups = speedups_by_key(run)
    answer = run_answer(run, speedups)
    lines += [f"**{markdown_inline(capitalised(answer.overall_line()))}**", ""]
    geomeans = answer.geomeans
    if geomeans:
        lines += [f"Speedup over {answer.baseline}, geometric mean over cases (> 1: faster): "
                  + " · ".join(_geomean_text(mean, answer) for mean in ordered_geomeans(answer))]
        left_out = sum(mean.unreliable for mean in geomeans.values())
        if left_out:
            lines += ["", f"{UNRELIABLE_MARK} {left_out} unreliable speedup{'s' if left_out != 1 else ''} left out of "
                      f"the geometric means and not shown: {UNRELIABLE_RULE}"]
        lines.append("")
    lines += _fold(_pivot_table(run, speedups), f"Median {_regions(run)} time per configuration "
                   f"({len(configuration_groups(run))} configurations)", open_when_short=True)
    uncertain = unreliable_speedups(speedups.values())
    unreliable_key = f"{UNRELIABLE_MARK} speedup over {answer.baseline} unreliable (not shown) · " if uncertain else ""
    lines += [f"{NOISY_MARK} noisy ({NOISY_RULE}) · {EAGER_MARK} NOT compiled, ran eagerly · {unreliable_key}"
              f"{FAILED_MARK} failed · {SKIPPED_MARK} skipped", ""]
    failed = problems(run)
    if failed:
        lines += _fold([f"- {FAILED_MARK if f.what == 'failed' else SKIPPED_MARK} `{f.key}`: {markdown_inline(f.detail)}"
                        for f in failed], f"Failed and skipped ({len(failed)})", open_when_short=True)
    fallbacks = eager_fallbacks(run)
    if fallbacks:
        lines += _fold([f"- {EAGER_MARK} `{f.key}`: {markdown_inline(f.detail)}" for f in fallbacks],
                       f"Compiled backends that ran eagerly ({len(fallbacks)})", open_when_short=True)
    flagged = noisy(run)
    if flagged:
        lines += _fold([f"- {NOISY_MARK} `{f.key}`: {f.detail}" for f in flagged], f"Noisy measurements ({len(flagged)})")
    if uncertain:
        lines += _fold([f"- {UNRELIABLE_MARK} `{f.key}`: {f.detail}" for f in uncertain],
                       f"Speedups over cudnn too uncertain to show ({len(uncertain)})")
    lines += roofline_table(run)
    drawn = [chart for chart in charts if not getattr(chart, "left_out", None)]
    if drawn:
        lines += ["Charts: " + ", ".join(f"`{chart.name}`" for chart in drawn) + " (and `report.html`)", ""]
    for chart in charts:
        if getattr(chart, "left_out", None):
            lines += [f"Chart not drawn: `{chart.name}`: {markdown_inline(chart.left_out)}", ""]
    return lines


def _geomean_text(mean, answer) -> str:
    value = f"{mean.value:.2f}×" if mean.value is not None else "no reliable ratio"
    left_out = f" ({mean.left_out_text()} {UNRELIABLE_MARK})" if mean.unreliable else ""
    return f"**{answer.geomean_name(mean.backend)}** {value}{left_out}"


def _regions(run: RunResults) -> str:
    return "/".join(sorted({r.primary_region for r in run.cases}))


def _pivot_table(run: RunResults, speedups: dict[str, Speedup]) -> list[str]:
    """One row per configuration, one column per backend: median (speedup over cudnn) and flags."""
    groups = configuration_groups(run)
    backends = [b for b in BACKENDS if any(r.case.backend_label == b for r in run.cases)]
    backends += sorted({r.case.backend_label for r in run.cases} - set(backends))
    cells = {key[0] for key in groups}
    modes = {key[1] for key in groups}
    names = run_answer_names(run)
    lines = ["| configuration | " + " | ".join(markdown_inline(names.get(b, b)) for b in backends) + " |",
             "|---|" + "---:|" * len(backends)]
    order = list(groups)
    ordered = sorted(order, key=lambda k: (CELLS.index(k[0]) if k[0] in CELLS else len(CELLS), k[1], order.index(k)))
    for cell, mode, shape, dtype, device in ordered:
        results = groups[(cell, mode, shape, dtype, device)]
        label = " ".join(([cell] if len(cells) > 1 else []) + ([mode] if len(modes) > 1 else []) + [shape])
        by_backend = {r.case.backend_label: r for r in results}
        row = [_cell(by_backend.get(b), speedups) for b in backends]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    if len(cells) == 1 or len(modes) == 1:
        fixed = ", ".join(([f"cell {next(iter(cells))}"] if len(cells) == 1 else [])
                          + ([f"mode {next(iter(modes))}"] if len(modes) == 1 else []))
        lines.append(f"\n({fixed})")
    return lines


def _cell(result: CaseResult | None, speedups: dict[str, Speedup]) -> str:
    if result is None:
        return ""
    if result.status == "failed":
        return f"{FAILED_MARK} failed"
    if result.status == "skipped":
        return f"{SKIPPED_MARK} skipped"
    text = f"{format_ms(result.median_ms())} ms"
    speedup = speedups.get(result.key)
    if speedup is not None and speedup.ratio is not None:
        text += f" ({speedup.ratio.value:.2f}×)" if speedup.reliable else f" (unreliable {UNRELIABLE_MARK})"
    if result.ran_eagerly:
        text += f" {EAGER_MARK}"
    if result.noisy_regions:
        text += f" {NOISY_MARK}"
    return text


def _comparison_summary(comparison: Comparison) -> list[str]:
    a, b = comparison.baseline_label, comparison.current_label
    lines = [f"### `{b}` (B) vs `{a}` (A)", ""]
    geomean = comparison.geomean
    if geomean is None:
        lines += ["No case ran in both files.", ""]
    else:
        counts = comparison.counts()
        tally = ", ".join(f"**{counts[v]} {v.word}**" if v in (Verdict.REGRESSION, Verdict.IMPROVEMENT)
                          else f"{counts[v]} {v.word}" for v in VERDICTS)
        lines += [f"Median time B/A (> 1: B slower), geometric mean **{geomean:.3f}×** over {len(comparison.pairs)} "
                  f"compared cases: {tally}. "
                  f"{verdict_rule(comparison.threshold, comparison.alpha, len(comparison.pairs), comparison.rule)}.", ""]
        lines += [f"> :warning: rnnbench compare A B warns: {markdown_inline(warning)}" for warning in comparison.warnings] \
            + ([""] if comparison.warnings else [])
        if comparison.blocking_differences:
            lines += [f"**The environments differ** ({', '.join(d.label for d in comparison.blocking_differences)}): "
                      f"`rnnbench compare` refuses to gate these files without `--allow-env-mismatch`.", ""]
        lines += ["| backend | geomean B/A | " + " | ".join(v.word for v in VERDICTS) + " |",
                  "|---|---:|" + "---:|" * len(VERDICTS)]
        for backend, value in comparison.geomean_by_backend().items():
            mine = comparison.counts(p for p in comparison.pairs if p.case.backend_label == backend)
            lines.append(f"| {backend} | {value:.3f}× | " + " | ".join(str(mine[v]) for v in VERDICTS) + " |")
        lines.append("")
        changed = comparison.changed()
        if changed:
            rows = [f"| case | A ms | B ms | B/A [{comparison.interval_confidence:.0%} CI] | verdict |", "|---|---:|---:|---:|---|"]
            for p in changed:
                ci = f" [{p.ci_low:.2f}, {p.ci_high:.2f}]" if p.interval.has_ci else ""
                rows.append(f"| {p.verdict.mark} `{p.key}` | {format_ms(p.baseline_ms)} | "
                            f"{format_ms(p.current_ms)} | {p.ratio:.2f}×{ci} | {p.verdict.word} |")
            lines += _fold(rows, f"{changed_cases_title()} ({len(changed)})", open_when_short=True)
    left_out = ([f"- `{key}`: only in A" for key in comparison.only_in_baseline]
                + [f"- `{key}`: only in B" for key in comparison.only_in_current]
                + [f"- `{n.key}`: {'**broken**, fails the gate: ' if n.broken else ''}{markdown_inline(n.reason)}"
                   for n in comparison.not_compared])
    if left_out:
        lines += _fold(left_out, f"Not compared ({len(left_out)})")
    return lines


def _fold(lines: list[str], summary: str, open_when_short: bool = False) -> list[str]:
    """Lines under a bold heading when short (and open_when_short), else inside a <details> block."""
    if open_when_short and len(lines) <= FOLD_ROWS:
        return [f"**{summary}**", "", *lines, ""]
    return [f"<details><summary>{summary}</summary>", "", *lines, "", "</details>", ""]


def markdown_inline(text: str) -> str:
    """One line, safe inside a Markdown table or list item: text from a results file (a crafted reason,
    say) can start no heading, table row, HTML tag or code span of its own."""
    one_line = " ".join(str(text).split())
    return (one_line.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("`", "'"))
