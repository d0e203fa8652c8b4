"""Merging results files (the shards of one run, from several jobs or machines) into one results file.

Only files of the same suite (its content: comments, description and file name aside) and of comparable
environments (the blocking differences of :mod:`harness.record.environment_diff`, unless asked) are merged, each case
at most once, every sample kept. The merged run is an ordinary :class:`RunResults`; which files it came from
(and their shards, hosts and statuses) is recorded in its ``options.merged_from``. Nothing here reads or
writes files: that is :mod:`harness.record.results_store`'s. The rounds of one case (fresh processes, one after another)
are joined here too: :func:`merge_rounds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness.record.environment_diff import EnvironmentDifference, environment_differences
from harness.errors import RnnbenchError
from harness.record.plan import PlanUnknown, describe, plan_differences, planned_cases, shard_count_of
from harness.record.results import CaseResult, RunResults, thaw
from harness.record.run_options import RunOptions


class MergeError(RnnbenchError):
    """Results files that cannot be merged: different suites or environments, a case twice."""


@dataclass(frozen=True)
class Merged:
    run: RunResults
    missing_shards: tuple[int, ...]  # of N shards, the indices no input file holds (all inputs were shards of N)
    shard_count: int | None
    environment_differences: tuple[tuple[str, EnvironmentDifference], ...]  # (file, difference) when allowed
    missing_cases: int | None = None  # cases of the plan no input holds; None: the plan could not be listed
    plan_unknown: str | None = None  # why not


def merge_files(paths, out, *, allow_env_mismatch: bool = False, force: bool = False,
                before_writing=lambda merged: None) -> Merged:
    """``rnnbench merge``: the files read and merged, ``before_writing(merged)`` told (its warnings said before a
    write that may fail), the merged file written to ``out`` (never over an input, nor another program's file)."""
    from harness.record.results_io import refuse_overwriting, write_results
    from harness.record.results_store import read_runs

    target = refuse_overwriting(out, inputs=paths, force=force)
    merged = merge_runs(read_runs(paths), allow_env_mismatch=allow_env_mismatch)
    before_writing(merged)
    write_results(target, merged.run)
    return merged


def merge_runs(runs: Sequence[RunResults], *, allow_env_mismatch: bool = False) -> Merged:
    if not runs:
        raise MergeError("merge: name at least one results file")
    shards = [_shard_of(run) for run in runs]
    if all(shard is not None for shard in shards):
        order = sorted(range(len(runs)), key=lambda i: (shards[i]["index"], i))
        runs, shards = [runs[i] for i in order], [shards[i] for i in order]
    first = runs[0]
    differences = []
    for run in runs[1:]:
        plan = plan_differences(first, run)
        if plan:
            what, mine, theirs = plan[0]
            kind = "suite" if what.startswith("suite ") else "plan"
            raise MergeError(f"{run.source}: a different {kind} from {first.source} ({what}: {_short(mine)} in "
                             f"{first.source}, {_short(theirs)} in {run.source}); only the shards of one run "
                             f"(one suite, selection, shard count and rounds) are merged")
        for difference in environment_differences(first, run):
            if difference.blocking and not allow_env_mismatch:
                raise MergeError(f"{run.source}: a different environment from {first.source} ({difference.label}: "
                                 f"{difference.baseline} -> {difference.current}); its timings do not belong in one "
                                 f"file; pass --allow-env-mismatch to merge anyway")
            if difference.blocking:
                differences.append((str(run.source), difference))
    seen: dict[str, str] = {}
    cases = []
    for run in runs:
        for case in run.cases:
            if case.key in seen:
                raise MergeError(f"{run.source}: case {case.key} is also in {seen[case.key]}; a case is merged "
                                 f"once (overlapping shards, or the same file twice?)")
            seen[case.key] = str(run.source)
            cases.append(case)
    parts = [part for run, shard in zip(runs, shards) for part in _parts_of(run, shard)]
    shard_count = shard_count_of(first)
    held = {part["shard"]["index"] for part in parts if part.get("shard")}
    missing = tuple(sorted(set(range(shard_count)) - held)) if shard_count else ()
    try:
        planned = {case.key for case in planned_cases(first)}
        plan_unknown = None
    except PlanUnknown as exc:
        planned, plan_unknown = None, str(exc)
    if planned is not None:
        outside = [key for key in seen if key not in planned]
        if outside:
            raise MergeError(f"{seen[outside[0]]}: case {outside[0]} is not in the plan its file records (suite and "
                             f"selection); it does not belong to this run")
    missing_cases = len(planned - set(seen)) if planned is not None else None
    # Complete: every input measured all it was asked (a merged input: each of its parts did), and every case of
    # the plan is here. A plan that cannot be listed again cannot be shown complete.
    complete = all(_measured_all_asked(run) for run in runs) and not missing and missing_cases == 0
    merged_differences = [dict(item) for run in runs
                          for item in thaw(run.run_options.merged_environment_differences or ())]
    merged_differences += [{"source": source, "label": d.label, "baseline": d.baseline, "current": d.current}
                           for source, d in differences]
    recorded = first.run_options
    # a history keeps one environment per series: it refuses a file merged across environments (harness.record.history)
    options = RunOptions(device=recorded.device, backends=recorded.backends, filters=recorded.filters,
                         nvtx=recorded.nvtx, rounds=recorded.rounds, merged_from=parts,
                         merged_environment_differences=merged_differences or None)
    started = [run.started_utc for run in runs if run.started_utc]
    finished = [run.finished_utc for run in runs if run.finished_utc]
    merged = RunResults(environment=first.environment, suite=first.suite, cases=tuple(cases),
                        status="complete" if complete else "interrupted",
                        started_utc=min(started) if started else None,
                        finished_utc=max(finished) if finished else None, options=options)
    return Merged(run=merged, missing_shards=missing, shard_count=shard_count,
                  environment_differences=tuple(differences), missing_cases=missing_cases,
                  plan_unknown=plan_unknown)


def _parts_of(run: RunResults, shard: dict | None) -> list[dict]:
    """The files a merged file is made of: an input that is itself a merged file stands for its parts, so that
    merging a partial merge with the missing shards gives a complete file."""
    recorded = run.run_options.merged_from
    if recorded:
        return [thaw(part) for part in recorded]
    return [{"source": run.source, "status": run.status, "shard": shard, "host": run.environment.host,
             "device": run.environment.device, "started_utc": run.started_utc, "finished_utc": run.finished_utc,
             "cases": len(run.cases)}]


def _measured_all_asked(run: RunResults) -> bool:
    """Complete, or a merged file whose parts were each complete (what it lacks is whole parts, which the plan's
    cases tell)."""
    parts = run.run_options.merged_from
    return run.status == "complete" or bool(parts) and all(part.get("status") == "complete" for part in parts)


def _shard_of(run: RunResults) -> dict | None:
    shard = run.run_options.shard
    return shard.to_dict() if shard is not None else None


def _short(value) -> str:
    text = describe(value)
    return text if len(text) <= 60 else text[:57] + "..."


def merge_rounds(round_results: Sequence[dict]) -> CaseResult:
    """One case's results from its rounds (result documents, in the order the rounds ran) as one result.

    All rounds ok: every round's samples one after the other, with ``round_lengths`` (and ``block_lengths`` where
    every round cut its loop into blocks); the first round's
    warm-up, first iteration, parity, facts, memory, telemetry and activity; every round's warnings. Any
    round not ok: that round's status and reason (a case that failed once is not a measurement).
    """
    results = [CaseResult.from_dict(document) for document in round_results]
    first = results[0]
    broken = next((result for result in results if not result.ok), None)
    if broken is not None:
        index = results.index(broken)
        return CaseResult(case=broken.case, status=broken.status, reason=f"round {index}: {broken.reason}",
                          parity=broken.parity, backend=broken.backend, warnings=broken.warnings,
                          started_utc=first.started_utc, duration_s=_total_s(results))
    regions = list(first.samples_ms)
    samples = {region: tuple(s for result in results for s in result.samples_ms.get(region, ())) for region in regions}
    lengths = {region: tuple(len(result.samples_ms.get(region, ())) for result in results) for region in regions}
    warnings = tuple(dict.fromkeys(w for result in results for w in result.warnings))
    # blocks (an A/B's turns) only where every round had them: a partial record would misplace the later rounds'
    blocks = (tuple(n for result in results for n in result.block_lengths)
              if all(result.block_lengths for result in results) else ())
    return CaseResult(case=first.case, status="ok", samples_ms=samples, round_lengths=lengths, block_lengths=blocks,
                      warmup_ms=first.warmup_ms, first_iteration_ms=first.first_iteration_ms, parity=first.parity,
                      backend=first.backend, memory=first.memory, telemetry=first.telemetry,
                      activity=_merged_activity(results), build_s=first.build_s, started_utc=first.started_utc,
                      duration_s=_total_s(results), warnings=warnings)


def _merged_activity(results) -> dict:
    """The first round's activity, with every round's per-iteration GPU busy times (the samples of
    ``compare --metric gpu_busy``) one round after the other, when every round recorded them."""
    activity = dict(results[0].activity)
    busy = [result.activity.get("gpu_busy_ms_per_iteration") for result in results]
    if all(busy):
        activity["gpu_busy_ms_per_iteration"] = [value for samples in busy for value in samples]
        activity["gpu_busy_round_lengths"] = [len(samples) for samples in busy]
    return activity


def _total_s(results) -> float | None:
    durations = [result.duration_s for result in results if result.duration_s is not None]
    return round(sum(durations), 3) if durations else None
