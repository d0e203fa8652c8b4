"""The plan a results file records: which suite, which selection of its cases (``--backend``, ``--filter``),
which shard count, how many rounds. Two files belong in one merged file only when they are parts of one plan,
and a file is complete only when every case of its plan is there; both are decided here, from what the files
record, never from the options given now.
"""

from __future__ import annotations

from typing import Any, Mapping

from harness.spec.cases import Case, expand_cases, select_cases
from harness.errors import RnnbenchError
from harness.record.results import RunResults, thaw
from harness.record.resume import suite_content


class PlanUnknown(RnnbenchError):
    """The recorded suite or selection cannot be expanded into cases again (a hand-made or foreign file)."""


# The recorded options that decide which cases a run measures and how: (option, what a message calls it).
PLAN_OPTIONS = (("backends", "--backend"), ("filters", "--filter"), ("shard_count", "shard count"),
                ("rounds", "rounds"), ("nvtx", "--nvtx"))


def shard_count_of(run: RunResults) -> int | None:
    """N for a shard I/N, or for a merged file whose parts were all shards of N; else None."""
    options = run.run_options
    if options.shard is not None:
        return options.shard.count
    counts = {(part.get("shard") or {}).get("count") for part in options.merged_from or ()}
    return counts.pop() if len(counts) == 1 else None


def plan_options(run: RunResults) -> dict[str, Any]:
    """What of the plan the options record, in a form two files can be compared by (selection order aside)."""
    options = run.run_options
    return {"backends": sorted(set(options.backends or ())), "filters": sorted(set(options.filters or ())),
            "shard_count": shard_count_of(run), "rounds": options.round_count, "nvtx": options.nvtx}


def plan_differences(first: RunResults, other: RunResults) -> list[tuple[str, Any, Any]]:
    """(what differs, in ``first``, in ``other``): the suite's keys that differ, then the plan's options."""
    differences = [(f"suite {name}", mine, theirs)
                   for name, mine, theirs in _leaf_differences(suite_content(first.suite), suite_content(other.suite))]
    mine, theirs = plan_options(first), plan_options(other)
    for name, label in PLAN_OPTIONS:
        if mine[name] != theirs[name]:
            differences.append((label, mine[name], theirs[name]))
    return differences


def _leaf_differences(mine: Any, theirs: Any, name: str = ""):
    """(dotted name, value, value) of each differing value, down to the leaves of nested mappings."""
    if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
        for key in sorted(set(mine) | set(theirs), key=str):
            yield from _leaf_differences(mine.get(key), theirs.get(key), f"{name}.{key}" if name else str(key))
    elif mine != theirs:
        yield name, mine, theirs


def planned_cases(run: RunResults) -> tuple[Case, ...]:
    """Every case of the run's plan, all shards together: its recorded suite expanded on its device, less what
    its recorded selection leaves out. Raises PlanUnknown when the record cannot be expanded."""
    from harness.spec.suite import suite_from_record

    device_type = run.environment.device_type or str(run.run_options.device or "").split(":")[0]
    if not device_type:
        raise PlanUnknown(f"{run.source}: records no device, so its cases cannot be listed again")
    try:
        suite = suite_from_record(thaw(run.suite), f"{run.source}: suite")
        return tuple(select_cases(expand_cases(suite, device_type), tuple(run.run_options.backends or ()),
                                  tuple(run.run_options.filters or ())))
    except RnnbenchError as exc:
        raise PlanUnknown(str(exc)) from None


def describe(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]" if value else "none"
    if isinstance(value, Mapping):
        return "{...}"
    return "none" if value is None else str(value)
