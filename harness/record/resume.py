"""Continuing an interrupted run: what was finished, and whether it may be continued at all.

A run may be continued only with the same suite (its content, not its file name or comments) on the same
environment (the fields that decide timings: device, GPU, driver, torch, CUDA, cuDNN, CPU, host, threads,
precision); mixing cases measured under different conditions into one results file would make its
comparisons dishonest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from harness.record.environment_diff import environment_differences
from harness.errors import RnnbenchError
from harness.record.results import RunResults, thaw
from harness.record.results_store import read_results_or_journal

# environment_differences() lets these pass for a comparison of two runs; within one run they must match.
ALSO_REFUSED_WHEN_RESUMING = ("host", "torch threads")
SUITE_FIELDS_IGNORED = ("source", "sha256", "description")
# What a resumed file keeps of the file it continues, beside the plan: where a merged file came from.
CARRIED_ON_RESUME = ("merged_from", "merged_environment_differences")


class ResumeError(RnnbenchError):
    """A run that cannot be continued: a different suite or environment, or nothing to resume."""


def load_for_resume(resume_path: str | Path, suite: Mapping, environment: Mapping) -> RunResults:
    """The earlier run's results; raises ResumeError when this suite or environment is not the one it used."""
    previous = read_results_or_journal(resume_path)
    check_resumable(previous, resume_path, suite, environment)
    return previous


def check_resumable(previous: RunResults, resume_path: str | Path, suite: Mapping, environment: Mapping) -> None:
    """Raises ResumeError when this suite or environment is not the one the earlier run used."""
    if suite_content(previous.suite) != suite_content(suite):
        raise ResumeError(f"{resume_path}: the suite has changed since that run (grid, timing, dtype or device "
                          f"differ); start a new run instead of resuming")
    now = RunResults(environment=environment, suite=suite, cases=())
    refused = [d for d in environment_differences(previous, now)
               if d.blocking or d.label in ALSO_REFUSED_WHEN_RESUMING]
    if refused:
        changes = ", ".join(f"{d.label}: {d.baseline} -> {d.current}" for d in refused)
        raise ResumeError(f"{resume_path}: the environment has changed since that run ({changes}); "
                          f"its timings would not be comparable; start a new run")


def refuse_another_plan(previous: RunResults, resume_path, *, rounds: int | None, nvtx: bool) -> bool:
    """The recorded plan decides how a run is continued, not the options given now: a run in rounds cannot be
    continued (its cases would pass with the rounds they had), and --rounds or --nvtx must not change. Returns
    whether the run continues with NVTX ranges (as it was started)."""
    recorded_rounds = previous.run_options.round_count
    if recorded_rounds > 1:
        raise ResumeError(f"{resume_path}: a run in {recorded_rounds} rounds; a run in rounds cannot be resumed "
                          f"(its finished rounds are kept, and rnnbench report reads them); run it again with "
                          f"--rounds {recorded_rounds} and a new --out")
    if rounds not in (None, 1):
        raise ResumeError(f"{resume_path}: that run was measured in one round; leave out --rounds {rounds} to "
                          f"resume it, or start a new run in rounds")
    recorded_nvtx = previous.run_options.nvtx
    if nvtx and not recorded_nvtx:
        raise ResumeError(f"{resume_path}: that run had no NVTX ranges; leave out --nvtx to resume it")
    return recorded_nvtx


def suite_content(suite: Mapping) -> dict:
    """What makes two suites the same suite: everything but where it was read from, its hash and its description."""
    return {key: value for key, value in thaw(suite).items() if key not in SUITE_FIELDS_IGNORED}
