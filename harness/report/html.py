"""One self-contained HTML page: charts embedded as PNG data URIs, the environment, the summary tables,
failed and skipped cases with their reasons, noisy measurements and eager fallbacks flagged, and the
A-vs-B comparisons. No scripts, no external files, no timestamp of its own."""

from __future__ import annotations

import base64
from html import escape
from typing import Sequence

from harness.gate.compare import Comparison, Pair, comparison_method
from harness.report import context
from harness.report.compare_text import format_p, table_headers, verdict_line
from harness.report.flags import NOISY_RULE, Flagged, eager_fallbacks, is_noisy, noisy, problems, unreliable_speedups
from harness.report.answer import behind_text, capitalised, geomean_parts, run_answer
from harness.report.names import cpu_libraries, format_cudnn_version, result_backend_name
from harness.report.text import (MEMORY_FOOTNOTES, STEP_FOOTNOTE, Footnotes, configuration_groups, format_ms,
                                 speedups_by_key, summary_block)
from harness.record.results import RunResults
from harness.gate.speedup import UNRELIABLE_RULE, Speedup
from harness.gate.verdict import VERDICTS, changed_cases_title, verdict_rule

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1250px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.5rem; border-bottom: 2px solid #ddd; }
h3 { margin-top: 1.6rem; } .context { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .85rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td, tr.skipped td { background: #fde8e8; } tr.noisy td { background: #fff8e1; }
tr.eager td { background: #fff0e0; } tr.regression td { background: #fde8e8; } tr.improvement td { background: #e8f6e8; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; } .flag { font-weight: 600; color: #b00020; }
.ok { color: #1b7f1b; font-weight: 600; } details > summary { cursor: pointer; font-weight: 600; margin: .4rem 0; }
dl.env { display: grid; grid-template-columns: max-content auto; gap: .15rem 1rem; font-size: .9rem; }
dl.env dt { font-weight: 600; } dl.env dd { margin: 0; }
section.answer { background: #f7f9fc; border: 1px solid #dde4ee; border-radius: 6px; padding: .2rem 1.2rem .8rem; }
section.answer h2 { margin-top: .8rem; } p.verdict { font-size: 1.15rem; } p.note, ul.footnotes { color: #555; font-size: .85rem; }
ul.footnotes { margin-top: -.6rem; }
"""


def report_html(sections: Sequence[tuple[str, RunResults, Sequence]], comparisons: Sequence[Comparison],
                comparison_charts: Sequence, profile_charts: Sequence = ()) -> str:
    """``sections``: (label, run, charts) per results file; charts have .name, .title and .png.
    ``profile_charts``: the step breakdowns of profile files, in a section of their own."""
    runs = [run for _, run, _ in sections]
    body = ["<h1>rnnbench report</h1>", f"<p class=context>{escape(context.context_line(runs))}</p>"]
    body.append(_answer_section(sections, comparisons))
    body.append(_contents(sections, comparisons))
    for label, run, charts in sections:
        body.append(_run_section(label, run, charts))
    charts_by_label = {chart.title: chart for chart in comparison_charts}
    for comparison in comparisons:
        body.append(_comparison_section(comparison, charts_by_label.get(
            f"{comparison.current_label} vs {comparison.baseline_label}")))
    if profile_charts:
        body.append(_profiles_section(profile_charts))
    title = "rnnbench report: " + ", ".join(label for label, _, _ in sections)
    return ("<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
            f"<meta name=viewport content=\"width=device-width, initial-scale=1\">\n<title>{escape(title)}</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


PROFILE_NOTE = ("One bar per case and backend: the time of a step by kernel class (GPU; idle: the GPU waits on "
                "the host) or by operator class (CPU, self time; idle: the step outside every operator). From "
                "<code>rnnbench profile</code>; the tables are in its terminal output and profile file.")


def _profiles_section(charts) -> str:
    return "\n".join(["<h2 id=profiles>Where a step's time goes (profiles)</h2>", f"<p>{PROFILE_NOTE}</p>",
                      *(_figure(chart) for chart in charts)])


def profiles_only_html(charts) -> str:
    """The page of a report given only profile files."""
    return ("<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n<title>rnnbench report: profiles</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>rnnbench report</h1>\n{_profiles_section(charts)}\n"
            "</body>\n</html>\n")


def _contents(sections, comparisons) -> str:
    items = [f"<li><a href=\"#{_anchor(label)}\">{escape(label)}</a>: {_counts_text(run)}</li>"
             for label, run, _ in sections]
    items += [f"<li><a href=\"#{_anchor('compare-' + c.current_label + '-' + c.baseline_label)}\">"
              f"{escape(c.current_label)} vs {escape(c.baseline_label)}</a>: {_comparison_text(c)}</li>"
              for c in comparisons]
    return "<ul>" + "".join(items) + "</ul>"


def _counts_text(run: RunResults) -> str:
    counts = run.counts()
    text = (f"{len(run.cases)} cases: {counts['ok']} ok, "
            + (f"<span class=flag>{counts['failed']} failed</span>" if counts["failed"] else "0 failed")
            + f", {counts['skipped']} skipped")
    if run.status != "complete":
        text += f" — <span class=flag>run {escape(run.status)}: not every case ran</span>"
    return text


def _answer_section(sections, comparisons) -> str:
    """The first section: the A-vs-B verdicts (a report of several files), then per file the fastest backend
    per configuration and the geometric-mean speedups (harness.report.answer, as the Markdown summary)."""
    parts = ["<h2 id=answer>The answer</h2>"]
    for comparison in comparisons:
        css = "flag" if comparison.failed else "ok"
        parts.append(f"<p><strong>{escape(comparison.current_label)} (B) vs {escape(comparison.baseline_label)} "
                     f"(A):</strong> <span class={css}>{escape(verdict_line(comparison))}</span>; "
                     f"{_comparison_text(comparison)}. "
                     f"<a href=\"#{_anchor('compare-' + comparison.current_label + '-' + comparison.baseline_label)}\">"
                     f"details</a></p>")
    for label, run, _ in sections:
        answer = run_answer(run)
        if len(sections) > 1:
            parts.append(f"<h3>{escape(label)}</h3>")
        parts.append(f"<p class=verdict><strong>{escape(capitalised(answer.overall_line()))}.</strong></p>")
        geomeans = geomean_parts(answer)
        if geomeans:
            parts.append(f"<p>Speedup over {escape(answer.baseline)}, geometric mean over cases (&gt; 1: faster): "
                         + " · ".join(f"<strong>{escape(name)}</strong> {escape(value)}" for name, value in geomeans)
                         + "</p>")
        regions = "/".join(sorted({c.region for c in answer.configurations}))
        rows = []
        for configuration in answer.configurations:
            if configuration.fastest is None:
                rows.append(f"<tr class=failed><td>{escape(configuration.label)}</td><td colspan=3>no backend ran"
                            "</td></tr>")
                continue
            behind = ", ".join(behind_text(b) for b in configuration.behind)
            missing = ", ".join(f"{result_backend_name(r)} {r.status}" for r in configuration.missing)
            unclear = (f" <span class=flag>too close to call: {escape(configuration.unclear_why)}</span>"
                       if configuration.unclear_why else "")
            rows.append(f"<tr><td>{escape(configuration.label)}</td><td><strong>{escape(configuration.fastest_name)}"
                        f"</strong>{unclear}</td><td class=num>{format_ms(configuration.fastest.median_ms())}</td>"
                        f"<td>{escape('; '.join(part for part in (behind, missing) if part)) or 'none (the only backend)'}"
                        "</td></tr>")
        parts.append(f"<table class=answer><tr><th>configuration</th><th>fastest</th><th>median {escape(regions)} ms"
                     "</th><th>the others, × slower (their median over the fastest's)</th></tr>"
                     + "".join(rows) + "</table>")
        notes = []
        if any(not b.reliable and b.times_slower is not None for c in answer.configurations for b in c.behind):
            notes.append(f"<em>unreliable</em>: no number where the measurement cannot support one "
                         f"({escape(UNRELIABLE_RULE)}).")
        if answer.unclear:
            notes.append("Too close to call: the runner-up's ratio is unreliable or its interval reaches 1.")
        if answer.cpu_names_note:
            notes.append(escape(answer.cpu_names_note))
        if notes:
            parts.append(f"<p class=note>{' '.join(notes)}</p>")
    return "<section class=answer>" + "\n".join(parts) + "</section>"


def _run_section(label: str, run: RunResults, charts) -> str:
    suite = run.suite
    parts = [f"<h2 id=\"{_anchor(label)}\">{escape(label)}: suite {escape(str(suite.get('name', '?')))}</h2>",
             f"<p>{escape(str(suite.get('description') or ''))}</p>",
             f"<p>{_counts_text(run)}. File: <code>{escape(run.source or '?')}</code></p>"]
    for chart in charts:
        parts.append(_figure(chart))
    speedups = speedups_by_key(run)
    parts.append(_flag_lists(run, speedups))
    parts.append(_summary_tables(run, speedups))
    parts.append(_environment(run))
    return "\n".join(parts)


def _environment(run: RunResults) -> str:
    environment = run.environment
    torch, machine, threads = environment.torch, environment.machine, environment.threads
    precision = environment.math_precision
    facts = [
        ("device", context.device_name(run)),
        ("dtype, precision", context.dtype_and_precision(run)),
        ("torch", torch.get("version")),
        ("CUDA / cuDNN" if run.environment.device_type != "cpu" else "CUDA / cuDNN in this torch (unused on a CPU)",
         f"{torch.get('cuda') or '-'} / {format_cudnn_version(torch.get('cudnn')) or '-'}"
         if torch.get("cuda") or torch.get("cudnn") else None),
        ("oneDNN", torch.get("onednn")),
        ("RNN kernels that ran", ", ".join(cpu_libraries(run.cases)) if run.environment.device_type == "cpu" else None),
        ("math precision", ", ".join(f"{k}={v}" for k, v in precision.items() if k != "requested") or None),
        ("threads", f"intra-op {threads.get('intra_op')}, inter-op {threads.get('inter_op')}" if threads else None),
        ("Python", f"{machine.get('python_implementation', '')} {machine.get('python_version', '')}".strip() or None),
        ("system", f"{machine.get('system', '')} {machine.get('release', '')} {machine.get('machine', '')}".strip() or None),
        ("commit", context.commit(run)),
        ("rnnbench", environment.rnnbench_version),
        ("machine", context.machine_state(run)),
        ("machine notes", "; ".join(context.machine_notes(run)) or None),
        ("run", f"{run.started_utc or '?'} to {run.finished_utc or '?'} (UTC), {run.status}"),
        ("suite file", f"{run.suite.get('source', '?')} (sha256 {str(run.suite.get('sha256', '?'))[:12]})"),
    ]
    env_vars = environment.env_vars
    if env_vars:
        facts.append(("environment variables", ", ".join(f"{k}={v}" for k, v in env_vars.items())))
    rows = "".join(f"<dt>{escape(name)}</dt><dd>{escape(str(value))}</dd>" for name, value in facts if value)
    busy = environment.machine_busy_line
    flag = f"<p class=flag>{escape(busy)}: its timings measure the other work too.</p>" if busy else ""
    return f"<h3>Environment</h3>{flag}<dl class=env>{rows}</dl>"


def _figure(chart) -> str:
    if getattr(chart, "left_out", None):
        return (f"<p class=flag>Chart not drawn: {escape(chart.title)} (<code>{escape(chart.name)}</code>): "
                f"{escape(chart.left_out)}.</p>")
    data = base64.b64encode(chart.png).decode("ascii")
    detail = getattr(chart, "detail", "")
    detail_html = f"<br><small>{escape(detail)}</small>" if detail else ""
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{escape(chart.title)}\">"
            f"<figcaption>{escape(chart.title)} — <code>{escape(chart.name)}</code>{detail_html}</figcaption></figure>")


def _flag_lists(run: RunResults, speedups: dict[str, Speedup]) -> str:
    parts = []
    failed = problems(run)
    parts.append(f"<h3>Failed and skipped cases ({len(failed)})</h3>")
    parts.append(_flag_table(failed, "reason") if failed else "<p class=ok>None: every case ran.</p>")
    fallbacks = eager_fallbacks(run)
    if fallbacks:
        parts.append(f"<h3>Compiled backends that ran eagerly ({len(fallbacks)})</h3>"
                     "<p>Their times are eager PyTorch's, not compiled code's.</p>" + _flag_table(fallbacks, "why"))
    flagged = noisy(run)
    parts.append(f"<h3>Noisy measurements ({len(flagged)})</h3>")
    parts.append(f"<p>Flagged: {NOISY_RULE}. Their medians are less certain than the rest.</p>"
                 + _flag_table(flagged, "spread") if flagged else "<p class=ok>None.</p>")
    uncertain = unreliable_speedups(speedups.values())
    if uncertain:
        parts.append(f"<h3>Speedups over cudnn too uncertain to show ({len(uncertain)})</h3>"
                     f"<p>Shown as <em>unreliable</em> in the vs cudnn column: {escape(UNRELIABLE_RULE)}.</p>"
                     + _flag_table(uncertain, "why"))
    return "\n".join(parts)


def _flag_table(flagged: Sequence[Flagged], detail: str) -> str:
    rows = "".join(f"<tr class=\"{ROW_CLASSES.get(f.what, '')}\"><td><code>{escape(f.key)}</code></td>"
                   f"<td>{escape(f.what)}</td><td>{escape(f.detail)}</td></tr>" for f in flagged)
    table = f"<table><tr><th>case</th><th>flag</th><th>{escape(detail)}</th></tr>{rows}</table>"
    return f"<details><summary>show {len(flagged)}</summary>{table}</details>" if len(flagged) > 12 else table


ROW_CLASSES = {"failed": "failed", "skipped": "skipped", "noisy": "noisy", "not compiled": "eager",
               "unreliable speedup": "noisy"}


def _summary_tables(run: RunResults, speedups: dict[str, Speedup]) -> str:
    groups = configuration_groups(run)
    blocks = []
    for (cell, mode, shape, dtype, device), results in groups.items():
        region = results[0].primary_region
        footnotes = Footnotes()
        header, cell_rows = summary_block(run, results, speedups, footnotes)
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        rows = []
        for result, cells in zip(results, cell_rows):
            css = (result.status if not result.ok else "eager" if result.ran_eagerly
                   else "noisy" if is_noisy(result) else "")
            rows.append(f"<tr class=\"{css}\">" + "".join(
                f"<td{' class=num' if 1 < i < len(cells) - 1 else ''}>{escape(c)}</td>"
                for i, c in enumerate(cells)) + "</tr>")
        notes = "".join(f"<li>{escape(line)}</li>" for line in footnotes.lines())
        blocks.append(f"<h4>{escape(f'{cell} {mode} {shape} {dtype} {device}')} "
                      f"<small>(median of the {escape(region)}, ms)</small></h4>"
                      f"<table><tr>{head}</tr>{''.join(rows)}</table>"
                      + (f"<ul class=footnotes>{notes}</ul>" if notes else ""))
    devices = sorted({key[4] for key in groups})
    method = [STEP_FOOTNOTE] if any(r.ok and "backward" in r.stats for r in run.cases) else []
    method += [MEMORY_FOOTNOTES[d] for d in devices if d in MEMORY_FOOTNOTES]
    blocks.append("".join(f"<p class=note>{escape(text[0].upper() + text[1:])}.</p>" for text in method))
    return (f"<h3>Summary tables ({len(groups)} configurations)</h3>"
            "<p>Rows: <span style=\"background:#fde8e8\">failed or skipped</span>, "
            "<span style=\"background:#fff0e0\">not compiled (ran eagerly)</span>, "
            "<span style=\"background:#fff8e1\">noisy</span>.</p>"
            f"<details{' open' if len(groups) <= 6 else ''}><summary>{len(groups)} configurations</summary>"
            + "".join(blocks) + "</details>")


def _comparison_section(comparison: Comparison, chart) -> str:
    a, b = comparison.baseline_label, comparison.current_label
    parts = [f"<h2 id=\"{_anchor('compare-' + b + '-' + a)}\">{escape(b)} (B) vs {escape(a)} (A)</h2>",
             f"<p>{_comparison_text(comparison)}. Ratio: B's median over A's "
             f"({escape(comparison.region or 'each case’s primary region')}), &gt; 1 means B is slower; "
             f"{escape(comparison_method(comparison))}. "
             f"{escape(verdict_rule(comparison.threshold, comparison.alpha, len(comparison.pairs), comparison.rule))}.</p>"]
    parts += [f"<p class=flag>Warning (as rnnbench compare A B warns): {escape(warning)}.</p>"
              for warning in comparison.warnings]
    if comparison.blocking_differences:
        parts.append("<p class=flag>The environments differ ("
                     + escape(", ".join(f"{d.label}: {d.baseline or 'unknown'} → {d.current or 'unknown'}"
                                        for d in comparison.blocking_differences))
                     + "): rnnbench compare refuses to gate these files without --allow-env-mismatch.</p>")
    if chart is not None:
        parts.append(_figure(chart))
    by_backend = comparison.geomean_by_backend()
    if by_backend:
        rows = []
        for backend, value in by_backend.items():
            counts = comparison.counts(p for p in comparison.pairs if p.case.backend_label == backend)
            rows.append(f"<tr><td>{escape(backend)}</td><td class=num>{value:.3f}×</td>"
                        + "".join(f"<td class=num>{counts[v]}</td>" for v in VERDICTS) + "</tr>")
        parts.append("<table><tr><th>backend</th><th>geomean B/A</th>"
                     + "".join(f"<th>{v.word}</th>" for v in VERDICTS) + f"</tr>{''.join(rows)}</table>")
    changed = comparison.changed()
    parts.append(f"<h3>{changed_cases_title()} ({len(changed)})</h3>")
    parts.append(_pair_table(changed, comparison) if changed
                 else f"<p>None: every compared case is inside the ±{comparison.threshold:.1%} band.</p>")
    left_out = ([(key, "only in A") for key in comparison.only_in_baseline]
                + [(key, "only in B") for key in comparison.only_in_current]
                + [(n.key, ("BROKEN, fails the gate: " if n.broken else "") + n.reason) for n in comparison.not_compared])
    if left_out:
        rows = "".join(f"<tr><td><code>{escape(key)}</code></td><td>{escape(why)}</td></tr>" for key, why in left_out)
        parts.append(f"<h3>Not compared ({len(left_out)})</h3><details><summary>show</summary>"
                     f"<table><tr><th>case</th><th>why</th></tr>{rows}</table></details>")
    return "\n".join(parts)


def _pair_table(pairs: Sequence[Pair], comparison: Comparison) -> str:
    rows = "".join(
        f"<tr class=\"{p.verdict}\"><td><code>{escape(p.key)}</code></td><td>{escape(p.region)}</td>"
        f"<td class=num>{format_ms(p.baseline_ms)}</td>"
        f"<td class=num>{format_ms(p.current_ms)}</td>"
        f"<td class=num>{p.ratio:.3f}×</td><td class=num>{_ci(p)}</td>"
        f"<td class=num>{format_p(p.p_adjusted)}</td><td>{p.verdict.word_with_name()}</td></tr>"
        for p in pairs)
    interval, p_adjusted = table_headers(comparison)
    return (f"<table><tr><th>case</th><th>region</th><th>A ms</th><th>B ms</th><th>B/A</th><th>{interval}</th>"
            f"<th>{p_adjusted}</th><th>verdict</th></tr>{rows}</table>")


def _comparison_text(comparison: Comparison) -> str:
    counts = comparison.counts()
    geomean = comparison.geomean
    if geomean is None:
        return "no case ran in both files"
    return (f"geometric mean B/A {geomean:.3f}× over {len(comparison.pairs)} compared cases: "
            + ", ".join(f"{counts[v]} {v.word}" for v in VERDICTS))


def _ci(pair: Pair) -> str:
    return f"[{pair.ci_low:.3f}, {pair.ci_high:.3f}]" if pair.interval.has_ci else "-"


def _anchor(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)
