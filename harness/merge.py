"""Merging results files (the shards of one run, from several jobs or machines) into one results file.

Only files of the same suite (its content: comments, description and file name aside) and of comparable
environments (the blocking differences of :mod:`harness.environment_diff`, unless asked) are merged, each case
at most once, every sample kept. The merged run is an ordinary :class:`RunResults`; which files it came from
(and their shards, hosts and statuses) is recorded in its ``options.merged_from``. Nothing here reads or
writes files: that is :mod:`harness.store`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness.environment_diff import EnvironmentDifference, environment_differences
from harness.errors import RnnbenchError
from harness.resume import suite_content
from harness.results import RunResults
from harness.run_options import RunOptions


class MergeError(RnnbenchError):
    """Results files that cannot be merged: different suites or environments, a case twice."""


@dataclass(frozen=True)
class Merged:
    run: RunResults
    missing_shards: tuple[int, ...]  # of N shards, the indices no input file holds (all inputs were shards of N)
    shard_count: int | None
    environment_differences: tuple[tuple[str, EnvironmentDifference], ...]  # (file, difference) when allowed


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
        if suite_content(run.suite) != suite_content(first.suite):
            raise MergeError(f"{run.source}: a different suite from {first.source} ('{run.suite.get('name')}' vs "
                             f"'{first.suite.get('name')}', or the same name with other content); only shards of one "
                             f"suite are merged")
        for difference in environment_differences(first, run):
            if difference.blocking and not allow_env_mismatch:
                raise MergeError(f"{run.source}: a different environment from {first.source} ({difference.label}: "
                                 f"{difference.baseline} -> {difference.current}); its timings do not belong in one "
                                 f"file; pass --allow-env-mismatch to merge anyway")
            if difference.blocking:
                differences.append((str(run.source), difference))
    rounds = {run.run_options.round_count for run in runs}
    if len(rounds) > 1:
        raise MergeError(f"merge: the files were measured in different numbers of rounds ({sorted(rounds)}); "
                         f"their statistics are not of one kind")
    seen: dict[str, str] = {}
    cases = []
    for run in runs:
        for case in run.cases:
            if case.key in seen:
                raise MergeError(f"{run.source}: case {case.key} is also in {seen[case.key]}; a case is merged "
                                 f"once (overlapping shards, or the same file twice?)")
            seen[case.key] = str(run.source)
            cases.append(case)
    counts = {shard["count"] for shard in shards if shard is not None}
    shard_count = counts.pop() if len(counts) == 1 and all(shard is not None for shard in shards) else None
    missing = tuple(sorted(set(range(shard_count)) - {shard["index"] for shard in shards})) if shard_count else ()
    complete = all(run.status == "complete" for run in runs) and not missing
    recorded = first.run_options
    merged_from = [
        {"source": run.source, "status": run.status, "shard": shard, "host": run.environment.host,
         "device": run.environment.device, "started_utc": run.started_utc, "finished_utc": run.finished_utc,
         "cases": len(run.cases)}
        for run, shard in zip(runs, shards)]
    # a history keeps one environment per series: it refuses a file merged across environments (harness.history)
    options = RunOptions(device=recorded.device, backends=recorded.backends, filters=recorded.filters,
                         rounds=recorded.rounds, merged_from=merged_from,
                         merged_environment_differences=[
                             {"source": source, "label": d.label, "baseline": d.baseline, "current": d.current}
                             for source, d in differences] or None)
    started = [run.started_utc for run in runs if run.started_utc]
    finished = [run.finished_utc for run in runs if run.finished_utc]
    merged = RunResults(environment=first.environment, suite=first.suite, cases=tuple(cases),
                        status="complete" if complete else "interrupted",
                        started_utc=min(started) if started else None,
                        finished_utc=max(finished) if finished else None, options=options)
    return Merged(run=merged, missing_shards=missing, shard_count=shard_count,
                  environment_differences=tuple(differences))


def _shard_of(run: RunResults) -> dict | None:
    shard = run.run_options.shard
    return shard.to_dict() if shard is not None else None
