"""The lines ``rnnbench run`` and ``rnnbench ab`` say on stderr as they start and end (the tables and the
comparison are :mod:`harness.report.text` and :mod:`harness.report.compare_text`)."""

from __future__ import annotations

from harness.record.results import Environment


def run_header(plan, journal_path) -> str:
    """``rnnbench: N cases of suite 'S' (K already finished) (shard I/N) on cpu (hardware, dtype, precision);
    journal: PATH``."""
    suite = plan.suite
    resumed = f" ({len(plan.previous_cases)} already finished)" if plan.resuming else ""
    resumed += f" (shard {plan.options.shard})" if plan.options.shard is not None else ""
    hardware = Environment(plan.environment).hardware_name
    return (f"rnnbench: {len(plan.cases)} cases of suite '{suite.name}'{resumed} on {plan.opened.device_name} "
            f"({hardware}, {suite.dtype}, {suite.precision}); journal: {journal_path}")


def run_ending_lines(plan, ending) -> list[str]:
    """What a run that did not finish its plan says last: why it stopped, what was kept, how to go on."""
    path, kept = plan.path, len(ending.results.cases)
    resume = f"continue with: rnnbench run {plan.opened.path} --resume {path}"
    if ending.outcome.stopped_by == "error":
        return [f"rnnbench: error: {ending.outcome.failure}; the run stopped; {kept} finished cases saved to {path}"]
    if ending.outcome.stopped_by == "workers":
        return [f"rnnbench: error: {ending.outcome.failure}; {len(ending.remaining)} planned cases not run; "
                f"{kept} finished cases saved to {path}; {resume}"]
    if ending.status == "interrupted":
        how = resume if plan.rounds == 1 else "a run in rounds cannot be resumed: run it again"
        return [f"rnnbench: interrupted, not complete: {len(ending.remaining)} planned cases not run; "
                f"{kept} finished cases saved to {path}; {how}"]
    return []


def ab_header(plan) -> str:
    """``rnnbench: A/B of N cases of suite 'S', R rounds, K alternating blocks per case; A: ...; B: ...``."""
    plural = "s" if len(plan.cases) != 1 else ""
    sides = "; ".join(f"{side.upper()}: {plan.sides[side].interpreter}" for side in plan.sides)
    return (f"rnnbench: A/B of {len(plan.cases)} case{plural} of suite '{plan.suite.name}', {plan.rounds} rounds, "
            f"{plan.blocks} alternating blocks per case; {sides}")


def ab_ending_line(plan, session) -> str | None:
    """What an A/B that did not finish says last (None when it finished: the comparison follows)."""
    if session.outcome.stopped_by == "error":
        kept = f"what finished is in {plan.folder}" if session.runs else "nothing was measured"
        return f"rnnbench: error: {session.outcome.failure}; {kept}"
    if not session.complete:
        return f"rnnbench: interrupted; what finished is in {plan.folder}"
    return None


def merge_warning_lines(merged, *, written: bool) -> list[str]:
    """``rnnbench merge``'s warnings: before the file is written, each environment difference merged anyway;
    after, the shards missing."""
    if not written:
        return [f"rnnbench: WARNING: {source}: {difference.label} {difference.baseline} -> {difference.current} "
                f"(merged with --allow-env-mismatch)" for source, difference in merged.environment_differences]
    lines = []
    if merged.missing_shards:
        lines.append(f"rnnbench: WARNING: shards {', '.join(f'{i}/{merged.shard_count}' for i in merged.missing_shards)}"
                     f" missing: the merged file is marked interrupted")
    elif merged.missing_cases:
        lines.append(f"rnnbench: WARNING: {merged.missing_cases} planned cases in no input: the merged file is marked "
                     f"interrupted")
    if merged.plan_unknown:
        lines.append(f"rnnbench: WARNING: {' '.join(str(merged.plan_unknown).split())}; the cases it plans cannot be "
                     f"listed, so the merged file is marked interrupted")
    return lines


def merge_line(merged, output, file_count: int) -> str:
    counts = merged.run.counts()
    return (f"{output}: {len(merged.run.cases)} cases from {file_count} files ({counts['ok']} ok, "
            f"{counts['failed']} failed, {counts['skipped']} skipped), {merged.run.status}")


def profile_ending_lines(plan, ending) -> list[str]:
    """What a profile that stopped early says last."""
    kept = f"{len(ending.records)} finished cases saved to {plan.path}"
    if ending.outcome.stopped_by == "error":
        return [f"rnnbench: error: {ending.outcome.failure}; the profile stopped; {kept}"]
    if ending.status == "interrupted":
        return [f"rnnbench: interrupted; {kept}"]
    return []


def run_summary_lines(results) -> list[str]:
    """What ``rnnbench run`` prints on stdout at the end: the tables, the warnings, and the answer."""
    from harness.report.answer import answer_text
    from harness.report.text import summary_table, warnings_lines

    return [summary_table(results), *warnings_lines(results), *([answer_text(results)] if results.cases else [])]


def profile_header(plan, journal_path) -> str:
    return (f"rnnbench: profiling {len(plan.cases)} cases of suite '{plan.suite.name}' on {plan.opened.device_name}, "
            f"{plan.profile_settings.steps} steps each; journal: {journal_path}")


def profile_summary_lines(plan, ending) -> list[str]:
    """The end of ``rnnbench profile`` on stdout: the profile's tables, then where the file is."""
    from harness.record.profile_file import profile_from_document
    from harness.report.profile_text import profile_text

    return [profile_text(profile_from_document(ending.document, str(plan.path))), f"profile: {plan.path}"]
